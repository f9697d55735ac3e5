//! Hexadecimal digits and short digests, in one place.

use sha2::{Digest, Sha256};

const LOWER: &[u8; 16] = b"0123456789abcdef";
const UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Appends `byte` as two lower-case hex digits.
pub fn push_lower(out: &mut String, byte: u8) {
    out.push(char::from(LOWER[usize::from(byte >> 4)]));
    out.push(char::from(LOWER[usize::from(byte & 0x0f)]));
}

/// Appends `%` and `byte` as two upper-case hex digits (a percent-escape, RFC 3986 §2.1).
pub fn push_escape(out: &mut String, byte: u8) {
    out.push('%');
    out.push(char::from(UPPER[usize::from(byte >> 4)]));
    out.push(char::from(UPPER[usize::from(byte & 0x0f)]));
}

/// `s` with every character `keep` refuses percent-escaped as its UTF-8 bytes (RFC 3986 §2.1):
/// how claims and the consumer become header values that can neither split nor end a header.
///
/// Spaces and tabs at either end are escaped too, whatever `keep` says: a header value cannot
/// begin or end with one (RFC 9110 §5.5) and the runtime strips them, so `"alice "` sent as it
/// is would reach the upstream as `alice`, another subject's value.
pub fn percent_escape(s: &str, keep: impl Fn(char) -> bool) -> String {
    let edge = |c: char| c == ' ' || c == '\t';
    let start = s.len() - s.trim_start_matches(edge).len();
    let end = s.trim_end_matches(edge).len().max(start);
    let mut out = String::with_capacity(s.len());
    for (at, c) in s.char_indices() {
        if keep(c) && (start..end).contains(&at) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                push_escape(&mut out, b);
            }
        }
    }
    out
}

/// Lower-case hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        push_lower(&mut out, *b);
    }
    out
}

/// The value of one hex digit, either case.
pub fn value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// `sha256:` and the first 16 hex digits of the SHA-256 of `bytes`: a version for humans.
pub fn short_digest(bytes: &[u8]) -> String {
    digest_of(&Sha256::digest(bytes).into())
}

/// [`short_digest`] from the SHA-256 already computed.
pub fn digest_of(sha256: &[u8; 32]) -> String {
    format!("sha256:{}", encode(&sha256[..8]))
}

/// Equality whose running time depends only on the lengths, not on where the bytes differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    std::hint::black_box(diff) == 0
}

/// Equality of two secrets that reveals neither their content nor their lengths through
/// timing: their digests are compared.
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    constant_time_eq(&Sha256::digest(a), &Sha256::digest(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits() {
        assert_eq!(encode(&[0x00, 0x9f, 0xff]), "009fff");
        let mut s = String::new();
        push_escape(&mut s, 0x2f);
        assert_eq!(s, "%2F");
        assert_eq!(
            (value(b'a'), value(b'F'), value(b'9'), value(b'g')),
            (Some(10), Some(15), Some(9), None)
        );
        assert_eq!(short_digest(b"abc"), "sha256:ba7816bf8f01cfea");
    }

    #[test]
    fn comparisons() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"ab\0", b"ab"), "padding is not equality");
        assert!(secrets_equal(b"token", b"token"));
        assert!(!secrets_equal(b"token", b"token2"));
    }
}
