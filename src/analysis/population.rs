//! Population tracking: per asset group, which hosts were seen as SMTP client, SMTP server and
//! SOCKS server, and what software they run; an `asset_summary` per group at every summary
//! interval of packet time and at the end of the run; and `smtp_client_surge`, which compares
//! each interval's distinct SMTP clients with the group's baseline.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use super::Found;
use super::alert::{Details, Signature};
use crate::rules::{Rules, UNGROUPED};
use crate::timestamp::Timestamp;

/// What a host was seen doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    SmtpClient = 0,
    SmtpServer = 1,
    SocksServer = 2,
}

/// Software names kept per host.
const MAX_SOFTWARE: usize = 8;

#[derive(Debug, Default)]
struct Host {
    /// Per role: the periods the host was first and last seen in it.
    roles: [Option<(u64, u64)>; 3],
    /// Its software as (the role it was seen in, name, name and version).
    software: Vec<(Role, String, String)>,
}

#[derive(Debug)]
struct Group {
    name: Arc<str>,
    policy: &'static str,
    hosts: BTreeMap<IpAddr, Host>,
    /// Exponentially weighted mean of distinct SMTP clients per interval.
    baseline: Option<f64>,
    intervals: u64,
}

/// A host in a summary list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostEntry {
    pub ip: IpAddr,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub software: Vec<String>,
}

/// One role's part of a summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RoleSummary {
    /// Hosts seen in this role since the start of the run.
    pub total: u64,
    /// ... of which seen in this period.
    pub active: u64,
    /// ... of which seen for the first time in this period.
    pub new: u64,
    /// Hosts active in this period, capped at `summary.max_hosts`.
    pub hosts: Vec<HostEntry>,
    /// Hosts new in this period, capped likewise.
    pub new_hosts: Vec<IpAddr>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SoftwareCount {
    pub name: String,
    pub hosts: u64,
}

/// Body of an `asset_summary` event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AssetSummary {
    pub group: Arc<str>,
    pub policy: &'static str,
    pub period_start: Timestamp,
    /// Seconds the period lasted (packet time).
    pub period: u64,
    /// True for the summary written at the end of the run.
    pub end_of_run: bool,
    pub smtp_clients: RoleSummary,
    pub smtp_servers: RoleSummary,
    pub socks_servers: RoleSummary,
    /// Mail client software of the active SMTP clients, by number of hosts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mail_clients: Vec<SoftwareCount>,
}

#[derive(Debug)]
pub struct Population {
    /// The rules' groups in order, then the hosts in no group.
    groups: Vec<Group>,
    period: u64,
    period_start: Option<Timestamp>,
    next_summary: Option<Timestamp>,
    /// Hosts not tracked because their group was full.
    pub dropped_hosts: u64,
}

impl Population {
    pub fn new(rules: &Rules) -> Self {
        let mut groups: Vec<Group> = rules
            .assets
            .groups
            .iter()
            .map(|g| Group {
                name: Arc::clone(&g.name),
                policy: g.smtp.name(),
                hosts: BTreeMap::new(),
                baseline: None,
                intervals: 0,
            })
            .collect();
        groups.push(Group {
            name: Arc::from(UNGROUPED),
            policy: "allow",
            hosts: BTreeMap::new(),
            baseline: None,
            intervals: 0,
        });
        Population {
            groups,
            period: 0,
            period_start: None,
            next_summary: None,
            dropped_hosts: 0,
        }
    }

    pub fn hosts(&self) -> u64 {
        self.groups.iter().map(|g| g.hosts.len() as u64).sum()
    }

    /// Notes a host in a role, with the software seen on it as (name, name and version), in
    /// every group it belongs to.
    pub fn add(&mut self, ip: IpAddr, role: Role, software: &[(String, String)], rules: &Rules) {
        let mut ids = rules.assets.group_ids(ip);
        if ids.is_empty() {
            ids.push(self.groups.len() - 1);
        }
        let cap = rules.detections.limits.max_group_hosts;
        for id in ids {
            let Some(group) = self.groups.get_mut(id) else {
                continue;
            };
            if group.hosts.len() >= cap && !group.hosts.contains_key(&ip) {
                self.dropped_hosts += 1;
                continue;
            }
            let host = group.hosts.entry(ip).or_default();
            let seen = &mut host.roles[role as usize];
            *seen = Some((seen.map_or(self.period, |s| s.0), self.period));
            for (name, display) in software {
                // Copied only when new: a host is seen with the same software session after
                // session.
                let known = host
                    .software
                    .iter()
                    .any(|(r, n, d)| *r == role && n == name && d == display);
                if !known && host.software.len() < MAX_SOFTWARE {
                    host.software.push((role, name.clone(), display.clone()));
                }
            }
        }
    }

