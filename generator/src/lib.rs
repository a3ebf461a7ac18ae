//! Deterministic capture generator: real TCP sessions built packet by packet with etherparse
//! (handshake, MSS segmentation, ACKs, FIN or RST) and, on request, the faults a sensor must
//! survive: reordering, duplicates, overlaps (optionally conflicting), capture loss and
//! snap-length truncation. The same calls always give the same bytes, so `pcaps/` can be
//! regenerated and checked, and the benchmark input need not be committed.

mod detections;
mod fingerprints;
mod scenarios;
mod seeds;
pub mod tls;

pub use scenarios::{Flood, Scenario, bench_mix, flood, mail_mix, scenarios, starttls_mix};
pub use seeds::write_seeds;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use etherparse::{
    EtherType, Ethernet2Header, IpNumber, Ipv4Header, PacketBuilder, SingleVlanHeader, VlanId,
};

use spamtap::direction::Direction;
use spamtap::timestamp::Timestamp;

/// 2026-01-01T00:00:00Z: every generated capture starts here unless told otherwise.
pub const EPOCH: Timestamp = Timestamp(1_767_225_600 * Timestamp::MICROS_PER_SEC);

/// One captured frame: `data` is what the capture kept, `wire_len` what was on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub ts: Timestamp,
    pub data: Vec<u8>,
    pub wire_len: u32,
}

/// The link layer frames are wrapped in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// Ethernet II with zero, one (802.1Q) or two (QinQ) VLAN tags.
    Ethernet {
        vlan: Vec<u16>,
    },
    LinuxSll,
    LinuxSll2,
    RawIp,
    /// BSD loopback, family in little-endian as written on x86.
    Null,
}

impl Link {
    pub fn ethernet() -> Self {
        Link::Ethernet { vlan: Vec::new() }
    }

    /// The libpcap `DLT_*` number (libpcap writes the matching `LINKTYPE_*` in the file).
    pub fn dlt(&self) -> i32 {
        match self {
            Link::Ethernet { .. } => 1,
            Link::LinuxSll => 113,
            Link::LinuxSll2 => 276,
            // DLT_RAW is 12 on Linux; the file says LINKTYPE_RAW (101).
            Link::RawIp => 12,
            Link::Null => 0,
        }
    }

    /// Wraps an IP packet (or, with `ether_type`, any payload) in this link's header.
    fn wrap(&self, ether_type: EtherType, packet: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(packet.len() + 24);
        match self {
            Link::Ethernet { vlan } => {
                let outer = match vlan.len() {
                    0 => ether_type,
                    1 => EtherType::VLAN_TAGGED_FRAME,
                    _ => EtherType::PROVIDER_BRIDGING,
                };
                let eth = Ethernet2Header {
                    source: [0x02, 0, 0, 0, 0, 0x01],
                    destination: [0x02, 0, 0, 0, 0, 0x02],
                    ether_type: outer,
                };
                out.extend_from_slice(&eth.to_bytes());
                for (i, id) in vlan.iter().enumerate() {
                    let next = if i + 1 < vlan.len() {
                        EtherType::VLAN_TAGGED_FRAME
                    } else {
                        ether_type
                    };
                    let tag = SingleVlanHeader {
                        vlan_id: VlanId::try_new(*id & 0x0fff).unwrap_or(VlanId::ZERO),
                        ether_type: next,
                        ..Default::default()
                    };
                    out.extend_from_slice(&tag.to_bytes());
                }
            }
            Link::LinuxSll => {
                // Packet type "sent by us", ARPHRD_ETHER, 6-byte address, protocol.
                out.extend_from_slice(&[0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
                out.extend_from_slice(&ether_type.0.to_be_bytes());
            }
            Link::LinuxSll2 => {
                out.extend_from_slice(&ether_type.0.to_be_bytes());
                out.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 4, 6]);
                out.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0, 0]);
            }
            Link::RawIp => {}
            Link::Null => {
                let family: u32 = if ether_type == EtherType::IPV6 { 30 } else { 2 };
                out.extend_from_slice(&family.to_le_bytes());
            }
        }
        out.extend_from_slice(packet);
        out
    }
}

