//! The outputs of a run, each on a thread of its own behind a bounded queue (a lane), so a
//! slow or unreachable destination never stalls capture or the other outputs.
//!
//! The output thread hands [`Outputs::write`] whole event lines; each lane gets the lines of the
//! types it carries. In replay a full queue is waited for (a replay loses nothing to speed); in
//! live capture a full queue drops the lines, counted, until capture stops. A lane whose
//! destination fails counts what it could not deliver, drops (and counts) what arrives while
//! it is down, and reconnects with backoff; only a file or standard output failing in replay
//! ends the run, with an error.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};
use serde::Serialize;

use super::spec::{Destination, OutputSpec};
use super::{Lines, file, redis, syslog, unix};
use crate::text::note;
use crate::timestamp::Timestamp;

/// What a lane's destination does with lines; one implementation per kind of destination.
pub(super) trait Target: Send {
    /// Opens the file or connects; at start and after a failure.
    fn connect(&mut self) -> io::Result<()>;
    /// Writes whole lines, each ending in `\n`, `count` of them, and says how many arrived.
    fn deliver(&mut self, lines: &[u8], count: u64) -> Delivered;
    /// SIGHUP: files are reopened under their name (after logrotate moved them).
    fn reopen(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Packet time has reached `now`: files rotate by interval here.
    fn tick(&mut self, _now: Timestamp) -> io::Result<()> {
        Ok(())
    }
    /// Writes out anything buffered; at the end of the run.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The outcome of [`Target::deliver`].
pub(super) struct Delivered {
    /// Lines that reached the destination; the others are dropped.
    pub lines: u64,
    /// Set when the destination broke: the lane reconnects before the next write.
    pub failure: Option<io::Error>,
    /// Set when the destination took the connection but refused some lines (a Redis key of
    /// another type, no permission): those are dropped, not retried, as retrying would not help.
    pub refused: Option<String>,
    /// Lines sent when the connection broke, before the destination said it had them: it may
    /// hold them or not. Counted on their own, neither written nor dropped.
    pub unconfirmed: u64,
}

impl Delivered {
    /// Asked to deliver while not open or connected: nothing arrived, and the lane reconnects.
    pub fn not_connected() -> Self {
        Delivered {
            lines: 0,
            failure: Some(io::Error::other("not connected")),
            refused: None,
            unconfirmed: 0,
        }
    }

    /// All `count` lines arrived.
    pub fn all(count: u64) -> Self {
        Delivered {
            lines: count,
            failure: None,
            refused: None,
            unconfirmed: 0,
        }
    }
}

/// Counters of one output, shared between its lane and the output thread.
#[derive(Default)]
struct Counters {
    /// Lines handed to the output.
    events: AtomicU64,
    /// Lines that reached the destination.
    written: AtomicU64,
    /// Lines lost: queue full, destination down, or a failed write.
    dropped: AtomicU64,
    /// Lines whose fate is unknown (see [`Delivered::unconfirmed`]).
    unconfirmed: AtomicU64,
    /// Failed opens, connects and writes.
    failures: AtomicU64,
    /// Bytes of lines in the lane's queue.
    queued_bytes: AtomicUsize,
}

/// One output's entry in the `stats` event. Only what stays zero in a healthy run: how many
/// events an output was handed or wrote by the time of a `stats` event races the workers,
/// and a replay must give the same events every time (the totals are in the summary at exit).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OutputStats {
    pub name: String,
    pub dropped: u64,
    pub unconfirmed: u64,
    pub failures: u64,
}

/// What [`Outputs::write`] did with the lines it was given.
pub struct Handed {
    /// How many there were.
    pub lines: u64,
    /// `false` once an output that must not fail has failed: the run should stop.
    pub ok: bool,
}

/// An output's totals at the end of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputSummary {
    pub name: String,
    pub events: u64,
    pub written: u64,
    pub dropped: u64,
    pub unconfirmed: u64,
}

#[derive(Debug)]
pub struct OutputError {
    pub name: String,
    pub error: io::Error,
}

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write events to {}: {}", self.name, self.error)
    }
}

enum ToLane {
    Lines {
        bytes: Arc<Vec<u8>>,
        count: u64,
    },
    Tick(Timestamp),
    /// Write out everything before this, then say so.
    Sync(Sender<()>),
}

