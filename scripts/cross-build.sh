#!/usr/bin/env bash
# Cross-build the optimized, stripped Raspberry Pi binary with every
# feature, rppal included, without Docker: Debian's own Rust (rustc-web,
# /usr/bin/cargo) has each target's standard library as a package
# (libstd-rust-web-dev:ARCH). Prints where each binary is, its size and
# the build's wall time; fails if a binary is 16 MiB or more.
#   aarch64 (default): a 64-bit OS on a Pi 3/4/5, Zero 2 W or Pi 2 v1.2
#   armv7: 32-bit Raspberry Pi OS on any of those or a Pi 2 v1.1
# Both at once (`aarch64 armv7`) are one cargo build with two --target,
# which on 2 cores took as long as the two one after the other (23 min):
# the build is CPU-bound and the host crates the two share are a small part.
# usage: scripts/cross-build.sh [aarch64|armv7]... [CARGO-BUILD-ARGS...]
#   e.g. scripts/cross-build.sh armv7 --timings
# Run as root on Debian 12; safe to run again.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/deps.sh
. scripts/lib/targets.sh
require_root scripts/cross-build.sh "it installs the cross toolchain with apt"

names=()
while (($#)) && [[ $1 != -* ]]; do
    names+=("$1")
    shift
done
((${#names[@]})) || names=(aarch64)

# Debian's cargo and rustc, not rustup's (which has no std for these
# targets here); a target directory of their own so the two toolchains
# never share one.
export RUSTC=/usr/bin/rustc
export CARGO_TARGET_DIR=target/cross
export CARGO_PROFILE_RELEASE_STRIP=symbols

targets=()
for name in "${names[@]}"; do
    select_target "$name"
    ensure_foreign_architecture "$DEB_ARCH"
    ensure_packages rustc-web cargo-web "libstd-rust-web-dev:$DEB_ARCH" "gcc-$GCC_PREFIX" \
        "binutils-$GCC_PREFIX" qemu-user file
    triple_env=${TRIPLE//-/_}
    export "CARGO_TARGET_${triple_env^^}_LINKER=$GCC_PREFIX-gcc"
    # For the C in rusqlite's bundled SQLite and in ring.
    export "CC_$triple_env=$GCC_PREFIX-gcc" "AR_$triple_env=$GCC_PREFIX-ar"
    targets+=(--target "$TRIPLE")
done

echo "== cross build: ${names[*]} (Debian $(/usr/bin/rustc --version))"
start=$(date +%s)
/usr/bin/cargo build --release --locked "${targets[@]}" --all-features "$@"
echo "${names[*]} build: $(($(date +%s) - start)) s wall time"
for name in "${names[@]}"; do
    select_target "$name"
    check_binary "$BIN"
    # -L /: Debian's multiarch libc6:$DEB_ARCH (see board-smoke.sh).
    echo "under $QEMU: $("$QEMU" -L / "$BIN" --version)"
done
