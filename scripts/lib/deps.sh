# Sourced by scripts/*.sh: install Debian packages that are missing.
# usage: ensure_packages PKG...
ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        echo "installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
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
