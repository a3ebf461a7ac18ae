//! Many sensors, one analysis: what a sensor publishes to a Redis stream for
//! `spamtap correlate`, and the merge the correlator runs on the entries of all sensors.
//!
//! A sensor publishes, in order and numbered per sensor (`seq`): a `hello`; at each tick of its
//! packet time a `tick` with the observations its own analysis took at that tick; optionally
//! its events; and at the end a `bye` with the observations of the flows drained then. The
//! [`Merger`] puts the sensors together by packet time: the slowest sensor's latest tick is the
//! watermark, and the correlator ticks its analysis at every second at which any sensor
//! ticked, up to it, so the analysis sees what one sensor on the whole capture would have
//! seen. Entries are idempotent by sensor, run and `seq`, so a sensor that replays again after
//! a crash adds nothing twice; a sensor more than the lateness bound behind the others stops
//! holding time back, and what it sends for times already passed is counted as late.
//!
//! Pure: no I/O here; `crate::runtime::correlate` reads the stream and runs the analysis.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::analysis::Observation;
pub use crate::analysis::shard_of;
use crate::timestamp::Timestamp;

/// The stream of shard `shard` of `shards`: the stream itself when there is one, else
/// `STREAM:0` ... `STREAM:N-1`.
pub fn shard_stream(stream: &str, shard: usize, shards: usize) -> String {
    if shards <= 1 {
        stream.to_string()
    } else {
        format!("{stream}:{shard}")
    }
}

/// Observations in one entry at most.
pub const OBSERVATIONS_PER_ENTRY: usize = 256;

/// The lateness bound of live sensors when `--lateness` is not given.
pub const LIVE_LATENESS_SECS: u64 = 60;

/// One stream entry, the JSON in its `entry` field.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    pub sensor: String,
    /// Which run of the sensor: the same for a replay of the same files (so a replay run again
    /// after a crash is recognised), new for every live start.
    pub run: String,
    /// 1, 2, 3, ... within a run.
    pub seq: u64,
    #[serde(flatten)]
    pub body: Body,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    Hello,
    /// Observations of the tick that follows, when there are more than fit one entry
    /// ([`OBSERVATIONS_PER_ENTRY`]): entries stay small however busy a second is.
    Observations {
        observations: Vec<Observation>,
    },
    /// The sensor's packet time reached `ts`; `prev` is its tick before (for its first tick,
    /// the second of its first packet). `observations` are those its analysis took at `ts`.
    Tick {
        ts: Timestamp,
        prev: Timestamp,
        observations: Vec<Observation>,
    },
    /// One of the sensor's events, as it wrote it (with `--publish-events`).
    Event {
        line: String,
    },
    /// The end of the run at packet time `ts`: the observations taken since the last tick,
    /// those of the flows drained then among them. `first` is the second of its first packet,
    /// if it had any.
    Bye {
        ts: Timestamp,
        first: Option<Timestamp>,
        observations: Vec<Observation>,
    },
}

impl Entry {
    /// How many observations the entry carries.
    pub fn observations(&self) -> usize {
        match &self.body {
            Body::Observations { observations }
            | Body::Tick { observations, .. }
            | Body::Bye { observations, .. } => observations.len(),
            _ => 0,
        }
    }
}

/// The correlator's own counters, in its `stats` events (`stats.fleet`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FleetStats {
    /// Entries read from the stream.
    pub entries: u64,
    /// Entries already seen (same sensor, run and seq): ignored.
    pub duplicates: u64,
    /// Entries that could not be read (not spamtap's, or from a newer version): ignored.
    pub invalid: u64,
    /// Observations that came for a time the merge had already passed: counted, not merged.
    pub late_observations: u64,
    /// Sensors that have said hello.
    pub sensors: u64,
    /// Sensors left out of the watermark for lagging more than the lateness bound.
    pub lagging: u64,
    /// Events forwarded from the sensors (`--publish-events`).
    pub forwarded_events: u64,
}

