use super::*;
use crate::direction::Direction::{Ctos, Stoc};
use crate::protocols::script::{self, Step};

/// A record of `content_type` around `body`.
fn record(content_type: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![content_type, 3, 3];
    out.extend((body.len() as u16).to_be_bytes());
    out.extend(body);
    out
}

/// A handshake message of `msg_type` around `body`.
fn handshake(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![msg_type];
    out.extend(&(body.len() as u32).to_be_bytes()[1..]);
    out.extend(body);
    out
}

fn extension(ext_type: u16, body: &[u8]) -> Vec<u8> {
    let mut out = ext_type.to_be_bytes().to_vec();
    out.extend((body.len() as u16).to_be_bytes());
    out.extend(body);
    out
}

/// A ClientHello body offering TLS 1.2 and 1.3, with SNI `mx.example.net` and GREASE.
fn client_hello_body() -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend([7u8; 32]);
    body.push(0);
    let ciphers: &[u16] = &[0x0a0a, 0x1301, 0xc02f];
    body.extend(((ciphers.len() * 2) as u16).to_be_bytes());
    ciphers.iter().for_each(|c| body.extend(c.to_be_bytes()));
    body.extend([1, 0]);
    let name = b"mx.example.net";
    let mut sni = ((name.len() + 3) as u16).to_be_bytes().to_vec();
    sni.push(0);
    sni.extend((name.len() as u16).to_be_bytes());
    sni.extend(name);
    let mut exts = extension(0x0a0a, b"");
    exts.extend(extension(0, &sni));
    exts.extend(extension(10, &[0, 4, 0, 29, 0, 23]));
    exts.extend(extension(11, &[1, 0]));
    exts.extend(extension(13, &[0, 4, 4, 3, 8, 4]));
    exts.extend(extension(43, &[4, 3, 4, 3, 3]));
    body.extend((exts.len() as u16).to_be_bytes());
    body.extend(exts);
    body
}

fn server_hello_body(version: u16, cipher: u16) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend([9u8; 32]);
    body.push(0);
    body.extend(cipher.to_be_bytes());
    body.push(0);
    let mut exts = extension(0xff01, &[0]);
    if version == parser::TLS13 {
        exts.extend(extension(43, &version.to_be_bytes()));
    }
    body.extend((exts.len() as u16).to_be_bytes());
    body.extend(exts);
    body
}

fn client_hello() -> Vec<u8> {
    record(parser::HANDSHAKE, &handshake(1, &client_hello_body()))
}

fn tls_event(events: &[AppOutput]) -> &TlsFields {
    match events {
        [
            AppOutput {
                event: AppEvent::Tls(record),
                ..
            },
        ] => &record.tls,
        other => panic!("one tls event, got {other:?}"),
    }
}

fn run(steps: Vec<Step<'_>>) -> (Vec<AppOutput>, Transcript) {
    let mut parser = TlsParser::new(StreamOrigin::default());
    let run = script::run(&mut parser, steps);
    (run.events, parser.transcript)
}

#[test]
fn probe_wants_a_hello_first() {
    let hello = client_hello();
    assert_eq!(probe(&hello[..3], b""), Probe::NeedMore);
    assert_eq!(probe(&hello, b""), Probe::Match);
    assert_eq!(probe(b"EHLO x\r\n", b""), Probe::NoMatch);
    assert_eq!(probe(b"", b"220 mx ESMTP\r\n"), Probe::NoMatch);
    let server = record(
        parser::HANDSHAKE,
        &handshake(2, &server_hello_body(0x0303, 0xc02f)),
    );
    assert_eq!(probe(b"", &server), Probe::Match, "the server's side alone");
}

