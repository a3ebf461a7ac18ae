//! The named captures in `pcaps/`, one per behaviour the sensor core must get right, and the
//! mixed traffic of the benchmark.

use std::net::SocketAddr;

use super::{Fault, Frame, Link, PcapWriter, Session, arp_frame, ipv4_fragments, merge, udp_frame};
use crate::flow::Direction::{Ctos, Stoc};
use crate::timestamp::Timestamp;

use super::EPOCH;

/// A capture to generate: its file name (without `.pcap`), what it shows, and its frames.
pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    pub link: Link,
    pub frames: Vec<Frame>,
}

fn at(secs: u64) -> Timestamp {
    EPOCH.saturating_add_secs(secs)
}

/// # Panics
/// On an address that does not parse: callers pass literals.
fn addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|_| panic!("generator address {s:?} is not ip:port"))
}

/// Printable, line-structured filler of a given length, different per `seed`.
pub fn text(len: usize, seed: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut line = 0u32;
    while out.len() < len {
        let l = format!("line {line:05} of message {seed:08x}: the quick brown fox jumps\r\n");
        out.extend_from_slice(l.as_bytes());
        line += 1;
    }
    out.truncate(len);
    out
}

fn smtp_like(session: &mut Session, body_len: usize, seed: u32) {
    session
        .send(Stoc, b"220 mx.example.net ESMTP\r\n")
        .send(Ctos, b"EHLO client.example.org\r\n")
        .send(
            Stoc,
            b"250-mx.example.net\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
        )
        .send(Ctos, b"MAIL FROM:<a@example.org>\r\n")
        .send(Stoc, b"250 2.1.0 Ok\r\n")
        .send(Ctos, b"RCPT TO:<b@example.net>\r\n")
        .send(Stoc, b"250 2.1.5 Ok\r\n")
        .send(Ctos, b"DATA\r\n")
        .send(Stoc, b"354 End data with <CR><LF>.<CR><LF>\r\n");
    let mut body = text(body_len, seed);
    body.extend_from_slice(b"\r\n.\r\n");
    session
        .send(Ctos, &body)
        .send(Stoc, b"250 2.0.0 Ok: queued as 4XyZ1\r\n")
        .send(Ctos, b"QUIT\r\n")
        .send(Stoc, b"221 2.0.0 Bye\r\n");
}

/// Every scenario, in a fixed order.
pub fn scenarios() -> Vec<Scenario> {
    vec![
        basic(),
        reorder(),
        gap(),
        states(),
        wraparound(),
        link_vlan(),
        link_only(
            "link-sll",
            "Linux cooked capture v1 (the `any` interface)",
            Link::LinuxSll,
        ),
        link_only("link-sll2", "Linux cooked capture v2", Link::LinuxSll2),
        link_only("link-raw", "raw IP link type", Link::RawIp),
        link_only("link-null", "BSD loopback link type", Link::Null),
        noise(),
    ]
}

fn basic() -> Scenario {
    let mut v4 = Session::new("192.0.2.10:40001", "198.51.100.25:25");
    v4.handshake();
    smtp_like(&mut v4, 3000, 1);
    v4.close();
    let mut v6 = Session::new("[2001:db8::10]:40002", "[2001:db8:1::25]:587").starting_at(at(1));
    v6.handshake()
        .send(Ctos, &text(5000, 2))
        .send(Stoc, b"250 ok\r\n")
        .close();
    Scenario {
        name: "tcp-basic",
        about: "two clean sessions, IPv4 and IPv6: handshake, MSS segmentation, ACKs, FIN close",
        link: Link::ethernet(),
        frames: merge([v4.into_frames(), v6.into_frames()]),
    }
}

fn reorder() -> Scenario {
    let mut a = Session::new("192.0.2.11:40010", "198.51.100.25:25");
    a.handshake().send_with(
        Ctos,
        &text(8000, 3),
        &[
            Fault::Reorder(0),
            Fault::Duplicate(2),
            Fault::Overlap {
                segment: 3,
                conflicting: false,
            },
        ],
    );
    a.send(Stoc, b"250 ok\r\n").close();
    let mut b = Session::new("192.0.2.12:40011", "198.51.100.25:25").starting_at(at(2));
    b.handshake()
        .send_with(
            Ctos,
            &text(5000, 4),
            &[Fault::Overlap {
                segment: 1,
                conflicting: true,
            }],
        )
        .close();
    Scenario {
        name: "tcp-reorder",
        about: "reordered, duplicated and overlapping segments; one overlap with conflicting bytes",
        link: Link::ethernet(),
        frames: merge([a.into_frames(), b.into_frames()]),
    }
}

