//! The SOCKS parser with the detection inside its tunnel, fed both directions in
//! fuzzer-chosen chunks with gaps, through the driver every parser target shares (`script.rs`).

#![no_main]

mod script;

use libfuzzer_sys::fuzz_target;
use spamtap::protocols::socks::SocksParser;

fuzz_target!(|data: &[u8]| script::fuzz_parser::<SocksParser>(data));
