//! `--publish`: the sensor's side of `spamtap correlate`. The output thread hands over what its
//! analysis took at each tick; here it becomes numbered [`Entry`]s on a Redis stream, through
//! an output lane of its own (bounded, reconnecting, its losses counted in `stats.output`).
//! With `--publish-shards N` there are N streams, one lane each: an observation goes to the
//! shard of its client address, and every shard gets every hello, tick and goodbye, numbered
//! on its own, so each shard's correlator has the time of every sensor.

use crate::analysis::Observation;
use crate::fleet::{Body, Entry, OBSERVATIONS_PER_ENTRY, shard_of, shard_stream};
use crate::output::{
    Destination, Lines, OutputError, OutputSpec, OutputStats, OutputSummary, Outputs,
};
use crate::timestamp::Timestamp;

/// What `--publish` and `--publish-events` asked for.
#[derive(Clone, Debug)]
pub struct PublishConfig {
    pub spec: OutputSpec,
    /// Also publish every event.
    pub events: bool,
    /// Names this run: the same for a replay of the same files, new for each live start.
    pub run: String,
    /// Streams to spread the observations over, by client address (1: the stream itself).
    pub shards: usize,
}

pub(super) struct Publisher {
    shards: Vec<Shard>,
    sensor: String,
    run: String,
    events: bool,
}

/// One stream of the publisher, with its own numbering.
struct Shard {
    lane: Outputs,
    seq: u64,
    /// Serialised entries for one write.
    lines: Lines,
}

impl Publisher {
    pub fn open(config: &PublishConfig, sensor: &str, live: bool) -> Result<Self, OutputError> {
        let count = config.shards.max(1);
        let mut shards = Vec::with_capacity(count);
        for i in 0..count {
            let mut spec = config.spec.clone();
            if let Destination::Redis(redis) = &mut spec.destination {
                redis.key = shard_stream(&redis.key, i, count);
                if count > 1 {
                    spec.name = format!("{} (shard {i} of {count}: {})", spec.name, redis.key);
                }
            }
            shards.push(Shard {
                lane: Outputs::open_publish(&spec, live)?,
                seq: 0,
                lines: Lines::default(),
            });
        }
        Ok(Publisher {
            shards,
            sensor: sensor.to_string(),
            run: config.run.clone(),
            events: config.events,
        })
    }

    fn push(&mut self, shard: usize, body: Body) {
        let Some(s) = self.shards.get_mut(shard) else {
            return;
        };
        s.seq += 1;
        let entry = Entry {
            sensor: self.sensor.clone(),
            run: self.run.clone(),
            seq: s.seq,
            body,
        };
        // An entry holds only strings, numbers and addresses: serialising cannot fail.
        if serde_json::to_writer(&mut s.lines.bytes, &entry).is_ok() {
            s.lines.bytes.push(b'\n');
            s.lines.count += 1;
        }
    }

    fn flush(&mut self) {
        for s in &mut self.shards {
            if !s.lines.bytes.is_empty() {
                s.lane.write(std::mem::take(&mut s.lines));
            }
        }
    }

    /// `observations` by the shard of their client.
    fn by_shard(&self, observations: Vec<Observation>) -> Vec<Vec<Observation>> {
        let count = self.shards.len();
        let mut split: Vec<Vec<Observation>> = (0..count).map(|_| Vec::new()).collect();
        for o in observations {
            let i = if count > 1 {
                shard_of(o.flow.src_ip, count)
            } else {
                0
            };
            split[i].push(o);
        }
        split
    }

    /// See [`Outputs::capture_stopped`].
    pub fn capture_stopped(&mut self) {
        for s in &mut self.shards {
            s.lane.capture_stopped();
        }
    }

    pub fn hello(&mut self) {
        for i in 0..self.shards.len() {
            self.push(i, Body::Hello);
        }
        self.flush();
    }

    /// Event lines the sensor wrote, when `--publish-events` is on.
    pub fn events(&mut self, lines: &[u8]) {
        if !self.events {
            return;
        }
        for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            self.push(
                0,
                Body::Event {
                    line: String::from_utf8_lossy(line).into_owned(),
                },
            );
        }
        self.flush();
    }

    /// All but the last [`OBSERVATIONS_PER_ENTRY`] of `observations` in entries of their own
    /// on `shard`, which the last (a tick or the goodbye) follows.
    fn split_off_last(
        &mut self,
        shard: usize,
        mut observations: Vec<Observation>,
    ) -> Vec<Observation> {
        let keep = observations.len() % OBSERVATIONS_PER_ENTRY;
        let keep = if keep == 0 && !observations.is_empty() {
            OBSERVATIONS_PER_ENTRY
        } else {
            keep
        };
        let last = observations.split_off(observations.len() - keep);
        let mut rest = observations.into_iter().peekable();
        while rest.peek().is_some() {
            let chunk: Vec<Observation> = rest.by_ref().take(OBSERVATIONS_PER_ENTRY).collect();
            self.push(
                shard,
                Body::Observations {
                    observations: chunk,
                },
            );
        }
        last
    }

    pub fn tick(&mut self, ts: Timestamp, prev: Timestamp, observations: Vec<Observation>) {
        for (i, part) in self.by_shard(observations).into_iter().enumerate() {
            let observations = self.split_off_last(i, part);
            self.push(
                i,
                Body::Tick {
                    ts,
                    prev,
                    observations,
                },
            );
        }
        self.flush();
    }

    pub fn bye(&mut self, ts: Timestamp, first: Option<Timestamp>, observations: Vec<Observation>) {
        for (i, part) in self.by_shard(observations).into_iter().enumerate() {
            let observations = self.split_off_last(i, part);
            self.push(
                i,
                Body::Bye {
                    ts,
                    first,
                    observations,
                },
            );
        }
        self.flush();
    }

    pub fn stats(&self) -> Vec<OutputStats> {
        self.shards.iter().flat_map(|s| s.lane.stats()).collect()
    }

    pub fn close(self) -> Result<Vec<OutputSummary>, OutputError> {
        let mut all = Vec::new();
        for s in self.shards {
            all.extend(s.lane.close()?);
        }
        Ok(all)
    }
}
