//! File and standard-output destinations. A file is appended to, reopened under its name on
//! SIGHUP (logrotate's `postrotate`), and optionally rotated by size or by packet-time interval:
//! the current file is renamed `NAME.YYYYMMDDTHHMMSS` and a new one opened. A write that fails
//! halfway (a full disk) is cut back to its last whole line, so the file never holds half an
//! event and the lines after it can follow once there is room again.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::lane::{Delivered, Target, count_lines, write_counting};
use super::spec::Rotation;
use crate::timestamp::Timestamp;

pub(super) struct StdoutTarget;

impl Target for StdoutTarget {
    fn connect(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn deliver(&mut self, lines: &[u8], count: u64) -> Delivered {
        let mut out = io::stdout().lock();
        match write_counting(&mut out, lines) {
            Ok(()) => Delivered::all(count),
            Err((done, error)) => Delivered {
                lines: count_lines(&lines[..done]),
                failure: Some(error),
                refused: None,
                unconfirmed: 0,
            },
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stdout().flush()
    }
}

pub(super) struct FileTarget {
    path: PathBuf,
    rotation: Rotation,
    file: Option<File>,
    /// Bytes in the open file.
    size: u64,
    /// Latest packet time seen, for names of rotated files.
    now: Timestamp,
    /// The interval the open file's events belong to, when rotating by interval.
    period: Option<u64>,
}

impl FileTarget {
    pub fn new(path: PathBuf, rotation: Rotation) -> Self {
        FileTarget {
            path,
            rotation,
            file: None,
            size: 0,
            now: Timestamp::default(),
            period: None,
        }
    }

    /// Renames the file after `stamp` and opens a new one.
    fn rotate(&mut self, stamp: Timestamp) -> io::Result<()> {
        if self.size == 0 {
            return Ok(());
        }
        self.file = None;
        std::fs::rename(&self.path, rotated_name(&self.path, stamp))?;
        self.connect()
    }
}

impl Target for FileTarget {
    fn connect(&mut self) -> io::Result<()> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = file.metadata()?.len();
        self.file = Some(file);
        Ok(())
    }

    fn deliver(&mut self, lines: &[u8], count: u64) -> Delivered {
        let Some(file) = self.file.as_mut() else {
            return Delivered::not_connected();
        };
        if let Err((done, error)) = write_counting(file, lines) {
            // Keep the whole lines that made it; cut the half one.
            let whole = memchr::memrchr(b'\n', &lines[..done]).map_or(0, |at| at + 1);
            let kept = self.size + whole as u64;
            let cut = file.set_len(kept);
            self.size = kept;
            return Delivered {
                lines: if cut.is_ok() {
                    count_lines(&lines[..whole])
                } else {
                    0
                },
                failure: Some(error),
                refused: None,
                unconfirmed: 0,
            };
        }
        self.size += lines.len() as u64;
        let delivered = Delivered::all(count);
        if self.rotation.max_bytes.is_some_and(|max| self.size >= max)
            && let Err(error) = self.rotate(self.now)
        {
            return Delivered {
                failure: Some(error),
                ..delivered
            };
        }
        delivered
    }

    fn reopen(&mut self) -> io::Result<()> {
        self.file = None;
        self.connect()
    }

    fn tick(&mut self, now: Timestamp) -> io::Result<()> {
        self.now = now;
        let Some(interval) = self.rotation.interval_secs else {
            return Ok(());
        };
        let period = now.secs() / interval;
        match self.period.replace(period) {
            Some(previous) if previous != period => {
                self.rotate(Timestamp::from_secs(previous * interval))
            }
            _ => Ok(()),
        }
    }
}

/// `eve.json` -> `eve.json.20260101T000000`, or `....1`, `....2` when that is taken.
fn rotated_name(path: &Path, stamp: Timestamp) -> PathBuf {
    let text = stamp.to_string();
    // `2026-01-01T00:00:00.000000+0000` -> `20260101T000000`
    let compact: String = text
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(&compact);
    let base = PathBuf::from(name);
    if !base.exists() {
        return base;
    }
    (1u32..)
        .map(|n| {
            let mut name = base.as_os_str().to_owned();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        })
        .find(|p| !p.exists())
        .unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("spamtap-file-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn appends_and_reopens_after_a_move() {
        let d = dir("reopen");
        let path = d.join("eve.json");
        std::fs::write(&path, "old\n").unwrap();
        let mut t = FileTarget::new(path.clone(), Rotation::default());
        t.connect().unwrap();
        assert_eq!(t.deliver(b"a\nb\n", count_lines(b"a\nb\n")).lines, 2);
        std::fs::rename(&path, d.join("eve.json.1")).unwrap();
        assert_eq!(t.deliver(b"c\n", count_lines(b"c\n")).lines, 1); // still the moved file
        t.reopen().unwrap();
        assert_eq!(t.deliver(b"d\n", count_lines(b"d\n")).lines, 1);
        assert_eq!(
            std::fs::read(d.join("eve.json.1")).unwrap(),
            b"old\na\nb\nc\n"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"d\n");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn rotates_by_interval_of_packet_time_and_by_size() {
        let d = dir("rotate");
        let path = d.join("eve.json");
        let mut t = FileTarget::new(
            path.clone(),
            Rotation {
                max_bytes: None,
                interval_secs: Some(3600),
            },
        );
        t.connect().unwrap();
        let hour = |h: u64| Timestamp::from_secs(1_767_225_600 + h * 3600); // 2026-01-01
        t.tick(hour(0)).unwrap();
        t.deliver(b"first hour\n", count_lines(b"first hour\n"));
        t.tick(hour(0).saturating_add_secs(10)).unwrap();
        t.tick(hour(1)).unwrap();
        t.deliver(b"second hour\n", count_lines(b"second hour\n"));
        assert_eq!(
            std::fs::read(d.join("eve.json.20260101T000000")).unwrap(),
            b"first hour\n"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"second hour\n");

        let sized = d.join("sized.json");
        let mut s = FileTarget::new(
            sized.clone(),
            Rotation {
                max_bytes: Some(4),
                interval_secs: None,
            },
        );
        s.connect().unwrap();
        s.tick(hour(0)).unwrap();
        s.deliver(b"ab\n", count_lines(b"ab\n"));
        s.deliver(b"cd\n", count_lines(b"cd\n")); // 6 bytes: rotated
        s.deliver(b"ef\n", count_lines(b"ef\n")); // 3 bytes
        s.deliver(b"gh\n", count_lines(b"gh\n")); // rotated again, to a name with a counter
        assert_eq!(
            std::fs::read(d.join("sized.json.20260101T000000")).unwrap(),
            b"ab\ncd\n"
        );
        assert_eq!(
            std::fs::read(d.join("sized.json.20260101T000000.1")).unwrap(),
            b"ef\ngh\n"
        );
        assert_eq!(std::fs::read(&sized).unwrap(), b"");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_full_disk_is_a_failure_that_delivers_nothing() {
        // /dev/full fails every write with ENOSPC.
        let mut t = FileTarget::new(PathBuf::from("/dev/full"), Rotation::default());
        t.connect().unwrap();
        let d = t.deliver(b"one\ntwo\n", count_lines(b"one\ntwo\n"));
        assert_eq!(d.lines, 0);
        assert_eq!(
            d.failure.map(|e| e.raw_os_error()),
            Some(Some(libc::ENOSPC))
        );
    }
}
