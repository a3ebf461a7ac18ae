//! The `spamtap` binary: parse the command line, set up signals, run.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Parser;

use std::path::Path;

use spamtap::capture::LiveOptions;
use spamtap::cli::{Cli, Command, CommonArgs, RulesCommand};
use spamtap::rules::Rules;
use spamtap::runtime::{Input, RunConfig, run};
use spamtap::tracker::TrackerConfig;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match start(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("spamtap: {message}");
            ExitCode::FAILURE
        }
    }
}

fn start(cli: Cli) -> Result<(), String> {
    let (input, common) = match cli.command {
        Command::Rules {
            command: RulesCommand::Check { dir },
        } => return check_rules(dir.as_deref()),
        Command::Replay { pcaps, common } => (Input::Files(pcaps), common),
        Command::Live {
            iface,
            snaplen,
            buffer_mib,
            write_pcap,
            common,
        } => (
            Input::Live(LiveOptions {
                iface,
                snaplen,
                buffer_bytes: buffer_mib * 1024 * 1024,
                promiscuous: true,
                write_pcap,
            }),
            common,
        ),
    };
    let config = run_config(input, common)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while draining exits at once.
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&stop)))
            .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    }
    run(config, stop).map_err(|e| e.to_string())
}

/// `spamtap rules check [DIR]`: the same loading as at start-up, with a summary.
fn check_rules(dir: Option<&Path>) -> Result<(), String> {
    let rules = load_rules(dir)?;
    let assets = &rules.assets;
    let networks: usize = assets.groups.iter().map(|g| g.networks.len()).sum();
    let source = dir.map_or("built-in rules".to_string(), |d| d.display().to_string());
    println!(
        "{source}: {} asset group(s) with {networks} network(s), {} relay(s), {} internal domain(s); {} blocklist(s) with {} entries; {} fingerprint rule(s); reply lengths of {} mail server(s): OK",
        assets.groups.len(),
        assets.relays.len(),
        assets.internal_domains.len(),
        rules.blocklists.list_names().len(),
        rules.blocklists.len(),
        rules.fingerprints.len(),
        rules.replies.servers.len(),
    );
    Ok(())
}

/// The rules, with a note on stderr for each file a rules directory lacks: `--rules`
/// replaces the built-in directory, it does not add to it.
fn load_rules(dir: Option<&Path>) -> Result<Rules, String> {
    let rules = Rules::load(dir).map_err(|e| e.to_string())?;
    if let Some(dir) = dir {
        for name in &rules.missing {
            eprintln!(
                "spamtap: note: {} has no {name}; copy the built-in rules/{name} there to keep its rules and defaults",
                dir.display()
            );
        }
    }
    Ok(rules)
}

fn run_config(input: Input, common: CommonArgs) -> Result<RunConfig, String> {
    let rules = Arc::new(load_rules(common.rules.as_deref())?);
    let workers = match common.workers {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism()
            .map(|n| n.get().saturating_sub(1))
            .unwrap_or(1)
            .max(1),
    };
    let sensor = common
        .sensor
        .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned());
    Ok(RunConfig {
        input,
        bpf: common.bpf,
        workers,
        sensor,
        stats_interval: common.stats_interval,
        output: common.output,
        tracker: TrackerConfig {
            max_flows: usize::try_from(common.max_flows).unwrap_or(usize::MAX),
            ..TrackerConfig::default()
        },
        rules,
    })
}
