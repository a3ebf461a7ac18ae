//! Seed inputs for the fuzz targets (`fuzz/seeds/<target>/`), made from the named scenarios so
//! every fuzzing run starts from traffic that reaches deep: `frames` gets each scenario's first
//! frames in its input format; the parser targets (`smtp`, `socks`, `http_connect`, `tls`) get
//! each TCP connection of the scenarios that speak their protocol, both directions in capture
//! order, in the script format of `fuzz/fuzz_targets/script.rs`.

use std::collections::BTreeMap;
use std::path::Path;

use spamtap::capture::LinkType;
use spamtap::decode::{DecodeStats, Decoded, decode};

use super::scenarios::Scenario;

/// Frames per `frames` seed, and bytes per parser seed: enough to get past the handshakes.
const FRAMES_PER_SEED: usize = 64;
const SCRIPT_BYTES: usize = 8192;

/// Which parser target a scenario's connections seed, by its name.
fn parser_target(scenario: &str) -> Option<&'static str> {
    match scenario {
        s if s.starts_with("tls") || s == "smtp-starttls" || s == "detect-encrypted-mail" => {
            Some("tls")
        }
        s if s.starts_with("socks") || s == "detect-smtp-over-socks" => Some("socks"),
        "http-connect" => Some("http_connect"),
        s if s.starts_with("smtp") || s.starts_with("fingerprint") || s.starts_with("detect") => {
            Some("smtp")
        }
        _ => None,
    }
}

/// Writes the seeds of `scenarios` under `dir/<target>/<scenario>[-<n>]`; returns how many.
pub fn write_seeds(dir: &Path, scenarios: &[Scenario]) -> std::io::Result<usize> {
    let mut written = 0;
    for scenario in scenarios {
        let Some(link) = LinkType::from_linktype(scenario.link.dlt()) else {
            continue;
        };
        // frames: a link selector (0 is Ethernet in the target's list), then (u16 le, frame).
        if link == LinkType::Ethernet {
            let mut seed = vec![0u8];
            for frame in scenario.frames.iter().take(FRAMES_PER_SEED) {
                let len = frame.data.len().min(usize::from(u16::MAX));
                seed.extend((len as u16).to_le_bytes());
                seed.extend(&frame.data[..len]);
            }
            write(dir, "frames", scenario.name, &seed)?;
            written += 1;
        }
        let Some(target) = parser_target(scenario.name) else {
            continue;
        };
        // One script per connection: (direction bit, u8 length, bytes) records.
        let mut scripts: BTreeMap<(String, u16, String, u16), Vec<u8>> = BTreeMap::new();
        let mut stats = DecodeStats::default();
        for frame in &scenario.frames {
            let Decoded::Tcp(seg) = decode(link, &frame.data, &mut stats) else {
                continue;
            };
            if seg.payload.is_empty() {
                continue;
            }
            let (a, b) = (
                (seg.src.to_string(), seg.src_port),
                (seg.dst.to_string(), seg.dst_port),
            );
            // The client is the side with the higher port, as the sensor guesses mid-stream.
            let to_server = seg.src_port > seg.dst_port;
            let key = if to_server {
                (a.0, a.1, b.0, b.1)
            } else {
                (b.0, b.1, a.0, a.1)
            };
            let script = scripts.entry(key).or_default();
            for chunk in seg.payload.chunks(255) {
                if script.len() + 2 + chunk.len() > SCRIPT_BYTES {
                    break;
                }
                script.push(if to_server { 0 } else { 1 });
                script.push(chunk.len() as u8);
                script.extend(chunk);
            }
        }
        for (n, script) in scripts.values().enumerate() {
            write(dir, target, &format!("{}-{n}", scenario.name), script)?;
            written += 1;
        }
    }
    Ok(written)
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let target_dir = dir.join(target);
    std::fs::create_dir_all(&target_dir)?;
    std::fs::write(target_dir.join(name), bytes)
}
