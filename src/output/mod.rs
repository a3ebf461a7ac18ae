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

/// Serialises events into a reusable byte buffer, one JSON object per line, and counts them by
/// type. Workers serialise in parallel; the output thread only writes the bytes.
#[derive(Default)]
pub struct EventWriter {
    buf: Vec<u8>,
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
    pub fn swap(&mut self, mut spare: Vec<u8>) -> Vec<u8> {
        spare.clear();
        std::mem::replace(&mut self.buf, spare)
    }

    /// Hands over the serialised lines, leaving an empty buffer of the same capacity behind.
    pub fn take(&mut self) -> Vec<u8> {
        self.swap(Vec::with_capacity(self.buf.capacity()))
    }
}

impl EventSink for EventWriter {
    fn emit(&mut self, event: &Event<'_>) {
        // Strings are escaped by serde_json, so any byte content is valid JSON. Serialising
        // these types cannot fail; if it ever did, no half line is left behind.
        let start = self.buf.len();
        if serde_json::to_writer(&mut self.buf, event).is_ok() {
            self.buf.push(b'\n');
            *self.counts.entry(event.body.event_type()).or_default() += 1;
        } else {
            self.buf.truncate(start);
        }
    }
}
