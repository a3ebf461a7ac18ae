//! Asset groups: named sets of networks with an SMTP policy, the organisation's mail domains and
//! its sanctioned relays, from `assets.toml` in the rules directory.
//!
//! A file that does not validate is refused as a whole, with the file, line and column of the
//! first problem: a typo in a CIDR must not silently leave hosts out of their group.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnetwork::IpNetwork;
use serde::Deserialize;
use toml::Spanned;

/// The built-in `rules/assets.toml`.
const EMBEDDED: &str = include_str!("../../rules/assets.toml");

/// What a group's hosts may do with SMTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpPolicy {
    Allow,
    RelayOnly,
    Deny,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetGroup {
    pub name: Arc<str>,
    pub networks: Vec<IpNetwork>,
    pub smtp: SmtpPolicy,
}

/// The asset configuration of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assets {
    pub groups: Vec<AssetGroup>,
    pub internal_domains: Vec<String>,
    pub relays: Vec<IpNetwork>,
    /// Every network with its group, longest prefix first.
    index: Vec<(IpNetwork, usize)>,
}

/// A problem in a rules file, where it is.
#[derive(Debug, PartialEq, Eq)]
pub struct RuleError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

impl std::error::Error for RuleError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssetsFile {
    #[serde(default)]
    internal_domains: Vec<Spanned<String>>,
    #[serde(default)]
    relays: Vec<Spanned<String>>,
    #[serde(default, rename = "group")]
    groups: Vec<GroupFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupFile {
    name: Spanned<String>,
    cidrs: Spanned<Vec<Spanned<String>>>,
    smtp: Option<Spanned<String>>,
}

impl Assets {
    /// The built-in copy of `rules/assets.toml`.
    pub fn embedded() -> Self {
        // The shipped file is tested to parse; an empty configuration is the safe fallback.
        Self::parse(EMBEDDED, Path::new("rules/assets.toml")).unwrap_or_default()
    }

    /// `DIR/assets.toml` when a rules directory is given (none there means no groups), else
    /// the built-in copy.
    pub fn load(dir: Option<&Path>) -> Result<Self, RuleError> {
        let Some(dir) = dir else {
            return Ok(Self::embedded());
        };
        let path = dir.join("assets.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(RuleError {
                file: path,
                line: 0,
                column: 0,
                message: e.to_string(),
            }),
        }
    }

    pub fn parse(text: &str, file: &Path) -> Result<Self, RuleError> {
        let at = |span: std::ops::Range<usize>, message: String| {
            let (line, column) = line_column(text, span.start);
            RuleError {
                file: file.to_path_buf(),
                line,
                column,
                message,
            }
        };
        let raw: AssetsFile = toml::from_str(text)
            .map_err(|e| at(e.span().unwrap_or(0..0), e.message().to_string()))?;
        let mut assets = Assets::default();
        for domain in &raw.internal_domains {
            let d = domain
                .get_ref()
                .trim()
                .trim_start_matches('@')
                .to_ascii_lowercase();
            if d.is_empty() || d.contains(char::is_whitespace) {
                return Err(at(
                    domain.span(),
                    format!("invalid mail domain {:?}", domain.get_ref()),
                ));
            }
            assets.internal_domains.push(d);
        }
        for relay in &raw.relays {
            assets
                .relays
                .push(network(relay).map_err(|m| at(relay.span(), m))?);
        }
        for group in &raw.groups {
            let name = group.name.get_ref().trim();
            if name.is_empty() {
                return Err(at(group.name.span(), "a group needs a name".into()));
            }
            if assets.groups.iter().any(|g| &*g.name == name) {
                return Err(at(
                    group.name.span(),
                    format!("group {name:?} is defined twice"),
                ));
            }
            if group.cidrs.get_ref().is_empty() {
                return Err(at(
                    group.cidrs.span(),
                    format!("group {name:?} has no cidrs"),
                ));
            }
            let mut networks = Vec::new();
            for cidr in group.cidrs.get_ref() {
                networks.push(network(cidr).map_err(|m| at(cidr.span(), m))?);
            }
            let smtp = match group
                .smtp
                .as_ref()
                .map(|s| (s.get_ref().as_str(), s.span()))
            {
                None | Some(("allow", _)) => SmtpPolicy::Allow,
                Some(("relay_only", _)) => SmtpPolicy::RelayOnly,
                Some(("deny", _)) => SmtpPolicy::Deny,
                Some((other, span)) => {
                    return Err(at(
                        span,
                        format!("unknown smtp policy {other:?}: use allow, relay_only or deny"),
                    ));
                }
            };
            assets.groups.push(AssetGroup {
                name: Arc::from(name),
                networks,
                smtp,
            });
        }
        assets.index = assets
            .groups
            .iter()
            .enumerate()
            .flat_map(|(i, g)| g.networks.iter().map(move |n| (*n, i)))
            .collect();
        assets
            .index
            .sort_by_key(|(n, _)| std::cmp::Reverse(n.prefix()));
        Ok(assets)
    }

    /// The groups an address belongs to, longest prefix first, each once.
    pub fn groups_of(&self, ip: IpAddr) -> Vec<Arc<str>> {
        let mut out: Vec<Arc<str>> = Vec::new();
        for (network, group) in &self.index {
            if network.contains(ip) {
                let name = &self.groups[*group].name;
                if !out.contains(name) {
                    out.push(Arc::clone(name));
                }
            }
        }
        out
    }
}

