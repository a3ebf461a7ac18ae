//! Every reassembly case the sensor relies on, one test each.

use super::*;

/// Collects what a stream hands on: data concatenated, gaps as `[gap N]`.
#[derive(Default)]
struct Out {
    text: Vec<u8>,
}

impl Out {
    fn sink(&mut self) -> impl FnMut(Chunk<'_>) + '_ {
        |chunk| match chunk {
            Chunk::Data(d) => self.text.extend_from_slice(d),
            Chunk::Gap(n) => self.text.extend_from_slice(format!("[gap {n}]").as_bytes()),
        }
    }
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.text).unwrap()
    }
}

struct Harness {
    stream: Stream,
    memory: MemoryBudget,
    stats: ReassemblyStats,
    out: Out,
}

impl Harness {
    fn new(window: usize) -> Self {
        Harness {
            stream: Stream::new(window),
            memory: MemoryBudget::new(1 << 20),
            stats: ReassemblyStats::default(),
            out: Out::default(),
        }
    }

    fn syn(&mut self, isn: u32) -> &mut Self {
        self.seg(Segment {
            seq: isn,
            syn: true,
            fin: false,
            payload: b"",
            missing: 0,
            payload_hash: None,
        })
    }

    /// A segment hashed by the capture, as the tracker hands them on.
    fn data(&mut self, seq: u32, payload: &[u8]) -> &mut Self {
        self.payload(seq, payload, Some(piece_hash(payload)))
    }

    /// A segment that the stream hashes itself.
    fn unhashed(&mut self, seq: u32, payload: &[u8]) -> &mut Self {
        self.payload(seq, payload, None)
    }

    fn payload(&mut self, seq: u32, payload: &[u8], payload_hash: Option<u64>) -> &mut Self {
        self.seg(Segment {
            seq,
            syn: false,
            fin: false,
            payload,
            missing: 0,
            payload_hash,
        })
    }

    fn fin(&mut self, seq: u32) -> &mut Self {
        self.seg(Segment {
            seq,
            syn: false,
            fin: true,
            payload: b"",
            missing: 0,
            payload_hash: None,
        })
    }

    fn seg(&mut self, seg: Segment<'_>) -> &mut Self {
        self.stream
            .on_segment(seg, &self.memory, &mut self.stats, &mut self.out.sink());
        self
    }

    fn ack(&mut self, ack: u32) -> &mut Self {
        self.stream
            .on_peer_ack(ack, &mut self.stats, &mut self.out.sink());
        self
    }

    fn flush(&mut self) -> &mut Self {
        self.stream.flush(&mut self.stats, &mut self.out.sink());
        self
    }

    fn text(&self) -> &str {
        self.out.as_str()
    }
}

#[test]
fn in_order_after_syn() {
    let mut h = Harness::new(1024);
    h.syn(100).data(101, b"HELO a\r\n").data(109, b"MAIL\r\n");
    assert_eq!(h.text(), "HELO a\r\nMAIL\r\n");
    assert_eq!(h.stream.delivered(), 14);
    assert_eq!(h.stats, ReassemblyStats::default());
}

#[test]
fn out_of_order_is_held_then_delivered_in_order() {
    let mut h = Harness::new(1024);
    h.syn(0).data(4, b"BBB").data(7, b"CCC");
    assert_eq!(h.text(), "");
    assert!(h.memory.used() > 0);
    h.data(1, b"AAA");
    assert_eq!(h.text(), "AAABBBCCC");
    assert_eq!(h.stats.out_of_order, 2);
    assert_eq!(h.memory.used(), 0, "buffer freed once the hole closed");
}

#[test]
fn retransmission_is_dropped() {
    let mut h = Harness::new(1024);
    h.syn(0).data(1, b"hello").data(1, b"hello").data(3, b"ll");
    assert_eq!(h.text(), "hello");
    assert_eq!(h.stats.retransmissions, 2);
}

