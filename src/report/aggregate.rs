//! One streaming pass over spamtap's events into what the report draws. Memory is bounded
//! whatever the input: time is cut into at most [`MAX_BUCKETS`] intervals (twice as wide each
//! time there would be more), hosts counted per interval up to [`HOSTS_PER_BUCKET`] (beyond,
//! shown as "at least"), and every table keeps its top entries and counts the rest.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use serde_json::Value;

/// Intervals on a time axis at most.
pub const MAX_BUCKETS: usize = 96;
/// Distinct hosts counted per interval and series; beyond, the count is a lower bound.
pub const HOSTS_PER_BUCKET: usize = 5_000;
/// Rows kept in a table (the rest are counted).
pub const TABLE_ROWS: usize = 200;
/// Distinct keys (senders, hosts, software) tracked for a table; the rest are counted.
pub const MAX_KEYS: usize = 100_000;
/// Senders counted per interval for the per-window ranking; the rest go under [`OTHERS`].
pub const SENDERS_PER_BUCKET: usize = 1_000;
pub const OTHERS: &str = "(other senders)";

/// Event types this version of spamtap writes; anything else is counted as unknown.
const KNOWN: &[&str] = &[
    "flow",
    "smtp",
    "tls",
    "socks",
    "software",
    "alert",
    "asset_summary",
    "stats",
];

/// Lines that were not events this version can read.
#[derive(Debug, Default, PartialEq)]
pub struct Skipped {
    pub not_json: u64,
    /// Valid JSON without `timestamp` or `event_type`.
    pub not_an_event: u64,
    /// An event type this version does not know (from a newer spamtap, say).
    pub unknown_type: u64,
    /// A last line without its newline: a file still being written, or cut short.
    pub truncated: u64,
}

/// Hosts seen in one interval, per series.
#[derive(Debug, Default)]
pub struct HostBucket {
    pub series: BTreeMap<String, HashSet<IpAddr>>,
    /// Series whose set is full: their count is a lower bound.
    pub capped: HashSet<String>,
}

impl HostBucket {
    fn add(&mut self, series: &str, host: IpAddr) {
        let set = self.series.entry(series.to_string()).or_default();
        if set.len() < HOSTS_PER_BUCKET {
            set.insert(host);
        } else if !set.contains(&host) {
            self.capped.insert(series.to_string());
        }
    }

    fn merge(&mut self, other: HostBucket) {
        for (series, hosts) in other.series {
            for h in hosts {
                self.add(&series, h);
            }
        }
        self.capped.extend(other.capped);
    }
}

/// A time axis of buckets that widens as the data spans more.
#[derive(Debug)]
pub struct Timeline<B> {
    /// Seconds per bucket.
    pub width: u64,
    pub buckets: BTreeMap<u64, B>,
}

impl<B: Default> Timeline<B> {
    fn new() -> Self {
        Timeline {
            width: 60,
            buckets: BTreeMap::new(),
        }
    }
}

/// Counters per series in one interval.
pub type Counts = BTreeMap<String, u64>;

/// A bucket that absorbs another when the axis widens.
pub trait Mergeable: Default {
    fn merge(&mut self, other: Self);
}

impl Mergeable for HostBucket {
    fn merge(&mut self, other: Self) {
        HostBucket::merge(self, other);
    }
}

impl Mergeable for Counts {
    fn merge(&mut self, other: Self) {
        for (k, v) in other {
            *self.entry(k).or_default() += v;
        }
    }
}

impl<B: Mergeable> Timeline<B> {
    /// The bucket of packet time `secs`, widening the axis when it would hold too many.
    fn at(&mut self, secs: u64) -> &mut B {
        let mut key = secs / self.width * self.width;
        while !self.buckets.contains_key(&key) && self.buckets.len() >= MAX_BUCKETS {
            self.widen();
            key = secs / self.width * self.width;
        }
        self.buckets.entry(key).or_default()
    }

