//! The detections that look at one observation at a time, with windows and cool-downs keyed
//! by sender, client or host pair: excessive outbound mail, SMTP policy, direct SMTP attempts,
//! blocklisted peers, AUTH brute force, and SMTP through a proxy.

use std::net::IpAddr;

use super::alert::{Alert, Details, MessageSummary, Signature};
use super::observation::{Observation, Observed, SmtpSighting};
use super::state::{Cooldowns, Expiring, KeyBudget, Window, no_longer_within};
use crate::protocols::TunnelKind;
use crate::rules::{Rules, SenderKey, SmtpPolicy};
use crate::timestamp::Timestamp;

/// Recipients listed per message in an alert, and servers or user names per alert.
const LISTED: usize = 10;
const LISTED_HOSTS: usize = 20;

/// A failed AUTH attempt's context, for the alert.
#[derive(Debug)]
struct AuthAttempt {
    server: IpAddr,
    user: Option<String>,
}

/// A session's repeated events come close together: after this many seconds of silence its
/// AUTH failures are no longer remembered.
const AUTH_SESSION_SILENCE: u64 = 3600;

/// State of the per-observation detections.
#[derive(Debug)]
pub struct Detectors {
    excessive: Expiring<String, Window<MessageSummary>>,
    policy: Cooldowns<(IpAddr, IpAddr)>,
    direct: Expiring<IpAddr, Window<IpAddr>>,
    blocklisted: Cooldowns<(IpAddr, IpAddr)>,
    bruteforce: Expiring<IpAddr, Window<AuthAttempt>>,
    /// Failures already counted per SMTP session (flow id), with when last seen: each event
    /// of a session repeats the session's AUTH failures.
    auth_counted: Expiring<u64, (u32, Timestamp)>,
    over_proxy: Cooldowns<(IpAddr, String)>,
    /// Window entries folded into their newest neighbour because the window was full.
    pub merged: u64,
}

impl Detectors {
    #[cfg(test)]
    pub fn new(rules: &Rules) -> Self {
        Detectors::sharing(rules, KeyBudget::unlimited())
    }

    /// Each table holds at most `limits.max_tracked` keys, and all of them together no more
    /// than `budget`.
    pub fn sharing(rules: &Rules, budget: KeyBudget) -> Self {
        let d = &rules.detections;
        let cap = d.limits.max_tracked;
        Detectors {
            excessive: Expiring::sharing(cap, budget.clone()),
            policy: Cooldowns::new(cap, d.smtp_policy_violation.cooldown, budget.clone()),
            direct: Expiring::sharing(cap, budget.clone()),
            blocklisted: Cooldowns::new(cap, d.blocklisted_peer.cooldown, budget.clone()),
            bruteforce: Expiring::sharing(cap, budget.clone()),
            auth_counted: Expiring::sharing(cap, budget.clone()),
            over_proxy: Cooldowns::new(cap, d.smtp_over_socks.cooldown, budget),
            merged: 0,
        }
    }

    /// Keys held, and keys refused because a table was full.
    pub fn tracked(&self) -> (u64, u64) {
        let held = self.excessive.len()
            + self.policy.len()
            + self.direct.len()
            + self.blocklisted.len()
            + self.bruteforce.len()
            + self.auth_counted.len()
            + self.over_proxy.len();
        let refused = self.excessive.refused()
            + self.policy.refused()
            + self.direct.refused()
            + self.blocklisted.refused()
            + self.bruteforce.refused()
            + self.auth_counted.refused()
            + self.over_proxy.refused();
        (held as u64, refused)
    }

