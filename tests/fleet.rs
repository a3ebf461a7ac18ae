//! Many sensors, one view, against a real redis-server started here: a generated mail workload
//! split three ways by client address, each part replayed by its own sensor publishing to a
//! Redis stream, `spamtap correlate` on the stream; its alerts, asset summaries and software
//! inventory must be those of one sensor on the whole capture. Then the faults: a sensor killed
//! and started again, the correlator killed and started again, redis-server killed and
//! restarted (append-only, fsync always), and a sensor whose clock lags beyond the bound.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Scratch, redis_client, redis_scratch, root, start_redis, wait_for};

const SENSORS: [&str; 3] = ["s0", "s1", "s2"];

/// The test rules: asset groups and thresholds that fit the generated network.
fn rules() -> String {
    root().join("tests/rules").display().to_string()
}

/// Packet time of the generated workload is stretched this many times, so that it spans
/// minutes and the merge has seconds to tick through (the generator packs sessions tight).
const STRETCH: i64 = 300;

/// A mail workload, stretched in time, and its three parts by client address (the endpoint
/// with the higher port); `shift` moves the third part's packet times back by that many
/// seconds.
fn workload(scratch: &Scratch, mb: u64, shift: u64) -> (PathBuf, Vec<PathBuf>) {
    let tight = scratch.path("tight.pcap");
    let mut writer =
        spamtap_gen::PcapWriter::create(&tight, &spamtap_gen::Link::ethernet()).expect("pcap");
    spamtap_gen::mail_mix(&mut writer, mb << 20);
    writer.finish().expect("pcap written");
    split(scratch, &tight, 3, STRETCH, shift, |client, _| {
        usize::from(client[2] ^ client[3]) % 3
    })
}

/// Writes `input` stretched `stretch` times in packet time as `whole.pcap`, and its packets
/// as `parts` files by `part_of(client address, client port)`; the last part's times are
/// moved back `shift` seconds.
fn split(
    scratch: &Scratch,
    input: &Path,
    parts: usize,
    stretch: i64,
    shift: u64,
    part_of: impl Fn([u8; 4], u16) -> usize,
) -> (PathBuf, Vec<PathBuf>) {
    let whole = scratch.path("whole.pcap");
    let paths: Vec<PathBuf> = (0..parts)
        .map(|i| scratch.path(&format!("part{i}.pcap")))
        .collect();
    let mut input = pcap::Capture::from_file(input).expect("read capture");
    let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).expect("dead capture");
    let mut all = dead.savefile(&whole).expect("whole");
    let mut out: Vec<pcap::Savefile> = paths
        .iter()
        .map(|p| dead.savefile(p).expect("part"))
        .collect();
    let mut start = None;
    while let Ok(packet) = input.next_packet() {
        let Ok(headers) = etherparse::SlicedPacket::from_ethernet(packet.data) else {
            continue;
        };
        let (Some(etherparse::NetSlice::Ipv4(ip)), Some(etherparse::TransportSlice::Tcp(tcp))) =
            (headers.net, headers.transport)
        else {
            continue;
        };
        let (src, dst) = (ip.header().source(), ip.header().destination());
        let (client, port) = if tcp.source_port() > tcp.destination_port() {
            (src, tcp.source_port())
        } else {
            (dst, tcp.destination_port())
        };
        let part = part_of(client, port);
        let mut header = *packet.header;
        let micros = header.ts.tv_sec * 1_000_000 + header.ts.tv_usec;
        let t0 = *start.get_or_insert(micros);
        let stretched = t0 + (micros - t0) * stretch;
        header.ts.tv_sec = stretched / 1_000_000;
        header.ts.tv_usec = stretched % 1_000_000;
        all.write(&pcap::Packet::new(&header, packet.data));
        if part == parts - 1 {
            header.ts.tv_sec -= shift as i64;
        }
        out[part].write(&pcap::Packet::new(&header, packet.data));
    }
    all.flush().expect("flush whole");
    for mut f in out {
        f.flush().expect("flush part");
    }
    (whole, paths)
}

