//! The `spamtap` binary: parse the command line and the config file, set up signals, run, and
//! say on stderr what the run did.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use clap::Parser;
use crossbeam_channel::{Sender, unbounded};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR2};

use spamtap::capture::LiveOptions;
use spamtap::cli::{
    Cli, Command, CommonArgs, ConfigCommand, CorrelateArgs, LiveArgs, RulesCommand,
};
use spamtap::config::Config;
use spamtap::output::{Destination, OutputSpec, OutputSummary, publish_spec};
use spamtap::rules::Rules;
use spamtap::runtime::{
    Control, CorrelateConfig, Input, PublishConfig, RunConfig, RunSummary, correlate, run,
};
use spamtap::tracker::{DEFAULT_MEMCAP_MIB, TrackerConfig};

/// jemalloc rather than glibc's malloc. The workers allocate what the output thread frees (event
/// buffers, the detections' observations), which glibc's malloc hands back only through its
/// slow paths: on the mail workload, live at 200 Mbit/s, the allocator took a quarter of the
/// worker's samples with glibc and 7% with jemalloc, and the replay's cpu fell by 15%
/// (`benches/run.sh`). `memory::allocation` models jemalloc's size classes.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read when it starts (a C string): one arena for all threads, and freed
/// pages back to the system within a second rather than ten. With its defaults the peak passed
/// `--memcap` (`benches/floods.sh`, `--memcap 256`: 263 MiB on the SYN flood, 264 MiB on the
/// sessions stuck in DATA); with these, 230 and 239 MiB, and the mail workload's cpu is the
/// same. The decay runs on the wall clock, and no event depends on it.
#[unsafe(export_name = "_rjem_malloc_conf")]
static ALLOCATOR_OPTIONS: &u8 = &b"narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0\0"[0];

/// `eprintln!` that never panics, for a stderr that may be closed.
macro_rules! note {
    ($($arg:tt)*) => {
        spamtap::text::say(format_args!($($arg)*))
    };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match start(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            note!("spamtap: {message}");
            ExitCode::FAILURE
        }
    }
}

fn start(cli: Cli) -> Result<(), String> {
    let (input, live, common) = match cli.command {
        Command::Rules {
            command: RulesCommand::Check { dir },
        } => return check_rules(dir.as_deref()),
        Command::Config {
            command: ConfigCommand::Check { file },
        } => return check_config(&file),
        Command::Correlate(args) => return start_correlate(args),
        Command::Report {
            inputs,
            output,
            rules,
            quiet,
        } => {
            let assets = match &rules {
                Some(dir) => Some(load_rules(Some(dir))?.assets),
                None => None,
            };
            let agg = spamtap::report::report(&inputs, &output, assets, !quiet)
                .map_err(|e| e.to_string())?;
            if !quiet {
                let s = &agg.skipped;
                note!(
                    "spamtap: report {}: {} events from {} line(s); skipped {} not JSON, {} not events, {} of unknown types, {} cut short",
                    output.display(),
                    agg.events,
                    agg.lines,
                    s.not_json,
                    s.not_an_event,
                    s.unknown_type,
                    s.truncated
                );
            }
            return Ok(());
        }
        Command::Replay { pcaps, common } => (Some(pcaps), LiveArgs::default(), common),
        Command::Live { live, common } => (None, live, common),
    };
    let config = match &common.config {
        Some(path) => Config::load(path, env).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    let replay = input.is_some();
    let quiet = common.quiet;
    let rules_dir = common.rules.clone().or_else(|| config.rules.clone());
    let run_config = run_config(input, live, common, config)?;

    let summary = run(run_config, control(rules_dir)?).map_err(|e| e.to_string())?;
    if !quiet {
        print_summary(&summary);
    }
    let dropped: Vec<String> = summary
        .outputs
        .iter()
        .filter(|o| o.dropped > 0)
        .map(|o| format!("{} lost {} of {} events", o.name, o.dropped, o.events))
        .collect();
    if replay && !dropped.is_empty() {
        return Err(format!(
            "events were lost: {} (stats.output has the counts)",
            dropped.join("; ")
        ));
    }
    Ok(())
}

/// SIGHUP reopens the outputs; SIGUSR2 reloads the rules directory, on this thread, so the
/// capture never waits for a rules file to parse.
fn watch_signals(
    reopen: Arc<AtomicU64>,
    reloads: Sender<Result<Arc<Rules>, String>>,
    rules_dir: Option<PathBuf>,
) -> Result<(), String> {
    let mut signals = signal_hook::iterator::Signals::new([SIGHUP, SIGUSR2])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    std::thread::Builder::new()
        .name("spamtap-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if signal == SIGHUP {
                    reopen.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let Some(dir) = &rules_dir else {
                    note!(
                        "spamtap: SIGUSR2: the built-in rules are in use (no --rules DIR); nothing to reload"
                    );
                    continue;
                };
                let loaded = Rules::load(Some(dir)).map(Arc::new).map_err(|e| e.to_string());
                match &loaded {
                    Ok(_) => note!("spamtap: SIGUSR2: rules reloaded from {}", dir.display()),
                    Err(why) => note!("spamtap: SIGUSR2: rules not reloaded, the old ones stay: {why}"),
                }
                let _ = reloads.send(loaded);
            }
        })
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    Ok(())
}

