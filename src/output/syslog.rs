//! Syslog destinations: the local socket (`/dev/log`), UDP, and TCP with octet-counting framing
//! (RFC 6587). Each event is one message whose text is the JSON line; its severity comes from
//! the event (an alert's from the alert's severity), its MSGID is the event type, its time the
//! event's packet time.

use std::io;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use super::lane::{Delivered, Target, event_type_of, write_counting};
use super::spec::{SyslogFormat, SyslogSpec, SyslogTransport};

/// Largest message sent in one datagram; a bigger event is dropped and counted, as no
/// datagram can hold it.
const MAX_DATAGRAM: usize = 65_000;
const TIMEOUT: Duration = Duration::from_secs(5);

enum Socket {
    Datagram(Datagram),
    Tcp(TcpStream),
}

/// A socket that takes one message per datagram.
enum Datagram {
    Unix(UnixDatagram),
    Udp(UdpSocket),
}

impl Datagram {
    fn send(&self, message: &[u8]) -> io::Result<usize> {
        match self {
            Datagram::Unix(s) => s.send(message),
            Datagram::Udp(s) => s.send(message),
        }
    }
}

pub(super) struct SyslogTarget {
    spec: SyslogSpec,
    /// HOSTNAME of RFC 5424: the sensor name, as printable ASCII without spaces.
    host: String,
    pid: u32,
    socket: Option<Socket>,
    /// What is sent: one datagram, or every TCP frame of a write.
    frame: Vec<u8>,
    message: Vec<u8>,
}

impl SyslogTarget {
    pub fn new(spec: SyslogSpec, sensor: &str) -> Self {
        let host: String = sensor
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(255)
            .collect();
        SyslogTarget {
            spec,
            host: if host.is_empty() { "-".into() } else { host },
            pid: std::process::id(),
            socket: None,
            frame: Vec::new(),
            message: Vec::new(),
        }
    }
}

