#!/usr/bin/env bash
# Builds spamtap with profile-guided optimisation, for deployment: target/pgo/release/spamtap.
#
#   bash dist/build-pgo.sh
#
# It builds an instrumented sensor, replays training traffic through it, and builds again with
# the profile it recorded. The training traffic is the project's own: every capture in pcaps/
# (SMTP, SOCKS, HTTP CONNECT, TLS, fingerprints, detections, link types) and a 60 MB capture of
# the generator's `starttls` mix (relay sessions encrypted after STARTTLS, SOCKS tunnels, bulk
# TLS-like flows). The benchmark's `mail` and `bulk` captures are not among them, so
# benches/run.sh measures the build on traffic it was not trained on.
#
# The events are the same as a plain release build's (benches/run.sh checks it: PGO=1). It
# needs rustup's llvm-tools component (for llvm-profdata of the compiler's own LLVM), which it
# installs, and takes about 12 minutes on 2 cores (a clean release build takes 4.4).
set -euo pipefail
cd "$(dirname "$0")/.."

host=$(rustc -vV | awk '/^host:/ { print $2 }')
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$profdata" ]; then
    if ! command -v rustup >/dev/null; then
        echo "dist/build-pgo.sh needs llvm-profdata from rustup's llvm-tools component:" \
            "no rustup here, and $profdata is missing" >&2
        exit 1
    fi
    rustup component add llvm-tools
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The instrumented build writes its profiles to a fixed place, so that its flags, and cargo's
# cache of it, stay the same from one run to the next.
profiles=$(pwd)/target/pgo-generate/profiles

cargo build -q --release --locked -p spamtap-gen
echo "1/3 instrumented build (target/pgo-generate)"
RUSTFLAGS="-Cprofile-generate=$profiles" \
    cargo build -q --release --locked --bin spamtap --target-dir target/pgo-generate

echo "2/3 training replays"
rm -rf "$profiles"
./target/release/spamtap-gen bench --mix starttls --size-mb 60 "$work/starttls.pcap" >/dev/null
trained=./target/pgo-generate/release/spamtap
for workers in 1 2; do
    "$trained" replay -q --workers "$workers" -o /dev/null "$work/starttls.pcap"
done
for pcap in pcaps/*.pcap; do
    "$trained" replay -q --workers 1 -o /dev/null "$pcap"
done
"$profdata" merge -o "$work/spamtap.profdata" "$profiles"

# The profile's path is new each run, so cargo builds everything again with it.
echo "3/3 optimised build (target/pgo)"
RUSTFLAGS="-Cprofile-use=$work/spamtap.profdata -Cllvm-args=-pgo-warn-missing-function=false" \
    cargo build -q --release --locked --bin spamtap --target-dir target/pgo
echo "built target/pgo/release/spamtap"
