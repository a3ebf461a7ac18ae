//! The tracker, from generated packets to events: parsers see each direction in order despite
//! reordering and duplicates, lost bytes become gaps, flows end in the right state for the
//! right reason, a full table evicts and reports, and a memory budget holds under a flood.

use serde_json::Value;
use spamtap::capture::LinkType;
use spamtap::decode::{DecodeStats, Decoded, decode};
use spamtap::direction::Direction::{Ctos, Stoc};
use spamtap::enrich::Enricher;
use spamtap::flow::FlowStats;
use spamtap::output::{Event, EventSink, Origin};
use spamtap::rules::{Assets, Fingerprints, ReplyProfiles};
use spamtap::timestamp::Timestamp;
use spamtap::tracker::{EventContext, Tracker, TrackerConfig};
use spamtap_gen::{EPOCH, Fault, Frame, Session, merge};

#[derive(Default)]
struct Collect(Vec<Value>);

impl EventSink for Collect {
    fn emit(&mut self, event: &Event<'_>) {
        self.0.push(serde_json::to_value(event).unwrap());
    }
}

fn run(frames: &[Frame], config: TrackerConfig) -> Vec<Value> {
    run_watching(frames, config, |_| {}).0
}

/// Runs `frames`, calling `watch` with the tracker after each segment; returns the events and
/// the flow stats at the end.
fn run_watching(
    frames: &[Frame],
    config: TrackerConfig,
    mut watch: impl FnMut(&Tracker),
) -> (Vec<Value>, FlowStats) {
    let origins = [Origin::PcapFile("test.pcap")];
    let assets = Assets::default();
    let fingerprints = Fingerprints::default();
    let replies = ReplyProfiles::default();
    let ctx = EventContext {
        sensor: "unit",
        origins: &origins,
        enrich: Enricher::new(&assets, &fingerprints, &replies),
    };
    let mut tracker = Tracker::new(config);
    let mut out = Collect::default();
    let mut stats = DecodeStats::default();
    for frame in frames {
        if let Decoded::Tcp(seg) = decode(LinkType::Ethernet, &frame.data, &mut stats) {
            tracker.on_segment(&seg, frame.ts, frame.wire_len, 0, &ctx, &mut out);
            watch(&tracker);
        }
    }
    tracker.drain(&ctx, &mut out);
    (out.0, tracker.stats())
}

fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event_type"] == t).collect()
}

#[test]
fn parser_sees_both_directions_in_order_despite_reordering() {
    let mut s = Session::new("192.0.2.1:40000", "198.51.100.1:2525").mss(4);
    s.handshake()
        .send(Stoc, b"220 mx ESMTP\r\n")
        .send_with(
            Ctos,
            b"EHLO one.example\r\nMAIL FROM:<a@b.example>\r\n",
            &[Fault::Reorder(0), Fault::Duplicate(1), Fault::Reorder(5)],
        )
        .send(Stoc, b"250 mx\r\n250 ok\r\n")
        .send(Ctos, b"QUIT\r\n")
        .close();
    let events = run(s.frames(), TrackerConfig::default());
    let smtp = of_type(&events, "smtp");
    assert_eq!(smtp.len(), 1);
    assert_eq!(smtp[0]["smtp"]["helo"], "one.example");
    assert_eq!(smtp[0]["smtp"]["mail_from"], "a@b.example");
    assert_eq!(smtp[0]["smtp"]["banner"], "220 mx ESMTP");
    assert!(smtp[0]["smtp"].get("anomalies").is_none(), "{}", smtp[0]);
    let flow = of_type(&events, "flow");
    assert_eq!(flow[0]["app_proto"], "smtp");
    assert_eq!(flow[0]["src_port"], 40000);
    assert_eq!(flow[0]["flow"]["state"], "closed");
    assert_eq!(flow[0]["flow"]["data_bytes_toserver"], 49);
    assert_eq!(flow[0]["flow"]["missed_bytes"], 0);
    // App events carry the same flow identity as the flow event.
    assert_eq!(smtp[0]["flow_id"], flow[0]["flow_id"]);
    assert_eq!(smtp[0]["community_id"], flow[0]["community_id"]);
}

