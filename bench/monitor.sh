#!/usr/bin/env bash
# What the monitor costs on the board, measured on loopback targets
# (127.0.0.0/8 only): how long the dashboard's `/` takes to render for
# 1,000 and 10,000 targets, next to `/healthz` on the same server (the
# cost of a request that renders nothing), and how many bytes a round
# writes to the SQLite store with 1,000 targets, next to the size of the
# same results as CSV text. Prints figures; asserts nothing.
#
#   bench/monitor.sh            as root (raw sockets for the traces)
set -Eeuo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
require_root bench/monitor.sh "the monitor opens raw sockets"
ensure_packages curl
require_cargo
cargo build --release --locked -q
bin=$PWD/target/release/edgeprobe
work=$(mktemp -d "$PWD/target/bench-monitor.XXXXXX")   # on disk, not tmpfs
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

sheet() { # sheet N FILE: N loopback addresses 127.1.x.y
    python3 - "$1" >"$2" <<'PY'
import sys
n = int(sys.argv[1])
print("ip,name,group")
for i in range(n):
    print(f"127.{1 + i // 62500}.{i // 250 % 250}.{i % 250 + 1},host {i},rack {i % 40}")
PY
}

start() { # start N: run the monitor on N targets, wait for the dashboard
    local n=$1
    sheet "$n" "$work/t$n.csv"
    rm -rf "$work/state$n"
    "$bin" run --targets "$work/t$n.csv" --state-dir "$work/state$n" \
        --listen 127.0.0.1:0 --interval 10s --count 1 --timeout 500ms --rate 0 \
        2>"$work/log$n" &
    pid=$!
    for _ in $(seq 100); do
        port=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/log$n" | head -1 | sed 's/.*://') || true
        [[ -n ${port:-} ]] && break
        sleep 0.2
    done
}

round_no() { curl -s "http://127.0.0.1:$port/api/v1/status" | python3 -c 'import json,sys; r=json.load(sys.stdin)["last_round"]; print(r["round"] if r else 0)'; }
wait_round() { # wait_round N: until round N has finished
    while (( $(round_no) < $1 )); do sleep 0.5; done
}

median_ms() { # median_ms URL: median of 15 requests, in ms
    for _ in $(seq 15); do curl -s -o /dev/null -w '%{time_total}\n' "$1"; done |
        sort -n | sed -n 8p | awk '{printf "%.2f", $1 * 1000}'
}

io() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$pid/io"; }

echo "machine: $(nproc) cores, $(uname -m), $(. /etc/os-release; echo "$PRETTY_NAME")"
for n in 1000 10000; do
    start "$n"
    wait_round 2
    page=$(median_ms "http://127.0.0.1:$port/")
    health=$(median_ms "http://127.0.0.1:$port/healthz")
    size=$(curl -s "http://127.0.0.1:$port/" | wc -c)
    echo "render / with $n targets: ${page} ms median of 15 ($size bytes of HTML); /healthz ${health} ms; ratio $(awk -v a="$page" -v b="$health" 'BEGIN{printf "%.1f", a/b}')x"
    if [[ $n == 1000 ]]; then
        # Rounds 3..7 are steady state: no first-time traces, no new targets.
        wait_round 3
        w0=$(io write_bytes)
        wait_round 8
        w1=$(io write_bytes)
        csv=$(curl -s "http://127.0.0.1:$port/api/v1/status" | python3 -c '
import json, sys
v = json.load(sys.stdin)
print(sum(len(",".join(str(x) for x in [t["addr"], 8, t["last_updated"], t["status"], 1, t["received"], t["loss"], (t["rtt_ms"] or {}).get("avg"), t["gateway"]])) + 1 for t in v["targets"]))')
        per_round=$(( (w1 - w0) / 5 ))
        echo "SQLite store, $n targets: $per_round bytes written to storage per round (/proc/PID/io write_bytes, mean of 5 rounds); the same results as CSV: $csv bytes; ratio $(awk -v a="$per_round" -v b="$csv" 'BEGIN{printf "%.1f", a/b}')x"
        du -b "$work/state$n"/edgeprobe.db* | sed 's/^/  /'
    fi
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done
