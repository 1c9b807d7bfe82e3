#!/usr/bin/env bash
# Central's availability over 30 days (issue 18, "Benchmark"), against
# nx-27017 (the test MongoDB, MongoDB wire protocol on SQLite) on
# loopback. Nothing is probed: the targets are 198.18.x.y labels.
#
#  1. Rollups, the way central reads now: nx-27017 seeded (examples/
#     seed_central.rs) with board documents and one `rollups` document per
#     (board, target) and hour of the last 30 days, grown in steps
#     (CENTRAL_BOARDS, cumulative). At each step, for page 1 and page 10
#     (or the last) of `GET /api/v1/availability?window=30d&page_size=100`:
#     the documents the aggregation's `$match` selects (counted with the
#     same filter), the median wall time of the aggregation sent straight
#     to the server, and the median wall time of the request through a
#     real `edgeprobe central`. Next to them, not what central sends: the
#     same sums as one plain `$match` per board of the page grouped by
#     `$target`, a form nx-27017 runs in SQL (central's `$or` and `$concat`
#     group key make it fall back to a scan of the collection in Python).
#  2. The peer, measured in the same run: the same 30-day window computed
#     the way central did before rollups (every `results` document of the
#     window, one per round, grouped by board and target), on a second
#     nx-27017 seeded with raw results (one a minute) for a smaller fleet.
#
# Prints Markdown for BENCHMARKS.md on stdout (each figure next to its
# peer as a ratio), progress on stderr; asserts nothing.
#
# nx-27017 is slow, and the sizes are what fits in about 20 minutes
# rather than the issue's 200 boards x 100 targets (14.4 M rollups):
# - it inserts about 8,000 documents/s (one Python process; batch size and
#   concurrent batches change nothing), so 14.4 M would take 30 minutes;
# - it runs central's page aggregation (a `$match` with `$or`, a `$group`
#   keyed by `$concat`) as a scan of the whole collection in Python, about
#   20 us per rollup stored: 30 s a page at 1.44 M rollups, several
#   minutes at 14.4 M;
# - that scan blocks its one event loop, so the driver's heartbeat fails
#   after 10 s: with default timeouts a slower read is retried (twice the
#   time) or refused (central answers 503). Central and the seeder are
#   therefore given a URI with long timeouts (MONGO_OPTS below).
#
#   bench/central.sh                full scale (about 20 minutes)
#   SCALE=small bench/central.sh    a quick run (about 3 minutes)
#   CENTRAL_BOARDS="5 20"           rollup fleet steps in boards (cumulative)
#   CENTRAL_TARGETS=100             targets per board
#   CENTRAL_RAW_BOARDS=2 CENTRAL_RAW_TARGETS=10   the raw peer's fleet
#   CENTRAL_REPEAT=3                timed requests per figure (median)
#   EDGEPROBE_BIN=PATH SEED_CENTRAL_BIN=PATH      use these binaries
set -Eeuo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
ensure_packages curl python3 >&2
. scripts/lib/nx27017.sh
ensure_nx27017 >&2
if [[ -z ${EDGEPROBE_BIN:-} || -z ${SEED_CENTRAL_BIN:-} ]]; then
    require_cargo
    cargo build --release --locked -q --bin edgeprobe --example seed_central
fi
bin=${EDGEPROBE_BIN:-$PWD/target/release/edgeprobe}
seed=${SEED_CENTRAL_BIN:-$PWD/target/release/examples/seed_central}

if [[ ${SCALE:-full} == small ]]; then
    steps=${CENTRAL_BOARDS:-2 5} targets=${CENTRAL_TARGETS:-20}
    raw_boards=${CENTRAL_RAW_BOARDS:-1} raw_targets=${CENTRAL_RAW_TARGETS:-2}
else
    steps=${CENTRAL_BOARDS:-5 20} targets=${CENTRAL_TARGETS:-100}
    raw_boards=${CENTRAL_RAW_BOARDS:-2} raw_targets=${CENTRAL_RAW_TARGETS:-10}
fi
days=30 page_size=100
repeat=${CENTRAL_REPEAT:-3}