#[test]
fn overlap_with_delivered_bytes_is_trimmed() {
    let mut h = Harness::new(1024);
    h.syn(0).data(1, b"hello").data(4, b"lo world");
    assert_eq!(h.text(), "hello world");
    assert_eq!(h.stats.overlaps, 1);
}

#[test]
fn overlap_with_held_bytes_keeps_first_copy_and_counts_conflict() {
    let mut h = Harness::new(1024);
    h.syn(0).data(6, b"WORLD").data(4, b"xxWOXLD!");
    assert_eq!(h.stats.overlaps, 1);
    assert_eq!(h.stats.conflicts, 1);
    h.data(1, b"abc");
    assert_eq!(h.text(), "abcxxWORLD!");
}

#[test]
fn identical_overlap_with_held_bytes_is_not_a_conflict() {
    let mut h = Harness::new(1024);
    h.syn(0)
        .data(6, b"WORLD")
        .data(6, b"WORLD")
        .data(1, b"hello");
    assert_eq!(h.text(), "helloWORLD");
    assert_eq!((h.stats.overlaps, h.stats.conflicts), (1, 0));
}

#[test]
fn rewritten_retransmission_of_delivered_bytes_is_a_conflict() {
    let mut h = Harness::new(1024);
    h.syn(0)
        .data(1, b"RCPT TO:<a@b>\r\n")
        .data(1, b"RCPT TO:<x@y>\r\n");
    assert_eq!(
        h.text(),
        "RCPT TO:<a@b>\r\n",
        "the first copy is what was delivered"
    );
    assert_eq!((h.stats.retransmissions, h.stats.conflicts), (1, 1));
    assert!(h.stream.conflicted());
}

#[test]
fn faithful_retransmissions_are_not_conflicts() {
    let mut h = Harness::new(1024);
    h.syn(u32::MAX - 3)
        .data(u32::MAX - 2, b"hello ")
        .data(3, b"world")
        // Again, whole, repacketised as one segment across the sequence wrap, and in part.
        .data(u32::MAX - 2, b"hello ")
        .data(u32::MAX - 2, b"hello world")
        .data(5, b"rld");
    assert_eq!(h.text(), "hello world");
    assert_eq!((h.stats.retransmissions, h.stats.conflicts), (3, 0));
    assert!(!h.stream.conflicted());
}

#[test]
fn repacketised_or_overlapping_rewrite_is_a_conflict() {
    let mut h = Harness::new(1024);
    h.syn(0).data(1, b"MAIL ").data(6, b"FROM:<a@b>");
    // One segment resending both pieces, the second one changed.
    h.data(1, b"MAIL FROM:<x@b>");
    assert_eq!(h.stats.conflicts, 1);
    // A segment that resends the first piece changed and carries new bytes after.
    let mut h = Harness::new(1024);
    h.syn(0).data(1, b"MAIL ").data(1, b"SEND FROM");
    assert_eq!(h.text(), "MAIL FROM");
    assert_eq!((h.stats.overlaps, h.stats.conflicts), (1, 1));
}

#[test]
fn a_payload_hashed_by_the_capture_or_by_the_stream_is_checked_alike() {
    for capture_hashed in [false, true] {
        let mut h = Harness::new(1024);
        h.syn(0);
        let send = |h: &mut Harness, seq, payload: &[u8]| {
            if capture_hashed {
                h.data(seq, payload);
            } else {
                h.unhashed(seq, payload);
            }
        };
        send(&mut h, 1, b"MAIL FROM:<a@b>\r\n");
        send(&mut h, 1, b"MAIL FROM:<a@b>\r\n");
        assert_eq!(h.stats.conflicts, 0, "capture hashed: {capture_hashed}");
        send(&mut h, 1, b"MAIL FROM:<x@y>\r\n");
        assert_eq!(h.stats.conflicts, 1, "capture hashed: {capture_hashed}");
    }
}

