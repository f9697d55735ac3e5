//! `Cache-Control` (RFC 9111 §5.2), parsed tolerantly and read conservatively.
//!
//! - Directive names are case-insensitive; arguments may be tokens or quoted strings (RFC 9111
//!   §5.2: recipients accept both forms), with `\` escapes inside quotes. Commas inside a quoted
//!   argument do not split directives. Empty list elements and elements that are not
//!   `token [ "=" value ]` are skipped; whitespace around names, `=` and values is tolerated. A
//!   malformed quoted argument (unterminated, or followed by more text) still counts as an
//!   argument that is present but invalid.
//! - Several header lines arrive joined with `,` (as `Headers.get` does), which is the same list.
//! - Durations (`delta-seconds`, RFC 9111 §1.2.2) are one or more ASCII digits; values above
//!   2^31 are taken as 2^31, as RFC 9111 §1.2.2 allows.
//! - **Invalid or conflicting durations read as 0.** A duration directive without an argument, with
//!   a non-numeric argument, or repeated with different values is invalid; RFC 9111 §4.2.1
//!   encourages treating such freshness information as stale, so `max-age`, `s-maxage`,
//!   `stale-if-error` and `stale-while-revalidate` become `Some(0)` (already stale; no stale
//!   serving). Repeating the *same* value is harmless.
//! - **Restrictive flags count in any form.** `no-store`, `no-cache`, `private`,
//!   `must-revalidate`, `proxy-revalidate`, `no-transform` and `must-understand` are set whether
//!   or not they carry an argument. In particular the field-qualified forms `private="set-cookie"`
//!   and `no-cache="set-cookie"` are read as plain `private` and plain `no-cache`: RFC 9111
//!   §5.2.2.7 and §5.2.2.4 note that this is how the qualified forms are widely handled, and for a
//!   shared cache it is the conservative reading (a qualified `private` response is not stored at
//!   all rather than stored minus the named fields; a qualified `no-cache` response is always
//!   revalidated). The named fields are not kept.
//! - **Permissive flags count only in their defined form.** `public` and `immutable` take no
//!   argument; an occurrence with one (`public="x"`) is invalid and ignored, since honouring it
//!   could only make more responses cacheable.
//! - Unknown directives are ignored (RFC 9111 §5.2.3).

/// The value RFC 9111 §1.2.2 lets a cache use for any larger `delta-seconds`.
pub const DELTA_SECONDS_MAX: u64 = 1 << 31;

/// The directives of one `Cache-Control` value (request or response) that the gateway reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheControl {
    pub no_store: bool,
    /// Also set by the field-qualified form `no-cache="…"`.
    pub no_cache: bool,
    /// Also set by the field-qualified form `private="…"`.
    pub private: bool,
    pub public: bool,
    pub must_revalidate: bool,
    pub proxy_revalidate: bool,
    pub no_transform: bool,
    pub must_understand: bool,
    pub immutable: bool,
    pub s_maxage: Option<u64>,
    pub max_age: Option<u64>,
    /// RFC 5861.
    pub stale_if_error: Option<u64>,
    /// RFC 5861; parsed for completeness, not acted on by the gateway.
    pub stale_while_revalidate: Option<u64>,
}

/// Parses a `Cache-Control` value; `None` (no header) gives all directives absent.
pub fn parse(value: Option<&str>) -> CacheControl {
    let mut cc = CacheControl::default();
    let Some(value) = value else {
        return cc;
    };
    let mut s_maxage = Duration::Absent;
    let mut max_age = Duration::Absent;
    let mut stale_if_error = Duration::Absent;
    let mut stale_while_revalidate = Duration::Absent;
    for element in split_list(value) {
        let Some((name, arg)) = directive(element) else {
            continue;
        };
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            "no-store" => cc.no_store = true,
            "no-cache" => cc.no_cache = true,
            "private" => cc.private = true,
            "must-revalidate" => cc.must_revalidate = true,
            "proxy-revalidate" => cc.proxy_revalidate = true,
            "no-transform" => cc.no_transform = true,
            "must-understand" => cc.must_understand = true,
            "public" => cc.public |= matches!(arg, Arg::None),
            "immutable" => cc.immutable |= matches!(arg, Arg::None),
            "s-maxage" => s_maxage.see(&arg),
            "max-age" => max_age.see(&arg),
            "stale-if-error" => stale_if_error.see(&arg),
            "stale-while-revalidate" => stale_while_revalidate.see(&arg),
            _ => {}
        }
    }
    cc.s_maxage = s_maxage.value();
    cc.max_age = max_age.value();
    cc.stale_if_error = stale_if_error.value();
    cc.stale_while_revalidate = stale_while_revalidate.value();
    cc
}

/// Parses `delta-seconds`: one or more ASCII digits, saturating at [`DELTA_SECONDS_MAX`].
pub fn parse_delta_seconds(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: u64 = 0;
    for b in s.bytes() {
        v = v
            .saturating_mul(10)
            .saturating_add(u64::from(b - b'0'))
            .min(DELTA_SECONDS_MAX);
    }
    Some(v)
}

/// What was seen of one duration directive.
#[derive(Clone, Copy)]
enum Duration {
    Absent,
    Value(u64),
    /// Malformed, or repeated with a different value: read as 0.
    Invalid,
}

impl Duration {
    fn see(&mut self, arg: &Arg) {
        let parsed = match arg {
            Arg::Value(v) => parse_delta_seconds(v),
            Arg::None | Arg::Malformed => None,
        };
        *self = match (*self, parsed) {
            (_, None) | (Duration::Invalid, _) => Duration::Invalid,
            (Duration::Absent, Some(v)) => Duration::Value(v),
            (Duration::Value(old), Some(v)) if old == v => Duration::Value(v),
            (Duration::Value(_), Some(_)) => Duration::Invalid,
        };
    }

    fn value(self) -> Option<u64> {
        match self {
            Duration::Absent => None,
            Duration::Value(v) => Some(v),
            Duration::Invalid => Some(0),
        }
    }
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Splits a comma-separated list, ignoring commas inside quoted strings.
pub(crate) fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quotes = false;
            }
        } else if c == '"' {
            in_quotes = true;
        } else if c == ',' {
            out.push(value.get(start..i).unwrap_or(""));
            start = i + 1;
        }
    }
    out.push(value.get(start..).unwrap_or(""));
    out
}

/// The argument of one directive.
enum Arg {
    None,
    /// A token, or the content of a quoted string.
    Value(String),
    /// An unterminated quoted string, or one followed by more text.
    Malformed,
}

/// `token [ "=" ( token / quoted-string ) ]` → (name, argument); `None` if the name is not a
/// token (the element is then skipped).
fn directive(element: &str) -> Option<(&str, Arg)> {
    let element = element.trim_matches(is_ows);
    let (name, arg) = match element.split_once('=') {
        Some((n, a)) => (n.trim_matches(is_ows), Some(a.trim_matches(is_ows))),
        None => (element, None),
    };
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return None;
    }
    let arg = match arg {
        None => Arg::None,
        Some(a) if a.starts_with('"') => unquote(a).map_or(Arg::Malformed, Arg::Value),
        Some(a) => Arg::Value(a.to_string()),
    };
    Some((name, arg))
}

/// The content of a quoted string that spans all of `s`; `None` if unterminated or followed by
/// anything.
fn unquote(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars();
    if chars.next() != Some('"') {
        return None;
    }
    let mut escaped = false;
    while let Some(c) = chars.next() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return chars.next().is_none().then_some(out);
        } else {
            out.push(c);
        }
    }
    None
}
