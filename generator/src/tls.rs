//! TLS records for the generated captures: hellos with the fields the sensor reads, the test
//! certificate (`mx.example.net.der`, self-signed, made for this project with openssl), and
//! opaque encrypted records of given plaintext lengths, so a capture can carry the shape of an
//! encrypted SMTP session.

use spamtap::direction::Direction::{self, Ctos, Stoc};

use super::Session;

/// The server certificate of the generated captures: CN mx.example.net, serial
/// 01:23:45:67:89:AB:CD:EF, subjectAltName mx.example.net, smtp.example.net, 198.51.100.25.
pub const CERTIFICATE: &[u8] = include_bytes!("mx.example.net.der");

pub const TLS12: u16 = 0x0303;
pub const TLS13: u16 = 0x0304;
/// TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 24 bytes of nonce and tag per record.
pub const ECDHE_RSA_AES128_GCM: u16 = 0xc02f;
/// TLS_AES_128_GCM_SHA256: 16 bytes of tag and 1 of content type per record.
pub const AES128_GCM_SHA256: u16 = 0x1301;

const HANDSHAKE: u8 = 22;
const CHANGE_CIPHER_SPEC: u8 = 20;
const APPLICATION_DATA: u8 = 23;

fn record(content_type: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![content_type, 3, 3];
    out.extend(u16::try_from(body.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend(body);
    out
}

fn handshake_message(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![msg_type];
    out.extend(&u32::try_from(body.len()).unwrap_or(0).to_be_bytes()[1..]);
    out.extend(body);
    out
}

fn extension(ext_type: u16, body: &[u8]) -> Vec<u8> {
    let mut out = ext_type.to_be_bytes().to_vec();
    out.extend(u16::try_from(body.len()).unwrap_or(0).to_be_bytes());
    out.extend(body);
    out
}

fn u16_list(values: &[u16]) -> Vec<u8> {
    let mut out = u16::try_from(values.len() * 2)
        .unwrap_or(0)
        .to_be_bytes()
        .to_vec();
    values.iter().for_each(|v| out.extend(v.to_be_bytes()));
    out
}

/// What a client offers in its hello.
pub struct ClientHello<'a> {
    pub sni: Option<&'a str>,
    pub alpn: &'a [&'a str],
    /// Offer TLS 1.3 (supported_versions and a key share) besides 1.2.
    pub tls13: bool,
    /// Put GREASE values in, as browsers and BoringSSL do.
    pub grease: bool,
}

/// A ClientHello record.
pub fn client_hello(hello: &ClientHello) -> Vec<u8> {
    let mut body = TLS12.to_be_bytes().to_vec();
    body.extend([0x11u8; 32]);
    body.push(0);
    let mut ciphers = vec![
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xcca9, 0xc013, 0x009c,
    ];
    if hello.grease {
        ciphers.insert(0, 0x2a2a);
    }
    if !hello.tls13 {
        ciphers.retain(|c| c >> 8 != 0x13);
    }
    body.extend(u16_list(&ciphers));
    body.extend([1, 0]);
    let mut exts = Vec::new();
    if hello.grease {
        exts.extend(extension(0x4a4a, b""));
    }
    if let Some(name) = hello.sni {
        let mut entry = vec![0];
        entry.extend(u16::try_from(name.len()).unwrap_or(0).to_be_bytes());
        entry.extend(name.as_bytes());
        let mut list = u16::try_from(entry.len())
            .unwrap_or(0)
            .to_be_bytes()
            .to_vec();
        list.extend(entry);
        exts.extend(extension(0, &list));
    }
    exts.extend(extension(23, b""));
    exts.extend(extension(0xff01, &[0]));
    exts.extend(extension(10, &u16_list(&[29, 23, 24])));
    exts.extend(extension(11, &[1, 0]));
    if !hello.alpn.is_empty() {
        let mut names = Vec::new();
        for name in hello.alpn {
            names.push(u8::try_from(name.len()).unwrap_or(0));
            names.extend(name.as_bytes());
        }
        let mut list = u16::try_from(names.len())
            .unwrap_or(0)
            .to_be_bytes()
            .to_vec();
        list.extend(names);
        exts.extend(extension(16, &list));
    }
    exts.extend(extension(13, &u16_list(&[0x0403, 0x0804, 0x0401, 0x0503])));
    if hello.tls13 {
        exts.extend(extension(43, &[4, 3, 4, 3, 3]));
        let mut share = Vec::new();
        let mut entry = 29u16.to_be_bytes().to_vec();
        entry.extend(32u16.to_be_bytes());
        entry.extend([0x22u8; 32]);
        share.extend(u16::try_from(entry.len()).unwrap_or(0).to_be_bytes());
        share.extend(entry);
        exts.extend(extension(51, &share));
    }
    body.extend(u16::try_from(exts.len()).unwrap_or(0).to_be_bytes());
    body.extend(exts);
    record(HANDSHAKE, &handshake_message(1, &body))
}

