//! The tracker: what a worker does with each TCP segment.
//!
//! It runs the stages in the order a packet travels: it finds or creates the segment's flow
//! (flow), feeds the segment to that direction's stream (reassembly), passes the resulting bytes
//! and gaps to the flow's application layer (protocols), lets the rules add to what was found
//! (enrich), and writes the events (output): the parsers' as they come, the `flow` event when the
//! flow ends, closed, timed out, evicted, reused or drained.
//!
//! It keeps the worker within its memory budget: every flow is accounted (table entry, streams,
//! parser state, measured again as its data grows), out-of-order buffers are charged by
//! reassembly, and past the budget the flows due first are evicted. Past 80% of it the tracker
//! is in emergency mode until it is back under 70%: every flow's deadline is brought forward to
//! the emergency timeouts, so idle and half-open flows (a SYN flood's) go first and the busy
//! sessions stay.

use crate::decode::{TcpFlags, TcpSegment};
use crate::direction::Direction;
use crate::enrich::Enricher;
use crate::flow::{
    Connection, EndReason, FlowKey, FlowStats, FlowTable, KeyHash, KeyHasher, Side, Timeouts, Visit,
};
use crate::memory::allocation;
use crate::output::{Event, EventBody, EventSink, Origin};
use crate::protocols::{AppLayer, AppOutput, StreamOrigin};
use crate::reassembly::{
    Chunk, MemoryBudget, ReassemblyStats, Segment, Stream, StreamStart, piece_hash,
};
use crate::timestamp::Timestamp;

/// Caps and timeouts of one worker's tracker.
#[derive(Clone, Debug)]
pub struct TrackerConfig {
    pub max_flows: usize,
    pub timeouts: Timeouts,
    /// The timeouts while memory is short (see the module documentation).
    pub emergency_timeouts: Timeouts,
    /// Out-of-order bytes one stream may hold ahead of a hole.
    pub stream_window: usize,
    /// Bytes of flow state, streams, parsers and out-of-order buffers the worker may hold.
    pub memcap: usize,
    /// What flow keys are hashed with: the capture thread's, whose hashes come with the
    /// segments (see [`Tracker::on_hashed_segment`]).
    pub key_hasher: KeyHasher,
}

/// The default memory budget of a run (all workers), and the range it may be set in, in MiB.
pub const DEFAULT_MEMCAP_MIB: usize = 1024;
pub const MIN_MEMCAP_MIB: u32 = 16;
pub const MAX_MEMCAP_MIB: u32 = 1 << 20;

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            max_flows: 1_000_000,
            timeouts: Timeouts::default(),
            emergency_timeouts: Timeouts {
                half_open: 5,
                established: 60,
                closed: 1,
            },
            stream_window: 256 * 1024,
            memcap: DEFAULT_MEMCAP_MIB << 20,
            key_hasher: KeyHasher::default(),
        }
    }
}

/// What a flow costs the budget before its streams and parsers.
const FLOW_BYTES: usize = FlowTable::<Flow>::BYTES_PER_FLOW;

/// Stream bytes after which a flow's parser memory is measured again.
const REMEASURE_BYTES: u64 = 2048;

/// What is hashed of a segment before it reaches its worker: the capture thread hashes it
/// while its bytes are in that core's cache, and shards by the key's hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHashes {
    /// Of its flow key, by the tracker's `key_hasher`.
    pub key: KeyHash,
    /// [`piece_hash`] of its payload, which its stream remembers delivered bytes by.
    pub payload: u64,
}

