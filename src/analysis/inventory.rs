//! The software inventory: the first time in a run a host is seen with a given software (by a
//! fingerprint rule, or answering SOCKS), a `software` event, and the rule's alert if it marks
//! the software unwanted.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use super::alert::{Alert, software_alert};
use super::state::{Capped, KeyBudget};
use crate::software::{Software, SoftwareType};

/// Body of a `software` event: the host and what runs on it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SoftwareSighting {
    pub host: IpAddr,
    #[serde(flatten)]
    pub software: Software,
}

type Key = (
    IpAddr,
    SoftwareType,
    String,
    Option<String>,
    Option<String>,
    bool,
);

/// Hosts and the software seen on them.
#[derive(Debug)]
pub struct Inventory {
    seen: Capped<Key, ()>,
    socks_rule: Arc<str>,
}

impl Inventory {
    #[cfg(test)]
    pub fn new(cap: usize) -> Self {
        Inventory::sharing(cap, KeyBudget::unlimited())
    }

    /// At most `cap` hosts' software, counted against `budget` too.
    pub fn sharing(cap: usize, budget: KeyBudget) -> Self {
        Inventory {
            seen: Capped::sharing(cap, budget),
            socks_rule: Arc::from("socks_reply"),
        }
    }

    pub fn tracked(&self) -> (u64, u64) {
        (self.seen.len() as u64, self.seen.refused)
    }

    /// A host seen with software: the sighting (and alert) if it is the first.
    pub fn sighted(
        &mut self,
        host: IpAddr,
        software: &Software,
    ) -> Option<(SoftwareSighting, Option<Alert>)> {
        let key = (
            host,
            software.kind,
            software.name.clone(),
            software.version.clone(),
            software.edition.clone(),
            software.forged,
        );
        let fresh = {
            let before = self.seen.len();
            let refused = self.seen.refused;
            self.seen.get_or_insert_with(key, || ());
            // New when it was added; a key refused because the table is full is reported
            // again rather than never.
            self.seen.len() > before || self.seen.refused > refused
        };
        if !fresh {
            return None;
        }
        let alert = software
            .alert
            .as_ref()
            .map(|rule| software_alert(host, rule, software));
        Some((
            SoftwareSighting {
                host,
                software: software.clone(),
            },
            alert,
        ))
    }

    /// The software a host that answered SOCKS is inventoried as.
    pub fn socks_proxy(&self, version: u8) -> Software {
        Software {
            kind: SoftwareType::SocksProxy,
            name: format!("SOCKS{version} proxy"),
            version: None,
            edition: None,
            rule: Arc::clone(&self.socks_rule),
            forged: false,
            evidence: format!("answered a SOCKS{version} request"),
            alert: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::software::RuleAlert;

    fn bat(version: &str, forged: bool) -> Software {
        Software {
            kind: SoftwareType::MailClient,
            name: "The Bat!".into(),
            version: Some(version.into()),
            edition: None,
            rule: Arc::from("the_bat"),
            evidence: "x_mailer=The Bat!".into(),
            forged,
            alert: None,
        }
    }

    fn host(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn a_host_and_its_software_are_reported_once() {
        let mut inv = Inventory::new(10);
        let (sighting, alert) = inv.sighted(host(1), &bat("10.5.4", false)).expect("first");
        assert_eq!(
            (sighting.host, sighting.software.name.as_str()),
            (host(1), "The Bat!")
        );
        assert!(alert.is_none(), "the rule raises no alert");
        assert!(inv.sighted(host(1), &bat("10.5.4", false)).is_none());
        // Another host, another version, or a forgery is news.
        assert!(inv.sighted(host(2), &bat("10.5.4", false)).is_some());
        assert!(inv.sighted(host(1), &bat("9.1", false)).is_some());
        assert!(inv.sighted(host(1), &bat("10.5.4", true)).is_some());
        assert_eq!(inv.tracked(), (4, 0));
    }

    #[test]
    fn unwanted_software_raises_its_rules_alert_more_severe_when_forged() {
        let mut inv = Inventory::new(10);
        let rule = Arc::new(RuleAlert {
            signature: "mass_mailer".into(),
            signature_id: 9_100_001,
            category: "spam".into(),
            severity: 2,
        });
        let mut software = bat("10.5.4", false);
        software.alert = Some(Arc::clone(&rule));
        let (_, alert) = inv.sighted(host(1), &software).unwrap();
        let alert = alert.expect("the rule's alert");
        assert_eq!((alert.signature_id, alert.severity), (9_100_001, 2));
        software.forged = true;
        let (_, alert) = inv.sighted(host(1), &software).unwrap();
        assert_eq!(alert.unwrap().severity, 1);
    }

    #[test]
    fn a_full_inventory_reports_again_rather_than_never_and_counts() {
        let mut inv = Inventory::new(1);
        assert!(inv.sighted(host(1), &bat("1", false)).is_some());
        assert!(inv.sighted(host(2), &bat("1", false)).is_some());
        assert!(inv.sighted(host(2), &bat("1", false)).is_some());
        assert_eq!(inv.tracked(), (1, 2));
    }

    #[test]
    fn socks_answerers_are_named_by_version() {
        let inv = Inventory::new(1);
        let s = inv.socks_proxy(4);
        assert_eq!(
            (s.kind, s.name.as_str()),
            (SoftwareType::SocksProxy, "SOCKS4 proxy")
        );
        assert_eq!(&*s.rule, "socks_reply");
    }
}
