//! `spamtap correlate`: reads the entries every sensor published to a Redis stream, with a
//! consumer group, merges them by packet time (`crate::fleet::Merger`) and runs the same
//! analysis as one sensor, with the same rules and outputs.
//!
//! It may start before any sensor: it creates the stream and the group. An entry is
//! acknowledged (XACK) once its observations have been through the analysis and what that
//! found has been written; a correlator started again reads the stream from its start up to
//! where the group had got, so its windows are whole again, writing nothing for what it had
//! already written (and everything for entries it had been given but not acknowledged),
//! then goes on with new entries. Entries another consumer of the group left pending are
//! claimed (XAUTOCLAIM).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use redis::Value;

use super::{Control, RunError};
use crate::analysis::{Analyzer, Finding};
use crate::fleet::{Accepted, Body, Entry, Merger, Step};
use crate::output::{
    Event, EventBody, EventSink, EventWriter, Lines, OutputSpec, OutputSummary, Outputs, RedisSpec,
    StatsRecord,
};
use crate::rules::{ReloadStats, Rules};
use crate::text::note;
use crate::timestamp::Timestamp;

/// Everything `spamtap correlate` needs, from the command line.
pub struct CorrelateConfig {
    /// The stream the sensors publish to.
    pub from: RedisSpec,
    pub group: String,
    pub consumer: String,
    /// Sensors to wait for before time advances; with them, the run ends when all said bye.
    pub sensors: Vec<String>,
    /// `--shard I/N`: which shard of the sensors' streams this correlator reads.
    pub shard: Option<(usize, usize)>,
    /// `--lateness`: `None` for the default (a bound for live sensors only).
    pub lateness_secs: Option<u64>,
    /// Name in the correlator's own events.
    pub sensor: String,
    pub outputs: Vec<OutputSpec>,
    pub rules: Arc<Rules>,
}

/// What a correlator run did.
pub struct CorrelateSummary {
    pub stats: StatsRecord,
    pub outputs: Vec<OutputSummary>,
    pub elapsed: Duration,
}

/// Entries read per call.
const BATCH: usize = 1000;
/// How long a read waits for new entries before looking at signals again.
const BLOCK_MS: usize = 500;
const BACKOFF_MAX: Duration = Duration::from_secs(5);

fn redis_error(name: &str, e: redis::RedisError) -> RunError {
    RunError::Source {
        name: name.to_string(),
        error: e.to_string(),
    }
}

