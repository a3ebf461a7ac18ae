#!/usr/bin/env bash
# The whole test suite, as CI runs it: system packages, formatting, lints, then every test
# (unit, golden replays, CLI and bad input, the third-party corpus, and live capture on a veth
# pair between network namespaces, which needs root: run this as root or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/deps.sh
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    # Build as the user; only the test binaries run as root (namespaces, packet capture).
    cargo test --locked --no-run
    exec sudo -E env "PATH=$PATH" cargo test --locked --offline
fi
cargo test --locked
