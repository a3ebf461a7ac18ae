//! Fingerprints of SMTP and TLS sessions: what a session shows, as the fingerprint rules see
//! it, and the software they name written back onto the session's record. An SMTP session that
//! went on in TLS is seen with its handshake too, and a client whose cleartext habits name one
//! program and whose TLS hello names another is noted (`tls_client_mismatch`).

use crate::protocols::smtp::{self, SmtpRecord};
use crate::protocols::tls::{TlsFields, TlsRecord};
use crate::rules::{Features, Fingerprints, HeloVerb, Quoting};
use crate::software::{Software, SoftwareType};

/// The first client-side and the first server-side identification.
fn sides(found: &[Software]) -> (Option<Software>, Option<Software>) {
    (
        found
            .iter()
            .find(|s| s.kind != SoftwareType::MailServer)
            .cloned(),
        found
            .iter()
            .find(|s| s.kind == SoftwareType::MailServer)
            .cloned(),
    )
}

/// What a TLS handshake shows the rules.
fn tls_features<'a>(tls: &'a TlsFields, features: &mut Features<'a>) {
    features.ja3 = tls.ja3.as_ref().map(|f| f.hash.as_str());
    features.ja3s = tls.ja3s.as_ref().map(|f| f.hash.as_str());
    features.ja4 = tls.ja4.as_deref();
    features.sni = tls.sni.as_deref();
    features.alpn = (!tls.client_alpns.is_empty()).then(|| tls.client_alpns.join(","));
    features.tls_subject = tls.subject.as_deref();
    features.tls_issuer = tls.issuerdn.as_deref();
}

/// Where a session's mail server is, for the rules' conditions on it.
#[derive(Clone, Copy, Debug)]
pub struct Server {
    /// The flow's server port, or the destination port of the tunnel the session went through.
    pub port: u16,
    /// Whether that server is internal.
    pub internal: bool,
    /// Mail between the organisation's own servers: the client is a sanctioned relay or in a
    /// group that may send anywhere (`smtp = "allow"`), and the server is internal.
    pub between_mail_servers: bool,
}

/// Identifies the software of a TLS session from its handshake and fills its
/// `client_software`, `server_software` and `software`.
pub fn identify_tls(fingerprints: &Fingerprints, record: &mut TlsRecord, server: Server) {
    let mut features = Features {
        dest_port: server.port,
        server_internal: server.internal,
        between_mail_servers: server.between_mail_servers,
        ..Features::default()
    };
    tls_features(&record.tls, &mut features);
    let found = fingerprints.identify(&features);
    (record.tls.client_software, record.tls.server_software) = sides(&found);
    record.software = found;
}

/// Identifies the software of an SMTP session and fills its `client_software`,
/// `server_software` and `software`.
pub fn identify_smtp(fingerprints: &Fingerprints, record: &mut SmtpRecord, server: Server) {
    let found = fingerprints.identify(&features_of(record, server));
    // The client as the cleartext rules name it, and as the rules on its TLS hello do.
    let client = |by_tls: bool| {
        found.iter().find(|s| {
            s.kind != SoftwareType::MailServer && fingerprints.uses_tls(&s.rule) == by_tls
        })
    };
    let mismatch = matches!((client(false), client(true)), (Some(a), Some(b)) if a.name != b.name);
    (record.smtp.client_software, record.smtp.server_software) = sides(&found);
    record.software = found;
    if mismatch && !record.smtp.anomalies.contains(&"tls_client_mismatch") {
        record.smtp.anomalies.push("tls_client_mismatch");
    }
}

