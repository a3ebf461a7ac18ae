//! Per-direction TCP stream reassembly: turns segments into in-order bytes and explicit gaps.
//!
//! In-order data is handed on straight from the packet, without a copy. Only segments that arrive
//! ahead of a hole are copied, into a per-stream ring buffer whose filled ranges are tracked by
//! smoltcp's [`Assembler`]; the ring is taken when the first hole appears, charged to the
//! worker's [`MemoryBudget`] (refused when the budget is spent), and given back when the hole
//! closes. The budget keeps a few given-back rings for the next hole: a ring is a window's worth
//! of memory, and allocating and zeroing one for every lost segment cost a tenth of the work on
//! lossy captures.
//!
//! A hole becomes a [`Chunk::Gap`] of its exact size when it can no longer be filled: the peer
//! acknowledged past it, the held data would overflow the window, or the stream ends. Bytes
//! already delivered are never delivered again: retransmissions are dropped, overlaps trimmed,
//! and the first copy always wins. A copy that disagrees with the first is a conflict, whether
//! the first is still held or already delivered: for the latter each stream keeps a keyed
//! hash of the last [`RECENT_PIECES`] segments whose bytes it took, until the connection
//! closes, and a retransmission that covers one of them whole is checked against it.
//!
//! Sequence numbers are compared by wrapping difference; smoltcp's `TcpSeqNumber` arithmetic
//! panics on values a hostile peer can send, so it is not used for that.

use std::cell::Cell;
use std::hash::BuildHasher;
use std::mem;
use std::rc::Rc;
use std::sync::LazyLock;

use serde::Serialize;
use smoltcp::storage::{Assembler, RingBuffer};

use crate::memory::allocation;

/// What a stream hands to the application layer.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    Data(&'a [u8]),
    /// This many bytes of the stream were never seen.
    Gap(u64),
}

/// Reassembly counters, summed over all streams of a worker.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReassemblyStats {
    /// Segments that arrived ahead of a hole.
    pub out_of_order: u64,
    /// Segments whose every byte had already been delivered.
    pub retransmissions: u64,
    /// Segments partly overlapping delivered or held bytes (the overlap is trimmed).
    pub overlaps: u64,
    /// Retransmissions and overlaps whose bytes differ from the first copy, held or already
    /// delivered (the first copy is what the application layer saw).
    pub conflicts: u64,
    /// Gaps handed to the application layer, and their total size.
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Segments and bytes dropped because a window, hole count or memory cap was reached.
    pub segments_over_cap: u64,
    pub bytes_over_cap: u64,
    /// RSTs and FINs whose sequence number lies outside the stream's window: injected or
    /// stale, they do not end the connection.
    pub rst_out_of_window: u64,
    pub fin_out_of_window: u64,
}

impl ReassemblyStats {
    pub fn add(&mut self, o: &ReassemblyStats) {
        self.out_of_order += o.out_of_order;
        self.retransmissions += o.retransmissions;
        self.overlaps += o.overlaps;
        self.conflicts += o.conflicts;
        self.gaps += o.gaps;
        self.gap_bytes += o.gap_bytes;
        self.segments_over_cap += o.segments_over_cap;
        self.bytes_over_cap += o.bytes_over_cap;
        self.rst_out_of_window += o.rst_out_of_window;
        self.fin_out_of_window += o.fin_out_of_window;
    }
}

/// The bytes one worker's state may take: its flows, their streams and parsers (accounted by
/// the tracker, which evicts when they pass the cap), and out-of-order buffers (charged here,
/// and refused past the cap).
#[derive(Clone)]
pub struct MemoryBudget {
    used: Rc<Cell<usize>>,
    held: Rc<Cell<usize>>,
    cap: usize,
    /// Out-of-order rings no stream holds, kept for the next hole (at most [`SPARE_RINGS`]).
    spare: Rc<Cell<Vec<RingBuffer<'static, u8>>>>,
}

/// Rings a worker keeps for reuse. They are not charged to the budget: with the default
/// window they are 1 MiB a worker at most, part of the memory no stage accounts.
pub const SPARE_RINGS: usize = 4;

