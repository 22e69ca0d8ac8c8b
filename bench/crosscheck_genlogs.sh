#!/usr/bin/env bash
# Cross-check of `watchpost analyze` against an EXTERNAL log generator with its own ground
# truth: genlogs.py (not part of this repository; pass its path). It writes a mixed file of
# nginx access, syslog, Python and JSON lines plus FILE.truth.json with exact per-level and
# per-format counts; this script compares those with `watchpost analyze --json`, prints a
# table and exits 1 on any mismatch (2 on a usage or setup error).
#
#   bench/crosscheck_genlogs.sh /path/to/genlogs.py [SIZE] [SEED]     # SIZE default 16M, SEED 1
#
# The generator's format names differ from ours: nginx → access_log, syslog → syslog_rfc3164,
# python → python, json → json. Env: CARGO_TARGET_DIR (binary at $TARGET/release/watchpost,
# built with `cargo build --release` when missing), WATCHPOST_CROSSCHECK_DIR (keep the
# generated files there instead of a temp dir).
set -euo pipefail
shopt -s inherit_errexit

if [[ $# -lt 1 || $# -gt 3 || ! -f $1 ]]; then
  echo "usage: $0 /path/to/genlogs.py [SIZE] [SEED]" >&2
  exit 2
fi
GEN=$1
SIZE=${2:-16M}
SEED=${3:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/watchpost

if [[ -n ${WATCHPOST_CROSSCHECK_DIR:-} ]]; then
  DIR=$WATCHPOST_CROSSCHECK_DIR
  mkdir -p "$DIR"
else
  DIR=$(mktemp -d "${TMPDIR:-/tmp}/watchpost-crosscheck.XXXXXX")
  trap 'rm -rf "$DIR"' EXIT
fi

if [[ ! -x $BIN ]]; then
  (cd "$ROOT" && cargo build --release --quiet)
fi

LOG=$DIR/genlogs_${SIZE}_seed${SEED}.log
python3 "$GEN" -o "$LOG" --size "$SIZE" --seed "$SEED" >&2
"$BIN" analyze --json --top 1000 "$LOG" > "$LOG.watchpost.json"

python3 - "$LOG.truth.json" "$LOG.watchpost.json" <<'PY'
import json
import sys

truth = json.load(open(sys.argv[1]))
ours = json.load(open(sys.argv[2]))
FORMAT_NAMES = {"nginx": "access_log", "syslog": "syslog_rfc3164", "python": "python", "json": "json"}

rows = [("lines", truth["lines"], ours["lines"])]
for level in sorted(set(truth["levels"]) | {k for k, v in ours["levels"].items() if v}):
    rows.append(("level " + level, truth["levels"].get(level, 0), ours["levels"].get(level, 0)))
their_formats = {FORMAT_NAMES.get(k, k): v for k, v in truth["formats"].items()}
for fmt in sorted(set(their_formats) | set(ours["formats"])):
    rows.append(("format " + fmt, their_formats.get(fmt, 0), ours["formats"].get(fmt, 0)))

bad = 0
print("%-24s %12s %12s  %s" % ("", "truth", "watchpost", ""))
for name, want, got in rows:
    ok = want == got
    bad += not ok
    print("%-24s %12d %12d  %s" % (name, want, got, "ok" if ok else "MISMATCH (%+d)" % (got - want)))
print("%d mismatches; %d error groups in the truth, %d templates with ERROR/CRITICAL lines in watchpost"
      % (bad, truth.get("error_groups", 0), len(ours.get("top_errors", []))))
sys.exit(1 if bad else 0)
PY
