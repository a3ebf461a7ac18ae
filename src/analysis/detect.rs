//! The detections that look at one observation at a time, with windows and cool-downs keyed
//! by sender, client or host pair: excessive outbound mail, SMTP policy, direct SMTP attempts,
//! blocklisted peers, AUTH brute force, and SMTP through a proxy.

use std::net::IpAddr;

use super::alert::{Alert, Details, MessageSummary, Signature};
use super::observation::{Observation, Observed, SmtpSighting};
use super::state::{Capped, Cooldowns, Window};
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

/// Drops what left each window, and the keys with nothing in their window and no cool-down
/// running.
fn expire_windows<K: std::hash::Hash + Eq, T>(
    table: &mut Capped<K, Window<T>>,
    now: Timestamp,
    window: u64,
    cooldown: u64,
) {
    table.retain(|_, w| {
        w.expire(now, window);
        !w.is_empty() || !w.may_alert(now, cooldown)
    });
}

/// State of the per-observation detections.
#[derive(Debug)]
pub struct Detectors {
    excessive: Capped<String, Window<MessageSummary>>,
    policy: Cooldowns<(IpAddr, IpAddr)>,
    direct: Capped<IpAddr, Window<IpAddr>>,
    blocklisted: Cooldowns<(IpAddr, IpAddr)>,
    bruteforce: Capped<IpAddr, Window<AuthAttempt>>,
    /// Failures already counted per SMTP session (flow id), with when last seen: each event
    /// of a session repeats the session's AUTH failures.
    auth_counted: Capped<u64, (u32, Timestamp)>,
    over_proxy: Cooldowns<(IpAddr, String)>,
    /// Window entries folded into their newest neighbour because the window was full.
    pub merged: u64,
}

impl Detectors {
    pub fn new(rules: &Rules) -> Self {
        let d = &rules.detections;
        let cap = d.limits.max_tracked;
        Detectors {
            excessive: Capped::new(cap),
            policy: Cooldowns::new(cap, d.smtp_policy_violation.cooldown),
            direct: Capped::new(cap),
            blocklisted: Cooldowns::new(cap, d.blocklisted_peer.cooldown),
            bruteforce: Capped::new(cap),
            auth_counted: Capped::new(cap),
            over_proxy: Cooldowns::new(cap, d.smtp_over_socks.cooldown),
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
        let refused = self.excessive.refused
            + self.policy.refused()
            + self.direct.refused
            + self.blocklisted.refused()
            + self.bruteforce.refused
            + self.auth_counted.refused
            + self.over_proxy.refused();
        (held as u64, refused)
    }

    /// Forgets what no window or cool-down needs any more.
    pub fn expire(&mut self, now: Timestamp, rules: &Rules) {
        let d = &rules.detections;
        let m = &d.excessive_outbound_mail;
        expire_windows(&mut self.excessive, now, m.window.get(), m.cooldown);
        let a = &d.direct_smtp_attempt;
        expire_windows(&mut self.direct, now, a.window.get(), a.cooldown);
        let b = &d.smtp_auth_bruteforce;
        expire_windows(&mut self.bruteforce, now, b.window.get(), b.cooldown);
        // A session's repeated events come close together; an hour of silence ends it.
        self.auth_counted
            .retain(|_, (_, seen)| super::state::within(*seen, now, 3600));
        self.policy.expire(now);
        self.blocklisted.expire(now);
        self.over_proxy.expire(now);
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
        let count = outside.len() as u64 + u64::from(smtp.delivered_unrecorded);
        if count == 0 {
            return;
        }
        let client = obs.client().to_string();
        let (sender, sender_type) = match settings.sender {
            SenderKey::MailFrom => (
                smtp.mail_from
                    .as_deref()
                    .map_or_else(|| "<>".to_string(), |f| f.to_ascii_lowercase()),
                "mail_from",
            ),
            SenderKey::AuthUser => match &smtp.auth_user {
                Some(user) => (user.clone(), "auth_user"),
                None => (client, "client_ip"),
            },
            SenderKey::ClientIp => (client, "client_ip"),
        };
        let Some(window) = self
            .excessive
            .get_or_insert_with(sender.clone(), Window::default)
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
        let Some(window) = self.direct.get_or_insert_with(client, Window::default) else {
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
        let Some((counted, seen)) = self
            .auth_counted
            .get_or_insert_with(obs.flow.flow_id, || (0, obs.ts))
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
        let Some(window) = self.bruteforce.get_or_insert_with(client, Window::default) else {
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
