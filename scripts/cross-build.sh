#!/usr/bin/env bash
# Cross-build the optimized, stripped aarch64 binary (Raspberry Pi 3/4/5
# and Zero 2 W on a 64-bit OS) with every feature, rppal included, without
# Docker: Debian's own Rust (rustc-web, /usr/bin/cargo) has the arm64
# standard library as a package. Prints where the binary is and its size.
# Run as root on Debian 12; safe to run again.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/deps.sh
require_root scripts/cross-build.sh "it installs the cross toolchain with apt"

TARGET=aarch64-unknown-linux-gnu
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
    apt_update
fi
ensure_packages rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu \
    binutils-aarch64-linux-gnu qemu-user file

# Debian's cargo and rustc, not rustup's (which has no arm64 std here);
# a target directory of their own so the two toolchains never share one.
export RUSTC=/usr/bin/rustc
export CARGO_TARGET_DIR=target/cross
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export CARGO_PROFILE_RELEASE_STRIP=symbols

echo "== cross build: $TARGET (Debian $(/usr/bin/rustc --version))"
/usr/bin/cargo build --release --locked --target "$TARGET" --all-features
BIN="$CARGO_TARGET_DIR/$TARGET/release/edgeprobe"
file "$BIN" | grep -q 'ARM aarch64' || { echo "$BIN is not an aarch64 binary" >&2; exit 1; }
echo "aarch64 binary: $BIN, $(stat -c %s "$BIN") bytes"
echo "under qemu-user: $(qemu-aarch64 -L / "$BIN" --version)"
