//! TLS: the handshake as a `tls` event (version, SNI, ALPN, JA3, JA3S, JA4, the server's
//! certificate for TLS <= 1.2), and the shape of what was encrypted after it.
//!
//! Reached three ways: by content on any port (a ClientHello first, or a ServerHello when only
//! the server's side was captured), after an SMTP server accepted STARTTLS (the upgrade: the
//! event says `from_proto: smtp`), and inside SOCKS and HTTP CONNECT tunnels. Records are framed
//! per direction as they arrive (split across segments or not); plaintext handshake messages
//! are reassembled across records, up to [`MAX_HANDSHAKE`] bytes. Encrypted records are not
//! kept, only their lengths: runs of records in one direction become [`Flight`]s, the
//! [`Transcript`] from which the SMTP analysis estimates what an encrypted mail session
//! carried. A gap or a record that is not TLS ends the analysis of the stream, with an anomaly.

mod ja;
mod logger;
mod parser;

use std::sync::Arc;

pub use logger::{Fingerprint, TlsFields, TlsRecord};

use self::parser::{ClientHello, Framing, HEADER_LEN, ServerHello};
use super::{AppEvent, AppOutput, Parsed, Probe, StreamOrigin, StreamParser};
use crate::direction::Direction;
use crate::memory::allocation;
use crate::timestamp::Timestamp;

/// Plaintext handshake bytes reassembled per direction (a certificate chain fits easily).
const MAX_HANDSHAKE: usize = 64 * 1024;
/// Flights kept for the transcript; later ones are counted in [`Transcript::flights_dropped`].
pub const MAX_FLIGHTS: usize = 1024;

/// A ClientHello (or an SSLv2-compatible hello) first; a ServerHello when the client's side is
/// missing.
fn probe(ctos: &[u8], stoc: &[u8]) -> Probe {
    match (ctos.is_empty(), stoc.is_empty()) {
        (true, true) => Probe::NeedMore,
        (false, _) => match parser::looks_like_client_hello(ctos) {
            None => Probe::NeedMore,
            Some(true) => Probe::Match,
            Some(false) => Probe::NoMatch,
        },
        (true, false) => match parser::looks_like_server_hello(stoc) {
            None => Probe::NeedMore,
            Some(true) => Probe::Match,
            Some(false) => Probe::NoMatch,
        },
    }
}

/// Consecutive encrypted records of one direction after the handshake: one write of the
/// application above, as near as the wire tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flight {
    pub dir: Direction,
    pub records: u16,
    /// The application bytes the records carried, by the cipher's overhead (see
    /// [`Overhead`]); for a CBC cipher, the upper bound.
    pub plaintext: u32,
}

/// What a cipher adds to each record: `fixed` bytes, and for CBC up to `block - 1` more of
/// padding (the plaintext is then only known to within a block).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overhead {
    pub fixed: u16,
    pub block: u16,
}

impl Overhead {
    /// The cipher suite `cipher` under `version`; `None` when the suite is unknown.
    fn of(version: u16, cipher: u16) -> Option<Overhead> {
        if version == parser::TLS13 {
            // AEAD tag and the inner content type; CCM_8 has an 8-byte tag.
            let fixed = if cipher == 0x1305 { 9 } else { 17 };
            return Some(Overhead { fixed, block: 0 });
        }
        use tls_parser::{TlsCipherEnc, TlsCipherEncMode};
        let suite = tls_parser::TlsCipherSuite::from_id(cipher)?;
        let aead_tag = if suite.name.ends_with("CCM_8") { 8 } else { 16 };
        Some(match (suite.enc, suite.enc_mode) {
            (TlsCipherEnc::Chacha20_Poly1305, _) => Overhead {
                fixed: 16,
                block: 0,
            },
            (_, TlsCipherEncMode::Gcm | TlsCipherEncMode::Ccm) => Overhead {
                fixed: 8 + aead_tag,
                block: 0,
            },
            (_, TlsCipherEncMode::Cbc) => {
                let block = match suite.enc {
                    TlsCipherEnc::Des
                    | TlsCipherEnc::TripleDes
                    | TlsCipherEnc::Idea
                    | TlsCipherEnc::Rc2 => 8,
                    _ => 16,
                };
                // TLS 1.1 and later send an explicit IV; the padding is at least its length
                // byte.
                let iv = if version >= 0x0302 { block } else { 0 };
                Overhead {
                    fixed: iv + suite.mac_size / 8 + 1,
                    block,
                }
            }
            _ => Overhead {
                fixed: suite.mac_size / 8,
                block: 0,
            },
        })
    }
}

