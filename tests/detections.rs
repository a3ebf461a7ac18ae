//! The detections on their generated captures (`pcaps/detect-*.pcap`, made by
//! `generator/src/detections.rs`), each with both sides of its threshold, under the test rules
//! in `tests/rules/`; with one worker and with two, which must agree.

mod common;

use serde_json::Value;

use common::{final_stats, of_type, replay, root};

fn run(name: &str, workers: &str) -> Vec<Value> {
    replay(
        &["--rules", "tests/rules", "--workers", workers],
        &[&root().join(format!("pcaps/{name}.pcap"))],
    )
}

/// The detections' alerts of a capture (not the fingerprint rules', ids 9100000 and up) as
/// (signature, host), after checking that two workers agree on all alerts.
fn alerts(name: &str) -> (Vec<Value>, Vec<(String, String)>) {
    let one = run(name, "1");
    let two = run(name, "2");
    let pick = |events: &[Value]| -> Vec<Value> {
        let mut a: Vec<Value> = of_type(events, "alert").into_iter().cloned().collect();
        a.sort_by_key(|e| e.to_string());
        a
    };
    assert_eq!(pick(&one), pick(&two), "{name}: 1 and 2 workers");
    let detections: Vec<Value> = pick(&one)
        .into_iter()
        .filter(|e| e["alert"]["signature_id"].as_u64() < Some(9_100_000))
        .collect();
    let list = detections
        .iter()
        .map(|e| {
            (
                e["alert"]["signature"].as_str().unwrap_or("").to_string(),
                e["alert"]["host"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    (detections, list)
}

/// Replays a detection capture with the test assets and this `detections.toml`.
fn replay_with_detections(tag: &str, detections: &str, pcap: &str) -> Vec<Value> {
    let dir = std::env::temp_dir().join(format!("spamtap-rules-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::copy(
        root().join("tests/rules/assets.toml"),
        dir.join("assets.toml"),
    )
    .expect("copy");
    std::fs::write(dir.join("detections.toml"), detections).expect("write");
    let events = replay(
        &["--rules", dir.to_str().expect("utf-8")],
        &[&root().join(format!("pcaps/{pcap}.pcap"))],
    );
    let _ = std::fs::remove_dir_all(&dir);
    events
}

fn pair(signature: &str, host: &str) -> (String, String) {
    (signature.to_string(), host.to_string())
}

#[test]
fn excessive_outbound_mail_counts_accepted_outside_recipients_in_the_window() {
    let (events, list) = alerts("detect-excessive-mail");
    assert_eq!(
        list,
        vec![pair("excessive_outbound_mail", "10.20.1.10")],
        "401 alerts; 399 (plus internal and refused) and 500 spread past the window do not"
    );
    let a = &events[0]["alert"];
    assert_eq!(a["sender"], "newsletter@corp.example.org");
    assert_eq!(a["sender_type"], "mail_from");
    assert_eq!(
        (a["count"].as_u64(), a["threshold"].as_u64()),
        (Some(401), Some(400))
    );
    assert_eq!(a["window"], 900);
    assert_eq!(a["severity"], 1);
    assert_eq!(a["messages_total"], 9);
    let messages = a["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 9);
    assert_eq!(messages[0]["recipients"], 50);
    assert_eq!(messages[0]["subject"], "Offer 0");
    assert_eq!(
        messages[0]["rcpt_to"].as_array().map(Vec::len),
        Some(10),
        "listed capped"
    );
    assert!(
        messages[0]["rcpt_to"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|r| r.as_str().is_some_and(|r| r.ends_with("@example.net"))),
        "only accepted outside recipients are listed"
    );
    // Tied to the flow that crossed the threshold.
    assert_eq!(events[0]["src_ip"], "10.20.1.10");
    assert_eq!(events[0]["dest_ip"], "10.0.0.25");
}

#[test]
fn excessive_outbound_mail_counts_the_estimate_of_encrypted_submissions() {
    let (events, list) = alerts("detect-encrypted-mail");
    assert_eq!(list, vec![pair("excessive_outbound_mail", "10.20.1.30")]);
    let a = &events[0]["alert"];
    // No envelope is visible: the client stands for the sender, and the alert says how many
    // recipients are estimates.
    assert_eq!(
        (a["sender"].as_str(), a["sender_type"].as_str()),
        (Some("10.20.1.30"), Some("client_ip"))
    );
    assert_eq!(
        (a["count"].as_u64(), a["estimated_recipients"].as_u64()),
        (Some(450), Some(450))
    );
    let messages = a["messages"].as_array().expect("messages");
    assert!(
        messages
            .iter()
            .all(|m| m["estimated"] == true && m["recipients"] == 90)
    );
}

#[test]
fn excessive_outbound_mail_sender_can_be_the_client() {
    let by_client = |threshold: u32| {
        replay_with_detections(
            "client",
            &format!(
                "[excessive_outbound_mail]\nsender = \"client_ip\"\nthreshold = {threshold}\n"
            ),
            "detect-excessive-mail",
        )
    };
    // Per client: 10.20.1.10 has 401, 10.20.1.11 399, 10.20.1.12 300 in its window; none
    // reaches 450.
    let events = by_client(450);
    let alerts = of_type(&events, "alert");
    assert!(alerts.is_empty(), "{alerts:?}");
    let events = by_client(300);
    let mut senders: Vec<&str> = of_type(&events, "alert")
        .iter()
        .filter_map(|a| a["alert"]["sender"].as_str())
        .collect();
    senders.sort();
    assert_eq!(
        senders,
        vec!["10.20.1.10", "10.20.1.11"],
        "300 is not above 300"
    );
}

#[test]
fn policy_violations_by_deny_and_relay_only_hosts() {
    let (events, list) = alerts("detect-policy");
    assert_eq!(
        list,
        vec![
            pair("smtp_policy_violation", "10.30.0.5"),
            pair("smtp_policy_violation", "10.20.2.21"),
        ]
    );
    let reason = |host: &str| {
        events
            .iter()
            .find(|e| e["alert"]["host"] == host)
            .map(|e| (e["alert"]["group"].clone(), e["alert"]["reason"].clone()))
    };
    assert_eq!(
        reason("10.30.0.5"),
        Some((
            Value::from("web_servers"),
            Value::from("smtp_client_in_deny_group")
        ))
    );
    assert_eq!(
        reason("10.20.2.21"),
        Some((
            Value::from("workstations"),
            Value::from("smtp_to_unsanctioned_server")
        ))
    );
}

#[test]
fn direct_smtp_attempts_counted_per_host_and_window() {
    let (events, list) = alerts("detect-direct-smtp");
    assert_eq!(list, vec![pair("direct_smtp_attempt", "10.20.3.30")]);
    let a = &events[0]["alert"];
    assert_eq!(a["count"], 3);
    assert_eq!(
        a["servers"],
        serde_json::json!(["203.0.113.10", "203.0.113.11", "203.0.113.12"])
    );
}

#[test]
fn blocklisted_peers_name_the_list_and_line() {
    let (events, list) = alerts("detect-blocklist");
    assert_eq!(
        list,
        vec![
            pair("blocklisted_peer", "10.0.0.25"),
            pair("blocklisted_peer", "10.20.4.41"),
        ],
        "one alert for two connections to the same listed server; none for the unlisted"
    );
    for e in &events {
        assert_eq!(e["alert"]["list"], "blocklists/drop.txt");
        assert_eq!(e["alert"]["line"], 3);
        assert_eq!(e["alert"]["entry"], "198.18.66.0/24");
        assert_eq!(e["alert"]["reference"], "SBL666");
    }
    let roles: Vec<&Value> = events.iter().map(|e| &e["alert"]["peer_role"]).collect();
    assert_eq!(roles, vec!["smtp_server", "socks_server"]);
}

#[test]
fn client_surge_against_the_baseline() {
    let (events, list) = alerts("detect-surge");
    assert_eq!(
        list,
        vec![pair("smtp_client_surge", "")],
        "workstations only, not lab"
    );
    let a = &events[0]["alert"];
    assert_eq!(a["group"], "workstations");
    assert_eq!(
        (a["clients"].as_u64(), a["baseline"].as_f64()),
        (Some(12), Some(2.0))
    );
    assert_eq!(events[0]["timestamp"], "2026-01-01T05:00:00.000000+0000");
    // Hourly summaries, then one at the end.
    let all = run("detect-surge", "1");
    let summaries = of_type(&all, "asset_summary");
    let clients: Vec<(String, u64)> = summaries
        .iter()
        .filter(|s| s["asset_summary"]["group"] == "lab")
        .map(|s| {
            (
                s["timestamp"].as_str().unwrap_or("").to_string(),
                s["asset_summary"]["smtp_clients"]["active"]
                    .as_u64()
                    .unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        clients,
        vec![
            ("2026-01-01T01:00:00.000000+0000".to_string(), 4),
            ("2026-01-01T02:00:00.000000+0000".to_string(), 4),
            ("2026-01-01T03:00:00.000000+0000".to_string(), 4),
            ("2026-01-01T04:00:00.000000+0000".to_string(), 4),
            ("2026-01-01T05:00:00.000000+0000".to_string(), 11),
            ("2026-01-01T05:01:00.001600+0000".to_string(), 0),
        ]
    );
    let lab5 = summaries
        .iter()
        .find(|s| {
            s["asset_summary"]["group"] == "lab"
                && s["timestamp"] == "2026-01-01T05:00:00.000000+0000"
        })
        .expect("lab at 05:00");
    let c = &lab5["asset_summary"]["smtp_clients"];
    assert_eq!(
        (c["total"].as_u64(), c["new"].as_u64()),
        (Some(11), Some(7))
    );
    assert_eq!(c["new_hosts"].as_array().map(Vec::len), Some(7));
    assert_eq!(lab5["asset_summary"]["policy"], "allow");
}

#[test]
fn auth_bruteforce_counts_each_failure_once() {
    let (events, list) = alerts("detect-auth-bruteforce");
    assert_eq!(list, vec![pair("smtp_auth_bruteforce", "198.51.100.66")]);
    let a = &events[0]["alert"];
    assert_eq!(
        (a["count"].as_u64(), a["server"].as_str()),
        (Some(10), Some("10.0.0.25"))
    );
}

#[test]
fn smtp_through_a_proxy_alerts_once_per_client_and_proxy() {
    let (events, list) = alerts("detect-smtp-over-socks");
    assert_eq!(list, vec![pair("smtp_over_socks", "10.20.7.70")]);
    let a = &events[0]["alert"];
    assert_eq!(a["tunnel_type"], "socks5");
    assert_eq!(
        (a["proxy"].as_str(), a["proxy_port"].as_u64()),
        (Some("198.51.100.80"), Some(1080))
    );
    assert_eq!(
        (a["dest_host"].as_str(), a["dest_port"].as_u64()),
        (Some("203.0.113.25"), Some(25))
    );
}

#[test]
fn detection_state_is_counted_in_stats() {
    let events = run("detect-excessive-mail", "2");
    let analysis = &final_stats(&events)["analysis"];
    assert_eq!(analysis["observations"], 22, "one per smtp event");
    assert_eq!(analysis["observation_drops"], 0);
    assert_eq!(analysis["tracked_refused"], 0);
    assert_eq!(final_stats(&events)["events"]["alert"], 1);
}

#[test]
fn capped_state_is_counted_not_lost() {
    let events = replay_with_detections(
        "caps",
        "[limits]\nmax_tracked = 2\nmax_window_entries = 2\nmax_group_hosts = 1\n",
        "detect-excessive-mail",
    );
    let analysis = &final_stats(&events)["analysis"];
    assert!(analysis["tracked_refused"].as_u64() > Some(0), "{analysis}");
    assert!(analysis["window_merges"].as_u64() > Some(0), "{analysis}");
    assert!(
        analysis["group_host_drops"].as_u64() > Some(0),
        "{analysis}"
    );
    // Two senders start at 0 s and get a window each; the third (at 30 s) is refused and
    // counted. The windows fold their entries, yet the count is exact.
    let alert = of_type(&events, "alert");
    assert_eq!(alert.len(), 1);
    assert_eq!(alert[0]["alert"]["count"], 401);
    assert_eq!(alert[0]["alert"]["messages_total"], 2);
}
