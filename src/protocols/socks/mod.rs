//! SOCKS4, SOCKS4a and SOCKS5: the proxy handshake as a `socks` event, and the stream inside
//! the tunnel analysed again.
//!
//! The handshake is read from both directions as it arrives: SOCKS5 method negotiation, RFC 1929
//! user name and password (the user kept, the password never), GSSAPI noted, then the request
//! and the reply. Once a CONNECT (or a BIND's second reply) succeeds, the rest of the stream goes
//! through protocol detection again, as an inner session one tunnel deeper: SMTP through a proxy
//! gives a normal `smtp` event carrying a `tunnel` object. The `socks` event is written when the
//! tunnel's protocol is known, the request failed, or the flow ended.

mod logger;
mod parser;

pub use logger::{Endpoint, SocksRecord};
pub use parser::Command;

use self::parser::Error;
use super::tunnel::{InnerStream, buffer_handshake};
use super::{AppEvent, AppOutput, Parsed, Probe, StreamOrigin, StreamParser, TunnelKind};
use crate::direction::Direction;
use crate::memory::allocation;
use crate::timestamp::Timestamp;

/// Handshake bytes buffered per direction; a handshake is a few hundred bytes at most.
const MAX_HANDSHAKE: usize = 1024;
/// Longest string emitted, in bytes.
const MAX_FIELD: usize = 255;

/// Whether a flow starts with a SOCKS handshake: a client greeting or request, and a server
/// answer that fits it. Both are needed: a first byte of 4 or 5 alone proves nothing.
fn probe(ctos: &[u8], stoc: &[u8]) -> Probe {
    match ctos.first() {
        None if stoc.is_empty() => Probe::NeedMore,
        None => Probe::NoMatch,
        Some(5) => match parser::socks5_greeting(ctos) {
            Ok((methods, _)) => {
                let plausible = methods
                    .iter()
                    .all(|&m| m <= 0x09 || (0x80..0xff).contains(&m));
                if !plausible {
                    return Probe::NoMatch;
                }
                match parser::socks5_method_choice(stoc) {
                    Err(Error::Incomplete) => Probe::NeedMore,
                    Ok((m, 2)) if stoc.len() == 2 && (methods.contains(&m) || m == 0xff) => {
                        Probe::Match
                    }
                    _ => Probe::NoMatch,
                }
            }
            Err(Error::Incomplete) => Probe::NeedMore,
            Err(Error::Invalid(_)) => Probe::NoMatch,
        },
        Some(4) => match parser::socks4_request(ctos) {
            Ok((request, _)) => {
                let printable = |s: &[u8]| s.iter().all(|b| b.is_ascii_graphic() || *b == b' ');
                if !printable(&request.user) || !request.dest.name.as_deref().is_none_or(printable)
                {
                    return Probe::NoMatch;
                }
                match parser::socks4_reply(stoc) {
                    Err(Error::Incomplete) => Probe::NeedMore,
                    Ok(_) => Probe::Match,
                    Err(Error::Invalid(_)) => Probe::NoMatch,
                }
            }
            Err(Error::Incomplete) => Probe::NeedMore,
            Err(Error::Invalid(_)) => Probe::NoMatch,
        },
        Some(_) => Probe::NoMatch,
    }
}

/// SOCKS with the roles turned round: the TCP initiator is the proxy and the TCP responder the
/// SOCKS client, as when a host behind NAT connects out to its controller and offers it a
/// proxy (proxy botnets do). Detected by content, the greeting coming from the responder; what
/// it reports, the tunnel's sessions included, names the endpoints as SOCKS has them.
pub struct ReverseSocksParser(SocksParser);

impl StreamParser for ReverseSocksParser {
    fn probe(ctos: &[u8], stoc: &[u8]) -> Probe {
        probe(stoc, ctos)
    }

    fn new(origin: StreamOrigin) -> Self {
        let mut parser = SocksParser::new(origin);
        parser.record.reverse = true;
        ReverseSocksParser(parser)
    }

    fn app_proto(&self) -> &'static str {
        self.0.app_proto()
    }

    fn parse(
        &mut self,
        dir: Direction,
        data: &[u8],
        ts: Timestamp,
        out: &mut Vec<AppOutput>,
    ) -> Parsed {
        let from = out.len();
        let parsed = self.0.parse(dir.reverse(), data, ts, out);
        reversed(&mut out[from..]);
        parsed
    }

    fn on_gap(&mut self, dir: Direction, len: u64) {
        self.0.on_gap(dir.reverse(), len);
    }

    fn on_close(&mut self) {
        self.0.on_close();
    }

    fn finish(&mut self, ts: Timestamp, out: &mut Vec<AppOutput>) {
        let from = out.len();
        self.0.finish(ts, out);
        reversed(&mut out[from..]);
    }

    fn heap_bytes(&self) -> usize {
        self.0.heap_bytes()
    }
}

fn reversed(outputs: &mut [AppOutput]) {
    for output in outputs {
        output.reverse = true;
    }
}

/// Strings from the wire: invalid UTF-8 replaced, capped.
fn field(bytes: &[u8]) -> String {
    crate::text::wire_string(bytes, MAX_FIELD)
}

