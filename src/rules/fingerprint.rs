//! Fingerprint rules (`fingerprints.toml`): which mail clients, mail servers, webmail and spam
//! bots a session shows, from the banner, the greeting, the client's command spellings and
//! order, AUTH, the message headers, and the TLS handshake (JA3, JA3S, JA4, SNI, ALPN, the
//! server certificate's subject and issuer).
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
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::{RuleError, RuleFile};
use crate::software::{RuleAlert, Software, SoftwareType};
use crate::text::cap_string;

/// Longest evidence text.
pub const MAX_EVIDENCE: usize = 256;
/// Longest capture group value kept as name, version or edition.
pub const MAX_CAPTURE: usize = 64;

/// The fields a regex condition can test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Banner,
    EhloReply,
    Helo,
    Commands,
    AuthMechanism,
    XMailer,
    UserAgent,
    MessageId,
    Boundary,
    XPriority,
    HeaderOrder,
    Ja3,
    Ja3s,
    Ja4,
    Sni,
    Alpn,
    TlsSubject,
    TlsIssuer,
}

const FIELDS: [Field; 18] = [
    Field::Banner,
    Field::EhloReply,
    Field::Helo,
    Field::Commands,
    Field::AuthMechanism,
    Field::XMailer,
    Field::UserAgent,
    Field::MessageId,
    Field::Boundary,
    Field::XPriority,
    Field::HeaderOrder,
    Field::Ja3,
    Field::Ja3s,
    Field::Ja4,
    Field::Sni,
    Field::Alpn,
    Field::TlsSubject,
    Field::TlsIssuer,
];

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Banner => "banner",
            Field::EhloReply => "ehlo_reply",
            Field::Helo => "helo",
            Field::Commands => "commands",
            Field::AuthMechanism => "auth_mechanism",
            Field::XMailer => "x_mailer",
            Field::UserAgent => "user_agent",
            Field::MessageId => "message_id",
            Field::Boundary => "boundary",
            Field::XPriority => "x_priority",
            Field::HeaderOrder => "header_order",
            Field::Ja3 => "ja3",
            Field::Ja3s => "ja3s",
            Field::Ja4 => "ja4",
            Field::Sni => "sni",
            Field::Alpn => "alpn",
            Field::TlsSubject => "tls_subject",
            Field::TlsIssuer => "tls_issuer",
        }
    }

    /// Whether the field comes from the TLS handshake.
    fn is_tls(self) -> bool {
        matches!(
            self,
            Field::Ja3
                | Field::Ja3s
                | Field::Ja4
                | Field::Sni
                | Field::Alpn
                | Field::TlsSubject
                | Field::TlsIssuer
        )
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
/// Whether a `charset=` parameter is quoted.
pub enum Quoting {
    Quoted,
    Unquoted,
}

/// The verb of the client's greeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum HeloVerb {
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

/// The conditions of `match` (all must hold) or of `genuine` (each that applies must hold).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Conditions {
    banner: Option<Pattern>,
    /// The first line of the server's 250 reply to EHLO, after the code: its own name and
    /// how it greets.
    ehlo_reply: Option<Pattern>,
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
    /// The MD5 of the client's JA3, of the server's JA3S; the client's JA4.
    ja3: Option<Pattern>,
    ja3s: Option<Pattern>,
    ja4: Option<Pattern>,
    sni: Option<Pattern>,
    /// The client's ALPN protocols, comma-separated.
    alpn: Option<Pattern>,
    tls_subject: Option<Pattern>,
    tls_issuer: Option<Pattern>,
    /// Any of these server ports (the tunnel's destination for a proxied session).
    dest_port: Option<Vec<u16>>,
    server: Option<ServerSide>,
    /// Whether the session is mail between the organisation's own servers (see
    /// `Features::between_mail_servers`). Spam-bot rules that do not say are `false`: an
    /// Exchange server greeting another with its NetBIOS name is not a bot.
    between_mail_servers: Option<bool>,
    /// Only in `genuine`: the versions (as the rule's `version` group captured them) the
    /// habits hold for.
    versions: Option<Versions>,
}

