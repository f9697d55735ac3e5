//! The canonical request path: one spelling per resource, computed once per request.
//!
//! Routing, auth, rate-limit keys, cache keys and the forwarded URL all use this one form, so a
//! path cannot be spelt one way for the gateway's decisions and read another way upstream. Any
//! spelling whose meaning depends on who decodes it is refused instead of guessed at.

use std::fmt;

/// Longest path accepted, in bytes of the raw request path.
pub const MAX_PATH_BYTES: usize = 8192;

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    NotAbsolute,
    TooLong,
    /// `%` not followed by two hex digits.
    MalformedEscape,
    /// `%2F` or `%5C`: a separator hidden from the router.
    EncodedSeparator,
    /// A raw `\`, which some servers treat as `/`.
    Backslash,
    /// NUL or another control character, raw or encoded.
    ControlCharacter,
    /// `%25` followed by hex digits: decodes differently when decoded twice.
    DoubleEncoding,
    /// Escapes that do not decode to UTF-8 (overlong forms among them).
    InvalidUtf8,
    /// `;` path parameters, which some servers strip before routing.
    PathParameter,
    /// A segment of only dots and spaces other than `.` and `..` (`...`, `..%20`, `.%20`):
    /// Windows servers drop a segment's trailing dots and spaces, so they read it as `.` or
    /// `..` (or nothing) and may climb where the gateway routed a plain name.
    DotLikeSegment,
    /// The path with and without its trailing `/` reaches different routes (decided by the
    /// router, not by [`canonicalize`]).
    AmbiguousTrailingSlash,
    /// The path in another letter case, or without a segment's trailing dots or spaces,
    /// reaches only other routes (decided by the router): servers that fold paths would serve
    /// the other route's resource.
    AmbiguousAlias,
    /// A route's `rewrite` would put a `.` or `..` segment into the forwarded path (a
    /// parameter that fills part of a segment captured `..` in `/img/{name}.png`), which the
    /// upstream would resolve to a path the gateway never routed (decided by the router).
    DotSegmentInRewrite,
}

impl PathError {
    pub fn reason(self) -> &'static str {
        match self {
            PathError::NotAbsolute => "path must start with /",
            PathError::TooLong => "path is too long",
            PathError::MalformedEscape => "malformed percent-escape in path",
            PathError::EncodedSeparator => "encoded / or \\ in path",
            PathError::Backslash => "backslash in path",
            PathError::ControlCharacter => "control character in path",
            PathError::DoubleEncoding => "double percent-encoding in path",
            PathError::InvalidUtf8 => "percent-escapes in path are not UTF-8",
            PathError::PathParameter => "';' path parameters (raw or as %3B) are not accepted",
            PathError::DotLikeSegment => {
                "a path segment of only dots and spaces, other than '.' and '..', is not accepted"
            }
            PathError::AmbiguousTrailingSlash => {
                "the path reaches a different route with and without its trailing slash"
            }
            PathError::AmbiguousAlias => {
                "the path in another letter case, without trailing dots or spaces, or with its escapes decoded, reaches a different route"
            }
            PathError::DotSegmentInRewrite => {
                "the route's rewrite of this path would contain a segment that servers read as '.' or '..'"
            }
        }
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Characters RFC 3986 allows raw in a path segment besides unreserved ones. The canonical
/// path keeps their escapes (`%3A` is not `:` to RFC 3986), though most servers decode them
/// before matching: the router's alias check reads them decoded (`crate::router`'s `fold`).
pub(crate) fn is_raw_pchar(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'=' | b':' | b'@'
    )
}

/// Canonicalises one segment (no `/` inside); returns the canonical text and the fully decoded
/// bytes (for the UTF-8 check).
fn canonical_segment(raw: &[u8], out: &mut String, decoded: &mut Vec<u8>) -> Result<(), PathError> {
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        match b {
            b'%' => {
                let hi = raw.get(i + 1).copied().and_then(crate::hex::value);
                let lo = raw.get(i + 2).copied().and_then(crate::hex::value);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(PathError::MalformedEscape);
                };
                let v = hi << 4 | lo;
                match v {
                    b'/' | b'\\' => return Err(PathError::EncodedSeparator),
                    // One decoding hop behind the gateway (a proxy that forwards its decoded
                    // path) makes `..%3B/admin` the `..;/admin` refused below.
                    b';' => return Err(PathError::PathParameter),
                    0..=0x1f | 0x7f => return Err(PathError::ControlCharacter),
                    _ if is_unreserved(v) => out.push(v as char),
                    _ => crate::hex::push_escape(out, v),
                }
                decoded.push(v);
                i += 3;
                continue;
            }
            b'\\' => return Err(PathError::Backslash),
            b';' => return Err(PathError::PathParameter),
            0..=0x1f | 0x7f => return Err(PathError::ControlCharacter),
            _ if is_unreserved(b) || is_raw_pchar(b) => out.push(b as char),
            _ => crate::hex::push_escape(out, b),
        }
        decoded.push(b);
        i += 1;
    }
    Ok(())
}

