//! Captures for the detections, each with both sides of its threshold. Addresses match the
//! test rules in `tests/rules/`: workstations 10.20.0.0/16 (relay_only), web servers
//! 10.30.0.0/24 (deny), mail relays 10.0.0.0/24 (allow, relay 10.0.0.25), lab 10.40.0.0/16,
//! internal domain corp.example.org, and 198.18.66.0/24 on the blocklist.

use super::scenarios::{Scenario, at, message};
use super::{Frame, Link, Session, merge, tls};
use spamtap::direction::Direction::{Ctos, Stoc};
use spamtap::timestamp::Timestamp;

/// One mail transaction: the sender, each recipient with whether the server accepts it.
struct Mail {
    from: String,
    rcpts: Vec<(String, bool)>,
    subject: String,
}

impl Mail {
    fn new(from: &str, subject: &str) -> Self {
        Mail {
            from: from.to_string(),
            rcpts: Vec::new(),
            subject: subject.to_string(),
        }
    }

    /// `n` recipients `{prefix}{i}@{domain}`, accepted or refused.
    fn to(mut self, prefix: &str, domain: &str, n: usize, accepted: bool) -> Self {
        let start = self.rcpts.len();
        for i in 0..n {
            self.rcpts
                .push((format!("{prefix}{}@{domain}", start + i), accepted));
        }
        self
    }
}

/// A whole SMTP session with the given transactions, one command per round trip.
fn mail_session(client: &str, server: &str, start: Timestamp, mails: &[Mail]) -> Vec<Frame> {
    let mut s = Session::new(client, server).starting_at(start);
    s.handshake()
        .send(Stoc, b"220 relay.corp.example.org ESMTP Postfix\r\n")
        .send(Ctos, b"EHLO pc.corp.example.org\r\n")
        .send(Stoc, b"250-relay.corp.example.org\r\n250 8BITMIME\r\n");
    for (i, mail) in mails.iter().enumerate() {
        s.send(Ctos, format!("MAIL FROM:<{}>\r\n", mail.from).as_bytes())
            .send(Stoc, b"250 2.1.0 Ok\r\n");
        for (rcpt, ok) in &mail.rcpts {
            s.send(Ctos, format!("RCPT TO:<{rcpt}>\r\n").as_bytes())
                .send(
                    Stoc,
                    if *ok {
                        b"250 2.1.5 Ok\r\n".as_slice()
                    } else {
                        b"550 5.1.1 Recipient address rejected: User unknown\r\n".as_slice()
                    },
                );
        }
        s.send(Ctos, b"DATA\r\n")
            .send(Stoc, b"354 End data with <CR><LF>.<CR><LF>\r\n")
            .send(Ctos, &message(&mail.subject, 200, i as u32))
            .send(
                Stoc,
                format!("250 2.0.0 Ok: queued as Q{:05X}\r\n", i + 1).as_bytes(),
            );
    }
    s.send(Ctos, b"QUIT\r\n")
        .send(Stoc, b"221 2.0.0 Bye\r\n")
        .close();
    s.into_frames()
}

pub fn scenarios() -> Vec<Scenario> {
    vec![
        excessive_mail(),
        policy(),
        direct_smtp(),
        blocklisted(),
        surge(),
        auth_bruteforce(),
        smtp_over_socks(),
        encrypted_mail(),
    ]
}