#[test]
fn a_tls_1_2_handshake_split_everywhere_gives_the_hello_fields() {
    let hello = client_hello();
    let mut server = record(
        parser::HANDSHAKE,
        &handshake(2, &server_hello_body(0x0303, 0xc02f)),
    );
    server.extend(record(parser::HANDSHAKE, &handshake(14, b"")));
    // The ClientHello one byte at a time; the server's records in one segment.
    let mut steps: Vec<Step> = hello.chunks(1).map(|b| Step::Data(Ctos, b)).collect();
    steps.push(Step::Data(Stoc, &server));
    let ccs = record(parser::CHANGE_CIPHER_SPEC, &[1]);
    let finished = record(parser::HANDSHAKE, &[0; 40]);
    let mut client_end = ccs.clone();
    client_end.extend(&finished);
    steps.push(Step::Data(Ctos, &client_end));
    steps.push(Step::Data(Stoc, &client_end));
    let app = record(parser::APPLICATION_DATA, &[0; 24 + 30]);
    steps.push(Step::Data(Ctos, &app));
    let (events, transcript) = run(steps);
    let tls = tls_event(&events);
    assert_eq!(tls.version.as_deref(), Some("TLS 1.2"));
    assert_eq!(tls.sni.as_deref(), Some("mx.example.net"));
    assert_eq!(
        tls.ja3.as_ref().map(|j| j.string.as_str()),
        Some("771,4865-49199,0-10-11-13-43,29-23,0")
    );
    assert_eq!(
        tls.ja3s.as_ref().map(|j| j.string.as_str()),
        Some("771,49199,65281")
    );
    assert!(tls.ja4.as_deref().unwrap().starts_with("t13d0205"));
    assert_eq!(
        tls.cipher.as_deref(),
        Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
    );
    assert!(tls.established);
    assert!(
        tls.session_resumed,
        "no certificate before the server's CCS"
    );
    assert!(tls.anomalies.is_empty(), "{:?}", tls.anomalies);
    assert_eq!(
        transcript.flights,
        [Flight {
            dir: Ctos,
            records: 1,
            plaintext: 30
        }],
        "GCM: 24 bytes of nonce and tag"
    );
}

#[test]
fn tls_1_3_counts_application_records_after_the_client_finished() {
    let server_hello = record(
        parser::HANDSHAKE,
        &handshake(2, &server_hello_body(0x0304, 0x1301)),
    );
    let encrypted = |len: usize| record(parser::APPLICATION_DATA, &vec![0; len]);
    let mut server_flight = server_hello.clone();
    server_flight.extend(record(parser::CHANGE_CIPHER_SPEC, &[1]));
    for len in [40, 900, 280, 70] {
        server_flight.extend(encrypted(len));
    }
    let mut client_finished = record(parser::CHANGE_CIPHER_SPEC, &[1]);
    client_finished.extend(encrypted(53));
    let ehlo = encrypted(17 + 20);
    let ehlo_reply = encrypted(17 + 120);
    let hello = client_hello();
    let (events, transcript) = run(vec![
        Step::Data(Ctos, &hello),
        Step::Data(Stoc, &server_flight),
        Step::Data(Ctos, &client_finished),
        Step::Data(Ctos, &ehlo),
        Step::Data(Stoc, &ehlo_reply),
    ]);
    let tls = tls_event(&events);
    assert_eq!(tls.version.as_deref(), Some("TLS 1.3"));
    assert!(tls.established);
    assert!(!tls.session_resumed);
    assert_eq!(tls.subject, None, "the certificate is encrypted in TLS 1.3");
    let flights: Vec<(Direction, u32)> = transcript
        .flights
        .iter()
        .map(|f| (f.dir, f.plaintext))
        .collect();
    assert_eq!(flights, [(Ctos, 20), (Stoc, 120)]);
}

#[test]
fn handshake_messages_spanning_records_are_reassembled() {
    let message = handshake(1, &client_hello_body());
    let (a, b) = message.split_at(10);
    let mut bytes = record(parser::HANDSHAKE, a);
    bytes.extend(record(parser::HANDSHAKE, b));
    let (events, _) = run(vec![Step::Data(Ctos, &bytes)]);
    assert_eq!(tls_event(&events).sni.as_deref(), Some("mx.example.net"));
}

