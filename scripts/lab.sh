#!/usr/bin/env bash
# edgeprobe network-namespace test lab.
#
#   scripts/lab.sh up     NAME          build lab NAME (tears down a leftover NAME lab first)
#   scripts/lab.sh down   NAME          remove every namespace of lab NAME (never fails if absent)
#   scripts/lab.sh status NAME          show namespaces/addresses/routes; exit 1 if incomplete
#   scripts/lab.sh exec   NAME ROLE CMD...   = ip netns exec NAME-ROLE CMD...
#   scripts/lab.sh detour NAME on|off   route r1's traffic for the host LAN
#                                       through r3 (a path change) or back
#
# NAME: 1-6 letters/digits. Namespaces: NAME-{probe,r1,r2,r3,h1,h2,silent}.
# Interfaces are created directly inside their namespaces, so names never
# collide between labs and stay well under 15 chars.
#
# Topology (addresses only from 198.18.0.0/15 and 2001:db8::/32):
#
#   probe eth0 198.18.1.2/24 2001:db8:1::2/64   default via 198.18.1.1 / 2001:db8:1::1
#     |
#   r1  to-probe 198.18.1.1/24 2001:db8:1::1/64
#       to-r2    198.18.2.1/24 2001:db8:2::1/64
#       198.19.3.0/24, 2001:db8:3::/64 via r2; NO default route, so anything
#       else (e.g. 198.19.200.1, 2001:db8:c8::1) gets net-unreachable from r1.
#     |
#   r2  to-r1    198.18.2.2/24 2001:db8:2::2/64   default via r1
#       lan (bridge) 198.19.3.1/24 2001:db8:3::1/64, ports to-h1 to-h2 to-silent
#     |
#   h1     eth0 198.19.3.10/24 2001:db8:3::10/64  default via r2
#   h2     eth0 198.19.3.11/24 2001:db8:3::11/64  default via r2
#   r3  (idle until `detour on`) between r1 and r2, IPv4 only:
#       to-r1 198.18.5.2/24 (r1: to-r3 198.18.5.1), to-r2 198.18.6.1/24
#       (r2: to-r3 198.18.6.2); 198.19.3.0/24 via r2, default via r1.
#   silent eth0 198.19.3.20/24 2001:db8:3::20/64  default via r2; nft drops all
#          IP input except IPv6 neighbour discovery (ARP is untouched), so it
#          resolves on the LAN but never answers anything.
#
# Many hosts, three hops away, without a namespace each: h1 also answers
# every address of 198.19.4.0/24 and 2001:db8:4::/64 (local routes on its
# lo, "AnyIP"), and the silent host holds 198.19.5.0/24 and
# 2001:db8:5::/64, so they stay silent. r2 routes those blocks to the two
# hosts, r1 routes them to r2. The detour moves 198.19.3.0/24 only.
#
# ICMP rate limits, as in a real closet: every router keeps the kernel's
# defaults (net.ipv4.icmp_ratelimit 1000 ms per destination after a burst
# of 6, icmp_msgs_per_sec 1000 burst 50; IPv6 alike), and r2 is limited
# harder with nftables, as many vendors' defaults are: the time-exceeded
# and unreachable messages it sends leave at 1/second (burst 5) in all.
# LAB_ICMP_UNLIMITED=1 builds the variant whose routers answer every probe
# (limits off), only to compare against a lab no closet has. No test uses
# it: every test of paths, causes and path changes runs with the limits on;
# a future test that needs it must say why.
#
# MAC addresses are fixed (locally administered 02:...) so link-local IPv6
# addresses and /proc/net/ipv6_route contents are reproducible.
set -Eeuo pipefail

ROLES=(probe r1 r2 r3 h1 h2 silent)

die() { echo "lab.sh: $*" >&2; exit 1; }

usage() {
    cat >&2 <<'EOF'
usage: lab.sh up NAME | down NAME | status NAME | exec NAME ROLE CMD... | detour NAME on|off
  NAME: 1-6 letters/digits; ROLE: probe r1 r2 r3 h1 h2 silent
EOF
    exit 2
}

