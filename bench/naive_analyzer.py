#!/usr/bin/env python3
"""Baseline peer for bench/logs.sh: the straightforward line-by-line analyzer the original
service would have shipped (not a goal, a yardstick).

For every line: one regex search for an upper-case level word; for ERROR/CRITICAL lines, the
text after that word is masked (UUIDs, IPs, hex ids, numbers) and counted in a
collections.Counter. No format detection: lower-case levels (JSON, logfmt, nginx), syslog
priorities, klog prefixes and access-log statuses are not understood, and a level word inside
a message counts. It is the speed yardstick; the accuracy yardstick is OUT.truth.json.

Usage: python3 bench/naive_analyzer.py FILE
Prints JSON: {"lines": N, "levels": {...}, "error_groups": N, "top_errors": [{"template", "count"}]}
"""
import json
import re
import sys
from collections import Counter

LEVEL_RE = re.compile(r"\b(ERROR|WARN(?:ING)?|INFO|DEBUG|CRITICAL|FATAL)\b")
CANONICAL = {"WARNING": "WARN", "FATAL": "CRITICAL"}

MASKS = [
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<UUID>"),
    (re.compile(r"\[?[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{0,4}){2,7}\]?(?::\d+)?"), "<IP6>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<IP>"),
    (re.compile(r"\b(?:0x)?[0-9a-fA-F]*\d[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\b|\b[0-9a-fA-F]{12,}\b"), "<HEX>"),
    (re.compile(r"\d+"), "<N>"),
]


def mask(message):
    for regex, replacement in MASKS:
        message = regex.sub(replacement, message)
    return message


def analyze(path):
    levels = Counter()
    errors = Counter()
    lines = 0
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        for line in f:
            lines += 1
            m = LEVEL_RE.search(line)
            if m is None:
                levels["UNKNOWN"] += 1
                continue
            level = CANONICAL.get(m.group(1), m.group(1))
            levels[level] += 1
            if level in ("ERROR", "CRITICAL"):
                message = line[m.end():].strip().lstrip(":-] ").strip()
                errors[mask(message)] += 1
    return {
        "lines": lines,
        "levels": dict(levels.most_common()),
        "error_groups": len(errors),
        "top_errors": [{"template": t, "count": c} for t, c in errors.most_common(10)],
    }


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    print(json.dumps(analyze(sys.argv[1]), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
