//! IP fragment reassembly, IPv4 and IPv6 (the fragment extension header), before flows: the
//! datagram a complete set of fragments makes goes down the normal path as if it had arrived
//! whole, so an envelope sent in 16-byte fragments is parsed like any other.
//!
//! Overlaps are resolved as the receiving host would, by the [`OverlapPolicy`] of its network
//! (asset groups' `fragments` in the rules): by default as Linux does, the first copy of a byte
//! wins and later fragments only fill what is still missing; or the last copy wins. Either way
//! the datagram is flagged `frag_overlap` (a fragment that rewrites the TCP header of the
//! first is the classic evasion). A first fragment too short to
//! hold a TCP header is flagged `tiny_fragment`; one that reaches past 65,535 bytes drops its
//! datagram (`frag_too_large`). Datagrams wait at most [`TIMEOUT_SECS`] of packet time; the
//! table holds at most [`MAX_DATAGRAMS`] datagrams and [`MAX_BYTES`] bytes, the oldest going
//! first. Every fragment is counted once in `stats.decoder`: reassembled, or why it was dropped.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use serde::Serialize;

use super::VlanTags;
use crate::timestamp::Timestamp;

/// How long the fragments of a datagram wait for the rest (Linux's `ipfrag_time`).
pub const TIMEOUT_SECS: u64 = 30;
/// Datagrams being reassembled at once.
pub const MAX_DATAGRAMS: usize = 4096;
/// Fragment bytes held at once.
pub const MAX_BYTES: usize = 8 << 20;
/// The largest datagram IP can carry.
const MAX_DATAGRAM: usize = 65_535;
/// Fragments one datagram may take; more are dropped (a datagram of 8-byte pieces).
const MAX_FRAGMENTS: u32 = 256;
/// A first fragment shorter than this cannot hold a TCP header.
const TINY: usize = 20;

/// Whose bytes a datagram keeps where its fragments overlap: what the receiving host's
/// operating system does (Suricata's host-os-policy), so the sensor sees what it saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OverlapPolicy {
    /// The first copy of a byte wins (Linux, and most stacks).
    #[default]
    First,
    /// Each fragment overwrites what it overlaps.
    Last,
}

/// One fragment, as the decoder found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub vlan: VlanTags,
    /// The protocol of the datagram (6 for TCP).
    pub protocol: u8,
    pub id: u32,
    /// Where its data goes in the datagram's payload.
    pub offset: usize,
    /// Not the last fragment.
    pub more: bool,
    pub data: &'a [u8],
}

/// What was odd about a datagram's fragments (bit set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragAnomalies(pub u8);

impl FragAnomalies {
    pub const OVERLAP: u8 = 1;
    pub const TINY: u8 = 2;

    /// The anomaly names, for the flow event.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        [
            (Self::OVERLAP, "frag_overlap"),
            (Self::TINY, "tiny_fragment"),
        ]
        .into_iter()
        .filter(move |(bit, _)| self.0 & bit != 0)
        .map(|(_, name)| name)
    }
}

/// Fragment counters (`stats.decoder.fragments`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FragStats {
    /// Datagrams put back together.
    pub reassembled: u64,
    /// Fragments of datagrams that never completed within the timeout.
    pub expired: u64,
    /// Fragments dropped because the table was full (the oldest datagram goes).
    pub evicted: u64,
    /// Fragments of a datagram past 65,535 bytes, or past 256 fragments.
    pub too_large: u64,
    /// Fragments that overlapped bytes already held (the first copy kept).
    pub overlaps: u64,
    /// First fragments too short for a TCP header.
    pub tiny: u64,
    /// Fragment bytes held right now.
    pub memory: u64,
}

impl FragStats {
    pub fn add(&mut self, o: &FragStats) {
        self.reassembled += o.reassembled;
        self.expired += o.expired;
        self.evicted += o.evicted;
        self.too_large += o.too_large;
        self.overlaps += o.overlaps;
        self.tiny += o.tiny;
        self.memory += o.memory;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    vlan: VlanTags,
    protocol: u8,
    id: u32,
}

struct Datagram {
    data: Vec<u8>,
    /// Byte ranges received, sorted and disjoint.
    have: Vec<(usize, usize)>,
    /// The payload's length, once the last fragment was seen.
    total: Option<usize>,
    deadline: Timestamp,
    fragments: u32,
    anomalies: FragAnomalies,
}

impl Datagram {
    fn complete(&self) -> bool {
        self.total
            .is_some_and(|total| self.have.first() == Some(&(0, total)))
    }

