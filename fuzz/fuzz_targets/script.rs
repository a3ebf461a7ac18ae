//! The input format of the parser targets: records of (control byte, u8 length, bytes). The
//! control byte's low bit picks the direction; a high nibble of 0xf makes the record a gap
//! instead of data.

use spamtap::flow::Direction;

pub enum Step<'a> {
    Data(Direction, &'a [u8]),
    Gap(Direction, u64),
}

pub fn steps(mut rest: &[u8]) -> impl Iterator<Item = Step<'_>> {
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
