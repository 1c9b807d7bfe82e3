#!/usr/bin/env bash
# `systemd-analyze verify` on the board's unit (board/edgeprobe.service).
# systemd checks that ExecStart's program exists, so the copy checked here
# runs the binary given (default: the test build) instead of /usr/bin's.
# Any complaint fails.
# usage: scripts/verify-unit.sh [BINARY]
set -Eeuo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/deps.sh
ensure_packages systemd

BIN=$(realpath "${1:-target/debug/edgeprobe}")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|/usr/bin/edgeprobe|$BIN|" board/edgeprobe.service >"$dir/edgeprobe.service"
out=$(systemd-analyze verify "$dir/edgeprobe.service" 2>&1) || { echo "$out" >&2; exit 1; }
if [[ -n $out ]]; then
    echo "systemd-analyze verify complains about board/edgeprobe.service:" >&2
    echo "$out" >&2
    exit 1
fi
echo "board/edgeprobe.service: systemd-analyze verify is happy"
