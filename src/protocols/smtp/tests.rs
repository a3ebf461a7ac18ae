//! The session state machine, one behaviour per test, driven by scripted client and server
//! bytes.

use super::*;
use crate::direction::Direction::{Ctos, Stoc};
use crate::protocols::script;

const C: Direction = Ctos;
const S: Direction = Stoc;

fn records(run: script::Run) -> Vec<SmtpRecord> {
    run.events
        .into_iter()
        .map(|o| match o.event {
            AppEvent::Smtp(r) => *r,
            _ => unreachable!("only smtp events"),
        })
        .collect()
}

fn run_parser(parser: &mut SmtpParser, script: &[(Direction, &[u8])]) -> Vec<SmtpRecord> {
    records(script::run_data(parser, script))
}

fn run(script: &[(Direction, &[u8])]) -> Vec<SmtpRecord> {
    run_parser(&mut SmtpParser::default(), script)
}

fn json(records: &[SmtpRecord]) -> String {
    records
        .iter()
        .map(|r| {
            let mut s = serde_json::to_string(&r.smtp).unwrap();
            if let Some(e) = &r.email {
                s.push_str(&serde_json::to_string(e).unwrap());
            }
            s
        })
        .collect()
}

const GREETING: &[(Direction, &[u8])] = &[
    (S, b"220 mx.example.net ESMTP Postfix\r\n"),
    (C, b"EHLO client.example.org\r\n"),
    (S, b"250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-AUTH PLAIN LOGIN\r\n250 CHUNKING\r\n"),
];

fn session(rest: &[(Direction, &'static [u8])]) -> Vec<(Direction, &'static [u8])> {
    GREETING
        .iter()
        .copied()
        .chain(rest.iter().copied())
        .collect()
}

#[test]
fn one_transaction_with_headers() {
    let r = run(&session(&[
        (C, b"MAIL FROM:<alice@example.org> SIZE=120\r\n"),
        (S, b"250 2.1.0 Ok\r\n"),
        (C, b"RCPT TO:<bob@example.net>\r\n"),
        (S, b"250 2.1.5 Ok\r\n"),
        (C, b"DATA\r\n"),
        (S, b"354 End data with <CR><LF>.<CR><LF>\r\n"),
        (
            C,
            b"From: Alice <alice@example.org>\r\nTo: bob@example.net, \"Doe, J\" <j@x.org>\r\n\
              Cc: c@example.com\r\nSubject: =?UTF-8?B?SGVsbG8=?=\r\n  world\r\n\
              Message-ID: <1.2@example.org>\r\nX-Mailer: The Bat! (v9.5.2) Professional\r\n\
              Content-Type: multipart/mixed; boundary=\"----------0123ABCD\"\r\n\
              Received: from a by b\r\nX-Originating-IP: [192.0.2.9]\r\n\r\nbody line\r\n..dot\r\n.\r\n",
        ),
        (S, b"250 2.0.0 Ok: queued as 4XyZ1\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 2.0.0 Bye\r\n"),
    ]));
    assert_eq!(r.len(), 1);
    let (s, e) = (&r[0].smtp, r[0].email.as_ref().unwrap());
    assert_eq!(
        s.banner.as_deref(),
        Some("220 mx.example.net ESMTP Postfix")
    );
    assert_eq!(
        (s.helo.as_deref(), s.helo_verb),
        (Some("client.example.org"), Some(HeloVerb::Ehlo))
    );
    assert_eq!(
        s.extensions.iter().collect::<Vec<_>>(),
        ["PIPELINING", "SIZE", "AUTH", "CHUNKING"]
    );
    assert_eq!(s.mail_from.as_deref(), Some("alice@example.org"));
    assert_eq!(s.rcpt_to, vec!["bob@example.net"]);
    assert_eq!((s.rcpt_accepted, s.rcpt_rejected, s.trans_depth), (1, 0, 1));
    assert_eq!(s.status, Status::Queued);
    assert_eq!(s.queue_id.as_deref(), Some("4XyZ1"));
    assert_eq!(
        s.last_reply.as_deref(),
        Some("250 2.0.0 Ok: queued as 4XyZ1")
    );
    assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
    assert_eq!(e.from.as_deref(), Some("Alice <alice@example.org>"));
    assert_eq!(e.to, vec!["bob@example.net", "\"Doe, J\" <j@x.org>"]);
    assert_eq!(e.cc, vec!["c@example.com"]);
    assert_eq!(
        e.subject.as_deref(),
        Some("Hello  world"),
        "folded and decoded"
    );
    assert_eq!(e.message_id.as_deref(), Some("<1.2@example.org>"));
    assert_eq!(
        e.x_mailer.as_deref(),
        Some("The Bat! (v9.5.2) Professional")
    );
    assert_eq!(e.boundary.as_deref(), Some("----------0123ABCD"));
    assert_eq!(e.received, vec!["from a by b"]);
    assert_eq!(e.x_originating_ip.as_deref(), Some("192.0.2.9"));
    assert_eq!(
        e.header_names.iter().collect::<Vec<_>>(),
        vec![
            "From",
            "To",
            "Cc",
            "Subject",
            "Message-ID",
            "X-Mailer",
            "Content-Type",
            "Received",
            "X-Originating-IP"
        ]
    );
    // Headers and body, without the terminating ".\r\n".
    assert_eq!(s.data_bytes, 342);
}

#[test]
fn pipelined_commands_pair_with_replies_in_order() {
    let r = run(&session(&[
        (
            C,
            b"MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nRCPT TO:<nobody@y.org>\r\nRCPT TO:<c@y.org>\r\nDATA\r\n",
        ),
        (S, b"250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n250 ok\r\n354 go\r\n"),
        (C, b"Subject: x\r\n\r\nhi\r\n.\r\n"),
        (S, b"250 ok\r\n"),
    ]));
    let s = &r[0].smtp;
    assert_eq!(s.rcpt_to.len(), 3);
    assert_eq!((s.rcpt_accepted, s.rcpt_rejected), (2, 1));
    assert_eq!(s.rcpt_verdicts, vec![Some(true), Some(false), Some(true)]);
    assert_eq!(s.status, Status::Queued);
    assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
}

#[test]
fn recipient_verdicts_stay_aligned_past_a_malformed_rcpt() {
    let r = run(&session(&[
        (
            C,
            b"MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nRCPT garbage\r\nRCPT TO:<c@y.org>\r\nRCPT TO:<d@y.org>\r\nRCPT TO:<e@y.org>\r\n",
        ),
        (S, b"250 ok\r\n250 ok\r\n501 syntax\r\n550 no such user\r\n250 ok\r\n"),
    ]));
    let s = &r[0].smtp;
    assert_eq!(s.rcpt_to, vec!["b@y.org", "c@y.org", "d@y.org", "e@y.org"]);
    assert_eq!(
        s.rcpt_verdicts,
        vec![Some(true), Some(false), Some(true), None],
        "e: no reply seen"
    );
}

#[test]
fn all_recipients_rejected_is_rejected() {
    let r = run(&session(&[
        (C, b"MAIL FROM:<a@x.org>\r\n"),
        (S, b"250 ok\r\n"),
        (C, b"RCPT TO:<b@y.org>\r\n"),
        (S, b"554 5.7.1 Relay access denied\r\n"),
        (C, b"DATA\r\n"),
        (S, b"554 5.5.1 Error: no valid recipients\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 Bye\r\n"),
    ]));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].smtp.status, Status::Rejected);
    assert_eq!(r[0].smtp.rcpt_rejected, 1);
    assert_eq!(
        r[0].smtp.last_reply.as_deref(),
        Some("554 5.5.1 Error: no valid recipients")
    );
    assert!(r[0].email.is_none(), "QUIT was a command, not message data");
}

