//! The tracker: what a worker does with each TCP segment.
//!
//! It finds or creates the segment's flow, decides client and server, keeps per-direction
//! counters and the TCP state, feeds the segment to that direction's reassembly, passes the
//! resulting bytes and gaps to the flow's application layer, and writes the `flow` event when
//! the flow ends: closed, timed out, evicted, reused or drained.

use std::net::IpAddr;

use crate::decode::{TcpFlags, TcpSegment};
use crate::flow::{Direction, FlowKey, FlowTable, Side};
use crate::output::{
    EndReason, Event, EventBody, EventSink, FlowIdentity, FlowRecord, FlowState, FlowStats, Origin,
    TcpSummary,
};
use crate::protocols::AppEvent;
use crate::protocols::{AppLayer, AppOutput};
use crate::reassembly::{Chunk, MemoryBudget, ReassemblyStats, Segment, Stream};
use crate::rules::{Assets, Fingerprints};
use crate::timestamp::Timestamp;

/// Inactivity timeouts, in seconds of packet time.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Only a SYN (or nothing two-way) seen.
    pub half_open: u64,
    pub established: u64,
    /// After FIN from both sides or a RST: how long late packets still join the flow.
    pub closed: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            half_open: 30,
            established: 300,
            closed: 10,
        }
    }
}

/// Caps and timeouts of one worker's tracker.
#[derive(Clone, Debug)]
pub struct TrackerConfig {
    pub max_flows: usize,
    pub timeouts: Timeouts,
    /// Out-of-order bytes one stream may hold ahead of a hole.
    pub stream_window: usize,
    /// Out-of-order bytes all streams of the worker may hold together.
    pub reassembly_memcap: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            max_flows: 1_000_000,
            timeouts: Timeouts::default(),
            stream_window: 256 * 1024,
            reassembly_memcap: 512 * 1024 * 1024,
        }
    }
}

/// Names that events carry but the tracker does not own.
pub struct EventContext<'a> {
    pub sensor: &'a str,
    /// One origin per input (each pcap file, or the one interface), indexed by packet.
    pub origins: &'a [Origin<'a>],
    /// Asset groups, named in every flow-bound event.
    pub assets: &'a Assets,
    /// Names the software of SMTP sessions.
    pub fingerprints: &'a Fingerprints,
}

struct Flow {
    id: FlowIdentity,
    client: Side,
    origin: usize,
    start: Timestamp,
    last: Timestamp,
    pkts: [u64; 2],
    bytes: [u64; 2],
    flags: [u8; 2],
    streams: [Stream; 2],
    syn: bool,
    syn_ack: bool,
    fin: [bool; 2],
    rst: bool,
    app: AppLayer,
}

impl Flow {
    fn direction(&self, from: Side) -> Direction {
        if from == self.client {
            Direction::Ctos
        } else {
            Direction::Stoc
        }
    }

    fn is_closed(&self) -> bool {
        self.rst || (self.fin[0] && self.fin[1])
    }

    /// Why a flow whose deadline passed ended: its close delay, or its inactivity timeout.
    fn expiry_reason(&self) -> EndReason {
        if self.is_closed() {
            EndReason::Closed
        } else {
            EndReason::Timeout
        }
    }

    /// Whether the server answered: seen directly, or implied by the client ACKing (which it
    /// can only do after a SYN-ACK) when the capture holds one direction.
    fn answered(&self) -> bool {
        self.syn_ack
            || self.pkts[Direction::Stoc.index()] > 0
            || self.flags[Direction::Ctos.index()] & TcpFlags::ACK != 0
    }

    fn timeout(&self, t: &Timeouts) -> u64 {
        if self.is_closed() {
            t.closed
        } else if self.syn_ack || (self.pkts[0] > 0 && self.pkts[1] > 0) || self.has_data() {
            t.established
        } else {
            t.half_open
        }
    }

    fn has_data(&self) -> bool {
        self.streams
            .iter()
            .any(|s| s.delivered() + s.gap_bytes() > 0)
    }

    fn state(&self, reason: EndReason) -> FlowState {
        // Both FINs make an orderly close even if a RST follows (as Zeek's SF).
        if self.fin[0] && self.fin[1] {
            FlowState::Closed
        } else if self.rst {
            if self.syn && !self.syn_ack && !self.has_data() {
                FlowState::Rejected
            } else {
                FlowState::Reset
            }
        } else if self.syn && !self.answered() {
            FlowState::NoAnswer
        } else if reason == EndReason::Timeout {
            FlowState::Timeout
        } else {
            FlowState::Established
        }
    }
}

