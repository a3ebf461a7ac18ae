//! Outputs against the real thing: redis-server and rsyslogd from Debian (installed by
//! `tests/deps.sh --test`), started here on loopback ports and unix sockets in a temporary
//! directory, receiving spamtap's events; each delivery is checked line by line against a file
//! output of the same run.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Scratch, free_port, redis_client, redis_scratch, root, start_redis, wait_for};

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

fn spamtap(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spamtap"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("spamtap runs")
}

#[test]
fn redis_list_stream_and_channel_get_every_event() {
    let (scratch, port) = redis_scratch("redis");
    let pcap = root().join("pcaps/detect-excessive-mail.pcap");

    // A subscriber on the channel, listening before spamtap starts.
    let mut sub = redis_client(port).expect("subscriber connects");
    let (tx, rx) = std::sync::mpsc::channel();
    let subscribed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ready = std::sync::Arc::clone(&subscribed);
    let listener = std::thread::spawn(move || {
        let mut pubsub = sub.as_pubsub();
        pubsub.subscribe("alerts").expect("subscribe");
        // Until nothing more comes for a while: spamtap has finished by then.
        pubsub
            .set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        ready.store(true, std::sync::atomic::Ordering::SeqCst);
        while let Ok(msg) = pubsub.get_message() {
            let _ = tx.send(msg.get_payload::<String>().expect("text"));
        }
    });
    wait_for(
        "the subscriber is subscribed",
        Duration::from_secs(10),
        || subscribed.load(std::sync::atomic::Ordering::SeqCst),
    );

    let file = scratch.path("eve.json");
    let list = format!(
        "redis+unix://{}?key=eve&type=list",
        scratch.path("redis.sock").display()
    );
    let stream =
        format!("redis://ingest:ingestpw@127.0.0.1:{port}/evestream?type=stream&maxlen=100000");
    let channel = format!("redis://127.0.0.1:{port}/alerts?type=channel&types=alert,stats");
    let out = spamtap(
        &[
            "replay",
            "--sensor",
            "redis-test",
            "-o",
            file.to_str().expect("utf-8"),
            "-o",
            &list,
            "-o",
            &stream,
            "-o",
            &channel,
            pcap.to_str().expect("utf-8"),
        ],
        // The unix and channel outputs have no password in their URL: the default user's
        // comes from the environment.
        &[("SPAMTAP_REDIS_PASSWORD", "defaultpw")],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains("ingestpw"),
        "the password is never shown: {err}"
    );
    let expected = lines(&file);
    assert!(expected.len() > 50, "{} events", expected.len());

    let mut con = redis_client(port).expect("client");
    let listed: Vec<String> = redis::cmd("LRANGE")
        .arg("eve")
        .arg(0)
        .arg(-1)
        .query(&mut con)
        .expect("LRANGE");
    assert_eq!(listed.len(), expected.len());
    assert!(listed == expected, "the list holds every event, in order");

    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg("evestream")
        .arg("-")
        .arg("+")
        .query(&mut con)
        .expect("XRANGE");
    let streamed: Vec<String> = entries
        .into_iter()
        .map(|(_, fields)| {
            assert_eq!(fields.len(), 1);
            assert_eq!(fields[0].0, "event");
            fields[0].1.clone()
        })
        .collect();
    assert_eq!(streamed.len(), expected.len());
    assert!(
        streamed == expected,
        "the stream holds every event, in order"
    );

    listener.join().expect("subscriber ends");
    let published: Vec<String> = rx.try_iter().collect();
    let alerts_and_stats: Vec<String> = expected
        .iter()
        .filter(|l| {
            l.contains("\"event_type\":\"alert\"") || l.contains("\"event_type\":\"stats\"")
        })
        .cloned()
        .collect();
    assert!(
        alerts_and_stats
            .iter()
            .any(|l| l.contains("\"event_type\":\"alert\""))
    );
    assert_eq!(published.len(), alerts_and_stats.len());
    assert!(
        published == alerts_and_stats,
        "the channel carries alerts and stats only"
    );
    assert!(
        err.contains(&format!(
            "output {list}: {} events written, 0 dropped",
            expected.len()
        )),
        "{err}"
    );
}