fn gap() -> Scenario {
    let mut s = Session::new("192.0.2.13:40020", "198.51.100.25:25");
    s.handshake()
        .send_with(
            Ctos,
            &text(7000, 5),
            &[
                Fault::Drop(1),
                Fault::Truncate {
                    segment: 3,
                    keep: 100,
                },
            ],
        )
        .send(Stoc, b"250 ok\r\n")
        .close();
    Scenario {
        name: "tcp-gap",
        about: "a segment lost by the capture (the receiver ACKs past it) and one cut by snap length",
        link: Link::ethernet(),
        frames: s.into_frames(),
    }
}

fn states() -> Scenario {
    // Unanswered SYN, retransmitted twice.
    let mut no_answer = Session::new("192.0.2.20:40030", "203.0.113.25:25");
    no_answer.syn().wait_secs(1).syn().wait_secs(2).syn();
    // SYN answered by RST.
    let mut refused = Session::new("192.0.2.21:40031", "203.0.113.26:25").starting_at(at(1));
    refused.refused();
    // Data, then the server resets.
    let mut reset = Session::new("192.0.2.22:40032", "198.51.100.25:25").starting_at(at(2));
    reset.handshake().send(Ctos, b"EHLO x\r\n").reset(Stoc);
    // Established, then silence past the inactivity timeout.
    let mut idle = Session::new("192.0.2.23:40033", "198.51.100.25:25").starting_at(at(3));
    idle.handshake().send(Stoc, b"220 hello\r\n");
    // Picked up mid-stream: no handshake, both directions.
    let mut midstream = Session::new("192.0.2.24:40034", "198.51.100.25:25").starting_at(at(4));
    midstream
        .send(Ctos, b"RCPT TO:<x@example.net>\r\n")
        .send(Stoc, b"250 ok\r\n")
        .close();
    // A tap that sees only the client's half.
    let mut one_sided = Session::new("192.0.2.25:40035", "198.51.100.25:25").starting_at(at(5));
    one_sided.handshake().send(Ctos, &text(4000, 6)).close();
    // The same ports used again two seconds after a close.
    let mut first = Session::new("192.0.2.26:40036", "198.51.100.25:25").starting_at(at(6));
    first.handshake().send(Ctos, b"first\r\n").close();
    let mut again = Session::new("192.0.2.26:40036", "198.51.100.25:25")
        .isn(7_000_000, 9_000_000)
        .starting_at(at(8));
    again.handshake().send(Ctos, b"second\r\n").close();
    // Much later traffic moves packet time past every timeout above.
    let mut later = Session::new("192.0.2.27:40037", "198.51.100.25:25").starting_at(at(400));
    later.handshake().close();
    Scenario {
        name: "tcp-states",
        about: "no answer, rejected, reset, idle timeout, mid-stream pickup, one-sided capture, port reuse",
        link: Link::ethernet(),
        frames: merge([
            no_answer.into_frames(),
            refused.into_frames(),
            reset.into_frames(),
            idle.into_frames(),
            midstream.into_frames(),
            one_sided.one_direction(Ctos),
            first.into_frames(),
            again.into_frames(),
            later.into_frames(),
        ]),
    }
}

fn wraparound() -> Scenario {
    let mut s = Session::new("192.0.2.30:40040", "198.51.100.25:25").isn(0xffff_f000, 0xffff_ff00);
    s.handshake()
        .send_with(Ctos, &text(10_000, 7), &[Fault::Reorder(2)])
        .send(Stoc, &text(600, 8))
        .close();
    Scenario {
        name: "tcp-wraparound",
        about: "both sequence spaces wrap past 2^32, with a reordered segment across the wrap",
        link: Link::ethernet(),
        frames: s.into_frames(),
    }
}

fn link_vlan() -> Scenario {
    let qinq = Link::Ethernet {
        vlan: vec![100, 200],
    };
    let dot1q = Link::Ethernet { vlan: vec![300] };
    let mut a = Session::new("192.0.2.40:40050", "198.51.100.25:25").link(qinq);
    a.handshake().send(Ctos, b"hello over QinQ\r\n").close();
    // Same addresses and ports on another VLAN: a different flow.
    let mut b = Session::new("192.0.2.40:40050", "198.51.100.25:25")
        .link(dot1q)
        .starting_at(at(1));
    b.handshake().send(Ctos, b"hello over 802.1Q\r\n").close();
    Scenario {
        name: "link-vlan",
        about: "802.1Q and QinQ; the same 5-tuple on two VLANs is two flows",
        link: Link::ethernet(),
        frames: merge([a.into_frames(), b.into_frames()]),
    }
}

