//! Pure TLS parsing, on top of `tls-parser` and `x509-parser`: record framing, the two hellos
//! and the server's certificate, reduced to the facts the `tls` event and the fingerprints use.
//! Nothing here keeps state or allocates more than the facts it returns.

use sha1::{Digest, Sha1};
use tls_parser::{
    TlsExtension, parse_tls_client_hello_extension, parse_tls_handshake_client_hello,
    parse_tls_handshake_server_hello, parse_tls_server_hello_extension,
};

use crate::text::cap_string;

/// A record header: content type, version, length.
pub const HEADER_LEN: usize = 5;
/// The longest record body TLS allows (2^14 + 2048: TLS 1.2 ciphertext).
pub const MAX_RECORD_BODY: usize = (1 << 14) + 2048;

pub const CHANGE_CIPHER_SPEC: u8 = 20;
#[cfg(test)]
pub const ALERT: u8 = 21;
pub const HANDSHAKE: u8 = 22;
pub const APPLICATION_DATA: u8 = 23;
pub const HEARTBEAT: u8 = 24;

pub const CLIENT_HELLO: u8 = 1;
pub const SERVER_HELLO: u8 = 2;
pub const CERTIFICATE: u8 = 11;

pub const TLS13: u16 = 0x0304;

/// Extension types the analysis reads.
const EXT_SERVER_NAME: u16 = 0;
const EXT_SUPPORTED_GROUPS: u16 = 10;
const EXT_EC_POINT_FORMATS: u16 = 11;
const EXT_SIGNATURE_ALGORITHMS: u16 = 13;
const EXT_ALPN: u16 = 16;
const EXT_PRE_SHARED_KEY: u16 = 41;
const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// Lists taken from a hello are cut here (a hello of thousands of extensions costs no more).
pub const MAX_LIST: usize = 256;
/// SNI, ALPN values and certificate strings are cut to this many bytes.
pub const MAX_STRING: usize = 255;
/// Subject alternative names kept from a certificate.
pub const MAX_SAN: usize = 64;

/// What the first bytes of a record say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// A TLS record: its content type, version and body length.
    Record {
        content_type: u8,
        version: u16,
        len: usize,
    },
    /// An SSLv2-compatible ClientHello of `len` bytes after its 2-byte header.
    Sslv2Hello { len: usize },
    /// Fewer than a header's bytes.
    NeedMore,
    /// Not a TLS record.
    Garbage,
}

/// Frames the next record of `buf`; `first` allows the SSLv2-compatible hello that only a
/// client's first record may be.
pub fn frame(buf: &[u8], first: bool) -> Framing {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Framing::NeedMore;
    };
    if let Some(len) = sslv2_hello(header).filter(|_| first) {
        return Framing::Sslv2Hello { len };
    }
    let Ok((_, header)) = tls_parser::parse_tls_record_header(header) else {
        return Framing::Garbage;
    };
    let content_type = header.record_type.0;
    let version = header.version.0;
    let len = usize::from(header.len);
    if !(CHANGE_CIPHER_SPEC..=HEARTBEAT).contains(&content_type)
        || version >> 8 != 3
        || len > MAX_RECORD_BODY
    {
        return Framing::Garbage;
    }
    Framing::Record {
        content_type,
        version,
        len,
    }
}

/// The length of an SSLv2-compatible ClientHello (RFC 5246 E.2): a 2-byte header with the
/// high bit set, message type 1, and version 2.0 or 3.x.
fn sslv2_hello(header: &[u8]) -> Option<usize> {
    let &[b0, b1, msg_type, major, _] = header else {
        return None;
    };
    (b0 & 0x80 != 0 && msg_type == CLIENT_HELLO && (major == 0 || major == 3))
        .then(|| usize::from(b0 & 0x7f) << 8 | usize::from(b1))
}

/// Whether the bytes start like a client's first TLS record (a handshake record holding a
/// ClientHello, or an SSLv2-compatible hello): `None` until there are enough of them.
pub fn looks_like_client_hello(buf: &[u8]) -> Option<bool> {
    let header = buf.get(..HEADER_LEN + 1)?;
    if sslv2_hello(&header[..HEADER_LEN]).is_some() {
        return Some(true);
    }
    Some(
        matches!(
            frame(header, false),
            Framing::Record {
                content_type: HANDSHAKE,
                ..
            }
        ) && header[HEADER_LEN] == CLIENT_HELLO,
    )
}

