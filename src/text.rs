//! Text from the wire, made safe to keep: capped in length without ever splitting a character,
//! so every string that reaches an event is valid UTF-8 of bounded size. And text for the
//! operator on stderr, written so that a closed stderr is never fatal.

/// Writes one line to stderr. Unlike `eprintln!` it never panics: a service's stderr may be
/// closed, or be a pipe whose reader went away, and that is no reason to stop capturing.
pub fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// `eprintln!` through [`say`].
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::text::say(format_args!($($arg)*))
    };
}
pub(crate) use note;

/// Bytes from the wire as text: as they are when they are UTF-8 (checked a word at a time, not a
/// byte at a time as `String::from_utf8_lossy` does), else with U+FFFD for what is not.
pub fn lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Bytes from the wire as a string of at most `max` bytes: invalid UTF-8 replaced (see
/// [`lossy`]), cut at a character boundary. Only a prefix is converted: every input byte gives
/// at least one output byte, so `4 * max` bytes (a margin over the cut character) are plenty.
pub fn wire_string(bytes: &[u8], max: usize) -> String {
    wire_str(bytes, max).into_owned()
}

/// [`wire_string`], borrowed when the bytes are valid UTF-8.
pub fn wire_str(bytes: &[u8], max: usize) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    let prefix = &bytes[..bytes.len().min(max.saturating_mul(4))];
    match lossy(prefix) {
        Cow::Borrowed(text) => Cow::Borrowed(cap_str(text, max)),
        Cow::Owned(text) => Cow::Owned(cap_string(text, max)),
    }
}

/// The longest prefix of `s` within `max` bytes that ends on a character boundary: text from
/// the wire is capped without ever leaving invalid UTF-8 behind.
pub fn cap_str(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// [`cap_str`] for an owned string.
pub fn cap_string(mut s: String, max: usize) -> String {
    let end = cap_str(&s, max).len();
    s.truncate(end);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capping_never_splits_a_character() {
        assert_eq!(cap_str("héllo", 2), "h", "é is two bytes");
        assert_eq!(cap_str("héllo", 3), "hé");
        assert_eq!(cap_str("abc", 10), "abc");
        assert_eq!(cap_string("€€".to_string(), 4), "€");
    }

    #[test]
    fn wire_text_is_kept_as_is_or_replaced_where_invalid() {
        assert!(matches!(
            lossy(b"EHLO h\xc3\xa9"),
            std::borrow::Cow::Borrowed("EHLO hé")
        ));
        assert_eq!(lossy(b"a\xffb\xc3"), "a\u{fffd}b\u{fffd}");
        assert_eq!(wire_string(b"h\xc3\xa9llo", 2), "h");
        assert_eq!(wire_string(b"\xff\xff", 4), "\u{fffd}");
        assert_eq!(wire_string(&[b'a'; 10_000], 3), "aaa");
    }
}
