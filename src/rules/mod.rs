//! Rules: everything a user configures about a run, loaded once at start-up from a rules
//! directory (`--rules DIR`) or from the built-in copy of `rules/`.
//!
//! - `assets.toml`: asset groups, internal mail domains, sanctioned relays ([`Assets`]);
//! - `detections.toml`: thresholds, windows and caps of the detections, and the blocklist
//!   files they use ([`Detections`], [`Blocklists`]);
//! - `fingerprints.toml`: the rules that name mail clients, servers and spam bots
//!   ([`Fingerprints`]);
//! - `smtp_replies.toml`: the reply lengths of mail server software, for the estimate of
//!   encrypted sessions ([`ReplyProfiles`]).
//!
//! A file that does not validate is refused as a whole, with the file, line and column of the
//! first problem: a typo must never silently switch a detection off.

mod assets;
mod blocklist;
mod detections;
mod fingerprint;
mod replies;

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub use assets::{AssetGroup, Assets, SmtpPolicy, UNGROUPED};
pub use blocklist::{BlocklistHit, Blocklists};
pub use detections::{
    AuthBruteforce, Cooldown, Detections, DirectSmtp, ExcessiveMail, Limits, SenderKey, Summary,
    Surge,
};
pub use fingerprint::{Features, Fingerprints, HeloVerb, MAX_CAPTURE, MAX_EVIDENCE, Quoting};
pub use replies::{ReplyProfile, ReplyProfiles};

/// A problem in a rules file, where it is (line and column are 1-based; 0 when the file as a
/// whole is at fault, e.g. unreadable).
#[derive(Debug, PartialEq, Eq)]
pub struct RuleError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

impl std::error::Error for RuleError {}

/// The text of one TOML file (a rules file, or the config file) and its name, for errors
/// that point into it.
pub struct RuleFile<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl RuleFile<'_> {
    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> RuleError {
        let (line, column) = line_column(self.text, span.start);
        RuleError {
            file: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }

    /// Deserialises the whole file; serde's message and toml's span make the error.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, RuleError> {
        toml::from_str(self.text)
            .map_err(|e| self.error(e.span().unwrap_or(0..0), e.message().trim_end().to_string()))
    }
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

/// Rule reloads so far, in the `stats` event.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ReloadStats {
    pub reloads: u64,
    pub failed_reloads: u64,
    /// Why the last failed reload failed; the rules before it stayed in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The built-in rules directory, as (file name, contents).
const EMBEDDED: &[(&str, &str)] = &[
    ("assets.toml", include_str!("../../rules/assets.toml")),
    (
        "detections.toml",
        include_str!("../../rules/detections.toml"),
    ),
    (
        "fingerprints.toml",
        include_str!("../../rules/fingerprints.toml"),
    ),
    (
        "smtp_replies.toml",
        include_str!("../../rules/smtp_replies.toml"),
    ),
];

/// All the rules of a run.
#[derive(Debug, Default)]
pub struct Rules {
    pub assets: Assets,
    pub detections: Detections,
    pub blocklists: Blocklists,
    pub fingerprints: Fingerprints,
    pub replies: ReplyProfiles,
    /// Files the rules directory does not have (that part is empty or at its defaults).
    pub missing: Vec<&'static str>,
}

impl Rules {
    /// The rules in `dir`, or the built-in ones. A file missing from `dir` means that part is
    /// empty (no groups) or at its defaults (detections): `--rules` replaces the built-in
    /// directory, it does not add to it.
    pub fn load(dir: Option<&Path>) -> Result<Self, RuleError> {
        let Some(dir) = dir else {
            return Self::embedded();
        };
        std::fs::read_dir(dir).map_err(|e| RuleError {
            file: dir.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read the rules directory: {e}"),
        })?;
        let mut missing = Vec::new();
        let mut read = |name: &'static str| -> Result<Option<(PathBuf, String)>, RuleError> {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => Ok(Some((path, text))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    missing.push(name);
                    Ok(None)
                }
                Err(e) => Err(RuleError {
                    file: path,
                    line: 0,
                    column: 0,
                    message: e.to_string(),
                }),
            }
        };
        let mut rules = Rules::default();
        if let Some((path, text)) = read("assets.toml")? {
            rules.assets = Assets::parse(&RuleFile {
                path: &path,
                text: &text,
            })?;
        }
        if let Some((path, text)) = read("detections.toml")? {
            rules.detections = Detections::parse(&RuleFile {
                path: &path,
                text: &text,
            })?;
            rules.blocklists = Blocklists::load(dir, &rules.detections)?;
        }
        if let Some((path, text)) = read("fingerprints.toml")? {
            rules.fingerprints = Fingerprints::parse(&RuleFile {
                path: &path,
                text: &text,
            })?;
        }
        if let Some((path, text)) = read("smtp_replies.toml")? {
            rules.replies = ReplyProfiles::parse(&RuleFile {
                path: &path,
                text: &text,
            })?;
        }
        rules.missing = missing;
        Ok(rules)
    }

    /// The built-in copy of `rules/` (tested to load; it names no blocklist file).
    fn embedded() -> Result<Self, RuleError> {
        let file = |name: &'static str| RuleFile {
            path: Path::new(name),
            text: EMBEDDED
                .iter()
                .find(|(n, _)| *n == name)
                .map_or("", |(_, t)| t),
        };
        Ok(Rules {
            assets: Assets::parse(&file("assets.toml"))?,
            detections: Detections::parse(&file("detections.toml"))?,
            blocklists: Blocklists::default(),
            fingerprints: Fingerprints::parse(&file("fingerprints.toml"))?,
            replies: ReplyProfiles::parse(&file("smtp_replies.toml"))?,
            missing: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_rules_load() {
        let rules = Rules::load(None).unwrap();
        assert!(rules.assets.groups.is_empty());
        assert_eq!(rules.detections, Detections::default());
        assert!(
            rules.fingerprints.len() >= 20,
            "every shipped file is embedded"
        );
        for server in ["Postfix", "Exim", "Microsoft Exchange", "Sendmail"] {
            assert!(rules.replies.of(server).is_some(), "{server}");
        }
    }

    #[test]
    fn a_missing_directory_is_named() {
        let e = Rules::load(Some(Path::new("/nonexistent/rules"))).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/rules: cannot read the rules directory")
        );
    }

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("ab", 99), (1, 3));
    }
}