/// Whether the bytes start like a server's first TLS record (a ServerHello).
pub fn looks_like_server_hello(buf: &[u8]) -> Option<bool> {
    let header = buf.get(..HEADER_LEN + 1)?;
    Some(
        matches!(
            frame(header, false),
            Framing::Record {
                content_type: HANDSHAKE,
                ..
            }
        ) && header[HEADER_LEN] == SERVER_HELLO,
    )
}

/// GREASE values (RFC 8701): 0x0a0a, 0x1a1a, ... 0xfafa. Fingerprints leave them out.
pub fn is_grease(value: u16) -> bool {
    value & 0x0f0f == 0x0a0a && value >> 8 == value & 0xff
}

/// A ClientHello's facts, in wire order, GREASE included (the fingerprints drop it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHello {
    pub version: u16,
    pub session_id: bool,
    pub ciphers: Vec<u16>,
    pub extensions: Vec<u16>,
    pub groups: Vec<u16>,
    pub point_formats: Vec<u8>,
    pub signature_algorithms: Vec<u16>,
    pub supported_versions: Vec<u16>,
    /// The first host name of the server_name extension.
    pub sni: Option<String>,
    /// ALPN protocol names as sent.
    pub alpns: Vec<Vec<u8>>,
    /// A list went past [`MAX_LIST`].
    pub truncated: bool,
}

/// A ServerHello's facts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerHello {
    /// The record-layer version field of the hello (`legacy_version` in TLS 1.3).
    pub version: u16,
    /// The version chosen: `supported_versions` when present (TLS 1.3), else `version`.
    pub selected_version: u16,
    pub cipher: u16,
    pub extensions: Vec<u16>,
    pub alpn: Option<Vec<u8>>,
    /// TLS 1.3 resumption: the server accepted a pre-shared key.
    pub pre_shared_key: bool,
    /// A HelloRetryRequest (RFC 8446 4.1.3): the client will hello again.
    pub hello_retry: bool,
    pub truncated: bool,
}

/// The `random` of a HelloRetryRequest: SHA-256 of "HelloRetryRequest".
const HELLO_RETRY_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Pushes to a capped list; `false` when the cap was reached.
fn push_capped<T>(list: &mut Vec<T>, value: T) -> bool {
    if list.len() < MAX_LIST {
        list.push(value);
        true
    } else {
        false
    }
}

/// Splits an extensions block into (type, the whole extension with its header), stopping at
/// the first malformed one; the types are what fingerprints need even when a body is odd.
fn extensions(mut block: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let (&[t0, t1, l0, l1], _) = block.split_first_chunk::<4>()?;
        let end = 4 + usize::from(u16::from_be_bytes([l0, l1]));
        let whole = block.get(..end)?;
        block = &block[end..];
        Some((u16::from_be_bytes([t0, t1]), whole))
    })
}

/// The body of a ClientHello handshake message (after its 4-byte header).
pub fn client_hello(body: &[u8]) -> Option<ClientHello> {
    let (_, hello) = parse_tls_handshake_client_hello(body).ok()?;
    let mut facts = ClientHello {
        version: hello.version.0,
        session_id: hello.session_id.is_some_and(|id| !id.is_empty()),
        ..ClientHello::default()
    };
    for cipher in &hello.ciphers {
        facts.truncated |= !push_capped(&mut facts.ciphers, cipher.0);
    }
    for (ext_type, whole) in extensions(hello.ext.unwrap_or_default()) {
        if !push_capped(&mut facts.extensions, ext_type) {
            facts.truncated = true;
            break;
        }
        let Ok((_, ext)) = parse_tls_client_hello_extension(whole) else {
            continue;
        };
        match ext {
            TlsExtension::SNI(names) if ext_type == EXT_SERVER_NAME => {
                if let Some((_, name)) = names.iter().find(|(kind, _)| kind.0 == 0) {
                    facts.sni = Some(wire_string(name));
                }
            }
            TlsExtension::EllipticCurves(groups) if ext_type == EXT_SUPPORTED_GROUPS => {
                facts.groups = groups.iter().take(MAX_LIST).map(|g| g.0).collect();
                facts.truncated |= groups.len() > MAX_LIST;
            }
            TlsExtension::EcPointFormats(formats) if ext_type == EXT_EC_POINT_FORMATS => {
                facts.point_formats = formats.iter().take(MAX_LIST).copied().collect();
            }
            TlsExtension::SignatureAlgorithms(algs) if ext_type == EXT_SIGNATURE_ALGORITHMS => {
                facts.signature_algorithms = algs.iter().take(MAX_LIST).copied().collect();
            }
            TlsExtension::ALPN(names) if ext_type == EXT_ALPN => {
                facts.alpns = names
                    .iter()
                    .take(MAX_LIST)
                    .map(|n| n[..n.len().min(MAX_STRING)].to_vec())
                    .collect();
            }
            TlsExtension::SupportedVersions(versions) if ext_type == EXT_SUPPORTED_VERSIONS => {
                facts.supported_versions = versions.iter().take(MAX_LIST).map(|v| v.0).collect();
            }
            _ => {}
        }
    }
    Some(facts)
}