fn auth(script: &[(Direction, &'static [u8])]) -> SmtpRecord {
    let mut all = session(script);
    all.push((C, b"QUIT\r\n"));
    let r = run(&all);
    assert_eq!(r.len(), 1);
    let json = json(&r);
    for secret in ["c2VjcmV0", "secret", "hunter2", "ya29"] {
        assert!(!json.contains(secret), "secret {secret} leaked: {json}");
    }
    r.into_iter().next().unwrap()
}

#[test]
fn auth_plain_with_initial_response() {
    // "\0user@example.com\0secret"
    let r = auth(&[
        (C, b"AUTH PLAIN AHVzZXJAZXhhbXBsZS5jb20Ac2VjcmV0\r\n"),
        (S, b"235 2.7.0 Authentication successful\r\n"),
    ]);
    let a = r.smtp.auth.unwrap();
    assert_eq!(
        (a.mechanism.as_str(), a.username.as_deref(), a.success),
        ("PLAIN", Some("user@example.com"), Some(true))
    );
}

#[test]
fn auth_plain_after_challenge() {
    let r = auth(&[
        (C, b"AUTH PLAIN\r\n"),
        (S, b"334 \r\n"),
        (C, b"AHVzZXJAZXhhbXBsZS5jb20Ac2VjcmV0\r\n"),
        (S, b"535 5.7.8 Error: authentication failed\r\n"),
    ]);
    let a = r.smtp.auth.unwrap();
    assert_eq!(
        (a.username.as_deref(), a.success),
        (Some("user@example.com"), Some(false))
    );
}

#[test]
fn auth_login_two_steps() {
    // "bob" / "hunter2"
    let r = auth(&[
        (C, b"AUTH LOGIN\r\n"),
        (S, b"334 VXNlcm5hbWU6\r\n"),
        (C, b"Ym9i\r\n"),
        (S, b"334 UGFzc3dvcmQ6\r\n"),
        (C, b"aHVudGVyMg==\r\n"),
        (S, b"235 ok\r\n"),
    ]);
    let a = r.smtp.auth.unwrap();
    assert_eq!(
        (a.mechanism.as_str(), a.username.as_deref(), a.success),
        ("LOGIN", Some("bob"), Some(true))
    );
}

#[test]
fn auth_login_with_initial_user() {
    let r = auth(&[
        (C, b"AUTH LOGIN Ym9i\r\n"),
        (S, b"334 UGFzc3dvcmQ6\r\n"),
        (C, b"aHVudGVyMg==\r\n"),
        (S, b"235 ok\r\n"),
    ]);
    assert_eq!(r.smtp.auth.unwrap().username.as_deref(), Some("bob"));
}

#[test]
fn auth_cram_md5_and_xoauth2() {
    // "tim b913a602c7eda7a495b4e6e7334d3890"
    let r = auth(&[
        (C, b"AUTH CRAM-MD5\r\n"),
        (
            S,
            b"334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n",
        ),
        (C, b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n"),
        (S, b"235 ok\r\n"),
    ]);
    assert_eq!(r.smtp.auth.unwrap().username.as_deref(), Some("tim"));
    // "user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
    let r = auth(&[
        (
            C,
            b"AUTH XOAUTH2 dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==\r\n",
        ),
        (S, b"235 ok\r\n"),
    ]);
    assert_eq!(
        r.smtp.auth.unwrap().username.as_deref(),
        Some("someuser@example.com")
    );
}

#[test]
fn failed_attempts_before_a_success_are_counted() {
    let r = auth(&[
        (C, b"AUTH PLAIN AHVzZXJAZXhhbXBsZS5jb20Ac2VjcmV0\r\n"),
        (S, b"535 5.7.8 failed\r\n"),
        (C, b"AUTH PLAIN AHVzZXJAZXhhbXBsZS5jb20Ac2VjcmV0\r\n"),
        (S, b"535 5.7.8 failed\r\n"),
        (C, b"AUTH LOGIN Ym9i\r\n"),
        (S, b"334 UGFzc3dvcmQ6\r\n"),
        (C, b"aHVudGVyMg==\r\n"),
        (S, b"235 ok\r\n"),
    ]);
    let a = r.smtp.auth.unwrap();
    assert_eq!(
        (a.mechanism.as_str(), a.success, a.failures),
        ("LOGIN", Some(true), 2)
    );
}

#[test]
fn auth_refused_mechanism_returns_to_commands() {
    let r = run(&session(&[
        (C, b"AUTH NTLM\r\n"),
        (S, b"504 5.5.4 Unrecognized authentication type\r\n"),
        (C, b"MAIL FROM:<a@x.org>\r\n"),
        (S, b"250 ok\r\n"),
    ]));
    assert_eq!(r[0].smtp.mail_from.as_deref(), Some("a@x.org"));
    assert_eq!(r[0].smtp.auth.as_ref().unwrap().success, Some(false));
}

#[test]
fn bdat_chunks() {
    let r = run(&session(&[
        (C, b"MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nBDAT 20\r\nSubject: chunked\r\n\r\nBDAT 6 LAST\r\nbody\r\n"),
        (S, b"250 ok\r\n250 ok\r\n250 2.0.0 20 octets received\r\n250 2.0.0 Ok: queued as ABC\r\n"),
    ]));
    let s = &r[0].smtp;
    assert_eq!(s.status, Status::Queued, "{s:?}");
    assert_eq!(s.queue_id.as_deref(), Some("ABC"));
    assert_eq!(s.data_bytes, 26);
    assert_eq!(
        r[0].email.as_ref().unwrap().subject.as_deref(),
        Some("chunked")
    );
}

#[test]
fn bdat_zero_last_and_bad_sizes() {
    let r = run(&session(&[
        (
            C,
            b"MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nBDAT 0 LAST\r\n",
        ),
        (S, b"250 ok\r\n250 ok\r\n250 queued as Z\r\n"),
        (
            C,
            b"MAIL FROM:<a@x.org>\r\nBDAT -1\r\nBDAT 99999999999999999999999\r\n",
        ),
        (S, b"250 ok\r\n501 bad\r\n501 bad\r\n"),
    ]));
    assert_eq!(r[0].smtp.status, Status::Queued);
    assert!(r[1].smtp.anomalies.contains(&"bad_bdat_size"));
}

#[test]
fn rset_aborts_and_several_transactions_follow() {
    let r = run(&session(&[
        (C, b"MAIL FROM:<a@x.org>\r\n"),
        (S, b"250 ok\r\n"),
        (C, b"RSET\r\n"),
        (S, b"250 ok\r\n"),
        (C, b"VRFY bob\r\nNOOP\r\nHELP\r\nEXPN list\r\n"),
        (S, b"252 maybe\r\n250 ok\r\n214 help\r\n502 no\r\n"),
        (C, b"MAIL FROM:<b@x.org>\r\nRCPT TO:<c@y.org>\r\nDATA\r\n"),
        (S, b"250 ok\r\n250 ok\r\n354 go\r\n"),
        (C, b"\r\nfirst\r\n.\r\n"),
        (S, b"250 queued as Q1\r\n"),
        (C, b"MAIL FROM:<d@x.org>\r\nRCPT TO:<e@y.org>\r\nDATA\r\n"),
        (S, b"250 ok\r\n250 ok\r\n354 go\r\n"),
        (C, b"\r\nsecond\r\n.\r\n"),
        (S, b"250 queued as Q2\r\n"),
    ]));
    let summary: Vec<_> = r
        .iter()
        .map(|r| (r.smtp.trans_depth, r.smtp.status, r.smtp.queue_id.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, Status::Aborted, None),
            (2, Status::Queued, Some("Q1".into())),
            (3, Status::Queued, Some("Q2".into())),
        ]
    );
    assert!(r.iter().all(|r| r.smtp.anomalies.is_empty()));
}

#[test]
fn nested_mail_refused_keeps_the_first_envelope() {
    let r = run(&session(&[
        (C, b"MAIL FROM:<alice@example.com>\r\n"),
        (S, b"250 ok\r\n"),
        (C, b"MAIL FROM:<bob@example.com>\r\n"),
        (S, b"503 5.5.1 Error: nested MAIL command\r\n"),
        (C, b"RCPT TO:<c@y.org>\r\nDATA\r\n"),
        (S, b"250 ok\r\n354 go\r\n"),
        (C, b"\r\nx\r\n.\r\n"),
        (S, b"250 queued as N1\r\n"),
    ]));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].smtp.mail_from.as_deref(), Some("alice@example.com"));
    assert_eq!(r[0].smtp.status, Status::Queued);
    assert!(r[0].smtp.anomalies.contains(&"nested_mail_from"));
}