    /// Copies `data` at `offset`: under [`OverlapPolicy::First`] only the parts no earlier
    /// fragment covered, under [`OverlapPolicy::Last`] all of it; returns whether any byte was
    /// already there.
    fn fill(&mut self, offset: usize, data: &[u8], policy: OverlapPolicy) -> bool {
        let end = offset + data.len();
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        let mut overlapped = false;
        let mut at = offset;
        let mut gaps = Vec::new();
        for &(start, stop) in &self.have {
            if stop <= at || start >= end {
                continue;
            }
            overlapped = true;
            if start > at {
                gaps.push((at, start));
            }
            at = at.max(stop);
        }
        if at < end {
            gaps.push((at, end));
        }
        if policy == OverlapPolicy::Last {
            gaps = vec![(offset, end)];
        }
        for (from, to) in gaps {
            self.data[from..to].copy_from_slice(&data[from - offset..to - offset]);
        }
        if !data.is_empty() {
            self.have.push((offset, end));
            self.have.sort_unstable();
            let mut merged: Vec<(usize, usize)> = Vec::with_capacity(self.have.len());
            for &(start, stop) in &self.have {
                match merged.last_mut() {
                    Some(last) if start <= last.1 => last.1 = last.1.max(stop),
                    _ => merged.push((start, stop)),
                }
            }
            self.have = merged;
        }
        overlapped
    }
}

/// A datagram put back together: the payload after the IP header(s).
#[derive(Debug, PartialEq, Eq)]
pub struct Reassembled {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub vlan: VlanTags,
    pub protocol: u8,
    pub payload: Vec<u8>,
    pub anomalies: FragAnomalies,
}

/// The datagrams being reassembled.
#[derive(Default)]
pub struct Defragmenter {
    datagrams: HashMap<Key, Datagram, foldhash::fast::RandomState>,
    /// Deadlines in arrival order, for expiry in time proportional to what expires.
    order: VecDeque<(Timestamp, Key)>,
    bytes: usize,
    pub stats: FragStats,
}

impl Defragmenter {
    /// Takes one fragment seen at `ts`, whose overlaps `policy` resolves; returns the datagram
    /// when it completes one.
    pub fn add(
        &mut self,
        frag: &Fragment<'_>,
        ts: Timestamp,
        policy: OverlapPolicy,
    ) -> Option<Reassembled> {
        self.expire(ts);
        let key = Key {
            src: frag.src,
            dst: frag.dst,
            vlan: frag.vlan,
            protocol: frag.protocol,
            id: frag.id,
        };
        let end = frag.offset + frag.data.len();
        if end > MAX_DATAGRAM {
            self.stats.too_large += 1;
            if let Some(dropped) = self.remove(&key) {
                self.stats.too_large += u64::from(dropped.fragments);
            }
            return None;
        }
        // Room for what this fragment adds, taken from the oldest other datagrams.
        let held = self.datagrams.get(&key).map_or(0, |d| d.data.len());
        while self.bytes + end.saturating_sub(held) > MAX_BYTES {
            if !self.evict_oldest(Some(&key)) {
                self.stats.evicted += 1;
                return None;
            }
        }
        if !self.datagrams.contains_key(&key) {
            while self.datagrams.len() >= MAX_DATAGRAMS {
                if !self.evict_oldest(None) {
                    break;
                }
            }
            let deadline = ts.saturating_add_secs(TIMEOUT_SECS);
            self.datagrams.insert(
                key,
                Datagram {
                    data: Vec::new(),
                    have: Vec::new(),
                    total: None,
                    deadline,
                    fragments: 0,
                    anomalies: FragAnomalies::default(),
                },
            );
            self.order.push_back((deadline, key));
        }
        let datagram = self.datagrams.get_mut(&key)?;
        if datagram.fragments >= MAX_FRAGMENTS {
            self.stats.too_large += 1;
            return None;
        }
        datagram.fragments += 1;
        if frag.offset == 0 && frag.more && frag.data.len() < TINY {
            datagram.anomalies.0 |= FragAnomalies::TINY;
            self.stats.tiny += 1;
        }
        if !frag.more {
            // The first last fragment says the length; a second one that disagrees is an
            // overlap like any other.
            if datagram.total.is_some_and(|t| t != end) {
                datagram.anomalies.0 |= FragAnomalies::OVERLAP;
                self.stats.overlaps += 1;
            }
            datagram.total.get_or_insert(end);
        }
        let before = datagram.data.len();
        if datagram.fill(frag.offset, frag.data, policy) {
            datagram.anomalies.0 |= FragAnomalies::OVERLAP;
            self.stats.overlaps += 1;
        }
        self.bytes += datagram.data.len() - before;
        if !datagram.complete() {
            self.stats.memory = self.bytes as u64;
            return None;
        }
        let datagram = self.remove(&key)?;
        let total = datagram.total.unwrap_or(0);
        let mut payload = datagram.data;
        payload.truncate(total);
        self.stats.reassembled += 1;
        Some(Reassembled {
            src: key.src,
            dst: key.dst,
            vlan: key.vlan,
            protocol: key.protocol,
            payload,
            anomalies: datagram.anomalies,
        })
    }

