//! Redis destinations: a list (RPUSH), a pub/sub channel (PUBLISH) or a stream (XADD with an
//! approximate MAXLEN, one entry per event with the line in field `event`). Every write is one
//! pipeline; each reply is read, so what the server took is counted exactly.

use std::io;
use std::time::Duration;

use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, Value};

use super::lane::{Delivered, Target};
use super::spec::{RedisKind, RedisServer, RedisSpec};

const TIMEOUT: Duration = Duration::from_secs(5);
/// Events per RPUSH.
const LIST_BATCH: usize = 500;

pub(super) struct RedisTarget {
    spec: RedisSpec,
    connection: Option<redis::Connection>,
    packed: Vec<u8>,
}

impl RedisTarget {
    pub fn new(spec: RedisSpec) -> Self {
        RedisTarget {
            spec,
            connection: None,
            packed: Vec::new(),
        }
    }
}

impl RedisSpec {
    /// How the `redis` crate reaches this server: address, database, user and password. The
    /// output and `spamtap correlate` both connect with it.
    pub fn connection_info(&self) -> redis::RedisResult<redis::ConnectionInfo> {
        let addr = match &self.server {
            RedisServer::Tcp { host, port } => ConnectionAddr::Tcp(host.clone(), *port),
            RedisServer::Unix(path) => ConnectionAddr::Unix(path.clone()),
        };
        let mut settings = RedisConnectionInfo::default().set_db(self.db);
        if let Some(user) = &self.username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &self.password {
            settings = settings.set_password(password);
        }
        Ok(addr.into_connection_info()?.set_redis_settings(settings))
    }
}

fn io_error(e: redis::RedisError) -> io::Error {
    io::Error::other(e.to_string())
}

impl Target for RedisTarget {
    fn connect(&mut self) -> io::Result<()> {
        self.connection = None;
        let client = redis::Client::open(self.spec.connection_info().map_err(io_error)?)
            .map_err(io_error)?;
        let connection = client
            .get_connection_with_timeout(TIMEOUT)
            .map_err(io_error)?;
        connection
            .set_write_timeout(Some(TIMEOUT))
            .and_then(|()| connection.set_read_timeout(Some(TIMEOUT)))
            .map_err(io_error)?;
        self.connection = Some(connection);
        Ok(())
    }

    fn deliver(&mut self, lines: &[u8], _count: u64) -> Delivered {
        let Some(connection) = self.connection.as_mut() else {
            return Delivered::not_connected();
        };
        let events: Vec<&[u8]> = lines
            .split_inclusive(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\n").unwrap_or(l))
            .collect();
        // Lines each command carries, in order.
        let mut carried = Vec::new();
        self.packed.clear();
        let key = self.spec.key.as_str();
        match self.spec.kind {
            RedisKind::List => {
                for batch in events.chunks(LIST_BATCH) {
                    let mut cmd = redis::cmd("RPUSH");
                    cmd.arg(key);
                    for event in batch {
                        cmd.arg(*event);
                    }
                    cmd.write_packed_command(&mut self.packed);
                    carried.push(batch.len() as u64);
                }
            }
            RedisKind::Channel => {
                for event in &events {
                    redis::cmd("PUBLISH")
                        .arg(key)
                        .arg(*event)
                        .write_packed_command(&mut self.packed);
                    carried.push(1);
                }
            }
            RedisKind::Stream => {
                for event in &events {
                    redis::cmd("XADD")
                        .arg(key)
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(self.spec.maxlen)
                        .arg("*")
                        .arg(self.spec.field)
                        .arg(*event)
                        .write_packed_command(&mut self.packed);
                    carried.push(1);
                }
            }
        }
        if let Err(e) = connection.send_packed_command(&self.packed) {
            self.connection = None;
            return Delivered {
                lines: 0,
                failure: Some(io_error(e)),
                refused: None,
                // How much of the pipeline went out is not known.
                unconfirmed: carried.iter().sum(),
            };
        }
        let mut delivered = 0;
        let mut refused = None;
        let sent: u64 = carried.iter().sum();
        let mut answered = 0;
        for lines in carried {
            match connection.recv_response() {
                Ok(Value::ServerError(e)) if transient(e.code()) => {
                    // A server still loading its data, or busy: what it refused may be sent
                    // again once it is ready, so this is a failure, not a refusal.
                    self.connection = None;
                    return Delivered {
                        lines: delivered,
                        failure: Some(io::Error::other(e.to_string())),
                        refused: None,
                        unconfirmed: 0,
                    };
                }
                Ok(Value::ServerError(e)) => refused = Some(e.to_string()),
                Ok(_) => delivered += lines,
                Err(e) => {
                    // Sent, but no word back: the server may have taken them.
                    self.connection = None;
                    return Delivered {
                        lines: delivered,
                        failure: Some(io_error(e)),
                        refused: None,
                        unconfirmed: sent - answered,
                    };
                }
            }
            answered += lines;
        }
        Delivered {
            lines: delivered,
            failure: None,
            // The server refused some (a key of another type, no permission, out of memory).
            refused,
            unconfirmed: 0,
        }
    }
}

/// Server error codes that pass: a server loading its data after a restart, busy with a
/// script, a cluster or replica not ready.
fn transient(code: &str) -> bool {
    ["LOADING", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN"].contains(&code)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_loading_server_is_a_failure_not_a_refusal() {
        assert!(super::transient("LOADING"));
        assert!(!super::transient("NOPERM"));
        assert!(!super::transient("WRONGTYPE"));
    }
}
