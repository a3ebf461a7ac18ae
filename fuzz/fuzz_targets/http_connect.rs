//! The HTTP CONNECT parser with the detection inside its tunnel, fed both directions in
//! fuzzer-chosen chunks with gaps, through the driver every parser target shares (`script.rs`).

#![no_main]

mod script;

use libfuzzer_sys::fuzz_target;
use spamtap::protocols::http_connect::HttpConnectParser;

fuzz_target!(|data: &[u8]| script::fuzz_parser::<HttpConnectParser>(data));
