//! Application layer: protocol detection by content on any port, then one parser per flow.
//!
//! This is the one place parsers plug in. A protocol provides a `probe` over the first bytes of
//! both directions (SOCKS needs the server's answer to be sure) and a parser that takes
//! in-order data per direction, gaps, and the end of the flow. Parsers are dispatched through
//! the [`AppParser`] enum, not trait objects, and report what they found as [`AppEvent`]s; the
//! flow stage adds the common fields.

pub mod smtp;
#[cfg(test)]
pub mod test_parser;

use crate::flow::Direction;
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
    #[cfg(test)]
    Test(test_parser::TestParser),
}

/// What parsers report, one variant per event type.
#[derive(Debug, PartialEq)]
pub enum AppEvent {
    Smtp(Box<smtp::SmtpRecord>),
    #[cfg(test)]
    Test(test_parser::TestRecord),
}

/// An event with the packet time it belongs to.
#[derive(Debug, PartialEq)]
pub struct AppOutput {
    pub ts: Timestamp,
    pub event: AppEvent,
}

impl AppEvent {
    /// The `event_type` of the JSON event.
    pub fn event_type(&self) -> &'static str {
        match self {
            AppEvent::Smtp(_) => "smtp",
            #[cfg(test)]
            AppEvent::Test(_) => "test",
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
            #[cfg(test)]
            AppEvent::Test(record) => map.serialize_entry("test", record),
        }
    }
}

/// A protocol known to detection: its name (`app_proto`), probe and parser constructor.
struct Protocol {
    probe: fn(ctos: &[u8], stoc: &[u8]) -> Probe,
    start: fn() -> AppParser,
}

/// Protocols in the order they are probed.
const PROTOCOLS: &[Protocol] = &[
    Protocol {
        probe: smtp::probe,
        start: || AppParser::Smtp(Box::default()),
    },
    #[cfg(test)]
    Protocol {
        probe: test_parser::probe,
        start: || AppParser::Test(test_parser::TestParser::default()),
    },
];

impl AppParser {
    pub fn app_proto(&self) -> &'static str {
        match self {
            AppParser::Smtp(_) => "smtp",
            #[cfg(test)]
            AppParser::Test(_) => "test",
        }
    }

    fn parse(&mut self, dir: Direction, data: &[u8], ts: Timestamp, out: &mut Vec<AppOutput>) {
        match self {
            AppParser::Smtp(p) => p.parse(dir, data, ts, out),
            #[cfg(test)]
            AppParser::Test(p) => p.parse(dir, data, ts, out),
        }
    }

    fn on_gap(&mut self, dir: Direction, len: u64) {
        match self {
            AppParser::Smtp(p) => p.on_gap(dir, len),
            #[cfg(test)]
            AppParser::Test(p) => p.on_gap(dir, len),
        }
    }

    fn finish(&mut self, ts: Timestamp, out: &mut Vec<AppOutput>) {
        match self {
            AppParser::Smtp(p) => p.finish(ts, out),
            #[cfg(test)]
            AppParser::Test(p) => p.finish(ts, out),
        }
    }
}

/// Bytes of each direction kept while no protocol has decided.
const PROBE_BYTES: usize = 2048;

/// The first bytes of a flow, kept in arrival order until a protocol matches.
#[derive(Default)]
pub struct Detection {
    ctos: Vec<u8>,
    stoc: Vec<u8>,
    /// Arrival order of the buffered chunks, so a parser sees the same interleaving.
    order: Vec<(Direction, usize)>,
}

/// The application-layer state of one flow.
pub enum AppLayer {
    Detecting(Box<Detection>),
    Parsing(AppParser),
    /// No protocol matched (or none is known): data is only counted by reassembly.
    Off,
}

impl Default for AppLayer {
    fn default() -> Self {
        if PROTOCOLS.is_empty() {
            AppLayer::Off
        } else {
            AppLayer::Detecting(Box::default())
        }
    }
}

impl AppLayer {
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
        match self {
            AppLayer::Parsing(parser) => parser.parse(dir, data, ts, out),
            AppLayer::Off => {}
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
            AppLayer::Detecting(detection) => **detection = Detection::default(),
            AppLayer::Off => {}
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
fn detect(ctos: &[u8], stoc: &[u8]) -> Verdict {
    let mut need_more = false;
    for protocol in PROTOCOLS {
        match (protocol.probe)(ctos, stoc) {
            Probe::Match => return Verdict::Parser((protocol.start)()),
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
