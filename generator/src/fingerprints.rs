//! Captures for the shipped fingerprint rules (`rules/fingerprints.toml`): every rule is
//! matched by at least one session here (a test checks it), and near misses are not.
//! Addresses follow `tests/rules/`: clients in 10.20.0.0/16, the relay 10.0.0.25.

use super::scenarios::{Scenario, at};
use super::{Frame, Link, Session, mail_session, merge};
use spamtap::direction::Direction::{Ctos, Stoc};
use spamtap::timestamp::Timestamp;

const POSTFIX: &str = "220 relay.corp.example.org ESMTP Postfix";

/// A message with these headers and a short body. Headers without a From come after From, To
/// and Subject; with one, they are the whole header block, in their order.
fn message(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut m = String::new();
    if !headers.iter().any(|(name, _)| *name == "From") {
        m.push_str(
            "From: Sender <sender@corp.example.org>\r\nTo: <friend@example.net>\r\nSubject: Hello\r\n",
        );
    }
    for (name, value) in headers {
        m.push_str(&format!("{name}: {value}\r\n"));
    }
    m.push_str("\r\nHello,\r\nsee you soon.\r\n.\r\n");
    m.into_bytes()
}

/// One client session with a message of these headers (see [`message`]).
fn session(
    client: &str,
    server: &str,
    when: Timestamp,
    banner: &str,
    greeting: &str,
    headers: &[(&str, &str)],
) -> Vec<Frame> {
    mail_session(client, server, when, banner, greeting, &message(headers))
}

pub fn scenarios() -> Vec<Scenario> {
    vec![the_bat(), clients(), servers(), bots()]
}

/// A genuine The Bat! message's headers, in its order (tests/mail/the-bat.txt has real ones),
/// for a given X-Mailer.
fn bat_headers(x_mailer: &str) -> Vec<(&str, &str)> {
    vec![
        ("Date", "Thu, 1 Jan 2026 12:00:00 +0300"),
        ("From", "Sender <sender@corp.example.org>"),
        ("X-Mailer", x_mailer),
        ("Reply-To", "Sender <sender@corp.example.org>"),
        ("X-Priority", "3 (Normal)"),
        ("Message-ID", "<1743021987.20260101120000@corp.example.org>"),
        ("To", "Friend <friend@example.net>"),
        ("Subject", "Hello"),
        ("MIME-Version", "1.0"),
        (
            "Content-Type",
            "multipart/mixed; boundary=\"----------0D3A7C41B2E9F58\"; charset=windows-1251",
        ),
    ]
}

fn the_bat() -> Scenario {
    let relay = "10.0.0.25:587";
    let mut sessions = Vec::new();
    // Genuine, old and new versions and editions as real messages write them, each from its
    // own workstation; real clients greet with a machine name, an FQDN or an address literal.
    for (i, (x_mailer, greeting)) in [
        ("The Bat! (v3.99.3) Professional", "EHLO WORKPC-0"),
        ("The Bat! (v4.0.24) Home", "EHLO WORKPC-1"),
        (
            "The Bat! (v2.00.6) UNREG / CD5BF9353B3B7091",
            "EHLO [10.20.8.3]",
        ),
        (
            "The Bat! (v9.2.2.1 (BETA)) Professional",
            "EHLO ws4.corp.example.org",
        ),
        ("The Bat! (v10.5.4) Home", "EHLO WORKPC-4"),
        ("The Bat! (v1.60q)", "EHLO WORKPC-5"),
    ]
    .into_iter()
    .enumerate()
    {
        sessions.push(session(
            &format!("10.20.8.{}:46{i:03}", i + 1),
            relay,
            at(i as u64),
            POSTFIX,
            greeting,
            &bat_headers(x_mailer),
        ));
    }
    // Forged: the X-Mailer spam tools most often borrow, but a habit broken.
    let forged = |i: u64, headers: Vec<(&'static str, &'static str)>| {
        session(
            &format!("10.20.9.{}:47{i:03}", i + 1),
            relay,
            at(10 + i),
            POSTFIX,
            "EHLO WORKPC",
            &headers,
        )
    };
    let claimed = "The Bat! (v3.99.3) Professional";
    let set = |headers: &mut Vec<(&'static str, &'static str)>, name, value| {
        if let Some(h) = headers.iter_mut().find(|(n, _)| *n == name) {
            h.1 = value;
        }
    };
    let mut wrong_boundary = bat_headers(claimed);
    set(
        &mut wrong_boundary,
        "Content-Type",
        "multipart/alternative; boundary=\"=_NextPart_000_0012_01DA\"; charset=windows-1251",
    );
    let mut wrong_id = bat_headers(claimed);
    set(&mut wrong_id, "Message-ID", "<172562218.2026011120000>");
    let mut quoted = bat_headers(claimed);
    set(
        &mut quoted,
        "Content-Type",
        "text/plain; charset=\"windows-1251\"",
    );
    // The order a script writes when it adds the X-Mailer after its own From, To and Subject.
    let reordered: Vec<_> = bat_headers(claimed)
        .into_iter()
        .filter(|(name, _)| !matches!(*name, "From" | "To" | "Subject"))
        .collect();
    sessions.push(forged(0, wrong_boundary));
    sessions.push(forged(1, wrong_id));
    sessions.push(forged(2, quoted));
    sessions.push(forged(3, reordered));
    Scenario {
        name: "fingerprint-the-bat",
        about: "The Bat! 1.60q to 10.5.4 with every habit and the EHLO names real clients use (genuine), and four forgeries claiming 3.99.3 that break one habit each (boundary, Message-ID, quoted charset, header order)",
        link: Link::ethernet(),
        frames: merge(sessions),
    }
}

