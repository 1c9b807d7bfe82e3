#!/usr/bin/env bash
# Where the probe engine spends its time: `perf record` over an unpaced
# sweep of 100,000 loopback addresses (127.0.0.0/8 only), the same job as
# bench/sweep.sh, and the top costs by function, user space and kernel
# together. Prints Markdown for BENCHMARKS.md; asserts nothing.
#
#   bench/profile.sh [N]      as root; default N: 100000
#   EDGEPROBE_BIN=PATH        use this binary instead of building one
set -Eeuo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup bench/profile.sh "ping needs raw sockets at these rates" linux-perf python3
n=${1:-100000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$n" >"$work/sheet.csv" <<'PY'
import sys
print("ip")
for i in range(int(sys.argv[1])):
    print(f"127.{1 + i // 62500}.{i // 250 % 250}.{i % 250 + 1}")
PY
perf record -q -F 2999 -g -o "$work/perf.data" -- \
    "$bin" probe --targets "$work/sheet.csv" --sheet-max-rows $((n + 1)) --count 1 --timeout 500 \
    --rate 0 --no-trace --json >"$work/out.json" 2>"$work/perf.err" || true
if [[ ! -s $work/out.json ]]; then
    echo "bench/profile.sh: the sweep printed no results:" >&2
    cat "$work/perf.err" >&2
    exit 1
fi
perf report -i "$work/perf.data" --no-children -g none --sort comm,dso,symbol --stdio \
    >"$work/report.txt" 2>/dev/null
by_thread=$(perf report -i "$work/perf.data" --no-children -g none --sort comm --stdio 2>/dev/null |
    awk '/^ +[0-9.]+%/ { printf "%s%s %s", sep, $2, $1; sep = ", " }')

echo "## 6. Profile: where a sweep of $n addresses spends its time"
echo
echo "\`perf record -F 2999 -g\` over \`edgeprobe probe --count 1 --timeout 500 --rate 0 --no-trace --json\` ($(perf version 2>/dev/null)); self time by thread and function, the top 15 (\`[k]\` is the kernel working for that thread: sockets, loopback delivery, scheduling):"
echo
echo "By thread: $by_thread (\`edgeprobe\` is the main thread: sheet, futures, receiving, JSON; \`edgeprobe-send\` sends and, on loopback, carries the kernel's echo replies)."
echo
echo "| self % | thread | function |"
echo "|---:|---|---|"
python3 - "$work/report.txt" <<'PY'
import re, sys
rows = 0
for line in open(sys.argv[1]):
    m = re.match(r"^\s+([0-9.]+%)\s+(\S+)\s+(\S+)\s+(\[[k.]\])\s+(.*?)(\s+-\s+-)?\s*$", line)
    if not m:
        continue
    pct, comm, dso, kind, sym = m.group(1, 2, 3, 4, 5)
    where = "[k] " if kind == "[k]" else ""
    print(f"| {pct} | {comm} | {where}`{sym.replace('|', '/')}` |")
    rows += 1
    if rows == 15:
        break
PY
