//! `--publish`: the sensor's side of `spamtap correlate`. The output thread hands over what its
//! analysis took at each tick; here it becomes numbered [`Entry`]s on a Redis stream, through
//! an output lane of its own (bounded, reconnecting, its losses counted in `stats.output`).

use crate::analysis::Observation;
use crate::fleet::{Body, Entry, OBSERVATIONS_PER_ENTRY};
use crate::output::{OutputError, OutputSpec, OutputStats, OutputSummary, Outputs};
use crate::timestamp::Timestamp;

/// What `--publish` and `--publish-events` asked for.
#[derive(Clone, Debug)]
pub struct PublishConfig {
    pub spec: OutputSpec,
    /// Also publish every event.
    pub events: bool,
    /// Names this run: the same for a replay of the same files, new for each live start.
    pub run: String,
}

pub(super) struct Publisher {
    lane: Outputs,
    sensor: String,
    run: String,
    seq: u64,
    events: bool,
    /// Serialised entries for one write.
    lines: Vec<u8>,
}

impl Publisher {
    pub fn open(config: &PublishConfig, sensor: &str, live: bool) -> Result<Self, OutputError> {
        Ok(Publisher {
            lane: Outputs::open_publish(&config.spec, live)?,
            sensor: sensor.to_string(),
            run: config.run.clone(),
            seq: 0,
            events: config.events,
            lines: Vec::new(),
        })
    }

    fn push(&mut self, body: Body) {
        self.seq += 1;
        let entry = Entry {
            sensor: self.sensor.clone(),
            run: self.run.clone(),
            seq: self.seq,
            body,
        };
        // An entry holds only strings, numbers and addresses: serialising cannot fail.
        if serde_json::to_writer(&mut self.lines, &entry).is_ok() {
            self.lines.push(b'\n');
        }
    }

    fn flush(&mut self) {
        if !self.lines.is_empty() {
            self.lane.write(std::mem::take(&mut self.lines));
        }
    }

    pub fn hello(&mut self) {
        self.push(Body::Hello);
        self.flush();
    }

    /// Event lines the sensor wrote, when `--publish-events` is on.
    pub fn events(&mut self, lines: &[u8]) {
        if !self.events {
            return;
        }
        for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            self.push(Body::Event {
                line: String::from_utf8_lossy(line).into_owned(),
            });
        }
        self.flush();
    }

    /// All but the last [`OBSERVATIONS_PER_ENTRY`] of `observations` in entries of their own,
    /// which the last (a tick or the goodbye) follows.
    fn split_off_last(&mut self, mut observations: Vec<Observation>) -> Vec<Observation> {
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
            self.push(Body::Observations {
                observations: chunk,
            });
        }
        last
    }

    pub fn tick(&mut self, ts: Timestamp, prev: Timestamp, observations: Vec<Observation>) {
        let observations = self.split_off_last(observations);
        self.push(Body::Tick {
            ts,
            prev,
            observations,
        });
        self.flush();
    }

    pub fn bye(&mut self, ts: Timestamp, first: Option<Timestamp>, observations: Vec<Observation>) {
        let observations = self.split_off_last(observations);
        self.push(Body::Bye {
            ts,
            first,
            observations,
        });
        self.flush();
    }

    pub fn stats(&self) -> Vec<OutputStats> {
        self.lane.stats()
    }

    pub fn close(self) -> Result<Vec<OutputSummary>, OutputError> {
        self.lane.close()
    }
}
