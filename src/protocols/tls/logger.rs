//! The `tls` event: one TLS session's handshake, in Suricata's `tls` object layout.

use serde::Serialize;
use serde::ser::SerializeMap;

use super::TlsParser;
use super::ja::{self, Ja3};
use super::parser::{self, wire_string};
use crate::protocols::AppRecord;
use crate::software::Software;

/// `ja3` and `ja3s` objects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fingerprint {
    pub hash: String,
    pub string: String,
}

impl From<Ja3> for Fingerprint {
    fn from(ja3: Ja3) -> Self {
        Fingerprint {
            hash: ja3.hash,
            string: ja3.string,
        }
    }
}

/// The `tls` object. Names and shapes are Suricata's; `cipher`, `established`,
/// `client_software`, `server_software` and `anomalies` are spamtap's.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TlsFields {
    /// The certificate's fields: the server's own certificate (TLS <= 1.2; encrypted in 1.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuerdn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// The version the server chose, as Suricata writes it (`TLS 1.2`, `TLS 1.3`, `TLSv1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notbefore: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notafter: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subjectaltname: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3: Option<Fingerprint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3s: Option<Fingerprint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub client_alpns: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub server_alpns: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub session_resumed: bool,
    /// `smtp` when the session followed STARTTLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_proto: Option<&'static str>,
    /// The cipher suite the server chose, by its IANA name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    /// Both sides finished the handshake and switched to encryption.
    pub established: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_software: Option<Software>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_software: Option<Software>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<&'static str>,
}

/// One `tls` event.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TlsRecord {
    pub tls: TlsFields,
    /// Every fingerprint rule that matched, in rule order.
    pub software: Vec<Software>,
}

impl AppRecord for TlsRecord {
    const EVENT_TYPE: &'static str = "tls";

    fn write_fields<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry("tls", &self.tls)
    }
}

/// A version as Suricata names it.
fn version_name(version: u16) -> String {
    match version {
        0x0002 => "SSLv2".into(),
        0x0300 => "SSLv3".into(),
        0x0301 => "TLSv1".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        other => format!("0x{other:04x}"),
    }
}

/// The event of a session, from what its parser saw.
pub(super) fn record(session: &TlsParser) -> TlsRecord {
    let mut tls = TlsFields {
        from_proto: session.from_proto,
        anomalies: session.anomalies.clone(),
        ..TlsFields::default()
    };
    if session.sslv2_hello {
        tls.anomalies.push("sslv2_hello");
    }
    if session.transcript.flights_dropped > 0 {
        tls.anomalies.push("too_many_flights");
    }
    if let Some(hello) = &session.client_hello {
        tls.sni = hello.sni.clone();
        tls.client_alpns = hello.alpns.iter().map(|a| wire_string(a)).collect();
        tls.ja3 = Some(ja::ja3(hello).into());
        tls.ja4 = Some(ja::ja4(hello));
    }
    if let Some(hello) = &session.server_hello {
        tls.version = Some(version_name(hello.selected_version));
        tls.server_alpns = hello.alpn.iter().map(|a| wire_string(a)).collect();
        tls.ja3s = Some(ja::ja3s(hello).into());
        tls.cipher = tls_parser::TlsCipherSuite::from_id(hello.cipher).map(|s| s.name.to_string());
        tls.session_resumed = if hello.selected_version == parser::TLS13 {
            hello.pre_shared_key
        } else {
            session.resumed_without_certificate
        };
    }
    if let Some(cert) = &session.certificate {
        let cert = cert.as_ref().clone();
        tls.subject = Some(cert.subject);
        tls.issuerdn = Some(cert.issuerdn);
        tls.serial = Some(cert.serial);
        tls.fingerprint = Some(cert.fingerprint);
        tls.notbefore = Some(cert.notbefore);
        tls.notafter = Some(cert.notafter);
        tls.subjectaltname = cert.subjectaltname;
    }
    tls.established = session.established();
    TlsRecord {
        tls,
        software: Vec::new(),
    }
}