fn clients() -> Scenario {
    let relay = "10.0.0.25:587";
    let cases: [(&str, &str); 12] = [
        ("X-Mailer", "Microsoft Outlook 16.0"),
        ("X-Mailer", "Microsoft Office Outlook 12.0"),
        (
            "User-Agent",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Thunderbird/115.3.1",
        ),
        ("X-Mailer", "Apple Mail (2.3654.120.0.1.13)"),
        (
            "X-Mailer",
            "PHPMailer 6.8.0 (https://github.com/PHPMailer/PHPMailer)",
        ),
        ("X-Mailer", "Swift Mailer v5.4.12"),
        ("X-Mailer", "swaks v20201014.0 jetmore.org/john/code/swaks/"),
        ("X-Mailer", "Atomic Mail Sender 9.30"),
        ("User-Agent", "Roundcube Webmail/1.6.5"),
        ("User-Agent", "SquirrelMail/1.4.22"),
        ("User-Agent", "Horde Application Framework 5"),
        // Unknown: no software.
        ("X-Mailer", "Homegrown Mailer 0.1"),
    ];
    let sessions = cases
        .iter()
        .enumerate()
        .map(|(i, (header, value))| {
            session(
                &format!("10.20.10.{}:48{i:03}", i + 1),
                relay,
                at(i as u64),
                POSTFIX,
                "EHLO pc.corp.example.org",
                &[(*header, *value), ("MIME-Version", "1.0")],
            )
        })
        .collect::<Vec<_>>();
    Scenario {
        name: "fingerprint-clients",
        about: "Outlook (two spellings), Thunderbird, Apple Mail, PHPMailer, Swift Mailer, swaks, a bulk mailer, three webmails, and an unknown X-Mailer",
        link: Link::ethernet(),
        frames: merge(sessions),
    }
}

fn servers() -> Scenario {
    let banners = [
        "220 mx1.example.net ESMTP Postfix (Debian/GNU)",
        "220 mail.example.com ESMTP Exim 4.96 Thu, 01 Jan 2026 00:00:00 +0000",
        "220 mx.example.org ESMTP Sendmail 8.15.2/8.15.2; Thu, 1 Jan 2026 00:00:00 GMT",
        "220 EXCH01.example.local Microsoft ESMTP MAIL Service ready at Thu, 1 Jan 2026 00:00:00 +0000",
        "220 mail.example.info ESMTP qmail",
        "220 smtp.example.biz ESMTP OpenSMTPD",
        "220 mx2.example.net ESMTP Haraka/3.0.2 ready",
        // Says nothing: no software.
        "220 mx3.example.net ESMTP",
        // Large providers, as real transcripts show them (sources in rules/fingerprints.toml).
        "220 mx.google.com ESMTP h6si2778348nfh.21",
        "220 TYAP286CA0019.outlook.office365.com Microsoft ESMTP MAIL Service ready at Mon, 1 Nov 2021 14:02:29 +0000",
        "220 smtp.mail.yahoo.com ESMTP ready",
        "220 smtp21.mail.ru ESMTP ready",
        "220 mxfront3h.mail.yandex.net (Want to use Yandex.Mail for your domain? Visit http://pdd.yandex.ru)",
        "220 gmx.com (mrgmx003) Nemesis ESMTP Service ready",
        "220 web.de (mrweb105) Nemesis ESMTP Service ready",
    ];
    let sessions = banners
        .iter()
        .enumerate()
        .map(|(i, banner)| {
            session(
                &format!("10.0.0.25:49{i:03}"),
                &format!("198.51.100.{}:25", 100 + i),
                at(i as u64),
                banner,
                "EHLO relay.corp.example.org",
                &[],
            )
        })
        .collect::<Vec<_>>();
    // Picked up after the greeting: only the EHLO reply names the provider (the replies of
    // real transcripts, sources in rules/fingerprints.toml).
    let ehlo_replies: [&[u8]; 5] = [
        b"250-mx.google.com at your service, [89.16.173.238]\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 ENHANCEDSTATUSCODES\r\n",
        b"250-smtp429.mail.ir2.yahoo.com Hello 7 [188.254.110.183])\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-SIZE 41697280\r\n250 AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER\r\n",
        b"250-mxfront3h.mail.yandex.net\r\n250-8BITMIME\r\n250-PIPELINING\r\n250-SIZE 42991616\r\n250-STARTTLS\r\n250-DSN\r\n250 ENHANCEDSTATUSCODES\r\n",
        b"250-smtp21.mail.ru\r\n250-SIZE 73400320\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n",
        b"250-gmx.com Hello Rockys-MacBook-Pro [68.232.66.174]\r\n250-AUTH LOGIN PLAIN\r\n250-SIZE 69920427\r\n250 STARTTLS\r\n",
    ];
    let mut sessions = sessions;
    for (i, reply) in ehlo_replies.into_iter().enumerate() {
        let mut s = Session::new(
            &format!("10.0.0.25:50{i:03}"),
            &format!("198.51.100.{}:25", 120 + i),
        )
        .starting_at(at(20 + i as u64));
        s.send(Ctos, b"EHLO relay.corp.example.org\r\n")
            .send(Stoc, reply)
            .send(Ctos, b"QUIT\r\n")
            .send(Stoc, b"221 2.0.0 Bye\r\n")
            .close();
        sessions.push(s.into_frames());
    }
    Scenario {
        name: "fingerprint-servers",
        about: "the relay delivering to Postfix, Exim, Sendmail, Exchange, qmail, OpenSMTPD, Haraka, a banner without a name, Gmail, Microsoft 365, Yahoo, Mail.ru, Yandex, GMX and WEB.DE; and five of these providers picked up after their greeting, named by their EHLO reply",
        link: Link::ethernet(),
        frames: merge(sessions),
    }
}

