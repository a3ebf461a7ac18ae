//! Pure SMTP parsing over bytes: commands, replies, envelope paths, AUTH payloads, message
//! headers and queue ids. Nothing here keeps state or knows about flows.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// The commands the session tracks; everything else is `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Helo,
    Ehlo,
    Mail,
    Rcpt,
    Data,
    Bdat,
    Rset,
    Quit,
    Auth,
    Starttls,
    Noop,
    Vrfy,
    Expn,
    Help,
    Other,
}

impl Verb {
    fn of(word: &[u8]) -> Verb {
        const VERBS: [(&[u8], Verb); 14] = [
            (b"HELO", Verb::Helo),
            (b"EHLO", Verb::Ehlo),
            (b"MAIL", Verb::Mail),
            (b"RCPT", Verb::Rcpt),
            (b"DATA", Verb::Data),
            (b"BDAT", Verb::Bdat),
            (b"RSET", Verb::Rset),
            (b"QUIT", Verb::Quit),
            (b"AUTH", Verb::Auth),
            (b"STARTTLS", Verb::Starttls),
            (b"NOOP", Verb::Noop),
            (b"VRFY", Verb::Vrfy),
            (b"EXPN", Verb::Expn),
            (b"HELP", Verb::Help),
        ];
        VERBS
            .iter()
            .find(|(name, _)| word.eq_ignore_ascii_case(name))
            .map_or(Verb::Other, |&(_, verb)| verb)
    }
}

/// A command line without its line ending: the verb and the rest after one space.
#[derive(Debug, PartialEq, Eq)]
pub struct Command<'a> {
    pub verb: Verb,
    /// The verb as the client spelled it.
    pub word: &'a [u8],
    pub arg: &'a [u8],
}

pub fn parse_command(line: &[u8]) -> Command<'_> {
    let line = trim_line_end(line);
    let (word, arg) = match memchr::memchr(b' ', line) {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &line[..0]),
    };
    // "MAIL FROM:<a>" and "RCPT TO:<b>" are parsed from the argument; "MAIL" alone is the verb.
    Command {
        verb: Verb::of(word),
        word,
        arg: trim_ascii(arg),
    }
}

/// One line of a reply: `250-PIPELINING` is (250, more follow, "PIPELINING").
#[derive(Debug, PartialEq, Eq)]
pub struct ReplyLine<'a> {
    pub code: u16,
    pub last: bool,
    pub text: &'a [u8],
}

pub fn parse_reply_line(line: &[u8]) -> Option<ReplyLine<'_>> {
    let line = trim_line_end(line);
    let digits = line.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    match line.get(3) {
        None => Some(ReplyLine {
            code,
            last: true,
            text: b"",
        }),
        Some(b' ') => Some(ReplyLine {
            code,
            last: true,
            text: &line[4..],
        }),
        Some(b'-') => Some(ReplyLine {
            code,
            last: false,
            text: &line[4..],
        }),
        _ => None,
    }
}

/// The path of `MAIL FROM:<a@b> SIZE=1` or `RCPT TO: <c@d>`: the address without angle
/// brackets, and the parameters after it. `None` when the keyword is missing.
pub fn parse_path<'a>(arg: &'a [u8], keyword: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = trim_ascii(&arg[keyword.len()..]);
    if let Some(inner) = rest.strip_prefix(b"<") {
        let end = memchr::memchr(b'>', inner).unwrap_or(inner.len());
        let params = inner.get(end + 1..).unwrap_or_default();
        Some((&inner[..end], trim_ascii(params)))
    } else {
        let end = memchr::memchr(b' ', rest).unwrap_or(rest.len());
        Some((&rest[..end], trim_ascii(&rest[end..])))
    }
}

/// `BDAT <size> [LAST]`: the chunk size and whether it is the last; `None` if the size is not
/// a number that fits.
pub fn parse_bdat(arg: &[u8]) -> Option<(u64, bool)> {
    let mut words = arg.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let size = words.next()?;
    if size.is_empty() || !size.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size = std::str::from_utf8(size).ok()?.parse().ok()?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case(b"LAST") => true,
        Some(_) => return None,
    };
    Some((size, last))
}

fn base64_engine() -> GeneralPurpose {
    GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    )
}

/// Decodes a base64 AUTH payload; `None` if it is not base64 (or is the `=` empty response).
pub fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    let text = trim_ascii(text);
    if text.is_empty() || text == b"=" {
        return None;
    }
    base64_engine().decode(text).ok()
}

