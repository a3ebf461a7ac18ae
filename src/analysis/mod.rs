//! Analysis: the stage that sees every worker's sessions, in the output thread. It keeps the
//! state that spans flows (software inventory, population per asset group, detection
//! windows) and writes `software`, `asset_summary` and `alert` events.
//!
//! Determinism: workers send [`Observation`]s along with their event bytes, each batch marked
//! with the tick it came before. The capture thread sends a tick every second of packet time,
//! in band; once every worker has passed tick N, everything it will ever report about the
//! packets before it has arrived. Only then are the observations from before tick N processed
//! (a fast worker's later ones wait), sorted by (timestamp, flow id) with ties in a worker's
//! own order, so the alerts are the same whatever the number of workers or their timing.

mod alert;
mod detect;
mod inventory;
mod observation;
mod population;
mod state;

use serde::Serialize;

pub use alert::{Alert, Details, MessageSummary, Signature};
pub use inventory::SoftwareSighting;
pub use observation::{Observation, Observed, SmtpSighting, TunnelSighting};
pub use population::{AssetSummary, HostEntry, Role, RoleSummary, SoftwareCount};

use crate::flow::FlowIdentity;
use crate::rules::Rules;
use crate::software::{Software, SoftwareType};
use crate::timestamp::Timestamp;
use detect::Detectors;
use inventory::Inventory;
use population::Population;
use state::KeyBudget;

/// Observations held between ticks at most (about 200 bytes each, and fewer when the memory
/// budget is smaller, see [`Analyzer::with_memory`]); beyond this they are dropped and counted
/// (a second of packet time with more SMTP sessions and failed port-25 connections).
const MAX_PENDING: usize = 500_000;

/// Counters of the analysis stage, in the `stats` event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AnalysisStats {
    pub observations: u64,
    /// Observations dropped because too many arrived between two ticks.
    pub observation_drops: u64,
    /// Keys (senders, clients, host pairs, host and software) held by the detections and the
    /// software inventory now.
    pub tracked: u64,
    /// New keys refused because a table was full (`limits.max_tracked`).
    pub tracked_refused: u64,
    /// Window entries folded into a neighbour because the window was full
    /// (`limits.max_window_entries`); their counts are kept, their details are not.
    pub window_merges: u64,
    /// Hosts in asset groups now, and hosts not tracked because a group was full
    /// (`limits.max_group_hosts`).
    pub group_hosts: u64,
    pub group_host_drops: u64,
}

/// An event the analysis wants written.
pub struct Finding {
    pub ts: Timestamp,
    /// Index of the input it came from (pcap file or interface).
    pub origin: usize,
    /// The session it is about, if any.
    pub flow: Option<FlowIdentity>,
    pub what: Found,
}

pub enum Found {
    Alert(Alert),
    Software(SoftwareSighting),
    Summary(AssetSummary),
}

/// The shard a host belongs to when sensors publish to several streams (`--publish-shards`)
/// and one correlator reads each: FNV-1a over its bytes, written out so that every sensor and
/// correlator, whatever its version or platform, agrees.
pub fn shard_of(client: std::net::IpAddr, shards: usize) -> usize {
    let octets: Vec<u8> = match client {
        std::net::IpAddr::V4(a) => a.octets().to_vec(),
        std::net::IpAddr::V6(a) => a.octets().to_vec(),
    };
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in octets {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % shards.max(1) as u64) as usize
}

pub struct Analyzer {
    rules: std::sync::Arc<Rules>,
    /// Observations with the tick they came before.
    pending: Vec<(u64, Observation)>,
    pending_cap: usize,
    detectors: Detectors,
    inventory: Inventory,
    population: Population,
    observations: u64,
    observation_drops: u64,
    /// The latest input seen, for events not tied to a flow.
    origin: usize,
    /// When set, every observation processed is also kept here, in the order processed: what
    /// a sensor publishes for `spamtap correlate`.
    processed: Option<Vec<Observation>>,
    /// `spamtap correlate --shard I/N`: the facts about servers (asset-group counts, software)
    /// are this shard's only for the servers that hash to it; every shard sees them, through
    /// its clients, and none may count them twice.
    shard: Option<(usize, usize)>,
}

