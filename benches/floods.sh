#!/usr/bin/env bash
# Floods against the memory budget (`--memcap`): peak RSS, time and what the sensor evicted,
# for three generated floods, each with the default budget and with a small one:
#   syn            1,000,000 unanswered SYNs (`spamtap-gen flood --kind syn`)
#   short          1,000,000 whole short SMTP sessions (handshake, banner, QUIT, close)
#   stuck-in-data  100,000 SMTP sessions stuck in DATA, never closed
# All connections start 10 microseconds apart, so every one is still tracked at the end
# unless the budget evicts it.
#   bash benches/floods.sh [syn|short|stuck-in-data ...]   (MEMCAP_SMALL=256, WORKERS=1)
# Captures are kept in $BENCH_DIR (default /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BENCH_DIR:-/tmp}
small=${MEMCAP_SMALL:-256}
workers=${WORKERS:-1}
kinds=("$@")
[ ${#kinds[@]} -eq 0 ] && kinds=(syn short stuck-in-data)
bash tests/deps.sh
cargo build --release --locked --workspace --bins 2>&1 | tail -1
bin=./target/release/spamtap
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%-14s %8s %9s %7s %9s %9s %12s %11s\n' flood memcap flows wall-s peak-MiB evicted emergencies obs-drops
for kind in "${kinds[@]}"; do
    case $kind in
        syn | short) flows=1000000 ;;
        stuck-in-data) flows=100000 ;;
        *) echo "benches/floods.sh: unknown flood $kind" >&2; exit 1 ;;
    esac
    pcap=$dir/spamtap-flood-$kind-$flows.pcap
    [ -s "$pcap" ] || ./target/release/spamtap-gen flood --kind "$kind" --flows "$flows" "$pcap" >/dev/null
    for memcap in 1024 "$small"; do
        /usr/bin/time -o "$work/time" -f '%e %M' "$bin" replay -q --workers "$workers" \
            --memcap "$memcap" --stats-interval 0 -o "$work/eve.json" "$pcap"
        read -r wall peak < "$work/time"
        tail -1 "$work/eve.json" | python3 -c '
import json, sys
s = json.loads(sys.stdin.read())["stats"]
f, a = s["flow"], s["analysis"]
print(f["total"], f["evicted_memcap"], f["emergencies"], a["observation_drops"])' > "$work/stats"
        read -r total evicted emergencies drops < "$work/stats"
        printf '%-14s %8s %9s %7s %9d %9s %12s %11s\n' "$kind" "$memcap" "$total" "$wall" \
            $((peak / 1024)) "$evicted" "$emergencies" "$drops"
        rm -f "$work/eve.json"
    done
done