pub fn correlate(config: CorrelateConfig, control: Control) -> Result<CorrelateSummary, RunError> {
    let started = Instant::now();
    let stdout = [OutputSpec::stdout()];
    let specs = if config.outputs.is_empty() {
        &stdout[..]
    } else {
        &config.outputs[..]
    };
    let (spare, _) = bounded(1);
    let outputs = Outputs::open(specs, &config.sensor, false, control.reopen, spare)
        .map_err(RunError::Output)?;
    let name = format!("stream {}", config.from.key);
    let client = redis::Client::open(
        config
            .from
            .connection_info()
            .map_err(|e| redis_error(&name, e))?,
    )
    .map_err(|e| redis_error(&name, e))?;
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .map_err(|e| redis_error(&name, e))?;
    let key = config.from.key.clone();
    create_group(&mut con, &key, &config.group).map_err(|e| redis_error(&name, e))?;

    let mut run = Correlator {
        merger: Merger::new(config.sensors.clone(), config.lateness_secs),
        analyzer: new_analyzer(&config.rules, config.shard),
        shard: config.shard,
        rules: config.rules,
        outputs,
        writer: EventWriter::default(),
        findings: Vec::new(),
        sensor: config.sensor,
        unacked: VecDeque::new(),
        silent_until: None,
        reloads: ReloadStats::default(),
        last: StatsRecord::default(),
        now: Timestamp::default(),
        unreported: false,
    };

    // Catching up: the stream from its start to where the group had got. Entries not
    // pending were acknowledged: what they led to was written before.
    let (delivered, pending) =
        group_state(&mut con, &key, &config.group).map_err(|e| redis_error(&name, e))?;
    let _ = claim_pending(&mut con, &key, &config.group, &config.consumer);
    if let Some(upto) = &delivered {
        let mut from = "-".to_string();
        loop {
            let page: Value = redis::cmd("XRANGE")
                .arg(&key)
                .arg(&from)
                .arg(upto)
                .arg("COUNT")
                .arg(BATCH)
                .query(&mut con)
                .map_err(|e| redis_error(&name, e))?;
            let entries = stream_entries(&page);
            let Some((last_id, _)) = entries.last() else {
                break;
            };
            from = format!("({last_id}");
            for (id, text) in &entries {
                let acked = !pending.contains(id);
                run.take(id, text.as_deref(), acked);
            }
            run.advance(&mut con, &key, &config.group);
            if entries.len() < BATCH {
                break;
            }
        }
        run.silent_until = None;
    }

    // New entries, until SIGTERM or, with --sensors, until every one of them said bye.
    let mut backoff = Duration::from_millis(100);
    // After a reconnect, this consumer's own pending entries first, from this id on: a reply
    // lost with the connection leaves entries delivered (pending) that never arrived here.
    let mut pending_from: Option<String> = None;
    while !control.stop.load(Ordering::Relaxed) && !run.merger.expected_all_done() {
        if let Ok(rules) = control.reloads.try_recv() {
            run.reload(rules);
        }
        let from = pending_from.clone().unwrap_or_else(|| ">".to_string());
        let read: redis::RedisResult<Value> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&config.group)
            .arg(&config.consumer)
            .arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(BLOCK_MS)
            .arg("STREAMS")
            .arg(&key)
            .arg(&from)
            .query(&mut con);
        match read {
            Ok(reply) => {
                backoff = Duration::from_millis(100);
                let entries = read_group_entries(&reply);
                if pending_from.is_some() {
                    // The pending ones are done with when a read of them comes back empty;
                    // those seen before count as duplicates.
                    pending_from = entries.last().map(|(id, _)| id.clone());
                }
                for (id, text) in entries {
                    run.take(&id, text.as_deref(), false);
                }
                run.advance(&mut con, &key, &config.group);
            }
            Err(e) => {
                note!("spamtap: correlate: {name}: {e}; reconnecting");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(BACKOFF_MAX);
                if let Ok(c) = client.get_connection_with_timeout(Duration::from_secs(5)) {
                    con = c;
                    let _ = create_group(&mut con, &key, &config.group);
                    pending_from = Some("0".to_string());
                }
            }
        }
    }
    // Whatever can be done is done and acknowledged; the rest stays pending for the next start.
    run.advance(&mut con, &key, &config.group);
    if run.unreported || run.last == StatsRecord::default() {
        run.write_stats();
    }
    let stats = run.last.clone();
    let outputs = run.outputs.close().map_err(RunError::Output)?;
    Ok(CorrelateSummary {
        stats,
        outputs,
        elapsed: started.elapsed(),
    })
}

/// An entry read and not yet acknowledged.
struct Unacked {
    id: String,
    due: Due,
}

/// When an entry's part in the analysis is done.
enum Due {
    Now,
    /// Once the analysis has ticked to this time.
    At(Timestamp),
    /// Observations ahead of their sensor's next tick: with that tick.
    WithNextTick(String),
}

fn new_analyzer(rules: &Arc<Rules>, shard: Option<(usize, usize)>) -> Analyzer {
    let analyzer = Analyzer::new(Arc::clone(rules));
    match shard {
        Some((index, count)) => analyzer.for_shard(index, count),
        None => analyzer,
    }
}

struct Correlator {
    merger: Merger,
    analyzer: Analyzer,
    shard: Option<(usize, usize)>,
    rules: Arc<Rules>,
    outputs: Outputs,
    writer: EventWriter,
    findings: Vec<Finding>,
    sensor: String,
    /// Entries read and not yet acknowledged, in stream order.
    unacked: VecDeque<Unacked>,
    /// While catching up: results up to this packet time were written before.
    silent_until: Option<Timestamp>,
    reloads: ReloadStats,
    last: StatsRecord,
    /// How far the analysis has got.
    now: Timestamp,
    /// The analysis ticked since the last `stats` event.
    unreported: bool,
}