fn ether_type_of(ip: IpAddr) -> EtherType {
    match ip {
        IpAddr::V4(_) => EtherType::IPV4,
        IpAddr::V6(_) => EtherType::IPV6,
    }
}

/// Builds an IP + TCP packet.
fn tcp_packet(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: Option<u32>,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let ip = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (s, d) => PacketBuilder::ipv6(to_v6(s), to_v6(d), 64),
    };
    let mut tcp = ip.tcp(src.port(), dst.port(), seq, 64240);
    if let Some(ack) = ack {
        tcp = tcp.ack(ack);
    }
    if flags & 0x02 != 0 {
        tcp = tcp.syn();
    }
    if flags & 0x01 != 0 {
        tcp = tcp.fin();
    }
    if flags & 0x04 != 0 {
        tcp = tcp.rst();
    }
    if flags & 0x08 != 0 {
        tcp = tcp.psh();
    }
    let mut out = Vec::with_capacity(tcp.size(payload.len()));
    // Writing into a Vec only fails on a payload too large for IP, which callers never build.
    let _ = tcp.write(&mut out, payload);
    out
}

fn to_v6(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V6(v6) => v6.octets(),
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
    }
}

/// A change to how one `send` reaches the capture. Segment indices count the MSS-sized
/// segments of that send, from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Segment i is captured after segment i + 1.
    Reorder(usize),
    /// Segment i is captured twice.
    Duplicate(usize),
    /// Segment i reached the receiver (it is ACKed) but not the capture.
    Drop(usize),
    /// Before segment i, a segment spanning the second half of i and the first half of i + 1
    /// is captured; with `conflicting`, its bytes differ from the real ones.
    Overlap { segment: usize, conflicting: bool },
    /// Segment i is cut to `keep` payload bytes by the capture's snap length.
    Truncate { segment: usize, keep: usize },
}

/// A TCP connection being written out, frame by frame.
pub struct Session {
    endpoints: [SocketAddr; 2],
    link: Link,
    mss: usize,
    next_seq: [u32; 2],
    clock: Timestamp,
    step_micros: u64,
    frames: Vec<Frame>,
}

impl Session {
    /// A session from `client` to `server`, e.g. `"10.0.0.1:40000"`, `"[2001:db8::1]:25"`.
    ///
    /// # Panics
    /// On an address that does not parse: callers pass literals.
    pub fn new(client: &str, server: &str) -> Self {
        let parse = |s: &str| -> SocketAddr {
            s.parse()
                .unwrap_or_else(|_| panic!("generator address {s:?} is not ip:port"))
        };
        let endpoints = [parse(client), parse(server)];
        // ISNs derived from the ports: deterministic, and different per session.
        let isn_c = u32::from(endpoints[0].port()).wrapping_mul(2_654_435_761);
        let isn_s = u32::from(endpoints[1].port())
            .wrapping_mul(40_503)
            .wrapping_add(isn_c);
        Session {
            endpoints,
            link: Link::ethernet(),
            mss: 1460,
            next_seq: [isn_c, isn_s],
            clock: EPOCH,
            step_micros: 100,
            frames: Vec::new(),
        }
    }

    pub fn link(mut self, link: Link) -> Self {
        self.link = link;
        self
    }

    pub fn mss(mut self, mss: usize) -> Self {
        self.mss = mss.max(1);
        self
    }

    /// Initial sequence numbers of client and server.
    pub fn isn(mut self, client: u32, server: u32) -> Self {
        self.next_seq = [client, server];
        self
    }

    pub fn starting_at(mut self, ts: Timestamp) -> Self {
        self.clock = ts;
        self
    }

    /// Lets packet time pass.
    pub fn wait_secs(&mut self, secs: u64) -> &mut Self {
        self.clock = self.clock.saturating_add_secs(secs);
        self
    }

    fn emit(&mut self, dir: Direction, seq: u32, ack: Option<u32>, flags: u8, payload: &[u8]) {
        self.emit_truncated(dir, seq, ack, flags, payload, payload.len());
    }

