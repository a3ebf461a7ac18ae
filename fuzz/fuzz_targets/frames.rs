//! Arbitrary bytes as frames of every supported link type, through decode, flows, reassembly
//! and events. Input: a link-type selector byte, then frames as (u16 length, bytes).

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use spamtap::capture::LinkType;
use spamtap::timestamp::Timestamp;

const LINKS: [LinkType; 6] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::RawIp,
    LinkType::Null,
    LinkType::Loop,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let link = LINKS[usize::from(selector) % LINKS.len()];
    let mut harness = common::Harness::new();
    let mut ts = Timestamp::from_secs(1_000);
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let frame = &rest[2..(2 + len).min(rest.len())];
        rest = &rest[(2 + len).min(rest.len())..];
        ts = ts.saturating_add_secs(u64::from(len as u8 % 4));
        harness.frame(link, ts, frame);
        harness.advance(ts);
    }
    harness.finish();
});
