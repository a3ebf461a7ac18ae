//! Where the NDJSON lines go: a file or standard output. The output thread hands a sink whole
//! lines; a sink is opened before capture starts, so a destination that cannot be opened is
//! an error before any packet is read. A new kind of destination is a new variant here.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// A destination for event lines, buffered.
pub struct Sink {
    out: BufWriter<Box<dyn Write + Send>>,
    target: String,
}

/// Bytes buffered before a write reaches the destination.
const BUFFER: usize = 1 << 20;

impl Sink {
    /// The file at `path` (created, or truncated), or standard output; on failure, the name of
    /// the destination and why.
    pub fn open(path: Option<&Path>) -> Result<Self, (String, io::Error)> {
        let (out, target): (Box<dyn Write + Send>, String) = match path {
            Some(path) => {
                let target = path.display().to_string();
                match File::create(path) {
                    Ok(file) => (Box::new(file), target),
                    Err(error) => return Err((target, error)),
                }
            }
            None => (Box::new(io::stdout()), "standard output".to_string()),
        };
        Ok(Sink {
            out: BufWriter::with_capacity(BUFFER, out),
            target,
        })
    }

    /// The destination's name, for errors.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Whole event lines.
    pub fn write_lines(&mut self, lines: &[u8]) -> io::Result<()> {
        self.out.write_all(lines)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
