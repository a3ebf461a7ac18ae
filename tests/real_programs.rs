//! Real programs on a real wire: postfix, dante, swaks, curl, proxychains4 and Python's smtplib
//! on test hosts in network namespaces (`tests/real/network.sh`, `tests/real/clients.sh`),
//! `spamtap live` on the client's veth end, as on a SPAN port. The events are checked against
//! what the programs did, and tcpdump's capture of the same traffic, replayed, must give the
//! same events as the live run.
//!
//! Needs root and the packages `bash tests/deps.sh --test` installs; without them the test
//! fails saying what is missing. Alone: `sudo cargo test --test real_programs`.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use common::{Network, of_type, parse_lines, require, root, spamtap};

/// Events without the field that names the input, and without `stats` (kernel counters);
/// with `per_packet_times`, also without what derives from packet timestamps.
fn comparable(events: &[Value], per_packet_times: bool) -> Vec<String> {
    let mut lines: Vec<String> = events
        .iter()
        .filter(|e| e["event_type"] != "stats")
        .map(|e| {
            let mut e = e.clone();
            if let Some(map) = e.as_object_mut() {
                map.remove("in_iface");
                map.remove("pcap_filename");
                if per_packet_times {
                    for key in ["timestamp", "flow_id"] {
                        map.remove(key);
                    }
                    if let Some(flow) = map.get_mut("flow").and_then(Value::as_object_mut) {
                        for key in ["start", "end", "age", "duration"] {
                            flow.remove(key);
                        }
                    }
                    if let Some(s) = map.get_mut("asset_summary").and_then(Value::as_object_mut) {
                        for key in ["period_start", "period"] {
                            s.remove(key);
                        }
                    }
                }
            }
            e.to_string()
        })
        .collect();
    lines.sort();
    lines
}

fn by_subject<'a>(smtp: &[&'a Value], subject: &str) -> &'a Value {
    smtp.iter()
        .find(|e| e["email"]["subject"] == subject)
        .copied()
        .unwrap_or_else(|| panic!("no smtp event with subject {subject:?}"))
}

#[test]
fn real_programs_on_a_real_wire() {
    require(&[
        "ip",
        "tcpdump",
        "postfix",
        "danted",
        "swaks",
        "curl",
        "proxychains4",
        "saslpasswd2",
        "python3",
    ]);
    let (mut net, iface) = Network::up("real");
    let dir = net.dir.clone();

    let pcap = dir.join("tcpdump.pcap");
    let recorded = dir.join("sensor.pcap");
    let events_file = dir.join("live.json");
    net.children.push(common::start_tcpdump(&iface, &pcap));
    net.children.push(common::start_in_client_namespace(
        &[
            env!("CARGO_BIN_EXE_spamtap"),
            "live",
            "-i",
            &iface,
            "--sensor",
            "real",
            "--workers",
            "2",
            "--stats-interval",
            "0",
            "-o",
            events_file.to_str().expect("utf-8"),
            "--write-pcap",
            recorded.to_str().expect("utf-8"),
        ],
        "capturing on",
    ));

    let clients = Command::new("bash")
        .arg(root().join("tests/real/clients.sh"))
        .arg(&dir)
        .output()
        .expect("clients.sh runs");
    let facts = String::from_utf8_lossy(&clients.stdout).to_string();
    let mut sensor = net.children.remove(1);
    let status = common::interrupt(&mut sensor, "spamtap live", Duration::from_secs(20));
    assert!(status.success(), "spamtap live exited with {status}");
    let mut tcpdump = net.children.remove(0);
    common::interrupt(&mut tcpdump, "tcpdump", Duration::from_secs(20));
    let maillog = std::fs::read_to_string(dir.join("maillog")).unwrap_or_default();
    check_live_events(&read_events(&events_file), &facts, &maillog, &iface);
    check_replay_equals_live(&recorded, &pcap, &events_file);
}

