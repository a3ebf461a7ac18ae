#!/usr/bin/env bash
# Re-captures the real-program captures of pcaps/: the traffic of a client script of tests/real
# between the real servers of tests/real/network.sh, written by tcpdump on the client's veth
# end. Run as root after `bash tests/deps.sh --test`; then
# `UPDATE_GOLDEN=1 cargo test --test golden` and say in the commit why the capture changed.
#   capture.sh programs   pcaps/real-programs.pcap from clients.sh
#   capture.sh tls        pcaps/real-tls.pcap from tls_clients.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
case "${1:-programs}" in
programs) clients=tests/real/clients.sh out=pcaps/real-programs.pcap ;;
tls) clients=tests/real/tls_clients.sh out=pcaps/real-tls.pcap ;;
*) echo "usage: capture.sh programs|tls" >&2; exit 2 ;;
esac
dir=$(mktemp -d /tmp/spamtap-capture.XXXXXX)
trap 'bash tests/real/network.sh down "$dir"; rm -rf "$dir"' EXIT
iface=$(bash tests/real/network.sh up "$dir")
ip netns exec spt-cli tcpdump -i "$iface" -s 0 -U -w "$dir/capture.pcap" 2>"$dir/tcpdump.err" &
tcpdump_pid=$!
until grep -q "listening on" "$dir/tcpdump.err" 2>/dev/null; do sleep 0.1; done
bash "$clients" "$dir"
kill -INT $tcpdump_pid
wait $tcpdump_pid || true
cp "$dir/capture.pcap" "$out"
echo "$out: $(tcpdump -r "$out" 2>/dev/null | wc -l) packets"
