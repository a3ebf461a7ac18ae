//! Decode: link layer -> IP -> TCP/UDP, as a borrowed view over the captured frame.
//!
//! Decoding is lax on purpose: a frame cut short by the snap length decodes as far as it goes,
//! and a TCP segment whose payload was cut reports how many bytes are missing so reassembly can
//! hand the parser a gap instead of silently shortening the stream. Every frame that cannot be
//! used is counted in [`DecodeStats`] by the reason it was dropped.

mod defrag;
mod link;

pub use defrag::{Defragmenter, FragAnomalies, FragStats, Fragment, OverlapPolicy, Reassembled};

use crate::capture::LinkType;

use std::net::IpAddr;

use etherparse::{
    EtherType, IpNumber, Ipv4HeaderSlice, LaxIpPayloadSlice, LaxIpSlice, LaxIpv4Slice,
    LaxIpv6Slice, LaxNetSlice, LaxSlicedPacket, TcpSlice, TransportSlice, err::Layer,
};
use serde::Serialize;

/// Up to two 802.1Q tags, outermost first (QinQ). Part of the flow key.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
pub struct VlanTags {
    ids: [u16; 2],
    len: u8,
}

impl VlanTags {
    pub fn new(ids: &[u16]) -> Self {
        let mut tags = VlanTags::default();
        for &id in ids {
            tags.push(id);
        }
        tags
    }

    /// Adds the next inner tag; tags past the second are ignored.
    pub fn push(&mut self, id: u16) {
        if let Some(slot) = self.ids.get_mut(usize::from(self.len)) {
            *slot = id;
            self.len += 1;
        }
    }

    pub fn as_slice(&self) -> &[u16] {
        &self.ids[..usize::from(self.len)]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// TCP flag bits as on the wire (low byte of the flags field).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;

    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// A decoded TCP segment; `payload` borrows from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub vlan: VlanTags,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub payload: &'a [u8],
    /// Payload bytes the IP header announces but the capture did not keep (snap length).
    pub missing: u32,
    /// What was odd about the fragments it came in (none when it came whole).
    pub frag_anomalies: FragAnomalies,
}

/// What a frame turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    Tcp(TcpSegment<'a>),
    /// An IP fragment, for the [`Defragmenter`].
    Fragment(Fragment<'a>),
    /// Counted, not analysed further: UDP, ICMP, other IP protocols, non-IP.
    Other,
}

/// Why a frame could not be decoded; each kind is a counter in the `stats` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    UnsupportedLinkType,
    LinkHeader,
    VlanHeader,
    IpHeader,
    Ipv6ExtensionHeader,
    TcpHeader,
    UdpHeader,
    Other,
}

impl DecodeError {
    pub const ALL: [DecodeError; 8] = [
        DecodeError::UnsupportedLinkType,
        DecodeError::LinkHeader,
        DecodeError::VlanHeader,
        DecodeError::IpHeader,
        DecodeError::Ipv6ExtensionHeader,
        DecodeError::TcpHeader,
        DecodeError::UdpHeader,
        DecodeError::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DecodeError::UnsupportedLinkType => "unsupported_link_type",
            DecodeError::LinkHeader => "link_header",
            DecodeError::VlanHeader => "vlan_header",
            DecodeError::IpHeader => "ip_header",
            DecodeError::Ipv6ExtensionHeader => "ipv6_extension_header",
            DecodeError::TcpHeader => "tcp_header",
            DecodeError::UdpHeader => "udp_header",
            DecodeError::Other => "other",
        }
    }

    fn from_layer(layer: Layer) -> Self {
        match layer {
            Layer::LinuxSllHeader | Layer::Ethernet2Header | Layer::EtherPayload => {
                DecodeError::LinkHeader
            }
            Layer::VlanHeader | Layer::MacsecHeader | Layer::MacsecPacket => {
                DecodeError::VlanHeader
            }
            Layer::IpHeader
            | Layer::Ipv4Header
            | Layer::Ipv4Packet
            | Layer::IpAuthHeader
            | Layer::Ipv6Header
            | Layer::Ipv6Packet => DecodeError::IpHeader,
            Layer::Ipv6ExtHeader
            | Layer::Ipv6HopByHopHeader
            | Layer::Ipv6DestOptionsHeader
            | Layer::Ipv6RouteHeader
            | Layer::Ipv6FragHeader => DecodeError::Ipv6ExtensionHeader,
            Layer::TcpHeader => DecodeError::TcpHeader,
            Layer::UdpHeader | Layer::UdpPayload => DecodeError::UdpHeader,
            _ => DecodeError::Other,
        }
    }
}

