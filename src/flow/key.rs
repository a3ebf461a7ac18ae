//! The flow key: one value for both directions of a TCP connection, VLAN-aware.

use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;

use crate::decode::{TcpSegment, VlanTags};
use crate::timestamp::Timestamp;

/// Symmetric key: the two endpoints in a fixed order, so both directions map to one flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
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
        if endpoint_order(a) <= endpoint_order(b) {
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
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Lo => Side::Hi,
            Side::Hi => Side::Lo,
        }
    }
}

/// The table and the sharding hash a key as three words, not field by field: it is hashed
/// for every packet, up to three times. Equal keys hash equally (the fields are all in), and
/// an address that looks the same in both families only costs a collision.
impl Hash for FlowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u128(address_bits(self.lo.0));
        state.write_u128(address_bits(self.hi.0));
        let tags = self.vlan.as_slice();
        let tag = |i: usize| u64::from(tags.get(i).copied().unwrap_or(0));
        state.write_u64(
            u64::from(self.lo.1) << 48
                | u64::from(self.hi.1) << 32
                | tag(0) << 20
                | tag(1) << 8
                | tags.len() as u64,
        );
    }
}

/// An endpoint as integers that sort as `(IpAddr, u16)` does (IPv4 before IPv6, then by
/// address, then by port), compared in a few instructions instead of field by field: every
/// packet is keyed twice, by the capture and by its worker.
fn endpoint_order((ip, port): (IpAddr, u16)) -> (bool, u128, u16) {
    match ip {
        IpAddr::V4(v4) => (false, u128::from(v4.to_bits()), port),
        IpAddr::V6(v6) => (true, v6.to_bits(), port),
    }
}

fn address_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_bits()) | 1 << 127,
        IpAddr::V6(v6) => v6.to_bits(),
    }
}

impl FlowKey {
    /// Stable id of the flow of this key that started at `start`: equal across runs and
    /// sensors, kept within 2^53 so every JSON reader holds it exactly. Hashed field by field,
    /// as flow ids have been from the start, so they stay what they were.
    pub fn stable_id(&self, start: Timestamp) -> u64 {
        #[derive(Hash)]
        struct Fields {
            lo: (IpAddr, u16),
            hi: (IpAddr, u16),
            vlan: VlanTags,
        }
        let fields = Fields {
            lo: self.lo,
            hi: self.hi,
            vlan: self.vlan,
        };
        stable_hash((fields, start)) & ((1 << 53) - 1)
    }
}

/// Stable (unseeded) hash of a value, for ids that must be equal across runs.
fn stable_hash(value: impl Hash) -> u64 {
    foldhash::fast::FixedState::with_seed(0x5a_7a_9c_01).hash_one(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpFlags;

    #[test]
    fn endpoints_order_as_addresses_and_ports_do() {
        let addresses = [
            "0.0.0.0",
            "10.0.0.1",
            "10.0.0.2",
            "192.168.1.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "fe80::1",
            "ffff::",
        ];
        let endpoints: Vec<(IpAddr, u16)> = addresses
            .iter()
            .flat_map(|a| [0, 25, 65535].map(|p| (a.parse().unwrap(), p)))
            .collect();
        for a in &endpoints {
            for b in &endpoints {
                assert_eq!(
                    endpoint_order(*a).cmp(&endpoint_order(*b)),
                    a.cmp(b),
                    "{a:?} {b:?}"
                );
            }
        }
    }

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
            frag_anomalies: Default::default(),
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
        let hasher = crate::flow::KeyHasher::default();
        let (k1, _) = FlowKey::of(&seg("10.0.0.1", 4000, "10.0.0.2", 25));
        let (k2, _) = FlowKey::of(&seg("10.0.0.2", 25, "10.0.0.1", 4000));
        assert_eq!(hasher.hash(&k1).shard(7), hasher.hash(&k2).shard(7));
    }
}