/// Alerts, asset summaries and software of an events file, each without the fields that name
/// the sensor or the input, counted.
fn findings(path: &Path) -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut found = BTreeMap::new();
    for line in text.lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).expect("JSON");
        if !matches!(
            v["event_type"].as_str(),
            Some("alert" | "asset_summary" | "software")
        ) {
            continue;
        }
        if let Some(o) = v.as_object_mut() {
            for k in ["sensor", "pcap_filename", "in_iface", "observed_by"] {
                o.remove(k);
            }
        }
        *found.entry(v.to_string()).or_insert(0) += 1;
    }
    found
}

fn count_of(found: &BTreeMap<String, usize>, event_type: &str) -> usize {
    found
        .iter()
        .filter(|(k, _)| k.contains(&format!("\"event_type\":\"{event_type}\"")))
        .map(|(_, n)| n)
        .sum()
}

/// How many sensors have a tick on `stream` so far.
fn sensors_heard(con: &mut redis::Connection, stream: &str) -> usize {
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query(con)
        .unwrap_or_default();
    let mut heard: Vec<String> = entries
        .iter()
        .flat_map(|(_, fields)| fields.iter().map(|(_, v)| v))
        .filter(|v| v.contains("\"kind\":\"tick\""))
        .filter_map(|v| serde_json::from_str::<serde_json::Value>(v).ok())
        .filter_map(|v| v["sensor"].as_str().map(str::to_string))
        .collect();
    heard.sort();
    heard.dedup();
    heard.len()
}

fn url(port: u16, stream: &str) -> String {
    format!("redis://ingest:ingestpw@127.0.0.1:{port}/{stream}")
}

fn sensor(name: &str, pcap: &Path, port: u16, stream: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spamtap"));
    c.args([
        "replay",
        "-q",
        "--workers",
        "1",
        "--sensor",
        name,
        "--rules",
    ])
    .arg(rules())
    .args([
        "--no-local-alerts",
        "--publish",
        &url(port, stream),
        "-o",
        "/dev/null",
    ])
    .arg(pcap)
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    c
}

fn publish(name: &str, pcap: &Path, port: u16, stream: &str) {
    let out = sensor(name, pcap, port, stream)
        .output()
        .expect("sensor runs");
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `spamtap correlate` on `stream`, group `site`, the test rules, events to `out`.
fn correlate(port: u16, stream: &str, out: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_spamtap"))
        .args(["correlate", "--from", &url(port, stream), "--group", "site"])
        .args(["--sensor", "site", "--rules"])
        .arg(rules())
        .arg("-o")
        .arg(out)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("correlator starts")
}

/// The correlator of the three-sensor tests: consumer `c1`, waiting for s0, s1 and s2.
fn correlator(port: u16, stream: &str, out: &Path, extra: &[&str]) -> Child {
    let sensors = SENSORS.join(",");
    let mut args = vec!["--consumer", "c1", "--sensors", sensors.as_str()];
    args.extend_from_slice(extra);
    correlate(port, stream, out, &args)
}

/// Sensors `names`, one per part, replaying side by side.
fn start_sensors(names: &[&str], parts: &[PathBuf], port: u16, stream: &str) -> Vec<Child> {
    names
        .iter()
        .zip(parts)
        .map(|(name, part)| sensor(name, part, port, stream).spawn().expect("sensor"))
        .collect()
}

fn finish_all(sensors: Vec<Child>) {
    for (child, name) in sensors.into_iter().zip(SENSORS) {
        finish(child, name);
    }
}

fn finish(child: Child, what: &str) -> String {
    let out = child.wait_with_output().expect(what);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what}: {err}");
    err
}

