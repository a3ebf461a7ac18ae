//! The TLS parser (record framing, handshake reassembly, hellos, certificates, the transcript)
//! fed both directions in fuzzer-chosen chunks with gaps, through the driver every parser
//! target shares (`script.rs`).

#![no_main]

mod script;

use libfuzzer_sys::fuzz_target;
use spamtap::protocols::tls::TlsParser;

fuzz_target!(|data: &[u8]| script::fuzz_parser::<TlsParser>(data));
