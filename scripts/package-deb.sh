#!/usr/bin/env bash
# Build the .deb from a cross-built binary (scripts/cross-build.sh):
# the binary, the systemd unit, the udev rule for the LED class, the example
# config (a conffile), the docs, and maintainer scripts that create the
# `edgeprobe` user and start the service. Checks the result with dpkg-deb.
# Writes target/edgeprobe_VERSION_ARCH.deb (arm64 for aarch64, armhf for
# armv7) and prints its path and the binary's size (failing at 16 MiB).
# usage: scripts/package-deb.sh [aarch64|armv7] [BINARY]
set -Eeuo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/deps.sh
. scripts/lib/targets.sh
select_target "${1:-aarch64}"
BIN=${2:-$BIN}
check_binary "$BIN"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
# The newest glibc symbol version the binary uses is the libc6 it needs.
glibc=$("$GCC_PREFIX-objdump" -T "$BIN" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
deb=target/edgeprobe_${version}_${DEB_ARCH}.deb

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"
install -D -m 0755 "$BIN" "$stage/usr/bin/edgeprobe"
install -D -m 0644 board/edgeprobe.service "$stage/lib/systemd/system/edgeprobe.service"
install -D -m 0644 board/60-edgeprobe-leds.rules "$stage/lib/udev/rules.d/60-edgeprobe-leds.rules"
install -D -m 0644 board/edgeprobe.toml "$stage/etc/edgeprobe/edgeprobe.toml"
doc=$stage/usr/share/doc/edgeprobe
# Installed next to README.md and images/, not one level below them.
mkdir -p "$doc"
sed 's#](\.\./#](#g' board/INSTALL.md >"$doc/INSTALL.md"
chmod 0644 "$doc/INSTALL.md"
install -D -m 0644 README.md "$doc/README.md"
install -D -m 0644 images/leds-wiring.svg "$doc/images/leds-wiring.svg"
cat >"$doc/copyright" <<TEXT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: edgeprobe
License: MIT OR Apache-2.0
TEXT

mkdir -p "$stage/DEBIAN"
install -m 0755 board/debian/postinst board/debian/prerm board/debian/postrm "$stage/DEBIAN/"
echo /etc/edgeprobe/edgeprobe.toml >"$stage/DEBIAN/conffiles"
cat >"$stage/DEBIAN/control" <<TEXT
Package: edgeprobe
Version: $version
Architecture: $DEB_ARCH
Maintainer: edgeprobe developers <edgeprobe@example.net>
Depends: libc6 (>= $glibc), libgcc-s1, adduser
Section: net
Priority: optional
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Homepage: https://example.net/edgeprobe
Description: IP monitoring probe for a small board in a network closet
 Reads a spreadsheet of IP addresses and probes each one: ping says
 whether it is Working, traceroute finds its default gateway, the routers
 on the way and whether it is Reachable. Shows failures on LEDs, serves a
 live dashboard, keeps its history on the board and syncs it to a central
 MongoDB.
TEXT

mkdir -p target
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null

# Check what was built.
[[ $(dpkg-deb --field "$deb" Architecture) == "$DEB_ARCH" ]]
[[ $(dpkg-deb --field "$deb" Version) == "$version" ]]
contents=$(dpkg-deb --contents "$deb")
for path in ./usr/bin/edgeprobe ./lib/systemd/system/edgeprobe.service \
    ./lib/udev/rules.d/60-edgeprobe-leds.rules ./etc/edgeprobe/edgeprobe.toml \
    ./usr/share/doc/edgeprobe/INSTALL.md; do
    grep -q " $path\$" <<<"$contents" || { echo "$deb lacks $path" >&2; exit 1; }
done
grep -q '^-rwxr-xr-x root/root .* ./usr/bin/edgeprobe$' <<<"$contents" || {
    echo "$deb: /usr/bin/edgeprobe is not root-owned and executable" >&2; exit 1; }
control=$(mktemp -d)
dpkg-deb --control "$deb" "$control"
grep -qx /etc/edgeprobe/edgeprobe.toml "$control/conffiles"
grep -q 'adduser --system' "$control/postinst"
# The settings directory is root's and read-only to the service, in the
# package and after its postinst.
grep -q '^drwxr-xr-x root/root .* ./etc/edgeprobe/$' <<<"$contents" || {
    echo "$deb: /etc/edgeprobe is not root-owned 0755" >&2; exit 1; }
grep -qx '    chmod 0755 /etc/edgeprobe' "$control/postinst" || {
    echo "$deb: the postinst does not make /etc/edgeprobe 0755" >&2; exit 1; }
rm -rf "$control"
echo "package: $deb, $(stat -c %s "$deb") bytes (Depends: libc6 >= $glibc)"
dpkg-deb --contents "$deb" | awk '{print "  " $1, $NF}'