    fn widen(&mut self) {
        let width = self.width * 2;
        let mut merged: BTreeMap<u64, B> = BTreeMap::new();
        for (start, b) in std::mem::take(&mut self.buckets) {
            merged.entry(start / width * width).or_default().merge(b);
        }
        self.width = width;
        self.buckets = merged;
    }
}

/// One sensor's run, from its latest `stats` event.
#[derive(Debug, Default, Clone)]
pub struct SensorRun {
    pub packets: u64,
    pub kernel_drops: u64,
    pub queue_drops: u64,
    pub output_dropped: u64,
    pub events: u64,
}

/// Per asset group: the hosts seen in each role, and its policy.
#[derive(Debug, Default)]
pub struct GroupHosts {
    pub policy: Option<String>,
    pub clients: HashSet<IpAddr>,
    pub servers: HashSet<IpAddr>,
    pub proxies: HashSet<IpAddr>,
    /// Clients named by an `smtp_policy_violation` alert.
    pub offenders: HashSet<IpAddr>,
}

#[derive(Debug, Default, Clone)]
pub struct SoftwareRow {
    pub host: String,
    pub kind: String,
    pub name: String,
    pub version: String,
    pub forged: bool,
    pub groups: String,
    pub first: String,
    pub last: String,
    pub sightings: u64,
}

#[derive(Debug, Clone)]
pub struct AlertRow {
    pub time: String,
    pub severity: u64,
    pub signature: String,
    pub host: String,
    pub evidence: String,
}

#[derive(Debug, Clone)]
pub struct MessageRow {
    pub time: String,
    pub client: String,
    pub from: String,
    pub to: String,
    pub subject: String,
}

/// Everything the report shows.
#[derive(Debug)]
pub struct Aggregate {
    pub lines: u64,
    pub events: u64,
    pub skipped: Skipped,
    pub by_type: BTreeMap<String, u64>,
    pub first: Option<String>,
    pub last: Option<String>,
    pub sensors: BTreeMap<String, SensorRun>,
    /// Unique SMTP clients (total and per group), servers and SOCKS proxies per interval.
    pub hosts: Timeline<HostBucket>,
    /// Port-25 connections from inside to outside: `answered` and `unanswered` per interval.
    pub port25: Timeline<Counts>,
    /// Alerts per signature per interval.
    pub alert_times: Timeline<Counts>,
    /// Intervals with a surge alert, for the marks on the clients line.
    pub surges: Vec<(u64, String)>,
    pub groups: BTreeMap<String, GroupHosts>,
    /// Per sender (`mail_from`): accepted recipients, and of them those outside the internal
    /// domains (at most the accepted count: an event lists refused recipients too).
    pub senders: HashMap<String, (u64, u64)>,
    /// Accepted outside recipients per sender per interval: the senders of each window.
    pub sender_windows: Timeline<Counts>,
    /// The internal domains (`--rules`), to tell outside recipients.
    pub assets: Option<crate::rules::Assets>,
    pub senders_untracked: u64,
    /// Senders an excessive-mail alert named, with the messages it listed.
    pub flagged: BTreeMap<String, Vec<MessageRow>>,
    pub software: HashMap<(String, String, String), SoftwareRow>,
    pub software_untracked: u64,
    pub alerts: Vec<AlertRow>,
    pub alerts_total: u64,
}

impl Default for Aggregate {
    fn default() -> Self {
        Aggregate {
            lines: 0,
            events: 0,
            skipped: Skipped::default(),
            by_type: BTreeMap::new(),
            first: None,
            last: None,
            sensors: BTreeMap::new(),
            hosts: Timeline::new(),
            port25: Timeline::new(),
            alert_times: Timeline::new(),
            surges: Vec::new(),
            groups: BTreeMap::new(),
            senders: HashMap::new(),
            sender_windows: Timeline::new(),
            assets: None,
            senders_untracked: 0,
            flagged: BTreeMap::new(),
            software: HashMap::new(),
            software_untracked: 0,
            alerts: Vec::new(),
            alerts_total: 0,
        }
    }
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn ip(v: &Value) -> Option<IpAddr> {
    v.as_str().and_then(|s| s.parse().ok())
}

fn groups(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|g| text(g).to_string()).collect())
        .unwrap_or_default()
}