/// Counters of what the decoder saw. Every frame lands in exactly one of `tcp`, `udp`,
/// `other_ip`, `non_ip`, `ipv4_fragments`, `ipv6_fragments` or `errors`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DecodeStats {
    pub ipv4: u64,
    pub ipv6: u64,
    pub vlan: u64,
    pub tcp: u64,
    pub udp: u64,
    pub other_ip: u64,
    pub non_ip: u64,
    pub ipv4_fragments: u64,
    pub ipv6_fragments: u64,
    /// What became of the fragments: reassembled, or dropped and why.
    pub fragments: FragStats,
    /// Segments whose payload the capture cut short (snap length).
    pub truncated_tcp: u64,
    #[serde(serialize_with = "serialize_errors")]
    pub errors: [u64; DecodeError::ALL.len()],
}

fn serialize_errors<S: serde::Serializer>(
    errors: &[u64; DecodeError::ALL.len()],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(errors.len()))?;
    for (kind, n) in DecodeError::ALL.iter().zip(errors) {
        map.serialize_entry(kind.name(), n)?;
    }
    map.end()
}

impl DecodeStats {
    pub fn add(&mut self, other: &DecodeStats) {
        self.ipv4 += other.ipv4;
        self.ipv6 += other.ipv6;
        self.vlan += other.vlan;
        self.tcp += other.tcp;
        self.udp += other.udp;
        self.other_ip += other.other_ip;
        self.non_ip += other.non_ip;
        self.ipv4_fragments += other.ipv4_fragments;
        self.ipv6_fragments += other.ipv6_fragments;
        self.fragments.add(&other.fragments);
        self.truncated_tcp += other.truncated_tcp;
        for (mine, theirs) in self.errors.iter_mut().zip(other.errors) {
            *mine += theirs;
        }
    }

    pub fn error(&self, kind: DecodeError) -> u64 {
        self.errors[kind as usize]
    }

    fn count_error(&mut self, kind: DecodeError) {
        self.errors[kind as usize] += 1;
    }
}

/// Decodes one captured frame, counting what it was in `stats`.
pub fn decode<'a>(link: LinkType, frame: &'a [u8], stats: &mut DecodeStats) -> Decoded<'a> {
    if link == LinkType::Ethernet
        && let Some(decoded) = ethernet_tcp(frame, stats)
    {
        return decoded;
    }
    match decode_inner(link, frame, stats) {
        Ok(decoded) => decoded,
        Err(kind) => {
            stats.count_error(kind);
            Decoded::Other
        }
    }
}

