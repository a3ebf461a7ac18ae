//! Unix socket destinations: `unix-dgram` sends each event as one datagram (no newline),
//! `unix-stream` writes newline-delimited lines on a stream connection.

use std::io;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

use super::lane::{Delivered, Target, count_lines, write_counting};

const TIMEOUT: Duration = Duration::from_secs(5);

fn named(path: &std::path::Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

pub(super) struct DgramTarget {
    path: PathBuf,
    socket: Option<UnixDatagram>,
}

impl DgramTarget {
    pub fn new(path: PathBuf) -> Self {
        DgramTarget { path, socket: None }
    }
}

impl Target for DgramTarget {
    fn connect(&mut self) -> io::Result<()> {
        let s = UnixDatagram::unbound()?;
        s.connect(&self.path).map_err(|e| named(&self.path, e))?;
        s.set_write_timeout(Some(TIMEOUT))?;
        self.socket = Some(s);
        Ok(())
    }

    fn deliver(&mut self, lines: &[u8], _count: u64) -> Delivered {
        let Some(socket) = &self.socket else {
            return Delivered::not_connected();
        };
        let mut sent = 0;
        for line in lines.split_inclusive(|&b| b == b'\n') {
            if let Err(error) = socket.send(line.strip_suffix(b"\n").unwrap_or(line)) {
                self.socket = None;
                return Delivered {
                    lines: sent,
                    failure: Some(error),
                    refused: None,
                    unconfirmed: 0,
                };
            }
            sent += 1;
        }
        Delivered {
            lines: sent,
            failure: None,
            refused: None,
            unconfirmed: 0,
        }
    }
}

pub(super) struct StreamTarget {
    path: PathBuf,
    socket: Option<UnixStream>,
}

impl StreamTarget {
    pub fn new(path: PathBuf) -> Self {
        StreamTarget { path, socket: None }
    }
}

impl Target for StreamTarget {
    fn connect(&mut self) -> io::Result<()> {
        let s = UnixStream::connect(&self.path).map_err(|e| named(&self.path, e))?;
        s.set_write_timeout(Some(TIMEOUT))?;
        self.socket = Some(s);
        Ok(())
    }

    fn deliver(&mut self, lines: &[u8], count: u64) -> Delivered {
        let Some(socket) = self.socket.as_mut() else {
            return Delivered::not_connected();
        };
        match write_counting(socket, lines) {
            Ok(()) => Delivered::all(count),
            Err((done, error)) => {
                self.socket = None;
                Delivered {
                    lines: count_lines(&lines[..done]),
                    failure: Some(error),
                    refused: None,
                    unconfirmed: 0,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_and_stream_lines() {
        let dir = std::env::temp_dir().join(format!("spamtap-unix-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let dgram_path = dir.join("d.sock");
        let server = UnixDatagram::bind(&dgram_path).unwrap();
        let mut d = DgramTarget::new(dgram_path);
        d.connect().unwrap();
        assert_eq!(d.deliver(b"{\"a\":1}\n{\"b\":2}\n", 2).lines, 2);
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"{\"a\":1}");

        let stream_path = dir.join("s.sock");
        let listener = std::os::unix::net::UnixListener::bind(&stream_path).unwrap();
        let mut s = StreamTarget::new(stream_path.clone());
        s.connect().unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        assert_eq!(s.deliver(b"x\ny\n", count_lines(b"x\ny\n")).lines, 2);
        drop(s);
        let mut got = String::new();
        io::Read::read_to_string(&mut peer, &mut got).unwrap();
        assert_eq!(got, "x\ny\n");
        // Nobody listening any more: the connect fails, naming the socket.
        drop(listener);
        std::fs::remove_file(&stream_path).unwrap();
        let e = StreamTarget::new(stream_path).connect().unwrap_err();
        assert!(e.to_string().contains("s.sock"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