/// Decides which endpoint is the client from a flow's first packet: the SYN's sender, the
/// SYN-ACK's receiver, or, picked up mid-stream, the side with the higher port (services listen
/// on low ports, clients on ephemeral ones); on equal ports, the sender.
fn client_side(seg: &TcpSegment<'_>, sender: Side) -> Side {
    let from_server = if seg.flags.syn() {
        seg.flags.ack()
    } else {
        seg.src_port < seg.dst_port
    };
    if from_server { sender.other() } else { sender }
}

/// One worker's flows.
pub struct Tracker {
    table: FlowTable<Flow>,
    config: TrackerConfig,
    memory: MemoryBudget,
    stats: FlowStats,
    reassembly: ReassemblyStats,
    app_out: Vec<AppOutput>,
    now: Timestamp,
}

impl Tracker {
    pub fn new(config: TrackerConfig) -> Self {
        Tracker {
            table: FlowTable::new(config.max_flows),
            memory: MemoryBudget::new(config.reassembly_memcap),
            config,
            stats: FlowStats::default(),
            reassembly: ReassemblyStats::default(),
            app_out: Vec::new(),
            now: Timestamp::default(),
        }
    }

    pub fn stats(&self) -> FlowStats {
        FlowStats {
            active: self.table.len() as u64,
            reassembly_memory: self.memory.used() as u64,
            ..self.stats.clone()
        }
    }

    pub fn reassembly_stats(&self) -> &ReassemblyStats {
        &self.reassembly
    }

    /// Handles one segment captured at `ts` from input `origin`.
    pub fn on_segment(
        &mut self,
        seg: &TcpSegment<'_>,
        ts: Timestamp,
        wire_len: u32,
        origin: usize,
        ctx: &EventContext<'_>,
        out: &mut impl EventSink,
    ) {
        self.now = self.now.max(ts);
        let (key, sender) = FlowKey::of(seg);

        // A flow past its deadline ends before this packet is looked at, whether or not the
        // timer sweep got to it yet: the result cannot depend on when sweeps run. A new SYN on
        // a closed connection starts another one.
        let ended = match self.table.get(&key) {
            Some(flow) if self.table.deadline(&key).is_some_and(|d| d <= ts) => {
                Some(flow.expiry_reason())
            }
            Some(flow) if seg.flags.syn() && !seg.flags.ack() && flow.is_closed() => {
                Some(EndReason::Reused)
            }
            _ => None,
        };
        if let Some(reason) = ended {
            self.end(&key, reason, ctx, out);
        }
        if self.table.get_mut(&key).is_none() {
            self.create(key, seg, sender, ts, origin, ctx, out);
        }

        let timeouts = self.config.timeouts;
        let Some(flow) = self.table.get_mut(&key) else {
            return;
        };
        let dir = flow.direction(sender);
        let d = dir.index();
        flow.last = flow.last.max(ts);
        flow.pkts[d] += 1;
        flow.bytes[d] += u64::from(wire_len);
        flow.flags[d] |= seg.flags.0;
        if seg.flags.syn() {
            match dir {
                Direction::Ctos if !seg.flags.ack() => flow.syn = true,
                Direction::Stoc if seg.flags.ack() => flow.syn_ack = true,
                _ => {}
            }
        }
        if seg.flags.fin() {
            flow.fin[d] = true;
        }

        let Flow {
            streams,
            app,
            id,
            rst,
            origin: flow_origin,
            ..
        } = &mut *flow;
        let [ctos, stoc] = streams;
        let (this, other) = match dir {
            Direction::Ctos => (ctos, stoc),
            Direction::Stoc => (stoc, ctos),
        };
        let app_out = &mut self.app_out;
        if seg.flags.rst() {
            *rst = true;
        } else {
            this.on_segment(
                Segment {
                    seq: seg.seq,
                    syn: seg.flags.syn(),
                    fin: seg.flags.fin(),
                    payload: seg.payload,
                    missing: seg.missing,
                },
                &self.memory,
                &mut self.reassembly,
                &mut |chunk| deliver_to(app, dir, chunk, ts, app_out),
            );
            if seg.flags.ack() {
                other.on_peer_ack(seg.ack, &mut self.reassembly, &mut |chunk| {
                    deliver_to(app, dir.reverse(), chunk, ts, app_out)
                });
            }
        }
        emit_app_events(app_out, id, *flow_origin, ctx, out);
        let deadline = ts.saturating_add_secs(flow.timeout(&timeouts));
        self.table.set_deadline(&key, deadline);
    }

    /// Moves packet time forward to `now`, ending every flow whose deadline passed.
    pub fn advance(&mut self, now: Timestamp, ctx: &EventContext<'_>, out: &mut impl EventSink) {
        self.now = self.now.max(now);
        let mut expired = Vec::new();
        self.table
            .expire(self.now, |key, flow| expired.push((key, flow)));
        for (_, flow) in expired {
            let reason = flow.expiry_reason();
            self.finish(flow, reason, ctx, out);
        }
    }

