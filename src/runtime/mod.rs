//! Runtime: the threads and channels that carry packets from capture to output.
//!
//! ```text
//! capture (this thread): read, decode, shard by flow hash
//!     --[batches of TCP segments, bounded, buffers recycled]--> worker 1..N: flows, reassembly,
//!        application layer, events serialised to NDJSON
//!     --[bytes + observations]--> output thread: writes lines, runs the analysis (alerts,
//!        asset summaries), assembles `stats` events
//! ```
//!
//! Packet time drives everything: the capture thread sends each worker a tick at every second
//! of packet time, in band with the packets. When every worker has passed a tick, the output
//! thread runs the analysis on what they sent before it, and at stats interval boundaries
//! writes a `stats` event that counts exactly the packets before its timestamp. When no batch
//! buffer is free the capture thread waits, in replay and live alike: live, the kernel's ring
//! holds what arrives meanwhile, and only what overflows it is lost (`capture.kernel_drops`).
//! The one exception is a stop: a packet that finds no free buffer within 200 ms then (with
//! the default kernel buffer, see `live_flush_every`) is dropped and counted in
//! `capture.queue_drops`.

mod clock;
mod correlate;
mod privileges;
mod progress;
mod publish;

pub use correlate::{CorrelateConfig, CorrelateSummary, correlate};
pub use publish::PublishConfig;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use self::clock::TickClock;
use self::progress::Progress;
use self::publish::Publisher;

use crate::analysis::{Analyzer, Found, Observation};
use crate::capture::{
    self, CaptureError, CaptureStats, KernelStats, LinkType, LiveOptions, PacketHandler,
};
use crate::decode::{DecodeStats, Decoded, Defragmenter, TcpSegment, decode, reassembled_tcp};
use crate::enrich::Enricher;
use crate::flow::{FlowStats, KeyHasher};
use crate::output::{
    Event, EventBody, EventCounts, EventSink, EventWriter, Lines, Origin, OutputError, OutputSpec,
    OutputSummary, Outputs, StatsRecord,
};
use crate::reassembly::ReassemblyStats;
use crate::rules::{ReloadStats, Rules};
use crate::text::note;
use crate::timestamp::Timestamp;
use crate::tracker::{EventContext, SegmentHashes, Tracker, TrackerConfig};

/// Where packets come from.
pub enum Input {
    Files(Vec<PathBuf>),
    Live(LiveOptions),
}

/// Everything a run needs, from the command line.
pub struct RunConfig {
    pub input: Input,
    pub bpf: Option<String>,
    pub workers: usize,
    pub sensor: String,
    /// Seconds of packet time between `stats` events; 0 for only the final one.
    pub stats_interval: u64,
    /// Where events go; standard output when empty.
    pub outputs: Vec<OutputSpec>,
    /// Caps for the whole sensor; each worker gets its share.
    pub tracker: TrackerConfig,
    pub rules: Arc<Rules>,
    /// Live: the user to become once the interface is open.
    pub user: Option<String>,
    /// Replay: a progress bar on stderr when it is a terminal.
    pub progress: bool,
    /// `--publish`: observations (and events) to a Redis stream for `spamtap correlate`.
    pub publish: Option<PublishConfig>,
    /// Off with `--no-local-alerts`: alerts come from the correlator only.
    pub local_alerts: bool,
}

/// How the process steers a run from outside: signals, by way of the binary.
pub struct Control {
    /// SIGINT/SIGTERM: stop, and drain every open flow.
    pub stop: Arc<AtomicBool>,
    /// SIGHUP: bumped to have every output reopen its file.
    pub reopen: Arc<AtomicU64>,
    /// SIGUSR2: rules reloaded from the rules directory, or why they could not be; applied at
    /// the next tick, in band with the packets.
    pub reloads: Receiver<Result<Arc<Rules>, String>>,
}

/// What a run did, for the summary on stderr.
pub struct RunSummary {
    pub stats: StatsRecord,
    pub outputs: Vec<OutputSummary>,
    pub elapsed: Duration,
}

