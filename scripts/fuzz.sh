#!/usr/bin/env bash
# Run every fuzz target for a bounded time (cargo fuzz, nightly Rust).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     default 20
#   scripts/fuzz.sh --build-only             build the targets, run nothing
#
# The committed corpus (fuzz/corpus/TARGET) seeds each run; what a run
# discovers goes to a scratch directory, not into the checkout. A crash
# stops the script: its input is in fuzz/artifacts/TARGET/. Copy it to
# fuzz/regressions/TARGET/ (tests/fuzz_corpus.rs then replays it in every
# test run), fix the cause, and run this again.
set -Eeuo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-20}
case $seconds in
--build-only | [1-9] | [1-9][0-9]*) ;;
*)
    echo "fuzz.sh: '$seconds' is not a number of seconds; usage: scripts/fuzz.sh [SECONDS|--build-only]" >&2
    exit 2
    ;;
esac

if ! cargo +nightly --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal || {
        echo "fuzz.sh: cargo fuzz needs a nightly Rust toolchain: rustup toolchain install nightly" >&2
        exit 1
    }
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --version 0.13.2 --locked
fi

if [[ $seconds == --build-only ]]; then
    exec cargo +nightly fuzz build --release
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in $(cargo fuzz list); do
    mkdir -p "$scratch/$target"
    echo "== fuzz $target for ${seconds}s"
    # -rss_limit_mb / -malloc_limit_mb: a memory bomb is a finding;
    # -timeout: so is one input taking seconds.
    log="$scratch/$target.log"
    if ! cargo +nightly fuzz run --release "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=1024 -malloc_limit_mb=512 -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "fuzz.sh: $target found a crash; its input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$log" || tail -n 5 "$log"
done
