//! Pure SOCKS4/4a/5 message parsing (RFC 1928, RFC 1929, the SOCKS4 and SOCKS4a protocol
//! descriptions). Each parser returns `Incomplete` until the whole message is there, and
//! `Invalid` for bytes no proxy or client would send.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a message could not be parsed yet, or at all.
#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    Incomplete,
    Invalid(&'static str),
}

pub type Parsed<T> = Result<(T, usize), Error>;

/// Longest user id or host name accepted in a SOCKS4/4a request.
pub const MAX_NAME: usize = 255;

/// The command of a SOCKS request (`socks.command` in events).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Connect,
    Bind,
    UdpAssociate,
}

impl Command {
    fn from_byte(b: u8, version: u8) -> Result<Self, Error> {
        match (b, version) {
            (1, _) => Ok(Command::Connect),
            (2, _) => Ok(Command::Bind),
            (3, 5) => Ok(Command::UdpAssociate),
            _ => Err(Error::Invalid("unknown_command")),
        }
    }
}

/// A destination: an address, a name (SOCKS4a, SOCKS5 domain), and a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub host: Option<IpAddr>,
    pub name: Option<Vec<u8>>,
    pub port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Socks4Request {
    pub command: Command,
    pub dest: Address,
    pub user: Vec<u8>,
}

/// A NUL-terminated string of at most `MAX_NAME` bytes.
fn nul_terminated(buf: &[u8]) -> Parsed<&[u8]> {
    match memchr::memchr(0, buf) {
        Some(end) if end <= MAX_NAME => Ok((&buf[..end], end + 1)),
        Some(_) => Err(Error::Invalid("overlong_name")),
        None if buf.len() > MAX_NAME => Err(Error::Invalid("overlong_name")),
        None => Err(Error::Incomplete),
    }
}

/// `04 CD PORT(2) IP(4) USERID 00 [HOST 00]`.
pub fn socks4_request(buf: &[u8]) -> Parsed<Socks4Request> {
    let Some(head) = buf.get(..8) else {
        return Err(Error::Incomplete);
    };
    if head[0] != 4 {
        return Err(Error::Invalid("not_socks4"));
    }
    let command = Command::from_byte(head[1], 4)?;
    let port = u16::from_be_bytes([head[2], head[3]]);
    let ip = Ipv4Addr::new(head[4], head[5], head[6], head[7]);
    let (user, used) = nul_terminated(&buf[8..])?;
    let mut consumed = 8 + used;
    // SOCKS4a: 0.0.0.x with x != 0 means "the host name follows".
    let octets = ip.octets();
    let dest = if octets[..3] == [0, 0, 0] && octets[3] != 0 {
        let (name, used) = nul_terminated(&buf[consumed..])?;
        consumed += used;
        Address {
            host: None,
            name: Some(name.to_vec()),
            port,
        }
    } else {
        Address {
            host: Some(IpAddr::V4(ip)),
            name: None,
            port,
        }
    };
    Ok((
        Socks4Request {
            command,
            dest,
            user: user.to_vec(),
        },
        consumed,
    ))
}

/// `VN CD PORT(2) IP(4)`: the code and the address (BIND's listening address).
pub fn socks4_reply(buf: &[u8]) -> Parsed<(u8, Address)> {
    let Some(r) = buf.get(..8) else {
        return Err(Error::Incomplete);
    };
    // VN is 0 by the protocol; some servers answer 4.
    if r[0] != 0 && r[0] != 4 {
        return Err(Error::Invalid("bad_reply_version"));
    }
    if !(90..=93).contains(&r[1]) {
        return Err(Error::Invalid("bad_reply_code"));
    }
    let dest = Address {
        host: Some(IpAddr::V4(Ipv4Addr::new(r[4], r[5], r[6], r[7]))),
        name: None,
        port: u16::from_be_bytes([r[2], r[3]]),
    };
    Ok(((r[1], dest), 8))
}

pub fn socks4_status(code: u8) -> &'static str {
    match code {
        90 => "succeeded",
        91 => "general SOCKS server failure",
        92 => "request failed because client is not running identd",
        93 => {
            "request failed because client's identd could not confirm the user ID string in the request"
        }
        _ => "unknown",
    }
}

/// `05 NMETHODS METHODS...`.
pub fn socks5_greeting(buf: &[u8]) -> Parsed<Vec<u8>> {
    let (&version, rest) = buf.split_first().ok_or(Error::Incomplete)?;
    if version != 5 {
        return Err(Error::Invalid("not_socks5"));
    }
    let (&n, rest) = rest.split_first().ok_or(Error::Incomplete)?;
    if n == 0 {
        return Err(Error::Invalid("no_methods"));
    }
    let methods = rest.get(..usize::from(n)).ok_or(Error::Incomplete)?;
    Ok((methods.to_vec(), 2 + usize::from(n)))
}