/// The body of a ServerHello handshake message.
pub fn server_hello(body: &[u8]) -> Option<ServerHello> {
    let (_, hello) = parse_tls_handshake_server_hello(body).ok()?;
    let mut facts = ServerHello {
        version: hello.version.0,
        selected_version: hello.version.0,
        cipher: hello.cipher.0,
        hello_retry: hello.random == HELLO_RETRY_RANDOM,
        ..ServerHello::default()
    };
    for (ext_type, whole) in extensions(hello.ext.unwrap_or_default()) {
        if !push_capped(&mut facts.extensions, ext_type) {
            facts.truncated = true;
            break;
        }
        match parse_tls_server_hello_extension(whole) {
            Ok((_, TlsExtension::SupportedVersions(v))) if ext_type == EXT_SUPPORTED_VERSIONS => {
                if let Some(version) = v.first() {
                    facts.selected_version = version.0;
                }
            }
            Ok((_, TlsExtension::ALPN(names))) if ext_type == EXT_ALPN => {
                facts.alpn = names.first().map(|n| n[..n.len().min(MAX_STRING)].to_vec());
            }
            _ if ext_type == EXT_PRE_SHARED_KEY => facts.pre_shared_key = true,
            _ => {}
        }
    }
    Some(facts)
}

/// The first certificate of a Certificate message body (TLS <= 1.2): the server's own.
pub fn first_certificate(body: &[u8]) -> Option<&[u8]> {
    let chain_len = usize::try_from(u32_be24(body.get(..3)?)).ok()?;
    let chain = body.get(3..3 + chain_len.min(body.len() - 3))?;
    let cert_len = usize::try_from(u32_be24(chain.get(..3)?)).ok()?;
    chain.get(3..3 + cert_len)
}

fn u32_be24(b: &[u8]) -> u32 {
    b.iter().fold(0, |n, &byte| n << 8 | u32::from(byte))
}

/// A certificate's facts, in Suricata's notation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Certificate {
    pub subject: String,
    pub issuerdn: String,
    /// Upper-case hex bytes joined by `:`.
    pub serial: String,
    /// SHA-1 of the DER, lower-case hex bytes joined by `:`.
    pub fingerprint: String,
    /// `YYYY-MM-DDTHH:MM:SS`, UTC.
    pub notbefore: String,
    pub notafter: String,
    /// DNS names and addresses of the subjectAltName extension, at most [`MAX_SAN`].
    pub subjectaltname: Vec<String>,
}

/// Parses a DER certificate; `None` for one that is not.
pub fn certificate(der: &[u8]) -> Option<Certificate> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let validity = cert.validity();
    let date = |t: &x509_parser::time::ASN1Time| {
        let t = t.to_datetime();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    };
    let mut subjectaltname = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            let text = match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => dns.to_string(),
                x509_parser::extensions::GeneralName::IPAddress(ip) => match ip.len() {
                    4 => <[u8; 4]>::try_from(*ip).map(std::net::IpAddr::from).ok(),
                    16 => <[u8; 16]>::try_from(*ip).map(std::net::IpAddr::from).ok(),
                    _ => None,
                }
                .map(|ip| ip.to_string())
                .unwrap_or_default(),
                _ => continue,
            };
            if subjectaltname.len() == MAX_SAN {
                break;
            }
            subjectaltname.push(cap_string(text, MAX_STRING));
        }
    }
    Some(Certificate {
        subject: cap_string(cert.subject().to_string(), 1024),
        issuerdn: cap_string(cert.issuer().to_string(), 1024),
        serial: hex(
            &cert.raw_serial()[..cert.raw_serial().len().min(64)],
            true,
            Some(':'),
        ),
        fingerprint: hex(&Sha1::digest(der), false, Some(':')),
        notbefore: date(&validity.not_before),
        notafter: date(&validity.not_after),
        subjectaltname,
    })
}

