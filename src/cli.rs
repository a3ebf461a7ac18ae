//! The command line: `spamtap replay`, `spamtap live`, `spamtap rules check` and
//! `spamtap config check`. Every run option can also come from `--config FILE`; a flag given
//! here wins over the file.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "spamtap",
    version,
    about = "Passive sensor: finds spam senders, mass-mail clients and SOCKS proxies from packets",
    long_about = "Passive sensor: finds spam senders, mass-mail clients and SOCKS proxies from \
                  packets.\n\nReads a capture file or a live interface, reassembles TCP, and \
                  writes one JSON event per line (Suricata EVE field names) for a SIEM.",
    after_help = "Examples:\n  \
        spamtap replay pcaps/tcp-basic.pcap\n  \
        spamtap replay -o events.json day1.pcap day2.pcapng\n  \
        sudo spamtap live -i eth1 --bpf 'tcp' -o /var/log/spamtap/eve.json -o 'syslog:?types=alert'\n  \
        spamtap live --config /etc/spamtap/spamtap.toml\n\n\
        Event types and fields: docs/events.md"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Replay pcap or pcapng files, in the order given, and exit.
    #[command(after_help = "Examples:\n  \
        spamtap replay pcaps/tcp-basic.pcap\n  \
        spamtap replay --workers 2 --bpf 'port 25' -o events.json a.pcap b.pcapng")]
    Replay {
        /// Capture files (pcap or pcapng).
        #[arg(required = true, value_name = "PCAP")]
        pcaps: Vec<PathBuf>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Capture live from an interface until SIGINT or SIGTERM, then report every open flow.
    #[command(after_help = "Examples:\n  \
        sudo spamtap live -i eth1\n  \
        sudo spamtap live -i eth1 --snaplen 2048 --buffer-size 256 --bpf 'tcp' -o eve.json\n\n\
        Needs root, or once: sudo setcap cap_net_raw,cap_net_admin+eip $(command -v spamtap)")]
    Live {
        #[command(flatten)]
        live: LiveArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Work with rules directories.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Run the site-wide detections on what many sensors publish (--publish) to a Redis
    /// stream: merged by packet time, analysed as one sensor on all the traffic would.
    #[command(after_help = "Examples:\n  \
        spamtap correlate --from redis://127.0.0.1:6379/spamtap --group site -o alerts.json\n  \
        spamtap correlate --from redis://10.0.0.5/spamtap --group site --sensors dc1,dc2,branch")]
    Correlate(CorrelateArgs),
    /// Draw the analyst's pictures from spamtap's events into one self-contained HTML file:
    /// SMTP clients over time, clients per asset group, port-25 connections, top senders and
    /// their messages, the software inventory, alerts, and the run.
    #[command(after_help = "Examples:\n  \
        spamtap report -o report.html /var/log/spamtap/eve.json /var/log/spamtap/eve.json.1.gz\n  \
        spamtap replay day.pcap | spamtap report -o day.html")]
    Report {
        /// Event files (NDJSON, gzip or not, in any order) [default: standard input].
        #[arg(value_name = "EVENTS")]
        inputs: Vec<PathBuf>,
        /// The report.
        #[arg(
            short = 'o',
            long = "output",
            value_name = "FILE",
            default_value = "report.html"
        )]
        output: PathBuf,
        /// The rules directory the sensors ran with: its internal domains tell the outside
        /// recipients apart.
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
        /// No progress bar and no summary.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Work with config files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate a config file: every key, every output and the rules directory it names;
    /// each error names the file, line and column.
    #[command(after_help = "Examples:\n  spamtap config check /etc/spamtap/spamtap.toml")]
    Check {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// `I/N` with I < N.
fn parse_shard(text: &str) -> Result<(usize, usize), String> {
    let (i, n) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?}: write I/N, e.g. 0/4"))?;
    let (i, n): (usize, usize) = (
        i.parse()
            .map_err(|_| format!("{text:?}: I is not a number"))?,
        n.parse()
            .map_err(|_| format!("{text:?}: N is not a number"))?,
    );
    if n == 0 || i >= n {
        return Err(format!("{text:?}: I must be below N"));
    }
    Ok((i, n))
}

#[derive(Args, Debug)]
pub struct CorrelateArgs {
    /// The stream the sensors publish to: redis://[USER:PASSWORD@]HOST:PORT/STREAM or
    /// redis+unix:///SOCKET?key=STREAM. It and the group are created if missing.
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// Consumer group: one per correlator; a correlator started again under the same group
    /// goes on where it was.
    #[arg(long, value_name = "NAME")]
    pub group: String,
    /// This correlator reads shard I of N (sensors with --publish-shards N; --from names
    /// STREAM:I): servers seen through clients of every shard are counted by their own only.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// Consumer name within the group [default: host name].
    #[arg(long, value_name = "NAME")]
    pub consumer: Option<String>,
    /// Sensors to wait for before packet time advances, comma-separated; the run ends when
    /// all of them have said goodbye. Without it, runs until SIGTERM.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub sensors: Vec<String>,
    /// A sensor more than this many seconds of packet time behind the fastest running one
    /// stops holding time back; what it sends for times already passed is counted as late
    /// [default: 60 for live sensors, none for replays, which race and are waited for].
    #[arg(long, value_name = "SECONDS")]
    pub lateness: Option<u64>,
    /// Where events go, repeatable [default: standard output]; as for replay and live.
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    pub output: Vec<String>,
    /// Rules directory replacing the built-in rules; SIGUSR2 reloads it.
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Name in the correlator's own events [default: host name].
    #[arg(long, value_name = "NAME")]
    pub sensor: Option<String>,
    /// No summary on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Options of `spamtap live` only [defaults: snaplen 262144, buffer-size 64].
#[derive(Args, Debug, Default)]
pub struct LiveArgs {
    /// Interface to capture on (a SPAN port or tap).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub iface: Option<String>,
    /// Bytes kept of each packet [default: 262144].
    #[arg(long, value_parser = clap::value_parser!(i32).range(64..))]
    pub snaplen: Option<i32>,
    /// Kernel capture buffer, in MiB [default: 64].
    #[arg(long = "buffer-size", value_name = "MIB", value_parser = clap::value_parser!(i32).range(1..=2047))]
    pub buffer_mib: Option<i32>,
    /// Also record every captured packet to this pcap file; replaying it gives the same
    /// events.
    #[arg(long = "write-pcap", value_name = "FILE")]
    pub write_pcap: Option<PathBuf>,
    /// Become this user once the interface is open (needs root); a sensor that is not root
    /// afterwards also gives up every capability.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// Validate a rules directory (default: the built-in rules) and say what it defines;
    /// each error names the file, line and column.
    #[command(
        after_help = "Examples:\n  spamtap rules check\n  spamtap rules check /etc/spamtap/rules"
    )]
    Check {
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Args, Debug, Default)]
pub struct CommonArgs {
    /// Where events go, repeatable [default: standard output]: FILE, -, syslog:,
    /// syslog://HOST:PORT, unix-dgram:PATH, unix-stream:PATH, redis://HOST:PORT/KEY; each may
    /// end in ?types=alert,smtp (see the README's Outputs).
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    pub output: Vec<String>,
    /// Read options and outputs from this TOML file; flags given here win over it. Check it
    /// with `spamtap config check FILE`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Only analyse packets matching this BPF filter (tcpdump syntax).
    #[arg(long, value_name = "EXPR")]
    pub bpf: Option<String>,
    /// Worker threads [default: number of cores - 1, at least 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,
    /// Rules directory replacing the built-in rules (assets.toml, detections.toml, ...).
    /// Check it with `spamtap rules check DIR`; SIGUSR2 reloads it.
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Sensor name in every event [default: host name].
    #[arg(long, value_name = "NAME")]
    pub sensor: Option<String>,
    /// Seconds of packet time between stats events, 0 for only at the end [default: 60].
    #[arg(long = "stats-interval", value_name = "SECONDS")]
    pub stats_interval: Option<u64>,
    /// Most flows tracked at once; the oldest is evicted (and reported) beyond it
    /// [default: 1000000].
    #[arg(long = "max-flows", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_flows: Option<u64>,
    /// Memory budget in MiB for flow state, streams, parsers and out-of-order buffers, shared
    /// by the workers. Past 80% of it flows time out sooner (emergency mode); past all of it
    /// the flows due first are evicted [default: 1024].
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u32).range(i64::from(crate::tracker::MIN_MEMCAP_MIB)..=i64::from(crate::tracker::MAX_MEMCAP_MIB)))]
    pub memcap: Option<u32>,
    /// No progress bar and no summary on stderr; errors and warnings still go there.
    #[arg(short, long)]
    pub quiet: bool,
    /// Publish what the analysis takes to this Redis stream for `spamtap correlate`:
    /// redis://[USER:PASSWORD@]HOST:PORT/STREAM or redis+unix:///SOCKET?key=STREAM.
    #[arg(long, value_name = "URL")]
    pub publish: Option<String>,
    /// With --publish: spread the observations over N streams, STREAM:0 ... STREAM:N-1, by
    /// client address, for N correlators (one per stream) to share the load.
    #[arg(long = "publish-shards", value_name = "N", requires = "publish", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub publish_shards: Option<u16>,
    /// With --publish: also publish every event.
    #[arg(long = "publish-events", requires = "publish")]
    pub publish_events: bool,
    /// No alerts from this sensor: the correlator raises them (with --publish).
    #[arg(long = "no-local-alerts")]
    pub no_local_alerts: bool,
}
