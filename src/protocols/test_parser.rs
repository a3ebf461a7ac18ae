//! A parser that exists only in unit tests, to prove the plumbing from packets to events:
//! it matches flows whose client starts with `PING` and records everything it is handed.

use serde::Serialize;

use super::{AppEvent, AppOutput, Probe};
use crate::flow::Direction;
use crate::timestamp::Timestamp;

pub fn probe(ctos: &[u8], _stoc: &[u8]) -> Probe {
    let n = ctos.len().min(4);
    if ctos[..n] != b"PING"[..n] {
        Probe::NoMatch
    } else if n < 4 {
        Probe::NeedMore
    } else {
        Probe::Match
    }
}

/// Everything the parser was handed, as text: `>` client data, `<` server data, `[gap N]`.
#[derive(Debug, Default, PartialEq, Serialize)]
pub struct TestRecord {
    pub transcript: String,
}

#[derive(Default)]
pub struct TestParser {
    transcript: String,
    last: Option<Direction>,
}

impl TestParser {
    pub fn parse(
        &mut self,
        dir: Direction,
        data: &[u8],
        _ts: Timestamp,
        _out: &mut Vec<AppOutput>,
    ) {
        if self.last != Some(dir) {
            self.transcript.push(match dir {
                Direction::Ctos => '>',
                Direction::Stoc => '<',
            });
            self.last = Some(dir);
        }
        self.transcript.push_str(&String::from_utf8_lossy(data));
    }

    pub fn on_gap(&mut self, dir: Direction, len: u64) {
        self.last = Some(dir);
        self.transcript.push_str(&format!("[gap {len}]"));
    }

    pub fn finish(&mut self, ts: Timestamp, out: &mut Vec<AppOutput>) {
        out.push(AppOutput::new(
            ts,
            AppEvent::Test(TestRecord {
                transcript: std::mem::take(&mut self.transcript),
            }),
        ));
    }
}