impl MemoryBudget {
    pub fn new(cap: usize) -> Self {
        MemoryBudget {
            used: Rc::new(Cell::new(0)),
            held: Rc::new(Cell::new(0)),
            cap,
            spare: Rc::default(),
        }
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Everything accounted, out-of-order buffers included.
    pub fn used(&self) -> usize {
        self.used.get()
    }

    /// Out-of-order buffers alone.
    pub fn held(&self) -> usize {
        self.held.get()
    }

    /// Accounts `bytes` more, cap or not: the caller makes room.
    pub fn add(&self, bytes: usize) {
        self.used.set(self.used.get().saturating_add(bytes));
    }

    pub fn sub(&self, bytes: usize) {
        self.used.set(self.used.get().saturating_sub(bytes));
    }

    fn charge(&self, bytes: usize) -> Option<Charge> {
        if self.used().saturating_add(bytes) > self.cap {
            return None;
        }
        self.add(bytes);
        self.held.set(self.held.get() + bytes);
        Some(Charge {
            budget: self.clone(),
            bytes,
        })
    }

    /// A ring of `window` bytes for a new hole, charged: a spare one if there is one (its old
    /// bytes are never read: the assembler says which bytes are held), else a new one.
    fn take_ring(&self, window: usize) -> Option<Held> {
        let charge = self.charge(window)?;
        let mut spare = self.spare.take();
        let ring = match spare.iter().position(|ring| ring.capacity() == window) {
            Some(i) => {
                let mut ring = spare.swap_remove(i);
                ring.clear();
                ring
            }
            None => RingBuffer::new(vec![0u8; window]),
        };
        self.spare.set(spare);
        Some(Held {
            ring,
            ranges: Assembler::new(),
            charge,
        })
    }

    /// A ring a stream no longer holds: kept while there is room among the spares.
    fn give_back(&self, ring: RingBuffer<'static, u8>) {
        let mut spare = self.spare.take();
        if spare.len() < SPARE_RINGS {
            spare.push(ring);
        }
        self.spare.set(spare);
    }

    #[cfg(test)]
    fn spare_rings(&self) -> usize {
        let spare = self.spare.take();
        let n = spare.len();
        self.spare.set(spare);
        n
    }
}

/// Returns its bytes to the budget when dropped, whichever way the stream ends.
struct Charge {
    budget: MemoryBudget,
    bytes: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.sub(self.bytes);
        let held = &self.budget.held;
        held.set(held.get().saturating_sub(self.bytes));
    }
}

/// Out-of-order bytes waiting for a hole to fill.
struct Held {
    ring: RingBuffer<'static, u8>,
    ranges: Assembler,
    charge: Charge,
}

impl Drop for Held {
    fn drop(&mut self) {
        let ring = mem::replace(&mut self.ring, RingBuffer::new(Vec::new()));
        self.charge.budget.give_back(ring);
    }
}

/// One TCP segment as reassembly sees it.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    pub seq: u32,
    pub syn: bool,
    pub fin: bool,
    pub payload: &'a [u8],
    /// Bytes after `payload` that the segment carried but the capture did not keep.
    pub missing: u32,
    /// [`piece_hash`] of `payload`, when the caller has it: the capture thread hashes the
    /// bytes while they are in its cache, where the worker fetched them from memory to hash
    /// them (3% of the mail workload's replay cpu). `None` has the stream hash them.
    pub payload_hash: Option<u64>,
}

/// Segments a stream remembers the bytes of, to check retransmissions of them.
pub const RECENT_PIECES: usize = 8;

/// The hash of delivered pieces: keyed per process, so a peer cannot craft a rewritten
/// retransmission with the hash of the first copy.
static PIECE_HASH: LazyLock<foldhash::quality::RandomState> = LazyLock::new(Default::default);

/// The hash a stream remembers delivered bytes by ([`Segment::payload_hash`]).
pub fn piece_hash(bytes: &[u8]) -> u64 {
    PIECE_HASH.hash_one(bytes)
}

/// The bytes of one segment a stream took: where they started, how many, their hash.
#[derive(Clone, Copy, Default)]
struct Piece {
    seq: u32,
    len: u32,
    hash: u64,
}

