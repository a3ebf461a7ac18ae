//! The command line as a user meets it: help, several files, output files, and every kind of
//! bad input, which must give one clear message and a non-zero exit, never a panic.

mod common;

use std::fs;
use std::path::PathBuf;

use common::{final_stats, of_type, parse_lines, replay, root, spamtap};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spamtap-cli-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// A classic pcap global header for a link type, little-endian, microsecond times.
fn pcap_header(linktype: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&65535u32.to_le_bytes());
    h.extend_from_slice(&linktype.to_le_bytes());
    h
}

fn record(ts: u32, data: &[u8], caplen: u32) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(&ts.to_le_bytes());
    r.extend_from_slice(&0u32.to_le_bytes());
    r.extend_from_slice(&caplen.to_le_bytes());
    r.extend_from_slice(&(data.len() as u32).to_le_bytes());
    r.extend_from_slice(data);
    r
}

/// stderr of a failed run: exactly one line, starting with "spamtap:", never a panic.
fn one_clear_error(args: &[&str]) -> String {
    let out = spamtap(args);
    assert!(!out.status.success(), "{args:?} should fail");
    assert_eq!(out.status.code(), Some(1), "{args:?}");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("spamtap: "), "{err}");
    err
}

#[test]
fn help_has_examples() {
    for args in [&["--help"][..], &["replay", "--help"], &["live", "--help"]] {
        let out = spamtap(args);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Examples:"), "{args:?}: {text}");
    }
    let live = String::from_utf8_lossy(&spamtap(&["live", "--help"]).stdout).to_string();
    for flag in [
        "--snaplen",
        "--buffer-size",
        "--bpf",
        "--workers",
        "--rules",
        "--sensor",
        "--stats-interval",
    ] {
        assert!(live.contains(flag), "live --help lists {flag}");
    }
}

#[test]
fn missing_file_is_named() {
    let err = one_clear_error(&["replay", "no/such/file.pcap"]);
    assert!(err.contains("no/such/file.pcap"), "{err}");
}