/// What the correlator's analysis is to do next.
#[derive(Debug)]
pub enum Step {
    /// Receive `observations` (origin: the sensor's index) before tick `id` at `ts`, then tick:
    /// those its sensors saw before `ts`, as one sensor would have taken them at that tick.
    Tick {
        id: u64,
        ts: Timestamp,
        observations: Vec<Observation>,
    },
    /// Every sensor is done: receive the rest, then finish at `ts`.
    Finish {
        ts: Timestamp,
        observations: Vec<Observation>,
    },
}

#[derive(Debug)]
struct Sensor {
    name: String,
    run: String,
    last_seq: u64,
    /// Its latest tick.
    mark: Option<Timestamp>,
    done: bool,
}

/// What became of an entry given to [`Merger::accept`].
#[derive(Debug, PartialEq)]
pub enum Accepted {
    /// Taken; an event line to forward, if it was one.
    Taken(Option<String>),
    Duplicate,
}

/// The merge of every sensor's entries by packet time.
#[derive(Debug)]
pub struct Merger {
    /// Sensors to wait for before time advances (`--sensors`); others join when they say hello.
    expected: Vec<String>,
    /// `--lateness`; without it, [`LIVE_LATENESS_SECS`] for live sensors and none for replays.
    lateness_micros: Option<u64>,
    sensors: Vec<Sensor>,
    /// Observations not yet handed to the analysis, with the sensor's index as origin. Those of
    /// flows drained at a sensor's end were seen at the end of time, and wait for the finish.
    pending: Vec<Observation>,
    /// Seconds at which some sensor ticked (or had its first packet).
    seconds: BTreeSet<Timestamp>,
    /// The time the analysis has been ticked to.
    processed: Option<Timestamp>,
    next_id: u64,
    /// Latest packet time any sensor reached.
    last: Timestamp,
    /// The finish is done and nothing new has come since.
    finished: bool,
    pub stats: FleetStats,
}

impl Merger {
    pub fn new(expected: Vec<String>, lateness_secs: Option<u64>) -> Self {
        Merger {
            expected,
            lateness_micros: lateness_secs.map(|s| s.saturating_mul(Timestamp::MICROS_PER_SEC)),
            sensors: Vec::new(),
            pending: Vec::new(),
            seconds: BTreeSet::new(),
            processed: None,
            next_id: 0,
            last: Timestamp::default(),
            finished: false,
            stats: FleetStats::default(),
        }
    }

    /// Sensor names by index: the `origin` of the observations handed out.
    pub fn sensor_names(&self) -> Vec<&str> {
        self.sensors.iter().map(|s| s.name.as_str()).collect()
    }

    /// The index of `name`, added if new.
    fn sensor(&mut self, name: &str, run: &str) -> usize {
        if let Some(i) = self.sensors.iter().position(|s| s.name == name) {
            return i;
        }
        self.stats.sensors += 1;
        self.sensors.push(Sensor {
            name: name.to_string(),
            run: run.to_string(),
            last_seq: 0,
            mark: None,
            done: false,
        });
        self.sensors.len() - 1
    }

    /// The lateness bound of a sensor's run: `--lateness`, or by default one for live capture
    /// (a tap whose clock is off, or a sensor that stalls, must not hold the site back) and
    /// none for a replay (replays race; what they send is complete, and is waited for).
    fn bound(&self, run: &str) -> Option<u64> {
        self.lateness_micros.or_else(|| {
            run.starts_with("live-")
                .then_some(LIVE_LATENESS_SECS * Timestamp::MICROS_PER_SEC)
        })
    }

    /// Whether time `ts` of sensor `index` is beyond its bound behind another sensor still
    /// running.
    fn lags(&self, index: usize, ts: Timestamp) -> bool {
        let Some(bound) = self.sensors.get(index).and_then(|s| self.bound(&s.run)) else {
            return false;
        };
        let fastest = self
            .sensors
            .iter()
            .enumerate()
            .filter(|(i, s)| *i != index && !s.done)
            .filter_map(|(_, s)| s.mark)
            .max();
        fastest.is_some_and(|f| f.0.saturating_sub(ts.0) > bound)
    }

