//! Encrypted mail from real programs: postfix with STARTTLS on 25 and 587 and implicit TLS on
//! 465 (`tests/real/network.sh`), swaks, Python's smtplib and curl as clients
//! (`tests/real/tls_clients.sh`: with and without PIPELINING, TLS 1.2 and 1.3 forced in turn,
//! 1 to 50 recipients, several messages a session). tcpdump captures the client's veth end;
//! spamtap replays the capture. The truth is postfix's own log: one `nrcpt=` line per queued
//! message, joined to the session by the client port (`smtpd_client_port_logging`).
//!
//! Prints the estimate's accuracy as a table and fails when recipients or messages are exact
//! in fewer than 95% of the sessions, or when a session has no estimate or no `tls` event.
//! Needs root and `bash tests/deps.sh --test`. Alone: `sudo cargo test --test real_tls`.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use common::{Network, of_type, replay, require, root};

/// Postfix's sessions in the order they connected, each with its client port and the
/// messages it queued: (port, messages, recipients of those messages). A port the kernel gave
/// out twice is two sessions.
fn postfix_sessions(maillog: &str) -> Vec<(u64, u64, u64)> {
    let mut sessions: Vec<(u64, u64, u64)> = Vec::new();
    // smtpd process -> its current session; queue id -> the session that queued it.
    let mut current: BTreeMap<String, usize> = BTreeMap::new();
    let mut queued_by: BTreeMap<String, usize> = BTreeMap::new();
    for line in maillog.lines() {
        let Some((head, rest)) = line.split_once("]: ") else {
            continue;
        };
        // "Dec 02 00:59:06 mx postfix/smtpd[8310": the process, without the time.
        let process = head.rsplit(' ').next().unwrap_or(head);
        let port = |text: &str| {
            text.split_once("]:")
                .and_then(|(_, p)| p.split(',').next())
                .and_then(|p| p.trim().parse::<u64>().ok())
        };
        if let Some(client) = rest.strip_prefix("connect from ") {
            if let Some(port) = port(client) {
                current.insert(process.to_string(), sessions.len());
                sessions.push((port, 0, 0));
            }
            continue;
        }
        let Some((queue_id, what)) = rest.split_once(": ") else {
            continue;
        };
        if what.starts_with("client=") {
            if let Some(&session) = current.get(process) {
                queued_by.insert(queue_id.to_string(), session);
            }
        } else if line.contains("postfix/qmgr[") && what.starts_with("from=") {
            let nrcpt = what
                .split("nrcpt=")
                .nth(1)
                .and_then(|n| n.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok());
            if let (Some(nrcpt), Some(&session)) = (nrcpt, queued_by.get(queue_id)) {
                sessions[session].1 += 1;
                sessions[session].2 += nrcpt;
            }
        }
    }
    sessions
}

/// The events of `event_type` per client port, in the order their flows started.
fn by_port<'a>(events: &'a [Value], event_type: &str) -> BTreeMap<u64, Vec<&'a Value>> {
    let mut out: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for e in of_type(events, event_type) {
        out.entry(e["src_port"].as_u64().unwrap_or(0))
            .or_default()
            .push(e);
    }
    for list in out.values_mut() {
        list.sort_by_key(|e| e["timestamp"].as_str().unwrap_or("").to_string());
    }
    out
}