fn features_of(record: &SmtpRecord, server: Server) -> Features<'_> {
    let smtp = &record.smtp;
    let email = record.email.as_ref();
    let charset = email
        .and_then(|e| e.content_type.as_deref())
        .and_then(|ct| {
            const CHARSET: &[u8] = b"charset=";
            let at = ct
                .as_bytes()
                .windows(CHARSET.len())
                .position(|w| w.eq_ignore_ascii_case(CHARSET))?
                + CHARSET.len();
            let quoted = ct.as_bytes().get(at) == Some(&b'"');
            Some((
                if quoted {
                    Quoting::Quoted
                } else {
                    Quoting::Unquoted
                },
                ct,
            ))
        });
    let mut features = Features {
        banner: smtp.banner.as_deref(),
        ehlo_reply: smtp.ehlo_reply.as_deref(),
        helo: smtp.helo.as_deref(),
        helo_verb: smtp.helo_verb.map(|verb| match verb {
            smtp::HeloVerb::Helo => HeloVerb::Helo,
            smtp::HeloVerb::Ehlo => HeloVerb::Ehlo,
        }),
        commands: Some(smtp.commands.as_str()).filter(|c| !c.is_empty()),
        pregreet: smtp.pregreet,
        auth_mechanism: smtp.auth.as_ref().map(|a| a.mechanism.as_str()),
        x_mailer: email.and_then(|e| e.x_mailer.as_deref()),
        user_agent: email.and_then(|e| e.user_agent.as_deref()),
        message_id: email.and_then(|e| e.message_id.as_deref()),
        boundary: email.and_then(|e| e.boundary.as_deref()),
        charset,
        x_priority: email.and_then(|e| e.x_priority.as_deref()),
        header_order: email
            .filter(|e| !e.header_names.is_empty())
            .map(|e| e.header_names.join(",")),
        dest_port: server.port,
        server_internal: server.internal,
        between_mail_servers: server.between_mail_servers,
        ..Features::default()
    };
    if let Some(tls) = &record.tls {
        tls_features(&tls.fields, &mut features);
    }
    features
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(port: u16, internal: bool) -> Server {
        Server {
            port,
            internal,
            between_mail_servers: false,
        }
    }
    use crate::protocols::smtp::{AuthRecord, EmailFields, Status};
    use crate::protocols::tls::TlsRecord;
    use crate::rules::{MAX_CAPTURE, MAX_EVIDENCE, Rules};
    use std::path::Path;

    fn shipped() -> Fingerprints {
        Rules::load(None).unwrap().fingerprints
    }

    fn parse(text: &str) -> Result<Fingerprints, crate::rules::RuleError> {
        Fingerprints::from_text(Path::new("fingerprints.toml"), text)
    }

    fn record(helo: &str, banner: &str, email: Option<EmailFields>) -> SmtpRecord {
        let mut record = SmtpRecord::empty(Status::Queued);
        record.smtp.banner = Some(banner.into());
        record.smtp.helo = Some(helo.into());
        record.smtp.helo_verb = Some(smtp::HeloVerb::Ehlo);
        record.smtp.commands = "EHLO;MAIL FROM:<;RCPT TO:<;DATA;QUIT".into();
        record.smtp.trans_depth = 1;
        record.email = email;
        record
    }

    fn bat(x_mailer: &str, message_id: &str, boundary: &str, content_type: &str) -> EmailFields {
        EmailFields {
            x_mailer: Some(x_mailer.into()),
            message_id: Some(message_id.into()),
            boundary: Some(boundary.into()),
            content_type: Some(content_type.into()),
            x_priority: Some("3 (Normal)".into()),
            ..EmailFields::default()
        }
    }

    fn identify(
        r: &mut SmtpRecord,
        port: u16,
        internal: bool,
    ) -> Vec<(String, Option<String>, Option<String>, bool)> {
        identify_smtp(&shipped(), r, server(port, internal));
        r.software
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    s.version.clone(),
                    s.edition.clone(),
                    s.forged,
                )
            })
            .collect()
    }

    fn sw(
        name: &str,
        version: Option<&str>,
        edition: Option<&str>,
        forged: bool,
    ) -> (String, Option<String>, Option<String>, bool) {
        (
            name.into(),
            version.map(Into::into),
            edition.map(Into::into),
            forged,
        )
    }

    #[test]
    fn the_bat_old_and_new_versions_and_editions() {
        for (x_mailer, version, edition) in [
            (
                "The Bat! (v3.99.3) Professional",
                "3.99.3",
                Some("Professional"),
            ),
            ("The Bat! (v9.5.2) Home", "9.5.2", Some("Home")),
            (
                "The Bat! (v2.00.6) UNREG / CD5BF9353B3B7091",
                "2.00.6",
                Some("UNREG"),
            ),
            ("The Bat! (v1.62r)", "1.62r", None),
            ("The Bat! (v10.5.4)", "10.5.4", None),
            (
                "The Bat! (v9.2.2.1 (BETA)) Professional",
                "9.2.2.1",
                Some("Professional"),
            ),
            ("The Bat! (v1.53 RC/4)", "1.53", None),
            (
                "The Bat! (v1.38e) S/N A1D26E39 / Educational",
                "1.38e",
                Some("Educational"),
            ),
            ("The Bat! 9.3", "", None),
        ] {
            let email = bat(
                x_mailer,
                "<1234567890.20260101120000@example.org>",
                "----------1F0E2A3B4C5D6E7F",
                "multipart/mixed; charset=windows-1251",
            );
            let mut r = record(
                "DESKTOP-7Q2K",
                "220 mx.example.net ESMTP Postfix",
                Some(email),
            );
            let found = identify(&mut r, 587, false);
            if version.is_empty() {
                assert!(
                    found.iter().all(|f| f.0 != "The Bat!"),
                    "{x_mailer}: no match, the version is in brackets"
                );
                continue;
            }
            assert_eq!(
                found[0],
                sw("The Bat!", Some(version), edition, false),
                "{x_mailer}"
            );
            let client = r.smtp.client_software.as_ref().unwrap();
            assert_eq!(client.kind, SoftwareType::MailClient);
            assert_eq!(&*client.rule, "the_bat");
            assert!(client.alert.is_some());
            assert_eq!(
                r.smtp.server_software.as_ref().map(|s| s.name.as_str()),
                Some("Postfix")
            );
        }
    }

    #[test]
    fn forged_the_bat_breaks_a_habit() {
        let genuine = (
            "<1234567890.20260101120000@example.org>",
            "----------1F0E2A3B4C5D6E7F",
            "text/plain; charset=us-ascii",
        );
        let cases = [
            ("<5f1c2e@example.org>", genuine.1, genuine.2, "message_id"),
            (genuine.0, "=_NextPart_000_0001", genuine.2, "boundary"),
            (
                genuine.0,
                genuine.1,
                "text/plain; charset=\"us-ascii\"",
                "content_type",
            ),
        ];
        for (mid, boundary, ct, broken) in cases {
            let email = bat("The Bat! (v3.99.3) Professional", mid, boundary, ct);
            let mut r = record("WORKPC", "220 mx ESMTP", Some(email));
            identify(&mut r, 587, false);
            let s = &r.software[0];
            assert!(s.forged, "{broken}");
            assert!(
                s.evidence.contains(&format!("not genuine: {broken}=")),
                "{}",
                s.evidence
            );
            assert!(
                s.evidence
                    .starts_with("x_mailer=The Bat! (v3.99.3) Professional")
            );
        }
        // The charset and boundary habits were seen up to 4.0.24 only: a later version is
        // not held to them.
        let email = bat(
            "The Bat! (v9.5.2) Professional",
            genuine.0,
            "=_NextPart_000_0001",
            "text/plain; charset=\"us-ascii\"",
        );
        let mut r = record("WORKPC", "220 mx ESMTP", Some(email));
        identify(&mut r, 587, false);
        assert!(!r.software[0].forged, "{}", r.software[0].evidence);
        // Real clients greet with FQDNs too: an EHLO name is not a habit.
        let email = bat(
            "The Bat! (v3.99.3) Professional",
            genuine.0,
            genuine.1,
            genuine.2,
        );
        let mut r = record("client.example.test", "220 mx ESMTP", Some(email));
        identify(&mut r, 587, false);
        assert!(!r.software[0].forged);
    }

    #[test]
    fn clients_webmail_and_servers() {
        let client = |header: &str, value: &str| -> Option<(String, Option<String>)> {
            let mut email = EmailFields::default();
            match header {
                "x_mailer" => email.x_mailer = Some(value.into()),
                _ => email.user_agent = Some(value.into()),
            }
            let mut r = record("pc.example.org", "220 x", Some(email));
            identify_smtp(&shipped(), &mut r, server(587, false));
            r.smtp.client_software.map(|s| (s.name, s.version))
        };
        let named = |n: &str, v: Option<&str>| Some((n.to_string(), v.map(str::to_string)));
        assert_eq!(
            client("x_mailer", "Microsoft Outlook 16.0"),
            named("Microsoft Outlook", Some("16.0"))
        );
        assert_eq!(
            client("x_mailer", "Microsoft Office Outlook 12.0"),
            named("Microsoft Outlook", Some("12.0"))
        );
        assert_eq!(
            client(
                "user_agent",
                "Mozilla/5.0 (Windows NT 10.0; rv:115.0) Gecko/20100101 Thunderbird/115.3.1"
            ),
            named("Mozilla Thunderbird", Some("115.3.1"))
        );
        assert_eq!(
            client("x_mailer", "Apple Mail (2.3654.120.0.1.13)"),
            named("Apple Mail", Some("2.3654.120.0.1.13"))
        );
        assert_eq!(
            client("x_mailer", "iPhone Mail (20B101)"),
            named("iPhone Mail", Some("20B101"))
        );
        assert_eq!(
            client(
                "x_mailer",
                "PHPMailer 6.8.0 (https://github.com/PHPMailer/PHPMailer)"
            ),
            named("PHPMailer", Some("6.8.0"))
        );
        assert_eq!(
            client("x_mailer", "Atomic Mail Sender 9.30"),
            named("Atomic Mail Sender", Some("9.30"))
        );
        assert_eq!(
            client("user_agent", "Roundcube Webmail/1.6.5"),
            named("Roundcube", Some("1.6.5"))
        );
        assert_eq!(client("x_mailer", "Some Unknown Mailer 1.0"), None);

        let server = |banner: &str| -> Option<(String, Option<String>)> {
            let mut r = record("pc.example.org", banner, None);
            identify_smtp(&shipped(), &mut r, server(25, false));
            r.smtp.server_software.map(|s| (s.name, s.version))
        };
        assert_eq!(
            server("220 mx.example.net ESMTP Postfix (Debian/GNU)"),
            named("Postfix", None)
        );
        assert_eq!(
            server("220 mail.example.com ESMTP Exim 4.96 Sun, 22 Nov 2026 10:00:00 +0000"),
            named("Exim", Some("4.96"))
        );
        assert_eq!(
            server("220 mx.example.org ESMTP Sendmail 8.15.2/8.15.2; Sun, 22 Nov 2026"),
            named("Sendmail", Some("8.15.2"))
        );
        assert_eq!(
            server("220 EXCH01.corp.local Microsoft ESMTP MAIL Service ready at Sun, 22 Nov 2026"),
            named("Microsoft Exchange", None)
        );
        assert_eq!(
            server("220 mail.example.net ESMTP OpenSMTPD"),
            named("OpenSMTPD", None)
        );
        assert_eq!(
            server("220 mx1.example.net ESMTP Haraka/3.0.2 ready"),
            named("Haraka", Some("3.0.2"))
        );
        assert_eq!(server("220 mx.example.net ESMTP"), None);
    }

    #[test]
    fn bot_dialects() {
        let bots = |helo: &str, pregreet: bool, port: u16, internal: bool| -> Vec<String> {
            let mut r = record(helo, "220 mx ESMTP", None);
            r.smtp.pregreet = pregreet;
            identify_smtp(&shipped(), &mut r, server(port, internal));
            r.software
                .iter()
                .filter(|s| s.kind == SoftwareType::SpamBot)
                .map(|s| s.rule.to_string())
                .collect()
        };
        assert_eq!(bots("ylmf-pc", false, 587, false), vec!["cutwail"]);
        assert_eq!(
            bots("ylmf-pc", false, 25, false),
            vec!["cutwail", "dotless_helo_to_mx"]
        );
        assert_eq!(bots("mx.example.org", true, 25, false), vec!["pregreet"]);
        assert_eq!(bots("XKQZTRWP", false, 587, false), vec!["random_helo"]);
        assert!(
            bots("MARKETING", false, 587, false).is_empty(),
            "pronounceable"
        );
        assert_eq!(bots("192.0.2.7", false, 25, false), vec!["ip_helo_to_mx"]);
        assert!(
            bots("192.0.2.7", false, 25, true).is_empty(),
            "to an internal server"
        );
        assert!(
            bots("[192.0.2.7]", false, 25, false).is_empty(),
            "an address literal is allowed"
        );
        assert!(bots("mail.example.org", false, 25, false).is_empty());
    }

    #[test]
    fn hostile_header_values_are_matched_safely_and_evidence_is_capped() {
        let huge = format!("The Bat! (v9.5.2) {}", "\u{fffd}".repeat(5000));
        let email = bat(&huge, "<\u{0}\u{fffd}>", "x", "text/plain");
        let mut r = record(&"A".repeat(3000), "220 \u{fffd}", Some(email));
        identify_smtp(&shipped(), &mut r, server(25, false));
        for s in &r.software {
            assert!(s.evidence.len() <= MAX_EVIDENCE);
            assert!(s.edition.as_ref().is_none_or(|e| e.len() <= MAX_CAPTURE));
        }
    }

    #[test]
    fn commands_header_order_auth_and_verb_conditions() {
        let rules = parse(
            r#"
[[rule]]
name = "lowercase_bot"
type = "spam_bot"
software = "lower-case bot"
match.commands = '^helo;mail from: <'
match.helo_verb = "HELO"

[[rule]]
name = "header_order"
type = "mail_client"
software = "Ordered"
match.header_order = '^Date,From,To,'
match.auth_mechanism = '^LOGIN$'
"#,
        )
        .unwrap();
        let mut r = record("pc", "220 x", None);
        r.smtp.commands = "helo;mail from: <;rcpt to: <;data".into();
        r.smtp.helo_verb = Some(smtp::HeloVerb::Helo);
        identify_smtp(&rules, &mut r, server(25, false));
        assert_eq!(r.software.len(), 1);
        assert_eq!(
            r.software[0].evidence,
            "commands=helo;mail from: <;rcpt to: <;data"
        );
        r.smtp.commands = "HELO;MAIL FROM:<".into();
        identify_smtp(&rules, &mut r, server(25, false));
        assert!(r.software.is_empty(), "spelling differs");

        let email = EmailFields {
            header_names: ["Date", "From", "To", "Subject"].into_iter().collect(),
            ..EmailFields::default()
        };
        let mut r = record("pc", "220 x", Some(email));
        identify_smtp(&rules, &mut r, server(587, false));
        assert!(
            r.software.is_empty(),
            "no AUTH: a match condition on it fails"
        );
        r.smtp.auth = Some(AuthRecord {
            mechanism: "LOGIN".into(),
            ..Default::default()
        });
        identify_smtp(&rules, &mut r, server(587, false));
        assert_eq!(
            r.smtp.client_software.map(|s| s.name),
            Some("Ordered".into())
        );
    }

    /// A TLS session's fields as the shipped rules saw them on pcaps/real-tls.pcap.
    fn hello(ja4: &str) -> crate::protocols::tls::TlsFields {
        crate::protocols::tls::TlsFields {
            ja4: Some(ja4.into()),
            sni: Some("mx.example.test".into()),
            subject: Some("C=NL, O=Example Mail, CN=mx.example.net".into()),
            ..Default::default()
        }
    }

    #[test]
    fn tls_clients_are_named_from_their_hello() {
        let names = |ja4: &str| {
            let mut record = TlsRecord {
                tls: hello(ja4),
                software: Vec::new(),
            };
            identify_tls(&shipped(), &mut record, server(587, true));
            record.tls.client_software.map(|s| s.name)
        };
        // With and without SNI: the same library.
        assert_eq!(
            names("t13i181000_85036bcba153_d41ae481755e").as_deref(),
            Some("Python ssl")
        );
        assert_eq!(
            names("t13d181100_85036bcba153_d41ae481755e").as_deref(),
            Some("Python ssl")
        );
        assert_eq!(
            names("t13d311100_e8f1e7e78f70_b26ce05bbdd6").as_deref(),
            Some("curl")
        );
        assert_eq!(
            names("t13i311000_e8f1e7e78f70_d41ae481755e").as_deref(),
            Some("OpenSSL default client")
        );
        assert_eq!(names("t13i040900_16476d049b0b_78f1d400d464"), None);
    }

    #[test]
    fn certificate_sni_and_alpn_conditions_name_a_server() {
        let rules = parse(
            r#"
[[rule]]
name = "example_mx"
type = "mail_server"
software = "Example Mail gateway"
match.tls_subject = 'O=Example Mail, CN=mx\.example\.net$'
match.sni = '^mx\.'
"#,
        )
        .unwrap();
        let mut record = TlsRecord {
            tls: hello("t13i181000_85036bcba153_d41ae481755e"),
            software: Vec::new(),
        };
        identify_tls(&rules, &mut record, server(25, false));
        let server = record
            .tls
            .server_software
            .expect("named by its certificate");
        assert_eq!(server.name, "Example Mail gateway");
        assert!(
            server.evidence.contains("tls_subject="),
            "{}",
            server.evidence
        );
        assert!(record.tls.client_software.is_none());
    }

    #[test]
    fn a_bot_greeting_with_a_python_hello_is_a_mismatch() {
        // Cutwail's HELO before STARTTLS, Python's ssl in the TLS after it.
        let mut r = record("ylmf-pc", "220 mx ESMTP Postfix", None);
        r.smtp.status = Status::Tls;
        r.tls = Some(std::sync::Arc::new(crate::protocols::tls::TlsSession {
            fields: hello("t13i181000_85036bcba153_d41ae481755e"),
            transcript: Default::default(),
        }));
        identify_smtp(&shipped(), &mut r, server(25, false));
        assert_eq!(r.smtp.anomalies, ["tls_client_mismatch"]);
        let names: Vec<&str> = r.software.iter().map(|s| s.name.as_str()).collect();
        assert!(
            names.contains(&"Cutwail") && names.contains(&"Python ssl"),
            "{names:?}"
        );
        // The same hello after a greeting that names no client is no mismatch.
        let mut plain = record("client.example.org", "220 mx ESMTP Postfix", None);
        plain.tls = r.tls.clone();
        identify_smtp(&shipped(), &mut plain, server(25, false));
        assert!(plain.smtp.anomalies.is_empty());
        assert_eq!(
            plain.smtp.client_software.map(|s| s.name).as_deref(),
            Some("Python ssl")
        );
    }
}