#[test]
fn nested_mail_accepted_starts_a_new_transaction() {
    let r = run(&session(&[
        (C, b"MAIL FROM:<alice@example.com>\r\n"),
        (S, b"250 ok\r\n"),
        (C, b"MAIL FROM:<bob@example.com>\r\n"),
        (S, b"250 ok\r\n"),
        (C, b"QUIT\r\n"),
    ]));
    let senders: Vec<_> = r.iter().map(|r| r.smtp.mail_from.clone()).collect();
    assert_eq!(
        senders,
        vec![
            Some("alice@example.com".into()),
            Some("bob@example.com".into())
        ]
    );
}

#[test]
fn rejected_second_greeting_keeps_the_first() {
    let r = run(&session(&[
        (C, b"EHLO\r\n"),
        (S, b"501 Syntax: EHLO hostname\r\n"),
        (C, b"HELO other.example\r\n"),
        (S, b"250 ok\r\n"),
        (C, b"QUIT\r\n"),
    ]));
    assert_eq!(r[0].smtp.helo.as_deref(), Some("other.example"));
    let r = run(&session(&[
        (C, b"EHLO\r\n"),
        (S, b"501 Syntax: EHLO hostname\r\n"),
        (C, b"QUIT\r\n"),
    ]));
    assert_eq!(r[0].smtp.helo.as_deref(), Some("client.example.org"));
}

