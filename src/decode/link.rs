//! Link-layer framing: which link types spamtap reads and how each one hands over to IP.
//!
//! Ethernet (with 802.1Q/QinQ) is parsed by etherparse; the cooked and loopback headers are a
//! fixed few bytes with the EtherType or address family at a known offset, read here.

use etherparse::EtherType;

/// What follows a cooked or loopback header.
pub enum Next<'a> {
    EtherType(EtherType, &'a [u8]),
    Ip(&'a [u8]),
    /// A protocol spamtap does not analyse (ARP, IPX, ...).
    NotIp,
}

/// Splits a Linux SLL header off; `None` if the frame is shorter than the header.
pub fn linux_sll(frame: &[u8]) -> Option<Next<'_>> {
    let proto = u16::from_be_bytes([*frame.get(14)?, *frame.get(15)?]);
    Some(ether_type_or_not_ip(proto, frame.get(16..)?))
}

/// Splits a Linux SLL2 header off; `None` if the frame is shorter than the header.
pub fn linux_sll2(frame: &[u8]) -> Option<Next<'_>> {
    let proto = u16::from_be_bytes([*frame.first()?, *frame.get(1)?]);
    Some(ether_type_or_not_ip(proto, frame.get(20..)?))
}

/// Splits a BSD loopback header off. The family's byte order is the writer's, so both are
/// tried; the values that matter (2, 24, 28, 30) are unambiguous either way.
pub fn loopback(frame: &[u8], network_order: bool) -> Option<Next<'_>> {
    let raw: [u8; 4] = frame.get(..4)?.try_into().ok()?;
    let family = if network_order {
        u32::from_be_bytes(raw)
    } else {
        let le = u32::from_le_bytes(raw);
        if le > 0xffff {
            u32::from_be_bytes(raw)
        } else {
            le
        }
    };
    let rest = frame.get(4..)?;
    Some(match family {
        2 | 24 | 28 | 30 => Next::Ip(rest),
        _ => Next::NotIp,
    })
}

fn ether_type_or_not_ip(proto: u16, rest: &[u8]) -> Next<'_> {
    match EtherType(proto) {
        EtherType::IPV4
        | EtherType::IPV6
        | EtherType::VLAN_TAGGED_FRAME
        | EtherType::PROVIDER_BRIDGING
        | EtherType::VLAN_DOUBLE_TAGGED_FRAME => Next::EtherType(EtherType(proto), rest),
        _ => Next::NotIp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sll_too_short() {
        assert!(linux_sll(&[0; 15]).is_none());
        assert!(linux_sll2(&[0x08]).is_none());
        assert!(loopback(&[2, 0], false).is_none());
    }

    #[test]
    fn loopback_family_either_order() {
        assert!(matches!(
            loopback(&[2, 0, 0, 0, 0x45], false),
            Some(Next::Ip(_))
        ));
        assert!(matches!(
            loopback(&[0, 0, 0, 2, 0x45], false),
            Some(Next::Ip(_))
        ));
        assert!(matches!(loopback(&[0, 0, 0, 30], true), Some(Next::Ip(_))));
        assert!(matches!(loopback(&[7, 0, 0, 0], false), Some(Next::NotIp)));
    }
}