/// The authentication identity from an AUTH PLAIN response: `authzid NUL authcid NUL passwd`.
/// Only the user name is returned; the password never leaves this function.
pub fn plain_username(decoded: &[u8]) -> Option<&[u8]> {
    let mut parts = decoded.split(|&b| b == 0);
    let authzid = parts.next()?;
    let authcid = parts.next()?;
    parts.next()?;
    Some(if authcid.is_empty() { authzid } else { authcid })
}

/// The user name from a CRAM-MD5 response: `user SP hex-digest`.
pub fn cram_md5_username(decoded: &[u8]) -> Option<&[u8]> {
    let space = memchr::memrchr(b' ', decoded)?;
    Some(&decoded[..space])
}

/// The user name from an XOAUTH2 initial response: `user=NAME ^A auth=Bearer TOKEN ^A ^A`.
pub fn xoauth2_username(decoded: &[u8]) -> Option<&[u8]> {
    decoded
        .split(|&b| b == 0x01)
        .find_map(|field| field.strip_prefix(b"user="))
}

/// The queue id in the reply that accepted a message, which joins the event to the MTA's log:
/// Postfix `queued as 4XyZ1`, Exim `OK id=1Mugho-0003Dg-Un`, Sendmail and OpenSMTPD
/// `2.0.0 x8KDx1cP012345 Message accepted for delivery`, Exchange `[InternalId=123...]`.
pub fn queue_id(text: &[u8]) -> Option<&[u8]> {
    let token = |rest: &'_ [u8]| -> Option<usize> {
        let end = rest
            .iter()
            .position(|b| b.is_ascii_whitespace() || matches!(b, b',' | b';' | b')' | b']'))
            .unwrap_or(rest.len());
        (end > 0).then_some(end)
    };
    for marker in [&b"queued as "[..], b"id=", b"InternalId="] {
        if let Some(at) = find_ignore_case(text, marker) {
            let rest = &text[at + marker.len()..];
            if let Some(end) = token(rest) {
                return Some(&rest[..end]);
            }
        }
    }
    let accepted = find_ignore_case(text, b" Message accepted")?;
    let before = trim_ascii(&text[..accepted]);
    let start = memchr::memrchr(b' ', before).map_or(0, |i| i + 1);
    let id = &before[start..];
    // Skip an enhanced status code ("2.0.0") standing alone.
    (!id.is_empty() && !id.iter().all(|b| b.is_ascii_digit() || *b == b'.')).then_some(id)
}

fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

pub fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

