#!/usr/bin/env bash
# Traces behind routers that ration their ICMP answers: edgeprobe against
# traceroute, mtr and scamper, all measured in the same run on the
# namespace lab of scripts/lab.sh (named `bt`), whose routers keep the
# kernel's default ICMP rate limits and whose r2 also sends at most one
# ICMP error a second (nftables). Prints Markdown for BENCHMARKS.md,
# asserts nothing.
#
# 200 hosts three hops away (probe -> r1 -> r2 -> host): 180 answer
# (198.19.4.1-180, on h1) and 20 are silent (198.19.5.1-20, dropped by the
# silent host). Every packet goes to the lab's namespaces only.
#
# 1. One shot, each tool once over the 200 hosts (ICMP, one probe per hop,
#    1 s wait, at most 8 hops):
#      edgeprobe   probe --count 1 --timeout 1000 --max-hops 8 --json
#                  (default rate 100/s and --patience 10s)
#      traceroute  traceroute -I -n -q 1 -w 1 -m 8 HOST, host after host
#      mtr         mtr --report -c1 -n --gracetime 1 -m 8 HOST, host after host
#      scamper     scamper -p 100 -c "trace -P icmp-paris -q 1 -w 1 -m 8",
#                  all hosts in one run (it traces many at once)
#    Per tool: hosts whose every router hop is known, time, and the ICMP
#    errors each router was asked for, from the router's /proc/net/snmp
#    (sent plus held back by the kernel) and r2's nftables drop counter.
# 2. The monitor, `edgeprobe run --interval 10s --trace-every 120s`, for
#    BENCH_CYCLES trace cycles (3): full paths and causes at the end of the
#    first cycle, path-change events over all of them, and what r1 was
#    asked per cycle against one trace per target.
#
#   bench/trace.sh        as root; EDGEPROBE_BIN=PATH skips the cargo build
#                         (about 15 minutes, most of it mtr's and the monitor's)
# Markdown goes to stdout, progress to stderr.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup bench/trace.sh "the lab needs network namespaces, the tools raw sockets" traceroute mtr-tiny scamper nftables time curl python3
[[ -x $bin ]] || { echo "bench/trace.sh: no edgeprobe binary at $bin" >&2; exit 2; }
cycles=${BENCH_CYCLES:-3}

