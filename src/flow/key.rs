//! The flow key: one value for both directions of a TCP connection, VLAN-aware.

use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;

use crate::decode::{TcpSegment, VlanTags};

/// Symmetric key: the two endpoints in a fixed order, so both directions map to one flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    lo: (IpAddr, u16),
    hi: (IpAddr, u16),
    vlan: VlanTags,
}

/// Which endpoint of the key a packet came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Lo,
    Hi,
}

impl FlowKey {
    /// The key of a segment and the side of the key that sent it.
    pub fn of(seg: &TcpSegment<'_>) -> (FlowKey, Side) {
        let a = (seg.src, seg.src_port);
        let b = (seg.dst, seg.dst_port);
        if a <= b {
            (
                FlowKey {
                    lo: a,
                    hi: b,
                    vlan: seg.vlan,
                },
                Side::Lo,
            )
        } else {
            (
                FlowKey {
                    lo: b,
                    hi: a,
                    vlan: seg.vlan,
                },
                Side::Hi,
            )
        }
    }

    pub fn endpoint(&self, side: Side) -> (IpAddr, u16) {
        match side {
            Side::Lo => self.lo,
            Side::Hi => self.hi,
        }
    }

    pub fn vlan(&self) -> VlanTags {
        self.vlan
    }

    /// Which worker owns this flow. The hasher is seeded per run: keys are attacker-chosen.
    pub fn shard(&self, hasher: &impl BuildHasher, workers: usize) -> usize {
        (hasher.hash_one(self) % workers.max(1) as u64) as usize
    }
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Lo => Side::Hi,
            Side::Hi => Side::Lo,
        }
    }
}

/// Stable (unseeded) hash of a value, for ids that must be equal across runs.
pub fn stable_hash(value: impl Hash) -> u64 {
    foldhash::fast::FixedState::with_seed(0x5a_7a_9c_01).hash_one(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpFlags;

    fn seg(src: &str, sp: u16, dst: &str, dp: u16) -> TcpSegment<'static> {
        TcpSegment {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            src_port: sp,
            dst_port: dp,
            vlan: VlanTags::default(),
            seq: 0,
            ack: 0,
            flags: TcpFlags::default(),
            payload: b"",
            missing: 0,
        }
    }

    #[test]
    fn both_directions_share_a_key() {
        let (k1, s1) = FlowKey::of(&seg("10.0.0.1", 4000, "10.0.0.2", 25));
        let (k2, s2) = FlowKey::of(&seg("10.0.0.2", 25, "10.0.0.1", 4000));
        assert_eq!(k1, k2);
        assert_eq!(s1, s2.other());
    }

    #[test]
    fn vlan_separates_flows() {
        let a = seg("10.0.0.1", 4000, "10.0.0.2", 25);
        let mut b = a;
        b.vlan = VlanTags::new(&[7]);
        assert_ne!(FlowKey::of(&a).0, FlowKey::of(&b).0);
    }

    #[test]
    fn shard_is_symmetric() {
        let hasher = foldhash::fast::RandomState::default();
        let (k1, _) = FlowKey::of(&seg("10.0.0.1", 4000, "10.0.0.2", 25));
        let (k2, _) = FlowKey::of(&seg("10.0.0.2", 25, "10.0.0.1", 4000));
        assert_eq!(k1.shard(&hasher, 7), k2.shard(&hasher, 7));
    }
}
