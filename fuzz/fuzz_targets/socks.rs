//! The SOCKS parser on its own, with the tunnel's inner detection, fed both directions in
//! fuzzer-chosen chunks with gaps: it must never panic, and its events must serialise.
//! Input: see `script.rs`.

#![no_main]

mod script;

use libfuzzer_sys::fuzz_target;
use spamtap::protocols::socks::SocksParser;
use spamtap::timestamp::Timestamp;

fuzz_target!(|data: &[u8]| {
    let mut parser = SocksParser::new(0);
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
    let mut socks_events = 0;
    for output in &out {
        let mut map = serde_json::Map::new();
        let mut ser = MapWriter(&mut map);
        output.event.write_fields(&mut ser).expect("serialises");
        if output.event.event_type() == "socks" && output.tunnel.is_none() {
            socks_events += 1;
        }
    }
    assert!(socks_events <= 1, "one socks event per connection");
});

/// Collects `write_fields` output into a JSON map.
struct MapWriter<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl serde::ser::SerializeMap for MapWriter<'_> {
    type Ok = ();
    type Error = serde_json::Error;
    fn serialize_key<T: ?Sized + serde::Serialize>(&mut self, _key: &T) -> Result<(), Self::Error> {
        unreachable!("serialize_entry is used")
    }
    fn serialize_value<T: ?Sized + serde::Serialize>(&mut self, _value: &T) -> Result<(), Self::Error> {
        unreachable!("serialize_entry is used")
    }
    fn serialize_entry<K: ?Sized + serde::Serialize, V: ?Sized + serde::Serialize>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), Self::Error> {
        let key = serde_json::to_value(key)?.as_str().unwrap_or_default().to_string();
        self.0.insert(key, serde_json::to_value(value)?);
        Ok(())
    }
    fn end(self) -> Result<(), Self::Error> {
        Ok(())
    }
}
