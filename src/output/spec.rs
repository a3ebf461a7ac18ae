//! What `-o/--output` and the config file's `output` list name: a destination and its options.
//!
//! ```text
//! FILE[?types=alert,smtp&rotate-size=100M&rotate-interval=1h]   append to FILE
//! -                                                            standard output
//! syslog:[PATH]                  local syslog socket (default /dev/log)
//! syslog://HOST[:PORT]?proto=udp|tcp&facility=local5&format=rfc5424|rfc3164
//! unix-dgram:PATH  unix-stream:PATH
//! redis://[USER[:PASSWORD]@]HOST[:PORT][/KEY]?type=list|channel|stream&maxlen=N&db=N
//! redis+unix:///SOCKET?key=KEY&type=...
//! ```
//!
//! Every kind takes `types=` (event types to carry; all when absent). Parsing is pure: nothing
//! is opened here.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

/// Every event type spamtap writes, for checking `types=`.
pub const EVENT_TYPES: &[&str] = &[
    "flow",
    "smtp",
    "tls",
    "socks",
    "software",
    "alert",
    "asset_summary",
    "stats",
];

/// One output: where its events go and which ones.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputSpec {
    pub destination: Destination,
    /// Event types carried; every type when empty.
    pub types: Vec<String>,
    /// The spec as written, with any password hidden: how stats and messages name it.
    pub name: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Destination {
    Stdout,
    File { path: PathBuf, rotation: Rotation },
    Syslog(SyslogSpec),
    UnixDgram(PathBuf),
    UnixStream(PathBuf),
    Redis(RedisSpec),
}

