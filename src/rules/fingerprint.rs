//! Fingerprint rules (`fingerprints.toml`): which mail clients, mail servers, webmail and spam
//! bots a session shows, from the banner, the greeting, the client's command spellings and
//! order, AUTH, and the message headers.
//!
//! Every regex condition of every rule is compiled into one `RegexSet` per field, so a session
//! costs one set match per field however many rules there are; only the rules whose every
//! condition matched run their own regexes, for the capture groups `name`, `version` and
//! `edition`. A rule's `genuine` habits, when the session breaks one, mark the identification
//! `forged` (a spam tool claiming to be The Bat!).

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use serde::{Deserialize, Deserializer, Serialize};
use toml::Spanned;

use super::{RuleError, RuleFile};
use crate::output::cap_string;
use crate::protocols::smtp::SmtpRecord;

/// What kind of software a rule identifies; it also says whose it is (the server's for
/// `mail_server`, the client's otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SoftwareType {
    MailClient,
    MailServer,
    Webmail,
    SpamBot,
    SocksProxy,
}

/// The alert a rule raises when its software is first seen on a host.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleAlert {
    pub signature: String,
    pub signature_id: u32,
    pub category: String,
    #[serde(deserialize_with = "severity")]
    pub severity: u8,
}

/// Software identified in a session.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Software {
    #[serde(rename = "type")]
    pub kind: SoftwareType,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edition: Option<String>,
    pub rule: Arc<str>,
    /// What matched (`field=value; ...`), and the habits a forgery broke; capped.
    pub evidence: String,
    pub forged: bool,
    #[serde(skip)]
    pub alert: Option<Arc<RuleAlert>>,
}

/// Longest evidence text.
const MAX_EVIDENCE: usize = 256;
/// Longest capture group value kept as name, version or edition.
const MAX_CAPTURE: usize = 64;

/// The fields a regex condition can test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Banner,
    Helo,
    Commands,
    AuthMechanism,
    XMailer,
    UserAgent,
    MessageId,
    Boundary,
    XPriority,
    HeaderOrder,
}

const FIELDS: [Field; 10] = [
    Field::Banner,
    Field::Helo,
    Field::Commands,
    Field::AuthMechanism,
    Field::XMailer,
    Field::UserAgent,
    Field::MessageId,
    Field::Boundary,
    Field::XPriority,
    Field::HeaderOrder,
];

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Banner => "banner",
            Field::Helo => "helo",
            Field::Commands => "commands",
            Field::AuthMechanism => "auth_mechanism",
            Field::XMailer => "x_mailer",
            Field::UserAgent => "user_agent",
            Field::MessageId => "message_id",
            Field::Boundary => "boundary",
            Field::XPriority => "x_priority",
            Field::HeaderOrder => "header_order",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum HeloShape {
    /// An address without brackets: `192.0.2.1`.
    BareIp,
    /// `[192.0.2.1]`.
    AddressLiteral,
    /// A name without a dot: `DESKTOP-4F2K`, `ylmf-pc`.
    NoDot,
    /// A dotless name that reads as random letters: `XKQZTRWP`.
    Random,
    /// A name with a dot.
    Fqdn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Quoting {
    Quoted,
    Unquoted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
enum HeloVerb {
    #[serde(rename = "HELO")]
    Helo,
    #[serde(rename = "EHLO")]
    Ehlo,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ServerSide {
    Internal,
    External,
}

/// A regex as written, compiled when the file is read (so its error points at its line).
#[derive(Clone, Debug)]
struct Pattern {
    source: String,
    regex: Regex,
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        let regex = RegexBuilder::new(&source)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| {
                // The regex crate's message draws a caret under the pattern over several
                // lines; one line is kept: what is wrong.
                let text = e.to_string();
                let what = text
                    .lines()
                    .rev()
                    .find_map(|l| l.trim().strip_prefix("error: "))
                    .unwrap_or(text.lines().next().unwrap_or_default())
                    .to_string();
                serde::de::Error::custom(format!("invalid regex {source:?}: {what}"))
            })?;
        Ok(Pattern { source, regex })
    }
}

fn severity<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let v = u8::deserialize(d)?;
    if (1..=3).contains(&v) {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "severity must be 1 (high), 2 or 3 (low), not {v}"
        )))
    }
}

