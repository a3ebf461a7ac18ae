//! What both targets share: a small tracker whose caps are easy to hit, the analysis stage
//! behind it with thresholds of one, and the check that every event written is one valid JSON
//! object per line.

use std::num::NonZeroU64;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use spamtap::analysis::{Analyzer, Observation};
use spamtap::capture::LinkType;
use spamtap::decode::{
    DecodeStats, Decoded, Defragmenter, OverlapPolicy, decode, reassembled_tcp,
};
use spamtap::enrich::Enricher;
use spamtap::flow::Timeouts;
use spamtap::output::{Event, EventSink, EventWriter, Origin};
use spamtap::tracker::{EventContext, Tracker, TrackerConfig};
use spamtap::rules::Rules;
use spamtap::timestamp::Timestamp;

/// Events serialised, and the observations the analysis takes from them.
#[derive(Default)]
struct Sink {
    writer: EventWriter,
    observations: Vec<Observation>,
}

impl EventSink for Sink {
    fn emit(&mut self, event: &Event<'_>) {
        self.writer.emit(event);
        self.observations.extend(event.observation());
    }
}

pub struct Harness {
    tracker: Tracker,
    sink: Sink,
    analyzer: Analyzer,
    tick: u64,
    now: Timestamp,
    stats: DecodeStats,
    defrag: Defragmenter,
}

const ORIGINS: [Origin<'static>; 1] = [Origin::PcapFile("fuzz.pcap")];

/// The test rules (groups, a blocklist, the shipped fingerprints), every threshold at one and
/// every cap small, so fuzzed sessions reach every detection and every cap.
fn rules() -> &'static Arc<Rules> {
    static RULES: OnceLock<Arc<Rules>> = OnceLock::new();
    RULES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/rules");
        let mut rules = Rules::load(Some(&dir)).expect("tests/rules loads");
        let one = NonZeroU64::MIN;
        let d = &mut rules.detections;
        d.summary.interval = 2;
        d.excessive_outbound_mail.threshold = one;
        d.direct_smtp_attempt.threshold = one;
        d.smtp_auth_bruteforce.threshold = one;
        d.smtp_client_surge.min_clients = 1;
        d.smtp_client_surge.warmup = 1;
        d.limits.max_tracked = 4;
        d.limits.max_window_entries = 2;
        d.limits.max_group_hosts = 2;
        d.summary.max_hosts = 2;
        Arc::new(rules)
    })
}

fn ctx() -> EventContext<'static> {
    // The fingerprint rules see fuzzed sessions too.
    let rules = rules();
    EventContext {
        sensor: "fuzz",
        origins: &ORIGINS,
        enrich: Enricher::new(&rules.assets, &rules.fingerprints, &rules.replies),
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
                emergency_timeouts: Timeouts {
                    half_open: 1,
                    established: 2,
                    closed: 1,
                },
                stream_window: 2048,
                // A few flows' worth: inputs reach emergency mode and eviction by memory.
                memcap: 64 * 1024,
                ..TrackerConfig::default()
            }),
            sink: Sink::default(),
            analyzer: Analyzer::new(Arc::clone(rules())),
            tick: 0,
            now: Timestamp::default(),
            stats: DecodeStats::default(),
            defrag: Defragmenter::default(),
        }
    }

    pub fn frame(&mut self, link: LinkType, ts: Timestamp, frame: &[u8]) {
        let datagram;
        let seg = match decode(link, frame, &mut self.stats) {
            Decoded::Tcp(seg) => seg,
            // Fragments through reassembly, as the capture thread does.
            Decoded::Fragment(fragment) => {
                datagram = self.defrag.add(&fragment, ts, OverlapPolicy::default());
                match datagram.as_ref().and_then(|d| reassembled_tcp(d, &mut self.stats)) {
                    Some(seg) => seg,
                    None => return,
                }
            }
            Decoded::Other => return,
        };
        self.tracker
            .on_segment(&seg, ts, frame.len() as u32, 0, &ctx(), &mut self.sink);
    }

    /// Moves packet time on, as a tick of the runtime does: timers, then the analysis.
    pub fn advance(&mut self, ts: Timestamp) {
        self.tracker.advance(ts, &ctx(), &mut self.sink);
        let observations = std::mem::take(&mut self.sink.observations);
        self.analyzer.receive(observations, self.tick);
        let mut findings = Vec::new();
        self.analyzer.tick(self.tick, ts, &mut findings);
        self.tick += 1;
        self.now = self.now.max(ts);
        self.write(findings);
    }

    fn write(&mut self, findings: Vec<spamtap::analysis::Finding>) {
        for f in &findings {
            self.sink.writer.emit(&f.event("fuzz", ORIGINS[0]));
        }
    }

    /// Drains every flow and checks the output.
    pub fn finish(mut self) {
        self.tracker.drain(&ctx(), &mut self.sink);
        let observations = std::mem::take(&mut self.sink.observations);
        self.analyzer.receive(observations, self.tick);
        let mut findings = Vec::new();
        self.analyzer.finish(self.now, &mut findings);
        self.write(findings);
        let bytes = self.sink.writer.take().bytes;
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let value: serde_json::Value =
                serde_json::from_slice(line).expect("every event is valid JSON");
            assert!(value.is_object());
        }
        assert_eq!(self.tracker.stats().reassembly_memory, 0, "buffers returned after drain");
    }
}
