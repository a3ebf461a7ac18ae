//! Header decoding against a mail library's: the Subject of generated messages as spamtap's
//! `smtp` event shows it, next to what Python's email package (default policy) reads from the
//! same header (`tests/mail/read_subjects.py`). The headers are RFC 2047's own examples and
//! ones from mail libraries' and tools' test material, each named.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Scratch, of_type, root};
use spamtap_gen::{Link, PcapWriter};

/// (where the header comes from, the header's value as sent).
const SUBJECTS: &[(&str, &str)] = &[
    (
        "RFC 2047 section 8",
        "(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)",
    ),
    (
        "RFC 2047 section 8",
        "=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\r\n =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=",
    ),
    (
        "enough_mail (Dart) encodings test: a client's words run together, spaces as Q words",
        "=?utf-8?Q?Chat=3A?==?utf-8?Q?_?=oh=?utf-8?Q?_?==?utf-8?Q?hi=2C?==?utf-8?Q?__?=how=?utf-8?Q?_?=do=?utf-8?Q?_?=you=?utf-8?Q?_?==?utf-8?Q?do=3F?==?utf-8?Q?_?==?utf-8?Q?=3A-)?=",
    ),
    (
        "Siltaar/unicode_subject README: a GB2312 spam subject",
        "=?GB2312?B?zqrKssO00rW8qNfcsrvA7c/ro78=?=",
    ),
    (
        "thc2cat/utf8submimedecode README",
        "Re: =?UTF-8?B?w4l0YXQgQ0VU?=",
    ),
    (
        "email_utils encoding tests: ISO-2022-JP",
        "=?iso-2022-jp?b?GyRCRW1CQE86GyhCIDxtb21vQHRhcm8ubmUuanA=?=",
    ),
    (
        "email_utils encoding tests: a quoted Q word",
        "\"=?UTF-8?Q?Igor_=C5=A0erko?=\"",
    ),
    (
        "a Q word ending in '_' before another word",
        "=?UTF-8?Q?Re=3A_?= =?UTF-8?Q?hi?=",
    ),
    (
        "a UTF-8 character split across two words",
        "=?UTF-8?Q?caf=C3?= =?UTF-8?Q?=A9?=",
    ),
];

#[test]
fn subjects_read_as_pythons_email_package_reads_them() {
    common::require_programs(&["python3"]);
    let scratch = Scratch::new("header-decoding");
    let pcap = scratch.path("subjects.pcap");
    let mut writer = PcapWriter::create(&pcap, &Link::ethernet()).expect("pcap");
    for (i, (_, subject)) in SUBJECTS.iter().enumerate() {
        let frames = spamtap_gen::mail_session(
            &format!("192.0.2.50:{}", 41000 + i),
            "198.51.100.25:25",
            spamtap_gen::EPOCH.saturating_add_secs(i as u64),
            "220 mx.example.net ESMTP",
            "EHLO client.example.org",
            format!("Subject: {subject}\r\nFrom: a@example.org\r\n\r\nHello.\r\n.\r\n").as_bytes(),
        );
        for frame in &frames {
            writer.write(frame);
        }
    }
    writer.finish().expect("pcap written");
    let events = common::replay(&[], &[&pcap]);
    let mut ours: Vec<(u64, String)> = of_type(&events, "smtp")
        .iter()
        .map(|e| {
            let port = e["src_port"].as_u64().expect("src_port");
            let subject = e["email"]["subject"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (port, subject)
        })
        .collect();
    ours.sort();
    let ours: Vec<String> = ours.into_iter().map(|(_, s)| s).collect();

    let mut python = Command::new("python3")
        .arg(root().join("tests/mail/read_subjects.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let values: Vec<&str> = SUBJECTS.iter().map(|(_, v)| *v).collect();
    python
        .stdin
        .take()
        .expect("stdin")
        .write_all(serde_json::to_string(&values).expect("json").as_bytes())
        .expect("write");
    let out = python.wait_with_output().expect("python3 ends");
    assert!(out.status.success(), "read_subjects.py failed");
    let theirs: Vec<String> = serde_json::from_slice(&out.stdout).expect("a JSON list");

    assert_eq!(ours.len(), SUBJECTS.len(), "one smtp event per message");
    for (((source, value), ours), theirs) in SUBJECTS.iter().zip(&ours).zip(&theirs) {
        assert_eq!(ours, theirs, "{source}: {value:?}");
    }
}
