#!/usr/bin/env bash
# Dashboard cost: bytes of a first overview load and of one htmx poll, and the time to
# render the chart fragment for 15 minutes vs 30 days of 1 Hz data.
#
#   bench/dashboard.sh [REPEATS]     (default 20)
#
# Peer: the original service's Chart.js page, which shipped every raw point to the
# browser; here the server renders ~300-point SVG. Needs cargo, curl, python3, sqlite3.
# Binds 127.0.0.1 only and stops by itself.
set -euo pipefail
REPEATS=${1:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release/watchpost
(cd "$ROOT" && cargo build --release --quiet)
WORK=$(mktemp -d)
PORT=18941
B=http://127.0.0.1:$PORT
cleanup() { kill "${PID:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

start() {
  WATCHPOST_COOKIE_SECURE=false "$BIN" --bind 127.0.0.1:$PORT --database-url "sqlite://$WORK/d.db" --collector false --log warn &
  PID=$!
  for _ in $(seq 1 100); do curl -fs $B/healthz >/dev/null 2>&1 && return; sleep 0.1; done
  echo "server did not start"; exit 1
}
start
kill $PID; wait $PID 2>/dev/null || true

echo "generating 30 days of 1 Hz samples (2,592,000 rows)…"
NOW=$(($(date +%s) * 1000))
sqlite3 "$WORK/d.db" <<SQL
.timeout 10000
WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < 2591999)
INSERT OR IGNORE INTO samples (host_id, ts, cpu, memory, memory_used, memory_total, swap, load1, load5, load15, disk, disk_read_bps, disk_write_bps, net_rx_bps, net_tx_bps, processes, uptime)
SELECT 1, $NOW - (2592000 - i) * 1000, 30 + (i % 97) * 0.5, 50 + (i % 89) * 0.3, 8000000000, 16000000000, 2.0, 1.0, 1.0, 1.0, 61.0, 1000.0, 2000.0, 3000.0 + (i % 50) * 100, 1500.0, 180, i FROM s;
UPDATE hosts SET last_seen_at = $NOW WHERE id = 1;
DELETE FROM samples_1m;
DELETE FROM samples_1h;
SQL
# Bulk-loaded rows bypass the server, so fold them into the rollups (every column).
"$BIN" --database-url "sqlite://$WORK/d.db" --log warn rebuild-rollups
start

JAR=$WORK/jar
curl -fs -c $JAR -b $JAR $B/dashboard/register -o $WORK/reg.html
CSRF=$(grep -o 'name="csrf_token" value="[^"]*"' $WORK/reg.html | head -1 | sed 's/.*value="//;s/"$//')
curl -fs -c $JAR -b $JAR -XPOST $B/dashboard/register -d "csrf_token=$CSRF&username=bench&password=bench-password-1" -o /dev/null

size() { curl -fs -c $JAR -b $JAR -H 'Accept-Encoding: gzip' "$@" -o /dev/null -w '%{size_download}'; }
html=$(size "$B/dashboard?range=15m")
css=$(size $B/static/app.css)
js=$(size $B/static/app.js)
htmx=$(size $B/static/vendor/htmx-2.0.11.min.js)
poll=$(size -H 'HX-Request: true' "$B/dashboard?host=1&range=15m")
echo
echo "first load of the overview (bytes on the wire, assets gzip):"
echo "  html $html + css $css + app.js $js + htmx $htmx = $((html + css + js + htmx))"
echo "one htmx poll (host card, 7 charts): $poll bytes"

timeit() {
  local range=$1
  for _ in $(seq 1 "$REPEATS"); do
    curl -fs -c $JAR -b $JAR -H 'HX-Request: true' "$B/dashboard?host=1&range=$range" -o /dev/null -w '%{time_total}\n'
  done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
t15=$(timeit 15m)
t30=$(timeit 30d)
python3 - "$t15" "$t30" "$REPEATS" <<'PY'
import sys
t15, t30, n = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
print(f"\nchart fragment render (median of {n}, 7 charts):")
print(f"  15 min of 1 Hz data: {t15*1000:8.1f} ms")
print(f"  30 days of 1 Hz data: {t30*1000:8.1f} ms")
print(f"  ratio 30 d / 15 min: {t30/t15:6.1f}x  (target <= 5x)")
PY
