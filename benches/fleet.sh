#!/usr/bin/env bash
# Fleet throughput: sensor -> Redis stream -> `spamtap correlate`, on the mail-heavy workload
# (`spamtap-gen bench --mix mail`, SIZE_MB, default 300) against a redis-server started here on
# a loopback port (no persistence). In the same run, for RUNS runs each (medians):
#   read      tcpdump -r FILE 'ip proto 253' (the read alone)
#   replay    spamtap replay of the file, no publishing
#   publish   the same with --publish (entries written to the stream)
#   correlate spamtap correlate reading the stream the last publish left, to the end
# and the entries, observations and events per second of each stage, the stream's entry sizes
# (median and largest, from a sample) and the memory Redis holds for it.
#
#   bash benches/fleet.sh        (SIZE_MB=100 RUNS=3 for a quicker run)
set -euo pipefail
cd "$(dirname "$0")/.."
size=${SIZE_MB:-300}
runs=${RUNS:-5}
dir=${BENCH_DIR:-/tmp}
bash tests/deps.sh --test
cargo build --release --locked --workspace --bins 2>&1 | tail -1
bin=./target/release/spamtap
pcap="$dir/spamtap-bench-mail-${size}mb.pcap"
[ -f "$pcap" ] || ./target/release/spamtap-gen bench --mix mail --size-mb "$size" "$pcap"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
    --daemonize yes --pidfile "$work/redis.pid" >/dev/null
cleanup() {
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done

# Median wall seconds of RUNS runs of a command (run through `sh -c`).
median_wall() {
    local runs_file=$work/runs
    : > "$runs_file"
    for _ in $(seq "$runs"); do
        [ -n "${BEFORE:-}" ] && sh -c "$BEFORE"
        /usr/bin/time -o "$work/t" -f '%e' sh -c "$1" >/dev/null 2>&1
        cat "$work/t" >> "$runs_file"
    done
    sort -n "$runs_file" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

url="redis://127.0.0.1:$port/bench"
read_s=$(median_wall "tcpdump -r $pcap -w /dev/null 'ip proto 253'")
# File outputs append: each run starts from an empty file.
BEFORE="rm -f $work/replay.json" \
    replay_s=$(median_wall "$bin replay -q --workers 1 --sensor s0 -o $work/replay.json $pcap")
BEFORE="redis-cli -p $port del bench >/dev/null" \
    publish_s=$(median_wall "$bin replay -q --workers 1 --sensor s0 --no-local-alerts --publish $url -o /dev/null $pcap")
BEFORE="rm -f $work/site.json; redis-cli -p $port xgroup destroy bench g >/dev/null 2>&1 || true" \
    correlate_s=$(median_wall "$bin correlate -q --from $url --group g --sensors s0 -o $work/site.json")
events=$(wc -l < "$work/replay.json")
site_events=$(wc -l < "$work/site.json")
entries=$(redis-cli -p "$port" xlen bench)
memory=$(redis-cli -p "$port" memory usage bench samples 0)
# Observations: counted in the stream's entries.
redis-cli -p "$port" --raw xrange bench - + | grep '^{' > "$work/entries"
observations=$(python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    n += len(json.loads(line).get("observations", []))
print(n)' "$work/entries")
sizes=$(awk '{ print length($0) }' "$work/entries" | sort -n | awk '{ v[NR] = $1 } END { printf "%d %d", v[int((NR + 1) / 2)], v[NR] }')
per_obs=$(awk -v m="$memory" -v o="$observations" 'BEGIN { printf "%.0f", m / (o > 0 ? o : 1) }')

echo "workload: $pcap (${size} MB), $events events in a replay; medians of $runs runs"
printf '%-10s %8s %10s %s\n' stage wall-s x-read throughput
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / (s > 0 ? s : 0.001) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / (b > 0 ? b : 0.001) }'; }
printf '%-10s %8s %10s %s\n' read "$read_s" 1.00 "-"
printf '%-10s %8s %10s %s\n' replay "$replay_s" "$(ratio "$replay_s" "$read_s")" "$(rate "$events" "$replay_s") events/s"
printf '%-10s %8s %10s %s\n' publish "$publish_s" "$(ratio "$publish_s" "$read_s")" "$(rate "$entries" "$publish_s") entries/s, $(rate "$observations" "$publish_s") observations/s"
printf '%-10s %8s %10s %s\n' correlate "$correlate_s" "$(ratio "$correlate_s" "$read_s")" "$(rate "$entries" "$correlate_s") entries/s, $(rate "$observations" "$correlate_s") observations/s, $site_events events"
echo "stream: $entries entries carrying $observations observations; entry size median $(echo "$sizes" | cut -d' ' -f1) B, largest $(echo "$sizes" | cut -d' ' -f2) B; Redis holds $memory B for it ($per_obs B per observation)"