/// Built-in rotation of a file output; logrotate with SIGHUP is the other way.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rotation {
    /// Rotate once the file holds this many bytes.
    pub max_bytes: Option<u64>,
    /// Rotate when packet time crosses a multiple of this many seconds.
    pub interval_secs: Option<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SyslogSpec {
    pub transport: SyslogTransport,
    /// RFC 5424 facility number (local5 = 21).
    pub facility: u8,
    pub format: SyslogFormat,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SyslogTransport {
    /// A local datagram socket, `/dev/log` by default.
    Local(PathBuf),
    Udp {
        host: String,
        port: u16,
    },
    /// Octet-counting framing (RFC 6587).
    Tcp {
        host: String,
        port: u16,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SyslogFormat {
    /// `<PRI>1 TIMESTAMP HOST APP PROCID MSGID - MSG`
    Rfc5424,
    /// `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG`, what syslog(3) writes to `/dev/log`.
    Rfc3164,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RedisSpec {
    pub server: RedisServer,
    pub key: String,
    pub kind: RedisKind,
    pub db: i64,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Streams only: `XADD ... MAXLEN ~ maxlen`.
    pub maxlen: u64,
    /// Streams only: the entry's field holding the line (`event`; `entry` for `--publish`).
    pub field: &'static str,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RedisServer {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RedisKind {
    /// RPUSH
    List,
    /// PUBLISH
    Channel,
    /// XADD, one entry per event with the line in field `event`.
    Stream,
}

/// Facility local5, as Suricata's syslog output defaults to.
const DEFAULT_FACILITY: u8 = 21;
const DEFAULT_REDIS_KEY: &str = "spamtap";
const DEFAULT_STREAM_MAXLEN: u64 = 1_000_000;

/// Environment variables a Redis password or user may come from instead of the URL.
pub const REDIS_PASSWORD_ENV: &str = "SPAMTAP_REDIS_PASSWORD";
pub const REDIS_USER_ENV: &str = "SPAMTAP_REDIS_USER";

/// `--publish URL`: a Redis stream of entries for `spamtap correlate`, not of events.
pub fn publish_spec(url: &str, env: impl Fn(&str) -> Option<String>) -> Result<OutputSpec, String> {
    let mut spec = OutputSpec::parse(url, env).map_err(|e| format!("--publish: {e}"))?;
    let Destination::Redis(redis) = &mut spec.destination else {
        return Err(format!(
            "--publish {url:?}: give a Redis stream, redis://HOST:PORT/STREAM or redis+unix:///SOCKET?key=STREAM"
        ));
    };
    if !spec.types.is_empty() {
        return Err(format!(
            "--publish {url:?}: types= is for outputs; see --publish-events"
        ));
    }
    redis.kind = RedisKind::Stream;
    redis.field = "entry";
    spec.name = format!("publish {}", spec.name);
    Ok(spec)
}

impl OutputSpec {
    /// Standard output, every event type: where events go when no output is named.
    pub fn stdout() -> Self {
        OutputSpec {
            destination: Destination::Stdout,
            types: Vec::new(),
            name: "standard output".to_string(),
        }
    }

    /// Parses one spec; `env` looks up environment variables (for the Redis credentials).
    pub fn parse(spec: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let fail = |why: String| format!("output {spec:?}: {why}");
        if spec.is_empty() {
            return Err("output \"\": empty; give a file, - or a URL".to_string());
        }
        if spec.starts_with("syslog://")
            || spec.starts_with("redis://")
            || spec.starts_with("redis+unix://")
        {
            let url = Url::parse(spec).map_err(|e| fail(e.to_string()))?;
            let mut options = Options::of(url.query().unwrap_or(""));
            let destination = match url.scheme() {
                "syslog" => Destination::Syslog(syslog_url(&url, &mut options)?),
                _ => Destination::Redis(redis_url(&url, &mut options, &env)?),
            };
            let types = options.types()?;
            options.finish("this output").map_err(fail)?;
            let mut shown = url.clone();
            if url.password().is_some() {
                let _ = shown.set_password(Some("***"));
            }
            return Ok(OutputSpec {
                destination,
                types,
                name: shown.to_string(),
            });
        }
        let (base, query) = spec.split_once('?').unwrap_or((spec, ""));
        let mut options = Options::of(query);
        let (destination, what) = if base == "-" {
            (Destination::Stdout, "standard output")
        } else if let Some(path) = base.strip_prefix("syslog:") {
            let format = options.syslog_format(SyslogFormat::Rfc3164)?;
            let facility = options.facility()?;
            let path = if path.is_empty() { "/dev/log" } else { path };
            (
                Destination::Syslog(SyslogSpec {
                    transport: SyslogTransport::Local(PathBuf::from(path)),
                    facility,
                    format,
                }),
                "a syslog output",
            )
        } else if let Some(path) = base.strip_prefix("unix-dgram:") {
            (
                Destination::UnixDgram(non_empty_path(path, spec)?),
                "a unix socket output",
            )
        } else if let Some(path) = base.strip_prefix("unix-stream:") {
            (
                Destination::UnixStream(non_empty_path(path, spec)?),
                "a unix socket output",
            )
        } else {
            let rotation = Rotation {
                max_bytes: options
                    .take("rotate-size")
                    .map(|v| parse_size(&v))
                    .transpose()
                    .map_err(fail)?,
                interval_secs: options
                    .take("rotate-interval")
                    .map(|v| parse_interval(&v))
                    .transpose()
                    .map_err(fail)?,
            };
            (
                Destination::File {
                    path: PathBuf::from(base),
                    rotation,
                },
                "a file output (a file name cannot hold '?')",
            )
        };
        let types = options.types().map_err(&fail)?;
        options.finish(what).map_err(fail)?;
        Ok(OutputSpec {
            destination,
            types,
            name: spec.to_string(),
        })
    }

    /// Whether events of `event_type` go to this output.
    pub fn carries(&self, event_type: &[u8]) -> bool {
        self.types.is_empty() || self.types.iter().any(|t| t.as_bytes() == event_type)
    }
}

fn non_empty_path(path: &str, spec: &str) -> Result<PathBuf, String> {
    if path.is_empty() {
        return Err(format!("output {spec:?}: the socket path is missing"));
    }
    Ok(PathBuf::from(path))
}

/// The URL's host, an IPv6 address without its brackets.
fn host_of(url: &Url) -> Result<String, String> {
    Ok(url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("output \"{url}\": no host"))?
        .trim_matches(['[', ']'])
        .to_string())
}

fn syslog_url(url: &Url, options: &mut Options) -> Result<SyslogSpec, String> {
    let host = host_of(url)?;
    let port = url.port().unwrap_or(514);
    let transport = match options.take("proto").as_deref() {
        None | Some("udp") => SyslogTransport::Udp { host, port },
        Some("tcp") => SyslogTransport::Tcp { host, port },
        Some(other) => return Err(format!("output \"{url}\": proto={other}: use udp or tcp")),
    };
    Ok(SyslogSpec {
        transport,
        facility: options.facility()?,
        format: options.syslog_format(SyslogFormat::Rfc5424)?,
    })
}

fn redis_url(
    url: &Url,
    options: &mut Options,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<RedisSpec, String> {
    let decode = |s: &str| {
        percent_decode(s)
            .ok_or_else(|| format!("output \"{url}\": bad percent-encoding in the URL"))
    };
    let (server, key) = if url.scheme() == "redis+unix" {
        if url.path().is_empty() || url.path() == "/" {
            return Err(format!("output \"{url}\": the socket path is missing"));
        }
        let key = options
            .take("key")
            .unwrap_or_else(|| DEFAULT_REDIS_KEY.to_string());
        (RedisServer::Unix(PathBuf::from(decode(url.path())?)), key)
    } else {
        let host = host_of(url)?;
        let key = decode(url.path().trim_start_matches('/'))?;
        let key = if key.is_empty() {
            DEFAULT_REDIS_KEY.to_string()
        } else {
            key
        };
        (
            RedisServer::Tcp {
                host,
                port: url.port().unwrap_or(6379),
            },
            key,
        )
    };
    let kind = match options.take("type").as_deref() {
        None | Some("list") => RedisKind::List,
        Some("channel") => RedisKind::Channel,
        Some("stream") => RedisKind::Stream,
        Some(other) => {
            return Err(format!(
                "output \"{url}\": type={other}: use list, channel or stream"
            ));
        }
    };
    let number = |name: &str, value: Option<String>| -> Result<Option<u64>, String> {
        value
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("output \"{url}\": {name}={v}: not a number"))
            })
            .transpose()
    };
    let db = number("db", options.take("db"))?.unwrap_or(0);
    let maxlen = number("maxlen", options.take("maxlen"))?.unwrap_or(DEFAULT_STREAM_MAXLEN);
    let username = match url.username() {
        "" => env(REDIS_USER_ENV),
        user => Some(decode(user)?),
    };
    let password = match url.password() {
        Some(p) => Some(decode(p)?),
        None => env(REDIS_PASSWORD_ENV),
    };
    Ok(RedisSpec {
        server,
        key,
        kind,
        db: i64::try_from(db).map_err(|_| format!("output \"{url}\": db={db}: too large"))?,
        username,
        password,
        maxlen,
        field: "event",
    })
}

fn percent_decode(s: &str) -> Option<String> {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

/// `key=value&...` after the `?`, taken one by one; whatever is left over is an error.
struct Options(Vec<(String, String)>);

impl Options {
    fn of(query: &str) -> Self {
        Options(
            url::form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn take(&mut self, key: &str) -> Option<String> {
        let at = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(at).1)
    }

    fn types(&mut self) -> Result<Vec<String>, String> {
        let Some(list) = self.take("types") else {
            return Ok(Vec::new());
        };
        let mut types = Vec::new();
        for t in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if !EVENT_TYPES.contains(&t) {
                return Err(format!(
                    "types={list}: unknown event type {t:?}; the types are {}",
                    EVENT_TYPES.join(", ")
                ));
            }
            types.push(t.to_string());
        }
        Ok(types)
    }

    fn facility(&mut self) -> Result<u8, String> {
        let Some(name) = self.take("facility") else {
            return Ok(DEFAULT_FACILITY);
        };
        const NAMES: &[&str] = &[
            "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
            "authpriv", "ftp",
        ];
        if let Some(n) = NAMES.iter().position(|n| *n == name) {
            return Ok(n as u8);
        }
        match name
            .strip_prefix("local")
            .and_then(|n| n.parse::<u8>().ok())
        {
            Some(n) if n <= 7 => Ok(16 + n),
            _ => Err(format!(
                "facility={name}: use local0..local7 or one of {}",
                NAMES.join(", ")
            )),
        }
    }

    fn syslog_format(&mut self, default: SyslogFormat) -> Result<SyslogFormat, String> {
        match self.take("format").as_deref() {
            None => Ok(default),
            Some("rfc5424") => Ok(SyslogFormat::Rfc5424),
            Some("rfc3164") => Ok(SyslogFormat::Rfc3164),
            Some(other) => Err(format!("format={other}: use rfc5424 or rfc3164")),
        }
    }

    fn finish(self, what: &str) -> Result<(), String> {
        match self.0.first() {
            None => Ok(()),
            Some((key, _)) => Err(format!("{what} has no option {key:?}")),
        }
    }
}

/// `100M`, `2G`, `512K`, `4096`: bytes, with binary multiples.
fn parse_size(value: &str) -> Result<u64, String> {
    let (digits, unit) = value
        .find(|c: char| !c.is_ascii_digit())
        .map_or((value, ""), |at| value.split_at(at));
    let scale: u64 = match unit
        .trim_end_matches(['i', 'B'])
        .to_ascii_uppercase()
        .as_str()
    {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return Err(format!("rotate-size={value}: use a number with K, M or G")),
    };
    match digits.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n.saturating_mul(scale)),
        _ => Err(format!("rotate-size={value}: use a number with K, M or G")),
    }
}