/// The software inventory: what each host was seen running, once per host and software.
fn check_inventory(events: &[Value]) {
    let mut seen: Vec<(String, String, String, bool)> = of_type(events, "software")
        .iter()
        .map(|e| {
            let w = &e["software"];
            let s = |v: &Value| v.as_str().unwrap_or("").to_string();
            (
                s(&w["host"]),
                s(&w["type"]),
                s(&w["name"]),
                w["forged"] == true,
            )
        })
        .collect();
    seen.sort();
    let row = |h: &str, t: &str, n: &str, f: bool| (h.to_string(), t.to_string(), n.to_string(), f);
    assert_eq!(
        seen,
        vec![
            // swaks over STARTTLS, by its TLS hello (Perl's IO::Socket::SSL leaves OpenSSL
            // to its defaults).
            row("10.78.0.1", "mail_client", "OpenSSL default client", false),
            row("10.78.0.1", "mail_client", "The Bat!", true),
            row("10.78.0.1", "mail_client", "swaks", false),
            row("10.78.0.2", "mail_server", "Postfix", false),
            row("10.78.0.2", "socks_proxy", "SOCKS4 proxy", false),
            row("10.78.0.2", "socks_proxy", "SOCKS5 proxy", false),
        ],
        "dante answers SOCKS4 and SOCKS5; smtplib sends no X-Mailer"
    );
}

fn read_events(path: &Path) -> Vec<Value> {
    parse_lines(&std::fs::read(path).expect("live events written"))
}

