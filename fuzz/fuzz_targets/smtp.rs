//! The SMTP parser, fed both directions in fuzzer-chosen chunks with gaps, through the
//! driver every parser target shares (`script.rs`).

#![no_main]

mod script;

use libfuzzer_sys::fuzz_target;
use spamtap::protocols::smtp::SmtpParser;

fuzz_target!(|data: &[u8]| script::fuzz_parser::<SmtpParser>(data));
