//! TLS client and server fingerprints from the hellos: JA3 and JA3S (Salesforce: MD5 of the
//! decimal field lists) and JA4 (FoxIO: a readable prefix and two truncated SHA-256 hashes).
//! GREASE values are left out of every list, as all three specify.

use md5::Md5;
use sha2::{Digest, Sha256};

use super::parser::{self, ClientHello, ServerHello, is_grease};

/// A fingerprint's text and its hash (`ja3` and `ja3s` objects).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ja3 {
    pub hash: String,
    pub string: String,
}

/// How a list's values are written.
#[derive(Clone, Copy)]
enum Radix {
    /// Decimal (JA3).
    Decimal,
    /// Four lower-case hex digits (JA4).
    Hex4,
}

/// Appends `values` to `out`, `sep` between them, without an allocation per value.
fn push_list(out: &mut String, values: impl IntoIterator<Item = u16>, sep: char, radix: Radix) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            out.push(sep);
        }
        match radix {
            Radix::Hex4 => {
                for shift in [12, 8, 4, 0] {
                    out.push(char::from(DIGITS[usize::from((v >> shift) & 0xf)]));
                }
            }
            Radix::Decimal => {
                let mut digits = [0u8; 5];
                let mut n = v;
                let mut len = 0;
                loop {
                    digits[len] = b'0' + (n % 10) as u8;
                    len += 1;
                    n /= 10;
                    if n == 0 {
                        break;
                    }
                }
                for &d in digits[..len].iter().rev() {
                    out.push(char::from(d));
                }
            }
        }
    }
}

fn not_grease(values: &[u16]) -> impl Iterator<Item = u16> + '_ {
    values.iter().copied().filter(|&v| !is_grease(v))
}