/// A replay long enough to kill redis-server in the middle of it and start it again: what
/// the server acknowledged is in it (append-only, fsync always), what was lost is counted
/// exactly, and the two make every event.
#[test]
fn redis_killed_and_restarted_mid_run() {
    let (mut scratch, port) = redis_scratch("redis-restart");
    let pcap = scratch.path("mail.pcap");
    let mut writer =
        spamtap_gen::PcapWriter::create(&pcap, &spamtap_gen::Link::ethernet()).expect("pcap");
    spamtap_gen::mail_mix(&mut writer, 320 << 20);
    writer.finish().expect("pcap written");

    let file = scratch.path("eve.json");
    let target = format!("redis://ingest:ingestpw@127.0.0.1:{port}/eve?type=list");
    let sensor = Command::new(env!("CARGO_BIN_EXE_spamtap"))
        .args(["replay", "--workers", "1", "--sensor", "restart", "-o"])
        .arg(&file)
        .args(["-o", &target])
        .arg(&pcap)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spamtap starts");

    let mut con = redis_client(port).expect("client");
    wait_for("events reach redis", Duration::from_secs(60), || {
        redis::cmd("LLEN")
            .arg("eve")
            .query::<u64>(&mut con)
            .is_ok_and(|n| n > 2_000)
    });
    let mut server = scratch.children.pop().expect("redis-server");
    server.kill().expect("kill -9 redis-server");
    server.wait().expect("redis-server ends");
    std::thread::sleep(Duration::from_millis(700));
    start_redis(&mut scratch, port);

    let out = sensor.wait_with_output().expect("spamtap ends");
    let err = String::from_utf8_lossy(&out.stderr);
    let total = lines(&file).len() as u64;
    let mut con = redis_client(port).expect("client");
    let stored: u64 = redis::cmd("LLEN").arg("eve").query(&mut con).expect("LLEN");
    let summary = err
        .lines()
        .find(|l| {
            l.starts_with(&format!(
                "spamtap: output {}:",
                target.replace("ingestpw", "***")
            )) && l.contains("events written")
        })
        .unwrap_or_else(|| panic!("a summary line for the redis output: {err}"));
    let after = |word: &str| -> u64 {
        summary
            .split(word)
            .next()
            .and_then(|head| head.trim_end().rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let (written, dropped, unconfirmed) = (
        after(" events written"),
        after(" dropped"),
        after(" unconfirmed"),
    );
    assert!(dropped > 0, "the outage lost events: {err}");
    assert!(stored > 2_000 && stored < total, "{stored} of {total}");
    // What the server acknowledged it holds; of what was in flight when it died, it may hold
    // some: those are counted as unconfirmed, never as written or dropped.
    assert!(
        written <= stored && stored <= written + unconfirmed,
        "{written} written, {unconfirmed} unconfirmed, the server holds {stored}: {err}"
    );
    assert_eq!(written + dropped + unconfirmed, total, "{err}");
    // A replay that lost events says so and fails.
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("events were lost") && err.contains("writing again"),
        "{err}"
    );
}

/// rsyslogd with a UDP and a TCP input on loopback and a local socket input, each writing
/// what it receives to its own file: facility, severity, MSGID and the message.
fn start_rsyslog(scratch: &mut Scratch, udp: u16, tcp: u16) {
    common::require_programs(&["rsyslogd"]);
    let out = |name: &str| scratch.path(name).display().to_string();
    let conf = format!(
        r#"global(workDirectory="{dir}" maxMessageSize="256k")
module(load="imuxsock" SysSock.Use="off")
module(load="imudp")
module(load="imtcp")
template(name="fields" type="string" string="%syslogfacility-text% %syslogseverity-text% %msgid% %app-name% %msg%\n")
ruleset(name="udp") {{ action(type="omfile" file="{udp_out}" template="fields") }}
ruleset(name="tcp") {{ action(type="omfile" file="{tcp_out}" template="fields") }}
ruleset(name="local") {{ action(type="omfile" file="{local_out}" template="fields") }}
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="udp")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="tcp")
input(type="imuxsock" Socket="{sock}" ruleset="local")
"#,
        dir = scratch.dir.display(),
        udp_out = out("udp.log"),
        tcp_out = out("tcp.log"),
        local_out = out("local.log"),
        sock = out("log.sock"),
    );
    let conf_path = scratch.path("rsyslog.conf");
    std::fs::write(&conf_path, conf).expect("rsyslog.conf");
    let child = Command::new("rsyslogd")
        .arg("-n")
        .arg("-f")
        .arg(&conf_path)
        .arg("-i")
        .arg(scratch.path("rsyslog.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rsyslogd starts");
    scratch.children.push(child);
    let sock = scratch.path("log.sock");
    wait_for("rsyslogd listens", Duration::from_secs(10), || {
        sock.exists() && std::net::TcpStream::connect(("127.0.0.1", tcp)).is_ok()
    });
}