/// Where each side of the handshake is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// SOCKS5: the client's greeting, then the server's method choice.
    Greeting,
    MethodChoice,
    /// RFC 1929: the client's credentials, then the server's verdict.
    Credentials,
    CredentialsReply,
    Request,
    Reply,
    /// BIND: the second reply, when the remote host connected.
    SecondReply,
    Tunnel,
    /// Nothing more can be understood (failure, GSSAPI, garbage).
    Done,
}

/// One proxied connection.
pub struct SocksParser {
    depth: u8,
    stage: Stage,
    client: Vec<u8>,
    server: Vec<u8>,
    record: SocksRecord,
    start: Option<Timestamp>,
    emitted: bool,
    tunnel: Option<InnerStream>,
}

impl StreamParser for SocksParser {
    fn probe(ctos: &[u8], stoc: &[u8]) -> Probe {
        probe(ctos, stoc)
    }

    fn new(origin: StreamOrigin) -> Self {
        SocksParser {
            depth: origin.depth,
            stage: Stage::Greeting,
            client: Vec::new(),
            server: Vec::new(),
            record: SocksRecord::default(),
            start: None,
            emitted: false,
            tunnel: None,
        }
    }

    fn app_proto(&self) -> &'static str {
        if self.record.version == 4 {
            "socks4"
        } else {
            "socks5"
        }
    }

    fn parse(
        &mut self,
        dir: Direction,
        data: &[u8],
        ts: Timestamp,
        out: &mut Vec<AppOutput>,
    ) -> Parsed {
        self.start.get_or_insert(ts);
        match self.stage {
            Stage::Tunnel => self.feed_tunnel(dir, data, ts, out),
            Stage::Done => {}
            _ => self.handshake(dir, data, ts, out),
        }
        Parsed::Continue
    }

    fn on_gap(&mut self, dir: Direction, len: u64) {
        match (self.stage, self.tunnel.as_mut()) {
            (Stage::Tunnel, Some(tunnel)) => tunnel.on_gap(dir, len),
            (Stage::Done | Stage::Tunnel, _) => {}
            _ => {
                self.anomaly("gap");
                self.stage = Stage::Done;
            }
        }
    }

    fn finish(&mut self, ts: Timestamp, out: &mut Vec<AppOutput>) {
        if !matches!(self.stage, Stage::Tunnel | Stage::Done) {
            self.anomaly("incomplete_handshake");
        }
        if let Some(mut tunnel) = self.tunnel.take() {
            let proto = tunnel.finish(ts, out);
            self.record.tunnel_proto = self.record.tunnel_proto.or(proto);
        }
        self.emit(out);
    }

    fn heap_bytes(&self) -> usize {
        allocation(size_of::<Self>())
            + allocation(self.client.capacity())
            + allocation(self.server.capacity())
            + self.tunnel.as_ref().map_or(0, InnerStream::heap_bytes)
    }
}

impl SocksParser {
    fn anomaly(&mut self, what: &'static str) {
        if !self.record.anomalies.contains(&what) {
            self.record.anomalies.push(what);
        }
    }

    /// Handshake bytes: buffered (capped) until a whole message is there.
    fn handshake(&mut self, dir: Direction, data: &[u8], ts: Timestamp, out: &mut Vec<AppOutput>) {
        let buf = match dir {
            Direction::Ctos => &mut self.client,
            Direction::Stoc => &mut self.server,
        };
        if !buffer_handshake(buf, data, MAX_HANDSHAKE) {
            self.anomaly("handshake_too_long");
            self.stage = Stage::Done;
        }
        self.advance(ts, out);
        self.maybe_emit(out);
    }

    /// Moves the handshake on as far as the buffered bytes allow.
    fn advance(&mut self, ts: Timestamp, out: &mut Vec<AppOutput>) {
        loop {
            let before = self.stage;
            match self.stage {
                Stage::Greeting => self.greeting(),
                Stage::MethodChoice => self.method_choice(),
                Stage::Credentials => self.credentials(),
                Stage::CredentialsReply => self.credentials_reply(),
                Stage::Request => self.request(),
                Stage::Reply | Stage::SecondReply => self.reply(ts, out),
                Stage::Tunnel | Stage::Done => return,
            }
            if self.stage == before {
                return;
            }
        }
    }

    /// Parses a message at the front of a buffer; on success drops it from the buffer.
    fn take<T>(&mut self, dir: Direction, parse: impl Fn(&[u8]) -> parser::Parsed<T>) -> Option<T> {
        let buf = match dir {
            Direction::Ctos => &mut self.client,
            Direction::Stoc => &mut self.server,
        };
        match parse(buf) {
            Ok((value, used)) => {
                buf.drain(..used);
                Some(value)
            }
            Err(Error::Incomplete) => None,
            Err(Error::Invalid(what)) => {
                self.anomaly(what);
                self.stage = Stage::Done;
                None
            }
        }
    }

