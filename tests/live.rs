//! Live capture on a real wire: two network namespaces joined by a veth pair, real TCP between
//! them (Python's socket module on both ends), `spamtap live` on one end, flow events checked.
//!
//! Needs root and iproute2 (CI runs as root; `tests/run.sh` installs iproute2). Without them
//! the test fails and says what is missing: it never passes without having run.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{final_stats, of_type, parse_lines, sh};

/// Namespaces and processes of one test, removed on drop even when the test fails.
struct TestNet {
    ns: [String; 2],
    children: Vec<Child>,
}

impl Drop for TestNet {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in &self.ns {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn require_root_and_iproute2() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the live-capture test needs root (network namespaces, packet capture); run the suite as root, e.g. sudo bash tests/run.sh"
    );
    let ip = Command::new("ip").arg("-V").output();
    assert!(
        ip.is_ok_and(|o| o.status.success()),
        "the live-capture test needs iproute2's `ip`: apt-get install iproute2"
    );
    let py = Command::new("python3").arg("-V").output();
    assert!(
        py.is_ok_and(|o| o.status.success()),
        "the live-capture test needs python3"
    );
}

const SERVER: &str = r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.77.0.2", 2525)); s.listen(8)
print("listening", flush=True)
for _ in range(2):
    c, _ = s.accept()
    got = 0
    while True:
        b = c.recv(65536)
        if not b: break
        got += len(b)
    c.sendall(b"250 received %d\r\n" % got)
    c.close()
"#;

const CLIENT: &str = r#"
import socket, time
for size in (100000, 3000):
    c = socket.create_connection(("10.77.0.2", 2525))
    c.sendall(b"x" * size)
    c.shutdown(socket.SHUT_WR)
    while c.recv(4096): pass
    c.close()
try:
    socket.create_connection(("10.77.0.2", 2526), timeout=2)
except OSError:
    pass
time.sleep(0.5)
"#;

#[test]
fn live_capture_on_a_veth_pair() {
    require_root_and_iproute2();
    let id = std::process::id();
    let net = TestNet {
        ns: [format!("spt-c-{id}"), format!("spt-s-{id}")],
        children: Vec::new(),
    };
    let mut net = net;
    let [c, s] = net.ns.clone();
    let (vc, vs) = (
        format!("sptc{}", id % 100_000),
        format!("spts{}", id % 100_000),
    );
    sh(&["ip", "netns", "add", &c]);
    sh(&["ip", "netns", "add", &s]);
    sh(&[
        "ip", "link", "add", &vc, "netns", &c, "type", "veth", "peer", "name", &vs, "netns", &s,
    ]);
    sh(&["ip", "-n", &c, "addr", "add", "10.77.0.1/24", "dev", &vc]);
    sh(&["ip", "-n", &s, "addr", "add", "10.77.0.2/24", "dev", &vs]);
    for (ns, dev) in [(&c, &vc), (&s, &vs)] {
        sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
        sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    }

    let out_file = std::env::temp_dir().join(format!("spamtap-live-{id}.json"));
    let mut sensor = Command::new("ip")
        .args([
            "netns",
            "exec",
            &c,
            env!("CARGO_BIN_EXE_spamtap"),
            "live",
            "-i",
            &vc,
        ])
        .args([
            "--sensor",
            "live-test",
            "--workers",
            "2",
            "--stats-interval",
            "0",
            "-o",
        ])
        .arg(&out_file)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spamtap live starts");
    let mut sensor_err = BufReader::new(sensor.stderr.take().expect("stderr"));
    let mut line = String::new();
    sensor_err
        .read_line(&mut line)
        .expect("spamtap reports it is capturing");
    assert!(line.contains("capturing on"), "spamtap live: {line}");
    net.children.push(sensor);

    let mut server = Command::new("ip")
        .args(["netns", "exec", &s, "python3", "-c", SERVER])
        .stdout(Stdio::piped())
        .spawn()
        .expect("server starts");
    let mut ready = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("server output");
    assert_eq!(ready.trim(), "listening");
    net.children.push(server);

    let client = Command::new("ip")
        .args(["netns", "exec", &c, "python3", "-c", CLIENT])
        .output()
        .expect("client runs");
    assert!(
        client.status.success(),
        "client: {}",
        String::from_utf8_lossy(&client.stderr)
    );

    // SIGINT: spamtap stops capturing and drains every open flow.
    let sensor = &mut net.children[0];
    let status = common::interrupt(sensor, "spamtap live", Duration::from_secs(20));
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut sensor_err, &mut rest);
    assert!(
        status.success(),
        "spamtap live exited with {status}: {rest}"
    );

    let events = parse_lines(&std::fs::read(&out_file).expect("events written"));
    let _ = std::fs::remove_file(&out_file);
    for e in &events {
        assert_eq!(e["in_iface"], vc.as_str(), "{e}");
        assert_eq!(e["sensor"], "live-test");
    }
    let flows = of_type(&events, "flow");
    let to = |port: u64| -> Vec<&serde_json::Value> {
        flows
            .iter()
            .copied()
            .filter(|f| {
                f["src_ip"] == "10.77.0.1" && f["dest_ip"] == "10.77.0.2" && f["dest_port"] == port
            })
            .collect()
    };
    let data = to(2525);
    assert_eq!(data.len(), 2, "two transfers: {flows:?}");
    let mut sizes: Vec<u64> = data
        .iter()
        .map(|f| f["flow"]["data_bytes_toserver"].as_u64().unwrap_or(0))
        .collect();
    sizes.sort();
    assert_eq!(sizes, vec![3000, 100_000]);
    for f in &data {
        assert_eq!(f["flow"]["state"], "closed", "{f}");
        assert_eq!(f["flow"]["missed_bytes"], 0, "{f}");
        let reply = format!("250 received {}\r\n", f["flow"]["data_bytes_toserver"]);
        assert_eq!(
            f["flow"]["data_bytes_toclient"].as_u64(),
            Some(reply.len() as u64)
        );
        assert!(
            f["community_id"]
                .as_str()
                .is_some_and(|c| c.starts_with("1:"))
        );
    }
    let refused = to(2526);
    assert_eq!(refused.len(), 1, "{flows:?}");
    assert_eq!(refused[0]["flow"]["state"], "rejected");

    let stats = final_stats(&events);
    assert!(stats["capture"]["packets"].as_u64() > Some(20), "{stats}");
    assert_eq!(stats["capture"]["queue_drops"], 0);
    assert!(
        stats["capture"]["kernel_packets"].as_u64() > Some(0),
        "libpcap stats read: {stats}"
    );
}

