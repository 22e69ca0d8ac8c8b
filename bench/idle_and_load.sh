#!/usr/bin/env bash
# Idle footprint of watchpost beside prometheus-node-exporter (the peer), and API load.
#
#   bench/idle_and_load.sh [SECONDS]      (default 60)
#
# 1. Starts the release binary (collector at 1 Hz, nobody polling) and node_exporter
#    (scraped once a second with curl, as Prometheus would) side by side for SECONDS,
#    then reports each one's RSS and CPU seconds from /proc, and the ratios.
# 2. Runs `wrk -t2 -c32 -d10s` against GET /metrics?limit=10 with a valid token and
#    reports requests/s and p99 latency.
# Needs: cargo, curl, python3, wrk and prometheus-node-exporter (apt-get install -y wrk
# prometheus-node-exporter). Everything binds to 127.0.0.1 and stops by itself.
set -euo pipefail
DURATION=${1:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release/watchpost
NE=$(command -v prometheus-node-exporter || command -v node_exporter || true)
[ -n "$NE" ] || { echo "prometheus-node-exporter not installed (apt-get install -y prometheus-node-exporter)"; exit 1; }
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install -y wrk)"; exit 1; }

(cd "$ROOT" && cargo build --release --quiet)
WORK=$(mktemp -d)
WP_PORT=18931
NE_PORT=18932
cleanup() {
  kill "${WP_PID:-}" "${NE_PID:-}" "${SCRAPER_PID:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cd "$WORK"
"$BIN" --bind 127.0.0.1:$WP_PORT --database-url "sqlite://$WORK/bench.db" --interval 1s --log warn &
WP_PID=$!
"$NE" --web.listen-address=127.0.0.1:$NE_PORT --log.level=warn 2>/dev/null &
NE_PID=$!
for _ in $(seq 1 100); do
  curl -fs http://127.0.0.1:$WP_PORT/healthz >/dev/null 2>&1 && curl -fs http://127.0.0.1:$NE_PORT/metrics >/dev/null 2>&1 && break
  sleep 0.1
done
( end=$((SECONDS + DURATION + 5)); while [ $SECONDS -lt $end ]; do curl -fs -o /dev/null http://127.0.0.1:$NE_PORT/metrics || true; sleep 1; done ) &
SCRAPER_PID=$!
sleep 3 # let both settle after start-up

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
HZ=$(getconf CLK_TCK)
wp0=$(cpu_ticks $WP_PID); ne0=$(cpu_ticks $NE_PID)
sleep "$DURATION"
wp1=$(cpu_ticks $WP_PID); ne1=$(cpu_ticks $NE_PID)
wp_rss=$(rss_kib $WP_PID); ne_rss=$(rss_kib $NE_PID)
kill $SCRAPER_PID 2>/dev/null || true

python3 - "$DURATION" "$HZ" "$wp0" "$wp1" "$ne0" "$ne1" "$wp_rss" "$ne_rss" <<'PY'
import sys
d, hz, wp0, wp1, ne0, ne1, wprss, nerss = map(float, sys.argv[1:])
wpcpu, necpu = (wp1 - wp0) / hz, (ne1 - ne0) / hz
print(f"idle {d:.0f}s        RSS MiB   CPU s")
print(f"watchpost        {wprss/1024:7.1f}  {wpcpu:6.2f}")
print(f"node_exporter    {nerss/1024:7.1f}  {necpu:6.2f}   (scraped at 1 Hz)")
print(f"ratio wp/ne      {wprss/nerss:7.2f}  {wpcpu/necpu if necpu else float('nan'):6.2f}")
print(f"targets: watchpost RSS <= 20 MiB: {'yes' if wprss/1024 <= 20 else 'NO'}; CPU <= node_exporter: {'yes' if wpcpu <= necpu else 'NO'}")
PY

B=http://127.0.0.1:$WP_PORT
curl -fs -XPOST $B/register -H 'content-type: application/json' -d '{"username":"bench","password":"bench-password-1"}' >/dev/null
TOKEN=$(curl -fs -XPOST $B/login -H 'content-type: application/json' -d '{"username":"bench","password":"bench-password-1"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
echo
echo "wrk -t2 -c32 -d10s GET /metrics?limit=10"
wrk -t2 -c32 -d10s --latency -H "token: $TOKEN" "$B/metrics?limit=10" | tee "$WORK/wrk.txt" | grep -E "Requests/sec|99%|Non-2xx|Socket errors" || true
