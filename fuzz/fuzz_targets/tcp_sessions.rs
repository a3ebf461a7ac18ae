//! Well-formed TCP segments with fuzzer-chosen sequence numbers, flags, payloads, capture
//! truncation and timing, over a few connections: drives flow state and reassembly deep, where
//! random frames rarely reach.

#![no_main]

mod common;

use etherparse::PacketBuilder;
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use spamtap::capture::LinkType;
use spamtap::timestamp::Timestamp;

#[derive(Arbitrary, Debug)]
enum Seq {
    /// Relative to the next sequence number this direction would send.
    Near(i16),
    Absolute(u32),
}

#[derive(Arbitrary, Debug)]
struct Segment {
    connection: u8,
    from_client: bool,
    seq: Seq,
    ack: Seq,
    flags: u8,
    payload: Vec<u8>,
    /// Bytes cut off the end of the frame, as a snap length would.
    cut: u8,
    /// Milliseconds since the previous segment.
    delay_ms: u16,
}

fuzz_target!(|segments: Vec<Segment>| {
    let mut harness = common::Harness::new();
    let mut next = [[0u32; 2]; 4];
    let mut ts = Timestamp::from_secs(1_000);
    for s in segments.iter().take(256) {
        let conn = usize::from(s.connection % 4);
        let dir = usize::from(!s.from_client);
        let resolve = |seq: &Seq, base: u32| match *seq {
            Seq::Near(d) => base.wrapping_add(d as i32 as u32),
            Seq::Absolute(a) => a,
        };
        let seq = resolve(&s.seq, next[conn][dir]);
        let ack = resolve(&s.ack, next[conn][1 - dir]);
        let payload = &s.payload[..s.payload.len().min(1400)];
        next[conn][dir] = seq.wrapping_add(payload.len() as u32);

        let client = [10, 0, 0, 1 + conn as u8];
        let server = [10, 0, 1, 1];
        let (src, dst, sport, dport) = if s.from_client {
            (client, server, 40_000 + conn as u16, 25)
        } else {
            (server, client, 25, 40_000 + conn as u16)
        };
        let mut tcp = PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(src, dst, 64)
            .tcp(sport, dport, seq, 1024);
        if s.flags & 0x10 != 0 {
            tcp = tcp.ack(ack);
        }
        if s.flags & 0x02 != 0 {
            tcp = tcp.syn();
        }
        if s.flags & 0x01 != 0 {
            tcp = tcp.fin();
        }
        if s.flags & 0x04 != 0 {
            tcp = tcp.rst();
        }
        let mut frame = Vec::new();
        if tcp.write(&mut frame, payload).is_err() {
            continue;
        }
        frame.truncate(frame.len().saturating_sub(usize::from(s.cut)));
        ts = Timestamp(ts.micros() + u64::from(s.delay_ms) * 1_000);
        harness.frame(LinkType::Ethernet, ts, &frame);
        if s.delay_ms % 7 == 0 {
            harness.advance(ts);
        }
    }
    harness.finish();
});
