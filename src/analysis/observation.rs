//! What the detections need from a worker's events, taken as the events are written.
//!
//! Workers turn `smtp`, `socks` and failed port-25 `flow` records into [`Observation`]s and
//! send them to the output thread with the event bytes; the analysis never parses JSON.

use std::net::IpAddr;

use crate::flow::{FlowIdentity, FlowRecord, FlowState};
use crate::protocols::smtp::Status;
use crate::protocols::{AppEvent, Tunnel, TunnelKind};
use crate::software::Software;
use crate::timestamp::Timestamp;

use serde::{Deserialize, Serialize};

/// One thing a worker saw that matters beyond its flow. Serialisable: sensors publish them
/// for `spamtap correlate` (`crate::fleet`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Observation {
    pub ts: Timestamp,
    /// The sensor's packet time when its worker saw it (not `ts`, the session's): which tick
    /// it belongs before. Set by the worker; `spamtap correlate` batches by it.
    #[serde(default)]
    pub seen: Timestamp,
    /// Index of the input (pcap file or interface) it came from.
    pub origin: usize,
    pub flow: FlowIdentity,
    pub what: Observed,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Observed {
    Smtp(Box<SmtpSighting>),
    /// The flow's server answered as a SOCKS proxy.
    SocksServer {
        version: u8,
    },
    /// A connection to port 25 that was never answered, refused, or reset before the server
    /// sent anything.
    FailedSmtpConnection {
        state: FlowState,
    },
}

/// One SMTP transaction (or a session without one), as the detections see it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SmtpSighting {
    /// The client sent commands; the server sent a banner or replies.
    pub client_spoke: bool,
    pub server_spoke: bool,
    pub mail_from: Option<String>,
    /// The user of a successful AUTH.
    pub auth_user: Option<String>,
    /// The user of the last AUTH attempt, successful or not.
    pub auth_tried: Option<String>,
    /// Failed AUTH attempts in the session so far (each event of a session repeats them).
    pub auth_failures: u32,
    /// Recipients the server accepted, in a message that was sent.
    pub delivered_to: Vec<String>,
    /// Accepted recipients beyond those recorded (the parser keeps 100 per message).
    pub delivered_unrecorded: u32,
    /// Accepted recipients estimated from the TLS records of a session whose envelope was
    /// encrypted (`smtp.encrypted`).
    pub estimated_recipients: u32,
    pub subject: Option<String>,
    pub tunnel: Option<TunnelSighting>,
    /// What the fingerprint rules found, client's and server's.
    pub software: Vec<Software>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TunnelSighting {
    pub kind: TunnelKind,
    /// The proxy: the flow's server, or for a nested tunnel the proxy as named.
    pub proxy: String,
    pub proxy_port: u16,
    pub dest_host: String,
    pub dest_port: u16,
}

impl Observation {
    /// What an application event of `flow` at `ts` tells the detections, if anything, with
    /// `origin` 0: the caller, who knows its inputs, sets it.
    pub fn of_app(
        ts: Timestamp,
        flow: &FlowIdentity,
        event: &AppEvent,
        tunnel: Option<&Tunnel>,
    ) -> Option<Self> {
        let what = match (event, tunnel) {
            (AppEvent::Smtp(record), _) => {
                let smtp = &record.smtp;
                let sent = matches!(smtp.status, Status::Queued | Status::Sent);
                let mut delivered_to = Vec::new();
                if sent {
                    for (address, verdict) in smtp.rcpt_to.iter().zip(&smtp.rcpt_verdicts) {
                        if *verdict == Some(true) {
                            delivered_to.push(address.clone());
                        }
                    }
                }
                let recorded_ok = smtp.rcpt_verdicts.iter().filter(|v| **v == Some(true));
                let delivered_unrecorded = if sent {
                    smtp.rcpt_accepted
                        .saturating_sub(recorded_ok.count() as u32)
                } else {
                    0
                };
                let auth = smtp.auth.as_ref();
                Observed::Smtp(Box::new(SmtpSighting {
                    client_spoke: smtp.helo.is_some()
                        || smtp.mail_from.is_some()
                        || auth.is_some()
                        || !smtp.rcpt_to.is_empty(),
                    server_spoke: smtp.banner.is_some() || smtp.last_reply.is_some(),
                    mail_from: smtp.mail_from.clone(),
                    auth_user: auth
                        .filter(|a| a.success == Some(true))
                        .and_then(|a| a.username.clone()),
                    auth_tried: auth.and_then(|a| a.username.clone()),
                    auth_failures: auth
                        .map_or(0, |a| a.failures + u32::from(a.success == Some(false))),
                    delivered_to,
                    delivered_unrecorded,
                    estimated_recipients: smtp
                        .encrypted
                        .as_ref()
                        .filter(|_| smtp.rcpt_to.is_empty() && smtp.rcpt_accepted == 0)
                        .map_or(0, |e| e.recipients),
                    subject: record.email.as_ref().and_then(|e| e.subject.clone()),
                    software: record.software.clone(),
                    tunnel: tunnel.map(|t| {
                        let (proxy, proxy_port) = match &t.proxy {
                            Some((host, port)) => (host.clone(), *port),
                            None => (flow.dest_ip.to_string(), flow.dest_port),
                        };
                        TunnelSighting {
                            kind: t.kind,
                            proxy,
                            proxy_port,
                            dest_host: t.dest_host.clone(),
                            dest_port: t.dest_port,
                        }
                    }),
                }))
            }
            (AppEvent::Socks(record), None) if record.status_code.is_some() => {
                Observed::SocksServer {
                    version: record.version,
                }
            }
            _ => return None,
        };
        Some(Observation {
            ts,
            seen: Timestamp::default(),
            origin: 0,
            flow: flow.clone(),
            what,
        })
    }

