//! The SMTP parser on its own, fed both directions in fuzzer-chosen chunks with gaps: it must
//! never panic, and every event must serialise to JSON within the caps.
//! Input: records of (control byte, u8 length, bytes); the control byte picks the direction,
//! and sometimes a gap instead of data.

#![no_main]

use libfuzzer_sys::fuzz_target;
use spamtap::flow::Direction;
use spamtap::protocols::AppEvent;
use spamtap::protocols::smtp::SmtpParser;
use spamtap::timestamp::Timestamp;

fuzz_target!(|data: &[u8]| {
    let mut parser = SmtpParser::default();
    let mut out = Vec::new();
    let mut rest = data;
    let mut ts = Timestamp::from_secs(1);
    while let [control, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (chunk, after) = tail.split_at(len);
        rest = after;
        let dir = if control & 1 == 0 { Direction::Ctos } else { Direction::Stoc };
        ts = Timestamp(ts.micros() + 1);
        if control & 0xf0 == 0xf0 {
            parser.on_gap(dir, u64::from(*control & 0x0f) * 100 + len as u64);
        } else {
            parser.parse(dir, chunk, ts, &mut out);
        }
    }
    parser.finish(ts, &mut out);
    for output in out {
        let AppEvent::Smtp(record) = output.event else {
            panic!("the SMTP parser writes smtp events only");
        };
        let smtp = serde_json::to_string(&record.smtp).expect("smtp serialises");
        assert!(smtp.len() < 256 * 1024, "capped: {} bytes", smtp.len());
        if let Some(email) = &record.email {
            let email = serde_json::to_string(email).expect("email serialises");
            assert!(email.len() < 512 * 1024, "capped: {} bytes", email.len());
        }
    }
});
