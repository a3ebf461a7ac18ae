//! The packet-time clock of the capture thread: when packet time passes a second, a tick goes
//! to every worker in band with the packets; when it also passes a stats interval boundary,
//! that tick ends the interval. Only packet timestamps move it, so a replay ticks exactly as
//! the live run did.

use crate::timestamp::Timestamp;

/// Packet time between ticks: how soon the analysis sees a worker's observations.
pub const TICK_MICROS: u64 = Timestamp::MICROS_PER_SEC;

/// A tick to send: its id (0, 1, 2, ... in order), the second it marks, and the stats
/// interval boundary it ends, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tick {
    pub id: u64,
    pub ts: Timestamp,
    pub stats: Option<Timestamp>,
}

/// When the next tick and the next stats boundary are due.
#[derive(Debug)]
pub struct TickClock {
    interval_micros: u64,
    next_tick: Option<Timestamp>,
    next_stats: Option<Timestamp>,
    next_id: u64,
}

impl TickClock {
    /// A clock with a stats boundary every `stats_interval` seconds (0: none).
    pub fn new(stats_interval: u64) -> Self {
        TickClock {
            interval_micros: stats_interval.saturating_mul(Timestamp::MICROS_PER_SEC),
            next_tick: None,
            next_stats: None,
            next_id: 0,
        }
    }

    /// A packet at `ts` arrived: the tick due before it, if any. The first packet starts the
    /// clock; a quiet hour gives one tick for the latest second passed, not 3,600.
    pub fn on_packet(&mut self, ts: Timestamp) -> Option<Tick> {
        let Some(next) = self.next_tick else {
            self.next_tick = Some(next_boundary(ts, TICK_MICROS));
            if self.interval_micros > 0 {
                self.next_stats = Some(next_boundary(ts, self.interval_micros));
            }
            return None;
        };
        if ts < next {
            return None;
        }
        let boundary = Timestamp(ts.0 / TICK_MICROS * TICK_MICROS);
        let stats = match self.next_stats {
            Some(next_stats) if ts >= next_stats => {
                let interval = self.interval_micros;
                let stats_boundary = Timestamp(ts.0 / interval * interval);
                self.next_stats = Some(Timestamp(stats_boundary.0.saturating_add(interval)));
                Some(stats_boundary)
            }
            _ => None,
        };
        self.next_tick = Some(Timestamp(boundary.0.saturating_add(TICK_MICROS)));
        let id = self.next_id;
        self.next_id += 1;
        Some(Tick {
            id,
            ts: boundary,
            stats,
        })
    }
}

/// The first multiple of `step` after `ts`.
fn next_boundary(ts: Timestamp, step: u64) -> Timestamp {
    Timestamp((ts.0 / step + 1).saturating_mul(step))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, micros: u64) -> Timestamp {
        Timestamp(secs * Timestamp::MICROS_PER_SEC + micros)
    }

    #[test]
    fn the_first_packet_starts_the_clock_without_a_tick() {
        let mut clock = TickClock::new(60);
        assert_eq!(clock.on_packet(at(100, 500)), None);
        assert_eq!(clock.on_packet(at(100, 999_999)), None, "same second");
    }

    #[test]
    fn each_second_passed_gives_one_tick_at_its_boundary() {
        let mut clock = TickClock::new(0);
        clock.on_packet(at(100, 500));
        let tick = clock.on_packet(at(101, 0)).expect("a new second");
        assert_eq!(
            tick,
            Tick {
                id: 0,
                ts: at(101, 0),
                stats: None
            }
        );
        assert_eq!(clock.on_packet(at(101, 7)), None);
        assert_eq!(
            clock.on_packet(at(102, 3)).map(|t| (t.id, t.ts)),
            Some((1, at(102, 0)))
        );
    }

    #[test]
    fn a_quiet_hour_is_one_tick() {
        let mut clock = TickClock::new(0);
        clock.on_packet(at(100, 0));
        let tick = clock.on_packet(at(3700, 42)).expect("tick");
        assert_eq!((tick.id, tick.ts), (0, at(3700, 0)));
        assert_eq!(clock.on_packet(at(3700, 43)), None);
    }

    #[test]
    fn stats_boundaries_ride_on_the_tick_that_passes_them() {
        let mut clock = TickClock::new(60);
        clock.on_packet(at(30, 0));
        let stats: Vec<_> = [31, 59, 60, 61, 119, 250]
            .into_iter()
            .filter_map(|s| clock.on_packet(at(s, 1)))
            .map(|t| t.stats)
            .collect();
        assert_eq!(
            stats,
            [None, None, Some(at(60, 0)), None, None, Some(at(240, 0))],
            "a boundary once, at the multiple of the interval passed last"
        );
    }

    #[test]
    fn no_stats_boundary_with_interval_zero_and_no_overflow_at_the_end_of_time() {
        let mut clock = TickClock::new(0);
        clock.on_packet(Timestamp(u64::MAX - 5));
        let tick = clock
            .on_packet(Timestamp(u64::MAX))
            .expect("boundaries saturate");
        assert_eq!(tick.ts.0 % TICK_MICROS, 0);
        assert_eq!(tick.stats, None);
        let mut clock = TickClock::new(u64::MAX);
        clock.on_packet(at(1, 0));
        let tick = clock.on_packet(at(2, 0)).expect("tick");
        assert_eq!(tick.stats, None);
    }
}