    /// Takes one entry, in stream order.
    pub fn accept(&mut self, entry: Entry) -> Accepted {
        self.stats.entries += 1;
        let index = self.sensor(&entry.sensor, &entry.run);
        if self.sensors[index].run != entry.run {
            // A new run of the sensor: its numbering starts again.
            let sensor = &mut self.sensors[index];
            sensor.run = entry.run.clone();
            sensor.last_seq = 0;
            sensor.done = false;
        }
        // Late: the merge has passed its time already, or it lags beyond its bound. A
        // goodbye's drained flows go to the finish, which is never passed.
        let late = match &entry.body {
            Body::Tick { ts, .. } => {
                self.processed.is_some_and(|p| *ts <= p) || self.lags(index, *ts)
            }
            Body::Bye { ts, .. } => self.lags(index, *ts),
            // They belong to the sensor's next tick, whose time is not known yet: late if the
            // sensor lags already.
            Body::Observations { .. } => self.sensors[index]
                .mark
                .is_some_and(|m| self.lags(index, m)),
            _ => false,
        };
        let sensor = &mut self.sensors[index];
        if entry.seq <= sensor.last_seq {
            self.stats.duplicates += 1;
            return Accepted::Duplicate;
        }
        sensor.last_seq = entry.seq;
        if !matches!(entry.body, Body::Event { .. }) {
            self.finished = false;
        }
        match entry.body {
            Body::Hello => {
                sensor.done = false;
                Accepted::Taken(None)
            }
            Body::Observations { mut observations } => {
                if late {
                    self.stats.late_observations += observations.len() as u64;
                    return Accepted::Taken(None);
                }
                for o in &mut observations {
                    o.origin = index;
                }
                self.pending.append(&mut observations);
                Accepted::Taken(None)
            }
            Body::Event { line } => {
                self.stats.forwarded_events += 1;
                Accepted::Taken(Some(line))
            }
            Body::Tick {
                ts,
                prev,
                mut observations,
            } => {
                sensor.mark = Some(sensor.mark.map_or(ts, |m| m.max(ts)));
                self.last = self.last.max(ts);
                if late {
                    self.stats.late_observations += observations.len() as u64;
                    return Accepted::Taken(None);
                }
                self.seconds.insert(ts);
                self.seconds.insert(prev);
                for o in &mut observations {
                    o.origin = index;
                }
                self.pending.append(&mut observations);
                Accepted::Taken(None)
            }
            Body::Bye {
                ts,
                first,
                mut observations,
            } => {
                sensor.done = true;
                if late {
                    self.stats.late_observations += observations.len() as u64;
                    return Accepted::Taken(None);
                }
                self.last = self.last.max(ts);
                if let Some(first) = first {
                    self.seconds.insert(first);
                }
                for o in &mut observations {
                    o.origin = index;
                }
                self.pending.append(&mut observations);
                Accepted::Taken(None)
            }
        }
    }

    /// The slowest sensor's time that still counts; `None` while one it waits for is silent.
    fn watermark(&mut self) -> Option<Timestamp> {
        for name in &self.expected {
            if !self.sensors.iter().any(|s| &s.name == name) {
                return None;
            }
        }
        let active: Vec<&Sensor> = self.sensors.iter().filter(|s| !s.done).collect();
        if active.is_empty() {
            return Some(Timestamp(u64::MAX));
        }
        let mut marks = Vec::with_capacity(active.len());
        for s in &active {
            marks.push((s.mark?, self.bound(&s.run)));
        }
        let fastest = marks.iter().map(|(m, _)| *m).max()?;
        let counted: Vec<Timestamp> = marks
            .iter()
            .filter(|(m, bound)| bound.is_none_or(|b| fastest.0.saturating_sub(m.0) <= b))
            .map(|(m, _)| *m)
            .collect();
        self.stats.lagging = (marks.len() - counted.len()) as u64;
        counted.into_iter().min()
    }