#[test]
fn parser_gets_gap_for_lost_segment() {
    let mut s = Session::new("192.0.2.1:40000", "198.51.100.1:2525").mss(4);
    s.handshake()
        .send(Stoc, b"220 mx ESMTP\r\n")
        .send_with(Ctos, b"EHLO one\r\nMAIL FROM:<a@b>\r\n", &[Fault::Drop(3)])
        .send(Stoc, b"250 mx\r\n250 ok\r\n")
        .close();
    let events = run(s.frames(), TrackerConfig::default());
    let smtp = of_type(&events, "smtp");
    assert_eq!(smtp[0]["smtp"]["anomalies"][0], "gap", "{}", smtp[0]);
    assert_eq!(smtp[0]["smtp"]["helo"], "one");
    assert!(
        smtp[0]["smtp"].get("mail_from").is_none(),
        "the lost bytes held it"
    );
    assert_eq!(of_type(&events, "flow")[0]["flow"]["missed_bytes"], 4);
}

#[test]
fn non_matching_flow_has_no_app_proto() {
    let mut s = Session::new("192.0.2.1:40000", "198.51.100.1:25");
    s.handshake().send(Ctos, b"GET / HTTP/1.1\r\n\r\n").close();
    let events = run(s.frames(), TrackerConfig::default());
    assert!(of_type(&events, "smtp").is_empty());
    assert!(of_type(&events, "flow")[0].get("app_proto").is_none());
}

#[test]
fn states_and_reasons() {
    let mut no_answer = Session::new("192.0.2.1:1000", "198.51.100.1:25");
    no_answer.syn().wait_secs(1).syn();
    let mut refused = Session::new("192.0.2.2:1000", "198.51.100.1:25");
    refused.refused();
    let mut reset = Session::new("192.0.2.3:1000", "198.51.100.1:25");
    reset.handshake().send(Ctos, b"x").reset(Stoc);
    let mut idle = Session::new("192.0.2.4:1000", "198.51.100.1:25");
    idle.handshake().send(Ctos, b"x");
    let mut open = Session::new("192.0.2.5:1000", "198.51.100.1:25")
        .starting_at(EPOCH.saturating_add_secs(1000));
    open.handshake();
    let frames = merge([
        no_answer.into_frames(),
        refused.into_frames(),
        reset.into_frames(),
        idle.into_frames(),
        open.into_frames(),
    ]);
    let events = run(&frames, TrackerConfig::default());
    let by_client = |ip: &str| {
        of_type(&events, "flow")
            .into_iter()
            .find(|e| e["src_ip"] == ip)
            .map(|e| (e["flow"]["state"].clone(), e["flow"]["reason"].clone()))
            .unwrap()
    };
    assert_eq!(
        by_client("192.0.2.1"),
        ("no_answer".into(), "timeout".into())
    );
    assert_eq!(by_client("192.0.2.2"), ("rejected".into(), "closed".into()));
    assert_eq!(by_client("192.0.2.3"), ("reset".into(), "closed".into()));
    assert_eq!(by_client("192.0.2.4"), ("timeout".into(), "timeout".into()));
    assert_eq!(
        by_client("192.0.2.5"),
        ("established".into(), "shutdown".into())
    );
}

#[test]
fn midstream_pickup_orients_by_port() {
    let mut s = Session::new("192.0.2.1:51000", "198.51.100.1:25");
    s.send(Stoc, b"250 ok\r\n").send(Ctos, b"QUIT\r\n");
    let events = run(s.frames(), TrackerConfig::default());
    let flow = of_type(&events, "flow")[0];
    assert_eq!(flow["src_ip"], "192.0.2.1");
    assert_eq!(flow["dest_port"], 25);
}

