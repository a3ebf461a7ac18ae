//! The stream inside a proxy tunnel (SOCKS, HTTP CONNECT), analysed again as an inner session
//! one tunnel deeper. Its events are marked with the hop they came through.

use super::{AppLayer, AppOutput, StreamOrigin, Tunnel, TunnelKind};
use crate::direction::Direction;
use crate::memory::allocation;
use crate::timestamp::Timestamp;

/// Buffers handshake bytes of one side of a proxy, up to `cap` bytes in all; `false` when
/// they did not fit (the proxy parsers give up on such a handshake).
pub fn buffer_handshake(buf: &mut Vec<u8>, data: &[u8], cap: usize) -> bool {
    let room = cap.saturating_sub(buf.len());
    buf.extend_from_slice(&data[..data.len().min(room)]);
    data.len() <= room
}

/// An open tunnel and the application layer of what flows through it.
pub struct InnerStream {
    inner: Box<AppLayer>,
    tunnel: Tunnel,
    /// Bytes that went through, both directions.
    bytes: u64,
}

impl InnerStream {
    /// A tunnel of a proxy at `depth` (0 for a flow's own proxy) to `dest_host:dest_port`.
    pub fn new(kind: TunnelKind, depth: u8, dest_host: String, dest_port: u16) -> Self {
        InnerStream {
            inner: Box::new(AppLayer::new(StreamOrigin::tunnel(depth + 1, dest_port))),
            tunnel: Tunnel {
                kind,
                proxy: None,
                dest_host,
                dest_port,
                depth: 1,
            },
            bytes: 0,
        }
    }

    /// Feeds tunnelled bytes; returns what the stream turned out to be once detection decided
    /// (`unknown` when nothing matched), `None` while it is undecided.
    pub fn feed(
        &mut self,
        dir: Direction,
        data: &[u8],
        ts: Timestamp,
        out: &mut Vec<AppOutput>,
    ) -> Option<&'static str> {
        self.bytes += data.len() as u64;
        let mut inner_out = Vec::new();
        self.inner.on_data(dir, data, ts, &mut inner_out);
        self.wrap(inner_out, out);
        self.protocol()
    }

    pub fn on_gap(&mut self, dir: Direction, len: u64) {
        self.inner.on_gap(dir, len);
    }

    /// Heap bytes of the inner session (see [`crate::protocols::StreamParser::heap_bytes`]).
    pub fn heap_bytes(&self) -> usize {
        allocation(size_of::<AppLayer>()) + self.inner.heap_bytes()
    }

    /// Ends the inner session; returns what it was, if any byte went through.
    pub fn finish(&mut self, ts: Timestamp, out: &mut Vec<AppOutput>) -> Option<&'static str> {
        let proto = self.inner.app_proto();
        let mut inner_out = Vec::new();
        self.inner.finish(ts, &mut inner_out);
        self.wrap(inner_out, out);
        (self.bytes > 0).then(|| proto.unwrap_or("unknown"))
    }

    fn protocol(&self) -> Option<&'static str> {
        self.inner
            .is_decided()
            .then(|| self.inner.app_proto().unwrap_or("unknown"))
    }

    /// Marks events from inside the tunnel with the hop they came through.
    fn wrap(&self, inner: Vec<AppOutput>, out: &mut Vec<AppOutput>) {
        let ours = &self.tunnel;
        for mut output in inner {
            match &mut output.tunnel {
                None => output.tunnel = Some(ours.clone()),
                // From a proxy inside this one: that proxy is where this tunnel led.
                Some(theirs) if theirs.proxy.is_none() => {
                    theirs.proxy = Some((ours.dest_host.clone(), ours.dest_port));
                    theirs.depth = ours.depth + 1;
                }
                Some(_) => {}
            }
            out.push(output);
        }
    }
}
