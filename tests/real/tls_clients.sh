#!/usr/bin/env bash
# The TLS mail clients of tests/real_tls.rs, run in the client namespace against postfix of
# network.sh, one session each: swaks with STARTTLS on 25, STARTTLS and AUTH on 587, implicit
# TLS and AUTH on 465, with and without PIPELINING, TLS 1.2 and 1.3 forced in turn, 1 to 50
# recipients; Python's smtplib with STARTTLS and over implicit TLS, several messages a session;
# curl on 587 and 465. Postfix's log is the truth the test compares with.
#   tls_clients.sh DIR
set -uo pipefail
dir=${1:?state directory}
run() { ip netns exec spt-cli "$@"; }
user=spamtaptest password=Tap-test-pw1
from=alice@client.example.test

rcpts() { # rcpts N PREFIX: N addresses, comma-separated
    local n=$1 prefix=$2 list=() i
    for ((i = 1; i <= n; i++)); do list+=("$prefix$i@example.test"); done
    local IFS=,
    echo "${list[*]}"
}

session=0
for version in tlsv1_2 tlsv1_3; do
    for pipeline in "" --pipeline; do
        for n in 1 5 50; do
            session=$((session + 1))
            to=$(rcpts "$n" "s$session-r")
            run swaks --server 10.78.0.2 --port 25 --tls --tls-protocol $version $pipeline \
                --ehlo client.example.test --from $from --to "$to" \
                --header "Subject: swaks 25 $version $pipeline $n" >/dev/null 2>&1
            session=$((session + 1))
            to=$(rcpts "$n" "s$session-r")
            run swaks --server 10.78.0.2 --port 587 --tls --tls-protocol $version $pipeline \
                --ehlo client.example.test --from $from --to "$to" \
                --auth PLAIN --auth-user $user@example.test --auth-password $password \
                --header "Subject: swaks 587 $version $pipeline $n" >/dev/null 2>&1
            session=$((session + 1))
            to=$(rcpts "$n" "s$session-r")
            run swaks --server 10.78.0.2 --port 465 --tlsc --tls-protocol $version $pipeline \
                --ehlo client.example.test --from $from --to "$to" \
                --auth LOGIN --auth-user $user@example.test --auth-password $password \
                --header "Subject: swaks 465 $version $pipeline $n" >/dev/null 2>&1
        done
    done
done

# The clients as they come, nothing forced: their hellos are what the fingerprint rules name
# (rules/fingerprints.toml, TLS clients).
run swaks --server 10.78.0.2 --port 587 --tls --ehlo client.example.test --from $from \
    --to default-swaks@example.test --auth PLAIN --auth-user $user@example.test \
    --auth-password $password --header "Subject: swaks defaults" >/dev/null 2>&1
run python3 - "$user@example.test" "$password" <<'PY'
import smtplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("10.78.0.2", 587, local_hostname="client.example.test") as s:
    s.starttls(context=ctx)
    s.login(sys.argv[1], sys.argv[2])
    s.sendmail("alice@client.example.test", ["default-python@example.test"],
               "Subject: smtplib defaults\r\n\r\nhello\r\n")
PY
printf 'From: alice@client.example.test\r\nSubject: curl defaults\r\n\r\nhello\r\n' >"$dir/curl-message.txt"
run curl -s --max-time 10 --insecure --ssl-reqd --url smtp://mx.example.test:587 \
    --user "$user@example.test:$password" --mail-from $from \
    --mail-rcpt default-curl@example.test --upload-file "$dir/curl-message.txt" >/dev/null 2>&1

# A refused recipient among three (postfix rejects nobody@), pipelined and not.
for pipeline in "" --pipeline; do
    run swaks --server 10.78.0.2 --port 25 --tls $pipeline --ehlo client.example.test \
        --from $from --to "x1@example.test,nobody@example.test,x2@example.test" \
        --header "Subject: swaks refused recipient $pipeline" >/dev/null 2>&1
done

run python3 - "$user@example.test" "$password" <<'PY'
import smtplib, ssl, sys
user, password = sys.argv[1], sys.argv[2]

def context(version):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = version
    return ctx

session = 0
for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
    for implicit in (False, True):
        for messages, recipients in ((1, 1), (3, 2), (2, 20)):
            session += 1
            if implicit:
                s = smtplib.SMTP_SSL("10.78.0.2", 465, local_hostname="client.example.test",
                                     context=context(version))
                s.ehlo()
                s.login(user, password)
            else:
                s = smtplib.SMTP("10.78.0.2", 25, local_hostname="client.example.test")
                s.ehlo()
                s.starttls(context=context(version))
                s.ehlo()
            for m in range(messages):
                to = [f"p{session}-m{m}-r{r}@example.test" for r in range(recipients)]
                s.sendmail("alice@client.example.test", to,
                           f"From: alice@client.example.test\r\nSubject: smtplib {session} {m}\r\n\r\nhello\r\n")
            s.quit()
PY

for port in 587 465; do
    for version in 1.2 1.3; do
        scheme=smtp
        [ $port = 465 ] && scheme=smtps
        printf 'From: alice@client.example.test\r\nSubject: curl %s %s\r\n\r\nhello\r\n' $port $version >"$dir/curl-message.txt"
        run curl -s --max-time 10 --insecure --ssl-reqd --tlsv$version --tls-max $version \
            --url "$scheme://10.78.0.2:$port" --user "$user@example.test:$password" \
            --mail-from $from --mail-rcpt "curl-$port-$version-a@example.test" \
            --mail-rcpt "curl-$port-$version-b@example.test" \
            --mail-rcpt "curl-$port-$version-c@example.test" \
            --upload-file "$dir/curl-message.txt" >/dev/null 2>&1
    done
done
# Let the last FINs and ACKs cross the wire before the capture stops.
sleep 1
