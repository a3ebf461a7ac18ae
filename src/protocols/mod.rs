//! Application layer: protocol detection by content on any port, then one parser per flow.
//!
//! This is the one place parsers plug in. Each protocol is a folder (`parser.rs` pure, `mod.rs`
//! the session, `logger.rs` the event it writes) whose parser keeps the [`StreamParser`]
//! contract: a `probe` over the first bytes of both directions (SOCKS needs the server's answer
//! to be sure), then in-order data per direction, gaps, and the end of the flow. Adding one is
//! one line in [`parsers!`] below (and one in [`events!`] if it writes an event of its own).
//! Parsers are dispatched through the generated [`AppParser`] enum, not trait objects, and
//! report what they found as [`AppEvent`]s; the tracker adds the common fields.
//!
//! A parser may hand the rest of its stream on ([`Parsed::Upgrade`], SMTP after STARTTLS):
//! detection then starts afresh on what follows, at the same tunnel depth and without a
//! `tunnel` object, while the parser that handed over still writes its event at the end,
//! told first what its successor learned ([`Handback`]: the TLS handshake and the encrypted
//! transcript, for SMTP).

pub mod http_connect;
pub mod script;
pub mod smtp;
pub mod socks;
pub mod tls;
mod tunnel;

use std::sync::Arc;

use serde::Serialize;
use serde::ser::SerializeMap;

use crate::direction::Direction;
use crate::memory::allocation;
use crate::timestamp::Timestamp;

/// Mail submission over implicit TLS (RFC 8314): SMTP inside TLS from the first byte.
const SUBMISSIONS_PORT: u16 = 465;

/// A protocol's verdict on the first bytes of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    Match,
    NeedMore,
    NoMatch,
}

/// What a parser says after taking a chunk of in-order bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Keep sending this stream's bytes.
    Continue,
    /// The parser used the first `consumed` bytes of the chunk; the rest of the chunk, and
    /// of both directions from now on, belongs to whatever protocol detection finds in it.
    Upgrade { consumed: usize },
}

/// Where a stream starts: how deep in tunnels, and after which protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamOrigin {
    /// How many tunnels deep (0 for a flow's own bytes).
    pub depth: u8,
    /// The protocol that handed the stream over (`smtp` after STARTTLS).
    pub from_proto: Option<&'static str>,
    /// The server's port: the flow's, or for a tunnel's stream the port the proxy connected
    /// to. Detection ignores it; a parser may read a well-known port's meaning from it (TLS
    /// on 465 is SMTP).
    pub server_port: u16,
}

impl StreamOrigin {
    /// Whether the stream starts a session on 465, where SMTP is inside TLS from the first
    /// byte (not a stream handed over after STARTTLS).
    pub fn on_submissions_port(&self) -> bool {
        self.from_proto.is_none() && self.server_port == SUBMISSIONS_PORT
    }

    /// The stream of a tunnel `depth` deep to `server_port`.
    pub fn tunnel(depth: u8, server_port: u16) -> Self {
        StreamOrigin {
            depth,
            from_proto: None,
            server_port,
        }
    }
}

/// What a parser that took a stream over tells the one that handed it over, before that one
/// writes its event.
#[derive(Clone, Debug, PartialEq)]
pub enum Handback {
    /// The TLS handshake's fields and the lengths of the encrypted records after it.
    Tls(Arc<tls::TlsSession>),
}

/// The contract every application-layer parser keeps.
pub trait StreamParser {
    /// Whether the first bytes of both directions are this protocol.
    fn probe(ctos: &[u8], stoc: &[u8]) -> Probe
    where
        Self: Sized;
    /// A parser for a stream that starts at `origin`.
    fn new(origin: StreamOrigin) -> Self
    where
        Self: Sized;
    /// The flow's `app_proto` while this parser has it.
    fn app_proto(&self) -> &'static str;
    /// In-order bytes of one direction, seen at packet time `ts`.
    fn parse(
        &mut self,
        dir: Direction,
        data: &[u8],
        ts: Timestamp,
        out: &mut Vec<AppOutput>,
    ) -> Parsed;
    /// `len` bytes of one direction were lost.
    fn on_gap(&mut self, dir: Direction, len: u64);
    /// The connection closed with bytes still missing (or by a RST); its record is written only
    /// after the close delay. A parser may give back the memory only parsing needed meanwhile,
    /// keeping every byte it holds: a late retransmission can still bring data. (A connection
    /// closed by both FINs with every byte seen is finished at the close instead.)
    fn on_close(&mut self) {}
    /// What this parser tells the parser it took the stream over from (see [`Handback`]),
    /// asked once, just before both finish.
    fn handback(&mut self) -> Option<Handback> {
        None
    }
    /// The parser this one handed its stream to reports, just before [`StreamParser::finish`].
    fn on_handback(&mut self, _handback: Handback) {}
    /// The flow ended at `ts`: report whatever is still open.
    fn finish(&mut self, ts: Timestamp, out: &mut Vec<AppOutput>);
    /// About how many heap bytes this parser holds, itself included: the sizes of its parts
    /// and the capacities of its buffers, for the worker's memory budget.
    fn heap_bytes(&self) -> usize;
}