#[test]
fn starttls_hands_the_stream_to_tls() {
    let script = session(&[
        (C, b"STARTTLS\r\n"),
        (S, b"220 2.0.0 Ready to start TLS\r\n"),
        (
            C,
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\nMAIL FROM:<x@y>\r\n",
        ),
        (S, b"\x16\x03\x03\x00\x5a\x02\x00\x00\x56"),
    ]);
    let run = script::run_data(&mut SmtpParser::default(), &script);
    // The ClientHello (step 5) is the first byte that is not SMTP's.
    assert_eq!(run.upgraded, Some((5, 0)));
    let r = records(run);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].smtp.status, Status::Tls);
    assert!(r[0].smtp.starttls);
    assert!(r[0].smtp.mail_from.is_none());
    assert!(r[0].smtp.anomalies.is_empty(), "{:?}", r[0].smtp.anomalies);
}

#[test]
fn starttls_seen_from_the_client_alone() {
    let script: &[(Direction, &[u8])] = &[(C, b"EHLO x\r\nSTARTTLS\r\n\x16\x03\x01\x00\x10hello")];
    let run = script::run_data(&mut SmtpParser::default(), script);
    assert_eq!(
        run.upgraded,
        Some((0, 18)),
        "handed over after STARTTLS's line"
    );
    assert_eq!(records(run)[0].smtp.status, Status::Tls);
}

#[test]
fn cleartext_after_starttls_is_parsed_and_noted() {
    // A decrypted capture, or a middlebox that let STARTTLS through and then did nothing.
    let r = run(&session(&[
        (C, b"STARTTLS\r\n"),
        (S, b"220 2.0.0 Ready to start TLS\r\n"),
        (C, b"EHLO again.example.org\r\n"),
        (S, b"250 mx.example.net\r\n"),
        (
            C,
            b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n",
        ),
        (S, b"250 ok\r\n250 ok\r\n354 go\r\n"),
        (C, b"Subject: hi\r\n\r\nbody\r\n.\r\n"),
        (S, b"250 ok queued as ABC123\r\n"),
    ]));
    assert_eq!(r.len(), 1);
    let smtp = &r[0].smtp;
    assert!(smtp.starttls);
    assert_eq!(smtp.status, Status::Queued);
    assert_eq!(smtp.mail_from.as_deref(), Some("a@example.org"));
    assert_eq!(smtp.rcpt_accepted, 1);
    assert_eq!(smtp.helo.as_deref(), Some("again.example.org"));
    assert_eq!(smtp.anomalies, ["cleartext_after_starttls"]);
}