/// Seconds since the epoch of an EVE timestamp (`2026-01-01T00:00:00.000100+0000`).
pub fn epoch_secs(ts: &str) -> Option<u64> {
    let utc = ts.get(..19)?;
    let t = humantime::parse_rfc3339(&format!("{utc}Z")).ok()?;
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// Whether an address is inside (private, loopback, link-local or unique-local).
fn inside(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => v.is_private() || v.is_loopback() || v.is_link_local(),
        IpAddr::V6(v) => v.is_loopback() || (v.segments()[0] & 0xfe00) == 0xfc00,
    }
}

impl Aggregate {
    /// One line of input; `complete` is false for a last line without its newline.
    pub fn line(&mut self, line: &[u8], complete: bool) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.lines += 1;
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            if complete {
                self.skipped.not_json += 1;
            } else {
                self.skipped.truncated += 1;
            }
            return;
        };
        let (Some(ts), Some(kind)) = (v["timestamp"].as_str(), v["event_type"].as_str()) else {
            self.skipped.not_an_event += 1;
            return;
        };
        if !KNOWN.contains(&kind) {
            self.skipped.unknown_type += 1;
            return;
        }
        let Some(secs) = epoch_secs(ts) else {
            self.skipped.not_an_event += 1;
            return;
        };
        self.events += 1;
        *self.by_type.entry(kind.to_string()).or_default() += 1;
        if self.first.as_deref().is_none_or(|f| ts < f) {
            self.first = Some(ts.to_string());
        }
        if self.last.as_deref().is_none_or(|l| ts > l) {
            self.last = Some(ts.to_string());
        }
        match kind {
            "smtp" => self.smtp(&v, secs),
            "socks" => self.socks(&v, secs),
            "flow" => self.flow(&v, secs),
            "software" => self.software(&v, ts),
            "alert" => self.alert(&v, ts, secs),
            "asset_summary" => {
                let s = &v["asset_summary"];
                let group = self
                    .groups
                    .entry(text(&s["group"]).to_string())
                    .or_default();
                group.policy = s["policy"].as_str().map(str::to_string);
            }
            "stats" => self.stats(&v),
            _ => {}
        }
    }

    fn smtp(&mut self, v: &Value, secs: u64) {
        let (Some(client), Some(server)) = (ip(&v["src_ip"]), ip(&v["dest_ip"])) else {
            return;
        };
        let bucket = self.hosts.at(secs);
        bucket.add("SMTP clients", client);
        bucket.add("SMTP servers", server);
        let client_groups = groups(&v["src_groups"]);
        for g in &client_groups {
            bucket.add(&format!("clients in {g}"), client);
        }
        for g in client_groups {
            let entry = self.groups.entry(g).or_default();
            if entry.clients.len() < MAX_KEYS {
                entry.clients.insert(client);
            }
        }
        for g in groups(&v["dest_groups"]) {
            let entry = self.groups.entry(g).or_default();
            if entry.servers.len() < MAX_KEYS {
                entry.servers.insert(server);
            }
        }
        let smtp = &v["smtp"];
        let accepted = smtp["rcpt_accepted"].as_u64().unwrap_or(0);
        if let Some(from) = smtp["mail_from"].as_str()
            && accepted > 0
        {
            let outside = match &self.assets {
                Some(assets) => smtp["rcpt_to"]
                    .as_array()
                    .map_or(0, |r| {
                        r.iter()
                            .filter(|a| !assets.is_internal_address(text(a)))
                            .count() as u64
                    })
                    .min(accepted),
                None => accepted,
            };
            let window = self.sender_windows.at(secs);
            let key = if window.contains_key(from) || window.len() < SENDERS_PER_BUCKET {
                from
            } else {
                OTHERS
            };
            *window.entry(key.to_string()).or_default() += outside;
            if let Some((n, o)) = self.senders.get_mut(from) {
                *n += accepted;
                *o += outside;
            } else if self.senders.len() < MAX_KEYS {
                self.senders.insert(from.to_string(), (accepted, outside));
            } else {
                self.senders_untracked += 1;
            }
        }
    }

    fn socks(&mut self, v: &Value, secs: u64) {
        let Some(proxy) = ip(&v["dest_ip"]) else {
            return;
        };
        self.hosts.at(secs).add("SOCKS proxies", proxy);
        for g in groups(&v["dest_groups"]) {
            let entry = self.groups.entry(g).or_default();
            if entry.proxies.len() < MAX_KEYS {
                entry.proxies.insert(proxy);
            }
        }
    }

    fn flow(&mut self, v: &Value, secs: u64) {
        if v["dest_port"].as_u64() != Some(25) {
            return;
        }
        let (Some(src), Some(dst)) = (ip(&v["src_ip"]), ip(&v["dest_ip"])) else {
            return;
        };
        if !inside(src) || inside(dst) {
            return;
        }
        let answered = !matches!(
            v["flow"]["state"].as_str(),
            Some("no_answer" | "rejected" | "reset_before_reply")
        );
        let series = if answered {
            "answered"
        } else {
            "unanswered or refused"
        };
        *self.port25.at(secs).entry(series.to_string()).or_default() += 1;
    }

    fn software(&mut self, v: &Value, ts: &str) {
        let s = &v["software"];
        let key = (
            text(&s["host"]).to_string(),
            text(&s["name"]).to_string(),
            text(&s["version"]).to_string(),
        );
        let groups = if s["type"] == "mail_server" || s["type"] == "socks_proxy" {
            groups(&v["dest_groups"])
        } else {
            groups(&v["src_groups"])
        };
        if let Some(row) = self.software.get_mut(&key) {
            row.sightings += 1;
            if ts < row.first.as_str() {
                row.first = ts.to_string();
            }
            if ts > row.last.as_str() {
                row.last = ts.to_string();
            }
            return;
        }
        if self.software.len() >= MAX_KEYS {
            self.software_untracked += 1;
            return;
        }
        self.software.insert(
            key.clone(),
            SoftwareRow {
                host: key.0,
                kind: text(&s["type"]).to_string(),
                name: key.1,
                version: key.2,
                forged: s["forged"].as_bool().unwrap_or(false),
                groups: groups.join(", "),
                first: ts.to_string(),
                last: ts.to_string(),
                sightings: 1,
            },
        );
    }

    fn alert(&mut self, v: &Value, ts: &str, secs: u64) {
        let a = &v["alert"];
        let signature = text(&a["signature"]).to_string();
        self.alerts_total += 1;
        *self
            .alert_times
            .at(secs)
            .entry(signature.clone())
            .or_default() += 1;
        let host = a["host"]
            .as_str()
            .or(a["group"].as_str())
            .or(v["src_ip"].as_str())
            .unwrap_or("")
            .to_string();
        match signature.as_str() {
            "smtp_client_surge" => self.surges.push((secs, text(&a["group"]).to_string())),
            "smtp_policy_violation" => {
                if let Some(h) = ip(&a["host"]) {
                    let g = a["group"].as_str().unwrap_or("ungrouped").to_string();
                    self.groups.entry(g).or_default().offenders.insert(h);
                }
            }
            "excessive_outbound_mail" => {
                let sender = a["sender"].as_str().unwrap_or(&host).to_string();
                let rows = self.flagged.entry(sender).or_default();
                for m in a["messages"].as_array().into_iter().flatten() {
                    if rows.len() >= TABLE_ROWS {
                        break;
                    }
                    rows.push(MessageRow {
                        time: text(&m["timestamp"]).to_string(),
                        client: text(&m["src_ip"]).to_string(),
                        from: text(&m["mail_from"]).to_string(),
                        to: m["rcpt_to"]
                            .as_array()
                            .map(|r| r.iter().map(text).collect::<Vec<_>>().join(", "))
                            .unwrap_or_default(),
                        subject: text(&m["subject"]).to_string(),
                    });
                }
            }
            _ => {}
        }
        let evidence = evidence(a);
        self.alerts.push(AlertRow {
            time: ts.to_string(),
            severity: a["severity"].as_u64().unwrap_or(3),
            signature,
            host,
            evidence,
        });
        // Newest kept: drop the oldest half when the table is full.
        if self.alerts.len() >= 2 * TABLE_ROWS {
            self.alerts.sort_by(|x, y| y.time.cmp(&x.time));
            self.alerts.truncate(TABLE_ROWS);
        }
    }

    fn stats(&mut self, v: &Value) {
        let s = &v["stats"];
        let run = self
            .sensors
            .entry(text(&v["sensor"]).to_string())
            .or_default();
        let n = |x: &Value| x.as_u64().unwrap_or(0);
        // Counters run from the start: the largest seen is the run's.
        run.packets = run.packets.max(n(&s["capture"]["packets"]));
        run.kernel_drops = run.kernel_drops.max(n(&s["capture"]["kernel_drops"]));
        run.queue_drops = run.queue_drops.max(n(&s["capture"]["queue_drops"]));
        let dropped: u64 = s["output"]
            .as_array()
            .map(|o| o.iter().map(|o| n(&o["dropped"])).sum())
            .unwrap_or(0);
        run.output_dropped = run.output_dropped.max(dropped);
        let events: u64 = s["events"]
            .as_object()
            .map(|e| e.values().map(n).sum())
            .unwrap_or(0);
        run.events = run.events.max(events);
    }
}