    /// Ends every flow: end of input or shutdown.
    pub fn drain(&mut self, ctx: &EventContext<'_>, out: &mut impl EventSink) {
        self.advance(self.now, ctx, out);
        let mut table = std::mem::replace(&mut self.table, FlowTable::new(1));
        table.drain(|_, flow| {
            let reason = if flow.is_closed() {
                EndReason::Closed
            } else {
                EndReason::Shutdown
            };
            self.finish(flow, reason, ctx, out);
        });
        self.table = table;
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        key: FlowKey,
        seg: &TcpSegment<'_>,
        sender: Side,
        ts: Timestamp,
        origin: usize,
        ctx: &EventContext<'_>,
        out: &mut impl EventSink,
    ) {
        let client = client_side(seg, sender);
        let endpoint = |side: Side| -> (IpAddr, u16) { key.endpoint(side) };
        let flow = Flow {
            id: FlowIdentity::new(
                &key,
                ts,
                endpoint(client),
                endpoint(client.other()),
                ctx.assets,
            ),
            client,
            origin,
            start: ts,
            last: ts,
            pkts: [0; 2],
            bytes: [0; 2],
            flags: [0; 2],
            streams: [
                Stream::new(self.config.stream_window),
                Stream::new(self.config.stream_window),
            ],
            syn: false,
            syn_ack: false,
            fin: [false; 2],
            rst: false,
            app: AppLayer::default(),
        };
        self.stats.total += 1;
        let deadline = ts.saturating_add_secs(self.config.timeouts.half_open);
        if let Some((_, evicted)) = self.table.insert(key, flow, deadline) {
            self.finish(evicted, EndReason::Evicted, ctx, out);
        }
    }

    fn end(
        &mut self,
        key: &FlowKey,
        reason: EndReason,
        ctx: &EventContext<'_>,
        out: &mut impl EventSink,
    ) {
        if let Some(flow) = self.table.remove(key) {
            self.finish(flow, reason, ctx, out);
        }
    }

    /// Flushes both streams into the application layer, then writes its last events and the
    /// `flow` event.
    fn finish(
        &mut self,
        mut flow: Flow,
        reason: EndReason,
        ctx: &EventContext<'_>,
        out: &mut impl EventSink,
    ) {
        match reason {
            EndReason::Closed => self.stats.closed += 1,
            EndReason::Timeout => self.stats.timed_out += 1,
            EndReason::Evicted => self.stats.evicted += 1,
            EndReason::Reused => self.stats.reused += 1,
            EndReason::Shutdown => self.stats.shutdown += 1,
        }
        let ts = flow.last;
        for dir in [Direction::Ctos, Direction::Stoc] {
            let app = &mut flow.app;
            let app_out = &mut self.app_out;
            flow.streams[dir.index()].flush(&mut self.reassembly, &mut |chunk| {
                deliver_to(app, dir, chunk, ts, app_out)
            });
        }
        let app_proto = flow.app.app_proto();
        flow.app.finish(ts, &mut self.app_out);
        emit_app_events(&mut self.app_out, &flow.id, flow.origin, ctx, out);

        let [ctos, stoc] = &flow.streams;
        let record = FlowRecord {
            pkts_toserver: flow.pkts[0],
            pkts_toclient: flow.pkts[1],
            bytes_toserver: flow.bytes[0],
            bytes_toclient: flow.bytes[1],
            data_bytes_toserver: ctos.delivered(),
            data_bytes_toclient: stoc.delivered(),
            missed_bytes: ctos.gap_bytes() + stoc.gap_bytes(),
            start: flow.start,
            end: flow.last,
            age: flow.last.secs().saturating_sub(flow.start.secs()),
            duration: flow.last.secs_since(flow.start),
            state: flow.state(reason),
            reason,
        };
        let tcp = TcpSummary::new(flow.flags[0], flow.flags[1]);
        out.emit(&Event {
            timestamp: flow.start,
            sensor: ctx.sensor,
            origin: origin(ctx, flow.origin),
            flow: Some(&flow.id),
            body: EventBody::Flow {
                record: &record,
                tcp: &tcp,
                app_proto,
            },
        });
    }
}

fn origin<'a>(ctx: &EventContext<'a>, index: usize) -> Origin<'a> {
    ctx.origins
        .get(index)
        .or(ctx.origins.first())
        .copied()
        .unwrap_or(Origin::PcapFile(""))
}

fn deliver_to(
    app: &mut AppLayer,
    dir: Direction,
    chunk: Chunk<'_>,
    ts: Timestamp,
    out: &mut Vec<AppOutput>,
) {
    if !app.wants_data() {
        return;
    }
    match chunk {
        Chunk::Data(data) => app.on_data(dir, data, ts, out),
        Chunk::Gap(len) => app.on_gap(dir, len),
    }
}

