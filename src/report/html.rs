//! The report as one self-contained HTML file: inline CSS, charts as inline SVG, no script, and
//! a Content-Security-Policy that lets no request leave the page. Every chart has its numbers in
//! a table beneath it, and its series differ by dash pattern and label, not by colour alone.
//! Charts and tables carry `data-` attributes (the series and their points, the rows) that the
//! browser test reads back.

use std::fmt::Write;

use super::aggregate::{Aggregate, Counts, HostBucket, TABLE_ROWS, Timeline};

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `2026-01-01T00:05:00.000000+0000` as `2026-01-01 00:05`.
fn short_time(ts: &str) -> String {
    ts.get(..16).unwrap_or(ts).replace('T', " ")
}

fn clock(secs: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    short_time(&humantime::format_rfc3339_seconds(t).to_string())
}

const DASHES: &[&str] = &["", "6 3", "2 3", "10 3 2 3", "1 2", "8 2 2 2 2 2"];
const W: f64 = 900.0;
const H: f64 = 220.0;
const PAD: f64 = 40.0;

/// One line per series over the axis's buckets (placed by their time, `width` seconds each),
/// each point a circle with its value, and marks.
fn line_chart(
    out: &mut String,
    id: &str,
    (starts, width): (&[u64], u64),
    series: &[(String, Vec<u64>)],
    marks: &[(usize, String)],
) {
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let t0 = starts.first().copied().unwrap_or(0);
    let span = (starts.last().copied().unwrap_or(0) - t0 + width).max(1) as f64;
    let x = |i: usize| {
        let mid = starts
            .get(i)
            .map_or(0.0, |s| (s - t0) as f64 + width as f64 / 2.0);
        PAD + (W - 2.0 * PAD) * mid / span
    };
    let y = |v: u64| H - PAD - (H - 2.0 * PAD) * v as f64 / max as f64;
    let _ = write!(
        out,
        r#"<svg class="chart" data-chart="{id}" data-marks="{}" viewBox="0 0 {W} {H}" role="img" aria-label="{id}">"#,
        marks.len()
    );
    let _ = write!(
        out,
        r#"<line x1="{PAD}" y1="{b}" x2="{r}" y2="{b}" class="axis"/><line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{b}" class="axis"/><text x="4" y="{PAD}" class="tick">{max}</text><text x="4" y="{b}" class="tick">0</text>"#,
        b = H - PAD,
        r = W - PAD
    );
    if let (Some(first), Some(last)) = (starts.first(), starts.last()) {
        let _ = write!(
            out,
            r#"<text x="{PAD}" y="{}" class="tick">{}</text><text x="{}" y="{}" class="tick" text-anchor="end">{}</text>"#,
            H - 12.0,
            clock(*first),
            W - PAD,
            H - 12.0,
            clock(*last)
        );
    }
    for (k, (name, values)) in series.iter().enumerate() {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        let dash = DASHES[k % DASHES.len()];
        let _ = write!(
            out,
            r#"<polyline class="series s{}" data-series="{}" data-points="{}" points="{}" stroke-dasharray="{dash}"/>"#,
            k % DASHES.len(),
            esc(name),
            values.len(),
            points.join(" ")
        );
        for (i, v) in values.iter().enumerate() {
            let _ = write!(
                out,
                r#"<circle class="point s{}" cx="{:.1}" cy="{:.1}" r="2.5"><title>{}: {v}</title></circle>"#,
                k % DASHES.len(),
                x(i),
                y(*v),
                esc(name)
            );
        }
        let ly = PAD + 14.0 * k as f64;
        let _ = write!(
            out,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" class="series s{}" stroke-dasharray="{dash}"/><text x="{}" y="{}" class="legend">{}</text>"#,
            W - 230.0,
            W - 200.0,
            k % DASHES.len(),
            W - 195.0,
            ly + 4.0,
            esc(name)
        );
    }
    for (i, label) in marks {
        let (mx, my) = (x(*i), PAD - 8.0);
        let _ = write!(
            out,
            r#"<path class="mark" data-mark="{}" d="M{:.1},{:.1} l-5,-8 l10,0 z"><title>{}</title></path>"#,
            esc(label),
            mx,
            my + 8.0,
            esc(label)
        );
    }
    out.push_str("</svg>");
}

