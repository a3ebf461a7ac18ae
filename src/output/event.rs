//! Event types and their JSON shape: one object per line, Suricata EVE field names where EVE has
//! them.
//!
//! Every event has `timestamp`, `event_type` and `sensor`, plus `pcap_filename` (replay) or
//! `in_iface` (live). Flow-bound events add the fields of [`FlowIdentity`], built once per flow
//! here and nowhere else.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::analysis::{Alert, AnalysisStats, AssetSummary, SoftwareSighting};
use crate::decode::{DecodeStats, VlanTags};
use crate::flow::{FlowKey, stable_hash};
use crate::protocols::{AppEvent, Tunnel};
use crate::reassembly::ReassemblyStats;
use crate::rules::Assets;
use crate::timestamp::Timestamp;

/// Where packets come from, named in every event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin<'a> {
    Iface(&'a str),
    PcapFile(&'a str),
}

/// The fields that tie an event to its flow, oriented client -> server.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowIdentity {
    pub flow_id: u64,
    pub community_id: String,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dest_ip: IpAddr,
    pub dest_port: u16,
    pub vlan: VlanTags,
    /// Asset groups of the client and the server, longest prefix first.
    pub src_groups: Vec<Arc<str>>,
    pub dest_groups: Vec<Arc<str>>,
}

impl FlowIdentity {
    /// `flow_id` is stable across runs (key and start time); kept within 2^53 so every JSON
    /// reader holds it exactly.
    pub fn new(
        key: &FlowKey,
        start: Timestamp,
        client: (IpAddr, u16),
        server: (IpAddr, u16),
        assets: &Assets,
    ) -> Self {
        const TCP: u8 = 6;
        let community_id = community_id::calculate_community_id(
            0,
            client.0,
            server.0,
            Some(client.1),
            Some(server.1),
            TCP,
            false,
        )
        .unwrap_or_default();
        FlowIdentity {
            flow_id: stable_hash((key, start)) & ((1 << 53) - 1),
            community_id,
            src_ip: client.0,
            src_port: client.1,
            dest_ip: server.0,
            dest_port: server.1,
            vlan: key.vlan(),
            src_groups: assets.groups_of(client.0),
            dest_groups: assets.groups_of(server.0),
        }
    }
}

/// The TCP state a flow ended in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowState {
    /// The client's SYN was never answered.
    NoAnswer,
    /// The SYN was answered with a RST.
    Rejected,
    /// Open when the flow was reported (end of input, eviction).
    Established,
    /// Both sides sent FIN (a RST after that does not change it).
    Closed,
    /// A RST ended the connection before both sides had sent FIN.
    Reset,
    /// Went idle past the inactivity timeout without a close.
    Timeout,
}

/// Why the flow record was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// FIN or RST, then the close delay passed.
    Closed,
    /// No packet within the timeout for its state.
    Timeout,
    /// The flow table was full and this flow was the oldest.
    Evicted,
    /// A new SYN reused the ports of a finished flow.
    Reused,
    /// End of the capture, or the sensor was stopped.
    Shutdown,
}

/// Body of a `flow` event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowRecord {
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    /// Stream bytes reassembled and handed to the application layer.
    pub data_bytes_toserver: u64,
    pub data_bytes_toclient: u64,
    /// Stream bytes never seen (capture loss, snap length), both directions.
    pub missed_bytes: u64,
    pub start: Timestamp,
    pub end: Timestamp,
    pub age: u64,
    pub duration: f64,
    pub state: FlowState,
    pub reason: EndReason,
}

/// The `tcp` object of a `flow` event, as in EVE.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TcpSummary {
    pub tcp_flags: String,
    pub tcp_flags_ts: String,
    pub tcp_flags_tc: String,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
    pub ack: bool,
}

impl TcpSummary {
    pub fn new(flags_ts: u8, flags_tc: u8) -> Self {
        let all = flags_ts | flags_tc;
        TcpSummary {
            tcp_flags: format!("{all:02x}"),
            tcp_flags_ts: format!("{flags_ts:02x}"),
            tcp_flags_tc: format!("{flags_tc:02x}"),
            syn: all & 0x02 != 0,
            fin: all & 0x01 != 0,
            rst: all & 0x04 != 0,
            psh: all & 0x08 != 0,
            ack: all & 0x10 != 0,
        }
    }
}

/// What the capture thread saw.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CaptureStats {
    pub packets: u64,
    pub bytes: u64,
    /// From libpcap (live only): packets the kernel received and dropped.
    pub kernel_packets: u64,
    pub kernel_drops: u64,
    pub kernel_ifdrops: u64,
    /// Packets dropped because every worker queue was full (live only; replay waits instead).
    pub queue_drops: u64,
    /// Files whose last record was cut short.
    pub truncated_files: u64,
}

/// What the flow stage did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FlowStats {
    pub active: u64,
    pub total: u64,
    pub closed: u64,
    pub timed_out: u64,
    pub evicted: u64,
    pub reused: u64,
    pub shutdown: u64,
    /// Out-of-order buffer bytes held right now.
    pub reassembly_memory: u64,
}

impl FlowStats {
    pub fn add(&mut self, o: &FlowStats) {
        self.active += o.active;
        self.total += o.total;
        self.closed += o.closed;
        self.timed_out += o.timed_out;
        self.evicted += o.evicted;
        self.reused += o.reused;
        self.shutdown += o.shutdown;
        self.reassembly_memory += o.reassembly_memory;
    }
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

/// The `tunnel` object: the proxy an inner session went through and where it led.
#[derive(Serialize)]
struct TunnelFields<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
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
    fn community_id_matches_the_spec_test_vector() {
        // TCP 128.232.110.120:34855 -> 66.35.250.204:80, seed 0, from the Community ID spec.
        let client = ("128.232.110.120".parse().unwrap(), 34855);
        let server = ("66.35.250.204".parse().unwrap(), 80);
        let seg = crate::decode::TcpSegment {
            src: client.0,
            dst: server.0,
            src_port: client.1,
            dst_port: server.1,
            vlan: VlanTags::default(),
            seq: 0,
            ack: 0,
            flags: crate::decode::TcpFlags::default(),
            payload: b"",
            missing: 0,
        };
        let (key, _) = FlowKey::of(&seg);
        let assets = Assets::default();
        let id = FlowIdentity::new(&key, Timestamp(1), client, server, &assets);
        assert_eq!(id.community_id, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        assert!(id.flow_id < 1 << 53);
        assert_eq!(
            id,
            FlowIdentity::new(&key, Timestamp(1), client, server, &assets)
        );
    }

    #[test]
    fn tcp_flags_as_hex_like_eve() {
        let t = TcpSummary::new(0x1b, 0x1a);
        assert_eq!(
            (t.tcp_flags.as_str(), t.tcp_flags_ts.as_str()),
            ("1b", "1b")
        );
        assert!(t.syn && t.fin && !t.rst);
    }

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
        assert_eq!(v["timestamp"], "1970-01-01T00:01:00.000000Z");
        assert!(v.get("flow_id").is_none());
        assert_eq!(v["stats"]["decoder"]["errors"]["tcp_header"], 0);
    }
}
