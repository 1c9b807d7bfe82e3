#!/usr/bin/env bash
# What the dashboard costs on the board, measured on loopback targets
# (127.0.0.0/8 only): how long `/` takes to render and how many bytes it
# is for 1,000, 10,000 and 100,000 targets (one page of 100 rows, problems
# first), what a reload between rounds costs (`If-None-Match`, answered
# 304), and how many requests a second `wrk` gets from `/` and
# `/api/v1/status` at 1,000 targets. The peer, in the same run, is
# `/healthz` on the same server (a request that renders nothing). The
# monitor keeps probing while it is measured, as on a board. Bytes written
# per round are in bench/footprint.sh (10,000 targets, 60 s interval).
# Prints Markdown for BENCHMARKS.md on stdout, diagnostics on stderr;
# asserts nothing.
#
#   bench/monitor.sh          as root (raw sockets for the traces)
#   BENCH_WRK_SECONDS=10      length of each wrk run (default 10)
#   BENCH_DASHBOARD_SIZES     target counts (default "1000 10000 100000")
#   EDGEPROBE_BIN=PATH        use this binary instead of building one
set -Eeuo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup bench/monitor.sh "the monitor opens raw sockets" curl wrk python3
wrk_s=${BENCH_WRK_SECONDS:-10}
mkdir -p target
work=$(mktemp -d "$PWD/target/bench-monitor.XXXXXX")   # on disk, not tmpfs
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

sheet() { # sheet N FILE: N loopback addresses 127.1.x.y
    python3 - "$1" >"$2" <<'PY'
import sys
n = int(sys.argv[1])
print("ip,name,group")
for i in range(n):
    print(f"127.{1 + i // 62500}.{i // 250 % 250}.{i % 250 + 1},host {i},rack {i % 40}")
PY
}

start() { # start N: run the monitor on N targets, wait for the dashboard
    local n=$1
    sheet "$n" "$work/t$n.csv"
    rm -rf "$work/state$n"
    # The sheet's row limit counts its header: raise it to fit N targets.
    printf '[limits]\nsheet_max_rows = %d\n' "$((n + 1))" >"$work/config$n.toml"
    # 100,000 targets get a longer round: the same pace a board would need.
    "$bin" run --config "$work/config$n.toml" --targets "$work/t$n.csv" --state-dir "$work/state$n" \
        --listen 127.0.0.1:0 --interval "$(interval "$n")" --count 1 --timeout 500ms --rate 0 \
        2>"$work/log$n" &
    pid=$!
    for _ in $(seq 100); do
        port=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/log$n" | head -1 | sed 's/.*://') || true
        [[ -n ${port:-} ]] && break
        sleep 0.2
    done
}

interval() { if (($1 > 10000)); then echo 60s; else echo 10s; fi; }

round_no() { curl -s "http://127.0.0.1:$port/api/v1/status" | python3 -c 'import json,sys; r=json.load(sys.stdin)["last_round"]; print(r["round"] if r else 0)'; }
wait_round() { # wait_round N: until round N has finished
    while (( $(round_no) < $1 )); do sleep 0.5; done
}

median_ms() { # median_ms URL [CURL ARGS]: median of 15 requests, in ms
    local url=$1
    shift
    for _ in $(seq 15); do curl -s -o /dev/null -w '%{time_total}\n' "$@" "$url"; done |
        sort -n | sed -n 8p | awk '{printf "%.2f", $1 * 1000}'
}

rps() { # rps URL: requests/s from wrk -t2 -c16, and its error lines to stderr
    local out
    out=$(wrk -t2 -c16 -d"${wrk_s}s" "$1")
    grep -E 'Non-2xx|Socket errors' <<<"$out" | sed "s|^|monitor: $1: |" >&2 || true
    awk '$1 == "Requests/sec:" {printf "%.0f", $2}' <<<"$out"
}
ratio() { python3 -c 'import sys; a, b = map(float, sys.argv[1:]); print(f"{a / b:.2f}x" if b > 0 else "n/a")' "$1" "$2"; }

