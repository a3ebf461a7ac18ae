//! Enrichment: what the rules add to what the flow stage and the parsers recorded, in one place
//! after the application layer. Asset groups go onto every flow's identity as the flow starts;
//! fingerprint rules name the software of each SMTP session before its event is written, and
//! an encrypted session's record lengths, read with its server's reply lengths, estimate what
//! it carried.

mod encrypted;
mod fingerprint;

pub use fingerprint::{Server, identify_smtp, identify_tls};

use crate::flow::FlowIdentity;
use crate::protocols::{AppEvent, AppOutput};
use crate::rules::{Assets, Fingerprints, ReplyProfiles, SmtpPolicy};

/// The rules enrichment applies, borrowed for a worker's lifetime.
#[derive(Clone, Copy)]
pub struct Enricher<'a> {
    assets: &'a Assets,
    fingerprints: &'a Fingerprints,
    replies: &'a ReplyProfiles,
}

impl<'a> Enricher<'a> {
    pub fn new(
        assets: &'a Assets,
        fingerprints: &'a Fingerprints,
        replies: &'a ReplyProfiles,
    ) -> Self {
        Enricher {
            assets,
            fingerprints,
            replies,
        }
    }

    /// Names the asset groups of a new flow's client and server.
    pub fn flow(&self, id: &mut FlowIdentity) {
        id.src_groups = self.assets.groups_of(id.src_ip);
        id.dest_groups = self.assets.groups_of(id.dest_ip);
    }

    /// Adds what the rules say about one application event of the flow `flow`.
    pub fn app(&self, output: &mut AppOutput, flow: &FlowIdentity) {
        // The server is the tunnel's destination for a session through a proxy.
        let (port, internal) = match &output.tunnel {
            Some(t) => (
                t.dest_port,
                t.dest_host
                    .parse()
                    .is_ok_and(|ip| self.assets.is_internal(ip)),
            ),
            None => (flow.dest_port, self.assets.is_internal(flow.dest_ip)),
        };
        // Mail between the organisation's own servers: from a sanctioned relay or a host of a
        // group that may send anywhere, to an internal server.
        let client_is_mail_server = self.assets.is_relay(flow.src_ip)
            || self
                .assets
                .primary_group(flow.src_ip)
                .is_some_and(|g| g.smtp == SmtpPolicy::Allow);
        let server = Server {
            port,
            internal,
            between_mail_servers: internal && client_is_mail_server,
        };
        match &mut output.event {
            AppEvent::Smtp(record) => {
                identify_smtp(self.fingerprints, record, server);
                if let Some(tls) = &record.tls {
                    let server = record
                        .smtp
                        .server_software
                        .as_ref()
                        .map(|s| s.name.as_str());
                    record.smtp.encrypted =
                        encrypted::estimate(&tls.transcript, self.replies, server);
                }
            }
            AppEvent::Tls(record) => identify_tls(self.fingerprints, record, server),
            AppEvent::Socks(_) => {}
        }
    }
}
