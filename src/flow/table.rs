//! The flow table: a capped map from [`FlowKey`] to per-flow state, with packet-time deadlines.
//!
//! Deadlines live in a lazy min-heap: a flow's heap entry is only checked when it comes due, and
//! pushed again if the flow was active since. Touching a flow is therefore O(1) and expiring is
//! O(expired). When the table is full, the flow whose entry is due first is evicted: close to
//! least-recently-active, without a linked list through every flow.
//!
//! The map holds only a pointer per bucket, each entry (key, deadline, flow) in a box of its
//! own: the half-empty buckets a hash table keeps after growing then cost 8 bytes each, not a
//! key and a flow, and growing moves pointers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::FlowKey;
use crate::memory::allocation;
use crate::timestamp::Timestamp;

/// The seeded hash of flow keys (keys are attacker-chosen). The capture thread and the
/// workers' tables share one, so a packet's key is hashed once on its way: the capture thread
/// shards by the hash, and the worker looks the flow up by it.
#[derive(Clone, Debug, Default)]
pub struct KeyHasher(foldhash::fast::RandomState);

impl KeyHasher {
    pub fn hash(&self, key: &FlowKey) -> KeyHash {
        KeyHash(self.0.hash_one(key))
    }
}

/// A key's hash by a [`KeyHasher`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyHash(u64);

impl KeyHash {
    /// Which of `workers` owns the flow. Bits 24 to 55 decide: the table takes the bucket from
    /// the low bits and a tag from the top seven, so within one worker both still vary as
    /// much as they would without sharding.
    pub fn shard(self, workers: usize) -> usize {
        let bits = u64::from((self.0 >> 24) as u32);
        ((bits * workers.max(1) as u64) >> 32) as usize
    }
}

struct Entry<V> {
    key: FlowKey,
    /// Distinguishes this flow from an earlier one with the same key.
    id: u64,
    deadline: Timestamp,
    /// The deadline of this flow's live heap entry; heap entries with another value are stale.
    scheduled: Timestamp,
    value: V,
}

/// What [`FlowTable::visit`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visit {
    /// No flow has the key.
    Missing,
    /// The callback returned no deadline: the flow keeps the one it had.
    Declined,
    /// The callback ran, and the flow has the deadline it returned.
    Done,
}

/// A flow table with at most `capacity` entries.
pub struct FlowTable<V> {
    map: HashTable<Box<Entry<V>>>,
    hasher: KeyHasher,
    timers: BinaryHeap<Reverse<(Timestamp, u64, FlowKey)>>,
    capacity: usize,
    next_id: u64,
}

impl<V> FlowTable<V> {
    /// What one flow costs the table beyond `V`'s own heap: its boxed entry, its bucket and
    /// its timer, the last two twice (the room a hash table keeps after growing, and the old
    /// and new arrays a heap holds while it grows).
    pub const BYTES_PER_FLOW: usize = allocation(size_of::<Entry<V>>())
        + 2 * (size_of::<Box<Entry<V>>>() + 1)
        + 2 * size_of::<Reverse<(Timestamp, u64, FlowKey)>>();

