#!/usr/bin/env bash
# One command to see edgeprobe work: build it, create a small closet
# network in namespaces (scripts/lab.sh: probe -> r1 -> r2 -> hosts, one
# silent host, one unrouted net, all in 198.18.0.0/15 and 2001:db8::/32),
# probe every host there, and print the classic `traceroute -I -n` of the
# live host next to it. Everything is torn down at the end.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/deps.sh
require_root scripts/demo.sh "it builds network namespaces and opens raw sockets"
ensure_packages iproute2 traceroute iputils-ping nftables
require_cargo

cargo build --release --locked
bin=$PWD/target/release/edgeprobe
lab=demo

trap 'scripts/lab.sh down "$lab"' EXIT
scripts/lab.sh up "$lab"

echo
echo "== edgeprobe probe, run inside the lab's probe host"
ip netns exec "$lab-probe" "$bin" probe \
    198.19.3.10 198.19.3.11 198.19.3.20 198.19.200.1 \
    2001:db8:3::10 2001:db8:3::20 2001:db8:c8::1 || true

echo
echo "== the same live host with the classic tool: traceroute -I -n 198.19.3.10"
ip netns exec "$lab-probe" traceroute -I -n -q 1 -w 1 -m 6 198.19.3.10