impl Correlator {
    /// One stream entry; `acked` while catching up on one acknowledged before.
    fn take(&mut self, id: &str, text: Option<&str>, acked: bool) {
        let Some(entry) = text.and_then(|t| serde_json::from_str::<Entry>(t).ok()) else {
            self.merger.stats.invalid += 1;
            self.merger.stats.entries += 1;
            self.unacked.push_back(Unacked {
                id: id.to_string(),
                due: Due::Now,
            });
            return;
        };
        let (due, time) = match &entry.body {
            Body::Tick { ts, .. } => (Due::At(*ts), Some(*ts)),
            // A goodbye is done with at the finish, whatever its time.
            Body::Bye { ts, .. } => (Due::At(Timestamp(u64::MAX)), Some(*ts)),
            Body::Observations { .. } => (Due::WithNextTick(entry.sensor.clone()), None),
            Body::Hello | Body::Event { .. } => (Due::Now, None),
        };
        if let Due::At(at) = due {
            // The observations sent ahead of this tick are done with when it is.
            for waiting in &mut self.unacked {
                if matches!(&waiting.due, Due::WithNextTick(s) if *s == entry.sensor) {
                    waiting.due = Due::At(at);
                }
            }
        }
        if acked && let Some(time) = time {
            self.silent_until = Some(self.silent_until.map_or(time, |s| s.max(time)));
        }
        match self.merger.accept(entry) {
            Accepted::Taken(Some(line)) if !acked => {
                let mut bytes = line.into_bytes();
                bytes.push(b'\n');
                self.outputs.write(Lines::counted(bytes));
            }
            _ => {}
        }
        self.unacked.push_back(Unacked {
            id: id.to_string(),
            due,
        });
    }

    /// Runs the analysis as far as the merge allows, writes what it found, acknowledges.
    fn advance(&mut self, con: &mut redis::Connection, key: &str, group: &str) {
        let mut ack_upto = self.now;
        for step in self.merger.due() {
            let silent = |ts: Timestamp, until: Option<Timestamp>| until.is_some_and(|u| ts <= u);
            match step {
                Step::Tick {
                    id,
                    ts,
                    observations,
                } => {
                    self.analyzer.receive(observations, id);
                    self.analyzer.tick(id, ts, &mut self.findings);
                    self.now = ts;
                    ack_upto = ts;
                    let quiet = silent(ts, self.silent_until);
                    self.emit(quiet);
                    self.unreported = true;
                }
                Step::Finish { ts, observations } => {
                    self.analyzer.receive(observations, u64::MAX);
                    self.analyzer.finish(ts, &mut self.findings);
                    self.now = ts;
                    let quiet = silent(ts, self.silent_until);
                    self.emit(quiet);
                    if !quiet {
                        self.write_stats();
                    }
                    // A new analysis, and a new packet time, for the sensors to come.
                    self.analyzer = new_analyzer(&self.rules, self.shard);
                    self.now = Timestamp::default();
                    ack_upto = Timestamp(u64::MAX);
                }
            }
        }
        let mut ids = Vec::new();
        while let Some(front) = self.unacked.front() {
            match front.due {
                Due::Now => {}
                Due::At(at) if at <= ack_upto => {}
                _ => break,
            }
            if let Some(entry) = self.unacked.pop_front() {
                ids.push(entry.id);
            }
        }
        if !ids.is_empty() {
            // What the entries led to is written before they are acknowledged.
            self.outputs.sync();
            let acked: redis::RedisResult<u64> =
                redis::cmd("XACK").arg(key).arg(group).arg(&ids).query(con);
            if acked.is_err() {
                // Tried again with the next ones; a restart reads them again meanwhile.
                for id in ids.into_iter().rev() {
                    self.unacked.push_front(Unacked { id, due: Due::Now });
                }
            }
        }
    }

    fn emit(&mut self, quiet: bool) {
        let names = self.merger.sensor_names();
        for finding in self.findings.drain(..) {
            if quiet {
                continue;
            }
            // A finding about a group, not a session, was observed by no one sensor.
            let by = match finding.flow {
                Some(_) => names.get(finding.origin).copied().unwrap_or(""),
                None => "",
            };
            let origin = crate::output::Origin::Sensor(by);
            self.writer.emit(&finding.event(&self.sensor, origin));
        }
        self.outputs.write(self.writer.take());
    }

    fn reload(&mut self, rules: Result<Arc<Rules>, String>) {
        match rules {
            Ok(rules) => {
                self.reloads.reloads += 1;
                self.analyzer
                    .reload(Arc::clone(&rules), self.now, &mut self.findings);
                self.rules = rules;
                self.emit(false);
            }
            Err(why) => {
                self.reloads.failed_reloads += 1;
                self.reloads.last_error = Some(why);
            }
        }
    }

