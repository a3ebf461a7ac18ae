//! SMTP: one `smtp` event per mail transaction, on any port, from either side.
//!
//! The session is followed command by command and reply by reply. Replies are paired with
//! commands through a queue, so PIPELINING works; the client's bytes are read as commands,
//! AUTH responses, message data (DATA, with dot-stuffing) or BDAT chunks. After a 220 reply to
//! STARTTLS, a TLS record hands the rest of the stream on ([`Parsed::Upgrade`]); cleartext
//! instead (a decrypted capture, a stripping middlebox) is parsed on and noted. Only message
//! headers are parsed; bodies are skipped with memchr and counted.
//! A gap marks the transaction incomplete and parsing resumes at the next command line.
//!
//! Everything is capped: line lengths, headers, recipients, pipelined commands. Whatever went
//! past a cap, and anything else out of the ordinary, is named in `smtp.anomalies`.

mod logger;
mod parser;

pub use logger::{
    AuthRecord, Confidence, EmailFields, Encrypted, Extensions, HeloVerb, SmtpFields, SmtpRecord,
    Status,
};

use std::collections::VecDeque;
use std::sync::{Arc, LazyLock};

use self::parser::{Command, Verb};
use super::tls::TlsSession;
use super::{AppEvent, AppOutput, Handback, Parsed, Probe, StreamOrigin, StreamParser};
use crate::direction::Direction;
use crate::memory::allocation;
use crate::text::lossy;
use crate::timestamp::Timestamp;

/// Longest command or reply line kept; longer lines are cut and noted.
const MAX_LINE: usize = 4096;
/// Longest physical header line kept, and longest header after unfolding.
const MAX_HEADER: usize = 8192;
/// Headers read per message; later ones are counted as an anomaly, not parsed.
const MAX_HEADERS: u32 = 256;
const MAX_HEADER_NAMES: usize = 64;
const MAX_RECEIVED: usize = 16;
const MAX_ADDRESSES: usize = 100;
/// Recipients listed per transaction; all are counted.
const MAX_RCPT: usize = 100;
/// Commands awaiting a reply.
const MAX_PENDING: usize = 256;
const MAX_REPLY_LINES: usize = 64;
const MAX_EXTENSIONS: usize = 32;
/// Bytes of the client's command transcript kept for fingerprints.
const MAX_TRANSCRIPT: usize = 512;
/// What the transcript holds before it must grow.
const TRANSCRIPT_CAPACITY: usize = 128;
/// Longest string emitted in an event, in bytes.
const MAX_FIELD: usize = 1024;

/// Strings from the wire: invalid UTF-8 replaced, cut to `MAX_FIELD` at a character boundary.
fn field(bytes: &[u8]) -> String {
    crate::text::wire_string(bytes, MAX_FIELD)
}

fn capped(s: String) -> String {
    crate::text::cap_string(s, MAX_FIELD)
}