#[test]
fn refused_starttls_goes_on_in_cleartext_without_anomaly() {
    let r = run(&session(&[
        (C, b"STARTTLS\r\n"),
        (S, b"454 4.7.0 TLS not available\r\n"),
        (C, b"MAIL FROM:<a@example.org>\r\n"),
        (S, b"250 ok\r\n"),
    ]));
    assert!(!r[0].smtp.starttls);
    assert_eq!(r[0].smtp.mail_from.as_deref(), Some("a@example.org"));
    assert!(r[0].smtp.anomalies.is_empty(), "{:?}", r[0].smtp.anomalies);
}

#[test]
fn command_spellings_are_kept_in_order() {
    let r = run(&[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"ehlo pc\r\n"),
        (S, b"250 mx\r\n"),
        (C, b"mail from: <a@x.org>\r\n"),
        (S, b"250 ok\r\n"),
        (C, b"RCPT TO:<b@y.org>\r\n"),
        (S, b"250 ok\r\n"),
        (C, b"Rcpt To: c@y.org\r\n"),
        (S, b"250 ok\r\n"),
        (C, b"QUIT\r\n"),
    ]);
    assert_eq!(
        r[0].smtp.commands,
        "ehlo;mail from: <;RCPT TO:<;Rcpt To: c@y.;QUIT"
    );
}

#[test]
fn pregreeting_client() {
    let r = run(&[
        (C, b"EHLO spambot\r\n"),
        (S, b"220 mx ESMTP\r\n"),
        (S, b"250 mx\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 bye\r\n"),
    ]);
    assert!(r[0].smtp.pregreet);
    assert_eq!(r[0].smtp.banner.as_deref(), Some("220 mx ESMTP"));
    assert_eq!(r[0].smtp.status, Status::NoTransaction);
    assert!(r[0].smtp.anomalies.is_empty(), "{:?}", r[0].smtp.anomalies);
}

#[test]
fn sessions_without_transactions_are_reported() {
    let quit_only = run(&[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 bye\r\n"),
    ]);
    assert_eq!(quit_only.len(), 1);
    assert_eq!(quit_only[0].smtp.status, Status::NoTransaction);
    assert_eq!(quit_only[0].smtp.trans_depth, 0);

    let rejected_helo = run(&[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"HELO 203.0.113.5\r\n"),
        (S, b"550 5.7.1 go away\r\n"),
        (C, b"QUIT\r\n"),
    ]);
    assert_eq!(rejected_helo[0].smtp.status, Status::NoTransaction);
    assert_eq!(
        rejected_helo[0].smtp.last_reply.as_deref(),
        Some("550 5.7.1 go away")
    );

    let refused = run(&[(S, b"554 5.7.1 You are not welcome\r\n")]);
    assert_eq!(
        refused[0].smtp.banner.as_deref(),
        Some("554 5.7.1 You are not welcome")
    );
}

#[test]
fn gap_inside_data_marks_incomplete_and_resyncs() {
    let mut parser = SmtpParser::default();
    let mut out = Vec::new();
    let t = Timestamp::from_secs(1);
    for (dir, bytes) in session(&[
        (C, b"MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n"),
        (S, b"250 ok\r\n250 ok\r\n354 go\r\n"),
        (C, b"Subject: before gap\r\n\r\nbody start\r\n"),
    ]) {
        parser.parse(dir, bytes, t, &mut out);
    }
    parser.on_gap(C, 5000);
    for (dir, bytes) in [
        (C, &b"rest of a line\r\nmore\r\n.\r\n"[..]),
        (S, b"250 queued as G1\r\n"),
        (
            C,
            b"MAIL FROM:<next@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n",
        ),
        (S, b"250 ok\r\n250 ok\r\n354 go\r\n"),
        (C, b"Subject: after\r\n\r\n.\r\n"),
        (S, b"250 queued as G2\r\n"),
    ] {
        parser.parse(dir, bytes, t, &mut out);
    }
    parser.finish(t, &mut out);
    let r: Vec<SmtpRecord> = out
        .into_iter()
        .map(|o| match o.event {
            AppEvent::Smtp(r) => *r,
            #[allow(unreachable_patterns)]
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].smtp.status, Status::Incomplete);
    assert_eq!(r[0].smtp.queue_id.as_deref(), Some("G1"));
    assert_eq!(
        r[0].email.as_ref().unwrap().subject.as_deref(),
        Some("before gap")
    );
    assert!(r[0].smtp.anomalies.contains(&"gap"));
    assert_eq!(r[1].smtp.status, Status::Queued);
    assert_eq!(
        r[1].email.as_ref().unwrap().subject.as_deref(),
        Some("after")
    );
}

#[test]
fn gap_in_commands_resyncs_at_next_command() {
    let mut parser = SmtpParser::default();
    let mut out = Vec::new();
    let t = Timestamp::from_secs(1);
    parser.parse(
        C,
        b"EHLO x\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<par",
        t,
        &mut out,
    );
    parser.on_gap(C, 100);
    parser.parse(
        C,
        b"tial line>\r\nRCPT TO:<b@y.org>\r\nQUIT\r\n",
        t,
        &mut out,
    );
    parser.finish(t, &mut out);
    let AppEvent::Smtp(r) = &out[0].event else {
        unreachable!()
    };
    assert_eq!(r.smtp.rcpt_to, vec!["b@y.org"]);
    assert_eq!(r.smtp.status, Status::Incomplete);
}

