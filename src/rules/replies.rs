//! Reply lengths of mail server software (`smtp_replies.toml`): how many bytes, CRLF included,
//! a server answers an accepted MAIL, RCPT, DATA and message with. The estimate of an
//! encrypted SMTP session reads its transaction shape from these.

use std::ops::RangeInclusive;

use serde::Deserialize;
use toml::Spanned;

use super::{RuleError, RuleFile};

/// A length as written: `14` or `[31, 46]`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(untagged)]
enum LengthRaw {
    Exact(u32),
    Range([u32; 2]),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerRaw {
    software: Spanned<String>,
    mail: Spanned<LengthRaw>,
    rcpt: Spanned<LengthRaw>,
    data: Spanned<LengthRaw>,
    queued: Spanned<LengthRaw>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRaw {
    #[serde(default, rename = "server")]
    servers: Vec<ServerRaw>,
}

/// One server software's reply lengths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyProfile {
    /// The `server_software` name the fingerprint rules give it.
    pub software: String,
    pub mail: RangeInclusive<u32>,
    pub rcpt: RangeInclusive<u32>,
    pub data: RangeInclusive<u32>,
    pub queued: RangeInclusive<u32>,
}

/// Every profile of the file, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplyProfiles {
    pub servers: Vec<ReplyProfile>,
}

/// Shortest and longest reply a length may say (a status line is at least `250\r\n`).
const SHORTEST: u32 = 5;
const LONGEST: u32 = 4096;

impl ReplyProfiles {
    pub(super) fn parse(file: &RuleFile) -> Result<Self, RuleError> {
        let raw: FileRaw = file.parse()?;
        let mut servers: Vec<ReplyProfile> = Vec::new();
        for server in raw.servers {
            if servers
                .iter()
                .any(|s| s.software == *server.software.get_ref())
            {
                return Err(file.error(
                    server.software.span(),
                    format!("software {:?} is listed twice", server.software.get_ref()),
                ));
            }
            let length = |value: &Spanned<LengthRaw>| {
                let (min, max) = match *value.get_ref() {
                    LengthRaw::Exact(n) => (n, n),
                    LengthRaw::Range([min, max]) => (min, max),
                };
                if min > max || min < SHORTEST || max > LONGEST {
                    return Err(file.error(
                        value.span(),
                        format!(
                            "a reply length is {SHORTEST} to {LONGEST} bytes, written as a number or [min, max] with min <= max"
                        ),
                    ));
                }
                Ok(min..=max)
            };
            servers.push(ReplyProfile {
                mail: length(&server.mail)?,
                rcpt: length(&server.rcpt)?,
                data: length(&server.data)?,
                queued: length(&server.queued)?,
                software: server.software.into_inner(),
            });
        }
        Ok(ReplyProfiles { servers })
    }

    /// The profile of the software named `name`.
    pub fn of(&self, name: &str) -> Option<&ReplyProfile> {
        self.servers.iter().find(|s| s.software == name)
    }

    #[cfg(test)]
    pub fn from_text(text: &str) -> Result<Self, RuleError> {
        Self::parse(&RuleFile {
            path: std::path::Path::new("smtp_replies.toml"),
            text,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_numbers_or_ranges() {
        let p = ReplyProfiles::from_text(
            "[[server]]\nsoftware = \"X\"\nmail = 8\nrcpt = 14\ndata = 56\nqueued = [28, 35]\n",
        )
        .unwrap();
        let x = p.of("X").unwrap();
        assert_eq!((x.mail.clone(), x.queued.clone()), (8..=8, 28..=35));
        assert!(p.of("Y").is_none());
    }

    #[test]
    fn bad_lengths_and_duplicates_name_their_line() {
        let e = ReplyProfiles::from_text(
            "[[server]]\nsoftware = \"X\"\nmail = 8\nrcpt = [20, 10]\ndata = 56\nqueued = 30\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (4, 8));
        assert!(e.message.contains("min <= max"), "{}", e.message);
        let twice = "[[server]]\nsoftware = \"X\"\nmail = 8\nrcpt = 9\ndata = 56\nqueued = 30\n";
        let e = ReplyProfiles::from_text(&format!("{twice}{twice}")).unwrap_err();
        assert_eq!(e.line, 8);
        assert!(e.message.contains("listed twice"));
        let e = ReplyProfiles::from_text("[[server]]\nsoftware = \"X\"\n").unwrap_err();
        assert!(e.message.contains("missing field"), "{}", e.message);
    }
}
