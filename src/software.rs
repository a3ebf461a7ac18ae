//! Software a session shows: what the fingerprint rules name (a mail client, server, webmail,
//! spam bot or SOCKS proxy) and the alert a rule attaches. The parsers' records carry it, the
//! rules produce it and the analysis counts it, so it depends on none of them.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};

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

/// Software identified in a session. `alert` is not carried when it is serialised: the
/// receiver looks it up again in its own rules by `rule`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