#[derive(Debug)]
pub enum RunError {
    Capture(CaptureError),
    Output(OutputError),
    /// `spamtap correlate`: the stream it reads.
    Source {
        name: String,
        error: String,
    },
    Privileges(String),
    Internal(&'static str),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Capture(e) => e.fmt(f),
            RunError::Output(e) => e.fmt(f),
            RunError::Source { name, error } => {
                write!(f, "cannot read the sensors' entries from {name}: {error}")
            }
            RunError::Privileges(why) => f.write_str(why),
            RunError::Internal(what) => write!(f, "internal error: {what}"),
        }
    }
}

impl std::error::Error for RunError {}

impl From<CaptureError> for RunError {
    fn from(e: CaptureError) -> Self {
        RunError::Capture(e)
    }
}

/// Serialised events a worker holds before handing them to the output thread.
const EVENT_BYTES: usize = 1 << 20;

/// A worker's event sink: serialises, takes the observations the analysis needs, and hands
/// both on whenever the bytes pass [`EVENT_BYTES`], so a burst (a drain of a million flows)
/// streams instead of piling up.
struct WorkerSink<'a> {
    writer: EventWriter,
    observations: Vec<Observation>,
    /// The id of the next tick this worker will pass: what it sends now belongs before it.
    epoch: u64,
    /// Packet time now, for [`Observation::seen`].
    now: Timestamp,
    origins: &'a [Origin<'a>],
    out: &'a Sender<ToOutput>,
    /// Event buffers the output thread has written, to serialise into again.
    spare: &'a Receiver<Vec<u8>>,
}

impl WorkerSink<'_> {
    fn flush(&mut self) {
        if self.writer.pending_bytes() > 0 || !self.observations.is_empty() {
            // When no buffer came back yet, the new one is as large as this one: grown by
            // doubling from nothing, it was copied a dozen times for each batch.
            let lines = match self.spare.try_recv() {
                Ok(spare) => self.writer.swap(spare),
                Err(_) => self.writer.take(),
            };
            let _ = self.out.send(ToOutput::Events {
                lines,
                observations: std::mem::take(&mut self.observations),
                epoch: self.epoch,
            });
        }
    }
}

impl EventSink for WorkerSink<'_> {
    fn emit(&mut self, event: &Event<'_>) {
        self.writer.emit(event);
        if let Some(mut obs) = event.observation() {
            obs.seen = self.now;
            // Only the few events that matter beyond their flow look their input up.
            obs.origin = self
                .origins
                .iter()
                .position(|o| *o == event.origin)
                .unwrap_or(0);
            self.observations.push(obs);
        }
        if self.writer.pending_bytes() >= EVENT_BYTES {
            self.flush();
        }
    }
}

/// Segments per batch, and payload bytes per batch, before it is sent. Each batch costs its
/// worker a wake-up, a timer sweep and an output flush, and the capture thread a wake-up when
/// it waited for it: four times as many segments in twice the bytes, in half as many batches
/// (the same bytes in flight), took 5% off the mail workload's replay cpu and 7% off the bulk
/// one's (0.95 to 0.90 and 0.42 to 0.39 cpu-s, 1 worker, medians of 5), at the same peak.
const BATCH_SEGMENTS: usize = 4096;
const BATCH_BYTES: usize = 1024 * 1024;
/// Batches in circulation per worker.
const BATCHES_PER_WORKER: usize = 4;
/// Tick id of the final stats event.
const FINAL_TICK: u64 = u64::MAX;

/// A TCP segment in a batch: its payload lives in the batch's byte buffer.
struct Queued {
    seg: TcpSegment<'static>,
    /// Hashed where its bytes were in the cache; the worker's table shares the key's hasher.
    hashes: SegmentHashes,
    payload: (u32, u32),
    ts: Timestamp,
    wire_len: u32,
    input: u16,
}

/// Segments for one worker; the buffers are reused for the whole run.
struct Batch {
    data: Vec<u8>,
    segments: Vec<Queued>,
    /// Packet time at the capture when the batch was sent.
    now: Timestamp,
}

impl Batch {
    /// A batch that holds a full load without growing: grown by doubling, the byte buffer
    /// of one that passes `BATCH_BYTES` by a segment would take twice that.
    fn with_room() -> Self {
        Batch {
            data: Vec::with_capacity(BATCH_BYTES + usize::from(u16::MAX)),
            segments: Vec::with_capacity(BATCH_SEGMENTS),
            now: Timestamp::default(),
        }
    }
}