pub fn trim_ascii(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// Splits a header into name and value at the first colon; `None` for a line without one.
pub fn split_header(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = memchr::memchr(b':', line)?;
    let name = trim_ascii(&line[..colon]);
    if name.is_empty() || name.iter().any(|b| b.is_ascii_whitespace()) {
        return None;
    }
    Some((name, trim_ascii(&line[colon + 1..])))
}

/// Header text as a mail reader shows it. RFC 2047 encoded-words (`=?utf-8?B?...?=`) are
/// decoded: `_` in Q is a space, whitespace between two encoded-words is dropped (section 6.2),
/// and adjacent words in one charset are joined before decoding, so a character split across
/// them survives. Raw 8-bit text that is not UTF-8 is read as windows-1252, which such mail
/// nearly always is. A word that does not decode (unknown charset, bad base64) stays as it was.
///
/// Hand-written on `encoding_rs` and `base64`: the `rfc2047-decoder` crate dropped a `_` at the
/// end of a Q word ("Re:_" then "hi" came out "Re:hi").
pub fn decode_words(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    // Bytes of the last encoded-words, not yet decoded, and their charset.
    let mut pending: Option<(&'static encoding_rs::Encoding, Vec<u8>)> = None;
    let mut rest = value;
    loop {
        let Some((before, word, after)) = next_word(rest) else {
            flush_words(&mut pending, &mut out);
            out.push_str(&raw_text(rest));
            return out;
        };
        let between_words = pending.is_some() && before.iter().all(u8::is_ascii_whitespace);
        if !between_words {
            flush_words(&mut pending, &mut out);
            out.push_str(&raw_text(before));
        }
        match &mut pending {
            Some((charset, bytes)) if *charset == word.charset => bytes.extend(word.bytes),
            _ => {
                flush_words(&mut pending, &mut out);
                pending = Some((word.charset, word.bytes));
            }
        }
        rest = after;
    }
}

/// One encoded-word, decoded to its charset's bytes.
struct EncodedWord {
    charset: &'static encoding_rs::Encoding,
    bytes: Vec<u8>,
}

/// The text before the next encoded-word that decodes, the word, and the text after it.
fn next_word(text: &[u8]) -> Option<(&[u8], EncodedWord, &[u8])> {
    let mut from = 0;
    while let Some(at) = memchr::memmem::find(&text[from..], b"=?").map(|i| from + i) {
        if let Some((word, len)) = encoded_word(&text[at..]) {
            return Some((&text[..at], word, &text[at + len..]));
        }
        from = at + 2;
    }
    None
}

/// `=?charset?Q|B?text?=` at the start of `text`: the word and its length.
fn encoded_word(text: &[u8]) -> Option<(EncodedWord, usize)> {
    let body = text.strip_prefix(b"=?")?;
    let mut parts = body.splitn(3, |&b| b == b'?');
    let (label, kind, rest) = (parts.next()?, parts.next()?, parts.next()?);
    let end = memchr::memmem::find(rest, b"?=")?;
    let encoded = &rest[..end];
    if encoded.iter().any(u8::is_ascii_whitespace) || label.is_empty() {
        return None;
    }
    // RFC 2231 adds a language after '*'.
    let label = label.split(|&b| b == b'*').next().unwrap_or(label);
    let charset = encoding_rs::Encoding::for_label(label)?;
    let bytes = match kind {
        b"Q" | b"q" => q_decode(encoded),
        b"B" | b"b" => {
            use base64::Engine as _;
            let lenient = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
                    .with_decode_allow_trailing_bits(true),
            );
            lenient.decode(encoded).ok()?
        }
        _ => return None,
    };
    let len = 2 + label_len(body) + kind.len() + 1 + end + 2;
    Some((EncodedWord { charset, bytes }, len))
}

/// The length of the charset field at the start of an encoded-word's body, with its '?'.
fn label_len(body: &[u8]) -> usize {
    memchr::memchr(b'?', body).map_or(body.len(), |i| i + 1)
}

/// RFC 2047's Q encoding: `_` is a space, `=XX` a byte, anything else itself.
fn q_decode(text: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        match b {
            b'_' => out.push(b' '),
            b'=' => match (
                text.get(i + 1).and_then(|&h| hex(h)),
                text.get(i + 2).and_then(|&l| hex(l)),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'='),
            },
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

fn flush_words(pending: &mut Option<(&'static encoding_rs::Encoding, Vec<u8>)>, out: &mut String) {
    if let Some((charset, bytes)) = pending.take() {
        out.push_str(&charset.decode_without_bom_handling(&bytes).0);
    }
}

/// Header bytes outside encoded-words: UTF-8 if they are, windows-1252 if not.
fn raw_text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.into(),
        Err(_) => {
            encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(bytes)
                .0
        }
    }
}

/// Splits an address list (`To`, `Cc`) at commas outside quotes and angle brackets.
pub fn split_addresses(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut start) = (false, 0u32, 0usize);
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle += 1,
            '>' if !quoted => angle = angle.saturating_sub(1),
            ',' if !quoted && angle == 0 => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out.retain(|a| !a.is_empty());
    out
}