fn link_only(name: &'static str, about: &'static str, link: Link) -> Scenario {
    let mut v4 = Session::new("192.0.2.50:40060", "198.51.100.25:25").link(link.clone());
    v4.handshake()
        .send(Stoc, b"220 ready\r\n")
        .send(Ctos, b"QUIT\r\n")
        .close();
    let mut v6 = Session::new("[2001:db8::50]:40061", "[2001:db8:1::25]:25")
        .link(link.clone())
        .starting_at(at(1));
    v6.handshake().send(Ctos, b"QUIT\r\n").close();
    Scenario {
        name,
        about,
        link,
        frames: merge([v4.into_frames(), v6.into_frames()]),
    }
}

fn noise() -> Scenario {
    let link = Link::ethernet();
    let mut frames = vec![
        udp_frame(
            &link,
            at(0),
            addr("192.0.2.60:5353"),
            addr("198.51.100.53:53"),
            b"\x12\x34query",
        ),
        arp_frame(at(1)),
    ];
    frames.extend(ipv4_fragments(
        &link,
        at(2),
        [192, 0, 2, 61],
        [198, 51, 100, 25],
        &text(200, 9),
    ));
    // A TCP segment whose header the capture cut in half.
    let mut cut = Session::new("192.0.2.62:40070", "198.51.100.25:25").starting_at(at(3));
    cut.syn();
    let mut broken = cut.into_frames();
    for frame in &mut broken {
        frame.data.truncate(14 + 20 + 10);
    }
    frames.extend(broken);
    // A frame too short to be Ethernet.
    frames.push(Frame {
        ts: at(4),
        data: vec![0x02, 0, 0],
        wire_len: 3,
    });
    Scenario {
        name: "noise",
        about: "UDP, ARP, IPv4 fragments, a cut TCP header and a runt frame: counted, never analysed",
        link,
        frames,
    }
}

/// What [`bench_mix`] wrote.
#[derive(Debug, Default)]
pub struct MixSummary {
    pub frames: u64,
    pub bytes: u64,
    pub sessions: u64,
}

/// Mixed traffic for the benchmark, streamed to `writer` until `target_bytes` of frames are
/// written: mail sessions with 2-60 KB messages, bulk transfers, some reordering and loss,
/// and UDP noise, 32 sessions interleaved at a time.
pub fn bench_mix(writer: &mut PcapWriter, target_bytes: u64) -> MixSummary {
    let link = Link::ethernet();
    let mut summary = MixSummary::default();
    let mut clock = EPOCH;
    let mut n: u32 = 0;
    while summary.bytes < target_bytes {
        let mut group = Vec::with_capacity(32);
        for _ in 0..32 {
            n = n.wrapping_add(1);
            let client = format!(
                "10.{}.{}.{}:{}",
                (n >> 16) & 0xff,
                (n >> 8) & 0xff,
                n & 0xff | 1,
                1024 + n % 60000
            );
            let server = format!(
                "198.51.100.{}:{}",
                n % 7 + 1,
                if n % 5 == 0 { 443 } else { 25 }
            );
            let mut s = Session::new(&client, &server)
                .starting_at(Timestamp(clock.0 + u64::from(n % 32) * 50));
            s.handshake();
            if n % 5 == 0 {
                let faults: &[Fault] = if n % 20 == 0 {
                    &[Fault::Reorder(3), Fault::Drop(9)]
                } else {
                    &[]
                };
                s.send(Ctos, b"GET /big HTTP/1.1\r\n\r\n").send_with(
                    Stoc,
                    &text(100_000, n),
                    faults,
                );
            } else {
                smtp_like(&mut s, 2_000 + (n as usize * 7919) % 58_000, n);
            }
            s.close();
            group.push(s.into_frames());
            summary.sessions += 1;
        }
        let mut frames = merge(group);
        if let Some(last) = frames.last() {
            clock = last.ts;
        }
        frames.push(udp_frame(
            &link,
            clock,
            addr("10.9.9.9:5353"),
            addr("198.51.100.53:53"),
            b"query",
        ));
        for frame in &frames {
            writer.write(frame);
            summary.frames += 1;
            summary.bytes += frame.data.len() as u64;
        }
    }
    summary
}
