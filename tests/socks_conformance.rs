//! SOCKS conformance: spamtap's `socks` events against Zeek's socks.log for the same captures
//! in `../shared/corpus` (every column but `password`, which spamtap never keeps: the
//! connection, version, user, status, request host/name/port, bound host/name/port), the
//! tunnels of Zeek's tunnel.log against spamtap's `socks` events and `tunnel` objects, and no
//! `socks` event on captures that hold no SOCKS, whatever their ports.

mod common;

use std::fs;

use serde_json::Value;

use common::{corpus, corpus_names, of_type, replay, spamtap, zeek_rows};

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn socks_agrees_with_zeek() {
    let dir = corpus().join("zeek");
    let (mut compared, mut matched, mut logs) = (0u32, 0u32, 0u32);
    let mut differences = Vec::new();
    for name in corpus_names("zeek", |n| n.contains("socks.log")) {
        let pcap = dir.join(name.split(".zeek-").next().expect("capture"));
        logs += 1;
        let events = replay(&[], &[&pcap]);
        let socks = of_type(&events, "socks");
        for row in zeek_rows(&dir.join(&name)) {
            let ours = socks
                .iter()
                .find(|e| e["src_port"].as_u64() == row["id.orig_p"].parse().ok())
                .copied()
                .unwrap_or(&Value::Null);
            let s = &ours["socks"];
            let pairs = [
                ("id.orig_h", text(&ours["src_ip"])),
                ("id.resp_h", text(&ours["dest_ip"])),
                ("id.resp_p", text(&ours["dest_port"])),
                ("version", text(&s["version"])),
                ("user", text(&s["user"])),
                ("status", text(&s["status"])),
                ("request.host", text(&s["request"]["host"])),
                ("request.name", text(&s["request"]["name"])),
                ("request_p", text(&s["request"]["port"])),
                ("bound.host", text(&s["bound"]["host"])),
                ("bound.name", text(&s["bound"]["name"])),
                ("bound_p", text(&s["bound"]["port"])),
            ];
            for (column, our_value) in pairs {
                let Some(theirs) = row.get(column) else {
                    continue;
                };
                compared += 1;
                if *theirs == our_value {
                    matched += 1;
                } else {
                    differences.push(format!(
                        "{name} {column}: Zeek {theirs:?}, spamtap {our_value:?}"
                    ));
                }
            }
        }
    }
    eprintln!("SOCKS conformance: {matched} of {compared} fields agree over {logs} Zeek socks.log");
    assert!(logs >= 4, "socks.log baselines found: {logs}");
    assert!(compared >= 30, "fields compared: {compared}");
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// Every tunnel Zeek discovers (tunnel.log, `Tunnel::DISCOVER`) spamtap reports: a SOCKS one
/// as a `socks` event that succeeded, an HTTP one as the `tunnel` object of the session inside
/// it, between the same client and proxy.
#[test]
fn tunnels_agree_with_zeek() {
    let dir = corpus().join("zeek");
    let mut checked = 0;
    for name in corpus_names("zeek", |n| n.ends_with("tunnel.log")) {
        let pcap = dir.join(name.split(".zeek-").next().expect("capture"));
        let events = replay(&[], &[&pcap]);
        for row in zeek_rows(&dir.join(&name)) {
            if row["action"] != "Tunnel::DISCOVER" {
                continue;
            }
            let same_ends = |e: &Value, ip: &Value, port: &Value| {
                text(&e["src_ip"]) == row["id.orig_h"]
                    && text(ip) == row["id.resp_h"]
                    && text(port) == row["id.resp_p"]
            };
            let found = match row["tunnel_type"].as_str() {
                "Tunnel::SOCKS" => of_type(&events, "socks").iter().any(|e| {
                    same_ends(e, &e["dest_ip"], &e["dest_port"])
                        && e["socks"]["status"] == "succeeded"
                }),
                "Tunnel::HTTP" => events.iter().any(|e| {
                    e["tunnel"]["type"] == "http_connect"
                        && same_ends(e, &e["tunnel"]["proxy_ip"], &e["tunnel"]["proxy_port"])
                }),
                other => panic!("{name}: tunnel type {other} not compared"),
            };
            assert!(found, "{name}: spamtap has no tunnel for {row:?}");
            checked += 1;
        }
    }
    assert!(checked >= 6, "tunnels compared: {checked}");
}

/// Captures known to hold SOCKS; every other corpus capture must give no `socks` event, even
/// plain HTTP on port 1080 and a worm's binary protocol on 1080.
const WITH_SOCKS: &[&str] = &[
    "zeek/socks.pcap",
    "zeek/socks-auth.pcap",
    "zeek/socks-auth-10080.pcap",
    "zeek/socks-with-ssl.pcap",
    "zeek/tunnels__socks.pcap",
    "mercury/socks4_5.pcap",
    "mercury/emix.pcap",
];

#[test]
fn no_socks_where_there_is_none() {
    let mut checked = 0;
    for dir in fs::read_dir(corpus()).expect("corpus") {
        let dir = dir.expect("entry").path();
        if !dir.is_dir() {
            continue;
        }
        for f in fs::read_dir(&dir).expect("listing") {
            let path = f.expect("entry").path();
            let rel = path
                .strip_prefix(corpus())
                .expect("inside corpus")
                .to_string_lossy()
                .into_owned();
            if !(rel.ends_with(".pcap") || rel.ends_with(".pcapng")) {
                continue;
            }
            let out = spamtap(&["replay", "--sensor", "t", path.to_str().expect("utf-8")]);
            let events = common::parse_lines(&out.stdout);
            let n = of_type(&events, "socks").len();
            if WITH_SOCKS.contains(&rel.as_str()) {
                assert!(n > 0, "{rel}: SOCKS expected");
            } else {
                assert_eq!(n, 0, "{rel}: no SOCKS in it");
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "negative captures checked: {checked}");
}

/// mercury's own tests expect SOCKS in six connections of socks4_5.pcap (its ten records count
/// requests and replies apart); spamtap gives one event per connection.
#[test]
fn mercury_socks_connections() {
    let events = replay(&[], &[&corpus().join("mercury/socks4_5.pcap")]);
    let mut socks = of_type(&events, "socks");
    socks.sort_by_key(|e| e["src_port"].as_u64());
    let versions: Vec<String> = socks.iter().map(|e| text(&e["socks"]["version"])).collect();
    assert_eq!(versions, vec!["4", "4", "5", "5", "5", "5"]);
    let statuses: Vec<String> = socks.iter().map(|e| text(&e["socks"]["status"])).collect();
    assert!(statuses.contains(&"authentication failed".to_string()));
    assert!(statuses.contains(&"no acceptable authentication method".to_string()));
}
