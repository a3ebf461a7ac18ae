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

/// One thing a worker saw that matters beyond its flow.
#[derive(Clone, Debug)]
pub struct Observation {
    pub ts: Timestamp,
    /// Index of the input (pcap file or interface) it came from.
    pub origin: usize,
    pub flow: FlowIdentity,
    pub what: Observed,
}

#[derive(Clone, Debug)]
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
#[derive(Clone, Debug, Default)]
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
    pub subject: Option<String>,
    pub tunnel: Option<TunnelSighting>,
    /// What the fingerprint rules found, client's and server's.
    pub software: Vec<Software>,
}

#[derive(Clone, Debug)]
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