rows=() wrk_rows=() notes=() verdict=
for n in ${BENCH_DASHBOARD_SIZES:-1000 10000 100000}; do
    start "$n"
    [[ -n ${port:-} ]] || { cat "$work/log$n" >&2; echo "monitor: the dashboard did not come up" >&2; exit 1; }
    echo "monitor: $n targets on port $port; waiting for round 2" >&2
    wait_round 2
    total=$(curl -s "http://127.0.0.1:$port/api/v1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
    ((total == n)) || { cat "$work/log$n" >&2; echo "monitor: $total targets loaded, not $n" >&2; exit 1; }
    url="http://127.0.0.1:$port/"
    page=$(median_ms "$url")
    health=$(median_ms "http://127.0.0.1:$port/healthz")
    size=$(curl -s "$url" | wc -c)
    tag=$(curl -s -o /dev/null -D - "$url" | tr -d '\r' | sed -n 's/^etag: //Ip')
    held=$(median_ms "$url" -H "If-None-Match: $tag")
    held_status=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $tag" "$url")
    api=$(median_ms "http://127.0.0.1:$port/api/v1/status")
    api_size=$(curl -s "http://127.0.0.1:$port/api/v1/status" | wc -c)
    rows+=("| render \`/\`, ms (median of 15, curl) | $n | $page | $health | $(ratio "$page" "$health") | ≤ 10 at 10,000 |")
    rows+=("| \`/\`, bytes of HTML | $n | $size | | | ≤ 300,000 at 10,000 |")
    rows+=("| reload between rounds (\`If-None-Match\`: $held_status), ms | $n | $held | $health | $(ratio "$held" "$health") | — |")
    rows+=("| \`/api/v1/status\` (first page), ms | $n | $api | $health | $(ratio "$api" "$health") | — |")
    notes+=("\`/api/v1/status\` at $n targets: the first page of 100 rows is $api_size bytes of JSON.")
    if [[ $n == 10000 ]]; then
        verdict=$(python3 -c 'import sys
ms, size = float(sys.argv[1]), int(sys.argv[2])
ok = ms <= 10 and size <= 300000
print(("met" if ok else "not met") + f": at 10,000 targets / renders in {ms:.2f} ms (goal 10, {ms / 10:.2f}x) and is {size} bytes (goal 300,000, {size / 300000:.2f}x).")' "$page" "$size")
    fi
    if [[ $n == 1000 ]]; then
        echo "monitor: wrk, ${wrk_s} s each on /healthz, /, /api/v1/status" >&2
        h_rps=$(rps "http://127.0.0.1:$port/healthz")
        p_rps=$(rps "$url")
        a_rps=$(rps "http://127.0.0.1:$port/api/v1/status")
        # Requests/s the other way round, so that every ratio reads "N times
        # what /healthz costs".
        wrk_rows+=("| \`/\`, requests/s (wrk) | $n | $p_rps | $h_rps | $(ratio "$h_rps" "$p_rps") | — |")
        wrk_rows+=("| \`/api/v1/status\`, requests/s (wrk) | $n | $a_rps | $h_rps | $(ratio "$h_rps" "$a_rps") | — |")
    fi
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done

echo "## 5. Dashboard"
echo
echo "Goal: at 10,000 targets \`/\` is at most 300 KB and renders in at most 10 ms; a reload between rounds costs little (a 304, no JavaScript). The peer is \`/healthz\` on the same server, a request that renders nothing (ratio: times what \`/healthz\` costs, i.e. measured / peer for times and peer / measured for requests/s)."
echo
echo "Machine: $(nproc) cores, $(uname -m), $(. /etc/os-release; echo "$PRETTY_NAME"); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)."
echo "Monitor: \`edgeprobe run --interval 10s --count 1 --timeout 500ms --rate 0\` (60 s at 100,000 targets) on 127.x.y.z targets, probing while measured; measured from round 2 on, \`/\` as it opens (problems first, page 1 of 100 rows). wrk: \`wrk -t2 -c16 -d${wrk_s}s\` on the same machine as the server."
echo
echo "| figure | targets | measured | peer (/healthz) | ratio | goal |"
echo "|---|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}" "${wrk_rows[@]}"
echo
printf '%s\n' "${notes[@]}"
echo
echo "**Verdict: ${verdict:-not measured at 10,000 targets}**"