enum ToWorker {
    Batch(Box<Batch>),
    Tick {
        id: u64,
        ts: Timestamp,
    },
    /// Rules for every packet after the tick that follows.
    Rules(Arc<Rules>),
    Stop {
        now: Timestamp,
    },
}

struct WorkerSnapshot {
    flow: FlowStats,
    reassembly: ReassemblyStats,
    events: EventCounts,
}

enum ToOutput {
    Events {
        lines: Lines,
        observations: Vec<Observation>,
        epoch: u64,
    },
    WorkerStats {
        tick: u64,
        snapshot: WorkerSnapshot,
    },
    CaptureStats {
        tick: u64,
        ts: Timestamp,
        /// Set when the tick ends a stats interval: the `stats` event's timestamp.
        stats: Option<Timestamp>,
        input: usize,
        capture: CaptureStats,
        decoder: DecodeStats,
        /// Rules reloads that take effect after this tick, in the order they came.
        reloads: Vec<Result<Arc<Rules>, String>>,
        /// The tick before, or for the first tick the second of the first packet.
        prev: Timestamp,
        /// The second of the first packet, if there was one.
        first: Option<Timestamp>,
    },
}

/// Names events carry, shared read-only by all threads.
struct Names {
    sensor: String,
    live: bool,
    inputs: Vec<String>,
    rules: Arc<Rules>,
}

impl Names {
    fn origins(&self) -> Vec<Origin<'_>> {
        self.inputs
            .iter()
            .map(|n| {
                if self.live {
                    Origin::Iface(n)
                } else {
                    Origin::PcapFile(n)
                }
            })
            .collect()
    }
}