/// The conditions of `match` (all must hold) or of `genuine` (each that applies must hold).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Conditions {
    banner: Option<Pattern>,
    helo: Option<Pattern>,
    /// Any of these shapes.
    helo_shape: Option<Vec<HeloShape>>,
    helo_verb: Option<HeloVerb>,
    commands: Option<Pattern>,
    pregreet: Option<bool>,
    auth_mechanism: Option<Pattern>,
    x_mailer: Option<Pattern>,
    user_agent: Option<Pattern>,
    message_id: Option<Pattern>,
    boundary: Option<Pattern>,
    charset: Option<Quoting>,
    x_priority: Option<Pattern>,
    header_order: Option<Pattern>,
    /// Any of these server ports (the tunnel's destination for a proxied session).
    dest_port: Option<Vec<u16>>,
    server: Option<ServerSide>,
}

impl Conditions {
    fn patterns(&self) -> Vec<(Field, &Pattern)> {
        let all = [
            (Field::Banner, &self.banner),
            (Field::Helo, &self.helo),
            (Field::Commands, &self.commands),
            (Field::AuthMechanism, &self.auth_mechanism),
            (Field::XMailer, &self.x_mailer),
            (Field::UserAgent, &self.user_agent),
            (Field::MessageId, &self.message_id),
            (Field::Boundary, &self.boundary),
            (Field::XPriority, &self.x_priority),
            (Field::HeaderOrder, &self.header_order),
        ];
        all.into_iter()
            .filter_map(|(f, p)| p.as_ref().map(|p| (f, p)))
            .collect()
    }

    fn has_other(&self) -> bool {
        self.helo_shape.is_some()
            || self.helo_verb.is_some()
            || self.pregreet.is_some()
            || self.charset.is_some()
            || self.dest_port.is_some()
            || self.server.is_some()
    }

    /// The conditions that are not regexes. `strict`: a condition on something the session
    /// does not have fails (for `match`); otherwise it does not apply (for `genuine`).
    fn others_hold(&self, f: &Features<'_>, strict: bool, evidence: &mut Evidence) -> bool {
        if let Some(shapes) = &self.helo_shape {
            match f.helo {
                Some(helo) => {
                    let have = helo_shapes(helo);
                    if !shapes.iter().any(|s| have.contains(s)) {
                        evidence.failed("helo", helo);
                        return false;
                    }
                    evidence.add("helo", helo);
                }
                None if strict => return false,
                None => {}
            }
        }
        if let Some(verb) = self.helo_verb {
            match f.helo_verb {
                Some(v) if v == verb => {}
                None if !strict => {}
                _ => return false,
            }
        }
        if let Some(pregreet) = self.pregreet {
            if f.pregreet != pregreet {
                return false;
            }
            if pregreet {
                evidence.add("pregreet", "true");
            }
        }
        if let Some(quoting) = self.charset {
            match f.charset {
                Some((q, text)) if q == quoting => evidence.add("content_type", text),
                Some((_, text)) => {
                    evidence.failed("content_type", text);
                    return false;
                }
                None if strict => return false,
                None => {}
            }
        }
        if let Some(ports) = &self.dest_port {
            if !ports.contains(&f.dest_port) {
                return false;
            }
        }
        if let Some(side) = self.server {
            if f.server_internal != (side == ServerSide::Internal) {
                return false;
            }
        }
        true
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFileRaw {
    #[serde(default, rename = "rule")]
    rules: Vec<RuleRaw>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleRaw {
    name: Spanned<String>,
    #[serde(rename = "type")]
    kind: SoftwareType,
    /// The name reported, unless a `name` capture group gives it.
    software: Option<String>,
    #[serde(rename = "match")]
    conditions: Spanned<Conditions>,
    genuine: Option<Conditions>,
    alert: Option<Spanned<RuleAlert>>,
}

struct Rule {
    name: Arc<str>,
    kind: SoftwareType,
    software: Option<String>,
    conditions: Conditions,
    /// How many regex conditions it has: all must match.
    regex_count: usize,
    genuine: Option<Conditions>,
    alert: Option<Arc<RuleAlert>>,
}

/// One field's regexes from every rule, as a set.
struct FieldSet {
    field: Field,
    set: RegexSet,
    /// Rule of each pattern in the set.
    rules: Vec<usize>,
}

/// The compiled rules.
#[derive(Default)]
pub struct Fingerprints {
    rules: Vec<Rule>,
    sets: Vec<FieldSet>,
    /// Rules without a regex condition: checked on every session.
    unconditional: Vec<usize>,
}

impl std::fmt::Debug for Fingerprints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprints({} rules)", self.rules.len())
    }
}

/// What a session shows, as the rules see it.
pub struct Features<'a> {
    banner: Option<&'a str>,
    helo: Option<&'a str>,
    helo_verb: Option<HeloVerb>,
    commands: Option<&'a str>,
    pregreet: bool,
    auth_mechanism: Option<&'a str>,
    x_mailer: Option<&'a str>,
    user_agent: Option<&'a str>,
    message_id: Option<&'a str>,
    boundary: Option<&'a str>,
    charset: Option<(Quoting, &'a str)>,
    x_priority: Option<&'a str>,
    header_order: Option<String>,
    dest_port: u16,
    server_internal: bool,
}

impl<'a> Features<'a> {
    /// `dest_port` and `server_internal` describe the mail server: the flow's server, or the
    /// destination of the tunnel the session went through.
    pub fn of(record: &'a SmtpRecord, dest_port: u16, server_internal: bool) -> Self {
        let smtp = &record.smtp;
        let email = record.email.as_ref();
        let charset = email
            .and_then(|e| e.content_type.as_deref())
            .and_then(|ct| {
                let lower = ct.to_ascii_lowercase();
                let at = lower.find("charset=")? + "charset=".len();
                let quoted = ct.as_bytes().get(at) == Some(&b'"');
                Some((
                    if quoted {
                        Quoting::Quoted
                    } else {
                        Quoting::Unquoted
                    },
                    ct,
                ))
            });
        Features {
            banner: smtp.banner.as_deref(),
            helo: smtp.helo.as_deref(),
            helo_verb: match smtp.helo_verb.as_deref() {
                Some("HELO") => Some(HeloVerb::Helo),
                Some("EHLO") => Some(HeloVerb::Ehlo),
                _ => None,
            },
            commands: Some(smtp.commands.as_str()).filter(|c| !c.is_empty()),
            pregreet: smtp.pregreet,
            auth_mechanism: smtp.auth.as_ref().map(|a| a.mechanism.as_str()),
            x_mailer: email.and_then(|e| e.x_mailer.as_deref()),
            user_agent: email.and_then(|e| e.user_agent.as_deref()),
            message_id: email.and_then(|e| e.message_id.as_deref()),
            boundary: email.and_then(|e| e.boundary.as_deref()),
            charset,
            x_priority: email.and_then(|e| e.x_priority.as_deref()),
            header_order: email
                .filter(|e| !e.header_names.is_empty())
                .map(|e| e.header_names.join(",")),
            dest_port,
            server_internal,
        }
    }

