//! What a replay shows on a terminal: a bar on stderr over the bytes of the capture files, with
//! packets per second and events so far. Nothing at all when stderr is not a terminal.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
    /// Where each file starts in the total.
    starts: Vec<u64>,
    input: usize,
    /// Bytes of the current file read, estimated from record sizes.
    in_file: u64,
    packets: u64,
    events: Arc<AtomicU64>,
}

/// Packets between redraws.
const EVERY: u64 = 4096;
/// A classic pcap record header; pcapng's are larger, so its bar runs a little behind and
/// catches up at the end of each file.
const RECORD_HEADER: u64 = 16;

impl Progress {
    /// A bar when stderr is a terminal; `events` is the count of events written so far.
    pub fn new(paths: &[PathBuf], events: Arc<AtomicU64>) -> Option<Self> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let mut starts = Vec::with_capacity(paths.len());
        let mut total = 0;
        for path in paths {
            starts.push(total);
            total += std::fs::metadata(path).map_or(0, |m| m.len());
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {elapsed} {msg}")
        {
            bar.set_style(style);
        }
        Some(Progress {
            bar,
            starts,
            input: 0,
            in_file: 24,
            packets: 0,
            events,
        })
    }

    pub fn packet(&mut self, input: usize, captured: usize) {
        if input != self.input {
            self.input = input;
            self.in_file = 24;
        }
        self.in_file += RECORD_HEADER + captured as u64;
        self.packets += 1;
        if self.packets.is_multiple_of(EVERY) {
            let start = self.starts.get(self.input).copied().unwrap_or(0);
            let end = self
                .starts
                .get(self.input + 1)
                .copied()
                .or(self.bar.length())
                .unwrap_or(0);
            self.bar.set_position((start + self.in_file).min(end));
            let secs = self.bar.elapsed().as_secs_f64().max(0.001);
            self.bar.set_message(format!(
                "{:.0} packets/s, {} events",
                self.packets as f64 / secs,
                self.events.load(Ordering::Relaxed)
            ));
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
