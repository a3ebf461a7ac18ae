//! `spamtap report`: the pictures an analyst looks at, from spamtap's events, in one HTML file.
//!
//! Reads NDJSON (files in any order, gzip-compressed or not, or standard input) in one
//! streaming pass ([`aggregate`]), then writes a self-contained page ([`html`]). Lines that are
//! not events this version can read are skipped and counted on the page, never fatal.

pub mod aggregate;
mod html;

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use self::aggregate::Aggregate;

/// Longest line read; a longer one is skipped (counted as not JSON).
const MAX_LINE: usize = 16 << 20;

#[derive(Debug)]
pub enum ReportError {
    Input { name: String, error: io::Error },
    Output { path: PathBuf, error: io::Error },
}

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportError::Input { name, error } => write!(f, "cannot read {name}: {error}"),
            ReportError::Output { path, error } => {
                write!(f, "cannot write the report to {}: {error}", path.display())
            }
        }
    }
}

/// Reads every input (standard input when none), writes the report to `out`; `assets` tells
/// which recipients are outside.
pub fn report(
    inputs: &[PathBuf],
    out: &Path,
    assets: Option<crate::rules::Assets>,
    progress: bool,
) -> Result<Aggregate, ReportError> {
    let mut agg = Aggregate {
        assets,
        ..Aggregate::default()
    };
    let total: u64 = inputs
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    let bar = (progress && io::stderr().is_terminal() && total > 0).then(|| {
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {elapsed}")
        {
            bar.set_style(style);
        }
        bar
    });
    if inputs.is_empty() {
        read(&mut agg, Box::new(io::stdin().lock()), "standard input")?;
    }
    for path in inputs {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|error| ReportError::Input {
            name: name.clone(),
            error,
        })?;
        let file: Box<dyn Read> = match &bar {
            Some(bar) => Box::new(bar.wrap_read(file)),
            None => Box::new(file),
        };
        read(&mut agg, file, &name)?;
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let page = html::render(&agg);
    let written = File::create(out).and_then(|mut f| f.write_all(page.as_bytes()));
    written.map_err(|error| ReportError::Output {
        path: out.to_path_buf(),
        error,
    })?;
    Ok(agg)
}

/// One input, gzip or not (by its first two bytes), line by line.
fn read(agg: &mut Aggregate, input: Box<dyn Read + '_>, name: &str) -> Result<(), ReportError> {
    let fail = |error| ReportError::Input {
        name: name.to_string(),
        error,
    };
    let mut buffered = BufReader::with_capacity(1 << 20, input);
    let head = buffered.fill_buf().map_err(fail)?;
    let lines: Box<dyn BufRead> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::read::MultiGzDecoder::new(buffered),
        ))
    } else {
        Box::new(buffered)
    };
    read_lines(agg, lines).map_err(fail)
}

fn read_lines(agg: &mut Aggregate, mut input: Box<dyn BufRead + '_>) -> io::Result<()> {
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        if line.len() > MAX_LINE {
            agg.skipped.not_json += 1;
            agg.lines += 1;
            // The rest of the long line.
            let mut rest = Vec::new();
            while !rest.ends_with(b"\n") {
                rest.clear();
                if (&mut input)
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut rest)?
                    == 0
                {
                    return Ok(());
                }
            }
            continue;
        }
        let complete = line.ends_with(b"\n");
        agg.line(&line, complete);
    }
}