/// Whether the first bytes of a flow are SMTP: a client EHLO/HELO, a server banner that says
/// SMTP, or, picked up mid-stream, envelope commands from the client.
fn probe(ctos: &[u8], stoc: &[u8]) -> Probe {
    let client = client_hint(ctos);
    let server = server_hint(stoc);
    match (client, server) {
        (Hint::Strong, _) | (_, Hint::Strong) => Probe::Match,
        (Hint::Weak, Hint::Weak | Hint::Unknown) => Probe::Match,
        (Hint::Not, _) | (_, Hint::Not) => Probe::NoMatch,
        _ => Probe::NeedMore,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hint {
    /// Certainly SMTP on its own.
    Strong,
    /// SMTP if the other side does not contradict it.
    Weak,
    Unknown,
    Not,
}

fn client_hint(ctos: &[u8]) -> Hint {
    if ctos.is_empty() {
        return Hint::Unknown;
    }
    let first = ctos.get(..5).unwrap_or(ctos);
    let hello = [&b"EHLO "[..], b"HELO "];
    if hello.iter().any(|h| {
        h.get(..first.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(first))
    }) {
        return if first.len() == 5 {
            Hint::Strong
        } else {
            Hint::Unknown
        };
    }
    let mut complete_lines = 0;
    for line in ctos.split_inclusive(|&b| b == b'\n') {
        if !line.ends_with(b"\n") {
            break;
        }
        complete_lines += 1;
        let upper = line.get(..10).unwrap_or(line);
        if upper.eq_ignore_ascii_case(b"MAIL FROM:")
            || upper
                .get(..8)
                .is_some_and(|u| u.eq_ignore_ascii_case(b"RCPT TO:"))
        {
            return Hint::Weak;
        }
    }
    let binary = ctos
        .iter()
        .take(64)
        .any(|&b| b < 0x20 && !matches!(b, b'\r' | b'\n' | b'\t'));
    if binary || complete_lines > 0 && ctos.len() >= 512 {
        Hint::Not
    } else {
        Hint::Unknown
    }
}

fn server_hint(stoc: &[u8]) -> Hint {
    if stoc.is_empty() {
        return Hint::Unknown;
    }
    let Some(end) = memchr::memchr(b'\n', stoc) else {
        let digits = stoc.iter().take(3).all(u8::is_ascii_digit);
        return if digits { Hint::Unknown } else { Hint::Not };
    };
    match parser::parse_reply_line(&stoc[..end]) {
        Some(reply) if reply.code == 220 => {
            let text = reply.text.to_ascii_uppercase();
            if memchr::memmem::find(&text, b"SMTP").is_some() {
                Hint::Strong
            } else {
                Hint::Unknown
            }
        }
        Some(_) => Hint::Weak,
        None => Hint::Not,
    }
}

/// Names of what went wrong, each listed once per event.
#[derive(Clone, Debug, Default)]
struct Anomalies(Vec<&'static str>);

impl Anomalies {
    fn add(&mut self, what: &'static str) {
        if !self.0.contains(&what) {
            self.0.push(what);
        }
    }
}

/// Bytes up to a line feed, capped.
/// A line without its CR.
fn without_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// What a line buffer holds before it must grow.
const LINE_CAPACITY: usize = 256;

#[derive(Default)]
struct LineBuffer {
    buf: Vec<u8>,
    overlong: bool,
    /// The byte before the line feed, to tell CRLF from a bare LF.
    last: u8,
}

impl LineBuffer {
    /// Takes bytes up to and including the next LF: how many, and whether the line is complete.
    fn take(&mut self, data: &[u8], cap: usize) -> (usize, bool) {
        let (chunk, complete) = match memchr::memchr(b'\n', data) {
            Some(i) => (&data[..=i], true),
            None => (data, false),
        };
        let body = if complete {
            &chunk[..chunk.len() - 1]
        } else {
            chunk
        };
        if let Some(&b) = body.last() {
            self.last = b;
        }
        let room = cap.saturating_sub(self.buf.len());
        if body.len() > room {
            self.overlong = true;
        }
        if self.buf.capacity() == 0 {
            // Most lines fit: one allocation, not one per doubling.
            self.buf.reserve(LINE_CAPACITY);
        }
        self.buf.extend_from_slice(&body[..body.len().min(room)]);
        (chunk.len(), complete)
    }

    /// Lends the line's bytes out, so the line can be read while the parser that owns this
    /// buffer changes; [`LineBuffer::restore`] hands them back, emptied, for the next line.
    fn lend(&mut self) -> (Vec<u8>, bool) {
        (std::mem::take(&mut self.buf), self.last != b'\r')
    }

    fn restore(&mut self, buf: Vec<u8>) {
        self.buf = buf;
        self.clear();
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.overlong = false;
        self.last = 0;
    }
}

/// What the body scan looks for: a line that starts with a dot. Built once: a searcher costs
/// more to build than a short chunk costs to scan.
static LINE_START_DOT: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(b"\n."));

/// Where the body scanner is relative to a line start, to find the lone "." that ends DATA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyScan {
    MidLine,
    LineStart,
    Dot,
    DotCr,
}

/// The message of one transaction, read from DATA or from BDAT chunks.
struct MessageReader {
    headers_done: bool,
    line: LineBuffer,
    /// The header being unfolded.
    header: Vec<u8>,
    headers: u32,
    body: BodyScan,
    email: EmailFields,
}

impl MessageReader {
    /// Its buffers' heap; the reader itself is part of its transaction.
    fn heap_bytes(&self) -> usize {
        allocation(self.line.buf.capacity())
            + allocation(self.header.capacity())
            + self.email.heap_bytes()
    }

    fn new() -> Self {
        MessageReader {
            headers_done: false,
            line: LineBuffer::default(),
            header: Vec::new(),
            headers: 0,
            body: BodyScan::LineStart,
            email: EmailFields::default(),
        }
    }

    /// Reads DATA content: returns the bytes consumed and, when the terminating "." line was
    /// consumed, its length.
    fn feed_data(&mut self, data: &[u8], anomalies: &mut Anomalies) -> (usize, Option<usize>) {
        let mut used = 0;
        while used < data.len() && !self.headers_done {
            let (n, complete) = self.line.take(&data[used..], MAX_HEADER);
            used += n;
            if !complete {
                return (used, None);
            }
            let (buf, bare_lf) = self.line.lend();
            if bare_lf {
                anomalies.add("bare_lf");
            }
            let line = without_cr(&buf);
            if line == b"." {
                self.finish_header(anomalies);
                let len = buf.len() + 1;
                self.line.restore(buf);
                return (used, Some(len));
            }
            let line = line
                .strip_prefix(b".")
                .filter(|l| l.starts_with(b"."))
                .unwrap_or(line);
            self.header_line(line, anomalies);
            self.line.restore(buf);
        }
        let (n, end) = self.scan_body(&data[used..]);
        (used + n, end)
    }

    /// Reads BDAT content: headers, then a body that is only counted.
    fn feed_chunk(&mut self, data: &[u8], anomalies: &mut Anomalies) {
        let mut used = 0;
        while used < data.len() && !self.headers_done {
            let (n, complete) = self.line.take(&data[used..], MAX_HEADER);
            used += n;
            if !complete {
                return;
            }
            let (buf, _) = self.line.lend();
            self.header_line(without_cr(&buf), anomalies);
            self.line.restore(buf);
        }
    }

    /// Skips body bytes to the end-of-data line. Only a line that starts with a dot can end
    /// the data, so the scan jumps from one "\n." to the next, not from line to line.
    fn scan_body(&mut self, data: &[u8]) -> (usize, Option<usize>) {
        let mut i = 0;
        loop {
            match self.body {
                BodyScan::MidLine => match LINE_START_DOT.find(&data[i..]) {
                    Some(p) => {
                        i += p + 1;
                        self.body = BodyScan::LineStart;
                    }
                    None => {
                        // A line may start with the next chunk's first byte.
                        if data.last() == Some(&b'\n') {
                            self.body = BodyScan::LineStart;
                        }
                        return (data.len(), None);
                    }
                },
                BodyScan::LineStart | BodyScan::Dot | BodyScan::DotCr => {
                    let Some(&b) = data.get(i) else {
                        return (data.len(), None);
                    };
                    i += 1;
                    self.body = match (self.body, b) {
                        (BodyScan::LineStart, b'.') => BodyScan::Dot,
                        (BodyScan::LineStart, b'\n') => BodyScan::LineStart,
                        (BodyScan::Dot, b'\r') => BodyScan::DotCr,
                        (BodyScan::Dot, b'\n') => return (i, Some(2)),
                        (BodyScan::DotCr, b'\n') => return (i, Some(3)),
                        (_, b'\n') => BodyScan::LineStart,
                        _ => BodyScan::MidLine,
                    };
                }
            }
        }
    }

    /// After a gap the reader no longer knows where it is: skip to the body's next line.
    fn lost_sync(&mut self) {
        self.finish_header(&mut Anomalies::default());
        self.headers_done = true;
        self.line.clear();
        self.body = BodyScan::MidLine;
    }

    fn header_line(&mut self, line: &[u8], anomalies: &mut Anomalies) {
        if line.is_empty() {
            self.finish_header(anomalies);
            self.headers_done = true;
            self.body = BodyScan::LineStart;
            return;
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            if !self.header.is_empty() {
                let room = MAX_HEADER.saturating_sub(self.header.len());
                if line.len() > room {
                    anomalies.add("overlong_header");
                }
                self.header.extend_from_slice(&line[..line.len().min(room)]);
            }
            return;
        }
        self.finish_header(anomalies);
        if parser::split_header(line).is_none() {
            // Not a header: the sender left out the blank line, and this is the body.
            anomalies.add("malformed_header");
            self.headers_done = true;
            self.body = BodyScan::LineStart;
            return;
        }
        self.header.extend_from_slice(line);
        if self.line.overlong {
            anomalies.add("overlong_header");
        }
    }

    /// Reads the unfolded header, and empties its buffer for the next one.
    fn finish_header(&mut self, anomalies: &mut Anomalies) {
        if self.header.is_empty() {
            return;
        }
        let mut header = std::mem::take(&mut self.header);
        self.read_header(&header, anomalies);
        header.clear();
        self.header = header;
    }

    fn read_header(&mut self, header: &[u8], anomalies: &mut Anomalies) {
        self.headers += 1;
        if self.headers > MAX_HEADERS {
            anomalies.add("too_many_headers");
            return;
        }
        let Some((name, value)) = parser::split_header(header) else {
            return;
        };
        let email = &mut self.email;
        if email.header_names.len() < MAX_HEADER_NAMES {
            email
                .header_names
                .push(&crate::text::wire_str(name, MAX_FIELD));
        }
        let set = |slot: &mut Option<String>, value: String| {
            if slot.is_none() {
                *slot = Some(capped(value));
            }
        };
        let raw = || lossy(value).into_owned();
        // The names read below fit in 16 bytes (the longest is `x-originating-ip`): a longer
        // name is none of them and needs no lowercase copy.
        let mut lower = [0u8; 16];
        let name = match lower.get_mut(..name.len()) {
            Some(l) => {
                l.copy_from_slice(name);
                l.make_ascii_lowercase();
                &l[..]
            }
            None => &[],
        };
        match name {
            b"from" => set(&mut email.from, parser::decode_words(value)),
            b"to" | b"cc" => {
                let decoded = parser::decode_words(value);
                let list = if name == b"to" {
                    &mut email.to
                } else {
                    &mut email.cc
                };
                for address in parser::split_addresses(&decoded) {
                    if list.len() >= MAX_ADDRESSES {
                        anomalies.add("too_many_addresses");
                        break;
                    }
                    list.push(capped(address.to_string()));
                }
            }
            b"reply-to" => set(&mut email.reply_to, parser::decode_words(value)),
            b"subject" => set(&mut email.subject, parser::decode_words(value)),
            b"date" => set(&mut email.date, raw()),
            b"message-id" => set(&mut email.message_id, raw()),
            b"x-mailer" => set(&mut email.x_mailer, raw()),
            b"user-agent" => set(&mut email.user_agent, raw()),
            b"x-priority" => set(&mut email.x_priority, raw()),
            b"x-originating-ip" => set(
                &mut email.x_originating_ip,
                raw().trim_matches(|c| c == '[' || c == ']').to_string(),
            ),
            b"received" if email.received.len() < MAX_RECEIVED => {
                email.received.push(capped(raw()));
            }
            b"content-type" => {
                let value = raw();
                if email.boundary.is_none() {
                    email.boundary = parser::boundary(&value).map(|b| capped(b.to_string()));
                }
                set(&mut email.content_type, value);
            }
            _ => {}
        }
    }
}

/// A command waiting for its reply, and what the reply will decide. Transaction commands
/// name their transaction (`trans_depth`): with PIPELINING a whole transaction can be sent
/// before the first reply arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    Hello,
    /// A second MAIL inside an open transaction: a new transaction only if the server agrees.
    NestedMail(u32),
    Mail(u32),
    Rcpt(u32),
    Data(u32),
    DataEnd(u32),
    Bdat {
        txn: u32,
        last: bool,
    },
    Rset,
    Auth,
    Starttls,
    Other,
}