need_root() {
    if [[ $(id -u) -ne 0 ]] || ! command -v ip >/dev/null 2>&1 \
        || ! ip netns list >/dev/null 2>&1; then
        die "run as root; needs iproute2"
    fi
}

check_name() {
    [[ ${1:-} =~ ^[A-Za-z0-9]{1,6}$ ]] || die "bad NAME '${1:-}': 1-6 letters/digits"
}

ns_exists() { [[ -e /run/netns/$1 ]]; }

# sc NS key value [opt]: write a sysctl inside NS; with opt, skip if absent.
sc() {
    local ns=$1 key=$2 val=$3 opt=${4:-}
    local path=/proc/sys/${key//.//}
    ip netns exec "$ns" sh -c '
        if [ -e "$1" ]; then echo "$2" > "$1"
        elif [ -n "$3" ]; then exit 0
        else echo "lab.sh: missing sysctl $1" >&2; exit 1; fi' sh "$path" "$val" "$opt"
}

# veth NS_A IF_A MAC_A NS_B IF_B MAC_B
veth() {
    ip -n "$1" link add "$2" address "$3" type veth peer name "$5" address "$6" netns "$4"
}

addr() { # addr NS IF V4/len V6/len
    ip -n "$1" addr add "$3" dev "$2"
    ip -n "$1" -6 addr add "$4" dev "$2" nodad
    ip -n "$1" link set "$2" up
}

lab_down() {
    local n=$1 r
    for r in "${ROLES[@]}"; do
        if ns_exists "$n-$r"; then
            ip netns del "$n-$r" 2>/dev/null || true
        fi
    done
    return 0
}

base_ns() { # base_ns NS forwarding(0|1)
    local ns=$1 fwd=$2
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    # Set "default" before creating interfaces so they inherit it.
    local c
    for c in all default; do
        sc "$ns" "net.ipv6.conf.$c.accept_ra" 0
        sc "$ns" "net.ipv6.conf.$c.forwarding" "$fwd"
        sc "$ns" "net.ipv4.conf.$c.rp_filter" 0
    done
    sc "$ns" net.ipv4.ip_forward "$fwd"
    if [[ ${LAB_ICMP_UNLIMITED:-0} == 1 ]]; then
        sc "$ns" net.ipv4.icmp_ratelimit 0
        sc "$ns" net.ipv4.icmp_msgs_per_sec 100000 opt
        sc "$ns" net.ipv4.icmp_msgs_burst 100000 opt
        sc "$ns" net.ipv6.icmp.ratelimit 0
    fi
}

limit_icmp_errors() { # limit_icmp_errors NS: ICMP errors out at 1/second
    local ns=$1
    [[ ${LAB_ICMP_UNLIMITED:-0} == 1 ]] && return 0
    command -v nft >/dev/null 2>&1 || die "nft not found (apt-get install nftables)"
    ip netns exec "$ns" nft -f - <<'EOF'
table inet lab_icmp_limit {
    chain output {
        type filter hook output priority 0; policy accept;
        icmp type { time-exceeded, destination-unreachable } limit rate over 1/second burst 5 packets counter drop
        icmpv6 type { time-exceeded, destination-unreachable } limit rate over 1/second burst 5 packets counter drop
    }
}
EOF
}

silence() { # make NS answer nothing (except ARP / neighbour discovery)
    local ns=$1
    if command -v nft >/dev/null 2>&1; then
        ip netns exec "$ns" nft -f - <<'EOF'
table inet lab_silent {
    chain input {
        type filter hook input priority 0; policy drop;
        iif "lo" accept
        icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect } accept
    }
}
EOF
    else
        echo "lab.sh: warning: nft not found, silencing echo only via sysctl" >&2
        sc "$ns" net.ipv4.icmp_echo_ignore_all 1
        sc "$ns" net.ipv6.icmp.echo_ignore_all 1
    fi
}

lan_host() { # lan_host R2NS ROLE NS MACBYTE V4 V6
    local r2=$1 role=$2 ns=$3 mac=$4 ip4=$5 ip6=$6
    veth "$ns" eth0 "02:00:00:00:03:$mac" "$r2" "to-$role" "02:00:00:01:03:$mac"
    ip -n "$r2" link set "to-$role" master lan up
    addr "$ns" eth0 "$ip4/24" "$ip6/64"
    ip -n "$ns" route add default via 198.19.3.1 dev eth0
    ip -n "$ns" -6 route add default via 2001:db8:3::1 dev eth0
}