#[test]
fn midstream_pickup_starts_at_the_first_command() {
    let r = run(&[
        (C, b"ody of a message we joined late\r\n.\r\n"),
        (S, b"250 2.0.0 Ok: queued as EARLIER\r\n"),
        (
            C,
            b"MAIL FROM:<late@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n",
        ),
        (S, b"250 ok\r\n250 ok\r\n354 go\r\n"),
        (C, b"Subject: seen whole\r\n\r\n.\r\n"),
        (S, b"250 ok: queued as LATER\r\n"),
    ]);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].smtp.mail_from.as_deref(), Some("late@x.org"));
    assert_eq!(r[0].smtp.queue_id.as_deref(), Some("LATER"));
    assert!(r[0].smtp.anomalies.is_empty(), "{:?}", r[0].smtp.anomalies);
}

#[test]
fn one_sided_client_capture_is_sent() {
    let r = run(&[(C, b"HELO a\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\nSubject: s\r\n\r\nx\r\n.\r\nQUIT\r\n")]);
    assert_eq!(r[0].smtp.status, Status::Sent);
    assert_eq!(r[0].email.as_ref().unwrap().subject.as_deref(), Some("s"));
}

#[test]
fn data_that_never_ends_is_incomplete() {
    let r = run(&session(&[
        (C, b"MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n"),
        (S, b"250 ok\r\n250 ok\r\n354 go\r\n"),
        (C, b"Subject: endless\r\n\r\nline\r\nline\r\n"),
    ]));
    assert_eq!(r[0].smtp.status, Status::Incomplete);
    assert_eq!(r[0].smtp.data_bytes, 32);
}

#[test]
fn hostile_client_is_capped_and_valid_json() {
    let mut script = session(&[(C, b"MAIL FROM:<a@x.org>\r\n"), (S, b"250 ok\r\n")]);
    let rcpts: &'static [u8] = Box::leak(
        (0..10_000)
            .map(|i| format!("RCPT TO:<user{i}@example.net>\r\n"))
            .collect::<String>()
            .into_bytes()
            .into_boxed_slice(),
    );
    script.push((C, rcpts));
    let replies: &'static [u8] =
        Box::leak("250 ok\r\n".repeat(10_000).into_bytes().into_boxed_slice());
    script.push((S, replies));
    let long_line: &'static [u8] = Box::leak(
        [b"NOOP ".as_slice(), &vec![b'A'; 1 << 20], b"\r\n"]
            .concat()
            .into_boxed_slice(),
    );
    script.push((C, long_line));
    script.push((C, b"DATA\r\nSubject: \xff\xfe\x00 bad\r\n\r\n"));
    let r = run(&script);
    let s = &r[0].smtp;
    assert_eq!(s.rcpt_to.len(), MAX_RCPT);
    assert_eq!(s.rcpt_accepted, 10_000, "every recipient counted");
    for a in ["too_many_recipients", "overlong_command_line"] {
        assert!(s.anomalies.contains(&a), "{a} in {:?}", s.anomalies);
    }
    let text = json(&r);
    assert!(
        text.len() < 64 * 1024,
        "capped output: {} bytes",
        text.len()
    );
    serde_json::from_str::<serde_json::Value>(&serde_json::to_string(&r[0].smtp).unwrap()).unwrap();
    let subject = r[0].email.as_ref().unwrap().subject.clone().unwrap();
    assert_eq!(
        subject, "\u{ff}\u{fe}\u{0} bad",
        "bytes that are not UTF-8 read as windows-1252, NUL kept (escaped in JSON)"
    );
}

#[test]
fn an_overlong_line_that_never_ends_is_reported() {
    let endless: &'static [u8] = Box::leak(
        [b"MAIL FROM:<".as_slice(), &vec![b'a'; 1 << 20]]
            .concat()
            .into_boxed_slice(),
    );
    let r = run(&[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"EHLO client.example\r\n"),
        (S, b"250 mx\r\n"),
        (C, endless),
    ]);
    assert_eq!(r.len(), 1, "the session is reported");
    let s = &r[0].smtp;
    assert_eq!(s.helo.as_deref(), Some("client.example"));
    assert!(
        s.anomalies.contains(&"overlong_command_line"),
        "{:?}",
        s.anomalies
    );
}

#[test]
fn pipelining_flood_is_capped() {
    let flood: &'static [u8] = Box::leak(
        "NOOP\r\nRSET\r\n"
            .repeat(10_000)
            .into_bytes()
            .into_boxed_slice(),
    );
    let mut p = SmtpParser::default();
    let r = run_parser(&mut p, &session(&[(C, flood)]));
    assert!(r[0].smtp.anomalies.contains(&"too_many_pipelined_commands"));
    assert!(p.pending.len() <= MAX_PENDING);
    // A run of the same command is one entry: 10,000 pipelined RCPTs are no flood.
}

#[test]
fn replies_without_commands_and_bare_lf_are_noted() {
    let r = run(&session(&[
        (S, b"250 unasked\r\n"),
        (C, b"NOOP\n"),
        (S, b"250 ok\r\n"),
    ]));
    assert!(r[0].smtp.anomalies.contains(&"reply_without_command"));
    assert!(r[0].smtp.anomalies.contains(&"bare_lf"));
}

