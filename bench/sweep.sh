#!/usr/bin/env bash
# The probe engine against fping on loopback targets (127.0.0.0/8 only),
# both measured in the same run; prints figures and ratios, asserts nothing.
#
# 1. Sweep: one echo to each of N addresses, unpaced: edgeprobe
#    (`probe --count 1 --timeout 500 --rate 0 --no-trace`) against
#    `fping -c1 -i0 -t500`: wall time, CPU time, peak RSS, replies (fping
#    takes at most 65,535 hosts a run: larger lists go in 50,000 chunks).
# 2. Paced sweep: 10,000 addresses at 1,000 packets/s (edgeprobe --rate
#    1000, fping -i1): the achieved rate and the spread of the gaps between
#    echo requests, as tcpdump sees them on lo.
#
# Prints Markdown for BENCHMARKS.md on stdout.
#
#   bench/sweep.sh [N...]     as root; default N: 10000 100000
#   EDGEPROBE_BIN=PATH        use this binary instead of building one
set -Eeuo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup bench/sweep.sh "ping needs raw sockets at these rates" fping time tcpdump python3 valgrind
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sizes=("$@")
sweep_runs=${BENCH_SWEEP_RUNS:-5}
((${#sizes[@]})) || sizes=(10000 100000)

addresses() { # addresses N: N loopback addresses, one per line
    python3 -c 'import sys
n = int(sys.argv[1])
for i in range(n):
    print(f"127.{1 + i // 62500}.{i // 250 % 250}.{i % 250 + 1}")' "$1"
}

# run NAME CMD...: one run's wall s, cpu s and peak RSS KiB, added to
# $work/NAME.times. GNU time puts "Command exited with non-zero status"
# first when the tool exits non-zero (fping does when a target does not
# answer): the figures are its last line.
run() {
    local name=$1
    shift
    /usr/bin/time -f '%e %U %S %M' -o "$work/$name.time" "$@"
    tail -1 "$work/$name.time" >>"$work/$name.times"
}
# field NAME wall|cpu|rss: the median over NAME's runs.
field() {
    python3 - "$work/$1.times" "$2" <<'PY'
import statistics, sys
column = {"wall": lambda r: r[0], "cpu": lambda r: r[1] + r[2], "rss": lambda r: r[3]}[sys.argv[2]]
runs = [list(map(float, line.split())) for line in open(sys.argv[1])]
v = statistics.median_low(column(r) for r in runs)
print(f"{v:.2f}" if sys.argv[2] != "rss" else int(v))
PY
}
# lists N: N addresses as fping's list, edgeprobe's sheet and fping's
# chunks ($work/list.txt, sheet.csv, chunk.*).
lists() {
    addresses "$1" >"$work/list.txt"
    { echo ip; cat "$work/list.txt"; } >"$work/sheet.csv"
    split -l 50000 "$work/list.txt" "$work/chunk."
}
commas() { python3 -c 'import sys; print(f"{int(sys.argv[1]):,}")' "$1"; }
ratio() { python3 -c 'import sys; a, b = map(float, sys.argv[1:]); print(f"{a / b:.2f}x" if b > 0 else "n/a")' "$1" "$2"; }

wall() { field "$1" wall; }
cpu() { field "$1" cpu; }
rss() { field "$1" rss; }

echo "## 1. Sweep: one echo to each address, unpaced"
echo
echo "Goal: at or below fping on wall and CPU time, with every reply counted."
echo
echo "edgeprobe \`probe --count 1 --timeout 500 --rate 0 --no-trace --json\` against \`fping -c1 -i0 -t500 -q\` on the same list of 127.x.y.z addresses (fping takes at most 65,535 hosts a run: larger lists go in chunks of 50,000, one after another, in one timed shell). Each figure is the median of $sweep_runs runs, the two tools taking turns. Peer: $(fping -v 2>&1 | head -1)."
echo
verdicts=()
echo "| targets | tool | wall s | CPU s | peak RSS KiB | replies |"
echo "|---:|---|---:|---:|---:|---:|"
for n in "${sizes[@]}"; do
    lists "$n"
    rm -f "$work"/*.times
    ep_replies=$n fp_replies=$n
    # The two take turns, so that a change in the machine's load between
    # runs falls on both; the fewest replies of any run is reported.
    for ((i = 0; i < sweep_runs; i++)); do
        run edgeprobe "$bin" probe --targets "$work/sheet.csv" --sheet-max-rows $((n + 1)) \
            --count 1 --timeout 500 --rate 0 --no-trace --json >"$work/ep.json" 2>"$work/ep.err" || true
        got=$(python3 -c 'import json, sys
print(sum(1 for r in json.load(open(sys.argv[1])) if r["received"] > 0))' "$work/ep.json" 2>/dev/null || echo 0)
        ep_replies=$((got < ep_replies ? got : ep_replies))
        run fping sh -c 'for f in "$@"; do fping -c1 -i0 -t500 -q -f "$f" || true; done' \
            fping "$work"/chunk.* >/dev/null 2>"$work/fp.err" || true
        got=$(grep -c ' 1/1/0%' "$work/fp.err" || true)
        fp_replies=$((got < fp_replies ? got : fp_replies))
    done
    rm -f "$work"/chunk.*
    echo "| $n | edgeprobe | $(wall edgeprobe) | $(cpu edgeprobe) | $(rss edgeprobe) | $ep_replies |"
    echo "| $n | fping | $(wall fping) | $(cpu fping) | $(rss fping) | $fp_replies |"
    echo "| $n | **ratio** | **$(ratio "$(wall edgeprobe)" "$(wall fping)")** | **$(ratio "$(cpu edgeprobe)" "$(cpu fping)")** | $(ratio "$(rss edgeprobe)" "$(rss fping)") | |"
    verdicts+=("$n $(wall edgeprobe) $(wall fping) $(cpu edgeprobe) $(cpu fping) $ep_replies")
done
echo
python3 - "${verdicts[@]}" <<'PY'
import sys
worst_wall = worst_cpu = 0
lost = []
for row in sys.argv[1:]:
    n, ew, fw, ec, fc, replies = row.split()
    worst_wall = max(worst_wall, float(ew) / max(float(fw), 1e-9))
    worst_cpu = max(worst_cpu, float(ec) / max(float(fc), 1e-9))
    if int(replies) != int(n):
        lost.append(f"{int(n) - int(replies)} of {n}")
met = worst_wall <= 1 and worst_cpu <= 1 and not lost
print(f"**Verdict: {'met' if met else 'not met'}.** Worst case: wall {worst_wall:.2f}x and CPU {worst_cpu:.2f}x fping's; "
      + (f"replies missing: {', '.join(lost)}." if lost else "every reply counted."))
PY
echo

# instructions NAME CMD...: the user-space instructions CMD runs, in all
# its threads and child processes (fping's shell loop), summed from
# callgrind's "Collected" lines.
instructions() {
    local name=$1
    shift
    valgrind --tool=callgrind --trace-children=yes --callgrind-out-file=/dev/null \
        "$@" >"$work/$name.out" 2>"$work/$name.vg" || true
    python3 -c 'import re, sys
print(sum(int(m) for m in re.findall(r"Collected : (\d+)", open(sys.argv[1]).read())))' "$work/$name.vg"
}
# Valgrind will not run a program with file capabilities, as Debian's
# fping has (cap_net_raw); a copy has none, and root needs none.
cp "$(command -v fping)" "$work/fping"
echo "### Instructions per sweep"
echo
echo "The same sweeps under \`valgrind --tool=callgrind\` ($(valgrind --version)), which counts the instructions each tool runs in user space: a figure that stays put from run to run, where times wander with the machine's load. Kernel work (sockets, loopback delivery) is not counted. Valgrind runs a program about fifty times slower, so both wait up to 10 s for each reply here; the replies column shows that every echo was still answered."
echo
echo "| targets | edgeprobe instructions | fping instructions | **ratio** | edgeprobe replies |"
echo "|---:|---:|---:|---:|---:|"
for n in "${sizes[@]}"; do
    lists "$n"
    ep=$(instructions ep-ir "$bin" probe --targets "$work/sheet.csv" --sheet-max-rows $((n + 1)) --count 1 --timeout 10000 \
        --rate 0 --no-trace --json)
    fp=$(instructions fp-ir sh -c 'for f in "$@"; do "$0" -c1 -i0 -t10000 -q -f "$f" || true; done' \
        "$work/fping" "$work"/chunk.*)
    rm -f "$work"/chunk.*
    replies=$(python3 -c 'import json, sys
print(sum(1 for r in json.load(open(sys.argv[1])) if r["received"] > 0))' "$work/ep-ir.out" 2>/dev/null || echo "unreadable")
    echo "| $n | $(commas "$ep") | $(commas "$fp") | **$(ratio "$ep" "$fp")** | $replies |"
done
echo

echo "## 2. Paced sweep: 10,000 targets at 1,000 packets/s"
echo
echo "Goal: within 2 % of the set rate, and no bursts."
echo
echo "The gaps between echo requests as tcpdump sees them on lo. edgeprobe \`--rate 1000\` against \`fping -i1\` (its closest setting: 1 ms between packets). A burst is a gap under half the set gap (0.5 ms)."
echo
addresses 10000 >"$work/list.txt"
{ echo ip; cat "$work/list.txt"; } >"$work/sheet.csv"
gaps() { # gaps NAME CMD...: echo requests on lo while CMD runs
    local name=$1
    shift
    tcpdump -i lo -n -tt -l 'icmp[icmptype] == icmp-echo' >"$work/$name.pcap.txt" 2>/dev/null &
    local dump=$!
    sleep 1
    "$@" >/dev/null 2>&1 || true
    sleep 1
    kill "$dump"
    wait "$dump" 2>/dev/null || true
    python3 - "$work/$name.pcap.txt" "$name" <<'PY'
import sys
ts = [float(line.split()[0]) for line in open(sys.argv[1]) if line[:1].isdigit()]
gaps = sorted((b - a) * 1000 for a, b in zip(ts, ts[1:]))
if len(gaps) < 2:
    print(f"| {sys.argv[2]} | {len(ts)} | too few packets seen | | | | | | |")
    sys.exit()
rate = (len(ts) - 1) / (ts[-1] - ts[0])
q = lambda p: gaps[min(len(gaps) - 1, int(p * len(gaps)))]
bursts = sum(1 for g in gaps if g < 0.5)
print(f"| {sys.argv[2]} | {len(ts)} | {rate:.1f} | {(rate / 1000 - 1) * 100:+.1f} % | {q(0.01):.3f} | {q(0.5):.3f} | {q(0.99):.3f} | {gaps[-1]:.3f} | {bursts} |")
PY
}
echo "| tool | packets | rate pps | off the set rate | gap p1 ms | p50 ms | p99 ms | max ms | gaps < 0.5 ms |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
gaps edgeprobe "$bin" probe --targets "$work/sheet.csv" --count 1 --timeout 500 --rate 1000 --no-trace | tee "$work/paced.row"
gaps fping fping -c1 -i1 -t500 -q -f "$work/list.txt"
echo
python3 - "$work/paced.row" <<'PY'
import sys
cells = [c.strip() for c in open(sys.argv[1]).read().split("|")[1:-1]]
try:
    off = abs(float(cells[3].split()[0]))
    bursts = int(cells[8])
except (IndexError, ValueError):
    print("**Verdict: not measured** (too few packets seen).")
    sys.exit()
met = off <= 2 and bursts == 0
print(f"**Verdict: {'met' if met else 'not met'}.** edgeprobe is {off:.1f} % off the set rate, with {bursts} gaps under half the set gap.")
PY
