//! Output: event types, the writer that turns them into NDJSON lines, and the outputs the
//! lines go to (files, syslog, unix sockets, Redis), each behind a queue of its own.

mod event;
mod file;
mod lane;
mod redis;
mod spec;
mod syslog;
mod unix;

pub use event::{Event, EventBody, EventCounts, Origin, StatsRecord};
pub use lane::{OutputError, OutputStats, OutputSummary, Outputs};
pub use spec::{Destination, EVENT_TYPES, OutputSpec, RedisSpec, publish_spec};

/// Where the flow stage puts its events.
pub trait EventSink {
    fn emit(&mut self, event: &Event<'_>);
}

/// Event lines, each ending in `\n`, and how many: whoever wrote them knows, and the outputs
/// need not count them again.
#[derive(Debug, Default)]
pub struct Lines {
    pub bytes: Vec<u8>,
    pub count: u64,
}

impl Lines {
    /// Lines from elsewhere (a stream of events), counted.
    pub fn counted(bytes: Vec<u8>) -> Self {
        let count = lane::count_lines(&bytes);
        Lines { bytes, count }
    }
}

/// Serialises events into a reusable byte buffer, one JSON object per line, and counts them by
/// type. Workers serialise in parallel; the output thread only writes the bytes.
#[derive(Default)]
pub struct EventWriter {
    buf: Vec<u8>,
    /// Lines in `buf`.
    lines: u64,
    counts: EventCounts,
}

impl EventWriter {
    pub fn counts(&self) -> &EventCounts {
        &self.counts
    }

    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Hands over the serialised lines for `spare`, emptied, to write the next ones into: a
    /// worker and the output thread pass the same few buffers back and forth.
    pub fn swap(&mut self, mut spare: Vec<u8>) -> Lines {
        spare.clear();
        Lines {
            bytes: std::mem::replace(&mut self.buf, spare),
            count: std::mem::take(&mut self.lines),
        }
    }

    /// Hands over the serialised lines, leaving an empty buffer of the same capacity behind.
    pub fn take(&mut self) -> Lines {
        self.swap(Vec::with_capacity(self.buf.capacity()))
    }
}

impl EventSink for EventWriter {
    fn emit(&mut self, event: &Event<'_>) {
        // sonic-rs escapes strings with SIMD (serde_json does it a byte at a time, and that was
        // the largest single cost of a mail-heavy capture); the bytes are those serde_json
        // writes (tests below). Serialising these types cannot fail; if it ever did, no half
        // line is left behind.
        let start = self.buf.len();
        if sonic_rs::to_writer(&mut self.buf, event).is_ok() {
            self.buf.push(b'\n');
            self.lines += 1;
            *self.counts.entry(event.body.event_type()).or_default() += 1;
        } else {
            self.buf.truncate(start);
        }
    }
}

#[cfg(test)]
mod tests {
    /// What sonic-rs writes for `value`, checked against serde_json.
    fn assert_same<T: serde::Serialize + ?Sized + std::fmt::Debug>(value: &T) {
        assert_eq!(
            sonic_rs::to_string(value).unwrap(),
            serde_json::to_string(value).unwrap(),
            "{value:?}"
        );
    }

    /// The event writer's serialiser must write what serde_json writes, the reference for EVE
    /// consumers: strings with every ASCII character and others, and the floats events carry.
    #[test]
    fn serialiser_writes_what_serde_json_writes() {
        let mut strings: Vec<String> = (0u8..=0x7f).map(|b| format!("a{}b", b as char)).collect();
        strings.push((0u8..=0x7f).map(char::from).collect());
        strings.push("\u{2028}\u{2029}\u{fffd}é€😀 \"quoted\" \\ back".to_string());
        strings.push("x".repeat(1000) + "\n" + &"y".repeat(33));
        for s in &strings {
            assert_same(s);
        }
        let floats = [
            0.0,
            -0.0,
            1.0,
            0.1,
            1e-7,
            12.345678,
            86400.0,
            1e21,
            1e300,
            f64::MIN_POSITIVE,
            f64::NAN,
            f64::INFINITY,
        ];
        for f in &floats {
            assert_same(f);
        }
        let map: std::collections::BTreeMap<&str, u64> = [("a\"b", u64::MAX), ("c", 0)].into();
        assert_same(&map);
    }
}