/// One sensor on the whole capture.
fn single(scratch: &Scratch, whole: &Path) -> BTreeMap<String, usize> {
    let out = scratch.path("single.json");
    let run = Command::new(env!("CARGO_BIN_EXE_spamtap"))
        .args([
            "replay",
            "-q",
            "--workers",
            "1",
            "--sensor",
            "single",
            "--rules",
        ])
        .arg(rules())
        .arg("-o")
        .arg(&out)
        .arg(whole)
        .output()
        .expect("single sensor");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let found = findings(&out);
    assert!(count_of(&found, "alert") > 0, "the capture raises alerts");
    assert!(count_of(&found, "asset_summary") > 0);
    found
}

fn same(got: &BTreeMap<String, usize>, want: &BTreeMap<String, usize>, what: &str) {
    for t in ["alert", "asset_summary", "software"] {
        assert_eq!(count_of(got, t), count_of(want, t), "{what}: {t} events");
    }
    let missing: Vec<&String> = want
        .keys()
        .filter(|k| got.get(*k) != want.get(*k))
        .take(2)
        .collect();
    assert!(missing.is_empty(), "{what}: differs, e.g. {missing:?}");
}

#[test]
fn three_sensors_and_a_correlator_give_the_answer_of_one_sensor() {
    let (scratch, port) = redis_scratch("fleet");
    let (whole, parts) = workload(&scratch, 12, 0);
    let want = single(&scratch, &whole);

    // The correlator first: it makes the stream and its group.
    let out = scratch.path("site.json");
    let corr = correlator(port, "fleet", &out, &[]);
    // One after another: time waits for every named sensor.
    for (name, part) in SENSORS.iter().zip(&parts) {
        publish(name, part, port, "fleet");
    }
    let err = finish(corr, "correlator");
    same(&findings(&out), &want, "three sensors, one after another");
    assert!(
        err.contains("from 3 sensor(s), 0 duplicate(s), 0 invalid, 0 late"),
        "{err}"
    );

    // Side by side, into a new stream: the same answer.
    let out2 = scratch.path("site2.json");
    let corr = correlator(port, "fleet2", &out2, &[]);
    finish_all(start_sensors(&SENSORS, &parts, port, "fleet2"));
    finish(corr, "correlator");
    same(&findings(&out2), &want, "three sensors side by side");
}

#[test]
fn a_sensor_started_again_and_a_correlator_started_again_change_nothing() {
    let (scratch, port) = redis_scratch("fleet-restart");
    let (whole, parts) = workload(&scratch, 48, 0);
    let want = single(&scratch, &whole);
    let out = scratch.path("site.json");
    let mut con = redis_client(port).expect("client");
    let stream_len = |con: &mut redis::Connection| -> u64 {
        redis::cmd("XLEN").arg("fleet").query(con).unwrap_or(0)
    };

    let corr = correlator(port, "fleet", &out, &[]);
    publish("s0", &parts[0], port, "fleet");
    // s1 is killed halfway through its replay, then replays again from the start.
    let before = stream_len(&mut con);
    let mut s1 = sensor("s1", &parts[1], port, "fleet").spawn().expect("s1");
    wait_for("s1 publishes", Duration::from_secs(60), || {
        stream_len(&mut con) > before + 20
    });
    s1.kill().expect("kill s1");
    s1.wait().expect("s1 ends");
    // The correlator is killed too (SIGKILL) and started again under the same group.
    let mut corr = corr;
    corr.kill().expect("kill correlator");
    corr.wait().expect("correlator ends");
    let corr = correlator(port, "fleet", &out, &[]);
    publish("s1", &parts[1], port, "fleet");
    publish("s2", &parts[2], port, "fleet");
    let err = finish(corr, "correlator started again");
    let duplicates: u64 = err
        .split(" duplicate(s)")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        duplicates > 20,
        "s1's second replay repeated what it had sent: {err}"
    );
    same(&findings(&out), &want, "after both restarts");
}

