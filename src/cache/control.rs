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
//! - **Restrictive flags count in any form, except a well-formed field list.** `no-store`,
//!   `must-revalidate`, `proxy-revalidate`, `no-transform` and `must-understand` are set whether
//!   or not they carry an argument. `no-cache` and `private` with a well-formed list of field
//!   names (`private="set-cookie, x-user"`, or one unquoted token) are *qualified*: RFC 9111
//!   §5.2.2.4 and §5.2.2.7 let a shared cache store such a response without the named fields,
//!   which is what the gateway does ([`CacheControl::no_cache_fields`],
//!   [`CacheControl::private_fields`]). A qualified form whose list is empty or not a list of
//!   field names (`private=""`, `no-cache="a b"`, an unterminated quote) is read as the
//!   unqualified directive: the conservative reading for a shared cache. An unqualified
//!   occurrence anywhere wins over any qualified one.
//! - **Permissive flags count only in their defined form.** `public` and `immutable` take no
//!   argument; an occurrence with one (`public="x"`) is invalid and ignored, since honouring it
//!   could only make more responses cacheable.
//! - Unknown directives are ignored (RFC 9111 §5.2.3).

/// The value RFC 9111 §1.2.2 lets a cache use for any larger `delta-seconds`.
pub const DELTA_SECONDS_MAX: u64 = 1 << 31;

/// The directives of one `Cache-Control` value (request or response) that the gateway reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheControl {
    pub no_store: bool,
    /// Unqualified `no-cache` (or a qualified one whose field list is malformed).
    pub no_cache: bool,
    /// Unqualified `private` (or a qualified one whose field list is malformed).
    pub private: bool,
    /// The lower-case field names of a well-formed `no-cache="…"` (empty when `no_cache`).
    pub no_cache_fields: Vec<String>,
    /// The lower-case field names of a well-formed `private="…"` (empty when `private`).
    pub private_fields: Vec<String>,
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
    /// RFC 5861.
    pub stale_while_revalidate: Option<u64>,
    /// Request directive `min-fresh`.
    pub min_fresh: Option<u64>,
    /// Request directive `max-stale`; without an argument, [`DELTA_SECONDS_MAX`] (any staleness).
    pub max_stale: Option<u64>,
    /// Request directive `only-if-cached`.
    pub only_if_cached: bool,
}

impl CacheControl {
    /// Response fields a shared cache must not store (qualified `private`) or must not serve
    /// without revalidation (qualified `no-cache`): the gateway strips them from its copy.
    pub fn stripped_fields(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for f in self.private_fields.iter().chain(&self.no_cache_fields) {
            if !out.contains(f) {
                out.push(f.clone());
            }
        }
        out
    }

    /// Records a `no-cache` or `private` occurrence: a well-formed field list qualifies it,
    /// anything else is the unqualified directive.
    fn see_qualifiable(flag: &mut bool, fields: &mut Vec<String>, arg: &Arg) {
        match arg {
            Arg::Value(v) => match field_names(v) {
                Some(names) => {
                    for n in names {
                        if !fields.contains(&n) {
                            fields.push(n);
                        }
                    }
                }
                None => *flag = true,
            },
            Arg::None | Arg::Malformed => *flag = true,
        }
    }
}

/// A non-empty comma-separated list of field names (tokens), lower-cased; `None` otherwise.
fn field_names(v: &str) -> Option<Vec<String>> {
    field_name_list(v.split(','))
}

/// Field names (tokens) given one by one, trimmed and lower-cased, empty ones skipped: `None`
/// when one is not a token or none is left.
pub(super) fn field_name_list<'a>(items: impl Iterator<Item = &'a str>) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for name in items {
        let name = name.trim_matches(is_ows);
        if name.is_empty() {
            continue;
        }
        if !name.bytes().all(is_tchar) {
            return None;
        }
        out.push(name.to_ascii_lowercase());
    }
    (!out.is_empty()).then_some(out)
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
    let mut min_fresh = Duration::Absent;
    let mut max_stale = Duration::Absent;
    for element in split_list(value) {
        let Some((name, arg)) = directive(element) else {
            continue;
        };
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            "no-store" => cc.no_store = true,
            "no-cache" => {
                CacheControl::see_qualifiable(&mut cc.no_cache, &mut cc.no_cache_fields, &arg)
            }
            "private" => {
                CacheControl::see_qualifiable(&mut cc.private, &mut cc.private_fields, &arg)
            }
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
            "min-fresh" => min_fresh.see(&arg),
            "max-stale" => match arg {
                Arg::None => max_stale.see(&Arg::Value(DELTA_SECONDS_MAX.to_string())),
                _ => max_stale.see(&arg),
            },
            "only-if-cached" => cc.only_if_cached = true,
            _ => {}
        }
    }
    if cc.no_cache {
        cc.no_cache_fields.clear();
    }
    if cc.private {
        cc.private_fields.clear();
    }
    cc.s_maxage = s_maxage.value();
    cc.max_age = max_age.value();
    cc.stale_if_error = stale_if_error.value();
    cc.stale_while_revalidate = stale_while_revalidate.value();
    cc.min_fresh = min_fresh.value();
    cc.max_stale = max_stale.value();
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