    /// What the analysis can do now: ticks up to the watermark, and the finish once every
    /// sensor is done (after which the merge starts afresh for sensors to come).
    pub fn due(&mut self) -> Vec<Step> {
        let Some(watermark) = self.watermark() else {
            return Vec::new();
        };
        let mut steps = Vec::new();
        let first = self.seconds.first().copied();
        let from = self.processed;
        let due: Vec<Timestamp> = self
            .seconds
            .iter()
            .copied()
            .filter(|t| Some(*t) != first && from.is_none_or(|p| *t > p) && *t <= watermark)
            .collect();
        for ts in due {
            let (now, later): (Vec<Observation>, Vec<Observation>) =
                std::mem::take(&mut self.pending)
                    .into_iter()
                    .partition(|o| o.seen < ts);
            self.pending = later;
            steps.push(Step::Tick {
                id: self.next_id,
                ts,
                observations: now,
            });
            self.next_id += 1;
            self.processed = Some(ts);
        }
        let all_done = !self.sensors.is_empty() && self.sensors.iter().all(|s| s.done);
        if all_done && watermark == Timestamp(u64::MAX) && !self.finished {
            self.finished = true;
            let rest = std::mem::take(&mut self.pending);
            steps.push(Step::Finish {
                ts: self.last,
                observations: rest,
            });
            self.seconds.clear();
            self.processed = None;
            self.next_id = 0;
            self.last = Timestamp::default();
            for s in &mut self.sensors {
                s.mark = None;
            }
        }
        steps
    }

    /// Whether every sensor named in `--sensors` has said goodbye (the correlator may stop).
    pub fn expected_all_done(&self) -> bool {
        !self.expected.is_empty()
            && self
                .expected
                .iter()
                .all(|name| self.sensors.iter().any(|s| &s.name == name && s.done))
    }

    /// Observations waiting for time to advance, per sensor name: for the correlator's stats.
    pub fn waiting(&self) -> BTreeMap<&str, usize> {
        let mut by = BTreeMap::new();
        for o in &self.pending {
            if let Some(s) = self.sensors.get(o.origin) {
                *by.entry(s.name.as_str()).or_default() += 1;
            }
        }
        by
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Observed;
    use crate::flow::FlowIdentity;

    fn obs(secs: f64) -> Observation {
        Observation {
            ts: Timestamp((secs * 1e6) as u64),
            seen: Timestamp((secs * 1e6) as u64),
            origin: 0,
            flow: FlowIdentity {
                flow_id: 1,
                community_id: Default::default(),
                src_ip: "10.0.0.1".parse().unwrap(),
                src_port: 1025,
                dest_ip: "10.0.0.2".parse().unwrap(),
                dest_port: 25,
                vlan: Default::default(),
                src_groups: Vec::new(),
                dest_groups: Vec::new(),
            },
            what: Observed::Smtp(Box::default()),
        }
    }

    fn entry(sensor: &str, seq: u64, body: Body) -> Entry {
        Entry {
            sensor: sensor.into(),
            run: "r1".into(),
            seq,
            body,
        }
    }

    fn tick(sensor: &str, seq: u64, ts: u64, prev: u64, o: Vec<Observation>) -> Entry {
        entry(
            sensor,
            seq,
            Body::Tick {
                ts: Timestamp::from_secs(ts),
                prev: Timestamp::from_secs(prev),
                observations: o,
            },
        )
    }

    fn ticks(steps: &[Step]) -> Vec<(u64, usize)> {
        steps
            .iter()
            .map(|s| match s {
                Step::Tick {
                    ts, observations, ..
                } => (ts.secs(), observations.len()),
                Step::Finish { ts, observations } => (1000 + ts.secs(), observations.len()),
            })
            .collect()
    }

    #[test]
    fn shards_are_stable_and_spread() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        // FNV-1a of the four bytes, fixed: sensors of any version agree.
        assert_eq!(shard_of(ip("10.0.0.1"), 1), 0);
        let first = shard_of(ip("10.20.1.10"), 4);
        assert_eq!(shard_of(ip("10.20.1.10"), 4), first);
        let mut seen = [0; 4];
        for i in 0..=255u8 {
            seen[shard_of(ip(&format!("10.20.{i}.2")), 4)] += 1;
        }
        assert!(seen.iter().all(|n| *n > 30), "{seen:?}");
        assert_eq!(shard_stream("fleet", 2, 4), "fleet:2");
        assert_eq!(shard_stream("fleet", 0, 1), "fleet");
    }

    #[test]
    fn entries_round_trip_as_json() {
        let e = tick("s0", 2, 5, 4, vec![obs(4.5)]);
        let text = serde_json::to_string(&e).unwrap();
        assert!(text.contains("\"kind\":\"tick\""), "{text}");
        let back: Entry = serde_json::from_str(&text).unwrap();
        assert_eq!(back.sensor, "s0");
        assert_eq!(back.observations(), 1);
    }