/// The `boundary` parameter of a multipart Content-Type, without quotes.
pub fn boundary(content_type: &str) -> Option<&str> {
    let lower = content_type.to_ascii_lowercase();
    let at = lower.find("boundary=")? + "boundary=".len();
    let rest = &content_type[at..];
    let value = match rest.strip_prefix('"') {
        Some(quoted) => &quoted[..quoted.find('"').unwrap_or(quoted.len())],
        None => {
            let end = rest
                .find(|c: char| c == ';' || c.is_whitespace())
                .unwrap_or(rest.len());
            &rest[..end]
        }
    };
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_keep_the_clients_spelling() {
        let c = parse_command(b"mail from: <a@b.c> SIZE=10\r\n");
        assert_eq!((c.verb, c.word), (Verb::Mail, &b"mail"[..]));
        assert_eq!(c.arg, b"from: <a@b.c> SIZE=10");
        assert_eq!(parse_command(b"DATA\r\n").verb, Verb::Data);
        assert_eq!(parse_command(b"STARTTLS").verb, Verb::Starttls);
        assert_eq!(parse_command(b"XCLIENT a").verb, Verb::Other);
        assert_eq!(parse_command(b"").verb, Verb::Other);
    }

    #[test]
    fn reply_lines() {
        assert_eq!(
            parse_reply_line(b"250-PIPELINING\r\n"),
            Some(ReplyLine {
                code: 250,
                last: false,
                text: b"PIPELINING"
            })
        );
        assert_eq!(parse_reply_line(b"354 go\r\n").map(|r| r.last), Some(true));
        assert_eq!(parse_reply_line(b"250\r\n").map(|r| r.code), Some(250));
        assert_eq!(parse_reply_line(b"25x ok"), None);
        assert_eq!(parse_reply_line(b"2500 ok"), None);
        assert_eq!(parse_reply_line(b"ab"), None);
    }

    #[test]
    fn paths_with_and_without_brackets() {
        assert_eq!(
            parse_path(b"FROM:<a@b.c> SIZE=10 BODY=8BITMIME", b"FROM:"),
            Some((&b"a@b.c"[..], &b"SIZE=10 BODY=8BITMIME"[..]))
        );
        assert_eq!(
            parse_path(b"from: <x@y>", b"FROM:"),
            Some((&b"x@y"[..], &b""[..]))
        );
        assert_eq!(
            parse_path(b"TO:bare@host NOTIFY=NEVER", b"TO:"),
            Some((&b"bare@host"[..], &b"NOTIFY=NEVER"[..]))
        );
        assert_eq!(parse_path(b"FROM:<>", b"FROM:"), Some((&b""[..], &b""[..])));
        assert_eq!(
            parse_path(b"FROM:<unterminated", b"FROM:"),
            Some((&b"unterminated"[..], &b""[..]))
        );
        assert_eq!(parse_path(b"TO:<a>", b"FROM:"), None);
    }

    #[test]
    fn bdat_sizes() {
        assert_eq!(parse_bdat(b"1000 LAST"), Some((1000, true)));
        assert_eq!(parse_bdat(b"86"), Some((86, false)));
        assert_eq!(parse_bdat(b"-5"), None);
        assert_eq!(parse_bdat(b"99999999999999999999999"), None);
        assert_eq!(parse_bdat(b"10 NEXT"), None);
        assert_eq!(parse_bdat(b""), None);
    }

    #[test]
    fn auth_user_names_and_never_the_secret() {
        let plain = decode_base64(b"AHVzZXJAZXhhbXBsZS5jb20Ac2VjcmV0").unwrap();
        assert_eq!(plain_username(&plain), Some(&b"user@example.com"[..]));
        let with_authzid = b"admin\0bob\0pw";
        assert_eq!(plain_username(with_authzid), Some(&b"bob"[..]));
        assert_eq!(plain_username(b"no separators"), None);
        assert_eq!(
            cram_md5_username(b"tim b913a602c7eda7a495b4e6e7334d3890"),
            Some(&b"tim"[..])
        );
        assert_eq!(
            xoauth2_username(b"user=someuser@example.com\x01auth=Bearer ya29\x01\x01"),
            Some(&b"someuser@example.com"[..])
        );
        assert_eq!(decode_base64(b"not base64!"), None);
        assert_eq!(
            decode_base64(b"dXNlcg"),
            Some(b"user".to_vec()),
            "padding optional"
        );
        assert_eq!(decode_base64(b"="), None);
    }

    #[test]
    fn queue_ids_of_common_mtas() {
        assert_eq!(queue_id(b"2.0.0 Ok: queued as 4XyZ1"), Some(&b"4XyZ1"[..]));
        assert_eq!(
            queue_id(b"OK id=1Mugho-0003Dg-Un"),
            Some(&b"1Mugho-0003Dg-Un"[..])
        );
        assert_eq!(
            queue_id(b"2.0.0 x8KDx1cP012345 Message accepted for delivery"),
            Some(&b"x8KDx1cP012345"[..])
        );
        assert_eq!(
            queue_id(b"2.6.0 <a@b> [InternalId=1234567, Hostname=EX1] Queued mail for delivery"),
            Some(&b"1234567"[..])
        );
        assert_eq!(queue_id(b"2.0.0 Message accepted for delivery"), None);
        assert_eq!(queue_id(b"Ok"), None);
    }

    #[test]
    fn headers_and_encoded_words() {
        assert_eq!(
            split_header(b"Subject: hi there"),
            Some((&b"Subject"[..], &b"hi there"[..]))
        );
        assert_eq!(split_header(b"no colon here"), None);
        assert_eq!(split_header(b"bad name: x"), None);
        assert_eq!(decode_words(b"=?UTF-8?B?0J/RgNC40LLQtdGC?="), "Привет");
        assert_eq!(
            decode_words(b"=?iso-8859-1?Q?Caf=E9_cr=E8me?="),
            "Café crème"
        );
        assert_eq!(decode_words(b"=?bogus"), "=?bogus");
    }

    #[test]
    fn encoded_words_as_rfc_2047_section_8_shows_them() {
        // The RFC's own examples of how encoded-words and the space between them display.
        for (text, shown) in [
            (&b"(=?ISO-8859-1?Q?a?=)"[..], "(a)"),
            (b"(=?ISO-8859-1?Q?a?= b)", "(a b)"),
            (b"(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)"),
            (b"(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)"),
            (b"(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)", "(ab)"),
            (b"(=?ISO-8859-1?Q?a_b?=)", "(a b)"),
            (b"(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)"),
            // Section 8's header examples.
            (b"=?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>", "Keith Moore <moore@cs.utk.edu>"),
            (b"=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>", "Andr\u{e9} Pirard <PIRARD@vm1.ulg.ac.be>"),
            (
                b"=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\r\n =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=",
                "If you can read this you understand the example.",
            ),
        ] {
            assert_eq!(decode_words(text), shown, "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn spaces_inside_encoded_words_are_kept() {
        // A space at the end of a word, as `_` or `=20` (the rfc2047-decoder crate dropped
        // the `_` one), and at the start of one.
        assert_eq!(decode_words(b"=?UTF-8?Q?Re=3A_?= =?UTF-8?Q?hi?="), "Re: hi");
        assert_eq!(
            decode_words(b"=?UTF-8?Q?Re=3A=20?= =?UTF-8?Q?hi?="),
            "Re: hi"
        );
        assert_eq!(decode_words(b"=?UTF-8?Q?a_?="), "a ");
        assert_eq!(decode_words(b"=?UTF-8?B?IGxlYWQg?= x"), " lead  x");
    }

    #[test]
    fn a_character_split_across_two_words_survives() {
        // "é" is C3 A9 in UTF-8; mail clients that cut words by length split it.
        assert_eq!(
            decode_words(b"=?UTF-8?Q?caf=C3?= =?UTF-8?Q?=A9?="),
            "caf\u{e9}"
        );
        assert_eq!(
            decode_words(b"=?UTF-8?B?w6lsw6g=?= =?UTF-8?B?dmU=?="),
            "\u{e9}l\u{e8}ve"
        );
    }

    #[test]
    fn raw_8bit_text_that_is_not_utf8_is_windows_1252() {
        assert_eq!(
            decode_words(b"\xe9t\xe9 chaud \x80 5"),
            "\u{e9}t\u{e9} chaud \u{20ac} 5"
        );
        assert_eq!(
            decode_words("déjà vu".as_bytes()),
            "déjà vu",
            "UTF-8 stays UTF-8"
        );
        assert_eq!(decode_words(b"plain \xff text"), "plain \u{ff} text");
    }

    #[test]
    fn words_that_do_not_decode_stay_as_they_were() {
        for text in [
            &b"=?utf-8?q?broken"[..],
            b"=?no-such-charset?Q?x?=",
            b"=?utf-8?X?x?=",
            b"=?utf-8?B?***?=",
            b"=?utf-8?Q?two words?=",
            b"=??Q?x?=",
        ] {
            assert_eq!(decode_words(text), String::from_utf8_lossy(text));
        }
        assert_eq!(decode_words(b"=?bad?= =?UTF-8?Q?ok?="), "=?bad?= ok");
    }

    #[test]
    fn address_lists() {
        assert_eq!(
            split_addresses(r#""Doe, John" <j@x.org>, b@y.org,, <c@z.org>"#),
            vec![r#""Doe, John" <j@x.org>"#, "b@y.org", "<c@z.org>"]
        );
        assert_eq!(split_addresses(""), Vec::<&str>::new());
    }

    #[test]
    fn multipart_boundaries() {
        assert_eq!(
            boundary(r#"multipart/mixed; boundary="----------0123ABCD""#),
            Some("----------0123ABCD")
        );
        assert_eq!(
            boundary("multipart/alternative; BOUNDARY=abc; charset=x"),
            Some("abc")
        );
        assert_eq!(boundary("text/plain"), None);
    }
}
