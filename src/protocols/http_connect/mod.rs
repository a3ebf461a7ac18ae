//! HTTP CONNECT proxies: after a successful CONNECT, the rest of the stream is analysed again as
//! an inner session, as inside a SOCKS tunnel; SMTP sent through an open HTTP proxy gives an
//! `smtp` event with `tunnel.type` `http_connect`. The proxy exchange itself writes no event of
//! its own: the flow's `app_proto` is `http_connect`.
//!
//! Parsing is lenient, as proxies and the malware that uses them are: the request line needs
//! only `CONNECT host:port` and an `HTTP/1.x` version, header lines are not checked.

use super::tunnel::{InnerStream, buffer_handshake};
use super::{AppOutput, Parsed, Probe, StreamOrigin, StreamParser, TunnelKind};
use crate::direction::Direction;
use crate::memory::allocation;
use crate::timestamp::Timestamp;

const METHOD: &[u8] = b"CONNECT ";
/// Request or response head kept; longer ones are not followed.
const MAX_HEAD: usize = 8192;

/// Whether a flow starts with a CONNECT request and an HTTP/1.x answer.
fn probe(ctos: &[u8], stoc: &[u8]) -> Probe {
    if ctos.is_empty() {
        return if stoc.is_empty() {
            Probe::NeedMore
        } else {
            Probe::NoMatch
        };
    }
    let n = ctos.len().min(METHOD.len());
    if ctos[..n] != METHOD[..n] {
        return Probe::NoMatch;
    }
    let Some(end) = memchr::memchr(b'\n', ctos) else {
        return if ctos.len() > MAX_HEAD {
            Probe::NoMatch
        } else {
            Probe::NeedMore
        };
    };
    let line = &ctos[..end];
    if target(line).is_none() || memchr::memmem::find(line, b" HTTP/1.").is_none() {
        return Probe::NoMatch;
    }
    const VERSION: &[u8] = b"HTTP/1.";
    let n = stoc.len().min(VERSION.len());
    if stoc[..n] != VERSION[..n] {
        Probe::NoMatch
    } else if n < VERSION.len() {
        Probe::NeedMore
    } else {
        Probe::Match
    }
}

/// `CONNECT host:port ...`: the host (without IPv6 brackets) and the port.
fn target(request_line: &[u8]) -> Option<(String, u16)> {
    let rest = request_line.strip_prefix(METHOD)?;
    let authority = rest.split(|&b| b == b' ').next()?;
    let authority = std::str::from_utf8(authority).ok()?;
    let (host, port) = authority.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.len() > 255 {
        return None;
    }
    Some((host.to_string(), port.parse().ok()?))
}

/// The status code of `HTTP/1.x NNN reason`.
fn status(response_line: &[u8]) -> Option<u16> {
    let code = response_line.split(|&b| b == b' ').nth(1)?;
    std::str::from_utf8(code).ok()?.trim().parse().ok()
}

/// The end of a request or response head: after the blank line.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = memchr::memmem::find(buf, b"\r\n\r\n").map(|i| i + 4);
    let lf = memchr::memmem::find(buf, b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Request,
    Response,
    Tunnel,
    Done,
}

/// One connection to an HTTP proxy.
pub struct HttpConnectParser {
    depth: u8,
    stage: Stage,
    client: Vec<u8>,
    server: Vec<u8>,
    target: Option<(String, u16)>,
    tunnel: Option<InnerStream>,
}

impl StreamParser for HttpConnectParser {
    fn probe(ctos: &[u8], stoc: &[u8]) -> Probe {
        probe(ctos, stoc)
    }

    fn new(origin: StreamOrigin) -> Self {
        HttpConnectParser {
            depth: origin.depth,
            stage: Stage::Request,
            client: Vec::new(),
            server: Vec::new(),
            target: None,
            tunnel: None,
        }
    }

    fn app_proto(&self) -> &'static str {
        "http_connect"
    }

    fn parse(
        &mut self,
        dir: Direction,
        data: &[u8],
        ts: Timestamp,
        out: &mut Vec<AppOutput>,
    ) -> Parsed {
        match self.stage {
            Stage::Done => {}
            Stage::Tunnel => {
                if let Some(tunnel) = self.tunnel.as_mut() {
                    tunnel.feed(dir, data, ts, out);
                }
            }
            Stage::Request | Stage::Response => self.head(dir, data, ts, out),
        }
        Parsed::Continue
    }

    fn on_gap(&mut self, dir: Direction, len: u64) {
        match (self.stage, self.tunnel.as_mut()) {
            (Stage::Tunnel, Some(tunnel)) => tunnel.on_gap(dir, len),
            _ => self.stage = Stage::Done,
        }
    }

    fn finish(&mut self, ts: Timestamp, out: &mut Vec<AppOutput>) {
        if let Some(mut tunnel) = self.tunnel.take() {
            tunnel.finish(ts, out);
        }
        self.stage = Stage::Done;
    }

    fn heap_bytes(&self) -> usize {
        allocation(size_of::<Self>())
            + allocation(self.client.capacity())
            + allocation(self.server.capacity())
            + self
                .target
                .as_ref()
                .map_or(0, |(host, _)| allocation(host.capacity()))
            + self.tunnel.as_ref().map_or(0, InnerStream::heap_bytes)
    }
}

