#!/usr/bin/env bash
# The whole test suite, as CI runs it: system packages, formatting, lints, then every test
# (unit, golden replays, CLI and bad input, the third-party corpus, live capture on a veth pair
# between network namespaces, and real postfix/dante/swaks/curl on test hosts; the last two
# need root: run this as root or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/deps.sh --test
cargo fmt --all --check
cargo clippy --locked --workspace --all-targets -- -D warnings
# The fuzz targets are a workspace of their own (cargo fuzz runs them, see fuzz/run.sh): they
# must keep compiling against the library.
cargo check --locked --quiet --manifest-path fuzz/Cargo.toml --bins

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    # Build as the user; only the tests run as root (network namespaces, packet capture).
    cargo test --locked --workspace --no-run
    run=(sudo -E env "PATH=$PATH" cargo test --locked --offline --workspace --no-fail-fast)
else
    run=(cargo test --locked --workspace --no-fail-fast)
fi
set +e
"${run[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole suite, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "spamtap: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
exit "$status"