    /// A `stats` event: the analysis, the merge, the outputs.
    fn write_stats(&mut self) {
        let mut record = StatsRecord {
            analysis: self.analyzer.stats(),
            rules: self.reloads.clone(),
            output: self.outputs.stats(),
            fleet: Some(self.merger.stats.clone()),
            ..StatsRecord::default()
        };
        record.events = self.writer.counts().clone();
        *record.events.entry("stats").or_default() += 1;
        self.writer.emit(&Event {
            timestamp: self.now,
            sensor: &self.sensor,
            origin: crate::output::Origin::Sensor(""),
            flow: None,
            body: EventBody::Stats(&record),
        });
        self.outputs.write(self.writer.take());
        self.last = record;
        self.unreported = false;
    }
}

/// XGROUP CREATE ... MKSTREAM; a group that exists already is fine.
fn create_group(con: &mut redis::Connection, key: &str, group: &str) -> redis::RedisResult<()> {
    let created: redis::RedisResult<Value> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(key)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query(con);
    match created {
        Ok(Value::ServerError(e)) if e.to_string().contains("BUSYGROUP") => Ok(()),
        Err(e) if e.to_string().contains("BUSYGROUP") => Ok(()),
        Ok(Value::ServerError(e)) => Err(e.into()),
        Err(e) => Err(e),
        Ok(_) => Ok(()),
    }
}

/// The group's last delivered id (`None` for a new group) and the ids pending in it.
fn group_state(
    con: &mut redis::Connection,
    key: &str,
    group: &str,
) -> redis::RedisResult<(Option<String>, HashSet<String>)> {
    let groups: Value = redis::cmd("XINFO").arg("GROUPS").arg(key).query(con)?;
    let mut delivered = None;
    for g in as_array(&groups) {
        let fields = as_array(g);
        let field = |name: &str| {
            fields
                .chunks(2)
                .find(|kv| kv.first().and_then(as_text).as_deref() == Some(name))
                .and_then(|kv| kv.get(1))
                .and_then(as_text)
        };
        if field("name").as_deref() == Some(group) {
            delivered = field("last-delivered-id").filter(|id| id != "0-0");
        }
    }
    let mut pending = HashSet::new();
    let mut from = "-".to_string();
    loop {
        let page: Value = redis::cmd("XPENDING")
            .arg(key)
            .arg(group)
            .arg(&from)
            .arg("+")
            .arg(BATCH)
            .query(con)?;
        let rows = as_array(&page);
        let ids: Vec<String> = rows
            .iter()
            .filter_map(|row| as_array(row).first().and_then(as_text))
            .collect();
        let Some(last) = ids.last() else {
            break;
        };
        from = format!("({last}");
        let full = ids.len() == BATCH;
        pending.extend(ids);
        if !full {
            break;
        }
    }
    Ok((delivered, pending))
}

/// XAUTOCLAIM: this consumer takes over what any other left pending.
fn claim_pending(
    con: &mut redis::Connection,
    key: &str,
    group: &str,
    consumer: &str,
) -> redis::RedisResult<()> {
    let mut cursor = "0-0".to_string();
    loop {
        let reply: Value = redis::cmd("XAUTOCLAIM")
            .arg(key)
            .arg(group)
            .arg(consumer)
            .arg(0)
            .arg(&cursor)
            .arg("COUNT")
            .arg(BATCH)
            .arg("JUSTID")
            .query(con)?;
        cursor = as_array(&reply)
            .first()
            .and_then(as_text)
            .unwrap_or_else(|| "0-0".into());
        if cursor == "0-0" {
            return Ok(());
        }
    }
}

fn as_array(v: &Value) -> &[Value] {
    match v {
        Value::Array(items) => items,
        _ => &[],
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// `[[id, [field, value, ...]], ...]` -> (id, the `entry` field).
fn stream_entries(v: &Value) -> Vec<(String, Option<String>)> {
    as_array(v)
        .iter()
        .filter_map(|item| {
            let parts = as_array(item);
            let id = parts.first().and_then(as_text)?;
            let fields = parts.get(1).map(as_array).unwrap_or_default();
            let entry = fields
                .chunks(2)
                .find(|kv| kv.first().and_then(as_text).as_deref() == Some("entry"))
                .and_then(|kv| kv.get(1))
                .and_then(as_text);
            Some((id, entry))
        })
        .collect()
}

/// XREADGROUP's `[[key, entries]]`, or nil when nothing came.
fn read_group_entries(v: &Value) -> Vec<(String, Option<String>)> {
    as_array(v)
        .iter()
        .flat_map(|stream| {
            as_array(stream)
                .get(1)
                .map(stream_entries)
                .unwrap_or_default()
        })
        .collect()
}