/// The last [`RECENT_PIECES`] pieces taken, oldest overwritten first.
#[derive(Default)]
struct Recent {
    pieces: [Piece; RECENT_PIECES],
    next: usize,
}

impl Recent {
    /// `hash` is the [`piece_hash`] of `data`, if known.
    fn push(&mut self, seq: u32, data: &[u8], hash: Option<u64>) {
        if let Some(slot) = self.pieces.get_mut(self.next) {
            *slot = Piece {
                seq,
                len: data.len() as u32,
                hash: hash.unwrap_or_else(|| piece_hash(data)),
            };
        }
        self.next = (self.next + 1) % RECENT_PIECES;
    }

    /// Whether `data`, sent again at `seq`, differs from a remembered piece it covers whole.
    fn conflicts(&self, seq: u32, data: &[u8]) -> bool {
        self.pieces.iter().any(|piece| {
            let Ok(start) = usize::try_from(seq_delta(piece.seq, seq)) else {
                return false;
            };
            piece.len > 0
                && data
                    .get(start..start + piece.len as usize)
                    .is_some_and(|copy| piece_hash(copy) != piece.hash)
        })
    }
}

/// One direction of a TCP connection.
pub struct Stream {
    /// Sequence number of the next byte to deliver (valid once `synced`).
    next_seq: u32,
    synced: bool,
    /// Sequence number of the FIN, once seen.
    fin_at: Option<u32>,
    finished: bool,
    held: Option<Box<Held>>,
    /// Bytes that arrived beyond the window since the stream last moved.
    stalled: u32,
    delivered: u64,
    gap_bytes: u64,
    window: u32,
    /// Allocated with the first segment taken.
    recent: Option<Box<Recent>>,
    /// Whether a copy of some bytes ever disagreed with the first.
    conflicted: bool,
}

/// Where a stream will start, learned from the SYNs and empty segments seen before its first
/// byte: all a [`Stream`] would hold by then, in 8 bytes, so a flow without data (a SYN
/// flood's) needs no stream yet. [`Stream::starting_at`] makes the stream when data comes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStart(Option<u32>);

impl StreamStart {
    /// A segment without data and without FIN, as [`Stream::on_segment`] would take it.
    pub fn on_empty_segment(&mut self, seq: u32, syn: bool) {
        if syn {
            self.0 = Some(seq.wrapping_add(1));
        } else if self.0.is_none() {
            self.0 = Some(seq);
        }
    }

    /// [`Stream::in_window`] for the stream that will start here.
    pub fn in_window(&self, seq: u32, window: usize) -> bool {
        self.0.is_none_or(|next| within(seq, next, window))
    }
}

/// Whether `seq` is at most `window` bytes either side of `next`.
fn within(seq: u32, next: u32, window: usize) -> bool {
    seq_delta(seq, next).unsigned_abs() <= window as u64
}

/// Wrapping distance from `from` to `to`, negative when `to` is behind.
fn seq_delta(to: u32, from: u32) -> i64 {
    i64::from(to.wrapping_sub(from) as i32)
}

impl Stream {
    /// `window`: the most out-of-order bytes this stream may hold ahead of a hole.
    pub fn new(window: usize) -> Self {
        Stream {
            next_seq: 0,
            synced: false,
            fin_at: None,
            finished: false,
            held: None,
            stalled: 0,
            delivered: 0,
            gap_bytes: 0,
            window: u32::try_from(window).unwrap_or(u32::MAX).max(1),
            recent: None,
            conflicted: false,
        }
    }

    /// The stream that `start` says where to begin: the same as a new one that saw the
    /// segments `start` saw.
    pub fn starting_at(window: usize, start: StreamStart) -> Self {
        let mut stream = Stream::new(window);
        if let StreamStart(Some(next)) = start {
            stream.next_seq = next;
            stream.synced = true;
        }
        stream
    }

    /// Whether a retransmission or overlap ever carried other bytes than the first copy.
    pub fn conflicted(&self) -> bool {
        self.conflicted
    }

    /// Heap bytes of this stream beyond itself, out-of-order buffers aside (they are charged
    /// to the budget on their own).
    pub fn heap_bytes(&self) -> usize {
        self.recent
            .as_ref()
            .map_or(0, |_| allocation(size_of::<Recent>()))
    }