/// The few fields that say why an alert fired, as `key=value`.
fn evidence(a: &Value) -> String {
    let mut parts = Vec::new();
    for key in [
        "sender",
        "count",
        "threshold",
        "window",
        "group",
        "policy",
        "reason",
        "server",
        "software",
        "clients",
        "baseline",
    ] {
        match &a[key] {
            Value::Null => {}
            Value::String(s) => parts.push(format!("{key}={s}")),
            other => parts.push(format!("{key}={other}")),
        }
    }
    crate::text::cap_string(parts.join(" "), 300)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(lines: &[&str]) -> Aggregate {
        let mut a = Aggregate::default();
        for l in lines {
            a.line(l.as_bytes(), true);
        }
        a
    }

    #[test]
    fn bad_lines_are_counted_not_fatal() {
        let mut a = feed(&[
            "not json",
            r#"{"a":1}"#,
            r#"{"timestamp":"2026-01-01T00:00:00.000000+0000","event_type":"quic"}"#,
            r#"{"timestamp":"2026-01-01T00:00:00.000000+0000","event_type":"stats","sensor":"s","stats":{"capture":{"packets":5}}}"#,
        ]);
        a.line(br#"{"timestamp":"2026-01-01T00:0"#, false);
        assert_eq!(
            a.skipped,
            Skipped {
                not_json: 1,
                not_an_event: 1,
                unknown_type: 1,
                truncated: 1
            }
        );
        assert_eq!((a.events, a.sensors["s"].packets), (1, 5));
    }

    #[test]
    fn the_time_axis_widens_and_keeps_unique_hosts() {
        let mut a = Aggregate::default();
        for minute in 0..400u64 {
            let ts = humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_767_225_600 + minute * 60),
            )
            .to_string()
            .replace('Z', ".000000+0000");
            let line = format!(
                r#"{{"timestamp":"{ts}","event_type":"smtp","src_ip":"10.0.0.{}","dest_ip":"192.0.2.1","smtp":{{}}}}"#,
                minute % 7
            );
            a.line(line.as_bytes(), true);
        }
        assert!(a.hosts.buckets.len() <= MAX_BUCKETS);
        assert!(a.hosts.width > 60);
        // Every interval of 8 minutes or more saw all 7 clients.
        let (_, first) = a.hosts.buckets.iter().next().unwrap();
        assert_eq!(first.series["SMTP clients"].len(), 7);
    }
}
