//! Bounded detection state: keyed tables with a cap, sliding windows of packet time, and
//! cool-downs. What a cap refuses is counted, never silently lost. Keys leave on a schedule
//! ([`Expiring`]), so expiry costs what expires, not what the tables hold.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::Hash;
use std::rc::Rc;

use crate::timestamp::Timestamp;

/// About what one key of a detection table costs, its window or cool-down and its place in
/// the expiry schedule included (measured: a client's window of one direct-to-MX attempt,
/// about 260 bytes, and 31 more for the schedule).
pub const KEY_BYTES: usize = 288;

/// Keys all the tables of one analysis may hold together: its share of the memory budget.
#[derive(Clone, Debug)]
pub struct KeyBudget {
    used: Rc<Cell<usize>>,
    cap: usize,
}

impl KeyBudget {
    /// As many keys as `bytes` hold at [`KEY_BYTES`] each.
    pub fn of_bytes(bytes: usize) -> Self {
        KeyBudget {
            used: Rc::default(),
            cap: bytes / KEY_BYTES,
        }
    }

    /// No limit beyond each table's own.
    pub fn unlimited() -> Self {
        KeyBudget {
            used: Rc::default(),
            cap: usize::MAX,
        }
    }

    fn full(&self) -> bool {
        self.used.get() >= self.cap
    }
}

#[cfg(test)]
mod budget_tests {
    use super::*;

    #[test]
    fn tables_share_one_key_budget() {
        let budget = KeyBudget::of_bytes(3 * KEY_BYTES);
        let mut a: Capped<u32, ()> = Capped::sharing(10, budget.clone());
        let mut b: Capped<u32, ()> = Capped::sharing(10, budget.clone());
        assert!(a.get_or_insert_with(1, || ()).is_some());
        assert!(a.get_or_insert_with(2, || ()).is_some());
        assert!(b.get_or_insert_with(1, || ()).is_some());
        assert!(
            b.get_or_insert_with(2, || ()).is_none(),
            "the budget is spent"
        );
        assert!(
            a.get_or_insert_with(1, || ()).is_some(),
            "known keys still found"
        );
        assert_eq!((a.refused, b.refused), (0, 1));
        a.remove(&2);
        assert!(b.get_or_insert_with(2, || ()).is_some(), "room given back");
    }
}

/// A table with at most `cap` keys, and no more than its [`KeyBudget`] allows; a new key
/// beyond either is refused and counted. Keys come from the wire: the hasher is seeded.
#[derive(Debug)]
pub struct Capped<K, V> {
    map: HashMap<K, V, foldhash::fast::RandomState>,
    cap: usize,
    budget: KeyBudget,
    pub refused: u64,
}

impl<K: Hash + Eq, V> Capped<K, V> {
    /// A table whose keys also count against `budget`, shared with other tables.
    pub fn sharing(cap: usize, budget: KeyBudget) -> Self {
        Capped {
            map: HashMap::default(),
            cap,
            budget,
            refused: 0,
        }
    }

    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> Option<&mut V> {
        self.get_or_insert_noting(key, make, |_| {})
    }