    fn emit_truncated(
        &mut self,
        dir: Direction,
        seq: u32,
        ack: Option<u32>,
        flags: u8,
        payload: &[u8],
        keep: usize,
    ) {
        let (src, dst) = match dir {
            Direction::Ctos => (self.endpoints[0], self.endpoints[1]),
            Direction::Stoc => (self.endpoints[1], self.endpoints[0]),
        };
        let packet = tcp_packet(src, dst, seq, ack, flags, payload);
        let mut data = self.link.wrap(ether_type_of(src.ip()), &packet);
        let wire_len = data.len() as u32;
        data.truncate(data.len() - (payload.len() - keep.min(payload.len())));
        self.clock = Timestamp(self.clock.0 + self.step_micros);
        self.frames.push(Frame {
            ts: self.clock,
            data,
            wire_len,
        });
    }

    fn ack_of(&self, dir: Direction) -> u32 {
        self.next_seq[dir.reverse().index()]
    }

    /// The client's SYN alone (call again for a retransmission).
    pub fn syn(&mut self) -> &mut Self {
        let isn = self.next_seq[0];
        self.emit(Direction::Ctos, isn, None, 0x02, b"");
        self
    }

    /// SYN, SYN-ACK, ACK.
    pub fn handshake(&mut self) -> &mut Self {
        self.three_way(0x02, false, 0x12)
    }

    /// The client's `client_flags` (with an ACK if `client_acks`), the server's
    /// `server_flags`, the client's ACK: each of the two control flags uses a sequence number.
    fn three_way(&mut self, client_flags: u8, client_acks: bool, server_flags: u8) -> &mut Self {
        let [c, s] = self.next_seq;
        self.emit(
            Direction::Ctos,
            c,
            client_acks.then_some(s),
            client_flags,
            b"",
        );
        self.emit(
            Direction::Stoc,
            s,
            Some(c.wrapping_add(1)),
            server_flags,
            b"",
        );
        self.next_seq = [c.wrapping_add(1), s.wrapping_add(1)];
        let [c, s] = self.next_seq;
        self.emit(Direction::Ctos, c, Some(s), 0x10, b"");
        self
    }

    /// SYN answered by RST: the port is closed.
    pub fn refused(&mut self) -> &mut Self {
        let c = self.next_seq[0];
        self.emit(Direction::Ctos, c, None, 0x02, b"");
        self.emit(Direction::Stoc, 0, Some(c.wrapping_add(1)), 0x14, b"");
        self
    }

    pub fn send(&mut self, dir: Direction, data: &[u8]) -> &mut Self {
        self.send_with(dir, data, &[])
    }

    /// Sends `data` in MSS-sized segments, each ACKed by the peer, with `faults` applied to
    /// what the capture sees.
    pub fn send_with(&mut self, dir: Direction, data: &[u8], faults: &[Fault]) -> &mut Self {
        let base = self.next_seq[dir.index()];
        let segments: Vec<(usize, usize)> = (0..data.len())
            .step_by(self.mss)
            .map(|start| (start, (start + self.mss).min(data.len())))
            .collect();
        let mut order: Vec<usize> = (0..segments.len()).collect();
        for fault in faults {
            if let Fault::Reorder(i) = *fault {
                if i + 1 < order.len() {
                    order.swap(i, i + 1);
                }
            }
        }
        let ack = self.ack_of(dir);
        let mut acked_to = base;
        let mut received = vec![false; segments.len()];
        for &i in &order {
            let (start, end) = segments[i];
            let seq = base.wrapping_add(start as u32);
            for fault in faults {
                if let Fault::Overlap {
                    segment,
                    conflicting,
                } = *fault
                {
                    if segment == i && i + 1 < segments.len() {
                        let from = (start + end) / 2;
                        let (next_start, next_end) = segments[i + 1];
                        let to = (next_start + next_end) / 2;
                        let mut bytes = data[from..to].to_vec();
                        if conflicting {
                            bytes.iter_mut().for_each(|b| *b = b'X');
                        }
                        self.emit(dir, base.wrapping_add(from as u32), Some(ack), 0x18, &bytes);
                    }
                }
            }
            let dropped = faults.contains(&Fault::Drop(i));
            if !dropped {
                let keep = faults
                    .iter()
                    .find_map(|f| match *f {
                        Fault::Truncate { segment, keep } if segment == i => Some(keep),
                        _ => None,
                    })
                    .unwrap_or(end - start);
                self.emit_truncated(dir, seq, Some(ack), 0x18, &data[start..end], keep);
                if faults.contains(&Fault::Duplicate(i)) {
                    self.emit(dir, seq, Some(ack), 0x18, &data[start..end]);
                }
            }
            // The receiver got every segment in capture order (capture loss is not network
            // loss) and ACKs, after every second segment and the last, what it holds without
            // a hole.
            received[i] = true;
            let contiguous = received.iter().take_while(|&&r| r).count();
            if contiguous > 0 {
                acked_to = base.wrapping_add(segments[contiguous - 1].1 as u32);
            }
            if i % 2 == 1 || i + 1 == segments.len() {
                let peer_seq = self.next_seq[dir.reverse().index()];
                self.emit(dir.reverse(), peer_seq, Some(acked_to), 0x10, b"");
            }
        }
        self.next_seq[dir.index()] = base.wrapping_add(data.len() as u32);
        self
    }

