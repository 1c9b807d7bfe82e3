#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine, as root (CI is root):
# installs what the tests need, then format check, lints and every test.
# Safe to run again and again.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/deps.sh
require_root scripts/test.sh "the tests build network namespaces and open raw sockets"

# Debian packages the tests call: ip netns, the classic traceroute to
# compare paths with, ping for the lab's readiness check, nft for the
# silent host, setpriv for the privilege tests, python3 to hand the
# dashboard socket into a namespace (as the demo does), chromium for the
# browser test and the README's screenshots, aiosmtpd and Alertmanager
# for the alert channel tests, nginx and curl for central behind a TLS
# proxy (the servers installed stopped: the tests start their own),
# openssl for the throwaway certificates.
ensure_packages iproute2 traceroute iputils-ping nftables util-linux procps \
    python3 python3-venv chromium fonts-dejavu-core python3-aiosmtpd openssl curl
ensure_servers_stopped prometheus-alertmanager nginx

# The test MongoDB: nx-27017, a MongoDB wire-protocol server on SQLite,
# from PyPI into a venv of its own (Debian's Python refuses global pip
# installs). Tests start their own instances on free loopback ports.
. scripts/lib/nx27017.sh
ensure_nx27017
require_cargo
for component in rustfmt clippy; do
    cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1 || rustup component add "$component"
done

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo doc (broken or private links in the module docs fail)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --lib --locked
# The builds that need no lab, the fuzz targets and the two Raspberry Pi
# builds, run in the background at the lowest CPU and I/O priority while
# the tests run: most tests wait on rounds, timers and rate-limited
# routers, and these builds take that idle CPU (at nice 19 they yield
# nearly all of it whenever a test wants it). Their output is printed, in
# order, after the tests. aarch64 is for a 64-bit OS, armv7 for 32-bit
# Raspberry Pi OS; one after the other, so a failure names its target
# (one cargo build with both is no faster, scripts/cross-build.sh).
background_builds() {
    renice -n 19 -p "$BASHPID" >/dev/null
    ionice -c 3 -p "$BASHPID" 2>/dev/null || true
    echo "== fuzz targets: build"
    ./scripts/fuzz.sh --build-only
    for target in aarch64 armv7; do
        echo "== $target cross build"
        ./scripts/cross-build.sh "$target"
        echo "== $target smoke test under qemu-user"
        ./scripts/board-smoke.sh "$target"
        echo "== the $target .deb"
        ./scripts/package-deb.sh "$target"
    done
}
builds_log=$(mktemp)
# Job control on just for the launch: the builds get a process group of
# their own, so a failing test stops them too. The same session, though,
# so nice 19 counts against the tests (an autogroup is per session).
set -m
background_builds >"$builds_log" 2>&1 &
builds=$!
set +m
trap 'kill -- -"$builds" 2>/dev/null || true; rm -f "$builds_log"' EXIT
started=$(date +%s)
minutes() { echo "$((($(date +%s) - started + 30) / 60)) min since the tests started"; }

echo "== cargo test (the background builds started: fuzz targets, aarch64, armv7)"
cargo test --locked
echo "== the systemd unit"
./scripts/verify-unit.sh
echo "== tests done, $(minutes); waiting for the background builds"
builds_status=0
wait "$builds" || builds_status=$?
cat "$builds_log"
if ((builds_status)); then
    echo "test.sh: a background build failed (exit $builds_status); its output is above" >&2
    exit "$builds_status"
fi
echo "== background builds done, $(minutes)"
echo "== fuzzing: each target for 20 s (cargo fuzz, nightly)"
./scripts/fuzz.sh 20
