//! Detection settings (`detections.toml`): thresholds, windows and cool-downs in seconds of
//! packet time, the blocklist files, and the caps on detection state.
//!
//! Every section and field is optional and defaults to the value documented in the shipped
//! `rules/detections.toml`; unknown fields and out-of-range values are errors.

use std::num::NonZeroU64;

use serde::{Deserialize, Deserializer};

use super::{RuleError, RuleFile};

/// Whose mail `excessive_outbound_mail` adds up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SenderKey {
    /// The envelope sender (MAIL FROM).
    #[default]
    MailFrom,
    /// The authenticated user, else the client address.
    AuthUser,
    ClientIp,
}

fn nonzero(n: u64) -> NonZeroU64 {
    NonZeroU64::new(n).unwrap_or(NonZeroU64::MIN)
}

/// `asset_summary` events.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Summary {
    /// Seconds of packet time between summaries (0: only at the end of the run).
    pub interval: u64,
    /// Hosts listed per summary and role.
    pub max_hosts: usize,
}

impl Default for Summary {
    fn default() -> Self {
        Summary {
            interval: 3600,
            max_hosts: 100,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExcessiveMail {
    pub enabled: bool,
    pub sender: SenderKey,
    /// Accepted outside recipients within the window that raise the alert when exceeded.
    pub threshold: NonZeroU64,
    pub window: NonZeroU64,
    /// Seconds before the same sender alerts again while it goes on.
    pub cooldown: u64,
    /// Messages listed in the alert.
    pub max_messages: usize,
}

impl Default for ExcessiveMail {
    fn default() -> Self {
        ExcessiveMail {
            enabled: true,
            sender: SenderKey::MailFrom,
            threshold: nonzero(400),
            window: nonzero(900),
            cooldown: 3600,
            max_messages: 20,
        }
    }
}

/// A detection that alerts once per host (or host pair) and cool-down.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cooldown {
    pub enabled: bool,
    pub cooldown: u64,
}

impl Default for Cooldown {
    fn default() -> Self {
        Cooldown {
            enabled: true,
            cooldown: 3600,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectSmtp {
    pub enabled: bool,
    /// Unanswered or refused connections to outside port 25 within the window.
    pub threshold: NonZeroU64,
    pub window: NonZeroU64,
    pub cooldown: u64,
}

impl Default for DirectSmtp {
    fn default() -> Self {
        DirectSmtp {
            enabled: true,
            threshold: nonzero(3),
            window: nonzero(600),
            cooldown: 3600,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthBruteforce {
    pub enabled: bool,
    /// Failed AUTH attempts from one client within the window.
    pub threshold: NonZeroU64,
    pub window: NonZeroU64,
    pub cooldown: u64,
}

impl Default for AuthBruteforce {
    fn default() -> Self {
        AuthBruteforce {
            enabled: true,
            threshold: nonzero(10),
            window: nonzero(600),
            cooldown: 3600,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Surge {
    pub enabled: bool,
    /// Alert when a summary interval's distinct SMTP clients exceed baseline x factor.
    #[serde(deserialize_with = "factor")]
    pub factor: f64,
    /// ... and are at least this many.
    pub min_clients: u64,
    /// Intervals seen before the baseline is trusted.
    pub warmup: u64,
    /// Weight of the newest interval in the baseline (exponentially weighted mean).
    #[serde(deserialize_with = "weight")]
    pub smoothing: f64,
}

impl Default for Surge {
    fn default() -> Self {
        Surge {
            enabled: true,
            factor: 3.0,
            min_clients: 10,
            warmup: 3,
            smoothing: 0.3,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlocklistSettings {
    pub enabled: bool,
    pub cooldown: u64,
    /// Files relative to the rules directory: one network per line, or Spamhaus DROP lines.
    pub lists: Vec<toml::Spanned<String>>,
    /// Most entries over all lists.
    pub max_entries: usize,
}

impl Default for BlocklistSettings {
    fn default() -> Self {
        BlocklistSettings {
            enabled: true,
            cooldown: 3600,
            lists: Vec::new(),
            max_entries: 20_000_000,
        }
    }
}

/// Caps on the state the detections keep; what does not fit is counted in `stats`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Senders, clients and host pairs tracked by each windowed detection.
    pub max_tracked: usize,
    /// Messages or attempts one sender or host holds in its window.
    pub max_window_entries: usize,
    /// Hosts tracked per asset group.
    pub max_group_hosts: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tracked: 100_000,
            max_window_entries: 10_000,
            max_group_hosts: 100_000,
        }
    }
}

/// `detections.toml`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Detections {
    pub summary: Summary,
    pub excessive_outbound_mail: ExcessiveMail,
    pub smtp_policy_violation: Cooldown,
    pub direct_smtp_attempt: DirectSmtp,
    pub blocklisted_peer: BlocklistSettings,
    pub smtp_client_surge: Surge,
    pub smtp_auth_bruteforce: AuthBruteforce,
    pub smtp_over_socks: Cooldown,
    pub limits: Limits,
}

impl Detections {
    pub(super) fn parse(file: &RuleFile<'_>) -> Result<Self, RuleError> {
        file.parse()
    }
}

fn factor<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if v.is_finite() && v > 1.0 {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "factor must be a number above 1, not {v}"
        )))
    }
}

fn weight<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if v > 0.0 && v <= 1.0 {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "smoothing must be above 0 and at most 1, not {v}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Result<Detections, RuleError> {
        Detections::parse(&RuleFile {
            path: Path::new("detections.toml"),
            text,
        })
    }

    #[test]
    fn the_shipped_file_states_the_defaults() {
        let shipped = parse(include_str!("../../rules/detections.toml")).unwrap();
        assert_eq!(shipped, Detections::default());
    }

    #[test]
    fn fields_may_be_left_out() {
        let d =
            parse("[excessive_outbound_mail]\nthreshold = 50\nsender = \"auth_user\"\n").unwrap();
        assert_eq!(d.excessive_outbound_mail.threshold.get(), 50);
        assert_eq!(d.excessive_outbound_mail.sender, SenderKey::AuthUser);
        assert_eq!(d.excessive_outbound_mail.window.get(), 900);
        assert_eq!(d.smtp_auth_bruteforce, AuthBruteforce::default());
    }

    #[test]
    fn bad_values_name_the_line() {
        let err = |t: &str| parse(t).unwrap_err().to_string();
        assert!(
            err("[excessive_outbound_mail]\nwindow = 0\n").starts_with("detections.toml:2:10: ")
        );
        assert!(
            err("[excessive_outbound_mail]\nsender = \"from\"\n")
                .starts_with("detections.toml:2:10: unknown variant `from`")
        );
        assert!(
            err("[smtp_client_surge]\nfactor = 0.5\n")
                .contains("2:10: factor must be a number above 1")
        );
        assert!(
            err("[smtp_client_surge]\nsmoothing = 2.0\n").contains("smoothing must be above 0")
        );
        assert!(
            err("[summary]\nintervall = 5\n")
                .starts_with("detections.toml:2:1: unknown field `intervall`")
        );
        assert!(
            err("[direct_smtp_attempt]\nthreshold = \"5\"\n")
                .starts_with("detections.toml:2:13: invalid type")
        );
    }
}
