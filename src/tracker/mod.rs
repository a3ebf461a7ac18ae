//! The tracker: what a worker does with each TCP segment.
//!
//! It runs the stages in the order a packet travels: it finds or creates the segment's flow
//! (flow), feeds the segment to that direction's stream (reassembly), passes the resulting bytes
//! and gaps to the flow's application layer (protocols), lets the rules add to what was found
//! (enrich), and writes the events (output): the parsers' as they come, the `flow` event when the
//! flow ends, closed, timed out, evicted, reused or drained.

use crate::decode::{TcpFlags, TcpSegment};
use crate::direction::Direction;
use crate::enrich::Enricher;
use crate::flow::{Connection, EndReason, FlowKey, FlowStats, FlowTable, Side, Timeouts};
use crate::output::{Event, EventBody, EventSink, Origin};
use crate::protocols::{AppLayer, AppOutput, StreamOrigin};
use crate::reassembly::{Chunk, MemoryBudget, ReassemblyStats, Segment, Stream, StreamStart};
use crate::timestamp::Timestamp;

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

/// Names that events carry but the tracker does not own, and the rules it applies.
pub struct EventContext<'a> {
    pub sensor: &'a str,
    /// One origin per input (each pcap file, or the one interface), indexed by packet.
    pub origins: &'a [Origin<'a>],
    pub enrich: Enricher<'a>,
}

/// A flow as one worker holds it: the connection, and once a byte or FIN came, its two
/// streams and its application layer. Until then only where each stream will start: a flow
/// without data (a SYN flood's, a port scan's) costs no more than that.
struct Flow {
    conn: Connection,
    starts: [StreamStart; 2],
    data: Option<Box<FlowData>>,
}

struct FlowData {
    streams: [Stream; 2],
    app: AppLayer,
}

impl Flow {
    fn has_data(&self) -> bool {
        self.data.as_ref().is_some_and(|data| {
            data.streams
                .iter()
                .any(|s| s.delivered() + s.gap_bytes() > 0)
        })
    }

    /// Whether `seq` is in the window of what `dir` sent (see [`Stream::in_window`]).
    fn in_window(&self, dir: Direction, seq: u32, window: usize) -> bool {
        match &self.data {
            Some(data) => data.streams[dir.index()].in_window(seq),
            None => self.starts[dir.index()].in_window(seq, window),
        }
    }

    /// The streams and application layer, made on first use from where the streams start.
    fn data(&mut self, window: usize) -> &mut FlowData {
        let (starts, conn) = (self.starts, &self.conn);
        self.data.get_or_insert_with(|| {
            Box::new(FlowData {
                streams: starts.map(|start| Stream::starting_at(window, start)),
                app: AppLayer::new(StreamOrigin {
                    server_port: conn.id.dest_port,
                    ..StreamOrigin::default()
                }),
            })
        })
    }
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
        let ended = match self.table.get_with_deadline(&key) {
            Some((flow, deadline)) if deadline <= ts => Some(flow.conn.expiry_reason()),
            Some((flow, _)) if seg.flags.syn() && !seg.flags.ack() && flow.conn.is_closed() => {
                Some(EndReason::Reused)
            }
            Some(_) => None,
            None => {
                self.create(key, seg, sender, ts, origin, ctx, out);
                None
            }
        };
        if let Some(reason) = ended {
            self.end(&key, reason, ctx, out);
            self.create(key, seg, sender, ts, origin, ctx, out);
        }