#[test]
fn full_table_evicts_and_reports() {
    let sessions = (0..5u16).map(|i| {
        let mut s = Session::new(&format!("192.0.2.1:{}", 1000 + i), "198.51.100.1:25")
            .starting_at(EPOCH.saturating_add_secs(u64::from(i)));
        s.handshake();
        s.into_frames()
    });
    let config = TrackerConfig {
        max_flows: 2,
        ..TrackerConfig::default()
    };
    let events = run(&merge(sessions), config);
    let flows = of_type(&events, "flow");
    assert_eq!(flows.len(), 5);
    let evicted = flows
        .iter()
        .filter(|f| f["flow"]["reason"] == "evicted")
        .count();
    assert_eq!(evicted, 3);
}

#[test]
fn new_syn_after_close_starts_a_new_flow() {
    let mut first = Session::new("192.0.2.1:1000", "198.51.100.1:25");
    first.handshake().send(Ctos, b"a").close();
    let mut second = Session::new("192.0.2.1:1000", "198.51.100.1:25")
        .isn(5_000, 6_000)
        .starting_at(EPOCH.saturating_add_secs(2));
    second.handshake().send(Ctos, b"b").close();
    let events = run(
        &merge([first.into_frames(), second.into_frames()]),
        TrackerConfig::default(),
    );
    let reasons: Vec<_> = of_type(&events, "flow")
        .iter()
        .map(|f| f["flow"]["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(reasons, vec!["reused", "closed"]);
}

/// `n` mail sessions from distinct clients, each a whole transaction whose packets are spread
/// over the first 50 ms, and `syns` unanswered SYNs, one per microsecond, in the same time.
fn mail_under_syn_flood(n: u16, syns: u32) -> Vec<Frame> {
    let mail = (0..n).map(|i| {
        let mut s = Session::new(
            &format!("192.0.2.{}:{}", 1 + i, 30000 + i),
            "198.51.100.1:25",
        )
        .starting_at(EPOCH);
        s.handshake()
            .send(Stoc, b"220 mx ESMTP\r\n")
            .send(Ctos, b"EHLO client.example\r\n")
            .send(Stoc, b"250 mx\r\n")
            .send(Ctos, b"MAIL FROM:<a@client.example>\r\n")
            .send(Stoc, b"250 ok\r\n")
            .send(Ctos, b"RCPT TO:<b@mx.example>\r\n")
            .send(Stoc, b"250 ok\r\n")
            .send(Ctos, b"DATA\r\n")
            .send(Stoc, b"354 go\r\n")
            .send(
                Ctos,
                &[&b"Subject: hi\r\n\r\n"[..], &[b'x'; 3000], b"\r\n.\r\n"].concat(),
            )
            .send(Stoc, b"250 queued as 1\r\n")
            .send(Ctos, b"QUIT\r\n")
            .send(Stoc, b"221 bye\r\n")
            .close();
        // Spread the session's packets over the flood, as a real session takes its time.
        let mut frames = s.into_frames();
        let step = 50_000 / frames.len() as u64;
        for (k, f) in frames.iter_mut().enumerate() {
            f.ts = Timestamp(EPOCH.0 + k as u64 * step);
        }
        frames
    });
    let flood = (0..syns).map(|i| {
        let mut s = Session::new(
            &format!(
                "10.{}.{}.{}:{}",
                (i >> 14) & 0xff,
                (i >> 6) & 0xff,
                (i & 0x3f) + 1,
                1024 + i % 50_000
            ),
            "198.51.100.1:25",
        )
        .starting_at(Timestamp(EPOCH.0 + u64::from(i) * 50_000 / u64::from(syns)));
        s.syn();
        s.into_frames()
    });
    merge(mail.chain(flood))
}

#[test]
fn syn_flood_under_a_memory_budget_evicts_half_open_flows_not_the_mail() {
    let config = TrackerConfig {
        // Room for about 5,000 idle flows; the flood brings 40,000.
        memcap: 2 << 20,
        ..TrackerConfig::default()
    };
    let cap = config.memcap as u64;
    let mut peak = 0;
    let (events, stats) = run_watching(&mail_under_syn_flood(20, 40_000), config, |t| {
        peak = peak.max(t.stats().memory);
    });
    assert!(peak <= cap, "budget held: {peak} of {cap}");
    assert!(stats.evicted_memcap > 30_000, "{stats:?}");
    assert_eq!(stats.evicted, 0, "the flow cap was never reached");
    assert_eq!(stats.emergencies, 1, "{stats:?}");
    assert_eq!(stats.memory, 0, "every flow's bytes were given back");
    let smtp = of_type(&events, "smtp");
    assert_eq!(smtp.len(), 20, "every mail session was kept to its end");
    assert!(
        smtp.iter().all(|e| e["smtp"]["status"] == "queued"),
        "{smtp:?}"
    );
    let mail_flows: Vec<_> = of_type(&events, "flow")
        .into_iter()
        .filter(|f| f["app_proto"] == "smtp")
        .collect();
    assert_eq!(mail_flows.len(), 20);
    // Each lived to its close (both FINs seen); one closed during the flood may then go in
    // its close delay, as it is done.
    assert!(
        mail_flows.iter().all(|f| f["flow"]["state"] == "closed"),
        "{mail_flows:?}"
    );
    let evicted = of_type(&events, "flow")
        .iter()
        .filter(|f| f["flow"]["reason"] == "evicted")
        .count() as u64;
    assert_eq!(evicted, stats.evicted_memcap, "each eviction is reported");
}

#[test]
fn emergency_mode_times_out_half_open_flows_early() {
    let config = TrackerConfig {
        memcap: 2 << 20,
        ..TrackerConfig::default()
    };
    // 4,300 SYNs (466 bytes a flow) fill 80% of the budget but not all of it; a packet 6 s
    // later finds them past the emergency timeout (5 s), not the normal one (30 s).
    let mut frames = mail_under_syn_flood(0, 4_300);
    let mut late = Session::new("192.0.2.200:40000", "198.51.100.1:25")
        .starting_at(EPOCH.saturating_add_secs(6));
    late.syn();
    frames.extend(late.into_frames());
    let mut in_emergency = false;
    let (events, stats) = run_watching(&frames, config, |t| {
        in_emergency |= t.stats().emergency == 1;
    });
    assert!(in_emergency);
    assert_eq!(stats.evicted_memcap, 0, "{stats:?}");
    assert_eq!(stats.emergency_timeouts, 4_300, "{stats:?}");
    assert_eq!(stats.timed_out, 4_300);
    assert_eq!(stats.emergency, 0, "back under 70% once they went");
    assert_eq!(of_type(&events, "flow").len(), 4_301);
}

/// A connection closed by both FINs with every byte seen reports its session at the close, and
/// only its flow waits out the close delay; one ended by a RST reports when its flow ends.
#[test]
fn complete_sessions_report_at_their_close() {
    let session = |port: u16, start: u64, reset: bool| {
        let mut s = Session::new(&format!("192.0.2.1:{port}"), "198.51.100.1:25")
            .starting_at(EPOCH.saturating_add_secs(start));
        s.handshake()
            .send(Stoc, b"220 mx ESMTP\r\n")
            .send(Ctos, b"EHLO one\r\n")
            .send(Stoc, b"250 mx\r\n")
            .send(Ctos, b"QUIT\r\n")
            .send(Stoc, b"221 bye\r\n");
        if reset {
            s.reset(Ctos);
        } else {
            s.close();
        }
        s.into_frames()
    };
    let frames = merge([
        session(40001, 0, false),
        session(40002, 1, true),
        session(40003, 2, false),
    ]);
    let events = run(&frames, TrackerConfig::default());
    let at = |t: &str, port: u64| {
        events
            .iter()
            .position(|e| e["event_type"] == t && e["src_port"] == port)
            .unwrap_or_else(|| panic!("no {t} event of {port}"))
    };
    // Within the close delay of the first, the third has reported; their flows come later.
    assert!(at("smtp", 40003) < at("flow", 40001));
    // The reset one reports with its flow.
    assert!(at("smtp", 40002) > at("flow", 40001));
    assert_eq!(of_type(&events, "flow")[0]["app_proto"], "smtp");
    assert_eq!(of_type(&events, "smtp").len(), 3);
}
