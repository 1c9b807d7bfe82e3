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

# usage: ensure_servers_stopped PKG...
# Like ensure_packages, for servers the tests start themselves on
# loopback (Alertmanager): Debian's unit would start them on every
# interface and at every boot. A fresh install is made with a policy-rc.d
# that keeps them stopped (an existing policy is left as it is), and their
# units are disabled. A package that was already there is not touched.
ensure_servers_stopped() {
    local missing=() p policy=/usr/sbin/policy-rc.d ours=
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# edgeprobe scripts/test.sh: keep test servers stopped\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        ours=1
    fi
    ensure_packages "${missing[@]}"
    [[ -n $ours ]] && rm -f "$policy"
    if command -v systemctl >/dev/null; then
        for p in "${missing[@]}"; do
            if systemctl list-unit-files "$p.service" >/dev/null 2>&1; then
                systemctl disable "$p.service" >/dev/null 2>&1 &&
                    echo "disabled $p.service: the tests start their own on loopback"
            fi
        done
    fi
    return 0
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
