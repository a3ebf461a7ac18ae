//! The one driver of every parser target. Input: records of (control byte, u8 length, bytes);
//! the control byte's low bit picks the direction, a high nibble of 0xf makes the record a gap
//! instead of data. The parser must never panic, and every event it writes must serialise to
//! one JSON object within the caps.

use spamtap::direction::Direction;
use spamtap::output::{Event, EventBody, EventSink, EventWriter, Origin};
use spamtap::protocols::{StreamOrigin, StreamParser};
use spamtap::protocols::script::{self, Step};

fn steps(mut rest: &[u8]) -> impl Iterator<Item = Step<'_>> {
    std::iter::from_fn(move || {
        let [control, len, tail @ ..] = rest else {
            return None;
        };
        let len = usize::from(*len).min(tail.len());
        let (chunk, after) = tail.split_at(len);
        rest = after;
        let dir = if control & 1 == 0 { Direction::Ctos } else { Direction::Stoc };
        Some(if control & 0xf0 == 0xf0 {
            Step::Gap(dir, u64::from(*control & 0x0f) * 100 + len as u64)
        } else {
            Step::Data(dir, chunk)
        })
    })
}

/// Largest event line a parser may write.
const MAX_EVENT: usize = 1024 * 1024;

pub fn fuzz_parser<P: StreamParser>(data: &[u8]) {
    let run = script::run(&mut P::new(StreamOrigin::default()), steps(data));
    let mut writer = EventWriter::default();
    for output in &run.events {
        writer.emit(&Event {
            timestamp: output.ts,
            sensor: "fuzz",
            origin: Origin::PcapFile("fuzz"),
            flow: None,
            body: EventBody::App {
                event: &output.event,
                tunnel: output.tunnel.as_ref(),
            },
        });
    }
    let written = writer.take();
    let lines: Vec<_> = written
        .bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), run.events.len(), "every event serialises");
    assert_eq!(written.count, lines.len() as u64, "the writer counts its lines");
    for line in lines {
        assert!(line.len() < MAX_EVENT, "capped: {} bytes", line.len());
        let value: serde_json::Value = serde_json::from_slice(line).expect("valid JSON");
        assert!(value.is_object());
    }
}
