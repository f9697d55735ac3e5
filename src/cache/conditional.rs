//! Conditional requests against a stored response (RFC 9110 §13), and the validators the gateway
//! sends when it revalidates a stale entry with the upstream (RFC 9111 §4.3.1).

use super::date::parse_http_date;

/// Preconditions are evaluated only against a stored 2xx response: RFC 9110 §13.2.1 has a
/// server ignore them when the unconditional response would not be 2xx (or 412). Call
/// [`not_modified`] only when this is true for the stored status.
pub fn preconditions_apply(stored_status: u16) -> bool {
    (200..300).contains(&stored_status)
}

/// Whether a GET/HEAD request with these conditional headers may be answered `304 Not Modified`
/// from a stored 2xx response with these validators (RFC 9110 §13.2.2 order):
///
/// - If `If-None-Match` is present, it alone decides and `If-Modified-Since` is ignored
///   (§13.1.3). `*` matches any stored response (the representation exists). Otherwise it is a
///   list of entity tags compared with the stored `ETag` by **weak** comparison (§8.8.3.2: `W/`
///   prefixes are ignored, the opaque tags must be identical). A malformed list, or a stored
///   `ETag` that is absent or malformed, never matches: the full response is always a correct
///   answer, a wrong 304 is not.
/// - Else `If-Modified-Since` applies only when the stored response has a `Last-Modified` and both
///   dates parse; then not modified iff `Last-Modified ≤ If-Modified-Since` (§13.1.3). RFC 9111
///   §4.3.2 would let a cache fall back to the stored `Date`; the gateway does not, and answers in
///   full instead.
pub fn not_modified(
    if_none_match: Option<&str>,
    if_modified_since: Option<&str>,
    etag: Option<&str>,
    last_modified: Option<&str>,
) -> bool {
    if let Some(inm) = if_none_match {
        if inm.trim_matches(is_ows) == "*" {
            return true;
        }
        let Some(stored) = etag.and_then(parse_entity_tag) else {
            return false;
        };
        return parse_entity_tag_list(inm)
            .is_some_and(|tags| tags.iter().any(|t| t.weak_eq(&stored)));
    }
    match (
        if_modified_since.and_then(parse_http_date),
        last_modified.and_then(parse_http_date),
    ) {
        (Some(since), Some(modified)) => modified <= since,
        _ => false,
    }
}

/// The conditional headers (lower-case names) for revalidating a stored response with the
/// upstream: `if-none-match` with the stored `ETag` and `if-modified-since` with the stored
/// `Last-Modified`, each sent as received (RFC 9111 §4.3.1: the entity tag MUST be sent, the
/// `Last-Modified` value SHOULD be) and only when valid (a malformed validator is not sent).
pub fn revalidation_headers(
    etag: Option<&str>,
    last_modified: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(e) = etag.map(|e| e.trim_matches(is_ows)) {
        if parse_entity_tag(e).is_some() {
            out.push(("if-none-match", e.to_string()));
        }
    }
    if let Some(lm) = last_modified.map(|l| l.trim_matches(is_ows)) {
        if parse_http_date(lm).is_some() {
            out.push(("if-modified-since", lm.to_string()));
        }
    }
    out
}

/// `entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityTag<'a> {
    pub weak: bool,
    /// Between the quotes.
    pub opaque: &'a str,
}

impl EntityTag<'_> {
    /// Weak comparison (RFC 9110 §8.8.3.2): the opaque tags are identical.
    pub fn weak_eq(&self, other: &EntityTag) -> bool {
        self.opaque == other.opaque
    }

    /// Strong comparison: neither is weak and the opaque tags are identical.
    pub fn strong_eq(&self, other: &EntityTag) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }
}

/// Parses one entity tag (surrounding whitespace allowed); `None` if malformed.
pub fn parse_entity_tag(s: &str) -> Option<EntityTag<'_>> {
    let (tag, rest) = entity_tag_prefix(s.trim_matches(is_ows))?;
    rest.is_empty().then_some(tag)
}

/// Parses `#entity-tag` (empty elements allowed); `None` if any member is malformed. An empty
/// list parses as no tags.
pub fn parse_entity_tag_list(s: &str) -> Option<Vec<EntityTag<'_>>> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches(|c| is_ows(c) || c == ',');
        if rest.is_empty() {
            return Some(out);
        }
        let (tag, after) = entity_tag_prefix(rest)?;
        out.push(tag);
        let after = after.trim_start_matches(is_ows);
        if !(after.is_empty() || after.starts_with(',')) {
            return None;
        }
        rest = after;
    }
}

/// An entity tag at the start of `s`, and what follows it.
fn entity_tag_prefix(s: &str) -> Option<(EntityTag<'_>, &str)> {
    let (weak, s) = match s.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let body = s.strip_prefix('"')?;
    let end = body.find('"')?;
    let opaque = body.get(..end)?;
    if !opaque.bytes().all(is_etagc) {
        return None;
    }
    let rest = body.get(end + 1..)?;
    Some((EntityTag { weak, opaque }, rest))
}

/// `etagc = %x21 / %x23-7E / obs-text`.
fn is_etagc(b: u8) -> bool {
    b == 0x21 || (0x23..=0x7E).contains(&b) || b >= 0x80
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}