/// `spamtap correlate`.
fn start_correlate(args: CorrelateArgs) -> Result<(), String> {
    let from = OutputSpec::parse(&args.from, env).map_err(|e| format!("--from: {e}"))?;
    let Destination::Redis(from) = from.destination else {
        return Err(format!(
            "--from {:?}: give a Redis stream, redis://HOST:PORT/STREAM",
            args.from
        ));
    };
    let host = || gethostname::gethostname().to_string_lossy().into_owned();
    let outputs = parse_outputs(&args.output)?;
    let config = CorrelateConfig {
        from,
        group: args.group,
        consumer: args.consumer.unwrap_or_else(host),
        sensors: args.sensors,
        shard: args.shard,
        lateness_secs: args.lateness,
        sensor: args.sensor.unwrap_or_else(host),
        outputs,
        rules: Arc::new(load_rules(args.rules.as_deref())?),
    };
    let control = control(args.rules)?;
    let summary = correlate(config, control).map_err(|e| e.to_string())?;
    if !args.quiet {
        let fleet = summary.stats.fleet.clone().unwrap_or_default();
        let events: u64 = summary.stats.events.values().sum();
        note!(
            "spamtap: correlate: {} entries from {} sensor(s), {} duplicate(s), {} invalid, {} late observation(s); {events} events, in {:.1} s",
            fleet.entries,
            fleet.sensors,
            fleet.duplicates,
            fleet.invalid,
            fleet.late_observations,
            summary.elapsed.as_secs_f64()
        );
        print_outputs(&summary.outputs);
    }
    Ok(())
}

/// Signal handling for a run: SIGINT/SIGTERM stop, SIGHUP reopens, SIGUSR2 reloads `rules_dir`.
fn control(rules_dir: Option<PathBuf>) -> Result<Control, String> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // A second signal while draining exits at once.
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&stop)))
            .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    }
    let reopen = Arc::new(AtomicU64::new(0));
    let (reload_tx, reloads) = unbounded();
    watch_signals(Arc::clone(&reopen), reload_tx, rules_dir)?;
    Ok(Control {
        stop,
        reopen,
        reloads,
    })
}

/// Per output, at the end: what it wrote and dropped.
fn print_outputs(outputs: &[OutputSummary]) {
    for o in outputs {
        let unconfirmed = if o.unconfirmed > 0 {
            format!(
                ", {} unconfirmed (sent as the connection broke: the destination may have them)",
                o.unconfirmed
            )
        } else {
            String::new()
        };
        note!(
            "spamtap: output {}: {} events written, {} dropped{unconfirmed}",
            o.name,
            o.written,
            o.dropped
        );
    }
}

fn print_summary(summary: &RunSummary) {
    let s = &summary.stats;
    let events: u64 = s.events.values().sum();
    let by_type: Vec<String> = s.events.iter().map(|(t, n)| format!("{t} {n}")).collect();
    let alerts = s.events.get("alert").copied().unwrap_or(0);
    let packet_drops = s.capture.kernel_drops + s.capture.queue_drops;
    note!(
        "spamtap: {} packets, {} flows, {events} events ({}), {alerts} alerts, {packet_drops} packets dropped, in {:.1} s",
        s.capture.packets,
        s.flow.total,
        by_type.join(", "),
        summary.elapsed.as_secs_f64()
    );
    print_outputs(&summary.outputs);
}