impl Analyzer {
    pub fn new(rules: std::sync::Arc<Rules>) -> Self {
        Analyzer {
            detectors: Detectors::sharing(&rules, KeyBudget::unlimited()),
            inventory: Inventory::sharing(
                rules.detections.limits.max_tracked,
                KeyBudget::unlimited(),
            ),
            population: Population::new(&rules),
            rules,
            pending: Vec::new(),
            pending_cap: MAX_PENDING,
            observations: 0,
            observation_drops: 0,
            origin: 0,
            processed: None,
            shard: None,
        }
    }

    /// Holds what fits in `bytes`, the analysis' share of the memory budget: half for the
    /// observations pending between ticks (never fewer than 1,024), half for the keys of the
    /// detection tables and the software inventory, together. Called before any observation.
    pub fn with_memory(mut self, bytes: usize) -> Self {
        self.pending_cap = (bytes / 2 / size_of::<(u64, Observation)>()).clamp(1024, MAX_PENDING);
        let keys = KeyBudget::of_bytes(bytes / 2);
        self.detectors = Detectors::sharing(&self.rules, keys.clone());
        self.inventory = Inventory::sharing(self.rules.detections.limits.max_tracked, keys);
        self
    }

    /// Shard `index` of `count` (see [`Analyzer::shard`]).
    pub fn for_shard(mut self, index: usize, count: usize) -> Self {
        self.shard = Some((index, count));
        self
    }

    /// Whether this analysis keeps the server-side facts about `host`.
    fn owns(&self, host: std::net::IpAddr) -> bool {
        self.shard
            .is_none_or(|(index, count)| shard_of(host, count) == index)
    }

    /// Keeps every processed observation for [`Analyzer::take_processed`].
    pub fn keep_processed(mut self) -> Self {
        self.processed = Some(Vec::new());
        self
    }