/// An event a parser writes: its `event_type` and its own top-level objects, laid out in the
/// protocol's `logger.rs`.
pub trait AppRecord {
    const EVENT_TYPE: &'static str;
    fn write_fields<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error>;
}

/// Declares the parsers: the [`AppParser`] enum, its dispatch, and the order detection asks
/// them in.
macro_rules! parsers {
    ($($variant:ident => $parser:ty,)+) => {
        /// One parser per protocol.
        pub enum AppParser {
            $($variant(Box<$parser>),)+
        }

        impl AppParser {
            pub fn app_proto(&self) -> &'static str {
                match self {
                    $(AppParser::$variant(p) => p.app_proto(),)+
                }
            }

            fn parse(
                &mut self,
                dir: Direction,
                data: &[u8],
                ts: Timestamp,
                out: &mut Vec<AppOutput>,
            ) -> Parsed {
                match self {
                    $(AppParser::$variant(p) => p.parse(dir, data, ts, out),)+
                }
            }

            fn on_gap(&mut self, dir: Direction, len: u64) {
                match self {
                    $(AppParser::$variant(p) => p.on_gap(dir, len),)+
                }
            }

            fn on_close(&mut self) {
                match self {
                    $(AppParser::$variant(p) => p.on_close(),)+
                }
            }

            fn handback(&mut self) -> Option<Handback> {
                match self {
                    $(AppParser::$variant(p) => p.handback(),)+
                }
            }

            fn on_handback(&mut self, handback: Handback) {
                match self {
                    $(AppParser::$variant(p) => p.on_handback(handback),)+
                }
            }

            fn finish(&mut self, ts: Timestamp, out: &mut Vec<AppOutput>) {
                match self {
                    $(AppParser::$variant(p) => p.finish(ts, out),)+
                }
            }

            fn heap_bytes(&self) -> usize {
                match self {
                    $(AppParser::$variant(p) => p.heap_bytes(),)+
                }
            }
        }

        /// Protocols in the order they are probed.
        const PROTOCOLS: &[Protocol] = &[
            $(Protocol {
                probe: <$parser as StreamParser>::probe,
                start: |origin| AppParser::$variant(Box::new(<$parser as StreamParser>::new(origin))),
            },)+
        ];
    };
}

/// Declares the events parsers write: the [`AppEvent`] enum and its dispatch.
macro_rules! events {
    ($($variant:ident => $record:ty,)+) => {
        /// What parsers report, one variant per event type.
        #[derive(Debug, PartialEq)]
        pub enum AppEvent {
            $($variant(Box<$record>),)+
        }

        impl AppEvent {
            /// The `event_type` of the JSON event.
            pub fn event_type(&self) -> &'static str {
                match self {
                    $(AppEvent::$variant(_) => <$record as AppRecord>::EVENT_TYPE,)+
                }
            }

            /// Writes the event's own top-level objects (`smtp` and `email` for an `smtp`
            /// event).
            pub fn write_fields<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
                match self {
                    $(AppEvent::$variant(record) => record.write_fields(map),)+
                }
            }
        }
    };
}

parsers! {
    Smtp => smtp::SmtpParser,
    Socks => socks::SocksParser,
    ReverseSocks => socks::ReverseSocksParser,
    HttpConnect => http_connect::HttpConnectParser,
    Tls => tls::TlsParser,
}

events! {
    Smtp => smtp::SmtpRecord,
    Socks => socks::SocksRecord,
    Tls => tls::TlsRecord,
}

/// An event with the packet time it belongs to, and the tunnel it was found in.
#[derive(Debug, PartialEq)]
pub struct AppOutput {
    pub ts: Timestamp,
    pub event: AppEvent,
    pub tunnel: Option<Tunnel>,
    /// The protocol's client is the flow's TCP responder (reverse SOCKS): the event names
    /// the endpoints as the protocol has them, the other way round from the flow.
    pub reverse: bool,
}

