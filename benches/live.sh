#!/usr/bin/env bash
# Live-capture capacity: a capture sent with tcpreplay over a veth pair between two network
# namespaces into `spamtap live` at rising rates, next to `tcpdump -w /dev/null` on the same
# veth as the capture-only limit. For each rate it prints the packets sent, the packets lost
# in the kernel and in the sensor, the smtp events against a replay of the same file, the
# events the outputs dropped (stats.output), the sensor's cpu by thread (the capture thread,
# each worker, the output thread, output lanes), and the cpu of a replay of the file run
# right after, with the ratio of the two.
# Needs root (namespaces, packet capture) and tcpreplay (installed here when missing).
#
#   sudo bash benches/live.sh [-w WORKERS] [-f PCAP] [RATE ...]
#
# RATE is Mbit/s or `top` (tcpreplay --topspeed); default: 100 200 400 top. PCAP defaults to
# the mail-heavy workload (`spamtap-gen bench --mix mail --size-mb 733`), kept in $BENCH_DIR.
# PGO=1 measures the profile-guided build (dist/build-pgo.sh) instead of the plain release one;
# PGO=target/pgo/release/spamtap, one already built. PIN=1 keeps tcpreplay (and the veth's
# softirq work, done on the cpu that sends) on cpu 0 and the sensor, tcpdump and the replays
# on the other cpus, so that they do not share a core. INSTRUCTIONS=1 also counts the
# instructions of the live sensor (valgrind's callgrind) fed a 60 MB slice of the mail workload
# at 20 Mbit/s, against a replay of the same slice. BUFFER_MIB=256 gives the sensor and tcpdump
# that kernel buffer instead of the default 64 MiB (a bigger ring lets the sensor nap longer).
set -euo pipefail
cd "$(dirname "$0")/.."
workers=1
pcap=""
buffer_mib=${BUFFER_MIB:-64}
while getopts "w:f:" opt; do
    case $opt in
        w) workers=$OPTARG ;;
        f) pcap=$OPTARG ;;
        *) echo "usage: $0 [-w WORKERS] [-f PCAP] [RATE ...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(100 200 400 top)
if [ "$(id -u)" -ne 0 ]; then
    echo "benches/live.sh needs root: network namespaces and packet capture" >&2
    exit 1
fi
bash tests/deps.sh
command -v tcpreplay >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tcpreplay >/dev/null
if [ -n "${INSTRUCTIONS:-}" ] && ! command -v valgrind >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi
cargo build --release --locked --workspace --bins 2>&1 | tail -1
dir=${BENCH_DIR:-/tmp}
if [ -z "$pcap" ]; then
    pcap="$dir/spamtap-bench-mail-733mb.pcap"
    [ -f "$pcap" ] || ./target/release/spamtap-gen bench --mix mail --size-mb 733 "$pcap"
fi
bin=$(pwd)/target/release/spamtap
send_on=()
receive_on=()
if [ -n "${PIN:-}" ]; then
    send_on=(taskset -c 0)
    receive_on=(taskset -c "1-$(($(nproc) - 1))")
fi
if [ -x "${PGO:-}" ]; then
    bin=$(realpath "$PGO")
elif [ -n "${PGO:-}" ]; then
    bash dist/build-pgo.sh
    bin=$(pwd)/target/pgo/release/spamtap
fi

