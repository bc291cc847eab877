//! `Range: bytes=…` on downloads (RFC 9110 §14.2): one range, in any of its
//! three forms (`a-b`, `a-`, `-n`). Anything else is ignored and the whole
//! file is sent, as the RFC allows: another unit, a malformed header, and
//! several ranges (a multipart answer is more than download resumers need,
//! and clients that ask for several take the whole file just as well).
use std::ops::Range;

/// What to send of a file of a known size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ranged {
    /// The whole file: `200`.
    Whole,
    /// These bytes (`start..end`, end exclusive, never empty): `206`.
    Part(Range<u64>),
    /// A range that starts at or past the end: `416` with `Content-Range: bytes */size`.
    Unsatisfiable,
}

/// The part of a file of `size` bytes that a `Range` header value asks for.
pub(crate) fn parse(header: Option<&str>, size: u64) -> Ranged {
    let Some(spec) = header.and_then(|h| strip_prefix_ignore_case(h.trim(), "bytes=")) else {
        return Ranged::Whole;
    };
    if spec.contains(',') {
        return Ranged::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ranged::Whole;
    };
    match (number(first), number(last)) {
        // `-n`: the last n bytes; a zero-length suffix selects nothing.
        (None, Some(n)) if first.is_empty() => match n.min(size) {
            0 => Ranged::Unsatisfiable,
            n => Ranged::Part(size - n..size),
        },
        // `a-`: from a to the end.
        (Some(a), None) if last.is_empty() => from(a, size, size),
        // `a-b`, both inclusive; b past the end means the end.
        (Some(a), Some(b)) if a <= b => from(a, b.saturating_add(1).min(size), size),
        _ => Ranged::Whole,
    }
}

fn from(start: u64, end: u64, size: u64) -> Ranged {
    if start >= size { Ranged::Unsatisfiable } else { Ranged::Part(start..end) }
}

/// Digits only: `u64::from_str` would also take a leading `+`.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(h: &str, size: u64) -> Ranged {
        parse(Some(h), size)
    }

    #[test]
    fn the_three_forms() {
        assert_eq!(p("bytes=0-9", 100), Ranged::Part(0..10));
        assert_eq!(p("bytes=10-", 100), Ranged::Part(10..100));
        assert_eq!(p("bytes=-10", 100), Ranged::Part(90..100));
        assert_eq!(p("bytes=99-99", 100), Ranged::Part(99..100));
        assert_eq!(p("Bytes=0-0", 100), Ranged::Part(0..1), "the unit is case-insensitive");
    }

    #[test]
    fn ends_past_the_file_are_clipped() {
        assert_eq!(p("bytes=90-1000", 100), Ranged::Part(90..100));
        assert_eq!(p("bytes=-1000", 100), Ranged::Part(0..100));
        assert_eq!(p("bytes=0-18446744073709551615", 100), Ranged::Part(0..100));
    }

    #[test]
    fn starts_past_the_end_are_unsatisfiable() {
        assert_eq!(p("bytes=100-", 100), Ranged::Unsatisfiable);
        assert_eq!(p("bytes=100-200", 100), Ranged::Unsatisfiable);
        assert_eq!(p("bytes=-0", 100), Ranged::Unsatisfiable);
        assert_eq!(p("bytes=0-", 0), Ranged::Unsatisfiable);
        assert_eq!(p("bytes=-5", 0), Ranged::Unsatisfiable);
    }

    #[test]
    fn anything_else_is_the_whole_file() {
        assert_eq!(parse(None, 100), Ranged::Whole);
        for h in ["bytes=0-1,5-6", "items=0-1", "bytes=5-1", "bytes=a-b", "bytes=+1-2", "bytes=-", "bytes=", "bytes=1", "0-1"] {
            assert_eq!(p(h, 100), Ranged::Whole, "{h}");
        }
        assert_eq!(p("bytes=99999999999999999999-", 100), Ranged::Whole, "a number too large to read");
    }
}