/// One submission over STARTTLS and TLS 1.3 on 587 with AUTH: `recipients` accepted
/// recipients, pipelined, all encrypted.
fn encrypted_submission(
    client: &str,
    start: Timestamp,
    recipients: usize,
    seed: u32,
) -> Vec<Frame> {
    let mut s = Session::new(client, "10.0.0.25:587").starting_at(start);
    s.handshake()
        .send(Stoc, b"220 relay.corp.example.org ESMTP Postfix\r\n")
        .send(Ctos, b"EHLO pc.corp.example.org\r\n")
        .send(
            Stoc,
            b"250-relay.corp.example.org\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
        )
        .send(Ctos, b"STARTTLS\r\n")
        .send(Stoc, b"220 2.0.0 Ready to start TLS\r\n");
    tls::handshake(&mut s, tls::TLS13, tls::AES128_GCM_SHA256, None);
    let mut envelope = String::from("MAIL FROM:<mass@corp.example.org>\r\n");
    let mut replies = String::from("250 2.1.0 Ok\r\n");
    for i in 0..recipients {
        envelope.push_str(&format!("RCPT TO:<buyer{i}@example.net>\r\n"));
        replies.push_str("250 2.1.5 Ok\r\n");
    }
    envelope.push_str("DATA\r\n");
    replies.push_str("354 End data with <CR><LF>.<CR><LF>\r\n");
    let msg = message("Encrypted offer", 1500, seed);
    tls::encrypted_writes(
        &mut s,
        tls::TLS13,
        &[
            (Ctos, b"EHLO pc.corp.example.org\r\n"),
            (Stoc, super::scenarios::EHLO_AFTER_TLS),
            (Ctos, b"AUTH PLAIN AG1hc3MAc2VjcmV0\r\n"),
            (Stoc, b"235 2.7.0 Authentication successful\r\n"),
            (Ctos, envelope.as_bytes()),
            (Stoc, replies.as_bytes()),
            (Ctos, &msg),
            (
                Stoc,
                format!("250 2.0.0 Ok: queued as E{seed:05X}\r\n").as_bytes(),
            ),
            (Ctos, b"QUIT\r\n"),
            (Stoc, b"221 2.0.0 Bye\r\n"),
        ],
        seed,
    );
    s.close();
    s.into_frames()
}

fn encrypted_mail() -> Scenario {
    // 450 recipients in five encrypted submissions from one workstation in four minutes: no
    // envelope is visible, the estimate from the TLS records counts them.
    let sessions = (0..5u16).map(|c| {
        encrypted_submission(
            &format!("10.20.1.30:{}", 52000 + c),
            at(u64::from(c) * 60),
            90,
            60 + u32::from(c),
        )
    });
    Scenario {
        name: "detect-encrypted-mail",
        about: "excessive_outbound_mail from the estimate of five STARTTLS submissions of 90 recipients each",
        link: Link::ethernet(),
        frames: merge(sessions),
    }
}

fn excessive_mail() -> Scenario {
    let mut sessions = Vec::new();
    // 401 accepted outside recipients from one sender, over 9 connections (so both workers
    // of a two-worker run see some) in 8 minutes; internal and refused ones do not count.
    for c in 0..9u16 {
        let outside = if c == 8 { 1 } else { 50 };
        let mail = Mail::new("newsletter@corp.example.org", &format!("Offer {c}"))
            .to("customer", "example.net", outside, true)
            .to("staff", "corp.example.org", 5, true)
            .to("gone", "example.net", 3, false);
        sessions.push(mail_session(
            &format!("10.20.1.10:{}", 50000 + c),
            "10.0.0.25:25",
            at(u64::from(c) * 60),
            &[mail],
        ));
    }
    // 399 for another sender: no alert.
    for c in 0..8u16 {
        let outside = if c == 7 { 49 } else { 50 };
        let mail = Mail::new("alice@corp.example.org", &format!("Update {c}"))
            .to("partner", "example.com", outside, true)
            .to("team", "mail.corp.example.org", 10, true)
            .to("typo", "example.com", 5, false);
        sessions.push(mail_session(
            &format!("10.20.1.11:{}", 51000 + c),
            "10.0.0.25:25",
            at(u64::from(c) * 60 + 30),
            &[mail],
        ));
    }
    // 500 for a third sender, but 300 of them 16 minutes before the other 200: the window
    // never holds more than 300.
    for (c, (when, n)) in [
        (0u64, 100usize),
        (60, 100),
        (120, 100),
        (1080, 100),
        (1140, 100),
    ]
    .into_iter()
    .enumerate()
    {
        let mail = Mail::new("bob@corp.example.org", "Slow and steady").to(
            "friend",
            "example.org",
            n,
            true,
        );
        sessions.push(mail_session(
            &format!("10.20.1.12:{}", 52000 + c),
            "10.0.0.25:25",
            at(when),
            &[mail],
        ));
    }
    Scenario {
        name: "detect-excessive-mail",
        about: "401 accepted outside recipients from one sender over 9 connections (alert); 399 from another, plus internal and refused ones (none); 500 spread wider than the window (none)",
        link: Link::ethernet(),
        frames: merge(sessions),
    }
}