#[test]
fn redis_restarted_mid_run_loses_nothing() {
    let (mut scratch, port) = redis_scratch("fleet-redis");
    let (whole, parts) = workload(&scratch, 48, 0);
    let want = single(&scratch, &whole);
    let out = scratch.path("site.json");
    let corr = correlator(port, "fleet", &out, &[]);
    let running = start_sensors(&SENSORS, &parts, port, "fleet");
    let mut con = redis_client(port).expect("client");
    wait_for("every sensor publishes", Duration::from_secs(60), || {
        sensors_heard(&mut con, "fleet") == 3
    });
    // And the correlator is past its start, reading as consumer c1.
    wait_for("the correlator reads", Duration::from_secs(60), || {
        redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg("fleet")
            .arg("site")
            .query::<redis::Value>(&mut con)
            .is_ok_and(|v| format!("{v:?}").contains("c1"))
    });
    let mut server = scratch.children.pop().expect("redis-server");
    server.kill().expect("kill -9 redis-server");
    server.wait().expect("redis-server ends");
    std::thread::sleep(Duration::from_millis(800));
    start_redis(&mut scratch, port);
    finish_all(running);
    finish(corr, "correlator");
    same(&findings(&out), &want, "across a redis-server restart");
}

#[test]
fn a_sensor_lagging_beyond_the_bound_is_counted_late_not_merged() {
    let (scratch, port) = redis_scratch("fleet-lag");
    // s2's clock is an hour behind.
    let (_, parts) = workload(&scratch, 48, 3600);
    let out = scratch.path("site.json");
    // The parts span four minutes; s0 and s1 racing stay well within ten.
    let corr = correlator(port, "fleet", &out, &["--lateness", "600"]);
    let mut running = start_sensors(&SENSORS[..2], &parts, port, "fleet");
    // s2 starts once the others are under way.
    let mut con = redis_client(port).expect("client");
    wait_for("s0 and s1 publish", Duration::from_secs(60), || {
        sensors_heard(&mut con, "fleet") == 2
    });
    running.push(sensor("s2", &parts[2], port, "fleet").spawn().expect("s2"));
    finish_all(running);
    let err = finish(corr, "correlator");
    let late: u64 = err
        .split(" late observation(s)")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(late > 10, "s2's observations came late: {err}");
    let text = std::fs::read_to_string(&out).expect("events");
    let stats: serde_json::Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .rfind(|e| e["event_type"] == "stats")
        .expect("a stats event");
    assert_eq!(
        stats["stats"]["fleet"]["late_observations"], late,
        "{stats}"
    );
    for line in text
        .lines()
        .filter(|l| l.contains("\"event_type\":\"alert\""))
    {
        assert!(
            !line.contains("\"observed_by\":\"s2\""),
            "nothing of s2 merged: {line}"
        );
    }
}

/// The question a single tap cannot answer: one sender's mail split over two taps, 220
/// outside recipients on each, is under the threshold (400) on both and over it site-wide.
#[test]
fn a_sender_split_over_two_taps_alerts_only_site_wide() {
    let (scratch, port) = redis_scratch("fleet-site");
    let (whole, parts) = split(
        &scratch,
        &root().join("pcaps/detect-excessive-mail.pcap"),
        2,
        1,
        0,
        |_, port| usize::from(port % 2),
    );
    let want = single(&scratch, &whole);
    let excessive = |found: &BTreeMap<String, usize>| {
        found
            .keys()
            .filter(|k| k.contains("excessive_outbound_mail"))
            .count()
    };
    assert!(excessive(&want) > 0, "one sensor on all of it alerts");
    let out = scratch.path("site.json");
    let corr = correlate(port, "fleet", &out, &["--sensors", "tap0,tap1", "-q"]);
    for (i, part) in parts.iter().enumerate() {
        // Local alerts on: each tap alone stays under the threshold.
        let local = scratch.path(&format!("tap{i}.json"));
        let run = Command::new(env!("CARGO_BIN_EXE_spamtap"))
            .args(["replay", "-q", "--sensor", &format!("tap{i}"), "--rules"])
            .arg(rules())
            .args(["--publish", &url(port, "fleet"), "-o"])
            .arg(&local)
            .arg(part)
            .output()
            .expect("tap");
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(
            excessive(&findings(&local)),
            0,
            "tap{i} alone does not alert"
        );
    }
    finish(corr, "correlator");
    same(&findings(&out), &want, "two taps");
}

