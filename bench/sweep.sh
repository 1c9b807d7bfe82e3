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
#   bench/sweep.sh [N...]     as root; default N: 10000 100000
set -Eeuo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
require_root bench/sweep.sh "ping needs raw sockets at these rates"
ensure_packages fping time tcpdump python3
require_cargo
cargo build --release --locked -q
bin=$PWD/target/release/edgeprobe
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sizes=("$@")
((${#sizes[@]})) || sizes=(10000 100000)

addresses() { # addresses N: N loopback addresses, one per line
    python3 -c 'import sys
n = int(sys.argv[1])
for i in range(n):
    print(f"127.{1 + i // 62500}.{i // 250 % 250}.{i % 250 + 1}")' "$1"
}

# run NAME CMD...: wall s, cpu s, peak RSS KiB into $work/NAME.time
run() {
    local name=$1
    shift
    /usr/bin/time -f '%e %U %S %M' -o "$work/$name.time" "$@"
}
# The figures are the last line: GNU time puts "Command exited with
# non-zero status" first when the tool exits non-zero (fping does when a
# target does not answer).
field() { tail -1 "$work/$1.time" | awk -v f="$2" '{ if (f == "cpu") print $2 + $3; else if (f == "wall") print $1; else print $4 }'; }
ratio() { python3 -c 'import sys; a, b = map(float, sys.argv[1:]); print(f"{a / b:.2f}" if b > 0 else "n/a")' "$1" "$2"; }

echo "machine: $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "peers: $(fping -v 2>&1 | head -1)"
echo
echo "## 1. Sweep, unpaced, one echo each"
printf '%-8s %-10s %9s %9s %10s %9s\n' targets tool wall_s cpu_s rss_kib replies
for n in "${sizes[@]}"; do
    addresses "$n" >"$work/list.txt"
    { echo ip; cat "$work/list.txt"; } >"$work/sheet.csv"
    run edgeprobe "$bin" probe --targets "$work/sheet.csv" --count 1 --timeout 500 --rate 0 \
        --no-trace --json >"$work/ep.json" 2>"$work/ep.err" || true
    ep_replies=$(python3 -c 'import json, sys
print(sum(1 for r in json.load(open(sys.argv[1])) if r["received"] > 0))' "$work/ep.json")
    # fping 5.1 stops at 65,535 hosts ("not enough sequence numbers"):
    # above that it gets the list in chunks of 50,000, one after another,
    # in one timed shell.
    split -l 50000 "$work/list.txt" "$work/chunk."
    run fping sh -c 'for f in "$@"; do fping -c1 -i0 -t500 -q -f "$f" || true; done' \
        fping "$work"/chunk.* >/dev/null 2>"$work/fp.err" || true
    rm -f "$work"/chunk.*
    fp_replies=$(grep -c ' 1/1/0%' "$work/fp.err" || true)
    printf '%-8s %-10s %9s %9s %10s %9s\n' "$n" edgeprobe "$(field edgeprobe wall)" \
        "$(field edgeprobe cpu)" "$(field edgeprobe rss)" "$ep_replies"
    printf '%-8s %-10s %9s %9s %10s %9s\n' "$n" fping "$(field fping wall)" \
        "$(field fping cpu)" "$(field fping rss)" "$fp_replies"
    printf '%-8s %-10s %9s %9s %10s\n' "$n" "ratio" "$(ratio "$(field edgeprobe wall)" "$(field fping wall)")" \
        "$(ratio "$(field edgeprobe cpu)" "$(field fping cpu)")" "$(ratio "$(field edgeprobe rss)" "$(field fping rss)")"
done

echo
echo "## 2. Paced sweep: 10000 targets at 1000 packets/s"
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
import statistics, sys
ts = [float(line.split()[0]) for line in open(sys.argv[1]) if line[:1].isdigit()]
gaps = sorted((b - a) * 1000 for a, b in zip(ts, ts[1:]))
if len(gaps) < 2:
    print(f"{sys.argv[2]:<10} too few packets seen ({len(ts)})")
    sys.exit()
rate = (len(ts) - 1) / (ts[-1] - ts[0])
q = lambda p: gaps[min(len(gaps) - 1, int(p * len(gaps)))]
bursts = sum(1 for g in gaps if g < 0.25)
print(f"{sys.argv[2]:<10} {len(ts):>7} {rate:>9.1f} {q(0.01):>8.3f} {q(0.5):>8.3f} {q(0.99):>8.3f} {gaps[-1]:>8.3f} {bursts:>7}")
PY
}
printf '%-10s %7s %9s %8s %8s %8s %8s %7s\n' tool packets rate_pps p1_ms p50_ms p99_ms max_ms "<0.25ms"
gaps edgeprobe "$bin" probe --targets "$work/sheet.csv" --count 1 --timeout 500 --rate 1000 --no-trace
gaps fping fping -c1 -i1 -t500 -q -f "$work/list.txt"
