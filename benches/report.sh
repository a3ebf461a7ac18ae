#!/usr/bin/env bash
# `spamtap report` at scale: the events of the mail workload (`spamtap-gen bench --mix mail`)
# repeated until they make about GB gigabytes of NDJSON (default 1), then the report of them:
# wall seconds, peak RSS, and both per GB, the median of RUNS runs; `wc -l` on the same file in
# the same run as the floor of reading it.
#
#   bash benches/report.sh        (GB=0.25 RUNS=3 for a quicker run)
set -euo pipefail
cd "$(dirname "$0")/.."
gb=${GB:-1}
runs=${RUNS:-3}
dir=${BENCH_DIR:-/tmp}
bash tests/deps.sh
cargo build --release --locked --workspace --bins 2>&1 | tail -1
bin=./target/release/spamtap
pcap="$dir/spamtap-bench-mail-300mb.pcap"
[ -f "$pcap" ] || ./target/release/spamtap-gen bench --mix mail --size-mb 300 "$pcap"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" replay -q --sensor bench --rules tests/rules -o "$work/one.json" "$pcap"
target=$(awk -v g="$gb" 'BEGIN { printf "%d", g * 1024 * 1024 * 1024 }')
one=$(stat -c %s "$work/one.json")
copies=$(( (target + one - 1) / one ))
for _ in $(seq "$copies"); do cat "$work/one.json"; done > "$work/events.json"
bytes=$(stat -c %s "$work/events.json")
events=$(wc -l < "$work/events.json")
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
: > "$work/wc"; : > "$work/report"
for _ in $(seq "$runs"); do
    /usr/bin/time -o "$work/t" -f '%e %M' wc -l "$work/events.json" >/dev/null
    cat "$work/t" >> "$work/wc"
    /usr/bin/time -o "$work/t" -f '%e %M' "$bin" report -q -o "$work/report.html" "$work/events.json"
    cat "$work/t" >> "$work/report"
done
wc_s=$(cut -d' ' -f1 "$work/wc" | median)
rep_s=$(cut -d' ' -f1 "$work/report" | median)
rep_kib=$(cut -d' ' -f2 "$work/report" | median)
page=$(stat -c %s "$work/report.html")
awk -v b="$bytes" -v e="$events" -v w="$wc_s" -v s="$rep_s" -v k="$rep_kib" -v p="$page" -v r="$runs" 'BEGIN {
    gbs = b / 1024 / 1024 / 1024
    printf "events: %.2f GB, %d events (the mail workload repeated); medians of %d runs\n", gbs, e, r
    printf "wc -l:  %.2f s\n", w
    printf "report: %.2f s (%.2f s per GB, %.1f x wc -l), peak RSS %.0f MiB, %.0f events/s; page %d KB\n",
        s, s / gbs, s / (w > 0 ? w : 0.01), k / 1024, e / (s > 0 ? s : 0.01), p / 1024
}'