/// Runs the sensor until the input ends or `stop` is set; every open flow is drained into
/// events before this returns.
pub fn run(config: RunConfig, control: Control) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let stop = control.stop;
    let workers = config.workers.max(1);
    // Open the input before any thread starts, so its errors come first and alone.
    let live = match &config.input {
        Input::Live(opts) => Some(capture::open_live(opts, config.bpf.as_deref())?),
        Input::Files(paths) => {
            capture::check_files(paths, config.bpf.as_deref())?;
            None
        }
    };
    if live.is_some() {
        privileges::drop_privileges(config.user.as_deref()).map_err(RunError::Privileges)?;
    }
    let stdout = [OutputSpec::stdout()];
    let specs = if config.outputs.is_empty() {
        &stdout[..]
    } else {
        &config.outputs[..]
    };
    let (spare_tx, spare_rx) = bounded::<Vec<u8>>(workers * 2);
    let outputs = Outputs::open(
        specs,
        &config.sensor,
        live.is_some(),
        control.reopen,
        spare_tx.clone(),
    )
    .map_err(RunError::Output)?;
    let publisher = config
        .publish
        .as_ref()
        .map(|p| Publisher::open(p, &config.sensor, live.is_some()))
        .transpose()
        .map_err(RunError::Output)?;
    let local_alerts = config.local_alerts;

    let names = Arc::new(Names {
        sensor: config.sensor.clone(),
        live: live.is_some(),
        inputs: match &config.input {
            Input::Files(paths) => paths.iter().map(|p| p.display().to_string()).collect(),
            Input::Live(opts) => vec![opts.iface.clone()],
        },
        rules: Arc::clone(&config.rules),
    });

    let pool_size = workers * BATCHES_PER_WORKER;
    let (free_tx, free_rx) = bounded::<Box<Batch>>(pool_size);
    for _ in 0..pool_size {
        let _ = free_tx.send(Box::new(Batch::with_room()));
    }
    let (out_tx, out_rx) = bounded::<ToOutput>(pool_size * 2);
    // What no stage accounts (the program, batches, event buffers, output queues) is set
    // aside; of the rest, the analysis (its pending observations and its tables' keys) gets a
    // quarter, the workers' flows the other three.
    let accounted = config.tracker.memcap - UNACCOUNTED.min(config.tracker.memcap / 4);
    let analysis_memory = accounted / 4;

    let events_written = Arc::new(AtomicU64::new(0));
    let output = {
        let names = Arc::clone(&names);
        let stop = Arc::clone(&stop);
        let written = Arc::clone(&events_written);
        thread::Builder::new()
            .name("spamtap-output".into())
            .spawn(move || {
                let sinks = Sinks {
                    outputs,
                    publisher,
                    local_alerts,
                    analysis_memory,
                };
                output_thread(out_rx, spare_tx, sinks, workers, &names, &stop, &written)
            })
            .map_err(|_| RunError::Internal("cannot start the output thread"))?
    };

    let per_worker = TrackerConfig {
        max_flows: (config.tracker.max_flows / workers).max(1),
        memcap: (accounted - analysis_memory) / workers,
        ..config.tracker.clone()
    };
    let mut worker_txs = Vec::with_capacity(workers);
    let mut worker_handles = Vec::with_capacity(workers);
    for i in 0..workers {
        let (tx, rx) = bounded::<ToWorker>(pool_size + 64);
        worker_txs.push(tx);
        let names = Arc::clone(&names);
        let out = out_tx.clone();
        let free = free_tx.clone();
        let spare = spare_rx.clone();
        let tracker_config = per_worker.clone();
        let handle = thread::Builder::new()
            .name(format!("spamtap-worker-{i}"))
            .spawn(move || worker_thread(rx, out, free, spare, tracker_config, &names))
            .map_err(|_| RunError::Internal("cannot start a worker thread"))?;
        worker_handles.push(handle);
    }

    // Only workers return batches: if they were all gone, waiting for one must end, not hang.
    drop(free_tx);
    let mut dispatcher = Dispatcher {
        workers: worker_txs,
        current: (0..workers).map(|_| None).collect(),
        free: free_rx,
        live: live.is_some(),
        hasher: per_worker.key_hasher.clone(),
        decoder: DecodeStats::default(),
        defrag: Defragmenter::default(),
        capture: CaptureStats::default(),
        now: Timestamp::default(),
        clock: TickClock::new(config.stats_interval),
        input: 0,
        out: out_tx,
        stop: Arc::clone(&stop),
        last_flush: Instant::now(),
        flush_every: match &config.input {
            Input::Live(opts) => live_flush_every(opts.buffer_bytes),
            Input::Files(_) => Duration::MAX,
        },
        since_flush_check: 0,
        reloads: control.reloads,
        rules: Arc::clone(&config.rules),
        first_second: None,
        last_tick: None,
        progress: match &config.input {
            Input::Files(paths) if config.progress => Progress::new(paths, events_written),
            _ => None,
        },
    };

    let captured = match (live, &config.input) {
        (Some(live), Input::Live(opts)) => {
            note!(
                "spamtap: capturing on {} with {workers} worker(s); SIGINT or SIGTERM stops and reports open flows",
                opts.iface
            );
            capture::read_live(live, opts, &stop, &mut dispatcher)
        }
        (_, Input::Files(paths)) => {
            capture::read_files(paths, config.bpf.as_deref(), &stop, &mut dispatcher)
        }
        (None, Input::Live(_)) => Ok(()),
    };
    dispatcher.finish();
    if let Some(progress) = &dispatcher.progress {
        progress.finish();
    }
    drop(dispatcher);

    let mut internal = None;
    for handle in worker_handles {
        if handle.join().is_err() {
            internal = Some(RunError::Internal("a worker thread panicked"));
        }
    }
    let (stats, outputs) = output
        .join()
        .map_err(|_| RunError::Internal("the output thread panicked"))?;
    captured?;
    if let Some(e) = internal {
        return Err(e);
    }
    let outputs = match outputs {
        Err(e) if e.error.kind() == std::io::ErrorKind::BrokenPipe => Vec::new(),
        other => other.map_err(RunError::Output)?,
    };
    Ok(RunSummary {
        stats,
        outputs,
        elapsed: started.elapsed(),
    })
}

