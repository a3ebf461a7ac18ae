//! Packet time: the one clock every timer, window and event timestamp in spamtap runs on.
//!
//! Wall-clock time is never consulted for anything that reaches an event, so replaying a capture
//! gives the same events as the live run it was recorded from.

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch, as stamped on a captured packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const MICROS_PER_SEC: u64 = 1_000_000;

    /// From a pcap `timeval`; times before the epoch are clamped to it.
    pub fn from_timeval(sec: i64, usec: i64) -> Self {
        let micros = sec
            .saturating_mul(Self::MICROS_PER_SEC as i64)
            .saturating_add(usec);
        Timestamp(micros.max(0) as u64)
    }

    pub fn from_secs(secs: u64) -> Self {
        Timestamp(secs.saturating_mul(Self::MICROS_PER_SEC))
    }

    pub fn micros(self) -> u64 {
        self.0
    }

    pub fn secs(self) -> u64 {
        self.0 / Self::MICROS_PER_SEC
    }

    pub fn saturating_add_secs(self, secs: u64) -> Self {
        Timestamp(
            self.0
                .saturating_add(secs.saturating_mul(Self::MICROS_PER_SEC)),
        )
    }

    /// Seconds from `earlier` to `self`, never negative.
    pub fn secs_since(self, earlier: Timestamp) -> f64 {
        self.0.saturating_sub(earlier.0) as f64 / Self::MICROS_PER_SEC as f64
    }

    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(self.0)
    }
}

/// As Suricata writes EVE timestamps (its schema requires the pattern): UTC, microseconds and a
/// numeric offset, `2026-11-22T17:26:49.123456+0000`.
impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.eve_text().as_str())
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.eve_text().as_str())
    }
}

/// The last microsecond the format can write, in the year 9999; a later time (a capture's
/// 64-bit timestamp can be anything) is written as it, so no event is lost to its time.
const LAST_WRITABLE: u64 = 253_402_300_800 * Timestamp::MICROS_PER_SEC - 1;

/// A timestamp's text, rendered on the stack: always 31 bytes.
struct EveText([u8; 31]);

impl EveText {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl Timestamp {
    fn eve_text(self) -> EveText {
        let time = self.0.min(LAST_WRITABLE);
        let (secs, mut micros) = (time / Self::MICROS_PER_SEC, time % Self::MICROS_PER_SEC);
        let mut buf = [b'0'; 31];
        buf[..19].copy_from_slice(&second_text(secs));
        buf[19] = b'.';
        for digit in buf[20..26].iter_mut().rev() {
            *digit = b'0' + (micros % 10) as u8;
            micros /= 10;
        }
        buf[26..].copy_from_slice(b"+0000");
        EveText(buf)
    }
}

/// `2026-11-22T17:26:49`, the second of a timestamp. Events come in runs of the same second,
/// so each thread keeps the last second it rendered: humantime's calendar arithmetic and
/// `fmt` machinery ran for every timestamp before, 1.7% of a mail-heavy replay's instructions.
fn second_text(secs: u64) -> [u8; 19] {
    thread_local! {
        static LAST: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
    }
    LAST.with(|last| {
        let (cached, text) = last.get();
        if cached == secs {
            return text;
        }
        use std::io::Write;
        // humantime writes `2026-11-22T17:26:49Z`: the `Z` is left out.
        let mut rendered = [b'0'; 20];
        let time = Timestamp::from_secs(secs).to_system_time();
        let _ = write!(
            &mut rendered[..],
            "{}",
            humantime::format_rfc3339_seconds(time)
        );
        let mut text = [0; 19];
        text.copy_from_slice(&rendered[..19]);
        last.set((secs, text));
        text
    })
}

/// Reads back what [`Timestamp`]'s `Serialize` writes (for observations between sensors).
impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let utc = text
            .strip_suffix("+0000")
            .ok_or_else(|| serde::de::Error::custom("a timestamp ends in +0000"))?;
        let time =
            humantime::parse_rfc3339(&format!("{utc}Z")).map_err(serde::de::Error::custom)?;
        let micros = time
            .duration_since(UNIX_EPOCH)
            .map_err(serde::de::Error::custom)?
            .as_micros();
        Ok(Timestamp(u64::try_from(micros).unwrap_or(u64::MAX)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_with_microseconds() {
        let t = Timestamp::from_timeval(1_700_000_000, 42);
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2023-11-14T22:13:20.000042+0000\""
        );
    }

    #[test]
    fn reads_back_what_it_writes() {
        let t = Timestamp::from_timeval(1_700_000_000, 42);
        let text = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<Timestamp>(&text).unwrap(), t);
        assert!(serde_json::from_str::<Timestamp>("\"2023-11-14T22:13:20Z\"").is_err());
    }

    #[test]
    fn times_past_the_year_9999_are_written_as_its_last_microsecond() {
        let t = Timestamp(u64::MAX);
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"9999-12-31T23:59:59.999999+0000\""
        );
        assert_eq!(t.to_string().len(), 31);
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000000+0000");
    }

    /// The cached second and the digits written here give what humantime writes whole.
    #[test]
    fn writes_what_humantime_writes() {
        let mut t = 0u64;
        for step in [1, 999_999, 1_000_001, 86_399_999_999, 31_622_400_123_457, 7] {
            for _ in 0..200 {
                t = t.wrapping_add(step) % LAST_WRITABLE;
                let full = humantime::format_rfc3339_micros(Timestamp(t).to_system_time());
                let expected = full.to_string().replace('Z', "+0000");
                assert_eq!(Timestamp(t).to_string(), expected, "{t}");
            }
        }
    }

    #[test]
    fn negative_times_clamp_to_epoch() {
        assert_eq!(Timestamp::from_timeval(-5, 0), Timestamp(0));
    }

    #[test]
    fn duration_never_negative() {
        let a = Timestamp::from_secs(10);
        let b = Timestamp::from_secs(12);
        assert_eq!(b.secs_since(a), 2.0);
        assert_eq!(a.secs_since(b), 0.0);
    }
}