#[test]
fn a_trimmed_segment_is_remembered_by_the_bytes_it_delivered() {
    let mut h = Harness::new(1024);
    h.syn(0).data(1, b"MAIL ").data(1, b"MAIL FROM");
    assert_eq!(h.text(), "MAIL FROM");
    // What was delivered of the second segment is "FROM", at 6: its capture hash, of all nine
    // bytes, is not that piece's.
    h.data(6, b"FROM");
    assert_eq!(h.stats.conflicts, 0);
    h.data(6, b"FROG");
    assert_eq!(h.stats.conflicts, 1);
}

#[test]
fn bytes_delivered_from_the_held_buffer_are_remembered_too() {
    let mut h = Harness::new(1024);
    h.syn(0).data(4, b"DEF").data(1, b"ABC");
    assert_eq!(h.text(), "ABCDEF");
    h.data(4, b"DEF");
    assert_eq!(h.stats.conflicts, 0);
    h.data(4, b"XYZ");
    assert_eq!(h.stats.conflicts, 1);
}

#[test]
fn only_the_recent_pieces_are_checked() {
    let mut h = Harness::new(1024);
    h.syn(0);
    for i in 0..=RECENT_PIECES as u32 {
        h.data(1 + 2 * i, b"ok");
    }
    // The first piece is forgotten, the second is not.
    h.data(1, b"no");
    assert_eq!(h.stats.conflicts, 0);
    h.data(3, b"no");
    assert_eq!(h.stats.conflicts, 1);
}

#[test]
fn peer_ack_past_a_hole_makes_it_a_gap() {
    let mut h = Harness::new(1024);
    h.syn(0).data(1, b"abc").data(10, b"XYZ");
    h.ack(5);
    assert_eq!(h.text(), "abc", "ack below the held data proves nothing");
    h.ack(13);
    assert_eq!(h.text(), "abc[gap 6]XYZ");
    assert_eq!((h.stats.gaps, h.stats.gap_bytes), (1, 6));
    h.data(13, b"!");
    assert_eq!(h.text(), "abc[gap 6]XYZ!");
}

#[test]
fn late_hole_filler_after_gap_is_a_retransmission() {
    let mut h = Harness::new(1024);
    h.syn(0)
        .data(1, b"abc")
        .data(10, b"XYZ")
        .ack(13)
        .data(4, b"defghi");
    assert_eq!(h.text(), "abc[gap 6]XYZ");
    assert_eq!(h.stats.retransmissions, 1);
}

#[test]
fn flush_turns_every_hole_into_a_gap() {
    let mut h = Harness::new(1024);
    h.syn(0).data(5, b"B").data(10, b"C").flush();
    assert_eq!(h.text(), "[gap 4]B[gap 4]C");
    assert_eq!(h.stats.gaps, 2);
    assert_eq!(h.memory.used(), 0);
}

#[test]
fn fin_after_all_data_finishes_the_stream() {
    let mut h = Harness::new(1024);
    h.syn(0).data(1, b"bye").fin(4);
    assert!(h.stream.is_finished());
    h.data(4, b"late");
    assert_eq!(h.text(), "bye");
}

#[test]
fn fin_with_data_before_it_missing_becomes_gap_on_flush() {
    let mut h = Harness::new(1024);
    h.syn(0).data(1, b"ab").fin(10);
    assert!(!h.stream.is_finished());
    h.flush();
    assert_eq!(h.text(), "ab[gap 7]");
    assert!(h.stream.is_finished());
}

#[test]
fn fin_carried_on_data_segment() {
    let mut h = Harness::new(1024);
    h.syn(0).seg(Segment {
        seq: 1,
        syn: false,
        fin: true,
        payload: b"QUIT\r\n",
        missing: 0,
        payload_hash: None,
    });
    assert_eq!(h.text(), "QUIT\r\n");
    assert!(h.stream.is_finished());
}

#[test]
fn midstream_pickup_starts_at_first_segment() {
    let mut h = Harness::new(1024);
    h.data(5_000, b"RCPT TO:<a@b>\r\n").data(5_015, b"DATA\r\n");
    assert_eq!(h.text(), "RCPT TO:<a@b>\r\nDATA\r\n");
}