fn policy() -> Scenario {
    let hello = || [Mail::new("www-data@corp.example.org", "cron").to("x", "example.net", 1, true)];
    let sessions = vec![
        // A web server (deny) sends mail: alert, once for two connections.
        mail_session("10.30.0.5:40000", "198.51.100.25:25", at(0), &hello()),
        mail_session("10.30.0.5:40001", "198.51.100.25:25", at(10), &hello()),
        // A workstation through the relay: allowed.
        mail_session("10.20.2.20:40002", "10.0.0.25:25", at(20), &hello()),
        // A workstation straight to an outside server: alert.
        mail_session("10.20.2.21:40003", "198.51.100.26:587", at(30), &hello()),
        // The relay itself delivers outside: allowed.
        mail_session("10.0.0.25:40004", "198.51.100.25:25", at(40), &hello()),
    ];
    Scenario {
        name: "detect-policy",
        about: "a deny-group web server sending mail twice (one alert), a relay_only workstation direct to an outside server (alert), through the relay and the relay itself (none)",
        link: Link::ethernet(),
        frames: merge(sessions),
    }
}

fn direct_smtp() -> Scenario {
    let unanswered = |client: &str, server: &str, when: u64| {
        let mut s = Session::new(client, server).starting_at(at(when));
        s.syn().wait_secs(1).syn();
        s.into_frames()
    };
    let refused = |client: &str, server: &str, when: u64| {
        let mut s = Session::new(client, server).starting_at(at(when));
        s.refused();
        s.into_frames()
    };
    let sessions = vec![
        // Three blocked attempts to three outside servers in a minute: alert.
        unanswered("10.20.3.30:41000", "203.0.113.10:25", 0),
        refused("10.20.3.30:41001", "203.0.113.11:25", 20),
        unanswered("10.20.3.30:41002", "203.0.113.12:25", 40),
        // Two: none.
        unanswered("10.20.3.31:41003", "203.0.113.10:25", 5),
        refused("10.20.3.31:41004", "203.0.113.11:25", 25),
        // Three, but 11 minutes apart: none.
        unanswered("10.20.3.32:41005", "203.0.113.10:25", 0),
        unanswered("10.20.3.32:41006", "203.0.113.10:25", 660),
        unanswered("10.20.3.32:41007", "203.0.113.10:25", 1320),
        // The relay's failures are its job: none.
        unanswered("10.0.0.25:41008", "203.0.113.10:25", 0),
        unanswered("10.0.0.25:41009", "203.0.113.11:25", 10),
        unanswered("10.0.0.25:41010", "203.0.113.12:25", 20),
        // Blocked to an internal server, or on another port: none.
        unanswered("10.20.3.33:41011", "10.0.0.26:25", 0),
        unanswered("10.20.3.33:41012", "10.0.0.27:25", 10),
        unanswered("10.20.3.33:41013", "203.0.113.10:443", 20),
    ];
    Scenario {
        name: "detect-direct-smtp",
        about: "a workstation blocked 3 times on outside port 25 in a minute (alert); twice; 3 times over 22 minutes; the relay; internal or other ports (none)",
        link: Link::ethernet(),
        frames: merge(sessions),
    }
}

