# Sourced by scripts/*.sh: install Debian packages that are missing.
# usage: ensure_packages PKG...
ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        echo "installing Debian packages: ${missing[*]}"
        apt_update
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# Refresh the package lists. One index that fails to download (a mirror
# in the middle of a sync) is not fatal: apt keeps the others, and the
# install that follows names any package it then cannot find.
apt_update() {
    apt-get update -qq || echo "warning: apt-get update reported errors (above); going on with the lists it has" >&2
}

# usage: require_root SCRIPT-NAME WHY
require_root() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "$1: run as root ($2)" >&2
        exit 2
    fi
}

require_cargo() {
    if ! command -v cargo >/dev/null; then
        echo "cargo not found: install Rust first (https://rustup.rs), then run this again" >&2
        exit 2
    fi
}
