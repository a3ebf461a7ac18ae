//! The `socks` event: one proxied connection's handshake and what went through it, and its
//! JSON layout (the `socks` object).

use std::net::IpAddr;

use serde::Serialize;
use serde::ser::SerializeMap;

use super::field;
use super::parser::{Address, Command};
use crate::protocols::AppRecord;

/// An address in an event: `host` an IP address, `name` a host name, and the port.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Endpoint {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub port: u16,
}

impl Endpoint {
    pub(super) fn from(address: &Address) -> Self {
        Endpoint {
            host: address.host,
            name: address.name.as_deref().map(field),
            port: address.port,
        }
    }

    /// The destination as the client asked for it: its name, else its address.
    pub(super) fn target(&self) -> String {
        match (&self.name, self.host) {
            (Some(name), _) => name.clone(),
            (None, Some(host)) => host.to_string(),
            (None, None) => String::new(),
        }
    }
}

/// The `socks` object.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SocksRecord {
    pub version: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Command>,
    /// Methods the client offered (SOCKS5).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_success: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bound: Option<Endpoint>,
    /// What the stream inside the tunnel turned out to be: `smtp`, `socks4`, `socks5`,
    /// `http_connect` or `unknown`; absent when nothing went through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel_proto: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<&'static str>,
    /// The TCP responder spoke as the SOCKS client (a proxy offered back over a connection
    /// the proxy host opened); the event's endpoints are the SOCKS roles.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reverse: bool,
}

impl AppRecord for SocksRecord {
    const EVENT_TYPE: &'static str = "socks";

    fn write_fields<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry("socks", self)
    }
}