struct Lane {
    spec: OutputSpec,
    tx: Option<Sender<ToLane>>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<Result<(), io::Error>>>,
    /// Lines of the types it carries, rebuilt for each write; unused when it carries all.
    filtered: Vec<u8>,
}

/// Chunks queued per output in replay, which waits when they are all taken: with the output
/// thread's chunks of up to 1 MiB, at most 32 MiB held for a slow destination.
const QUEUE_CHUNKS: usize = 32;
/// Bytes of lines queued per output in live capture (some 7,000 events), past which lines are
/// dropped (counted). Counted in bytes, not chunks: live, a chunk is what a worker wrote for
/// one batch, often a few KB, so 32 chunks held only some hundred KB.
const LIVE_QUEUE_BYTES: usize = 4 << 20;
/// Messages queued per output in live capture, whatever their size.
const LIVE_QUEUE_MESSAGES: usize = 4096;
/// Bytes a lane gathers before writing them at once.
const WRITE_BYTES: usize = 256 * 1024;
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often an idle lane looks for SIGHUP.
const IDLE_WAKE: Duration = Duration::from_millis(200);
/// Least time between two messages about refused lines.
const REPORT_EVERY: Duration = Duration::from_secs(10);
/// How long a lane that must not lose its batch keeps trying.
const RETRY_FOR: Duration = Duration::from_secs(120);

/// Every output of a run.
pub struct Outputs {
    lanes: Vec<Lane>,
    /// Live capture, until it stops: a full queue drops lines instead of being waited for.
    drop_when_full: bool,
}

impl Outputs {
    /// Opens every output. In replay one that cannot be opened is an error; in live capture it
    /// is reported and retried, and capture goes on. `reopen` counts SIGHUPs.
    pub fn open(
        specs: &[OutputSpec],
        sensor: &str,
        live: bool,
        reopen: Arc<AtomicU64>,
        spare: Sender<Vec<u8>>,
    ) -> Result<Self, OutputError> {
        Self::open_lanes(specs, sensor, live, reopen, spare, false)
    }

    /// The `--publish` stream: like an output, but in replay a batch that fails is written
    /// again (for up to two minutes) instead of dropped, so a Redis restart loses nothing.
    pub fn open_publish(spec: &OutputSpec, live: bool) -> Result<Self, OutputError> {
        let (spare, _) = bounded(1);
        Self::open_lanes(
            std::slice::from_ref(spec),
            "",
            live,
            Arc::new(AtomicU64::new(0)),
            spare,
            !live,
        )
    }

    fn open_lanes(
        specs: &[OutputSpec],
        sensor: &str,
        live: bool,
        reopen: Arc<AtomicU64>,
        spare: Sender<Vec<u8>>,
        retry: bool,
    ) -> Result<Self, OutputError> {
        let mut lanes = Vec::with_capacity(specs.len());
        for spec in specs {
            let mut target = target_for(spec, sensor);
            let connected = match target.connect() {
                Ok(()) => true,
                Err(error) if !live => {
                    return Err(OutputError {
                        name: spec.name.clone(),
                        error,
                    });
                }
                Err(error) => {
                    note!(
                        "spamtap: output {}: {error}; capturing anyway, its events are dropped (counted in stats.output) until it opens",
                        spec.name
                    );
                    false
                }
            };
            let counters = Arc::new(Counters::default());
            if !connected {
                counters.failures.fetch_add(1, Ordering::Relaxed);
            }
            let (tx, rx) = bounded(if live {
                LIVE_QUEUE_MESSAGES
            } else {
                QUEUE_CHUNKS
            });
            let fatal = !live && matches!(spec.destination, Destination::File { .. })
                || matches!(spec.destination, Destination::Stdout);
            let state = LaneState {
                name: spec.name.clone(),
                target,
                counters: Arc::clone(&counters),
                connected,
                fatal,
                backoff: BACKOFF_FIRST,
                retry_at: Instant::now(),
                dropped_in_outage: 0,
                reopen: Arc::clone(&reopen),
                reopened: reopen.load(Ordering::Relaxed),
                pending: Vec::with_capacity(WRITE_BYTES * 2),
                pending_lines: 0,
                refusal_reported: None,
                spare: spare.clone(),
                retry,
            };
            let thread = thread::Builder::new()
                .name("spamtap-out".into())
                .spawn(move || state.run(rx))
                .map_err(|error| OutputError {
                    name: spec.name.clone(),
                    error,
                })?;
            lanes.push(Lane {
                spec: spec.clone(),
                tx: Some(tx),
                counters,
                thread: Some(thread),
                filtered: Vec::new(),
            });
        }
        Ok(Outputs {
            lanes,
            drop_when_full: live,
        })
    }

