//! What both targets share: a small tracker whose caps are easy to hit, and the check that every
//! event it writes is one valid JSON object per line.

use spamtap::rules::Rules;
use spamtap::decode::{DecodeStats, Decoded, LinkType, decode};
use spamtap::flow::{EventContext, Timeouts, Tracker, TrackerConfig};
use spamtap::output::{EventWriter, Origin};
use spamtap::timestamp::Timestamp;

pub struct Harness {
    tracker: Tracker,
    writer: EventWriter,
    stats: DecodeStats,
}

const ORIGINS: [Origin<'static>; 1] = [Origin::PcapFile("fuzz.pcap")];

fn ctx() -> EventContext<'static> {
    // The built-in rules, fingerprints included: their matching sees fuzzed sessions too.
    static RULES: std::sync::OnceLock<Rules> = std::sync::OnceLock::new();
    let rules = RULES.get_or_init(|| Rules::load(None).unwrap_or_default());
    EventContext {
        sensor: "fuzz",
        origins: &ORIGINS,
        assets: &rules.assets,
        fingerprints: &rules.fingerprints,
    }
}

impl Harness {
    pub fn new() -> Self {
        Harness {
            tracker: Tracker::new(TrackerConfig {
                max_flows: 8,
                timeouts: Timeouts {
                    half_open: 2,
                    established: 5,
                    closed: 1,
                },
                stream_window: 2048,
                reassembly_memcap: 16 * 1024,
            }),
            writer: EventWriter::default(),
            stats: DecodeStats::default(),
        }
    }

    pub fn frame(&mut self, link: LinkType, ts: Timestamp, frame: &[u8]) {
        if let Decoded::Tcp(seg) = decode(link, frame, &mut self.stats) {
            self.tracker
                .on_segment(&seg, ts, frame.len() as u32, 0, &ctx(), &mut self.writer);
        }
    }

    pub fn advance(&mut self, ts: Timestamp) {
        self.tracker.advance(ts, &ctx(), &mut self.writer);
    }

    /// Drains every flow and checks the output.
    pub fn finish(mut self) {
        self.tracker.drain(&ctx(), &mut self.writer);
        let bytes = self.writer.take();
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let value: serde_json::Value =
                serde_json::from_slice(line).expect("every event is valid JSON");
            assert!(value.is_object());
        }
        assert_eq!(self.tracker.stats().reassembly_memory, 0, "buffers returned after drain");
    }
}
