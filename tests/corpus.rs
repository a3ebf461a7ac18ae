//! The sensor core against captures nobody on this team wrote (`../shared/corpus`): every one
//! replays without error, and flows agree with Zeek's conn.log where the corpus has one.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{corpus, final_stats, of_type, replay, spamtap, zeek_rows};

/// Captures libpcap reads directly (the `.gz` ones are for the protocol issues).
fn captures() -> Vec<PathBuf> {
    let mut all = Vec::new();
    for dir in fs::read_dir(corpus()).expect("corpus listing") {
        let dir = dir.expect("entry").path();
        if !dir.is_dir() {
            continue;
        }
        for f in fs::read_dir(&dir).expect("listing") {
            let p = f.expect("entry").path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.ends_with(".pcap") || name.ends_with(".pcapng") {
                all.push(p);
            }
        }
    }
    all.sort();
    all
}

/// Known bad on purpose (corpus README): corrupt after 18 packets.
fn known_corrupt(p: &Path) -> bool {
    p.to_string_lossy().contains("smtp-to-comma")
}

#[test]
fn every_corpus_capture_replays_cleanly() {
    let all = captures();
    assert!(all.len() > 100, "corpus has its captures ({})", all.len());
    for pcap in all {
        let path = pcap.to_str().expect("utf-8 path");
        let out = spamtap(&["replay", "--sensor", "corpus", "--workers", "2", path]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{path}: {err}");
        let events = common::parse_lines(&out.stdout);
        assert!(!of_type(&events, "stats").is_empty(), "{path}: final stats");
        if known_corrupt(&pcap) {
            assert_eq!(out.status.code(), Some(1), "{path}");
            assert!(err.contains("record 19"), "{path}: {err}");
            continue;
        }
        assert!(out.status.success(), "{path}: {err}");
        for e in &events {
            assert!(
                e["timestamp"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("+0000")),
                "{path}: {e}"
            );
            if e["event_type"] == "flow" {
                for field in [
                    "flow_id",
                    "community_id",
                    "src_ip",
                    "src_port",
                    "dest_ip",
                    "dest_port",
                    "proto",
                ] {
                    assert!(e.get(field).is_some(), "{path}: {field} missing in {e}");
                }
            }
        }
    }
}

fn zeek_state_matches(zeek: &str, ours: &str) -> bool {
    match zeek {
        "SF" => ours == "closed",
        "S0" => ours == "no_answer",
        "REJ" => ours == "rejected",
        "RSTO" | "RSTR" | "RSTOS0" | "RSTRH" => ours == "reset",
        "S1" => ours == "established" || ours == "timeout",
        _ => true,
    }
}

#[test]
fn flows_agree_with_zeek_conn_log() {
    let mut compared = 0;
    let mut logs = 0;
    for dir in fs::read_dir(corpus()).expect("listing") {
        let dir = dir.expect("entry").path();
        if !dir.is_dir() {
            continue;
        }
        for f in fs::read_dir(&dir).expect("listing") {
            let log = f.expect("entry").path();
            let name = log
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if !name.contains("conn.log") {
                continue;
            }
            let rows = zeek_rows(&log);
            if rows.first().is_none_or(|r| !r.contains_key("id.orig_h")) {
                continue;
            }
            let pcap_name = name.split(".zeek-").next().expect("pcap name");
            let pcap = dir.join(pcap_name);
            if pcap_name.ends_with(".gz") || !pcap.is_file() {
                continue;
            }
            logs += 1;
            let events = replay(&["--workers", "2"], &[&pcap]);
            let flows = of_type(&events, "flow");
            for row in rows
                .iter()
                .filter(|r| r.get("proto").is_none_or(|p| p == "tcp"))
            {
                let found = flows.iter().find(|f| {
                    f["src_ip"] == row["id.orig_h"].as_str()
                        && f["src_port"].as_u64() == row["id.orig_p"].parse().ok()
                        && f["dest_ip"] == row["id.resp_h"].as_str()
                        && f["dest_port"].as_u64() == row["id.resp_p"].parse().ok()
                });
                let Some(flow) = found else {
                    panic!("{name}: Zeek's {row:?} has no flow with the same orientation");
                };
                let f = &flow["flow"];
                let num = |k: &str| row.get(k).and_then(|v| v.parse::<u64>().ok());
                if let Some(missed) = num("missed_bytes") {
                    assert_eq!(
                        f["missed_bytes"].as_u64(),
                        Some(missed),
                        "{name} missed_bytes"
                    );
                    if missed == 0 {
                        if let Some(b) = num("orig_bytes") {
                            assert_eq!(
                                f["data_bytes_toserver"].as_u64(),
                                Some(b),
                                "{name} orig_bytes"
                            );
                        }
                        if let Some(b) = num("resp_bytes") {
                            assert_eq!(
                                f["data_bytes_toclient"].as_u64(),
                                Some(b),
                                "{name} resp_bytes"
                            );
                        }
                    }
                }
                if let Some(p) = num("orig_pkts") {
                    assert_eq!(f["pkts_toserver"].as_u64(), Some(p), "{name} orig_pkts");
                }
                if let Some(p) = num("resp_pkts") {
                    assert_eq!(f["pkts_toclient"].as_u64(), Some(p), "{name} resp_pkts");
                }
                if let Some(state) = row.get("conn_state") {
                    let ours = f["state"].as_str().unwrap_or_default();
                    assert!(
                        zeek_state_matches(state, ours),
                        "{name}: Zeek {state}, spamtap {ours}"
                    );
                }
                compared += 1;
            }
        }
    }
    eprintln!("compared {compared} flows from {logs} Zeek conn.log baselines");
    assert!(logs >= 8, "conn.log baselines found: {logs}");
    assert!(compared >= 10, "flows compared: {compared}");
}

#[test]
fn corpus_link_types_decode() {
    // BSD loopback (null) link type.
    let null = replay(&[], &[&corpus().join("zeek/tunnels__socks.pcap")]);
    let flows = of_type(&null, "flow");
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0]["dest_port"], 1080);
    // pcapng.
    let ng = replay(&[], &[&corpus().join("zeek/smtp-bdat-cmd-invalid.pcapng")]);
    assert_eq!(of_type(&ng, "flow").len(), 3);
    // Linux SLL2: only non-TCP in this capture, all decoded without error.
    let sll2 = replay(&[], &[&corpus().join("zeek/linux_dlt_sll2.pcap")]);
    let d = &final_stats(&sll2)["decoder"];
    let errors: u64 = d["errors"]
        .as_object()
        .expect("errors")
        .values()
        .filter_map(|v| v.as_u64())
        .sum();
    assert_eq!(errors, 0, "{d}");
    assert_eq!(
        d["ipv4"].as_u64().unwrap_or(0) + d["ipv6"].as_u64().unwrap_or(0),
        4
    );
    // A one-sided capture still yields its flow and data.
    let one = replay(&[], &[&corpus().join("zeek/smtp-one-side-only.pcap")]);
    let f = &of_type(&one, "flow")[0]["flow"];
    assert!(f["data_bytes_toserver"].as_u64() > Some(1000), "{f}");
    assert_eq!(f["pkts_toclient"], 0);
}
