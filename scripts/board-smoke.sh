#!/usr/bin/env bash
# Smoke test of a cross-built binary under qemu-user: version,
# a sheet check, a one-shot probe, and the monitor on loopback targets
# serving /healthz, / and /api/v1/status with those targets Working.
# Prints the binary's size (failing at 16 MiB or more) and its start-up
# times under qemu.
# usage: scripts/board-smoke.sh [aarch64|armv7] [BINARY]
#   (as root, after scripts/cross-build.sh of the same target)
set -Eeuo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/deps.sh
. scripts/lib/targets.sh
require_root scripts/board-smoke.sh "the probe opens raw ICMP sockets"
select_target "${1:-aarch64}"
BIN=${2:-$BIN}
ensure_packages qemu-user curl python3 file

# -L /: the libraries of Debian's multiarch libc6:$DEB_ARCH (which the
# cross toolchain pulled in). Not /usr/$GCC_PREFIX: its ld.so comes from
# a different glibc build than the libc.so.6 it would then load, and the
# first thread a program starts spins forever.
qemu() { "$QEMU" -L / "$@"; }
ms() { date +%s%3N; }

work=$(mktemp -d)
monitor_pid=
cleanup() {
    [[ -n $monitor_pid ]] && kill "$monitor_pid" 2>/dev/null && wait "$monitor_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "board-smoke: failed at line $LINENO" >&2' ERR

echo "== $TARGET_NAME smoke test under $("$QEMU" --version | head -1)"
check_binary "$BIN"

t0=$(ms)
version=$(qemu "$BIN" --version)
echo "version: $version (start to exit under qemu: $(($(ms) - t0)) ms)"

sheet=tests/fixtures/sites.xlsx
if [[ -f $sheet ]]; then
    # Exit 1 is "problems, but targets": the fixture has a bad row on purpose.
    qemu "$BIN" check "$sheet" >"$work/check.txt" || [[ $? -eq 1 ]]
    grep -q 'targets' "$work/check.txt"
    echo "check: $(head -1 "$work/check.txt")"
fi

qemu "$BIN" probe 127.0.0.1 --count 1 --timeout 1000 | tee "$work/probe.txt"
grep -q 'Working' "$work/probe.txt"

printf 'IP,Name\n127.0.0.1,loopback\n127.0.0.2,second loopback\n::1,IPv6 loopback\n' >"$work/targets.csv"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
t0=$(ms)
# Not through qemu(): $! would be a subshell that SIGTERM does not reach.
"$QEMU" -L / "$BIN" run --listen "127.0.0.1:$port" --targets "$work/targets.csv" \
    --state-dir "$work/state" --interval 2s --count 1 --timeout 500ms \
    2>"$work/run.log" &
monitor_pid=$!

healthy_ms=
for _ in $(seq 1 600); do
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
        healthy_ms=$(($(ms) - t0))
        break
    fi
    kill -0 "$monitor_pid" 2>/dev/null || { cat "$work/run.log"; echo "the monitor exited" >&2; exit 1; }
    sleep 0.1
done
[[ -n $healthy_ms ]] || { cat "$work/run.log"; echo "no /healthz after 60 s" >&2; exit 1; }
echo "monitor: /healthz answered $healthy_ms ms after start under qemu"

working=
for _ in $(seq 1 300); do
    if curl -fsS "http://127.0.0.1:$port/api/v1/status" -o "$work/status.json" 2>/dev/null &&
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["counts"]["working"] == 3 else 1)' "$work/status.json"; then
        working=$(($(ms) - t0))
        break
    fi
    sleep 0.2
done
[[ -n $working ]] || { cat "$work/run.log" "$work/status.json"; echo "targets not Working" >&2; exit 1; }
echo "monitor: all 3 loopback targets Working $working ms after start"
curl -fsS "http://127.0.0.1:$port/" | grep -q '127.0.0.2'
echo "dashboard: / lists the targets"

kill -TERM "$monitor_pid"
wait "$monitor_pid" || { cat "$work/run.log"; echo "the monitor exited with $?" >&2; exit 1; }
monitor_pid=
grep -q 'stopped; the last round is saved' "$work/run.log"
echo "monitor: stopped cleanly on SIGTERM"
echo "== $TARGET_NAME smoke test passed"
