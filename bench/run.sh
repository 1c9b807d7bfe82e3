#!/usr/bin/env bash
# Every benchmark of the performance issue, one after another, written to
# BENCHMARKS.md: the machine, each goal next to what was measured against
# its peer in the same run, and how to rerun. About 35 minutes (20 of
# them bench/central.sh, whose nx-27017 is slow to seed), as root
# (raw sockets, network namespaces, perf). Touches nothing but loopback
# and the namespaces bench/trace.sh creates.
#
#   bench/run.sh              writes BENCHMARKS.md at the top of the repo
#   BENCH_ROUNDS=N            footprint: measured rounds after the first (20)
set -Eeuo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
require_root bench/run.sh "the benchmarks open raw sockets and build a namespace lab"
ensure_packages fping traceroute mtr-tiny scamper wrk linux-perf tcpdump curl time python3 >&2
require_cargo
cargo build --release --locked -q
export EDGEPROBE_BIN=$PWD/target/release/edgeprobe
out=BENCHMARKS.md
draft=$(mktemp)
trap 'rm -f "$draft"' EXIT

section() { # section SCRIPT ARGS...: its Markdown, or say it failed
    echo "bench/run.sh: $*" >&2
    if ! "$@"; then
        echo
        echo "**$1 failed** (exit status above, in the terminal); its figures are missing."
    fi
    echo
}

{
    echo "# Benchmarks"
    echo
    echo "Written by \`sudo bench/run.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' (with uncommitted changes)')."
    echo "Every figure is a ratio against a peer measured in the same run, because"
    echo "shared machines are noisy: rerun before trusting a small difference."
    echo "Packets go only to loopback (127.0.0.0/8) and to the namespace lab that"
    echo "bench/trace.sh builds (198.18.0.0/15)."
    echo
    echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)),"
    echo "$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM, Linux $(uname -r) $(uname -m),"
    echo "$(. /etc/os-release; echo "$PRETTY_NAME"); $(systemd-detect-virt 2>/dev/null | sed 's/^none$/bare metal/;s/^/virtualisation: /' || echo 'virtualisation: unknown')."
    echo "Peers: $(fping -v 2>&1 | head -1); $(traceroute -V 2>&1 | head -1); $(mtr -v 2>&1 | head -1); scamper $(dpkg-query -W -f='${Version}' scamper 2>/dev/null); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)."
    echo "edgeprobe: $("$EDGEPROBE_BIN" --version), release build."
    echo
    echo "Rerun one part: \`sudo bench/sweep.sh\`, \`bench/trace.sh\`, \`bench/footprint.sh\`,"
    echo "\`bench/monitor.sh\`, \`bench/profile.sh\` or \`bench/central.sh\` print the same sections."
    echo
    section bench/sweep.sh
    section bench/trace.sh
    section bench/footprint.sh
    section bench/monitor.sh
    section bench/profile.sh
    section bench/central.sh
} >"$draft"
mv "$draft" "$out"
trap - EXIT
echo "bench/run.sh: wrote $out" >&2
grep -h '^\*\*Verdict' "$out" >&2 || true