    fn get(&self, field: Field) -> Option<&str> {
        match field {
            Field::Banner => self.banner,
            Field::Helo => self.helo,
            Field::Commands => self.commands,
            Field::AuthMechanism => self.auth_mechanism,
            Field::XMailer => self.x_mailer,
            Field::UserAgent => self.user_agent,
            Field::MessageId => self.message_id,
            Field::Boundary => self.boundary,
            Field::XPriority => self.x_priority,
            Field::HeaderOrder => self.header_order.as_deref(),
        }
    }
}

/// The shapes a HELO argument has.
fn helo_shapes(helo: &str) -> Vec<HeloShape> {
    let mut shapes = Vec::new();
    if helo.parse::<IpAddr>().is_ok() {
        shapes.push(HeloShape::BareIp);
    } else if helo.starts_with('[') && helo.ends_with(']') {
        shapes.push(HeloShape::AddressLiteral);
    } else if helo.contains('.') {
        shapes.push(HeloShape::Fqdn);
    } else {
        shapes.push(HeloShape::NoDot);
        if looks_random(helo) {
            shapes.push(HeloShape::Random);
        }
    }
    shapes
}

/// Letters only, at least six, and unpronounceable: five consonants in a row, or no vowel at
/// all (`WORKPC` and `MARKETING` are names; `XKQZTRWP` is not).
fn looks_random(name: &str) -> bool {
    if name.len() < 6 || !name.bytes().all(|b| b.is_ascii_alphabetic()) {
        return false;
    }
    let vowel = |b: u8| b"aeiouyAEIOUY".contains(&b);
    let vowels = name.bytes().filter(|b| vowel(*b)).count();
    let mut run = 0;
    let mut longest = 0;
    for b in name.bytes() {
        run = if vowel(b) { 0 } else { run + 1 };
        longest = longest.max(run);
    }
    longest >= 5 || vowels == 0
}

/// What matched, for the `evidence` field.
#[derive(Default)]
struct Evidence {
    text: String,
    broken: Vec<String>,
}

impl Evidence {
    fn add(&mut self, field: &str, value: &str) {
        if !self.text.is_empty() {
            self.text.push_str("; ");
        }
        self.text.push_str(field);
        self.text.push('=');
        self.text.push_str(value);
    }

