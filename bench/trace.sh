#!/usr/bin/env bash
# Traces: edgeprobe against the original system's method, all measured in
# the same run on a namespace lab; prints figures and ratios (Markdown, for
# BENCHMARKS.md), asserts nothing.
#
# 200 hosts three hops away (probe -> r1 -> r2 -> host), 20 of them
# silent: the lab of scripts/lab.sh (named `bt`) with 180 extra addresses
# on h1 and 20 on the silent host, whose nft rules drop all input. Every
# packet goes to the lab's namespaces only (198.18.0.0/15).
#
#   edgeprobe   one run over the whole sheet:
#               probe --count 1 --timeout 1000 --max-hops 8 --rate 0 --json
#   traceroute  `traceroute -I -n -q 1 -w 1 -m 8 HOST`, once per host, one
#               after another (the original system's method)
#   mtr         `mtr --report -c1 -n --gracetime 1 -m 8 HOST`, once per
#               host, one after another
#
# Total wall time, CPU time, peak RSS, and how many hosts each tool reached
# and traced through r1 and r2, so that the comparison is seen to be fair.
# Goal: the whole set in about one timeout.
#
#   bench/trace.sh        as root; EDGEPROBE_BIN=PATH skips the cargo build
#                         (about 6 minutes, nearly all of it mtr's)
# Markdown goes to stdout, progress to stderr.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
require_root bench/trace.sh "the lab needs network namespaces, the tools raw sockets"
ensure_packages traceroute mtr-tiny nftables time python3 >&2
if [[ -z ${EDGEPROBE_BIN:-} ]]; then
    require_cargo
    cargo build --release --locked -q
fi
bin=${EDGEPROBE_BIN:-$PWD/target/release/edgeprobe}
[[ -x $bin ]] || { echo "bench/trace.sh: no edgeprobe binary at $bin" >&2; exit 2; }