impl SegmentHashes {
    pub fn of(seg: &TcpSegment<'_>, key_hasher: &KeyHasher) -> Self {
        Self {
            key: key_hasher.hash(&FlowKey::of(seg).0),
            payload: piece_hash(seg.payload),
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
    /// What this part was last accounted at, and the stream bytes it had then.
    charged: usize,
    measured_at: u64,
}

impl FlowData {
    fn heap_bytes(&self) -> usize {
        allocation(size_of::<FlowData>())
            + self.streams.iter().map(Stream::heap_bytes).sum::<usize>()
            + self.app.heap_bytes()
    }

    fn stream_bytes(&self) -> u64 {
        self.streams
            .iter()
            .map(|s| s.delivered() + s.gap_bytes())
            .sum()
    }

    /// Accounts what the streams and parsers hold now, if they grew by enough to matter (or
    /// `always`); the first time counts the whole part.
    fn measure(&mut self, memory: &MemoryBudget, always: bool) {
        let seen = self.stream_bytes();
        if !always && self.charged > 0 && seen < self.measured_at + REMEASURE_BYTES {
            return;
        }
        let now = self.heap_bytes();
        memory.add(now);
        memory.sub(self.charged);
        self.charged = now;
        self.measured_at = seen;
    }
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
                charged: 0,
                measured_at: 0,
            })
        })
    }

    /// Everything this flow is accounted at.
    fn charged(&self) -> usize {
        FLOW_BYTES + self.data.as_ref().map_or(0, |d| d.charged)
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
    emergency: bool,
}

impl Tracker {
    pub fn new(config: TrackerConfig) -> Self {
        Tracker {
            table: FlowTable::new(config.max_flows, config.key_hasher.clone()),
            memory: MemoryBudget::new(config.memcap),
            config,
            stats: FlowStats::default(),
            reassembly: ReassemblyStats::default(),
            app_out: Vec::new(),
            now: Timestamp::default(),
            emergency: false,
        }
    }

