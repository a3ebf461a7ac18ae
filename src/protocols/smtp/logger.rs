//! The `smtp` event: what one mail transaction (or a session without one) looked like, and its
//! JSON layout (`smtp` and `email` objects).

use std::sync::Arc;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};

use crate::memory::allocation;
use crate::protocols::AppRecord;
use crate::protocols::tls::TlsSession;
use crate::software::Software;

/// How a transaction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The server accepted the message (2xx after the data).
    Queued,
    /// The server refused the sender, every recipient, the DATA command or the message.
    Rejected,
    /// The client gave up (RSET, a new MAIL, QUIT, or the connection closed) before the data.
    Aborted,
    /// Part of the transaction was never seen (a gap), or the message data never ended.
    Incomplete,
    /// The client sent the whole message but no reply was seen (one-sided capture).
    Sent,
    /// The session switched to TLS (STARTTLS accepted, then a TLS handshake) before any
    /// transaction.
    Tls,
    /// The session ended without a transaction (QUIT only, rejected at greeting or HELO).
    NoTransaction,
}

/// What a list of keywords or header names holds before it must grow.
const TEXT_CAPACITY: usize = 128;

/// The EHLO keywords the server offered (`smtp.extensions`, an array in the event), in one
/// string the session and every record of it share.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extensions(Arc<str>);

impl Extensions {
    /// The keywords in upper case. Keywords hold no whitespace, so one space separates them.
    pub fn new<'a>(keywords: impl IntoIterator<Item = &'a str>) -> Self {
        let mut joined = String::with_capacity(TEXT_CAPACITY);
        for keyword in keywords.into_iter().filter(|k| !k.is_empty()) {
            if !joined.is_empty() {
                joined.push(' ');
            }
            let start = joined.len();
            joined.push_str(keyword);
            // Only ASCII letters change case, so every other byte (and the UTF-8) is kept.
            if let Some(added) = joined.get_mut(start..) {
                added.make_ascii_uppercase();
            }
        }
        Extensions(Arc::from(joined))
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.split(' ').filter(|k| !k.is_empty())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Extensions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for keyword in self.iter() {
            seq.serialize_element(keyword)?;
        }
        seq.end()
    }
}

/// The message's header names in order (`email.header_names`, an array in the event), in one
/// string: a name never holds a line feed, so one separates them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderNames {
    text: String,
    count: usize,
}

impl HeaderNames {
    pub fn push(&mut self, name: &str) {
        if self.count > 0 {
            self.text.push('\n');
        } else {
            // The names of most messages fit: one allocation, not one per doubling.
            self.text.reserve(TEXT_CAPACITY);
        }
        self.text.push_str(name);
        self.count += 1;
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.text.split('\n').take(self.count)
    }

    /// The names with `separator` between them.
    pub fn join(&self, separator: &str) -> String {
        self.text.replace('\n', separator)
    }

    fn heap_bytes(&self) -> usize {
        allocation(self.text.capacity())
    }
}

impl<'a> FromIterator<&'a str> for HeaderNames {
    fn from_iter<I: IntoIterator<Item = &'a str>>(names: I) -> Self {
        let mut all = HeaderNames::default();
        for name in names {
            all.push(name);
        }
        all
    }
}

impl Serialize for HeaderNames {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.count))?;
        for name in self.iter() {
            seq.serialize_element(name)?;
        }
        seq.end()
    }
}

/// The verb of the client's greeting (`smtp.helo_verb`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum HeloVerb {
    #[serde(rename = "HELO")]
    Helo,
    #[serde(rename = "EHLO")]
    Ehlo,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AuthRecord {
    pub mechanism: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `None` when no final reply was seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    /// Failed AUTH attempts earlier in the session (the fields above are the last attempt).
    #[serde(skip_serializing_if = "is_zero")]
    pub failures: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// How far an estimate from encrypted records can be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// Every server reply after the prologue was read, with the server's own reply lengths and
    /// an AEAD cipher (exact plaintext lengths).
    High,
    /// The server's software was not known (the best-fitting reply lengths were used), or a
    /// CBC cipher blurs lengths by up to a block.
    Medium,
    /// Some replies fit no reading (refused recipients, errors), the last message had no
    /// reply, or part of the transcript is missing.
    Low,
}

/// `smtp.encrypted`: what a session carried inside TLS, estimated from its record lengths.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Encrypted {
    /// Messages the server accepted.
    pub transactions: u32,
    /// Recipients the server accepted, in accepted messages.
    pub recipients: u32,
    /// Message bytes, without the final `.` line.
    pub message_bytes: u64,
    pub confidence: Confidence,
    /// The server software whose reply lengths (`smtp_replies.toml`) the estimate used.
    pub server_profile: String,
}

