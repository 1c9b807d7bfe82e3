# shellcheck shell=bash
# Sourced by cross-build.sh, board-smoke.sh and package-deb.sh: the facts
# that differ between the two Raspberry Pi builds, in one table.
#
# name     Rust triple                    Debian arch  gcc prefix           qemu-user     `file` says (ERE)
_EDGEPROBE_TARGETS='
aarch64    aarch64-unknown-linux-gnu      arm64        aarch64-linux-gnu    qemu-aarch64  ELF 64-bit LSB .*ARM aarch64
armv7      armv7-unknown-linux-gnueabihf  armhf        arm-linux-gnueabihf  qemu-arm      ELF 32-bit LSB .*ARM, EABI5.*ld-linux-armhf\.so\.3
'
# The hard-float loader in armv7's signature: a soft-float (armel) binary
# would not start on Raspberry Pi OS's armhf.

# The largest binary allowed, exclusive (issue 20): it is copied to SD
# cards and into every .deb.
MAX_BINARY_BYTES=$((16 * 1024 * 1024))

# usage: select_target [aarch64|armv7]   (default aarch64)
# Sets TARGET_NAME, TRIPLE, DEB_ARCH, GCC_PREFIX, QEMU, FILE_SIGNATURE and
# BIN (where cross-build.sh leaves the binary).
# shellcheck disable=SC2034  # the scripts that source this read them
select_target() {
    local row
    TARGET_NAME=${1:-aarch64}
    row=$(awk -v n="$TARGET_NAME" '$1 == n' <<<"$_EDGEPROBE_TARGETS")
    if [[ -z $row ]]; then
        echo "unknown target '$TARGET_NAME': aarch64 (a 64-bit OS, arm64 .deb)" \
            "or armv7 (32-bit Raspberry Pi OS, armhf .deb)" >&2
        return 2
    fi
    read -r _ TRIPLE DEB_ARCH GCC_PREFIX QEMU FILE_SIGNATURE <<<"$row"
    BIN=target/cross/$TRIPLE/release/edgeprobe
}

# usage: check_binary FILE
# Fails unless FILE is an executable for the selected target under
# MAX_BINARY_BYTES; prints its size.
check_binary() {
    local bin=$1 size
    [[ -x $bin ]] || { echo "no binary at $bin: run scripts/cross-build.sh $TARGET_NAME first" >&2; return 2; }
    file -L "$bin" | grep -Eq -- "$FILE_SIGNATURE" ||
        { echo "$bin is not an $TARGET_NAME binary: $(file -L "$bin")" >&2; return 1; }
    size=$(stat -L -c %s "$bin")
    echo "$TARGET_NAME binary: $bin, $size bytes ($(numfmt --to=iec-i --suffix=B --round=nearest --format=%.1f "$size"))"
    if ((size >= MAX_BINARY_BYTES)); then
        echo "$bin is $size bytes: the limit is under 16 MiB ($MAX_BINARY_BYTES bytes)" >&2
        return 1
    fi
}

# usage: ensure_foreign_architecture ARCH
# dpkg's multiarch for ARCH's libraries (libstd-rust-web-dev:ARCH,
# libc6:ARCH for qemu-user); a no-op the second time.
ensure_foreign_architecture() {
    [[ $1 == "$(dpkg --print-architecture)" ]] && return 0
    if ! dpkg --print-foreign-architectures | grep -qx -- "$1"; then
        dpkg --add-architecture "$1"
        apt_update
    fi
}