lab=bt
P=$lab-probe
R1=198.18.1.1
R2=198.18.2.2
timeout_s=1
max_hops=8
interval_s=10
cycle_s=120
work=$(mktemp -d)
monitor_pid=
cleanup() {
    [[ -n $monitor_pid ]] && kill "$monitor_pid" 2>/dev/null || true
    scripts/lab.sh down "$lab" >&2 || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

answering=() silent=()
for i in $(seq 1 180); do answering+=("198.19.4.$i"); done
for i in $(seq 1 20); do silent+=("198.19.5.$i"); done
hosts=("${answering[@]}" "${silent[@]}")
n=${#hosts[@]}
printf '%s\n' "${hosts[@]}" >"$work/hosts.txt"
{ echo ip; cat "$work/hosts.txt"; } >"$work/sheet.csv"

echo "bench/trace.sh: lab $lab up" >&2
scripts/lab.sh up "$lab" >&2

# asked ROUTER: ICMP errors the router was asked for so far.
asked() {
    ip netns exec "$lab-$1" awk '/^Icmp:/ { if (!h) { for (i = 1; i <= NF; i++) name[i] = $i; h = 1 }
        else for (i = 1; i <= NF; i++) v[name[i]] = $i }
        END { print v["OutTimeExcds"] + v["OutDestUnreachs"] + v["OutRateLimitHost"] + v["OutRateLimitGlobal"] }' /proc/net/snmp
}
# dropped: the errors r2's nftables limit dropped so far.
dropped() {
    ip netns exec "$lab-r2" nft list table inet lab_icmp_limit |
        awk '/counter packets/ { for (i = 1; i <= NF; i++) if ($i == "packets") s += $(i + 1) } END { print s + 0 }'
}
# Let the routers' rations refill between tools (Linux: 6 s for a burst of
# 6; nftables: 5 s), so that no tool pays for the one before.
rest() { sleep 8; }

# Warm-up, not timed: r2 and h1 learn each other's MAC addresses.
ip netns exec "$P" "$bin" probe --targets "$work/sheet.csv" --count 1 --timeout 200 \
    --rate 0 --no-trace >/dev/null 2>&1 || true
rest

# measure NAME CMD...: wall seconds and what the routers were asked.
measure() {
    local name=$1 r1 r2 drop start end
    shift
    echo "bench/trace.sh: $name" >&2
    r1=$(asked r1) r2=$(asked r2) drop=$(dropped)
    start=$(date +%s.%N)
    "$@" >"$work/$name.out" 2>"$work/$name.err" || true
    end=$(date +%s.%N)
    echo "$(python3 -c "print(f'{$end - $start:.1f}')") $(($(asked r1) - r1)) $(($(asked r2) - r2)) $(($(dropped) - drop))" >"$work/$name.cost"
    rest
}

measure edgeprobe ip netns exec "$P" "$bin" probe --targets "$work/sheet.csv" --count 1 \
    --timeout $((timeout_s * 1000)) --max-hops "$max_hops" --json
measure traceroute ip netns exec "$P" sh -c 'while read -r h; do
        echo "== $h"; traceroute -I -n -q 1 -w "$1" -m "$2" "$h" || true
    done <"$3"' sh "$timeout_s" "$max_hops" "$work/hosts.txt"
measure mtr ip netns exec "$P" sh -c 'while read -r h; do
        echo "== $h"; mtr --report -c1 -n --gracetime "$1" -m "$2" "$h" || true
    done <"$3"' sh "$timeout_s" "$max_hops" "$work/hosts.txt"
measure scamper ip netns exec "$P" scamper -O text -p 100 \
    -c "trace -P icmp-paris -q 1 -w $timeout_s -m $max_hops" -f "$work/hosts.txt"

# complete TOOL: "complete measured" - hosts whose every router hop is
# known (r1 and r2; a live host also answering at hop 3), and of those, the
# ones to which r2, the router limited hardest, answered in this run
# (edgeprobe infers the hops it copies from the paths that share them).
complete() {
    python3 - "$1" "$work/$1.out" "$R1" "$R2" <<'PY'
import json, re, sys
tool, path, r1, r2 = sys.argv[1:]
traces = {}  # target -> {ttl: (addr, inferred)}
if tool == "edgeprobe":
    for r in json.load(open(path)):
        traces[r["addr"]] = {h["ttl"]: (h["addr"], h.get("inferred", False)) for h in r["hops"] if h.get("addr")}
else:
    host = None
    for line in open(path):
        if tool == "scamper" and line.startswith("traceroute from"):
            host = line.split()[-1]
            traces[host] = {}
        elif line.startswith("== "):
            host = line[3:].strip()
            traces[host] = {}
        elif tool in ("traceroute", "scamper"):
            m = re.match(r"\s*(\d+)\s+(\d[\d.]*)\s", line)
            if m and host:
                traces[host][int(m[1])] = (m[2], False)
        else:  # mtr: "  3.|-- 198.19.4.1   0.0%   1 ..."
            m = re.match(r"\s*(\d+)\.\|--\s+(\S+)\s+([\d.]+)%?", line)
            if m and m[2] != "???" and float(m[3]) < 100:
                traces[host][int(m[1])] = (m[2], False)
def done(t, h, measured):
    ok = [(1, r1), (2, r2)] + ([(3, t)] if t.startswith("198.19.4.") else [])
    known = all(h.get(ttl, (None,))[0] == a for ttl, a in ok)
    return known and not (measured and h[2][1])
print(sum(done(t, h, False) for t, h in traces.items()), sum(done(t, h, True) for t, h in traces.items()))
PY
}

ratio() { python3 -c 'import sys; a, b = map(float, sys.argv[1:]); print("n/a" if b <= 0 else f"{a / b:.2f}" if a / b >= 0.1 else f"{a / b:.3f}")' "$1" "$2"; }

echo "## 3. Traces behind routers that ration their ICMP answers"
echo
echo "$n hosts behind two routers (probe → r1 → r2 → host) in a namespace lab, $((n - 180)) of"
echo "them silent. Every router keeps the kernel's ICMP limits (one error a"
echo "second per destination after a burst of 6); r2 also sends at most one a"
echo "second in all (nftables \`limit rate over 1/second burst 5\`). Every tool:"
echo "ICMP, one probe per hop, ${timeout_s} s wait, at most $max_hops hops; edgeprobe also pings"
echo "each host once. Complete: r1 and r2 known at hops 1 and 2 (and the host at 3"
echo "when it answers); r2 measured: r2 answered that host's trace in this run"
echo "(not inferred; r1 is copied from the first trace of the subnet). Asked: ICMP"
echo "errors the router was asked for (\`/proc/net/snmp\`: sent and held back);"
echo "dropped: sent by r2 and dropped by its 1/s limit. Machine: $(nproc) cores, $(uname -r)."
echo
echo "| tool | command | complete | r2 measured | wall s | r1 asked | r2 asked | r2 dropped |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for tool in edgeprobe traceroute mtr scamper; do
    case $tool in
        edgeprobe) cmd="\`probe --count 1 --timeout $((timeout_s * 1000)) --max-hops $max_hops\` (patience 10 s), one run" ;;
        traceroute) cmd="\`traceroute -I -n -q 1 -w $timeout_s -m $max_hops\` × $n" ;;
        mtr) cmd="\`mtr --report -c1 -n --gracetime $timeout_s -m $max_hops\` × $n" ;;
        scamper) cmd="\`scamper -p 100 -c 'trace -P icmp-paris -q 1 -w $timeout_s -m $max_hops'\`, one run" ;;
    esac
    read -r full measured < <(complete "$tool")
    read -r wall r1 r2 drop <"$work/$tool.cost"
    echo "| $tool | $cmd | $full/$n | $measured/$n | $wall | $r1 | $r2 | $drop |"
    eval "${tool}_full=$full ${tool}_wall=$wall ${tool}_r1=$r1"