mkdir -p target
work=$(mktemp -d "$PWD/target/bench-central.XXXXXX") # on disk, not tmpfs
nx_pids=() central=
cleanup() {
    [[ -n $central ]] && kill "$central" 2>/dev/null
    for p in "${nx_pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
log() { echo "central.sh: $*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    until python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null; do sleep 0.1; done
}
# `key=value` lines of FILE as shell variables PREFIX_key.
kv() { sed -n "s/^\([a-z_]*\)=\(.*\)$/$2_\1=\2/p" "$1"; }

start_nx() { # start_nx NAME PORT
    nx-27017 --db "$work/$1.db" --host 127.0.0.1 -p "$2" \
        --pid-file "$work/$1.pid" --log-file "$work/$1.log" >/dev/null 2>&1 &
    nx_pids+=($!)
    wait_port "$2"
}

roll_port=$(free_port)
roll_uri=mongodb://127.0.0.1:$roll_port
# Long timeouts: see the header. Without them nx-27017's blocked event
# loop fails the driver's heartbeat during any read longer than 10 s.
MONGO_OPTS=${MONGO_OPTS:-/?connectTimeoutMS=600000&heartbeatFrequencyMS=600000&serverSelectionTimeoutMS=600000}
start_nx rollups "$roll_port"

# One page through central: "median_ms ok_requests requests pairs_with_rounds total_pairs".
http_page() {
    local url="http://127.0.0.1:$cport/api/v1/availability?window=30d&page=$1&page_size=$page_size"
    curl -s -o /dev/null "$url" # warm: the fleet summary, the connection pool
    : >"$work/times"
    for ((i = 0; i < repeat; i++)); do
        curl -s -o "$work/page.json" -w '%{http_code} %{time_total}\n' "$url" >>"$work/times"
    done
    python3 - "$work/times" "$work/page.json" <<'PY'
import json, statistics, sys
lines = [l.split() for l in open(sys.argv[1])]
times = [float(t) * 1000 for _, t in lines]
ok = sum(1 for c, _ in lines if c == "200")
try:
    page = json.load(open(sys.argv[2]))
    with_rounds = sum(1 for r in page["rows"] if r["rounds"] > 0)
    total = page["total"]
except Exception:
    with_rounds, total = 0, 0
print(f"{statistics.median(times):.1f} {ok} {len(lines)} {with_rounds} {total}")
PY
}

results=$work/results.tsv
: >"$results"
prev=0
for boards in $steps; do
    log "seeding rollups: boards $prev..$boards x $targets targets x $days days"
    "$seed" --uri "$roll_uri" seed --boards "$boards" --targets "$targets" --days "$days" \
        --from-board "$prev" >"$work/seed-$boards"
    eval "$(kv "$work/seed-$boards" s)"
    echo "seed rollups $boards $s_inserted $s_seconds $s_docs_per_s" >>"$results"
    prev=$boards
    pairs=$((boards * targets))
    last=$(((pairs + page_size - 1) / page_size))
    pages="1 $((last < 10 ? last : 10))"
    [[ $last -eq 1 ]] && pages=1
    for page in $pages; do
        log "$boards boards: page $page straight to the server"
        "$seed" --uri "$roll_uri$MONGO_OPTS" rollup-query --page "$page" --page-size "$page_size" \
            --repeat "$repeat" >"$work/q"
        eval "$(kv "$work/q" q)"
        echo "direct $boards $page $q_pairs $q_docs $q_rows $q_median_ms $q_fleet_pairs" >>"$results"
    done
    cport=$(free_port)
    "$bin" central --mongo-uri "$roll_uri$MONGO_OPTS" --listen "127.0.0.1:$cport" 2>"$work/central.log" &
    central=$!
    until curl -sf -o /dev/null "http://127.0.0.1:$cport/healthz"; do sleep 0.2; done
    for page in $pages; do
        log "$boards boards: page $page through central"
        echo "http $boards $page $(http_page "$page")" >>"$results"
    done
    kill "$central"
    wait "$central" 2>/dev/null || true
    central=
done

raw_port=$(free_port)
start_nx raw "$raw_port"
log "seeding raw results: $raw_boards boards x $raw_targets targets x $days days, one a minute"
"$seed" --uri "mongodb://127.0.0.1:$raw_port" seed --raw --boards "$raw_boards" \
    --targets "$raw_targets" --days "$days" >"$work/seed-raw"
eval "$(kv "$work/seed-raw" s)"
echo "seed raw $raw_boards $s_inserted $s_seconds $s_docs_per_s" >>"$results"
raw_repeat=$((repeat < 3 ? repeat : 3))
log "raw results: the old aggregation, $raw_repeat times"
"$seed" --uri "mongodb://127.0.0.1:$raw_port$MONGO_OPTS" raw-query --days "$days" --repeat "$raw_repeat" >"$work/q"
eval "$(kv "$work/q" q)"
echo "raw $raw_boards $raw_targets $q_pairs $q_docs $q_rows $q_median_ms" >>"$results"

du_roll=$(du -sm "$work/rollups.db"* | awk '{s += $1} END {print s}')
du_raw=$(du -sm "$work/raw.db"* | awk '{s += $1} END {print s}')

export BENCH_COMMAND="${BENCH_COMMAND:-${SCALE:+SCALE=$SCALE }bench/central.sh}"
BENCH_COMMIT="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src examples bench Cargo.toml Cargo.lock || echo ' (with uncommitted changes)')"
export BENCH_COMMIT
python3 - "$results" "$targets" "$repeat" "$raw_repeat" "$du_roll" "$du_raw" "$NX27017_VERSION" "$("$bin" --version)" <<'PY'
import os, platform, sys, time
path, targets, repeat, raw_repeat, du_roll, du_raw, nxv, version = sys.argv[1:]
targets, repeat, raw_repeat = int(targets), int(repeat), int(raw_repeat)
rows = [l.split() for l in open(path)]
seeds = [r for r in rows if r[0] == "seed"]
direct = {(int(r[1]), int(r[2])): r for r in rows if r[0] == "direct"}
http = {(int(r[1]), int(r[2])): r for r in rows if r[0] == "http"}
raw = next(r for r in rows if r[0] == "raw")
raw_boards, raw_targets, raw_pairs, raw_docs, raw_ms = int(raw[1]), int(raw[2]), int(raw[3]), int(raw[4]), float(raw[6])
rounds_per_pair = 30 * 24 * 60  # one a minute

def n(x):
    return f"{x:,}"

def ratio(a, b):
    return f"{a / b:.3g}x" if b else "n/a"

print("## 7. Central availability (bench/central.sh): `/api/v1/availability?window=30d` from rollups")
print()
print(f"`{os.environ.get('BENCH_COMMAND', 'bench/central.sh')}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
      f"commit {os.environ.get('BENCH_COMMIT', '?')}; {os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}.")
print()
print("Goal (issue 18): the cost depends on boards × targets × hours, never on rounds;")
print("30 d over the seeded fleet answers in under a second here.")
print()
print(f"nx-27017 {nxv} (MongoDB wire protocol on SQLite, one Python process) on loopback, {version}.")
print("Seeded by `examples/seed_central.rs` with `insert_many` in batches of 10,000, 3 at once:")
roll_inserted = sum(int(s[3]) for s in seeds if s[1] == "rollups")
roll_secs = sum(float(s[4]) for s in seeds if s[1] == "rollups")
raw_seed = next(s for s in seeds if s[1] == "raw")
biggest = max(b for b, _ in direct)
print(f"{n(roll_inserted)} rollups ({biggest} boards × {targets} targets × 720 hours) in {roll_secs:.0f} s "
      f"({roll_inserted / roll_secs:,.0f} documents/s, {du_roll} MB of SQLite); "
      f"{n(int(raw_seed[3]))} raw results ({raw_boards} boards × {raw_targets} targets × 43,200 rounds) "
      f"in {float(raw_seed[4]):.0f} s ({float(raw_seed[5]):,.0f} documents/s, {du_raw} MB).")
print(f"Times are medians of {repeat} requests (the raw aggregation: {raw_repeat}), after one untimed request.")
print("\"documents read\" is what the aggregation's `$match` selects, counted with the same filter.")
print()
print("| fleet (boards × targets) | page | pairs | documents read | per pair | aggregation ms | through central ms | ms per pair | HTTP 200 |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
for (b, p), d in sorted(direct.items()):
    pairs, docs, ms = int(d[3]), int(d[4]), float(d[6])
    h = http.get((b, p))
    hms = float(h[3]) if h else float("nan")
    ok = f"{h[4]}/{h[5]}, {h[6]} rows with rounds" if h else "n/a"
    print(f"| rollups: {b} × {targets} | {p} | {pairs} | {n(docs)} | {docs / pairs:.0f} | {ms:.0f} | {hms:.0f} | {hms / pairs:.1f} | {ok} |")
print(f"| raw results (peer): {raw_boards} × {raw_targets} | all | {raw_pairs} | {n(raw_docs)} | {raw_docs / raw_pairs:.0f} | {raw_ms:.0f} | (old central: not built) | {raw_ms / raw_pairs:.1f} | |")
print()
print("Ratios, rollups (page 1, the biggest fleet) against the raw peer, same run:")
print()
d = direct[(biggest, 1)]
h = http.get((biggest, 1))
pairs, docs, ms = int(d[3]), int(d[4]), float(d[6])
hms = float(h[3]) if h else float("nan")
print("| | rollups | raw peer | ratio |")
print("|---|---:|---:|---:|")
print(f"| documents read per request | {n(docs)} | {n(raw_docs)} | {ratio(docs, raw_docs)} |")
print(f"| documents read per pair | {docs / pairs:.0f} | {raw_docs / raw_pairs:.0f} | {ratio(docs / pairs, raw_docs / raw_pairs)} |")
print(f"| aggregation ms per request | {ms:.0f} | {raw_ms:.0f} | {ratio(ms, raw_ms)} |")
print(f"| aggregation ms per pair | {ms / pairs:.2f} | {raw_ms / raw_pairs:.2f} | {ratio(ms / pairs, raw_ms / raw_pairs)} |")
print(f"| through central ms per pair | {hms / pairs:.2f} | {raw_ms / raw_pairs:.2f} (aggregation only) | {ratio(hms / pairs, raw_ms / raw_pairs)} |")
print()
steps = sorted({b for b, _ in direct})
if len(steps) > 1:
    lo, hi = steps[0], steps[-1]
    dl, dh = direct[(lo, 1)], direct[(hi, 1)]
    hl, hh = http.get((lo, 1)), http.get((hi, 1))
    print(f"Growth with the fleet, page 1, {hi} boards against {lo} ({hi / lo:.3g}x the pairs, "
          f"{hi / lo:.3g}x the rollups): documents read {ratio(int(dh[4]), int(dl[4]))}, "
          f"aggregation time {ratio(float(dh[6]), float(dl[6]))}, "
          f"through central {ratio(float(hh[3]), float(hl[3])) if hl and hh else 'n/a'}.")
    print()
big_pairs = biggest * targets
big_docs = big_pairs * rounds_per_pair
ms_per_doc = raw_ms / raw_docs
print(f"Extrapolated, the old way over the biggest fleet ({biggest} × {targets}, 60 s rounds): "
      f"{n(big_docs)} documents read per request (boards × targets × 43,200 rounds), "
      f"about {big_docs * ms_per_doc / 1000:,.0f} s at the peer's {ms_per_doc * 1000:.1f} µs per document "
      f"(linear, an assumption); the page of rollups read {n(docs)} ({ratio(docs, big_docs)}).")
print()
met_time = all(float(h[3]) < 1000 for (b, _), h in http.items() if b == biggest)
per_pair = {int(d[4]) / int(d[3]) for d in direct.values()}
met_cost = max(per_pair) <= 720
worst = max(float(h[3]) for (b, _), h in http.items() if b == biggest)
print(f"**Verdict: {'met' if met_time and met_cost else 'not met'}.** Documents read per pair: "
      f"{', '.join(f'{x:.0f}' for x in sorted(per_pair))} (at most 720 hours, whatever the fleet or the rounds); "
      f"the slowest page through central over {biggest} × {targets}: {worst:.0f} ms (goal < 1000 ms on this server).")
PY
