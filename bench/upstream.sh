#!/usr/bin/env bash
# The upstream sync's speed, against nx-27017 (the test MongoDB) on
# loopback, with loopback targets only:
#  1. insert throughput of the sync's own MongoDB adapter: batches of 500
#     documents (what the sync sends) next to one document per insert;
#  2. a backlog of 100,000 results: how long the monitor took to produce it
#     (1,000 targets, 100 rounds, with the server down) next to how long the
#     board took to drain it once the server was back.
# Prints figures; asserts nothing.
#
#   bench/upstream.sh            as root (the monitor opens raw sockets)
set -Eeuo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
require_root bench/upstream.sh "the monitor opens raw sockets"
ensure_packages curl python3 python3-venv
. scripts/lib/nx27017.sh
ensure_nx27017
require_cargo
cargo build --release --locked -q --bin edgeprobe --example sync_throughput
bin=$PWD/target/release/edgeprobe
work=$(mktemp -d "$PWD/target/bench-upstream.XXXXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
uri=mongodb://127.0.0.1:$port
mon= nx=
cleanup() {
    [[ -n $mon ]] && kill "$mon" 2>/dev/null
    [[ -n $nx ]] && kill "$nx" 2>/dev/null
    wait 2>/dev/null; rm -rf "$work"
}
trap cleanup EXIT

start_nx() {
    nx-27017 --db "$work/mongo.db" --host 127.0.0.1 -p "$port" \
        --pid-file "$work/nx.pid" --log-file "$work/nx.log" >/dev/null 2>&1 &
    nx=$!
    until python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; do sleep 0.1; done
}

status() { curl -s "http://127.0.0.1:$dport/api/v1/status"; }
field() { python3 -c "import json,sys; v=json.load(sys.stdin); print($1)"; }

start_monitor() { # start_monitor INTERVAL
    "$bin" run --board-id bench --targets "$work/t.csv" --state-dir "$work/state" \
        --listen 127.0.0.1:0 --interval "$1" --count 1 --timeout 200ms --rate 0 \
        --trace-every 1h --mongo-uri "$uri" 2>"$work/log" &
    mon=$!
    dport=
    until [[ -n $dport ]]; do
        sleep 0.2
        dport=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/log" | head -1 | sed 's/.*://') || true
    done
}

echo "machine: $(nproc) cores, $(uname -m), $(. /etc/os-release; echo "$PRETTY_NAME"); server: nx-27017 $NX27017_VERSION (SQLite)"

start_nx
echo "== 1. insert throughput of the sync's MongoDB adapter"
target/release/examples/sync_throughput "$uri"
kill "$nx"; wait "$nx" 2>/dev/null || true; nx=
rm -f "$work"/mongo.db*

echo "== 2. a backlog of 100,000 results"
python3 - >"$work/t.csv" <<'PY'
print("ip")
for i in range(1000):
    print(f"127.3.{i // 250}.{i % 250 + 1}")
PY
# The server is down (nothing listens on the port yet): rows pile up.
t0=$(date +%s.%N)
start_monitor 1s
while (( $(status | field 'v["last_round"]["round"] if v["last_round"] else 0') < 100 )); do sleep 0.5; done
t1=$(date +%s.%N)
kill -TERM "$mon"; wait "$mon" 2>/dev/null || true; mon=
produced=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')

start_nx
# A long interval: the restart adds one round, then only the drain runs.
start_monitor 1h
backlog0=$(status | field 'v["store"]["backlog"]')
t2=$(date +%s.%N)
while (( $(status | field 'v["store"]["backlog"]') > 0 )); do sleep 0.2; done
t3=$(date +%s.%N)
drained=$(awk -v a="$t2" -v b="$t3" 'BEGIN{printf "%.1f", b-a}')
docs=$(python3 - "$uri" <<'PY'
import sys
from pymongo import MongoClient
db = MongoClient(sys.argv[1])["edgeprobe"]
print(db.results.count_documents({"board": "bench"}))
PY
)
echo "produced: 100 rounds x 1,000 targets in ${produced} s (server down, outbox growing)"
echo "drained:  ${backlog0} outbox rows in ${drained} s = $(awk -v n="$backlog0" -v t="$drained" 'BEGIN{printf "%.0f", n/t}') rows/s; results upstream: $docs"
echo "ratio drain / produce: $(awk -v a="$drained" -v b="$produced" 'BEGIN{printf "%.2f", a/b}')x"
