#!/usr/bin/env bash
# One command to see edgeprobe work: build it, create a small closet
# network in network namespaces (scripts/lab.sh: the board -> gateway r1 ->
# router r2 -> live hosts, one silent host, one unrouted net, all in
# 198.18.0.0/15 and 2001:db8::/32), and run the monitor on it. The
# dashboard is on http://127.0.0.1:8080 on this machine. Ctrl-C stops the
# monitor and removes every namespace.
#
# Environment: DEMO_PORT (8080), DEMO_INTERVAL (10s).
set -Eeuo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/deps.sh
require_root scripts/demo.sh "it builds network namespaces and opens raw sockets"
ensure_packages iproute2 traceroute iputils-ping nftables python3
require_cargo

port=${DEMO_PORT:-8080}
interval=${DEMO_INTERVAL:-10s}
cargo build --release --locked
bin=$PWD/target/release/edgeprobe
lab=demo
state=$(mktemp -d /tmp/edgeprobe-demo.XXXXXX)

cleanup() {
    scripts/lab.sh down "$lab"
    rm -rf "$state"
}
trap cleanup EXIT
scripts/lab.sh up "$lab"

# The closet's sheet: what an admin would type into a spreadsheet.
cat >"$state/targets.csv" <<'SHEET'
ip,name,group,notes
198.18.1.1,closet gateway,core,r1: the board's default gateway
198.18.2.2,distribution router,core,r2
198.19.3.10,file server,lan,live host
198.19.3.11,printer,lan,live host
2001:db8:3::10,file server (IPv6),lan,live host
198.19.3.20,badge reader,lan,drops everything: Not Working
198.19.200.1,branch office,wan,no route beyond r1: unreachable
SHEET
head -c 24 /dev/urandom | base64 >"$state/admin-token"

cat <<MSG

edgeprobe is monitoring the lab every $interval.
  dashboard:  http://127.0.0.1:$port/
  API:        http://127.0.0.1:$port/api/v1/status
  metrics:    http://127.0.0.1:$port/metrics
  admin:      curl -X POST -H "Authorization: Bearer \$(cat $state/admin-token)" http://127.0.0.1:$port/admin/probe-now
  try:        scripts/lab.sh exec $lab r2 ip link set to-h2 down    (unplug the printer; "up" plugs it back)
              scripts/lab.sh detour $lab on                         (a path change)
              curl -X POST -H "Authorization: Bearer \$(cat $state/admin-token)" http://127.0.0.1:$port/admin/locate
                                                                    (the LEDs in the header blink together for 30 s)
Ctrl-C stops it and removes the lab.

MSG
# The monitor runs inside the lab's probe namespace; its dashboard socket
# is opened here, on the host's loopback, and handed over.
scripts/lib/netns-listen.py "127.0.0.1:$port" "$lab-probe" \
    "$bin" run \
    --targets "$state/targets.csv" \
    --state-dir "$state" \
    --interval "$interval" \
    --trace-every 1m \
    --board-id demo-closet \
    --admin-token-file "$state/admin-token" || true