/// Without `--sensors` the correlator runs until SIGTERM, finishing each time every sensor it
/// knows has said goodbye; with `--publish-events` it also passes the sensor's events on.
#[test]
fn sigterm_stops_a_correlator_that_forwards_events() {
    let (scratch, port) = redis_scratch("fleet-term");
    let pcap = root().join("pcaps/detect-excessive-mail.pcap");
    let out = scratch.path("site.json");
    let mut corr = correlate(port, "fleet", &out, &["-q"]);
    let local = scratch.path("tap.json");
    let run = Command::new(env!("CARGO_BIN_EXE_spamtap"))
        .args(["replay", "-q", "--sensor", "tap", "--rules"])
        .arg(rules())
        .args(["--publish", &url(port, "fleet"), "--publish-events", "-o"])
        .arg(&local)
        .arg(&pcap)
        .output()
        .expect("tap");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = || std::fs::read_to_string(&out).unwrap_or_default();
    wait_for(
        "the correlator's final stats",
        Duration::from_secs(30),
        || {
            text().lines().any(|l| {
                l.contains("\"event_type\":\"stats\"") && l.contains("\"sensor\":\"site\"")
            })
        },
    );
    let status = common::interrupt(&mut corr, "spamtap correlate", Duration::from_secs(10));
    assert!(status.success(), "{status}");
    let forwarded: Vec<String> = text()
        .lines()
        .filter(|l| l.contains("\"sensor\":\"tap\""))
        .map(str::to_string)
        .collect();
    let sent: Vec<String> = std::fs::read_to_string(&local)
        .expect("tap events")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        forwarded, sent,
        "every event of the sensor, passed on unchanged"
    );
}

/// Entries a consumer took and never acknowledged (it died) are claimed and analysed by the
/// next, and acknowledged once done.
#[test]
fn entries_a_dead_consumer_left_pending_are_claimed() {
    let (scratch, port) = redis_scratch("fleet-claim");
    let pcap = root().join("pcaps/detect-excessive-mail.pcap");
    let want = single(&scratch, &pcap);
    let run = Command::new(env!("CARGO_BIN_EXE_spamtap"))
        .args(["replay", "-q", "--sensor", "s0", "--rules"])
        .arg(rules())
        .args([
            "--no-local-alerts",
            "--publish",
            &url(port, "fleet"),
            "-o",
            "/dev/null",
        ])
        .arg(&pcap)
        .output()
        .expect("sensor");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // A consumer that read everything and died.
    let mut con = redis_client(port).expect("client");
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("fleet")
        .arg("site")
        .arg("0")
        .query(&mut con)
        .expect("group");
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("site")
        .arg("dead")
        .arg("STREAMS")
        .arg("fleet")
        .arg(">")
        .query(&mut con)
        .expect("read as the dead consumer");
    let pending = |con: &mut redis::Connection| -> u64 {
        let summary: redis::Value = redis::cmd("XPENDING")
            .arg("fleet")
            .arg("site")
            .query(con)
            .expect("XPENDING");
        match summary {
            redis::Value::Array(items) => match items.first() {
                Some(redis::Value::Int(n)) => *n as u64,
                _ => 0,
            },
            _ => 0,
        }
    };
    assert!(pending(&mut con) > 10);
    let out = scratch.path("site.json");
    let corr = correlate(
        port,
        "fleet",
        &out,
        &["--consumer", "c1", "--sensors", "s0", "-q"],
    );
    finish(corr, "correlator");
    same(&findings(&out), &want, "what the dead consumer left");
    assert_eq!(pending(&mut con), 0, "all acknowledged");
}