impl Conditions {
    fn patterns(&self) -> impl Iterator<Item = (Field, &Pattern)> {
        let all = [
            (Field::Banner, &self.banner),
            (Field::EhloReply, &self.ehlo_reply),
            (Field::Helo, &self.helo),
            (Field::Commands, &self.commands),
            (Field::AuthMechanism, &self.auth_mechanism),
            (Field::XMailer, &self.x_mailer),
            (Field::UserAgent, &self.user_agent),
            (Field::MessageId, &self.message_id),
            (Field::Boundary, &self.boundary),
            (Field::XPriority, &self.x_priority),
            (Field::HeaderOrder, &self.header_order),
            (Field::Ja3, &self.ja3),
            (Field::Ja3s, &self.ja3s),
            (Field::Ja4, &self.ja4),
            (Field::Sni, &self.sni),
            (Field::Alpn, &self.alpn),
            (Field::TlsSubject, &self.tls_subject),
            (Field::TlsIssuer, &self.tls_issuer),
        ];
        all.into_iter()
            .filter_map(|(f, p)| p.as_ref().map(|p| (f, p)))
    }

    fn has_other(&self) -> bool {
        self.helo_shape.is_some()
            || self.helo_verb.is_some()
            || self.pregreet.is_some()
            || self.charset.is_some()
            || self.dest_port.is_some()
            || self.server.is_some()
            || self.between_mail_servers.is_some()
    }

    /// The conditions that are not regexes. `strict`: a condition on something the session
    /// does not have fails (for `match`); otherwise it does not apply (for `genuine`).
    fn others_hold(&self, f: &Features<'_>, strict: bool, evidence: &mut Evidence) -> bool {
        if let Some(shapes) = &self.helo_shape {
            match f.helo {
                Some(helo) => {
                    let have = helo_shapes(helo);
                    if !shapes.iter().any(|s| have.contains(s)) {
                        if !strict {
                            evidence.failed("helo", helo);
                        }
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
                    if !strict {
                        evidence.failed("content_type", text);
                    }
                    return false;
                }
                None if strict => return false,
                None => {}
            }
        }
        if let Some(ports) = &self.dest_port
            && !ports.contains(&f.dest_port)
        {
            return false;
        }
        if let Some(side) = self.server
            && f.server_internal != (side == ServerSide::Internal)
        {
            return false;
        }
        if let Some(between) = self.between_mail_servers
            && f.between_mail_servers != between
        {
            return false;
        }
        true
    }
}

/// The versions a set of `genuine` habits holds for: from `since` (included) to `until` (left
/// out), either open.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Versions {
    since: Option<Version>,
    until: Option<Version>,
}

impl Versions {
    /// Whether `version` (a captured version, `None` when the rule captured none) is in range.
    /// A range holds for no unknown version.
    fn hold_for(&self, version: Option<&str>) -> bool {
        let Some(v) = version.and_then(Version::parse) else {
            return false;
        };
        self.since.as_ref().is_none_or(|s| v >= *s) && self.until.as_ref().is_none_or(|u| v < *u)
    }
}

/// A version's leading dotted numbers (`9.2.2.1`, `1.60q` is 1.60); missing parts are 0, so
/// `5` = `5.0.0`.
#[derive(Clone, Debug)]
struct Version(Vec<u32>);

impl Version {
    fn parse(text: &str) -> Option<Self> {
        let mut parts = Vec::new();
        for part in text.split('.') {
            let digits = part.len() - part.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let number = part.get(..digits)?.parse().ok()?;
            parts.push(number);
            if digits < part.len() {
                break;
            }
        }
        Some(Version(parts))
    }

    fn part(&self, i: usize) -> u32 {
        self.0.get(i).copied().unwrap_or(0)
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let len = self.0.len().max(other.0.len());
        (0..len)
            .map(|i| self.part(i).cmp(&other.part(i)))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Version::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("{text:?} is not a version (dotted numbers)"))
        })
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
    /// `[[rule.genuine]]` tables, each a set of habits and the versions they hold for.
    #[serde(default)]
    genuine: Vec<Conditions>,
    alert: Option<Spanned<RuleAlert>>,
}

