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