/// `1h`, `15min`, `1day`: at least a second.
fn parse_interval(value: &str) -> Result<u64, String> {
    match humantime::parse_duration(value) {
        Ok(d) if d >= Duration::from_secs(1) => Ok(d.as_secs()),
        _ => Err(format!(
            "rotate-interval={value}: use a duration such as 1h or 15min"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(spec: &str) -> Result<OutputSpec, String> {
        OutputSpec::parse(spec, |_| None)
    }

    #[test]
    fn files_and_stdout() {
        assert_eq!(parse("-").unwrap().destination, Destination::Stdout);
        let s = parse("/var/log/eve.json?types=alert,smtp&rotate-size=100M&rotate-interval=1h")
            .unwrap();
        assert_eq!(
            s.destination,
            Destination::File {
                path: PathBuf::from("/var/log/eve.json"),
                rotation: Rotation {
                    max_bytes: Some(100 << 20),
                    interval_secs: Some(3600),
                },
            }
        );
        assert_eq!(s.types, ["alert", "smtp"]);
        assert!(s.carries(b"alert") && !s.carries(b"flow"));
        assert!(parse("eve.json").unwrap().carries(b"flow"));
    }

    #[test]
    fn syslog_local_and_network() {
        let local = parse("syslog:").unwrap();
        assert_eq!(
            local.destination,
            Destination::Syslog(SyslogSpec {
                transport: SyslogTransport::Local(PathBuf::from("/dev/log")),
                facility: 21,
                format: SyslogFormat::Rfc3164,
            })
        );
        let net = parse("syslog://127.0.0.1:5514?proto=tcp&facility=mail&types=alert").unwrap();
        assert_eq!(
            net.destination,
            Destination::Syslog(SyslogSpec {
                transport: SyslogTransport::Tcp {
                    host: "127.0.0.1".into(),
                    port: 5514
                },
                facility: 2,
                format: SyslogFormat::Rfc5424,
            })
        );
        assert_eq!(net.types, ["alert"]);
        let v6 = parse("syslog://[::1]?facility=local0").unwrap();
        assert!(matches!(
            v6.destination,
            Destination::Syslog(SyslogSpec { transport: SyslogTransport::Udp { ref host, port: 514 }, facility: 16, .. }) if host == "::1"
        ));
    }

    #[test]
    fn redis_urls() {
        let s = OutputSpec::parse(
            "redis://ingest:p%40ss@10.0.0.9:6380/eve?type=stream&maxlen=5000",
            |_| None,
        )
        .unwrap();
        let Destination::Redis(r) = &s.destination else {
            panic!("{s:?}")
        };
        assert_eq!(
            r.server,
            RedisServer::Tcp {
                host: "10.0.0.9".into(),
                port: 6380
            }
        );
        assert_eq!(
            (r.key.as_str(), r.kind, r.maxlen),
            ("eve", RedisKind::Stream, 5000)
        );
        assert_eq!(r.username.as_deref(), Some("ingest"));
        assert_eq!(r.password.as_deref(), Some("p@ss"));
        assert!(
            !s.name.contains("p%40ss") && s.name.contains("***"),
            "{}",
            s.name
        );

        let env = |k: &str| (k == REDIS_PASSWORD_ENV).then(|| "secret".to_string());
        let u = OutputSpec::parse("redis+unix:///run/redis.sock?key=k&type=channel", env).unwrap();
        let Destination::Redis(r) = &u.destination else {
            panic!("{u:?}")
        };
        assert_eq!(
            r.server,
            RedisServer::Unix(PathBuf::from("/run/redis.sock"))
        );
        assert_eq!((r.key.as_str(), r.kind), ("k", RedisKind::Channel));
        assert_eq!(r.password.as_deref(), Some("secret"));
        let d = parse("redis://localhost").unwrap();
        let Destination::Redis(r) = &d.destination else {
            panic!()
        };
        assert_eq!((r.key.as_str(), r.kind), ("spamtap", RedisKind::List));
    }

    #[test]
    fn mistakes_are_named() {
        for (spec, says) in [
            ("eve.json?types=alrt", "unknown event type \"alrt\""),
            ("eve.json?rotate=1h", "no option \"rotate\""),
            ("eve.json?rotate-size=big", "rotate-size=big"),
            ("eve.json?rotate-interval=0s", "rotate-interval=0s"),
            ("syslog://h?proto=sctp", "use udp or tcp"),
            ("syslog:?facility=local9", "local0..local7"),
            ("redis://h/k?type=set", "list, channel or stream"),
            ("redis://h/k?maxlen=x", "not a number"),
            ("unix-dgram:", "socket path is missing"),
            ("", "empty"),
        ] {
            let e = parse(spec).unwrap_err();
            assert!(e.contains(says), "{spec}: {e}");
        }
    }
}