/// Two correlators share the load: each sensor spreads its observations over two streams by
/// client address (`--publish-shards 2`), one correlator reads each (`--shard I/2`). Every
/// alert and software sighting of one sensor on the whole capture comes from exactly one of
/// them, and their asset summaries add up to its summaries: no host is counted twice.
#[test]
fn two_correlators_share_the_load_by_client() {
    let (scratch, port) = redis_scratch("fleet-shards");
    let (whole, parts) = workload(&scratch, 12, 0);
    let want = single(&scratch, &whole);
    let outs = [scratch.path("shard0.json"), scratch.path("shard1.json")];
    let correlators: Vec<Child> = outs
        .iter()
        .enumerate()
        .map(|(i, out)| {
            let shard = format!("{i}/2");
            correlator(port, &format!("fleet:{i}"), out, &["--shard", &shard])
        })
        .collect();
    for (name, part) in SENSORS.iter().zip(&parts) {
        let out = sensor(name, part, port, "fleet")
            .args(["--publish-shards", "2"])
            .output()
            .expect("sensor");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for c in correlators {
        finish(c, "shard correlator");
    }
    let of_type = |found: &BTreeMap<String, usize>, t: &str| -> BTreeMap<String, usize> {
        found
            .iter()
            .filter(|(k, _)| k.contains(&format!("\"event_type\":\"{t}\"")))
            .map(|(k, n)| (k.clone(), *n))
            .collect()
    };
    let shards = [findings(&outs[0]), findings(&outs[1])];
    {
        let t = "alert";
        let (a, b) = (of_type(&shards[0], t), of_type(&shards[1], t));
        assert!(!a.is_empty() && !b.is_empty(), "both shards had {t} events");
        let mut union = a.clone();
        for (k, n) in &b {
            assert!(!a.contains_key(k), "a {t} event from both shards: {k}");
            *union.entry(k.clone()).or_insert(0) += n;
        }
        assert!(
            union == of_type(&want, t),
            "the {t} events of one sensor, each once"
        );
    }
    // Each host's software once, from one shard. (A server's sighting comes with the first
    // session its shard saw it in, not always the first on the whole capture.)
    let software = |found: &BTreeMap<String, usize>| -> Vec<String> {
        let mut all: Vec<String> = of_type(found, "software")
            .keys()
            .map(|k| {
                let v: serde_json::Value = serde_json::from_str(k).expect("JSON");
                v["software"].to_string()
            })
            .collect();
        all.sort();
        all
    };
    let mut union = [software(&shards[0]), software(&shards[1])].concat();
    union.sort();
    assert_eq!(union, software(&want), "every host's software, once");
    // Per group and role, the shards' totals add up to one sensor's.
    let totals = |found: &BTreeMap<String, usize>| -> BTreeMap<(String, String), u64> {
        let mut by = BTreeMap::new();
        for k in of_type(found, "asset_summary").keys() {
            let v: serde_json::Value = serde_json::from_str(k).expect("JSON");
            let summary = &v["asset_summary"];
            for role in ["smtp_clients", "smtp_servers", "socks_servers"] {
                let key = (
                    summary["group"].as_str().unwrap_or("").to_string(),
                    role.to_string(),
                );
                *by.entry(key).or_insert(0) += summary[role]["total"].as_u64().unwrap_or(0);
            }
        }
        by
    };
    let mut added = totals(&shards[0]);
    for (k, n) in totals(&shards[1]) {
        *added.entry(k).or_insert(0) += n;
    }
    assert_eq!(added, totals(&want), "summaries add up");
}