    /// A genuine habit the session breaks.
    fn failed(&mut self, field: &str, value: &str) {
        self.broken.push(format!("{field}={value}"));
    }

    fn finish(mut self) -> String {
        if !self.broken.is_empty() {
            self.text.push_str("; not genuine: ");
            self.text.push_str(&self.broken.join("; "));
        }
        cap_string(self.text, MAX_EVIDENCE)
    }
}

impl Fingerprints {
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub(super) fn parse(file: &RuleFile<'_>) -> Result<Self, RuleError> {
        let raw: RuleFileRaw = file.parse()?;
        let mut names = HashSet::new();
        let mut signature_ids = HashSet::new();
        let mut rules = Vec::new();
        for r in raw.rules {
            let name = r.name.get_ref().trim();
            if name.is_empty() || !names.insert(name.to_string()) {
                let why = if name.is_empty() {
                    "a rule needs a name".to_string()
                } else {
                    format!("rule {name:?} is defined twice")
                };
                return Err(file.error(r.name.span(), why));
            }
            let span = r.conditions.span();
            let conditions = r.conditions.into_inner();
            let patterns = conditions.patterns();
            if patterns.is_empty() && !conditions.has_other() {
                return Err(file.error(span, format!("rule {name:?} has no conditions in `match`")));
            }
            let names_group = |p: &Pattern| p.regex.capture_names().flatten().any(|n| n == "name");
            if r.software.is_none() && !patterns.iter().any(|(_, p)| names_group(p)) {
                return Err(file.error(
                    span,
                    format!("rule {name:?} needs `software`, or a (?P<name>...) group in a regex"),
                ));
            }
            if let Some(alert) = &r.alert {
                if !signature_ids.insert(alert.get_ref().signature_id) {
                    return Err(file.error(
                        alert.span(),
                        format!(
                            "signature_id {} is used by another rule",
                            alert.get_ref().signature_id
                        ),
                    ));
                }
            }
            rules.push(Rule {
                name: Arc::from(name),
                kind: r.kind,
                software: r.software,
                regex_count: patterns.len(),
                conditions,
                genuine: r.genuine,
                alert: r.alert.map(|a| Arc::new(a.into_inner())),
            });
        }
        Self::compile(rules).map_err(|e| file.error(0..0, e))
    }

    fn compile(rules: Vec<Rule>) -> Result<Self, String> {
        let mut sets = Vec::new();
        for field in FIELDS {
            let mut sources = Vec::new();
            let mut owners = Vec::new();
            for (i, rule) in rules.iter().enumerate() {
                for (f, p) in rule.conditions.patterns() {
                    if f == field {
                        sources.push(p.source.as_str());
                        owners.push(i);
                    }
                }
            }
            if sources.is_empty() {
                continue;
            }
            let set = RegexSetBuilder::new(&sources)
                .size_limit(64 << 20)
                .build()
                .map_err(|e| {
                    format!("the {} regexes do not compile together: {e}", field.name())
                })?;
            sets.push(FieldSet {
                field,
                set,
                rules: owners,
            });
        }
        let unconditional = (0..rules.len())
            .filter(|&i| rules[i].regex_count == 0)
            .collect();
        Ok(Fingerprints {
            rules,
            sets,
            unconditional,
        })
    }

    /// Identifies the software of an SMTP session and fills its `client_software`,
    /// `server_software` and `software`.
    pub fn identify_smtp(&self, record: &mut SmtpRecord, dest_port: u16, server_internal: bool) {
        let found = self.identify(&Features::of(record, dest_port, server_internal));
        record.smtp.client_software = found
            .iter()
            .find(|s| s.kind != SoftwareType::MailServer)
            .cloned();
        record.smtp.server_software = found
            .iter()
            .find(|s| s.kind == SoftwareType::MailServer)
            .cloned();
        record.software = found;
    }

