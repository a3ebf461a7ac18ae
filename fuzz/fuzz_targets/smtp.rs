//! The SMTP parser on its own, fed both directions in fuzzer-chosen chunks with gaps: it must
//! never panic, and every event must serialise to JSON within the caps.
//! Input: see `script.rs`.

#![no_main]

mod script;

use libfuzzer_sys::fuzz_target;
use spamtap::protocols::AppEvent;
use spamtap::protocols::smtp::SmtpParser;
use spamtap::timestamp::Timestamp;

fuzz_target!(|data: &[u8]| {
    let mut parser = SmtpParser::default();
    let mut out = Vec::new();
    let mut ts = Timestamp::from_secs(1);
    for step in script::steps(data) {
        ts = Timestamp(ts.micros() + 1);
        match step {
            script::Step::Data(dir, chunk) => parser.parse(dir, chunk, ts, &mut out),
            script::Step::Gap(dir, len) => parser.on_gap(dir, len),
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
