//! `spamtap-gen`: writes the deterministic test captures of `pcaps/`, or benchmark traffic.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use spamtap_gen::{
    Flood, Link, PcapWriter, bench_mix, flood, mail_mix, scenarios, starttls_mix, write_pcap,
    write_seeds,
};

#[derive(Parser)]
#[command(
    name = "spamtap-gen",
    about = "Writes spamtap's generated test captures",
    after_help = "Examples:\n  spamtap-gen scenarios pcaps/\n  spamtap-gen bench --size-mb 500 /tmp/bench.pcap"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Mix {
    Bulk,
    Mail,
    /// The mail mix with every relay session encrypted after STARTTLS.
    Starttls,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum FloodKind {
    Syn,
    Short,
    StuckInData,
}

#[derive(Subcommand)]
enum Command {
    /// Write every named scenario as DIR/<name>.pcap.
    Scenarios {
        dir: PathBuf,
        /// Print the scenario names and what each shows, and write nothing.
        #[arg(long)]
        list: bool,
    },
    /// Write a flood: one connection from each of N source address and port pairs, to measure
    /// the flow table and the memory budget at their caps.
    Flood {
        #[arg(long, default_value_t = 1_000_000)]
        flows: u32,
        /// `syn`: unanswered SYNs; `short`: whole short SMTP sessions; `stuck-in-data`: SMTP
        /// sessions stuck in DATA, never closed.
        #[arg(long, value_enum, default_value_t = FloodKind::Syn)]
        kind: FloodKind,
        output: PathBuf,
    },
    /// Write the fuzz targets' seed inputs, made from the scenarios, as DIR/<target>/<name>.
    FuzzSeeds { dir: PathBuf },
    /// Write benchmark traffic of about the given size.
    Bench {
        #[arg(long = "size-mb", default_value_t = 500)]
        size_mb: u64,
        /// `bulk`: few large flows (mail and transfers); `mail`: a mail relay's SPAN port, many
        /// short SMTP sessions, SOCKS tunnels and TLS-like bulk flows.
        #[arg(long, value_enum, default_value_t = Mix::Bulk)]
        mix: Mix,
        output: PathBuf,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Scenarios { dir, list } => {
            let mut result = Ok(());
            for s in scenarios() {
                if list {
                    println!("{:<16} {}", s.name, s.about);
                    continue;
                }
                let path = dir.join(format!("{}.pcap", s.name));
                if let Err(e) = write_pcap(&path, &s.link, &s.frames) {
                    result = Err(format!("{}: {e}", path.display()));
                    break;
                }
                println!(
                    "{} ({} frames): {}",
                    path.display(),
                    s.frames.len(),
                    s.about
                );
            }
            result
        }
        Command::FuzzSeeds { dir } => write_seeds(&dir, &scenarios())
            .map(|n| println!("{}: {n} seeds", dir.display()))
            .map_err(|e| format!("{}: {e}", dir.display())),
        Command::Flood {
            flows,
            kind,
            output,
        } => PcapWriter::create(&output, &Link::ethernet())
            .map_err(|e| format!("{}: {e}", output.display()))
            .and_then(|mut writer| {
                let (kind, what) = match kind {
                    FloodKind::Syn => (Flood::Syn, "SYNs"),
                    FloodKind::Short => (Flood::Short, "short SMTP sessions"),
                    FloodKind::StuckInData => (Flood::StuckInData, "SMTP sessions stuck in DATA"),
                };
                flood(&mut writer, kind, flows);
                writer
                    .finish()
                    .map_err(|e| format!("{}: {e}", output.display()))?;
                println!("{}: {flows} {what}", output.display());
                Ok(())
            }),
        Command::Bench {
            size_mb,
            mix,
            output,
        } => PcapWriter::create(&output, &Link::ethernet())
            .map_err(|e| format!("{}: {e}", output.display()))
            .and_then(|mut writer| {
                let bytes = size_mb * 1024 * 1024;
                let summary = match mix {
                    Mix::Bulk => bench_mix(&mut writer, bytes),
                    Mix::Mail => mail_mix(&mut writer, bytes),
                    Mix::Starttls => starttls_mix(&mut writer, bytes),
                };
                writer
                    .finish()
                    .map_err(|e| format!("{}: {e}", output.display()))?;
                println!(
                    "{}: {} frames, {} bytes, {} TCP sessions",
                    output.display(),
                    summary.frames,
                    summary.bytes,
                    summary.sessions
                );
                Ok(())
            }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spamtap-gen: {e}");
            ExitCode::FAILURE
        }
    }
}