fn md5_hex(text: &str) -> String {
    hex(&Md5::digest(text.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    parser::hex(bytes, false, None)
}

/// A JA3-style fingerprint: the lists in decimal, `-` within a list, `,` between lists, and
/// the MD5 of that text.
fn decimal_lists<const N: usize>(lists: [Vec<u16>; N]) -> Ja3 {
    let mut string = String::with_capacity(256);
    for (i, list) in lists.into_iter().enumerate() {
        if i > 0 {
            string.push(',');
        }
        push_list(&mut string, list, '-', Radix::Decimal);
    }
    Ja3 {
        hash: md5_hex(&string),
        string,
    }
}

/// `version,ciphers,extensions,groups,point_formats`, in wire order.
pub fn ja3(hello: &ClientHello) -> Ja3 {
    decimal_lists([
        vec![hello.version],
        not_grease(&hello.ciphers).collect(),
        not_grease(&hello.extensions).collect(),
        not_grease(&hello.groups).collect(),
        hello.point_formats.iter().map(|&f| u16::from(f)).collect(),
    ])
}

/// `version,cipher,extensions` of the ServerHello.
pub fn ja3s(hello: &ServerHello) -> Ja3 {
    decimal_lists([
        vec![hello.version],
        vec![hello.cipher],
        not_grease(&hello.extensions).collect(),
    ])
}

/// The two characters JA4 writes for the first ALPN value: its first and last byte when
/// printable, `9` for a byte of 0x80 or more, `99` when either end is a control byte.
fn alpn_chars(alpn: Option<&[u8]>) -> String {
    let Some(&[first, .., last] | &[first @ last]) = alpn else {
        return "00".into();
    };
    let char_of = |b: u8| match b {
        0x20..=0x7e => Some(char::from(b)),
        0x80.. => Some('9'),
        _ => None,
    };
    match (char_of(first), char_of(last)) {
        (Some(a), Some(b)) => [a, b].iter().collect(),
        _ => "99".into(),
    }
}

fn version_code(version: u16) -> &'static str {
    match version {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// The first 12 hex digits of the SHA-256 of `text`, or twelve zeros for no text.
fn truncated_sha256(text: &str) -> String {
    if text.is_empty() {
        return "000000000000".into();
    }
    let mut digest = hex(&Sha256::digest(text.as_bytes()));
    digest.truncate(12);
    digest
}

/// JA4 over TCP: `t`, version, SNI kind, counts and ALPN; the sorted ciphers' hash; the
/// sorted extensions' (without SNI and ALPN) hash with the signature algorithms in order.
pub fn ja4(hello: &ClientHello) -> String {
    let version = not_grease(&hello.supported_versions)
        .max()
        .unwrap_or(hello.version);
    let mut ciphers: Vec<u16> = not_grease(&hello.ciphers).collect();
    let extensions: Vec<u16> = not_grease(&hello.extensions).collect();
    let prefix = format!(
        "t{}{}{:02}{:02}{}",
        version_code(version),
        if hello.sni.is_some() { 'd' } else { 'i' },
        ciphers.len().min(99),
        extensions.len().min(99),
        alpn_chars(hello.alpns.first().map(Vec::as_slice)),
    );
    ciphers.sort_unstable();
    let mut hashed: Vec<u16> = extensions
        .into_iter()
        .filter(|&e| e != 0x0000 && e != 0x0010)
        .collect();
    hashed.sort_unstable();
    let mut cipher_text = String::with_capacity(ciphers.len() * 5);
    push_list(&mut cipher_text, ciphers, ',', Radix::Hex4);
    let mut ext_text = String::with_capacity((hashed.len() + 16) * 5);
    push_list(&mut ext_text, hashed, ',', Radix::Hex4);
    let mut sig_algs = not_grease(&hello.signature_algorithms).peekable();
    if sig_algs.peek().is_some() {
        ext_text.push('_');
        push_list(&mut ext_text, sig_algs, ',', Radix::Hex4);
    }
    format!(
        "{prefix}_{}_{}",
        truncated_sha256(&cipher_text),
        truncated_sha256(&ext_text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ClientHello of the JA4 specification's worked example (FoxIO's README: a Chrome
    /// hello to an HTTPS server, GREASE included), field by field.
    fn chrome() -> ClientHello {
        ClientHello {
            version: 0x0303,
            ciphers: vec![
                0x8a8a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8,
                0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
            ],
            extensions: vec![
                0x1a1a, 0x0000, 0x0017, 0xff01, 0x000a, 0x000b, 0x0023, 0x0010, 0x0005, 0x000d,
                0x0012, 0x0033, 0x002d, 0x002b, 0x001b, 0x4469, 0x4a4a, 0x0015,
            ],
            signature_algorithms: vec![
                0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
            ],
            supported_versions: vec![0x7a7a, 0x0304, 0x0303],
            sni: Some("example.com".into()),
            alpns: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            ..ClientHello::default()
        }
    }

    #[test]
    fn ja4_matches_the_specifications_example() {
        assert_eq!(ja4(&chrome()), "t13d1516h2_8daaf6152771_e5627efa2ab1");
    }

    #[test]
    fn ja4_of_a_hello_without_extensions_or_ciphers() {
        let hello = ClientHello {
            version: 0x0301,
            ..ClientHello::default()
        };
        assert_eq!(ja4(&hello), "t10i000000_000000000000_000000000000");
    }

    #[test]
    fn alpn_ends_follow_ja4plus() {
        assert_eq!(alpn_chars(None), "00");
        assert_eq!(alpn_chars(Some(b"")), "00");
        assert_eq!(alpn_chars(Some(b"h")), "hh");
        assert_eq!(alpn_chars(Some(b"smtp")), "sp");
        assert_eq!(alpn_chars(Some(b"\xc3\xa9x")), "9x");
        assert_eq!(alpn_chars(Some(b"a\x01")), "99");
    }

    #[test]
    fn ja3_leaves_grease_out_and_keeps_wire_order() {
        let hello = ClientHello {
            version: 771,
            ciphers: vec![0x0a0a, 4865, 49195],
            extensions: vec![0x2a2a, 0, 11, 10],
            groups: vec![0x3a3a, 29, 23],
            point_formats: vec![0],
            ..ClientHello::default()
        };
        let fp = ja3(&hello);
        assert_eq!(fp.string, "771,4865-49195,0-11-10,29-23,0");
        assert_eq!(fp.hash, md5_hex("771,4865-49195,0-11-10,29-23,0"));
        assert_eq!(fp.hash.len(), 32);
    }

    #[test]
    fn ja3s_is_version_cipher_extensions() {
        let hello = ServerHello {
            version: 771,
            cipher: 49199,
            extensions: vec![65281, 11, 35],
            ..ServerHello::default()
        };
        assert_eq!(ja3s(&hello).string, "771,49199,65281-11-35");
    }

    #[test]
    fn lists_in_decimal_and_four_hex_digits() {
        let mut out = String::new();
        push_list(&mut out, [0, 7, 10, 771, 65535], '-', Radix::Decimal);
        assert_eq!(out, "0-7-10-771-65535");
        out.clear();
        push_list(&mut out, [0, 0x1301, 0xff01], ',', Radix::Hex4);
        assert_eq!(out, "0000,1301,ff01");
    }

    #[test]
    fn md5_of_the_empty_string_is_the_known_one() {
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