/// The frame nearly every packet is, decoded without building etherparse's whole sliced
/// packet (which costs more than the rest of decoding): Ethernet with at most two VLAN tags,
/// then IPv4 that is whole within the frame or IPv6 whose headers parse whole, not a fragment,
/// then a whole TCP header. For anything else it
/// counts nothing and says `None`, and the general path decodes the frame as it always did;
/// on these frames both give the same segment and the same counts.
#[inline(always)]
fn ethernet_tcp<'a>(frame: &'a [u8], stats: &mut DecodeStats) -> Option<Decoded<'a>> {
    let be16 = |at: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]))
    };
    let mut ether_type = be16(12)?;
    let mut at = 14;
    let mut vlan = VlanTags::default();
    while matches!(
        EtherType(ether_type),
        EtherType::VLAN_TAGGED_FRAME
            | EtherType::PROVIDER_BRIDGING
            | EtherType::VLAN_DOUBLE_TAGGED_FRAME
    ) {
        if vlan.as_slice().len() == 2 {
            return None;
        }
        vlan.push(be16(at)? & 0x0fff);
        ether_type = be16(at + 2)?;
        at += 4;
    }
    let ip = frame.get(at..)?;
    let (parts, tcp) = match EtherType(ether_type) {
        EtherType::IPV4 => {
            let (parts, payload) = whole_ipv4_tcp(ip)?;
            let tcp = TcpSlice::from_slice(payload).ok()?;
            stats.ipv4 += 1;
            (parts, tcp)
        }
        EtherType::IPV6 => {
            let (LaxIpSlice::Ipv6(ip), None) = LaxIpSlice::from_slice(ip).ok()? else {
                return None;
            };
            if ip.payload().fragmented || ip.payload().ip_number != IpNumber::TCP {
                return None;
            }
            let tcp = TcpSlice::from_slice(ip.payload().payload).ok()?;
            stats.ipv6 += 1;
            (ipv6_parts(&ip), tcp)
        }
        _ => return None,
    };
    if !vlan.is_empty() {
        stats.vlan += 1;
    }
    Some(Decoded::Tcp(tcp_segment(parts, vlan, &tcp, stats)))
}

/// An IPv4 packet that is whole (its total length within the frame) and carries an
/// unfragmented TCP segment: its parts and the TCP bytes. Only its header is parsed, without
/// the lax slice's bookkeeping, which the frames of the fast path do not need.
#[inline(always)]
fn whole_ipv4_tcp(ip: &[u8]) -> Option<(IpParts, &[u8])> {
    let header = Ipv4HeaderSlice::from_slice(ip).ok()?;
    if header.protocol() != IpNumber::TCP || header.is_fragmenting_payload() {
        return None;
    }
    let payload = ip.get(header.slice().len()..usize::from(header.total_len()))?;
    let parts = (
        IpAddr::V4(header.source_addr()),
        IpAddr::V4(header.destination_addr()),
        0,
    );
    Some((parts, payload))
}

/// Source and destination address of an IP packet, and how many bytes of its payload the
/// header declares but the capture did not keep.
type IpParts = (IpAddr, IpAddr, usize);

/// What the header declares of the payload beyond what `payload` holds, if it was cut.
fn missing_bytes(payload: &LaxIpPayloadSlice<'_>, declared: usize) -> usize {
    if payload.incomplete {
        declared.saturating_sub(payload.payload.len())
    } else {
        0
    }
}

fn ipv4_parts(ip: &LaxIpv4Slice<'_>) -> IpParts {
    let header = ip.header();
    let declared = usize::from(header.total_len()).saturating_sub(header.slice().len());
    (
        IpAddr::V4(header.source_addr()),
        IpAddr::V4(header.destination_addr()),
        missing_bytes(ip.payload(), declared),
    )
}

fn ipv6_parts(ip: &LaxIpv6Slice<'_>) -> IpParts {
    let header = ip.header();
    let declared =
        usize::from(header.payload_length()).saturating_sub(ip.extensions().slice().len());
    (
        IpAddr::V6(header.source_addr()),
        IpAddr::V6(header.destination_addr()),
        missing_bytes(ip.payload(), declared),
    )
}

/// The segment of a TCP header in an IP packet, counted.
#[inline(always)]
fn tcp_segment<'a>(
    (src, dst, missing): IpParts,
    vlan: VlanTags,
    tcp: &TcpSlice<'a>,
    stats: &mut DecodeStats,
) -> TcpSegment<'a> {
    stats.tcp += 1;
    if missing > 0 {
        stats.truncated_tcp += 1;
    }
    TcpSegment {
        src,
        dst,
        src_port: tcp.source_port(),
        dst_port: tcp.destination_port(),
        vlan,
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        // The low byte holds CWR..FIN; NS lives in the data-offset byte and is not needed.
        flags: TcpFlags(tcp.header_slice().get(13).copied().unwrap_or(0)),
        payload: tcp.payload(),
        missing: u32::try_from(missing).unwrap_or(u32::MAX),
        frag_anomalies: FragAnomalies::default(),
    }
}