/// The lengths of a session's encrypted records after the handshake, as flights in arrival
/// order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transcript {
    /// `None` when the cipher is unknown: plaintext lengths are then the record lengths.
    pub overhead: Option<Overhead>,
    pub flights: Vec<Flight>,
    pub flights_dropped: u32,
    /// Part of the stream was lost or was not TLS: the transcript is incomplete.
    pub incomplete: bool,
}

impl Transcript {
    fn record(&mut self, dir: Direction, len: usize) {
        let fixed = self.overhead.map_or(0, |o| usize::from(o.fixed));
        let plaintext = u32::try_from(len.saturating_sub(fixed)).unwrap_or(u32::MAX);
        let room = self.flights.len() < MAX_FLIGHTS;
        match self.flights.last_mut() {
            Some(last) if last.dir == dir && self.flights_dropped == 0 => {
                last.records = last.records.saturating_add(1);
                last.plaintext = last.plaintext.saturating_add(plaintext);
            }
            _ if room => self.flights.push(Flight {
                dir,
                records: 1,
                plaintext,
            }),
            _ => self.flights_dropped = self.flights_dropped.saturating_add(1),
        }
    }
}

/// What a TLS session tells the SMTP session it continues (after STARTTLS, or on 465): its
/// handshake's fields, for fingerprints, and its transcript, for the estimate.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TlsSession {
    pub fields: TlsFields,
    pub transcript: Transcript,
}

/// Record framing and handshake reassembly for one direction.
#[derive(Default)]
struct Side {
    /// The header of the record being read, while incomplete.
    header: Vec<u8>,
    /// Body bytes of the current record still to come.
    body_left: usize,
    /// Whether the current record's body is plaintext handshake (reassembled).
    body_is_handshake: bool,
    /// Plaintext handshake bytes not yet a whole message.
    handshake: Vec<u8>,
    /// This side encrypts from now on (after its ChangeCipherSpec; after the ServerHello in
    /// TLS 1.3).
    encrypted: bool,
    /// Handshake parsing gave up on this side (a message too large); framing goes on.
    handshake_off: bool,
    records: u32,
    /// Encrypted handshake records (TLS 1.3) still counted as handshake, not application data.
    app_records: u32,
}

/// A TLS session (one TCP connection, or the stream after STARTTLS, or a tunnel's).
pub struct TlsParser {
    from_proto: Option<&'static str>,
    /// The server's port is 465, SMTP over implicit TLS (RFC 8314).
    implicit_smtp: bool,
    start: Option<Timestamp>,
    client: Side,
    server: Side,
    client_hello: Option<Box<ClientHello>>,
    server_hello: Option<Box<ServerHello>>,
    certificate: Option<Box<parser::Certificate>>,
    /// The server's ChangeCipherSpec came before any certificate (TLS <= 1.2 resumption).
    resumed_without_certificate: bool,
    sslv2_hello: bool,
    /// The analysis ended (a gap or garbage).
    ended: bool,
    transcript: Transcript,
    /// What [`TlsParser::session`] handed out; the parser is done once it exists.
    reported: Option<Arc<TlsSession>>,
    anomalies: Vec<&'static str>,
}

impl StreamParser for TlsParser {
    fn probe(ctos: &[u8], stoc: &[u8]) -> Probe {
        probe(ctos, stoc)
    }

    fn new(origin: StreamOrigin) -> Self {
        TlsParser {
            from_proto: origin.from_proto,
            implicit_smtp: origin.on_submissions_port(),
            start: None,
            client: Side::default(),
            server: Side::default(),
            client_hello: None,
            server_hello: None,
            certificate: None,
            resumed_without_certificate: false,
            sslv2_hello: false,
            ended: false,
            transcript: Transcript::default(),
            reported: None,
            anomalies: Vec::new(),
        }
    }

