//! The config file (`--config FILE`, TOML): every option of the command line and the outputs,
//! under the same names. `spamtap config check FILE` loads it exactly as a run does. Relative
//! paths in it are taken from the working directory, as on the command line.
//!
//! ```toml
//! sensor = "tap-1"
//! workers = 2
//! rules = "/etc/spamtap/rules"
//! stats-interval = 60
//! max-flows = 1000000
//! memcap = 1024
//! bpf = "tcp"
//! output = ["/var/log/spamtap/eve.json", "syslog:?types=alert"]
//! publish = "redis://spamtap-1:secret@redis.example.org:6379/spamtap"
//! publish-events = false
//! local-alerts = true
//!
//! [live]
//! interface = "eth1"
//! snaplen = 262144
//! buffer-size = 64
//! write-pcap = "/var/lib/spamtap/capture.pcap"
//! user = "spamtap"
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::output::{OutputSpec, publish_spec};
use crate::rules::{RuleError, RuleFile};
use crate::tracker::{MAX_MEMCAP_MIB, MIN_MEMCAP_MIB};

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ConfigFile {
    sensor: Option<String>,
    workers: Option<Spanned<u16>>,
    rules: Option<PathBuf>,
    stats_interval: Option<u64>,
    max_flows: Option<Spanned<u64>>,
    memcap: Option<Spanned<u32>>,
    bpf: Option<String>,
    #[serde(default)]
    output: Vec<Spanned<String>>,
    publish: Option<Spanned<String>>,
    publish_events: Option<bool>,
    publish_shards: Option<Spanned<u16>>,
    local_alerts: Option<bool>,
    #[serde(default)]
    live: LiveSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct LiveSection {
    interface: Option<String>,
    snaplen: Option<Spanned<i32>>,
    buffer_size: Option<Spanned<i32>>,
    write_pcap: Option<PathBuf>,
    user: Option<String>,
}

/// A config file, checked: every value in range, every output parsed.
#[derive(Debug, Default)]
pub struct Config {
    pub sensor: Option<String>,
    pub workers: Option<u16>,
    pub rules: Option<PathBuf>,
    pub stats_interval: Option<u64>,
    pub max_flows: Option<u64>,
    pub memcap_mib: Option<u32>,
    pub bpf: Option<String>,
    pub outputs: Vec<OutputSpec>,
    pub publish: Option<OutputSpec>,
    pub publish_events: Option<bool>,
    pub publish_shards: Option<u16>,
    pub local_alerts: Option<bool>,
    pub interface: Option<String>,
    pub snaplen: Option<i32>,
    pub buffer_mib: Option<i32>,
    pub write_pcap: Option<PathBuf>,
    pub user: Option<String>,
}

impl Config {
    /// Reads and checks `path`; `env` looks up environment variables (Redis credentials).
    pub fn load(path: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Self, RuleError> {
        let text = std::fs::read_to_string(path).map_err(|e| RuleError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(path, &text, env)
    }

    fn parse(
        path: &Path,
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, RuleError> {
        let file = RuleFile { path, text };
        let raw: ConfigFile = file.parse()?;
        let in_range = |value: Option<Spanned<i64>>, key: &str, min: i64, max: i64| match value {
            Some(v) if !(min..=max).contains(v.get_ref()) => Err(file.error(
                v.span(),
                format!("{key} = {}: must be from {min} to {max}", v.get_ref()),
            )),
            Some(v) => Ok(Some(v.into_inner())),
            None => Ok(None),
        };
        let widen = |v: &Option<Spanned<i32>>| {
            v.as_ref()
                .map(|v| Spanned::new(v.span(), i64::from(*v.get_ref())))
        };
        let workers = in_range(
            raw.workers
                .as_ref()
                .map(|v| Spanned::new(v.span(), i64::from(*v.get_ref()))),
            "workers",
            1,
            256,
        )?;
        let max_flows = match &raw.max_flows {
            Some(v) if *v.get_ref() == 0 => {
                return Err(file.error(v.span(), "max-flows = 0: must be at least 1"));
            }
            other => other.as_ref().map(|v| *v.get_ref()),
        };
        let memcap = in_range(
            raw.memcap
                .as_ref()
                .map(|v| Spanned::new(v.span(), i64::from(*v.get_ref()))),
            "memcap",
            MIN_MEMCAP_MIB.into(),
            MAX_MEMCAP_MIB.into(),
        )?;
        let snaplen = in_range(widen(&raw.live.snaplen), "snaplen", 64, i64::from(i32::MAX))?;
        let buffer = in_range(widen(&raw.live.buffer_size), "buffer-size", 1, 2047)?;
        let mut outputs = Vec::with_capacity(raw.output.len());
        for spec in &raw.output {
            outputs.push(
                OutputSpec::parse(spec.get_ref(), &env)
                    .map_err(|why| file.error(spec.span(), why))?,
            );
        }
        let publish = match &raw.publish {
            Some(url) => {
                Some(publish_spec(url.get_ref(), &env).map_err(|why| file.error(url.span(), why))?)
            }
            None => None,
        };
        let publish_shards = in_range(
            raw.publish_shards
                .as_ref()
                .map(|v| Spanned::new(v.span(), i64::from(*v.get_ref()))),
            "publish-shards",
            1,
            1024,
        )?;
        Ok(Config {
            publish,
            publish_shards: publish_shards.map(|v| v as u16),
            publish_events: raw.publish_events,
            local_alerts: raw.local_alerts,
            sensor: raw.sensor,
            workers: workers.map(|w| w as u16),
            rules: raw.rules,
            stats_interval: raw.stats_interval,
            max_flows,
            memcap_mib: memcap.map(|v| v as u32),
            bpf: raw.bpf,
            outputs,
            interface: raw.live.interface,
            snaplen: snaplen.map(|v| v as i32),
            buffer_mib: buffer.map(|v| v as i32),
            write_pcap: raw.live.write_pcap,
            user: raw.live.user,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("spamtap.toml"), text, |_| None).map_err(|e| e.to_string())
    }

    #[test]
    fn every_option() {
        let c = parse(
            r#"
sensor = "tap-1"
workers = 2
rules = "/etc/spamtap/rules"
stats-interval = 30
max-flows = 5000
memcap = 256
bpf = "tcp"
output = ["eve.json", "syslog:?types=alert"]

[live]
interface = "eth1"
snaplen = 2048
buffer-size = 128
write-pcap = "cap.pcap"
user = "spamtap"
"#,
        )
        .unwrap();
        assert_eq!(c.sensor.as_deref(), Some("tap-1"));
        assert_eq!(
            (c.workers, c.stats_interval, c.max_flows, c.memcap_mib),
            (Some(2), Some(30), Some(5000), Some(256))
        );
        assert_eq!(c.outputs.len(), 2);
        assert_eq!(c.outputs[1].types, ["alert"]);
        assert_eq!((c.snaplen, c.buffer_mib), (Some(2048), Some(128)));
        assert_eq!(c.user.as_deref(), Some("spamtap"));
        assert!(parse("").unwrap().outputs.is_empty());
        let p = parse(
            "publish = \"redis://10.0.0.5/site\"\npublish-events = true\nlocal-alerts = false\n",
        )
        .unwrap();
        assert_eq!(
            p.publish.map(|s| s.name),
            Some("publish redis://10.0.0.5/site".into())
        );
        assert_eq!(
            (p.publish_events, p.local_alerts),
            (Some(true), Some(false))
        );
    }

    #[test]
    fn errors_name_the_line() {
        for (text, says) in [
            (
                "workers = 0\n",
                "spamtap.toml:1:11: workers = 0: must be from 1 to 256",
            ),
            (
                "sensor = \"a\"\nworkerz = 2\n",
                "spamtap.toml:2:1: unknown field `workerz`",
            ),
            (
                "output = [\n  \"eve.json\",\n  \"redis://h/k?type=set\",\n]\n",
                "spamtap.toml:3:3: output \"redis://h/k?type=set\"",
            ),
            (
                "[live]\nbuffer-size = 4096\n",
                "spamtap.toml:2:15: buffer-size = 4096",
            ),
            ("max-flows = 0\n", "spamtap.toml:1:13: max-flows = 0"),
            (
                "memcap = 8\n",
                "spamtap.toml:1:10: memcap = 8: must be from 16 to 1048576",
            ),
            (
                "publish = \"eve.json\"\n",
                "spamtap.toml:1:11: --publish \"eve.json\": give a Redis stream",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with(says), "{text:?}: {e}");
        }
    }
}
