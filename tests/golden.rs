//! Every capture in `pcaps/` replayed and compared, event for event, with its golden file in
//! `tests/golden/`. Run with `UPDATE_GOLDEN=1` to rewrite the golden files after an intended
//! change, and say why in the commit. The replays use the test rules in `tests/rules/`, whose
//! asset groups and blocklist match the addresses of the generated captures.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use common::{of_type, root, spamtap};

fn pcaps() -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = fs::read_dir(root().join("pcaps"))
        .expect("pcaps/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    all.sort();
    assert!(all.len() >= 10, "pcaps/ holds the generated captures");
    all
}

/// Events of a replay as sorted lines: workers finish flows in any order.
fn events(pcap: &str, workers: &str) -> Vec<String> {
    let out = spamtap(&[
        "replay",
        "--sensor",
        "golden",
        "--rules",
        "tests/rules",
        "--workers",
        workers,
        pcap,
    ]);
    assert!(
        out.status.success(),
        "{pcap}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

#[test]
fn pcaps_match_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for pcap in pcaps() {
        let name = pcap.file_stem().and_then(|s| s.to_str()).expect("name");
        let rel = format!("pcaps/{name}.pcap");
        let got = events(&rel, "1").join("\n") + "\n";
        let golden = root().join("tests/golden").join(format!("{name}.ndjson"));
        if update {
            fs::write(&golden, &got).expect("write golden file");
            continue;
        }
        let want = fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 creates it)", golden.display()));
        if got != want {
            mismatches.push(name.to_string());
            eprintln!("--- {name}: expected\n{want}--- got\n{got}");
        }
    }
    assert!(
        mismatches.is_empty(),
        "events differ from golden files: {mismatches:?}"
    );
}

#[test]
fn worker_count_does_not_change_events() {
    for pcap in pcaps() {
        let rel = format!(
            "pcaps/{}",
            pcap.file_name().and_then(|s| s.to_str()).expect("name")
        );
        assert_eq!(events(&rel, "1"), events(&rel, "2"), "{rel}");
        assert_eq!(events(&rel, "2"), events(&rel, "2"), "{rel} twice");
    }
}