    /// [`Capped::get_or_insert_with`], telling `inserted` about a key it takes in.
    fn get_or_insert_noting(
        &mut self,
        key: K,
        make: impl FnOnce() -> V,
        inserted: impl FnOnce(&K),
    ) -> Option<&mut V> {
        let full = self.map.len() >= self.cap || self.budget.full();
        match self.map.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => Some(e.into_mut()),
            std::collections::hash_map::Entry::Vacant(_) if full => {
                self.refused += 1;
                None
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                self.budget.used.set(self.budget.used.get() + 1);
                inserted(e.key());
                Some(e.insert(make()))
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    fn remove(&mut self, key: &K) {
        if self.map.remove(key).is_some() {
            let used = &self.budget.used;
            used.set(used.get().saturating_sub(1));
        }
    }
}

/// A [`Capped`] table whose keys leave once nothing needs them. Each key is looked at again
/// only when it is due, so a tick costs what expires, not every key held.
#[derive(Debug)]
pub struct Expiring<K, V> {
    table: Capped<K, V>,
    /// When each key is due to be looked at again, earliest first: one entry per key.
    due: BinaryHeap<Reverse<(Timestamp, K)>>,
}

impl<K: Hash + Eq + Ord + Clone, V> Expiring<K, V> {
    pub fn sharing(cap: usize, budget: KeyBudget) -> Self {
        Expiring {
            table: Capped::sharing(cap, budget),
            due: BinaryHeap::new(),
        }
    }

    /// The value of `key`, made when new; a new key is looked at by the first expiry at or
    /// after `now`. `None` when the table refused it.
    pub fn get_or_insert_with(
        &mut self,
        key: K,
        now: Timestamp,
        make: impl FnOnce() -> V,
    ) -> Option<&mut V> {
        let due = &mut self.due;
        self.table
            .get_or_insert_noting(key, make, |key| due.push(Reverse((now, key.clone()))))
    }

    /// Looks at the keys due by `now`: `settle` trims a value and says from when nothing
    /// needs it. A key free by `now` leaves; the others are due again when they are free.
    pub fn expire(&mut self, now: Timestamp, mut settle: impl FnMut(&mut V) -> Timestamp) {
        while self.due.peek().is_some_and(|Reverse((at, _))| *at <= now) {
            let Some(Reverse((_, key))) = self.due.pop() else {
                break;
            };
            let Some(value) = self.table.map.get_mut(&key) else {
                continue;
            };
            let free = settle(value);
            if free <= now {
                self.table.remove(&key);
            } else {
                self.due.push(Reverse((free, key)));
            }
        }
    }

    /// Every key due at `now`: what frees them changed (new rules).
    pub fn recheck(&mut self, now: Timestamp) {
        self.due = self
            .table
            .map
            .keys()
            .map(|k| Reverse((now, k.clone())))
            .collect();
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn refused(&self) -> u64 {
        self.table.refused
    }
}

/// Whether `then` lies within `secs` before `now`.
pub fn within(then: Timestamp, now: Timestamp, secs: u64) -> bool {
    now.0.saturating_sub(then.0) < secs.saturating_mul(Timestamp::MICROS_PER_SEC)
}

/// The first moment `then` is no longer [`within`] `secs`: at once for no seconds at all.
pub fn no_longer_within(then: Timestamp, secs: u64) -> Timestamp {
    if secs == 0 {
        return Timestamp(0);
    }
    Timestamp(
        then.0
            .saturating_add(secs.saturating_mul(Timestamp::MICROS_PER_SEC)),
    )
}

/// What happened in the last `window` seconds: entries with a weight, oldest first, at most
/// `cap` of them (a full window adds to its newest entry instead), and when it last alerted.
#[derive(Debug)]
pub struct Window<T> {
    entries: VecDeque<(Timestamp, u64, T)>,
    total: u64,
    pub last_alert: Option<Timestamp>,
}

impl<T> Default for Window<T> {
    fn default() -> Self {
        Window {
            entries: VecDeque::new(),
            total: 0,
            last_alert: None,
        }
    }
}

impl<T> Window<T> {
    /// Adds an entry; returns false when the window was full and the weight went to its
    /// newest entry.
    pub fn push(&mut self, ts: Timestamp, weight: u64, item: T, cap: usize) -> bool {
        self.total += weight;
        if self.entries.len() >= cap
            && let Some(last) = self.entries.back_mut()
        {
            last.1 += weight;
            return false;
        }
        self.entries.push_back((ts, weight, item));
        true
    }

    /// Drops what is older than `window` seconds before `now`.
    pub fn expire(&mut self, now: Timestamp, window: u64) {
        while let Some((ts, weight, _)) = self.entries.front() {
            if within(*ts, now, window) {
                break;
            }
            self.total -= weight;
            self.entries.pop_front();
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn items(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().map(|(_, _, item)| item)
    }

    /// Whether an alert may be raised now: never raised, or the cool-down has passed.
    pub fn may_alert(&self, now: Timestamp, cooldown: u64) -> bool {
        self.last_alert.is_none_or(|t| !within(t, now, cooldown))
    }

    /// From when the window will be empty and its cool-down over: when its key may go.
    pub fn free_at(&self, window: u64, cooldown: u64) -> Timestamp {
        // Observations of several workers may come slightly out of order: the newest entry
        // need not be the last.
        let empty = self
            .entries
            .iter()
            .map(|(ts, _, _)| *ts)
            .max()
            .map_or(Timestamp(0), |ts| no_longer_within(ts, window));
        let cooled = self
            .last_alert
            .map_or(Timestamp(0), |t| no_longer_within(t, cooldown));
        empty.max(cooled)
    }

    /// Drops what left the window at `now`, and says when its key may go (see
    /// [`Expiring::expire`]).
    pub fn settle(&mut self, now: Timestamp, window: u64, cooldown: u64) -> Timestamp {
        self.expire(now, window);
        self.free_at(window, cooldown)
    }
}

/// When each key last alerted, so a detection raises one alert per key and cool-down.
#[derive(Debug)]
pub struct Cooldowns<K> {
    last: Expiring<K, Timestamp>,
    cooldown: u64,
}

impl<K: Hash + Eq + Ord + Clone> Cooldowns<K> {
    pub fn new(cap: usize, cooldown: u64, budget: KeyBudget) -> Self {
        Cooldowns {
            last: Expiring::sharing(cap, budget),
            cooldown,
        }
    }

    /// True (and remembered) if `key` has not alerted within the cool-down. A key that does
    /// not fit in the table alerts every time rather than never.
    pub fn fire(&mut self, key: K, now: Timestamp) -> bool {
        let cooldown = self.cooldown;
        match self.last.get_or_insert_with(key, now, || Timestamp(0)) {
            Some(last) if last.0 != 0 && within(*last, now, cooldown) => false,
            Some(last) => {
                *last = now.max(Timestamp(1));
                true
            }
            None => true,
        }
    }

    pub fn expire(&mut self, now: Timestamp) {
        let cooldown = self.cooldown;
        self.last.expire(now, |t| no_longer_within(*t, cooldown));
    }

    pub fn recheck(&mut self, now: Timestamp) {
        self.last.recheck(now);
    }

    pub fn refused(&self) -> u64 {
        self.last.refused()
    }

    pub fn len(&self) -> usize {
        self.last.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    #[test]
    fn window_slides_and_caps() {
        let mut w: Window<()> = Window::default();
        w.push(at(100), 3, (), 2);
        w.push(at(200), 4, (), 2);
        assert!(!w.push(at(250), 5, (), 2), "full: added to the newest");
        assert_eq!((w.total(), w.len()), (12, 2));
        w.expire(at(999), 900);
        assert_eq!(w.total(), 12, "899 s old: still in");
        w.expire(at(1000), 900);
        assert_eq!((w.total(), w.len()), (9, 1), "900 s old: out");
        assert!(w.may_alert(at(1001), 60));
        w.last_alert = Some(at(1001));
        assert!(!w.may_alert(at(1060), 60) && w.may_alert(at(1061), 60));
    }

    /// Expires `t` at second `s` with 100 s windows: how many keys were looked at.
    fn expire_at(t: &mut Expiring<u32, Window<()>>, s: u64) -> usize {
        let mut looked = 0;
        t.expire(at(s), |w| {
            looked += 1;
            w.settle(at(s), 100, 0)
        });
        looked
    }

    #[test]
    fn keys_leave_when_free_and_only_due_keys_are_looked_at() {
        let mut t: Expiring<u32, Window<()>> = Expiring::sharing(100, KeyBudget::unlimited());
        for key in 0..50 {
            t.get_or_insert_with(key, at(10), Window::default)
                .unwrap()
                .push(at(10), 1, (), 10);
        }
        assert_eq!(expire_at(&mut t, 9), 0, "not due yet");
        assert_eq!(expire_at(&mut t, 10), 50, "a new key is looked at once");
        assert_eq!(t.len(), 50);
        let looked: usize = (11..110).map(|s| expire_at(&mut t, s)).sum();
        assert_eq!(looked, 0, "then not before its window empties");
        // Key 7 had another entry meanwhile: it stays until that one leaves the window.
        t.get_or_insert_with(7, at(60), Window::default)
            .unwrap()
            .push(at(60), 1, (), 10);
        assert_eq!(expire_at(&mut t, 110), 50);
        assert_eq!(t.len(), 1);
        assert_eq!(expire_at(&mut t, 159), 0, "99 s after its last entry");
        assert_eq!(expire_at(&mut t, 160), 1);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn a_window_is_free_after_its_newest_entry_and_its_cooldown() {
        let mut w: Window<()> = Window::default();
        assert_eq!(w.free_at(100, 60), Timestamp(0), "empty and never alerted");
        w.push(at(50), 1, (), 10);
        w.push(at(20), 1, (), 10);
        assert_eq!(
            w.free_at(100, 60),
            at(150),
            "the newest entry, not the last"
        );
        w.last_alert = Some(at(120));
        assert_eq!(w.free_at(100, 60), at(180));
        assert_eq!(w.free_at(100, 0), at(150), "no cool-down");
        assert!(!w.may_alert(at(179), 60) && w.may_alert(at(180), 60));
    }

    #[test]
    fn refused_keys_are_not_scheduled_and_rules_recheck_every_key() {
        let mut t: Expiring<u32, Timestamp> = Expiring::sharing(2, KeyBudget::unlimited());
        for key in 0..3 {
            t.get_or_insert_with(key, at(1), || at(1));
        }
        assert_eq!((t.len(), t.refused()), (2, 1));
        t.expire(at(2), |seen| no_longer_within(*seen, 1000));
        assert_eq!(t.len(), 2);
        // A shorter period from new rules: every key is looked at again, not at its old time.
        t.recheck(at(3));
        t.expire(at(3), |seen| no_longer_within(*seen, 1));
        assert_eq!(t.len(), 0);
        assert!(
            t.get_or_insert_with(9, at(4), || at(4)).is_some(),
            "room given back"
        );
    }

    #[test]
    fn cooldowns_fire_once_per_period_and_count_overflow() {
        let mut c = Cooldowns::new(1, 10, KeyBudget::unlimited());
        assert!(c.fire("a", at(5)));
        assert!(!c.fire("a", at(14)));
        assert!(c.fire("a", at(15)));
        assert!(
            c.fire("b", at(15)) && c.fire("b", at(15)),
            "no room: always fires"
        );
        assert_eq!(c.refused(), 2);
        c.expire(at(100));
        assert_eq!(c.len(), 0);
    }
}