#[test]
fn sequence_wraparound() {
    let mut h = Harness::new(1024);
    let isn = u32::MAX - 3;
    h.syn(isn).data(isn.wrapping_add(1), b"abc");
    // The next segment straddles 2^32, and one beyond it arrives first.
    h.data(2, b"ef").data(isn.wrapping_add(4), b"d\x00");
    assert_eq!(h.text(), "abcd\x00ef");
    assert_eq!(h.stats.out_of_order, 1);
}

#[test]
fn snaplen_truncated_segment_yields_data_then_gap() {
    let mut h = Harness::new(1024);
    h.syn(0).seg(Segment {
        seq: 1,
        syn: false,
        fin: false,
        payload: b"MAIL",
        missing: 96,
        payload_hash: None,
    });
    h.data(101, b"next");
    assert_eq!(h.text(), "MAIL[gap 96]next");
}

#[test]
fn data_beyond_window_is_counted_then_resynced() {
    let mut h = Harness::new(16);
    h.syn(0).data(1, b"a").data(1_000, b"far away");
    assert_eq!(h.text(), "a");
    assert_eq!(h.stats.segments_over_cap, 1);
    assert_eq!(h.stats.bytes_over_cap, 8);
    // More data keeps arriving far ahead: the capture lost more than the window holds.
    h.data(1_008, b"0123456789");
    assert_eq!(h.text(), "a[gap 1006]0123456789");
    h.data(1_018, b"!");
    assert_eq!(h.text(), "a[gap 1006]0123456789!");
}

#[test]
fn held_data_is_flushed_when_the_window_overflows() {
    let mut h = Harness::new(16);
    h.syn(0).data(5, b"held").data(15, b"overflowing");
    assert_eq!(h.text(), "[gap 4]held[gap 6]overflowing");
}

#[test]
fn a_trimmed_segment_wider_than_the_window_goes_on_from_its_own_bytes() {
    // Byte n of the stream is the n-th letter. A hole at 5..=8, "ij" held after it, then a
    // segment from 3 that resends "cd" and is wider than the window: the hole becomes a gap,
    // and the segment goes on from 11 ("k"), without a conflict with the "ij" it repeats.
    let mut h = Harness::new(16);
    h.syn(0)
        .data(1, b"abcd")
        .data(9, b"ij")
        .data(3, b"cdefghijklmnopqrstuv");
    assert_eq!(h.text(), "abcd[gap 4]ijklmnopqrstuv");
    assert_eq!(h.stats.conflicts, 0);
}

#[test]
fn memory_budget_caps_buffering() {
    let mut h = Harness::new(1024);
    h.memory = MemoryBudget::new(100);
    h.syn(0).data(50, b"x");
    assert_eq!(h.stats.segments_over_cap, 1);
    assert_eq!(h.memory.used(), 0);
}

#[test]
fn too_many_holes_is_counted_not_fatal() {
    let mut h = Harness::new(4096);
    h.syn(0);
    for i in 0..40u32 {
        h.data(10 + i * 10, b"x");
    }
    assert!(h.stats.segments_over_cap > 0);
    h.flush();
    assert_eq!(h.memory.used(), 0);
}

#[test]
fn duplicate_syn_does_not_rewind_a_running_stream() {
    let mut h = Harness::new(1024);
    h.syn(0).data(1, b"abc").syn(0).data(4, b"d");
    assert_eq!(h.text(), "abcd");
}