done
echo
echo "- complete, edgeprobe: $(python3 -c "print(f'{100 * $edgeprobe_full / $n:.1f} %')") (goal ≥ 95 %)"
echo "- r1 asked, edgeprobe / traceroute: $(ratio "$edgeprobe_r1" "$traceroute_r1") (goal ≤ 0.10: one trace per target asks r1 once each)"
echo "- wall, edgeprobe / traceroute: $(ratio "$edgeprobe_wall" "$traceroute_wall"); edgeprobe / scamper: $(ratio "$edgeprobe_wall" "$scamper_wall")"
echo
python3 - "$edgeprobe_full" "$n" "$edgeprobe_r1" "$traceroute_r1" <<'PY'
import sys
full, n, r1, r1_peer = map(int, sys.argv[1:])
met = full * 100 >= n * 95 and r1_peer > 0 and r1 * 10 <= r1_peer
print(f"**Verdict: {'met' if met else 'not met'}.** One shot: {100 * full / n:.1f} % complete paths (goal ≥ 95 %),"
      f" r1 asked {r1 / max(r1_peer, 1):.3f}x of one trace per target (goal ≤ 0.10x); r2 is measured as far as its ration allows (the floor below).")
PY
echo
echo "The physical floor: r2 reveals itself to at most about one probe a"
echo "second, so no tool can *measure* r2 on the way to $n hosts in less than"
echo "about $n s; the burst adds a handful. A one-shot run that wants every hop"
echo "answered for every host must last that long. edgeprobe waits for r2 up to"
echo "\`--patience\` (10 s) and fills the rest from the paths that share the hop"
echo "(Doubletree's stop set, and the host's /24), marked \`inferred\`, so its"
echo "\"r2 measured\" figure is what 10 s of r2's ration buys."
echo