    /// Every rule that matches the session, in file order.
    pub fn identify(&self, f: &Features<'_>) -> Vec<Software> {
        if self.rules.is_empty() {
            return Vec::new();
        }
        let mut hits = vec![0u8; self.rules.len()];
        let mut candidates = self.unconditional.clone();
        for fs in &self.sets {
            let Some(value) = f.get(fs.field) else {
                continue;
            };
            for m in fs.set.matches(value).iter() {
                let Some(&rule) = fs.rules.get(m) else {
                    continue;
                };
                hits[rule] = hits[rule].saturating_add(1);
                if usize::from(hits[rule]) == self.rules[rule].regex_count {
                    candidates.push(rule);
                }
            }
        }
        candidates.sort_unstable();
        candidates
            .into_iter()
            .filter_map(|i| self.rules.get(i).and_then(|r| r.apply(f)))
            .collect()
    }
}

impl Rule {
    /// The identification, if the non-regex conditions hold too.
    fn apply(&self, f: &Features<'_>) -> Option<Software> {
        let mut evidence = Evidence::default();
        let (mut name, mut version, mut edition) = (None, None, None);
        for (field, pattern) in self.conditions.patterns() {
            let value = f.get(field)?;
            evidence.add(field.name(), value);
            if let Some(caps) = pattern.regex.captures(value) {
                let group = |g: &str| {
                    caps.name(g)
                        .map(|m| cap_string(m.as_str().trim().to_string(), MAX_CAPTURE))
                };
                name = name.or_else(|| group("name")).filter(|s| !s.is_empty());
                version = version
                    .or_else(|| group("version"))
                    .filter(|s| !s.is_empty());
                edition = edition
                    .or_else(|| group("edition"))
                    .filter(|s| !s.is_empty());
            }
        }
        if !self.conditions.others_hold(f, true, &mut evidence) {
            return None;
        }
        let forged = self
            .genuine
            .as_ref()
            .is_some_and(|g| !habits_hold(g, f, &mut evidence));
        Some(Software {
            kind: self.kind,
            name: name.or_else(|| self.software.clone()).unwrap_or_default(),
            version,
            edition,
            rule: Arc::clone(&self.name),
            forged,
            evidence: evidence.finish(),
            alert: self.alert.clone(),
        })
    }
}

/// Whether every habit that applies holds (each is checked only when the session has the
/// field); the broken ones are added to the evidence.
fn habits_hold(habits: &Conditions, f: &Features<'_>, evidence: &mut Evidence) -> bool {
    let mut scratch = Evidence::default();
    for (field, pattern) in habits.patterns() {
        if let Some(value) = f.get(field) {
            if !pattern.regex.is_match(value) {
                scratch.failed(field.name(), value);
            }
        }
    }
    let others = habits.others_hold(f, false, &mut scratch);
    let genuine = others && scratch.broken.is_empty();
    evidence.broken.append(&mut scratch.broken);
    genuine
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::smtp::{EmailFields, SmtpFields, Status};
    use std::path::Path;

    fn shipped() -> Fingerprints {
        Fingerprints::parse(&RuleFile {
            path: Path::new("fingerprints.toml"),
            text: include_str!("../../rules/fingerprints.toml"),
        })
        .unwrap()
    }

    fn parse(text: &str) -> Result<Fingerprints, RuleError> {
        Fingerprints::parse(&RuleFile {
            path: Path::new("fingerprints.toml"),
            text,
        })
    }

    fn record(helo: &str, banner: &str, email: Option<EmailFields>) -> SmtpRecord {
        SmtpRecord {
            smtp: SmtpFields {
                banner: Some(banner.into()),
                helo: Some(helo.into()),
                helo_verb: Some("EHLO".into()),
                commands: "EHLO;MAIL FROM:<;RCPT TO:<;DATA;QUIT".into(),
                extensions: Vec::new(),
                auth: None,
                starttls: false,
                pregreet: false,
                mail_from: None,
                rcpt_to: Vec::new(),
                rcpt_verdicts: Vec::new(),
                rcpt_accepted: 0,
                rcpt_rejected: 0,
                trans_depth: 1,
                data_bytes: 0,
                last_reply: None,
                queue_id: None,
                status: Status::Queued,
                anomalies: Vec::new(),
                client_software: None,
                server_software: None,
            },
            email,
            software: Vec::new(),
        }
    }

    fn bat(x_mailer: &str, message_id: &str, boundary: &str, content_type: &str) -> EmailFields {
        EmailFields {
            x_mailer: Some(x_mailer.into()),
            message_id: Some(message_id.into()),
            boundary: Some(boundary.into()),
            content_type: Some(content_type.into()),
            x_priority: Some("3 (Normal)".into()),
            ..EmailFields::default()
        }
    }

    fn identify(
        r: &mut SmtpRecord,
        port: u16,
        internal: bool,
    ) -> Vec<(String, Option<String>, Option<String>, bool)> {
        shipped().identify_smtp(r, port, internal);
        r.software
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    s.version.clone(),
                    s.edition.clone(),
                    s.forged,
                )
            })
            .collect()
    }

    fn sw(
        name: &str,
        version: Option<&str>,
        edition: Option<&str>,
        forged: bool,
    ) -> (String, Option<String>, Option<String>, bool) {
        (
            name.into(),
            version.map(Into::into),
            edition.map(Into::into),
            forged,
        )
    }

    #[test]
    fn the_bat_old_and_new_versions_and_editions() {
        for (x_mailer, version, edition) in [
            (
                "The Bat! (v3.99.3) Professional",
                "3.99.3",
                Some("Professional"),
            ),
            ("The Bat! (v9.5.2) Home", "9.5.2", Some("Home")),
            (
                "The Bat! (v2.00.6) UNREG / CD5BF9353B3B7091",
                "2.00.6",
                Some("UNREG"),
            ),
            ("The Bat! (v1.62r)", "1.62", None),
            ("The Bat! (v10.5.4)", "10.5.4", None),
        ] {
            let email = bat(
                x_mailer,
                "<1234567890.20260101120000@example.org>",
                "----------1F0E2A3B4C5D6E7F",
                "multipart/mixed; charset=windows-1251",
            );
            let mut r = record(
                "DESKTOP-7Q2K",
                "220 mx.example.net ESMTP Postfix",
                Some(email),
            );
            let found = identify(&mut r, 587, false);
            if x_mailer.contains("1.62r") {
                assert!(
                    found.iter().all(|f| f.0 != "The Bat!"),
                    "{x_mailer}: no match, version must end"
                );
                continue;
            }
            assert_eq!(
                found[0],
                sw("The Bat!", Some(version), edition, false),
                "{x_mailer}"
            );
            let client = r.smtp.client_software.as_ref().unwrap();
            assert_eq!(client.kind, SoftwareType::MailClient);
            assert_eq!(&*client.rule, "the_bat");
            assert!(client.alert.is_some());
            assert_eq!(
                r.smtp.server_software.as_ref().map(|s| s.name.as_str()),
                Some("Postfix")
            );
        }
    }

    #[test]
    fn forged_the_bat_breaks_a_habit() {
        let genuine = (
            "<1234567890.20260101120000@example.org>",
            "----------1F0E2A3B4C5D6E7F",
            "text/plain; charset=us-ascii",
        );
        let cases = [
            ("<5f1c2e@example.org>", genuine.1, genuine.2, "message_id"),
            (genuine.0, "=_NextPart_000_0001", genuine.2, "boundary"),
            (
                genuine.0,
                genuine.1,
                "text/plain; charset=\"us-ascii\"",
                "content_type",
            ),
        ];
        for (mid, boundary, ct, broken) in cases {
            let email = bat("The Bat! (v8.8.9) Professional", mid, boundary, ct);
            let mut r = record("WORKPC", "220 mx ESMTP", Some(email));
            identify(&mut r, 587, false);
            let s = &r.software[0];
            assert!(s.forged, "{broken}");
            assert!(
                s.evidence.contains(&format!("not genuine: {broken}=")),
                "{}",
                s.evidence
            );
            assert!(
                s.evidence
                    .starts_with("x_mailer=The Bat! (v8.8.9) Professional")
            );
        }
        // A fully-qualified EHLO is not The Bat!'s habit either.
        let email = bat(
            "The Bat! (v8.8.9) Professional",
            genuine.0,
            genuine.1,
            genuine.2,
        );
        let mut r = record("client.example.test", "220 mx ESMTP", Some(email));
        identify(&mut r, 587, false);
        assert!(r.software[0].forged);
    }

    #[test]
    fn clients_webmail_and_servers() {
        let client = |header: &str, value: &str| -> Option<(String, Option<String>)> {
            let mut email = EmailFields::default();
            match header {
                "x_mailer" => email.x_mailer = Some(value.into()),
                _ => email.user_agent = Some(value.into()),
            }
            let mut r = record("pc.example.org", "220 x", Some(email));
            shipped().identify_smtp(&mut r, 587, false);
            r.smtp.client_software.map(|s| (s.name, s.version))
        };
        let named = |n: &str, v: Option<&str>| Some((n.to_string(), v.map(str::to_string)));
        assert_eq!(
            client("x_mailer", "Microsoft Outlook 16.0"),
            named("Microsoft Outlook", Some("16.0"))
        );
        assert_eq!(
            client("x_mailer", "Microsoft Office Outlook 12.0"),
            named("Microsoft Outlook", Some("12.0"))
        );
        assert_eq!(
            client(
                "user_agent",
                "Mozilla/5.0 (Windows NT 10.0; rv:115.0) Gecko/20100101 Thunderbird/115.3.1"
            ),
            named("Mozilla Thunderbird", Some("115.3.1"))
        );
        assert_eq!(
            client("x_mailer", "Apple Mail (2.3654.120.0.1.13)"),
            named("Apple Mail", Some("2.3654.120.0.1.13"))
        );
        assert_eq!(
            client("x_mailer", "iPhone Mail (20B101)"),
            named("iPhone Mail", Some("20B101"))
        );
        assert_eq!(
            client(
                "x_mailer",
                "PHPMailer 6.8.0 (https://github.com/PHPMailer/PHPMailer)"
            ),
            named("PHPMailer", Some("6.8.0"))
        );
        assert_eq!(
            client("x_mailer", "Atomic Mail Sender 9.30"),
            named("Atomic Mail Sender", Some("9.30"))
        );
        assert_eq!(
            client("user_agent", "Roundcube Webmail/1.6.5"),
            named("Roundcube", Some("1.6.5"))
        );
        assert_eq!(client("x_mailer", "Some Unknown Mailer 1.0"), None);

        let server = |banner: &str| -> Option<(String, Option<String>)> {
            let mut r = record("pc.example.org", banner, None);
            shipped().identify_smtp(&mut r, 25, false);
            r.smtp.server_software.map(|s| (s.name, s.version))
        };
        assert_eq!(
            server("220 mx.example.net ESMTP Postfix (Debian/GNU)"),
            named("Postfix", None)
        );
        assert_eq!(
            server("220 mail.example.com ESMTP Exim 4.96 Sun, 22 Nov 2026 10:00:00 +0000"),
            named("Exim", Some("4.96"))
        );
        assert_eq!(
            server("220 mx.example.org ESMTP Sendmail 8.15.2/8.15.2; Sun, 22 Nov 2026"),
            named("Sendmail", Some("8.15.2"))
        );
        assert_eq!(
            server("220 EXCH01.corp.local Microsoft ESMTP MAIL Service ready at Sun, 22 Nov 2026"),
            named("Microsoft Exchange", None)
        );
        assert_eq!(
            server("220 mail.example.net ESMTP OpenSMTPD"),
            named("OpenSMTPD", None)
        );
        assert_eq!(
            server("220 mx1.example.net ESMTP Haraka/3.0.2 ready"),
            named("Haraka", Some("3.0.2"))
        );
        assert_eq!(server("220 mx.example.net ESMTP"), None);
    }

    #[test]
    fn bot_dialects() {
        let bots = |helo: &str, pregreet: bool, port: u16, internal: bool| -> Vec<String> {
            let mut r = record(helo, "220 mx ESMTP", None);
            r.smtp.pregreet = pregreet;
            shipped().identify_smtp(&mut r, port, internal);
            r.software
                .iter()
                .filter(|s| s.kind == SoftwareType::SpamBot)
                .map(|s| s.rule.to_string())
                .collect()
        };
        assert_eq!(bots("ylmf-pc", false, 587, false), vec!["cutwail"]);
        assert_eq!(
            bots("ylmf-pc", false, 25, false),
            vec!["cutwail", "dotless_helo_to_mx"]
        );
        assert_eq!(bots("mx.example.org", true, 25, false), vec!["pregreet"]);
        assert_eq!(bots("XKQZTRWP", false, 587, false), vec!["random_helo"]);
        assert!(
            bots("MARKETING", false, 587, false).is_empty(),
            "pronounceable"
        );
        assert_eq!(bots("192.0.2.7", false, 25, false), vec!["ip_helo_to_mx"]);
        assert!(
            bots("192.0.2.7", false, 25, true).is_empty(),
            "to an internal server"
        );
        assert!(
            bots("[192.0.2.7]", false, 25, false).is_empty(),
            "an address literal is allowed"
        );
        assert!(bots("mail.example.org", false, 25, false).is_empty());
    }

    #[test]
    fn hostile_header_values_are_matched_safely_and_evidence_is_capped() {
        let huge = format!("The Bat! (v9.5.2) {}", "\u{fffd}".repeat(5000));
        let email = bat(&huge, "<\u{0}\u{fffd}>", "x", "text/plain");
        let mut r = record(&"A".repeat(3000), "220 \u{fffd}", Some(email));
        shipped().identify_smtp(&mut r, 25, false);
        for s in &r.software {
            assert!(s.evidence.len() <= MAX_EVIDENCE);
            assert!(s.edition.as_ref().is_none_or(|e| e.len() <= MAX_CAPTURE));
        }
    }

    #[test]
    fn commands_header_order_auth_and_verb_conditions() {
        let rules = parse(
            r#"
[[rule]]
name = "lowercase_bot"
type = "spam_bot"
software = "lower-case bot"
match.commands = '^helo;mail from: <'
match.helo_verb = "HELO"

[[rule]]
name = "header_order"
type = "mail_client"
software = "Ordered"
match.header_order = '^Date,From,To,'
match.auth_mechanism = '^LOGIN$'
"#,
        )
        .unwrap();
        let mut r = record("pc", "220 x", None);
        r.smtp.commands = "helo;mail from: <;rcpt to: <;data".into();
        r.smtp.helo_verb = Some("HELO".into());
        rules.identify_smtp(&mut r, 25, false);
        assert_eq!(r.software.len(), 1);
        assert_eq!(
            r.software[0].evidence,
            "commands=helo;mail from: <;rcpt to: <;data"
        );
        r.smtp.commands = "HELO;MAIL FROM:<".into();
        rules.identify_smtp(&mut r, 25, false);
        assert!(r.software.is_empty(), "spelling differs");

        let email = EmailFields {
            header_names: vec!["Date".into(), "From".into(), "To".into(), "Subject".into()],
            ..EmailFields::default()
        };
        let mut r = record("pc", "220 x", Some(email));
        rules.identify_smtp(&mut r, 587, false);
        assert!(
            r.software.is_empty(),
            "no AUTH: a match condition on it fails"
        );
        r.smtp.auth = Some(crate::protocols::smtp::AuthRecord {
            mechanism: "LOGIN".into(),
            ..Default::default()
        });
        rules.identify_smtp(&mut r, 587, false);
        assert_eq!(
            r.smtp.client_software.map(|s| s.name),
            Some("Ordered".into())
        );
    }

    #[test]
    fn bad_rules_name_the_line() {
        let err = |t: &str| parse(t).unwrap_err().to_string();
        let ok = "[[rule]]\nname = \"a\"\ntype = \"mail_client\"\nsoftware = \"A\"\nmatch.x_mailer = '^A'\n";
        assert!(parse(ok).is_ok());
        assert!(
            err(&ok.replace("'^A'", "'^(A'")).starts_with("fingerprints.toml:5:18: invalid regex")
        );
        assert!(
            err(&ok.replace("mail_client", "mua"))
                .starts_with("fingerprints.toml:3:8: unknown variant `mua`")
        );
        assert!(
            err(&ok.replace("match.x_mailer", "match.x_mailr")).contains("unknown field `x_mailr`")
        );
        assert!(
            err(&ok.replace("software", "sofware"))
                .starts_with("fingerprints.toml:4:1: unknown field `sofware`")
        );
        assert!(
            err(&format!("{ok}{ok}"))
                .starts_with("fingerprints.toml:7:8: rule \"a\" is defined twice")
        );
        assert!(err(&ok.replace("software = \"A\"\n", "")).contains("needs `software`"));
        assert!(
            err("[[rule]]\nname = \"a\"\ntype = \"spam_bot\"\nsoftware = \"A\"\nmatch = {}\n")
                .contains("has no conditions")
        );
        assert!(err(&format!("{ok}alert = {{ signature = \"x\", signature_id = 1, category = \"spam\", severity = 4 }}\n")).contains("severity must be 1"));
        assert!(
            err(&ok.replace("match.x_mailer = '^A'", "match.pregreet = \"yes\""))
                .contains("invalid type")
        );
    }

    #[test]
    fn cost_does_not_depend_on_the_number_of_rules_matched_against() {
        // Every rule's regexes sit in one set per field: a thousand rules on one field are one
        // set, and the one candidate runs its own regex.
        let mut text = String::new();
        for i in 0..1000 {
            text.push_str(&format!("[[rule]]\nname = \"r{i}\"\ntype = \"mail_client\"\nsoftware = \"M{i}\"\nmatch.x_mailer = '^Mailer{i} v(?P<version>[0-9]+)$'\n"));
        }
        let rules = parse(&text).unwrap();
        assert_eq!(rules.sets.len(), 1);
        let email = EmailFields {
            x_mailer: Some("Mailer777 v3".into()),
            ..EmailFields::default()
        };
        let mut r = record("pc", "220 x", Some(email));
        rules.identify_smtp(&mut r, 587, false);
        assert_eq!(r.software.len(), 1);
        assert_eq!(
            (
                r.software[0].name.as_str(),
                r.software[0].version.as_deref()
            ),
            ("M777", Some("3"))
        );
    }
}