#[test]
fn capture_without_privilege_says_how_to_fix_it() {
    require_root_and_iproute2();
    // A copy any user can execute, wherever the build tree lives.
    let dir = std::env::temp_dir().join(format!("spamtap-perm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bin = dir.join("spamtap");
    std::fs::copy(env!("CARGO_BIN_EXE_spamtap"), &bin).expect("copy binary");
    sh(&[
        "chmod",
        "755",
        dir.to_str().expect("utf-8"),
        bin.to_str().expect("utf-8"),
    ]);
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(&bin)
        .args(["live", "-i", "lo"])
        .output()
        .expect("runuser (util-linux) runs");
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no permission") && err.contains("setcap cap_net_raw,cap_net_admin+eip"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// A sensor on a silent link still stops at once: libpcap's read timeout does not fire on an
/// idle link, so a blocking read would never see the signal.
#[test]
fn stops_promptly_on_an_idle_link() {
    require_root_and_iproute2();
    let ns = format!("spt-idle-{}", std::process::id());
    let net = TestNet {
        ns: [ns.clone(), ns.clone()],
        children: Vec::new(),
    };
    let mut net = net;
    sh(&["ip", "netns", "add", &ns]);
    sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
    let mut sensor = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            env!("CARGO_BIN_EXE_spamtap"),
            "live",
            "-i",
            "lo",
        ])
        .args(["--sensor", "idle", "-o", "/dev/null"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spamtap live starts");
    let mut line = String::new();
    BufReader::new(sensor.stderr.take().expect("stderr"))
        .read_line(&mut line)
        .expect("spamtap reports it is capturing");
    assert!(line.contains("capturing on"), "{line}");
    std::thread::sleep(Duration::from_millis(500));
    let status = common::interrupt(
        &mut sensor,
        "spamtap live on an idle link",
        Duration::from_secs(3),
    );
    assert!(status.success(), "{status}");
    net.children.push(sensor);
}
