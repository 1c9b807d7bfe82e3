#!/usr/bin/env bash
# What `edgeprobe run` costs the board with 10,000 loopback targets
# (127.0.0.0/8 only) at a 60 s interval: peak RSS, CPU seconds per round,
# the share of one core that is over the interval, and the bytes a round
# writes to the SQLite store. Peers, measured in the same run: fping
# sweeping the same 10,000 addresses once (`fping -c1 -i0 -t500 -q`, the
# ping work of one round), and the same results as CSV text for the
# bytes. Prints Markdown for BENCHMARKS.md on stdout, diagnostics on
# stderr; asserts nothing.
#
# The monitor runs as a board would, tracing included (`--trace-every`
# left at its default of 10 minutes: round 1 traces every target, and
# each target again once its last trace is 10 minutes old), with
# `--count 1 --timeout 500ms --rate 0`.
# Round 1 (start-up and first-time traces) is reported apart; the steady
# figures are rounds 2 .. BENCH_ROUNDS+1. Round ends are watched through
# /healthz, which renders no target, so the watching costs the monitor
# next to nothing; /api/v1/status (10,000 targets) is fetched only once
# the last sample is taken.
#
#   bench/footprint.sh      as root (raw sockets for the traces)
#   BENCH_ROUNDS=5          measured rounds after round 1 (default 20: two
#                           trace cycles at 60 s and at least one WAL
#                           checkpoint, which a few rounds would miss)
#   BENCH_INTERVAL=60       monitor interval in seconds (default 60, the goal's)
#   EDGEPROBE_BIN=PATH      use this binary instead of building one
set -Eeuo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup bench/footprint.sh "the monitor opens raw sockets" curl fping time python3
rounds=${BENCH_ROUNDS:-20}
n=10000
interval=${BENCH_INTERVAL:-60}
goal_rss_mib=32
goal_cpu_pct=1
mkdir -p target
work=$(mktemp -d "$PWD/target/bench-footprint.XXXXXX")   # on disk, not tmpfs
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
log() { echo "footprint: $*" >&2; }

python3 - "$n" "$work/sheet.csv" "$work/list.txt" <<'PY'
import sys
n = int(sys.argv[1])
with open(sys.argv[2], "w") as sheet, open(sys.argv[3], "w") as plain:
    print("ip,name,group", file=sheet)
    for i in range(n):
        ip = f"127.{1 + i // 62500}.{i // 250 % 250}.{i % 250 + 1}"
        print(f"{ip},host {i},rack {i % 40}", file=sheet)
        print(ip, file=plain)
PY

hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }           # utime + stime
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$pid/status"; }
io() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$pid/io"; }
finished() { # when the last round finished, from /healthz ("" before round 1)
    curl -s "http://127.0.0.1:$port/healthz" | grep -o '"last_round":"[^"]*"' | cut -d'"' -f4 || true
}
wait_change() { # wait_change PREVIOUS: until /healthz shows a newer round
    local limit=$((SECONDS + 3 * interval + 60)) f
    while :; do
        f=$(finished)
        [[ -n $f && $f != "$1" ]] && { echo "$f"; return; }
        ((SECONDS < limit)) || { log "no round finished within $((3 * interval + 60)) s"; exit 1; }
        sleep 1
    done
}
threads_ticks() { # "name ticks" per thread of the monitor
    for t in /proc/$pid/task/*; do
        sed 's/.*) //' "$t/stat" 2>/dev/null | awk -v c="$(tr ' ' _ <"$t/comm")" '{print c, $12 + $13}' || true
    done
}
calc() { python3 -c "import sys; print(format($1, '${2:-.2f}'))"; }
ratio() { python3 -c 'import sys; a, b = map(float, sys.argv[1:]); print(f"{a / b:.2f}x" if b > 0 else "n/a")' "$1" "$2"; }

"$bin" run --targets "$work/sheet.csv" --state-dir "$work/state" \
    --listen 127.0.0.1:0 --interval "${interval}s" --count 1 --timeout 500ms --rate 0 \
    2>"$work/monitor.log" &
pid=$!
port=
for _ in $(seq 100); do
    port=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/monitor.log" | head -1 | sed 's/.*://') || true
    [[ -n $port ]] && break
    sleep 0.2
done
[[ -n $port ]] || { cat "$work/monitor.log" >&2; log "the dashboard did not come up"; exit 1; }
log "monitor pid $pid on port $port; $n targets, ${interval}s interval; waiting for round 1, then $rounds more (~$(((rounds + 1) * interval / 60 + 1)) min)"

f=$(wait_change "")
threads_ticks >"$work/threads0"
t_prev=$(ticks) w_prev=$(io write_bytes) s_prev=$SECONDS
round1_ticks=$t_prev round1_bytes=$w_prev
log "round 1 done: $(calc "$t_prev/$hz") cpu s since start, VmRSS $(kib VmRSS) KiB"
cpu=() bytes=() rows=()
for r in $(seq 2 $((rounds + 1))); do
    f=$(wait_change "$f")
    t=$(ticks) w=$(io write_bytes)
    cpu+=($((t - t_prev))) bytes+=($((w - w_prev)))
    rows+=("| $r | $((SECONDS - s_prev)) | $(calc "$((t - t_prev))/$hz") | $((w - w_prev)) | $(calc "$(kib VmRSS)/1024" .1f) | $(calc "$(kib RssAnon)/1024" .1f) | $(calc "$(kib RssFile)/1024" .1f) |")
    log "round $r done: $(calc "$((t - t_prev))/$hz") cpu s, $((w - w_prev)) bytes written, VmRSS $(kib VmRSS) KiB"
    t_prev=$t w_prev=$w s_prev=$SECONDS
done
threads_ticks >"$work/threads1"
by_thread=$(python3 - "$work/threads0" "$work/threads1" "$hz" <<'PY'
import collections, sys
def load(p):
    d = collections.Counter()
    for line in open(p):
        name, t = line.split()
        d[name] += int(t)
    return d
a, b, hz = load(sys.argv[1]), load(sys.argv[2]), int(sys.argv[3])
print(", ".join(f"{k} {(b[k] - a[k]) / hz:.2f} s" for k in sorted(b, key=lambda k: a[k] - b[k])))
PY
)
# The largest mappings, to tell the heap from the binary: stderr only.
python3 - "/proc/$pid/smaps" <<'PY' >&2 || true
import sys
maps, cur = [], None
for line in open(sys.argv[1]):
    f = line.split()
    if "-" in f[0] and not f[0].endswith(":"):
        cur = [f[5] if len(f) > 5 else "[anon]", 0, 0]
        maps.append(cur)
    elif f[0] == "Rss:":
        cur[1] = int(f[1])
    elif f[0] == "Anonymous:":
        cur[2] = int(f[1])
print("footprint: largest mappings (Rss KiB, of which anonymous):")
for name, rss, anon in sorted(maps, key=lambda m: -m[1])[:6]:
    print(f"footprint:   {rss:>8} {anon:>8}  {name}")
PY
hwm=$(kib VmHWM) rss=$(kib VmRSS) anon=$(kib RssAnon) file=$(kib RssFile) threads=$(kib Threads)
status=$(status_all "http://127.0.0.1:$port")
read -r last_no last_took replies csv db <<<"$(python3 -c '
import json, sys
v = json.load(sys.stdin)
r = v["last_round"] or {}
csv = sum(len(",".join(str(x) for x in [t["addr"], 8, t["last_updated"], t["status"], 1, t["received"], t["loss"], (t["rtt_ms"] or {}).get("avg"), t["gateway"]])) + 1 for t in v["targets"])
print(r.get("round", 0), r.get("duration", 0), sum(1 for t in v["targets"] if t["received"]), csv, v["store"]["db_bytes"])' <<<"$status")"
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
((last_no == rounds + 1)) || log "warning: /api/v1/status says round $last_no, expected $((rounds + 1))"

log "fping: one sweep of the same $n addresses"
/usr/bin/time -f '%e %U %S %M' -o "$work/fping.time" \
    fping -c1 -i0 -t500 -q -f "$work/list.txt" 2>"$work/fping.err" || true
read -r fp_wall fp_cpu fp_rss <<<"$(tail -1 "$work/fping.time" | awk '{print $1, $2 + $3, $4}')"
fp_replies=$(grep -c ' 1/1/0%' "$work/fping.err" || true)

sum() { local s=0 x; for x in "$@"; do s=$((s + x)); done; echo "$s"; }
cpu_round=$(calc "$(sum "${cpu[@]}")/$hz/$rounds" .3f)
cpu_pct=$(calc "$cpu_round/$interval*100" .3f)
fp_pct=$(calc "$fp_cpu/$interval*100" .3f)
bytes_round=$(($(sum "${bytes[@]}") / rounds))
hwm_mib=$(calc "$hwm/1024" .1f) rss_mib=$(calc "$rss/1024" .1f) fp_mib=$(calc "$fp_rss/1024" .1f)
goal_cpu_s=$(calc "$goal_cpu_pct*$interval/100")

echo "## 4. Monitor footprint: 10,000 targets, $interval s interval"
echo
echo "Goal: under $goal_rss_mib MiB RSS, and under $goal_cpu_pct % of a core averaged over the interval."
echo
echo "Machine: $(nproc) cores, $(uname -m), $(. /etc/os-release; echo "$PRETTY_NAME"); peer: $(fping -v 2>&1 | head -1)."
echo "Monitor: \`edgeprobe run --interval ${interval}s --count 1 --timeout 500ms --rate 0\`, tracing at its default (\`--trace-every 10m\`: every target traced in round 1 and again once its last trace is 10 minutes old), $n targets 127.x.y.z, state on disk."
echo "Steady figures: mean of rounds 2-$((rounds + 1)) (CPU from /proc/PID/stat utime+stime, bytes from /proc/PID/io write_bytes, both sampled at round ends; peak RSS is VmHWM over the whole run, round 1 included)."
echo "Peer: one \`fping -c1 -i0 -t500 -q\` sweep of the same $n addresses after the monitor stopped ($fp_replies replies; wall ${fp_wall} s); for bytes, the same round's results as CSV text."
echo
echo "| figure | measured | peer | ratio | goal | measured / goal |"
echo "|---|---:|---:|---:|---:|---:|"
echo "| peak RSS (VmHWM), MiB | $hwm_mib | $fp_mib (fping peak RSS) | $(ratio "$hwm" "$fp_rss") | < $goal_rss_mib | $(ratio "$hwm_mib" "$goal_rss_mib") |"
echo "| RSS at the end (VmRSS), MiB | $rss_mib | $fp_mib (fping peak RSS) | $(ratio "$rss" "$fp_rss") | < $goal_rss_mib | $(ratio "$rss_mib" "$goal_rss_mib") |"
echo "| CPU s per round | $cpu_round | $fp_cpu (fping, one sweep) | $(ratio "$cpu_round" "$fp_cpu") | < $goal_cpu_s | $(ratio "$cpu_round" "$goal_cpu_s") |"
echo "| CPU, % of one core over the ${interval} s interval | $cpu_pct | $fp_pct (fping sweep / ${interval} s) | $(ratio "$cpu_pct" "$fp_pct") | < $goal_cpu_pct | $(ratio "$cpu_pct" "$goal_cpu_pct") |"
echo "| round 1 CPU s (start-up, sheet, first-time traces) | $(calc "$round1_ticks/$hz") | $fp_cpu (fping, one sweep, no traces) | $(ratio "$(calc "$round1_ticks/$hz")" "$fp_cpu") | — | — |"
echo "| SQLite bytes written per round | $bytes_round | $csv (results as CSV) | $(ratio "$bytes_round" "$csv") | ≤ 1.0x CSV (aim 0.5x) | $(ratio "$bytes_round" "$csv") |"
echo "| the same per day at this interval, MB | $(calc "$bytes_round*86400/$interval/1e6" .0f) | $(calc "$csv*86400/$interval/1e6" .0f) (CSV) | $(ratio "$bytes_round" "$csv") | — | — |"
echo
echo "Per round (RSS at the round's end; RssAnon is heap, RssFile mostly the mapped binary):"
echo
echo "| round | s since previous | CPU s | bytes written | VmRSS MiB | RssAnon MiB | RssFile MiB |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
echo "| 1 | start | $(calc "$round1_ticks/$hz") | $round1_bytes | — | — | — |"
printf '%s\n' "${rows[@]}"
echo
echo "CPU by thread, rounds 2-$((rounds + 1)) together: $by_thread."
echo
echo "At the end: $threads threads, RssAnon $(calc "$anon/1024" .1f) MiB, RssFile $(calc "$file/1024" .1f) MiB; database $db bytes; $replies of $n targets answered in the last round, which took $last_took s (the monitor spreads a round's starts over 9/10 of the interval by design; fping's sweep took $fp_wall s)."
echo
python3 - "$hwm_mib" "$goal_rss_mib" "$cpu_pct" "$goal_cpu_pct" "$bytes_round" "$csv" <<'PY'
import sys
rss, rss_goal, cpu, cpu_goal, written, csv = map(float, sys.argv[1:])
misses = []
if written > csv:
    misses.append(f"SQLite writes {written / csv:.2f}x the results as CSV, over the 1.0x goal")
if rss >= rss_goal:
    misses.append(f"peak RSS {rss:.1f} MiB is {rss / rss_goal:.2f}x the {rss_goal:.0f} MiB goal")
if cpu >= cpu_goal:
    misses.append(f"CPU {cpu:.2f} % of a core is {cpu / cpu_goal:.2f}x the {cpu_goal:.0f} % goal")
print("**Verdict: met.**" if not misses else f"**Verdict: not met:** {'; '.join(misses)}.")
PY
