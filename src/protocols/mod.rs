//! Application layer: protocol detection by content on any port, then one parser per flow.
//!
//! This is the one place parsers plug in. A protocol provides a `probe` over the first bytes of
//! both directions (SOCKS needs the server's answer to be sure) and a parser that takes
//! in-order data per direction, gaps, and the end of the flow. Parsers are dispatched through
//! the [`AppParser`] enum, not trait objects, and report what they found as [`AppEvent`]s; the
//! flow stage adds the common fields.

pub mod http_connect;
pub mod smtp;
pub mod socks;
mod tunnel;

use crate::direction::Direction;
use crate::timestamp::Timestamp;

/// A protocol's verdict on the first bytes of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    Match,
    NeedMore,
    NoMatch,
}

/// One parser per protocol.
pub enum AppParser {
    Smtp(Box<smtp::SmtpParser>),
    Socks(Box<socks::SocksParser>),
    HttpConnect(Box<http_connect::HttpConnectParser>),
}

/// What parsers report, one variant per event type.
#[derive(Debug, PartialEq)]
pub enum AppEvent {
    Smtp(Box<smtp::SmtpRecord>),
    Socks(Box<socks::SocksRecord>),
}

/// An event with the packet time it belongs to, and the tunnel it was found in.
#[derive(Debug, PartialEq)]
pub struct AppOutput {
    pub ts: Timestamp,
    pub event: AppEvent,
    pub tunnel: Option<Tunnel>,
}

impl AppOutput {
    pub fn new(ts: Timestamp, event: AppEvent) -> Self {
        AppOutput {
            ts,
            event,
            tunnel: None,
        }
    }
}

/// How far proxies may be nested (SOCKS inside SOCKS) before inner streams go unanalysed.
pub const MAX_TUNNEL_DEPTH: u8 = 2;

/// The proxy an inner session went through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tunnel {
    /// `socks4`, `socks5` or `http_connect`.
    pub kind: &'static str,
    /// The proxy's address and port; `None` when it is the flow's server (the outer tunnel),
    /// which the flow stage fills in.
    pub proxy: Option<(String, u16)>,
    /// Where the proxy connected to, as the client asked (a name or an address).
    pub dest_host: String,
    pub dest_port: u16,
    /// 1 for a session inside one proxy, 2 inside a proxy reached through another.
    pub depth: u8,
}

impl AppEvent {
    /// The `event_type` of the JSON event.
    pub fn event_type(&self) -> &'static str {
        match self {
            AppEvent::Smtp(_) => "smtp",
            AppEvent::Socks(_) => "socks",
        }
    }

    /// Writes the event's own top-level objects (`smtp` and `email` for an `smtp` event).
    pub fn write_fields<M: serde::ser::SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        match self {
            AppEvent::Smtp(record) => {
                map.serialize_entry("smtp", &record.smtp)?;
                if let Some(email) = &record.email {
                    map.serialize_entry("email", email)?;
                }
                Ok(())
            }
            AppEvent::Socks(record) => map.serialize_entry("socks", record.as_ref()),
        }
    }
}

/// A protocol known to detection: its name (`app_proto`), probe and parser constructor.
struct Protocol {
    probe: fn(ctos: &[u8], stoc: &[u8]) -> Probe,
    /// A parser for a flow, or for a stream `depth` tunnels deep.
    start: fn(depth: u8) -> AppParser,
}

/// Protocols in the order they are probed.
const PROTOCOLS: &[Protocol] = &[
    Protocol {
        probe: smtp::probe,
        start: |_| AppParser::Smtp(Box::default()),
    },
    Protocol {
        probe: socks::probe,
        start: |depth| AppParser::Socks(Box::new(socks::SocksParser::new(depth))),
    },
    Protocol {
        probe: http_connect::probe,
        start: |depth| {
            AppParser::HttpConnect(Box::new(http_connect::HttpConnectParser::new(depth)))
        },
    },
];

impl AppParser {
    pub fn app_proto(&self) -> &'static str {
        match self {
            AppParser::Smtp(_) => "smtp",
            AppParser::Socks(p) => p.app_proto(),
            AppParser::HttpConnect(_) => "http_connect",
        }
    }

    fn parse(&mut self, dir: Direction, data: &[u8], ts: Timestamp, out: &mut Vec<AppOutput>) {
        match self {
            AppParser::Smtp(p) => p.parse(dir, data, ts, out),
            AppParser::Socks(p) => p.parse(dir, data, ts, out),
            AppParser::HttpConnect(p) => p.parse(dir, data, ts, out),
        }
    }

    fn on_gap(&mut self, dir: Direction, len: u64) {
        match self {
            AppParser::Smtp(p) => p.on_gap(dir, len),
            AppParser::Socks(p) => p.on_gap(dir, len),
            AppParser::HttpConnect(p) => p.on_gap(dir, len),
        }
    }

    fn finish(&mut self, ts: Timestamp, out: &mut Vec<AppOutput>) {
        match self {
            AppParser::Smtp(p) => p.finish(ts, out),
            AppParser::Socks(p) => p.finish(ts, out),
            AppParser::HttpConnect(p) => p.finish(ts, out),
        }
    }
}