/// The golden files must show the behaviours the captures were made for.
#[test]
fn golden_scenarios_show_their_behaviour() {
    let run = |name: &str| common::replay(&[], &[&root().join(format!("pcaps/{name}.pcap"))]);
    let states = run("tcp-states");
    let flows = of_type(&states, "flow");
    let state_of = |ip: &str| -> Vec<(String, String)> {
        flows
            .iter()
            .filter(|f| f["src_ip"] == ip)
            .map(|f| {
                (
                    f["flow"]["state"].as_str().unwrap_or_default().to_string(),
                    f["flow"]["reason"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    let pair = |a: &str, b: &str| vec![(a.to_string(), b.to_string())];
    assert_eq!(state_of("192.0.2.20"), pair("no_answer", "timeout"));
    assert_eq!(state_of("192.0.2.21"), pair("rejected", "closed"));
    assert_eq!(state_of("192.0.2.22"), pair("reset", "closed"));
    assert_eq!(state_of("192.0.2.23"), pair("timeout", "timeout"));
    assert_eq!(state_of("192.0.2.24"), pair("closed", "closed"));
    assert_eq!(
        state_of("192.0.2.25"),
        pair("timeout", "timeout"),
        "one-sided"
    );
    assert_eq!(
        state_of("192.0.2.26").len(),
        2,
        "port reuse gives two flows"
    );

    let gap = run("tcp-gap");
    let flow = &of_type(&gap, "flow")[0]["flow"];
    assert_eq!(flow["missed_bytes"], 1460 + 1360);
    assert_eq!(common::final_stats(&gap)["reassembly"]["gaps"], 2);

    let reorder = run("tcp-reorder");
    let r = &common::final_stats(&reorder)["reassembly"];
    assert_eq!(r["conflicts"], 1);
    assert!(r["out_of_order"].as_u64() > Some(0) && r["retransmissions"].as_u64() > Some(0));
    for f in of_type(&reorder, "flow") {
        assert_eq!(f["flow"]["missed_bytes"], 0);
    }
    assert_eq!(
        of_type(&reorder, "flow")[0]["flow"]["data_bytes_toserver"]
            .as_u64()
            .unwrap_or(0)
            % 1000,
        0
    );

    let wrap = run("tcp-wraparound");
    let f = &of_type(&wrap, "flow")[0]["flow"];
    assert_eq!(
        (
            f["data_bytes_toserver"].as_u64(),
            f["data_bytes_toclient"].as_u64()
        ),
        (Some(10_000), Some(600))
    );

    let vlan = run("link-vlan");
    let tags: BTreeSet<String> = of_type(&vlan, "flow")
        .iter()
        .map(|f| f["vlan"].to_string())
        .collect();
    assert_eq!(
        tags,
        BTreeSet::from(["[100,200]".to_string(), "[300]".to_string()])
    );

    for link in ["link-sll", "link-sll2", "link-raw", "link-null"] {
        let ev = run(link);
        assert_eq!(of_type(&ev, "flow").len(), 2, "{link}");
    }

    let noise = run("noise");
    assert!(of_type(&noise, "flow").is_empty());
    let d = &common::final_stats(&noise)["decoder"];
    assert_eq!(
        (
            d["udp"].as_u64(),
            d["ipv4_fragments"].as_u64(),
            d["non_ip"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(
        (
            d["errors"]["tcp_header"].as_u64(),
            d["errors"]["link_header"].as_u64()
        ),
        (Some(1), Some(1))
    );

    // Encrypted mail: the estimate from the TLS records, and the tls event beside it.
    let estimate = |name: &str| -> Vec<(u64, u64, String)> {
        of_type(&run(name), "smtp")
            .iter()
            .filter_map(|e| {
                let x = &e["smtp"]["encrypted"];
                Some((
                    x["transactions"].as_u64()?,
                    x["recipients"].as_u64()?,
                    x["confidence"].as_str()?.to_string(),
                ))
            })
            .collect()
    };
    assert_eq!(
        d["fragments"]["expired"].as_u64(),
        Some(1),
        "the fragment whose rest never came"
    );
    // A RST and a FIN injected far outside the window do not end the session; one in the
    // window does.
    let injected = run("tcp-injection");
    let flows: Vec<(String, String)> = of_type(&injected, "flow")
        .iter()
        .map(|f| {
            (
                f["src_ip"].as_str().unwrap_or_default().to_string(),
                f["flow"]["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        flows,
        [
            ("192.0.2.131".to_string(), "reset".to_string()),
            ("192.0.2.130".to_string(), "closed".to_string())
        ]
    );
    let queued = of_type(&injected, "smtp")
        .iter()
        .filter(|e| e["smtp"]["status"] == "queued")
        .count();
    assert_eq!(queued, 1, "the mail after the injection went through");
    let r = &common::final_stats(&injected)["reassembly"];
    assert_eq!(
        (
            r["rst_out_of_window"].as_u64(),
            r["fin_out_of_window"].as_u64()
        ),
        (Some(1), Some(1))
    );
    // Reverse SOCKS: the controller, the TCP responder, is the SOCKS client; its socks and
    // smtp events name it as the client, the flow keeps the TCP roles.
    let reverse = run("socks-reverse");
    let socks = of_type(&reverse, "socks");
    assert_eq!(socks.len(), 1);
    assert_eq!(socks[0]["socks"]["reverse"], true);
    assert_eq!(
        (&socks[0]["src_ip"], &socks[0]["dest_ip"]),
        (
            &serde_json::json!("198.51.100.77"),
            &serde_json::json!("10.20.12.5")
        )
    );
    let smtp = of_type(&reverse, "smtp");
    assert_eq!(
        smtp[0]["smtp"]["rcpt_to"],
        serde_json::json!(["victim4@example.net"])
    );
    assert_eq!(smtp[0]["src_ip"], "198.51.100.77");
    assert_eq!(smtp[0]["tunnel"]["proxy_ip"], "10.20.12.5");
    let flow = of_type(&reverse, "flow");
    assert_eq!(
        (&flow[0]["src_ip"], &flow[0]["app_proto"]),
        (
            &serde_json::json!("10.20.12.5"),
            &serde_json::json!("socks5")
        )
    );
    // A delivered RCPT sent again rewritten is a conflict; the first copy stands. The same
    // sent again faithfully is a plain retransmission.
    let conflict = run("tcp-conflict");
    let flows: Vec<(&str, &serde_json::Value)> = of_type(&conflict, "flow")
        .iter()
        .map(|f| {
            (
                f["src_ip"].as_str().unwrap_or_default(),
                &f["flow"]["anomalies"],
            )
        })
        .collect();
    assert_eq!(
        serde_json::to_string(&flows).unwrap(),
        r#"[["192.0.2.140",["conflict"]],["192.0.2.141",null]]"#
    );
    assert!(
        of_type(&conflict, "smtp")
            .iter()
            .all(|e| e["smtp"]["rcpt_to"] == serde_json::json!(["bob@example.net"]))
    );
    let r = &common::final_stats(&conflict)["reassembly"];
    assert_eq!(
        (r["retransmissions"].as_u64(), r["conflicts"].as_u64()),
        (Some(2), Some(1))
    );
    // IP fragments, IPv4 and IPv6: the envelope reassembled; the rewriting fragment loses to
    // the first copy.
    let frag = run("frag-smtp");
    let smtp = of_type(&frag, "smtp");
    let rcpts: Vec<&serde_json::Value> = smtp.iter().map(|e| &e["smtp"]["rcpt_to"][0]).collect();
    assert_eq!(
        rcpts,
        ["bob@example.net", "carol@example.net", "dave@example.net"]
    );
    assert!(
        smtp.iter()
            .all(|e| e["smtp"]["mail_from"] == "alice@example.org")
    );
    let anomalies: Vec<&serde_json::Value> = of_type(&frag, "flow")
        .iter()
        .map(|e| &e["flow"]["anomalies"])
        .collect();
    assert_eq!(
        serde_json::to_string(&anomalies).unwrap(),
        r#"[["tiny_fragment"],["frag_overlap"],["tiny_fragment"]]"#
    );
    assert!(of_type(&frag, "flow").iter().all(|e| e["dest_port"] == 25));
    // Where the rules say the server keeps the last copy, the rewriting fragment wins: its
    // TCP header takes carol's RCPT to port 2525, and it is a QUIT.
    let last = common::Scratch::new("frag-policy-last");
    fs::write(
        last.path("assets.toml"),
        "[[group]]\nname = \"legacy\"\ncidrs = [\"198.51.100.25/32\"]\nfragments = \"last\"\n",
    )
    .expect("assets.toml");
    let rules = last.dir.to_str().expect("path");
    let frag_last = common::replay(&["--rules", rules], &[&root().join("pcaps/frag-smtp.pcap")]);
    let rcpts: Vec<&serde_json::Value> = of_type(&frag_last, "smtp")
        .iter()
        .filter(|e| e["dest_port"] == 25)
        .map(|e| &e["smtp"]["rcpt_to"][0])
        .collect();
    assert!(
        !rcpts.contains(&&serde_json::json!("carol@example.net")),
        "{rcpts:?}"
    );
    assert!(
        of_type(&frag_last, "flow")
            .iter()
            .any(|e| e["dest_port"] == 2525)
    );
    assert_eq!(estimate("smtp-starttls"), [(1, 3, "high".to_string())]);
    assert_eq!(estimate("tls-implicit"), [(2, 6, "medium".to_string())]);
    let starttls = run("smtp-starttls");
    let tls = of_type(&starttls, "tls");
    assert_eq!(tls[0]["tls"]["from_proto"], "smtp");
    assert_eq!(tls[0]["tls"]["serial"], "01:23:45:67:89:AB:CD:EF");
    let socks = run("tls-socks");
    assert_eq!(of_type(&socks, "socks")[0]["socks"]["tunnel_proto"], "tls");
    assert_eq!(of_type(&socks, "tls")[0]["tunnel"]["dest_port"], 443);
}

/// The SMTP captures show what each was made for.
#[test]
fn smtp_scenarios_show_their_behaviour() {
    let smtp = |name: &str| -> Vec<serde_json::Value> {
        let events = common::replay(&[], &[&root().join(format!("pcaps/{name}.pcap"))]);
        for f in of_type(&events, "flow") {
            assert_eq!(f["app_proto"], "smtp", "{name}: {f}");
        }
        of_type(&events, "smtp").into_iter().cloned().collect()
    };
    let field = |e: &serde_json::Value, path: &str| -> String {
        let v = path.split('.').fold(e, |v, k| &v[k]);
        v.as_str().map_or_else(|| v.to_string(), str::to_string)
    };

    let p = smtp("smtp-pipelining");
    assert_eq!(p.len(), 1);
    assert_eq!(field(&p[0], "dest_port"), "2525", "any port");
    assert_eq!(
        (
            field(&p[0], "smtp.rcpt_accepted"),
            field(&p[0], "smtp.rcpt_rejected")
        ),
        ("2".into(), "1".into())
    );
    assert_eq!(field(&p[0], "smtp.queue_id"), "4Pp1LnD");

    let b = smtp("smtp-bdat");
    assert_eq!(
        (field(&b[0], "smtp.status"), field(&b[0], "email.subject")),
        ("queued".into(), "Sent in chunks".into())
    );

    let a = smtp("smtp-auth");
    let raw = serde_json::to_string(&a).unwrap_or_default();
    for secret in ["s3cret-one", "guess-1", "AGFsaWNl", "Z3Vlc3Mt"] {
        assert!(!raw.contains(secret), "password {secret} leaked");
    }
    assert_eq!(field(&a[0], "smtp.auth.username"), "alice@example.org");
    assert_eq!(field(&a[0], "smtp.auth.success"), "true");
    assert_eq!(
        (
            field(&a[1], "smtp.auth.mechanism"),
            field(&a[1], "smtp.auth.failures")
        ),
        ("CRAM-MD5".into(), "1".into())
    );

    let t = smtp("smtp-starttls");
    assert_eq!(
        (field(&t[0], "smtp.status"), field(&t[0], "smtp.starttls")),
        ("tls".into(), "true".into())
    );
    assert!(
        t[0]["smtp"].get("anomalies").is_none(),
        "TLS bytes are not parsed"
    );

    let g = smtp("smtp-pregreet");
    assert_eq!(
        (field(&g[0], "smtp.pregreet"), field(&g[0], "smtp.helo")),
        ("true".into(), "192.0.2.75".into())
    );

    let m = smtp("smtp-multi");
    let statuses: Vec<String> = m.iter().map(|e| field(e, "smtp.status")).collect();
    assert_eq!(statuses, vec!["aborted", "queued", "queued"]);

    let r = smtp("smtp-rejected");
    let statuses: BTreeSet<String> = r.iter().map(|e| field(e, "smtp.status")).collect();
    assert_eq!(
        statuses,
        BTreeSet::from(["rejected".to_string(), "no_transaction".to_string()])
    );
    assert_eq!(
        r.len(),
        3,
        "the QUIT-only and HELO-rejected sessions are not invisible"
    );

    let mid = smtp("smtp-midstream");
    assert_eq!(
        (mid.len(), field(&mid[0], "smtp.queue_id")),
        (1, "4LaTe1".into())
    );

    let gap = smtp("smtp-gap");
    let statuses: Vec<String> = gap.iter().map(|e| field(e, "smtp.status")).collect();
    assert_eq!(statuses, vec!["incomplete", "queued"]);
    assert!(
        gap[1]["smtp"].get("anomalies").is_none(),
        "the gap belongs to the first transaction"
    );
}

/// The SOCKS captures show what each was made for.
#[test]
fn socks_scenarios_show_their_behaviour() {
    let run = |name: &str| common::replay(&[], &[&root().join(format!("pcaps/{name}.pcap"))]);
    let by_port = |events: &[serde_json::Value], t: &str, port: u64| -> Vec<serde_json::Value> {
        of_type(events, t)
            .into_iter()
            .filter(|e| e["src_port"] == port)
            .cloned()
            .collect()
    };

    let four = run("socks4");
    let s = &by_port(&four, "socks", 42000)[0]["socks"];
    assert_eq!(
        (s["version"].as_u64(), s["user"].as_str()),
        (Some(4), Some("alice"))
    );
    let s = &by_port(&four, "socks", 42001)[0]["socks"];
    assert_eq!(
        (s["request"]["name"].as_str(), s["status_code"].as_u64()),
        (Some("www.example.com"), Some(91))
    );

    let five = run("socks5");
    let raw = serde_json::to_string(&five).unwrap_or_default();
    assert!(
        !raw.contains("hunter2") && !raw.contains("guess"),
        "passwords never written"
    );
    let s = &by_port(&five, "socks", 42003)[0]["socks"];
    assert_eq!(
        (s["user"].as_str(), s["auth_success"].as_bool()),
        (Some("carol"), Some(true))
    );
    assert_eq!(s["request"]["host"], "2001:db8::25");
    assert_eq!(
        by_port(&five, "socks", 42004)[0]["socks"]["status"],
        "authentication failed"
    );
    assert_eq!(
        by_port(&five, "socks", 42005)[0]["socks"]["status"],
        "Connection refused"
    );
    for f in of_type(&five, "flow") {
        assert_eq!(f["app_proto"], "socks5");
    }

    let mail = run("socks-smtp");
    for (port, kind, depth, proxy) in [
        (42006, "socks5", 1, "198.51.100.80"),
        (42007, "socks4", 1, "198.51.100.81"),
        (42008, "socks4", 2, "198.51.100.82"),
    ] {
        let smtp = by_port(&mail, "smtp", port);
        assert_eq!(smtp.len(), 1, "SMTP through the proxy on {port}");
        let t = &smtp[0]["tunnel"];
        assert_eq!(
            (
                t["type"].as_str(),
                t["depth"].as_u64(),
                t["proxy_ip"].as_str()
            ),
            (Some(kind), Some(depth), Some(proxy))
        );
        assert_eq!(smtp[0]["smtp"]["helo"], "ylmf-pc");
        assert_eq!(smtp[0]["smtp"]["status"], "queued");
    }
    assert_eq!(
        by_port(&mail, "socks", 42006)[0]["socks"]["tunnel_proto"],
        "smtp"
    );
    assert_eq!(
        by_port(&mail, "socks", 42008).len(),
        2,
        "SOCKS inside SOCKS: two handshakes"
    );
}