    /// Writes the summaries of every interval boundary up to `now`. A jump over several
    /// boundaries writes one summary (the quiet intervals after it are empty) and counts the
    /// quiet intervals into the surge baselines as zero clients.
    pub fn roll_to(&mut self, now: Timestamp, rules: &Rules, out: &mut Vec<(Timestamp, Found)>) {
        let interval = rules.detections.summary.interval;
        let start = *self.period_start.get_or_insert(now);
        if interval == 0 {
            return;
        }
        let micros = interval.saturating_mul(Timestamp::MICROS_PER_SEC);
        let next = *self
            .next_summary
            .get_or_insert(Timestamp((start.0 / micros + 1).saturating_mul(micros)));
        if now < next {
            return;
        }
        self.summarise(next, false, rules, out);
        let skipped = (now.0 - next.0) / micros;
        if skipped > 0 {
            let keep = (1.0 - rules.detections.smtp_client_surge.smoothing)
                .powi(skipped.min(1 << 20) as i32);
            for g in &mut self.groups {
                g.baseline = g.baseline.map(|b| b * keep);
                g.intervals += skipped;
            }
        }
        let boundary = Timestamp(now.0 / micros * micros);
        self.period_start = Some(boundary);
        self.next_summary = Some(Timestamp(boundary.0.saturating_add(micros)));
    }

    /// The summaries at the end of the run.
    pub fn finish(&mut self, now: Timestamp, rules: &Rules, out: &mut Vec<(Timestamp, Found)>) {
        self.roll_to(now, rules, out);
        self.summarise(now, true, rules, out);
    }