/// The common case, checked in one pass: only unreserved and raw path characters, no empty
/// or dot segments. Such a path is its own canonical form.
fn is_plainly_canonical(bytes: &[u8]) -> bool {
    let mut segment_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'/' {
            if i > 0 && is_empty_or_dot(&bytes[segment_start..i]) {
                return false;
            }
            segment_start = i + 1;
        } else if !(is_unreserved(b) || is_raw_pchar(b)) {
            return false;
        }
    }
    let last = &bytes[segment_start..];
    last.is_empty() || !is_empty_or_dot(last)
}

/// Empty, or only dots: `.` and `..` are removed, longer runs are refused (see
/// [`PathError::DotLikeSegment`]), so neither is its own canonical form.
fn is_empty_or_dot(segment: &[u8]) -> bool {
    segment.iter().all(|b| *b == b'.')
}

/// How many dots a segment of canonical text holds when it is only dots and spaces (`.`,
/// `%2E`, `%20`), which Windows servers trim from a segment's end; `None` for any other
/// segment. Canonical text decodes `%2E` and escapes spaces, but a path the gateway builds
/// (a `rewrite`) joins canonical parts, so both spellings are read.
fn dots_among_spaces(segment: &str) -> Option<usize> {
    let mut rest = segment.as_bytes();
    let mut dots = 0;
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'.' {
            dots += 1;
            rest = tail;
        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"%2e") {
            dots += 1;
            rest = &rest[3..];
        } else if rest.starts_with(b"%20") {
            rest = &rest[3..];
        } else {
            return None;
        }
    }
    Some(dots)
}

/// Whether a segment of canonical text is `.` or `..` as some server reads it (see
/// [`dots_among_spaces`]); for checking a path the gateway builds itself.
pub fn reads_as_dot_segment(segment: &str) -> bool {
    dots_among_spaces(segment).is_some_and(|dots| dots > 0)
}

/// Whether canonical text holds `%25` followed by two hex digits.
fn has_double_encoding(segment: &str) -> bool {
    let b = segment.as_bytes();
    b.windows(5).any(|w| {
        w[0] == b'%'
            && w[1] == b'2'
            && w[2] == b'5'
            && crate::hex::value(w[3]).is_some()
            && crate::hex::value(w[4]).is_some()
    })
}