/// The TCP segment a reassembled datagram holds; `None` (counted as a TCP header error) when
/// it holds no whole TCP header. It is no frame: the fragments were counted already.
pub fn reassembled_tcp<'a>(
    datagram: &'a Reassembled,
    stats: &mut DecodeStats,
) -> Option<TcpSegment<'a>> {
    if datagram.protocol != IpNumber::TCP.0 {
        return None;
    }
    let Ok(tcp) = TcpSlice::from_slice(&datagram.payload) else {
        stats.count_error(DecodeError::TcpHeader);
        return None;
    };
    Some(TcpSegment {
        src: datagram.src,
        dst: datagram.dst,
        src_port: tcp.source_port(),
        dst_port: tcp.destination_port(),
        vlan: datagram.vlan,
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: TcpFlags(tcp.header_slice().get(13).copied().unwrap_or(0)),
        payload: tcp.payload(),
        missing: 0,
        frag_anomalies: datagram.anomalies,
    })
}

fn decode_inner<'a>(
    link: LinkType,
    frame: &'a [u8],
    stats: &mut DecodeStats,
) -> Result<Decoded<'a>, DecodeError> {
    let sliced = match link {
        LinkType::Ethernet => {
            LaxSlicedPacket::from_ethernet(frame).map_err(|_| DecodeError::LinkHeader)?
        }
        LinkType::RawIp => LaxSlicedPacket::from_ip(frame).map_err(|_| DecodeError::IpHeader)?,
        LinkType::LinuxSll | LinkType::LinuxSll2 | LinkType::Null | LinkType::Loop => {
            let next = match link {
                LinkType::LinuxSll => link::linux_sll(frame),
                LinkType::LinuxSll2 => link::linux_sll2(frame),
                _ => link::loopback(frame, link == LinkType::Loop),
            };
            match next.ok_or(DecodeError::LinkHeader)? {
                link::Next::EtherType(ether_type, rest) => {
                    LaxSlicedPacket::from_ether_type(ether_type, rest)
                }
                link::Next::Ip(rest) => {
                    LaxSlicedPacket::from_ip(rest).map_err(|_| DecodeError::IpHeader)?
                }
                link::Next::NotIp => {
                    stats.non_ip += 1;
                    return Ok(Decoded::Other);
                }
            }
        }
    };
    classify(&sliced, stats)
}

