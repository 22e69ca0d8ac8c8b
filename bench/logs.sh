#!/usr/bin/env bash
# Log analyzer throughput. Compares, on the same mixed-format files made by
# `watchpost gen-logs` (100 MiB and 1 GiB, seed 42, exact truth in FILE.truth.json):
#
#   watchpost analyze --json FILE          the subject
#   python3 bench/naive_analyzer.py FILE   the PEER: the straightforward line-by-line Python
#                                          analyzer the original service would be
#   rg -c ERROR FILE                       ceiling: a single-keyword scan (ripgrep)
#   cat FILE > /dev/null                   ceiling: reading the bytes (page cache)
#
# and reports MB/s, speed ratios vs the naive analyzer and vs `rg -c ERROR`, the peak RSS of
# `watchpost analyze`, and the time of an HTTP upload of the first file to POST /logs/analyze
# (a server on a free 127.0.0.1 port with a temp SQLite DB, stopped at exit).
#
#   bench/logs.sh
#   WATCHPOST_BENCH_SIZES="10MiB" bench/logs.sh       # quick run
#   WATCHPOST_BENCH_DIR=/data/logbench bench/logs.sh  # keep (and reuse) the generated files
#
# Env: WATCHPOST_BENCH_SIZES (default "100MiB 1GiB"), WATCHPOST_BENCH_DIR (default: a temp dir,
# removed at exit), WATCHPOST_BENCH_SEED (42), WATCHPOST_BENCH_TIMEOUT (seconds per command, 1800),
# WATCHPOST_BENCH_NO_HYPERFINE=1 (use the date/time fallback even if hyperfine is installed).
# Needs cargo, python3, curl; hyperfine and ripgrep recommended. A step whose command fails
# prints "skipped: …" and the rest goes on. Warm page cache; on a shared box compare tools
# within one run only.
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZES=${WATCHPOST_BENCH_SIZES:-"100MiB 1GiB"}
SEED=${WATCHPOST_BENCH_SEED:-42}
LIMIT=${WATCHPOST_BENCH_TIMEOUT:-1800}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/watchpost
NAIVE=$ROOT/bench/naive_analyzer.py
export LC_ALL=C

if [[ -n ${WATCHPOST_BENCH_DIR:-} ]]; then
  DIR=$WATCHPOST_BENCH_DIR
  mkdir -p "$DIR"
  KEEP=1
