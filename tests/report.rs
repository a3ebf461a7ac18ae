//! `spamtap report` in a real browser: Debian's headless Chromium (installed by
//! `tests/deps.sh --test`) opens the page with every request it might make refused, and the
//! test fails on any console message or blocked request; the DOM it rendered is read back and
//! its numbers checked against counts this test computes from the events on its own.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Scratch, root};

/// The golden events of every bundled capture: every event type, asset groups, alerts.
fn golden_events(scratch: &Scratch) -> (PathBuf, Vec<serde_json::Value>) {
    let path = scratch.path("events.json");
    let mut all = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(root().join("tests/golden"))
        .expect("golden")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    names.sort();
    for p in names {
        all.extend(std::fs::read(p).expect("golden file"));
    }
    std::fs::write(&path, &all).expect("events");
    (path, common::parse_lines(&all))
}

fn report(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_spamtap"))
        .arg("report")
        .args(args)
        .output()
        .expect("spamtap report runs")
}

/// Chromium's rendering of `page`: the DOM it built, and what it logged.
fn render(scratch: &Scratch, page: &Path) -> (String, String) {
    common::require_programs(&["chromium"]);
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            // Nothing may leave the page: every host resolves to nothing, every proxy is shut.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            scratch.path("chromium").display()
        ))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The value of `attr` on every element of the DOM that has it.
fn attrs(dom: &str, attr: &str) -> Vec<String> {
    let key = format!("{attr}=\"");
    dom.split(&key)
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|v| {
            v.replace("&amp;", "&")
                .replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
        })
        .collect()
}

/// The rows of table `id`: the opening tag of each `<tr>` and its cells' `data-count`s.
fn table<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("data-table=\"{id}\""))
        .unwrap_or_else(|| panic!("table {id} in the DOM"));
    let end = dom[start..]
        .find("</table>")
        .map_or(dom.len(), |e| start + e);
    &dom[start..end]
}