/// `05 METHOD`.
pub fn socks5_method_choice(buf: &[u8]) -> Parsed<u8> {
    match buf {
        [] | [_] => Err(Error::Incomplete),
        [5, method, ..] => Ok((*method, 2)),
        _ => Err(Error::Invalid("bad_method_choice")),
    }
}

pub fn method_name(method: u8) -> &'static str {
    match method {
        0x00 => "none",
        0x01 => "gssapi",
        0x02 => "username_password",
        0x03 => "chap",
        0xff => "no_acceptable",
        0x80..=0xfe => "private",
        _ => "other",
    }
}

/// RFC 1929 `01 ULEN UNAME PLEN PASSWD`: the user name; the password is skipped, never copied.
pub fn userpass_request(buf: &[u8]) -> Parsed<Vec<u8>> {
    let (&version, rest) = buf.split_first().ok_or(Error::Incomplete)?;
    if version != 1 {
        return Err(Error::Invalid("bad_auth_version"));
    }
    let (&ulen, rest) = rest.split_first().ok_or(Error::Incomplete)?;
    let user = rest.get(..usize::from(ulen)).ok_or(Error::Incomplete)?;
    let &plen = rest.get(usize::from(ulen)).ok_or(Error::Incomplete)?;
    let total = 3 + usize::from(ulen) + usize::from(plen);
    if buf.len() < total {
        return Err(Error::Incomplete);
    }
    Ok((user.to_vec(), total))
}

/// RFC 1929 `01 STATUS`: whether the server accepted the credentials.
pub fn userpass_reply(buf: &[u8]) -> Parsed<bool> {
    match buf {
        [] | [_] => Err(Error::Incomplete),
        // Some servers answer with version 5 here; the status byte is what matters.
        [1 | 5, status, ..] => Ok((*status == 0, 2)),
        _ => Err(Error::Invalid("bad_auth_reply")),
    }
}

/// `ATYP ADDR PORT`, shared by requests and replies.
fn socks5_address(buf: &[u8]) -> Parsed<Address> {
    let (&atyp, rest) = buf.split_first().ok_or(Error::Incomplete)?;
    let (host, name, len) = match atyp {
        1 => {
            let a: [u8; 4] = rest
                .get(..4)
                .ok_or(Error::Incomplete)?
                .try_into()
                .map_err(|_| Error::Incomplete)?;
            (Some(IpAddr::V4(Ipv4Addr::from(a))), None, 4)
        }
        4 => {
            let a: [u8; 16] = rest
                .get(..16)
                .ok_or(Error::Incomplete)?
                .try_into()
                .map_err(|_| Error::Incomplete)?;
            (Some(IpAddr::V6(Ipv6Addr::from(a))), None, 16)
        }
        3 => {
            let (&n, name) = rest.split_first().ok_or(Error::Incomplete)?;
            let name = name.get(..usize::from(n)).ok_or(Error::Incomplete)?;
            (None, Some(name.to_vec()), 1 + usize::from(n))
        }
        _ => return Err(Error::Invalid("bad_address_type")),
    };
    let port = rest.get(len..len + 2).ok_or(Error::Incomplete)?;
    Ok((
        Address {
            host,
            name,
            port: u16::from_be_bytes([port[0], port[1]]),
        },
        1 + len + 2,
    ))
}

/// `05 CMD 00 ATYP ADDR PORT`.
pub fn socks5_request(buf: &[u8]) -> Parsed<(Command, Address)> {
    let head = buf.get(..3).ok_or(Error::Incomplete)?;
    if head[0] != 5 {
        return Err(Error::Invalid("not_socks5"));
    }
    let command = Command::from_byte(head[1], 5)?;
    let (address, used) = socks5_address(&buf[3..])?;
    Ok(((command, address), 3 + used))
}

/// `05 REP 00 ATYP ADDR PORT`: the reply code and the bound address.
pub fn socks5_reply(buf: &[u8]) -> Parsed<(u8, Address)> {
    let head = buf.get(..3).ok_or(Error::Incomplete)?;
    if head[0] != 5 {
        return Err(Error::Invalid("bad_reply_version"));
    }
    if head[1] > 8 {
        return Err(Error::Invalid("bad_reply_code"));
    }
    let (address, used) = socks5_address(&buf[3..])?;
    Ok(((head[1], address), 3 + used))
}

