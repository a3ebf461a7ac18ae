#!/usr/bin/env bash
# The real clients of tests/real_programs.rs, run in the client namespace against the servers
# of network.sh: swaks (plain with PIPELINING and a rejected recipient and a The Bat! X-Mailer,
# AUTH PLAIN, AUTH LOGIN, STARTTLS), Python's smtplib (two messages in one session), curl
# through SOCKS4, SOCKS4a and SOCKS5 (with a user and password, and with a wrong one), and swaks
# through SOCKS5 and SOCKS4 by proxychains4. Prints what the programs reported, one fact a line:
#   queued <queue id>      a message the MTA accepted, as swaks or smtplib saw it
#   http <curl exit code> <what>
#   clients.sh DIR
set -uo pipefail
dir=${1:?state directory}
run() { ip netns exec spt-cli "$@"; }
user=spamtaptest password=Tap-test-pw1
from=alice@client.example.test

queued() { grep -oE 'queued as [0-9A-F]+' | sed 's/queued as /queued /'; }

run swaks --server 10.78.0.2 --ehlo client.example.test --from $from \
    --to bob@example.test,nobody@example.test,carol@example.test --pipeline \
    --header "Subject: pipelined with a rejected recipient" \
    --header "X-Mailer: The Bat! (v9.5.2) Professional" 2>&1 | queued
for mech in PLAIN LOGIN; do
    run swaks --server 10.78.0.2 --ehlo client.example.test --from $from --to dave@example.test \
        --auth $mech --auth-user $user@example.test --auth-password $password \
        --header "Subject: AUTH $mech" 2>&1 | queued
done
run swaks --server 10.78.0.2 --ehlo client.example.test --from $from --to erin@example.test \
    --tls --header "Subject: over TLS" >/dev/null 2>&1
run python3 - <<'PY' | queued
import smtplib
with smtplib.SMTP("10.78.0.2", 25, local_hostname="client.example.test") as s:
    s.ehlo()
    for n in (1, 2):
        s.mail("alice@client.example.test")
        s.rcpt("frank@example.test")
        code, reply = s.data(
            f"From: alice@client.example.test\r\nTo: frank@example.test\r\n"
            f"Subject: message {n} of one session\r\n\r\nhello\r\n"
        )
        print(reply.decode())
PY
echo "http $(run curl -s -o /dev/null -w '%{http_code}' --max-time 5 --socks4 10.78.0.2:1080 http://10.78.0.2:8080/; echo " $?") socks4"
echo "http $(run curl -s -o /dev/null -w '%{http_code}' --max-time 5 --socks4a 10.78.0.2:1080 http://web.example.test:8080/; echo " $?") socks4a"
echo "http $(run curl -s -o /dev/null -w '%{http_code}' --max-time 5 --socks5-hostname 10.78.0.2:1080 --proxy-user $user:$password http://web.example.test:8080/; echo " $?") socks5"
echo "http $(run curl -s -o /dev/null -w '%{http_code}' --max-time 5 --socks5 10.78.0.2:1080 --proxy-user $user:wrong-password http://10.78.0.2:8080/; echo " $?") socks5-bad-password"
printf 'strict_chain\nquiet_mode\n[ProxyList]\nsocks5 10.78.0.2 1080 %s %s\n' $user $password >"$dir/socks5.conf"
printf 'strict_chain\nquiet_mode\n[ProxyList]\nsocks4 10.78.0.2 1080\n' >"$dir/socks4.conf"
run proxychains4 -f "$dir/socks5.conf" swaks --server 10.78.0.2 --from bot@client.example.test \
    --to grace@example.test --header "Subject: through SOCKS5" 2>&1 | queued
run proxychains4 -f "$dir/socks4.conf" swaks --server 10.78.0.2 --from bot@client.example.test \
    --to heidi@example.test --header "Subject: through SOCKS4" 2>&1 | queued
# Let the last FINs and ACKs cross the wire before the capture stops.
sleep 1