#[test]
fn a_typo_in_a_later_file_fails_before_any_replay() {
    let out = spamtap(&["replay", "pcaps/tcp-basic.pcap", "pcaps/nope.pcap"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing replayed");
    assert!(String::from_utf8_lossy(&out.stderr).contains("pcaps/nope.pcap"));
}

#[test]
fn text_file_is_not_a_capture() {
    let path = temp("notes.txt");
    fs::write(&path, "this is not a capture\n").expect("write");
    let err = one_clear_error(&["replay", path.to_str().expect("utf-8")]);
    assert!(
        err.contains("notes.txt") && err.contains("not a pcap or pcapng"),
        "{err}"
    );
}

#[test]
fn directory_is_refused() {
    let err = one_clear_error(&["replay", "pcaps"]);
    assert!(err.contains("pcaps"), "{err}");
}

#[test]
fn truncated_last_record_warns_and_keeps_events() {
    let good = fs::read(root().join("pcaps/tcp-basic.pcap")).expect("read");
    let path = temp("cut.pcap");
    fs::write(&path, &good[..good.len() - 20]).expect("write");
    let out = spamtap(&["replay", "--sensor", "t", path.to_str().expect("utf-8")]);
    assert!(out.status.success(), "exit 0 on a truncated last record");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning") && err.contains("cut.pcap"), "{err}");
    let events = parse_lines(&out.stdout);
    assert_eq!(of_type(&events, "flow").len(), 2);
    let stats = final_stats(&events);
    assert_eq!(stats["capture"]["truncated_files"], 1);
    assert_eq!(stats["capture"]["packets"], 48, "every complete record");
}

#[test]
fn corrupt_record_names_file_record_and_offset() {
    let mut bytes = pcap_header(1);
    bytes.extend(record(1, &[0u8; 60], 60));
    // A record claiming far more bytes than any snap length.
    bytes.extend(record(2, &[0u8; 10], 0x7fff_ffff));
    let path = temp("corrupt.pcap");
    fs::write(&path, &bytes).expect("write");
    let out = spamtap(&["replay", path.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("corrupt.pcap") && err.contains("record 2") && err.contains("offset 100"),
        "{err}"
    );
    // Events up to the corruption were still written.
    assert!(!of_type(&parse_lines(&out.stdout), "stats").is_empty());
}

#[test]
fn unsupported_link_type_is_named() {
    let path = temp("wifi.pcap");
    fs::write(&path, pcap_header(105)).expect("write");
    let err = one_clear_error(&["replay", path.to_str().expect("utf-8")]);
    assert!(
        err.contains("link type 105") && err.contains("wifi.pcap"),
        "{err}"
    );
}

#[test]
fn invalid_bpf_shows_expression_and_reason() {
    let err = one_clear_error(&["replay", "--bpf", "port banana", "pcaps/tcp-basic.pcap"]);
    assert!(
        err.contains("port banana") && err.contains("invalid BPF"),
        "{err}"
    );
}

#[test]
fn bpf_filters_packets() {
    let events = replay(&["--bpf", "ip6"], &[&root().join("pcaps/tcp-basic.pcap")]);
    let flows = of_type(&events, "flow");
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0]["dest_port"], 587);
}

#[test]
fn unknown_interface_is_named() {
    let err = one_clear_error(&["live", "-i", "nosuchif0"]);
    assert!(err.contains("nosuchif0"), "{err}");
}

#[test]
fn unreadable_rules_dir_is_named() {
    let err = one_clear_error(&["replay", "--rules", "no/rules/here", "pcaps/tcp-basic.pcap"]);
    assert!(err.contains("no/rules/here"), "{err}");
}

#[test]
fn unwritable_output_is_named() {
    let err = one_clear_error(&[
        "replay",
        "-o",
        "/nonexistent-dir/out.json",
        "pcaps/tcp-basic.pcap",
    ]);
    assert!(err.contains("/nonexistent-dir/out.json"), "{err}");
}

#[test]
fn several_files_in_order_with_their_names() {
    let events = replay(
        &[],
        &[
            &root().join("pcaps/tcp-basic.pcap"),
            &root().join("pcaps/link-vlan.pcap"),
        ],
    );
    let flows = of_type(&events, "flow");
    assert_eq!(flows.len(), 4);
    for f in flows {
        let file = f["pcap_filename"].as_str().expect("pcap_filename");
        let vlan = f.get("vlan").is_some();
        assert_eq!(file.ends_with("link-vlan.pcap"), vlan, "{f}");
    }
    assert_eq!(final_stats(&events)["capture"]["packets"], 49 + 16);
}

#[test]
fn output_file_gets_the_events() {
    let path = temp("events.json");
    let out = spamtap(&[
        "replay",
        "-o",
        path.to_str().expect("utf-8"),
        "pcaps/tcp-basic.pcap",
    ]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let events = parse_lines(&fs::read(&path).expect("written"));
    assert_eq!(of_type(&events, "flow").len(), 2);
}

#[test]
fn empty_capture_gives_only_the_final_stats() {
    let path = temp("empty.pcap");
    fs::write(&path, pcap_header(1)).expect("write");
    let events = replay(&[], &[&path]);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_type"], "stats");
}

#[test]
fn stats_follow_packet_time() {
    let events = replay(
        &["--stats-interval", "100"],
        &[&root().join("pcaps/tcp-states.pcap")],
    );
    let stats = of_type(&events, "stats");
    // Packets span 0..~400 s after 2026-01-01T00:00:00: one tick at the 300 s boundary when the
    // traffic resumes at 400 s (one event for a quiet stretch, not one per interval), and the
    // final one.
    let times: Vec<&str> = stats
        .iter()
        .map(|s| s["timestamp"].as_str().expect("ts"))
        .collect();
    assert_eq!(times.len(), 2, "{times:?}");
    assert_eq!(times[0], "2026-01-01T00:06:40.000000+0000");
    assert!(
        stats[0]["stats"]["capture"]["packets"].as_u64()
            < stats[1]["stats"]["capture"]["packets"].as_u64()
    );
    assert_eq!(stats[1]["stats"]["events"]["stats"], 2);
    assert_eq!(stats[1]["stats"]["events"]["flow"], 9);
}

#[test]
fn random_frames_never_crash_and_are_counted() {
    let mut bytes = pcap_header(1);
    let mut x = 0x9e37_79b9u32;
    for i in 0..3000u32 {
        let len = (i % 200) as usize;
        let frame: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        // Make a share of them look like IPv4/IPv6 over Ethernet, so deeper layers get garbage.
        let mut frame = frame;
        if frame.len() > 14 && i % 3 != 0 {
            frame[12] = if i % 2 == 0 { 0x08 } else { 0x86 };
            frame[13] = if i % 2 == 0 { 0x00 } else { 0xdd };
            frame[14] = if i % 2 == 0 { 0x45 } else { 0x60 };
        }
        bytes.extend(record(i, &frame, frame.len() as u32));
    }
    let path = temp("garbage.pcap");
    fs::write(&path, &bytes).expect("write");
    let events = replay(&[], &[&path]);
    let stats = final_stats(&events);
    assert_eq!(stats["capture"]["packets"], 3000);
    let errors: u64 = stats["decoder"]["errors"]
        .as_object()
        .expect("errors")
        .values()
        .filter_map(|v| v.as_u64())
        .sum();
    assert!(errors > 100, "{stats}");
}

const ASSETS: &str = r#"internal_domains = ["corp.example.org"]
relays = ["10.0.0.25"]

[[group]]
name = "clients"
cidrs = ["192.0.2.0/24", "2001:db8::/64"]
smtp = "relay_only"

[[group]]
name = "mail_servers"
cidrs = ["198.51.100.0/24", "2001:db8:1::/48"]
smtp = "allow"

[[group]]
name = "one_client"
cidrs = ["192.0.2.10/32"]
"#;

fn rules_dir(name: &str, assets: &str) -> PathBuf {
    let dir = temp(name);
    fs::create_dir_all(&dir).expect("rules dir");
    fs::write(dir.join("assets.toml"), assets).expect("write assets.toml");
    dir
}

#[test]
fn rules_check_reports_what_a_directory_defines() {
    let out = spamtap(&["rules", "check"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("built-in rules: 0 asset group(s)"), "{text}");
    assert!(
        text.contains("fingerprint rule(s); reply lengths of 4 mail server(s): OK"),
        "{text}"
    );
    assert!(out.stderr.is_empty());
    let dir = rules_dir("rules-ok", ASSETS);
    let out = spamtap(&["rules", "check", dir.to_str().expect("utf-8")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let notes = String::from_utf8_lossy(&out.stderr);
    assert!(
        notes.contains("has no fingerprints.toml; copy the built-in rules/fingerprints.toml"),
        "{notes}"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("3 asset group(s) with 5 network(s), 1 relay(s), 1 internal domain(s); 0 blocklist(s) with 0 entries; 0 fingerprint rule(s); reply lengths of 0 mail server(s): OK"),
        "{text}"
    );
}

#[test]
fn bad_rules_name_file_line_and_column_at_check_and_at_start() {
    let dir = rules_dir(
        "rules-bad",
        &ASSETS.replace("198.51.100.0/24", "198.51.100.7/24"),
    );
    let path = dir.to_str().expect("utf-8");
    let err = one_clear_error(&["rules", "check", path]);
    assert!(
        err.contains("assets.toml:11:10: \"198.51.100.7/24\" has host bits set"),
        "{err}"
    );
    let at_start = one_clear_error(&["replay", "--rules", path, "pcaps/tcp-basic.pcap"]);
    assert_eq!(at_start, err, "the same message when replay starts");
}

#[test]
fn flow_bound_events_name_their_asset_groups() {
    let dir = rules_dir("rules-groups", ASSETS);
    let events = replay(
        &["--rules", dir.to_str().expect("utf-8")],
        &[&root().join("pcaps/tcp-basic.pcap")],
    );
    for e in events.iter().filter(|e| e.get("flow_id").is_some()) {
        let groups = |k: &str| -> Vec<String> {
            e[k].as_array()
                .into_iter()
                .flatten()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect()
        };
        if e["src_ip"] == "192.0.2.10" {
            assert_eq!(
                groups("src_groups"),
                vec!["one_client", "clients"],
                "longest prefix first"
            );
        } else {
            assert_eq!(groups("src_groups"), vec!["clients"]);
        }
        assert_eq!(groups("dest_groups"), vec!["mail_servers"]);
    }
    assert!(
        events
            .iter()
            .any(|e| e["event_type"] == "smtp" && e["src_groups"].is_array())
    );
    assert!(of_type(&events, "stats")[0].get("src_groups").is_none());
}

/// A copy of the built-in rules directory with one file replaced.
fn rules_copy(name: &str, file: &str, contents: &str) -> PathBuf {
    let dir = temp(name);
    fs::create_dir_all(dir.join("blocklists")).expect("rules dir");
    for entry in fs::read_dir(root().join("rules")).expect("rules/") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            fs::copy(&path, dir.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    fs::write(dir.join(file), contents).expect("write");
    dir
}

#[test]
fn bad_fingerprint_rules_and_blocklists_name_file_and_line() {
    let fingerprints = fs::read_to_string(root().join("rules/fingerprints.toml")).expect("read");
    let broken = fingerprints.replacen("'^ylmf-pc$'", "'^ylmf-pc($'", 1);
    let line = broken
        .lines()
        .position(|l| l.contains("ylmf-pc($"))
        .expect("the broken line")
        + 1;
    let dir = rules_copy("rules-bad-regex", "fingerprints.toml", &broken);
    let path = dir.to_str().expect("utf-8");
    let err = one_clear_error(&["rules", "check", path]);
    assert!(
        err.contains(&format!("fingerprints.toml:{line}:14: invalid regex")),
        "{err}"
    );
    let at_start = one_clear_error(&["replay", "--rules", path, "pcaps/tcp-basic.pcap"]);
    assert_eq!(at_start, err);

    let dir = rules_copy(
        "rules-bad-blocklist",
        "detections.toml",
        "[blocklisted_peer]\nlists = [\"blocklists/drop.txt\"]\n",
    );
    fs::write(
        dir.join("blocklists/drop.txt"),
        "; DROP\n192.0.2.0/24 ; SBL1\n198.51.100.0/33 ; SBL2\n",
    )
    .expect("write");
    let err = one_clear_error(&["rules", "check", dir.to_str().expect("utf-8")]);
    assert!(
        err.contains("blocklists/drop.txt:3:1: invalid network \"198.51.100.0/33\""),
        "{err}"
    );
    fs::remove_file(dir.join("blocklists/drop.txt")).expect("remove");
    let err = one_clear_error(&["rules", "check", dir.to_str().expect("utf-8")]);
    assert!(
        err.contains("detections.toml: cannot read blocklist") && err.contains("drop.txt"),
        "{err}"
    );
}

#[test]
fn a_complete_rules_directory_checks_without_notes() {
    let dir = rules_copy("rules-full", "assets.toml", ASSETS);
    let out = spamtap(&["rules", "check", dir.to_str().expect("utf-8")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("3 asset group(s)"), "{text}");
    assert!(!text.contains(" 0 fingerprint rule(s)"), "{text}");
}

fn text_lines(path: &std::path::Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn several_outputs_each_with_its_types() {
    let alerts = temp("alerts-only.json");
    let _ = fs::remove_file(&alerts);
    let spec = format!("{}?types=alert,stats", alerts.display());
    let pcap = root().join("pcaps/detect-excessive-mail.pcap");
    let out = spamtap(&[
        "replay",
        "-q",
        "-o",
        "-",
        "-o",
        &spec,
        pcap.to_str().expect("utf-8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "--quiet: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !root().join("-").exists(),
        "- is standard output, not a file"
    );
    let all: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let wanted: Vec<String> = all
        .iter()
        .filter(|l| {
            l.contains("\"event_type\":\"alert\"") || l.contains("\"event_type\":\"stats\"")
        })
        .cloned()
        .collect();
    assert!(wanted.len() < all.len() && wanted.iter().any(|l| l.contains("\"alert\"")));
    assert_eq!(text_lines(&alerts), wanted);
    // Files are appended to: a second run adds its events after the first's.
    let again = spamtap(&["replay", "-q", "-o", &spec, pcap.to_str().expect("utf-8")]);
    assert!(again.status.success());
    assert_eq!(text_lines(&alerts).len(), 2 * wanted.len());
}

#[test]
fn a_bad_output_is_one_clear_line() {
    let pcap = root().join("pcaps/tcp-basic.pcap");
    let pcap = pcap.to_str().expect("utf-8");
    for (spec, says) in [
        ("eve.json?types=alrt", "unknown event type \"alrt\""),
        (
            "redis://127.0.0.1:1/k",
            "cannot write events to redis://127.0.0.1:1/k",
        ),
        ("unix-stream:/nonexistent/sock", "/nonexistent/sock"),
        ("syslog://127.0.0.1?proto=quic", "use udp or tcp"),
    ] {
        let err = one_clear_error(&["replay", "-o", spec, pcap]);
        assert!(err.contains(says), "{spec}: {err}");
    }
}

#[test]
fn summary_on_stderr_unless_quiet() {
    let out = temp("summary.json");
    let run = spamtap(&[
        "replay",
        "-o",
        out.to_str().expect("utf-8"),
        root()
            .join("pcaps/smtp-multi.pcap")
            .to_str()
            .expect("utf-8"),
    ]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with("spamtap: 60 packets, 1 flows, 7 events (asset_summary 1, flow 1, smtp 3, software 1, stats 1), 0 alerts, 0 packets dropped, in "),
        "{err}"
    );
    assert_eq!(
        lines[1],
        format!(
            "spamtap: output {}: 7 events written, 0 dropped",
            out.display()
        )
    );
}

/// `script` (util-linux) gives the run a terminal: the bar is drawn there, and only there.
#[test]
fn progress_bar_only_on_a_terminal() {
    let pcap = temp("progress.pcap");
    let mut writer =
        spamtap_gen::PcapWriter::create(&pcap, &spamtap_gen::Link::ethernet()).expect("pcap");
    spamtap_gen::mail_mix(&mut writer, 4 << 20);
    writer.finish().expect("pcap");
    let events = temp("progress.json");
    let command = format!(
        "{} replay -o {} {}",
        env!("CARGO_BIN_EXE_spamtap"),
        events.display(),
        pcap.display()
    );
    let tty = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script (util-linux) runs");
    let shown = String::from_utf8_lossy(&tty.stdout);
    assert!(tty.status.success(), "{shown}");
    assert!(
        shown.contains("packets/s") && shown.contains("events"),
        "{shown}"
    );
    let plain = spamtap(&[
        "replay",
        "-o",
        events.to_str().expect("utf-8"),
        pcap.to_str().expect("utf-8"),
    ]);
    let err = String::from_utf8_lossy(&plain.stderr);
    assert!(!err.contains("packets/s") && !err.contains('\x1b'), "{err}");
}

#[test]
fn rotation_by_packet_time_splits_files_and_loses_nothing() {
    let dir = temp("rotate-interval");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("dir");
    let eve = dir.join("eve.json");
    let pcap = root().join("pcaps/detect-excessive-mail.pcap");
    let out = spamtap(&[
        "replay",
        "-q",
        "--stats-interval",
        "0",
        "-o",
        &format!("{}?rotate-interval=5min", eve.display()),
        pcap.to_str().expect("utf-8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // Traffic from 00:00 to 00:08, then none until 00:18: no file for 00:10-00:15.
    assert_eq!(
        names,
        [
            "eve.json",
            "eve.json.20260101T000000",
            "eve.json.20260101T000500"
        ]
    );
    let mut union = Vec::new();
    for name in &names[1..] {
        union.extend(text_lines(&dir.join(name)));
    }
    union.extend(text_lines(&eve));
    let plain = spamtap(&[
        "replay",
        "-q",
        "--stats-interval",
        "0",
        pcap.to_str().expect("utf-8"),
    ]);
    let expected: Vec<String> = String::from_utf8_lossy(&plain.stdout)
        .lines()
        .filter(|l| !l.contains("\"event_type\":\"stats\""))
        .map(str::to_string)
        .collect();
    union.retain(|l| !l.contains("\"event_type\":\"stats\""));
    assert_eq!(union, expected);
}

#[test]
fn config_file_with_flags_over_it() {
    let dir = temp("config");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("dir");
    let eve = dir.join("eve.json");
    let config = dir.join("spamtap.toml");
    fs::write(
        &config,
        format!(
            "sensor = \"from-config\"\nstats-interval = 0\noutput = [\"{}\"]\n",
            eve.display()
        ),
    )
    .expect("config");
    let pcap = root().join("pcaps/smtp-multi.pcap");
    let pcap = pcap.to_str().expect("utf-8");
    let cfg = config.to_str().expect("utf-8");
    let run = spamtap(&["replay", "-q", "--config", cfg, pcap]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.stdout.is_empty(), "events go to the config's output");
    let events = parse_lines(&fs::read(&eve).expect("events"));
    assert!(events.iter().all(|e| e["sensor"] == "from-config"));
    assert_eq!(
        of_type(&events, "stats").len(),
        1,
        "stats-interval from the file"
    );
    // A flag wins over the file; -o replaces the file's outputs.
    let run = spamtap(&[
        "replay",
        "-q",
        "--config",
        cfg,
        "--sensor",
        "from-flag",
        "-o",
        "-",
        pcap,
    ]);
    let events = parse_lines(&run.stdout);
    assert!(!events.is_empty() && events.iter().all(|e| e["sensor"] == "from-flag"));

    let check = spamtap(&["config", "check", cfg]);
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success() && said.ends_with(": OK\n"), "{said}");
    // The shipped example passes too.
    let shipped = spamtap(&["config", "check", "dist/spamtap.toml"]);
    assert!(
        shipped.status.success(),
        "{}",
        String::from_utf8_lossy(&shipped.stderr)
    );

    fs::write(&config, "sensor = \"x\"\n\n[live]\nsnaplen = 10\n").expect("config");
    let err = one_clear_error(&["config", "check", cfg]);
    assert!(
        err.contains(&format!("{cfg}:4:11: snaplen = 10: must be from 64")),
        "{err}"
    );
    let err = one_clear_error(&["replay", "--config", cfg, pcap]);
    assert!(
        err.contains(&format!("{cfg}:4:11")),
        "the same at start: {err}"
    );
    let err = one_clear_error(&["live", "--config", "/nonexistent.toml"]);
    assert!(err.contains("/nonexistent.toml: cannot read"), "{err}");
}
