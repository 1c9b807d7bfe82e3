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
echo "== cargo test"
cargo test --locked
echo "== fuzzing: each target for 20 s (cargo fuzz, nightly)"
./scripts/fuzz.sh 20
echo "== the systemd unit"
./scripts/verify-unit.sh
# The two Raspberry Pi builds, rppal LED backend included: aarch64 for a
# 64-bit OS, armv7 for 32-bit Raspberry Pi OS. One after the other, so a
# failure names its target: one cargo build with both is no faster here
# (scripts/cross-build.sh). The second reuses the first's host crates.
for target in aarch64 armv7; do
    echo "== $target cross build"
    ./scripts/cross-build.sh "$target"
    echo "== $target smoke test under qemu-user"
    ./scripts/board-smoke.sh "$target"
    echo "== the $target .deb"
    ./scripts/package-deb.sh "$target"
done