/// The server's first flight: a ServerHello choosing `version` and `cipher`; for TLS 1.2 the
/// certificate and ServerHelloDone after it, for TLS 1.3 the middlebox ChangeCipherSpec and
/// the encrypted rest of the handshake (three records).
pub fn server_flight(version: u16, cipher: u16) -> Vec<u8> {
    let mut body = TLS12.to_be_bytes().to_vec();
    body.extend([0x33u8; 32]);
    body.push(0);
    body.extend(cipher.to_be_bytes());
    body.push(0);
    let mut exts = extension(0xff01, &[0]);
    if version == TLS13 {
        exts.extend(extension(43, &TLS13.to_be_bytes()));
        let mut share = 29u16.to_be_bytes().to_vec();
        share.extend(32u16.to_be_bytes());
        share.extend([0x44u8; 32]);
        exts.extend(extension(51, &share));
    } else {
        exts.extend(extension(23, b""));
    }
    body.extend(u16::try_from(exts.len()).unwrap_or(0).to_be_bytes());
    body.extend(exts);
    let mut out = record(HANDSHAKE, &handshake_message(2, &body));
    if version == TLS13 {
        out.extend(change_cipher_spec());
        for len in [25, 950, 280, 69] {
            out.extend(record(APPLICATION_DATA, &opaque(len, 7)));
        }
        return out;
    }
    let der_len = u32::try_from(CERTIFICATE.len()).unwrap_or(0).to_be_bytes();
    let mut chain = der_len[1..].to_vec();
    chain.extend(CERTIFICATE);
    let chain_len = u32::try_from(chain.len()).unwrap_or(0).to_be_bytes();
    let mut certificate = chain_len[1..].to_vec();
    certificate.extend(chain);
    out.extend(record(HANDSHAKE, &handshake_message(11, &certificate)));
    out.extend(record(HANDSHAKE, &handshake_message(14, b"")));
    out
}

/// The client's end of the handshake: for TLS 1.2 a key exchange, ChangeCipherSpec and the
/// encrypted Finished; for TLS 1.3 ChangeCipherSpec and the encrypted Finished.
pub fn client_finish(version: u16) -> Vec<u8> {
    let mut out = Vec::new();
    if version != TLS13 {
        let mut kx = vec![32];
        kx.extend([0x55u8; 32]);
        out.extend(record(HANDSHAKE, &handshake_message(16, &kx)));
    }
    out.extend(change_cipher_spec());
    out.extend(if version == TLS13 {
        record(APPLICATION_DATA, &opaque(53, 9))
    } else {
        record(HANDSHAKE, &opaque(40, 9))
    });
    out
}

/// The server's end of a TLS 1.2 handshake: ChangeCipherSpec and the encrypted Finished.
pub fn server_finish() -> Vec<u8> {
    let mut out = change_cipher_spec();
    out.extend(record(HANDSHAKE, &opaque(40, 10)));
    out
}

fn change_cipher_spec() -> Vec<u8> {
    record(CHANGE_CIPHER_SPEC, &[1])
}

/// Deterministic bytes that look random enough.
fn opaque(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Application data of `plaintext` bytes, encrypted under `version` with the AES-GCM suites
/// above, in records of at most 16 KiB of plaintext.
pub fn encrypted(version: u16, plaintext: usize, seed: u32) -> Vec<u8> {
    let overhead = if version == TLS13 { 17 } else { 24 };
    let mut out = Vec::new();
    let mut left = plaintext;
    let mut i = 0;
    while left > 0 {
        let len = left.min(16_384);
        out.extend(record(
            APPLICATION_DATA,
            &opaque(len + overhead, seed.wrapping_add(i)),
        ));
        left -= len;
        i += 1;
    }
    out
}

/// A TLS handshake (hellos, and the certificate for TLS 1.2) as the client and server of
/// `session` make it.
pub fn handshake(session: &mut Session, version: u16, cipher: u16, sni: Option<&str>) {
    let hello = ClientHello {
        sni,
        alpn: &[],
        tls13: version == TLS13,
        grease: false,
    };
    session
        .send(Ctos, &client_hello(&hello))
        .send(Stoc, &server_flight(version, cipher))
        .send(Ctos, &client_finish(version));
    if version != TLS13 {
        session.send(Stoc, &server_finish());
    }
}

/// Cleartext SMTP sent as TLS application data: each write becomes records of its length.
pub fn encrypted_writes(
    session: &mut Session,
    version: u16,
    writes: &[(Direction, &[u8])],
    seed: u32,
) {
    for (i, (dir, data)) in writes.iter().enumerate() {
        session.send(*dir, &encrypted(version, data.len(), seed + i as u32));
    }
}