/// The `smtp` object.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SmtpFields {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub banner: Option<String>,
    /// The first line of the server's reply to EHLO, for fingerprint rules (`ehlo_reply`);
    /// not written: the banner names the server in the event.
    #[serde(skip)]
    pub ehlo_reply: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helo_verb: Option<HeloVerb>,
    /// The client's commands as spelt, `;`-separated (`EHLO;MAIL FROM:<;RCPT TO:<;DATA`).
    /// Not in the event: fingerprint rules match it.
    #[serde(skip)]
    pub commands: String,
    #[serde(skip_serializing_if = "Extensions::is_empty")]
    pub extensions: Extensions,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthRecord>,
    pub starttls: bool,
    pub pregreet: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail_from: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rcpt_to: Vec<String>,
    /// The server's verdict on each of `rcpt_to` (`None`: no reply seen). Not in the event:
    /// the detections use it to count accepted recipients.
    #[serde(skip)]
    pub rcpt_verdicts: Vec<Option<bool>>,
    pub rcpt_accepted: u32,
    pub rcpt_rejected: u32,
    pub trans_depth: u32,
    pub data_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reply: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_id: Option<String>,
    pub status: Status,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<&'static str>,
    /// The client's and the server's software, by the fingerprint rules (first match).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_software: Option<Software>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_software: Option<Software>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<Encrypted>,
}

/// The `email` object: the message headers that matter, decoded.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EmailFields {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x_mailer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x_priority: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x_originating_ip: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub received: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boundary: Option<String>,
    #[serde(skip_serializing_if = "HeaderNames::is_empty")]
    pub header_names: HeaderNames,
}

impl EmailFields {
    /// Heap bytes of the fields' text (see `StreamParser::heap_bytes`).
    pub fn heap_bytes(&self) -> usize {
        let one = |s: &Option<String>| s.as_ref().map_or(0, |s| allocation(s.capacity()));
        let all = |v: &Vec<String>| {
            allocation(v.capacity() * size_of::<String>())
                + v.iter().map(|s| allocation(s.capacity())).sum::<usize>()
        };
        [
            &self.from,
            &self.reply_to,
            &self.subject,
            &self.date,
            &self.message_id,
            &self.x_mailer,
            &self.user_agent,
            &self.x_priority,
            &self.x_originating_ip,
            &self.content_type,
            &self.boundary,
        ]
        .into_iter()
        .map(one)
        .sum::<usize>()
            + [&self.to, &self.cc, &self.received]
                .into_iter()
                .map(all)
                .sum::<usize>()
            + self.header_names.heap_bytes()
    }
}

/// One `smtp` event: the `smtp` object, and the `email` object when a message was seen.
#[derive(Clone, Debug, PartialEq)]
pub struct SmtpRecord {
    pub smtp: SmtpFields,
    pub email: Option<EmailFields>,
    /// Every fingerprint rule that matched, in rule order (the detections use them all).
    pub software: Vec<Software>,
    /// The TLS session after STARTTLS (or on 465): its hello for fingerprints, its record
    /// lengths for the estimate.
    pub tls: Option<Arc<TlsSession>>,
}

impl SmtpRecord {
    /// A record of `status` with nothing seen yet.
    pub fn empty(status: Status) -> Self {
        SmtpRecord {
            smtp: SmtpFields {
                banner: None,
                ehlo_reply: None,
                helo: None,
                helo_verb: None,
                commands: String::new(),
                extensions: Extensions::default(),
                auth: None,
                starttls: false,
                pregreet: false,
                mail_from: None,
                rcpt_to: Vec::new(),
                rcpt_verdicts: Vec::new(),
                rcpt_accepted: 0,
                rcpt_rejected: 0,
                trans_depth: 0,
                data_bytes: 0,
                last_reply: None,
                queue_id: None,
                status,
                anomalies: Vec::new(),
                client_software: None,
                server_software: None,
                encrypted: None,
            },
            email: None,
            software: Vec::new(),
            tls: None,
        }
    }
}

impl AppRecord for SmtpRecord {
    const EVENT_TYPE: &'static str = "smtp";

    fn write_fields<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry("smtp", &self.smtp)?;
        if let Some(email) = &self.email {
            map.serialize_entry("email", email)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_are_one_string_written_as_an_array() {
        let e = Extensions::new(["PIPELINING", "", "size"]);
        assert_eq!(e.iter().collect::<Vec<_>>(), ["PIPELINING", "SIZE"]);
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"["PIPELINING","SIZE"]"#
        );
        assert!(Extensions::new([]).is_empty());
        assert_eq!(e.clone(), e, "records share the session's string");
    }

    #[test]
    fn header_names_are_one_string_written_as_an_array() {
        let names: HeaderNames = ["From", "", "X-Mailer", "b,c"].into_iter().collect();
        assert_eq!(names.len(), 4);
        assert_eq!(
            names.iter().collect::<Vec<_>>(),
            ["From", "", "X-Mailer", "b,c"]
        );
        assert_eq!(
            serde_json::to_string(&names).unwrap(),
            r#"["From","","X-Mailer","b,c"]"#
        );
        assert_eq!(names.join(","), "From,,X-Mailer,b,c");
        let one: HeaderNames = [""].into_iter().collect();
        assert_eq!(
            one.iter().collect::<Vec<_>>(),
            [""],
            "an empty name is a name"
        );
        assert!(HeaderNames::default().is_empty());
        assert_eq!(HeaderNames::default().iter().count(), 0);
    }
}
