//! Output: event types, and the writer that turns them into NDJSON lines.

mod event;

pub use event::{
    CaptureStats, EndReason, Event, EventBody, EventCounts, FlowIdentity, FlowRecord, FlowState,
    FlowStats, Origin, StatsRecord, TcpSummary,
};

/// The longest prefix of `s` within `max` bytes that ends on a character boundary: text from
/// the wire is capped without ever leaving invalid UTF-8 behind.
pub fn cap_str(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// [`cap_str`] for an owned string.
pub fn cap_string(mut s: String, max: usize) -> String {
    let end = cap_str(&s, max).len();
    s.truncate(end);
    s
}

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

    /// Hands over the serialised lines, leaving an empty buffer of the same capacity behind.
    pub fn take(&mut self) -> Vec<u8> {
        let capacity = self.buf.capacity();
        std::mem::replace(&mut self.buf, Vec::with_capacity(capacity))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capping_never_splits_a_character() {
        assert_eq!(cap_str("héllo", 2), "h", "é is two bytes");
        assert_eq!(cap_str("héllo", 3), "hé");
        assert_eq!(cap_str("abc", 10), "abc");
        assert_eq!(cap_string("€€".to_string(), 4), "€");
    }
}