lab=bt
P=$lab-probe
R1=198.18.1.1
R2=198.18.2.2
timeout_s=1
max_hops=8
work=$(mktemp -d)
cleanup() {
    scripts/lab.sh down "$lab" >&2 || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Targets, all in h1's LAN 198.19.3.0/24 (the lab uses .1, .10, .11, .20):
# .40-.219 answer (on h1), .230-.249 are silent (on the silent host).
answering=() silent=()
for i in $(seq 40 219); do answering+=("198.19.3.$i"); done
for i in $(seq 230 249); do silent+=("198.19.3.$i"); done
hosts=("${answering[@]}" "${silent[@]}")
printf '%s\n' "${hosts[@]}" >"$work/hosts.txt"
{ echo ip; cat "$work/hosts.txt"; } >"$work/sheet.csv"

echo "bench/trace.sh: lab $lab up, ${#answering[@]} answering + ${#silent[@]} silent addresses" >&2
scripts/lab.sh up "$lab" >&2
printf 'address add %s/24 dev eth0\n' "${answering[@]}" | ip -n "$lab-h1" -batch -
printf 'address add %s/24 dev eth0\n' "${silent[@]}" | ip -n "$lab-silent" -batch -

# Preflight: the routers answer with time-exceeded, one extra address
# answers, one silent address does not. Not a figure: a broken lab would
# make every figure meaningless.
preflight() { # preflight HOST LAST-HOP-PATTERN
    local out
    out=$(ip netns exec "$P" traceroute -I -n -q 1 -w 1 -m 4 "$1" 2>&1) || true
    if ! grep -Eq "^ 1  $R1 " <<<"$out" || ! grep -Eq "^ 2  $R2 " <<<"$out" \
        || ! grep -Eq "$2" <<<"$out"; then
        printf 'bench/trace.sh: the lab does not trace as expected to %s:\n%s\n' "$1" "$out" >&2
        exit 1
    fi
}
preflight "${answering[0]}" "^ 3  ${answering[0]//./\\.} "
preflight "${silent[0]}" '^ 3  \*'
# Warm-up, not timed: r2 learns the MAC addresses of all 200 targets, so
# that whichever tool runs first does not pay for ARP.
ip netns exec "$P" "$bin" probe --targets "$work/sheet.csv" --count 1 --timeout 200 \
    --rate 0 --no-trace >/dev/null 2>&1 || true

# run NAME CMD...: wall s, cpu s, peak RSS KiB into $work/NAME.time
run() {
    local name=$1
    shift
    /usr/bin/time -f '%e %U %S %M' -o "$work/$name.time" "$@"
}
# The figures are the last line: GNU time puts "Command exited with
# non-zero status" first when the tool exits non-zero (edgeprobe does
# when a target is not Working).
field() { tail -1 "$work/$1.time" | awk -v f="$2" '{ if (f == "cpu") print $2 + $3; else if (f == "wall") print $1; else print $4 }'; }
# ratio A B: A / B, with three decimals when it is small
ratio() { python3 -c 'import sys; a, b = map(float, sys.argv[1:]); print("n/a" if b <= 0 else f"{a / b:.2f}" if a / b >= 0.1 else f"{a / b:.3f}")' "$1" "$2"; }
# faster A B: "B / A× as long", how many times A's figure fits in B's
faster() { python3 -c 'import sys; a, b = map(float, sys.argv[1:]); print(f"{b / a:.0f}× as long" if a > 0 else "n/a")' "$1" "$2"; }

echo "bench/trace.sh: edgeprobe" >&2
run edgeprobe ip netns exec "$P" "$bin" probe --targets "$work/sheet.csv" --count 1 \
    --timeout $((timeout_s * 1000)) --max-hops "$max_hops" --rate 0 --json \
    >"$work/edgeprobe.out" 2>"$work/edgeprobe.err" || true
echo "bench/trace.sh: traceroute, ${#hosts[@]} hosts one after another" >&2
run traceroute ip netns exec "$P" sh -c 'while read -r h; do
        echo "== $h"; traceroute -I -n -q 1 -w "$1" -m "$2" "$h" || true
    done <"$3"' sh "$timeout_s" "$max_hops" "$work/hosts.txt" \
    >"$work/traceroute.out" 2>"$work/traceroute.err" || true
echo "bench/trace.sh: mtr, ${#hosts[@]} hosts one after another" >&2
run mtr ip netns exec "$P" sh -c 'while read -r h; do
        echo "== $h"; mtr --report -c1 -n --gracetime "$1" -m "$2" "$h" || true
    done <"$3"' sh "$timeout_s" "$max_hops" "$work/hosts.txt" \
    >"$work/mtr.out" 2>"$work/mtr.err" || true

# counts TOOL: "reached path routers" over the hosts, from TOOL's output:
# reached = the target answered; path = it answered at hop 3 behind r1 and
# r2; routers = hops 1 and 2 are r1 and r2 (silent hosts included).
counts() {
    python3 - "$1" "$work/$1.out" "$R1" "$R2" <<'PY'
import json, re, sys
tool, path, r1, r2 = sys.argv[1:]
traces = {}  # target -> {ttl: addr} of the hops that answered
if tool == "edgeprobe":
    for r in json.load(open(path)):
        traces[r["addr"]] = {h["ttl"]: h["addr"] for h in r["hops"] if h.get("addr")}
        if not r["reached"]:
            traces[r["addr"]] = {t: a for t, a in traces[r["addr"]].items() if a != r["addr"]}
else:
    host = None
    for line in open(path):
        if line.startswith("== "):
            host = line[3:].strip()
            traces[host] = {}
        elif tool == "traceroute":
            m = re.match(r"\s*(\d+)\s+(\d[\d.]*)\s", line)
            if m:
                traces[host][int(m[1])] = m[2]
        else:  # mtr: "  3.|-- 198.19.3.40   0.0%   1 ..."
            m = re.match(r"\s*(\d+)\.\|--\s+(\S+)\s+([\d.]+)%?", line)
            if m and m[2] != "???" and float(m[3]) < 100:
                traces[host][int(m[1])] = m[2]
reached = sum(1 for t, h in traces.items() if t in h.values())
full = sum(1 for t, h in traces.items() if h.get(1) == r1 and h.get(2) == r2 and h.get(3) == t)
routers = sum(1 for h in traces.values() if h.get(1) == r1 and h.get(2) == r2)
print(reached, full, routers)
PY
}

n=${#hosts[@]}
ep_wall=$(field edgeprobe wall)
echo "## 3. Traces: $n hosts three hops away"
echo
echo "Goal: the whole set in about one timeout (${timeout_s} s here)."
echo
echo "$n hosts behind two routers (probe → r1 → r2 → host) in a namespace lab,"
echo "${#silent[@]} of them silent (nftables drops all their input); every tool:"
echo "ICMP, 1 probe per hop, ${timeout_s} s wait per probe, at most $max_hops hops."
echo "edgeprobe also pings each host once (\`--count 1\`). traceroute and mtr run"
echo "once per host, one after another. Machine: $(nproc) cores, $(uname -r)."
echo
echo "| tool | command | wall s | CPU s | peak RSS KiB | reached | r1 → r2 → host | r1, r2 seen |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for tool in edgeprobe traceroute mtr; do
    case $tool in
        edgeprobe) cmd="\`probe --count 1 --timeout $((timeout_s * 1000)) --max-hops $max_hops --rate 0\`, one run" ;;
        traceroute) cmd="\`traceroute -I -n -q 1 -w $timeout_s -m $max_hops\` × $n" ;;
        mtr) cmd="\`mtr --report -c1 -n --gracetime $timeout_s -m $max_hops\` × $n" ;;
    esac
    read -r reached full routers < <(counts "$tool")
    echo "| $tool | $cmd | $(field "$tool" wall) | $(field "$tool" cpu) | $(field "$tool" rss) | $reached/$n | $full/$n | $routers/$n |"
done
echo
echo "- wall, edgeprobe / traceroute: $(ratio "$ep_wall" "$(field traceroute wall)")" \
    "(traceroute takes $(faster "$ep_wall" "$(field traceroute wall)"))"
echo "- wall, edgeprobe / mtr: $(ratio "$ep_wall" "$(field mtr wall)")" \
    "(mtr takes $(faster "$ep_wall" "$(field mtr wall)"))"
echo "- CPU, edgeprobe / traceroute: $(ratio "$(field edgeprobe cpu)" "$(field traceroute cpu)");" \
    "edgeprobe / mtr: $(ratio "$(field edgeprobe cpu)" "$(field mtr cpu)")"
echo "- edgeprobe wall / timeout: $(ratio "$ep_wall" "$timeout_s") (goal ≈ 1)"
echo
python3 - "$ep_wall" "$timeout_s" <<'PY'
import sys
wall, timeout = map(float, sys.argv[1:])
met = wall <= 1.5 * timeout
print(f"**Verdict: {'met' if met else 'not met'}.** edgeprobe traced the whole set in {wall / timeout:.2f} timeouts"
      " (counted as met up to 1.5: the last probe's timeout plus sending)." )
PY
