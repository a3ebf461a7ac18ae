#!/usr/bin/env bash
# Throughput benchmark of the whole pipeline (capture -> decode -> flows -> reassembly -> events).
#
# Generates a mixed capture (mail sessions, bulk transfers, some reordering and loss, UDP noise)
# of SIZE_MB (default 500), then reports packets/s, Gbit/s and peak RSS of `spamtap replay` with
# 1 and 2 workers, next to the time `tcpdump -r FILE 'ip proto 253'` takes to only read it.
# Usage: bash benches/run.sh [SIZE_MB]     (the capture is kept in $BENCH_DIR, default /tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/deps.sh
size_mb=${1:-500}
dir=${BENCH_DIR:-/tmp}
pcap="$dir/spamtap-bench-${size_mb}mb.pcap"

cargo build --release --locked --workspace --bins 2>&1 | tail -1
if [ ! -f "$pcap" ]; then
    ./target/release/spamtap-gen bench --size-mb "$size_mb" "$pcap"
fi
bytes=$(stat -c %s "$pcap")
packets=$(tcpdump -r "$pcap" -nn -q 2>/dev/null | wc -l)

# Seconds (wall, best of 3) and peak RSS (KiB, largest of 3) of a command.
measure() {
    local best="" rss=0 t m tf
    tf=$(mktemp)
    for _ in 1 2 3; do
        /usr/bin/time -o "$tf" -f '%e %M' "$@" >/dev/null 2>/dev/null
        read -r t m < "$tf"
        if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
        if [ "$m" -gt "$rss" ]; then rss=$m; fi
    done
    rm -f "$tf"
    echo "$best $rss"
}

if [ ! -x /usr/bin/time ]; then
    echo "benches/run.sh needs GNU time: apt-get install time" >&2
    exit 1
fi

read -r t_tcpdump rss_tcpdump < <(measure tcpdump -r "$pcap" -nn 'ip proto 253')
printf '%-28s %8s %12s %9s %10s %8s\n' "command" "seconds" "packets/s" "Gbit/s" "peak RSS" "x tcpdump"
report() {
    local name=$1 t=$2 rss=$3
    awk -v n="$name" -v t="$t" -v p="$packets" -v b="$bytes" -v r="$rss" -v base="$t_tcpdump" \
        'BEGIN{ if (t <= 0) t = 0.001; printf "%-28s %8.2f %12.0f %9.2f %7.0f MiB %8.2f\n", n, t, p/t, b*8/t/1e9, r/1024, t/base }'
}
report "tcpdump 'ip proto 253'" "$t_tcpdump" "$rss_tcpdump"
for w in 1 2; do
    read -r t rss < <(measure ./target/release/spamtap replay --workers "$w" --sensor bench -o /dev/null "$pcap")
    report "spamtap replay --workers $w" "$t" "$rss"
done
echo "capture: $pcap, $bytes bytes, $packets packets"
