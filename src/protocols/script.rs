//! Drives one parser over a script of client and server bytes and gaps, as the tracker would:
//! the unit tests and the fuzz targets of every protocol use this one driver. Step `i` is seen
//! at second `i` of packet time; the parser finishes at second [`FINISH_SECS`].

use super::{AppOutput, Parsed, StreamParser};
use crate::direction::Direction;
use crate::timestamp::Timestamp;

/// One step of a script.
#[derive(Clone, Copy, Debug)]
pub enum Step<'a> {
    Data(Direction, &'a [u8]),
    Gap(Direction, u64),
}

/// Packet time of the end of every script.
pub const FINISH_SECS: u64 = 999;

/// What running a script gave: the events, and where the parser handed the stream on.
#[derive(Debug, Default)]
pub struct Run {
    pub events: Vec<AppOutput>,
    /// The step at which the parser answered [`Parsed::Upgrade`], and how much of it it used;
    /// the steps after it are not given to the parser.
    pub upgraded: Option<(usize, usize)>,
}

/// Runs `parser` over `steps`, then finishes it.
pub fn run<'a, P: StreamParser>(parser: &mut P, steps: impl IntoIterator<Item = Step<'a>>) -> Run {
    let mut run = Run::default();
    for (i, step) in steps.into_iter().enumerate() {
        let ts = Timestamp::from_secs(i as u64);
        match step {
            Step::Data(dir, data) => {
                if let Parsed::Upgrade { consumed } = parser.parse(dir, data, ts, &mut run.events) {
                    run.upgraded = Some((i, consumed));
                    break;
                }
            }
            Step::Gap(dir, len) => parser.on_gap(dir, len),
        }
    }
    parser.finish(Timestamp::from_secs(FINISH_SECS), &mut run.events);
    run
}

/// [`run`] over a script of data only, for tests.
pub fn run_data<P: StreamParser>(parser: &mut P, script: &[(Direction, &[u8])]) -> Run {
    run(
        parser,
        script.iter().map(|&(dir, data)| Step::Data(dir, data)),
    )
}
