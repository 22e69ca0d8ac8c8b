#!/usr/bin/env bash
# Long-range history cost: GET /metrics/history and the dashboard's chart fragment for the
# last 30 days, against the 15-minute range of the same service on the same data.
#
#   bench/history.sh [RUNS] [STEP_SECS]     (defaults: 50 runs per command, 10 s steps)
#
# Peer: the 15-minute range of the same service (raw rows). Target from issue #6: the
# 30-day range costs at most 2x the 15-minute one (it reads ~720 hourly rollup rows
# instead of 259,200 raw samples).
#
# Data: `watchpost seed --hours 720 --step-secs 10`, 30 days of one host every 10 s, stored
# through the store (so both rollup tiers are filled). With STEP_SECS=1 (the collector's
# default period) the 15-minute peer holds 900 raw rows instead of 90; seeding then takes
# minutes. SQLite in a temporary directory;
# set WATCHPOST_BENCH_DATABASE_URL=postgres://… to run against PostgreSQL as well (a
# scratch database of its own, not one the tests use as their admin database: it is seeded,
# not emptied). WATCHPOST_BENCH_ENGINES="postgres" skips SQLite (default "sqlite postgres").
#
# Needs cargo, curl, hyperfine (apt-get install hyperfine), python3. Binds 127.0.0.1 only
# and stops its server by itself.
set -euo pipefail
RUNS=${1:-50}
STEP=${2:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/watchpost
for tool in curl hyperfine python3; do
  command -v $tool >/dev/null || { echo "bench/history.sh needs $tool"; exit 1; }
done
(cd "$ROOT" && cargo build --release --quiet)
WORK=$(mktemp -d)
ADMIN=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
B=http://127.0.0.1:$PORT
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

# Median of curl's own time_total over RUNS requests: the server's time without the cost
# of starting a curl process, which hyperfine's figures include.
median_ms() {
  for _ in $(seq 1 "$RUNS"); do
    curl -fsS -o /dev/null -w '%{time_total}\n' "$@"
  done | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]*1000}'
}

hyperfine_mean_ms() { # name, json file
  python3 -c 'import json,sys; r={x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}; print("%.2f" % (r[sys.argv[2]]["mean"]*1000))' "$2" "$1"
}