fn classify<'a>(
    sliced: &LaxSlicedPacket<'a>,
    stats: &mut DecodeStats,
) -> Result<Decoded<'a>, DecodeError> {
    let mut vlan = VlanTags::default();
    for ext in &sliced.link_exts {
        if let etherparse::LaxLinkExtSlice::Vlan(tag) = ext {
            vlan.push(tag.vlan_identifier().value());
        }
    }
    if !vlan.is_empty() {
        stats.vlan += 1;
    }

    let parts = match &sliced.net {
        Some(LaxNetSlice::Ipv4(ip)) => {
            stats.ipv4 += 1;
            if ip.is_payload_fragmented() {
                stats.ipv4_fragments += 1;
                let header = ip.header();
                return Ok(Decoded::Fragment(Fragment {
                    src: IpAddr::V4(header.source_addr()),
                    dst: IpAddr::V4(header.destination_addr()),
                    vlan,
                    protocol: header.protocol().0,
                    id: u32::from(header.identification()),
                    offset: usize::from(header.fragments_offset().byte_offset()),
                    more: header.more_fragments(),
                    data: ip.payload().payload,
                }));
            }
            ipv4_parts(ip)
        }
        Some(LaxNetSlice::Ipv6(ip)) => {
            stats.ipv6 += 1;
            if ip.is_payload_fragmented() {
                stats.ipv6_fragments += 1;
                let fragment_header =
                    ip.extensions()
                        .clone()
                        .into_iter()
                        .find_map(|ext| match ext {
                            etherparse::Ipv6ExtensionSlice::Fragment(f) => Some(f),
                            _ => None,
                        });
                let Some(f) = fragment_header else {
                    return Err(DecodeError::Ipv6ExtensionHeader);
                };
                let header = ip.header();
                return Ok(Decoded::Fragment(Fragment {
                    src: IpAddr::V6(header.source_addr()),
                    dst: IpAddr::V6(header.destination_addr()),
                    vlan,
                    protocol: ip.payload().ip_number.0,
                    id: f.identification(),
                    offset: usize::from(f.fragment_offset().byte_offset()),
                    more: f.more_fragments(),
                    data: ip.payload().payload,
                }));
            }
            ipv6_parts(ip)
        }
        Some(LaxNetSlice::Arp(_)) => {
            stats.non_ip += 1;
            return Ok(Decoded::Other);
        }
        None => {
            return match sliced.stop_err {
                Some((_, layer)) => Err(DecodeError::from_layer(layer)),
                None => {
                    stats.non_ip += 1;
                    Ok(Decoded::Other)
                }
            };
        }
    };

    match &sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => Ok(Decoded::Tcp(tcp_segment(parts, vlan, tcp, stats))),
        Some(TransportSlice::Udp(_)) => {
            stats.udp += 1;
            Ok(Decoded::Other)
        }
        Some(_) => {
            stats.other_ip += 1;
            Ok(Decoded::Other)
        }
        None => match sliced.stop_err {
            Some((_, layer)) => Err(DecodeError::from_layer(layer)),
            None => {
                stats.other_ip += 1;
                Ok(Decoded::Other)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp_frame(payload: &[u8]) -> Vec<u8> {
        let builder = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 25, 1000, 65535)
            .ack(77)
            .psh();
        let mut out = Vec::new();
        builder.write(&mut out, payload).unwrap();
        out
    }

    fn tcp(decoded: Decoded<'_>) -> TcpSegment<'_> {
        match decoded {
            Decoded::Tcp(seg) => seg,
            other => panic!("expected TCP, got {other:?}"),
        }
    }

    #[test]
    fn ethernet_ipv4_tcp() {
        let frame = tcp_frame(b"EHLO x\r\n");
        let mut stats = DecodeStats::default();
        let seg = tcp(decode(LinkType::Ethernet, &frame, &mut stats));
        assert_eq!(seg.src, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!((seg.src_port, seg.dst_port), (40000, 25));
        assert_eq!((seg.seq, seg.ack), (1000, 77));
        assert!(seg.flags.ack() && !seg.flags.syn());
        assert_eq!(seg.payload, b"EHLO x\r\n");
        assert_eq!(seg.missing, 0);
        assert_eq!((stats.ipv4, stats.tcp), (1, 1));
    }

    #[test]
    fn snaplen_truncated_payload_reports_missing_bytes() {
        let frame = tcp_frame(&[b'x'; 100]);
        let cut = &frame[..frame.len() - 40];
        let mut stats = DecodeStats::default();
        let seg = tcp(decode(LinkType::Ethernet, cut, &mut stats));
        assert_eq!(seg.payload.len(), 60);
        assert_eq!(seg.missing, 40);
        assert_eq!(stats.truncated_tcp, 1);
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut frame = tcp_frame(b"");
        frame.resize(60, 0);
        let mut stats = DecodeStats::default();
        let seg = tcp(decode(LinkType::Ethernet, &frame, &mut stats));
        assert!(seg.payload.is_empty());
        assert_eq!(seg.missing, 0);
    }

    #[test]
    fn qinq_tags_in_order() {
        let builder = PacketBuilder::ethernet2([1; 6], [2; 6])
            .double_vlan(
                etherparse::VlanId::try_new(100).unwrap(),
                etherparse::VlanId::try_new(200).unwrap(),
            )
            .ipv6([1; 16], [2; 16], 64)
            .tcp(1, 2, 3, 4);
        let mut frame = Vec::new();
        builder.write(&mut frame, b"hi").unwrap();
        let mut stats = DecodeStats::default();
        let seg = tcp(decode(LinkType::Ethernet, &frame, &mut stats));
        assert_eq!(seg.vlan.as_slice(), &[100, 200]);
        assert_eq!((stats.ipv6, stats.vlan), (1, 1));
    }

    #[test]
    fn ipv6_extension_headers_are_walked() {
        let builder = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv6([1; 16], [2; 16], 64)
            .tcp(40000, 25, 9, 100);
        let mut frame = Vec::new();
        builder.write(&mut frame, b"MAIL").unwrap();
        // Insert a hop-by-hop options header (8 bytes, PadN) between IPv6 and TCP.
        let ip = 14;
        frame[ip + 6] = 0; // next header: hop-by-hop
        let len = u16::from_be_bytes([frame[ip + 4], frame[ip + 5]]) + 8;
        frame[ip + 4..ip + 6].copy_from_slice(&len.to_be_bytes());
        let hop_by_hop = [6, 0, 1, 4, 0, 0, 0, 0];
        frame.splice(ip + 40..ip + 40, hop_by_hop);
        let mut stats = DecodeStats::default();
        let seg = tcp(decode(LinkType::Ethernet, &frame, &mut stats));
        assert_eq!((seg.dst_port, seg.payload), (25, &b"MAIL"[..]));

        // Chain a fragment header (offset 0, more fragments, id 7) after it: a fragment of
        // a TCP datagram, for reassembly.
        frame[ip + 40] = 44;
        frame.splice(ip + 48..ip + 48, [6, 0, 0, 1, 0, 0, 0, 7]);
        let len = u16::from_be_bytes([frame[ip + 4], frame[ip + 5]]) + 8;
        frame[ip + 4..ip + 6].copy_from_slice(&len.to_be_bytes());
        let Decoded::Fragment(f) = decode(LinkType::Ethernet, &frame, &mut stats) else {
            panic!("a fragment");
        };
        assert_eq!((f.protocol, f.id, f.offset, f.more), (6, 7, 0, true));
        assert_eq!(f.data.len(), 24, "the TCP header and MAIL");
        assert_eq!(stats.ipv6_fragments, 1);
    }

    #[test]
    fn fragments_are_counted_and_handed_to_reassembly() {
        let mut frame = tcp_frame(b"data");
        // Set "more fragments" in the IPv4 header (Ethernet 14 + flags at offset 6).
        frame[14 + 6] |= 0x20;
        let mut stats = DecodeStats::default();
        let Decoded::Fragment(f) = decode(LinkType::Ethernet, &frame, &mut stats) else {
            panic!("a fragment");
        };
        assert_eq!(
            (f.protocol, f.offset, f.more, f.data.len()),
            (6, 0, true, 24)
        );
        assert_eq!(stats.ipv4_fragments, 1);
        assert_eq!(stats.tcp, 0, "a fragment is no TCP segment yet");
    }

    #[test]
    fn garbage_never_panics_and_is_counted() {
        let mut stats = DecodeStats::default();
        for len in 0..80 {
            let frame: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            for link in [
                LinkType::Ethernet,
                LinkType::RawIp,
                LinkType::LinuxSll,
                LinkType::LinuxSll2,
                LinkType::Null,
                LinkType::Loop,
            ] {
                let _ = decode(link, &frame, &mut stats);
            }
        }
        assert!(stats.errors.iter().sum::<u64>() > 0);
    }

    #[test]
    fn truncated_tcp_header_is_an_error() {
        let frame = tcp_frame(b"");
        let cut = &frame[..14 + 20 + 10];
        let mut stats = DecodeStats::default();
        assert_eq!(decode(LinkType::Ethernet, cut, &mut stats), Decoded::Other);
        assert_eq!(stats.error(DecodeError::TcpHeader), 1);
    }

    #[test]
    fn raw_ip_and_sll2() {
        let builder = PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 9).tcp(5, 6, 7, 8);
        let mut ip = Vec::new();
        builder.write(&mut ip, b"z").unwrap();
        let mut stats = DecodeStats::default();
        assert_eq!(tcp(decode(LinkType::RawIp, &ip, &mut stats)).payload, b"z");

        let mut sll2 = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        sll2.extend_from_slice(&ip);
        assert_eq!(
            tcp(decode(LinkType::LinuxSll2, &sll2, &mut stats)).src_port,
            5
        );
    }

    /// The general path, without the fast one in front of it.
    fn general(frame: &[u8]) -> (Decoded<'_>, DecodeStats) {
        let mut stats = DecodeStats::default();
        let decoded = match decode_inner(LinkType::Ethernet, frame, &mut stats) {
            Ok(d) => d,
            Err(kind) => {
                stats.count_error(kind);
                Decoded::Other
            }
        };
        (decoded, stats)
    }

    #[test]
    fn the_fast_path_agrees_with_the_general_one() {
        let payload = b"MAIL FROM:<a@b>\r\n";
        let mut frames: Vec<Vec<u8>> = Vec::new();
        frames.push(tcp_frame(payload));
        let ipv6 = |builder: etherparse::PacketBuilderStep<etherparse::VlanHeader>| {
            let mut out = Vec::new();
            builder
                .ipv6([1; 16], [2; 16], 64)
                .tcp(40000, 25, 7, 1000)
                .write(&mut out, payload)
                .unwrap();
            out
        };
        let tag = |id: u16| etherparse::VlanId::try_new(id).unwrap();
        frames.push(ipv6(
            PacketBuilder::ethernet2([1; 6], [2; 6]).single_vlan(tag(10)),
        ));
        let two = ipv6(PacketBuilder::ethernet2([1; 6], [2; 6]).double_vlan(tag(10), tag(20)));
        // Three tags, which only the general path reads: 0x8100 and tag 30 in front.
        let mut three = two[..12].to_vec();
        three.extend_from_slice(&[0x81, 0x00, 0x00, 30]);
        three.extend_from_slice(&two[12..]);
        frames.push(two);
        frames.push(three);
        let whole = tcp_frame(payload);
        // Cut in the TCP header, in the payload, in the IP header; a UDP datagram; ARP.
        for cut in [40, 60, 20, 14, 13] {
            frames.push(whole[..cut.min(whole.len())].to_vec());
        }
        let mut udp = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(53, 53)
            .write(&mut udp, b"q")
            .unwrap();
        frames.push(udp);
        // Ethernet padding after the IP packet; IPv4 options; a fragment; a total length
        // shorter than the header, and longer than the frame.
        let mut padded = whole.clone();
        padded.extend_from_slice(&[0; 6]);
        frames.push(padded);
        let mut options = Vec::new();
        let mut ip =
            etherparse::Ipv4Header::new(0, 64, IpNumber::TCP, [10, 0, 0, 1], [10, 0, 0, 2])
                .unwrap();
        ip.options = [1, 1, 1, 1].as_slice().try_into().unwrap();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
            .tcp(40000, 25, 7, 1000)
            .write(&mut options, payload)
            .unwrap();
        let mut stats = DecodeStats::default();
        for whole in [&options, &frames[frames.len() - 1]] {
            assert_eq!(
                tcp(decode(LinkType::Ethernet, whole, &mut stats)).payload,
                payload
            );
        }
        frames.push(options);
        let mut fragment = whole.clone();
        fragment[20] |= 0x20; // more fragments
        frames.push(fragment);
        for total_len in [10u16, 1500] {
            let mut odd = whole.clone();
            odd[16..18].copy_from_slice(&total_len.to_be_bytes());
            frames.push(odd);
        }
        let mut arp = whole[..14].to_vec();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&[0; 28]);
        frames.push(arp);
        for frame in &frames {
            let mut stats = DecodeStats::default();
            let fast = decode(LinkType::Ethernet, frame, &mut stats);
            assert_eq!((fast, stats), general(frame), "frame {frame:02x?}");
        }
    }
}