#[test]
fn garbage_and_gaps_end_the_analysis_with_an_anomaly() {
    let hello = client_hello();
    let (events, transcript) = run(vec![
        Step::Data(Ctos, &hello),
        Step::Data(Stoc, b"220 not tls after all\r\n"),
    ]);
    let tls = tls_event(&events);
    assert_eq!(tls.anomalies, ["invalid_record"]);
    assert_eq!(
        tls.sni.as_deref(),
        Some("mx.example.net"),
        "what came before stays"
    );
    assert!(transcript.incomplete);

    let (events, _) = run(vec![Step::Data(Ctos, &hello), Step::Gap(Stoc, 100)]);
    assert_eq!(tls_event(&events).anomalies, ["gap"]);
}

#[test]
fn a_handshake_message_claiming_16_mib_is_refused_not_buffered() {
    let mut bytes = record(parser::HANDSHAKE, &[1, 0xff, 0xff, 0xff, 3, 3]);
    bytes.extend(record(parser::HANDSHAKE, &[0; 100]));
    let mut parser = TlsParser::new(StreamOrigin::default());
    let run = script::run(&mut parser, [Step::Data(Ctos, &bytes)]);
    assert_eq!(tls_event(&run.events).anomalies, ["handshake_too_large"]);
    assert!(parser.client.handshake.capacity() < 1024);
}

#[test]
fn an_sslv2_compatible_hello_is_counted_and_skipped() {
    let mut bytes = vec![0x80, 0x07, 1, 3, 1, 0, 0, 0, 0];
    bytes.extend(record(parser::ALERT, &[1, 0]));
    let (events, _) = run(vec![Step::Data(Ctos, &bytes)]);
    let tls = tls_event(&events);
    assert_eq!(tls.anomalies, ["sslv2_hello"]);
}

#[test]
fn a_certificate_of_garbage_is_an_anomaly() {
    let mut cert_msg = vec![0, 0, 8, 0, 0, 5];
    cert_msg.extend(b"junk!");
    let mut server = record(
        parser::HANDSHAKE,
        &handshake(2, &server_hello_body(0x0303, 0xc02f)),
    );
    server.extend(record(parser::HANDSHAKE, &handshake(11, &cert_msg)));
    let hello = client_hello();
    let (events, _) = run(vec![Step::Data(Ctos, &hello), Step::Data(Stoc, &server)]);
    let tls = tls_event(&events);
    assert_eq!(tls.anomalies, ["malformed_certificate"]);
    assert!(!tls.established);
}

#[test]
fn the_transcript_keeps_a_bounded_number_of_flights() {
    let mut transcript = Transcript {
        overhead: Some(Overhead {
            fixed: 17,
            block: 0,
        }),
        ..Transcript::default()
    };
    for i in 0..(MAX_FLIGHTS + 10) {
        let dir = if i % 2 == 0 { Ctos } else { Stoc };
        transcript.record(dir, 30);
        transcript.record(dir, 30);
    }
    assert_eq!(transcript.flights.len(), MAX_FLIGHTS);
    assert_eq!(transcript.flights[0].records, 2);
    assert_eq!(transcript.flights[0].plaintext, 26);
    assert_eq!(transcript.flights_dropped, 20);
}

#[test]
fn cipher_overheads() {
    let fixed = |v, c| Overhead::of(v, c).map(|o| (o.fixed, o.block));
    assert_eq!(fixed(0x0304, 0x1301), Some((17, 0)));
    assert_eq!(fixed(0x0303, 0xc02f), Some((24, 0)), "AES-GCM");
    assert_eq!(fixed(0x0303, 0xcca8), Some((16, 0)), "ChaCha20-Poly1305");
    assert_eq!(
        fixed(0x0303, 0xc013),
        Some((16 + 20 + 1, 16)),
        "AES-CBC-SHA1"
    );
    assert_eq!(
        fixed(0x0301, 0x002f),
        Some((21, 16)),
        "TLS 1.0: no explicit IV"
    );
    assert_eq!(fixed(0x0303, 0xeeee), None);
}