    /// Forgets what no window or cool-down needs any more, looking only at the keys due.
    pub fn expire(&mut self, now: Timestamp, rules: &Rules) {
        let d = &rules.detections;
        let m = &d.excessive_outbound_mail;
        self.excessive
            .expire(now, |w| w.settle(now, m.window.get(), m.cooldown));
        let a = &d.direct_smtp_attempt;
        self.direct
            .expire(now, |w| w.settle(now, a.window.get(), a.cooldown));
        let b = &d.smtp_auth_bruteforce;
        self.bruteforce
            .expire(now, |w| w.settle(now, b.window.get(), b.cooldown));
        self.auth_counted.expire(now, |(_, seen)| {
            no_longer_within(*seen, AUTH_SESSION_SILENCE)
        });
        self.policy.expire(now);
        self.blocklisted.expire(now);
        self.over_proxy.expire(now);
    }

    /// New rules may shorten windows and cool-downs: every key is looked at again by the
    /// next expiry.
    pub fn recheck(&mut self, now: Timestamp) {
        self.excessive.recheck(now);
        self.direct.recheck(now);
        self.bruteforce.recheck(now);
        self.auth_counted.recheck(now);
        self.policy.recheck(now);
        self.blocklisted.recheck(now);
        self.over_proxy.recheck(now);
    }

    pub fn observe(&mut self, obs: &Observation, rules: &Rules, raise: &mut impl FnMut(Alert)) {
        let d = &rules.detections;
        match &obs.what {
            Observed::Smtp(smtp) => {
                if d.excessive_outbound_mail.enabled {
                    self.excessive_mail(obs, smtp, rules, raise);
                }
                if d.smtp_policy_violation.enabled && smtp.client_spoke && smtp.tunnel.is_none() {
                    self.policy(obs, rules, raise);
                }
                if d.smtp_auth_bruteforce.enabled && smtp.auth_failures > 0 {
                    self.bruteforce(obs, smtp, rules, raise);
                }
                if d.smtp_over_socks.enabled {
                    self.over_proxy(obs, smtp, raise);
                }
                if d.blocklisted_peer.enabled {
                    // Through a proxy, the flow's server is the proxy.
                    let server = match &smtp.tunnel {
                        Some(t) if t.kind == TunnelKind::HttpConnect => "http_proxy",
                        Some(_) => "socks_server",
                        None => "smtp_server",
                    };
                    let role = (server, "smtp_client");
                    self.blocklisted(obs, role, rules, raise);
                }
            }
            Observed::SocksServer { .. } => {
                if d.blocklisted_peer.enabled {
                    self.blocklisted(obs, ("socks_server", "socks_client"), rules, raise);
                }
            }
            Observed::FailedSmtpConnection { .. } => {
                if d.direct_smtp_attempt.enabled {
                    self.direct_attempt(obs, rules, raise);
                }
            }
        }
    }