lab_up() {
    local n=$1
    lab_down "$n"
    trap 'echo "lab.sh: up failed, tearing down $n" >&2; lab_down "$n"' ERR

    local P=$n-probe R1=$n-r1 R2=$n-r2 H1=$n-h1 H2=$n-h2 S=$n-silent
    local R3=$n-r3
    base_ns "$P" 0; base_ns "$R1" 1; base_ns "$R2" 1; base_ns "$R3" 1
    base_ns "$H1" 0; base_ns "$H2" 0; base_ns "$S" 0
    # let unprivileged ICMP datagram sockets work in the probe namespace
    sc "$P" net.ipv4.ping_group_range "0 2147483647" opt

    # probe <-> r1 : 198.18.1.0/24, 2001:db8:1::/64
    veth "$P" eth0 02:00:00:00:01:02 "$R1" to-probe 02:00:00:00:01:01
    addr "$P" eth0 198.18.1.2/24 2001:db8:1::2/64
    addr "$R1" to-probe 198.18.1.1/24 2001:db8:1::1/64

    # r1 <-> r2 : 198.18.2.0/24, 2001:db8:2::/64
    veth "$R1" to-r2 02:00:00:00:02:01 "$R2" to-r1 02:00:00:00:02:02
    addr "$R1" to-r2 198.18.2.1/24 2001:db8:2::1/64
    addr "$R2" to-r1 198.18.2.2/24 2001:db8:2::2/64

    # r1 <-> r3 <-> r2 : the detour, 198.18.5.0/24 and 198.18.6.0/24
    veth "$R1" to-r3 02:00:00:00:05:01 "$R3" to-r1 02:00:00:00:05:02
    ip -n "$R1" addr add 198.18.5.1/24 dev to-r3; ip -n "$R1" link set to-r3 up
    ip -n "$R3" addr add 198.18.5.2/24 dev to-r1; ip -n "$R3" link set to-r1 up
    veth "$R3" to-r2 02:00:00:00:06:01 "$R2" to-r3 02:00:00:00:06:02
    ip -n "$R3" addr add 198.18.6.1/24 dev to-r2; ip -n "$R3" link set to-r2 up
    ip -n "$R2" addr add 198.18.6.2/24 dev to-r3; ip -n "$R2" link set to-r3 up
    ip -n "$R3" route add 198.19.3.0/24 via 198.18.6.2 dev to-r2
    ip -n "$R3" route add default via 198.18.5.1 dev to-r1

    # r2 LAN bridge : 198.19.3.0/24, 2001:db8:3::/64
    ip -n "$R2" link add lan address 02:00:00:00:03:01 type bridge \
        stp_state 0 forward_delay 0 mcast_snooping 0
    addr "$R2" lan 198.19.3.1/24 2001:db8:3::1/64
    lan_host "$R2" h1 "$H1" 0a 198.19.3.10 2001:db8:3::10
    lan_host "$R2" h2 "$H2" 0b 198.19.3.11 2001:db8:3::11
    lan_host "$R2" silent "$S" 14 198.19.3.20 2001:db8:3::20

    # routes
    ip -n "$P" route add default via 198.18.1.1 dev eth0
    ip -n "$P" -6 route add default via 2001:db8:1::1 dev eth0
    ip -n "$R1" route add 198.19.3.0/24 via 198.18.2.2 dev to-r2
    ip -n "$R1" -6 route add 2001:db8:3::/64 via 2001:db8:2::2 dev to-r2
    ip -n "$R1" route add 198.19.4.0/23 via 198.18.2.2 dev to-r2
    ip -n "$R1" -6 route add 2001:db8:4::/63 via 2001:db8:2::2 dev to-r2
    ip -n "$R2" route add 198.19.4.0/24 via 198.19.3.10 dev lan
    ip -n "$R2" -6 route add 2001:db8:4::/64 via 2001:db8:3::10 dev lan
    ip -n "$R2" route add 198.19.5.0/24 via 198.19.3.20 dev lan
    ip -n "$R2" -6 route add 2001:db8:5::/64 via 2001:db8:3::20 dev lan
    ip -n "$H1" route add local 198.19.4.0/24 dev lo
    ip -n "$H1" -6 route add local 2001:db8:4::/64 dev lo
    ip -n "$S" route add local 198.19.5.0/24 dev lo
    ip -n "$S" -6 route add local 2001:db8:5::/64 dev lo
    ip -n "$R2" route add default via 198.18.2.1 dev to-r1
    ip -n "$R2" -6 route add default via 2001:db8:2::1 dev to-r1

    silence "$S"
    limit_icmp_errors "$R2"

    # wait until the chain works end to end (both families)
    local ok=0 i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        if ip netns exec "$P" ping -c1 -W1 -q 198.19.3.10 >/dev/null 2>&1 \
            && ip netns exec "$P" ping -6 -c1 -W1 -q 2001:db8:3::10 >/dev/null 2>&1; then
            ok=1; break
        fi
        sleep 0.5
    done
    trap - ERR
    if [[ $ok -ne 1 ]]; then
        lab_down "$n"
        die "lab $n did not come up (ping from $P to h1 failed)"
    fi

    cat <<EOF
lab $n up:
  $P     198.18.1.2  2001:db8:1::2   (default via r1)
  $R1        198.18.1.1  2001:db8:1::1 | 198.18.2.1 2001:db8:2::1   (no default route)
  $R2        198.18.2.2  2001:db8:2::2 | 198.19.3.1 2001:db8:3::1
  $H1        198.19.3.10 2001:db8:3::10  (live)
  $H2        198.19.3.11 2001:db8:3::11  (live)
  $S    198.19.3.20 2001:db8:3::20  (silent)
  many:        198.19.4.0/24 2001:db8:4::/64 (live, on h1), 198.19.5.0/24 2001:db8:5::/64 (silent)
  ICMP limits: $( [[ ${LAB_ICMP_UNLIMITED:-0} == 1 ]] && echo "off (LAB_ICMP_UNLIMITED=1)" || echo "kernel defaults; r2 also 1/second (nftables)")
  unrouted:    198.19.200.1 2001:db8:c8::1 (net unreachable from r1)
EOF
}

