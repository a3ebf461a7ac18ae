//! Event types and their JSON shape: one object per line, Suricata EVE field names where EVE has
//! them.
//!
//! Every event has `timestamp`, `event_type` and `sensor`, plus `pcap_filename` (replay) or
//! `in_iface` (live). Flow-bound events add the fields of [`FlowIdentity`], written here and
//! nowhere else.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::analysis::{
    Alert, AnalysisStats, AssetSummary, Finding, Found, Observation, SoftwareSighting,
};
use crate::capture::CaptureStats;
use crate::decode::DecodeStats;
use crate::fleet::FleetStats;
use crate::flow::{FlowIdentity, FlowRecord, FlowStats, TcpSummary};
use crate::protocols::{AppEvent, Tunnel, TunnelKind};
use crate::reassembly::ReassemblyStats;
use crate::rules::ReloadStats;
use crate::timestamp::Timestamp;

/// Where packets come from, named in every event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin<'a> {
    Iface(&'a str),
    PcapFile(&'a str),
    /// `spamtap correlate`: the sensor whose observation it came from (`observed_by`).
    Sensor(&'a str),
}

/// Events written so far, by `event_type`.
pub type EventCounts = BTreeMap<&'static str, u64>;

/// Body of a `stats` event: counters since the start of the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StatsRecord {
    pub capture: CaptureStats,
    pub decoder: DecodeStats,
    pub flow: FlowStats,
    pub reassembly: ReassemblyStats,
    pub analysis: AnalysisStats,
    pub events: EventCounts,
    /// Rules reloads (SIGUSR2).
    pub rules: ReloadStats,
    /// Each output: events it dropped, and its failures.
    pub output: Vec<super::OutputStats>,
    /// `spamtap correlate` only: the merge of the sensors' entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetStats>,
}

/// The part of an event after the common fields.
pub enum EventBody<'a> {
    Flow {
        record: &'a FlowRecord,
        tcp: &'a TcpSummary,
        app_proto: Option<&'a str>,
    },
    Stats(&'a StatsRecord),
    App {
        event: &'a AppEvent,
        /// Set for a session found inside a proxy tunnel.
        tunnel: Option<&'a Tunnel>,
    },
    Alert(&'a Alert),
    AssetSummary(&'a AssetSummary),
    Software(&'a SoftwareSighting),
}

impl EventBody<'_> {
    pub fn event_type(&self) -> &'static str {
        match self {
            EventBody::Flow { .. } => "flow",
            EventBody::Stats(_) => "stats",
            EventBody::App { event, .. } => event.event_type(),
            EventBody::Alert(_) => "alert",
            EventBody::AssetSummary(_) => "asset_summary",
            EventBody::Software(_) => "software",
        }
    }
}

/// One line of output.
pub struct Event<'a> {
    pub timestamp: Timestamp,
    pub sensor: &'a str,
    pub origin: Origin<'a>,
    pub flow: Option<&'a FlowIdentity>,
    pub body: EventBody<'a>,
}

impl Serialize for Event<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("timestamp", &self.timestamp)?;
        map.serialize_entry("event_type", self.body.event_type())?;
        map.serialize_entry("sensor", self.sensor)?;
        match self.origin {
            Origin::Iface(name) => map.serialize_entry("in_iface", name)?,
            Origin::PcapFile(name) => map.serialize_entry("pcap_filename", name)?,
            Origin::Sensor("") => {}
            Origin::Sensor(name) => map.serialize_entry("observed_by", name)?,
        }
        if let Some(flow) = self.flow {
            map.serialize_entry("flow_id", &flow.flow_id)?;
            map.serialize_entry("community_id", &flow.community_id)?;
            map.serialize_entry("src_ip", &flow.src_ip)?;
            map.serialize_entry("src_port", &flow.src_port)?;
            map.serialize_entry("dest_ip", &flow.dest_ip)?;
            map.serialize_entry("dest_port", &flow.dest_port)?;
            map.serialize_entry("proto", "TCP")?;
            if !flow.vlan.is_empty() {
                map.serialize_entry("vlan", flow.vlan.as_slice())?;
            }
            if !flow.src_groups.is_empty() {
                map.serialize_entry("src_groups", &flow.src_groups)?;
            }
            if !flow.dest_groups.is_empty() {
                map.serialize_entry("dest_groups", &flow.dest_groups)?;
            }
        }
        match &self.body {
            EventBody::Flow {
                record,
                tcp,
                app_proto,
            } => {
                if let Some(proto) = app_proto {
                    map.serialize_entry("app_proto", proto)?;
                }
                map.serialize_entry("flow", record)?;
                map.serialize_entry("tcp", tcp)?;
            }
            EventBody::Stats(stats) => map.serialize_entry("stats", stats)?,
            EventBody::Alert(alert) => map.serialize_entry("alert", alert)?,
            EventBody::AssetSummary(summary) => map.serialize_entry("asset_summary", summary)?,
            EventBody::Software(sighting) => map.serialize_entry("software", sighting)?,
            EventBody::App { event, tunnel } => {
                event.write_fields(&mut map)?;
                if let (Some(tunnel), Some(flow)) = (tunnel, self.flow) {
                    map.serialize_entry("tunnel", &TunnelFields::new(tunnel, flow))?;
                }
            }
        }
        map.end()
    }
}