    fn app_proto(&self) -> &'static str {
        "tls"
    }

    fn parse(
        &mut self,
        dir: Direction,
        mut data: &[u8],
        ts: Timestamp,
        _out: &mut Vec<AppOutput>,
    ) -> Parsed {
        self.start.get_or_insert(ts);
        while !data.is_empty() && !self.ended {
            data = self.step(dir, data);
        }
        Parsed::Continue
    }

    fn on_gap(&mut self, _dir: Direction, _len: u64) {
        self.end("gap");
    }

    fn on_close(&mut self) {
        for side in [&mut self.client, &mut self.server] {
            side.header.shrink_to_fit();
            side.handshake.shrink_to_fit();
        }
        self.transcript.flights.shrink_to_fit();
    }

    fn handback(&mut self) -> Option<super::Handback> {
        Some(super::Handback::Tls(self.session()))
    }

    fn finish(&mut self, ts: Timestamp, out: &mut Vec<AppOutput>) {
        let start = self.start.unwrap_or(ts);
        if self.implicit_smtp {
            let smtp = super::smtp::implicit_tls_record(self.session());
            out.push(AppOutput::new(start, AppEvent::Smtp(Box::new(smtp))));
        }
        let record = match self.reported.take() {
            Some(session) => TlsRecord {
                tls: session.fields.clone(),
                software: Vec::new(),
            },
            None => logger::record(self),
        };
        out.push(AppOutput::new(start, AppEvent::Tls(Box::new(record))));
    }

    /// The hellos and certificate are counted by their own sizes, not their lists.
    fn heap_bytes(&self) -> usize {
        let boxed = |present: bool, bytes: usize| if present { allocation(bytes) } else { 0 };
        allocation(size_of::<Self>())
            + boxed(self.client_hello.is_some(), size_of::<ClientHello>())
            + boxed(self.server_hello.is_some(), size_of::<ServerHello>())
            + boxed(self.certificate.is_some(), size_of::<parser::Certificate>())
            + allocation(self.transcript.flights.capacity() * size_of::<Flight>())
    }
}

impl TlsParser {
    /// The session as the SMTP session it continues sees it, made once when first asked
    /// (the event is written from the same fields).
    fn session(&mut self) -> Arc<TlsSession> {
        if self.reported.is_none() {
            self.reported = Some(Arc::new(TlsSession {
                fields: logger::record(self).tls,
                transcript: std::mem::take(&mut self.transcript),
            }));
        }
        self.reported.clone().unwrap_or_default()
    }

    /// Both sides finished the handshake: in TLS 1.3 the client's Finished was seen, before it
    /// both sides' ChangeCipherSpec.
    fn established(&self) -> bool {
        match &self.server_hello {
            Some(hello) if hello.selected_version == parser::TLS13 => self.client.app_records > 0,
            _ => self.client.encrypted && self.server.encrypted,
        }
    }

    fn side(&mut self, dir: Direction) -> &mut Side {
        match dir {
            Direction::Ctos => &mut self.client,
            Direction::Stoc => &mut self.server,
        }
    }

    fn anomaly(&mut self, name: &'static str) {
        if !self.anomalies.contains(&name) {
            self.anomalies.push(name);
        }
    }

    /// Ends the analysis: nothing after this point of the stream is read.
    fn end(&mut self, anomaly: &'static str) {
        self.anomaly(anomaly);
        self.ended = true;
        self.transcript.incomplete = true;
        for side in [&mut self.client, &mut self.server] {
            side.header = Vec::new();
            side.handshake = Vec::new();
        }
    }

