//! Bounded detection state: keyed tables with a cap, sliding windows of packet time, and
//! cool-downs. What a cap refuses is counted, never silently lost.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::rc::Rc;

use crate::timestamp::Timestamp;

/// About what one key of a detection table costs, its window or cool-down included (measured:
/// a client's window of one direct-to-MX attempt, about 260 bytes).
pub const KEY_BYTES: usize = 256;

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
        a.retain(|k, _| *k == 1);
        assert!(b.get_or_insert_with(2, || ()).is_some(), "room given back");
    }
}

/// A table with at most `cap` keys, and no more than its [`KeyBudget`] allows; a new key
/// beyond either is refused and counted.
#[derive(Debug)]
pub struct Capped<K, V> {
    map: HashMap<K, V>,
    cap: usize,
    budget: KeyBudget,
    pub refused: u64,
}

impl<K: Hash + Eq, V> Capped<K, V> {
    /// A table whose keys also count against `budget`, shared with other tables.
    pub fn sharing(cap: usize, budget: KeyBudget) -> Self {
        Capped {
            map: HashMap::new(),
            cap,
            budget,
            refused: 0,
        }
    }

    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> Option<&mut V> {
        let full = self.map.len() >= self.cap || self.budget.full();
        match self.map.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => Some(e.into_mut()),
            std::collections::hash_map::Entry::Vacant(_) if full => {
                self.refused += 1;
                None
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                self.budget.used.set(self.budget.used.get() + 1);
                Some(e.insert(make()))
            }
        }
    }

    pub fn retain(&mut self, keep: impl FnMut(&K, &mut V) -> bool) {
        let before = self.map.len();
        self.map.retain(keep);
        let used = &self.budget.used;
        used.set(used.get().saturating_sub(before - self.map.len()));
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
}

/// Whether `then` lies within `secs` before `now`.
pub fn within(then: Timestamp, now: Timestamp, secs: u64) -> bool {
    now.0.saturating_sub(then.0) < secs.saturating_mul(Timestamp::MICROS_PER_SEC)
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

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn items(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().map(|(_, _, item)| item)
    }

    /// Whether an alert may be raised now: never raised, or the cool-down has passed.
    pub fn may_alert(&self, now: Timestamp, cooldown: u64) -> bool {
        self.last_alert.is_none_or(|t| !within(t, now, cooldown))
    }
}

/// When each key last alerted, so a detection raises one alert per key and cool-down.
#[derive(Debug)]
pub struct Cooldowns<K> {
    last: Capped<K, Timestamp>,
    cooldown: u64,
}

impl<K: Hash + Eq> Cooldowns<K> {
    pub fn new(cap: usize, cooldown: u64, budget: KeyBudget) -> Self {
        Cooldowns {
            last: Capped::sharing(cap, budget),
            cooldown,
        }
    }

    /// True (and remembered) if `key` has not alerted within the cool-down. A key that does
    /// not fit in the table alerts every time rather than never.
    pub fn fire(&mut self, key: K, now: Timestamp) -> bool {
        let cooldown = self.cooldown;
        match self.last.get_or_insert_with(key, || Timestamp(0)) {
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
        self.last.retain(|_, t| within(*t, now, cooldown));
    }

    pub fn refused(&self) -> u64 {
        self.last.refused
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