/// One mail transaction, from MAIL (or a stray DATA) to its end.
struct Transaction {
    start: Timestamp,
    depth: u32,
    mail_from: Option<String>,
    mail_rejected: bool,
    rcpt_to: Vec<String>,
    /// The server's verdict on each address of `rcpt_to`, once its reply is seen.
    rcpt_verdicts: Vec<Option<bool>>,
    /// Per RCPT command in order: its place in `rcpt_to` (`None` when malformed or over the
    /// cap), so pipelined replies land on the right address.
    rcpt_commands: Vec<Option<u8>>,
    rcpt_accepted: u32,
    rcpt_rejected: u32,
    data_started: bool,
    data_sent: bool,
    data_bytes: u64,
    message: Option<MessageReader>,
    last_reply: Option<String>,
    queue_id: Option<String>,
    status: Option<Status>,
    gap: bool,
    anomalies: Anomalies,
}

impl Transaction {
    /// See [`StreamParser::heap_bytes`]; the message's header fields are counted by what the
    /// reader holds for them.
    fn heap_bytes(&self) -> usize {
        let text = |s: &Option<String>| s.as_ref().map_or(0, |s| allocation(s.capacity()));
        allocation(size_of::<Self>())
            + text(&self.mail_from)
            + text(&self.last_reply)
            + text(&self.queue_id)
            + allocation(self.rcpt_to.capacity() * size_of::<String>())
            + self
                .rcpt_to
                .iter()
                .map(|r| allocation(r.capacity()))
                .sum::<usize>()
            + allocation(self.rcpt_verdicts.capacity())
            + allocation(self.rcpt_commands.capacity())
            + self.message.as_ref().map_or(0, MessageReader::heap_bytes)
    }

    /// A transaction, boxed: a session holds one only while it is open, so a finished
    /// session waiting out its close delay costs little.
    fn new(start: Timestamp, depth: u32) -> Box<Self> {
        Box::new(Self::empty(start, depth))
    }

    fn empty(start: Timestamp, depth: u32) -> Self {
        Transaction {
            start,
            depth,
            mail_from: None,
            mail_rejected: false,
            rcpt_to: Vec::new(),
            rcpt_verdicts: Vec::new(),
            rcpt_commands: Vec::new(),
            rcpt_accepted: 0,
            rcpt_rejected: 0,
            data_started: false,
            data_sent: false,
            data_bytes: 0,
            message: None,
            last_reply: None,
            queue_id: None,
            status: None,
            gap: false,
            anomalies: Anomalies::default(),
        }
    }

    fn message(&mut self) -> &mut MessageReader {
        self.message.get_or_insert_with(MessageReader::new)
    }

    /// The status once nothing more will be learnt about the transaction.
    fn final_status(&self, replies_seen: bool) -> Status {
        if self.gap {
            Status::Incomplete
        } else if let Some(status) = self.status {
            status
        } else if self.mail_rejected
            || (!self.rcpt_to.is_empty() && self.rcpt_accepted == 0 && self.rcpt_rejected > 0)
        {
            Status::Rejected
        } else if self.data_started && !self.data_sent {
            Status::Incomplete
        } else if self.data_sent && !replies_seen {
            Status::Sent
        } else {
            Status::Aborted
        }
    }
}

/// How the client's bytes are read right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientMode {
    /// Until the first known command: a session picked up mid-stream starts here.
    Start,
    Command,
    /// After a gap: skip to the next line that is a known command.
    Resync,
    /// AUTH responses: how many lines are expected, and whether the next is LOGIN's user name.
    Auth {
        lines: u8,
        login_user: bool,
    },
    Data,
    Bdat {
        remaining: u64,
        last: bool,
    },
    /// The server accepted STARTTLS: a TLS record from either side hands the stream on.
    AfterStarttls,
}