    #[test]
    fn the_slowest_sensor_holds_time_and_ticks_are_the_union() {
        let mut m = Merger::new(vec!["a".into(), "b".into()], Some(60));
        m.accept(entry("a", 1, Body::Hello));
        m.accept(tick("a", 2, 3, 1, vec![obs(1.5), obs(2.5)]));
        assert!(m.due().is_empty(), "b has not said hello");
        m.accept(entry("b", 1, Body::Hello));
        assert!(m.due().is_empty(), "b has no time yet");
        m.accept(tick("b", 2, 2, 0, vec![obs(0.5), obs(1.7)]));
        // Seconds 0 (b's first), 1, 2, 3; time is at b's 2: ticks 1 and 2.
        assert_eq!(ticks(&m.due()), [(1, 1), (2, 2)]);
        // b ends with a flow still open: drained, seen at the end of time.
        let mut drained = obs(1.9);
        drained.seen = Timestamp(u64::MAX);
        m.accept(entry(
            "b",
            3,
            Body::Bye {
                ts: Timestamp::from_secs(2),
                first: Some(Timestamp::from_secs(0)),
                observations: vec![drained],
            },
        ));
        assert_eq!(ticks(&m.due()), [(3, 1)]);
        m.accept(entry(
            "a",
            3,
            Body::Bye {
                ts: Timestamp::from_secs(3),
                first: Some(Timestamp::from_secs(1)),
                observations: vec![],
            },
        ));
        // b's drained flow waits for the finish, as on one sensor; and there is one finish.
        assert_eq!(ticks(&m.due()), [(1003, 1)]);
        assert!(m.due().is_empty());
        assert!(m.expected_all_done());
    }

    #[test]
    fn observations_sent_ahead_go_with_their_tick() {
        let mut m = Merger::new(Vec::new(), None);
        m.accept(entry("a", 1, Body::Hello));
        m.accept(tick("a", 2, 1, 0, vec![]));
        m.accept(entry(
            "a",
            3,
            Body::Observations {
                observations: vec![obs(1.2), obs(1.4)],
            },
        ));
        assert_eq!(ticks(&m.due()), [(1, 0)], "not before their tick");
        m.accept(tick("a", 4, 2, 1, vec![obs(1.6)]));
        assert_eq!(ticks(&m.due()), [(2, 3)]);
    }

    #[test]
    fn duplicates_are_ignored_and_a_new_run_starts_again() {
        let mut m = Merger::new(Vec::new(), Some(60));
        assert_eq!(m.accept(entry("a", 1, Body::Hello)), Accepted::Taken(None));
        m.accept(tick("a", 2, 3, 1, vec![obs(1.5)]));
        // The same replay, started again after a crash.
        assert_eq!(m.accept(entry("a", 1, Body::Hello)), Accepted::Duplicate);
        assert_eq!(
            m.accept(tick("a", 2, 3, 1, vec![obs(1.5)])),
            Accepted::Duplicate
        );
        assert_eq!(m.stats.duplicates, 2);
        assert_eq!(m.pending.len(), 1);
        let mut other = entry("a", 1, Body::Hello);
        other.run = "r2".into();
        assert_eq!(m.accept(other), Accepted::Taken(None));
    }

    #[test]
    fn a_sensor_beyond_the_bound_stops_holding_time_and_is_late() {
        let mut m = Merger::new(Vec::new(), Some(10));
        m.accept(entry("fast", 1, Body::Hello));
        m.accept(entry("slow", 1, Body::Hello));
        m.accept(tick("fast", 2, 100, 99, vec![obs(99.5)]));
        m.accept(tick("slow", 2, 50, 49, vec![obs(49.5)]));
        // slow is 50 s behind, beyond 10: what it sends is late, and time follows fast.
        assert_eq!(m.stats.late_observations, 1);
        assert_eq!(ticks(&m.due()), [(100, 1)]);
        assert_eq!(m.stats.lagging, 1);
        m.accept(tick("slow", 3, 51, 50, vec![obs(50.5), obs(50.7)]));
        assert_eq!(m.stats.late_observations, 3);
    }
}