    /// What the end of `flow` tells the detections: a connection to port 25 that failed.
    pub fn of_flow(
        flow: &FlowIdentity,
        record: &FlowRecord,
        app_proto: Option<&str>,
    ) -> Option<Self> {
        let failed = flow.dest_port == 25
            && app_proto.is_none()
            && (matches!(record.state, FlowState::NoAnswer | FlowState::Rejected)
                || (record.state == FlowState::Reset && record.data_bytes_toclient == 0));
        failed.then(|| Observation {
            ts: record.start,
            seen: Timestamp::default(),
            origin: 0,
            flow: flow.clone(),
            what: Observed::FailedSmtpConnection {
                state: record.state,
            },
        })
    }

    pub fn client(&self) -> IpAddr {
        self.flow.src_ip
    }

    pub fn server(&self) -> IpAddr {
        self.flow.dest_ip
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::decode::VlanTags;
    use crate::flow::EndReason;
    use crate::protocols::smtp::{AuthRecord, EmailFields, SmtpRecord};
    use crate::protocols::socks::SocksRecord;

    /// A flow from `client` to `server` on `port`, with `id` as its flow id.
    pub fn flow(id: u64, client: &str, server: &str, port: u16) -> FlowIdentity {
        FlowIdentity {
            flow_id: id,
            community_id: Default::default(),
            src_ip: client.parse().unwrap(),
            src_port: 40000,
            dest_ip: server.parse().unwrap(),
            dest_port: port,
            vlan: VlanTags::default(),
            src_groups: Vec::new(),
            dest_groups: Vec::new(),
        }
    }

    /// An `smtp` record of a transaction with `status`, its recipients and the server's
    /// verdict on each.
    pub fn smtp(status: Status, rcpts: &[(&str, Option<bool>)]) -> SmtpRecord {
        let mut record = SmtpRecord::empty(status);
        let smtp = &mut record.smtp;
        smtp.banner = Some("220 mx".into());
        smtp.helo = Some("pc.example.org".into());
        smtp.helo_verb = Some(crate::protocols::smtp::HeloVerb::Ehlo);
        smtp.mail_from = Some("Alice@Example.org".into());
        smtp.rcpt_to = rcpts.iter().map(|(a, _)| a.to_string()).collect();
        smtp.rcpt_verdicts = rcpts.iter().map(|(_, v)| *v).collect();
        smtp.rcpt_accepted = rcpts.iter().filter(|(_, v)| *v == Some(true)).count() as u32;
        smtp.rcpt_rejected = rcpts.iter().filter(|(_, v)| *v == Some(false)).count() as u32;
        smtp.trans_depth = 1;
        smtp.data_bytes = 100;
        smtp.last_reply = Some("250 ok".into());
        record.email = Some(EmailFields {
            subject: Some("Offer".into()),
            ..EmailFields::default()
        });
        record
    }

    fn sighting(o: Option<Observation>) -> SmtpSighting {
        match o.expect("an observation").what {
            Observed::Smtp(s) => *s,
            other => panic!("not smtp: {other:?}"),
        }
    }

    fn of_smtp(record: SmtpRecord, tunnel: Option<&Tunnel>) -> Option<Observation> {
        let f = flow(1, "10.0.0.5", "198.51.100.25", 25);
        Observation::of_app(
            Timestamp::from_secs(7),
            &f,
            &AppEvent::Smtp(Box::new(record)),
            tunnel,
        )
    }

    #[test]
    fn only_accepted_recipients_of_sent_messages_are_delivered() {
        let rcpts = [
            ("a@x.example", Some(true)),
            ("b@x.example", Some(false)),
            ("c@x.example", None),
        ];
        let s = sighting(of_smtp(smtp(Status::Queued, &rcpts), None));
        assert_eq!(s.delivered_to, ["a@x.example"]);
        assert_eq!((s.client_spoke, s.server_spoke), (true, true));
        assert_eq!(s.mail_from.as_deref(), Some("Alice@Example.org"));
        assert_eq!(s.subject.as_deref(), Some("Offer"));
        let s = sighting(of_smtp(smtp(Status::Sent, &rcpts), None));
        assert_eq!(s.delivered_to, ["a@x.example"], "one-sided: sent counts");
        for status in [Status::Rejected, Status::Aborted, Status::Incomplete] {
            let s = sighting(of_smtp(smtp(status, &rcpts), None));
            assert!(s.delivered_to.is_empty(), "{status:?} delivers nothing");
            assert_eq!(s.delivered_unrecorded, 0);
        }
    }

    #[test]
    fn accepted_recipients_beyond_the_recorded_ones_are_counted() {
        let mut record = smtp(Status::Queued, &[("a@x.example", Some(true))]);
        record.smtp.rcpt_accepted = 150;
        let s = sighting(of_smtp(record, None));
        assert_eq!((s.delivered_to.len(), s.delivered_unrecorded), (1, 149));
    }

    #[test]
    fn auth_failures_include_a_failed_last_attempt_and_only_success_names_the_user() {
        let mut record = smtp(Status::NoTransaction, &[]);
        record.smtp.auth = Some(AuthRecord {
            mechanism: "PLAIN".into(),
            username: Some("bob".into()),
            success: Some(false),
            failures: 2,
        });
        let s = sighting(of_smtp(record.clone(), None));
        assert_eq!(s.auth_failures, 3);
        assert_eq!((s.auth_user, s.auth_tried.as_deref()), (None, Some("bob")));
        record.smtp.auth.as_mut().unwrap().success = Some(true);
        let s = sighting(of_smtp(record, None));
        assert_eq!((s.auth_failures, s.auth_user.as_deref()), (2, Some("bob")));
    }

    #[test]
    fn the_outer_proxy_is_the_flows_server_and_a_nested_one_is_named() {
        let mut tunnel = Tunnel {
            kind: TunnelKind::Socks5,
            proxy: None,
            dest_host: "mx.example.net".into(),
            dest_port: 25,
            depth: 1,
        };
        let s = sighting(of_smtp(smtp(Status::Queued, &[]), Some(&tunnel)));
        let t = s.tunnel.expect("through a proxy");
        assert_eq!((t.proxy.as_str(), t.proxy_port), ("198.51.100.25", 25));
        assert_eq!((t.dest_host.as_str(), t.dest_port), ("mx.example.net", 25));
        tunnel.proxy = Some(("203.0.113.9".into(), 1080));
        let s = sighting(of_smtp(smtp(Status::Queued, &[]), Some(&tunnel)));
        assert_eq!(s.tunnel.unwrap().proxy, "203.0.113.9");
    }

    #[test]
    fn socks_servers_are_seen_only_when_they_answered_outside_a_tunnel() {
        let f = flow(2, "10.0.0.5", "203.0.113.9", 1080);
        let ts = Timestamp::from_secs(1);
        let answered = SocksRecord {
            version: 5,
            status_code: Some(0),
            ..SocksRecord::default()
        };
        let event = AppEvent::Socks(Box::new(answered.clone()));
        assert!(matches!(
            Observation::of_app(ts, &f, &event, None).map(|o| o.what),
            Some(Observed::SocksServer { version: 5 })
        ));
        let tunnel = Tunnel {
            kind: TunnelKind::Socks4,
            proxy: None,
            dest_host: "x".into(),
            dest_port: 1080,
            depth: 1,
        };
        assert!(Observation::of_app(ts, &f, &event, Some(&tunnel)).is_none());
        let silent = AppEvent::Socks(Box::new(SocksRecord {
            status_code: None,
            ..answered
        }));
        assert!(Observation::of_app(ts, &f, &silent, None).is_none());
    }

    fn flow_record(state: FlowState, data_bytes_toclient: u64) -> FlowRecord {
        FlowRecord {
            pkts_toserver: 1,
            pkts_toclient: 0,
            bytes_toserver: 60,
            bytes_toclient: 0,
            data_bytes_toserver: 0,
            data_bytes_toclient,
            missed_bytes: 0,
            start: Timestamp::from_secs(3),
            end: Timestamp::from_secs(3),
            age: 0,
            duration: 0.0,
            state,
            reason: EndReason::Timeout,
            anomalies: Vec::new(),
        }
    }

    #[test]
    fn failed_connections_are_those_to_port_25_without_an_answering_server() {
        let to_25 = flow(3, "10.0.0.5", "198.51.100.25", 25);
        for state in [FlowState::NoAnswer, FlowState::Rejected] {
            let o = Observation::of_flow(&to_25, &flow_record(state, 0), None).expect("failed");
            assert_eq!(o.ts, Timestamp::from_secs(3), "at the flow's start");
            assert!(matches!(o.what, Observed::FailedSmtpConnection { state: s } if s == state));
        }
        assert!(Observation::of_flow(&to_25, &flow_record(FlowState::Reset, 0), None).is_some());
        assert!(
            Observation::of_flow(&to_25, &flow_record(FlowState::Reset, 12), None).is_none(),
            "the server spoke before the reset"
        );
        assert!(Observation::of_flow(&to_25, &flow_record(FlowState::Closed, 0), None).is_none());
        assert!(
            Observation::of_flow(&to_25, &flow_record(FlowState::NoAnswer, 0), Some("smtp"))
                .is_none()
        );
        let to_587 = flow(4, "10.0.0.5", "198.51.100.25", 587);
        assert!(
            Observation::of_flow(&to_587, &flow_record(FlowState::NoAnswer, 0), None).is_none()
        );
    }
}
