# Sourced by bench/*.sh from the repository root: the start they share.
. scripts/lib/deps.sh

# usage: bench_setup SCRIPT-NAME WHY-ROOT PKG...
# Requires root (WHY-ROOT says why), installs the packages, and sets `bin`
# to $EDGEPROBE_BIN or, when that is unset, to a release build made now.
bench_setup() {
    local script=$1 why=$2
    shift 2
    require_root "$script" "$why"
    ensure_packages "$@" >&2
    if [[ -z ${EDGEPROBE_BIN:-} ]]; then
        require_cargo
        cargo build --release --locked -q
    fi
    bin=${EDGEPROBE_BIN:-$PWD/target/release/edgeprobe}
}

# usage: status_all BASE-URL
# Prints /api/v1/status with every target in `targets`: the API gives a
# page at a time, so this walks the pages (500 rows each, sheet order,
# which stays put while a round changes statuses).
status_all() {
    python3 - "$1" <<'PY'
import json, sys, urllib.request
base, doc, page, targets = sys.argv[1], None, 1, []
while True:
    with urllib.request.urlopen(f"{base}/api/v1/status?page_size=500&page={page}") as r:
        d = json.load(r)
    doc = doc or d
    targets += d["targets"]
    if page >= d["pages"]:
        break
    page += 1
doc["targets"] = targets
json.dump(doc, sys.stdout)
PY
}