    /// `hasher`: the one the callers hash keys with, for the calls that take a hash.
    pub fn new(capacity: usize, hasher: KeyHasher) -> Self {
        FlowTable {
            map: HashTable::new(),
            hasher,
            timers: BinaryHeap::new(),
            capacity: capacity.max(1),
            next_id: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The hash of `key` in this table, for the calls that take one: a packet's key is
    /// hashed once, whatever it takes to handle the packet.
    pub fn hash(&self, key: &FlowKey) -> KeyHash {
        self.hasher.hash(key)
    }

    fn entry(&self, key: &FlowKey) -> Option<&Entry<V>> {
        self.entry_hashed(key, self.hash(key))
    }

    fn entry_hashed(&self, key: &FlowKey, hash: KeyHash) -> Option<&Entry<V>> {
        self.map.find(hash.0, |e| e.key == *key).map(|e| &**e)
    }

    fn entry_mut(&mut self, key: &FlowKey) -> Option<&mut Entry<V>> {
        self.entry_mut_hashed(key, self.hash(key))
    }

    fn entry_mut_hashed(&mut self, key: &FlowKey, hash: KeyHash) -> Option<&mut Entry<V>> {
        self.map
            .find_mut(hash.0, |e| e.key == *key)
            .map(|e| &mut **e)
    }

    /// Runs `f` on a flow and its deadline, in one lookup, and moves the deadline to what `f`
    /// returns; with `None` it stays (the caller ends such a flow). Later deadlines cost
    /// nothing now; earlier ones push a timer.
    pub fn visit(
        &mut self,
        key: &FlowKey,
        hash: KeyHash,
        f: impl FnOnce(&mut V, Timestamp) -> Option<Timestamp>,
    ) -> Visit {
        let Some(entry) = self.entry_mut_hashed(key, hash) else {
            return Visit::Missing;
        };
        let Some(deadline) = f(&mut entry.value, entry.deadline) else {
            return Visit::Declined;
        };
        entry.deadline = deadline;
        if deadline < entry.scheduled {
            entry.scheduled = deadline;
            let id = entry.id;
            self.timers.push(Reverse((deadline, id, *key)));
        }
        Visit::Done
    }

    pub fn remove(&mut self, key: &FlowKey) -> Option<V> {
        let hash = self.hasher.hash(key).0;
        let (entry, _) = self.map.find_entry(hash, |e| e.key == *key).ok()?.remove();
        Some(entry.value)
    }

    /// Inserts a new flow; the caller knows there is none with `key`. If the table is full,
    /// first evicts the flow due soonest and returns it so the caller can report it.
    pub fn insert(
        &mut self,
        key: FlowKey,
        hash: KeyHash,
        value: V,
        deadline: Timestamp,
    ) -> Option<(FlowKey, V)> {
        debug_assert!(self.entry_hashed(&key, hash).is_none(), "{key:?} is there");
        let evicted = if self.map.len() >= self.capacity {
            self.evict_one()
        } else {
            None
        };
        let id = self.next_id;
        self.next_id += 1;
        self.timers.push(Reverse((deadline, id, key)));
        let entry = Box::new(Entry {
            key,
            id,
            deadline,
            scheduled: deadline,
            value,
        });
        let hasher = &self.hasher;
        self.map
            .insert_unique(hash.0, entry, |e| hasher.hash(&e.key).0);
        self.compact_timers();
        evicted
    }

    /// Removes and returns every flow whose deadline is at or before `now`.
    pub fn expire(&mut self, now: Timestamp, mut on_expired: impl FnMut(FlowKey, V)) {
        while let Some(Reverse((due, id, key))) = self.timers.peek().copied() {
            if due > now {
                break;
            }
            self.timers.pop();
            let Some(entry) = self.entry_mut(&key) else {
                continue;
            };
            if entry.id != id || entry.scheduled != due {
                continue;
            }
            if entry.deadline <= now {
                if let Some(value) = self.remove(&key) {
                    on_expired(key, value);
                }
            } else {
                entry.scheduled = entry.deadline;
                let deadline = entry.deadline;
                self.timers.push(Reverse((deadline, id, key)));
            }
        }
    }

    /// Removes every flow, one at a time in the order their timers are due (reproducible,
    /// and without a list of a million keys beside a million flows).
    pub fn drain(&mut self, mut on_removed: impl FnMut(FlowKey, V)) {
        while let Some(Reverse((due, id, key))) = self.timers.pop() {
            if self
                .entry(&key)
                .is_some_and(|e| e.id == id && e.scheduled == due)
                && let Some(value) = self.remove(&key)
            {
                on_removed(key, value);
            }
        }
        // Every flow has a live timer; this only guards the invariant.
        for entry in std::mem::take(&mut self.map) {
            on_removed(entry.key, entry.value);
        }
        self.timers = BinaryHeap::new();
    }

    /// Brings every deadline forward to what `f` says, where that is earlier (the tracker's
    /// emergency mode): O(flows), once per emergency. The timers are rebuilt in the heap's own
    /// memory, as memory is what an emergency is short of.
    pub fn tighten(&mut self, mut f: impl FnMut(&V) -> Timestamp) {
        let mut timers = std::mem::take(&mut self.timers).into_vec();
        timers.clear();
        for entry in self.map.iter_mut() {
            entry.deadline = entry.deadline.min(f(&entry.value));
            entry.scheduled = entry.deadline;
            timers.push(Reverse((entry.deadline, entry.id, entry.key)));
        }
        self.timers = BinaryHeap::from(timers);
    }

    /// Removes the flow due soonest, to make room.
    pub fn evict_one(&mut self) -> Option<(FlowKey, V)> {
        // Skip stale timers; re-arm at most a few flows that were active since they were
        // scheduled, then take whatever is due first.
        let mut rearmed = 0;
        while let Some(Reverse((due, id, key))) = self.timers.pop() {
            let Some(entry) = self.entry_mut(&key) else {
                continue;
            };
            if entry.id != id || entry.scheduled != due {
                continue;
            }
            if entry.deadline > due && rearmed < 8 {
                rearmed += 1;
                entry.scheduled = entry.deadline;
                let deadline = entry.deadline;
                self.timers.push(Reverse((deadline, id, key)));
                continue;
            }
            return self.remove(&key).map(|value| (key, value));
        }
        None
    }

    /// Stale timers pile up when flows are removed early; rebuild once they dominate.
    fn compact_timers(&mut self) {
        if self.timers.len() > 2 * self.map.len() + 1024 {
            self.timers = self
                .map
                .iter_mut()
                .map(|entry| {
                    entry.scheduled = entry.deadline;
                    Reverse((entry.deadline, entry.id, entry.key))
                })
                .collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{TcpFlags, TcpSegment, VlanTags};

    fn key(port: u16) -> FlowKey {
        let seg = TcpSegment {
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            src_port: port,
            dst_port: 25,
            vlan: VlanTags::default(),
            seq: 0,
            ack: 0,
            flags: TcpFlags::default(),
            payload: b"",
            missing: 0,
            frag_anomalies: Default::default(),
        };
        FlowKey::of(&seg).0
    }

    fn ins<V>(table: &mut FlowTable<V>, k: FlowKey, v: V, due: Timestamp) -> Option<(FlowKey, V)> {
        let h = table.hash(&k);
        table.insert(k, h, v, due)
    }

    fn upd<V>(table: &mut FlowTable<V>, k: &FlowKey, f: impl FnOnce(&mut V) -> Timestamp) -> bool {
        let h = table.hash(k);
        table.visit(k, h, |v, _| Some(f(v))) == Visit::Done
    }

    fn t(s: u64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    fn expired(table: &mut FlowTable<u32>, now: u64) -> Vec<u32> {
        let mut out = Vec::new();
        table.expire(t(now), |_, v| out.push(v));
        out.sort();
        out
    }

    #[test]
    fn shards_spread_keys_over_every_worker() {
        let hasher = KeyHasher::default();
        for workers in [1, 2, 3, 8] {
            let mut per_worker = vec![0; workers];
            for port in 1000..5000 {
                let shard = hasher.hash(&key(port)).shard(workers);
                assert!(shard < workers);
                per_worker[shard] += 1;
            }
            let fair = 4000 / workers;
            assert!(
                per_worker.iter().all(|&n| n > fair * 8 / 10),
                "{workers} workers: {per_worker:?}"
            );
        }
    }

    #[test]
    fn a_table_finds_keys_by_the_hash_its_callers_share() {
        let hasher = KeyHasher::default();
        let mut table = FlowTable::new(10, hasher.clone());
        let k = key(1);
        table.insert(k, hasher.hash(&k), 7u32, t(5));
        let mut seen = None;
        table.visit(&k, hasher.hash(&k), |v, due| {
            seen = Some((*v, due));
            None
        });
        assert_eq!(seen, Some((7, t(5))));
    }

    #[test]
    fn a_declined_visit_leaves_the_flow_and_its_deadline() {
        let mut table = FlowTable::new(10, KeyHasher::default());
        let (k, other) = (key(1), key(2));
        ins(&mut table, k, 1u32, t(30));
        let h = table.hash(&k);
        let declined = table.visit(&k, h, |v, _| {
            *v = 2;
            None
        });
        assert_eq!(declined, Visit::Declined);
        let h = table.hash(&other);
        assert_eq!(table.visit(&other, h, |_, _| Some(t(99))), Visit::Missing);
        assert!(expired(&mut table, 29).is_empty());
        assert_eq!(expired(&mut table, 30), vec![2]);
    }

    #[test]
    fn expires_at_deadline_not_before() {
        let mut table = FlowTable::new(10, KeyHasher::default());
        ins(&mut table, key(1), 1, t(30));
        assert!(expired(&mut table, 29).is_empty());
        assert_eq!(expired(&mut table, 30), vec![1]);
        assert!(table.is_empty());
    }

    #[test]
    fn later_deadline_postpones_expiry() {
        let mut table = FlowTable::new(10, KeyHasher::default());
        ins(&mut table, key(1), 1, t(30));
        assert!(upd(&mut table, &key(1), |_| t(100)));
        assert!(expired(&mut table, 50).is_empty());
        assert_eq!(expired(&mut table, 100), vec![1]);
    }

    #[test]
    fn earlier_deadline_expires_early() {
        let mut table = FlowTable::new(10, KeyHasher::default());
        ins(&mut table, key(1), 1, t(300));
        assert!(upd(&mut table, &key(1), |_| t(10)));
        assert_eq!(expired(&mut table, 10), vec![1]);
        // The stale timer at 300 finds nothing.
        assert!(expired(&mut table, 300).is_empty());
    }

    #[test]
    fn reinserted_key_ignores_old_timer() {
        let mut table = FlowTable::new(10, KeyHasher::default());
        ins(&mut table, key(1), 1, t(10));
        table.remove(&key(1));
        ins(&mut table, key(1), 2, t(50));
        assert!(expired(&mut table, 20).is_empty());
        assert_eq!(expired(&mut table, 50), vec![2]);
    }

    #[test]
    fn full_table_evicts_the_flow_due_first() {
        let mut table = FlowTable::new(2, KeyHasher::default());
        assert!(ins(&mut table, key(1), 1, t(50)).is_none());
        assert!(ins(&mut table, key(2), 2, t(20)).is_none());
        let (_, evicted) = ins(&mut table, key(3), 3, t(60)).unwrap();
        assert_eq!(evicted, 2);
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn timers_stay_bounded_under_churn() {
        let mut table = FlowTable::new(4, KeyHasher::default());
        for i in 0..100_000u32 {
            let k = key((i % 50_000) as u16);
            ins(&mut table, k, i, t(1_000 + u64::from(i)));
            table.remove(&k);
        }
        assert!(table.timers.len() <= 1024 + 8);
    }

    #[test]
    fn drain_is_in_timer_order() {
        let mut table = FlowTable::new(10, KeyHasher::default());
        for (p, due) in [(5, 7), (3, 9), (9, 7)] {
            ins(&mut table, key(p), u32::from(p), t(due));
        }
        // A postponed deadline keeps its earlier timer until that comes due.
        upd(&mut table, &key(5), |_| t(20));
        let mut order = Vec::new();
        table.drain(|_, v| order.push(v));
        assert_eq!(order, vec![5, 9, 3]);
        assert!(table.is_empty());
    }
}
