#!/usr/bin/env bash
# Replay benchmark of the whole pipeline (capture -> decode -> flows -> reassembly -> protocols
# -> enrichment -> analysis -> events) on two generated workloads:
#   bulk  few large flows: mail sessions with 2-60 KB messages, 100 KB transfers, some
#         reordering and loss, UDP noise (`spamtap-gen bench --mix bulk`, 500 MB);
#   mail  a mail relay's SPAN port: many short SMTP sessions, SOCKS5 tunnels carrying SMTP,
#         TLS-like bulk flows, thousands of client hosts (`--mix mail`, 733 MB);
#   starttls  the same mix with every relay session encrypted after STARTTLS (TLS 1.3): run
#         with `mail` (`all` does), it prints what TLS costs per session against cleartext SMTP.
# For each, next to `tcpdump -r FILE 'ip proto 253'` (the read alone) in the same run, it prints
# the median of RUNS runs of cpu-s, wall-s, peak RSS, packets/s and events/s for 1 and 2
# workers, the ratios to the read, a checksum of the events (of the sorted lines but the stats
# event: the same before and after a change that must not change them), and, where perf works, a profile by stage.
#
#   bash benches/run.sh [bulk|mail|starttls|all]   (SIZE_MB=100 for smaller captures, RUNS=5)
# BASELINE=path/to/an/older/spamtap measures that binary too, in the same run (a before/after
# table on the same machine), and says whether its events are the same as this build's.
# INSTRUCTIONS=1 also counts the instructions of a replay of a 60 MB slice of each workload
# (valgrind's callgrind, 1 worker), for this build and the baseline: timings on a shared VM
# drift by a quarter between runs, instruction counts by well under 1%.
# PGO=1 also builds the profile-guided build (dist/build-pgo.sh, trained on other traffic than
# these workloads) and measures it in the same runs, and says whether its events are the same;
# PGO=target/pgo/release/spamtap measures one already built.
# Captures are kept in $BENCH_DIR (default /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
which_mix=${1:-all}
runs=${RUNS:-5}
dir=${BENCH_DIR:-/tmp}
bash tests/deps.sh
if [ ! -x /usr/bin/time ]; then
    echo "benches/run.sh needs GNU time: apt-get install time" >&2
    exit 1
fi
cargo build --release --locked --workspace --bins 2>&1 | tail -1
bin=./target/release/spamtap
baseline=${BASELINE:-}
if [ -n "$baseline" ] && [ ! -x "$baseline" ]; then
    echo "BASELINE=$baseline is not an executable" >&2
    exit 1
fi
pgo=${PGO:-}
if [ -n "$pgo" ] && [ ! -x "$pgo" ]; then
    bash dist/build-pgo.sh
    pgo=./target/pgo/release/spamtap
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "${INSTRUCTIONS:-}" ] && ! command -v valgrind >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi

# One run of a command, appended to FILE as "cpu-s wall-s peak-KiB".
timed() {
    local file=$1
    shift
    /usr/bin/time -o "$work/time" -f '%U %S %e %M' "$@" >/dev/null 2>/dev/null
    awk '{ printf "%.3f %.3f %d\n", $1 + $2, $3, $4 }' "$work/time" >> "$file"
}

# The median of each column of FILE's runs: "cpu-s wall-s peak-KiB".
medians() {
    local col out=()
    for col in 1 2 3; do
        out+=("$(cut -d' ' -f"$col" "$1" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')")
    done
    echo "${out[@]}"
}

# Median of RUNS runs of a command.
measure() {
    : > "$work/runs"
    for _ in $(seq "$runs"); do timed "$work/runs" "$@"; done
    medians "$work/runs"
}

