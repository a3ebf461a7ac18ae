//! spamtap as a long-running service, live on a veth pair between two network namespaces with
//! tcpreplay sending a generated mail workload: logrotate-style rotation under load (`mv` and
//! SIGHUP, ten times), a full disk on a tiny tmpfs, privilege drop with `--user`, and rule
//! reloads on SIGUSR2.
//!
//! Needs root, iproute2 and tcpreplay (`tests/deps.sh --test`); without them each test fails
//! and says what is missing.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::time::Duration;

use common::{root, sh};

/// Two namespaces, `a` sending and `b` where the sensor listens, joined by a veth pair; a
/// scratch directory. Everything is removed on drop, also when the test fails.
struct Wire {
    ns: [String; 2],
    dev: [String; 2],
    dir: PathBuf,
    children: Vec<Child>,
    mounts: Vec<PathBuf>,
}

impl Drop for Wire {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for mount in &self.mounts {
            let _ = Command::new("umount").arg(mount).status();
        }
        for ns in &self.ns {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Wire {
    fn up(label: &str) -> Self {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "the service tests need root (namespaces, capture, mounts): sudo bash tests/run.sh"
        );
        common::require_programs(&["ip", "tcpreplay"]);
        let id = std::process::id() % 100_000;
        let dir = std::env::temp_dir().join(format!("spamtap-svc-{label}-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let wire = Wire {
            ns: [format!("spt-{label}-a-{id}"), format!("spt-{label}-b-{id}")],
            dev: [format!("sa{label}{id}"), format!("sb{label}{id}")],
            dir,
            children: Vec::new(),
            mounts: Vec::new(),
        };
        let [a, b] = &wire.ns;
        let [va, vb] = &wire.dev;
        sh(&["ip", "netns", "add", a]);
        sh(&["ip", "netns", "add", b]);
        sh(&[
            "ip", "link", "add", va, "netns", a, "type", "veth", "peer", "name", vb, "netns", b,
        ]);
        for (ns, dev) in [(a, va), (b, vb)] {
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            // Frames go out as captured: no offload may merge or split them.
            let _ = Command::new("ip")
                .args(["netns", "exec", ns, "ethtool", "-K", dev])
                .args(["tso", "off", "gso", "off", "gro", "off"])
                .output();
        }
        wire
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `spamtap live` on b's end; returns once it says it is capturing, and its stderr.
    fn sensor(&mut self, args: &[&str]) -> BufReader<ChildStderr> {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns[1],
                env!("CARGO_BIN_EXE_spamtap"),
                "live",
            ])
            .args([
                "-i",
                &self.dev[1],
                "--sensor",
                "svc",
                "--stats-interval",
                "0",
            ])
            .args(args)
            .current_dir(root())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spamtap live starts");
        let mut err = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        while !line.contains("capturing on") {
            line.clear();
            let n = err.read_line(&mut line).expect("stderr");
            assert!(n > 0, "spamtap live ended before capturing");
        }
        self.children.insert(0, child);
        err
    }

    fn sensor_pid(&self) -> i32 {
        self.children[0].id() as i32
    }

    /// Sends `pcap` from a's end at `mbps`, and waits until it is all out.
    fn send(&self, pcap: &Path, mbps: u32) {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns[0],
                "tcpreplay",
                "-q",
                "-i",
                &self.dev[0],
            ])
            .arg(format!("--mbps={mbps}"))
            .arg(pcap)
            .output()
            .expect("tcpreplay runs");
        assert!(
            out.status.success(),
            "tcpreplay: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// SIGINT to the sensor; its exit status and the rest of its stderr.
    fn stop(&mut self, mut err: BufReader<ChildStderr>) -> (ExitStatus, String) {
        let status = common::interrupt(
            &mut self.children[0],
            "spamtap live",
            Duration::from_secs(30),
        );
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut rest);
        (status, rest)
    }
}

