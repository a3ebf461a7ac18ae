//! Capture: packets from pcap/pcapng files or a live interface, through libpcap.
//!
//! This stage only reads: it hands each frame, with its packet time, link type and input index,
//! to a [`PacketHandler`]. Errors a user can cause (missing file, not a capture, bad BPF,
//! unknown interface, no permission) become a [`CaptureError`] that names the file or the fix.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::fd::IntoRawFd;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pcap::{Active, Capture, Offline};
use serde::Serialize;

use crate::timestamp::Timestamp;

/// The link layer of a capture's frames (the ones spamtap decodes), by their pcap
/// `LINKTYPE_*` number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    Ethernet,
    /// Linux "cooked" capture v1 (`any` interface): 16-byte header.
    LinuxSll,
    /// Linux "cooked" capture v2: 20-byte header.
    LinuxSll2,
    /// Raw IPv4 or IPv6, version taken from the first nibble.
    RawIp,
    /// BSD loopback, address family in host byte order (written by the capturing host).
    Null,
    /// OpenBSD loopback, address family in network byte order.
    Loop,
}

impl LinkType {
    pub fn from_linktype(linktype: i32) -> Option<Self> {
        Some(match linktype {
            1 => LinkType::Ethernet,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            // 12 and 14 are the historical DLT numbers some writers still use for raw IP.
            101 | 12 | 14 | 228 | 229 => LinkType::RawIp,
            0 => LinkType::Null,
            108 => LinkType::Loop,
            _ => return None,
        })
    }
}

/// Receives what the capture reads.
pub trait PacketHandler {
    /// One frame: `data` is what was captured, `wire_len` its length on the wire. Returns
    /// whether the frame was taken for analysis (`false`: dropped, and counted, for lack of a
    /// queue); only frames taken are recorded by `--write-pcap`.
    fn packet(
        &mut self,
        input: usize,
        link: LinkType,
        ts: Timestamp,
        data: &[u8],
        wire_len: u32,
    ) -> bool;
    /// A live read timed out with nothing to read; a chance to flush partial batches.
    fn idle(&mut self) {}
    /// A file ended early, in the middle of a record.
    fn truncated(&mut self, path: &Path, records: u64, message: &str);
    /// Counters kept by the kernel and libpcap (live only): refreshed every few thousand
    /// packets, when idle, and once at the end.
    fn kernel_stats(&mut self, _stats: KernelStats) {}
}

/// libpcap's `pcap_stats` for a live capture.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelStats {
    pub received: u64,
    pub dropped: u64,
    pub if_dropped: u64,
}

/// What the capture thread saw.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CaptureStats {
    pub packets: u64,
    pub bytes: u64,
    /// From libpcap (live only): packets the kernel received and dropped.
    pub kernel_packets: u64,
    pub kernel_drops: u64,
    pub kernel_ifdrops: u64,
    /// Packets dropped because every worker queue was full while the sensor was stopping (live
    /// only; otherwise the capture thread waits, and replay always does).
    pub queue_drops: u64,
    /// Files whose last record was cut short.
    pub truncated_files: u64,
}

/// Options for `spamtap live`.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    pub iface: String,
    pub snaplen: i32,
    pub buffer_bytes: i32,
    pub promiscuous: bool,
    /// Also write every captured packet here, with the timestamps the sensor used, so a
    /// replay of the file gives the same events.
    pub write_pcap: Option<PathBuf>,
}

