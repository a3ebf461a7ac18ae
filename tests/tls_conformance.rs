//! TLS fingerprints and certificates agree with independent implementations, on every TLS
//! session of the third-party corpus and of `pcaps/`: JA3 and SNI with Wireshark's
//! (`tshark -e tls.handshake.ja3 -e tls.handshake.extensions_server_name`), JA4 with FoxIO's
//! `ja4plus` package, and the server certificate and version with Zeek's `x509.log` and
//! `ssl.log` baselines. Any difference fails the test.
//!
//! `tshark` (Debian's wireshark) and the `ja4plus` venv are installed by
//! `bash tests/deps.sh --test`; without them the test fails saying so.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use common::{corpus, of_type, replay, root};

/// Where `tests/deps.sh --test` puts the ja4plus package.
const JA4PLUS: &str = "/var/lib/spamtap-tests/venv/bin/ja4plus";

/// TLS after STARTTLS of IMAP (143) and POP3 (110) is not analysed: spamtap parses SMTP's
/// STARTTLS only, and a stream that starts in cleartext IMAP is not a TLS flow.
const NOT_SMTP_STARTTLS: &[u16] = &[110, 143];

/// The captures with TLS over TCP: the corpus files whose manifest names TLS, and ours.
fn captures() -> Vec<PathBuf> {
    let corpus = corpus();
    let manifest = std::fs::read_to_string(corpus.join("MANIFEST.tsv")).expect("manifest");
    let mut files: Vec<PathBuf> = manifest
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let protocols = cols.get(7)?;
            (protocols.contains("tls:") || protocols.contains("ssl:")).then(|| corpus.join(cols[0]))
        })
        .collect();
    let mut ours: Vec<PathBuf> = std::fs::read_dir(root().join("pcaps"))
        .expect("pcaps/")
        .map(|e| e.expect("entry").path())
        .collect();
    ours.sort();
    files.extend(ours);
    files
}

fn run(program: &str, args: &[&str], file: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("{program} cannot run ({e}): bash tests/deps.sh --test"));
    assert!(
        out.status.success(),
        "{program} on {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (client address, client port, JA3 hash, SNI) of every ClientHello tshark finds over TCP.
fn tshark_hellos(file: &Path) -> BTreeSet<(String, u64, String, String)> {
    let text = run(
        "tshark",
        &[
            "-n",
            "-Y",
            "tcp && tls.handshake.type == 1",
            "-T",
            "fields",
            "-E",
            "separator=/t",
            "-e",
            "ip.src",
            "-e",
            "ipv6.src",
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.dstport",
            "-e",
            "tls.handshake.ja3",
            "-e",
            "tls.handshake.extensions_server_name",
            "-r",
        ],
        file,
    );
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let addr = if f[0].is_empty() { f[1] } else { f[0] };
            let dest_port: u16 = f.get(3)?.parse().ok()?;
            (!NOT_SMTP_STARTTLS.contains(&dest_port)).then(|| {
                (
                    addr.to_string(),
                    f[2].parse().unwrap_or(0),
                    f.get(4).copied().unwrap_or("").to_string(),
                    f.get(5).copied().unwrap_or("").to_string(),
                )
            })
        })
        .collect()
}