    /// Drops the datagrams whose time ran out at `now`.
    pub fn expire(&mut self, now: Timestamp) {
        while let Some(&(deadline, key)) = self.order.front() {
            if deadline > now {
                break;
            }
            self.order.pop_front();
            if self
                .datagrams
                .get(&key)
                .is_some_and(|d| d.deadline == deadline)
                && let Some(dropped) = self.remove(&key)
            {
                self.stats.expired += u64::from(dropped.fragments);
            }
        }
    }

    /// Drops the oldest datagram but `keep` to make room; `false` when there is none.
    fn evict_oldest(&mut self, keep: Option<&Key>) -> bool {
        let mut i = 0;
        while let Some(&(deadline, key)) = self.order.get(i) {
            let live = self
                .datagrams
                .get(&key)
                .is_some_and(|d| d.deadline == deadline);
            if !live {
                // A datagram that completed or went already: its entry is spent.
                self.order.remove(i);
                continue;
            }
            if keep == Some(&key) {
                i += 1;
                continue;
            }
            self.order.remove(i);
            if let Some(dropped) = self.remove(&key) {
                self.stats.evicted += u64::from(dropped.fragments);
            }
            return true;
        }
        false
    }

    fn remove(&mut self, key: &Key) -> Option<Datagram> {
        let datagram = self.datagrams.remove(key)?;
        self.bytes -= datagram.data.len();
        self.stats.memory = self.bytes as u64;
        Some(datagram)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(id: u32, offset: usize, more: bool, data: &[u8]) -> Fragment<'_> {
        Fragment {
            src: "192.0.2.1".parse().unwrap(),
            dst: "198.51.100.25".parse().unwrap(),
            vlan: VlanTags::default(),
            protocol: 6,
            id,
            offset,
            more,
            data,
        }
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    #[test]
    fn fragments_in_any_order_make_the_datagram() {
        let mut d = Defragmenter::default();
        let payload: Vec<u8> = (0..40u8).collect();
        assert_eq!(
            d.add(
                &frag(1, 32, false, &payload[32..]),
                at(0),
                OverlapPolicy::First
            ),
            None
        );
        assert_eq!(
            d.add(
                &frag(1, 0, true, &payload[..24]),
                at(0),
                OverlapPolicy::First
            ),
            None
        );
        assert_eq!(d.stats.memory, 40);
        let whole = d
            .add(
                &frag(1, 24, true, &payload[24..32]),
                at(1),
                OverlapPolicy::First,
            )
            .unwrap();
        assert_eq!(whole.payload, payload);
        assert_eq!(whole.anomalies, FragAnomalies::default());
        assert_eq!((d.stats.reassembled, d.stats.memory), (1, 0));
    }

    #[test]
    fn the_first_copy_of_a_byte_wins_and_the_overlap_is_flagged() {
        // The classic evasion: a second fragment at offset 0 rewrites the TCP header.
        let mut d = Defragmenter::default();
        assert_eq!(
            d.add(&frag(2, 0, true, b"HEADER--"), at(0), OverlapPolicy::First),
            None
        );
        assert_eq!(
            d.add(
                &frag(2, 0, true, b"EVIL----EVIL"),
                at(0),
                OverlapPolicy::First
            ),
            None
        );
        let whole = d
            .add(&frag(2, 12, false, b"tail"), at(0), OverlapPolicy::First)
            .unwrap();
        assert_eq!(whole.payload, b"HEADER--EVILtail");
        assert_eq!(
            whole.anomalies.names().collect::<Vec<_>>(),
            ["frag_overlap", "tiny_fragment"]
        );
        assert_eq!((d.stats.overlaps, d.stats.tiny), (1, 2));
    }

    #[test]
    fn under_the_last_policy_the_rewriting_fragment_wins() {
        let mut d = Defragmenter::default();
        let last = OverlapPolicy::Last;
        assert_eq!(d.add(&frag(2, 0, true, b"HEADER--"), at(0), last), None);
        assert_eq!(d.add(&frag(2, 0, true, b"EVIL----EVIL"), at(0), last), None);
        let whole = d.add(&frag(2, 12, false, b"tail"), at(0), last).unwrap();
        assert_eq!(whole.payload, b"EVIL----EVILtail");
        assert!(whole.anomalies.names().any(|a| a == "frag_overlap"));
    }

    #[test]
    fn incomplete_datagrams_expire_by_packet_time() {
        let mut d = Defragmenter::default();
        d.add(&frag(3, 0, true, &[0; 24]), at(0), OverlapPolicy::First);
        d.add(&frag(3, 32, false, &[0; 8]), at(1), OverlapPolicy::First);
        d.expire(at(29));
        assert_eq!(d.stats.expired, 0);
        d.expire(at(30));
        assert_eq!((d.stats.expired, d.stats.memory), (2, 0));
        assert!(d.datagrams.is_empty() && d.order.is_empty());
    }

    #[test]
    fn past_65535_bytes_the_datagram_is_dropped() {
        let mut d = Defragmenter::default();
        d.add(&frag(4, 0, true, &[0; 64]), at(0), OverlapPolicy::First);
        assert_eq!(
            d.add(
                &frag(4, 65_528, false, &[0; 16]),
                at(0),
                OverlapPolicy::First
            ),
            None
        );
        assert_eq!(d.stats.too_large, 2);
        assert!(d.datagrams.is_empty());
        assert_eq!(d.stats.memory, 0);
    }

    #[test]
    fn a_full_table_drops_the_oldest_datagram() {
        let mut d = Defragmenter::default();
        for id in 0..(MAX_DATAGRAMS as u32 + 5) {
            d.add(&frag(id, 0, true, &[0; 24]), at(0), OverlapPolicy::First);
        }
        assert_eq!(d.datagrams.len(), MAX_DATAGRAMS);
        assert_eq!(d.stats.evicted, 5);
        // The first ones went, the newest stayed.
        assert!(!d.datagrams.keys().any(|k| k.id == 0));
        assert!(d.datagrams.keys().any(|k| k.id == MAX_DATAGRAMS as u32 + 4));
    }

    #[test]
    fn held_bytes_stay_under_the_cap() {
        let mut d = Defragmenter::default();
        // Datagrams growing to 64 KiB each: the oldest make room for the newest.
        for id in 0..200u32 {
            for i in 0..8usize {
                d.add(
                    &frag(id, i * 8000, true, &[0; 8000]),
                    at(0),
                    OverlapPolicy::First,
                );
            }
        }
        assert!(d.stats.memory <= MAX_BYTES as u64, "{}", d.stats.memory);
        assert!(d.stats.evicted > 0);
    }

    #[test]
    fn a_datagram_takes_at_most_256_fragments() {
        let mut d = Defragmenter::default();
        for i in 0..300usize {
            d.add(&frag(5, i * 8, true, &[1; 8]), at(0), OverlapPolicy::First);
        }
        assert_eq!(d.stats.too_large, 300 - 256);
        assert!(d.stats.memory <= 256 * 8);
    }
}