/// Bytes of each direction kept while no protocol has decided.
const PROBE_BYTES: usize = 2048;

/// The first bytes of a flow, kept in arrival order until a protocol matches.
#[derive(Default)]
pub struct Detection {
    /// How many tunnels deep this stream is (0 for a flow's own bytes).
    depth: u8,
    ctos: Vec<u8>,
    stoc: Vec<u8>,
    /// Arrival order of the buffered chunks, so a parser sees the same interleaving.
    order: Vec<(Direction, usize)>,
}

/// The application-layer state of one flow.
pub enum AppLayer {
    /// No byte yet (a SYN flood costs no detection buffer): detection starts at the first one,
    /// this many tunnels deep.
    Waiting(u8),
    Detecting(Box<Detection>),
    Parsing(AppParser),
    /// No protocol matched (or none is known): data is only counted by reassembly.
    Off,
}

impl Default for AppLayer {
    fn default() -> Self {
        AppLayer::new(0)
    }
}

impl AppLayer {
    /// Detection for a stream `depth` tunnels deep; past [`MAX_TUNNEL_DEPTH`], none.
    pub fn new(depth: u8) -> Self {
        if depth > MAX_TUNNEL_DEPTH {
            AppLayer::Off
        } else {
            AppLayer::Waiting(depth)
        }
    }

    /// Whether detection has concluded, one way or the other.
    pub fn is_decided(&self) -> bool {
        !matches!(self, AppLayer::Waiting(_) | AppLayer::Detecting(_))
    }

    /// `app_proto` of the flow, once a parser took it.
    pub fn app_proto(&self) -> Option<&'static str> {
        match self {
            AppLayer::Parsing(p) => Some(p.app_proto()),
            _ => None,
        }
    }

    /// Whether the flow's bytes still matter to anyone.
    pub fn wants_data(&self) -> bool {
        !matches!(self, AppLayer::Off)
    }

    pub fn on_data(
        &mut self,
        dir: Direction,
        data: &[u8],
        ts: Timestamp,
        out: &mut Vec<AppOutput>,
    ) {
        if let AppLayer::Waiting(depth) = *self {
            *self = AppLayer::Detecting(Box::new(Detection {
                depth,
                ..Detection::default()
            }));
        }
        match self {
            AppLayer::Parsing(parser) => parser.parse(dir, data, ts, out),
            AppLayer::Off | AppLayer::Waiting(_) => {}
            AppLayer::Detecting(detection) => {
                let buf = match dir {
                    Direction::Ctos => &mut detection.ctos,
                    Direction::Stoc => &mut detection.stoc,
                };
                let room = PROBE_BYTES.saturating_sub(buf.len());
                let kept = data.len().min(room);
                buf.extend_from_slice(&data[..kept]);
                detection.order.push((dir, kept));
                match detect(&detection.ctos, &detection.stoc, detection.depth) {
                    Verdict::Parser(mut parser) => {
                        replay(detection, &mut parser, ts, out);
                        if kept < data.len() {
                            parser.parse(dir, &data[kept..], ts, out);
                        }
                        *self = AppLayer::Parsing(parser);
                    }
                    Verdict::Undecided if kept == data.len() => {}
                    Verdict::Undecided | Verdict::NoMatch => *self = AppLayer::Off,
                }
            }
        }
    }

    pub fn on_gap(&mut self, dir: Direction, len: u64) {
        match self {
            AppLayer::Parsing(parser) => parser.on_gap(dir, len),
            // The buffered prefix is no longer contiguous: detect afresh from after the gap.
            AppLayer::Detecting(detection) => {
                **detection = Detection {
                    depth: detection.depth,
                    ..Detection::default()
                }
            }
            AppLayer::Off | AppLayer::Waiting(_) => {}
        }
    }

    pub fn finish(&mut self, ts: Timestamp, out: &mut Vec<AppOutput>) {
        if let AppLayer::Parsing(parser) = self {
            parser.finish(ts, out);
        }
        *self = AppLayer::Off;
    }
}

enum Verdict {
    Parser(AppParser),
    /// Some protocol needs more bytes, and the probe window has room for them.
    Undecided,
    NoMatch,
}

/// Asks every protocol, in order, about the first bytes of both directions.
fn detect(ctos: &[u8], stoc: &[u8], depth: u8) -> Verdict {
    let mut need_more = false;
    for protocol in PROTOCOLS {
        match (protocol.probe)(ctos, stoc) {
            Probe::Match => return Verdict::Parser((protocol.start)(depth)),
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

/// Feeds the buffered prefix to a freshly chosen parser in the order it arrived.
fn replay(detection: &Detection, parser: &mut AppParser, ts: Timestamp, out: &mut Vec<AppOutput>) {
    let mut offsets = [0usize; 2];
    for &(dir, len) in &detection.order {
        let buf = match dir {
            Direction::Ctos => &detection.ctos,
            Direction::Stoc => &detection.stoc,
        };
        let at = offsets[dir.index()];
        if let Some(chunk) = buf.get(at..at + len) {
            if !chunk.is_empty() {
                parser.parse(dir, chunk, ts, out);
            }
        }
        offsets[dir.index()] += len;
    }
}