fn blocklisted() -> Scenario {
    let mail = || [Mail::new("bounce@corp.example.org", "DSN").to("u", "example.biz", 1, true)];
    let mut socks = Session::new("10.20.4.41:42000", "198.18.66.9:1080").starting_at(at(10));
    socks
        .handshake()
        .send(Ctos, &[5, 1, 0])
        .send(Stoc, &[5, 0])
        .send(Ctos, &[5, 1, 0, 1, 93, 184, 216, 34, 0, 80])
        .send(Stoc, &[5, 0, 0, 1, 198, 18, 66, 9, 0xc3, 0x50])
        .send(Ctos, b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
        .send(Stoc, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        .close();
    let sessions = vec![
        // The relay delivers to a listed server: alert, once for two connections.
        mail_session("10.0.0.25:42001", "198.18.66.7:25", at(0), &mail()),
        mail_session("10.0.0.25:42002", "198.18.66.7:25", at(5), &mail()),
        // ... and to an unlisted one: none.
        mail_session("10.0.0.25:42003", "198.51.100.25:25", at(8), &mail()),
        // A workstation uses a listed SOCKS proxy: alert.
        socks.into_frames(),
    ];
    Scenario {
        name: "detect-blocklist",
        about: "the relay delivering twice to a DROP-listed server (one alert) and to an unlisted one (none); a workstation using a listed SOCKS5 proxy (alert)",
        link: Link::ethernet(),
        frames: merge(sessions),
    }
}

/// A client that only greets and leaves: enough to be an SMTP client.
fn greeting_only(client: &str, server: &str, when: Timestamp) -> Vec<Frame> {
    let mut s = Session::new(client, server).starting_at(when);
    s.handshake()
        .send(Stoc, b"220 relay.corp.example.org ESMTP Postfix\r\n")
        .send(Ctos, b"EHLO pc\r\n")
        .send(Stoc, b"250 relay.corp.example.org\r\n")
        .send(Ctos, b"QUIT\r\n")
        .send(Stoc, b"221 Bye\r\n")
        .close();
    s.into_frames()
}

fn surge() -> Scenario {
    let hour = 3600;
    let mut sessions = Vec::new();
    let mut port = 43000u16;
    let mut clients = |net: &str, hour_index: u64, n: u8, sessions: &mut Vec<Vec<Frame>>| {
        for h in 0..n {
            port += 1;
            sessions.push(greeting_only(
                &format!("{net}.{}:{port}", h + 1),
                "10.0.0.25:25",
                at(hour_index * hour + 60 + u64::from(h) * 10),
            ));
        }
    };
    // Workstations: 2 clients an hour for 4 hours, then 12 (over 3 x the baseline of 2, and
    // at least 10): alert. Lab: 4 an hour, then 11 (under 3 x 4): none.
    for h in 0..4 {
        clients("10.20.5", h, 2, &mut sessions);
        clients("10.40.5", h, 4, &mut sessions);
    }
    clients("10.20.5", 4, 12, &mut sessions);
    clients("10.40.5", 4, 11, &mut sessions);
    // The next hour ends the fifth interval.
    clients("10.20.5", 5, 1, &mut sessions);
    Scenario {
        name: "detect-surge",
        about: "hourly SMTP clients per group: workstations 2,2,2,2 then 12 (alert); lab 4,4,4,4 then 11 (none); hourly asset_summary events",
        link: Link::ethernet(),
        frames: merge(sessions),
    }
}

fn auth_bruteforce() -> Scenario {
    // Each failed attempt: AUTH PLAIN with a user name and a wrong password, answered 535.
    let attempts = |client: &str, when: u64, users: &[&str], then_ok: bool| {
        let mut s = Session::new(client, "10.0.0.25:587").starting_at(at(when));
        s.handshake()
            .send(Stoc, b"220 relay.corp.example.org ESMTP Postfix\r\n")
            .send(Ctos, b"EHLO user\r\n")
            .send(
                Stoc,
                b"250-relay.corp.example.org\r\n250 AUTH PLAIN LOGIN\r\n",
            );
        for user in users {
            let plain = base64_plain(user, "guess");
            s.send(Ctos, format!("AUTH PLAIN {plain}\r\n").as_bytes())
                .send(Stoc, b"535 5.7.8 Error: authentication failed\r\n");
        }
        if then_ok {
            let plain = base64_plain("carol", "right");
            s.send(Ctos, format!("AUTH PLAIN {plain}\r\n").as_bytes())
                .send(Stoc, b"235 2.7.0 Authentication successful\r\n");
            for i in 0..2 {
                s.send(Ctos, b"MAIL FROM:<carol@corp.example.org>\r\n")
                    .send(Stoc, b"250 Ok\r\n")
                    .send(Ctos, b"RCPT TO:<dave@corp.example.org>\r\n")
                    .send(Stoc, b"250 Ok\r\n")
                    .send(Ctos, b"DATA\r\n")
                    .send(Stoc, b"354 go ahead\r\n")
                    .send(Ctos, &message("after a typo", 100, i))
                    .send(Stoc, b"250 Ok: queued as B1\r\n");
            }
        }
        s.send(Ctos, b"QUIT\r\n").send(Stoc, b"221 Bye\r\n").close();
        s.into_frames()
    };
    let sessions = vec![
        // 10 failures over three connections in two minutes: alert.
        attempts(
            "198.51.100.66:44000",
            0,
            &["admin", "info", "sales", "test"],
            false,
        ),
        attempts("198.51.100.66:44001", 40, &["root", "office", "hr"], false),
        attempts(
            "198.51.100.66:44002",
            80,
            &["webmaster", "billing", "support"],
            false,
        ),
        // 9 failures: none.
        attempts("198.51.100.67:44003", 0, &["a", "b", "c", "d", "e"], false),
        attempts("198.51.100.67:44004", 60, &["f", "g", "h", "i"], false),
        // 4 failures, then success and two messages: its two events repeat the 4, counted once.
        attempts(
            "10.20.6.60:44005",
            0,
            &["carl", "karol", "carroll", "caro1"],
            true,
        ),
    ];
    Scenario {
        name: "detect-auth-bruteforce",
        about: "10 failed AUTH from one client over 3 connections (alert); 9 from another (none); 4 then success with two messages (none)",
        link: Link::ethernet(),
        frames: merge(sessions),
    }
}

fn base64_plain(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}

fn smtp_over_socks() -> Scenario {
    let through = |client: &str, when: u64, inner: &[u8], inner_reply: &[u8], smtp: bool| {
        let mut s = Session::new(client, "198.51.100.80:1080").starting_at(at(when));
        s.handshake()
            .send(Ctos, &[5, 1, 0])
            .send(Stoc, &[5, 0])
            .send(
                Ctos,
                &[5, 1, 0, 1, 203, 0, 113, 25, 0, if smtp { 25 } else { 80 }],
            )
            .send(Stoc, &[5, 0, 0, 1, 198, 51, 100, 80, 0xc3, 0x50]);
        if smtp {
            s.send(Stoc, b"220 mx.example.net ESMTP\r\n")
                .send(Ctos, b"HELO ylmf-pc\r\n")
                .send(Stoc, b"250 mx.example.net\r\n")
                .send(Ctos, b"MAIL FROM:<promo@example.com>\r\n")
                .send(Stoc, b"250 Ok\r\n")
                .send(Ctos, b"QUIT\r\n")
                .send(Stoc, b"221 Bye\r\n");
        } else {
            s.send(Ctos, inner).send(Stoc, inner_reply);
        }
        s.close();
        s.into_frames()
    };
    let sessions = vec![
        // SMTP through the proxy, twice from one client: one alert.
        through("10.20.7.70:45000", 0, b"", b"", true),
        through("10.20.7.70:45001", 30, b"", b"", true),
        // HTTP through the same proxy: none.
        through(
            "10.20.7.71:45002",
            10,
            b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            false,
        ),
    ];
    Scenario {
        name: "detect-smtp-over-socks",
        about: "a workstation talking SMTP through a SOCKS5 proxy twice (one alert); HTTP through it (none)",
        link: Link::ethernet(),
        frames: merge(sessions),
    }
}