    fn excessive_mail(
        &mut self,
        obs: &Observation,
        smtp: &SmtpSighting,
        rules: &Rules,
        raise: &mut impl FnMut(Alert),
    ) {
        let settings = &rules.detections.excessive_outbound_mail;
        let outside: Vec<&String> = smtp
            .delivered_to
            .iter()
            .filter(|a| !rules.assets.is_internal_address(a))
            .collect();
        let estimated = u64::from(smtp.estimated_recipients);
        let count = outside.len() as u64 + u64::from(smtp.delivered_unrecorded) + estimated;
        if count == 0 {
            return;
        }
        // Written out only where it is the key: most keys are the envelope sender.
        let client = || obs.client().to_string();
        let (sender, sender_type) = match settings.sender {
            // An encrypted envelope names no sender: the client stands for it.
            _ if smtp.mail_from.is_none() && estimated > 0 && smtp.auth_user.is_none() => {
                (client(), "client_ip")
            }
            SenderKey::MailFrom => (
                smtp.mail_from
                    .as_deref()
                    .map_or_else(|| "<>".to_string(), |f| f.to_ascii_lowercase()),
                "mail_from",
            ),
            SenderKey::AuthUser => match &smtp.auth_user {
                Some(user) => (user.clone(), "auth_user"),
                None => (client(), "client_ip"),
            },
            SenderKey::ClientIp => (client(), "client_ip"),
        };
        let Some(window) =
            self.excessive
                .get_or_insert_with(sender.clone(), obs.ts, Window::default)
        else {
            return;
        };
        let message = MessageSummary {
            timestamp: obs.ts,
            src_ip: obs.client(),
            mail_from: smtp.mail_from.clone(),
            rcpt_to: outside.iter().take(LISTED).map(|a| (*a).clone()).collect(),
            recipients: count,
            subject: smtp.subject.clone(),
            estimated: estimated > 0,
        };
        window.expire(obs.ts, settings.window.get());
        if !window.push(
            obs.ts,
            count,
            message,
            rules.detections.limits.max_window_entries,
        ) {
            self.merged += 1;
        }
        if window.total() > settings.threshold.get() && window.may_alert(obs.ts, settings.cooldown)
        {
            window.last_alert = Some(obs.ts);
            raise(
                Signature::ExcessiveOutboundMail.alert(
                    Some(obs.client()),
                    Details::ExcessiveOutboundMail {
                        sender,
                        sender_type,
                        count: window.total(),
                        estimated_recipients: window
                            .items()
                            .filter(|m| m.estimated)
                            .map(|m| m.recipients)
                            .sum(),
                        threshold: settings.threshold.get(),
                        window: settings.window.get(),
                        messages: window
                            .items()
                            .take(settings.max_messages)
                            .cloned()
                            .collect(),
                        messages_total: window.len() as u64,
                    },
                ),
            );
        }
    }

    fn policy(&mut self, obs: &Observation, rules: &Rules, raise: &mut impl FnMut(Alert)) {
        let (client, server) = (obs.client(), obs.server());
        let Some(group) = rules.assets.primary_group(client) else {
            return;
        };
        let (policy, reason) = match group.smtp {
            SmtpPolicy::Allow => return,
            SmtpPolicy::Deny => ("deny", "smtp_client_in_deny_group"),
            SmtpPolicy::RelayOnly if rules.assets.is_relay(server) => return,
            SmtpPolicy::RelayOnly => ("relay_only", "smtp_to_unsanctioned_server"),
        };
        if self.policy.fire((client, server), obs.ts) {
            raise(Signature::SmtpPolicyViolation.alert(
                Some(client),
                Details::PolicyViolation {
                    group: group.name.to_string(),
                    policy,
                    reason,
                    server,
                },
            ));
        }
    }

    fn direct_attempt(&mut self, obs: &Observation, rules: &Rules, raise: &mut impl FnMut(Alert)) {
        let settings = &rules.detections.direct_smtp_attempt;
        let (client, server) = (obs.client(), obs.server());
        let assets = &rules.assets;
        if !assets.is_internal(client) || assets.is_internal(server) || assets.is_relay(client) {
            return;
        }
        let Some(window) = self
            .direct
            .get_or_insert_with(client, obs.ts, Window::default)
        else {
            return;
        };
        window.expire(obs.ts, settings.window.get());
        if !window.push(
            obs.ts,
            1,
            server,
            rules.detections.limits.max_window_entries,
        ) {
            self.merged += 1;
        }
        if window.total() >= settings.threshold.get() && window.may_alert(obs.ts, settings.cooldown)
        {
            window.last_alert = Some(obs.ts);
            let mut servers: Vec<IpAddr> = Vec::new();
            for s in window.items() {
                if servers.len() < LISTED_HOSTS && !servers.contains(s) {
                    servers.push(*s);
                }
            }
            raise(Signature::DirectSmtpAttempt.alert(
                Some(client),
                Details::DirectSmtpAttempt {
                    count: window.total(),
                    threshold: settings.threshold.get(),
                    window: settings.window.get(),
                    servers,
                },
            ));
        }
    }