/// The canonical form of a raw request path (without query), or why it is refused.
///
/// Unreserved characters are decoded, other escapes are upper-cased, bytes outside RFC 3986's
/// path characters are escaped, empty segments are merged, and dot segments are removed as in
/// RFC 3986 §5.2.4 (clamped at the root). A trailing `/` is kept.
pub fn canonicalize(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    if bytes.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong);
    }
    if is_plainly_canonical(bytes) {
        return Ok(raw.to_owned());
    }
    let mut segments: Vec<String> = Vec::new();
    let mut decoded = Vec::new();
    let mut trailing_slash = false;
    for raw_segment in bytes[1..].split(|b| *b == b'/') {
        let mut segment = String::with_capacity(raw_segment.len());
        decoded.clear();
        canonical_segment(raw_segment, &mut segment, &mut decoded)?;
        if std::str::from_utf8(&decoded).is_err() {
            return Err(PathError::InvalidUtf8);
        }
        if has_double_encoding(&segment) {
            return Err(PathError::DoubleEncoding);
        }
        // Only dots and spaces, other than `.` and `..` (removed below): see
        // [`PathError::DotLikeSegment`].
        if !segment.is_empty()
            && !matches!(segment.as_str(), "." | "..")
            && dots_among_spaces(&segment).is_some()
        {
            return Err(PathError::DotLikeSegment);
        }
        match segment.as_str() {
            "" => trailing_slash = true,
            "." => trailing_slash = true,
            ".." => {
                segments.pop();
                trailing_slash = true;
            }
            _ => {
                segments.push(segment);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(raw.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        canonicalize(raw).unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    #[test]
    fn plain_paths_are_unchanged() {
        for p in [
            "/",
            "/a",
            "/a/b",
            "/a/b/",
            "/v1/users/42",
            "/a:b@c!$&'()*+,=",
            "/~user/x_y-z.json",
        ] {
            assert_eq!(ok(p), p);
        }
    }

    #[test]
    fn unreserved_escapes_are_decoded_and_others_normalised() {
        assert_eq!(ok("/a/%62"), "/a/b");
        assert_eq!(ok("/%41%7a%30%2D%5f%7E"), "/Az0-_~");
        assert_eq!(ok("/a%20b"), "/a%20b");
        assert_eq!(ok("/a%3fb"), "/a%3Fb");
        assert_eq!(ok("/caf%c3%a9"), "/caf%C3%A9");
        assert_eq!(ok("/100%25"), "/100%25");
    }

    #[test]
    fn raw_characters_outside_pchar_are_escaped() {
        assert_eq!(ok("/a b"), "/a%20b");
        assert_eq!(ok("/a|b[c]"), "/a%7Cb%5Bc%5D");
        assert_eq!(ok("/café"), "/caf%C3%A9");
        assert_eq!(ok("/{x}"), "/%7Bx%7D");
    }

    #[test]
    fn dot_segments_are_removed() {
        assert_eq!(ok("/a/./b"), "/a/b");
        assert_eq!(ok("/a/../b"), "/b");
        assert_eq!(ok("/a/b/.."), "/a/");
        assert_eq!(ok("/a/b/."), "/a/b/");
        assert_eq!(ok("/../../etc/passwd"), "/etc/passwd");
        assert_eq!(ok("/a/%2e%2E/b"), "/b");
        assert_eq!(ok("/a/.%2e/b"), "/b");
        assert_eq!(ok("/a/%2e/b"), "/a/b");
        assert_eq!(ok("/.."), "/");
        assert_eq!(ok("/a/..b"), "/a/..b");
        assert_eq!(ok("/a/b..."), "/a/b...");
        assert_eq!(ok("/compare/v1...v2"), "/compare/v1...v2");
        assert_eq!(ok("/a/%20b"), "/a/%20b");
    }

    #[test]
    fn empty_segments_are_merged() {
        assert_eq!(ok("//admin"), "/admin");
        assert_eq!(ok("/a//b///c"), "/a/b/c");
        assert_eq!(ok("/a//"), "/a/");
        assert_eq!(ok("//"), "/");
    }

    #[test]
    fn hostile_forms_are_refused() {
        let table: &[(&str, PathError)] = &[
            ("", PathError::NotAbsolute),
            ("a/b", PathError::NotAbsolute),
            ("*", PathError::NotAbsolute),
            ("/a%2fb", PathError::EncodedSeparator),
            ("/a%2Fb", PathError::EncodedSeparator),
            ("/a%5cb", PathError::EncodedSeparator),
            ("/a\\b", PathError::Backslash),
            ("/..\\admin", PathError::Backslash),
            ("/a%00b", PathError::ControlCharacter),
            ("/a\0b", PathError::ControlCharacter),
            ("/a%0d%0aSet-Cookie:x", PathError::ControlCharacter),
            ("/a\tb", PathError::ControlCharacter),
            ("/a%7fb", PathError::ControlCharacter),
            ("/a%", PathError::MalformedEscape),
            ("/a%4", PathError::MalformedEscape),
            ("/a%zz", PathError::MalformedEscape),
            ("/a%%41", PathError::MalformedEscape),
            ("/a/%252e%252e/b", PathError::DoubleEncoding),
            ("/a%252fb", PathError::DoubleEncoding),
            ("/a/%25%32%65", PathError::DoubleEncoding),
            ("/a/%25%32%65%25%32%65/admin", PathError::DoubleEncoding),
            ("/%c0%ae%c0%ae/admin", PathError::InvalidUtf8),
            ("/%ff", PathError::InvalidUtf8),
            ("/public/..;/admin", PathError::PathParameter),
            ("/admin;jsessionid=1", PathError::PathParameter),
            ("/public/..%3B/admin", PathError::PathParameter),
            ("/admin%3bjsessionid=1", PathError::PathParameter),
            ("/public/..%20/admin", PathError::DotLikeSegment),
            ("/public/.%20/admin", PathError::DotLikeSegment),
            ("/public/%20../admin", PathError::DotLikeSegment),
            ("/public/.../admin", PathError::DotLikeSegment),
            ("/public/..%2e/admin", PathError::DotLikeSegment),
            ("/public/%2e%2e%2e", PathError::DotLikeSegment),
            ("/public/%20/admin", PathError::DotLikeSegment),
            ("/public/...", PathError::DotLikeSegment),
        ];
        for (raw, want) in table {
            assert_eq!(canonicalize(raw), Err(*want), "{raw:?}");
        }
    }

    #[test]
    fn built_segments_that_some_server_reads_as_dot_segments_are_found() {
        for segment in [".", "..", "...", "..%20", ".%20.", "%20..", "%2E%2e"] {
            assert!(reads_as_dot_segment(segment), "{segment}");
        }
        for segment in ["", "%20", "a..", "..a", "..%2520", "v1...v2", "%2E%2Ex"] {
            assert!(!reads_as_dot_segment(segment), "{segment}");
        }
    }

    #[test]
    fn length_is_bounded() {
        let long = format!("/{}", "a".repeat(MAX_PATH_BYTES));
        assert_eq!(canonicalize(&long), Err(PathError::TooLong));
    }

    #[test]
    fn the_fast_path_agrees_with_the_full_algorithm() {
        for p in [
            "/",
            "/a",
            "/a/",
            "/a/b.c/",
            "/.a/..b/c..",
            "/a/.",
            "/a/..",
            "/a//b",
            "//",
            "/.",
            "/a/./b",
        ] {
            let fast = is_plainly_canonical(p.as_bytes());
            let full = canonicalize(p).unwrap();
            assert_eq!(fast, full == p, "{p}: fast={fast} full={full}");
        }
    }

    #[test]
    fn canonical_form_is_a_fixed_point() {
        for raw in ["/a/%62/./c/../d%20e", "//x/%7e/y/", "/caf%c3%a9/%41"] {
            let once = ok(raw);
            assert_eq!(ok(&once), once, "{raw}");
        }
    }

    /// Pseudo-random paths built from the pieces path tricks are made of: whatever comes in,
    /// nothing panics, and what is accepted is a fixed point with no dot segment, no empty
    /// segment, no hidden separator, no lower-case or needless escape and nothing outside
    /// RFC 3986's path characters — so the upstream reads the path the gateway routed.
    #[test]
    fn random_paths_are_refused_or_canonical() {
        const PIECES: [&str; 30] = [
            "/", "/", "a", "B", "~", ".", "..", "%2e", "%2E", "%2f", "%5c", "%25", "%", "%4",
            "%41", "%7e", "%c3%a9", "%c0%ae", "%00", "%20", " ", "\\", ";", "%3b", "?", "#", "é",
            "..%20", "-", "_",
        ];
        let mut state = 0x9a7b_u64;
        let mut next = move |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) as usize) % n
        };
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..20_000 {
            let mut raw = String::from("/");
            for _ in 0..1 + next(8) {
                raw.push_str(PIECES[next(PIECES.len())]);
            }
            match canonicalize(&raw) {
                Err(_) => refused += 1,
                Ok(c) => {
                    accepted += 1;
                    assert_eq!(
                        canonicalize(&c).as_deref(),
                        Ok(c.as_str()),
                        "{raw:?} → {c:?}"
                    );
                    assert!(c.starts_with('/'), "{raw:?} → {c:?}");
                    let inner = c.strip_suffix('/').unwrap_or(&c);
                    for segment in inner.split('/').skip(1) {
                        assert!(
                            !matches!(segment, "" | "." | ".."),
                            "{raw:?} → {c:?}: segment {segment:?}"
                        );
                    }
                    let bytes = c.as_bytes();
                    for (i, &b) in bytes.iter().enumerate() {
                        let pchar = b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,=:@%".contains(&b);
                        assert!(pchar, "{raw:?} → {c:?}: byte {b:#x}");
                        if b == b'%' {
                            let escape = &c[i + 1..i + 3];
                            assert!(
                                escape
                                    .bytes()
                                    .all(|h| h.is_ascii_digit() || (b'A'..=b'F').contains(&h)),
                                "{raw:?} → {c:?}: escape {escape:?}"
                            );
                            assert!(
                                !["2F", "5C", "2E", "41", "7E", "3B"].contains(&escape),
                                "{raw:?} → {c:?}: escape {escape:?} is hidden or needless"
                            );
                        }
                    }
                }
            }
        }
        assert!(
            accepted > 2_000 && refused > 2_000,
            "{accepted} accepted, {refused} refused"
        );
    }
}