else
  DIR=$(mktemp -d "${TMPDIR:-/tmp}/watchpost-logbench.XXXXXX")
  KEEP=0
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/watchpost-logbench-work.XXXXXX")
SERVER_PID=
cleanup() {
  if [[ -n $SERVER_PID ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  if [[ $KEEP == 0 ]]; then rm -rf "$DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s\n' "$*"; }
skip() { printf 'skipped: %s\n' "$*"; }

say "== watchpost log analyzer benchmark =="
say "subject: watchpost analyze --json | peer: bench/naive_analyzer.py (python3 line-by-line regex)"
say "ceilings: rg -c ERROR, cat > /dev/null | sizes: $SIZES | seed $SEED | files in $DIR"

HAVE_HF=0
HAVE_RG=0
command -v hyperfine >/dev/null && [[ -z ${WATCHPOST_BENCH_NO_HYPERFINE:-} ]] && HAVE_HF=1
command -v rg >/dev/null && HAVE_RG=1
if [[ $HAVE_HF == 0 || $HAVE_RG == 0 ]]; then
  say "note: hyperfine and/or ripgrep missing; install with: apt-get install -y hyperfine ripgrep"
fi
[[ $HAVE_HF == 0 ]] && say "note: without hyperfine every command is timed once with date +%s.%N"
HAVE_TIME=0
[[ -x /usr/bin/time ]] && /usr/bin/time -v true >/dev/null 2>&1 && HAVE_TIME=1
say "python: $(python3 --version 2>&1) | rg: $( ((HAVE_RG)) && rg --version | head -1 || echo none)" \
  "| hyperfine: $( ((HAVE_HF)) && hyperfine --version || echo none) | cores: $(nproc)"

say ""
say "-- building the release binary"
(cd "$ROOT" && CARGO_TARGET_DIR=$TARGET timeout "$LIMIT" cargo build --release --quiet --bin watchpost)

# A small file to find out which commands work at all (analyze may not exist yet).
PROBE=$WORK/probe.log
"$BIN" gen-logs --size 256KiB --seed "$SEED" "$PROBE" 2>/dev/null

# name|command template (FILE is replaced by the path)
declare -a NAMES=() CMDS=()
add() {
  local name=$1 cmd=$2 probe
  probe=${cmd//FILE/$PROBE}
  if timeout 60 bash -c "$probe" >"$WORK/probe.out" 2>"$WORK/probe.err"; then
    NAMES+=("$name")
    CMDS+=("$cmd")
  else
    skip "$name: $probe -> $(tail -c 300 "$WORK/probe.err" | tr '\n' ' ')"
  fi
}
say ""
say "-- checking commands on a 256 KiB probe file"
add "watchpost analyze" "'$BIN' analyze --json FILE > /dev/null"
if ((HAVE_RG)); then
  # No "> /dev/null": rg (like GNU grep) may stop at the first match when stdout is /dev/null;
  # hyperfine pipes the output away instead (--output=pipe).
  add "rg -c ERROR" "rg -c ERROR FILE"
else
  skip "rg -c ERROR: ripgrep not installed (apt-get install -y ripgrep)"
fi
add "cat" "cat FILE > /dev/null"
add "naive python" "python3 '$NAIVE' FILE > /dev/null"

# bytes_of SIZE_ARG -> file path after generating (or reusing) it
generate() {
  local size=$1 file=$DIR/mixed_${1}_s${SEED}.log t0 t1
  if [[ $KEEP == 1 && -s $file && -s $file.truth.json ]]; then
    say "reusing $file" >&2
  else
    t0=$(date +%s.%N)
    timeout "$LIMIT" "$BIN" gen-logs --size "$size" --seed "$SEED" "$file" >&2
    t1=$(date +%s.%N)
    python3 -c 'import os,sys; b=os.path.getsize(sys.argv[1]); s=float(sys.argv[3])-float(sys.argv[2]); print("gen-logs: %.1f MB in %.2f s (%.0f MB/s)" % (b/1e6, s, b/1e6/s))' \
      "$file" "$t0" "$t1" >&2
  fi
  printf '%s' "$file"
}

# Times every working command on FILE; writes NAME<TAB>median_seconds lines to $2.
time_all() {
  local file=$1 out=$2 runs warmup i cmd name
  : >"$out"
  # The 1 GiB file runs once without a warm-up: read it now, so the first command timed
  # (ours) does not pay for the page cache the others then enjoy.
  cat "$file" >/dev/null
  if [[ $(stat -c %s "$file") -ge $((512 * 1024 * 1024)) ]]; then runs=1 warmup=0; else runs=3 warmup=1; fi
  if ((HAVE_HF)); then
    for i in "${!NAMES[@]}"; do
      name=${NAMES[$i]}
      cmd=${CMDS[$i]//FILE/$file}
      if timeout "$LIMIT" hyperfine --runs "$runs" --warmup "$warmup" --output=pipe --style basic \
        --export-json "$WORK/hf.json" -n "$name" "$cmd" >"$WORK/hf.log" 2>&1; then
        python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%s\t%.6f" % (sys.argv[2], r["median"]))' \
          "$WORK/hf.json" "$name" >>"$out"
      else
        skip "$name on $(basename "$file"): $(tail -c 300 "$WORK/hf.log" | tr '\n' ' ')"
      fi
    done
  else
    for i in "${!NAMES[@]}"; do
      name=${NAMES[$i]}
      cmd=${CMDS[$i]//FILE/$file}
      local t0 t1
      t0=$(date +%s.%N)
      if timeout "$LIMIT" bash -c "$cmd" >"$WORK/cmd.out" 2>"$WORK/cmd.err"; then
        t1=$(date +%s.%N)
        printf '%s\t%s\n' "$name" "$(python3 -c 'import sys; print("%.6f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$t0" "$t1")" >>"$out"
      else
        skip "$name on $(basename "$file"): $(tail -c 300 "$WORK/cmd.err" | tr '\n' ' ')"
      fi
    done
  fi
}

report() {
  local file=$1 times=$2
  python3 - "$file" "$times" <<'PY'
import os, sys
path, times = sys.argv[1], sys.argv[2]
size = os.path.getsize(path)
rows = [l.rstrip("\n").split("\t") for l in open(times) if l.strip()]
t = {name: float(sec) for name, sec in rows}
naive, rg = t.get("naive python"), t.get("rg -c ERROR")
print("%-18s %10s %10s %14s %14s" % ("command", "median s", "MB/s", "speed/naive", "speed/rg"))
for name, sec in t.items():
    vs_naive = "%.1fx" % (naive / sec) if naive else "-"
    vs_rg = "%.2fx" % (rg / sec) if rg else "-"
    print("%-18s %10.3f %10.0f %14s %14s" % (name, sec, size / 1e6 / sec, vs_naive, vs_rg))
print("(speed/X = X's time / this time: above 1 is faster than X)")
PY
}

peak_rss() {
  local file=$1
  if ((HAVE_TIME == 0)); then
    skip "peak RSS: /usr/bin/time (GNU time) not installed (apt-get install -y time)"
    return
  fi
  if [[ ${NAMES[0]:-} != "watchpost analyze" ]]; then
    skip "peak RSS of watchpost analyze: the command does not work yet"
    return
  fi
  if timeout "$LIMIT" /usr/bin/time -v "$BIN" analyze --json "$file" >/dev/null 2>"$WORK/time.txt"; then
    say "peak RSS of watchpost analyze: $(awk -F': ' '/Maximum resident set size/ {printf "%.1f MiB", $2/1024}' "$WORK/time.txt")"
  else
    skip "peak RSS of watchpost analyze: $(tail -c 300 "$WORK/time.txt" | tr '\n' ' ')"
  fi
}

# How far the naive peer is from the truth (once, on the first file).
naive_accuracy() {
  local file=$1
  if ! timeout "$LIMIT" python3 "$NAIVE" "$file" >"$WORK/naive.json" 2>"$WORK/naive.err"; then
    skip "naive accuracy: $(tail -c 300 "$WORK/naive.err" | tr '\n' ' ')"
    return
  fi
  python3 - "$WORK/naive.json" "$file.truth.json" <<'PY'
import json, sys
naive, truth = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
lv, tl = naive["levels"], truth["levels"]
print("naive accuracy vs truth (levels naive/true):",
      ", ".join("%s %d/%d" % (k, lv.get(k, 0), tl[k]) for k in ("ERROR", "CRITICAL", "WARN", "UNKNOWN")))
print("  error groups: naive %d, true %d" % (naive["error_groups"], len(truth["error_templates"])))
PY
}

upload() {
  local file=$1 port token code secs i
  if ! curl --version >/dev/null 2>&1; then skip "HTTP upload: curl not installed"; return; fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  WATCHPOST_COOKIE_SECURE=false "$BIN" --bind "127.0.0.1:$port" --database-url "sqlite://$WORK/bench.db" \
    --collector false --notifier false --log warn >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  local base=http://127.0.0.1:$port up=0
  for _ in $(seq 1 100); do
    if curl -fs "$base/healthz" >/dev/null 2>&1; then up=1; break; fi
    sleep 0.1
  done
  if ((up == 0)); then
    skip "HTTP upload: server did not start: $(tail -c 300 "$WORK/server.log" | tr '\n' ' ')"
    return
  fi
  local creds='{"username":"bench","password":"bench-password-1"}'
  if ! curl -fsS -X POST "$base/register" -H 'content-type: application/json' -d "$creds" -o /dev/null 2>"$WORK/curl.err" ||
    ! token=$(curl -fsS -X POST "$base/login" -H 'content-type: application/json' -d "$creds" 2>"$WORK/curl.err" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'); then
    skip "HTTP upload: register/login failed: $(tr '\n' ' ' <"$WORK/curl.err")"
    return
  fi
  : >"$WORK/upload.times"
  for i in 1 2 3; do
    if ! read -r code secs < <(timeout "$LIMIT" curl -sS -o "$WORK/upload.out" -w '%{http_code} %{time_total}\n' \
      --data-binary "@$file" -H 'content-type: application/octet-stream' -H "token: $token" \
      "$base/logs/analyze" 2>"$WORK/curl.err"); then
      skip "HTTP upload: curl failed: $(tr '\n' ' ' <"$WORK/curl.err")"
      return
    fi
    if [[ $code != 2* ]]; then
      skip "HTTP upload: POST /logs/analyze answered $code: $(head -c 200 "$WORK/upload.out")"
      return
    fi
    say "$secs" >>"$WORK/upload.times"
  done
  python3 - "$file" "$WORK/upload.times" <<'PY'
import os, statistics, sys
size = os.path.getsize(sys.argv[1])
secs = statistics.median(float(l) for l in open(sys.argv[2]) if l.strip())
print("HTTP upload to POST /logs/analyze (median of 3): %.3f s, %.0f MB/s" % (secs, size / 1e6 / secs))
PY
}

first=
for size in $SIZES; do
  say ""
  say "-- $size"
  file=$(generate "$size")
  [[ -z $first ]] && first=$file
  time_all "$file" "$WORK/times.tsv"
  if [[ -s $WORK/times.tsv ]]; then report "$file" "$WORK/times.tsv"; fi
  peak_rss "$file"
done

say ""
say "-- accuracy of the peer on $(basename "$first")"
naive_accuracy "$first"

say ""
say "-- HTTP upload of $(basename "$first")"
upload "$first"