impl Event<'_> {
    /// What this event tells the analysis beyond its flow, if anything.
    pub fn observation(&self) -> Option<Observation> {
        let flow = self.flow?;
        match &self.body {
            EventBody::App { event, tunnel } => {
                Observation::of_app(self.timestamp, flow, event, *tunnel)
            }
            EventBody::Flow {
                record, app_proto, ..
            } => Observation::of_flow(flow, record, *app_proto),
            _ => None,
        }
    }
}

/// A finding of the analysis becomes an event of its own.
impl Finding {
    /// The event that reports this finding.
    pub fn event<'a>(&'a self, sensor: &'a str, origin: Origin<'a>) -> Event<'a> {
        Event {
            timestamp: self.ts,
            sensor,
            origin,
            flow: self.flow.as_ref(),
            body: match &self.what {
                Found::Alert(alert) => EventBody::Alert(alert),
                Found::Software(sighting) => EventBody::Software(sighting),
                Found::Summary(summary) => EventBody::AssetSummary(summary),
            },
        }
    }
}

/// The `tunnel` object: the proxy an inner session went through and where it led.
#[derive(Serialize)]
struct TunnelFields<'a> {
    #[serde(rename = "type")]
    kind: TunnelKind,
    proxy_ip: String,
    proxy_port: u16,
    dest_host: &'a str,
    dest_port: u16,
    depth: u8,
}

impl<'a> TunnelFields<'a> {
    /// The outermost proxy is the flow's server.
    fn new(tunnel: &'a Tunnel, flow: &FlowIdentity) -> Self {
        let (proxy_ip, proxy_port) = match &tunnel.proxy {
            Some((host, port)) => (host.clone(), *port),
            None => (flow.dest_ip.to_string(), flow.dest_port),
        };
        TunnelFields {
            kind: tunnel.kind,
            proxy_ip,
            proxy_port,
            dest_host: &tunnel.dest_host,
            dest_port: tunnel.dest_port,
            depth: tunnel.depth,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_event_shape() {
        let stats = StatsRecord::default();
        let event = Event {
            timestamp: Timestamp::from_secs(60),
            sensor: "s1",
            origin: Origin::Iface("eth0"),
            flow: None,
            body: EventBody::Stats(&stats),
        };
        let v: serde_json::Value = serde_json::to_value(&event).unwrap();
        assert_eq!(v["event_type"], "stats");
        assert_eq!(v["in_iface"], "eth0");
        assert_eq!(v["timestamp"], "1970-01-01T00:01:00.000000+0000");
        assert!(v.get("flow_id").is_none());
        assert_eq!(v["stats"]["decoder"]["errors"]["tcp_header"], 0);
    }
}
