#!/usr/bin/env bash
# Installs what spamtap needs from the system on Debian/Ubuntu: libpcap and a C toolchain with
# make (to build and run), iproute2 and python3 (live-capture test), tcpdump and GNU time
# (benchmark). With --test, also
# the real programs of tests/real_programs.rs and tests/real_tls.rs (postfix with Cyrus SASL,
# dante, swaks, curl, proxychains4) and the independent TLS fingerprinters of
# tests/tls_conformance.rs (tshark; FoxIO's ja4plus from PyPI, pinned, in a venv at
# /var/lib/spamtap-tests/venv), and what tests/outputs.rs and tests/eve_schema.rs talk to and
# check with (redis-server, rsyslog, tcpreplay, python3-jsonschema), and the browser
# tests/report.rs opens reports in (chromium). Does nothing when all are
# present; uses sudo when not root.
#   bash tests/deps.sh [--test]
set -euo pipefail

need=()
if [ "${1:-}" = --test ]; then
    command -v postfix >/dev/null 2>&1 || need+=(postfix)
    command -v danted >/dev/null 2>&1 || need+=(dante-server)
    command -v swaks >/dev/null 2>&1 || need+=(swaks)
    command -v curl >/dev/null 2>&1 || need+=(curl)
    command -v proxychains4 >/dev/null 2>&1 || need+=(proxychains4)
    command -v saslpasswd2 >/dev/null 2>&1 || need+=(sasl2-bin)
    dpkg -s libsasl2-modules >/dev/null 2>&1 || need+=(libsasl2-modules)
    [ -f /etc/ssl/certs/ssl-cert-snakeoil.pem ] || need+=(ssl-cert)
    command -v tshark >/dev/null 2>&1 || need+=(tshark)
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
    command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
    command -v rsyslogd >/dev/null 2>&1 || need+=(rsyslog)
    command -v tcpreplay >/dev/null 2>&1 || need+=(tcpreplay)
    /usr/bin/python3 -c 'import jsonschema' >/dev/null 2>&1 || need+=(python3-jsonschema)
    command -v chromium >/dev/null 2>&1 || need+=(chromium)
fi
dpkg -s libpcap-dev >/dev/null 2>&1 || need+=(libpcap-dev)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
[ -x /usr/bin/time ] || need+=(time)
command -v cc >/dev/null 2>&1 || need+=(gcc)
# jemalloc, the sensor's allocator, is built from source by its crate.
command -v make >/dev/null 2>&1 || need+=(make)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)

venv=/var/lib/spamtap-tests/venv
ja4plus_version=1.4.0
install_ja4plus() {
    [ "${1:-}" = --test ] || return 0
    if "$venv/bin/pip" show ja4plus 2>/dev/null | grep -qx "Version: $ja4plus_version"; then
        return 0
    fi
    echo "installing: ja4plus $ja4plus_version (PyPI) in $venv" >&2
    "${as_root[@]}" python3 -m venv "$venv"
    "${as_root[@]}" "$venv/bin/pip" install -q "ja4plus==$ja4plus_version"
}

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    as_root=(false)
fi
if [ ${#need[@]} -eq 0 ]; then
    install_ja4plus "${1:-}"
    exit 0
fi
if [ "${as_root[*]}" = false ]; then
    echo "spamtap: needs ${need[*]}; run as root or install sudo" >&2
    exit 1
fi
echo "installing: ${need[*]}" >&2
# postfix: install without configuring a system mail service; the test brings its own.
echo "postfix postfix/main_mailer_type select No configuration" | "${as_root[@]}" debconf-set-selections
echo "wireshark-common wireshark-common/install-setuid boolean false" | "${as_root[@]}" debconf-set-selections
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
install_ja4plus "${1:-}"