#[test]
fn random_segment_orders_reassemble_exactly() {
    // Deterministic pseudo-random shuffles of one message: the output must always equal it.
    let message: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut next = crate::testing::xorshift(0x1234_5678u32);
    for _ in 0..200 {
        let mut segs = Vec::new();
        let mut pos = 0usize;
        while pos < message.len() {
            let len = 1 + (next() as usize % 200);
            let end = (pos + len).min(message.len());
            segs.push((pos, end));
            // Sometimes a duplicate or an overlapping resend.
            if next().is_multiple_of(5) {
                segs.push((pos.saturating_sub(5), end));
            }
            pos = end;
        }
        for i in (1..segs.len()).rev() {
            if next().is_multiple_of(3) {
                let j = next() as usize % (i + 1);
                segs.swap(i, j);
            }
        }
        let isn = next();
        let mut h = Harness::new(8192);
        h.syn(isn);
        for (s, e) in segs {
            h.data(isn.wrapping_add(1 + s as u32), &message[s..e]);
        }
        h.flush();
        assert_eq!(h.out.text, message);
        assert_eq!(h.stats.conflicts, 0);
        assert_eq!(h.memory.used(), 0);
    }
}

#[test]
fn the_window_of_a_stream_judges_rst_and_fin() {
    let mut h = Harness::new(1024);
    assert!(
        h.stream.in_window(0xdead_beef),
        "before its first byte, anything is"
    );
    h.syn(1000).data(1001, b"MAIL FROM:<a@b>\r\n");
    let next = 1001 + 17;
    assert!(h.stream.in_window(next));
    assert!(
        h.stream.in_window(next + 1024),
        "bytes the capture lost ahead"
    );
    assert!(h.stream.in_window(next - 17), "a retransmission");
    assert!(!h.stream.in_window(next + 1025));
    assert!(!h.stream.in_window(next.wrapping_sub(2000)));
    assert!(!h.stream.in_window(next.wrapping_add(3_000_000)));
}

#[test]
fn a_closed_stream_no_longer_checks_retransmissions() {
    let mut h = Harness::new(1024);
    h.syn(0).data(1, b"hello");
    h.stream.on_close();
    h.data(1, b"HELLO");
    assert_eq!((h.stats.retransmissions, h.stats.conflicts), (1, 0));
    assert_eq!(h.stream.heap_bytes(), 0);
}

#[test]
fn a_ring_given_back_serves_the_next_hole_without_its_old_bytes() {
    let mut first = Harness::new(1024);
    first.syn(0).data(6, b"AAAAA").data(1, b"12345");
    assert_eq!(first.text(), "12345AAAAA");
    assert_eq!(first.memory.spare_rings(), 1);
    assert_eq!(first.memory.used(), 0, "a spare ring is not charged");

    let mut second = Harness::new(1024);
    second.memory = first.memory.clone();
    second
        .syn(100)
        .data(104, b"bb")
        .data(104, b"bb")
        .data(101, b"xyz");
    assert_eq!(second.text(), "xyzbb");
    assert_eq!(second.stats.conflicts, 0, "old bytes are not compared");
    second.data(106, b"!").data(110, b"late").flush();
    assert_eq!(second.text(), "xyzbb![gap 3]late");
    assert_eq!(second.memory.spare_rings(), 1, "the same ring went back");
    assert_eq!(second.memory.used(), 0);
}

#[test]
fn spare_rings_are_capped() {
    let memory = MemoryBudget::new(1 << 20);
    let mut streams: Vec<Harness> = (0..SPARE_RINGS + 2)
        .map(|_| {
            let mut h = Harness::new(1024);
            h.memory = memory.clone();
            h.syn(0).data(10, b"held");
            h
        })
        .collect();
    assert_eq!(memory.held(), (SPARE_RINGS + 2) * 1024);
    for h in &mut streams {
        h.flush();
        assert_eq!(h.text(), "[gap 9]held");
    }
    assert_eq!(memory.spare_rings(), SPARE_RINGS);
    assert_eq!(memory.used(), 0);
}

#[test]
fn a_spare_ring_of_another_window_is_not_taken() {
    let mut small = Harness::new(64);
    small.syn(0).data(10, b"x").flush();
    assert_eq!(small.memory.spare_rings(), 1);
    let mut large = Harness::new(1024);
    large.memory = small.memory.clone();
    large.syn(0).data(500, b"far").flush();
    assert_eq!(large.text(), "[gap 499]far");
    assert_eq!(large.memory.spare_rings(), 2);
}
