//! Helpers shared by the integration tests: run the real binaries from the repository root.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/corpus`, which CI provides beside the clone. Tests that need it fail, with the
/// reason, when it is missing: they must never pass without having run.
pub fn corpus() -> PathBuf {
    let dir = root().join("../shared/corpus");
    assert!(
        dir.join("MANIFEST.tsv").is_file(),
        "the third-party corpus is missing at {}: clone the repository next to shared/",
        dir.display()
    );
    dir
}

/// The names of the files in `corpus()/subdir` that `keep` accepts, sorted.
pub fn corpus_names(subdir: &str, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let dir = corpus().join(subdir);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| keep(n))
        .collect();
    names.sort();
    names
}

pub fn spamtap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spamtap"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the spamtap binary runs")
}

/// Replays files and returns the parsed events; panics with stderr if the run failed.
pub fn replay(extra: &[&str], files: &[&Path]) -> Vec<serde_json::Value> {
    let mut args = vec!["replay", "--sensor", "test"];
    args.extend_from_slice(extra);
    let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(files.iter().map(String::as_str));
    let out = spamtap(&args);
    assert!(
        out.status.success(),
        "spamtap {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_lines(&out.stdout)
}

pub fn parse_lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8(bytes.to_vec())
        .expect("output is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

pub fn of_type<'a>(events: &'a [serde_json::Value], t: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event_type"] == t).collect()
}

pub fn final_stats(events: &[serde_json::Value]) -> &serde_json::Value {
    &of_type(events, "stats")
        .last()
        .expect("a final stats event")["stats"]
}

/// A Zeek TSV log as rows of column -> value.
pub fn zeek_rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).expect("zeek log");
    let mut columns: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for line in text.lines() {
        if let Some(fields) = line.strip_prefix("#fields\t") {
            columns = fields.split('\t').map(str::to_string).collect();
        } else if line.starts_with('#') {
            continue;
        } else if columns.is_empty() || line.starts_with("uid\t") || line.starts_with("id.orig_h\t")
        {
            // btest ".cut" files: a plain header line instead of #fields.
            columns = line.split('\t').map(str::to_string).collect();
        } else {
            rows.push(
                columns
                    .iter()
                    .cloned()
                    .zip(line.split('\t').map(str::to_string))
                    .collect(),
            );
        }
    }
    rows
}

/// Sends SIGINT and waits for the process to exit; fails if it takes longer than `within`.
pub fn interrupt(child: &mut Child, what: &str, within: Duration) -> ExitStatus {
    // SAFETY: kill with a valid pid and signal.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not stop within {within:?} of SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes the namespaces and every process in them, even when the test fails.
pub struct Network {
    pub dir: PathBuf,
    pub children: Vec<Child>,
}

impl Network {
    /// The test network of `tests/real/network.sh`, state under a temporary directory named
    /// after `label`; and the interface the sensor captures on.
    pub fn up(label: &str) -> (Network, String) {
        let dir = std::env::temp_dir().join(format!("spamtap-{label}-{}", std::process::id()));
        let net = Network {
            dir: dir.clone(),
            children: Vec::new(),
        };
        let up = Command::new("bash")
            .arg(root().join("tests/real/network.sh"))
            .arg("up")
            .arg(&dir)
            .output()
            .expect("network.sh runs");
        assert!(
            up.status.success(),
            "network.sh up: {}",
            String::from_utf8_lossy(&up.stderr)
        );
        let iface = String::from_utf8_lossy(&up.stdout).trim().to_string();
        (net, iface)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("bash")
            .arg(root().join("tests/real/network.sh"))
            .arg("down")
            .arg(&self.dir)
            .status();
    }
}

pub fn require(programs: &[&str]) {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the real-programs tests need root (namespaces, servers, capture): sudo bash tests/run.sh"
    );
    require_programs(programs);
}

/// Fails, saying how to install them, unless every program is on the PATH.
pub fn require_programs(programs: &[&str]) {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {p}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    assert!(
        missing.is_empty(),
        "missing {missing:?}: run bash tests/deps.sh --test"
    );
}

/// Starts a command in the client namespace and waits for a line on stderr saying it is ready.
pub fn start_in_client_namespace(args: &[&str], ready: &str) -> Child {
    let mut child = Command::new("ip")
        .args(["netns", "exec", "spt-cli"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    while !line.contains(ready) {
        line.clear();
        let n = err.read_line(&mut line).expect("read stderr");
        assert!(n > 0, "{args:?} ended before saying {ready:?}");
    }
    // Keep draining stderr so the process never blocks on it.
    std::thread::spawn(move || for _ in err.lines() {});
    child
}

/// tcpdump on the client's end of the test network, writing every byte of every packet to
/// `pcap` as it comes; returns once it listens.
pub fn start_tcpdump(iface: &str, pcap: &Path) -> Child {
    start_in_client_namespace(
        &[
            "tcpdump",
            "-i",
            iface,
            "-s",
            "0",
            "-U",
            "-w",
            pcap.to_str().expect("utf-8"),
        ],
        "listening on",
    )
}

/// A scratch directory and the servers started in it, stopped and removed on drop.
pub struct Scratch {
    pub dir: PathBuf,
    pub children: Vec<Child>,
}

impl Scratch {
    pub fn new(label: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("spamtap-out-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch {
            dir,
            children: Vec::new(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::env::var_os("KEEP_SCRATCH").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn wait_for(what: &str, within: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ready() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// redis-server on a loopback port and a unix socket, with a password for the default user and
/// an ACL user `ingest`; its data (append-only, fsync always) in `dir`.
pub fn start_redis(scratch: &mut Scratch, port: u16) {
    require_programs(&["redis-server"]);
    let conf = scratch.path("redis.conf");
    std::fs::write(
        &conf,
        format!(
            "bind 127.0.0.1\nport {port}\nunixsocket {}\nunixsocketperm 700\ndir {}\n\
             appendonly yes\nappendfsync always\nsave \"\"\nrequirepass defaultpw\n\
             user ingest on >ingestpw ~* &* +@all\nloglevel warning\n",
            scratch.path("redis.sock").display(),
            scratch.dir.display()
        ),
    )
    .expect("redis.conf");
    let child = Command::new("redis-server")
        .arg(&conf)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    scratch.children.push(child);
    wait_for("redis-server listens", Duration::from_secs(10), || {
        redis_client(port).is_ok()
    });
}

pub fn redis_client(port: u16) -> redis::RedisResult<redis::Connection> {
    redis::Client::open(format!("redis://ingest:ingestpw@127.0.0.1:{port}/"))?.get_connection()
}

/// Runs a command that must succeed; its stderr when it does not.
pub fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A scratch directory with a redis-server of its own (see [`start_redis`]), and its port.
pub fn redis_scratch(label: &str) -> (Scratch, u16) {
    let mut scratch = Scratch::new(label);
    let port = free_port();
    start_redis(&mut scratch, port);
    (scratch, port)
}