    /// Takes what it can of `data` (a header, a body, or part of one); returns the rest.
    fn step<'a>(&mut self, dir: Direction, data: &'a [u8]) -> &'a [u8] {
        let side = self.side(dir);
        if side.body_left > 0 {
            let n = side.body_left.min(data.len());
            side.body_left -= n;
            if side.body_is_handshake {
                self.handshake_bytes(dir, &data[..n]);
            }
            return &data[n..];
        }
        let need = HEADER_LEN - side.header.len();
        let n = need.min(data.len());
        side.header.extend_from_slice(&data[..n]);
        if side.header.len() < HEADER_LEN {
            return &data[n..];
        }
        let first = dir == Direction::Ctos && side.records == 0;
        let framing = parser::frame(&side.header, first);
        side.header.clear();
        match framing {
            Framing::NeedMore => {}
            Framing::Garbage => self.end("invalid_record"),
            Framing::Sslv2Hello { len } => {
                // Counted, not parsed: a client that still offers SSLv2 compatibility says
                // enough by that. The three bytes after the 2-byte header were read already.
                self.sslv2_hello = true;
                let side = self.side(dir);
                side.records += 1;
                side.body_left = len.saturating_sub(HEADER_LEN - 2);
                side.body_is_handshake = false;
            }
            Framing::Record {
                content_type, len, ..
            } => self.record(dir, content_type, len),
        }
        &data[n..]
    }

    /// A record header of `dir` was read.
    fn record(&mut self, dir: Direction, content_type: u8, len: usize) {
        let tls13 = self
            .server_hello
            .as_ref()
            .is_some_and(|h| h.selected_version == parser::TLS13);
        let side = self.side(dir);
        side.records += 1;
        side.body_left = len;
        side.body_is_handshake =
            content_type == parser::HANDSHAKE && !side.encrypted && !side.handshake_off;
        match content_type {
            parser::CHANGE_CIPHER_SPEC => {
                // In TLS 1.3 it is only for middleboxes; the side encrypts already.
                side.encrypted = true;
                if dir == Direction::Stoc && self.certificate.is_none() && !tls13 {
                    self.resumed_without_certificate = true;
                }
            }
            parser::APPLICATION_DATA => {
                side.app_records += 1;
                if self.is_application_data(dir, tls13) {
                    self.transcript.record(dir, len);
                }
            }
            _ => {}
        }
    }

    /// Whether an application_data record of `dir` carries the application, not the
    /// encrypted end of a TLS 1.3 handshake: the server's records before the client's
    /// Finished, and the client's Finished (its first encrypted record).
    fn is_application_data(&self, dir: Direction, tls13: bool) -> bool {
        if !tls13 {
            return true;
        }
        match dir {
            Direction::Ctos => self.client.app_records > 1,
            Direction::Stoc => self.client.app_records > 0,
        }
    }

    /// Plaintext handshake bytes of `dir`: whole messages are parsed as they complete.
    fn handshake_bytes(&mut self, dir: Direction, bytes: &[u8]) {
        let side = self.side(dir);
        if side.handshake_off {
            return;
        }
        side.handshake.extend_from_slice(bytes);
        loop {
            let side = self.side(dir);
            let Some(&[msg_type, l0, l1, l2]) = side.handshake.first_chunk::<4>() else {
                return;
            };
            let len = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
            if len > MAX_HANDSHAKE {
                side.handshake_off = true;
                side.handshake = Vec::new();
                self.anomaly("handshake_too_large");
                return;
            }
            if side.handshake.len() < 4 + len {
                return;
            }
            let message: Vec<u8> = side.handshake.drain(..4 + len).collect();
            self.handshake_message(dir, msg_type, &message[4..]);
        }
    }

    fn handshake_message(&mut self, dir: Direction, msg_type: u8, body: &[u8]) {
        match (dir, msg_type) {
            (Direction::Ctos, parser::CLIENT_HELLO) if self.client_hello.is_none() => {
                match parser::client_hello(body) {
                    Some(hello) => {
                        if hello.truncated {
                            self.anomaly("too_many_hello_values");
                        }
                        self.client_hello = Some(Box::new(hello));
                    }
                    None => self.anomaly("malformed_client_hello"),
                }
            }
            (Direction::Stoc, parser::SERVER_HELLO) if self.server_hello.is_none() => {
                match parser::server_hello(body) {
                    // A HelloRetryRequest: the client hellos again, the next ServerHello
                    // counts.
                    Some(hello) if hello.hello_retry => {}
                    Some(hello) => {
                        self.transcript.overhead =
                            Overhead::of(hello.selected_version, hello.cipher);
                        if hello.selected_version == parser::TLS13 {
                            // Everything after the ServerHello is encrypted, both ways.
                            self.server.encrypted = true;
                            self.client.encrypted = true;
                        }
                        self.server_hello = Some(Box::new(hello));
                    }
                    None => self.anomaly("malformed_server_hello"),
                }
            }
            (Direction::Stoc, parser::CERTIFICATE) if self.certificate.is_none() => {
                match parser::first_certificate(body).and_then(parser::certificate) {
                    Some(cert) => self.certificate = Some(Box::new(cert)),
                    None => self.anomaly("malformed_certificate"),
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