#[test]
fn the_report_renders_in_chromium_with_the_right_numbers() {
    let scratch = Scratch::new("report");
    let (events_path, events) = golden_events(&scratch);
    let page = scratch.path("report.html");
    let run = report(&[
        "-q",
        "-o",
        page.to_str().expect("utf-8"),
        events_path.to_str().expect("utf-8"),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let html = std::fs::read_to_string(&page).expect("page");
    assert!(
        !html.contains("<script") && !html.contains("src=\"http") && !html.contains("href=\"http")
    );

    let (dom, log) = render(&scratch, &page);
    for bad in ["CONSOLE", "Refused to", "Failed to load", "net::ERR"] {
        let line = log.lines().find(|l| l.contains(bad));
        assert!(line.is_none(), "Chromium logged {bad}: {line:?}");
    }

    // Every chart drew its lines and points.
    for chart in ["clients", "groups", "port25", "alerts"] {
        assert!(
            dom.contains(&format!("data-chart=\"{chart}\"")),
            "chart {chart}"
        );
    }
    let points = attrs(&dom, "data-points");
    assert!(
        points.len() >= 6 && points.iter().all(|p| p != "0"),
        "{points:?}"
    );
    assert!(dom.matches("<circle class=\"point").count() > 20);
    assert!(dom.matches("<rect class=\"bar").count() >= 3);

    // The numbers, against counts made here.
    let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
    for e in &events {
        *by_type
            .entry(e["event_type"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    let types = table(&dom, "types");
    for (t, n) in &by_type {
        assert!(
            types.contains(&format!(
                "<tr data-type=\"{t}\"><td>{t}</td><td data-count=\"{n}\">"
            )),
            "{t}: {n} in {types}"
        );
    }
    let mut clients: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in events.iter().filter(|e| e["event_type"] == "smtp") {
        for g in e["src_groups"].as_array().into_iter().flatten() {
            clients
                .entry(g.as_str().unwrap_or("").to_string())
                .or_default()
                .insert(e["src_ip"].as_str().unwrap_or("").to_string());
        }
    }
    let groups = table(&dom, "groups");
    assert!(!clients.is_empty());
    for (g, hosts) in &clients {
        let row = groups
            .split("<tr data-group=")
            .find(|r| r.starts_with(&format!("\"{g}\"")))
            .unwrap_or_else(|| panic!("group {g}"));
        assert!(
            row.contains(&format!(
                "data-role=\"clients\" data-count=\"{}\"",
                hosts.len()
            )),
            "{g}: {} clients in {row}",
            hosts.len()
        );
    }
    let mut senders: BTreeMap<String, u64> = BTreeMap::new();
    for e in events.iter().filter(|e| e["event_type"] == "smtp") {
        let n = e["smtp"]["rcpt_accepted"].as_u64().unwrap_or(0);
        if let (Some(from), true) = (e["smtp"]["mail_from"].as_str(), n > 0) {
            *senders.entry(from.to_string()).or_default() += n;
        }
    }
    let top = senders.values().max().copied().unwrap_or(0);
    let listed = table(&dom, "senders");
    let first_count = attrs(listed, "data-count")
        .first()
        .cloned()
        .unwrap_or_default();
    assert_eq!(first_count, top.to_string(), "the top sender's recipients");
    let alerts = events.iter().filter(|e| e["event_type"] == "alert").count();
    assert_eq!(attrs(&dom, "data-alerts"), [alerts.to_string()]);
    // Surges are marked on the clients line.
    let surges = events
        .iter()
        .filter(|e| e["alert"]["signature"] == "smtp_client_surge")
        .count();
    assert!(surges > 0);
    assert!(!attrs(&dom, "data-mark").is_empty(), "surge marks drawn");
}

#[test]
fn bad_lines_and_gzip_are_read_and_counted() {
    let scratch = Scratch::new("report-bad");
    let (events_path, events) = golden_events(&scratch);
    // The same events compressed, plus a file of bad lines ending in a cut-off one.
    let gz = scratch.path("events.json.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).expect("gz"),
        flate2::Compression::fast(),
    );
    enc.write_all(&std::fs::read(&events_path).expect("events"))
        .expect("compress");
    enc.finish().expect("gz written");
    let bad = scratch.path("bad.json");
    std::fs::write(
        &bad,
        "not json at all\n{\"x\":1}\n{\"timestamp\":\"2026-01-01T00:00:00.000000+0000\",\"event_type\":\"quic\"}\n{\"timestamp\":\"2026-01-0",
    )
    .expect("bad");
    let page = scratch.path("report.html");
    let run = report(&[
        "-o",
        page.to_str().expect("utf-8"),
        bad.to_str().expect("utf-8"),
        gz.to_str().expect("utf-8"),
    ]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{err}");
    assert!(
        err.contains(&format!("{} events from {} line(s); skipped 1 not JSON, 1 not events, 1 of unknown types, 1 cut short", events.len(), events.len() + 4)),
        "{err}"
    );
    let html = std::fs::read_to_string(&page).expect("page");
    assert_eq!(attrs(&html, "data-skipped"), ["4"]);
    // Standard input, when no file is named.
    let from_stdin = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} report -q -o {} < {}",
            env!("CARGO_BIN_EXE_spamtap"),
            scratch.path("stdin.html").display(),
            events_path.display()
        ))
        .status()
        .expect("sh");
    assert!(from_stdin.success());
    let a = std::fs::read_to_string(scratch.path("stdin.html")).expect("page");
    assert_eq!(attrs(&a, "data-count"), {
        let plain = scratch.path("plain.html");
        assert!(
            report(&[
                "-q",
                "-o",
                plain.to_str().expect("utf-8"),
                events_path.to_str().expect("utf-8")
            ])
            .status
            .success()
        );
        attrs(&std::fs::read_to_string(plain).expect("page"), "data-count")
    });
    // A file that is not there: one line, exit 1.
    let missing = report(&["-o", page.to_str().expect("utf-8"), "/nonexistent/eve.json"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read /nonexistent/eve.json"));
}

/// With the sensors' rules, recipients in the internal domains do not count as outside.
#[test]
fn outside_recipients_follow_the_rules_internal_domains() {
    let scratch = Scratch::new("report-rules");
    let (events_path, events) = golden_events(&scratch);
    let rules: toml::Value = toml::from_str(
        &std::fs::read_to_string(root().join("tests/rules/assets.toml")).expect("assets.toml"),
    )
    .expect("TOML");
    let internal: Vec<String> = rules["internal_domains"]
        .as_array()
        .expect("internal_domains")
        .iter()
        .map(|d| d.as_str().unwrap_or("").to_ascii_lowercase())
        .collect();
    let is_internal = |addr: &str| {
        let domain = addr
            .rsplit_once('@')
            .map_or("", |(_, d)| d)
            .to_ascii_lowercase();
        internal
            .iter()
            .any(|d| domain == *d || domain.ends_with(&format!(".{d}")))
    };
    let mut outside: BTreeMap<String, u64> = BTreeMap::new();
    for e in events.iter().filter(|e| e["event_type"] == "smtp") {
        let accepted = e["smtp"]["rcpt_accepted"].as_u64().unwrap_or(0);
        let Some(from) = e["smtp"]["mail_from"].as_str() else {
            continue;
        };
        if accepted == 0 {
            continue;
        }
        let n = e["smtp"]["rcpt_to"].as_array().map_or(0, |r| {
            r.iter()
                .filter(|a| !is_internal(a.as_str().unwrap_or("")))
                .count()
        }) as u64;
        *outside.entry(from.to_string()).or_default() += n.min(accepted);
    }
    let page = scratch.path("report.html");
    let rules_dir = root().join("tests/rules");
    let run = report(&[
        "-q",
        "--rules",
        rules_dir.to_str().expect("utf-8"),
        "-o",
        page.to_str().expect("utf-8"),
        events_path.to_str().expect("utf-8"),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let html = std::fs::read_to_string(&page).expect("page");
    let listed = table(&html, "senders");
    let top = outside.values().max().copied().unwrap_or(0);
    assert_eq!(
        attrs(listed, "data-count").first().cloned(),
        Some(top.to_string())
    );
    // Per interval, the windows' counts of a sender add up to its total.
    let (top_sender, _) = outside.iter().max_by_key(|(_, n)| **n).expect("a sender");
    let windows = table(&html, "sender-windows");
    let in_windows: u64 = windows
        .split("<tr>")
        .filter_map(|row| row.split(&format!("{top_sender} ")).nth(1))
        .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .filter_map(|n| n.parse::<u64>().ok())
        .sum();
    assert!(
        in_windows > 0 && in_windows <= top,
        "{top_sender}: {in_windows} of {top}"
    );
    // Internal mail does not count: some sender's outside count is below its accepted one.
    assert!(outside.values().any(|n| *n == 0), "{outside:?}");
}