/// (client address, client port, JA4) of every ClientHello ja4plus finds over TCP.
fn ja4plus_hellos(file: &Path) -> BTreeSet<(String, u64, String)> {
    let text = run(
        JA4PLUS,
        &["--format", "json", "--types", "ja4", "analyze"],
        file,
    );
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|v| {
            v["type"] == "ja4"
                && v["fingerprint"]
                    .as_str()
                    .is_some_and(|f| f.starts_with('t'))
        })
        .filter(|v| {
            v["dst_port"]
                .as_u64()
                .is_none_or(|p| !NOT_SMTP_STARTTLS.contains(&(p as u16)))
        })
        .map(|v| {
            (
                v["src_ip"].as_str().unwrap_or("").to_string(),
                v["src_port"].as_u64().unwrap_or(0),
                v["fingerprint"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn ja3_sni_and_ja4_agree_with_tshark_and_ja4plus() {
    assert!(
        Path::new(JA4PLUS).is_file(),
        "{JA4PLUS} is missing: bash tests/deps.sh --test"
    );
    let mut compared = 0;
    let mut differences = Vec::new();
    for file in captures() {
        let events = replay(&[], &[&file]);
        let tls = of_type(&events, "tls");
        let ours: BTreeSet<(String, u64, String, String)> = tls
            .iter()
            .filter(|e| e["tls"]["ja3"].is_object())
            .map(|e| {
                (
                    e["src_ip"].as_str().unwrap_or("").to_string(),
                    e["src_port"].as_u64().unwrap_or(0),
                    e["tls"]["ja3"]["hash"].as_str().unwrap_or("").to_string(),
                    e["tls"]["sni"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        let theirs = tshark_hellos(&file);
        if ours != theirs {
            differences.push(format!(
                "{}: JA3/SNI only spamtap {:?}, only tshark {:?}",
                file.display(),
                ours.difference(&theirs).collect::<Vec<_>>(),
                theirs.difference(&ours).collect::<Vec<_>>()
            ));
        }
        let ours_ja4: BTreeSet<(String, u64, String)> = tls
            .iter()
            .filter_map(|e| {
                Some((
                    e["src_ip"].as_str()?.to_string(),
                    e["src_port"].as_u64()?,
                    e["tls"]["ja4"].as_str()?.to_string(),
                ))
            })
            .collect();
        if !ours_ja4.is_empty() || !theirs.is_empty() {
            let theirs_ja4 = ja4plus_hellos(&file);
            if ours_ja4 != theirs_ja4 {
                differences.push(format!(
                    "{}: JA4 only spamtap {:?}, only ja4plus {:?}",
                    file.display(),
                    ours_ja4.difference(&theirs_ja4).collect::<Vec<_>>(),
                    theirs_ja4.difference(&ours_ja4).collect::<Vec<_>>()
                ));
            }
        }
        compared += ours.len();
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    assert!(compared >= 60, "only {compared} ClientHellos compared");
}

/// Zeek writes `CN=a,O=b,C=c`, most specific first; spamtap (as Suricata) `C=c, O=b, CN=a`.
fn zeek_order(dn: &str) -> String {
    let mut parts: Vec<&str> = dn.split(", ").collect();
    parts.reverse();
    parts.join(",")
}

/// `YYYY-MM-DDTHH:MM:SS` as seconds since 1970.
fn epoch(date: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| date[r].parse::<i64>().unwrap_or(0);
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

#[test]
fn the_server_certificate_agrees_with_zeeks_x509_log() {
    let dir = corpus().join("zeek");
    let events = replay(&[], &[&dir.join("smtp-starttls.pcap")]);
    let tls = of_type(&events, "tls");
    assert_eq!(tls.len(), 1);
    let t = &tls[0]["tls"];
    let x509 = std::fs::read_to_string(dir.join("smtp-starttls.pcap.zeek-smtp.starttls.x509.log"))
        .expect("x509.log");
    // The first certificate line is the server's own.
    let header: Vec<&str> = x509
        .lines()
        .find_map(|l| l.strip_prefix("#fields\t"))
        .expect("fields")
        .split('\t')
        .collect();
    let row: Vec<&str> = x509
        .lines()
        .find(|l| !l.starts_with('#'))
        .expect("a certificate")
        .split('\t')
        .collect();
    let field = |name: &str| row[header.iter().position(|h| *h == name).expect(name)];
    assert_eq!(
        t["serial"].as_str().unwrap().replace(':', ""),
        field("certificate.serial")
    );
    assert_eq!(
        zeek_order(t["subject"].as_str().unwrap()),
        field("certificate.subject")
    );
    assert_eq!(
        zeek_order(t["issuerdn"].as_str().unwrap()),
        field("certificate.issuer")
    );
    for (ours, theirs) in [
        ("notbefore", "certificate.not_valid_before"),
        ("notafter", "certificate.not_valid_after"),
    ] {
        let zeek: f64 = field(theirs).parse().unwrap();
        assert_eq!(epoch(t[ours].as_str().unwrap()), zeek as i64, "{ours}");
    }
    let san: Vec<&str> = t["subjectaltname"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(san.join(","), field("san.dns"));

    let ssl = std::fs::read_to_string(dir.join("smtp-starttls.pcap.zeek-smtp.starttls.ssl.log"))
        .expect("ssl.log");
    let header: Vec<&str> = ssl
        .lines()
        .find_map(|l| l.strip_prefix("#fields\t"))
        .expect("fields")
        .split('\t')
        .collect();
    let row: Vec<&str> = ssl
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap()
        .split('\t')
        .collect();
    let field = |name: &str| row[header.iter().position(|h| *h == name).expect(name)];
    assert_eq!(field("version"), "TLSv12");
    assert_eq!(t["version"], "TLS 1.2");
    assert_eq!(t["cipher"], field("cipher"));
    assert_eq!(
        t["session_resumed"].as_bool().unwrap_or(false),
        field("resumed") == "T"
    );
    assert_eq!(t["established"], field("established") == "T");
    assert_eq!(t["from_proto"], "smtp");
}
