//! The software inventory: the first time in a run a host is seen with a given software (by a
//! fingerprint rule, or answering SOCKS), a `software` event, and the rule's alert if it marks
//! the software unwanted.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use super::alert::{Alert, software_alert};
use super::state::Capped;
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
    pub fn new(cap: usize) -> Self {
        Inventory {
            seen: Capped::new(cap),
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