    /// Hands whole event lines to every output.
    pub fn write(&mut self, lines: Lines) -> Handed {
        let Lines {
            bytes,
            count: all_count,
        } = lines;
        if bytes.is_empty() {
            return Handed { lines: 0, ok: true };
        }
        let all = Arc::new(bytes);
        let drop_when_full = self.drop_when_full;
        let mut ok = true;
        for lane in &mut self.lanes {
            let (bytes, count) = if lane.spec.types.is_empty() {
                (Arc::clone(&all), all_count)
            } else {
                lane.filtered.clear();
                let mut count = 0;
                for line in all.split_inclusive(|&b| b == b'\n') {
                    if lane.spec.carries(event_type_of(line)) {
                        lane.filtered.extend_from_slice(line);
                        count += 1;
                    }
                }
                if count == 0 {
                    continue;
                }
                (Arc::new(lane.filtered.clone()), count)
            };
            lane.counters.events.fetch_add(count, Ordering::Relaxed);
            ok &= lane.send(ToLane::Lines { bytes, count }, count, drop_when_full);
        }
        Handed {
            lines: all_count,
            ok,
        }
    }

    /// Live capture has stopped: from here a full queue is waited for, as in replay, so what
    /// the workers report at the end (every flow still open, all at once) is written rather
    /// than dropped for want of room. A stuck destination still fails within its timeout.
    pub fn capture_stopped(&mut self) {
        self.drop_when_full = false;
    }

    /// Packet time has reached `now` (a tick): for rotation by interval.
    pub fn tick(&mut self, now: Timestamp) {
        let drop_when_full = self.drop_when_full;
        for lane in &mut self.lanes {
            lane.send(ToLane::Tick(now), 0, drop_when_full);
        }
    }

    /// Waits until every output has written (or counted as dropped) all it was handed: what
    /// `spamtap correlate` does before it acknowledges the entries behind it.
    pub fn sync(&mut self) {
        let (done, wait) = bounded(self.lanes.len());
        for lane in &self.lanes {
            if let Some(tx) = &lane.tx {
                let _ = tx.send(ToLane::Sync(done.clone()));
            }
        }
        drop(done);
        // Ends when every lane has answered, or ended.
        for () in wait {}
    }

