//! Byte ranges (RFC 9110 §14) served from a stored whole response: the gateway always asks the
//! upstream for the whole representation and answers a client's `Range` itself.
//!
//! Only a single range is served as 206; a request for several ranges gets the whole response
//! (200), which RFC 9110 §14.2 allows (a server may ignore `Range`). So does a `Range` that is
//! not valid `bytes` syntax, an `If-Range` that does not match, a stored status other than 200,
//! or a stored response whose length is not known.

use super::conditional::parse_entity_tag;
use super::date::parse_http_date;

/// How to answer a request's `Range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// The whole response, as without `Range`.
    Full,
    /// `206` with bytes `start..=end` of `length`.
    Partial { start: u64, end: u64, length: u64 },
    /// `416`: no byte of the `length` bytes is in the range.
    Unsatisfiable { length: u64 },
}

/// The validators of the stored response, for `If-Range`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Validators<'a> {
    pub etag: Option<&'a str>,
    pub last_modified: Option<&'a str>,
}

/// Decides how to answer `range` (the request's `Range`) with `if_range` for a stored response
/// of `status` and `length` bytes.
pub fn select(
    range: Option<&str>,
    if_range: Option<&str>,
    status: u16,
    length: Option<u64>,
    stored: Validators,
) -> RangeAnswer {
    let (Some(range), Some(length)) = (range, length) else {
        return RangeAnswer::Full;
    };
    if status != 200 {
        return RangeAnswer::Full;
    }
    if let Some(condition) = if_range {
        if !if_range_matches(condition, stored) {
            return RangeAnswer::Full;
        }
    }
    match parse_single(range) {
        Some(spec) => resolve(spec, length),
        None => RangeAnswer::Full,
    }
}

/// `If-Range` (RFC 9110 §13.1.5): an entity tag must match the stored one by strong comparison;
/// a date must equal the stored `Last-Modified` exactly. Anything else does not match.
fn if_range_matches(condition: &str, stored: Validators) -> bool {
    let condition = condition.trim_matches([' ', '\t']);
    if condition.starts_with('"') || condition.starts_with("W/") {
        return match (
            parse_entity_tag(condition),
            stored.etag.and_then(parse_entity_tag),
        ) {
            (Some(a), Some(b)) => a.strong_eq(&b),
            _ => false,
        };
    }
    match (
        parse_http_date(condition),
        stored.last_modified.and_then(parse_http_date),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// One `byte-range-spec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    /// `first-[last]`
    From { first: u64, last: Option<u64> },
    /// `-suffix`
    Suffix(u64),
}

/// `bytes=<one range>` (unit case-insensitive, whitespace around members tolerated); `None` for
/// another unit, several ranges, or invalid syntax.
fn parse_single(value: &str) -> Option<Spec> {
    let (unit, set) = value.trim_matches([' ', '\t']).split_once('=')?;
    if !unit.trim_matches([' ', '\t']).eq_ignore_ascii_case("bytes") {
        return None;
    }
    let members: Vec<&str> = set
        .split(',')
        .map(|m| m.trim_matches([' ', '\t']))
        .filter(|m| !m.is_empty())
        .collect();
    let [member] = members.as_slice() else {
        return None;
    };
    let (first, last) = member.split_once('-')?;
    let digits = |s: &str| {
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    if first.is_empty() {
        return digits(last).map(Spec::Suffix);
    }
    let first = digits(first)?;
    let last = if last.is_empty() {
        None
    } else {
        Some(digits(last)?)
    };
    if last.is_some_and(|l| l < first) {
        return None; // invalid: the whole header is ignored
    }
    Some(Spec::From { first, last })
}

fn resolve(spec: Spec, length: u64) -> RangeAnswer {
    match spec {
        Spec::From { first, .. } if first >= length => RangeAnswer::Unsatisfiable { length },
        Spec::From { first, last } => RangeAnswer::Partial {
            start: first,
            end: last.map_or(length - 1, |l| l.min(length - 1)),
            length,
        },
        Spec::Suffix(0) => RangeAnswer::Unsatisfiable { length },
        Spec::Suffix(_) if length == 0 => RangeAnswer::Unsatisfiable { length },
        Spec::Suffix(n) => RangeAnswer::Partial {
            start: length - n.min(length),
            end: length - 1,
            length,
        },
    }
}