# 2. The monitor over a few trace cycles.
echo "bench/trace.sh: edgeprobe run for $cycles cycles of ${cycle_s} s" >&2
port=18931
ip netns exec "$P" "$bin" run --targets "$work/sheet.csv" --state-dir "$work/state" \
    --listen 127.0.0.1:$port --interval ${interval_s}s --trace-every ${cycle_s}s --count 1 \
    >"$work/run.log" 2>&1 &
monitor_pid=$!
api() { ip netns exec "$P" curl -sf "http://127.0.0.1:$port$1"; }
r1_start=$(asked r1)
sleep "$cycle_s"
api "/api/v1/status?page_size=500" >"$work/cycle1.json"
r1_cycle1=$(($(asked r1) - r1_start))
r1_mid=$(asked r1)
sleep $(((cycles - 1) * cycle_s))
r1_later=$(($(asked r1) - r1_mid))
api "/api/v1/status?page_size=500" >"$work/last.json"
for h in "${hosts[@]}"; do api "/api/v1/targets/$h"; echo; done >"$work/targets.jsonl"
kill "$monitor_pid"; wait "$monitor_pid" 2>/dev/null || true; monitor_pid=

python3 - "$work" "$R1" "$R2" "$cycles" "$cycle_s" "$r1_cycle1" "$r1_later" <<'PY'
import json, sys
work, r1, r2, cycles, cycle_s, r1_first, r1_later = sys.argv[1:]
cycles, cycle_s, r1_first, r1_later = int(cycles), int(cycle_s), int(r1_first), int(r1_later)
def paths(name):
    ts = json.load(open(f"{work}/{name}.json"))["targets"]
    live = [t for t in ts if t["addr"].startswith("198.19.4.")]
    silent = [t for t in ts if t["addr"].startswith("198.19.5.")]
    full = sum([h["addr"] for h in t["hops"]] == [r1, r2, t["addr"]] for t in live)
    blamed = sum(f"stops after {r2} (hop 2" in (t.get("cause") or "") for t in silent)
    return live, silent, full, blamed
live, silent, full, blamed = paths("cycle1")
_, _, full_last, blamed_last = paths("last")
events = [e for line in open(f"{work}/targets.jsonl") if line.strip() for e in json.loads(line)["events"] if e["kind"] == "path"]
per_cycle_later = r1_later / max(cycles - 1, 1)
n = len(live) + len(silent)
print(f"### The monitor: `edgeprobe run --interval 10s --trace-every {cycle_s}s --count 1`, {cycles} cycles")
print()
print("| figure | after the first cycle | after the last | goal |")
print("|---|---:|---:|---|")
print(f"| live hosts with their full path r1 → r2 → host | {full}/{len(live)} ({100 * full / len(live):.1f} %) | {full_last}/{len(live)} | ≥ 99 % within one cycle |")
print(f"| silent hosts whose cause names r2 | {blamed}/{len(silent)} | {blamed_last}/{len(silent)} | 100 % |")
print(f"| path-change events | | {len(events)} in {cycles * cycle_s} s | none when steady |")
print(f"| r1 asked per cycle (one trace per target: {n}) | {r1_first} ({r1_first / n:.3f}x) | {per_cycle_later:.0f} ({per_cycle_later / n:.3f}x) | ≤ 0.10x |")
print()
met = full * 100 >= 99 * len(live) and blamed == len(silent) and not events and max(r1_first, per_cycle_later) <= 0.1 * n
print(f"**Verdict: {'met' if met else 'not met'}.** The monitor: every goal of the table within one cycle, and kept for {cycles} cycles.")
print()
print(f"The first cycle includes start-up (first traces, a scout per subnet); later cycles ask r1")
print(f"once per subnet, plus the traces asked again. A steady hour is {3600 // cycle_s} such cycles at this")
print(f"scale; `BENCH_CYCLES` runs more. The default cycle is 10 minutes, whose 600 s leave r2's")
print(f"ration (about one answer a second) room for {n} hosts three times over.")
PY
