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

# What SECURITY.md says of the unit: its own user, CAP_NET_RAW and nothing
# else, no way to gain more, and no writable path but the state directory.
unit=board/edgeprobe.service
for line in User=edgeprobe AmbientCapabilities=CAP_NET_RAW CapabilityBoundingSet=CAP_NET_RAW \
    NoNewPrivileges=yes ProtectSystem=strict StateDirectory=edgeprobe; do
    grep -qx "$line" "$unit" || { echo "$unit lacks $line" >&2; exit 1; }
done
if grep -Eq '^(ReadWritePaths|ReadWriteDirectories)=' "$unit"; then
    echo "$unit makes a path writable beside the state directory:" >&2
    grep -E '^(ReadWritePaths|ReadWriteDirectories)=' "$unit" >&2
    exit 1
fi
echo "board/edgeprobe.service: systemd-analyze verify is happy; user, capabilities and paths as documented"