/// The lines of the reply being read, in one buffer that is reused: reading a reply costs
/// no allocation per line. Each line is its wire text, invalid UTF-8 replaced, capped.
#[derive(Default)]
struct ReplyLines {
    text: String,
    /// Where each line ends in `text`.
    ends: Vec<usize>,
}

impl ReplyLines {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn push(&mut self, line: &[u8]) {
        let start = self.text.len();
        self.text.push_str(&lossy(line));
        let end = start + crate::text::cap_str(&self.text[start..], MAX_FIELD).len();
        self.text.truncate(end);
        self.ends.push(end);
    }

    fn lines(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| self.text.get(start..end).unwrap_or(""))
    }

    fn first(&self) -> Option<&str> {
        self.lines().next()
    }

    fn last(&self) -> Option<&str> {
        self.lines().last()
    }

    fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }
}

/// Writes a reply as events show it into `text`: its code and one of its lines, trimmed and
/// capped.
fn write_reply(text: &mut String, code: u16, line: Option<&str>) {
    let line = line.unwrap_or("");
    text.clear();
    text.reserve(6 + line.len());
    push_decimal(text, code);
    text.push(' ');
    text.push_str(line);
    let end = crate::text::cap_str(text.trim_end(), MAX_FIELD).len();
    text.truncate(end);
}

/// Puts `text` into `slot`, in the buffer already there when there is one.
fn set_text(slot: &mut Option<String>, text: &str) {
    let kept = slot.get_or_insert_with(String::new);
    kept.clear();
    kept.push_str(text);
}

/// Appends `n` in decimal (a reply code, for each reply: without the formatter's machinery).
fn push_decimal(text: &mut String, mut n: u16) {
    let mut digits = [0u8; 5];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    text.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Whether a client's bytes start with a TLS record holding a ClientHello (never an SMTP
/// command: no command starts with 0x16).
fn is_client_hello(data: &[u8]) -> bool {
    matches!(data, [TLS_HANDSHAKE, 3, _, _, _, 1, ..])
}

/// One SMTP session (one TCP connection).
pub struct SmtpParser {
    client_line: LineBuffer,
    server_line: LineBuffer,
    mode: ClientMode,
    /// The stream was handed on to TLS.
    tls: bool,
    /// Commands awaiting replies, oldest first; runs of the same command are one entry.
    pending: VecDeque<(Pending, u32)>,
    reply_code: Option<u16>,
    reply_lines: ReplyLines,
    start: Option<Timestamp>,
    banner: Option<String>,
    /// The first line of the 250 reply to the last accepted HELO/EHLO, after the code.
    ehlo_reply: Option<String>,
    greeted: bool,
    client_spoke: bool,
    pregreet: bool,
    helo: Option<String>,
    helo_verb: Option<HeloVerb>,
    /// The client's commands as it spelt them, in order, for fingerprints (capped).
    commands: String,
    /// A HELO/EHLO after the first one, applied only if the server accepts it.
    next_helo: Option<(String, HeloVerb)>,
    /// The sender of a nested MAIL, until the server's reply decides.
    nested_from: Option<Option<String>>,
    extensions: Extensions,
    auth: Option<AuthRecord>,
    starttls: bool,
    last_command: Verb,
    replies_seen: bool,
    last_reply: Option<String>,
    /// Where each reply is written before it is kept (see [`SmtpParser::reply`]).
    reply_text: String,
    transactions: u32,
    current: Option<Box<Transaction>>,
    /// A transaction whose data was sent, waiting for the server's verdict.
    awaiting: Option<Box<Transaction>>,
    emitted: u32,
    anomalies: Anomalies,
    /// The TLS session after STARTTLS, once the TLS parser reported it.
    tls_session: Option<Arc<TlsSession>>,
    /// The server's port is 465, where SMTP is spoken inside TLS (RFC 8314): cleartext there
    /// is an anomaly.
    on_submissions_port: bool,
}

impl Default for SmtpParser {
    fn default() -> Self {
        SmtpParser {
            client_line: LineBuffer::default(),
            server_line: LineBuffer::default(),
            mode: ClientMode::Start,
            tls: false,
            pending: VecDeque::new(),
            reply_code: None,
            reply_lines: ReplyLines::default(),
            start: None,
            banner: None,
            ehlo_reply: None,
            greeted: false,
            client_spoke: false,
            pregreet: false,
            helo: None,
            helo_verb: None,
            commands: String::new(),
            next_helo: None,
            nested_from: None,
            extensions: Extensions::default(),
            auth: None,
            starttls: false,
            last_command: Verb::Other,
            replies_seen: false,
            last_reply: None,
            reply_text: String::new(),
            transactions: 0,
            current: None,
            awaiting: None,
            emitted: 0,
            anomalies: Anomalies::default(),
            tls_session: None,
            on_submissions_port: false,
        }
    }
}

impl StreamParser for SmtpParser {
    fn probe(ctos: &[u8], stoc: &[u8]) -> Probe {
        probe(ctos, stoc)
    }

    fn new(origin: StreamOrigin) -> Self {
        SmtpParser {
            on_submissions_port: origin.on_submissions_port(),
            ..SmtpParser::default()
        }
    }

    fn app_proto(&self) -> &'static str {
        "smtp"
    }

    fn parse(
        &mut self,
        dir: Direction,
        data: &[u8],
        ts: Timestamp,
        out: &mut Vec<AppOutput>,
    ) -> Parsed {
        self.start.get_or_insert(ts);
        let used = match dir {
            Direction::Ctos => self.parse_client(data, ts, out),
            Direction::Stoc => self.parse_server(data, out),
        };
        if self.tls {
            Parsed::Upgrade { consumed: used }
        } else {
            Parsed::Continue
        }
    }

    fn on_close(&mut self) {
        self.client_line.buf.shrink_to_fit();
        self.server_line.buf.shrink_to_fit();
        self.reply_lines.text.shrink_to_fit();
        self.reply_lines.ends.shrink_to_fit();
        self.pending.shrink_to_fit();
        self.commands.shrink_to_fit();
        self.reply_text = String::new();
    }

    fn on_gap(&mut self, dir: Direction, len: u64) {
        self.anomaly("gap");
        match dir {
            Direction::Ctos => {
                self.client_line.clear();
                match self.mode {
                    ClientMode::Data => {
                        if let Some(txn) = self.current.as_mut() {
                            txn.gap = true;
                            txn.message().lost_sync();
                        }
                    }
                    ClientMode::Bdat { remaining, last } if len < remaining => {
                        if let Some(txn) = self.current.as_mut() {
                            txn.gap = true;
                            txn.message().lost_sync();
                        }
                        self.mode = ClientMode::Bdat {
                            remaining: remaining - len,
                            last,
                        };
                    }
                    _ => {
                        if let Some(txn) = self.current.as_mut() {
                            txn.gap = true;
                        }
                        self.mode = ClientMode::Resync;
                    }
                }
            }
            Direction::Stoc => {
                // Replies were lost: pairing restarts with the next command.
                self.server_line.clear();
                self.reply_code = None;
                self.reply_lines.clear();
                self.pending.clear();
                for txn in [self.current.as_mut(), self.awaiting.as_mut()]
                    .into_iter()
                    .flatten()
                {
                    txn.gap = true;
                }
            }
        }
    }

    fn on_handback(&mut self, handback: Handback) {
        let Handback::Tls(session) = handback;
        self.tls_session = Some(session);
    }

    fn finish(&mut self, ts: Timestamp, out: &mut Vec<AppOutput>) {
        if self.client_line.overlong {
            // A command line past the cap that never ended: as overlong as one that did.
            self.anomaly("overlong_command_line");
        }
        if let Some(txn) = self.awaiting.take() {
            self.emit(txn, out);
        }
        if let Some(txn) = self.current.take() {
            self.emit(txn, out);
        }
        if self.emitted == 0 {
            // STARTTLS accepted and nothing in cleartext after it: the session went on in TLS
            // (or the capture ended first).
            let status = if (self.tls && self.starttls) || self.mode == ClientMode::AfterStarttls {
                Status::Tls
            } else {
                Status::NoTransaction
            };
            let record = self.record(None, status, self.start.unwrap_or(ts));
            out.push(record);
        }
    }

    fn heap_bytes(&self) -> usize {
        let text = |s: &Option<String>| s.as_ref().map_or(0, |s| allocation(s.capacity()));
        allocation(size_of::<Self>())
            + allocation(self.client_line.buf.capacity())
            + allocation(self.server_line.buf.capacity())
            + allocation(self.reply_lines.text.capacity())
            + allocation(self.reply_lines.ends.capacity() * size_of::<usize>())
            + allocation(self.pending.capacity() * size_of::<(Pending, u32)>())
            + allocation(self.commands.capacity())
            + allocation(self.reply_text.capacity())
            + text(&self.banner)
            + text(&self.ehlo_reply)
            + text(&self.helo)
            + text(&self.last_reply)
            + self.current.as_ref().map_or(0, |t| t.heap_bytes())
            + self.awaiting.as_ref().map_or(0, |t| t.heap_bytes())
    }
}