lab_detour() { # lab_detour NAME on|off
    local n=$1 via
    ns_exists "$n-r3" || die "lab $n has no r3 (run: lab.sh up $n)"
    case $2 in
        on)  via="198.18.5.2 dev to-r3" ;;
        off) via="198.18.2.2 dev to-r2" ;;
        *)   usage ;;
    esac
    # shellcheck disable=SC2086
    ip -n "$n-r1" route replace 198.19.3.0/24 via $via
}

lab_status() {
    local n=$1 r missing=0
    for r in "${ROLES[@]}"; do
        if ns_exists "$n-$r"; then
            echo "== $n-$r"
            ip -n "$n-$r" -br addr show | grep -v '^lo ' || true
            ip -n "$n-$r" route show | sed 's/^/  v4: /'
            ip -n "$n-$r" -6 route show | grep -e '^2001:db8' -e '^default' | sed 's/^/  v6: /'
        else
            echo "== $n-$r: absent"
            missing=1
        fi
    done
    return $missing
}

[[ $# -ge 1 ]] || usage
cmd=$1; shift
case $cmd in
    up)     [[ $# -eq 1 ]] || usage; need_root; check_name "$1"; lab_up "$1" ;;
    down)   [[ $# -eq 1 ]] || usage; need_root; check_name "$1"; lab_down "$1" ;;
    status) [[ $# -eq 1 ]] || usage; need_root; check_name "$1"; lab_status "$1" ;;
    detour) [[ $# -eq 2 ]] || usage; need_root; check_name "$1"; lab_detour "$1" "$2" ;;
    exec)
        [[ $# -ge 3 ]] || usage; need_root; check_name "$1"
        n=$1 role=$2; shift 2
        [[ " ${ROLES[*]} " == *" $role "* ]] || die "bad ROLE '$role'"
        ns_exists "$n-$role" || die "namespace $n-$role does not exist (run: lab.sh up $n)"
        exec ip netns exec "$n-$role" "$@"
        ;;
    *) usage ;;
esac