        let timeouts = self.config.timeouts;
        let window = self.config.stream_window;
        let (memory, reassembly, app_out) = (&self.memory, &mut self.reassembly, &mut self.app_out);
        self.table.update(&key, |flow| {
            let was_closed = flow.conn.is_closed();
            // A RST or FIN far outside the sender's stream is injected (or stale): counted,
            // and it does not end the connection.
            let mut seg = *seg;
            let dir = flow.conn.direction(sender);
            if seg.flags.rst() && !flow.in_window(dir, seg.seq, window) {
                reassembly.rst_out_of_window += 1;
                seg.flags.0 &= !TcpFlags::RST;
            }
            if seg.flags.fin() && !flow.in_window(dir, seg.seq, window) {
                reassembly.fin_out_of_window += 1;
                seg.flags.0 &= !TcpFlags::FIN;
            }
            let seg = &seg;
            flow.conn.observe(seg, sender, ts, wire_len);
            let carries_data = !seg.payload.is_empty() || seg.missing > 0 || seg.flags.fin();
            if seg.flags.rst() {
                // Ends the connection; the streams take nothing from it.
            } else if carries_data || flow.data.is_some() {
                let FlowData { streams, app } = flow.data(window);
                let [ctos, stoc] = streams;
                let (this, other) = match dir {
                    Direction::Ctos => (ctos, stoc),
                    Direction::Stoc => (stoc, ctos),
                };
                this.on_segment(
                    Segment {
                        seq: seg.seq,
                        syn: seg.flags.syn(),
                        fin: seg.flags.fin(),
                        payload: seg.payload,
                        missing: seg.missing,
                    },
                    memory,
                    reassembly,
                    &mut |chunk| deliver_to(app, dir, chunk, ts, app_out),
                );
                if seg.flags.ack() {
                    other.on_peer_ack(seg.ack, reassembly, &mut |chunk| {
                        deliver_to(app, dir.reverse(), chunk, ts, app_out)
                    });
                }
            } else {
                flow.starts[dir.index()].on_empty_segment(seg.seq, seg.flags.syn());
            }
            emit_app_events(app_out, &flow.conn, ctx, out);
            if !was_closed
                && flow.conn.is_closed()
                && let Some(data) = &mut flow.data
            {
                // Its record waits out the close delay; what only parsing needed can go now.
                data.app.on_close();
            }
            ts.saturating_add_secs(flow.conn.timeout(&timeouts, flow.has_data()))
        });
    }

    /// Moves packet time forward to `now`, ending every flow whose deadline passed.
    pub fn advance(&mut self, now: Timestamp, ctx: &EventContext<'_>, out: &mut impl EventSink) {
        self.now = self.now.max(now);
        let mut expired = Vec::new();
        self.table
            .expire(self.now, |key, flow| expired.push((key, flow)));
        for (_, flow) in expired {
            let reason = flow.conn.expiry_reason();
            self.finish(flow, reason, ctx, out);
        }
    }

    /// Ends every flow: end of input or shutdown.
    pub fn drain(&mut self, ctx: &EventContext<'_>, out: &mut impl EventSink) {
        self.advance(self.now, ctx, out);
        let mut table = std::mem::replace(&mut self.table, FlowTable::new(1));
        table.drain(|_, flow| {
            let reason = if flow.conn.is_closed() {
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
        let mut conn = Connection::new(&key, seg, sender, ts, origin);
        ctx.enrich.flow(&mut conn.id);
        let flow = Flow {
            conn,
            starts: Default::default(),
            data: None,
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
        let ts = flow.conn.last;
        let (mut data_bytes, mut missed_bytes, mut conflict, mut app_proto) = ([0; 2], 0, false, None);
        if let Some(data) = &mut flow.data {
            let FlowData { streams, app } = &mut **data;
            for dir in [Direction::Ctos, Direction::Stoc] {
                let app_out = &mut self.app_out;
                streams[dir.index()].flush(&mut self.reassembly, &mut |chunk| {
                    deliver_to(app, dir, chunk, ts, app_out)
                });
            }
            app_proto = app.app_proto();
            app.finish(ts, &mut self.app_out);
            emit_app_events(&mut self.app_out, &flow.conn, ctx, out);
            let [ctos, stoc] = &*streams;
            data_bytes = [ctos.delivered(), stoc.delivered()];
            missed_bytes = ctos.gap_bytes() + stoc.gap_bytes();
            conflict = ctos.conflicted() || stoc.conflicted();
        }
        let record = flow.conn.record(reason, data_bytes, missed_bytes, conflict);
        let tcp = flow.conn.tcp_summary();
        out.emit(&Event {
            timestamp: flow.conn.start,
            sensor: ctx.sensor,
            origin: origin(ctx, flow.conn.origin as usize),
            flow: Some(&flow.conn.id),
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

/// Enriches and writes what the application layer of `conn` reported.
fn emit_app_events(
    pending: &mut Vec<AppOutput>,
    conn: &Connection,
    ctx: &EventContext<'_>,
    out: &mut impl EventSink,
) {
    for mut output in pending.drain(..) {
        ctx.enrich.app(&mut output, &conn.id);
        out.emit(&Event {
            timestamp: output.ts,
            sensor: ctx.sensor,
            origin: origin(ctx, conn.origin as usize),
            flow: Some(&conn.id),
            body: EventBody::App {
                event: &output.event,
                tunnel: output.tunnel.as_ref(),
            },
        });
    }
}
