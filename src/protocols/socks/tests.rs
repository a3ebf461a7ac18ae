//! The SOCKS handshakes, one behaviour per test, and the stream inside the tunnel.

use super::*;
use crate::direction::Direction::{Ctos, Stoc};
use crate::protocols::script;

fn run(script: &[(Direction, &[u8])]) -> Vec<AppOutput> {
    script::run_data(&mut SocksParser::new(StreamOrigin::default()), script).events
}

fn socks(out: &[AppOutput]) -> &SocksRecord {
    out.iter()
        .find_map(|o| match &o.event {
            AppEvent::Socks(r) => Some(r.as_ref()),
            _ => None,
        })
        .expect("a socks event")
}

fn v5_connect_ipv4(port: u16) -> Vec<u8> {
    let mut r = vec![5, 1, 0, 1, 192, 0, 2, 25];
    r.extend_from_slice(&port.to_be_bytes());
    r
}

const V5_OK: &[u8] = &[5, 0, 0, 1, 10, 0, 0, 1, 0xc3, 0x50];

#[test]
fn socks5_no_auth_connect_then_smtp_inside() {
    let request = v5_connect_ipv4(25);
    let out = run(&[
        (Ctos, &[5, 1, 0]),
        (Stoc, &[5, 0]),
        (Ctos, &request),
        (Stoc, V5_OK),
        (Stoc, b"220 mx.example.net ESMTP\r\n"),
        (
            Ctos,
            b"EHLO bot\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nQUIT\r\n",
        ),
        (Stoc, b"250 mx\r\n250 ok\r\n250 ok\r\n221 bye\r\n"),
    ]);
    let s = socks(&out);
    assert_eq!(
        (s.version, s.command, s.auth_method),
        (5, Some(Command::Connect), Some("none"))
    );
    assert_eq!(
        s.request.as_ref().unwrap().host,
        Some("192.0.2.25".parse().unwrap())
    );
    assert_eq!((s.status, s.status_code), (Some("succeeded"), Some(0)));
    assert_eq!(s.bound.as_ref().unwrap().port, 50000);
    assert_eq!(s.tunnel_proto, Some("smtp"));
    let smtp = out
        .iter()
        .find(|o| matches!(o.event, AppEvent::Smtp(_)))
        .expect("an smtp event from inside the tunnel");
    let tunnel = smtp.tunnel.as_ref().unwrap();
    assert_eq!(
        (
            tunnel.kind,
            tunnel.dest_host.as_str(),
            tunnel.dest_port,
            tunnel.depth
        ),
        (TunnelKind::Socks5, "192.0.2.25", 25, 1)
    );
    assert_eq!(
        tunnel.proxy, None,
        "the flow's server, filled in by the flow stage"
    );
}

#[test]
fn undecided_tunnel_traffic_is_unknown_and_no_traffic_is_absent() {
    let base: Vec<(Direction, &[u8])> = vec![
        (Ctos, &[5, 1, 0]),
        (Stoc, &[5, 0]),
        (Ctos, &[5, 1, 0, 1, 1, 2, 3, 4, 0, 80]),
        (Stoc, V5_OK),
    ];
    assert_eq!(socks(&run(&base)).tunnel_proto, None);
    let mut some = base.clone();
    some.push((Ctos, b"EH"));
    assert_eq!(socks(&run(&some)).tunnel_proto, Some("unknown"));
}

#[test]
fn socks5_user_password_success_never_keeps_the_password() {
    let out = run(&[
        (Ctos, &[5, 2, 0, 2]),
        (Stoc, &[5, 2]),
        (Ctos, b"\x01\x03bob\x05alice"),
        (Stoc, &[1, 0]),
        (Ctos, &v5_connect_ipv4(22)),
        (Stoc, V5_OK),
    ]);
    let s = socks(&out);
    assert_eq!(s.methods, vec!["none", "username_password"]);
    assert_eq!(
        (s.auth_method, s.user.as_deref(), s.auth_success),
        (Some("username_password"), Some("bob"), Some(true))
    );
    assert!(!serde_json::to_string(s).unwrap().contains("alice"));
}

#[test]
fn socks5_failed_auth() {
    let out = run(&[
        (Ctos, &[5, 1, 2]),
        (Stoc, &[5, 2]),
        (Ctos, b"\x01\x03bob\x05wrong"),
        (Stoc, &[1, 1]),
    ]);
    let s = socks(&out);
    assert_eq!(
        (s.auth_success, s.status),
        (Some(false), Some("authentication failed"))
    );
    assert!(s.request.is_none());
}