struct Rule {
    name: Arc<str>,
    kind: SoftwareType,
    software: Option<String>,
    conditions: Conditions,
    /// How many regex conditions it has: all must match.
    regex_count: usize,
    /// Whether one of its conditions is on the TLS handshake.
    tls: bool,
    genuine: Vec<Conditions>,
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
#[derive(Default)]
pub struct Features<'a> {
    pub banner: Option<&'a str>,
    pub ehlo_reply: Option<&'a str>,
    pub helo: Option<&'a str>,
    pub helo_verb: Option<HeloVerb>,
    pub commands: Option<&'a str>,
    pub pregreet: bool,
    pub auth_mechanism: Option<&'a str>,
    pub x_mailer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub message_id: Option<&'a str>,
    pub boundary: Option<&'a str>,
    /// The `Content-Type` with a charset parameter, and how that parameter is quoted.
    pub charset: Option<(Quoting, &'a str)>,
    pub x_priority: Option<&'a str>,
    /// Header names, comma-separated, in order.
    pub header_order: Option<String>,
    /// The TLS handshake, when the session had one.
    pub ja3: Option<&'a str>,
    pub ja3s: Option<&'a str>,
    pub ja4: Option<&'a str>,
    pub sni: Option<&'a str>,
    /// The client's ALPN protocols, comma-separated.
    pub alpn: Option<String>,
    pub tls_subject: Option<&'a str>,
    pub tls_issuer: Option<&'a str>,
    /// The mail server's port, and whether it is internal: the flow's server, or the
    /// destination of the tunnel the session went through.
    pub dest_port: u16,
    pub server_internal: bool,
    /// Mail between the organisation's own servers: the client is a sanctioned relay or in an
    /// asset group that may send anywhere, and the server is internal.
    pub between_mail_servers: bool,
}

impl<'a> Features<'a> {
    fn get(&self, field: Field) -> Option<&str> {
        match field {
            Field::Banner => self.banner,
            Field::EhloReply => self.ehlo_reply,
            Field::Helo => self.helo,
            Field::Commands => self.commands,
            Field::AuthMechanism => self.auth_mechanism,
            Field::XMailer => self.x_mailer,
            Field::UserAgent => self.user_agent,
            Field::MessageId => self.message_id,
            Field::Boundary => self.boundary,
            Field::XPriority => self.x_priority,
            Field::HeaderOrder => self.header_order.as_deref(),
            Field::Ja3 => self.ja3,
            Field::Ja3s => self.ja3s,
            Field::Ja4 => self.ja4,
            Field::Sni => self.sni,
            Field::Alpn => self.alpn.as_deref(),
            Field::TlsSubject => self.tls_subject,
            Field::TlsIssuer => self.tls_issuer,
        }
    }
}

/// The shapes a HELO argument has.
fn helo_shapes(helo: &str) -> &'static [HeloShape] {
    if helo.parse::<IpAddr>().is_ok() {
        &[HeloShape::BareIp]
    } else if helo.starts_with('[') && helo.ends_with(']') {
        &[HeloShape::AddressLiteral]
    } else if helo.contains('.') {
        &[HeloShape::Fqdn]
    } else if looks_random(helo) {
        &[HeloShape::NoDot, HeloShape::Random]
    } else {
        &[HeloShape::NoDot]
    }
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