# Medians of RUNS replays with W workers by each binary given, a line each. Their runs take
# turns, so a change in the machine's speed during the measurement (on a shared VM, up to a
# quarter) falls on every binary alike.
measure_replays() {
    local w=$1 pcap=$2 n
    shift 2
    for ((n = 1; n <= $#; n++)); do : > "$work/runs.$n"; done
    for _ in $(seq "$runs"); do
        for ((n = 1; n <= $#; n++)); do
            timed "$work/runs.$n" "${!n}" replay --workers "$w" --sensor bench -o /dev/null "$pcap"
        done
    done
    for ((n = 1; n <= $#; n++)); do medians "$work/runs.$n"; done
}

# A profile of one run by stage: the share of samples in each part of the path.
profile() {
    command -v perf >/dev/null && perf stat -e cpu-clock true >/dev/null 2>&1 || {
        echo "  (no profile: perf is not available here)"
        return
    }
    perf record -q -F 2999 -o "$work/perf.data" "$@" >/dev/null 2>&1 || return
    perf report -q -i "$work/perf.data" --no-children --sort sym 2>/dev/null | awk '
        $1 ~ /%$/ {
            pct = $1 + 0; sym = $0
            if (sym ~ /pcap|capture::/) s = "capture (libpcap, read loop)"
            else if (sym ~ /decode|etherparse/) s = "decode"
            else if (sym ~ /Dispatcher|crossbeam|runtime::|sched|futex|switch/) s = "dispatch and hand-offs"
            else if (sym ~ /flow::|FlowTable|hashbrown|hash|BinaryHeap|tracker::/) s = "flow table and tracker"
            else if (sym ~ /reassembly|Assembler|smoltcp/) s = "reassembly"
            else if (sym ~ /smtp|socks|http_connect|tls|x509|protocols::|memchr|rfc2047|md5|sha/) s = "protocols"
            else if (sym ~ /enrich|fingerprint|regex|RegexSet/) s = "enrichment (fingerprints, groups)"
            else if (sym ~ /analysis::/) s = "analysis"
            else if (sym ~ /serde|output::|ryu|itoa|zmij|humantime|fmt/) s = "events (serialising)"
            else if (sym ~ /malloc|free|realloc|_int_|unlink_chunk|memmove|memcpy|memset/) s = "malloc and memcpy"
            else if (sym ~ /\[k\]/) s = "kernel"
            else s = "other"
            share[s] += pct
        }
        END { for (s in share) printf "  %6.1f%%  %s\n", share[s], s }' | sort -rn
}

# Instructions of one replay with 1 worker, every thread counted (callgrind runs them one at a
# time).
instructions() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" replay -q --workers 1 \
        --sensor bench -o /dev/null "$2" 2>&1 | awk '/Collected/ { print $NF }'
}

# The events' checksum: of the sorted lines, as the order of flows finished together depends on
# batch boundaries; without the stats event, which names the output (a temporary file) and
# counts memory.
events_checksum() {
    grep -v '"event_type":"stats"' "$1" | sort | sha256sum | cut -c1-16
}

bench() {
    local mix=$1 size=$2
    local pcap="$dir/spamtap-bench-$mix-${size}mb.pcap"
    [ -f "$pcap" ] || ./target/release/spamtap-gen bench --mix "$mix" --size-mb "$size" "$pcap"
    local bytes packets
    bytes=$(stat -c %s "$pcap")
    packets=$(tcpdump -r "$pcap" -nn -q 2>/dev/null | wc -l)
    # Outputs append: start from an empty file.
    rm -f "$work/events.json"
    "$bin" replay --workers 1 --sensor bench -o "$work/events.json" "$pcap"
    local events sum
    tls_sessions=$(grep -c '"status":"tls"' "$work/events.json" || true)
    events=$(wc -l < "$work/events.json")
    sum=$(events_checksum "$work/events.json")
    echo
    echo "== $mix: $pcap, $bytes bytes, $packets packets, $events events (sha256 $sum...)"
    read -r c_read w_read m_read < <(measure tcpdump -r "$pcap" -nn 'ip proto 253')
    printf '%-26s %7s %7s %9s %11s %10s %9s %9s\n' command cpu-s wall-s "peak MiB" packets/s events/s "cpu/read" "wall/read"
    row() {
        awk -v n="$1" -v c="$2" -v w="$3" -v m="$4" -v p="$packets" -v e="$5" -v cr="$c_read" -v wr="$w_read" \
            'BEGIN { if (w <= 0) w = 0.001; if (cr <= 0) cr = 0.001;
                     printf "%-26s %7.2f %7.2f %9.0f %11.0f %10s %9.2f %9.2f\n", n, c, w, m / 1024, p / w,
                            (e == "-" ? "-" : sprintf("%.0f", e / w)), c / cr, w / wr }'
    }
    row "tcpdump -r (read only)" "$c_read" "$w_read" "$m_read" -
    # Another build's events against this one's: "NAME: the same events", or not.
    same_events() {
        rm -f "$work/other.json"
        "$2" replay --workers 1 --sensor bench -o "$work/other.json" "$pcap"
        local other_sum
        other_sum=$(events_checksum "$work/other.json")
        if [ "$other_sum" = "$sum" ]; then
            echo "$1: the same events"
        else
            echo "$1: DIFFERENT events (sha256 $other_sum...)"
        fi
        other_events=$(wc -l < "$work/other.json")
    }
    local other_events base_events pgo_events
    if [ -n "$baseline" ]; then
        same_events baseline "$baseline"
        base_events=$other_events
    fi
    if [ -n "$pgo" ]; then
        same_events "PGO build" "$pgo"
        pgo_events=$other_events
    fi
    # The binaries measured, in turns: the baseline, this build, the PGO build.
    local binaries=() results=() mine=0 per
    if [ -n "$baseline" ]; then
        binaries+=("$baseline")
        mine=1
    fi
    binaries+=("$bin")
    [ -z "$pgo" ] || binaries+=("$pgo")
    per=${#binaries[@]}
    for w in 1 2; do
        mapfile -t -O "${#results[@]}" results < <(measure_replays "$w" "$pcap" "${binaries[@]}")
    done
    # results: for 1 worker then 2, one line per binary, in that order.
    result() { echo "${results[$((($1 - 1) * per + $2))]}"; }
    # The rows of binary INDEX, named NAME, with EVENTS events; with a RATIO label, also its
    # 2-worker wall against its 1-worker wall.
    rows() {
        local name=$1 index=$2 count=$3 ratio=${4:-} w c t m wall1=""
        for w in 1 2; do
            read -r c t m < <(result "$w" "$index")
            row "$name --workers $w" "$c" "$t" "$m" "$count"
            if [ "$w" = 1 ]; then
                wall1=$t
            elif [ -n "$ratio" ]; then
                awk -v a="$t" -v b="$wall1" -v r="$ratio" 'BEGIN { printf "%s, wall: %.2f\n", r, a / b }'
            fi
        done
    }
    [ -z "$baseline" ] || rows baseline 0 "$base_events"
    rows "spamtap replay" "$mine" "$events" "2 workers / 1 worker"
    read -r c _ _ < <(result 1 "$mine")
    eval "cpu1_$mix=$c; read_$mix=$c_read; sessions_$mix=$tls_sessions"
    [ -z "$pgo" ] || rows "PGO build" $((mine + 1)) "$pgo_events" "PGO build, 2 workers / 1 worker"
    echo "profile, 1 worker:"
    profile "$bin" replay --workers 1 --sensor bench -o /dev/null "$pcap"
    if [ -n "${INSTRUCTIONS:-}" ]; then
        local slice="$dir/spamtap-bench-$mix-60mb.pcap" counted theirs
        [ -f "$slice" ] || ./target/release/spamtap-gen bench --mix "$mix" --size-mb 60 "$slice"
        counted=$(instructions "$bin" "$slice")
        if [ -n "$baseline" ]; then
            theirs=$(instructions "$baseline" "$slice")
            awk -v m="$counted" -v t="$theirs" 'BEGIN {
                printf "instructions, 60 MB slice, 1 worker: baseline %.1fM, spamtap %.1fM (%+.1f%%)\n",
                    t / 1e6, m / 1e6, (m - t) * 100 / t }'
        else
            awk -v m="$counted" 'BEGIN { printf "instructions, 60 MB slice, 1 worker: %.1fM\n", m / 1e6 }'
        fi
        if [ -n "$pgo" ]; then
            awk -v m="$counted" -v p="$(instructions "$pgo" "$slice")" 'BEGIN {
                printf "instructions, 60 MB slice, 1 worker: PGO build %.1fM (%+.1f%% against this build)\n",
                    p / 1e6, (p - m) * 100 / m }'
        fi
    fi
}

# The same relay sessions in cleartext and in TLS: what TLS adds per session (the read of the
# larger file taken out).
tls_per_session() {
    awk -v cm="$cpu1_mail" -v rm="$read_mail" -v ct="$cpu1_starttls" -v rt="$read_starttls" \
        -v n="$sessions_starttls" 'BEGIN {
            d = ((ct - rt) - (cm - rm)) * 1e6 / n
            printf "\nTLS after STARTTLS vs cleartext, per relay session (%d sessions, read excluded): %+.1f us of cpu\n", n, d }'
}

case $which_mix in
    bulk) bench bulk "${SIZE_MB:-500}" ;;
    mail) bench mail "${SIZE_MB:-733}" ;;
    starttls) bench mail "${SIZE_MB:-733}"; bench starttls "${SIZE_MB:-733}"; tls_per_session ;;
    all) bench bulk "${SIZE_MB:-500}"; bench mail "${SIZE_MB:-733}"; bench starttls "${SIZE_MB:-733}"; tls_per_session ;;
    *) echo "usage: $0 [bulk|mail|starttls|all]" >&2; exit 2 ;;
esac