/// The numbers of a line chart, a row per interval.
fn series_table(
    out: &mut String,
    id: &str,
    starts: &[u64],
    width: u64,
    series: &[(String, Vec<u64>)],
    capped: &[(usize, String)],
) {
    let _ = write!(
        out,
        r#"<table data-table="{id}"><thead><tr><th>interval (from, {}s)</th>"#,
        width
    );
    for (name, _) in series {
        let _ = write!(out, "<th>{}</th>", esc(name));
    }
    out.push_str("</tr></thead><tbody>");
    for (i, start) in starts.iter().enumerate() {
        let _ = write!(
            out,
            r#"<tr data-start="{start}"><td>{}</td>"#,
            clock(*start)
        );
        for (name, values) in series {
            let v = values.get(i).copied().unwrap_or(0);
            let at_least = if capped.iter().any(|(j, s)| *j == i && s == name) {
                "&ge;"
            } else {
                ""
            };
            let _ = write!(
                out,
                r#"<td data-series="{}" data-count="{v}">{at_least}{v}</td>"#,
                esc(name)
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

/// Values per interval, by series name.
type Series = Vec<(String, Vec<u64>)>;
/// (interval index, series name) pairs.
type Cells = Vec<(usize, String)>;

fn hosts_series(t: &Timeline<HostBucket>, top_groups: &[String]) -> (Vec<u64>, Series, Cells) {
    let starts: Vec<u64> = t.buckets.keys().copied().collect();
    let mut names = vec![
        "SMTP clients".to_string(),
        "SMTP servers".to_string(),
        "SOCKS proxies".to_string(),
    ];
    names.extend(top_groups.iter().map(|g| format!("clients in {g}")));
    let mut capped = Vec::new();
    let series = names
        .iter()
        .map(|name| {
            let values = t
                .buckets
                .values()
                .enumerate()
                .map(|(i, b)| {
                    if b.capped.contains(name) {
                        capped.push((i, name.clone()));
                    }
                    b.series.get(name).map_or(0, |s| s.len() as u64)
                })
                .collect();
            (name.clone(), values)
        })
        .collect();
    (starts, series, capped)
}

fn counts_series(t: &Timeline<Counts>, names: &[String]) -> (Vec<u64>, Vec<(String, Vec<u64>)>) {
    let starts: Vec<u64> = t.buckets.keys().copied().collect();
    let series = names
        .iter()
        .map(|name| {
            (
                name.clone(),
                t.buckets
                    .values()
                    .map(|b| b.get(name).copied().unwrap_or(0))
                    .collect(),
            )
        })
        .collect();
    (starts, series)
}

/// The whole page.
pub fn render(a: &Aggregate) -> String {
    let mut out = String::with_capacity(64 * 1024);
    out.push_str(r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">"#);
    out.push_str(r#"<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">"#);
    out.push_str("<title>spamtap report</title><style>");
    out.push_str(STYLE);
    out.push_str("</style></head><body><h1>spamtap report</h1>");

    // The run.
    let lossy: Vec<String> = a
        .sensors
        .iter()
        .filter(|(_, r)| r.kernel_drops + r.queue_drops + r.output_dropped > 0)
        .map(|(s, r)| {
            format!(
                "{}: {} packets dropped in capture, {} events dropped by outputs",
                esc(s),
                r.kernel_drops + r.queue_drops,
                r.output_dropped
            )
        })
        .collect();
    if !lossy.is_empty() {
        let _ = write!(
            out,
            r#"<p class="warning" data-lossy="{}"><strong>Lossy capture:</strong> the counts below miss what was dropped. {}</p>"#,
            lossy.len(),
            lossy.join("; ")
        );
    }
    let skipped = &a.skipped;
    let bad = skipped.not_json + skipped.not_an_event + skipped.unknown_type + skipped.truncated;
    let _ = write!(
        out,
        r#"<section id="run"><h2>The run</h2><p>{} events from {} line(s), {} to {}. Skipped: <span data-skipped="{bad}">{bad}</span> ({} not JSON, {} not events, {} of an unknown type, {} cut short).</p>"#,
        a.events,
        a.lines,
        esc(&a.first.as_deref().map(short_time).unwrap_or_default()),
        esc(&a.last.as_deref().map(short_time).unwrap_or_default()),
        skipped.not_json,
        skipped.not_an_event,
        skipped.unknown_type,
        skipped.truncated
    );
    out.push_str(r#"<table data-table="sensors"><thead><tr><th>sensor</th><th>packets</th><th>dropped in capture</th><th>dropped by outputs</th><th>events</th></tr></thead><tbody>"#);
    for (name, r) in &a.sensors {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            r.packets,
            r.kernel_drops + r.queue_drops,
            r.output_dropped,
            r.events
        );
    }
    out.push_str(r#"</tbody></table><table data-table="types"><thead><tr><th>event type</th><th>events</th></tr></thead><tbody>"#);
    for (t, n) in &a.by_type {
        let _ = write!(
            out,
            r#"<tr data-type="{}"><td>{}</td><td data-count="{n}">{n}</td></tr>"#,
            esc(t),
            esc(t)
        );
    }
    out.push_str("</tbody></table></section>");

    // SMTP clients over time.
    let mut by_size: Vec<(&String, usize)> =
        a.groups.iter().map(|(g, h)| (g, h.clients.len())).collect();
    by_size.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(y.0)));
    let top_groups: Vec<String> = by_size
        .iter()
        .filter(|(_, n)| *n > 0)
        .take(3)
        .map(|(g, _)| (*g).clone())
        .collect();
    let (starts, series, capped) = hosts_series(&a.hosts, &top_groups);
    let marks: Vec<(usize, String)> = a
        .surges
        .iter()
        .filter_map(|(secs, group)| {
            // On the nearest interval with SMTP traffic.
            let nearest = starts
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.abs_diff(*secs))
                .map(|(i, _)| i)?;
            Some((nearest, format!("SMTP client surge in {group}")))
        })
        .collect();
    out.push_str(r#"<section id="clients"><h2>SMTP clients over time</h2><p>Unique hosts per interval: SMTP clients, total and in the three largest asset groups, SMTP servers and SOCKS proxies; triangles mark surge alerts.</p>"#);
    line_chart(
        &mut out,
        "clients",
        (&starts, a.hosts.width),
        &series,
        &marks,
    );
    series_table(
        &mut out,
        "clients",
        &starts,
        a.hosts.width,
        &series,
        &capped,
    );
    out.push_str("</section>");

    // Per asset group.
    out.push_str(r#"<section id="groups"><h2>Email clients per asset group</h2><p>Hosts seen in each role. Groups whose policy forbids sending mail, or allows it only through the relays, are marked, with the hosts that broke it.</p>"#);
    let max = a
        .groups
        .values()
        .map(|g| g.clients.len().max(g.servers.len()).max(g.proxies.len()))
        .max()
        .unwrap_or(0)
        .max(1);
    let rows = a.groups.len().max(1);
    let bar_h = 12.0;
    let height = rows as f64 * (3.0 * bar_h + 10.0) + 20.0;
    let _ = write!(
        out,
        r#"<svg class="chart" data-chart="groups" viewBox="0 0 {W} {height}" role="img" aria-label="groups">"#
    );
    for (i, (name, g)) in a.groups.iter().enumerate() {
        let top = 10.0 + i as f64 * (3.0 * bar_h + 10.0);
        let restricted = matches!(g.policy.as_deref(), Some("deny" | "relay_only"));
        let _ = write!(
            out,
            r#"<text x="4" y="{:.1}" class="legend">{}{}</text>"#,
            top + bar_h,
            esc(name),
            if restricted { " (restricted)" } else { "" }
        );
        for (k, (role, n)) in [
            ("clients", g.clients.len()),
            ("servers", g.servers.len()),
            ("proxies", g.proxies.len()),
        ]
        .into_iter()
        .enumerate()
        {
            let w = (W - 260.0) * n as f64 / max as f64;
            let _ = write!(
                out,
                r#"<rect class="bar b{k}" data-group="{}" data-role="{role}" data-count="{n}" x="200" y="{:.1}" width="{w:.1}" height="{}"><title>{} {role}: {n}</title></rect><text x="{:.1}" y="{:.1}" class="tick">{role} {n}</text>"#,
                esc(name),
                top + k as f64 * bar_h,
                bar_h - 2.0,
                esc(name),
                205.0 + w,
                top + k as f64 * bar_h + bar_h - 3.0
            );
        }
    }
    out.push_str("</svg>");
    out.push_str(r#"<table data-table="groups"><thead><tr><th>group</th><th>policy</th><th>SMTP clients</th><th>SMTP servers</th><th>SOCKS proxies</th><th>hosts that broke the policy</th></tr></thead><tbody>"#);
    for (name, g) in &a.groups {
        let restricted = matches!(g.policy.as_deref(), Some("deny" | "relay_only"));
        let mut offenders: Vec<String> = g.offenders.iter().map(|h| h.to_string()).collect();
        offenders.sort();
        let _ = write!(
            out,
            r#"<tr data-group="{}" class="{}"><td>{}</td><td>{}</td><td data-role="clients" data-count="{}">{}</td><td data-role="servers" data-count="{}">{}</td><td data-role="proxies" data-count="{}">{}</td><td>{}</td></tr>"#,
            esc(name),
            if restricted { "restricted" } else { "" },
            esc(name),
            esc(g.policy.as_deref().unwrap_or("-")),
            g.clients.len(),
            g.clients.len(),
            g.servers.len(),
            g.servers.len(),
            g.proxies.len(),
            g.proxies.len(),
            esc(&offenders.join(", "))
        );
    }
    out.push_str("</tbody></table></section>");

    // Port 25 from inside to outside.
    let names = ["answered".to_string(), "unanswered or refused".to_string()];
    let (starts, series) = counts_series(&a.port25, &names);
    out.push_str(r#"<section id="port25"><h2>Port-25 connections from inside to outside</h2><p>Connections from private addresses to public ones on port 25, per interval.</p>"#);
    line_chart(&mut out, "port25", (&starts, a.port25.width), &series, &[]);
    series_table(&mut out, "port25", &starts, a.port25.width, &series, &[]);
    out.push_str("</section>");

    // Senders.
    let mut senders: Vec<(&String, &(u64, u64))> = a.senders.iter().collect();
    senders.sort_by(|x, y| (y.1.1, y.1.0).cmp(&(x.1.1, x.1.0)).then(x.0.cmp(y.0)));
    let outside_note = if a.assets.is_some() {
        "outside the internal domains of the rules given"
    } else {
        "all recipients: give --rules DIR to tell the outside ones"
    };
    let _ = write!(
        out,
        r#"<section id="senders"><h2>Top senders by accepted outside recipients</h2><p>Outside: {outside_note}. An event lists refused recipients too, so a sender's outside count is at most its accepted count.</p><table data-table="senders"><thead><tr><th>sender (MAIL FROM)</th><th>accepted outside recipients</th><th>accepted recipients</th><th>flagged</th></tr></thead><tbody>"#
    );
    for (sender, (n, outside)) in senders.iter().take(TABLE_ROWS) {
        let flagged = if a.flagged.contains_key(*sender) {
            "yes"
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<tr data-sender="{}"><td>{}</td><td data-count="{outside}">{outside}</td><td>{n}</td><td>{flagged}</td></tr>"#,
            esc(sender),
            esc(sender),
        );
    }
    let _ = write!(
        out,
        "</tbody></table><p>{} more sender(s) not shown; {} session(s) from senders beyond the {} tracked.</p>",
        senders.len().saturating_sub(TABLE_ROWS),
        a.senders_untracked,
        super::aggregate::MAX_KEYS
    );
    // The busiest senders of each window.
    let _ = write!(
        out,
        r#"<h3>Top senders per interval</h3><table data-table="sender-windows"><thead><tr><th>interval (from, {}s)</th><th>senders by accepted outside recipients</th></tr></thead><tbody>"#,
        a.sender_windows.width
    );
    for (start, counts) in &a.sender_windows.buckets {
        let mut top: Vec<(&String, &u64)> = counts.iter().filter(|(_, n)| **n > 0).collect();
        top.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
        let listed: Vec<String> = top
            .iter()
            .take(3)
            .map(|(s, n)| format!("{} {n}", esc(s)))
            .collect();
        if !listed.is_empty() {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td></tr>",
                clock(*start),
                listed.join(", ")
            );
        }
    }
    out.push_str("</tbody></table>");
    for (sender, messages) in &a.flagged {
        let mut messages = messages.clone();
        messages.sort_by(|x, y| y.time.cmp(&x.time));
        let _ = write!(
            out,
            r#"<h3>Messages of {} (flagged)</h3><table data-table="messages" data-sender="{}"><thead><tr><th>time</th><th>client</th><th>from</th><th>to</th><th>subject</th></tr></thead><tbody>"#,
            esc(sender),
            esc(sender)
        );
        for m in &messages {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&short_time(&m.time)),
                esc(&m.client),
                esc(&m.from),
                esc(&m.to),
                esc(&m.subject)
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</section>");

    // Software.
    let mut software: Vec<_> = a.software.values().collect();
    software.sort_by(|x, y| {
        (&x.kind, &x.name, &x.version, &x.host).cmp(&(&y.kind, &y.name, &y.version, &y.host))
    });
    out.push_str(r#"<section id="software"><h2>Software inventory</h2><table data-table="software"><thead><tr><th>type</th><th>name</th><th>version</th><th>forged</th><th>host</th><th>groups</th><th>first seen</th><th>last seen</th></tr></thead><tbody>"#);
    for s in software.iter().take(TABLE_ROWS) {
        let _ = write!(
            out,
            r#"<tr class="{}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            if s.forged { "forged" } else { "" },
            esc(&s.kind),
            esc(&s.name),
            esc(&s.version),
            if s.forged { "forged" } else { "" },
            esc(&s.host),
            esc(&s.groups),
            esc(&short_time(&s.first)),
            esc(&short_time(&s.last))
        );
    }
    let _ = write!(
        out,
        "</tbody></table><p>{} more not shown; {} sighting(s) beyond the tracked hosts.</p></section>",
        software.len().saturating_sub(TABLE_ROWS),
        a.software_untracked
    );

    // Alerts.
    let signatures: Vec<String> = {
        let mut s: Vec<String> = a
            .alert_times
            .buckets
            .values()
            .flat_map(|b| b.keys().cloned())
            .collect();
        s.sort();
        s.dedup();
        s
    };
    let (starts, series) = counts_series(&a.alert_times, &signatures);
    out.push_str(r#"<section id="alerts"><h2>Alerts</h2>"#);
    line_chart(
        &mut out,
        "alerts",
        (&starts, a.alert_times.width),
        &series,
        &[],
    );
    series_table(
        &mut out,
        "alerts",
        &starts,
        a.alert_times.width,
        &series,
        &[],
    );
    let mut alerts = a.alerts.clone();
    alerts.sort_by(|x, y| y.time.cmp(&x.time));
    out.push_str(r#"<table data-table="alert-list"><thead><tr><th>time</th><th>severity</th><th>signature</th><th>host</th><th>evidence</th></tr></thead><tbody>"#);
    for r in alerts.iter().take(TABLE_ROWS) {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&short_time(&r.time)),
            r.severity,
            esc(&r.signature),
            esc(&r.host),
            esc(&r.evidence)
        );
    }
    let _ = write!(
        out,
        r#"</tbody></table><p data-alerts="{}">{} alert(s) in all; the newest {} listed.</p></section></body></html>"#,
        a.alerts_total,
        a.alerts_total,
        alerts.len().min(TABLE_ROWS)
    );
    out
}

const STYLE: &str = "body{font:14px/1.4 sans-serif;margin:2em;max-width:1000px;color:#222}\
h2{border-bottom:1px solid #999;margin-top:2em}table{border-collapse:collapse;margin:.5em 0 1em;font-size:12px}\
td,th{border:1px solid #bbb;padding:2px 6px;text-align:left}.chart{width:100%;height:auto;border:1px solid #ddd}\
.axis{stroke:#444}.tick,.legend{font-size:11px;fill:#222}.series{fill:none;stroke-width:2}\
.s0{stroke:#1f4e9c;fill:#1f4e9c}.s1{stroke:#b35900;fill:#b35900}.s2{stroke:#2e7d32;fill:#2e7d32}\
.s3{stroke:#6a1b9a;fill:#6a1b9a}.s4{stroke:#555;fill:#555}.s5{stroke:#00838f;fill:#00838f}\
polyline.series{fill:none}.mark{fill:#c00}.bar.b0{fill:#1f4e9c}.bar.b1{fill:#b35900}.bar.b2{fill:#2e7d32}\
tr.restricted td:first-child::after{content:' \\26A0 restricted'}tr.forged{font-weight:bold}\
.warning{border:2px solid #c00;padding:.5em}";