fn emit_app_events(
    pending: &mut Vec<AppOutput>,
    id: &FlowIdentity,
    origin_index: usize,
    ctx: &EventContext<'_>,
    out: &mut impl EventSink,
) {
    for AppOutput {
        ts,
        mut event,
        tunnel,
    } in pending.drain(..)
    {
        if let AppEvent::Smtp(record) = &mut event {
            // The mail server is the tunnel's destination for a session through a proxy.
            let (port, internal) = match &tunnel {
                Some(t) => (
                    t.dest_port,
                    t.dest_host
                        .parse()
                        .is_ok_and(|ip| ctx.assets.is_internal(ip)),
                ),
                None => (id.dest_port, ctx.assets.is_internal(id.dest_ip)),
            };
            ctx.fingerprints.identify_smtp(record, port, internal);
        }
        out.emit(&Event {
            timestamp: ts,
            sensor: ctx.sensor,
            origin: origin(ctx, origin_index),
            flow: Some(id),
            body: EventBody::App {
                event: &event,
                tunnel: tunnel.as_ref(),
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{DecodeStats, Decoded, LinkType, decode};
    use crate::flow::Direction::{Ctos, Stoc};
    use crate::pcapgen::{Fault, Frame, Session, merge};
    use serde_json::Value;

    #[derive(Default)]
    struct Collect(Vec<Value>);

    impl EventSink for Collect {
        fn emit(&mut self, event: &Event<'_>) {
            self.0.push(serde_json::to_value(event).unwrap());
        }
    }

    fn run(frames: &[Frame], config: TrackerConfig) -> Vec<Value> {
        let origins = [Origin::PcapFile("test.pcap")];
        let assets = Assets::default();
        let fingerprints = Fingerprints::default();
        let ctx = EventContext {
            sensor: "unit",
            origins: &origins,
            assets: &assets,
            fingerprints: &fingerprints,
        };
        let mut tracker = Tracker::new(config);
        let mut out = Collect::default();
        let mut stats = DecodeStats::default();
        for frame in frames {
            if let Decoded::Tcp(seg) = decode(LinkType::Ethernet, &frame.data, &mut stats) {
                tracker.on_segment(&seg, frame.ts, frame.wire_len, 0, &ctx, &mut out);
            }
        }
        tracker.drain(&ctx, &mut out);
        out.0
    }

    fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
        events.iter().filter(|e| e["event_type"] == t).collect()
    }

    #[test]
    fn parser_sees_both_directions_in_order_despite_reordering() {
        let mut s = Session::new("192.0.2.1:40000", "198.51.100.1:2525").mss(4);
        s.handshake()
            .send_with(
                Ctos,
                b"PING one two",
                &[Fault::Reorder(0), Fault::Duplicate(1)],
            )
            .send(Stoc, b"PONG")
            .send(Ctos, b"!")
            .close();
        let events = run(s.frames(), TrackerConfig::default());
        let test = of_type(&events, "test");
        assert_eq!(test.len(), 1);
        assert_eq!(test[0]["test"]["transcript"], ">PING one two<PONG>!");
        let flow = of_type(&events, "flow");
        assert_eq!(flow[0]["app_proto"], "test");
        assert_eq!(flow[0]["src_port"], 40000);
        assert_eq!(flow[0]["flow"]["state"], "closed");
        assert_eq!(flow[0]["flow"]["data_bytes_toserver"], 13);
        // App events carry the same flow identity as the flow event.
        assert_eq!(test[0]["flow_id"], flow[0]["flow_id"]);
        assert_eq!(test[0]["community_id"], flow[0]["community_id"]);
    }

    #[test]
    fn parser_gets_gap_for_lost_segment() {
        let mut s = Session::new("192.0.2.1:40000", "198.51.100.1:2525").mss(4);
        s.handshake()
            .send_with(Ctos, b"PINGaaaabbbbcccc", &[Fault::Drop(2)])
            .close();
        let events = run(s.frames(), TrackerConfig::default());
        assert_eq!(
            of_type(&events, "test")[0]["test"]["transcript"],
            ">PINGaaaa[gap 4]cccc"
        );
        assert_eq!(of_type(&events, "flow")[0]["flow"]["missed_bytes"], 4);
    }

    #[test]
    fn non_matching_flow_has_no_app_proto() {
        let mut s = Session::new("192.0.2.1:40000", "198.51.100.1:25");
        s.handshake().send(Ctos, b"GET / HTTP/1.1\r\n\r\n").close();
        let events = run(s.frames(), TrackerConfig::default());
        assert!(of_type(&events, "test").is_empty());
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
            .starting_at(crate::pcapgen::EPOCH.saturating_add_secs(1000));
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
                .starting_at(crate::pcapgen::EPOCH.saturating_add_secs(u64::from(i)));
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
            .starting_at(crate::pcapgen::EPOCH.saturating_add_secs(2));
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
}