    fn summarise(
        &mut self,
        end: Timestamp,
        end_of_run: bool,
        rules: &Rules,
        out: &mut Vec<(Timestamp, Found)>,
    ) {
        let settings = &rules.detections;
        let start = self.period_start.unwrap_or(end);
        let period = self.period;
        let max_hosts = settings.summary.max_hosts;
        let last = self.groups.len() - 1;
        for (index, group) in self.groups.iter_mut().enumerate() {
            if index == last && group.hosts.is_empty() {
                continue;
            }
            let role = |r: Role| {
                let mut s = RoleSummary::default();
                for (ip, host) in &group.hosts {
                    let Some((first, last)) = host.roles[r as usize] else {
                        continue;
                    };
                    s.total += 1;
                    if last == period {
                        s.active += 1;
                        if s.hosts.len() < max_hosts {
                            s.hosts.push(HostEntry {
                                ip: *ip,
                                software: host
                                    .software
                                    .iter()
                                    .filter(|(role, _, _)| *role == r)
                                    .map(|(_, _, display)| display.clone())
                                    .collect(),
                            });
                        }
                    }
                    if first == period {
                        s.new += 1;
                        if s.new_hosts.len() < max_hosts {
                            s.new_hosts.push(*ip);
                        }
                    }
                }
                s
            };
            let smtp_clients = role(Role::SmtpClient);
            let smtp_servers = role(Role::SmtpServer);
            let socks_servers = role(Role::SocksServer);
            let mut software: BTreeMap<&str, u64> = BTreeMap::new();
            for host in group.hosts.values() {
                if host.roles[Role::SmtpClient as usize].is_some_and(|(_, last)| last == period) {
                    let mut names: Vec<&str> = host
                        .software
                        .iter()
                        .filter(|(role, _, _)| *role == Role::SmtpClient)
                        .map(|(_, name, _)| name.as_str())
                        .collect();
                    names.sort_unstable();
                    names.dedup();
                    for name in names {
                        *software.entry(name).or_default() += 1;
                    }
                }
            }
            let mut mail_clients: Vec<SoftwareCount> = software
                .into_iter()
                .map(|(name, hosts)| SoftwareCount {
                    name: name.to_string(),
                    hosts,
                })
                .collect();
            mail_clients.sort_by(|a, b| b.hosts.cmp(&a.hosts).then(a.name.cmp(&b.name)));

            if !end_of_run && settings.smtp_client_surge.enabled {
                let surge = &settings.smtp_client_surge;
                let clients = smtp_clients.active;
                if let Some(baseline) = group.baseline.filter(|_| group.intervals >= surge.warmup)
                    && clients >= surge.min_clients
                    && clients as f64 > baseline * surge.factor
                {
                    let alert = Signature::SmtpClientSurge.alert(
                        None,
                        Details::SmtpClientSurge {
                            group: group.name.to_string(),
                            clients,
                            baseline: (baseline * 100.0).round() / 100.0,
                            factor: surge.factor,
                            interval: settings.summary.interval,
                            hosts: smtp_clients.hosts.iter().take(20).map(|h| h.ip).collect(),
                        },
                    );
                    out.push((end, Found::Alert(alert)));
                }
                let c = clients as f64;
                group.baseline = Some(match group.baseline {
                    None => c,
                    Some(b) => b + surge.smoothing * (c - b),
                });
                group.intervals += 1;
            }
            out.push((
                end,
                Found::Summary(AssetSummary {
                    group: Arc::clone(&group.name),
                    policy: group.policy,
                    period_start: start,
                    period: end.secs().saturating_sub(start.secs()),
                    end_of_run,
                    smtp_servers,
                    socks_servers,
                    smtp_clients,
                    mail_clients,
                }),
            ));
        }
        self.period += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        let mut rules = Rules::default();
        rules.detections.summary.interval = 10;
        rules.detections.smtp_client_surge.min_clients = 3;
        rules.detections.smtp_client_surge.warmup = 2;
        rules.detections.smtp_client_surge.smoothing = 0.5;
        rules
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    fn client(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    fn surges(out: &[(Timestamp, Found)]) -> Vec<u64> {
        out.iter()
            .filter_map(|(_, o)| match o {
                Found::Alert(a) => match a.details {
                    Details::SmtpClientSurge { clients, .. } => Some(clients),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    #[test]
    fn quiet_intervals_lower_the_baseline() {
        let rules = rules();
        let mut p = Population::new(&rules);
        let mut out = Vec::new();
        // 4 clients in each of the first two intervals: baseline 4.
        for (start, n) in [(1, 4), (11, 4)] {
            p.roll_to(at(start), &rules, &mut out);
            for i in 0..n {
                p.add(client(i + start as u8), Role::SmtpClient, &[], &rules);
            }
        }
        // Then quiet until 80 s: six empty intervals halve the baseline six times (4 -> 0.0625).
        p.roll_to(at(80), &rules, &mut out);
        for i in 0..3 {
            p.add(client(100 + i), Role::SmtpClient, &[], &rules);
        }
        p.roll_to(at(90), &rules, &mut out);
        assert_eq!(
            surges(&out),
            vec![3],
            "3 clients against a decayed baseline"
        );
        let summaries: Vec<(Timestamp, u64)> = out
            .iter()
            .filter_map(|o| match o {
                (ts, Found::Summary(s)) if &*s.group == UNGROUPED => {
                    Some((*ts, s.smtp_clients.active))
                }
                _ => None,
            })
            .collect();
        // One summary per boundary crossed with traffic; the quiet stretch gives one.
        assert_eq!(summaries, vec![(at(10), 4), (at(20), 4), (at(90), 3)],);
    }

    #[test]
    fn no_surge_before_the_warmup_or_under_the_minimum() {
        let rules = rules();
        let mut p = Population::new(&rules);
        let mut out = Vec::new();
        p.roll_to(at(1), &rules, &mut out);
        p.add(client(1), Role::SmtpClient, &[], &rules);
        // Interval 2: 9 clients, but only one interval of baseline so far.
        p.roll_to(at(11), &rules, &mut out);
        for i in 0..9 {
            p.add(client(10 + i), Role::SmtpClient, &[], &rules);
        }
        p.roll_to(at(21), &rules, &mut out);
        assert!(surges(&out).is_empty());
    }
}