    /// The connection closed: the remembered segments go (a closed session waiting out its
    /// close delay holds no more than it must); retransmissions are no longer checked.
    pub fn on_close(&mut self) {
        self.recent = None;
    }

    /// Bytes handed on as data so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Bytes handed on as gaps so far.
    pub fn gap_bytes(&self) -> u64 {
        self.gap_bytes
    }

    /// True once the FIN was reached with every byte before it accounted for.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether `seq` is within a window of where this stream is (before its first byte,
    /// anything is): a RST or FIN outside it cannot be the peer's, and must not end the
    /// connection. The window is the reassembly window either way, so retransmissions and
    /// bytes the capture lost still count as inside.
    pub fn in_window(&self, seq: u32) -> bool {
        !self.synced || within(seq, self.next_seq, self.window as usize)
    }

    pub fn on_segment(
        &mut self,
        seg: Segment<'_>,
        memory: &MemoryBudget,
        stats: &mut ReassemblyStats,
        sink: &mut impl FnMut(Chunk<'_>),
    ) {
        let mut seq = seg.seq;
        if seg.syn {
            // A SYN (re)sets the start unless data already flowed: a late duplicate SYN must
            // not rewind a running stream.
            if !self.synced || (self.delivered == 0 && self.gap_bytes == 0 && self.held.is_none()) {
                self.next_seq = seq.wrapping_add(1);
                self.synced = true;
            }
            seq = seq.wrapping_add(1);
        }
        if !self.synced {
            // Picked up mid-stream: the first segment seen starts the stream.
            self.next_seq = seq;
            self.synced = true;
        }
        let len = seg.payload.len() as u64 + u64::from(seg.missing);
        let seg = Segment { seq, ..seg };
        if self.finished {
            if len > 0 {
                stats.retransmissions += 1;
            }
            return;
        }
        if seg.fin && self.fin_at.is_none() {
            self.fin_at = Some(seq.wrapping_add(len as u32));
        }
        if len > 0 {
            self.accept(seg, memory, stats, sink);
        }
        self.check_fin();
    }

    /// The other direction acknowledged up to `ack`: a hole below it was received by the peer
    /// but not by us, so it can never be filled from the capture.
    pub fn on_peer_ack(
        &mut self,
        ack: u32,
        stats: &mut ReassemblyStats,
        sink: &mut impl FnMut(Chunk<'_>),
    ) {
        if !self.synced {
            return;
        }
        while let Some(first) = self.first_held_offset() {
            let acked = seq_delta(ack, self.next_seq);
            if acked <= 0 || (acked as u64) < first {
                break;
            }
            self.skip_first_hole(stats, sink);
        }
        self.check_fin();
    }

    /// The stream is over (FIN, RST, timeout or shutdown): everything held is handed on, with
    /// gaps for the holes, and a missing stretch before a seen FIN becomes a final gap.
    pub fn flush(&mut self, stats: &mut ReassemblyStats, sink: &mut impl FnMut(Chunk<'_>)) {
        while self.held.is_some() {
            self.skip_first_hole(stats, sink);
        }
        if let (Some(fin_at), false) = (self.fin_at, self.finished) {
            let missing = seq_delta(fin_at, self.next_seq);
            if missing > 0 {
                self.gap(missing as u64, stats, sink);
                self.next_seq = fin_at;
            }
        }
        self.check_fin();
    }

    /// Takes the bytes of `seg`, whose `seq` is that of its first byte (after any SYN).
    fn accept(
        &mut self,
        seg: Segment<'_>,
        memory: &MemoryBudget,
        stats: &mut ReassemblyStats,
        sink: &mut impl FnMut(Chunk<'_>),
    ) {
        let Segment {
            mut seq,
            mut payload,
            mut missing,
            mut payload_hash,
            ..
        } = seg;
        let total = payload.len() as u64 + u64::from(missing);
        let mut rel = seq_delta(seq, self.next_seq);
        if rel < 0 {
            let behind = rel.unsigned_abs();
            let resent = &payload[..payload.len().min(behind as usize)];
            if self
                .recent
                .as_ref()
                .is_some_and(|r| r.conflicts(seq, resent))
            {
                self.conflict(stats);
            }
            if behind >= total {
                stats.retransmissions += 1;
                return;
            }
            stats.overlaps += 1;
            let cut = behind as usize;
            if cut <= payload.len() {
                payload = &payload[cut..];
            } else {
                missing -= (cut - payload.len()) as u32;
                payload = &[];
            }
            payload_hash = None;
            seq = self.next_seq;
            rel = 0;
        }
        let rel = rel as u64;

        if rel == 0 && self.held.is_none() {
            self.deliver(payload, payload_hash, sink);
            if missing > 0 {
                self.gap(u64::from(missing), stats, sink);
            }
            return;
        }

        if rel > 0 {
            stats.out_of_order += 1;
        }
        let end = rel + payload.len() as u64;
        if end > u64::from(self.window) {
            if self.held.is_some() {
                // Make room: what is held can no longer wait for its hole.
                while self.held.is_some() {
                    self.skip_first_hole(stats, sink);
                }
                let rel = seq_delta(seq, self.next_seq);
                if rel > 0 && rel as u64 + payload.len() as u64 > u64::from(self.window) {
                    return self.resync(rel as u64, payload, payload_hash, missing, stats, sink);
                }
                let rest = Segment {
                    seq,
                    payload,
                    missing,
                    payload_hash,
                    ..seg
                };
                return self.accept(rest, memory, stats, sink);
            }
            self.stalled = self
                .stalled
                .saturating_add(u32::try_from(total).unwrap_or(u32::MAX));
            if self.stalled > self.window {
                // Far more data beyond the window than it could hold: the capture lost a
                // stretch larger than the window.
                self.resync(rel, payload, payload_hash, missing, stats, sink);
            } else {
                stats.segments_over_cap += 1;
                stats.bytes_over_cap += payload.len() as u64;
            }
            return;
        }
        if payload.is_empty() {
            // Only a truncated tail out of order: it stays a hole and becomes a gap later.
            return;
        }

        let window = self.window as usize;
        if self.held.is_none() {
            let Some(held) = memory.take_ring(window) else {
                stats.segments_over_cap += 1;
                stats.bytes_over_cap += payload.len() as u64;
                return;
            };
            self.held = Some(Box::new(held));
        }
        let Some(held) = self.held.as_deref_mut() else {
            return;
        };
        let rel = rel as usize;
        // Ranges already held that this segment overlaps, captured before `add` merges them.
        let mut overlapped: [(usize, usize); 32] = [(0, 0); 32];
        let mut n_overlapped = 0;
        for (start, end) in held.ranges.iter_data() {
            if start < rel + payload.len() && end > rel && n_overlapped < overlapped.len() {
                overlapped[n_overlapped] = (start, end);
                n_overlapped += 1;
            }
        }
        if held.ranges.add(rel, payload.len()).is_err() {
            stats.segments_over_cap += 1;
            stats.bytes_over_cap += payload.len() as u64;
            self.release_if_empty();
            return;
        }
        let mut conflict = false;
        let mut pos = rel;
        for &(start, end) in &overlapped[..n_overlapped] {
            let (start, end) = (start.max(rel), end.min(rel + payload.len()));
            if pos < start {
                let _ = held
                    .ring
                    .write_unallocated(pos, &payload[pos - rel..start - rel]);
            }
            conflict |= !ring_matches(&mut held.ring, start, &payload[start - rel..end - rel]);
            pos = pos.max(end);
        }
        if pos < rel + payload.len() {
            let _ = held.ring.write_unallocated(pos, &payload[pos - rel..]);
        }
        if n_overlapped > 0 {
            stats.overlaps += 1;
        } else {
            // Held whole, so these are the bytes that will be delivered: remembered as the
            // segment they came in, which is what a retransmission repeats.
            let seq = self.next_seq.wrapping_add(rel as u32);
            self.recent
                .get_or_insert_default()
                .push(seq, payload, payload_hash);
        }
        if conflict {
            self.conflict(stats);
        }
        self.deliver_front(0, sink);
    }

    /// Gives up on the `rel` bytes before this segment and continues from it.
    fn resync(
        &mut self,
        rel: u64,
        payload: &[u8],
        payload_hash: Option<u64>,
        missing: u32,
        stats: &mut ReassemblyStats,
        sink: &mut impl FnMut(Chunk<'_>),
    ) {
        self.gap(rel, stats, sink);
        self.deliver(payload, payload_hash, sink);
        if missing > 0 {
            self.gap(u64::from(missing), stats, sink);
        }
    }

    fn conflict(&mut self, stats: &mut ReassemblyStats) {
        stats.conflicts += 1;
        self.conflicted = true;
    }

    /// `hash` is the [`piece_hash`] of `data`, if known.
    fn deliver(&mut self, data: &[u8], hash: Option<u64>, sink: &mut impl FnMut(Chunk<'_>)) {
        if data.is_empty() {
            return;
        }
        self.recent
            .get_or_insert_default()
            .push(self.next_seq, data, hash);
        sink(Chunk::Data(data));
        self.next_seq = self.next_seq.wrapping_add(data.len() as u32);
        self.delivered += data.len() as u64;
        self.stalled = 0;
    }

    fn gap(&mut self, len: u64, stats: &mut ReassemblyStats, sink: &mut impl FnMut(Chunk<'_>)) {
        if len == 0 {
            return;
        }
        sink(Chunk::Gap(len));
        stats.gaps += 1;
        stats.gap_bytes += len;
        self.gap_bytes += len;
        self.next_seq = self.next_seq.wrapping_add(len as u32);
        self.stalled = 0;
    }

    fn first_held_offset(&self) -> Option<u64> {
        let held = self.held.as_deref()?;
        held.ranges
            .iter_data()
            .next()
            .map(|(start, _)| start as u64)
    }

    /// Gives up on the hole before the first held range: a gap, then the data after it.
    fn skip_first_hole(&mut self, stats: &mut ReassemblyStats, sink: &mut impl FnMut(Chunk<'_>)) {
        let Some(start) = self.first_held_offset() else {
            self.held = None;
            return;
        };
        if start > 0 {
            if let Some(held) = self.held.as_deref_mut() {
                // Filling the hole merges it with the first range; cannot add holes.
                let _ = held.ranges.add(0, start as usize);
            }
            sink(Chunk::Gap(start));
            stats.gaps += 1;
            stats.gap_bytes += start;
            self.gap_bytes += start;
        }
        self.deliver_front(start as usize, sink);
    }

    /// Hands on the contiguous bytes at the front of the held buffer, skipping `skip` of them
    /// (a hole just reported as a gap).
    fn deliver_front(&mut self, skip: usize, sink: &mut impl FnMut(Chunk<'_>)) {
        let Some(held) = self.held.as_deref_mut() else {
            return;
        };
        let n = held.ranges.remove_front();
        if n == 0 {
            return;
        }
        held.ring.enqueue_unallocated(n);
        held.ring.dequeue_allocated(skip);
        while !held.ring.is_empty() {
            let (taken, ()) = held.ring.dequeue_many_with(|buf| {
                sink(Chunk::Data(buf));
                (buf.len(), ())
            });
            if taken == 0 {
                break;
            }
        }
        self.next_seq = self.next_seq.wrapping_add(n as u32);
        self.delivered += (n - skip.min(n)) as u64;
        self.stalled = 0;
        self.release_if_empty();
    }

    fn release_if_empty(&mut self) {
        if self.held.as_ref().is_some_and(|h| h.ranges.is_empty()) {
            self.held = None;
        }
    }

    fn check_fin(&mut self) {
        if let Some(fin_at) = self.fin_at
            && !self.finished
            && self.held.is_none()
            && self.next_seq == fin_at
        {
            self.finished = true;
            self.next_seq = fin_at.wrapping_add(1);
        }
    }
}

/// Whether the held bytes at `offset` equal `data` (the ring may wrap, so compare piecewise).
fn ring_matches(ring: &mut RingBuffer<'static, u8>, offset: usize, data: &[u8]) -> bool {
    let mut done = 0;
    while done < data.len() {
        let held = ring.get_unallocated(offset + done, data.len() - done);
        if held.is_empty() {
            return false;
        }
        if *held != data[done..done + held.len()] {
            return false;
        }
        done += held.len();
    }
    true
}

#[cfg(test)]
mod tests;