impl HttpConnectParser {
    /// Request or response head bytes: buffered (capped) until the head ends.
    fn head(&mut self, dir: Direction, data: &[u8], ts: Timestamp, out: &mut Vec<AppOutput>) {
        let buf = match dir {
            Direction::Ctos => &mut self.client,
            Direction::Stoc => &mut self.server,
        };
        if !buffer_handshake(buf, data, MAX_HEAD) {
            self.stage = Stage::Done;
            return;
        }
        if self.stage == Stage::Request {
            let Some(end) = head_end(&self.client) else {
                return;
            };
            let line_end = memchr::memchr(b'\n', &self.client).unwrap_or(end);
            self.target = target(&self.client[..line_end]);
            self.client.drain(..end);
            self.stage = if self.target.is_some() {
                Stage::Response
            } else {
                Stage::Done
            };
        }
        if self.stage == Stage::Response {
            let Some(end) = head_end(&self.server) else {
                return;
            };
            let line_end = memchr::memchr(b'\n', &self.server).unwrap_or(end);
            let ok = status(&self.server[..line_end]).is_some_and(|c| (200..300).contains(&c));
            self.server.drain(..end);
            match (ok, self.target.clone()) {
                (true, Some((host, port))) => self.open_tunnel(host, port, ts, out),
                _ => self.stage = Stage::Done,
            }
        }
    }

    fn open_tunnel(&mut self, host: String, port: u16, ts: Timestamp, out: &mut Vec<AppOutput>) {
        let mut tunnel = InnerStream::new(TunnelKind::HttpConnect, self.depth, host, port);
        // Bytes that came after the heads in the same segments: the client's first.
        for (dir, bytes) in [
            (Direction::Ctos, std::mem::take(&mut self.client)),
            (Direction::Stoc, std::mem::take(&mut self.server)),
        ] {
            if !bytes.is_empty() {
                tunnel.feed(dir, &bytes, ts, out);
            }
        }
        self.tunnel = Some(tunnel);
        self.stage = Stage::Tunnel;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::direction::Direction::{Ctos, Stoc};
    use crate::protocols::{AppEvent, script};

    #[test]
    fn probe_wants_connect_and_an_http_answer() {
        let req = b"CONNECT mx.example.net:25 HTTP/1.0\r\n\r\n";
        assert_eq!(probe(req, b""), Probe::NeedMore);
        assert_eq!(
            probe(req, b"HTTP/1.0 200 Connection established\r\n\r\n"),
            Probe::Match
        );
        assert_eq!(probe(req, b"SSH-2.0"), Probe::NoMatch);
        assert_eq!(probe(b"CONN", b""), Probe::NeedMore);
        assert_eq!(
            probe(b"GET / HTTP/1.1\r\n", b"HTTP/1.1 200 OK\r\n"),
            Probe::NoMatch
        );
        assert_eq!(
            probe(b"CONNECT nohost HTTP/1.1\r\n", b"HTTP/1.1 200"),
            Probe::NoMatch
        );
        assert_eq!(
            probe(b"CONNECT a:25 / HTTP/1.0\r\n", b"HTTP/1.0 200"),
            Probe::Match,
            "a lax request line"
        );
    }

    #[test]
    fn targets_and_statuses() {
        assert_eq!(
            target(b"CONNECT mx.example.net:25 HTTP/1.1"),
            Some(("mx.example.net".into(), 25))
        );
        assert_eq!(
            target(b"CONNECT [2001:db8::1]:587 HTTP/1.1"),
            Some(("2001:db8::1".into(), 587))
        );
        assert_eq!(target(b"CONNECT host:99999 HTTP/1.1"), None);
        assert_eq!(status(b"HTTP/1.0 200 Connection established"), Some(200));
        assert_eq!(
            status(b"HTTP/1.1 407 Proxy Authentication Required"),
            Some(407)
        );
    }

    fn run(script: &[(Direction, &[u8])]) -> Vec<AppOutput> {
        script::run_data(&mut HttpConnectParser::new(StreamOrigin::default()), script).events
    }

    #[test]
    fn smtp_through_the_proxy_carries_the_tunnel() {
        let out = run(&[
            (
                Ctos,
                b"CONNECT mx.example.net:25 HTTP/1.0\r\nUser-Agent: x\r\n\r\n",
            ),
            (
                Stoc,
                b"HTTP/1.0 200 Connection established\r\n\r\n220 mx.example.net ESMTP\r\n",
            ),
            (
                Ctos,
                b"HELO bot\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nQUIT\r\n",
            ),
            (Stoc, b"250 hi\r\n250 ok\r\n250 ok\r\n221 bye\r\n"),
        ]);
        let smtp = out
            .iter()
            .find(|o| matches!(o.event, AppEvent::Smtp(_)))
            .expect("smtp inside");
        let t = smtp.tunnel.as_ref().unwrap();
        assert_eq!(
            (t.kind, t.dest_host.as_str(), t.dest_port, t.depth),
            (TunnelKind::HttpConnect, "mx.example.net", 25, 1)
        );
    }

    #[test]
    fn refused_or_garbage_opens_no_tunnel() {
        let out = run(&[
            (Ctos, b"CONNECT mx.example.net:25 HTTP/1.1\r\n\r\n"),
            (Stoc, b"HTTP/1.1 403 Forbidden\r\n\r\n"),
            (Ctos, b"HELO x\r\n"),
        ]);
        assert!(out.is_empty());
        let flood = vec![b'A'; 20_000];
        let out = run(&[(Ctos, b"CONNECT a:1 HTTP/1.1\r\n"), (Ctos, &flood)]);
        assert!(out.is_empty());
    }
}
