//! Every event spamtap writes, checked against Suricata 8.0.6's EVE schema
//! (`../shared/eve/schema.json`) by a real JSON Schema validator (python3-jsonschema, installed
//! by `tests/deps.sh --test`), with extra fields allowed: every field both define must match
//! in type and format, the timestamp's pattern included.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::root;

/// Runs tests/eve/validate.py on event lines: its exit status and its stdout and stderr.
fn run_validator(events: &[u8]) -> (bool, String, String) {
    let schema = root().join("../shared/eve/schema.json");
    assert!(
        schema.exists(),
        "{} is missing: the shared directory belongs beside the repository",
        schema.display()
    );
    let mut child = Command::new("/usr/bin/python3")
        .arg(root().join("tests/eve/validate.py"))
        .arg(&schema)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs: bash tests/deps.sh --test installs python3-jsonschema");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = events.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("validator ends");
    let _ = writer.join();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn validate(events: &[u8], what: &str) {
    let (ok, problems, err) = run_validator(events);
    assert!(ok, "{what}: {problems}{err}");
    assert!(err.contains(" events, 0 problems"), "{what}: {err}");
}

#[test]
fn golden_events_match_the_eve_schema() {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(root().join("tests/golden")).expect("golden dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "ndjson") {
            all.extend(std::fs::read(&path).expect("golden file"));
        }
    }
    assert!(all.len() > 100_000, "the golden files are there");
    validate(&all, "tests/golden");
}

#[test]
fn real_program_events_match_the_eve_schema() {
    let out = common::spamtap(&[
        "replay",
        "--sensor",
        "schema",
        root()
            .join("pcaps/real-programs.pcap")
            .to_str()
            .expect("utf-8"),
        root().join("pcaps/real-tls.pcap").to_str().expect("utf-8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    validate(&out.stdout, "real-programs and real-tls");
}

#[test]
fn the_validator_rejects_what_suricata_would() {
    let (ok, problems, _) = run_validator(
        br#"{"timestamp":"2026-01-01T00:00:00.000100Z","event_type":"flow","src_port":"25"}"#,
    );
    assert!(!ok);
    assert!(
        problems.contains("timestamp") && problems.contains("src_port"),
        "{problems}"
    );
}
