//! One TCP connection as the flow stage sees it: who is the client, packet and byte counters,
//! flags, and the TCP state that decides its timeout and how it is reported when it ends.

use std::net::IpAddr;

use super::{EndReason, FlowIdentity, FlowKey, FlowRecord, FlowState, Side, TcpSummary};
use crate::decode::{FragAnomalies, TcpFlags, TcpSegment};
use crate::direction::Direction;
use crate::timestamp::Timestamp;

/// Inactivity timeouts, in seconds of packet time.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Only a SYN (or nothing two-way) seen.
    pub half_open: u64,
    pub established: u64,
    /// After FIN from both sides or a RST: how long late packets still join the flow.
    pub closed: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            half_open: 30,
            established: 300,
            closed: 10,
        }
    }
}

/// The TCP-level state of one flow.
pub struct Connection {
    pub id: FlowIdentity,
    client: Side,
    /// Index of the input (pcap file or interface) the flow was first seen on.
    pub origin: u32,
    pub start: Timestamp,
    pub last: Timestamp,
    pkts: [u64; 2],
    bytes: [u64; 2],
    flags: [u8; 2],
    syn: bool,
    syn_ack: bool,
    fin: [bool; 2],
    rst: bool,
    /// What was odd about the IP fragments its segments came in.
    frag_anomalies: FragAnomalies,
}

impl Connection {
    /// A connection first seen with `seg`, sent by `sender` of `key`.
    pub fn new(
        key: &FlowKey,
        seg: &TcpSegment<'_>,
        sender: Side,
        ts: Timestamp,
        origin: usize,
    ) -> Self {
        let client = client_side(seg, sender);
        let endpoint = |side: Side| -> (IpAddr, u16) { key.endpoint(side) };
        Connection {
            id: FlowIdentity::new(key, ts, endpoint(client), endpoint(client.other())),
            client,
            origin: u32::try_from(origin).unwrap_or(u32::MAX),
            start: ts,
            last: ts,
            pkts: [0; 2],
            bytes: [0; 2],
            flags: [0; 2],
            syn: false,
            syn_ack: false,
            fin: [false; 2],
            rst: false,
            frag_anomalies: FragAnomalies::default(),
        }
    }

    /// Counts a segment from `sender` and notes its flags; returns its direction.
    pub fn observe(
        &mut self,
        seg: &TcpSegment<'_>,
        sender: Side,
        ts: Timestamp,
        wire_len: u32,
    ) -> Direction {
        let dir = self.direction(sender);
        let d = dir.index();
        self.last = self.last.max(ts);
        self.pkts[d] += 1;
        self.bytes[d] += u64::from(wire_len);
        self.flags[d] |= seg.flags.0;
        self.frag_anomalies.0 |= seg.frag_anomalies.0;
        if seg.flags.syn() {
            match dir {
                Direction::Ctos if !seg.flags.ack() => self.syn = true,
                Direction::Stoc if seg.flags.ack() => self.syn_ack = true,
                _ => {}
            }
        }
        if seg.flags.fin() {
            self.fin[d] = true;
        }
        if seg.flags.rst() {
            self.rst = true;
        }
        dir
    }

    /// The direction of a segment sent by `from`.
    pub fn direction(&self, from: Side) -> Direction {
        if from == self.client {
            Direction::Ctos
        } else {
            Direction::Stoc
        }
    }

    /// Both sides sent FIN, or one sent RST.
    pub fn is_closed(&self) -> bool {
        self.rst || (self.fin[0] && self.fin[1])
    }

    /// Why a flow whose deadline passed ended: its close delay, or its inactivity timeout.
    pub fn expiry_reason(&self) -> EndReason {
        if self.is_closed() {
            EndReason::Closed
        } else {
            EndReason::Timeout
        }
    }

    /// Whether the server answered: seen directly, or implied by the client ACKing (which it
    /// can only do after a SYN-ACK) when the capture holds one direction.
    fn answered(&self) -> bool {
        self.syn_ack
            || self.pkts[Direction::Stoc.index()] > 0
            || self.flags[Direction::Ctos.index()] & TcpFlags::ACK != 0
    }

    /// The inactivity timeout for the state the connection is in; `has_data` says whether any
    /// stream byte (delivered or lost) was seen.
    pub fn timeout(&self, t: &Timeouts, has_data: bool) -> u64 {
        if self.is_closed() {
            t.closed
        } else if self.syn_ack || (self.pkts[0] > 0 && self.pkts[1] > 0) || has_data {
            t.established
        } else {
            t.half_open
        }
    }

    fn state(&self, reason: EndReason, has_data: bool) -> FlowState {
        // Both FINs make an orderly close even if a RST follows (as Zeek's SF).
        if self.fin[0] && self.fin[1] {
            FlowState::Closed
        } else if self.rst {
            if self.syn && !self.syn_ack && !has_data {
                FlowState::Rejected
            } else {
                FlowState::Reset
            }
        } else if self.syn && !self.answered() {
            FlowState::NoAnswer
        } else if reason == EndReason::Timeout {
            FlowState::Timeout
        } else {
            FlowState::Established
        }
    }

    /// The body of the `flow` event: `data_bytes` were delivered per direction (client's
    /// first) and `missed_bytes` lost in both; `conflict`: some bytes came twice, differently.
    pub fn record(
        &self,
        reason: EndReason,
        data_bytes: [u64; 2],
        missed_bytes: u64,
        conflict: bool,
    ) -> FlowRecord {
        let has_data = data_bytes[0] + data_bytes[1] + missed_bytes > 0;
        FlowRecord {
            pkts_toserver: self.pkts[0],
            pkts_toclient: self.pkts[1],
            bytes_toserver: self.bytes[0],
            bytes_toclient: self.bytes[1],
            data_bytes_toserver: data_bytes[0],
            data_bytes_toclient: data_bytes[1],
            missed_bytes,
            start: self.start,
            end: self.last,
            age: self.last.secs().saturating_sub(self.start.secs()),
            duration: self.last.secs_since(self.start),
            state: self.state(reason, has_data),
            reason,
            anomalies: self
                .frag_anomalies
                .names()
                .chain(conflict.then_some("conflict"))
                .collect(),
        }
    }

    /// The `tcp` object of the `flow` event.
    pub fn tcp_summary(&self) -> TcpSummary {
        TcpSummary::new(self.flags[0], self.flags[1])
    }
}

/// Decides which endpoint is the client from a flow's first packet: the SYN's sender, the
/// SYN-ACK's receiver, or, picked up mid-stream, the side with the higher port (services listen
/// on low ports, clients on ephemeral ones); on equal ports, the sender.
fn client_side(seg: &TcpSegment<'_>, sender: Side) -> Side {
    let from_server = if seg.flags.syn() {
        seg.flags.ack()
    } else {
        seg.src_port < seg.dst_port
    };
    if from_server { sender.other() } else { sender }
}