impl AppOutput {
    pub fn new(ts: Timestamp, event: AppEvent) -> Self {
        AppOutput {
            ts,
            event,
            tunnel: None,
            reverse: false,
        }
    }
}

/// How far proxies may be nested (SOCKS inside SOCKS) before inner streams go unanalysed.
pub const MAX_TUNNEL_DEPTH: u8 = 2;

/// The kind of proxy a tunnel goes through (`tunnel.type` in events).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TunnelKind {
    Socks4,
    Socks5,
    HttpConnect,
}

/// The proxy an inner session went through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tunnel {
    pub kind: TunnelKind,
    /// The proxy's address and port; `None` when it is the flow's server (the outer tunnel),
    /// which the flow stage fills in.
    pub proxy: Option<(String, u16)>,
    /// Where the proxy connected to, as the client asked (a name or an address).
    pub dest_host: String,
    pub dest_port: u16,
    /// 1 for a session inside one proxy, 2 inside a proxy reached through another.
    pub depth: u8,
}

/// A protocol known to detection: its probe and parser constructor.
struct Protocol {
    probe: fn(ctos: &[u8], stoc: &[u8]) -> Probe,
    /// A parser for a stream that starts at `origin`.
    start: fn(origin: StreamOrigin) -> AppParser,
}

/// Bytes of each direction kept while no protocol has decided.
const PROBE_BYTES: usize = 2048;

/// The first bytes of a stream, kept in arrival order until a protocol matches.
#[derive(Default)]
pub struct Detection {
    origin: StreamOrigin,
    ctos: Vec<u8>,
    stoc: Vec<u8>,
    /// Arrival order of the buffered chunks, so a parser sees the same interleaving.
    order: Vec<(Direction, usize)>,
}

/// The application-layer state of one stream: a flow's own bytes, or a tunnel's.
pub enum AppLayer {
    /// No byte yet (a SYN flood costs no detection buffer): detection starts at the first one.
    Waiting(StreamOrigin),
    Detecting(Box<Detection>),
    Parsing {
        parser: AppParser,
        origin: StreamOrigin,
    },
    /// `from` handed the rest of the stream to `to` (SMTP after STARTTLS); `from` still
    /// reports at the end.
    Upgraded {
        from: AppParser,
        to: Box<AppLayer>,
    },
    /// No protocol matched (or none is known): data is only counted by reassembly.
    Off,
    /// The parser reported and went; only its `app_proto` is left, for the flow event.
    Finished(Option<&'static str>),
}

impl Default for AppLayer {
    fn default() -> Self {
        AppLayer::new(StreamOrigin::default())
    }
}

impl AppLayer {
    /// Detection for a stream that starts at `origin`; past [`MAX_TUNNEL_DEPTH`], none.
    pub fn new(origin: StreamOrigin) -> Self {
        if origin.depth > MAX_TUNNEL_DEPTH {
            AppLayer::Off
        } else {
            AppLayer::Waiting(origin)
        }
    }

    /// About how many heap bytes this stream's detection or parsers hold (see
    /// [`StreamParser::heap_bytes`]).
    pub fn heap_bytes(&self) -> usize {
        match self {
            AppLayer::Waiting(_) | AppLayer::Off | AppLayer::Finished(_) => 0,
            AppLayer::Detecting(d) => {
                allocation(size_of::<Detection>())
                    + allocation(d.ctos.capacity())
                    + allocation(d.stoc.capacity())
                    + allocation(d.order.capacity() * size_of::<(Direction, usize)>())
            }
            AppLayer::Parsing { parser, .. } => parser.heap_bytes(),
            AppLayer::Upgraded { from, to } => {
                from.heap_bytes() + allocation(size_of::<AppLayer>()) + to.heap_bytes()
            }
        }
    }

    /// Whether detection has concluded, one way or the other.
    pub fn is_decided(&self) -> bool {
        !matches!(self, AppLayer::Waiting(_) | AppLayer::Detecting(_))
    }

    /// `app_proto` of the stream, once a parser took it: the first one, when it handed over.
    pub fn app_proto(&self) -> Option<&'static str> {
        match self {
            AppLayer::Parsing { parser, .. } | AppLayer::Upgraded { from: parser, .. } => {
                Some(parser.app_proto())
            }
            AppLayer::Finished(app_proto) => *app_proto,
            _ => None,
        }
    }