/// A network in CIDR notation, or a single address; host bits must be zero.
fn network(text: &Spanned<String>) -> Result<IpNetwork, String> {
    let t = text.get_ref().trim();
    let net: IpNetwork = t
        .parse()
        .map_err(|e| format!("invalid network {t:?}: {e}"))?;
    if net.network() != net.ip() {
        return Err(format!(
            "{t:?} has host bits set; the network is {}/{}",
            net.network(),
            net.prefix()
        ));
    }
    Ok(net)
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

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
internal_domains = ["corp.example.org"]
relays = ["10.0.0.25"]
[[group]]
name = "workstations"
cidrs = ["10.20.0.0/16"]
smtp = "relay_only"
[[group]]
name = "web_servers"
cidrs = ["10.30.0.0/24", "2001:db8:30::/48"]
smtp = "deny"
[[group]]
name = "lab"
cidrs = ["10.20.5.0/24"]
"#;

    fn err(text: &str) -> String {
        Assets::parse(text, Path::new("assets.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_documented_example_works_as_written() {
        let a = Assets::parse(EXAMPLE, Path::new("assets.toml")).unwrap();
        assert_eq!(a.internal_domains, vec!["corp.example.org"]);
        assert_eq!(a.relays, vec!["10.0.0.25/32".parse::<IpNetwork>().unwrap()]);
        assert_eq!(a.groups[0].smtp, SmtpPolicy::RelayOnly);
        assert_eq!(a.groups[1].smtp, SmtpPolicy::Deny);
        assert_eq!(a.groups[2].smtp, SmtpPolicy::Allow, "allow when unset");
        let names = |ip: &str| -> Vec<String> {
            a.groups_of(ip.parse().unwrap())
                .iter()
                .map(|n| n.to_string())
                .collect()
        };
        assert_eq!(
            names("10.20.5.7"),
            vec!["lab", "workstations"],
            "longest prefix first"
        );
        assert_eq!(names("2001:db8:30::9"), vec!["web_servers"]);
        assert!(names("192.0.2.1").is_empty());
    }

    #[test]
    fn errors_name_the_line_and_column() {
        assert!(
            err("[[group]]\nname = \"a\"\ncidrs = [\"10.0.0.0/33\"]\n")
                .starts_with("assets.toml:3:10: invalid network \"10.0.0.0/33\": ")
        );
        assert!(
            err("[[group]]\nname = \"a\"\ncidrs = [\"10.1.2.3/16\"]\n")
                .contains("3:10: \"10.1.2.3/16\" has host bits set; the network is 10.1.0.0/16")
        );
        assert!(
            err("[[group]]\nname = \"a\"\ncidrs = [\"10.0.0.0/8\"]\nsmtp = \"maybe\"\n")
                .starts_with("assets.toml:4:8: unknown smtp policy \"maybe\"")
        );
        assert!(
            err("[[group]]\nname = \"a\"\ncidrs = []\n")
                .starts_with("assets.toml:3:9: group \"a\" has no cidrs")
        );
        assert!(err("[[group]]\nname = \"a\"\ncidrs = [\"10.0.0.0/8\"]\n[[group]]\nname = \"a\"\ncidrs = [\"10.0.0.0/8\"]\n").starts_with("assets.toml:5:8: group \"a\" is defined twice"));
        assert!(
            err("[[group]]\nname = \"a\"\ncidr = [\"10.0.0.0/8\"]\n")
                .starts_with("assets.toml:3:1: unknown field `cidr`")
        );
        assert!(
            err("relays = [\"mail.example.org\"]\n")
                .starts_with("assets.toml:1:11: invalid network")
        );
        assert!(err("internal_domains = \"corp.example.org\"\n").starts_with("assets.toml:1:20:"));
        assert!(err("[[group]\n").starts_with("assets.toml:1:"));
    }

    #[test]
    fn the_shipped_file_parses_and_is_empty() {
        let shipped = Assets::parse(EMBEDDED, Path::new("rules/assets.toml")).unwrap();
        assert!(shipped.groups.is_empty());
        assert_eq!(Assets::embedded(), shipped);
    }
}