    /// Orderly close: the client's FIN, the server's FIN-ACK, the client's last ACK.
    pub fn close(&mut self) -> &mut Self {
        self.three_way(0x11, true, 0x11)
    }

    /// A segment with only `flags` (RST 0x04, FIN 0x11, ...) that claims to come from `from`
    /// but whose sequence number is `offset` bytes past where that side is: an injection by
    /// someone who does not know the connection's state. The connection goes on.
    pub fn inject(&mut self, from: Direction, offset: u32, flags: u8) -> &mut Self {
        let seq = self.next_seq[from.index()].wrapping_add(offset);
        let ack = self.ack_of(from);
        self.emit(from, seq, Some(ack), flags, b"");
        self
    }

    /// Sends `data` again from `from`, starting `back` bytes before where that side is: a
    /// retransmission of bytes already sent, faithful or (with other bytes) rewritten.
    pub fn resend(&mut self, from: Direction, back: usize, data: &[u8]) -> &mut Self {
        let seq = self.next_seq[from.index()].wrapping_sub(back as u32);
        let ack = self.ack_of(from);
        self.emit(from, seq, Some(ack), 0x18, data);
        self
    }

    pub fn reset(&mut self, from: Direction) -> &mut Self {
        let seq = self.next_seq[from.index()];
        let ack = self.ack_of(from);
        self.emit(from, seq, Some(ack), 0x14, b"");
        self
    }

    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }

    pub fn into_frames(self) -> Vec<Frame> {
        self.frames
    }

    /// Keeps only the frames one direction sent, as a tap that sees one fibre.
    pub fn one_direction(self, dir: Direction) -> Vec<Frame> {
        let from = match dir {
            Direction::Ctos => self.endpoints[0],
            Direction::Stoc => self.endpoints[1],
        };
        let link = self.link.clone();
        let from_ip = from.ip();
        self.frames
            .into_iter()
            .filter(|f| source_of(&link, &f.data) == Some((from_ip, from.port())))
            .collect()
    }
}

/// Source address of a frame this generator built, by decoding it again.
fn source_of(link: &Link, data: &[u8]) -> Option<(IpAddr, u16)> {
    let link_type = spamtap::capture::LinkType::from_linktype(link.dlt())?;
    let mut stats = spamtap::decode::DecodeStats::default();
    match spamtap::decode::decode(link_type, data, &mut stats) {
        spamtap::decode::Decoded::Tcp(seg) => Some((seg.src, seg.src_port)),
        spamtap::decode::Decoded::Fragment(_) | spamtap::decode::Decoded::Other => None,
    }
}

/// A UDP datagram (counted by the decoder, not analysed).
pub fn udp_frame(
    link: &Link,
    ts: Timestamp,
    src: SocketAddr,
    dst: SocketAddr,
    payload: &[u8],
) -> Frame {
    let ip = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (s, d) => PacketBuilder::ipv6(to_v6(s), to_v6(d), 64),
    };
    let udp = ip.udp(src.port(), dst.port());
    let mut packet = Vec::with_capacity(udp.size(payload.len()));
    let _ = udp.write(&mut packet, payload);
    let data = link.wrap(ether_type_of(src.ip()), &packet);
    Frame {
        ts,
        wire_len: data.len() as u32,
        data,
    }
}