fn resolve(host: &str, port: u16) -> io::Result<std::net::SocketAddr> {
    (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address")))
}

impl Target for SyslogTarget {
    fn connect(&mut self) -> io::Result<()> {
        let socket = match &self.spec.transport {
            SyslogTransport::Local(path) => {
                let s = UnixDatagram::unbound()?;
                s.connect(path)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
                s.set_write_timeout(Some(TIMEOUT))?;
                Socket::Datagram(Datagram::Unix(s))
            }
            SyslogTransport::Udp { host, port } => {
                let addr = resolve(host, *port)?;
                let bind = if addr.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let s = UdpSocket::bind(bind)?;
                s.connect(addr)?;
                Socket::Datagram(Datagram::Udp(s))
            }
            SyslogTransport::Tcp { host, port } => {
                let s = TcpStream::connect_timeout(&resolve(host, *port)?, TIMEOUT)?;
                s.set_write_timeout(Some(TIMEOUT))?;
                Socket::Tcp(s)
            }
        };
        self.socket = Some(socket);
        Ok(())
    }

    fn deliver(&mut self, lines: &[u8], _count: u64) -> Delivered {
        let mut delivered = 0;
        let Some(socket) = self.socket.as_mut() else {
            return Delivered::not_connected();
        };
        match socket {
            Socket::Tcp(stream) => {
                // One write for all, framed; on failure, the frames that were out count.
                self.frame.clear();
                let mut ends = Vec::new();
                for line in lines.split_inclusive(|&b| b == b'\n') {
                    self.message.clear();
                    message(&mut self.message, &self.spec, &self.host, self.pid, line);
                    // Octet counting: "LEN SP MSG".
                    self.frame
                        .extend_from_slice(self.message.len().to_string().as_bytes());
                    self.frame.push(b' ');
                    self.frame.extend_from_slice(&self.message);
                    ends.push(self.frame.len());
                }
                match write_counting(stream, &self.frame) {
                    Ok(()) => Delivered {
                        lines: ends.len() as u64,
                        failure: None,
                        refused: None,
                        unconfirmed: 0,
                    },
                    Err((done, error)) => {
                        self.socket = None;
                        Delivered {
                            lines: ends.iter().filter(|&&end| end <= done).count() as u64,
                            failure: Some(error),
                            refused: None,
                            unconfirmed: 0,
                        }
                    }
                }
            }
            Socket::Datagram(socket) => {
                for line in lines.split_inclusive(|&b| b == b'\n') {
                    self.frame.clear();
                    message(&mut self.frame, &self.spec, &self.host, self.pid, line);
                    if self.frame.len() > MAX_DATAGRAM {
                        continue;
                    }
                    if let Err(error) = socket.send(&self.frame) {
                        self.socket = None;
                        return Delivered {
                            lines: delivered,
                            failure: Some(error),
                            refused: None,
                            unconfirmed: 0,
                        };
                    }
                    delivered += 1;
                }
                Delivered {
                    lines: delivered,
                    failure: None,
                    refused: None,
                    unconfirmed: 0,
                }
            }
        }
    }
}

/// Appends one syslog message carrying `line` (its newline dropped) to `out`.
fn message(out: &mut Vec<u8>, spec: &SyslogSpec, host: &str, pid: u32, line: &[u8]) {
    use std::io::Write;
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let event_type = event_type_of(line);
    let pri = u32::from(spec.facility) * 8 + u32::from(severity(event_type, line));
    let _ = match spec.format {
        SyslogFormat::Rfc5424 => {
            let msgid = std::str::from_utf8(event_type)
                .ok()
                .filter(|t| !t.is_empty())
                .unwrap_or("-");
            write!(
                out,
                "<{pri}>1 {} {host} spamtap {pid} {msgid} - ",
                rfc5424_time(line).unwrap_or("-".into())
            )
        }
        // What syslog(3) writes, without the time: the local daemon stamps its own.
        SyslogFormat::Rfc3164 => write!(out, "<{pri}>spamtap[{pid}]: "),
    };
    out.extend_from_slice(line);
}

/// Syslog severity: alerts by their severity (1 critical, 2 error, 3 and beyond warning),
/// every other event informational.
fn severity(event_type: &[u8], line: &[u8]) -> u8 {
    if event_type != b"alert" {
        return 6;
    }
    const KEY: &[u8] = b"\"severity\":";
    let level = memchr::memmem::find(line, KEY)
        .and_then(|at| line.get(at + KEY.len()))
        .copied();
    match level {
        Some(b'1') => 2,
        Some(b'2') => 3,
        _ => 4,
    }
}

/// The event's `timestamp` (`2026-01-01T00:00:00.000100+0000`) as RFC 5424 wants it
/// (`...+00:00`).
fn rfc5424_time(line: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"{\"timestamp\":\"";
    let rest = line.strip_prefix(KEY)?;
    let end = memchr::memchr(b'"', rest)?;
    let ts = std::str::from_utf8(&rest[..end]).ok()?;
    let (base, offset) = ts.split_at_checked(ts.len().checked_sub(2)?)?;
    Some(format!("{base}:{offset}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const ALERT: &[u8] = br#"{"timestamp":"2026-01-01T00:00:00.000100+0000","event_type":"alert","alert":{"signature":"x","severity":1}}
"#;

    fn spec(format: SyslogFormat) -> SyslogSpec {
        SyslogSpec {
            transport: SyslogTransport::Local(PathBuf::from("/dev/log")),
            facility: 21,
            format,
        }
    }

    #[test]
    fn rfc5424_message() {
        let mut out = Vec::new();
        message(&mut out, &spec(SyslogFormat::Rfc5424), "tap-1", 42, ALERT);
        let text = String::from_utf8(out).unwrap();
        // local5 (21) * 8 + critical (2)
        assert!(
            text.starts_with(
                "<170>1 2026-01-01T00:00:00.000100+00:00 tap-1 spamtap 42 alert - {\"timestamp\""
            ),
            "{text}"
        );
        assert!(text.ends_with("}}"), "{text}");
    }

    #[test]
    fn rfc3164_message_and_severities() {
        let mut out = Vec::new();
        let flow = br#"{"timestamp":"2026-01-01T00:00:00.000100+0000","event_type":"flow"}"#;
        message(&mut out, &spec(SyslogFormat::Rfc3164), "s", 7, flow);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("<174>spamtap[7]: {}", String::from_utf8_lossy(flow))
        );
        assert_eq!(severity(b"alert", br#""severity":2"#), 3);
        assert_eq!(severity(b"alert", br#""severity":3"#), 4);
    }

    #[test]
    fn octet_counting_over_tcp() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut t = SyslogTarget::new(
            SyslogSpec {
                transport: SyslogTransport::Tcp {
                    host: "127.0.0.1".into(),
                    port,
                },
                facility: 21,
                format: SyslogFormat::Rfc5424,
            },
            "tap",
        );
        t.connect().unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let d = t.deliver(&[ALERT, ALERT].concat(), 2);
        assert_eq!((d.lines, d.failure.is_none()), (2, true));
        drop(t);
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut peer, &mut got).unwrap();
        let text = String::from_utf8(got).unwrap();
        let (len, rest) = text.split_once(' ').unwrap();
        let len: usize = len.parse().unwrap();
        assert!(rest[..len].starts_with("<170>1 ") && rest[..len].ends_with("}}"));
        assert!(rest[len..].starts_with(&format!("{len} <170>1 ")));
        assert_eq!(rest.len(), 2 * len + len.to_string().len() + 1);
    }
}