impl SmtpParser {
    /// Reads the client's bytes; returns how many were SMTP (all, unless TLS took over).
    fn parse_client(&mut self, mut data: &[u8], ts: Timestamp, out: &mut Vec<AppOutput>) -> usize {
        let total = data.len();
        if !self.greeted && !data.is_empty() {
            self.client_spoke = true;
        }
        while let Some(&first) = data.first() {
            let used = match self.mode {
                ClientMode::AfterStarttls if first == TLS_HANDSHAKE => {
                    self.tls = true;
                    return total - data.len();
                }
                ClientMode::AfterStarttls => {
                    self.cleartext_after_starttls();
                    0
                }
                ClientMode::Data => self.client_data(data, out),
                ClientMode::Bdat { remaining, last } => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(data.len());
                    if let Some(txn) = self.current.as_mut() {
                        txn.data_bytes += n as u64;
                        let mut anomalies = std::mem::take(&mut txn.anomalies);
                        txn.message().feed_chunk(&data[..n], &mut anomalies);
                        txn.anomalies = anomalies;
                    }
                    let remaining = remaining - n as u64;
                    self.mode = if remaining == 0 {
                        if last {
                            self.data_sent(out);
                        }
                        ClientMode::Command
                    } else {
                        ClientMode::Bdat { remaining, last }
                    };
                    n
                }
                ClientMode::Command
                | ClientMode::Start
                | ClientMode::Resync
                | ClientMode::Auth { .. } => {
                    if self.last_command == Verb::Starttls
                        && self.client_line.buf.is_empty()
                        && first == TLS_HANDSHAKE
                    {
                        // A TLS ClientHello right after STARTTLS: the reply was not captured.
                        self.starttls = true;
                        self.tls = true;
                        return total - data.len();
                    }
                    if self.client_line.buf.is_empty() && is_client_hello(data) {
                        // TLS to a server that greeted in cleartext (a client that expects
                        // 465's implicit TLS): the TLS analysis takes the stream.
                        self.anomaly("tls_without_starttls");
                        self.tls = true;
                        return total - data.len();
                    }
                    let (n, complete) = self.client_line.take(data, MAX_LINE);
                    if complete {
                        self.client_line_done(ts, out);
                    }
                    n
                }
            };
            data = &data[used..];
        }
        total
    }

    /// SMTP in cleartext: on 465 it should have been inside TLS (a server or client that does
    /// not do what the port says, or a tool pretending to be a mail server there).
    fn cleartext(&mut self) {
        if self.on_submissions_port {
            self.anomaly("cleartext_on_implicit_tls_port");
        }
    }

    /// STARTTLS was accepted, yet the session goes on in cleartext: parse it, and say so.
    fn cleartext_after_starttls(&mut self) {
        self.mode = ClientMode::Command;
        self.anomaly("cleartext_after_starttls");
    }

    fn client_data(&mut self, data: &[u8], out: &mut Vec<AppOutput>) -> usize {
        let Some(txn) = self.current.as_mut() else {
            self.mode = ClientMode::Command;
            return 0;
        };
        let mut anomalies = std::mem::take(&mut txn.anomalies);
        let (used, end) = txn.message().feed_data(data, &mut anomalies);
        txn.anomalies = anomalies;
        txn.data_bytes += used as u64;
        if let Some(terminator) = end {
            txn.data_bytes = txn.data_bytes.saturating_sub(terminator as u64);
            self.mode = ClientMode::Command;
            let depth = txn.depth;
            self.push_pending(Pending::DataEnd(depth));
            self.data_sent(out);
        }
        used
    }

    /// The client finished sending a message: the transaction now waits for the verdict.
    fn data_sent(&mut self, out: &mut Vec<AppOutput>) {
        if let Some(mut txn) = self.current.take() {
            txn.data_sent = true;
            if let Some(older) = self.awaiting.replace(txn) {
                // Two messages pipelined without a verdict between them: report the older.
                self.emit(older, out);
            }
        }
    }

    /// A whole command line (or AUTH response) arrived: read it from the lent line buffer.
    fn client_line_done(&mut self, ts: Timestamp, out: &mut Vec<AppOutput>) {
        let (buffer, bare_lf) = self.client_line.lend();
        self.command_line(without_cr(&buffer), bare_lf, ts, out);
        self.client_line.restore(buffer);
    }

    fn command_line(
        &mut self,
        line: &[u8],
        bare_lf: bool,
        ts: Timestamp,
        out: &mut Vec<AppOutput>,
    ) {
        self.cleartext();
        if self.client_line.overlong {
            self.anomaly("overlong_command_line");
        }
        if bare_lf {
            self.anomaly("bare_lf");
        }
        if memchr::memchr(0, line).is_some() {
            self.anomaly("nul_byte");
        }
        if let ClientMode::Auth { lines, login_user } = self.mode {
            self.auth_response(line, login_user);
            self.mode = match lines {
                0 | 1 => ClientMode::Command,
                n => ClientMode::Auth {
                    lines: n - 1,
                    login_user: false,
                },
            };
            return;
        }
        let command = parser::parse_command(line);
        if matches!(self.mode, ClientMode::Start | ClientMode::Resync) {
            if command.verb == Verb::Other {
                return;
            }
            self.mode = ClientMode::Command;
        }
        self.command(&command, ts, out);
    }

    fn anomaly(&mut self, what: &'static str) {
        match self.current.as_mut() {
            Some(txn) => txn.anomalies.add(what),
            None => self.anomalies.add(what),
        }
    }

    fn push_pending(&mut self, pending: Pending) {
        if let Some((last, count)) = self.pending.back_mut()
            && *last == pending
        {
            *count = count.saturating_add(1);
            return;
        }
        if self.pending.len() >= MAX_PENDING {
            self.anomaly("too_many_pipelined_commands");
            self.pending.pop_front();
        }
        self.pending.push_back((pending, 1));
    }

    fn pop_pending(&mut self) -> Option<Pending> {
        let (pending, count) = self.pending.front_mut()?;
        let pending = *pending;
        *count -= 1;
        if *count == 0 {
            self.pending.pop_front();
        }
        Some(pending)
    }

    /// The transaction a reply is about: still open, or sent and awaiting its verdict.
    fn txn_mut(&mut self, depth: u32) -> Option<&mut Transaction> {
        [self.current.as_deref_mut(), self.awaiting.as_deref_mut()]
            .into_iter()
            .flatten()
            .find(|t| t.depth == depth)
    }

    fn command(&mut self, c: &Command<'_>, ts: Timestamp, out: &mut Vec<AppOutput>) {
        self.last_command = c.verb;
        self.note_spelling(c);
        let pending = match c.verb {
            Verb::Helo | Verb::Ehlo => {
                let verb = if c.verb == Verb::Helo {
                    HeloVerb::Helo
                } else {
                    HeloVerb::Ehlo
                };
                let helo = field(c.arg);
                if self.helo.is_none() || !self.replies_seen {
                    self.helo = Some(helo);
                    self.helo_verb = Some(verb);
                } else {
                    // A later greeting replaces the first only if the server takes it.
                    self.next_helo = Some((helo, verb));
                }
                Pending::Hello
            }
            Verb::Mail
                if self
                    .current
                    .as_ref()
                    .is_some_and(|t| t.mail_from.is_some() && !t.data_started) =>
            {
                let from = parser::parse_path(c.arg, b"FROM:").map(|(a, _)| field(a));
                self.nested_from = Some(from);
                Pending::NestedMail(self.current.as_ref().map_or(0, |t| t.depth))
            }
            Verb::Mail => {
                self.close_current(out);
                self.transactions += 1;
                let mut txn = Transaction::new(ts, self.transactions);
                match parser::parse_path(c.arg, b"FROM:") {
                    Some((address, _)) => txn.mail_from = Some(field(address)),
                    None => txn.anomalies.add("malformed_mail_from"),
                }
                self.current = Some(txn);
                Pending::Mail(self.transactions)
            }
            Verb::Rcpt => {
                let txn = self.transaction(ts);
                let slot = match parser::parse_path(c.arg, b"TO:") {
                    Some((address, _)) if txn.rcpt_to.len() < MAX_RCPT => {
                        txn.rcpt_to.push(field(address));
                        txn.rcpt_verdicts.push(None);
                        u8::try_from(txn.rcpt_to.len() - 1).ok()
                    }
                    Some(_) => {
                        txn.anomalies.add("too_many_recipients");
                        None
                    }
                    None => {
                        txn.anomalies.add("malformed_rcpt_to");
                        None
                    }
                };
                if txn.rcpt_commands.len() < 2 * MAX_RCPT {
                    txn.rcpt_commands.push(slot);
                }
                Pending::Rcpt(txn.depth)
            }
            Verb::Data => {
                let txn = self.transaction(ts);
                txn.data_started = true;
                txn.message = Some(MessageReader::new());
                let depth = txn.depth;
                self.mode = ClientMode::Data;
                Pending::Data(depth)
            }
            Verb::Bdat => match parser::parse_bdat(c.arg) {
                Some((size, last)) => {
                    let txn = self.transaction(ts);
                    txn.data_started = true;
                    let depth = txn.depth;
                    if size > 0 {
                        self.mode = ClientMode::Bdat {
                            remaining: size,
                            last,
                        };
                    } else if last {
                        self.data_sent(out);
                    }
                    Pending::Bdat { txn: depth, last }
                }
                None => {
                    self.anomaly("bad_bdat_size");
                    Pending::Other
                }
            },
            Verb::Rset => {
                self.close_current(out);
                Pending::Rset
            }
            Verb::Quit => {
                self.close_current(out);
                Pending::Other
            }
            Verb::Auth => {
                self.auth_command(c.arg);
                Pending::Auth
            }
            Verb::Starttls => Pending::Starttls,
            Verb::Noop | Verb::Vrfy | Verb::Expn | Verb::Help | Verb::Other => Pending::Other,
        };
        self.push_pending(pending);
    }

    /// Adds a command to the transcript: the verb as typed, and for MAIL and RCPT what comes
    /// before the address (`MAIL FROM:<` or `mail from: <`), separated by `;`.
    fn note_spelling(&mut self, c: &Command<'_>) {
        if self.commands.len() >= MAX_TRANSCRIPT {
            return;
        }
        if self.commands.is_empty() {
            // Most transcripts fit: one allocation, not one per doubling.
            self.commands.reserve(TRANSCRIPT_CAPACITY);
        } else {
            self.commands.push(';');
        }
        let word = &c.word[..c.word.len().min(16)];
        self.commands.push_str(&lossy(word));
        if matches!(c.verb, Verb::Mail | Verb::Rcpt) {
            let before = match memchr::memchr(b'<', c.arg) {
                Some(i) => &c.arg[..=i],
                None => &c.arg[..c.arg.len().min(8)],
            };
            self.commands.push(' ');
            self.commands
                .push_str(&lossy(&before[..before.len().min(16)]));
        }
    }

    /// The open transaction, or one opened for a command that needs it (RCPT or DATA without
    /// MAIL: recorded, and noted).
    fn transaction(&mut self, ts: Timestamp) -> &mut Transaction {
        if self.current.is_none() {
            self.transactions += 1;
            let mut txn = Transaction::new(ts, self.transactions);
            txn.anomalies.add("command_without_mail_from");
            self.current = Some(txn);
        }
        self.current.get_or_insert_with(|| Transaction::new(ts, 0))
    }

    fn close_current(&mut self, out: &mut Vec<AppOutput>) {
        if let Some(txn) = self.current.take() {
            self.emit(txn, out);
        }
    }

    fn auth_command(&mut self, arg: &[u8]) {
        let mut words = arg.split(|&b| b == b' ').filter(|w| !w.is_empty());
        let mechanism = words.next().unwrap_or_default().to_ascii_uppercase();
        let initial = words.next();
        let failures = self
            .auth
            .as_ref()
            .map_or(0, |a| a.failures + u32::from(a.success == Some(false)));
        self.auth = Some(AuthRecord {
            mechanism: field(&mechanism),
            username: None,
            success: None,
            failures,
        });
        let (lines, login_user) = match (mechanism.as_slice(), initial) {
            (b"LOGIN", None) => (2, true),
            (b"LOGIN", Some(user)) => {
                self.set_auth_user(parser::decode_base64(user).as_deref());
                (1, false)
            }
            (b"PLAIN" | b"XOAUTH2" | b"OAUTHBEARER", Some(response)) => {
                self.auth_response(response, false);
                (0, false)
            }
            (b"PLAIN" | b"XOAUTH2" | b"OAUTHBEARER" | b"CRAM-MD5", None) => (1, false),
            // GSSAPI, NTLM and others: a few opaque exchanges.
            (_, _) => (4, false),
        };
        if lines > 0 {
            self.mode = ClientMode::Auth { lines, login_user };
        }
    }

    /// One client line of an AUTH exchange: only the user name is kept.
    fn auth_response(&mut self, line: &[u8], login_user: bool) {
        if line == b"*" {
            self.mode = ClientMode::Command;
            return;
        }
        let mechanism = self
            .auth
            .as_ref()
            .map(|a| a.mechanism.clone())
            .unwrap_or_default();
        let Some(decoded) = parser::decode_base64(line) else {
            return;
        };
        let user = match mechanism.as_str() {
            "PLAIN" => parser::plain_username(&decoded),
            "CRAM-MD5" => parser::cram_md5_username(&decoded),
            "XOAUTH2" | "OAUTHBEARER" => parser::xoauth2_username(&decoded),
            "LOGIN" if login_user => Some(decoded.as_slice()),
            _ => None,
        };
        if user.is_some() {
            self.set_auth_user(user);
        }
    }

    fn set_auth_user(&mut self, user: Option<&[u8]>) {
        if let (Some(auth), Some(user)) = (self.auth.as_mut(), user) {
            auth.username = Some(field(user));
        }
    }

    /// Reads the server's bytes; returns how many were SMTP (all, unless TLS took over).
    fn parse_server(&mut self, mut data: &[u8], out: &mut Vec<AppOutput>) -> usize {
        let total = data.len();
        while let Some(&first) = data.first() {
            if self.mode == ClientMode::AfterStarttls && self.server_line.buf.is_empty() {
                if first == TLS_HANDSHAKE {
                    self.tls = true;
                    return total - data.len();
                }
                self.cleartext_after_starttls();
            }
            let (n, complete) = self.server_line.take(data, MAX_LINE);
            data = &data[n..];
            if !complete {
                break;
            }
            let (buffer, _) = self.server_line.lend();
            let overlong = self.server_line.overlong;
            self.reply_line(without_cr(&buffer), overlong, out);
            self.server_line.restore(buffer);
        }
        total
    }

    /// One line of a reply; the last line of a reply completes it.
    fn reply_line(&mut self, line: &[u8], overlong: bool, out: &mut Vec<AppOutput>) {
        if overlong {
            self.anomaly("overlong_reply_line");
        }
        let Some(reply) = parser::parse_reply_line(line) else {
            if self.mode != ClientMode::Start {
                self.anomaly("invalid_reply");
            }
            return;
        };
        if self.reply_code.is_none() {
            self.reply_code = Some(reply.code);
        }
        if self.reply_lines.len() < MAX_REPLY_LINES {
            self.reply_lines.push(reply.text);
        } else {
            self.anomaly("too_many_reply_lines");
        }
        if reply.last {
            let code = self.reply_code.take().unwrap_or(reply.code);
            let mut lines = std::mem::take(&mut self.reply_lines);
            self.reply(code, &lines, out);
            lines.clear();
            self.reply_lines = lines;
        }
    }

    fn reply(&mut self, code: u16, lines: &ReplyLines, out: &mut Vec<AppOutput>) {
        self.replies_seen = true;
        // A reply is told by its code and last line, a multi-line reply's conclusion (Exim
        // ends a BDAT LAST reply with the queue id), as Zeek tells it; a greeting by its first,
        // which names the server. It is written into a buffer kept for the next reply, and
        // copied into the slots that keep it, which keep their own buffers too.
        let mut text = std::mem::take(&mut self.reply_text);
        write_reply(&mut text, code, lines.last());
        set_text(&mut self.last_reply, &text);
        self.apply_reply(code, lines, &text, out);
        self.reply_text = text;
    }

    /// What a reply (`text`, as events show it) decides about the command it answers.
    fn apply_reply(&mut self, code: u16, lines: &ReplyLines, text: &str, out: &mut Vec<AppOutput>) {
        // The server's first reply is its greeting, even when the client already sent commands
        // (a pre-greeting, or Exim's PIPE_CONNECT); 554 and 421 refuse the session outright.
        // Picked up mid-stream, a 220 may answer STARTTLS instead.
        let greeting = !self.greeted
            && matches!(code, 220 | 421 | 554)
            && self.pending.front().map(|(p, _)| *p) != Some(Pending::Starttls);
        if greeting {
            self.cleartext();
            self.greeted = true;
            let mut banner = String::new();
            if lines.len() > 1 {
                write_reply(&mut banner, code, lines.first());
            } else {
                banner.push_str(text);
            }
            self.banner = Some(banner);
            self.pregreet = self.client_spoke;
            return;
        }
        let Some(pending) = self.pop_pending() else {
            if self.mode != ClientMode::Start {
                self.anomaly("reply_without_command");
            }
            return;
        };
        self.greeted = true;
        let ok = (200..400).contains(&code);
        match pending {
            Pending::NestedMail(depth) => {
                let from = self.nested_from.take().flatten();
                if ok {
                    // The server took it as a new transaction.
                    self.close_current(out);
                    self.transactions += 1;
                    let mut txn =
                        Transaction::new(self.start.unwrap_or_default(), self.transactions);
                    txn.mail_from = from;
                    set_text(&mut txn.last_reply, text);
                    self.current = Some(txn);
                } else if let Some(txn) = self.txn_mut(depth) {
                    txn.anomalies.add("nested_mail_from");
                }
            }
            Pending::Hello => {
                if let Some((helo, verb)) = self.next_helo.take()
                    && ok
                {
                    self.helo = Some(helo);
                    self.helo_verb = Some(verb);
                }
                if code == 250 {
                    self.ehlo_reply = lines.first().map(|l| capped(l.trim().to_string()));
                    self.extensions = Extensions::new(
                        lines
                            .lines()
                            .skip(1)
                            .take(MAX_EXTENSIONS)
                            .map(|l| l.split_whitespace().next().unwrap_or("")),
                    );
                }
            }
            Pending::Mail(depth) => {
                if let Some(txn) = self.txn_mut(depth) {
                    txn.mail_rejected = !ok;
                    set_text(&mut txn.last_reply, text);
                }
            }
            Pending::Rcpt(depth) => {
                if let Some(txn) = self.txn_mut(depth) {
                    let answered = (txn.rcpt_accepted + txn.rcpt_rejected) as usize;
                    if let Some(Some(slot)) = txn.rcpt_commands.get(answered)
                        && let Some(verdict) = txn.rcpt_verdicts.get_mut(usize::from(*slot))
                    {
                        *verdict = Some(ok);
                    }
                    if ok {
                        txn.rcpt_accepted += 1;
                    } else {
                        txn.rcpt_rejected += 1;
                    }
                    set_text(&mut txn.last_reply, text);
                }
            }
            Pending::Data(depth) => {
                let in_data = self.mode == ClientMode::Data;
                let mut refused_early = false;
                if let Some(txn) = self.txn_mut(depth) {
                    set_text(&mut txn.last_reply, text);
                    if code != 354 && txn.data_bytes == 0 {
                        // Refused before any content: the client's next line is a command.
                        txn.status = Some(Status::Rejected);
                        txn.data_started = false;
                        txn.message = None;
                        refused_early = in_data;
                    }
                }
                if refused_early {
                    self.mode = ClientMode::Command;
                }
            }
            Pending::DataEnd(depth)
            | Pending::Bdat {
                txn: depth,
                last: true,
            } => {
                let txn = match (&self.awaiting, &self.current) {
                    (Some(t), _) if t.depth == depth => self.awaiting.take(),
                    (_, Some(t)) if t.depth == depth => self.current.take(),
                    _ => None,
                };
                if let Some(mut txn) = txn {
                    txn.status = Some(if ok { Status::Queued } else { Status::Rejected });
                    if ok {
                        txn.queue_id = lines
                            .lines()
                            .find_map(|l| parser::queue_id(l.as_bytes()))
                            .map(field);
                    }
                    set_text(&mut txn.last_reply, text);
                    self.emit(txn, out);
                }
            }
            Pending::Bdat {
                txn: depth,
                last: false,
            } => {
                if let Some(txn) = self.txn_mut(depth) {
                    set_text(&mut txn.last_reply, text);
                    if !ok {
                        txn.status = Some(Status::Rejected);
                    }
                }
            }
            Pending::Auth => {
                if code == 334 {
                    // The exchange goes on: the next reply answers the same AUTH.
                    self.pending.push_front((Pending::Auth, 1));
                } else {
                    if let Some(auth) = self.auth.as_mut() {
                        auth.success = Some(ok);
                    }
                    if matches!(self.mode, ClientMode::Auth { .. }) {
                        self.mode = ClientMode::Command;
                    }
                }
            }
            Pending::Starttls => {
                if code == 220 {
                    self.starttls = true;
                    self.mode = ClientMode::AfterStarttls;
                }
            }
            Pending::Other => {
                // NOOP, VRFY, a malformed BDAT inside a transaction: still its last reply.
                if let Some(txn) = self.current.as_mut() {
                    set_text(&mut txn.last_reply, text);
                }
            }
            Pending::Rset => {}
        }
    }

    fn emit(&mut self, txn: Box<Transaction>, out: &mut Vec<AppOutput>) {
        let status = txn.final_status(self.replies_seen);
        let start = txn.start;
        out.push(self.record(Some(txn), status, start));
    }

    fn record(
        &mut self,
        txn: Option<Box<Transaction>>,
        status: Status,
        ts: Timestamp,
    ) -> AppOutput {
        self.emitted += 1;
        let mut anomalies = self.anomalies.clone();
        // The transaction ends with its record: what is its own moves into it. A session
        // without one has an empty one's fields.
        let mut t = txn.map_or_else(|| Transaction::empty(ts, 0), |t| *t);
        for a in t.anomalies.0.drain(..) {
            anomalies.add(a);
        }
        let email = t
            .message
            .take()
            .map(|mut m| {
                m.finish_header(&mut anomalies);
                m.email
            })
            .filter(|e| *e != EmailFields::default());
        let smtp = SmtpFields {
            banner: self.banner.clone(),
            ehlo_reply: self.ehlo_reply.clone(),
            helo: self.helo.clone(),
            helo_verb: self.helo_verb,
            commands: self.commands.clone(),
            extensions: self.extensions.clone(),
            auth: self.auth.clone(),
            starttls: self.starttls,
            pregreet: self.pregreet,
            mail_from: t.mail_from,
            rcpt_to: t.rcpt_to,
            rcpt_verdicts: t.rcpt_verdicts,
            rcpt_accepted: t.rcpt_accepted,
            rcpt_rejected: t.rcpt_rejected,
            trans_depth: t.depth,
            data_bytes: t.data_bytes,
            last_reply: t.last_reply.or_else(|| self.last_reply.clone()),
            queue_id: t.queue_id,
            status,
            anomalies: anomalies.0,
            client_software: None,
            server_software: None,
            encrypted: None,
        };
        AppOutput::new(
            ts,
            AppEvent::Smtp(Box::new(SmtpRecord {
                smtp,
                email,
                software: Vec::new(),
                tls: self.tls_session.clone(),
            })),
        )
    }
}

/// The `smtp` event of a session on the implicit-TLS port (465, RFC 8314), of which only the
/// TLS records were seen: no banner, no envelope, and the TLS session for fingerprints and
/// the estimate.
pub fn implicit_tls_record(session: Arc<TlsSession>) -> SmtpRecord {
    SmtpRecord {
        tls: Some(session),
        ..SmtpRecord::empty(Status::Tls)
    }
}

#[cfg(test)]
mod tests;