run() { # label, database URL
  local label=$1 url=$2
  echo "== $label =="
  echo "seeding 30 days of one host every $STEP s ($((720 * 3600 / STEP + 1)) samples)…"
  "$BIN" --database-url "$url" --log error seed --hours 720 --step-secs "$STEP" >/dev/null 2>&1
  # Raw retention past the seeded 30 days: the first retention pass (30 s after start)
  # would otherwise delete 23 days of samples in the middle of the timings.
  ADMIN_TOKEN=$ADMIN WATCHPOST_COOKIE_SECURE=false "$BIN" serve --bind 127.0.0.1:$PORT \
    --database-url "$url" --collector false --notifier false --retention-raw 31d --log warn &
  PID=$!
  for _ in $(seq 1 100); do curl -fs $B/healthz >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fs $B/healthz >/dev/null || { echo "server did not start"; exit 1; }

  # An API token (POST /register + /login) and a dashboard session (the register form).
  local user="bench$RANDOM$RANDOM" pass="bench-password-$RANDOM-x"
  curl -fsS -XPOST $B/register -H 'content-type: application/json' \
    -d "{\"username\":\"$user\",\"password\":\"$pass\"}" -o /dev/null
  local token
  token=$(curl -fsS -XPOST $B/login -H 'content-type: application/json' \
    -d "{\"username\":\"$user\",\"password\":\"$pass\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  local jar=$WORK/jar-$label
  curl -fsS -c "$jar" -b "$jar" $B/dashboard/register -o "$WORK/reg.html"
  local csrf
  csrf=$(grep -o 'name="csrf_token" value="[^"]*"' "$WORK/reg.html" | head -1 | sed 's/.*value="//;s/"$//')
  curl -fsS -c "$jar" -b "$jar" -XPOST $B/dashboard/register \
    -d "csrf_token=$csrf&username=${user}d&password=$pass" -o /dev/null
  local host
  host=$(curl -fsS $B/hosts -H "token: $token" | python3 -c 'import json,sys; print(next(h["id"] for h in json.load(sys.stdin) if h["local"]))')

  local now end h15 h30 d15 d30
  now=$(date +%s)
  end=$(iso "$now")
  h15="$B/metrics/history?start=$(iso $((now - 900)))&end=$end"
  h30="$B/metrics/history?start=$(iso $((now - 30 * 86400)))&end=$end"
  d15="$B/dashboard?host=$host&range=15m"
  d30="$B/dashboard?host=$host&range=30d"
  for u in "$h15" "$h30"; do
    curl -fsS -D "$WORK/headers" -H "token: $token" "$u" -o "$WORK/body"
    printf '  history %-8s %5s points, x-watchpost-bucket-ms: %s\n' "$([ "$u" = "$h15" ] && echo 15m || echo 30d)" \
      "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$WORK/body")" \
      "$(grep -i '^x-watchpost-bucket-ms' "$WORK/headers" | tr -d '\r' | awk '{print $2}' || echo none)"
  done
  [ -n "$(grep -i '^x-watchpost-bucket-ms' "$WORK/headers" || true)" ] || { echo "30-day history did not come from the rollups"; exit 1; }

  local json=$WORK/$label.json
  hyperfine --style basic --warmup 5 --runs "$RUNS" --export-json "$json" \
    -n "history 15m" "curl -fsS -o /dev/null -H 'token: $token' '$h15'" \
    -n "history 30d" "curl -fsS -o /dev/null -H 'token: $token' '$h30'" \
    -n "chart 15m" "curl -fsS -o /dev/null -b '$jar' -H 'HX-Request: true' '$d15'" \
    -n "chart 30d" "curl -fsS -o /dev/null -b '$jar' -H 'HX-Request: true' '$d30'" >/dev/null

  local c_h15 c_h30 c_d15 c_d30
  c_h15=$(median_ms -H "token: $token" "$h15")
  c_h30=$(median_ms -H "token: $token" "$h30")
  c_d15=$(median_ms -b "$jar" -H 'HX-Request: true' "$d15")
  c_d30=$(median_ms -b "$jar" -H 'HX-Request: true' "$d30")
  python3 - "$label" "$RUNS" \
    "$(hyperfine_mean_ms 'history 15m' "$json")" "$(hyperfine_mean_ms 'history 30d' "$json")" \
    "$(hyperfine_mean_ms 'chart 15m' "$json")" "$(hyperfine_mean_ms 'chart 30d' "$json")" \
    "$c_h15" "$c_h30" "$c_d15" "$c_d30" <<'PY'
import sys
label, runs = sys.argv[1], sys.argv[2]
hf = [float(x) for x in sys.argv[3:7]]
tt = [float(x) for x in sys.argv[7:11]]
print(f"\n{label}: 30 days vs 15 minutes of the same service ({runs} runs each; target <= 2x)")
print(f"{'':26}{'15 min':>10}{'30 days':>10}{'ratio':>8}")
for i, name in ((0, "GET /metrics/history"), (2, "dashboard chart fragment")):
    print(f"{name:26}")
    for kind, v in (("  hyperfine mean (ms)", hf), ("  curl time_total p50 (ms)", tt)):
        ratio = v[i + 1] / v[i]
        mark = "ok" if ratio <= 2 else "ABOVE TARGET"
        print(f"{kind:26}{v[i]:10.2f}{v[i+1]:10.2f}{ratio:7.2f}x {mark}")
PY
  kill $PID; wait $PID 2>/dev/null || true
  PID=
}

ENGINES=${WATCHPOST_BENCH_ENGINES:-sqlite postgres}
case " $ENGINES " in *" sqlite "*) run sqlite "sqlite://$WORK/h.db" ;; esac
if [ -n "${WATCHPOST_BENCH_DATABASE_URL:-}" ]; then
  case " $ENGINES " in *" postgres "*) run postgres "$WATCHPOST_BENCH_DATABASE_URL" ;; esac
fi