/// The capture side: decodes, shards, batches, and keeps packet time.
struct Dispatcher {
    workers: Vec<Sender<ToWorker>>,
    current: Vec<Option<Box<Batch>>>,
    free: Receiver<Box<Batch>>,
    live: bool,
    hasher: KeyHasher,
    decoder: DecodeStats,
    /// IP fragments waiting for the rest of their datagram.
    defrag: Defragmenter,
    capture: CaptureStats,
    now: Timestamp,
    clock: TickClock,
    input: usize,
    out: Sender<ToOutput>,
    /// Set on SIGINT/SIGTERM: a live capture waiting for a free batch gives up.
    stop: Arc<AtomicBool>,
    /// Live only: when partial batches were last sent. A trickle of packets must not wait
    /// for a batch to fill; this affects only how soon events appear, never what they say.
    last_flush: Instant,
    /// Live only: [`live_flush_every`].
    flush_every: Duration,
    since_flush_check: u32,
    /// Rule reloads waiting for the next tick.
    reloads: Receiver<Result<Arc<Rules>, String>>,
    /// The rules in force, for the fragment overlap policies of the asset groups.
    rules: Arc<Rules>,
    /// The second of the first packet, and the latest tick: published with each tick.
    first_second: Option<Timestamp>,
    last_tick: Option<Timestamp>,
    progress: Option<Progress>,
}

/// The part of the memory budget kept for what no stage accounts: the program itself, the
/// batches in flight, event buffers and output queues (about 20 MiB measured on floods).
const UNACCOUNTED: usize = 24 << 20;

/// How long partial batches wait on a quiet ring (see [`Dispatcher::idle`]).
const IDLE_FLUSH_AFTER: Duration = Duration::from_millis(50);

/// Longest a live packet waits in a partial batch, with a kernel buffer of `buffer_bytes`:
/// between two calls of `idle` the capture naps at most [`capture::max_nap`] and waits at
/// most [`capture::IDLE_WAIT_MS`], so a packet waits at most the three (200 ms with the
/// default 64 MiB).
fn live_flush_every(buffer_bytes: i32) -> Duration {
    let idle_wait = u64::try_from(capture::IDLE_WAIT_MS).unwrap_or(0);
    IDLE_FLUSH_AFTER + capture::max_nap(buffer_bytes) + Duration::from_millis(idle_wait)
}

impl Dispatcher {
    /// Puts a decoded segment (a frame's, or a reassembled datagram's) in its worker's
    /// batch; `false` when it had to be dropped.
    #[inline(always)]
    fn queue(&mut self, seg: TcpSegment<'_>, ts: Timestamp, wire_len: u32, input: usize) -> bool {
        let hashes = SegmentHashes::of(&seg, &self.hasher);
        let worker = hashes.key.shard(self.workers.len());
        if self.current[worker].is_none() {
            self.current[worker] = self.free_batch();
        }
        let Some(batch) = self.current[worker].as_deref_mut() else {
            self.capture.queue_drops += 1;
            return false;
        };
        let start = batch.data.len() as u32;
        batch.data.extend_from_slice(seg.payload);
        batch.segments.push(Queued {
            seg: TcpSegment {
                payload: &[],
                ..seg
            },
            hashes,
            payload: (start, seg.payload.len() as u32),
            ts,
            wire_len,
            input: input as u16,
        });
        if batch.segments.len() >= BATCH_SEGMENTS || batch.data.len() >= BATCH_BYTES {
            self.send(worker);
        }
        if self.live {
            self.since_flush_check += 1;
            if self.since_flush_check >= 64 {
                self.since_flush_check = 0;
                if self.last_flush.elapsed() >= self.flush_every {
                    self.flush_all();
                }
            }
        }
        true
    }

    /// A free batch: waited for, however long, in replay; in live capture too, while the
    /// kernel's ring holds what arrives meanwhile (its drops are counted there), unless the
    /// sensor is stopping, when `None` drops the packet.
    fn free_batch(&mut self) -> Option<Box<Batch>> {
        if !self.live {
            return self.free.recv().ok();
        }
        if let Ok(batch) = self.free.try_recv() {
            return Some(batch);
        }
        // Partial batches of other workers may be what the slow one waits behind.
        self.flush_all();
        loop {
            match self.free.recv_timeout(self.flush_every) {
                Ok(batch) => return Some(batch),
                Err(RecvTimeoutError::Timeout) if !self.stop.load(Ordering::Relaxed) => {}
                Err(_) => return None,
            }
        }
    }

    fn send(&mut self, worker: usize) {
        if let Some(mut batch) = self.current[worker].take() {
            batch.now = self.now;
            let _ = self.workers[worker].send(ToWorker::Batch(batch));
        }
    }

    fn flush_all(&mut self) {
        for w in 0..self.workers.len() {
            self.send(w);
        }
        self.last_flush = Instant::now();
    }

