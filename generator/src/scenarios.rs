//! The named captures in `pcaps/`, one per behaviour the sensor core must get right, and the
//! mixed traffic of the benchmark.

use std::net::SocketAddr;

use super::{
    Fault, Frame, Link, PcapWriter, Session, arp_frame, fragment_frame, ipv4_fragments, merge, tls,
    udp_frame,
};
use spamtap::direction::Direction::{Ctos, Stoc};
use spamtap::timestamp::Timestamp;

use super::EPOCH;

/// A capture to generate: its file name (without `.pcap`), what it shows, and its frames.
pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    pub link: Link,
    pub frames: Vec<Frame>,
}

pub(super) fn at(secs: u64) -> Timestamp {
    EPOCH.saturating_add_secs(secs)
}

/// # Panics
/// On an address that does not parse: callers pass literals.
fn addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|_| panic!("generator address {s:?} is not ip:port"))
}

/// Printable, line-structured filler of a given length, different per `seed`.
pub fn text(len: usize, seed: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut line = 0u32;
    while out.len() < len {
        let l = format!("line {line:05} of message {seed:08x}: the quick brown fox jumps\r\n");
        out.extend_from_slice(l.as_bytes());
        line += 1;
    }
    out.truncate(len);
    out
}

/// A message: headers as a mail client writes them, then `body_len` bytes of text, with the
/// terminating "." line.
pub fn message(subject: &str, body_len: usize, seed: u32) -> Vec<u8> {
    let mut m = format!(
        "From: Alice Example <alice@example.org>\r\nTo: Bob <bob@example.net>\r\n\
         Subject: {subject}\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\n\
         Message-ID: <{seed}.20260101000000@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    .into_bytes();
    m.extend_from_slice(&text(body_len, seed));
    m.extend_from_slice(b"\r\n.\r\n");
    m
}

fn greet(session: &mut Session) {
    session
        .send(Stoc, b"220 mx.example.net ESMTP Postfix\r\n")
        .send(Ctos, b"EHLO client.example.org\r\n")
        .send(
            Stoc,
            b"250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-AUTH PLAIN LOGIN CRAM-MD5\r\n250-STARTTLS\r\n250-CHUNKING\r\n250 8BITMIME\r\n",
        );
}

/// One transaction, one command per round trip.
fn transaction(session: &mut Session, from: &str, to: &str, msg: &[u8], queue_id: &str) {
    session
        .send(Ctos, format!("MAIL FROM:<{from}>\r\n").as_bytes())
        .send(Stoc, b"250 2.1.0 Ok\r\n")
        .send(Ctos, format!("RCPT TO:<{to}>\r\n").as_bytes())
        .send(Stoc, b"250 2.1.5 Ok\r\n")
        .send(Ctos, b"DATA\r\n")
        .send(Stoc, b"354 End data with <CR><LF>.<CR><LF>\r\n")
        .send(Ctos, msg)
        .send(
            Stoc,
            format!("250 2.0.0 Ok: queued as {queue_id}\r\n").as_bytes(),
        );
}

fn quit(session: &mut Session) {
    session
        .send(Ctos, b"QUIT\r\n")
        .send(Stoc, b"221 2.0.0 Bye\r\n")
        .close();
}

fn smtp_like(session: &mut Session, body_len: usize, seed: u32) {
    greet(session);
    let msg = message("Quarterly report", body_len, seed);
    transaction(
        session,
        "alice@example.org",
        "bob@example.net",
        &msg,
        "4XyZ1",
    );
    session
        .send(Ctos, b"QUIT\r\n")
        .send(Stoc, b"221 2.0.0 Bye\r\n");
}

/// Every scenario, in a fixed order.
pub fn scenarios() -> Vec<Scenario> {
    vec![
        basic(),
        reorder(),
        gap(),
        states(),
        wraparound(),
        link_vlan(),
        link_only(
            "link-sll",
            "Linux cooked capture v1 (the `any` interface)",
            Link::LinuxSll,
        ),
        link_only("link-sll2", "Linux cooked capture v2", Link::LinuxSll2),
        link_only("link-raw", "raw IP link type", Link::RawIp),
        link_only("link-null", "BSD loopback link type", Link::Null),
        noise(),
        smtp_pipelining(),
        smtp_bdat(),
        smtp_auth(),
        smtp_starttls(),
        tls_implicit(),
        tls_socks(),
        frag_smtp(),
        tcp_injection(),
        tcp_conflict(),
        smtp_pregreet(),
        smtp_multi(),
        smtp_rejected(),
        smtp_midstream(),
        smtp_gap(),
        socks4(),
        socks5(),
        socks_smtp(),
        socks_reverse(),
        http_connect(),
    ]
    .into_iter()
    .chain(super::detections::scenarios())
    .chain(super::fingerprints::scenarios())
    .collect()
}

fn http_connect() -> Scenario {
    // A bot sends mail through an open HTTP proxy.
    let mut open = Session::new("192.0.2.99:42009", "198.51.100.83:3128");
    open.handshake()
        .send(
            Ctos,
            b"CONNECT mx.example.net:25 HTTP/1.0\r\nUser-Agent: Mozilla/4.0\r\n\r\n",
        )
        .send(Stoc, b"HTTP/1.0 200 Connection established\r\n\r\n");
    bot_mail(&mut open, "victim4@example.net", "4HtTp1");
    open.close();
    // A proxy that wants credentials: no tunnel.
    let mut refused = Session::new("192.0.2.99:42010", "198.51.100.83:3128").starting_at(at(1));
    refused
        .handshake()
        .send(
            Ctos,
            b"CONNECT mx.example.net:25 HTTP/1.1\r\nHost: mx.example.net:25\r\n\r\n",
        )
        .send(Stoc, b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
        .close();
    Scenario {
        name: "http-connect",
        about: "SMTP through an open HTTP proxy (CONNECT), and a CONNECT the proxy refuses",
        link: Link::ethernet(),
        frames: merge([open.into_frames(), refused.into_frames()]),
    }
}

/// A SOCKS5 request for an IPv4 address.
fn socks5_connect(ip: [u8; 4], port: u16) -> Vec<u8> {
    let mut r = vec![5, 1, 0, 1];
    r.extend_from_slice(&ip);
    r.extend_from_slice(&port.to_be_bytes());
    r
}

const SOCKS5_OK: &[u8] = &[5, 0, 0, 1, 198, 51, 100, 80, 0xc3, 0x50];
const SOCKS4_OK: &[u8] = &[0, 90, 0, 0, 0, 0, 0, 0];

/// An SMTP session as a spam bot sends it through a proxy: no greeting name, straight to work.
fn bot_mail(session: &mut Session, to: &str, queue_id: &str) {
    session
        .send(Stoc, b"220 mx.example.net ESMTP Postfix\r\n")
        .send(Ctos, b"HELO ylmf-pc\r\n")
        .send(Stoc, b"250 mx.example.net\r\n");
    let msg = message("Cheap meds", 300, 20);
    transaction(session, "promo@example.com", to, &msg, queue_id);
    session.send(Ctos, b"QUIT\r\n").send(Stoc, b"221 Bye\r\n");
}

fn socks4() -> Scenario {
    // SOCKS4 CONNECT with a user id.
    let mut v4 = Session::new("192.0.2.90:42000", "198.51.100.80:1080");
    v4.handshake()
        .send(Ctos, b"\x04\x01\x00\x50\xcb\x00\x71\x50alice\x00")
        .send(Stoc, SOCKS4_OK)
        .send(Ctos, b"GET / HTTP/1.0\r\n\r\n")
        .send(Stoc, b"HTTP/1.0 200 OK\r\n\r\nhello")
        .close();
    // SOCKS4a: the proxy resolves the name; refused.
    let mut v4a = Session::new("192.0.2.91:42001", "198.51.100.80:1080").starting_at(at(1));
    v4a.handshake()
        .send(
            Ctos,
            b"\x04\x01\x01\xbb\x00\x00\x00\x01\x00www.example.com\x00",
        )
        .send(Stoc, &[0, 91, 0, 0, 0, 0, 0, 0])
        .close();
    Scenario {
        name: "socks4",
        about: "SOCKS4 CONNECT with a user id (HTTP inside), and a SOCKS4a request by name that the proxy refuses",
        link: Link::ethernet(),
        frames: merge([v4.into_frames(), v4a.into_frames()]),
    }
}

fn socks5() -> Scenario {
    // No authentication, a domain name target.
    let mut domain = Session::new("192.0.2.92:42002", "198.51.100.80:1080");
    let mut request = vec![5, 1, 0, 3, 15];
    request.extend_from_slice(b"www.example.com");
    request.extend_from_slice(&443u16.to_be_bytes());
    domain
        .handshake()
        .send(Ctos, &[5, 1, 0])
        .send(Stoc, &[5, 0])
        .send(Ctos, &request)
        .send(Stoc, SOCKS5_OK)
        .send(Ctos, b"\x16\x03\x01\x00\x05hello")
        .close();
    // User and password (RFC 1929), an IPv6 target.
    let mut v6 = Session::new("192.0.2.93:42003", "198.51.100.80:1080").starting_at(at(1));
    let mut request = vec![5, 1, 0, 4];
    request.extend_from_slice(&[
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x25,
    ]);
    request.extend_from_slice(&22u16.to_be_bytes());
    v6.handshake()
        .send(Ctos, &[5, 2, 0, 2])
        .send(Stoc, &[5, 2])
        .send(Ctos, b"\x01\x05carol\x09hunter2!!")
        .send(Stoc, &[1, 0])
        .send(Ctos, &request)
        .send(Stoc, SOCKS5_OK)
        .send(Stoc, b"SSH-2.0-OpenSSH_9.6\r\n")
        .close();
    // Wrong password.
    let mut failed = Session::new("192.0.2.94:42004", "198.51.100.80:1080").starting_at(at(2));
    failed
        .handshake()
        .send(Ctos, &[5, 1, 2])
        .send(Stoc, &[5, 2])
        .send(Ctos, b"\x01\x05carol\x05guess")
        .send(Stoc, &[1, 1])
        .close();
    // CONNECT refused.
    let mut refused = Session::new("192.0.2.95:42005", "198.51.100.80:1080").starting_at(at(3));
    refused
        .handshake()
        .send(Ctos, &[5, 1, 0])
        .send(Stoc, &[5, 0])
        .send(Ctos, &socks5_connect([203, 0, 113, 25], 25))
        .send(Stoc, &[5, 5, 0, 1, 0, 0, 0, 0, 0, 0])
        .close();
    Scenario {
        name: "socks5",
        about: "SOCKS5: no auth to a domain name, user/password to an IPv6 target, a failed login, a refused CONNECT",
        link: Link::ethernet(),
        frames: merge([
            domain.into_frames(),
            v6.into_frames(),
            failed.into_frames(),
            refused.into_frames(),
        ]),
    }
}

fn socks_smtp() -> Scenario {
    // A bot sends mail through a SOCKS5 proxy, authenticating as "bot".
    let mut five = Session::new("192.0.2.96:42006", "198.51.100.80:1080");
    five.handshake()
        .send(Ctos, &[5, 1, 2])
        .send(Stoc, &[5, 2])
        .send(Ctos, b"\x01\x03bot\x06s3cr3t")
        .send(Stoc, &[1, 0])
        .send(Ctos, &socks5_connect([203, 0, 113, 25], 25))
        .send(Stoc, SOCKS5_OK);
    bot_mail(&mut five, "victim1@example.net", "4SoCk5");
    five.close();
    // The same through SOCKS4, on a high port.
    let mut four = Session::new("192.0.2.97:42007", "198.51.100.81:31337").starting_at(at(1));
    four.handshake()
        .send(Ctos, b"\x04\x01\x00\x19\xcb\x00\x71\x1a\x00")
        .send(Stoc, SOCKS4_OK);
    bot_mail(&mut four, "victim2@example.net", "4SoCk4");
    four.close();
    // SOCKS5 to a second proxy, SOCKS4 through it, then SMTP.
    let mut nested = Session::new("192.0.2.98:42008", "198.51.100.80:1080").starting_at(at(2));
    nested
        .handshake()
        .send(Ctos, &[5, 1, 0])
        .send(Stoc, &[5, 0])
        .send(Ctos, &socks5_connect([198, 51, 100, 82], 1080))
        .send(Stoc, SOCKS5_OK)
        .send(Ctos, b"\x04\x01\x00\x19\xcb\x00\x71\x1b\x00")
        .send(Stoc, SOCKS4_OK);
    bot_mail(&mut nested, "victim3@example.net", "4NeSt1");
    nested.close();
    Scenario {
        name: "socks-smtp",
        about: "SMTP through SOCKS5 (with a login) and SOCKS4, and through SOCKS4 inside SOCKS5",
        link: Link::ethernet(),
        frames: merge([five.into_frames(), four.into_frames(), nested.into_frames()]),
    }
}

fn socks_reverse() -> Scenario {
    // A bot behind NAT connects out to its controller and offers it a SOCKS5 proxy: the TCP
    // responder (the controller) is the SOCKS client, and sends mail through the bot.
    let mut s = Session::new("10.20.12.5:49200", "198.51.100.77:443");
    s.handshake()
        .send(Stoc, &[5, 1, 0])
        .send(Ctos, &[5, 0])
        .send(Stoc, &socks5_connect([203, 0, 113, 25], 25))
        .send(Ctos, SOCKS5_OK)
        .send(Ctos, b"220 mx.example.net ESMTP Postfix\r\n")
        .send(Stoc, b"HELO ylmf-pc\r\n")
        .send(Ctos, b"250 mx.example.net\r\n")
        .send(Stoc, b"MAIL FROM:<promo@example.com>\r\n")
        .send(Ctos, b"250 2.1.0 Ok\r\n")
        .send(Stoc, b"RCPT TO:<victim4@example.net>\r\n")
        .send(Ctos, b"250 2.1.5 Ok\r\n")
        .send(Stoc, b"DATA\r\n")
        .send(Ctos, b"354 End data with <CR><LF>.<CR><LF>\r\n")
        .send(Stoc, &message("Cheap meds", 300, 21))
        .send(Ctos, b"250 2.0.0 Ok: queued as 4ReV1\r\n")
        .send(Stoc, b"QUIT\r\n")
        .send(Ctos, b"221 Bye\r\n")
        .close();
    Scenario {
        name: "socks-reverse",
        about: "reverse SOCKS5: a host behind NAT connects out and its controller, the TCP responder, speaks as the SOCKS client and sends mail through it",
        link: Link::ethernet(),
        frames: s.into_frames(),
    }
}

fn smtp_pipelining() -> Scenario {
    let mut s = Session::new("192.0.2.70:41000", "198.51.100.25:2525");
    s.handshake();
    greet(&mut s);
    s.send(
        Ctos,
        b"MAIL FROM:<alice@example.org> SIZE=900\r\nRCPT TO:<bob@example.net>\r\n\
          RCPT TO:<nobody@example.net>\r\nRCPT TO:<carol@example.net>\r\nDATA\r\n",
    )
    .send(
        Stoc,
        b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <nobody@example.net>: Recipient address rejected\r\n\
          250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n",
    )
    .send(Ctos, &message("Pipelined on port 2525", 600, 10))
    .send(Stoc, b"250 2.0.0 Ok: queued as 4Pp1LnD\r\n");
    quit(&mut s);
    Scenario {
        name: "smtp-pipelining",
        about: "PIPELINING on port 2525: one round trip for MAIL, three RCPTs (one rejected) and DATA",
        link: Link::ethernet(),
        frames: s.into_frames(),
    }
}

fn smtp_bdat() -> Scenario {
    let mut s = Session::new("192.0.2.71:41001", "198.51.100.25:25");
    s.handshake();
    greet(&mut s);
    let body = message("Sent in chunks", 3000, 11);
    let body = &body[..body.len() - 3]; // BDAT carries no "." line
    let (first, second) = body.split_at(1200);
    s.send(
        Ctos,
        format!("MAIL FROM:<alice@example.org> BODY=8BITMIME\r\nRCPT TO:<bob@example.net>\r\nBDAT {}\r\n", first.len())
            .as_bytes(),
    )
    .send(Ctos, first)
    .send(Stoc, format!("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: {} bytes\r\n", first.len()).as_bytes())
    .send(Ctos, format!("BDAT {} LAST\r\n", second.len()).as_bytes())
    .send(Ctos, second)
    .send(Stoc, b"250 2.0.0 Ok: queued as 4BdAt9\r\n");
    quit(&mut s);
    Scenario {
        name: "smtp-bdat",
        about: "CHUNKING: a message in two BDAT chunks, pipelined with MAIL and RCPT",
        link: Link::ethernet(),
        frames: s.into_frames(),
    }
}

fn smtp_auth() -> Scenario {
    // AUTH PLAIN with an initial response: "\0alice@example.org\0s3cret-one".
    let mut plain = Session::new("192.0.2.72:41002", "198.51.100.25:587");
    plain.handshake();
    greet(&mut plain);
    plain
        .send(
            Ctos,
            b"AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHMzY3JldC1vbmU=\r\n",
        )
        .send(Stoc, b"235 2.7.0 Authentication successful\r\n");
    let msg = message("Sent after AUTH PLAIN", 400, 12);
    transaction(
        &mut plain,
        "alice@example.org",
        "bob@example.net",
        &msg,
        "4AuTh1",
    );
    quit(&mut plain);
    // AUTH LOGIN that fails ("mallory" / "guess-1"), then CRAM-MD5 that succeeds.
    let mut login = Session::new("192.0.2.73:41003", "198.51.100.25:587").starting_at(at(1));
    login.handshake();
    greet(&mut login);
    login
        .send(Ctos, b"AUTH LOGIN\r\n")
        .send(Stoc, b"334 VXNlcm5hbWU6\r\n")
        .send(Ctos, b"bWFsbG9yeQ==\r\n")
        .send(Stoc, b"334 UGFzc3dvcmQ6\r\n")
        .send(Ctos, b"Z3Vlc3MtMQ==\r\n")
        .send(Stoc, b"535 5.7.8 Error: authentication failed\r\n")
        .send(Ctos, b"AUTH CRAM-MD5\r\n")
        .send(
            Stoc,
            b"334 PDE4OTYuNjk3MTcwOTUyQG14LmV4YW1wbGUubmV0Pg==\r\n",
        )
        // "mallory 6f1e2d3c4b5a69788796a5b4c3d2e1f0"
        .send(
            Ctos,
            b"bWFsbG9yeSA2ZjFlMmQzYzRiNWE2OTc4ODc5NmE1YjRjM2QyZTFmMA==\r\n",
        )
        .send(Stoc, b"235 2.7.0 Authentication successful\r\n");
    quit(&mut login);
    Scenario {
        name: "smtp-auth",
        about: "AUTH PLAIN (initial response) succeeding; AUTH LOGIN failing, then CRAM-MD5 succeeding",
        link: Link::ethernet(),
        frames: merge([plain.into_frames(), login.into_frames()]),
    }
}

pub(super) const EHLO_AFTER_TLS: &[u8] = b"250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n";

fn smtp_starttls() -> Scenario {
    let mut s = Session::new("192.0.2.74:41004", "198.51.100.25:25");
    s.handshake();
    greet(&mut s);
    s.send(Ctos, b"STARTTLS\r\n")
        .send(Stoc, b"220 2.0.0 Ready to start TLS\r\n");
    tls::handshake(
        &mut s,
        tls::TLS12,
        tls::ECDHE_RSA_AES128_GCM,
        Some("mx.example.net"),
    );
    let msg = message("Sent over STARTTLS", 2000, 30);
    // One command per round trip, three recipients, as Postfix answers them.
    tls::encrypted_writes(
        &mut s,
        tls::TLS12,
        &[
            (Ctos, b"EHLO client.example.org\r\n"),
            (Stoc, EHLO_AFTER_TLS),
            (Ctos, b"MAIL FROM:<alice@example.org>\r\n"),
            (Stoc, b"250 2.1.0 Ok\r\n"),
            (Ctos, b"RCPT TO:<bob@example.net>\r\n"),
            (Stoc, b"250 2.1.5 Ok\r\n"),
            (Ctos, b"RCPT TO:<carol@example.net>\r\n"),
            (Stoc, b"250 2.1.5 Ok\r\n"),
            (Ctos, b"RCPT TO:<dave@example.net>\r\n"),
            (Stoc, b"250 2.1.5 Ok\r\n"),
            (Ctos, b"DATA\r\n"),
            (Stoc, b"354 End data with <CR><LF>.<CR><LF>\r\n"),
            (Ctos, &msg),
            (Stoc, b"250 2.0.0 Ok: queued as 4TlsQ1\r\n"),
            (Ctos, b"QUIT\r\n"),
            (Stoc, b"221 2.0.0 Bye\r\n"),
        ],
        30,
    );
    s.close();
    Scenario {
        name: "smtp-starttls",
        about: "STARTTLS accepted, then a TLS 1.2 handshake with a certificate and an encrypted transaction of three recipients: a tls event, and the smtp event's estimate",
        link: Link::ethernet(),
        frames: s.into_frames(),
    }
}

/// The TCP payload of a frame this generator built, if it has one.
fn tcp_payload(frame: &Frame) -> Option<Vec<u8>> {
    let sliced = etherparse::SlicedPacket::from_ethernet(&frame.data).ok()?;
    match sliced.transport {
        Some(etherparse::TransportSlice::Tcp(tcp)) => Some(tcp.payload().to_vec()),
        _ => None,
    }
}

fn tcp_injection() -> Scenario {
    // A RST and a FIN far outside the window, injected mid-session: counted, ignored; the
    // mail goes through and the connection closes normally.
    let mut s = Session::new("192.0.2.130:41300", "198.51.100.25:25");
    s.handshake();
    greet(&mut s);
    // Then 15 s of quiet: a RST taken at its word would have closed the flow by then.
    s.inject(Stoc, 3_000_000, 0x14)
        .inject(Ctos, 5_000_000, 0x11)
        .wait_secs(15);
    transaction(
        &mut s,
        "alice@example.org",
        "bob@example.net",
        &message("Despite the injection", 300, 41),
        "4InJ1",
    );
    quit(&mut s);
    // A RST in the window ends the session there.
    let mut r = Session::new("192.0.2.131:41301", "198.51.100.25:25").starting_at(at(1));
    r.handshake();
    greet(&mut r);
    r.send(Ctos, b"MAIL FROM:<alice@example.org>\r\n")
        .send(Stoc, b"250 2.1.0 Ok\r\n")
        .reset(Stoc);
    Scenario {
        name: "tcp-injection",
        about: "a RST and a FIN far outside the window mid-session: counted, the session goes on and closes; a RST in the window resets the connection",
        link: Link::ethernet(),
        frames: merge([s.into_frames(), r.into_frames()]),
    }
}

fn tcp_conflict() -> Scenario {
    // The RCPT is sent again with another address of the same length after the first copy was
    // taken: the receiver may have kept either, so the flow says `conflict`; the smtp event
    // keeps the first copy, as the reassembly does.
    let envelope = |s: &mut Session, again: &[u8]| {
        s.handshake();
        greet(s);
        let rcpt = b"RCPT TO:<bob@example.net>\r\n";
        s.send(Ctos, b"MAIL FROM:<alice@example.org>\r\n")
            .send(Stoc, b"250 2.1.0 Ok\r\n")
            .send(Ctos, rcpt)
            .resend(Ctos, rcpt.len(), again)
            .send(Stoc, b"250 2.1.5 Ok\r\n")
            .send(Ctos, b"DATA\r\n")
            .send(Stoc, b"354 End data with <CR><LF>.<CR><LF>\r\n")
            .send(Ctos, &message("Twice", 300, 42))
            .send(Stoc, b"250 2.0.0 Ok: queued as 4CoNf1\r\n");
        quit(s);
    };
    let mut rewritten = Session::new("192.0.2.140:41400", "198.51.100.25:25");
    envelope(&mut rewritten, b"RCPT TO:<eve@example.net>\r\n");
    // The same retransmitted faithfully: not a conflict.
    let mut faithful = Session::new("192.0.2.141:41401", "198.51.100.25:25").starting_at(at(1));
    envelope(&mut faithful, b"RCPT TO:<bob@example.net>\r\n");
    Scenario {
        name: "tcp-conflict",
        about: "a RCPT TO sent again with another address after the first copy was delivered: the flow says conflict, the smtp event keeps the first copy; the same retransmitted faithfully is no conflict",
        link: Link::ethernet(),
        frames: merge([rewritten.into_frames(), faithful.into_frames()]),
    }
}

fn frag_smtp() -> Scenario {
    let link = Link::ethernet();
    let envelope = |s: &mut Session, to: &str| {
        s.handshake();
        greet(s);
        s.send(Ctos, b"MAIL FROM:<alice@example.org>\r\n")
            .send(Stoc, b"250 2.1.0 Ok\r\n")
            .send(Ctos, format!("RCPT TO:<{to}>\r\n").as_bytes())
            .send(Stoc, b"250 2.1.5 Ok\r\n")
            .send(Ctos, b"DATA\r\n")
            .send(Stoc, b"354 End data with <CR><LF>.<CR><LF>\r\n")
            .send(Ctos, &message("In pieces", 300, 40))
            .send(Stoc, b"250 2.0.0 Ok: queued as 4FrAg1\r\n");
        quit(s);
    };
    // The envelope in 16- and 24-byte IPv4 fragments.
    let mut small = Session::new("192.0.2.120:41200", "198.51.100.25:25");
    envelope(&mut small, "bob@example.net");
    let mut frames = Vec::new();
    for frame in small.into_frames() {
        let size = match tcp_payload(&frame) {
            Some(p) if p.starts_with(b"MAIL FROM") => 16,
            Some(p) if p.starts_with(b"RCPT TO") => 24,
            _ => 0,
        };
        match fragment_frame(&link, &frame, size, 0x0101, None).filter(|_| size > 0) {
            Some(pieces) => frames.extend(pieces),
            None => frames.push(frame),
        }
    }
    // The same over IPv6: the RCPT in 16-byte pieces behind fragment headers.
    let mut six = Session::new("[2001:db8::120]:41202", "[2001:db8:1::25]:25").starting_at(at(2));
    envelope(&mut six, "dave@example.net");
    for frame in six.into_frames() {
        let rcpt = tcp_payload(&frame).is_some_and(|p| p.starts_with(b"RCPT TO"));
        match fragment_frame(&link, &frame, 16, 0x0606, None).filter(|_| rcpt) {
            Some(pieces) => frames.extend(pieces),
            None => frames.push(frame),
        }
    }
    // The evasion: after the first fragment of the RCPT, another at offset 0 rewrites the
    // TCP header and the address. The first copy stands, as on the receiving host.
    let mut evasion = Session::new("192.0.2.121:41201", "198.51.100.25:25").starting_at(at(1));
    envelope(&mut evasion, "carol@example.net");
    for frame in evasion.into_frames() {
        let Some(payload) = tcp_payload(&frame).filter(|p| p.starts_with(b"RCPT TO")) else {
            frames.push(frame);
            continue;
        };
        let whole = fragment_frame(&link, &frame, 1024, 0x0202, None).unwrap_or_default();
        let datagram_start: Vec<u8> = whole
            .first()
            .map(|f| f.data[14 + 20..].to_vec())
            .unwrap_or_default();
        // The same 24 bytes as the first fragment, but another destination port, another
        // sequence number and another command.
        let mut forged = datagram_start[..24.min(datagram_start.len())].to_vec();
        forged[2..4].copy_from_slice(&2525u16.to_be_bytes());
        forged[4..8].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        forged[20..24].copy_from_slice(b"QUIT");
        let _ = payload;
        frames.extend(fragment_frame(&link, &frame, 24, 0x0202, Some(&forged)).unwrap_or_default());
    }
    Scenario {
        name: "frag-smtp",
        about: "MAIL FROM and RCPT TO in 16- and 24-byte IPv4 fragments and an IPv6 RCPT in 16-byte ones, reassembled; a fragment that rewrites the TCP header after the first: the first copy stands, frag_overlap",
        link,
        frames: merge([frames]),
    }
}

fn tls_implicit() -> Scenario {
    // Submission over implicit TLS (RFC 8314) on 465, TLS 1.3: the server greets inside TLS;
    // AUTH, then a pipelined transaction of five recipients and one of one.
    let mut s = Session::new("192.0.2.110:41100", "198.51.100.25:465");
    s.handshake();
    tls::handshake(
        &mut s,
        tls::TLS13,
        tls::AES128_GCM_SHA256,
        Some("smtp.example.net"),
    );
    let first = message("Newsletter", 3000, 31);
    let second = message("Follow-up", 800, 32);
    let pipelined: &[u8] = b"MAIL FROM:<news@example.org>\r\nRCPT TO:<a@example.net>\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\nRCPT TO:<d@example.net>\r\nRCPT TO:<e@example.net>\r\nDATA\r\n";
    let replies: &[u8] = b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n";
    tls::encrypted_writes(
        &mut s,
        tls::TLS13,
        &[
            (Stoc, b"220 mx.example.net ESMTP Postfix\r\n"),
            (Ctos, b"EHLO laptop.example.org\r\n"),
            (Stoc, EHLO_AFTER_TLS),
            (Ctos, b"AUTH PLAIN AG5ld3NAZXhhbXBsZS5vcmcAc2VjcmV0\r\n"),
            (Stoc, b"235 2.7.0 Authentication successful\r\n"),
            (Ctos, pipelined),
            (Stoc, replies),
            (Ctos, &first),
            (Stoc, b"250 2.0.0 Ok: queued as 4TlsQ2\r\n"),
            (
                Ctos,
                b"MAIL FROM:<news@example.org>\r\nRCPT TO:<f@example.net>\r\nDATA\r\n",
            ),
            (
                Stoc,
                b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n",
            ),
            (Ctos, &second),
            (Stoc, b"250 2.0.0 Ok: queued as 4TlsQ3\r\n"),
            (Ctos, b"QUIT\r\n"),
            (Stoc, b"221 2.0.0 Bye\r\n"),
        ],
        40,
    );
    s.close();
    Scenario {
        name: "tls-implicit",
        about: "submission on 465 over TLS 1.3, AUTH and two pipelined transactions (5 and 1 recipients): detected by its ClientHello, estimated from its records",
        link: Link::ethernet(),
        frames: s.into_frames(),
    }
}

fn tls_socks() -> Scenario {
    // HTTPS through a SOCKS5 proxy: the tunnel's protocol is TLS; GREASE and ALPN in the hello.
    let mut s = Session::new("192.0.2.111:41101", "198.51.100.80:1080");
    s.handshake()
        .send(Ctos, &[5, 1, 0])
        .send(Stoc, &[5, 0])
        .send(Ctos, &socks5_connect([203, 0, 113, 80], 443))
        .send(Stoc, SOCKS5_OK);
    let hello = tls::ClientHello {
        sni: Some("www.example.com"),
        alpn: &["h2", "http/1.1"],
        tls13: true,
        grease: true,
    };
    s.send(Ctos, &tls::client_hello(&hello))
        .send(
            Stoc,
            &tls::server_flight(tls::TLS12, tls::ECDHE_RSA_AES128_GCM),
        )
        .send(Ctos, &tls::client_finish(tls::TLS12))
        .send(Stoc, &tls::server_finish())
        .send(Ctos, &tls::encrypted(tls::TLS12, 300, 50))
        .send(Stoc, &tls::encrypted(tls::TLS12, 20_000, 51))
        .close();
    Scenario {
        name: "tls-socks",
        about: "TLS through a SOCKS5 tunnel: the socks event says tunnel_proto tls, the tls event carries the tunnel",
        link: Link::ethernet(),
        frames: s.into_frames(),
    }
}

fn smtp_pregreet() -> Scenario {
    // A bot that talks before the banner, with a bare-IP HELO.
    let mut s = Session::new("192.0.2.75:41005", "198.51.100.25:25");
    s.handshake()
        .send(Ctos, b"HELO 192.0.2.75\r\n")
        .send(Stoc, b"220 mx.example.net ESMTP Postfix\r\n")
        .send(Stoc, b"250 mx.example.net\r\n");
    let msg = message("You have won", 300, 13);
    transaction(
        &mut s,
        "lottery@example.com",
        "bob@example.net",
        &msg,
        "4PrEg1",
    );
    quit(&mut s);
    Scenario {
        name: "smtp-pregreet",
        about: "a client that speaks before the server's greeting, with a bare-IP HELO",
        link: Link::ethernet(),
        frames: s.into_frames(),
    }
}

fn smtp_multi() -> Scenario {
    let mut s = Session::new("192.0.2.76:41006", "198.51.100.25:25");
    s.handshake();
    greet(&mut s);
    s.send(Ctos, b"MAIL FROM:<alice@example.org>\r\n")
        .send(Stoc, b"250 2.1.0 Ok\r\n")
        .send(Ctos, b"RSET\r\n")
        .send(Stoc, b"250 2.0.0 Ok\r\n")
        .send(Ctos, b"NOOP\r\n")
        .send(Stoc, b"250 2.0.0 Ok\r\n");
    for (i, (to, id)) in [
        ("bob@example.net", "4MuLt1"),
        ("carol@example.net", "4MuLt2"),
    ]
    .iter()
    .enumerate()
    {
        let msg = message(&format!("Message {}", i + 1), 500, 14 + i as u32);
        transaction(&mut s, "alice@example.org", to, &msg, id);
    }
    quit(&mut s);
    Scenario {
        name: "smtp-multi",
        about: "several transactions in one session: one aborted by RSET, two queued",
        link: Link::ethernet(),
        frames: s.into_frames(),
    }
}

fn smtp_rejected() -> Scenario {
    let mut relay = Session::new("192.0.2.77:41007", "198.51.100.25:25");
    relay.handshake();
    greet(&mut relay);
    relay
        .send(Ctos, b"MAIL FROM:<spam@example.com>\r\n")
        .send(Stoc, b"250 2.1.0 Ok\r\n")
        .send(Ctos, b"RCPT TO:<victim@elsewhere.example>\r\n")
        .send(
            Stoc,
            b"554 5.7.1 <victim@elsewhere.example>: Relay access denied\r\n",
        )
        .send(Ctos, b"DATA\r\n")
        .send(Stoc, b"554 5.5.1 Error: no valid recipients\r\n");
    quit(&mut relay);
    let mut helo = Session::new("192.0.2.78:41008", "198.51.100.25:25").starting_at(at(1));
    helo.handshake()
        .send(Stoc, b"220 mx.example.net ESMTP Postfix\r\n")
        .send(Ctos, b"HELO WIN-7QKC2FJ0B1E\r\n")
        .send(Stoc, b"504 5.5.2 <WIN-7QKC2FJ0B1E>: Helo command rejected: need fully-qualified hostname\r\n");
    quit(&mut helo);
    let mut quit_only = Session::new("192.0.2.79:41009", "198.51.100.25:25").starting_at(at(2));
    quit_only
        .handshake()
        .send(Stoc, b"220 mx.example.net ESMTP Postfix\r\n");
    quit(&mut quit_only);
    Scenario {
        name: "smtp-rejected",
        about: "a relay attempt (recipient and DATA rejected), a HELO rejected, and a QUIT-only session",
        link: Link::ethernet(),
        frames: merge([
            relay.into_frames(),
            helo.into_frames(),
            quit_only.into_frames(),
        ]),
    }
}

fn smtp_midstream() -> Scenario {
    // The capture starts in the middle of a message.
    let mut s = Session::new("192.0.2.80:41010", "198.51.100.25:25");
    s.send(
        Ctos,
        b"of a message whose start the capture missed\r\nmore body\r\n.\r\n",
    )
    .send(Stoc, b"250 2.0.0 Ok: queued as 4EaRlY\r\n");
    let msg = message("Seen from the start", 200, 16);
    transaction(
        &mut s,
        "alice@example.org",
        "bob@example.net",
        &msg,
        "4LaTe1",
    );
    quit(&mut s);
    Scenario {
        name: "smtp-midstream",
        about: "picked up in the middle of DATA: resyncs at the next command, one whole transaction",
        link: Link::ethernet(),
        frames: s.into_frames(),
    }
}

fn smtp_gap() -> Scenario {
    let mut s = Session::new("192.0.2.81:41011", "198.51.100.25:25");
    s.handshake();
    greet(&mut s);
    s.send(Ctos, b"MAIL FROM:<alice@example.org>\r\n")
        .send(Stoc, b"250 2.1.0 Ok\r\n")
        .send(Ctos, b"RCPT TO:<bob@example.net>\r\n")
        .send(Stoc, b"250 2.1.5 Ok\r\n")
        .send(Ctos, b"DATA\r\n")
        .send(Stoc, b"354 End data with <CR><LF>.<CR><LF>\r\n")
        .send_with(
            Ctos,
            &message("Lost a segment", 6000, 17),
            &[Fault::Drop(2)],
        )
        .send(Stoc, b"250 2.0.0 Ok: queued as 4GaP01\r\n");
    let msg = message("After the gap", 200, 18);
    transaction(
        &mut s,
        "alice@example.org",
        "carol@example.net",
        &msg,
        "4GaP02",
    );
    quit(&mut s);
    Scenario {
        name: "smtp-gap",
        about: "a segment inside DATA lost by the capture: that transaction is incomplete, the next one whole",
        link: Link::ethernet(),
        frames: s.into_frames(),
    }
}

fn basic() -> Scenario {
    let mut v4 = Session::new("192.0.2.10:40001", "198.51.100.25:25");
    v4.handshake();
    smtp_like(&mut v4, 3000, 1);
    v4.close();
    let mut v6 = Session::new("[2001:db8::10]:40002", "[2001:db8:1::25]:587").starting_at(at(1));
    v6.handshake()
        .send(Ctos, &text(5000, 2))
        .send(Stoc, b"250 ok\r\n")
        .close();
    Scenario {
        name: "tcp-basic",
        about: "two clean sessions, IPv4 and IPv6: handshake, MSS segmentation, ACKs, FIN close",
        link: Link::ethernet(),
        frames: merge([v4.into_frames(), v6.into_frames()]),
    }
}

fn reorder() -> Scenario {
    let mut a = Session::new("192.0.2.11:40010", "198.51.100.25:25");
    a.handshake().send_with(
        Ctos,
        &text(8000, 3),
        &[
            Fault::Reorder(0),
            Fault::Duplicate(2),
            Fault::Overlap {
                segment: 3,
                conflicting: false,
            },
        ],
    );
    a.send(Stoc, b"250 ok\r\n").close();
    let mut b = Session::new("192.0.2.12:40011", "198.51.100.25:25").starting_at(at(2));
    b.handshake()
        .send_with(
            Ctos,
            &text(5000, 4),
            &[Fault::Overlap {
                segment: 1,
                conflicting: true,
            }],
        )
        .close();
    Scenario {
        name: "tcp-reorder",
        about: "reordered, duplicated and overlapping segments; one overlap with conflicting bytes",
        link: Link::ethernet(),
        frames: merge([a.into_frames(), b.into_frames()]),
    }
}

fn gap() -> Scenario {
    let mut s = Session::new("192.0.2.13:40020", "198.51.100.25:25");
    s.handshake()
        .send_with(
            Ctos,
            &text(7000, 5),
            &[
                Fault::Drop(1),
                Fault::Truncate {
                    segment: 3,
                    keep: 100,
                },
            ],
        )
        .send(Stoc, b"250 ok\r\n")
        .close();
    Scenario {
        name: "tcp-gap",
        about: "a segment lost by the capture (the receiver ACKs past it) and one cut by snap length",
        link: Link::ethernet(),
        frames: s.into_frames(),
    }
}

fn states() -> Scenario {
    // Unanswered SYN, retransmitted twice.
    let mut no_answer = Session::new("192.0.2.20:40030", "203.0.113.25:25");
    no_answer.syn().wait_secs(1).syn().wait_secs(2).syn();
    // SYN answered by RST.
    let mut refused = Session::new("192.0.2.21:40031", "203.0.113.26:25").starting_at(at(1));
    refused.refused();
    // Data, then the server resets.
    let mut reset = Session::new("192.0.2.22:40032", "198.51.100.25:25").starting_at(at(2));
    reset.handshake().send(Ctos, b"EHLO x\r\n").reset(Stoc);
    // Established, then silence past the inactivity timeout.
    let mut idle = Session::new("192.0.2.23:40033", "198.51.100.25:25").starting_at(at(3));
    idle.handshake().send(Stoc, b"220 hello\r\n");
    // Picked up mid-stream: no handshake, both directions.
    let mut midstream = Session::new("192.0.2.24:40034", "198.51.100.25:25").starting_at(at(4));
    midstream
        .send(Ctos, b"RCPT TO:<x@example.net>\r\n")
        .send(Stoc, b"250 ok\r\n")
        .close();
    // A tap that sees only the client's half.
    let mut one_sided = Session::new("192.0.2.25:40035", "198.51.100.25:25").starting_at(at(5));
    one_sided.handshake().send(Ctos, &text(4000, 6)).close();
    // The same ports used again two seconds after a close.
    let mut first = Session::new("192.0.2.26:40036", "198.51.100.25:25").starting_at(at(6));
    first.handshake().send(Ctos, b"first\r\n").close();
    let mut again = Session::new("192.0.2.26:40036", "198.51.100.25:25")
        .isn(7_000_000, 9_000_000)
        .starting_at(at(8));
    again.handshake().send(Ctos, b"second\r\n").close();
    // Much later traffic moves packet time past every timeout above.
    let mut later = Session::new("192.0.2.27:40037", "198.51.100.25:25").starting_at(at(400));
    later.handshake().close();
    Scenario {
        name: "tcp-states",
        about: "no answer, rejected, reset, idle timeout, mid-stream pickup, one-sided capture, port reuse",
        link: Link::ethernet(),
        frames: merge([
            no_answer.into_frames(),
            refused.into_frames(),
            reset.into_frames(),
            idle.into_frames(),
            midstream.into_frames(),
            one_sided.one_direction(Ctos),
            first.into_frames(),
            again.into_frames(),
            later.into_frames(),
        ]),
    }
}

fn wraparound() -> Scenario {
    let mut s = Session::new("192.0.2.30:40040", "198.51.100.25:25").isn(0xffff_f000, 0xffff_ff00);
    s.handshake()
        .send_with(Ctos, &text(10_000, 7), &[Fault::Reorder(2)])
        .send(Stoc, &text(600, 8))
        .close();
    Scenario {
        name: "tcp-wraparound",
        about: "both sequence spaces wrap past 2^32, with a reordered segment across the wrap",
        link: Link::ethernet(),
        frames: s.into_frames(),
    }
}

fn link_vlan() -> Scenario {
    let qinq = Link::Ethernet {
        vlan: vec![100, 200],
    };
    let dot1q = Link::Ethernet { vlan: vec![300] };
    let mut a = Session::new("192.0.2.40:40050", "198.51.100.25:25").link(qinq);
    a.handshake().send(Ctos, b"hello over QinQ\r\n").close();
    // Same addresses and ports on another VLAN: a different flow.
    let mut b = Session::new("192.0.2.40:40050", "198.51.100.25:25")
        .link(dot1q)
        .starting_at(at(1));
    b.handshake().send(Ctos, b"hello over 802.1Q\r\n").close();
    Scenario {
        name: "link-vlan",
        about: "802.1Q and QinQ; the same 5-tuple on two VLANs is two flows",
        link: Link::ethernet(),
        frames: merge([a.into_frames(), b.into_frames()]),
    }
}

fn link_only(name: &'static str, about: &'static str, link: Link) -> Scenario {
    let mut v4 = Session::new("192.0.2.50:40060", "198.51.100.25:25").link(link.clone());
    v4.handshake()
        .send(Stoc, b"220 ready\r\n")
        .send(Ctos, b"QUIT\r\n")
        .close();
    let mut v6 = Session::new("[2001:db8::50]:40061", "[2001:db8:1::25]:25")
        .link(link.clone())
        .starting_at(at(1));
    v6.handshake().send(Ctos, b"QUIT\r\n").close();
    Scenario {
        name,
        about,
        link,
        frames: merge([v4.into_frames(), v6.into_frames()]),
    }
}

fn noise() -> Scenario {
    let link = Link::ethernet();
    let mut frames = vec![
        udp_frame(
            &link,
            at(0),
            addr("192.0.2.60:5353"),
            addr("198.51.100.53:53"),
            b"\x12\x34query",
        ),
        arp_frame(at(1)),
    ];
    // The first fragment of a datagram whose rest never comes: it expires.
    frames.extend(
        ipv4_fragments(
            &link,
            at(2),
            [192, 0, 2, 61],
            [198, 51, 100, 25],
            &text(200, 9),
        )
        .into_iter()
        .take(1),
    );
    // A TCP segment whose header the capture cut in half.
    let mut cut = Session::new("192.0.2.62:40070", "198.51.100.25:25").starting_at(at(3));
    cut.syn();
    let mut broken = cut.into_frames();
    for frame in &mut broken {
        frame.data.truncate(14 + 20 + 10);
    }
    frames.extend(broken);
    // A frame too short to be Ethernet.
    frames.push(Frame {
        ts: at(4),
        data: vec![0x02, 0, 0],
        wire_len: 3,
    });
    Scenario {
        name: "noise",
        about: "UDP, ARP, an IPv4 fragment that never completes, a cut TCP header and a runt frame: counted, never analysed",
        link,
        frames,
    }
}

/// What a flood's every connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flood {
    /// An unanswered SYN.
    Syn,
    /// A whole, short SMTP session: handshake, banner, QUIT, close.
    Short,
    /// An SMTP session stuck in DATA: the envelope, then the headers and 2 KB of a message
    /// that never ends, and no close.
    StuckInData,
}

/// One connection of `kind` from each of `flows` client address and port pairs to one
/// server, started 10 microseconds apart, each written whole before the next.
pub fn flood(writer: &mut PcapWriter, kind: Flood, flows: u32) {
    let partial = {
        let mut m = message("Never ends", 2048, 7);
        m.truncate(m.len() - 5);
        m
    };
    for n in 0..flows {
        let client = format!(
            "10.{}.{}.{}:{}",
            (n >> 14) & 0xff,
            (n >> 6) & 0xff,
            (n & 0x3f) + 1,
            1024 + n % 50_000
        );
        let mut s = Session::new(&client, "198.51.100.25:25")
            .starting_at(Timestamp(EPOCH.0 + u64::from(n) * 10));
        match kind {
            Flood::Syn => {
                s.syn();
            }
            Flood::Short => {
                s.handshake()
                    .send(Stoc, b"220 mx.example.net ESMTP\r\n")
                    .send(Ctos, b"QUIT\r\n")
                    .send(Stoc, b"221 Bye\r\n")
                    .close();
            }
            Flood::StuckInData => {
                s.handshake();
                greet(&mut s);
                s.send(Ctos, b"MAIL FROM:<alice@example.org>\r\n")
                    .send(Stoc, b"250 2.1.0 Ok\r\n")
                    .send(Ctos, b"RCPT TO:<bob@example.net>\r\n")
                    .send(Stoc, b"250 2.1.5 Ok\r\n")
                    .send(Ctos, b"DATA\r\n")
                    .send(Stoc, b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .send(Ctos, &partial);
            }
        }
        for frame in s.frames() {
            writer.write(frame);
        }
    }
}

/// What [`bench_mix`] wrote.
#[derive(Debug, Default)]
pub struct MixSummary {
    pub frames: u64,
    pub bytes: u64,
    pub sessions: u64,
}

/// Mixed traffic for the benchmark, streamed to `writer` until `target_bytes` of frames are
/// written: mail sessions with 2-60 KB messages, bulk transfers, some reordering and loss,
/// and UDP noise, 32 sessions interleaved at a time.
pub fn bench_mix(writer: &mut PcapWriter, target_bytes: u64) -> MixSummary {
    let link = Link::ethernet();
    let mut summary = MixSummary::default();
    let mut clock = EPOCH;
    let mut n: u32 = 0;
    while summary.bytes < target_bytes {
        let mut group = Vec::with_capacity(32);
        for _ in 0..32 {
            n = n.wrapping_add(1);
            let client = format!(
                "10.{}.{}.{}:{}",
                (n >> 16) & 0xff,
                (n >> 8) & 0xff,
                n & 0xff | 1,
                1024 + n % 60000
            );
            let server = format!(
                "198.51.100.{}:{}",
                n % 7 + 1,
                if n % 5 == 0 { 443 } else { 25 }
            );
            let mut s = Session::new(&client, &server)
                .starting_at(Timestamp(clock.0 + u64::from(n % 32) * 50));
            s.handshake();
            if n % 5 == 0 {
                let faults: &[Fault] = if n % 20 == 0 {
                    &[Fault::Reorder(3), Fault::Drop(9)]
                } else {
                    &[]
                };
                s.send(Ctos, b"GET /big HTTP/1.1\r\n\r\n").send_with(
                    Stoc,
                    &text(100_000, n),
                    faults,
                );
            } else {
                smtp_like(&mut s, 2_000 + (n as usize * 7919) % 58_000, n);
            }
            s.close();
            group.push(s.into_frames());
            summary.sessions += 1;
        }
        let mut frames = merge(group);
        if let Some(last) = frames.last() {
            clock = last.ts;
        }
        frames.push(udp_frame(
            &link,
            clock,
            addr("10.9.9.9:5353"),
            addr("198.51.100.53:53"),
            b"query",
        ));
        for frame in &frames {
            writer.write(frame);
            summary.frames += 1;
            summary.bytes += frame.data.len() as u64;
        }
    }
    summary
}

/// The mail-heavy benchmark traffic of a mail relay's SPAN port, streamed to `writer` until
/// `target_bytes` of frames are written. Of every 40 TCP sessions: 22 SMTP sessions (one or two
/// transactions of 1 to 5 recipients, messages of 2 to 40 KB, most of them small, PIPELINING on
/// every third), 4 SOCKS5 tunnels carrying SMTP, and 14 bulk TLS-like flows (a hello, then
/// records of opaque bytes, 4 to 30 KB). Clients come from 4,096 hosts; 40 sessions are interleaved at a time.
pub fn mail_mix(writer: &mut PcapWriter, target_bytes: u64) -> MixSummary {
    relay_mix(writer, target_bytes, false)
}

/// [`mail_mix`] with every relay session going on in TLS 1.3 after STARTTLS: the same
/// sessions, transactions and sizes, encrypted. Beside the mail mix, it prices TLS per session.
pub fn starttls_mix(writer: &mut PcapWriter, target_bytes: u64) -> MixSummary {
    relay_mix(writer, target_bytes, true)
}

fn relay_mix(writer: &mut PcapWriter, target_bytes: u64, starttls: bool) -> MixSummary {
    let mut summary = MixSummary::default();
    let mut clock = EPOCH;
    let mut n: u32 = 0;
    while summary.bytes < target_bytes {
        let mut group = Vec::with_capacity(40);
        for slot in 0..40u32 {
            n = n.wrapping_add(1);
            let host = n.wrapping_mul(2_654_435_761) >> 20; // 4,096 hosts, spread
            let client = format!(
                "10.{}.{}.{}:{}",
                20 + (host >> 8) % 8,
                host & 0xff,
                (n >> 12) % 250 + 2,
                1024 + n % 60000
            );
            let start = Timestamp(clock.0 + u64::from(slot) * 40);
            let session = match slot {
                0..22 => mail_session(&client, n, start, starttls),
                22..26 => socks_mail_session(&client, n, start),
                _ => tls_like_session(&client, n, start),
            };
            group.push(session.into_frames());
            summary.sessions += 1;
        }
        let frames = merge(group);
        if let Some(last) = frames.last() {
            clock = last.ts;
        }
        for frame in &frames {
            writer.write(frame);
            summary.frames += 1;
            summary.bytes += frame.data.len() as u64;
        }
    }
    summary
}

/// A relay session: a greeting, one to three transactions, QUIT; with `starttls`, the
/// transactions and QUIT encrypted after STARTTLS and a TLS 1.3 handshake.
fn mail_session(client: &str, n: u32, start: Timestamp, starttls: bool) -> Session {
    let server = format!("198.51.100.{}:25", n % 13 + 1);
    let mut s = Session::new(client, &server).starting_at(start);
    s.handshake();
    greet(&mut s);
    if starttls {
        s.send(Ctos, b"STARTTLS\r\n")
            .send(Stoc, b"220 2.0.0 Ready to start TLS\r\n");
        tls::handshake(&mut s, tls::TLS13, tls::AES128_GCM_SHA256, None);
        mail_transactions(&mut s, n, Some(tls::TLS13));
        tls::encrypted_writes(
            &mut s,
            tls::TLS13,
            &[(Ctos, b"QUIT\r\n"), (Stoc, b"221 2.0.0 Bye\r\n")],
            n,
        );
        s.close();
    } else {
        mail_transactions(&mut s, n, None);
        quit(&mut s);
    }
    s
}

/// A bot's SMTP through a SOCKS5 proxy to an outside MX.
fn socks_mail_session(client: &str, n: u32, start: Timestamp) -> Session {
    let proxy = format!("203.0.113.{}:1080", n % 5 + 10);
    let mut s = Session::new(client, &proxy).starting_at(start);
    s.handshake()
        .send(Ctos, &[5, 1, 0])
        .send(Stoc, &[5, 0])
        .send(
            Ctos,
            &socks5_connect([198, 51, 100, (n % 13 + 1) as u8], 25),
        )
        .send(Stoc, SOCKS5_OK);
    greet(&mut s);
    mail_transactions(&mut s, n, None);
    quit(&mut s);
    s
}

/// The transactions of relay session `n`; under `tls` (a version), each write encrypted.
fn mail_transactions(s: &mut Session, n: u32, tls: Option<u16>) {
    let put = |s: &mut Session, dir, data: &[u8]| match tls {
        None => {
            s.send(dir, data);
        }
        Some(version) => {
            s.send(dir, &tls::encrypted(version, data.len(), n));
        }
    };
    let pipelined = n % 3 == 0;
    for t in 0..=u32::from(n % 4 == 0) {
        let seed = n.wrapping_mul(31).wrapping_add(t);
        let spread = (seed as usize).wrapping_mul(7919) % 38_000;
        let body = 2_000 + spread * spread / 38_000;
        let msg = message("Your invoice", body, seed);
        let recipients = 1 + seed % 5;
        let mut envelope = format!("MAIL FROM:<sender{}@example.org>\r\n", n % 997);
        let mut replies = String::from("250 2.1.0 Ok\r\n");
        for r in 0..recipients {
            envelope.push_str(&format!("RCPT TO:<rcpt{r}.{seed}@example.net>\r\n"));
            replies.push_str("250 2.1.5 Ok\r\n");
        }
        if pipelined {
            envelope.push_str("DATA\r\n");
            replies.push_str("354 End data with <CR><LF>.<CR><LF>\r\n");
            put(s, Ctos, envelope.as_bytes());
            put(s, Stoc, replies.as_bytes());
        } else {
            for (command, reply) in envelope
                .split_inclusive("\r\n")
                .zip(replies.split_inclusive("\r\n"))
            {
                put(s, Ctos, command.as_bytes());
                put(s, Stoc, reply.as_bytes());
            }
            put(s, Ctos, b"DATA\r\n");
            put(s, Stoc, b"354 End data with <CR><LF>.<CR><LF>\r\n");
        }
        put(s, Ctos, &msg);
        put(
            s,
            Stoc,
            format!("250 2.0.0 Ok: queued as {seed:X}\r\n").as_bytes(),
        );
    }
}

/// A bulk flow that looks like TLS on the wire: a hello each way, then application-data
/// records of opaque bytes from the server.
fn tls_like_session(client: &str, n: u32, start: Timestamp) -> Session {
    let server = format!("192.0.2.{}:443", n % 50 + 100);
    let mut s = Session::new(client, &server).starting_at(start);
    let record = |kind: u8, len: usize, seed: u32| {
        let mut r = vec![kind, 3, 3, (len >> 8) as u8, len as u8];
        r.extend(text(len, seed).iter().map(|b| b ^ 0x5a));
        r
    };
    s.handshake()
        .send(Ctos, &record(0x16, 512, n))
        .send(Stoc, &record(0x16, 3000, n));
    let mut left = 4_000 + (n as usize).wrapping_mul(104_729) % 26_000;
    let mut i = 0;
    while left > 0 {
        let len = left.min(16_000);
        s.send(Stoc, &record(0x17, len, n.wrapping_add(i)));
        left -= len;
        i += 1;
    }
    s.close();
    s
}
