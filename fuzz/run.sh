#!/usr/bin/env bash
# Runs every fuzz target in turn for SECONDS each (default 1800), from its kept corpus
# (fuzz/corpus/<target>, local and untracked) and the committed seeds (fuzz/seeds/<target>,
# made by `spamtap-gen fuzz-seeds fuzz/seeds`), with its dictionary (fuzz/dict) when there is
# one, and prints runs and exec/s per target. A crash or timeout stops it with the input left
# in fuzz/artifacts/<target>/: add it to the target's seeds as a regression and fix the bug.
#   bash fuzz/run.sh [SECONDS] [TARGET ...]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-1800}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(frames tcp_sessions smtp socks http_connect tls)
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz
declare -A dict=([smtp]=smtp [socks]=socks [http_connect]=socks [tls]=tls)
printf '%-14s %10s %8s %9s\n' target runs seconds exec/s >summary.txt
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    args=("-max_total_time=$seconds" -rss_limit_mb=2048 -timeout=10)
    if [ -n "${dict[$t]:-}" ]; then
        args+=("-dict=dict/${dict[$t]}.dict")
    fi
    seeds=()
    [ -d "seeds/$t" ] && seeds=("seeds/$t")
    log=$(mktemp)
    echo "== $t: $seconds s" >&2
    if ! RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "corpus/$t" "${seeds[@]}" -- "${args[@]}" >"$log" 2>&1; then
        tail -40 "$log" >&2
        echo "fuzz/run.sh: $t failed; the input is in fuzz/artifacts/$t/" >&2
        exit 1
    fi
    awk -v t="$t" '/^Done [0-9]+ runs in [0-9]+ second/ { printf "%-14s %10d %8d %9d\n", t, $2, $5, ($5 > 0 ? $2 / $5 : 0) }' "$log" >>summary.txt
    rm -f "$log"
done
cat summary.txt