    fn tick(&mut self, id: u64, ts: Timestamp, stats: Option<Timestamp>) {
        // Fragments whose time ran out; at the end, every one still waiting.
        let expiry = if id == FINAL_TICK {
            Timestamp(u64::MAX)
        } else {
            ts
        };
        self.defrag.expire(expiry);
        self.decoder.fragments = self.defrag.stats.clone();
        self.flush_all();
        // Every reload since the last tick; the workers need only the latest good one.
        let reloads: Vec<_> = self.reloads.try_iter().collect();
        let latest = reloads.iter().rev().find_map(|r| r.as_ref().ok());
        if let Some(rules) = latest {
            self.rules = Arc::clone(rules);
        }
        for tx in &self.workers {
            if let Some(rules) = latest {
                let _ = tx.send(ToWorker::Rules(Arc::clone(rules)));
            }
            let _ = tx.send(if id == FINAL_TICK {
                ToWorker::Stop { now: ts }
            } else {
                ToWorker::Tick { id, ts }
            });
        }
        let _ = self.out.send(ToOutput::CaptureStats {
            tick: id,
            ts,
            stats,
            input: self.input,
            capture: self.capture.clone(),
            decoder: self.decoder.clone(),
            reloads,
            prev: self.last_tick.or(self.first_second).unwrap_or(ts),
            first: self.first_second,
        });
        if id != FINAL_TICK {
            self.last_tick = Some(ts);
        }
    }

    fn finish(&mut self) {
        self.tick(FINAL_TICK, self.now, Some(self.now));
    }
}

impl PacketHandler for Dispatcher {
    fn packet(
        &mut self,
        input: usize,
        link: LinkType,
        ts: Timestamp,
        data: &[u8],
        wire_len: u32,
    ) -> bool {
        self.capture.packets += 1;
        self.capture.bytes += u64::from(wire_len);
        self.input = input;
        if let Some(progress) = &mut self.progress {
            progress.packet(input, data.len());
        }
        if let Some(tick) = self.clock.on_packet(ts) {
            self.tick(tick.id, tick.ts, tick.stats);
        }
        self.now = self.now.max(ts);
        if self.first_second.is_none() {
            self.first_second = Some(Timestamp::from_secs(ts.secs()));
        }
        let datagram;
        let seg = match decode(link, data, &mut self.decoder) {
            Decoded::Tcp(seg) => seg,
            Decoded::Fragment(fragment) => {
                let policy = self.rules.assets.overlap_policy(fragment.dst);
                datagram = self.defrag.add(&fragment, ts, policy);
                match datagram
                    .as_ref()
                    .and_then(|d| reassembled_tcp(d, &mut self.decoder))
                {
                    Some(seg) => seg,
                    None => return true,
                }
            }
            Decoded::Other => return true,
        };
        self.queue(seg, ts, wire_len, input)
    }

    /// The kernel's ring is empty: partial batches are handed on once they have waited
    /// [`IDLE_FLUSH_AFTER`], not at every pause. At a few tens of thousands of packets a
    /// second the ring empties every few hundred packets, and waking the worker (and the
    /// output threads after it) that often cost more per packet than the analysis of bigger
    /// batches (benches/live.sh at 200 Mbit/s: about a tenth of the sensor's cpu).
    fn idle(&mut self) {
        if self.last_flush.elapsed() >= IDLE_FLUSH_AFTER {
            self.flush_all();
        }
    }

    fn truncated(&mut self, path: &Path, records: u64, message: &str) {
        self.capture.truncated_files += 1;
        note!(
            "spamtap: warning: {} ends in the middle of a record after {records} complete records ({message}); events up to there were written",
            path.display()
        );
    }

    fn kernel_stats(&mut self, k: KernelStats) {
        self.capture.kernel_packets = k.received;
        self.capture.kernel_drops = k.dropped;
        self.capture.kernel_ifdrops = k.if_dropped;
    }
}