fn bots() -> Scenario {
    let outside = |i: u8| format!("203.0.113.{}:25", 30 + i);
    let mut sessions = vec![
        // Cutwail's greeting, to an outside MX.
        session(
            "10.20.11.1:50001",
            &outside(1),
            at(0),
            "220 mx ESMTP",
            "EHLO ylmf-pc",
            &[],
        ),
        // Random upper-case name.
        session(
            "10.20.11.2:50002",
            "10.0.0.25:587",
            at(1),
            POSTFIX,
            "HELO XKQZTRWP",
            &[],
        ),
        // A bare address to an outside MX.
        session(
            "10.20.11.3:50003",
            &outside(3),
            at(2),
            "220 mx ESMTP",
            "HELO 10.20.11.3",
            &[],
        ),
        // A dotless name to an outside MX.
        session(
            "10.20.11.4:50004",
            &outside(4),
            at(3),
            "220 mx ESMTP",
            "EHLO DESKTOP-4F2K",
            &[],
        ),
        // Near misses: a bare address to the internal relay, a pronounceable upper-case name,
        // an address literal to an outside MX.
        session(
            "10.20.11.5:50005",
            "10.0.0.25:25",
            at(4),
            POSTFIX,
            "HELO 10.20.11.5",
            &[],
        ),
        session(
            "10.20.11.6:50006",
            "10.0.0.25:587",
            at(5),
            POSTFIX,
            "HELO MARKETING",
            &[],
        ),
        session(
            "10.20.11.7:50007",
            &outside(7),
            at(6),
            "220 mx ESMTP",
            "EHLO [10.20.11.7]",
            &[],
        ),
        // The random name between two of the organisation's mail servers (an Exchange
        // server's NetBIOS name can look like it): not a bot, the rule does not say so.
        session(
            "10.0.0.26:50009",
            "10.0.0.25:25",
            at(8),
            POSTFIX,
            "HELO XKQZTRWP",
            &[],
        ),
    ];
    // Talks before the banner.
    let mut pregreet = Session::new("10.20.11.8:50008", &outside(8)).starting_at(at(7));
    pregreet
        .handshake()
        .send(Ctos, b"EHLO mail.example.com\r\n")
        .send(Stoc, b"220 mx ESMTP\r\n")
        .send(Stoc, b"250 mx\r\n")
        .send(Ctos, b"QUIT\r\n")
        .send(Stoc, b"221 Bye\r\n")
        .close();
    sessions.push(pregreet.into_frames());
    Scenario {
        name: "fingerprint-bots",
        about: "spam-bot dialects: ylmf-pc, a random upper-case HELO, bare-IP and dotless HELO to outside MXs, pre-greeting; near misses to the relay, a pronounceable name, an address literal, and the random name between two of the organisation's mail servers",
        link: Link::ethernet(),
        frames: merge(sessions),
    }
}