    /// `roles`: what the server and the client were in this flow.
    fn blocklisted(
        &mut self,
        obs: &Observation,
        roles: (&'static str, &'static str),
        rules: &Rules,
        raise: &mut impl FnMut(Alert),
    ) {
        let (client, server) = (obs.client(), obs.server());
        for (host, peer, peer_role) in [(client, server, roles.0), (server, client, roles.1)] {
            let Some(hit) = rules.blocklists.find(peer) else {
                continue;
            };
            if self.blocklisted.fire((host, peer), obs.ts) {
                raise(Signature::BlocklistedPeer.alert(
                    Some(host),
                    Details::BlocklistedPeer {
                        peer,
                        peer_role,
                        list: hit.list.to_string(),
                        line: hit.line,
                        entry: hit.entry,
                        reference: hit.reference.to_string(),
                    },
                ));
            }
        }
    }

    fn bruteforce(
        &mut self,
        obs: &Observation,
        smtp: &SmtpSighting,
        rules: &Rules,
        raise: &mut impl FnMut(Alert),
    ) {
        let settings = &rules.detections.smtp_auth_bruteforce;
        let Some((counted, seen)) =
            self.auth_counted
                .get_or_insert_with(obs.flow.flow_id, obs.ts, || (0, obs.ts))
        else {
            return;
        };
        let new = smtp.auth_failures.saturating_sub(*counted);
        *counted = (*counted).max(smtp.auth_failures);
        *seen = obs.ts;
        if new == 0 {
            return;
        }
        let client = obs.client();
        let Some(window) = self
            .bruteforce
            .get_or_insert_with(client, obs.ts, Window::default)
        else {
            return;
        };
        window.expire(obs.ts, settings.window.get());
        let attempt = AuthAttempt {
            server: obs.server(),
            user: smtp.auth_tried.clone(),
        };
        if !window.push(
            obs.ts,
            u64::from(new),
            attempt,
            rules.detections.limits.max_window_entries,
        ) {
            self.merged += 1;
        }
        if window.total() >= settings.threshold.get() && window.may_alert(obs.ts, settings.cooldown)
        {
            window.last_alert = Some(obs.ts);
            let mut usernames: Vec<String> = Vec::new();
            for user in window.items().filter_map(|a| a.user.as_ref()) {
                if usernames.len() < LISTED_HOSTS && !usernames.contains(user) {
                    usernames.push(user.clone());
                }
            }
            raise(Signature::SmtpAuthBruteforce.alert(
                Some(client),
                Details::SmtpAuthBruteforce {
                    count: window.total(),
                    threshold: settings.threshold.get(),
                    window: settings.window.get(),
                    server: window.items().last().map_or(obs.server(), |a| a.server),
                    usernames,
                },
            ));
        }
    }