    fn greeting(&mut self) {
        match self.client.first() {
            Some(4) => {
                self.record.version = 4;
                self.stage = Stage::Request;
            }
            Some(_) => {
                self.record.version = 5;
                if let Some(methods) = self.take(Direction::Ctos, parser::socks5_greeting) {
                    self.record.methods = methods.iter().map(|&m| parser::method_name(m)).collect();
                    self.stage = Stage::MethodChoice;
                }
            }
            None => {}
        }
    }

    fn method_choice(&mut self) {
        let Some(method) = self.take(Direction::Stoc, parser::socks5_method_choice) else {
            return;
        };
        self.record.auth_method = Some(parser::method_name(method));
        self.stage = match method {
            0x00 => Stage::Request,
            0x02 => Stage::Credentials,
            0xff => {
                self.record.status = Some("no acceptable authentication method");
                Stage::Done
            }
            // GSSAPI and private methods: their messages cannot be followed.
            _ => Stage::Done,
        };
    }

    fn credentials(&mut self) {
        if let Some(user) = self.take(Direction::Ctos, parser::userpass_request) {
            self.record.user = Some(field(&user));
            self.stage = Stage::CredentialsReply;
        }
    }

    fn credentials_reply(&mut self) {
        if let Some(ok) = self.take(Direction::Stoc, parser::userpass_reply) {
            self.record.auth_success = Some(ok);
            self.stage = if ok {
                Stage::Request
            } else {
                self.record.status = Some("authentication failed");
                Stage::Done
            };
        }
    }

    fn request(&mut self) {
        let request = if self.record.version == 4 {
            self.take(Direction::Ctos, parser::socks4_request).map(|r| {
                self.record.user = (!r.user.is_empty()).then(|| field(&r.user));
                (r.command, r.dest)
            })
        } else {
            self.take(Direction::Ctos, parser::socks5_request)
        };
        if let Some((command, dest)) = request {
            self.record.command = Some(command);
            self.record.request = Some(Endpoint::from(&dest));
            self.stage = Stage::Reply;
        }
    }

    fn reply(&mut self, ts: Timestamp, out: &mut Vec<AppOutput>) {
        let v4 = self.record.version == 4;
        let reply = if v4 {
            self.take(Direction::Stoc, parser::socks4_reply)
        } else {
            self.take(Direction::Stoc, parser::socks5_reply)
        };
        let Some((code, bound)) = reply else {
            if self.stage == Stage::Done {
                self.anomaly("garbage_reply");
            }
            return;
        };
        let (status, ok) = if v4 {
            (parser::socks4_status(code), code == 90)
        } else {
            (parser::socks5_status(code), code == 0)
        };
        self.record.status = Some(status);
        self.record.status_code = Some(code);
        let first_reply = self.stage == Stage::Reply;
        if first_reply {
            self.record.bound = Some(Endpoint::from(&bound));
        }
        let command = self.record.command;
        self.stage = match (ok, command) {
            (false, _) => Stage::Done,
            (true, Some(Command::Bind)) if first_reply => Stage::SecondReply,
            (true, Some(Command::Connect | Command::Bind)) => {
                self.open_tunnel(ts, out);
                Stage::Tunnel
            }
            // UDP ASSOCIATE: this TCP connection only keeps the association alive.
            _ => Stage::Done,
        };
    }

    /// The handshake succeeded: what follows is another protocol's stream.
    fn open_tunnel(&mut self, ts: Timestamp, out: &mut Vec<AppOutput>) {
        let request = self.record.request.clone().unwrap_or_default();
        let kind = if self.record.version == 4 {
            TunnelKind::Socks4
        } else {
            TunnelKind::Socks5
        };
        self.tunnel = Some(InnerStream::new(
            kind,
            self.depth,
            request.target(),
            request.port,
        ));
        // Bytes that came after the handshake in the same segments: the client's first.
        let client = std::mem::take(&mut self.client);
        let server = std::mem::take(&mut self.server);
        self.stage = Stage::Tunnel;
        if !client.is_empty() {
            self.feed_tunnel(Direction::Ctos, &client, ts, out);
        }
        if !server.is_empty() {
            self.feed_tunnel(Direction::Stoc, &server, ts, out);
        }
    }

    fn feed_tunnel(
        &mut self,
        dir: Direction,
        data: &[u8],
        ts: Timestamp,
        out: &mut Vec<AppOutput>,
    ) {
        let Some(tunnel) = self.tunnel.as_mut() else {
            return;
        };
        if let Some(proto) = tunnel.feed(dir, data, ts, out) {
            self.record.tunnel_proto.get_or_insert(proto);
            self.maybe_emit(out);
        }
    }

    fn maybe_emit(&mut self, out: &mut Vec<AppOutput>) {
        let decided = match self.stage {
            Stage::Done => true,
            Stage::Tunnel => self.record.tunnel_proto.is_some(),
            _ => false,
        };
        if decided {
            self.emit(out);
        }
    }

    fn emit(&mut self, out: &mut Vec<AppOutput>) {
        if self.emitted || self.record.version == 0 {
            return;
        }
        self.emitted = true;
        out.push(AppOutput::new(
            self.start.unwrap_or_default(),
            AppEvent::Socks(Box::new(self.record.clone())),
        ));
    }
}

#[cfg(test)]
mod tests;