#[test]
fn socks5_refused_connect_and_every_reply_code() {
    for code in 1..=8u8 {
        let reply = [5, code, 0, 1, 0, 0, 0, 0, 0, 0];
        let out = run(&[
            (Ctos, &[5, 1, 0]),
            (Stoc, &[5, 0]),
            (Ctos, &v5_connect_ipv4(25)),
            (Stoc, &reply),
        ]);
        let s = socks(&out);
        assert_eq!(s.status_code, Some(code));
        assert_eq!(s.status, Some(parser::socks5_status(code)));
        assert!(s.tunnel_proto.is_none());
    }
    let out = run(&[
        (Ctos, &[5, 1, 0]),
        (Stoc, &[5, 0]),
        (Ctos, &v5_connect_ipv4(25)),
        (Stoc, &[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]),
    ]);
    assert_eq!(socks(&out).status, Some("Connection refused"));
}

#[test]
fn socks5_domain_and_ipv6_targets() {
    let mut domain = vec![5, 1, 0, 3, 15];
    domain.extend_from_slice(b"mx.example.com.");
    domain.extend_from_slice(&25u16.to_be_bytes());
    let out = run(&[
        (Ctos, &[5, 1, 0]),
        (Stoc, &[5, 0]),
        (Ctos, &domain),
        (Stoc, V5_OK),
    ]);
    let r = socks(&out).request.clone().unwrap();
    assert_eq!(
        (r.name.as_deref(), r.host, r.port),
        (Some("mx.example.com."), None, 25)
    );

    let mut v6 = vec![5, 1, 0, 4];
    v6.extend_from_slice(
        &"2001:db8::25"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    v6.extend_from_slice(&587u16.to_be_bytes());
    let out = run(&[
        (Ctos, &[5, 1, 0]),
        (Stoc, &[5, 0]),
        (Ctos, &v6),
        (Stoc, V5_OK),
    ]);
    assert_eq!(
        socks(&out).request.as_ref().unwrap().host,
        Some("2001:db8::25".parse().unwrap())
    );
}

#[test]
fn socks5_gssapi_is_noted_and_not_followed() {
    let out = run(&[
        (Ctos, &[5, 1, 1]),
        (Stoc, &[5, 1]),
        (Ctos, &[1, 1, 0, 4, 1, 2, 3, 4]),
    ]);
    let s = socks(&out);
    assert_eq!(s.auth_method, Some("gssapi"));
    assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
}

#[test]
fn socks5_no_acceptable_method() {
    let out = run(&[(Ctos, &[5, 1, 2]), (Stoc, &[5, 0xff])]);
    assert_eq!(socks(&out).auth_method, Some("no_acceptable"));
}

#[test]
fn socks5_udp_associate_and_bind() {
    let mut udp = vec![5, 3, 0, 1, 0, 0, 0, 0, 0, 0];
    let out = run(&[
        (Ctos, &[5, 1, 0]),
        (Stoc, &[5, 0]),
        (Ctos, &udp),
        (Stoc, V5_OK),
    ]);
    assert_eq!(socks(&out).command, Some(Command::UdpAssociate));
    assert!(socks(&out).tunnel_proto.is_none());

    udp[1] = 2; // BIND: two replies, then the stream.
    let out = run(&[
        (Ctos, &[5, 1, 0]),
        (Stoc, &[5, 0]),
        (Ctos, &udp),
        (Stoc, V5_OK),
        (Stoc, &[5, 0, 0, 1, 203, 0, 113, 9, 0x30, 0x39]),
        (Stoc, b"220 ftp-data? no, SMTP ESMTP\r\n"),
    ]);
    let s = socks(&out);
    assert_eq!(
        (s.command, s.bound.as_ref().unwrap().port),
        (Some(Command::Bind), 50000)
    );
    assert_eq!(s.tunnel_proto, Some("smtp"));
}

#[test]
fn socks4_and_4a() {
    let out = run(&[
        (Ctos, b"\x04\x01\x00\x19\xc0\x00\x02\x19bob\x00"),
        (Stoc, &[0, 90, 0, 0, 0, 0, 0, 0]),
    ]);
    let s = socks(&out);
    assert_eq!(
        (s.version, s.user.as_deref(), s.status),
        (4, Some("bob"), Some("succeeded"))
    );
    assert_eq!(s.request.as_ref().unwrap().port, 25);

    let out = run(&[
        (
            Ctos,
            b"\x04\x01\x00\x50\x00\x00\x00\x01\x00www.example.com\x00",
        ),
        (Stoc, &[0, 91, 0, 0, 0, 0, 0, 0]),
    ]);
    let s = socks(&out);
    assert_eq!(
        s.request.as_ref().unwrap().name.as_deref(),
        Some("www.example.com")
    );
    assert_eq!(
        (s.user.as_deref(), s.status_code),
        (None, Some(91)),
        "empty user id"
    );
}

#[test]
fn socks_inside_socks_to_a_fixed_depth() {
    // Outer SOCKS5 to a second proxy, SOCKS4 through it to a mail server.
    let out = run(&[
        (Ctos, &[5, 1, 0]),
        (Stoc, &[5, 0]),
        (Ctos, &v5_connect_ipv4(1080)),
        (Stoc, V5_OK),
        (Ctos, b"\x04\x01\x00\x19\xcb\x00\x71\x19\x00"),
        (Stoc, &[0, 90, 0, 0, 0, 0, 0, 0]),
        (Stoc, b"220 inner.example ESMTP\r\n"),
        (Ctos, b"EHLO x\r\nQUIT\r\n"),
    ]);
    let kinds: Vec<&str> = out.iter().map(|o| o.event.event_type()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "socks").count(),
        2,
        "{kinds:?}"
    );
    let smtp = out
        .iter()
        .find(|o| matches!(o.event, AppEvent::Smtp(_)))
        .unwrap();
    let t = smtp.tunnel.as_ref().unwrap();
    assert_eq!(
        (t.kind, t.depth, t.dest_host.as_str()),
        (TunnelKind::Socks4, 2, "203.0.113.25")
    );
    assert_eq!(t.proxy, Some(("192.0.2.25".to_string(), 1080)));
    // Past the depth limit, inner streams are not analysed.
    let mut deep = SocksParser::new(StreamOrigin::tunnel(
        crate::protocols::MAX_TUNNEL_DEPTH,
        1080,
    ));
    let mut o = Vec::new();
    for (d, b) in [
        (Ctos, &[5u8, 1, 0][..]),
        (Stoc, &[5, 0]),
        (Ctos, &v5_connect_ipv4(25)),
        (Stoc, V5_OK),
        (Ctos, b"EHLO x\r\n"),
    ] {
        deep.parse(d, b, Timestamp::default(), &mut o);
    }
    deep.finish(Timestamp::default(), &mut o);
    assert!(o.iter().all(|o| !matches!(o.event, AppEvent::Smtp(_))));
}