a=spt-live-a-$$
b=spt-live-b-$$
work=$(mktemp -d)
cleanup() {
    ip netns del "$a" 2>/dev/null || true
    ip netns del "$b" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$a"
ip netns add "$b"
ip link add va netns "$a" type veth peer name vb netns "$b"
for ns in "$a" "$b"; do ip -n "$ns" link set lo up; done
ip -n "$a" link set va up
ip -n "$b" link set vb up
# Frames are replayed as captured, so no offload may merge or split them on the way.
ip netns exec "$a" ethtool -K va tso off gso off gro off >/dev/null 2>&1 || true
ip netns exec "$b" ethtool -K vb tso off gso off gro off >/dev/null 2>&1 || true

# What a replay of the file gives, for comparison: its cpu-s (and its events in FILE).
time_replay() {
    rm -f "$1"
    { /usr/bin/time -f '%U %S' "${receive_on[@]}" "$bin" replay -q --workers "$workers" --sensor bench \
        -o "$1" "$pcap"; } 2>&1 | awk '{ printf "%.2f", $1 + $2 }'
}
replay_cpu=$(time_replay "$work/replay.json")
count_smtp() { grep -c '"event_type":"smtp"' "$1" || true; }
replay_smtp=$(count_smtp "$work/replay.json")
frames=$(tcpdump -r "$pcap" -nn -q 2>/dev/null | wc -l)
echo "capture: $pcap, $frames frames; replay: $replay_smtp smtp events, $replay_cpu cpu-s; $workers worker(s); kernel buffer $buffer_mib MiB"

# Sends the file once into namespace b at RATE; prints the packets sent and the Mbit/s reached.
send() {
    local rate=$1 speed
    if [ "$rate" = top ]; then speed=(--topspeed); else speed=(--mbps="$rate"); fi
    ip netns exec "$a" "${send_on[@]}" tcpreplay -q -i va "${speed[@]}" "$pcap" 2>&1 |
        awk '/Actual:/ { sent = $2 } /Rated:/ { for (i = 1; i <= NF; i++) if ($i ~ /Mbps/) mbps = $(i - 1) }
             END { printf "%s %d\n", sent, mbps }'
}

# CPU seconds per thread of a process so far: the capture thread carries the program's name,
# the others theirs (spamtap-worker-N, spamtap-output, spamtap-out for an output's lane).
thread_seconds() {
    local hz t
    hz=$(getconf CLK_TCK)
    for t in /proc/"$1"/task/*; do
        awk -v hz="$hz" '{ name = $2; gsub(/[()]/, "", name); if (name == "spamtap") name = "capture"
            printf "%s %.2f  ", name, ($14 + $15) / hz }' "$t/stat"
    done
}

# User plus system CPU seconds a process has used so far.
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f(u%.1f)", ($14 + $15) / hz, $14 / hz }' "/proc/$1/stat"
}

# The live run's cpu against a replay's right after it, on a machine in the same state: on a
# shared VM a replay alone varies by a quarter from one minute to the next.
printf '%-6s %-8s %6s %9s %10s %11s %11s %7s %9s %10s %7s\n' rate sensor mbit/s sent captured kernel_lost sensor_lost smtp smtp_lost ev_dropped cpu_s
for rate in "${rates[@]}"; do
    # tcpdump, the capture-only limit, with the same kernel buffer as spamtap.
    ip netns exec "$b" "${receive_on[@]}" tcpdump -i vb -nn -B $((buffer_mib * 1024)) -w /dev/null \
        2>"$work/tcpdump.err" &
    dump=$!
    sleep 1
    read -r sent mbps < <(send "$rate")
    sleep 1
    cpu=$(cpu_seconds "$dump")
    kill -INT "$dump"
    wait "$dump" || true
    got=$(awk '/packets captured/ { print $1 }' "$work/tcpdump.err")
    dropped=$(awk '/dropped by kernel/ { print $1 }' "$work/tcpdump.err")
    lost=$((sent - got + dropped))
    [ "$lost" -ge 0 ] || lost=0
    printf '%-6s %-8s %6s %9s %10s %11s %11s %7s %9s %10s %7s\n' "$rate" tcpdump "$mbps" "$sent" \
        "$got" "$lost" - - - - "$cpu"

    # Outputs append: each rate starts from an empty file.
    rm -f "$work/live.json"
    ip netns exec "$b" "${receive_on[@]}" "$bin" live -i vb --workers "$workers" --sensor bench \
        --buffer-size "$buffer_mib" \
        --stats-interval 0 -o "$work/live.json" 2>"$work/live.err" &
    sensor=$!
    sleep 1
    read -r sent mbps < <(send "$rate")
    sleep 2
    cpu=$(cpu_seconds "$sensor")
    threads=$(thread_seconds "$sensor")
    kill -INT "$sensor"
    wait "$sensor" || true
    read -r captured queue_drops kernel_drops ev_dropped < <(grep '"event_type":"stats"' "$work/live.json" |
        tail -1 | python3 -c 'import json,sys; s=json.load(sys.stdin)["stats"]; c=s["capture"]
print(c["packets"], c["queue_drops"], c["kernel_drops"], sum(o["dropped"] for o in s["output"]))')
    live_smtp=$(count_smtp "$work/live.json")
    kernel_lost=$((sent - captured))
    [ "$kernel_lost" -ge "$kernel_drops" ] || kernel_lost=$kernel_drops
    printf '%-6s %-8s %6s %9s %10s %11s %11s %7s %9s %10s %7s\n' "$rate" spamtap "$mbps" "$sent" \
        "$captured" "$kernel_lost" "$queue_drops" "$live_smtp" "$((replay_smtp - live_smtp))" \
        "$ev_dropped" "$cpu"
    echo "       cpu-s by thread: $threads"
    again=$(time_replay "$work/again.json")
    awk -v live="${cpu%%(*}" -v replay="$again" \
        'BEGIN { printf "       a replay right after: %.2f cpu-s; live / replay: %.2f\n", replay, live / replay }'
done

# The work itself, apart from the machine: on a shared VM the same instructions take more cpu
# when they come spread over time than in one burst, which a timed comparison cannot separate.
# callgrind runs the sensor some fifty times slower, so the slice goes at 20 Mbit/s, slow enough
# for it to keep up, and the smtp events show that it did.
if [ -n "${INSTRUCTIONS:-}" ]; then
    slice="$dir/spamtap-bench-mail-60mb.pcap"
    [ -f "$slice" ] || ./target/release/spamtap-gen bench --mix mail --size-mb 60 "$slice"
    rm -f "$work/cg-live.json" "$work/cg-replay.json"
    ip netns exec "$b" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" live -i vb \
        --workers "$workers" --sensor bench --buffer-size "$buffer_mib" --stats-interval 0 \
        -o "$work/cg-live.json" 2>"$work/cg-live.err" &
    sensor=$!
    for _ in $(seq 120); do
        grep -q 'capturing on' "$work/cg-live.err" && break
        sleep 0.5
    done
    ip netns exec "$a" tcpreplay -q -i va --mbps=20 "$slice" >/dev/null 2>&1
    sleep 10
    kill -INT "$sensor"
    wait "$sensor" || true
    live_instr=$(awk '/Collected/ { print $NF }' "$work/cg-live.err")
    replay_instr=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" replay -q \
        --workers "$workers" --sensor bench -o "$work/cg-replay.json" "$slice" 2>&1 |
        awk '/Collected/ { print $NF }')
    awk -v l="$live_instr" -v r="$replay_instr" -v ls="$(count_smtp "$work/cg-live.json")" \
        -v rs="$(count_smtp "$work/cg-replay.json")" 'BEGIN {
        printf "instructions, 60 MB mail slice: live at 20 Mbit/s %.1fM (%s smtp), replay %.1fM (%s smtp); live / replay: %.3f\n",
            l / 1e6, ls, r / 1e6, rs, l / r }'
fi