    /// Whether the stream's bytes still matter to anyone.
    pub fn wants_data(&self) -> bool {
        match self {
            AppLayer::Off | AppLayer::Finished(_) => false,
            AppLayer::Upgraded { to, .. } => to.wants_data(),
            _ => true,
        }
    }

    pub fn on_data(
        &mut self,
        dir: Direction,
        data: &[u8],
        ts: Timestamp,
        out: &mut Vec<AppOutput>,
    ) {
        if let AppLayer::Waiting(origin) = *self {
            *self = AppLayer::Detecting(Box::new(Detection {
                origin,
                ..Detection::default()
            }));
        }
        match self {
            AppLayer::Parsing { parser, .. } => {
                if let Parsed::Upgrade { consumed } = parser.parse(dir, data, ts, out) {
                    self.upgrade();
                    let rest = data.get(consumed..).unwrap_or_default();
                    if !rest.is_empty() {
                        self.on_data(dir, rest, ts, out);
                    }
                }
            }
            AppLayer::Upgraded { to, .. } => to.on_data(dir, data, ts, out),
            AppLayer::Off | AppLayer::Finished(_) | AppLayer::Waiting(_) => {}
            AppLayer::Detecting(detection) => {
                let buf = match dir {
                    Direction::Ctos => &mut detection.ctos,
                    Direction::Stoc => &mut detection.stoc,
                };
                let room = PROBE_BYTES.saturating_sub(buf.len());
                let kept = data.len().min(room);
                buf.extend_from_slice(&data[..kept]);
                detection.order.push((dir, kept));
                match detect(&detection.ctos, &detection.stoc) {
                    Verdict::Match(protocol) => {
                        let detection = std::mem::take(detection);
                        *self = AppLayer::Parsing {
                            parser: (protocol.start)(detection.origin),
                            origin: detection.origin,
                        };
                        self.replay(&detection, ts, out);
                        if kept < data.len() {
                            self.on_data(dir, &data[kept..], ts, out);
                        }
                    }
                    Verdict::Undecided if kept == data.len() => {}
                    Verdict::Undecided | Verdict::NoMatch => *self = AppLayer::Off,
                }
            }
        }
    }

    pub fn on_gap(&mut self, dir: Direction, len: u64) {
        match self {
            AppLayer::Parsing { parser, .. } => parser.on_gap(dir, len),
            AppLayer::Upgraded { to, .. } => to.on_gap(dir, len),
            // The buffered prefix is no longer contiguous: detect afresh from after the gap.
            AppLayer::Detecting(detection) => {
                **detection = Detection {
                    origin: detection.origin,
                    ..Detection::default()
                }
            }
            AppLayer::Off | AppLayer::Finished(_) | AppLayer::Waiting(_) => {}
        }
    }

    /// The connection closed; see [`StreamParser::on_close`].
    pub fn on_close(&mut self) {
        match self {
            AppLayer::Parsing { parser, .. } => parser.on_close(),
            AppLayer::Upgraded { from, to } => {
                from.on_close();
                to.on_close();
            }
            _ => {}
        }
    }

    /// The stream ended at `ts`: its parsers write their last events and go (see
    /// [`AppLayer::Finished`]); once finished, again is nothing.
    pub fn finish(&mut self, ts: Timestamp, out: &mut Vec<AppOutput>) {
        let app_proto = self.app_proto();
        match self {
            AppLayer::Parsing { parser, .. } => parser.finish(ts, out),
            AppLayer::Upgraded { from, to } => {
                if let Some(handback) = to.handback() {
                    from.on_handback(handback);
                }
                from.finish(ts, out);
                to.finish(ts, out);
            }
            _ => {}
        }
        *self = AppLayer::Finished(app_proto);
    }

    /// What the parser of this stream tells the one that handed it over.
    fn handback(&mut self) -> Option<Handback> {
        match self {
            AppLayer::Parsing { parser, .. } => parser.handback(),
            _ => None,
        }
    }

    /// The parser handed the rest of the stream on: detection starts afresh behind it, at the
    /// same depth, knowing what handed it over.
    fn upgrade(&mut self) {
        if let AppLayer::Parsing { parser, origin } = std::mem::replace(self, AppLayer::Off) {
            let next = StreamOrigin {
                from_proto: Some(parser.app_proto()),
                ..origin
            };
            *self = AppLayer::Upgraded {
                from: parser,
                to: Box::new(AppLayer::new(next)),
            };
        }
    }