/// Bytes as two hex digits each (upper or lower case), `sep` between bytes.
pub fn hex(bytes: &[u8], upper: bool, sep: Option<char>) -> String {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, &b) in bytes.iter().enumerate() {
        if let Some(sep) = sep.filter(|_| i > 0) {
            out.push(sep);
        }
        out.push(char::from(digits[usize::from(b >> 4)]));
        out.push(char::from(digits[usize::from(b & 0xf)]));
    }
    out
}

/// A string from the wire: invalid UTF-8 replaced, capped.
pub fn wire_string(bytes: &[u8]) -> String {
    crate::text::wire_string(bytes, MAX_STRING)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_framed_and_garbage_refused() {
        assert_eq!(frame(b"\x16\x03", false), Framing::NeedMore);
        assert_eq!(
            frame(b"\x17\x03\x03\x00\x20rest", false),
            Framing::Record {
                content_type: APPLICATION_DATA,
                version: 0x0303,
                len: 32
            }
        );
        assert_eq!(frame(b"EHLO x\r\n", false), Framing::Garbage);
        assert_eq!(frame(b"\x19\x03\x03\x00\x01", false), Framing::Garbage);
        // 16 MiB cannot be said in 16 bits; the largest lie is refused too.
        assert_eq!(frame(b"\x17\x03\x03\xff\xff", false), Framing::Garbage);
        assert_eq!(
            frame(b"\x80\x2e\x01\x03\x01", true),
            Framing::Sslv2Hello { len: 0x2e }
        );
        assert_eq!(frame(b"\x80\x2e\x01\x03\x01", false), Framing::Garbage);
    }

    #[test]
    fn grease_is_exactly_the_rfc_8701_values() {
        assert!(is_grease(0x0a0a) && is_grease(0xfafa) && is_grease(0x3a3a));
        assert!(!is_grease(0x0a1a) && !is_grease(0x1301) && !is_grease(0x000a));
    }

    #[test]
    fn hellos_are_recognised_from_six_bytes() {
        assert_eq!(looks_like_client_hello(b"\x16\x03\x01\x00"), None);
        assert_eq!(
            looks_like_client_hello(b"\x16\x03\x01\x02\x00\x01"),
            Some(true)
        );
        assert_eq!(
            looks_like_client_hello(b"\x16\x03\x01\x02\x00\x02"),
            Some(false)
        );
        assert_eq!(
            looks_like_server_hello(b"\x16\x03\x03\x00\x5a\x02"),
            Some(true)
        );
        assert_eq!(looks_like_client_hello(b"220 mx ESMTP\r\n"), Some(false));
    }

    #[test]
    fn a_truncated_hello_or_certificate_is_none_not_a_panic() {
        assert_eq!(client_hello(b"\x03\x03"), None);
        assert_eq!(server_hello(b""), None);
        assert_eq!(certificate(b"\x30\x82\x01"), None);
        assert_eq!(first_certificate(b"\x00\x00"), None);
        assert_eq!(first_certificate(b"\x00\x00\x05\x00\x00\x09abc"), None);
    }

    #[test]
    fn a_malformed_extension_body_still_counts_its_type() {
        // version, random, no session id, one cipher, null compression, then extensions:
        // server_name with a body that lies about its list length, then ALPN "h2".
        let mut body = vec![3, 3];
        body.extend([0u8; 32]);
        body.extend([0, 0, 2, 0x13, 0x01, 1, 0]);
        let exts: &[u8] = &[0, 0, 0, 3, 0, 9, 0, 0, 16, 0, 5, 0, 3, 2, b'h', b'2'];
        body.extend((exts.len() as u16).to_be_bytes());
        body.extend(exts);
        let hello = client_hello(&body).unwrap();
        assert_eq!(hello.extensions, [0, 16]);
        assert_eq!(hello.sni, None);
        assert_eq!(hello.alpns, [b"h2".to_vec()]);
        assert_eq!(hello.ciphers, [0x1301]);
    }

    #[test]
    fn thousands_of_extensions_are_capped() {
        let mut body = vec![3, 3];
        body.extend([0u8; 32]);
        body.extend([0, 0, 2, 0x13, 0x01, 1, 0]);
        let mut exts = Vec::new();
        for i in 0..3000u16 {
            exts.extend((0x1000 + i).to_be_bytes());
            exts.extend([0, 0]);
        }
        body.extend((exts.len() as u16).to_be_bytes());
        body.extend(exts);
        let hello = client_hello(&body).unwrap();
        assert_eq!(hello.extensions.len(), MAX_LIST);
        assert!(hello.truncated);
    }
}