/// Two IPv4 fragments (split at the middle, 8-byte aligned) of a datagram carrying `payload`
/// as protocol TCP, id 0x4242, one microsecond apart.
pub fn ipv4_fragments(
    link: &Link,
    ts: Timestamp,
    src: [u8; 4],
    dst: [u8; 4],
    payload: &[u8],
) -> Vec<Frame> {
    let split = (payload.len() / 2) & !7;
    let pieces = [
        (0, payload[..split].to_vec()),
        (split, payload[split..].to_vec()),
    ];
    fragments(link, ts, src, dst, 0x4242, payload.len(), &pieces)
}

/// IPv4 fragments of one datagram whose payload is `total` bytes long: each piece is its byte
/// offset and data (offsets multiples of 8; a piece may overlap another, as an attacker's
/// does), one microsecond apart; the piece that reaches `total` is the last.
pub fn fragments(
    link: &Link,
    ts: Timestamp,
    src: [u8; 4],
    dst: [u8; 4],
    id: u16,
    total: usize,
    pieces: &[(usize, Vec<u8>)],
) -> Vec<Frame> {
    let packets = pieces.iter().map(|(from, data)| {
        let mut header =
            Ipv4Header::new(data.len() as u16, 64, IpNumber::TCP, src, dst).unwrap_or_default();
        header.identification = id;
        header.more_fragments = from + data.len() < total;
        header.fragment_offset =
            etherparse::IpFragOffset::try_new((from / 8) as u16).unwrap_or_default();
        header.header_checksum = header.calc_header_checksum();
        let mut packet = header.to_bytes().to_vec();
        packet.extend_from_slice(data);
        packet
    });
    one_per_microsecond(link, ts, EtherType::IPV4, packets)
}

/// IP packets as frames of `link`, one microsecond apart from `ts`.
fn one_per_microsecond(
    link: &Link,
    ts: Timestamp,
    ether_type: EtherType,
    packets: impl Iterator<Item = Vec<u8>>,
) -> Vec<Frame> {
    packets
        .enumerate()
        .map(|(i, packet)| {
            let data = link.wrap(ether_type, &packet);
            Frame {
                ts: Timestamp(ts.0 + i as u64),
                wire_len: data.len() as u32,
                data,
            }
        })
        .collect()
}

/// The IP frame `frame` (Ethernet, IPv4 or IPv6) cut into fragments of `size` bytes (a
/// multiple of 8), with, when given, an extra fragment after the first that rewrites the
/// datagram's start. `None` for a frame that is not IP.
pub fn fragment_frame(
    link: &Link,
    frame: &Frame,
    size: usize,
    id: u16,
    rewrite: Option<&[u8]>,
) -> Option<Vec<Frame>> {
    let sliced = etherparse::SlicedPacket::from_ethernet(&frame.data).ok()?;
    let (payload, v4, v6) = match &sliced.net {
        Some(etherparse::NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            (
                ip.payload().payload,
                Some((h.source(), h.destination())),
                None,
            )
        }
        Some(etherparse::NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            (
                ip.payload().payload,
                None,
                Some((h.source(), h.destination())),
            )
        }
        _ => return None,
    };
    let mut pieces: Vec<(usize, Vec<u8>)> = payload
        .chunks(size.max(8))
        .enumerate()
        .map(|(i, c)| (i * size.max(8), c.to_vec()))
        .collect();
    if let Some(bytes) = rewrite {
        pieces.insert(1, (0, bytes.to_vec()));
    }
    let total = payload.len();
    match (v4, v6) {
        (Some((src, dst)), _) => Some(fragments(link, frame.ts, src, dst, id, total, &pieces)),
        (_, Some((src, dst))) => Some(ipv6_fragments(link, frame.ts, src, dst, id, total, &pieces)),
        _ => None,
    }
}

/// As [`fragments`], over IPv6: each piece behind a fragment header (RFC 8200 4.5).
fn ipv6_fragments(
    link: &Link,
    ts: Timestamp,
    src: [u8; 16],
    dst: [u8; 16],
    id: u16,
    total: usize,
    pieces: &[(usize, Vec<u8>)],
) -> Vec<Frame> {
    let packets = pieces.iter().map(|(from, data)| {
        let more = from + data.len() < total;
        let mut packet = vec![0x60, 0, 0, 0];
        packet.extend(((8 + data.len()) as u16).to_be_bytes());
        packet.extend([44, 64]);
        packet.extend(src);
        packet.extend(dst);
        packet.extend([6, 0]);
        packet.extend((((*from as u16) & !7) | u16::from(more)).to_be_bytes());
        packet.extend(u32::from(id).to_be_bytes());
        packet.extend_from_slice(data);
        packet
    });
    one_per_microsecond(link, ts, EtherType::IPV6, packets)
}