    /// Feeds the buffered prefix to a freshly chosen parser in the order it arrived.
    fn replay(&mut self, detection: &Detection, ts: Timestamp, out: &mut Vec<AppOutput>) {
        let mut offsets = [0usize; 2];
        for &(dir, len) in &detection.order {
            let buf = match dir {
                Direction::Ctos => &detection.ctos,
                Direction::Stoc => &detection.stoc,
            };
            let at = offsets[dir.index()];
            if let Some(chunk) = buf.get(at..at + len)
                && !chunk.is_empty()
            {
                self.on_data(dir, chunk, ts, out);
            }
            offsets[dir.index()] += len;
        }
    }
}

enum Verdict {
    Match(&'static Protocol),
    /// Some protocol needs more bytes, and the probe window has room for them.
    Undecided,
    NoMatch,
}

/// Asks every protocol, in order, about the first bytes of both directions.
fn detect(ctos: &[u8], stoc: &[u8]) -> Verdict {
    let mut need_more = false;
    for protocol in PROTOCOLS {
        match (protocol.probe)(ctos, stoc) {
            Probe::Match => return Verdict::Match(protocol),
            Probe::NeedMore => need_more = true,
            Probe::NoMatch => {}
        }
    }
    if need_more && ctos.len() < PROBE_BYTES && stoc.len() < PROBE_BYTES {
        Verdict::Undecided
    } else {
        Verdict::NoMatch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::direction::Direction::{Ctos, Stoc};

    fn feed(layer: &mut AppLayer, script: &[(Direction, &[u8])]) -> Vec<AppOutput> {
        let mut out = Vec::new();
        for (i, (dir, data)) in script.iter().enumerate() {
            layer.on_data(*dir, data, Timestamp::from_secs(i as u64), &mut out);
        }
        out
    }

    #[test]
    fn detection_picks_the_parser_and_replays_the_prefix_in_order() {
        let mut layer = AppLayer::default();
        assert!(!layer.is_decided());
        feed(
            &mut layer,
            &[
                (Stoc, b"220 mx.example.net ESMTP\r\n"),
                (Ctos, b"EHLO pc\r\n"),
            ],
        );
        assert_eq!(layer.app_proto(), Some("smtp"));
        let mut out = Vec::new();
        layer.finish(Timestamp::from_secs(9), &mut out);
        let AppEvent::Smtp(record) = &out[0].event else {
            panic!("an smtp event");
        };
        assert_eq!(
            record.smtp.banner.as_deref(),
            Some("220 mx.example.net ESMTP")
        );
        assert_eq!(record.smtp.helo.as_deref(), Some("pc"));
    }

    #[test]
    fn an_upgrade_hands_the_rest_of_the_stream_to_fresh_detection() {
        let mut layer = AppLayer::default();
        let out = feed(
            &mut layer,
            &[
                (Stoc, b"220 mx ESMTP\r\n"),
                (Ctos, b"EHLO pc\r\n"),
                (Stoc, b"250-mx\r\n250 STARTTLS\r\n"),
                (Ctos, b"STARTTLS\r\n"),
                (Stoc, b"220 go ahead\r\n"),
                // A ClientHello: no parser knows TLS, so detection gives up on the rest.
                (Ctos, b"\x16\x03\x01\x00\x05hello"),
            ],
        );
        assert!(out.is_empty());
        assert!(matches!(&layer, AppLayer::Upgraded { to, .. } if matches!(**to, AppLayer::Off)));
        assert_eq!(
            layer.app_proto(),
            Some("smtp"),
            "the flow stays an SMTP flow"
        );
        assert!(!layer.wants_data());
        let mut out = Vec::new();
        layer.finish(Timestamp::from_secs(9), &mut out);
        let AppEvent::Smtp(record) = &out[0].event else {
            panic!("the SMTP session still reports");
        };
        assert_eq!(record.smtp.status, smtp::Status::Tls);
        assert!(out[0].tunnel.is_none(), "an upgrade is not a tunnel");
    }

    #[test]
    fn nothing_is_detected_past_the_tunnel_depth_limit() {
        assert!(matches!(
            AppLayer::new(StreamOrigin::tunnel(MAX_TUNNEL_DEPTH + 1, 25)),
            AppLayer::Off
        ));
        assert!(matches!(
            AppLayer::new(StreamOrigin::tunnel(MAX_TUNNEL_DEPTH, 25)),
            AppLayer::Waiting(_)
        ));
    }
}