#[test]
fn encrypted_sessions_of_real_programs_are_estimated_from_their_records() {
    require(&[
        "ip",
        "tcpdump",
        "postfix",
        "swaks",
        "curl",
        "python3",
        "saslpasswd2",
    ]);
    let (mut net, iface) = Network::up("real-tls");
    let dir = net.dir.clone();
    let pcap = dir.join("tls.pcap");
    net.children.push(common::start_tcpdump(&iface, &pcap));
    let clients = Command::new("bash")
        .arg(root().join("tests/real/tls_clients.sh"))
        .arg(&dir)
        .output()
        .expect("tls_clients.sh runs");
    assert!(clients.status.success(), "tls_clients.sh failed");
    let mut tcpdump = net.children.remove(0);
    common::interrupt(&mut tcpdump, "tcpdump", Duration::from_secs(20));
    let maillog = std::fs::read_to_string(dir.join("maillog")).unwrap_or_default();
    // Sessions that queued nothing (the readiness probes of network.sh) are not compared.
    let sessions: Vec<(u64, u64, u64)> = postfix_sessions(&maillog)
        .into_iter()
        .filter(|s| s.1 > 0)
        .collect();
    assert_eq!(
        sessions.iter().map(|s| s.1).sum::<u64>(),
        69,
        "every message of tls_clients.sh was queued: {maillog}"
    );

    let events = replay(&[], &[&pcap]);
    let smtp = by_port(&events, "smtp");
    let tls = by_port(&events, "tls");
    // The k-th session from a port is the k-th flow from it.
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();

    // One row per session: what postfix logged, what the estimate says.
    let mut rows = Vec::new();
    let mut versions = BTreeMap::new();
    for &(port, messages, recipients) in &sessions {
        let k = *seen.entry(port).and_modify(|k| *k += 1).or_insert(0);
        let event = smtp
            .get(&port)
            .and_then(|list| list.get(k))
            .unwrap_or_else(|| panic!("no smtp event for session {k} from port {port}"));
        let estimate = &event["smtp"]["encrypted"];
        assert!(estimate.is_object(), "no estimate for port {port}: {event}");
        let t = tls
            .get(&port)
            .and_then(|list| list.get(k))
            .unwrap_or_else(|| panic!("no tls event for session {k} from port {port}"));
        assert_eq!(t["tls"]["established"], true, "{t}");
        assert_eq!(
            t["flow_id"], event["flow_id"],
            "the two events are one flow"
        );
        let dest_port = event["dest_port"].as_u64().unwrap_or(0);
        let expected_from = if dest_port == 465 {
            Value::Null
        } else {
            "smtp".into()
        };
        assert_eq!(t["tls"]["from_proto"], expected_from, "{t}");
        let version = t["tls"]["version"].as_str().unwrap_or("none").to_string();
        *versions.entry(version.clone()).or_insert(0) += 1;
        rows.push((
            port,
            dest_port,
            version,
            messages,
            recipients,
            estimate["transactions"].as_u64().unwrap_or(u64::MAX),
            estimate["recipients"].as_u64().unwrap_or(u64::MAX),
            estimate["confidence"].as_str().unwrap_or("").to_string(),
        ));
    }
    assert!(
        versions.contains_key("TLS 1.2") && versions.contains_key("TLS 1.3"),
        "both versions were forced: {versions:?}"
    );

    let exact_recipients = rows.iter().filter(|r| r.4 == r.6).count();
    let exact_messages = rows.iter().filter(|r| r.3 == r.5).count();
    let mut errors: BTreeMap<i64, usize> = BTreeMap::new();
    for r in &rows {
        *errors.entry(r.6 as i64 - r.4 as i64).or_insert(0) += 1;
    }
    println!("| sessions | messages exact | recipients exact |");
    println!("|---|---|---|");
    println!("| {} | {exact_messages} | {exact_recipients} |", rows.len());
    println!("recipient error (estimate - postfix) -> sessions: {errors:?}");
    let mut confidence: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &rows {
        *confidence.entry(r.7.as_str()).or_insert(0) += 1;
    }
    println!("confidence -> sessions: {confidence:?}");
    for r in rows.iter().filter(|r| r.3 != r.5 || r.4 != r.6) {
        println!(
            "port {} to {} {}: postfix {} messages {} recipients, estimate {} / {} ({})",
            r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7
        );
    }
    assert!(
        exact_recipients * 100 >= rows.len() * 95 && exact_messages * 100 >= rows.len() * 95,
        "recipients exact in {exact_recipients} and messages in {exact_messages} of {} sessions",
        rows.len()
    );
}
