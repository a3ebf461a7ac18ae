//! What the flow stage records about a connection: the identity every flow-bound event
//! carries, how the connection ended, its counters, and the flow stage's own statistics.

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::FlowKey;
use crate::decode::VlanTags;
use crate::timestamp::Timestamp;

/// A Community ID, held inline: every tracked flow has one, and a heap string each would cost
/// a SYN flood an allocation per flow. Version 1 with TCP is always 30 characters.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct CommunityId {
    text: [u8; CommunityId::LEN],
    len: u8,
}

impl CommunityId {
    const LEN: usize = 30;

    /// Empty when `text` does not fit (never for a version 1 ID).
    pub fn new(text: &str) -> Self {
        let mut id = CommunityId::default();
        if let Some(dst) = id.text.get_mut(..text.len()) {
            dst.copy_from_slice(text.as_bytes());
            id.len = text.len() as u8;
        }
        id
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.text.get(..usize::from(self.len)).unwrap_or_default())
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for CommunityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

impl PartialEq<&str> for CommunityId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for CommunityId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CommunityId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(CommunityId::new(&text))
    }
}

/// The fields that tie an event to its flow, oriented client -> server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowIdentity {
    pub flow_id: u64,
    pub community_id: CommunityId,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dest_ip: IpAddr,
    pub dest_port: u16,
    pub vlan: VlanTags,
    /// Asset groups of the client and the server, longest prefix first: filled in by the
    /// enrichment stage.
    pub src_groups: Vec<Arc<str>>,
    pub dest_groups: Vec<Arc<str>>,
}

impl FlowIdentity {
    /// The identity of the flow of `key` that started at `start` (its `flow_id` is
    /// [`FlowKey::stable_id`]), oriented from `client` to `server`.
    pub fn new(
        key: &FlowKey,
        start: Timestamp,
        client: (IpAddr, u16),
        server: (IpAddr, u16),
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
            flow_id: key.stable_id(start),
            community_id: CommunityId::new(&community_id),
            src_ip: client.0,
            src_port: client.1,
            dest_ip: server.0,
            dest_port: server.1,
            vlan: key.vlan(),
            src_groups: Vec::new(),
            dest_groups: Vec::new(),
        }
    }
}

impl FlowIdentity {
    /// The same flow named from its other end: for events whose protocol's client is the
    /// flow's TCP responder (reverse SOCKS). `flow_id` and `community_id` stay.
    pub fn reversed(&self) -> FlowIdentity {
        FlowIdentity {
            src_ip: self.dest_ip,
            src_port: self.dest_port,
            dest_ip: self.src_ip,
            dest_port: self.src_port,
            src_groups: self.dest_groups.clone(),
            dest_groups: self.src_groups.clone(),
            ..self.clone()
        }
    }
}

/// The TCP state a flow ended in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// What was odd about the IP fragments the flow's segments came in, and `conflict` when
    /// some stream bytes came twice with different content.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<&'static str>,
}

/// The `tcp` object of a `flow` event, as in EVE.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TcpSummary {
    pub tcp_flags: HexByte,
    pub tcp_flags_ts: HexByte,
    pub tcp_flags_tc: HexByte,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
    pub ack: bool,
}

/// A byte written as two lower-case hex digits (`1b`), as EVE writes TCP flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HexByte(pub u8);

impl HexByte {
    pub fn as_str(&self) -> &'static str {
        static ALL: [[u8; 2]; 256] = {
            let digits = b"0123456789abcdef";
            let mut all = [[0u8; 2]; 256];
            let mut i = 0;
            while i < 256 {
                all[i] = [digits[i >> 4], digits[i & 15]];
                i += 1;
            }
            all
        };
        std::str::from_utf8(&ALL[usize::from(self.0)]).unwrap_or_default()
    }
}

impl Serialize for HexByte {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl TcpSummary {
    pub fn new(flags_ts: u8, flags_tc: u8) -> Self {
        let all = flags_ts | flags_tc;
        TcpSummary {
            tcp_flags: HexByte(all),
            tcp_flags_ts: HexByte(flags_ts),
            tcp_flags_tc: HexByte(flags_tc),
            syn: all & 0x02 != 0,
            fin: all & 0x01 != 0,
            rst: all & 0x04 != 0,
            psh: all & 0x08 != 0,
            ack: all & 0x10 != 0,
        }
    }
}

/// What the flow stage did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FlowStats {
    pub active: u64,
    pub total: u64,
    pub closed: u64,
    pub timed_out: u64,
    /// Evicted because the table was full (`--max-flows`), and because the memory budget was
    /// spent (`--memcap`).
    pub evicted: u64,
    pub evicted_memcap: u64,
    pub reused: u64,
    pub shutdown: u64,
    /// Out-of-order buffer bytes held right now.
    pub reassembly_memory: u64,
    /// Bytes of the memory budget in use now (flows, streams, parsers, out-of-order buffers),
    /// and the budget.
    pub memory: u64,
    pub memcap: u64,
    /// Workers in emergency mode now, times one was entered, and flows ended by an emergency
    /// timeout that the normal one would have kept.
    pub emergency: u64,
    pub emergencies: u64,
    pub emergency_timeouts: u64,
}

impl FlowStats {
    pub fn add(&mut self, o: &FlowStats) {
        self.active += o.active;
        self.total += o.total;
        self.closed += o.closed;
        self.timed_out += o.timed_out;
        self.evicted += o.evicted;
        self.evicted_memcap += o.evicted_memcap;
        self.reused += o.reused;
        self.shutdown += o.shutdown;
        self.reassembly_memory += o.reassembly_memory;
        self.memory += o.memory;
        self.memcap += o.memcap;
        self.emergency += o.emergency;
        self.emergencies += o.emergencies;
        self.emergency_timeouts += o.emergency_timeouts;
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
            frag_anomalies: Default::default(),
        };
        let (key, _) = FlowKey::of(&seg);
        let id = FlowIdentity::new(&key, Timestamp(1), client, server);
        assert_eq!(id.community_id, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        assert_eq!(
            serde_json::to_string(&id.community_id).unwrap(),
            r#""1:LQU9qZlK+B5F3KDmev6m5PMibrg=""#
        );
        let back: CommunityId =
            serde_json::from_str(r#""1:LQU9qZlK+B5F3KDmev6m5PMibrg=""#).unwrap();
        assert_eq!(back, id.community_id);
        assert_eq!(
            CommunityId::new(&"x".repeat(31)).as_str(),
            "",
            "too long for one"
        );
        assert!(id.flow_id < 1 << 53);
        assert_eq!(id, FlowIdentity::new(&key, Timestamp(1), client, server));
    }

    #[test]
    fn tcp_flags_as_hex_like_eve() {
        let t = TcpSummary::new(0x1b, 0x1a);
        assert_eq!(
            (t.tcp_flags.as_str(), t.tcp_flags_ts.as_str()),
            ("1b", "1b")
        );
        assert!(t.syn && t.fin && !t.rst);
        for b in 0..=u8::MAX {
            assert_eq!(HexByte(b).as_str(), format!("{b:02x}"));
        }
        assert_eq!(serde_json::to_string(&HexByte(0x1b)).unwrap(), "\"1b\"");
    }
}