/// An ARP request: a non-IP frame.
pub fn arp_frame(ts: Timestamp) -> Frame {
    let mut body = vec![0, 1, 8, 0, 6, 4, 0, 1];
    body.extend_from_slice(&[2, 0, 0, 0, 0, 1, 10, 0, 0, 1]);
    body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
    let data = Link::ethernet().wrap(EtherType::ARP, &body);
    Frame {
        ts,
        wire_len: data.len() as u32,
        data,
    }
}

/// One SMTP client session that sends a message: handshake, `banner`, `greeting` (the whole
/// HELO/EHLO line), MAIL, RCPT, DATA, `message` (headers, body and the final dot line), QUIT,
/// with Postfix's replies.
pub fn mail_session(
    client: &str,
    server: &str,
    when: Timestamp,
    banner: &str,
    greeting: &str,
    message: &[u8],
) -> Vec<Frame> {
    let mut s = Session::new(client, server).starting_at(when);
    s.handshake()
        .send(Direction::Stoc, format!("{banner}\r\n").as_bytes())
        .send(Direction::Ctos, format!("{greeting}\r\n").as_bytes())
        .send(Direction::Stoc, b"250 relay.corp.example.org\r\n")
        .send(Direction::Ctos, b"MAIL FROM:<sender@corp.example.org>\r\n")
        .send(Direction::Stoc, b"250 2.1.0 Ok\r\n")
        .send(Direction::Ctos, b"RCPT TO:<friend@example.net>\r\n")
        .send(Direction::Stoc, b"250 2.1.5 Ok\r\n")
        .send(Direction::Ctos, b"DATA\r\n")
        .send(Direction::Stoc, b"354 End data with <CR><LF>.<CR><LF>\r\n")
        .send(Direction::Ctos, message)
        .send(Direction::Stoc, b"250 2.0.0 Ok: queued as F1\r\n")
        .send(Direction::Ctos, b"QUIT\r\n")
        .send(Direction::Stoc, b"221 2.0.0 Bye\r\n")
        .close();
    s.into_frames()
}

/// Merges the frames of several sessions into capture order (stable for equal times).
pub fn merge(sessions: impl IntoIterator<Item = Vec<Frame>>) -> Vec<Frame> {
    let mut all: Vec<Frame> = sessions.into_iter().flatten().collect();
    all.sort_by_key(|f| f.ts);
    all
}

/// Writes frames as a classic pcap file with the given link type.
pub fn write_pcap(path: &Path, link: &Link, frames: &[Frame]) -> Result<(), pcap::Error> {
    let mut writer = PcapWriter::create(path, link)?;
    for frame in frames {
        writer.write(frame);
    }
    writer.finish()
}

/// Streams frames to a pcap file without holding them all (the benchmark input is large).
pub struct PcapWriter {
    file: pcap::Savefile,
}

impl PcapWriter {
    pub fn create(path: &Path, link: &Link) -> Result<Self, pcap::Error> {
        let dead = pcap::Capture::dead(pcap::Linktype(link.dlt()))?;
        Ok(PcapWriter {
            file: dead.savefile(path)?,
        })
    }

    pub fn write(&mut self, frame: &Frame) {
        let micros = frame.ts.micros();
        let header = pcap::PacketHeader {
            ts: libc::timeval {
                tv_sec: (micros / Timestamp::MICROS_PER_SEC) as libc::time_t,
                tv_usec: (micros % Timestamp::MICROS_PER_SEC) as libc::suseconds_t,
            },
            caplen: frame.data.len() as u32,
            len: frame.wire_len.max(frame.data.len() as u32),
        };
        self.file.write(&pcap::Packet::new(&header, &frame.data));
    }

    pub fn finish(mut self) -> Result<(), pcap::Error> {
        self.file.flush()
    }
}