#[derive(Debug)]
pub enum CaptureError {
    WritePcap {
        path: PathBuf,
        message: String,
    },
    OpenFile {
        path: PathBuf,
        message: String,
    },
    NotACapture {
        path: PathBuf,
        message: String,
    },
    Corrupt {
        path: PathBuf,
        record: u64,
        offset: Option<u64>,
        message: String,
    },
    UnsupportedLinkType {
        input: String,
        linktype: i32,
        name: String,
    },
    Filter {
        expr: String,
        message: String,
    },
    NoSuchInterface {
        iface: String,
        known: Vec<String>,
    },
    Permission {
        iface: String,
        message: String,
    },
    Live {
        iface: String,
        message: String,
    },
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::OpenFile { path, message } => {
                write!(f, "cannot open {}: {message}", path.display())
            }
            CaptureError::NotACapture { path, message } => write!(
                f,
                "{} is not a pcap or pcapng capture ({message})",
                path.display()
            ),
            CaptureError::Corrupt {
                path,
                record,
                offset,
                message,
            } => {
                write!(f, "{}: corrupt at record {record}", path.display())?;
                if let Some(offset) = offset {
                    write!(f, " (byte offset {offset})")?;
                }
                write!(f, ": {message}")
            }
            CaptureError::UnsupportedLinkType {
                input,
                linktype,
                name,
            } => write!(
                f,
                "{input}: link type {linktype} ({name}) is not supported; spamtap reads Ethernet, \
                 Linux SLL/SLL2, raw IP and BSD loopback"
            ),
            CaptureError::Filter { expr, message } => {
                write!(f, "invalid BPF filter {expr:?}: {message}")
            }
            CaptureError::NoSuchInterface { iface, known } => {
                write!(f, "no interface named {iface:?}")?;
                if !known.is_empty() {
                    write!(f, "; interfaces here: {}", known.join(", "))?;
                }
                Ok(())
            }
            CaptureError::Permission { iface, message } => write!(
                f,
                "no permission to capture on {iface:?} ({message}); run as root, or grant the \
                 binary the capability once: sudo setcap cap_net_raw,cap_net_admin+eip $(command -v spamtap)"
            ),
            CaptureError::Live { iface, message } => {
                write!(f, "cannot capture on {iface:?}: {message}")
            }
            CaptureError::WritePcap { path, message } => {
                write!(f, "cannot write packets to {}: {message}", path.display())
            }
        }
    }
}

impl std::error::Error for CaptureError {}

fn message(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(m) => m.clone(),
        other => other.to_string(),
    }
}

/// Opens every file once: a typo in the last of ten names should fail before a long replay.
pub fn check_files(paths: &[PathBuf], bpf: Option<&str>) -> Result<(), CaptureError> {
    for path in paths {
        open_file(path, bpf)?;
    }
    Ok(())
}

/// Reads each file in turn to its end, or until `stop` is set.
pub fn read_files(
    paths: &[PathBuf],
    bpf: Option<&str>,
    stop: &AtomicBool,
    handler: &mut impl PacketHandler,
) -> Result<(), CaptureError> {
    for (input, path) in paths.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let (mut file, link) = open_file(path, bpf)?;
        let cap = &mut file.cap;
        // Record offsets are only known for classic pcap (fixed 16-byte record headers).
        let mut offset = if is_classic_pcap(path) {
            Some(24u64)
        } else {
            None
        };
        let mut records = 0u64;
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            match cap.next_packet() {
                Ok(p) => {
                    records += 1;
                    let ts = Timestamp::from_timeval(p.header.ts.tv_sec, p.header.ts.tv_usec);
                    offset = offset.map(|o| o + 16 + u64::from(p.header.caplen));
                    handler.packet(input, link, ts, p.data, p.header.len);
                }
                Err(pcap::Error::NoMorePackets) => break,
                Err(e) => {
                    let m = message(&e);
                    if m.contains("truncated") {
                        handler.truncated(path, records, &m);
                        break;
                    }
                    return Err(CaptureError::Corrupt {
                        path: path.clone(),
                        record: records + 1,
                        offset,
                        message: m,
                    });
                }
            }
        }
    }
    Ok(())
}

fn is_classic_pcap(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map(|()| {
            matches!(
                u32::from_le_bytes(magic),
                0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1
            )
        })
        .unwrap_or(false)
}

/// A capture file open for reading through libpcap, with a read buffer of its own.
struct OfflineFile {
    /// Dropped first: libpcap closes the stream, which uses `_buffer`, when it closes.
    cap: Capture<Offline>,
    _buffer: Box<[u8]>,
}

/// What libpcap reads a file in. Its stdio stream would read 4 KiB at a time (the file system's
/// block size), a system call for every two or three packets of the mail workload; reading a
/// MiB at a time took 7% off that replay's cpu.
const FILE_READ_BYTES: usize = 1 << 20;

unsafe extern "C" {
    /// libpcap's reader of an already open stream (the pcap crate opens streams itself, so its
    /// buffer cannot be set).
    fn pcap_fopen_offline(file: *mut libc::FILE, errbuf: *mut libc::c_char) -> *mut libc::c_void;
    /// glibc's and musl's switch of a stream's lock (`<stdio_ext.h>`; not in the libc crate).
    #[cfg(target_os = "linux")]
    fn __fsetlocking(file: *mut libc::FILE, kind: libc::c_int) -> libc::c_int;
}