fn signal(pid: i32, sig: libc::c_int) {
    // SAFETY: kill with a pid this test started.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill {pid}");
}

/// A mail-heavy capture of about `mb` MB from the project's generator.
fn mail_pcap(path: &Path, mb: u64) {
    let mut writer =
        spamtap_gen::PcapWriter::create(path, &spamtap_gen::Link::ethernet()).expect("pcap");
    spamtap_gen::mail_mix(&mut writer, mb << 20);
    writer.finish().expect("pcap written");
}

/// Every non-stats event, without the field naming the input, counted: live events say
/// `in_iface`, replayed ones `pcap_filename`.
fn event_multiset(lines: &[String]) -> BTreeMap<String, usize> {
    let mut set = BTreeMap::new();
    for line in lines {
        let mut v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a whole JSON line ({e}): {line}"));
        if v["event_type"] == "stats" {
            continue;
        }
        if let Some(o) = v.as_object_mut() {
            o.remove("in_iface");
            o.remove("pcap_filename");
            o.remove("sensor");
        }
        *set.entry(v.to_string()).or_insert(0) += 1;
    }
    set
}

fn file_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

fn replay_lines(pcap: &Path) -> Vec<String> {
    // As the sensor ran: no stats events but the last, whatever minutes the capture crossed.
    let out = common::spamtap(&[
        "replay",
        "--sensor",
        "svc",
        "--stats-interval",
        "0",
        pcap.to_str().expect("utf-8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn rotation_under_load_loses_nothing() {
    let mut wire = Wire::up("rot");
    let pcap = wire.path("mail.pcap");
    mail_pcap(&pcap, 24);
    let eve = wire.path("eve.json");
    let recorded = wire.path("live.pcap");
    let err = wire.sensor(&[
        "--workers",
        "2",
        "-o",
        eve.to_str().expect("utf-8"),
        "--write-pcap",
        recorded.to_str().expect("utf-8"),
    ]);
    let pid = wire.sensor_pid();
    std::thread::scope(|s| {
        s.spawn(|| wire.send(&pcap, 40));
        // What logrotate does, ten times while the traffic flows.
        for n in 1..=10 {
            std::thread::sleep(Duration::from_millis(350));
            std::fs::rename(&eve, wire.path(&format!("eve.json.{n}"))).expect("mv");
            signal(pid, libc::SIGHUP);
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let (status, rest) = wire.stop(err);
    assert!(status.success(), "{status}: {rest}");

    let mut union = Vec::new();
    let mut non_empty = 0;
    for n in 1..=10 {
        let part = file_lines(&wire.path(&format!("eve.json.{n}")));
        non_empty += usize::from(!part.is_empty());
        union.extend(part);
    }
    union.extend(file_lines(&eve));
    assert!(
        non_empty >= 8,
        "the files were rotated while events came: {non_empty} of 10"
    );
    let live = event_multiset(&union);
    let replayed = event_multiset(&replay_lines(&recorded));
    let count = |m: &BTreeMap<String, usize>| m.values().sum::<usize>();
    assert!(count(&replayed) > 1_000, "{} events", count(&replayed));
    assert_eq!(
        count(&live),
        count(&replayed),
        "as many events as a replay of --write-pcap"
    );
    assert!(
        live == replayed,
        "the same events as a replay of --write-pcap"
    );
}

#[test]
fn a_full_disk_is_counted_and_writing_resumes() {
    let mut wire = Wire::up("full");
    let pcap = wire.path("mail.pcap");
    mail_pcap(&pcap, 8);
    let disk = wire.path("disk");
    std::fs::create_dir_all(&disk).expect("mount point");
    sh(&[
        "mount",
        "-t",
        "tmpfs",
        "-o",
        "size=4m",
        "tmpfs",
        disk.to_str().expect("utf-8"),
    ]);
    wire.mounts.push(disk.clone());
    // All but 16 KiB taken.
    let filler = disk.join("filler");
    let out = Command::new("dd")
        .args(["if=/dev/zero", "bs=4096", "count=1020"])
        .arg(format!("of={}", filler.display()))
        .output()
        .expect("dd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let eve = disk.join("eve.json");
    let recorded = wire.path("live.pcap");
    let err = wire.sensor(&[
        "-o",
        eve.to_str().expect("utf-8"),
        "--write-pcap",
        recorded.to_str().expect("utf-8"),
    ]);
    std::thread::scope(|s| {
        s.spawn(|| wire.send(&pcap, 20));
        std::thread::sleep(Duration::from_millis(1500));
        std::fs::remove_file(&filler).expect("room again");
    });
    std::thread::sleep(Duration::from_millis(500));
    let (status, rest) = wire.stop(err);
    assert!(
        status.success(),
        "live goes on through a full disk: {status}: {rest}"
    );
    assert!(rest.contains("No space left on device"), "{rest}");
    assert!(rest.contains("writing again"), "{rest}");

    let written = file_lines(&eve);
    for line in &written {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("never half a line ({e}): {line}"));
    }
    let summary = rest
        .lines()
        .find(|l| l.contains("events written"))
        .unwrap_or_else(|| panic!("a summary: {rest}"));
    let numbers: Vec<usize> = summary
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let (n_written, n_dropped) = (numbers[0], numbers[1]);
    assert_eq!(n_written, written.len(), "{summary}");
    assert!(n_dropped > 0, "{summary}");
    let total = replay_lines(&recorded).len();
    assert_eq!(
        n_written + n_dropped,
        total,
        "{summary}: every event written or counted"
    );
    // The last event, written after the disk had room again, says what was dropped.
    let last: serde_json::Value =
        serde_json::from_str(written.last().expect("events")).expect("JSON");
    assert_eq!(last["event_type"], "stats");
    assert!(
        last["stats"]["output"][0]["dropped"].as_u64() > Some(0),
        "{last}"
    );
}

#[test]
fn privilege_drop_keeps_capturing_without_root_or_capabilities() {
    let mut wire = Wire::up("priv");
    let pcap = wire.path("mail.pcap");
    mail_pcap(&pcap, 1);
    // The output directory belongs to the user the sensor becomes.
    let logs = wire.path("logs");
    std::fs::create_dir_all(&logs).expect("logs dir");
    sh(&["chown", "nobody", logs.to_str().expect("utf-8")]);
    sh(&["chmod", "755", wire.dir.to_str().expect("utf-8")]);
    let eve = logs.join("eve.json");
    let err = wire.sensor(&["--user", "nobody", "-o", eve.to_str().expect("utf-8")]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", wire.sensor_pid()))
        .expect("/proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let nobody = "65534".to_string();
    assert_eq!(field("Uid"), vec![nobody.clone(); 4], "{status}");
    assert_eq!(field("Gid"), vec![nobody.clone(); 4], "{status}");
    for caps in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(field(caps), ["0000000000000000"], "{caps}: {status}");
    }
    wire.send(&pcap, 10);
    std::thread::sleep(Duration::from_millis(500));
    let (exit, rest) = wire.stop(err);
    assert!(exit.success(), "{exit}: {rest}");
    let events = file_lines(&eve);
    let smtp = events
        .iter()
        .filter(|l| l.contains("\"event_type\":\"smtp\""))
        .count();
    assert!(
        smtp > 10,
        "capture went on after the drop: {smtp} smtp events"
    );
}

#[test]
fn sigusr2_reloads_rules_and_a_bad_file_keeps_the_old_ones() {
    let mut wire = Wire::up("rld");
    let pcap = wire.path("mail.pcap");
    mail_pcap(&pcap, 1);
    let rules = wire.path("rules");
    std::fs::create_dir_all(&rules).expect("rules dir");
    for entry in std::fs::read_dir(root().join("rules")).expect("rules") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            std::fs::copy(&path, rules.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    let eve = wire.path("eve.json");
    let mut err = wire.sensor(&[
        "--rules",
        rules.to_str().expect("utf-8"),
        "-o",
        eve.to_str().expect("utf-8"),
    ]);
    let pid = wire.sensor_pid();
    let mut wait_line = |want: &str| {
        let mut line = String::new();
        while !line.contains(want) {
            line.clear();
            assert!(err.read_line(&mut line).expect("stderr") > 0, "no {want:?}");
        }
        line
    };
    wire.send(&pcap, 10);
    // A broken assets.toml: the old rules stay, and it is said where the mistake is.
    let assets = rules.join("assets.toml");
    let good = std::fs::read_to_string(&assets).expect("assets.toml");
    std::fs::write(&assets, "[[group]\nname = \n").expect("write");
    signal(pid, libc::SIGUSR2);
    let said = wait_line("rules not reloaded");
    assert!(said.contains("assets.toml:1"), "{said}");
    // A good one with a new group for the clients of real-programs.pcap, sent next.
    std::fs::write(
        &assets,
        format!("{good}\n[[group]]\nname = \"reloaded\"\ncidrs = [\"10.78.0.0/24\"]\n"),
    )
    .expect("write");
    signal(pid, libc::SIGUSR2);
    wait_line("rules reloaded");
    std::thread::sleep(Duration::from_millis(1200));
    wire.send(&root().join("pcaps/real-programs.pcap"), 10);
    std::thread::sleep(Duration::from_millis(500));
    let (status, rest) = wire.stop(err);
    assert!(status.success(), "{status}: {rest}");

    let lines = file_lines(&eve);
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let stats = events.last().expect("final stats");
    assert_eq!(stats["stats"]["rules"]["reloads"], 1, "{stats}");
    assert_eq!(stats["stats"]["rules"]["failed_reloads"], 1, "{stats}");
    assert!(
        stats["stats"]["rules"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("assets.toml:1")),
        "{stats}"
    );
    let smtp = |from_second: bool| {
        events
            .iter()
            .filter(|e| e["event_type"] == "smtp" && (e["src_ip"] == "10.78.0.1") == from_second)
            .map(|e| {
                e["src_groups"]
                    .as_array()
                    .is_some_and(|g| g.iter().any(|n| n == "reloaded"))
            })
            .collect::<Vec<bool>>()
    };
    let (before, after) = (smtp(false), smtp(true));
    assert!(
        before.len() > 10 && after.len() >= 8,
        "{} and {}",
        before.len(),
        after.len()
    );
    assert!(
        before.iter().all(|g| !g),
        "before the reload: no such group"
    );
    assert!(
        after.iter().all(|g| *g),
        "after it: every client of the new group is in it: {after:?}"
    );
}

/// When capture stops, every flow still in its close delay is reported at once: more than a
/// live output queues. A slow output gets them all, because once capture has stopped the
/// outputs are waited for instead of dropped from.
#[test]
fn the_flows_reported_at_the_stop_reach_a_slow_output() {
    use std::io::Read;
    let mut wire = Wire::up("burst");
    let pcap = wire.path("mail.pcap");
    // 12,000 flows sent in 5 s: none out of its 10 s close delay before the stop, and their
    // flow events more than the 4 MiB a live output queues.
    mail_pcap(&pcap, 256);
    let sock = wire.path("flows.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).expect("listen");
    let (stopping, stopped) = std::sync::mpsc::channel::<()>();
    // Takes nothing until the stop, then reads slowly (about 10 MB/s) until the sensor exits.
    let reader = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let _ = stopped.recv();
        let mut got = Vec::new();
        let mut piece = vec![0u8; 64 << 10];
        loop {
            match conn.read(&mut piece) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&piece[..n]),
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        got
    });
    let eve = wire.path("eve.json");
    let flows = format!("unix-stream:{}?types=flow", sock.display());
    let err = wire.sensor(&["-o", eve.to_str().expect("utf-8"), "-o", &flows]);
    wire.send(&pcap, 400);
    std::thread::sleep(Duration::from_millis(500));
    stopping.send(()).expect("reader waits");
    let (status, rest) = wire.stop(err);
    let got = reader.join().expect("reader");
    assert!(status.success(), "{status}: {rest}");

    let live = file_lines(&eve);
    let flow_events = live
        .iter()
        .filter(|l| l.contains(r#""event_type":"flow""#))
        .count();
    assert!(flow_events > 10_000, "{flow_events} flow events");
    let stats: serde_json::Value =
        serde_json::from_str(live.last().expect("final stats")).expect("JSON");
    assert_eq!(stats["stats"]["capture"]["kernel_drops"], 0, "{stats}");
    assert_eq!(
        stats["stats"]["flow"]["timed_out"], 0,
        "all reported at the stop: {stats}"
    );
    let streamed = got.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
    assert_eq!(
        streamed, flow_events,
        "the slow output has every flow: {rest}"
    );
    assert!(
        rest.contains(&format!(
            "output {flows}: {flow_events} events written, 0 dropped"
        )),
        "{rest}"
    );
}

/// One output that takes nothing (a unix stream whose reader never reads) and one that is not
/// there at all: live capture goes on, the file output gets every event, and both say what
/// they dropped.
#[test]
fn a_stuck_or_missing_output_stalls_nothing() {
    let mut wire = Wire::up("stuck");
    let pcap = wire.path("mail.pcap");
    // Enough events (11 MB) to overflow what a live output queues (4 MiB) and the socket.
    mail_pcap(&pcap, 128);
    let sock = wire.path("stuck.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).expect("listen");
    // Accepts, then holds the connection without reading until the test ends.
    let holder = std::thread::spawn(move || listener.accept().map(|(conn, _)| conn));
    let eve = wire.path("eve.json");
    let recorded = wire.path("live.pcap");
    let stuck = format!("unix-stream:{}", sock.display());
    let err = wire.sensor(&[
        "-o",
        eve.to_str().expect("utf-8"),
        "-o",
        &stuck,
        "-o",
        "redis://127.0.0.1:1/nowhere",
        "--write-pcap",
        recorded.to_str().expect("utf-8"),
    ]);
    wire.send(&pcap, 200);
    std::thread::sleep(Duration::from_millis(500));
    let (status, rest) = wire.stop(err);
    let _conn = holder.join().expect("holder");
    assert!(status.success(), "{status}: {rest}");

    let live = file_lines(&eve);
    assert!(live.len() > 1_000, "{} events", live.len());
    assert!(
        event_multiset(&live) == event_multiset(&replay_lines(&recorded)),
        "the file output has every event"
    );
    let stats: serde_json::Value =
        serde_json::from_str(live.last().expect("final stats")).expect("JSON");
    assert_eq!(stats["stats"]["capture"]["kernel_drops"], 0, "{stats}");
    let output = |name: &str| {
        stats["stats"]["output"]
            .as_array()
            .and_then(|o| o.iter().find(|o| o["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {stats}"))
    };
    assert!(output(&stuck)["dropped"].as_u64() > Some(0), "{stats}");
    assert!(
        output("redis://127.0.0.1:1/nowhere")["dropped"].as_u64() > Some(0),
        "{stats}"
    );
    assert!(output("redis://127.0.0.1:1/nowhere")["failures"].as_u64() > Some(0));
    assert_eq!(output(eve.to_str().expect("utf-8"))["dropped"], 0);
    let redis = rest
        .lines()
        .find(|l| {
            l.starts_with("spamtap: output redis://127.0.0.1:1/nowhere:") && l.contains("written")
        })
        .unwrap_or_else(|| panic!("{rest}"));
    assert!(redis.contains(": 0 events written"), "{redis}");
}
