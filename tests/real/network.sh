#!/usr/bin/env bash
# The test network of tests/real_programs.rs, and the real servers on it: two network
# namespaces joined by a veth pair, a client (10.78.0.1) and a server (10.78.0.2) running
# postfix (SMTP with AUTH and STARTTLS on 25, submission with STARTTLS on 587, implicit TLS on
# 465), dante (SOCKS4 and SOCKS5, with and without a user name) and a small HTTP server.
# Only addresses inside these namespaces are used.
#
#   network.sh up DIR     build it, state and logs under DIR; prints the sensor's interface
#   network.sh down DIR   remove namespaces and processes (also after a failed test)
set -euo pipefail

cmd=${1:?up or down}
dir=${2:?state directory}
cli=spt-cli srv=spt-srv
vcli=sptcli0 vsrv=sptsrv0
user=spamtaptest password=Tap-test-pw1

down() {
    if [ -f "$dir/postfix/main.cf" ]; then
        ip netns exec $srv postfix -c "$dir/postfix" stop >/dev/null 2>&1 || true
    fi
    for pidfile in "$dir"/*.pid; do
        [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    ip netns pids $srv 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns pids $cli 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del $cli 2>/dev/null || true
    ip netns del $srv 2>/dev/null || true
    rm -rf /etc/netns/$srv /etc/netns/$cli
}

if [ "$cmd" = down ]; then
    down
    exit 0
fi

down
mkdir -p "$dir"
ip netns add $cli
ip netns add $srv
ip link add $vcli netns $cli type veth peer name $vsrv netns $srv
ip -n $cli addr add 10.78.0.1/24 dev $vcli
ip -n $srv addr add 10.78.0.2/24 dev $vsrv
for ns in $cli $srv; do ip -n $ns link set lo up; done
ip -n $cli link set $vcli up
ip -n $srv link set $vsrv up
# Names resolve inside the namespaces only (ip netns exec binds these over /etc/hosts).
for ns in $cli $srv; do
    mkdir -p /etc/netns/$ns
    printf '127.0.0.1 localhost\n10.78.0.2 mx.example.test web.example.test\n10.78.0.1 client.example.test\n' >/etc/netns/$ns/hosts
done

# A user for dante's username method and postfix's SASL.
id $user >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin $user
echo "$user:$password" | chpasswd

# postfix, with its own configuration, queue and log under $dir.
pf=$dir/postfix
mkdir -p "$pf" "$dir/spool" "$dir/data" "$dir/sasl"
cp /etc/postfix/master.cf "$pf/master.cf"
# No chroot: the daemons need the SASL database under $dir.
sed -i -E 's/^(smtp +inet +n +- +)y/\1n/' "$pf/master.cf"
# Submission with STARTTLS (587) and over implicit TLS (465, RFC 8314).
cat >>"$pf/master.cf" <<'CONF'
submission inet n - n - - smtpd
  -o smtpd_tls_security_level=encrypt
smtps inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes
CONF
cat >"$pf/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $dir/spool
data_directory = $dir/data
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
myhostname = mx.example.test
mydomain = example.test
mydestination = example.test, mx.example.test
inet_interfaces = all
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
local_recipient_maps =
smtpd_banner = \$myhostname ESMTP Postfix
smtpd_recipient_restrictions = check_recipient_access inline:{ nobody@example.test=REJECT }, permit_sasl_authenticated, permit_mynetworks, reject_unauth_destination
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = $dir/sasl
smtpd_tls_security_level = may
smtpd_tls_cert_file = /etc/ssl/certs/ssl-cert-snakeoil.pem
smtpd_tls_key_file = /etc/ssl/private/ssl-cert-snakeoil.key
smtpd_tls_auth_only = no
# The client's port in "client=" lines: tests/real_tls.rs joins sessions to events by it.
smtpd_client_port_logging = yes
default_transport = discard
local_transport = discard
CONF
cat >"$dir/sasl/smtpd.conf" <<CONF
pwcheck_method: auxprop
auxprop_plugin: sasldb
mech_list: PLAIN LOGIN
CONF
# Debian's Cyrus SASL reads the default database whatever the configuration path says: add
# (or update) only the test user there, readable by postfix.
echo "$password" | saslpasswd2 -p -c -u example.test $user
chgrp postfix /etc/sasldb2
chmod 640 /etc/sasldb2
chmod 755 "$dir"
postfix -c "$pf" set-permissions >/dev/null 2>&1 || true
chown -R postfix "$dir/spool" "$dir/data"
ip netns exec $srv postfix -c "$pf" start >/dev/null 2>&1

# dante: SOCKS4 and SOCKS5; SOCKS5 clients that offer a user name must give a valid one.
cat >"$dir/danted.conf" <<CONF
logoutput: $dir/danted.log
internal: 10.78.0.2 port = 1080
external: 10.78.0.2
clientmethod: none
socksmethod: username none
user.privileged: root
user.unprivileged: nobody
client pass {
    from: 0.0.0.0/0 to: 0.0.0.0/0
}
socks pass {
    from: 0.0.0.0/0 to: 0.0.0.0/0
    protocol: tcp
    log: connect error
}
CONF
ip netns exec $srv danted -f "$dir/danted.conf" -p "$dir/danted.pid" -D

# A plain HTTP server for curl through the proxy.
mkdir -p "$dir/www"
echo "hello through the proxy" >"$dir/www/index.html"
ip netns exec $srv python3 -m http.server 8080 --bind 10.78.0.2 --directory "$dir/www" >/dev/null 2>&1 &
echo $! >"$dir/http.pid"

# Wait until every server answers.
for port in 25 465 587 1080 8080; do
    for _ in $(seq 50); do
        if ip netns exec $cli bash -c "exec 3<>/dev/tcp/10.78.0.2/$port" 2>/dev/null; then break; fi
        sleep 0.1
    done
done
echo $vcli