    pub fn stats(&self) -> FlowStats {
        FlowStats {
            active: self.table.len() as u64,
            reassembly_memory: self.memory.held() as u64,
            memory: self.memory.used() as u64,
            memcap: self.memory.cap() as u64,
            emergency: u64::from(self.emergency),
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
        let hashes = SegmentHashes::of(seg, &self.config.key_hasher);
        self.on_hashed_segment(seg, hashes, ts, wire_len, origin, ctx, out);
    }

    /// [`Tracker::on_segment`] for a segment hashed already ([`SegmentHashes::of`], with the
    /// config's `key_hasher`).
    #[allow(clippy::too_many_arguments)]
    pub fn on_hashed_segment(
        &mut self,
        seg: &TcpSegment<'_>,
        hashes: SegmentHashes,
        ts: Timestamp,
        wire_len: u32,
        origin: usize,
        ctx: &EventContext<'_>,
        out: &mut impl EventSink,
    ) {
        self.now = self.now.max(ts);
        let (key, sender) = FlowKey::of(seg);
        let hash = hashes.key;
        debug_assert_eq!(hash, self.table.hash(&key), "hashed by another hasher");

        // A flow past its deadline ends before this packet is looked at, whether or not the
        // timer sweep got to it yet: the result cannot depend on when sweeps run. A new SYN on
        // a closed connection starts another one. Nearly every packet finds its flow live,
        // and then it is looked up once.
        let timeouts = self.timeouts();
        let window = self.config.stream_window;
        let new_syn = seg.flags.syn() && !seg.flags.ack();
        let process = |flow: &mut Flow,
                       memory: &MemoryBudget,
                       reassembly: &mut ReassemblyStats,
                       app_out: &mut Vec<AppOutput>,
                       out: &mut _| {
            let was_closed = flow.conn.is_closed();
            // A RST or FIN far outside the sender's stream is injected (or stale): counted,
            // and it does not end the connection.
            // Copied only then: most segments carry neither.
            let dir = flow.conn.direction(sender);
            let masked;
            let seg = if seg.flags.0 & (TcpFlags::RST | TcpFlags::FIN) != 0 {
                let mut flags = seg.flags;
                if flags.rst() && !flow.in_window(dir, seg.seq, window) {
                    reassembly.rst_out_of_window += 1;
                    flags.0 &= !TcpFlags::RST;
                }
                if flags.fin() && !flow.in_window(dir, seg.seq, window) {
                    reassembly.fin_out_of_window += 1;
                    flags.0 &= !TcpFlags::FIN;
                }
                masked = TcpSegment { flags, ..*seg };
                &masked
            } else {
                seg
            };
            flow.conn.observe(seg, sender, ts, wire_len);
            let carries_data = !seg.payload.is_empty() || seg.missing > 0 || seg.flags.fin();
            if seg.flags.rst() {
                // Ends the connection; the streams take nothing from it.
            } else if carries_data || flow.data.is_some() {
                let FlowData { streams, app, .. } = flow.data(window);
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
                        payload_hash: Some(hashes.payload),
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
            let closed_now = !was_closed && flow.conn.is_closed();
            if let Some(data) = &mut flow.data {
                if closed_now {
                    if data.streams.iter().all(Stream::is_finished) {
                        // Every byte before both FINs was delivered, so nothing a late packet
                        // brings can reach the parser: it reports now and goes, and only the
                        // flow waits out the close delay (a mail relay's sessions close by the
                        // thousand a second).
                        data.app.finish(flow.conn.last, app_out);
                        emit_app_events(app_out, &flow.conn, ctx, out);
                    } else {
                        // Its record waits out the close delay; what only parsing needed can
                        // go.
                        data.app.on_close();
                    }
                    data.streams.iter_mut().for_each(Stream::on_close);
                }
                data.measure(memory, closed_now);
            }
            ts.saturating_add_secs(flow.conn.timeout(&timeouts, flow.has_data()))
        };
        let mut ended = None;
        let (memory, reassembly, app_out) = (&self.memory, &mut self.reassembly, &mut self.app_out);
        let found = self.table.visit(&key, hash, |flow, deadline| {
            if deadline <= ts {
                ended = Some(flow.conn.expiry_reason());
            } else if new_syn && flow.conn.is_closed() {
                ended = Some(EndReason::Reused);
            }
            match ended {
                Some(_) => None,
                None => Some(process(flow, memory, reassembly, app_out, out)),
            }
        });
        if found == Visit::Done {
            self.relieve(ctx, out);
            return;
        }
        if let Some(reason) = ended {
            self.end(&key, reason, ts, ctx, out);
        }
        self.create(key, hash, seg, sender, ts, origin, ctx, out);
        let (memory, reassembly, app_out) = (&self.memory, &mut self.reassembly, &mut self.app_out);
        self.table.visit(&key, hash, |flow, _| {
            Some(process(flow, memory, reassembly, app_out, out))
        });
        self.relieve(ctx, out);
    }

    /// Evicts the flows due first while the budget is spent (a few per packet, so one packet
    /// never stalls the worker), and enters or leaves emergency mode.
    #[inline]
    fn relieve(&mut self, ctx: &EventContext<'_>, out: &mut impl EventSink) {
        if !self.emergency && self.memory.used() < self.memory.cap() / 10 * 8 {
            return;
        }
        self.relieve_under_pressure(ctx, out);
    }

    #[cold]
    fn relieve_under_pressure(&mut self, ctx: &EventContext<'_>, out: &mut impl EventSink) {
        self.make_room(0, ctx, out);
        let (used, cap) = (self.memory.used(), self.memory.cap());
        if !self.emergency && used >= cap / 10 * 8 {
            self.emergency = true;
            self.stats.emergencies += 1;
            let t = self.config.emergency_timeouts;
            self.table.tighten(|flow| {
                flow.conn
                    .last
                    .saturating_add_secs(flow.conn.timeout(&t, flow.has_data()))
            });
        } else if self.emergency && used < cap / 10 * 7 {
            self.emergency = false;
        }
    }

    /// The timeouts in force: the emergency ones while memory is short.
    fn timeouts(&self) -> Timeouts {
        if self.emergency {
            self.config.emergency_timeouts
        } else {
            self.config.timeouts
        }
    }

    /// Evicts the flows due first until `extra` more bytes fit in the budget, at most a few
    /// per call (so one packet never stalls the worker).
    fn make_room(&mut self, extra: usize, ctx: &EventContext<'_>, out: &mut impl EventSink) {
        for _ in 0..8 {
            if self.memory.used() + extra <= self.memory.cap() {
                break;
            }
            let Some((_, flow)) = self.table.evict_one() else {
                break;
            };
            self.stats.evicted_memcap += 1;
            self.finish(flow, EndReason::Evicted, ctx, out);
        }
    }

    /// Counts a flow that ends at `now` by its deadline, if only the emergency timeouts ended
    /// it.
    fn count_expiry(&mut self, flow: &Flow, now: Timestamp) {
        let normal = flow.conn.timeout(&self.config.timeouts, flow.has_data());
        if flow.conn.last.saturating_add_secs(normal) > now {
            self.stats.emergency_timeouts += 1;
        }
    }

    /// Moves packet time forward to `now`, ending every flow whose deadline passed.
    pub fn advance(&mut self, now: Timestamp, ctx: &EventContext<'_>, out: &mut impl EventSink) {
        self.now = self.now.max(now);
        let mut expired = Vec::new();
        self.table
            .expire(self.now, |key, flow| expired.push((key, flow)));
        for (_, flow) in expired {
            let reason = flow.conn.expiry_reason();
            self.count_expiry(&flow, self.now);
            self.finish(flow, reason, ctx, out);
        }
        self.relieve(ctx, out);
    }

    /// Ends every flow: end of input or shutdown.
    pub fn drain(&mut self, ctx: &EventContext<'_>, out: &mut impl EventSink) {
        self.advance(self.now, ctx, out);
        let mut table = std::mem::replace(&mut self.table, FlowTable::new(1, KeyHasher::default()));
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
        hash: KeyHash,
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
        self.make_room(FLOW_BYTES, ctx, out);
        let deadline = ts.saturating_add_secs(self.timeouts().half_open);
        self.memory.add(FLOW_BYTES);
        if let Some((_, evicted)) = self.table.insert(key, hash, flow, deadline) {
            self.stats.evicted += 1;
            self.finish(evicted, EndReason::Evicted, ctx, out);
        }
    }

    fn end(
        &mut self,
        key: &FlowKey,
        reason: EndReason,
        now: Timestamp,
        ctx: &EventContext<'_>,
        out: &mut impl EventSink,
    ) {
        if let Some(flow) = self.table.remove(key) {
            if reason != EndReason::Reused {
                self.count_expiry(&flow, now);
            }
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
            // Counted by why: the flow cap, or the memory budget.
            EndReason::Evicted => {}
            EndReason::Reused => self.stats.reused += 1,
            EndReason::Shutdown => self.stats.shutdown += 1,
        }
        self.memory.sub(flow.charged());
        let ts = flow.conn.last;
        let (mut data_bytes, mut missed_bytes, mut conflict, mut app_proto) =
            ([0; 2], 0, false, None);
        if let Some(data) = &mut flow.data {
            let FlowData { streams, app, .. } = &mut **data;
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
    // Most segments give no event; an empty drain still costs its setup and drop.
    if pending.is_empty() {
        return;
    }
    for mut output in pending.drain(..) {
        let reversed;
        let id = if output.reverse {
            reversed = conn.id.reversed();
            &reversed
        } else {
            &conn.id
        };
        ctx.enrich.app(&mut output, id);
        out.emit(&Event {
            timestamp: output.ts,
            sensor: ctx.sensor,
            origin: origin(ctx, conn.origin as usize),
            flow: Some(id),
            body: EventBody::App {
                event: &output.event,
                tunnel: output.tunnel.as_ref(),
            },
        });
    }
}