pub fn socks5_status(code: u8) -> &'static str {
    match code {
        0 => "succeeded",
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "Network unreachable",
        4 => "Host unreachable",
        5 => "Connection refused",
        6 => "TTL expired",
        7 => "Command not supported",
        8 => "Address type not supported",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socks4_connect_and_4a() {
        let req = [4, 1, 0, 80, 93, 184, 216, 34, b'b', b'o', b'b', 0];
        let (r, used) = socks4_request(&req).unwrap();
        assert_eq!(used, 12);
        assert_eq!(
            (r.command, r.user.as_slice()),
            (Command::Connect, &b"bob"[..])
        );
        assert_eq!(r.dest.host, Some("93.184.216.34".parse().unwrap()));
        let mut a = vec![4, 1, 0, 80, 0, 0, 0, 1, 0];
        a.extend_from_slice(b"www.example.com\0");
        let (r, used) = socks4_request(&a).unwrap();
        assert_eq!(used, a.len());
        assert_eq!(
            (r.dest.host, r.dest.name.as_deref()),
            (None, Some(&b"www.example.com"[..]))
        );
        assert_eq!(socks4_request(&a[..12]), Err(Error::Incomplete));
        assert_eq!(
            socks4_request(&[4, 9, 0, 0, 1, 2, 3, 4, 0]),
            Err(Error::Invalid("unknown_command"))
        );
        assert_eq!(
            socks4_request(&[4, 1, 0, 0, 1, 2, 3, 4]),
            Err(Error::Incomplete)
        );
        let mut long = vec![4, 1, 0, 0, 1, 2, 3, 4];
        long.extend(std::iter::repeat_n(b'x', 300));
        assert_eq!(socks4_request(&long), Err(Error::Invalid("overlong_name")));
    }

    #[test]
    fn socks4_replies() {
        let (r, _) = socks4_reply(&[0, 90, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(r.0, 90);
        assert_eq!(socks4_status(91), "general SOCKS server failure");
        assert_eq!(socks4_reply(&[0, 90, 0]), Err(Error::Incomplete));
        assert_eq!(
            socks4_reply(&[0, 17, 0, 0, 0, 0, 0, 0]),
            Err(Error::Invalid("bad_reply_code"))
        );
        assert_eq!(
            socks4_reply(b"HTTP/1.1"),
            Err(Error::Invalid("bad_reply_version"))
        );
    }

    #[test]
    fn socks5_negotiation() {
        assert_eq!(socks5_greeting(&[5, 2, 0, 2]), Ok((vec![0, 2], 4)));
        assert_eq!(
            socks5_greeting(&[5, 255, 0]),
            Err(Error::Incomplete),
            "absurd count waits"
        );
        assert_eq!(socks5_greeting(&[5, 0]), Err(Error::Invalid("no_methods")));
        assert_eq!(socks5_method_choice(&[5, 2]), Ok((2, 2)));
        assert_eq!(method_name(0xff), "no_acceptable");
        let auth = [1, 3, b'b', b'o', b'b', 5, b'a', b'l', b'i', b'c', b'e'];
        assert_eq!(userpass_request(&auth), Ok((b"bob".to_vec(), 11)));
        assert_eq!(userpass_request(&auth[..8]), Err(Error::Incomplete));
        assert_eq!(
            userpass_request(&[1, 0, 0]),
            Ok((Vec::new(), 3)),
            "zero-length names"
        );
        assert_eq!(userpass_reply(&[1, 0]), Ok((true, 2)));
        assert_eq!(userpass_reply(&[1, 1]), Ok((false, 2)));
    }

    #[test]
    fn socks5_requests_every_address_type() {
        let v4 = [5, 1, 0, 1, 192, 168, 0, 2, 0, 22];
        let ((cmd, a), used) = socks5_request(&v4).unwrap();
        assert_eq!(
            (cmd, a.host, a.port, used),
            (
                Command::Connect,
                Some("192.168.0.2".parse().unwrap()),
                22,
                10
            )
        );
        let mut name = vec![5, 1, 0, 3, 14];
        name.extend_from_slice(b"www.osnews.com");
        name.extend_from_slice(&[0, 80]);
        let ((_, a), _) = socks5_request(&name).unwrap();
        assert_eq!(a.name.as_deref(), Some(&b"www.osnews.com"[..]));
        let mut v6 = vec![5, 3, 0, 4];
        v6.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        v6.extend_from_slice(&[0x01, 0xbb]);
        let ((cmd, a), _) = socks5_request(&v6).unwrap();
        assert_eq!((cmd, a.port), (Command::UdpAssociate, 443));
        assert_eq!(
            socks5_request(&[5, 1, 0, 7, 0]),
            Err(Error::Invalid("bad_address_type"))
        );
        assert_eq!(
            socks5_request(&[5, 1, 0, 3, 0, 0, 80]).map(|r| r.1),
            Ok(7),
            "empty name"
        );
    }

    #[test]
    fn socks5_replies_and_codes() {
        let ((code, bound), used) = socks5_reply(&[5, 0, 0, 1, 10, 0, 0, 1, 0x1f, 0x90]).unwrap();
        assert_eq!((code, bound.port, used), (0, 8080, 10));
        assert_eq!(socks5_status(5), "Connection refused");
        assert_eq!(
            socks5_reply(&[5, 9, 0, 1]),
            Err(Error::Invalid("bad_reply_code"))
        );
    }
}