    pub fn stats(&self) -> Vec<OutputStats> {
        self.lanes
            .iter()
            .map(|lane| OutputStats {
                name: lane.spec.name.clone(),
                dropped: lane.counters.dropped.load(Ordering::Relaxed),
                unconfirmed: lane.counters.unconfirmed.load(Ordering::Relaxed),
                failures: lane.counters.failures.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Waits for every lane to write what it holds; the totals, or the first fatal error.
    pub fn close(mut self) -> Result<Vec<OutputSummary>, OutputError> {
        let mut first_error = None;
        for lane in &mut self.lanes {
            lane.tx = None;
            let result = lane.thread.take().map(JoinHandle::join);
            let error = match result {
                Some(Ok(Err(error))) => Some(error),
                Some(Err(_)) => Some(io::Error::other("its thread panicked")),
                _ => None,
            };
            if let (Some(error), None) = (error, &first_error) {
                first_error = Some(OutputError {
                    name: lane.spec.name.clone(),
                    error,
                });
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(self
            .lanes
            .iter()
            .map(|lane| OutputSummary {
                name: lane.spec.name.clone(),
                events: lane.counters.events.load(Ordering::Relaxed),
                written: lane.counters.written.load(Ordering::Relaxed),
                dropped: lane.counters.dropped.load(Ordering::Relaxed),
                unconfirmed: lane.counters.unconfirmed.load(Ordering::Relaxed),
            })
            .collect())
    }
}

impl Lane {
    /// `false` when the lane has ended (after a fatal failure). With `drop_when_full`, lines
    /// that would queue more than [`LIVE_QUEUE_BYTES`] are dropped, and so is a message that
    /// finds the queue full; without it, the queue is waited for.
    fn send(&mut self, msg: ToLane, lines: u64, drop_when_full: bool) -> bool {
        let Some(tx) = &self.tx else {
            return false;
        };
        let bytes = match &msg {
            ToLane::Lines { bytes, .. } => bytes.len(),
            _ => 0,
        };
        let queued = &self.counters.queued_bytes;
        if drop_when_full && queued.load(Ordering::Relaxed) + bytes > LIVE_QUEUE_BYTES {
            self.counters.dropped.fetch_add(lines, Ordering::Relaxed);
            return true;
        }
        queued.fetch_add(bytes, Ordering::Relaxed);
        let sent = if drop_when_full {
            match tx.try_send(msg) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(_)) => {
                    queued.fetch_sub(bytes, Ordering::Relaxed);
                    self.counters.dropped.fetch_add(lines, Ordering::Relaxed);
                    Ok(())
                }
                Err(TrySendError::Disconnected(_)) => Err(()),
            }
        } else {
            tx.send(msg).map_err(|_| ())
        };
        if sent.is_err() {
            self.counters.dropped.fetch_add(lines, Ordering::Relaxed);
            return false;
        }
        true
    }
}

fn target_for(spec: &OutputSpec, sensor: &str) -> Box<dyn Target> {
    match &spec.destination {
        Destination::Stdout => Box::new(file::StdoutTarget),
        Destination::File { path, rotation } => {
            Box::new(file::FileTarget::new(path.clone(), rotation.clone()))
        }
        Destination::Syslog(s) => Box::new(syslog::SyslogTarget::new(s.clone(), sensor)),
        Destination::UnixDgram(path) => Box::new(unix::DgramTarget::new(path.clone())),
        Destination::UnixStream(path) => Box::new(unix::StreamTarget::new(path.clone())),
        Destination::Redis(r) => Box::new(redis::RedisTarget::new(r.clone())),
    }
}

/// A lane's thread: gathers lines, writes them, and keeps its destination up.
struct LaneState {
    name: String,
    target: Box<dyn Target>,
    counters: Arc<Counters>,
    connected: bool,
    /// A failure ends the run (files in replay, standard output).
    fatal: bool,
    backoff: Duration,
    retry_at: Instant,
    /// Lines dropped since the destination went down, for the message when it is back.
    dropped_in_outage: u64,
    reopen: Arc<AtomicU64>,
    reopened: u64,
    pending: Vec<u8>,
    pending_lines: u64,
    /// When a refusal was last reported: at most one message per [`REPORT_EVERY`].
    refusal_reported: Option<Instant>,
    /// Where a written buffer goes back to be filled again by a worker.
    spare: Sender<Vec<u8>>,
    /// Write a failed batch again rather than drop it.
    retry: bool,
}

impl LaneState {
    fn run(mut self, rx: Receiver<ToLane>) -> Result<(), io::Error> {
        loop {
            let msg = rx.recv_timeout(IDLE_WAKE);
            self.check_reopen()?;
            match msg {
                Ok(ToLane::Lines { bytes, count }) => {
                    self.counters
                        .queued_bytes
                        .fetch_sub(bytes.len(), Ordering::Relaxed);
                    self.pending.extend_from_slice(&bytes);
                    self.pending_lines += count;
                    if let Ok(buffer) = Arc::try_unwrap(bytes) {
                        let _ = self.spare.try_send(buffer);
                    }
                }
                Ok(ToLane::Sync(done)) => {
                    self.write_pending()?;
                    if self.connected
                        && let Err(e) = self.target.flush()
                    {
                        self.fail(e)?;
                    }
                    let _ = done.send(());
                }
                Ok(ToLane::Tick(now)) => {
                    self.write_pending()?;
                    if self.connected
                        && let Err(e) = self.target.tick(now)
                    {
                        self.fail(e)?;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self.pending.len() >= WRITE_BYTES || rx.is_empty() {
                self.write_pending()?;
            }
        }
        self.write_pending()?;
        if self.connected
            && let Err(e) = self.target.flush()
        {
            self.fail(e)?;
        }
        Ok(())
    }

    fn check_reopen(&mut self) -> Result<(), io::Error> {
        let generation = self.reopen.load(Ordering::Relaxed);
        if generation == self.reopened {
            return Ok(());
        }
        self.reopened = generation;
        self.write_pending()?;
        if self.connected
            && let Err(e) = self.target.reopen()
        {
            self.fail(e)?;
        }
        Ok(())
    }

    fn write_pending(&mut self) -> Result<(), io::Error> {
        if self.pending_lines == 0 {
            self.pending.clear();
            return Ok(());
        }
        if self.retry {
            return self.write_pending_retrying();
        }
        let lines = self.pending_lines;
        self.reconnect_when_due();
        let delivered = if self.connected {
            let result = self.target.deliver(&self.pending, lines);
            if let Some(why) = &result.refused {
                self.refused(lines.saturating_sub(result.lines), why);
            }
            if let Some(error) = result.failure {
                self.counters
                    .written
                    .fetch_add(result.lines, Ordering::Relaxed);
                self.counters
                    .unconfirmed
                    .fetch_add(result.unconfirmed, Ordering::Relaxed);
                self.drop_lines(lines.saturating_sub(result.lines + result.unconfirmed));
                self.pending.clear();
                self.pending_lines = 0;
                return self.fail(error);
            }
            result.lines
        } else {
            0
        };
        self.counters
            .written
            .fetch_add(delivered, Ordering::Relaxed);
        self.drop_lines(lines.saturating_sub(delivered));
        self.pending.clear();
        self.pending_lines = 0;
        Ok(())
    }

    /// A lane that must not lose what it holds (publishing in replay): the whole batch is
    /// written again until it is taken, for up to [`RETRY_FOR`]; its receiver ignores what it
    /// already has (entries are numbered).
    fn write_pending_retrying(&mut self) -> Result<(), io::Error> {
        let lines = self.pending_lines;
        let give_up = Instant::now() + RETRY_FOR;
        loop {
            self.reconnect_when_due();
            if self.connected {
                let result = self.target.deliver(&self.pending, lines);
                match (result.failure, &result.refused) {
                    (None, refused) => {
                        // Taken, or refused for good: written again it would be refused again.
                        self.counters
                            .written
                            .fetch_add(result.lines, Ordering::Relaxed);
                        if let Some(why) = refused {
                            self.refused(lines.saturating_sub(result.lines), why);
                            self.drop_lines(lines.saturating_sub(result.lines));
                        }
                        self.backoff = BACKOFF_FIRST;
                        break;
                    }
                    (Some(error), _) => self.fail(error)?,
                }
            }
            if Instant::now() >= give_up {
                self.drop_lines(lines);
                break;
            }
            std::thread::sleep(self.retry_at.saturating_duration_since(Instant::now()));
        }
        self.pending.clear();
        self.pending_lines = 0;
        Ok(())
    }

    /// Connects again if the destination is down and its backoff has passed.
    fn reconnect_when_due(&mut self) {
        if !self.connected && Instant::now() >= self.retry_at {
            match self.target.connect() {
                Ok(()) => {
                    self.connected = true;
                    self.backoff = BACKOFF_FIRST;
                    note!(
                        "spamtap: output {}: writing again; {} event(s) were dropped while it was down",
                        self.name,
                        self.dropped_in_outage
                    );
                    self.dropped_in_outage = 0;
                }
                Err(_) => {
                    self.counters.failures.fetch_add(1, Ordering::Relaxed);
                    self.wait_longer();
                }
            }
        }
    }

    /// `lines` were refused by a destination that is up: counted as a failure, said on
    /// stderr at most every [`REPORT_EVERY`].
    fn refused(&mut self, lines: u64, why: &str) {
        self.counters.failures.fetch_add(1, Ordering::Relaxed);
        if self
            .refusal_reported
            .is_none_or(|at| at.elapsed() >= REPORT_EVERY)
        {
            self.refusal_reported = Some(Instant::now());
            note!(
                "spamtap: output {}: {lines} event(s) refused: {why} (counted in stats.output)",
                self.name
            );
        }
    }

    fn drop_lines(&mut self, lines: u64) {
        self.counters.dropped.fetch_add(lines, Ordering::Relaxed);
        self.dropped_in_outage += lines;
    }

    /// The destination broke: fatal, or down until a reconnect after the backoff.
    fn fail(&mut self, error: io::Error) -> Result<(), io::Error> {
        self.counters.failures.fetch_add(1, Ordering::Relaxed);
        if self.fatal {
            return Err(error);
        }
        note!(
            "spamtap: output {}: {error}; its events are dropped (counted in stats.output) until it is back",
            self.name
        );
        self.connected = false;
        self.wait_longer();
        Ok(())
    }

    fn wait_longer(&mut self) {
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        self.retry_at = Instant::now() + self.backoff;
    }
}

pub(super) fn count_lines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// The `event_type` of one of spamtap's lines, written second after the fixed-width
/// timestamp; empty when absent.
pub(super) fn event_type_of(line: &[u8]) -> &[u8] {
    const KEY: &[u8] = b"\"event_type\":\"";
    let head = &line[..line.len().min(96)];
    let Some(at) = memchr::memmem::find(head, KEY) else {
        return &[];
    };
    let rest = &line[at + KEY.len()..];
    let end = memchr::memchr(b'"', rest).unwrap_or(0);
    &rest[..end]
}

/// Bytes `write` got out before an error, as whole lines.
pub(super) fn write_counting(w: &mut impl io::Write, buf: &[u8]) -> Result<(), (usize, io::Error)> {
    let mut done = 0;
    while done < buf.len() {
        match w.write(&buf[done..]) {
            Ok(0) => return Err((done, io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((done, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_of_a_line() {
        let line =
            br#"{"timestamp":"2026-01-01T00:00:00.000100+0000","event_type":"smtp","sensor":"s"}"#;
        assert_eq!(event_type_of(line), b"smtp");
        assert_eq!(event_type_of(b"{}"), b"");
        assert_eq!(event_type_of(br#"{"event_type":"x"#), b"");
    }

    /// A target that fails its first write halfway and refuses one reconnect.
    struct Flaky {
        got: Vec<u8>,
        writes: u32,
        connects: u32,
    }

    impl Target for Flaky {
        fn connect(&mut self) -> io::Result<()> {
            self.connects += 1;
            if self.connects == 2 {
                return Err(io::ErrorKind::ConnectionRefused.into());
            }
            Ok(())
        }
        fn deliver(&mut self, lines: &[u8], count: u64) -> Delivered {
            self.writes += 1;
            if self.writes == 1 {
                return Delivered {
                    lines: 1,
                    failure: Some(io::ErrorKind::BrokenPipe.into()),
                    refused: None,
                    unconfirmed: 0,
                };
            }
            self.got.extend_from_slice(lines);
            Delivered::all(count)
        }
    }

    #[test]
    fn a_failed_write_counts_exactly_and_reconnects() {
        let counters = Arc::new(Counters::default());
        let mut lane = LaneState {
            name: "flaky".into(),
            target: Box::new(Flaky {
                got: Vec::new(),
                writes: 0,
                connects: 1,
            }),
            counters: Arc::clone(&counters),
            connected: true,
            fatal: false,
            backoff: BACKOFF_FIRST,
            retry_at: Instant::now(),
            dropped_in_outage: 0,
            reopen: Arc::new(AtomicU64::new(0)),
            reopened: 0,
            pending: Vec::new(),
            pending_lines: 0,
            refusal_reported: None,
            spare: bounded(1).0,
            retry: false,
        };
        let put = |lane: &mut LaneState, text: &[u8]| {
            lane.pending.extend_from_slice(text);
            lane.pending_lines += count_lines(text);
            lane.write_pending().unwrap();
        };
        put(&mut lane, b"a\nb\nc\n"); // one of three arrives
        lane.retry_at = Instant::now();
        put(&mut lane, b"d\n"); // the reconnect is refused: dropped
        lane.retry_at = Instant::now();
        put(&mut lane, b"e\nf\n"); // connected again
        assert_eq!(counters.written.load(Ordering::Relaxed), 3);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 3);
        assert_eq!(counters.failures.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn live_drops_past_its_queue_bytes_until_capture_stops() {
        let (tx, rx) = bounded(LIVE_QUEUE_MESSAGES);
        let counters = Arc::new(Counters::default());
        let mut outputs = Outputs {
            lanes: vec![Lane {
                spec: OutputSpec::stdout(),
                tx: Some(tx),
                counters: Arc::clone(&counters),
                thread: None,
                filtered: Vec::new(),
            }],
            drop_when_full: true,
        };
        // Lines of 3 MiB each: the second would queue more than 4 MiB.
        let chunk = || {
            let mut lines = vec![b'x'; 3 << 20];
            lines.push(b'\n');
            lines
        };
        outputs.write(Lines::counted(chunk()));
        outputs.write(Lines::counted(chunk()));
        assert_eq!(rx.len(), 1);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 1);
        // Stopped: the queue is waited for by its message count alone, which has room.
        outputs.capture_stopped();
        outputs.write(Lines::counted(chunk()));
        assert_eq!(rx.len(), 2);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(
            counters.queued_bytes.load(Ordering::Relaxed),
            2 * ((3 << 20) + 1)
        );
    }
}
