//! The command line: `spamtap replay` and `spamtap live`.

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
        sudo spamtap live -i eth1 --bpf 'tcp' -o /var/log/spamtap/eve.json\n\n\
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
        /// Interface to capture on (a SPAN port or tap).
        #[arg(short = 'i', long = "interface", value_name = "IFACE")]
        iface: String,
        /// Bytes kept of each packet.
        #[arg(long, default_value_t = 262_144, value_parser = clap::value_parser!(i32).range(64..))]
        snaplen: i32,
        /// Kernel capture buffer, in MiB.
        #[arg(long = "buffer-size", value_name = "MIB", default_value_t = 64, value_parser = clap::value_parser!(i32).range(1..=2047))]
        buffer_mib: i32,
        /// Also record every captured packet to this pcap file; replaying it gives the same
        /// events.
        #[arg(long = "write-pcap", value_name = "FILE")]
        write_pcap: Option<PathBuf>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Work with rules directories.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
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

#[derive(Args, Debug)]
pub struct CommonArgs {
    /// Write events to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Only analyse packets matching this BPF filter (tcpdump syntax).
    #[arg(long, value_name = "EXPR")]
    pub bpf: Option<String>,
    /// Worker threads [default: number of cores - 1, at least 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,
    /// Rules directory replacing the built-in rules: DIR/assets.toml (asset groups). Check it
    /// with `spamtap rules check DIR`.
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Sensor name in every event [default: host name].
    #[arg(long, value_name = "NAME")]
    pub sensor: Option<String>,
    /// Seconds of packet time between stats events (0: only at the end).
    #[arg(long = "stats-interval", value_name = "SECONDS", default_value_t = 60)]
    pub stats_interval: u64,
    /// Most flows tracked at once; the oldest is evicted (and reported) beyond it.
    #[arg(long = "max-flows", value_name = "N", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_flows: u64,
}