fn check_live_events(events: &[Value], facts: &str, maillog: &str, iface: &str) {
    let raw = serde_json::to_string(events).unwrap_or_default();
    assert!(
        !raw.contains("Tap-test-pw1") && !raw.contains("wrong-password"),
        "no password is ever written"
    );
    for e in events {
        assert_eq!(e["in_iface"], iface);
    }
    let smtp = of_type(events, "smtp");

    // Every message the programs saw queued is an event with the MTA's own queue id, and the
    // MTA's log knows that id.
    let reported: BTreeSet<String> = facts
        .lines()
        .filter_map(|l| l.strip_prefix("queued "))
        .map(str::to_string)
        .collect();
    assert_eq!(reported.len(), 7, "messages queued by the clients: {facts}");
    let ours: BTreeSet<String> = smtp
        .iter()
        .filter_map(|e| e["smtp"]["queue_id"].as_str())
        .map(str::to_string)
        .collect();
    assert_eq!(ours, reported, "queue ids in smtp events");
    for id in &reported {
        assert!(
            maillog.contains(&format!("{id}: client=")),
            "{id} is in postfix's log"
        );
    }

    // swaks with PIPELINING, three recipients of which postfix rejects one, a The Bat! X-Mailer.
    let p = by_subject(&smtp, "pipelined with a rejected recipient");
    let s = &p["smtp"];
    assert_eq!(s["mail_from"], "alice@client.example.test");
    assert_eq!(
        s["rcpt_to"],
        serde_json::json!([
            "bob@example.test",
            "nobody@example.test",
            "carol@example.test"
        ])
    );
    assert_eq!(
        (s["rcpt_accepted"].as_u64(), s["rcpt_rejected"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(s["helo"], "client.example.test");
    assert_eq!(s["banner"], "220 mx.example.test ESMTP Postfix");
    assert!(
        s["extensions"]
            .as_array()
            .is_some_and(|x| x.iter().any(|e| e == "PIPELINING"))
    );
    assert_eq!(p["email"]["x_mailer"], "The Bat! (v9.5.2) Professional");
    assert_eq!(s["status"], "queued");
    // swaks only borrowed The Bat!'s X-Mailer: its EHLO name and Message-ID give it away.
    assert_eq!(s["client_software"]["name"], "The Bat!");
    assert_eq!(s["client_software"]["forged"], true);
    assert_eq!(s["server_software"]["name"], "Postfix");
    check_inventory(events);

    // AUTH PLAIN and LOGIN, as swaks used them.
    for mech in ["PLAIN", "LOGIN"] {
        let a = &by_subject(&smtp, &format!("AUTH {mech}"))["smtp"]["auth"];
        assert_eq!(a["mechanism"], mech);
        assert_eq!(a["username"], "spamtaptest@example.test");
        assert_eq!(a["success"], true);
    }

    // STARTTLS: one event for the session, nothing parsed after.
    let tls: Vec<&&Value> = smtp
        .iter()
        .filter(|e| e["smtp"]["status"] == "tls")
        .collect();
    assert_eq!(tls.len(), 1);
    assert_eq!(tls[0]["smtp"]["starttls"], true);

    // Two messages in one smtplib session.
    let one = by_subject(&smtp, "message 1 of one session");
    let two = by_subject(&smtp, "message 2 of one session");
    assert_eq!(one["flow_id"], two["flow_id"]);
    assert_eq!(
        (
            one["smtp"]["trans_depth"].as_u64(),
            two["smtp"]["trans_depth"].as_u64()
        ),
        (Some(1), Some(2))
    );

    // curl through the proxy.
    let socks = of_type(events, "socks");
    let find_socks = |version: u64, port: u64, name: Option<&str>| -> Vec<&Value> {
        socks
            .iter()
            .copied()
            .filter(|e| {
                e["socks"]["version"] == version
                    && e["socks"]["request"]["port"] == port
                    && name.is_none_or(|n| e["socks"]["request"]["name"] == n)
                    && e.get("tunnel").is_none()
            })
            .collect()
    };
    let v4 = find_socks(4, 8080, None);
    let v4_ip: Vec<_> = v4
        .iter()
        .filter(|e| e["socks"]["request"]["host"] == "10.78.0.2")
        .collect();
    assert_eq!(v4_ip.len(), 1, "curl --socks4: {v4:?}");
    assert_eq!(v4_ip[0]["socks"]["status"], "succeeded");
    // dante 1.4.2 does not speak SOCKS4a: it answers curl's request by name with 91.
    let v4a = find_socks(4, 8080, Some("web.example.test"));
    assert_eq!(v4a.len(), 1);
    assert_eq!(v4a[0]["socks"]["status_code"], 91);
    let v5: Vec<&Value> = find_socks(5, 8080, None);
    let good = v5
        .iter()
        .find(|e| e["socks"]["auth_success"] == true)
        .expect("curl --socks5 with a user");
    assert_eq!(good["socks"]["user"], "spamtaptest");
    assert_eq!(good["socks"]["request"]["name"], "web.example.test");
    assert_eq!(good["socks"]["status"], "succeeded");
    assert_eq!(
        good["socks"]["tunnel_proto"], "unknown",
        "HTTP is not analysed"
    );
    // A wrong password: the request never comes.
    let bad = socks
        .iter()
        .find(|e| e["socks"]["auth_success"] == false)
        .expect("a wrong password");
    assert_eq!(
        (
            bad["socks"]["user"].as_str(),
            bad["socks"]["status"].as_str()
        ),
        (Some("spamtaptest"), Some("authentication failed"))
    );

    // swaks through SOCKS5 and SOCKS4 by proxychains4: the smtp events carry the tunnel.
    for (subject, kind, host) in [
        ("through SOCKS5", "socks5", "10.78.0.2"),
        ("through SOCKS4", "socks4", "10.78.0.2"),
    ] {
        let e = by_subject(&smtp, subject);
        let t = &e["tunnel"];
        assert_eq!(
            (
                t["type"].as_str(),
                t["dest_host"].as_str(),
                t["dest_port"].as_u64()
            ),
            (Some(kind), Some(host), Some(25))
        );
        assert_eq!(
            (t["proxy_ip"].as_str(), t["proxy_port"].as_u64()),
            (Some("10.78.0.2"), Some(1080))
        );
        assert_eq!(e["dest_port"], 1080, "the outer flow's ids");
        assert_eq!(e["smtp"]["status"], "queued");
    }
    let proxied_smtp = socks
        .iter()
        .filter(|e| e["socks"]["tunnel_proto"] == "smtp")
        .count();
    assert_eq!(proxied_smtp, 2);
}

fn check_replay_equals_live(recorded: &Path, tcpdump: &Path, live_events: &Path) {
    let live = read_events(live_events);
    let replay = |pcap: &Path| {
        let out = spamtap(&[
            "replay",
            "--sensor",
            "real",
            "--workers",
            "2",
            pcap.to_str().expect("utf-8"),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        parse_lines(&out.stdout)
    };
    // What the sensor recorded replays to exactly its live events.
    assert_eq!(
        comparable(&replay(recorded), false),
        comparable(&live, false),
        "replay of --write-pcap = live"
    );
    // tcpdump's own capture of the same traffic: its socket stamps each packet a few
    // microseconds apart from the sensor's, so times (and the flow ids made from them) differ;
    // everything else is equal.
    assert_eq!(
        comparable(&replay(tcpdump), true),
        comparable(&live, true),
        "replay of tcpdump's capture = live"
    );
}