#[test]
fn byte_at_a_time_gives_the_same_events() {
    let script = session(&[
        (C, b"MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n"),
        (S, b"250 ok\r\n250 ok\r\n354 go\r\n"),
        (C, b"Subject: slow\r\n\r\nbody\r\n.\r\n"),
        (S, b"250 queued as SLOW\r\n"),
    ]);
    let whole = run(&script);
    let mut bytewise: Vec<(Direction, &[u8])> = Vec::new();
    for (dir, bytes) in &script {
        for i in 0..bytes.len() {
            bytewise.push((*dir, &bytes[i..=i]));
        }
    }
    assert_eq!(run(&bytewise), whole);
}

#[test]
fn probe_on_any_port() {
    assert_eq!(probe(b"EHLO x\r\n", b""), Probe::Match);
    assert_eq!(probe(b"helo x", b""), Probe::Match);
    assert_eq!(probe(b"EH", b""), Probe::NeedMore);
    assert_eq!(
        probe(b"", b"220 mx.example.net ESMTP Exim\r\n"),
        Probe::Match
    );
    assert_eq!(
        probe(b"", b"220 ready\r\n"),
        Probe::NeedMore,
        "FTP greets with 220 too"
    );
    assert_eq!(
        probe(b"USER anonymous\r\n", b"220 ProFTPD\r\n"),
        Probe::NeedMore
    );
    assert_eq!(
        probe(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 200 OK\r\n"),
        Probe::NoMatch
    );
    assert_eq!(probe(b"\x05\x01\x00", b"\x05\x00"), Probe::NoMatch);
    assert_eq!(probe(b"\x16\x03\x01\x02\x00", b""), Probe::NoMatch);
    assert_eq!(probe(b"", b"+OK POP3 ready\r\n"), Probe::NoMatch);
    assert_eq!(
        probe(b"text\r\nMAIL FROM:<a@b>\r\n", b"250 ok\r\n"),
        Probe::Match,
        "mid-stream"
    );
}

#[test]
fn random_bytes_and_gaps_never_panic() {
    // Deterministic noise mixed with SMTP words, in random chunks from both sides.
    let words: [&[u8]; 12] = [
        b"EHLO x\r\n",
        b"MAIL FROM:<a@b>\r\n",
        b"RCPT TO:<c@d>\r\n",
        b"DATA\r\n",
        b"BDAT 5 LAST\r\n",
        b"AUTH LOGIN\r\n",
        b"250-X\r\n",
        b"354 go\r\n",
        b"\r\n.\r\n",
        b"334 \r\n",
        b"STARTTLS\r\n",
        b"220 ok\r\n",
    ];
    let mut next = crate::testing::xorshift(0x2545_f491u32);
    for _ in 0..300 {
        let mut parser = SmtpParser::default();
        let mut out = Vec::new();
        for step in 0..60 {
            let dir = if next().is_multiple_of(2) { C } else { S };
            let r = next();
            if r.is_multiple_of(17) {
                parser.on_gap(dir, u64::from(next() % 5000));
                continue;
            }
            let mut chunk = Vec::new();
            for _ in 0..(r % 6) {
                if next().is_multiple_of(3) {
                    chunk.extend((0..next() % 40).map(|_| next() as u8));
                } else {
                    chunk.extend_from_slice(words[next() as usize % words.len()]);
                }
            }
            parser.parse(dir, &chunk, Timestamp::from_secs(step), &mut out);
        }
        parser.finish(Timestamp::from_secs(99), &mut out);
        for o in &out {
            let AppEvent::Smtp(r) = &o.event else {
                unreachable!()
            };
            let json = serde_json::to_string(&r.smtp).unwrap();
            serde_json::from_str::<serde_json::Value>(&json).unwrap();
        }
    }
}

#[test]
fn reply_lines_share_one_buffer_capped_and_valid_utf8() {
    let mut lines = ReplyLines::default();
    lines.push(b"mx.example.net");
    lines.push(&[0xff, b'o', b'k']);
    lines.push("é".repeat(MAX_FIELD).as_bytes());
    let got: Vec<&str> = lines.lines().collect();
    assert_eq!(got[0], "mx.example.net");
    assert_eq!(got[1], "\u{fffd}ok");
    assert!(got[2].len() <= MAX_FIELD && got[2].chars().all(|c| c == 'é'));
    assert_eq!(lines.first(), Some("mx.example.net"));
    lines.clear();
    assert_eq!((lines.len(), lines.first()), (0, None));
}

/// suricata-verify's smtp-errors capture: a client speaks TLS to a Postfix on 465 that
/// greeted in cleartext.
#[test]
fn a_client_hello_to_a_cleartext_greeting_hands_over_with_an_anomaly() {
    let script: &[(Direction, &[u8])] = &[
        (S, b"220 v02.kerne.org ESMTP Postfix\r\n"),
        (C, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03random"),
        (S, b"402 4.5.2 Error: command not recognized\r\n"),
    ];
    let run = script::run_data(&mut SmtpParser::default(), script);
    assert_eq!(run.upgraded, Some((1, 0)));
    let r = records(run);
    assert_eq!(
        r[0].smtp.status,
        Status::NoTransaction,
        "no STARTTLS was accepted"
    );
    assert!(!r[0].smtp.starttls);
    assert_eq!(r[0].smtp.anomalies, ["tls_without_starttls"]);
}

#[test]
fn the_first_line_of_an_ehlo_reply_is_the_greeting_not_an_extension() {
    for (reply, extensions) in [
        (&b"250 OK\r\n"[..], &[][..]),
        (
            b"250-mx.example.net Hello\r\n250 8BITMIME\r\n",
            &["8BITMIME"][..],
        ),
        (
            b"250-OK\r\n250-SIZE 1000\r\n250 STARTTLS\r\n",
            &["SIZE", "STARTTLS"][..],
        ),
    ] {
        let r = run(&[
            (S, b"220 mx ESMTP\r\n"),
            (C, b"EHLO client.example\r\n"),
            (S, reply),
            (C, b"QUIT\r\n"),
            (S, b"221 bye\r\n"),
        ]);
        assert_eq!(
            r[0].smtp.extensions.iter().collect::<Vec<_>>(),
            extensions,
            "{}",
            String::from_utf8_lossy(reply)
        );
    }
}

/// RFC 8314: on 465 SMTP is inside TLS. A server there that greets in cleartext, and a
/// client that answers in cleartext, are analysed as SMTP and noted; on 25 they are not.
#[test]
fn cleartext_on_the_implicit_tls_port_is_analysed_and_noted() {
    let script: &[(Direction, &[u8])] = &[
        (S, b"220 mx.example.net ESMTP\r\n"),
        (C, b"EHLO client.example\r\n"),
        (S, b"250 mx.example.net\r\n"),
        (C, b"MAIL FROM:<a@example.org>\r\n"),
        (S, b"250 ok\r\n"),
        (C, b"RCPT TO:<b@example.net>\r\n"),
        (S, b"250 ok\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 bye\r\n"),
    ];
    let on = |port: u16| {
        let mut parser = <SmtpParser as StreamParser>::new(StreamOrigin::tunnel(0, port));
        run_parser(&mut parser, script)
    };
    let r = on(465);
    assert_eq!(r[0].smtp.helo.as_deref(), Some("client.example"));
    assert_eq!(r[0].smtp.rcpt_to, ["b@example.net"]);
    assert_eq!(r[0].smtp.anomalies, ["cleartext_on_implicit_tls_port"]);
    assert!(on(25)[0].smtp.anomalies.is_empty());
    // The greeting was missed: the client's cleartext says it.
    let mut parser = <SmtpParser as StreamParser>::new(StreamOrigin::tunnel(0, 465));
    let r = run_parser(&mut parser, &script[1..]);
    assert_eq!(r[0].smtp.anomalies, ["cleartext_on_implicit_tls_port"]);
}

/// zeek's smtp-bdat-pipeline-8bitmime capture: Exim answers BDAT LAST with two lines, the
/// chunk and then the queue id; and a malformed BDAT's refusal is the transaction's last reply
/// (zeek's smtp-bdat-cmd-invalid), as Zeek records both.
#[test]
fn the_last_line_of_a_reply_and_replies_to_other_commands_count() {
    let envelope: &[(Direction, &[u8])] = &[
        (S, b"220 mx ESMTP Exim\r\n"),
        (C, b"EHLO c\r\n"),
        (S, b"250-mx Hello\r\n250 CHUNKING\r\n"),
        (C, b"MAIL FROM:<a@example.org>\r\n"),
        (S, b"250 OK\r\n"),
        (C, b"RCPT TO:<b@example.net>\r\n"),
        (S, b"250 Accepted\r\n"),
    ];
    let then = |rest: &[(Direction, &'static [u8])]| run(&[envelope, rest].concat());
    let r = then(&[
        (C, b"BDAT 5 LAST\r\nHi.\r\n"),
        (
            S,
            b"250- 5 byte chunk, total 5\r\n250 OK id=1lHkUh-008hPw-NY\r\n",
        ),
    ]);
    assert_eq!(
        r[0].smtp.last_reply.as_deref(),
        Some("250 OK id=1lHkUh-008hPw-NY")
    );
    assert_eq!(r[0].smtp.queue_id.as_deref(), Some("1lHkUh-008hPw-NY"));
    assert_eq!(r[0].smtp.banner.as_deref(), Some("220 mx ESMTP Exim"));
    let r = then(&[
        (C, b"BDAT x\r\n"),
        (S, b"521 5.5.4 Syntax: BDAT count [LAST]\r\n"),
    ]);
    assert_eq!(
        r[0].smtp.last_reply.as_deref(),
        Some("521 5.5.4 Syntax: BDAT count [LAST]")
    );
    assert!(r[0].smtp.anomalies.contains(&"bad_bdat_size"));
}

#[test]
fn reply_codes_are_written_in_decimal() {
    for n in [0u16, 7, 50, 250, 554, 65535] {
        let mut text = String::from("x");
        push_decimal(&mut text, n);
        assert_eq!(text, format!("x{n}"));
    }
}