#[test]
fn syslog_over_udp_tcp_and_the_local_socket() {
    let mut scratch = Scratch::new("syslog");
    let (udp, tcp) = (free_port(), free_port());
    start_rsyslog(&mut scratch, udp, tcp);
    let pcap = root().join("pcaps/detect-excessive-mail.pcap");
    let file = scratch.path("eve.json");
    let local = format!(
        "syslog:{}?facility=local3",
        scratch.path("log.sock").display()
    );
    let out = spamtap(
        &[
            "replay",
            "--sensor",
            "syslog-test",
            "-o",
            file.to_str().expect("utf-8"),
            "-o",
            &format!("syslog://127.0.0.1:{udp}?types=alert,smtp"),
            "-o",
            &format!("syslog://127.0.0.1:{tcp}?proto=tcp"),
            "-o",
            &local,
            pcap.to_str().expect("utf-8"),
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let expected = lines(&file);

    // rsyslog writes asynchronously: wait until every message is in.
    let want = |filter: &dyn Fn(&str) -> bool| expected.iter().filter(|l| filter(l)).count();
    let cases: [(&str, usize, &str); 3] = [
        (
            "udp.log",
            want(&|l| {
                l.contains("\"event_type\":\"alert\"") || l.contains("\"event_type\":\"smtp\"")
            }),
            "local5",
        ),
        ("tcp.log", expected.len(), "local5"),
        ("local.log", expected.len(), "local3"),
    ];
    for (name, count, facility) in cases {
        let path = scratch.path(name);
        wait_for(
            &format!("{count} messages in {name}"),
            Duration::from_secs(20),
            || std::fs::read_to_string(&path).is_ok_and(|t| t.lines().count() >= count),
        );
        let got = lines(&path);
        assert_eq!(got.len(), count, "{name}");
        let mut sent = expected.iter().filter(|l| {
            name != "udp.log"
                || l.contains("\"event_type\":\"alert\"")
                || l.contains("\"event_type\":\"smtp\"")
        });
        for line in &got {
            let mut parts = line.splitn(5, ' ');
            let (fac, sev, msgid, app, msg) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default().trim(),
            );
            let event = sent.next().expect("as many as sent");
            assert_eq!(msg, event, "{name}: the message is the event line");
            assert_eq!((fac, app), (facility, "spamtap"), "{name}: {line}");
            let v: serde_json::Value = serde_json::from_str(msg).expect("JSON");
            let severity = match (v["event_type"].as_str(), v["alert"]["severity"].as_u64()) {
                (Some("alert"), Some(1)) => "crit",
                (Some("alert"), Some(2)) => "err",
                (Some("alert"), _) => "warning",
                _ => "info",
            };
            assert_eq!(sev, severity, "{name}: {line}");
            if name != "local.log" {
                // RFC 5424 carries the event type as MSGID; the local format has none.
                assert_eq!(Some(msgid), v["event_type"].as_str(), "{name}: {line}");
            }
        }
    }
}
