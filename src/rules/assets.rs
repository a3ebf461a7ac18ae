//! Asset groups (`assets.toml`): named sets of networks with an SMTP policy, the
//! organisation's mail domains and its sanctioned relays.

use std::net::IpAddr;
use std::sync::Arc;

use ipnetwork::IpNetwork;
use serde::Deserialize;
use toml::Spanned;

use super::{RuleError, RuleFile};
use crate::decode::OverlapPolicy;

/// Reserved for hosts in no group, in `asset_summary` events.
pub const UNGROUPED: &str = "ungrouped";

/// What a group's hosts may do with SMTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpPolicy {
    Allow,
    RelayOnly,
    Deny,
}

impl SmtpPolicy {
    pub fn name(self) -> &'static str {
        match self {
            SmtpPolicy::Allow => "allow",
            SmtpPolicy::RelayOnly => "relay_only",
            SmtpPolicy::Deny => "deny",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetGroup {
    pub name: Arc<str>,
    pub networks: Vec<IpNetwork>,
    pub smtp: SmtpPolicy,
    /// How the group's hosts resolve overlapping IP fragments, when the rules say.
    pub fragments: Option<OverlapPolicy>,
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
    fragments: Option<Spanned<String>>,
}

impl Assets {
    /// The asset groups in `text`, read from `path` (named in errors).
    pub fn from_text(path: &std::path::Path, text: &str) -> Result<Self, RuleError> {
        Self::parse(&RuleFile { path, text })
    }

    pub(super) fn parse(file: &RuleFile<'_>) -> Result<Self, RuleError> {
        let at = |span: std::ops::Range<usize>, message: String| file.error(span, message);
        let raw: AssetsFile = file.parse()?;
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
            if name == UNGROUPED {
                return Err(at(
                    group.name.span(),
                    format!("the group name {UNGROUPED:?} is reserved for hosts in no group"),
                ));
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
            let mut networks: Vec<IpNetwork> = Vec::new();
            for cidr in group.cidrs.get_ref() {
                let net = network(cidr).map_err(|m| at(cidr.span(), m))?;
                // Across groups an overlap is how a host belongs to several; inside one group
                // it is a typo or a leftover.
                if let Some(wider) = networks.iter().find(|n| overlaps(n, &net)) {
                    return Err(at(
                        cidr.span(),
                        format!("{net} overlaps {wider}, already in group {name:?}"),
                    ));
                }
                networks.push(net);
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
            let fragments = match group
                .fragments
                .as_ref()
                .map(|s| (s.get_ref().as_str(), s.span()))
            {
                None => None,
                Some(("first", _)) => Some(OverlapPolicy::First),
                Some(("last", _)) => Some(OverlapPolicy::Last),
                Some((other, span)) => {
                    return Err(at(
                        span,
                        format!("unknown fragments policy {other:?}: use first or last"),
                    ));
                }
            };
            assets.groups.push(AssetGroup {
                name: Arc::from(name),
                networks,
                smtp,
                fragments,
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

    /// The most specific group of an address (longest prefix), whose policy applies to it.
    pub fn primary_group(&self, ip: IpAddr) -> Option<&AssetGroup> {
        self.index
            .iter()
            .find(|(network, _)| network.contains(ip))
            .and_then(|(_, g)| self.groups.get(*g))
    }

    /// How `ip` resolves overlapping IP fragments: the policy of its most specific group that
    /// names one; first-wins otherwise.
    pub fn overlap_policy(&self, ip: IpAddr) -> OverlapPolicy {
        self.index
            .iter()
            .filter(|(network, _)| network.contains(ip))
            .find_map(|(_, g)| self.groups.get(*g).and_then(|g| g.fragments))
            .unwrap_or_default()
    }

    /// Whether a host is on the organisation's side: in an asset group, or at a private-use
    /// address (RFC 1918, RFC 6598 shared space, RFC 4193 unique local, loopback, link-local).
    pub fn is_internal(&self, ip: IpAddr) -> bool {
        let private = match ip {
            IpAddr::V4(v4) => {
                let [a, b, ..] = v4.octets();
                v4.is_private()
                    || v4.is_loopback()
                    || v4.is_link_local()
                    || (a == 100 && (64..128).contains(&b))
            }
            IpAddr::V6(v6) => {
                let first = v6.segments()[0];
                v6.is_loopback() || first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80
            }
        };
        private || self.primary_group(ip).is_some()
    }

    pub fn is_relay(&self, ip: IpAddr) -> bool {
        self.relays.iter().any(|r| r.contains(ip))
    }

    /// Whether a mail address belongs to an internal domain (or a subdomain of one).
    pub fn is_internal_address(&self, address: &str) -> bool {
        let Some((_, domain)) = address.rsplit_once('@') else {
            return false;
        };
        let domain = domain.trim_end_matches('.');
        self.internal_domains.iter().any(|d| {
            domain.eq_ignore_ascii_case(d)
                || (domain.len() > d.len()
                    && domain.is_char_boundary(domain.len() - d.len() - 1)
                    && domain[domain.len() - d.len()..].eq_ignore_ascii_case(d)
                    && domain.as_bytes()[domain.len() - d.len() - 1] == b'.')
        })
    }

    /// The groups an address belongs to, as indexes into `groups`, longest prefix first,
    /// each once.
    pub fn group_ids(&self, ip: IpAddr) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for (network, group) in &self.index {
            if network.contains(ip) && !out.contains(group) {
                out.push(*group);
            }
        }
        out
    }

    /// The names of [`Assets::group_ids`].
    pub fn groups_of(&self, ip: IpAddr) -> Vec<Arc<str>> {
        self.group_ids(ip)
            .into_iter()
            .filter_map(|g| self.groups.get(g).map(|g| Arc::clone(&g.name)))
            .collect()
    }
}

fn overlaps(a: &IpNetwork, b: &IpNetwork) -> bool {
    a.contains(b.network()) || b.contains(a.network())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

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

    fn parse(text: &str) -> Result<Assets, RuleError> {
        Assets::parse(&RuleFile {
            path: Path::new("assets.toml"),
            text,
        })
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn the_documented_example_works_as_written() {
        let a = parse(EXAMPLE).unwrap();
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
    fn fragment_overlap_policy_is_the_most_specific_groups_that_names_one() {
        let a = parse(
            r#"
[[group]]
name = "legacy"
cidrs = ["10.0.0.0/8"]
fragments = "last"
[[group]]
name = "lab"
cidrs = ["10.1.0.0/16"]
[[group]]
name = "linux"
cidrs = ["10.1.2.0/24"]
fragments = "first"
"#,
        )
        .unwrap();
        let policy = |ip: &str| a.overlap_policy(ip.parse().unwrap());
        assert_eq!(policy("10.9.9.9"), OverlapPolicy::Last);
        assert_eq!(policy("10.1.9.9"), OverlapPolicy::Last, "lab names none");
        assert_eq!(policy("10.1.2.3"), OverlapPolicy::First);
        assert_eq!(policy("192.0.2.1"), OverlapPolicy::First, "in no group");
        assert!(
            err("[[group]]\nname = \"x\"\ncidrs = [\"10.0.0.0/8\"]\nfragments = \"bsd\"\n")
                .starts_with(
                    "assets.toml:4:13: unknown fragments policy \"bsd\": use first or last"
                )
        );
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
        assert!(
            err("[[group]]\nname = \"a\"\ncidrs = [\"10.0.0.0/8\", \"10.1.0.0/16\"]\n")
                .starts_with(
                    "assets.toml:3:24: 10.1.0.0/16 overlaps 10.0.0.0/8, already in group \"a\""
                )
        );
    }

    #[test]
    fn internal_hosts_and_addresses() {
        let a = parse(EXAMPLE).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(a.is_internal(ip("2001:db8:30::9")), "in a group");
        assert!(a.is_internal(ip("192.168.1.1")) && a.is_internal(ip("fd00::1")));
        assert!(!a.is_internal(ip("192.0.2.1")) && !a.is_internal(ip("2001:db8:99::1")));
        assert!(a.is_relay(ip("10.0.0.25")) && !a.is_relay(ip("10.0.0.26")));
        assert_eq!(
            a.primary_group(ip("10.20.5.7")).map(|g| &*g.name),
            Some("lab")
        );
        assert!(a.is_internal_address("bob@corp.example.org"));
        assert!(a.is_internal_address("bob@Mail.Corp.Example.ORG"));
        assert!(!a.is_internal_address("bob@notcorp.example.org"));
        assert!(
            !a.is_internal_address("bob@example.org") && !a.is_internal_address("corp.example.org")
        );
    }

    #[test]
    fn the_reserved_group_name_is_refused() {
        assert!(
            err("[[group]]\nname = \"ungrouped\"\ncidrs = [\"10.0.0.0/8\"]\n").contains("reserved")
        );
    }
}
