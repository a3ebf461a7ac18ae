//! The `alert` event body: Suricata's `alert` object (action, signature_id, signature,
//! category, severity) plus the host it is about and what the detection found.

use std::net::IpAddr;

use serde::Serialize;

use crate::protocols::TunnelKind;
use crate::software::{RuleAlert, Software, SoftwareType};
use crate::timestamp::Timestamp;

/// One alert. Detections fill `details`; the rest is common to all.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    /// Always `allowed`: a passive sensor blocks nothing.
    pub action: &'static str,
    pub signature_id: u32,
    pub rev: u32,
    pub signature: String,
    pub category: String,
    /// 1 high .. 3 low.
    pub severity: u8,
    /// The host the alert is about (an internal client, or the group's case a sample host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<IpAddr>,
    #[serde(flatten)]
    pub details: Details,
}

/// The detections, with their signature ids and default categories and severities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signature {
    ExcessiveOutboundMail,
    SmtpPolicyViolation,
    DirectSmtpAttempt,
    BlocklistedPeer,
    SmtpClientSurge,
    SmtpAuthBruteforce,
    SmtpOverSocks,
}

impl Signature {
    fn meta(self) -> (u32, &'static str, &'static str, u8) {
        match self {
            Signature::ExcessiveOutboundMail => (9_000_001, "excessive_outbound_mail", "spam", 1),
            Signature::SmtpPolicyViolation => (9_000_002, "smtp_policy_violation", "policy", 2),
            Signature::DirectSmtpAttempt => (9_000_003, "direct_smtp_attempt", "policy", 2),
            Signature::BlocklistedPeer => (9_000_004, "blocklisted_peer", "reputation", 1),
            Signature::SmtpClientSurge => (9_000_005, "smtp_client_surge", "anomaly", 2),
            Signature::SmtpAuthBruteforce => (9_000_006, "smtp_auth_bruteforce", "bruteforce", 1),
            Signature::SmtpOverSocks => (9_000_007, "smtp_over_socks", "spam", 1),
        }
    }

    pub fn name(self) -> &'static str {
        self.meta().1
    }

    pub fn alert(self, host: Option<IpAddr>, details: Details) -> Alert {
        let (signature_id, signature, category, severity) = self.meta();
        Alert {
            action: "allowed",
            signature_id,
            rev: 1,
            signature: signature.to_string(),
            category: category.to_string(),
            severity,
            host,
            details,
        }
    }
}

/// The alert of a fingerprint rule whose software is unwanted. A forged identification is
/// one step more severe.
pub fn software_alert(host: IpAddr, rule: &RuleAlert, software: &Software) -> Alert {
    Alert {
        action: "allowed",
        signature_id: rule.signature_id,
        rev: 1,
        signature: rule.signature.clone(),
        category: rule.category.clone(),
        severity: if software.forged {
            rule.severity.saturating_sub(1).max(1)
        } else {
            rule.severity
        },
        host: Some(host),
        details: Details::Software {
            rule: software.rule.to_string(),
            software_type: software.kind,
            name: software.name.clone(),
            version: software.version.clone(),
            edition: software.edition.clone(),
            forged: software.forged,
            evidence: software.evidence.clone(),
        },
    }
}

/// A message that counted towards `excessive_outbound_mail`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MessageSummary {
    pub timestamp: Timestamp,
    pub src_ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail_from: Option<String>,
    /// The outside recipients that were accepted (at most 10 listed).
    pub rcpt_to: Vec<String>,
    /// How many there were.
    pub recipients: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The session was encrypted: `recipients` is estimated from its TLS record lengths, and
    /// whether they are outside is not known.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Detection-specific fields, flattened into the `alert` object.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Details {
    ExcessiveOutboundMail {
        sender: String,
        sender_type: &'static str,
        count: u64,
        /// How many of `count` were estimated from encrypted sessions.
        #[serde(skip_serializing_if = "is_zero")]
        estimated_recipients: u64,
        threshold: u64,
        window: u64,
        /// Messages in the window, oldest first, capped; `messages_total` says how many.
        messages: Vec<MessageSummary>,
        messages_total: u64,
    },
    PolicyViolation {
        group: String,
        policy: &'static str,
        reason: &'static str,
        server: IpAddr,
    },
    DirectSmtpAttempt {
        count: u64,
        threshold: u64,
        window: u64,
        /// Outside servers tried, in order (capped at 20).
        servers: Vec<IpAddr>,
    },
    BlocklistedPeer {
        peer: IpAddr,
        /// `smtp_server`, `smtp_client`, `socks_server`, `socks_client` or `http_proxy`: what
        /// the peer was in this flow.
        peer_role: &'static str,
        list: String,
        line: u32,
        entry: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        reference: String,
    },
    SmtpClientSurge {
        group: String,
        clients: u64,
        baseline: f64,
        factor: f64,
        interval: u64,
        /// Some of the interval's clients (capped).
        hosts: Vec<IpAddr>,
    },
    SmtpAuthBruteforce {
        count: u64,
        threshold: u64,
        window: u64,
        server: IpAddr,
        /// User names tried, as far as seen (capped at 20).
        usernames: Vec<String>,
    },
    Software {
        rule: String,
        software_type: SoftwareType,
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        edition: Option<String>,
        forged: bool,
        evidence: String,
    },
    SmtpOverSocks {
        tunnel_type: TunnelKind,
        proxy: String,
        proxy_port: u16,
        dest_host: String,
        dest_port: u16,
        #[serde(skip_serializing_if = "Option::is_none")]
        mail_from: Option<String>,
    },
}