    fn over_proxy(
        &mut self,
        obs: &Observation,
        smtp: &SmtpSighting,
        raise: &mut impl FnMut(Alert),
    ) {
        let Some(tunnel) = &smtp.tunnel else {
            return;
        };
        if !smtp.client_spoke {
            return;
        }
        let key = (
            obs.client(),
            format!("{}:{}", tunnel.proxy, tunnel.proxy_port),
        );
        if self.over_proxy.fire(key, obs.ts) {
            raise(Signature::SmtpOverSocks.alert(
                Some(obs.client()),
                Details::SmtpOverSocks {
                    tunnel_type: tunnel.kind,
                    proxy: tunnel.proxy.clone(),
                    proxy_port: tunnel.proxy_port,
                    dest_host: tunnel.dest_host.clone(),
                    dest_port: tunnel.dest_port,
                    mail_from: smtp.mail_from.clone(),
                },
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU64;
    use std::path::Path;

    use super::*;
    use crate::analysis::observation::TunnelSighting;
    use crate::analysis::observation::tests::{flow, smtp};
    use crate::flow::FlowState;
    use crate::protocols::AppEvent;
    use crate::protocols::smtp::Status;
    use crate::rules::Assets;

    fn rules() -> Rules {
        let mut rules = Rules {
            assets: Assets::from_text(
                Path::new("assets.toml"),
                r#"
internal_domains = ["example.org"]
relays = ["10.0.0.25"]

[[group]]
name = "web"
cidrs = ["10.30.0.0/24"]
smtp = "deny"

[[group]]
name = "desk"
cidrs = ["10.20.0.0/16"]
smtp = "relay_only"
"#,
            )
            .unwrap(),
            ..Rules::default()
        };
        let d = &mut rules.detections;
        d.excessive_outbound_mail.threshold = NonZeroU64::new(3).unwrap();
        d.excessive_outbound_mail.window = NonZeroU64::new(60).unwrap();
        d.excessive_outbound_mail.cooldown = 30;
        d.direct_smtp_attempt.threshold = NonZeroU64::new(2).unwrap();
        d.smtp_auth_bruteforce.threshold = NonZeroU64::new(3).unwrap();
        rules
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    /// An SMTP observation of a queued message from `client` to `server`.
    fn mail(id: u64, secs: u64, client: &str, server: &str, rcpts: &[&str]) -> Observation {
        let accepted: Vec<_> = rcpts.iter().map(|r| (*r, Some(true))).collect();
        let record = AppEvent::Smtp(Box::new(smtp(Status::Queued, &accepted)));
        Observation::of_app(at(secs), &flow(id, client, server, 25), &record, None).unwrap()
    }

    fn run(detectors: &mut Detectors, rules: &Rules, obs: &[Observation]) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for o in obs {
            detectors.observe(o, rules, &mut |a| alerts.push(a));
        }
        alerts
    }

    fn signatures(alerts: &[Alert]) -> Vec<&str> {
        alerts.iter().map(|a| a.signature.as_str()).collect()
    }

    /// An SMTP observation of a STARTTLS session whose encrypted records were read as
    /// `recipients` accepted recipients.
    fn encrypted_mail(id: u64, secs: u64, client: &str, recipients: u32) -> Observation {
        let mut record = crate::protocols::smtp::SmtpRecord::empty(Status::Tls);
        record.smtp.banner = Some("220 mx ESMTP Postfix".into());
        record.smtp.starttls = true;
        record.smtp.encrypted = Some(crate::protocols::smtp::Encrypted {
            transactions: 1,
            recipients,
            message_bytes: 1000,
            confidence: crate::protocols::smtp::Confidence::High,
            server_profile: "Postfix".into(),
        });
        let event = AppEvent::Smtp(Box::new(record));
        Observation::of_app(at(secs), &flow(id, client, "10.0.0.25", 587), &event, None).unwrap()
    }

    #[test]
    fn excessive_mail_counts_the_estimate_of_encrypted_sessions_per_client() {
        let mut rules = rules();
        rules.detections.smtp_policy_violation.enabled = false;
        let mut d = Detectors::new(&rules);
        let alerts = run(
            &mut d,
            &rules,
            &[
                encrypted_mail(1, 0, "10.20.0.9", 2),
                mail(2, 1, "10.20.0.9", "10.0.0.25", &["a@x.example"]),
                encrypted_mail(3, 2, "10.20.0.9", 2),
            ],
        );
        // The estimate counts by client address (no envelope); the cleartext message by its
        // sender: 4 estimated recipients from 10.20.0.9 pass the threshold of 3.
        assert_eq!(signatures(&alerts), ["excessive_outbound_mail"]);
        let Details::ExcessiveOutboundMail {
            sender,
            sender_type,
            count,
            estimated_recipients,
            messages,
            ..
        } = &alerts[0].details
        else {
            panic!("{:?}", alerts[0]);
        };
        assert_eq!((sender.as_str(), *sender_type), ("10.20.0.9", "client_ip"));
        assert_eq!((*count, *estimated_recipients), (4, 4));
        assert!(messages.iter().all(|m| m.estimated && m.rcpt_to.is_empty()));
    }

    #[test]
    fn excessive_mail_counts_outside_recipients_per_sender_in_the_window() {
        let mut rules = rules();
        rules.detections.smtp_policy_violation.enabled = false;
        let mut d = Detectors::new(&rules);
        let relay = "10.0.0.25";
        let alerts = run(
            &mut d,
            &rules,
            &[
                // Internal recipients do not count: 2 outside so far.
                mail(
                    1,
                    0,
                    "10.20.0.9",
                    relay,
                    &["a@x.example", "b@y.example", "c@example.org"],
                ),
                // 61 s later the first message left the window: 1 outside.
                mail(2, 61, "10.20.0.9", relay, &["d@x.example"]),
                mail(3, 62, "10.20.0.9", relay, &["e@x.example", "f@x.example"]),
                // Over the threshold again, inside the cool-down: no second alert.
                mail(4, 70, "10.20.0.9", relay, &["g@x.example"]),
            ],
        );
        assert_eq!(signatures(&alerts), ["excessive_outbound_mail"]);
        let Details::ExcessiveOutboundMail {
            sender,
            sender_type,
            count,
            messages_total,
            ..
        } = &alerts[0].details
        else {
            panic!("{:?}", alerts[0]);
        };
        assert_eq!(
            (sender.as_str(), *sender_type),
            ("alice@example.org", "mail_from")
        );
        assert_eq!((*count, *messages_total), (4, 3));
        assert_eq!(alerts[0].host, Some("10.20.0.9".parse().unwrap()));
        let after = run(
            &mut d,
            &rules,
            &[mail(5, 101, "10.20.0.9", relay, &["h@x.example"])],
        );
        assert_eq!(
            signatures(&after),
            ["excessive_outbound_mail"],
            "after the cool-down"
        );
    }

    #[test]
    fn policy_follows_the_most_specific_group() {
        let mut rules = rules();
        rules.detections.excessive_outbound_mail.enabled = false;
        let mut d = Detectors::new(&rules);
        let alerts = run(
            &mut d,
            &rules,
            &[
                mail(1, 0, "10.30.0.5", "10.0.0.25", &[]), // deny: even to the relay
                mail(2, 1, "10.20.0.9", "10.0.0.25", &[]), // relay_only, to the relay
                mail(3, 2, "10.20.0.9", "198.51.100.25", &[]), // relay_only, elsewhere
                mail(4, 3, "10.20.0.9", "198.51.100.25", &[]), // cool-down
                mail(5, 4, "192.0.2.7", "198.51.100.25", &[]), // ungrouped
            ],
        );
        let reasons: Vec<_> = alerts
            .iter()
            .map(|a| match &a.details {
                Details::PolicyViolation { reason, group, .. } => (group.as_str(), *reason),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            reasons,
            [
                ("web", "smtp_client_in_deny_group"),
                ("desk", "smtp_to_unsanctioned_server")
            ]
        );
    }

    fn failed(id: u64, secs: u64, client: &str, server: &str) -> Observation {
        Observation {
            ts: at(secs),
            seen: at(secs),
            origin: 0,
            flow: flow(id, client, server, 25),
            what: Observed::FailedSmtpConnection {
                state: FlowState::NoAnswer,
            },
        }
    }

    #[test]
    fn direct_attempts_count_internal_hosts_blocked_on_outside_servers() {
        let rules = rules();
        let mut d = Detectors::new(&rules);
        let alerts = run(
            &mut d,
            &rules,
            &[
                failed(1, 0, "10.20.0.9", "10.0.0.99"), // internal server: not counted
                failed(2, 1, "10.0.0.25", "198.51.100.1"), // a relay: exempt
                failed(3, 2, "192.0.2.7", "198.51.100.1"), // outside client: not ours
                failed(4, 3, "10.20.0.9", "198.51.100.1"),
                failed(5, 4, "10.20.0.9", "198.51.100.2"),
            ],
        );
        assert_eq!(signatures(&alerts), ["direct_smtp_attempt"]);
        let Details::DirectSmtpAttempt { count, servers, .. } = &alerts[0].details else {
            panic!("{:?}", alerts[0]);
        };
        assert_eq!(*count, 2);
        assert_eq!(servers.len(), 2);
    }

    #[test]
    fn each_auth_failure_of_a_session_counts_once() {
        let mut rules = rules();
        rules.detections.smtp_policy_violation.enabled = false;
        let mut d = Detectors::new(&rules);
        let attempt = |id: u64, secs: u64, failures: u32| {
            let mut record = smtp(Status::NoTransaction, &[]);
            record.smtp.auth = Some(crate::protocols::smtp::AuthRecord {
                mechanism: "LOGIN".into(),
                username: Some(format!("user{failures}")),
                success: None,
                failures,
            });
            let event = AppEvent::Smtp(Box::new(record));
            let f = flow(id, "192.0.2.7", "10.0.0.25", 587);
            Observation::of_app(at(secs), &f, &event, None).unwrap()
        };
        // One session's two events repeat its two failures: 2, not 4.
        assert!(run(&mut d, &rules, &[attempt(1, 0, 2), attempt(1, 1, 2)]).is_empty());
        let alerts = run(&mut d, &rules, &[attempt(2, 2, 1)]);
        assert_eq!(signatures(&alerts), ["smtp_auth_bruteforce"]);
        let Details::SmtpAuthBruteforce {
            count, usernames, ..
        } = &alerts[0].details
        else {
            panic!("{:?}", alerts[0]);
        };
        assert_eq!(
            (*count, usernames.as_slice()),
            (3, &["user2".to_string(), "user1".to_string()][..])
        );
    }

    #[test]
    fn smtp_through_a_proxy_alerts_once_per_client_and_proxy() {
        let mut rules = rules();
        rules.detections.smtp_policy_violation.enabled = false;
        rules.detections.excessive_outbound_mail.enabled = false;
        let mut d = Detectors::new(&rules);
        let through = |id: u64, kind: TunnelKind, spoke: bool| {
            let mut o = mail(id, id, "10.20.0.9", "203.0.113.9", &[]);
            if let Observed::Smtp(s) = &mut o.what {
                s.client_spoke = spoke;
                s.tunnel = Some(TunnelSighting {
                    kind,
                    proxy: "203.0.113.9".into(),
                    proxy_port: 1080,
                    dest_host: "mx.example.net".into(),
                    dest_port: 25,
                });
            }
            o
        };
        let alerts = run(
            &mut d,
            &rules,
            &[
                through(1, TunnelKind::Socks5, false), // only a banner came back
                through(2, TunnelKind::Socks5, true),
                through(3, TunnelKind::Socks5, true),
            ],
        );
        assert_eq!(signatures(&alerts), ["smtp_over_socks"]);
        assert!(matches!(
            alerts[0].details,
            Details::SmtpOverSocks {
                tunnel_type: TunnelKind::Socks5,
                proxy_port: 1080,
                ..
            }
        ));
    }

    #[test]
    fn expiry_forgets_quiet_keys_but_keeps_running_cooldowns() {
        let mut rules = rules();
        rules.detections.smtp_policy_violation.enabled = false;
        let mut d = Detectors::new(&rules);
        run(
            &mut d,
            &rules,
            &[mail(1, 0, "10.20.0.9", "10.0.0.25", &["a@x.example"])],
        );
        assert_eq!(d.tracked().0, 1);
        d.expire(at(59), &rules);
        assert_eq!(d.tracked().0, 1, "still in the window");
        d.expire(at(60), &rules);
        assert_eq!(d.tracked().0, 0, "window empty, no cool-down running");
    }
}