fn worker_thread(
    rx: Receiver<ToWorker>,
    out: Sender<ToOutput>,
    free: Sender<Box<Batch>>,
    spare: Receiver<Vec<u8>>,
    config: TrackerConfig,
    names: &Names,
) {
    let origins = names.origins();
    let mut tracker = Tracker::new(config);
    let mut sink = WorkerSink {
        writer: EventWriter::default(),
        observations: Vec::new(),
        epoch: 0,
        now: Timestamp::default(),
        origins: &origins,
        out: &out,
        spare: &spare,
    };
    let snapshot = |tracker: &Tracker, sink: &WorkerSink<'_>| WorkerSnapshot {
        flow: tracker.stats(),
        reassembly: tracker.reassembly_stats().clone(),
        events: sink.writer.counts().clone(),
    };
    let mut rules = Arc::clone(&names.rules);
    // Each pass runs under one set of rules; a reload starts the next pass.
    'rules: loop {
        let ctx = EventContext {
            sensor: &names.sensor,
            origins: &origins,
            enrich: Enricher::new(&rules.assets, &rules.fingerprints, &rules.replies),
        };
        for msg in &rx {
            match msg {
                ToWorker::Batch(mut batch) => {
                    for q in &batch.segments {
                        let (start, len) = (q.payload.0 as usize, q.payload.1 as usize);
                        let payload = batch.data.get(start..start + len).unwrap_or_default();
                        let seg = TcpSegment { payload, ..q.seg };
                        sink.now = q.ts;
                        tracker.on_hashed_segment(
                            &seg,
                            q.hashes,
                            q.ts,
                            q.wire_len,
                            usize::from(q.input),
                            &ctx,
                            &mut sink,
                        );
                    }
                    sink.now = batch.now;
                    tracker.advance(batch.now, &ctx, &mut sink);
                    batch.data.clear();
                    batch.segments.clear();
                    let _ = free.send(batch);
                    sink.flush();
                }
                ToWorker::Tick { id, ts } => {
                    // What times out now belongs before this tick.
                    sink.now = Timestamp(ts.0.saturating_sub(1));
                    tracker.advance(ts, &ctx, &mut sink);
                    sink.flush();
                    let _ = out.send(ToOutput::WorkerStats {
                        tick: id,
                        snapshot: snapshot(&tracker, &sink),
                    });
                    sink.epoch = id + 1;
                }
                ToWorker::Rules(new) => {
                    rules = new;
                    continue 'rules;
                }
                ToWorker::Stop { now } => {
                    sink.now = Timestamp(u64::MAX);
                    tracker.advance(now, &ctx, &mut sink);
                    tracker.drain(&ctx, &mut sink);
                    sink.flush();
                    let _ = out.send(ToOutput::WorkerStats {
                        tick: FINAL_TICK,
                        snapshot: snapshot(&tracker, &sink),
                    });
                    break 'rules;
                }
            }
        }
        break;
    }
}

/// A tick being assembled from the capture thread and every worker.
#[derive(Default)]
struct PendingTick {
    record: StatsRecord,
    ts: Timestamp,
    stats: Option<Timestamp>,
    input: usize,
    parts: usize,
    reloads: Vec<Result<Arc<Rules>, String>>,
    prev: Timestamp,
    first: Option<Timestamp>,
}

/// Where the output thread's results go.
struct Sinks {
    outputs: Outputs,
    publisher: Option<Publisher>,
    local_alerts: bool,
    /// The analysis' share of the memory budget.
    analysis_memory: usize,
}