/// `FSETLOCKING_BYCALLER`: the stream takes no lock of its own. libpcap reads a file with two
/// `fread`s a packet, and in a process with threads each took and gave back the stream's
/// lock, two atomic instructions: 2% of the mail workload's replay cpu (median of 12 runs).
/// Only the thread that holds the capture reads the stream, so the lock guarded nothing.
#[cfg(target_os = "linux")]
const FSETLOCKING_BYCALLER: libc::c_int = 2;

fn open_file(path: &Path, bpf: Option<&str>) -> Result<(OfflineFile, LinkType), CaptureError> {
    // libpcap's messages for a missing or unreadable file are terse; ask the OS first.
    let file = File::open(path).map_err(|e| CaptureError::OpenFile {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if path.is_dir() {
        return Err(CaptureError::OpenFile {
            path: path.to_path_buf(),
            message: "is a directory".into(),
        });
    }
    let not_a_capture = |message: String| CaptureError::NotACapture {
        path: path.to_path_buf(),
        message,
    };
    let mut buffer = vec![0u8; FILE_READ_BYTES].into_boxed_slice();
    let mut errbuf = [0 as libc::c_char; 256];
    // SAFETY: the descriptor is ours (`into_raw_fd`) and becomes the stream's; the buffer lives
    // as long as the stream (see `OfflineFile`) and is set before the first read; libpcap takes
    // the stream and closes it with the capture. On failure the stream is closed here. The
    // stream needs no lock: a `Capture` is `Send` but not `Sync`, so one thread at a time uses it.
    let handle = unsafe {
        let fd = file.into_raw_fd();
        let stream = libc::fdopen(fd, c"r".as_ptr());
        if stream.is_null() {
            libc::close(fd);
            return Err(not_a_capture("cannot open a stream on it".into()));
        }
        libc::setvbuf(
            stream,
            buffer.as_mut_ptr().cast(),
            libc::_IOFBF,
            buffer.len(),
        );
        #[cfg(target_os = "linux")]
        __fsetlocking(stream, FSETLOCKING_BYCALLER);
        let handle = pcap_fopen_offline(stream, errbuf.as_mut_ptr());
        if handle.is_null() {
            libc::fclose(stream);
        }
        handle
    };
    let Some(handle) = NonNull::new(handle) else {
        // SAFETY: libpcap wrote a NUL-terminated message into the buffer.
        let text = unsafe { std::ffi::CStr::from_ptr(errbuf.as_ptr()) };
        return Err(not_a_capture(text.to_string_lossy().into_owned()));
    };
    let mut cap: Capture<Offline> = Capture::from(handle.cast());
    let link = link_type(&path.display().to_string(), cap.get_datalink())?;
    set_filter(&mut cap, bpf)?;
    Ok((
        OfflineFile {
            cap,
            _buffer: buffer,
        },
        link,
    ))
}

fn set_filter<T: pcap::Activated + ?Sized>(
    cap: &mut Capture<T>,
    bpf: Option<&str>,
) -> Result<(), CaptureError> {
    if let Some(expr) = bpf {
        cap.filter(expr, true).map_err(|e| CaptureError::Filter {
            expr: expr.to_string(),
            message: message(&e),
        })?;
    }
    Ok(())
}

fn link_type(input: &str, linktype: pcap::Linktype) -> Result<LinkType, CaptureError> {
    LinkType::from_linktype(linktype.0).ok_or_else(|| CaptureError::UnsupportedLinkType {
        input: input.to_string(),
        linktype: linktype.0,
        name: linktype.get_name().unwrap_or_else(|_| "unknown".into()),
    })
}

/// An open interface, and the `--write-pcap` file if any: everything that needs privilege is
/// open, so the sensor can drop it before reading a packet.
pub struct LiveCapture {
    cap: Capture<Active>,
    link: LinkType,
    record: Option<pcap::Savefile>,
}

/// Opens an interface for live capture, with errors that say what to do.
pub fn open_live(opts: &LiveOptions, bpf: Option<&str>) -> Result<LiveCapture, CaptureError> {
    let devices = pcap::Device::list().unwrap_or_default();
    if !devices.is_empty() && !devices.iter().any(|d| d.name == opts.iface) {
        return Err(CaptureError::NoSuchInterface {
            iface: opts.iface.clone(),
            known: devices.into_iter().map(|d| d.name).collect(),
        });
    }
    let inactive = Capture::from_device(opts.iface.as_str()).map_err(|e| CaptureError::Live {
        iface: opts.iface.clone(),
        message: message(&e),
    })?;
    let mut cap = inactive
        .promisc(opts.promiscuous)
        .snaplen(opts.snaplen)
        .buffer_size(opts.buffer_bytes)
        // Not immediate mode: the kernel hands packets over a block at a time (TPACKET_V3),
        // a block when it is full or, on a slow link, after this many milliseconds. Immediate
        // mode wakes the capture thread for every packet, which at a few hundred thousand
        // packets a second costs more than the analysis.
        .timeout(BLOCK_TIMEOUT_MS)
        .open()
        .map_err(|e| {
            let m = message(&e);
            let lower = m.to_lowercase();
            if lower.contains("permission") || lower.contains("not permitted") {
                CaptureError::Permission {
                    iface: opts.iface.clone(),
                    message: m,
                }
            } else if lower.contains("no such device") || lower.contains("doesn't exist") {
                CaptureError::NoSuchInterface {
                    iface: opts.iface.clone(),
                    known: Vec::new(),
                }
            } else {
                CaptureError::Live {
                    iface: opts.iface.clone(),
                    message: m,
                }
            }
        })?;
    let link = link_type(&opts.iface, cap.get_datalink())?;
    set_filter(&mut cap, bpf)?;
    // Non-blocking, with our own poll: libpcap's read timeout does not fire on an idle link
    // with TPACKET_V3, and a blocked read would never see the stop signal.
    let cap = cap.setnonblock().map_err(|e| CaptureError::Live {
        iface: opts.iface.clone(),
        message: message(&e),
    })?;
    let record = match &opts.write_pcap {
        Some(path) => Some(cap.savefile(path).map_err(|e| CaptureError::WritePcap {
            path: path.clone(),
            message: message(&e),
        })?),
        None => None,
    };
    Ok(LiveCapture { cap, link, record })
}

/// Longest a captured packet waits in a partly filled kernel block before it is handed over.
const BLOCK_TIMEOUT_MS: i32 = 50;

/// Longest a live capture waits on a quiet ring, in milliseconds, after its nap, before it
/// calls [`PacketHandler::idle`] again.
pub const IDLE_WAIT_MS: i32 = 50;

/// The rate the longest nap leaves room for: what comes during it at this rate fills half the
/// kernel's ring, so a burst that starts during a nap is held. 320 MiB/s (2.7 Gbit/s) is
/// about tcpreplay's top speed over a veth on the machine that measured it (2.5 to 3.3).
const NAP_HEADROOM_RATE: u64 = 320 << 20;

/// The longest nap whatever the ring: a stop waits for the nap to end.
const NAP_CEILING: Duration = Duration::from_millis(500);

/// Longest a live capture with a kernel buffer of `buffer_bytes` sleeps once it has emptied
/// the ring, before it waits for more: 100 ms with the default 64 MiB, 400 ms with 256 MiB,
/// at most [`NAP_CEILING`]. Without a nap a busy link woke the capture thread for each block
/// the kernel filled (about 120 times a second at 200 Mbit/s), and the workers and the output
/// after it. The same work in fewer, bigger bursts costs less cpu: on the VM that measured it
/// each burst cost some 0.5 to 1.3 ms more than the same work done in one go.
/// benches/live.sh, the mail workload, live / replay cpu at 200 Mbit/s: 2.0 without a nap,
/// 1.3 with 50 ms, 1.2 to 1.4 with 100 ms; with 256 MiB and 400 ms, 1.09 and 1.16 (100 Mbit/s:
/// 1.12 and 1.19, against 1.4 to 2.1 with 100 ms).
pub fn max_nap(buffer_bytes: i32) -> Duration {
    let half_ring = u64::try_from(buffer_bytes).unwrap_or(0) / 2;
    let nanos = half_ring.saturating_mul(1_000_000_000) / NAP_HEADROOM_RATE;
    Duration::from_nanos(nanos).min(NAP_CEILING)
}

/// A nap lasts at most as long as the ring takes to fill this share of itself at the rate
/// the last drain saw, so the rate may rise this many times over before a nap overflows it:
/// 1 Gbit/s gets 67 ms with the default 64 MiB, 10 Gbit/s 7 ms.
const RING_SHARE_PER_NAP: u64 = 8;

/// Naps shorter than this are not taken: the wait on the ring does as well.
const MIN_NAP: Duration = Duration::from_millis(1);

/// What a packet takes in the kernel's TPACKET_V3 ring besides its data (frame header, link
/// address, alignment), to reckon how much of the ring a drain emptied.
const RING_BYTES_PER_PACKET: u64 = 80;

/// Paces a live capture: counts what each drain of the kernel's ring took, and says how long
/// to nap once the ring is empty.
struct NapPacer {
    /// [`RING_SHARE_PER_NAP`] of the kernel buffer, in bytes.
    budget: u64,
    /// [`max_nap`] of the kernel buffer.
    longest: Duration,
    /// Ring bytes read since the last drain ended.
    drained: u64,
    /// When the last drain ended.
    since: Instant,
}

impl NapPacer {
    fn new(buffer_bytes: i32, now: Instant) -> Self {
        NapPacer {
            budget: u64::try_from(buffer_bytes).unwrap_or(0) / RING_SHARE_PER_NAP,
            longest: max_nap(buffer_bytes),
            drained: 0,
            since: now,
        }
    }

    fn packet(&mut self, caplen: u32) {
        self.drained += u64::from(caplen) + RING_BYTES_PER_PACKET;
    }

    /// The ring is empty at `now`: the nap to take, and a new drain counted from here.
    fn nap(&mut self, now: Instant) -> Duration {
        let took = now.saturating_duration_since(self.since);
        let nap = nap_length(self.drained, took, self.budget, self.longest);
        self.drained = 0;
        self.since = now;
        nap
    }
}

/// How long to nap after `drained` ring bytes came in `took`: as long as the ring takes at
/// that rate to fill `budget` bytes, within [`MIN_NAP`] and `longest`.
fn nap_length(drained: u64, took: Duration, budget: u64, longest: Duration) -> Duration {
    if drained == 0 {
        return longest;
    }
    let fill_nanos = took.as_nanos().saturating_mul(u128::from(budget)) / u128::from(drained);
    let nap = Duration::from_nanos(u64::try_from(fill_nanos).unwrap_or(u64::MAX)).min(longest);
    if nap < MIN_NAP { Duration::ZERO } else { nap }
}

/// Waits until the capture has packets, at most `ms` milliseconds.
fn wait_readable(cap: &Capture<Active>, ms: i32) {
    use std::os::fd::AsRawFd;
    let mut fd = libc::pollfd {
        fd: cap.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call; an error or a signal just ends
    // the wait early, which the caller handles like a timeout.
    unsafe {
        libc::poll(&mut fd, 1, ms);
    }
}

/// Captures until `stop` is set. Input index 0 is the interface.
pub fn read_live(
    live: LiveCapture,
    opts: &LiveOptions,
    stop: &AtomicBool,
    handler: &mut impl PacketHandler,
) -> Result<(), CaptureError> {
    let LiveCapture {
        mut cap,
        link,
        mut record,
    } = live;
    let iface = opts.iface.as_str();
    // Kernel counters are refreshed at most once a second (a system call each); the clock
    // is read for that every `CLOCK_EVERY` packets and after every wait, not per packet.
    const CLOCK_EVERY: u32 = 1024;
    let mut stats_due = Instant::now();
    let mut since_clock = CLOCK_EVERY;
    let mut pacer = NapPacer::new(opts.buffer_bytes, Instant::now());
    // Only what the analysis took is recorded, so replaying the recording gives the events
    // of the live run.
    let mut take = |p: pcap::Packet<'_>, handler: &mut dyn FnMut(Timestamp, &[u8], u32) -> bool| {
        let ts = Timestamp::from_timeval(p.header.ts.tv_sec, p.header.ts.tv_usec);
        if handler(ts, p.data, p.header.len)
            && let Some(file) = record.as_mut()
        {
            file.write(&p);
        }
    };
    while !stop.load(Ordering::Relaxed) {
        match cap.next_packet() {
            Ok(p) => {
                pacer.packet(p.header.caplen);
                take(p, &mut |ts, data, len| {
                    handler.packet(0, link, ts, data, len)
                });
                since_clock += 1;
            }
            Err(pcap::Error::TimeoutExpired) => {
                // Nothing buffered: a chance to hand partial batches on, then a nap (short
                // or none when the ring fills fast), then sleep until packets come or
                // `IDLE_WAIT_MS` pass.
                handler.idle();
                let nap = pacer.nap(Instant::now());
                if !nap.is_zero() {
                    std::thread::sleep(nap);
                }
                wait_readable(&cap, IDLE_WAIT_MS);
                since_clock = CLOCK_EVERY;
            }
            Err(e) => {
                return Err(CaptureError::Live {
                    iface: iface.to_string(),
                    message: message(&e),
                });
            }
        }
        if since_clock >= CLOCK_EVERY {
            since_clock = 0;
            let now = Instant::now();
            if now >= stats_due {
                stats_due = now + Duration::from_secs(1);
                report_kernel_stats(&mut cap, handler);
            }
        }
    }
    // Stopped: what the kernel had already captured is still analysed, the block it was still
    // filling included (handed over within a block timeout), until nothing more comes or, on
    // a link that never goes quiet, for at most a second.
    let drain_until = Instant::now() + Duration::from_secs(1);
    let mut waited = false;
    while Instant::now() < drain_until {
        match cap.next_packet() {
            Ok(p) => {
                waited = false;
                take(p, &mut |ts, data, len| {
                    handler.packet(0, link, ts, data, len)
                });
            }
            Err(pcap::Error::TimeoutExpired) if !waited => {
                waited = true;
                wait_readable(&cap, 2 * BLOCK_TIMEOUT_MS);
            }
            Err(_) => break,
        }
    }
    report_kernel_stats(&mut cap, handler);
    if let (Some(mut file), Some(path)) = (record, &opts.write_pcap) {
        file.flush().map_err(|e| CaptureError::WritePcap {
            path: path.clone(),
            message: message(&e),
        })?;
    }
    Ok(())
}

fn report_kernel_stats(cap: &mut Capture<Active>, handler: &mut impl PacketHandler) {
    if let Ok(k) = cap.stats() {
        handler.kernel_stats(KernelStats {
            received: u64::from(k.received),
            dropped: u64::from(k.dropped),
            if_dropped: u64::from(k.if_dropped),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_linktypes() {
        assert_eq!(LinkType::from_linktype(1), Some(LinkType::Ethernet));
        assert_eq!(LinkType::from_linktype(276), Some(LinkType::LinuxSll2));
        assert_eq!(LinkType::from_linktype(105), None);
    }

    const MIB: u64 = 1 << 20;
    const LONGEST: Duration = Duration::from_millis(100);

    #[test]
    fn the_longest_nap_leaves_half_the_ring_for_a_burst() {
        assert_eq!(max_nap(64 << 20), LONGEST);
        assert_eq!(max_nap(256 << 20), Duration::from_millis(400));
        assert_eq!(max_nap(2000 << 20), NAP_CEILING);
        assert_eq!(max_nap(0), Duration::ZERO);
        assert_eq!(max_nap(-1), Duration::ZERO);
    }

    #[test]
    fn nap_holds_an_eighth_of_the_ring_at_the_last_rate() {
        let budget = 64 * MIB / RING_SHARE_PER_NAP;
        // 1 Gbit/s: 12.5 MB in 100 ms; an eighth of 64 MiB fills in 67 ms.
        let nap = nap_length(12_500_000, Duration::from_millis(100), budget, LONGEST);
        assert_eq!(nap.as_millis(), 67);
        // 200 Mbit/s would allow 335 ms: the longest nap.
        assert_eq!(
            nap_length(2_500_000, Duration::from_millis(100), budget, LONGEST),
            LONGEST
        );
        // 10 Gbit/s: 6.7 ms.
        let nap = nap_length(125_000_000, Duration::from_millis(100), budget, LONGEST);
        assert_eq!(nap.as_micros(), 6710);
        // Faster than the ring can take in a millisecond's nap: none.
        let flood = nap_length(u64::MAX, Duration::from_millis(100), budget, LONGEST);
        assert_eq!(flood, Duration::ZERO);
    }

    #[test]
    fn nap_after_a_quiet_ring_or_a_long_drain_is_the_longest() {
        let budget = 8 * MIB;
        assert_eq!(nap_length(0, Duration::ZERO, budget, LONGEST), LONGEST);
        assert_eq!(nap_length(1, Duration::MAX, budget, LONGEST), LONGEST);
        assert_eq!(
            nap_length(1_000, Duration::ZERO, budget, LONGEST),
            Duration::ZERO
        );
    }

    #[test]
    fn pacer_counts_each_drain_from_the_end_of_the_last() {
        let start = Instant::now();
        let mut pacer = NapPacer::new(64 << 20, start);
        // 1,000 packets of 1,170 bytes (1,250 in the ring) in 10 ms: 125 MB/s.
        for _ in 0..1_000 {
            pacer.packet(1_170);
        }
        let nap = pacer.nap(start + Duration::from_millis(10));
        assert_eq!(nap.as_millis(), 67);
        // The next drain starts from nothing: a quiet ring naps the longest.
        assert_eq!(pacer.nap(start + Duration::from_millis(200)), LONGEST);
    }
}