#[test]
fn bad_input_gives_a_capped_event_with_anomalies() {
    // A proxy that answers garbage.
    let out = run(&[
        (Ctos, &[5, 1, 0]),
        (Stoc, &[5, 0]),
        (Ctos, &v5_connect_ipv4(25)),
        (Stoc, b"HTTP/1.1 400 Bad\r\n"),
    ]);
    assert!(socks(&out).anomalies.contains(&"bad_reply_version"));
    // A truncated greeting: the flow ends mid-handshake.
    let out = run(&[(Ctos, &[5, 3, 0])]);
    assert!(socks(&out).anomalies.contains(&"incomplete_handshake"));
    // An absurd method count and a flood of bytes.
    let flood = vec![0x41u8; 5000];
    let out = run(&[(Ctos, &[5, 255]), (Ctos, &flood)]);
    assert!(socks(&out).anomalies.contains(&"handshake_too_long"));
    // Zero-length user name and password.
    let out = run(&[
        (Ctos, &[5, 1, 2]),
        (Stoc, &[5, 2]),
        (Ctos, &[1, 0, 0]),
        (Stoc, &[1, 0]),
    ]);
    assert_eq!(socks(&out).user.as_deref(), Some(""));
    // A user id of invalid UTF-8 stays valid JSON.
    let out = run(&[
        (Ctos, b"\x04\x01\x00\x19\x01\x02\x03\x04\xff\xfe\x00"),
        (Stoc, &[0, 90, 0, 0, 0, 0, 0, 0]),
    ]);
    assert_eq!(socks(&out).user.as_deref(), Some("\u{fffd}\u{fffd}"));
}