fn output_thread(
    rx: Receiver<ToOutput>,
    spare: Sender<Vec<u8>>,
    sinks: Sinks,
    workers: usize,
    names: &Names,
    stop: &AtomicBool,
    written: &AtomicU64,
) -> (StatsRecord, Result<Vec<OutputSummary>, OutputError>) {
    let origins = names.origins();
    let origin = |index: usize| {
        origins
            .get(index)
            .or(origins.first())
            .copied()
            .unwrap_or(Origin::PcapFile(""))
    };
    let Sinks {
        mut outputs,
        mut publisher,
        local_alerts,
        analysis_memory,
    } = sinks;
    if let Some(p) = &mut publisher {
        p.hello();
    }
    let mut stopped = false;
    let mut write = |lines: Lines, outputs: &mut Outputs, publisher: &mut Option<Publisher>| {
        if !stopped && stop.load(Ordering::Relaxed) {
            stopped = true;
            outputs.capture_stopped();
            if let Some(p) = publisher {
                p.capture_stopped();
            }
        }
        if let Some(p) = publisher {
            p.events(&lines.bytes);
        }
        let handed = outputs.write(lines);
        written.fetch_add(handed.lines, Ordering::Relaxed);
        if !handed.ok {
            // An output that must not fail did: stop capturing, but keep draining so no
            // thread blocks on a full channel.
            stop.store(true, Ordering::Relaxed);
        }
    };
    let mut analyzer = Analyzer::new(Arc::clone(&names.rules)).with_memory(analysis_memory);
    if publisher.is_some() {
        analyzer = analyzer.keep_processed();
    }
    let mut reloads = ReloadStats::default();
    let mut findings = Vec::new();
    // Events the output thread writes itself (analysis, stats), counted like the workers'.
    let mut own = EventWriter::default();
    let mut pending: BTreeMap<u64, PendingTick> = BTreeMap::new();
    let mut last = StatsRecord::default();
    let parts_needed = workers + 1;
    for msg in rx {
        let tick = match msg {
            ToOutput::Events {
                lines,
                observations,
                epoch,
            } => {
                // The buffer goes back to a worker through the outputs, once they wrote it.
                write(lines, &mut outputs, &mut publisher);
                analyzer.receive(observations, epoch);
                continue;
            }
            ToOutput::WorkerStats { tick, snapshot } => {
                let p = pending.entry(tick).or_default();
                p.record.flow.add(&snapshot.flow);
                p.record.reassembly.add(&snapshot.reassembly);
                for (k, v) in snapshot.events {
                    *p.record.events.entry(k).or_default() += v;
                }
                p.parts += 1;
                tick
            }
            ToOutput::CaptureStats {
                tick,
                ts,
                stats,
                input,
                capture,
                decoder,
                reloads,
                prev,
                first,
            } => {
                let p = pending.entry(tick).or_default();
                p.record.capture = capture;
                p.record.decoder = decoder;
                p.ts = ts;
                p.stats = stats;
                p.input = input;
                p.reloads = reloads;
                p.prev = prev;
                p.first = first;
                p.parts += 1;
                tick
            }
        };
        if pending.get(&tick).is_none_or(|p| p.parts != parts_needed) {
            continue;
        }
        let Some(mut p) = pending.remove(&tick) else {
            continue;
        };
        if tick == FINAL_TICK {
            analyzer.finish(p.ts, &mut findings);
        } else {
            analyzer.tick(tick, p.ts, &mut findings);
        }
        let taken = analyzer.take_processed();
        if !local_alerts {
            findings.retain(|f| !matches!(f.what, Found::Alert(_)));
        }
        for reload in std::mem::take(&mut p.reloads) {
            match reload {
                Ok(rules) => {
                    reloads.reloads += 1;
                    analyzer.reload(rules, p.ts, &mut findings);
                }
                Err(why) => {
                    reloads.failed_reloads += 1;
                    reloads.last_error = Some(why);
                }
            }
        }
        for finding in findings.drain(..) {
            own.emit(&finding.event(&names.sensor, origin(finding.origin)));
        }
        if let Some(stats_ts) = p.stats {
            p.record.analysis = analyzer.stats();
            p.record.rules = reloads.clone();
            for (k, v) in own.counts() {
                *p.record.events.entry(k).or_default() += v;
            }
            // This event itself is counted.
            *p.record.events.entry("stats").or_default() += 1;
            p.record.output = outputs.stats();
            if let Some(publisher) = &publisher {
                p.record.output.extend(publisher.stats());
            }
            own.emit(&Event {
                timestamp: stats_ts,
                sensor: &names.sensor,
                origin: origin(p.input),
                flow: None,
                body: EventBody::Stats(&p.record),
            });
            last = p.record;
        }
        write(own.take(), &mut outputs, &mut publisher);
        outputs.tick(p.ts);
        // After this tick's own events: a goodbye is the last entry a sensor publishes.
        if let Some(publisher) = &mut publisher {
            if tick == FINAL_TICK {
                publisher.bye(p.ts, p.first, taken);
            } else {
                publisher.tick(p.ts, p.prev, taken);
            }
        }
    }
    drop(spare);
    let mut closed = outputs.close();
    if let Some(publisher) = publisher {
        match (publisher.close(), &mut closed) {
            (Ok(more), Ok(all)) => all.extend(more),
            (Err(e), Ok(_)) => closed = Err(e),
            _ => {}
        }
    }
    (last, closed)
}
