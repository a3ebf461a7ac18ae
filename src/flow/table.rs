//! The flow table: a capped map from [`FlowKey`] to per-flow state, with packet-time deadlines.
//!
//! Deadlines live in a lazy min-heap: a flow's heap entry is only checked when it comes due, and
//! pushed again if the flow was active since. Touching a flow is therefore O(1) and expiring is
//! O(expired). When the table is full, the flow whose entry is due first is evicted: close to
//! least-recently-active, without a linked list through every flow.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::FlowKey;
use crate::timestamp::Timestamp;

struct Entry<V> {
    /// Distinguishes this flow from an earlier one with the same key.
    id: u64,
    deadline: Timestamp,
    /// The deadline of this flow's live heap entry; heap entries with another value are stale.
    scheduled: Timestamp,
    value: V,
}

/// A flow table with at most `capacity` entries.
pub struct FlowTable<V> {
    map: HashMap<FlowKey, Entry<V>, foldhash::fast::RandomState>,
    timers: BinaryHeap<Reverse<(Timestamp, u64, FlowKey)>>,
    capacity: usize,
    next_id: u64,
}

impl<V> FlowTable<V> {
    pub fn new(capacity: usize) -> Self {
        FlowTable {
            map: HashMap::default(),
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

    pub fn get(&self, key: &FlowKey) -> Option<&V> {
        self.map.get(key).map(|e| &e.value)
    }

    pub fn get_mut(&mut self, key: &FlowKey) -> Option<&mut V> {
        self.map.get_mut(key).map(|e| &mut e.value)
    }

    /// A flow and its deadline, in one lookup.
    pub fn get_with_deadline(&self, key: &FlowKey) -> Option<(&V, Timestamp)> {
        self.map.get(key).map(|e| (&e.value, e.deadline))
    }

    /// Runs `f` on a flow and moves its deadline to what `f` returns, in one lookup; `false`
    /// when there is no such flow. Later deadlines cost nothing now; earlier ones push a timer.
    pub fn update(&mut self, key: &FlowKey, f: impl FnOnce(&mut V) -> Timestamp) -> bool {
        let Some(entry) = self.map.get_mut(key) else {
            return false;
        };
        let deadline = f(&mut entry.value);
        entry.deadline = deadline;
        if deadline < entry.scheduled {
            entry.scheduled = deadline;
            self.timers.push(Reverse((deadline, entry.id, *key)));
        }
        true
    }

    pub fn remove(&mut self, key: &FlowKey) -> Option<V> {
        self.map.remove(key).map(|e| e.value)
    }

    /// Inserts a new flow. If the table is full, first evicts the flow due soonest and returns
    /// it so the caller can report it.
    pub fn insert(&mut self, key: FlowKey, value: V, deadline: Timestamp) -> Option<(FlowKey, V)> {
        let evicted = if self.map.len() >= self.capacity && !self.map.contains_key(&key) {
            self.evict_one()
        } else {
            None
        };
        let id = self.next_id;
        self.next_id += 1;
        self.timers.push(Reverse((deadline, id, key)));
        self.map.insert(
            key,
            Entry {
                id,
                deadline,
                scheduled: deadline,
                value,
            },
        );
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
            let Some(entry) = self.map.get_mut(&key) else {
                continue;
            };
            if entry.id != id || entry.scheduled != due {
                continue;
            }
            if entry.deadline <= now {
                if let Some(entry) = self.map.remove(&key) {
                    on_expired(key, entry.value);
                }
            } else {
                entry.scheduled = entry.deadline;
                self.timers.push(Reverse((entry.deadline, id, key)));
            }
        }
    }

    /// Removes every flow, one at a time in key order (reproducible, and without holding a
    /// second copy of a million flows).
    pub fn drain(&mut self, mut on_removed: impl FnMut(FlowKey, V)) {
        self.timers.clear();
        let mut keys: Vec<FlowKey> = self.map.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            if let Some(entry) = self.map.remove(&key) {
                on_removed(key, entry.value);
            }
        }
        self.map.shrink_to_fit();
    }

    fn evict_one(&mut self) -> Option<(FlowKey, V)> {
        // Skip stale timers; re-arm at most a few flows that were active since they were
        // scheduled, then take whatever is due first.
        let mut rearmed = 0;
        while let Some(Reverse((due, id, key))) = self.timers.pop() {
            let Some(entry) = self.map.get_mut(&key) else {
                continue;
            };
            if entry.id != id || entry.scheduled != due {
                continue;
            }
            if entry.deadline > due && rearmed < 8 {
                rearmed += 1;
                entry.scheduled = entry.deadline;
                self.timers.push(Reverse((entry.deadline, id, key)));
                continue;
            }
            return self.map.remove(&key).map(|e| (key, e.value));
        }
        None
    }

    /// Stale timers pile up when flows are removed early; rebuild once they dominate.
    fn compact_timers(&mut self) {
        if self.timers.len() > 2 * self.map.len() + 1024 {
            self.timers = self
                .map
                .iter_mut()
                .map(|(key, entry)| {
                    entry.scheduled = entry.deadline;
                    Reverse((entry.deadline, entry.id, *key))
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
    fn expires_at_deadline_not_before() {
        let mut table = FlowTable::new(10);
        table.insert(key(1), 1, t(30));
        assert!(expired(&mut table, 29).is_empty());
        assert_eq!(expired(&mut table, 30), vec![1]);
        assert!(table.is_empty());
    }

    #[test]
    fn later_deadline_postpones_expiry() {
        let mut table = FlowTable::new(10);
        table.insert(key(1), 1, t(30));
        assert!(table.update(&key(1), |_| t(100)));
        assert!(expired(&mut table, 50).is_empty());
        assert_eq!(expired(&mut table, 100), vec![1]);
    }

    #[test]
    fn earlier_deadline_expires_early() {
        let mut table = FlowTable::new(10);
        table.insert(key(1), 1, t(300));
        assert!(table.update(&key(1), |_| t(10)));
        assert_eq!(expired(&mut table, 10), vec![1]);
        // The stale timer at 300 finds nothing.
        assert!(expired(&mut table, 300).is_empty());
    }

    #[test]
    fn reinserted_key_ignores_old_timer() {
        let mut table = FlowTable::new(10);
        table.insert(key(1), 1, t(10));
        table.remove(&key(1));
        table.insert(key(1), 2, t(50));
        assert!(expired(&mut table, 20).is_empty());
        assert_eq!(expired(&mut table, 50), vec![2]);
    }

    #[test]
    fn full_table_evicts_the_flow_due_first() {
        let mut table = FlowTable::new(2);
        assert!(table.insert(key(1), 1, t(50)).is_none());
        assert!(table.insert(key(2), 2, t(20)).is_none());
        let (_, evicted) = table.insert(key(3), 3, t(60)).unwrap();
        assert_eq!(evicted, 2);
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn timers_stay_bounded_under_churn() {
        let mut table = FlowTable::new(4);
        for i in 0..100_000u32 {
            let k = key((i % 50_000) as u16);
            table.insert(k, i, t(1_000 + u64::from(i)));
            table.remove(&k);
        }
        assert!(table.timers.len() <= 1024 + 8);
    }

    #[test]
    fn drain_is_in_key_order() {
        let mut table = FlowTable::new(10);
        for p in [5, 3, 9] {
            table.insert(key(p), u32::from(p), t(1));
        }
        let mut order = Vec::new();
        table.drain(|_, v| order.push(v));
        assert_eq!(order, vec![3, 5, 9]);
    }
}