#[test]
fn probe_needs_both_sides() {
    assert_eq!(probe(&[5, 1, 0], &[]), Probe::NeedMore);
    assert_eq!(probe(&[5, 1, 0], &[5, 0]), Probe::Match);
    assert_eq!(
        probe(&[5, 1, 0], &[5, 2]),
        Probe::NoMatch,
        "a method the client did not offer"
    );
    assert_eq!(probe(&[5, 1, 0], b"HTTP/1.1 200 OK\r\n"), Probe::NoMatch);
    assert_eq!(
        probe(&[5, 2, 0x40, 0x41], &[5, 0]),
        Probe::NoMatch,
        "implausible methods"
    );
    assert_eq!(
        probe(
            b"\x04\x01\x00\x50\x01\x02\x03\x04\x00",
            &[0, 90, 0, 0, 0, 0, 0, 0]
        ),
        Probe::Match
    );
    assert_eq!(
        probe(b"\x04\x01\x00\x50\x01\x02\x03\x04\x00", &[0, 90]),
        Probe::NeedMore
    );
    assert_eq!(
        probe(
            b"\x04\x01\x00\x50\x01\x02\x03\x04\x00",
            b"\x16\x03\x01\x00\x10\x00\x00\x00"
        ),
        Probe::NoMatch
    );
    assert_eq!(probe(b"POST / HTTP/1.1\r\n", b""), Probe::NoMatch);
    assert_eq!(
        probe(b"", b"220 hi\r\n"),
        Probe::NoMatch,
        "servers do not speak first in SOCKS"
    );
}

#[test]
fn random_handshakes_never_panic() {
    let mut next = crate::testing::xorshift(0x9e37_79b9u32);
    for _ in 0..2000 {
        let mut parser = SocksParser::new(StreamOrigin::default());
        let mut out = Vec::new();
        // Start like a real client most of the time, so the deeper states are reached.
        let first: &[u8] = match next() % 3 {
            0 => &[5, 2, 0, 2],
            1 => b"\x04\x01\x00\x19\x01\x02\x03\x04u\x00",
            _ => &[],
        };
        parser.parse(Ctos, first, Timestamp::default(), &mut out);
        for step in 0..20 {
            let dir = if next().is_multiple_of(2) { Ctos } else { Stoc };
            if next().is_multiple_of(13) {
                parser.on_gap(dir, u64::from(next() % 100));
                continue;
            }
            let len = next() % 24;
            let chunk: Vec<u8> = (0..len).map(|_| (next() % 7) as u8).collect();
            parser.parse(dir, &chunk, Timestamp::from_secs(step), &mut out);
        }
        parser.finish(Timestamp::from_secs(99), &mut out);
        let socks_events = out
            .iter()
            .filter(|o| o.tunnel.is_none() && matches!(o.event, AppEvent::Socks(_)))
            .count();
        assert!(socks_events <= 1);
    }
}

#[test]
fn reverse_socks_is_told_by_who_greets() {
    let reverse = <ReverseSocksParser as StreamParser>::probe;
    // The responder greets, the initiator chooses a method.
    assert_eq!(reverse(&[], &[5, 1, 0]), Probe::NeedMore);
    assert_eq!(reverse(&[5, 0], &[5, 1, 0]), Probe::Match);
    assert_eq!(
        probe(&[5, 0], &[5, 1, 0]),
        Probe::NoMatch,
        "not the forward way"
    );
    // A forward handshake is not a reverse one.
    assert_eq!(reverse(&[5, 1, 0], &[5, 0]), Probe::NoMatch);
    // Its parser takes each side as the other, and says so in the record.
    let mut parser = ReverseSocksParser::new(StreamOrigin::default());
    let mut out = Vec::new();
    let ts = Timestamp::from_secs(1);
    parser.parse(Stoc, &[5, 1, 0], ts, &mut out);
    parser.parse(Ctos, &[5, 0], ts, &mut out);
    parser.parse(Stoc, &[5, 1, 0, 1, 203, 0, 113, 25, 0, 25], ts, &mut out);
    parser.parse(Ctos, &[5, 1, 0, 1, 0, 0, 0, 0, 0, 0], ts, &mut out);
    parser.finish(ts, &mut out);
    let AppEvent::Socks(record) = &out[0].event else {
        panic!("a socks event");
    };
    assert!(record.reverse && out.iter().all(|o| o.reverse));
    assert_eq!(
        record.status,
        Some("general SOCKS server failure"),
        "the reply, code 1"
    );
}
