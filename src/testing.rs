//! Helpers for the unit tests.

/// A tiny deterministic generator (xorshift32): the same seed gives the same sequence on
/// every run, so a randomised test that fails fails again.
pub fn xorshift(seed: u32) -> impl FnMut() -> u32 {
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    }
}
