//! The shipped fingerprint rules on their generated captures (`pcaps/fingerprint-*.pcap`, made
//! by `generator/src/fingerprints.rs`): every rule is exercised, forgeries are told apart, and
//! near misses stay unnamed.

mod common;

use std::collections::BTreeSet;

use serde_json::Value;

use common::{of_type, replay, root};

fn run(name: &str) -> Vec<Value> {
    replay(
        &["--rules", "tests/rules"],
        &[&root().join(format!("pcaps/{name}.pcap"))],
    )
}

/// (host, rule, name, version, edition, forged) of each `software` event.
fn software(events: &[Value]) -> Vec<(String, String, String, String, String, bool)> {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    of_type(events, "software")
        .iter()
        .map(|e| {
            let w = &e["software"];
            (
                s(&w["host"]),
                s(&w["rule"]),
                s(&w["name"]),
                s(&w["version"]),
                s(&w["edition"]),
                w["forged"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

#[test]
fn every_shipped_rule_has_a_capture_that_matches_it() {
    let text = std::fs::read_to_string(root().join("rules/fingerprints.toml")).expect("rules");
    let table: toml::Table = toml::from_str(&text).expect("toml");
    let shipped: BTreeSet<String> = table["rule"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["name"].as_str().map(str::to_string))
        .collect();
    let mut matched = BTreeSet::new();
    for name in [
        "fingerprint-the-bat",
        "fingerprint-clients",
        "fingerprint-servers",
        "fingerprint-bots",
        // Real clients over TLS: the TLS client rules.
        "real-tls",
    ] {
        for (_, rule, ..) in software(&run(name)) {
            matched.insert(rule);
        }
    }
    let missing: Vec<&String> = shipped.difference(&matched).collect();
    assert!(
        missing.is_empty(),
        "rules no capture exercises: {missing:?}"
    );
}

/// The first habit a forged identification's evidence says was broken.
fn broken_habit(evidence: &str) -> String {
    evidence
        .split("not genuine: ")
        .nth(1)
        .unwrap_or("")
        .split('=')
        .next()
        .unwrap_or("")
        .to_string()
}

/// One message of `tests/mail/the-bat.txt`.
struct RealMessage {
    source: String,
    expect: String,
    helo: String,
    headers: String,
}

fn real_the_bat_messages() -> Vec<RealMessage> {
    let text = std::fs::read_to_string(root().join("tests/mail/the-bat.txt")).expect("fixture");
    let mut messages = Vec::new();
    for entry in text.split("\n\n") {
        let lines: Vec<&str> = entry.lines().filter(|l| !l.starts_with('#')).collect();
        let field = |key: &str| {
            lines
                .iter()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().to_string())
        };
        let (Some(source), Some(expect), Some(helo)) =
            (field("source:"), field("expect:"), field("helo:"))
        else {
            continue;
        };
        let headers: String = lines
            .iter()
            .skip_while(|l| !l.starts_with("helo:"))
            .skip(1)
            .map(|l| format!("{l}\r\n"))
            .collect();
        messages.push(RealMessage {
            source,
            expect,
            helo,
            headers,
        });
    }
    messages
}

/// Real messages of The Bat! from 2001 to 2020 and of programs that borrow its X-Mailer
/// (`tests/mail/the-bat.txt`, each with its source), sent through the sensor: every genuine
/// one is named with its version and edition and none is called forged; each borrowed one is
/// forged, by the habit the file says.
#[test]
fn the_bat_real_messages_across_versions() {
    use spamtap_gen::{Link, PcapWriter};
    let messages = real_the_bat_messages();
    assert!(messages.len() >= 20, "{} messages read", messages.len());
    let scratch = common::Scratch::new("the-bat-real");
    let pcap = scratch.path("the-bat-real.pcap");
    let mut writer = PcapWriter::create(&pcap, &Link::ethernet()).expect("pcap");
    for (i, m) in messages.iter().enumerate() {
        let frames = spamtap_gen::mail_session(
            &format!("10.20.30.{}:40000", i + 1),
            "10.0.0.25:587",
            spamtap_gen::EPOCH.saturating_add_secs(i as u64),
            "220 relay.corp.example.org ESMTP Postfix",
            &format!("EHLO {}", m.helo),
            format!("{}\r\nHello.\r\n.\r\n", m.headers).as_bytes(),
        );
        for frame in &frames {
            writer.write(frame);
        }
    }
    writer.finish().expect("pcap written");
    let events = replay(&["--rules", "tests/rules"], &[&pcap]);
    let smtp = of_type(&events, "smtp");
    assert_eq!(smtp.len(), messages.len(), "one smtp event per message");
    for (i, m) in messages.iter().enumerate() {
        let host = format!("10.20.30.{}", i + 1);
        let event = smtp
            .iter()
            .find(|e| e["src_ip"] == host.as_str())
            .unwrap_or_else(|| panic!("{}: no smtp event", m.source));
        let client = &event["smtp"]["client_software"];
        let mut expect = m.expect.split_whitespace();
        let (version, edition, verdict) = (
            expect.next().unwrap_or_default(),
            expect.next().unwrap_or_default(),
            expect.next().unwrap_or_default(),
        );
        assert_eq!(client["rule"], "the_bat", "{}: {client}", m.source);
        assert_eq!(client["version"], version, "{}", m.source);
        let edition = Some(edition).filter(|e| *e != "-");
        assert_eq!(client["edition"].as_str(), edition, "{}", m.source);
        let software = of_type(&events, "software");
        let evidence = software
            .iter()
            .find(|e| e["software"]["host"] == host.as_str() && e["software"]["rule"] == "the_bat")
            .and_then(|e| e["software"]["evidence"].as_str())
            .unwrap_or_default()
            .to_string();
        match verdict.strip_prefix("forged:") {
            None => assert_eq!(
                (verdict, client["forged"].as_bool()),
                ("genuine", Some(false)),
                "{}: {evidence}",
                m.source
            ),
            Some(habit) => {
                assert_eq!(client["forged"], true, "{}: {evidence}", m.source);
                assert_eq!(broken_habit(&evidence), habit, "{}: {evidence}", m.source);
            }
        }
    }
}

#[test]
fn the_bat_genuine_and_forged() {
    let events = run("fingerprint-the-bat");
    let bats: Vec<_> = software(&events)
        .into_iter()
        .filter(|s| s.1 == "the_bat")
        .map(|(host, _, _, version, edition, forged)| (host, version, edition, forged))
        .collect();
    let row = |h: &str, v: &str, e: &str, f: bool| (h.to_string(), v.to_string(), e.to_string(), f);
    assert_eq!(
        bats,
        vec![
            row("10.20.8.1", "3.99.3", "Professional", false),
            row("10.20.8.2", "4.0.24", "Home", false),
            row("10.20.8.3", "2.00.6", "UNREG", false),
            row("10.20.8.4", "9.2.2.1", "Professional", false),
            row("10.20.8.5", "10.5.4", "Home", false),
            row("10.20.8.6", "1.60q", "", false),
            row("10.20.9.1", "3.99.3", "Professional", true),
            row("10.20.9.2", "3.99.3", "Professional", true),
            row("10.20.9.3", "3.99.3", "Professional", true),
            row("10.20.9.4", "3.99.3", "Professional", true),
        ]
    );
    let broken: Vec<String> = of_type(&events, "software")
        .iter()
        .filter(|e| e["software"]["forged"] == true)
        .filter_map(|e| e["software"]["evidence"].as_str())
        .map(broken_habit)
        .collect();
    assert_eq!(
        broken,
        vec!["boundary", "message_id", "content_type", "header_order"]
    );
    // The rule marks The Bat! unwanted: severity 3, one step higher when forged.
    let severities: Vec<(String, u64)> = of_type(&events, "alert")
        .iter()
        .filter(|a| a["alert"]["signature"] == "mass_mail_client")
        .map(|a| {
            (
                a["alert"]["host"].as_str().unwrap_or("").to_string(),
                a["alert"]["severity"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(severities.len(), 10);
    assert!(
        severities
            .iter()
            .all(|(h, s)| *s == if h.starts_with("10.20.9.") { 2 } else { 3 })
    );
    // No bot dialect on a real The Bat! machine name.
    assert!(
        software(&events)
            .iter()
            .all(|s| s.1 == "the_bat" || s.1 == "postfix")
    );
    // The smtp events name both sides.
    for e in of_type(&events, "smtp") {
        assert_eq!(e["smtp"]["client_software"]["name"], "The Bat!");
        assert_eq!(e["smtp"]["server_software"]["name"], "Postfix");
    }
}

#[test]
fn software_is_reported_once_per_host() {
    let events = run("fingerprint-clients");
    let relay: Vec<_> = software(&events)
        .into_iter()
        .filter(|s| s.0 == "10.0.0.25")
        .collect();
    assert_eq!(
        relay.len(),
        1,
        "Postfix on the relay, seen in 12 sessions: {relay:?}"
    );
    let named: BTreeSet<String> = software(&events).into_iter().map(|s| s.2).collect();
    for name in [
        "Microsoft Outlook",
        "Mozilla Thunderbird",
        "Apple Mail",
        "PHPMailer",
        "Swift Mailer",
        "swaks",
        "Atomic Mail Sender",
        "Roundcube",
        "SquirrelMail",
        "Horde",
    ] {
        assert!(named.contains(name), "{name}: {named:?}");
    }
    // The unknown X-Mailer's session names no client software.
    let unknown = of_type(&events, "smtp")
        .into_iter()
        .find(|e| e["src_ip"] == "10.20.10.12")
        .expect("the unknown mailer's session");
    assert!(unknown["smtp"].get("client_software").is_none());
    // Only the bulk mailer is unwanted.
    let alerts: Vec<&Value> = of_type(&events, "alert")
        .into_iter()
        .filter(|a| a["alert"]["signature_id"].as_u64() >= Some(9_100_000))
        .collect();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["alert"]["signature"], "bulk_mail_tool");
    // The asset summary counts mail clients per group.
    let summary = of_type(&events, "asset_summary")
        .into_iter()
        .find(|s| s["asset_summary"]["group"] == "workstations")
        .expect("workstations summary");
    let clients = summary["asset_summary"]["mail_clients"]
        .as_array()
        .expect("mail_clients");
    assert_eq!(clients.len(), 10);
    assert!(
        clients
            .iter()
            .any(|c| c["name"] == "Microsoft Outlook" && c["hosts"] == 2)
    );
}

#[test]
fn servers_by_banner() {
    let found: Vec<(String, String, String)> = software(&run("fingerprint-servers"))
        .into_iter()
        .map(|(host, _, name, version, ..)| (host, name, version))
        .collect();
    let row = |h: &str, n: &str, v: &str| (h.to_string(), n.to_string(), v.to_string());
    assert_eq!(
        found,
        vec![
            row("198.51.100.100", "Postfix", ""),
            row("198.51.100.101", "Exim", "4.96"),
            row("198.51.100.102", "Sendmail", "8.15.2"),
            row("198.51.100.103", "Microsoft Exchange", ""),
            row("198.51.100.104", "qmail", ""),
            row("198.51.100.105", "OpenSMTPD", ""),
            row("198.51.100.106", "Haraka", "3.0.2"),
            row("198.51.100.108", "Gmail", ""),
            row("198.51.100.109", "Microsoft 365", ""),
            row("198.51.100.109", "Microsoft Exchange", ""),
            row("198.51.100.110", "Yahoo Mail", ""),
            row("198.51.100.111", "Mail.ru", ""),
            row("198.51.100.112", "Yandex Mail", ""),
            row("198.51.100.113", "GMX / WEB.DE / mail.com", ""),
            row("198.51.100.114", "GMX / WEB.DE / mail.com", ""),
            row("198.51.100.120", "Gmail", ""),
            row("198.51.100.121", "Yahoo Mail", ""),
            row("198.51.100.122", "Yandex Mail", ""),
            row("198.51.100.123", "Mail.ru", ""),
            row("198.51.100.124", "GMX / WEB.DE / mail.com", ""),
        ],
        "the nameless banner of .107 gives nothing"
    );
}

#[test]
fn bot_dialects_and_near_misses() {
    let mut bots: Vec<(String, String)> = software(&run("fingerprint-bots"))
        .into_iter()
        .filter(|s| s.0.starts_with("10.20.11."))
        .map(|s| (s.0, s.1))
        .collect();
    bots.sort();
    let row = |h: &str, r: &str| (h.to_string(), r.to_string());
    assert_eq!(
        bots,
        vec![
            row("10.20.11.1", "cutwail"),
            row("10.20.11.1", "dotless_helo_to_mx"),
            row("10.20.11.2", "random_helo"),
            row("10.20.11.3", "ip_helo_to_mx"),
            row("10.20.11.4", "dotless_helo_to_mx"),
            row("10.20.11.8", "pregreet"),
        ],
        "10.20.11.5 (bare IP to the internal relay), .6 (MARKETING) and .7 (address literal) are not bots"
    );
    // The same random name between two of the organisation's mail servers is not a bot: the
    // rule does not say it holds there.
    let events = run("fingerprint-bots");
    let between_servers: Vec<&Value> = of_type(&events, "smtp")
        .into_iter()
        .filter(|e| e["src_ip"] == "10.0.0.26")
        .collect();
    assert_eq!(between_servers.len(), 1);
    assert_eq!(between_servers[0]["smtp"]["helo"], "XKQZTRWP");
    assert!(
        between_servers[0]["smtp"]["client_software"].is_null(),
        "the mail server's session names no bot: {}",
        between_servers[0]
    );
}

/// Third-party captures: every X-Mailer Zeek's smtp.log records for a known client names it,
/// and the servers' banners name theirs.
#[test]
fn corpus_clients_and_servers_are_named() {
    let corpus = common::corpus();
    let named = |pcap: &str| -> BTreeSet<(String, String)> {
        let events = replay(&[], &[&corpus.join(pcap)]);
        of_type(&events, "software")
            .iter()
            .map(|e| {
                let w = &e["software"];
                let version = w["version"].as_str().unwrap_or("");
                (
                    w["type"].as_str().unwrap_or("").to_string(),
                    format!("{} {version}", w["name"].as_str().unwrap_or(""))
                        .trim()
                        .to_string(),
                )
            })
            .collect()
    };
    let set = |items: &[(&str, &str)]| -> BTreeSet<(String, String)> {
        items
            .iter()
            .map(|(t, n)| (t.to_string(), n.to_string()))
            .collect()
    };
    let smtp = named("zeek/smtp.pcap");
    for expected in set(&[
        ("mail_client", "Microsoft Outlook 12.0"),
        ("mail_client", "Apple Mail 2.2102"),
        ("mail_server", "Exim 4.69"),
        ("mail_server", "SubEthaSMTP"),
    ]) {
        assert!(smtp.contains(&expected), "{expected:?} in {smtp:?}");
    }
    let git = named("zeek/smtp-bdat-pipeline-8bitmime.pcap");
    assert!(
        git.iter()
            .any(|(t, n)| t == "mail_client" && n.starts_with("git-send-email 2.30.1")),
        "{git:?}"
    );
    let proxied = named("zeek/connect-with-smtp.pcap");
    assert!(
        proxied.contains(&(
            "mail_client".to_string(),
            "Microsoft Outlook 10.0.2616".to_string()
        )),
        "{proxied:?}"
    );
}