/// `-o` specs as given on the command line.
fn parse_outputs(specs: &[String]) -> Result<Vec<OutputSpec>, String> {
    specs
        .iter()
        .map(|spec| OutputSpec::parse(spec, env))
        .collect()
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
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

/// `spamtap config check FILE`: the config file as a run loads it, and the rules it names.
fn check_config(file: &Path) -> Result<(), String> {
    let config = Config::load(file, env).map_err(|e| e.to_string())?;
    let rules = load_rules(config.rules.as_deref())?;
    let outputs: Vec<&str> = config.outputs.iter().map(|o| o.name.as_str()).collect();
    println!(
        "{}: {} output(s){}{}; rules: {} ({} fingerprint rule(s)): OK",
        file.display(),
        outputs.len(),
        if outputs.is_empty() {
            " (standard output)".to_string()
        } else {
            format!(" ({})", outputs.join(", "))
        },
        config
            .interface
            .as_deref()
            .map(|i| format!("; live on {i}"))
            .unwrap_or_default(),
        config
            .rules
            .as_deref()
            .map_or("built-in".to_string(), |d| d.display().to_string()),
        rules.fingerprints.len(),
    );
    Ok(())
}

/// The rules, with a note on stderr for each file a rules directory lacks: `--rules`
/// replaces the built-in directory, it does not add to it.
fn load_rules(dir: Option<&Path>) -> Result<Rules, String> {
    let rules = Rules::load(dir).map_err(|e| e.to_string())?;
    if let Some(dir) = dir {
        for name in &rules.missing {
            note!(
                "spamtap: note: {} has no {name}; copy the built-in rules/{name} there to keep its rules and defaults",
                dir.display()
            );
        }
    }
    Ok(rules)
}

/// Flags first, then the config file, then the defaults.
fn run_config(
    pcaps: Option<Vec<PathBuf>>,
    live: LiveArgs,
    common: CommonArgs,
    config: Config,
) -> Result<RunConfig, String> {
    let input = match pcaps {
        Some(pcaps) => Input::Files(pcaps),
        None => Input::Live(LiveOptions {
            iface: live.iface.or(config.interface).ok_or(
                "live: no interface; give -i IFACE or `interface` under [live] in the config file",
            )?,
            snaplen: live.snaplen.or(config.snaplen).unwrap_or(262_144),
            buffer_bytes: live.buffer_mib.or(config.buffer_mib).unwrap_or(64) * 1024 * 1024,
            promiscuous: true,
            write_pcap: live.write_pcap.or(config.write_pcap),
        }),
    };
    let rules = Arc::new(load_rules(
        common.rules.as_deref().or(config.rules.as_deref()),
    )?);
    let workers = match common.workers.or(config.workers) {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism()
            .map(|n| n.get().saturating_sub(1))
            .unwrap_or(1)
            .max(1),
    };
    let sensor = common
        .sensor
        .or(config.sensor)
        .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned());
    let outputs = if common.output.is_empty() {
        config.outputs
    } else {
        parse_outputs(&common.output)?
    };
    let publish = match common.publish.as_deref() {
        Some(url) => Some(publish_spec(url, env)?),
        None => config.publish,
    };
    let publish = publish.map(|spec| PublishConfig {
        spec,
        events: common.publish_events || config.publish_events.unwrap_or(false),
        run: run_id(&input),
        shards: usize::from(common.publish_shards.or(config.publish_shards).unwrap_or(1)),
    });
    let to_stdout = outputs.is_empty()
        || outputs
            .iter()
            .any(|o| matches!(o.destination, Destination::Stdout));
    Ok(RunConfig {
        input,
        bpf: common.bpf.or(config.bpf),
        workers,
        sensor,
        stats_interval: common
            .stats_interval
            .or(config.stats_interval)
            .unwrap_or(60),
        outputs,
        tracker: TrackerConfig {
            max_flows: usize::try_from(common.max_flows.or(config.max_flows).unwrap_or(1_000_000))
                .unwrap_or(usize::MAX),
            memcap: common
                .memcap
                .or(config.memcap_mib)
                .map_or(DEFAULT_MEMCAP_MIB, |mib| mib as usize)
                << 20,
            ..TrackerConfig::default()
        },
        rules,
        user: live.user.or(config.user),
        // A bar would mix with events written to the same terminal.
        progress: !(common.quiet || to_stdout && std::io::stdout().is_terminal()),
        publish,
        local_alerts: !common.no_local_alerts && config.local_alerts.unwrap_or(true),
    })
}

/// What names a run in what it publishes: for a replay, its files (names and sizes), so the
/// same replay started again is recognised and nothing is counted twice; for live capture,
/// the wall-clock start, so every start is a new run.
fn run_id(input: &Input) -> String {
    use std::hash::{Hash, Hasher};
    match input {
        Input::Files(paths) => {
            let mut h = std::hash::DefaultHasher::new();
            for p in paths {
                p.file_name().hash(&mut h);
                std::fs::metadata(p).map(|m| m.len()).ok().hash(&mut h);
            }
            format!("replay-{:016x}", h.finish())
        }
        Input::Live(opts) => {
            let start = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros());
            format!("live-{}-{start}", opts.iface)
        }
    }
}