    /// The rules in `text`, read from `path` (named in errors).
    pub fn from_text(path: &std::path::Path, text: &str) -> Result<Self, RuleError> {
        Self::parse(&RuleFile { path, text })
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
            let mut conditions = r.conditions.into_inner();
            let patterns: Vec<_> = conditions.patterns().collect();
            if patterns.is_empty() && !conditions.has_other() {
                return Err(file.error(span, format!("rule {name:?} has no conditions in `match`")));
            }
            if conditions.versions.is_some() {
                return Err(file.error(
                    span,
                    format!("rule {name:?}: `versions` belongs in a [[rule.genuine]] table"),
                ));
            }
            let regex_count = patterns.len();
            let tls = patterns.iter().any(|(f, _)| f.is_tls());
            let names_group = |p: &Pattern| p.regex.capture_names().flatten().any(|n| n == "name");
            if r.software.is_none() && !patterns.iter().any(|(_, p)| names_group(p)) {
                return Err(file.error(
                    span,
                    format!("rule {name:?} needs `software`, or a (?P<name>...) group in a regex"),
                ));
            }
            if let Some(alert) = &r.alert
                && !signature_ids.insert(alert.get_ref().signature_id)
            {
                return Err(file.error(
                    alert.span(),
                    format!(
                        "signature_id {} is used by another rule",
                        alert.get_ref().signature_id
                    ),
                ));
            }
            drop(patterns);
            if r.kind == SoftwareType::SpamBot {
                conditions.between_mail_servers.get_or_insert(false);
            }
            rules.push(Rule {
                name: Arc::from(name),
                kind: r.kind,
                software: r.software,
                regex_count,
                tls,
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

    /// The alert of the rule named `rule`, if it raises one.
    pub fn alert_of(&self, rule: &str) -> Option<Arc<RuleAlert>> {
        self.rules
            .iter()
            .find(|r| *r.name == *rule)
            .and_then(|r| r.alert.clone())
    }

    /// Whether the rule named `rule` has a condition on the TLS handshake.
    pub fn uses_tls(&self, rule: &str) -> bool {
        self.rules.iter().any(|r| r.tls && *r.name == *rule)
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
        let mut forged = false;
        for habits in &self.genuine {
            if habits
                .versions
                .as_ref()
                .is_none_or(|v| v.hold_for(version.as_deref()))
            {
                forged |= !habits_hold(habits, f, &mut evidence);
            }
        }
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
        if let Some(value) = f.get(field)
            && !pattern.regex.is_match(value)
        {
            scratch.failed(field.name(), value);
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
    use std::path::Path;

    fn parse(text: &str) -> Result<Fingerprints, RuleError> {
        Fingerprints::parse(&RuleFile {
            path: Path::new("fingerprints.toml"),
            text,
        })
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
    fn versions_order_by_their_numbers() {
        let v = |t: &str| Version::parse(t).unwrap();
        assert!(v("1.38e") < v("1.44"));
        assert!(v("1.60q") > v("1.44"));
        assert!(v("4.0.24") < v("5"));
        assert!(v("10.5.4") > v("9.2.2.1"));
        assert_eq!(v("5"), v("5.0.0"));
        assert!(Version::parse("x1").is_none());
        let range = Versions {
            since: Some(v("1.44")),
            until: Some(v("5")),
        };
        assert!(range.hold_for(Some("1.44")));
        assert!(range.hold_for(Some("4.0.24")));
        assert!(!range.hold_for(Some("5.0")));
        assert!(!range.hold_for(Some("1.38e")));
        assert!(
            !range.hold_for(None),
            "no captured version: no scoped habit"
        );
    }

    #[test]
    fn genuine_habits_hold_for_their_versions() {
        let rules = parse(
            "[[rule]]\nname = \"m\"\ntype = \"mail_client\"\nsoftware = \"M\"\n\
             match.x_mailer = '^M v(?P<version>[0-9.]+)'\n\
             [[rule.genuine]]\nmessage_id = '@m>$'\n\
             [[rule.genuine]]\nversions = { until = \"2\" }\nx_priority = '^3$'\n",
        )
        .unwrap();
        let forged = |x_mailer: &str, message_id: &str, x_priority: &str| {
            let f = Features {
                x_mailer: Some(x_mailer),
                message_id: Some(message_id),
                x_priority: Some(x_priority),
                ..Features::default()
            };
            let found = rules.identify(&f);
            (found[0].forged, found[0].evidence.clone())
        };
        assert!(!forged("M v1.5", "<1@m>", "3").0);
        let (broken, evidence) = forged("M v1.5", "<1@m>", "1");
        assert!(
            broken && evidence.contains("not genuine: x_priority=1"),
            "{evidence}"
        );
        assert!(!forged("M v2.0", "<1@m>", "1").0, "the habit ends at 2");
        assert!(
            forged("M v2.0", "<1@x>", "3").0,
            "an unscoped habit holds for all"
        );
        // `versions` is for habits only; a bad version names its line.
        let err = parse(
            "[[rule]]\nname = \"m\"\ntype = \"mail_client\"\nsoftware = \"M\"\n\
             match.x_mailer = '^M'\nmatch.versions = { since = \"1\" }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("belongs in a [[rule.genuine]] table"), "{err}");
        let err = parse(
            "[[rule]]\nname = \"m\"\ntype = \"mail_client\"\nsoftware = \"M\"\n\
             match.x_mailer = '^M'\n[[rule.genuine]]\nversions = { since = \"new\" }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("fingerprints.toml:7:") && err.contains("is not a version"),
            "{err}"
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
        let found = rules.identify(&Features {
            x_mailer: Some("Mailer777 v3"),
            dest_port: 587,
            ..Features::default()
        });
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].name.as_str(), found[0].version.as_deref()),
            ("M777", Some("3"))
        );
    }
}