    /// The observations processed since the last call, in the order processed.
    pub fn take_processed(&mut self) -> Vec<Observation> {
        self.processed
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Holds a worker's observations, sent before tick `epoch`, until that tick.
    pub fn receive(&mut self, observations: Vec<Observation>, epoch: u64) {
        for obs in observations {
            if self.pending.len() < self.pending_cap {
                self.pending.push((epoch, obs));
            } else {
                self.observation_drops += 1;
            }
        }
    }

    /// Every worker has passed tick `id` at packet time `now`: process what they sent before.
    pub fn tick(&mut self, id: u64, now: Timestamp, out: &mut Vec<Finding>) {
        self.process(id, out);
        self.roll_to(now, out);
        self.detectors.expire(now, &self.rules);
    }

    /// The end of the run: process the rest, then the final summaries.
    pub fn finish(&mut self, now: Timestamp, out: &mut Vec<Finding>) {
        self.process(u64::MAX, out);
        let mut produced = Vec::new();
        self.population.finish(now, &self.rules, &mut produced);
        self.emit(produced, out);
    }

    /// New rules from a reload, after tick processing at `now`. Detection windows carry on
    /// under the new thresholds; when the asset groups changed, the current summary interval
    /// is closed at `now` (its summaries are written) and the new groups start afresh.
    pub fn reload(&mut self, rules: std::sync::Arc<Rules>, now: Timestamp, out: &mut Vec<Finding>) {
        let groups = |r: &Rules| {
            r.assets
                .groups
                .iter()
                .map(|g| (std::sync::Arc::clone(&g.name), g.smtp.name()))
                .collect::<Vec<_>>()
        };
        if groups(&rules) != groups(&self.rules) {
            let mut produced = Vec::new();
            self.population.finish(now, &self.rules, &mut produced);
            self.emit(produced, out);
            self.population = Population::new(&rules);
        }
        self.detectors.recheck(now);
        self.rules = rules;
    }

    pub fn stats(&self) -> AnalysisStats {
        let (tracked, tracked_refused) = self.detectors.tracked();
        let (software, software_refused) = self.inventory.tracked();
        AnalysisStats {
            observations: self.observations,
            observation_drops: self.observation_drops,
            tracked: tracked + software,
            tracked_refused: tracked_refused + software_refused,
            window_merges: self.detectors.merged,
            group_hosts: self.population.hosts(),
            group_host_drops: self.population.dropped_hosts,
        }
    }

    fn roll_to(&mut self, now: Timestamp, out: &mut Vec<Finding>) {
        let mut produced = Vec::new();
        self.population.roll_to(now, &self.rules, &mut produced);
        self.emit(produced, out);
    }

    /// Findings about a group, not a session: they name the latest input.
    fn emit(&self, produced: Vec<(Timestamp, Found)>, out: &mut Vec<Finding>) {
        for (ts, what) in produced {
            out.push(Finding {
                ts,
                origin: self.origin,
                flow: None,
                what,
            });
        }
    }

    fn process(&mut self, tick: u64, out: &mut Vec<Finding>) {
        // In place, so a burst is never held twice: the few from a fast worker's next epoch
        // move to the end and stay.
        self.pending.sort_by_key(|(epoch, _)| *epoch);
        let due = self.pending.partition_point(|(epoch, _)| *epoch <= tick);
        let later = self.pending.split_off(due);
        let mut batch = std::mem::replace(&mut self.pending, later);
        // Stable: equal keys come from one flow, hence one worker, in its own order.
        batch.sort_by_key(|(_, o)| (o.ts, o.flow.flow_id));
        for (_, obs) in batch {
            if let Some(kept) = &mut self.processed {
                kept.push(obs.clone());
            }
            self.observations += 1;
            self.origin = obs.origin;
            self.roll_to(obs.ts, out);
            self.track(&obs, out);
            let rules = std::sync::Arc::clone(&self.rules);
            self.detectors.observe(&obs, &rules, &mut |alert| {
                out.push(Finding {
                    ts: obs.ts,
                    origin: obs.origin,
                    flow: Some(obs.flow.clone()),
                    what: Found::Alert(alert),
                })
            });
        }
    }

    /// Population and software inventory.
    fn track(&mut self, obs: &Observation, out: &mut Vec<Finding>) {
        let rules = std::sync::Arc::clone(&self.rules);
        let names = |software: &[Software], server: bool| -> Vec<(String, String)> {
            software
                .iter()
                .filter(|s| (s.kind == SoftwareType::MailServer) == server)
                .map(|s| {
                    let display = match &s.version {
                        Some(v) => format!("{} {v}", s.name),
                        None => s.name.clone(),
                    };
                    (s.name.clone(), display)
                })
                .collect()
        };
        let mut sightings: Vec<(std::net::IpAddr, Software)> = Vec::new();
        match &obs.what {
            Observed::Smtp(smtp) => {
                if smtp.client_spoke {
                    let software = names(&smtp.software, false);
                    self.population
                        .add(obs.client(), Role::SmtpClient, &software, &rules);
                }
                let server_here = self.owns(obs.server());
                if smtp.server_spoke && smtp.tunnel.is_none() && server_here {
                    let software = names(&smtp.software, true);
                    self.population
                        .add(obs.server(), Role::SmtpServer, &software, &rules);
                }
                for s in &smtp.software {
                    let host = if s.kind == SoftwareType::MailServer {
                        if smtp.tunnel.is_some() || !server_here {
                            continue;
                        }
                        obs.server()
                    } else {
                        obs.client()
                    };
                    sightings.push((host, s.clone()));
                }
            }
            Observed::SocksServer { .. } if !self.owns(obs.server()) => {}
            Observed::SocksServer { version } => {
                let proxy = self.inventory.socks_proxy(*version);
                self.population.add(
                    obs.server(),
                    Role::SocksServer,
                    &[(proxy.name.clone(), proxy.name.clone())],
                    &rules,
                );
                sightings.push((obs.server(), proxy));
            }
            Observed::FailedSmtpConnection { .. } => {}
        }
        for (host, software) in sightings {
            if let Some((sighting, alert)) = self.inventory.sighted(host, &software) {
                let finding = |what| Finding {
                    ts: obs.ts,
                    origin: obs.origin,
                    flow: Some(obs.flow.clone()),
                    what,
                };
                out.push(finding(Found::Software(sighting)));
                if let Some(alert) = alert {
                    out.push(finding(Found::Alert(alert)));
                }
            }
        }
    }
}
