//! How a request reads against a route's `match` conditions, and whether two routes'
//! conditions can hold for one request (the document's conflicts).

use super::MatchFacts;
use crate::config::{HeaderCondition, MatchSpec};

/// How a request reads against a route's `match` conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// They hold however the request is read.
    Holds,
    /// They hold as some readers read it and not as others.
    Ambiguous,
    /// No reader finds them met.
    Fails,
}

impl Reading {
    /// Both `self` and `other` (for two conditions that must both hold).
    fn and(self, other: Reading) -> Reading {
        match (self, other) {
            (Reading::Fails, _) | (_, Reading::Fails) => Reading::Fails,
            (Reading::Ambiguous, _) | (_, Reading::Ambiguous) => Reading::Ambiguous,
            _ => Reading::Holds,
        }
    }
}

/// Whether one request could satisfy both `a` and `b`: only a header or query parameter that
/// both require with different exact values rules that out (`"*"` fits any value, and a
/// condition one of them lacks can hold beside the other's).
pub fn compatible(a: &MatchSpec, b: &MatchSpec) -> bool {
    let headers_differ = a.headers.iter().any(|(name, ca)| {
        b.headers.iter().any(|(other, cb)| {
            name == other
                && matches!((ca, cb), (HeaderCondition::Exact(x), HeaderCondition::Exact(y)) if x != y)
        })
    });
    let query_differs = a
        .query
        .iter()
        .any(|(name, x)| b.query.iter().any(|(other, y)| name == other && x != y));
    !headers_differ && !query_differs
}

/// `x-api-version: 2, query v=1`, for conflict messages.
pub(super) fn describe(spec: &MatchSpec) -> String {
    let headers = spec.headers.iter().map(|(n, c)| match c {
        HeaderCondition::Present => format!("header {n} is present"),
        HeaderCondition::Exact(v) => format!("header {n} is \"{v}\""),
    });
    let query = spec
        .query
        .iter()
        .map(|(n, v)| format!("query {n} is \"{v}\""));
    headers.chain(query).collect::<Vec<_>>().join(" and ")
}

/// How the request reads against every condition of `spec`. A header condition reads the
/// value as the runtime combines repeated headers (`a, b`): an exact value that is only one of
/// its comma-separated items is met for a reader that takes the first or last header and not
/// for the gateway. A query condition holds when the parameter is present and every occurrence
/// of it (names and values percent- and `+`-decoded) has the value, split on `&` alone and on
/// `&` or `;`: an upstream may read any one of repeated parameters, split either way, and
/// ASP.NET reads names in any letter case. Some but not all of those occurrences having the
/// value is [`Reading::Ambiguous`].
pub fn read_conditions<F: MatchFacts>(spec: &MatchSpec, facts: &F) -> Reading {
    let mut reading = Reading::Holds;
    for (name, c) in &spec.headers {
        reading = reading.and(match (c, facts.header(name)) {
            (_, None) => Reading::Fails,
            (HeaderCondition::Present, Some(_)) => Reading::Holds,
            (HeaderCondition::Exact(want), Some(v)) if v == want => Reading::Holds,
            (HeaderCondition::Exact(want), Some(v)) => {
                if v.contains(',') && v.split(',').any(|item| item.trim() == want) {
                    Reading::Ambiguous
                } else {
                    Reading::Fails
                }
            }
        });
        if reading == Reading::Fails {
            return reading;
        }
    }
    for (name, want) in &spec.query {
        reading = reading.and(read_query(facts.query(), name, want));
        if reading == Reading::Fails {
            return reading;
        }
    }
    reading
}

/// How `query` gives parameter `name` the value `want`: split on `&` alone and on `&` or `;`
/// (as some upstream frameworks split), every occurrence, in the name's case or another, must
/// have the value, and each reading must see it in the name's own case.
fn read_query(query: Option<&str>, name: &str, want: &str) -> Reading {
    let Some(query) = query else {
        return Reading::Fails;
    };
    let by_amp = occurrences(query.split('&'), name, want);
    let by_both = occurrences(query.split(['&', ';']), name, want);
    let all_agree = |o: &Occurrences| o.exact && !o.other;
    if all_agree(&by_amp) && all_agree(&by_both) {
        Reading::Holds
    } else if by_amp.wanted || by_both.wanted {
        Reading::Ambiguous
    } else {
        Reading::Fails
    }
}

/// What one reading of a query finds for a parameter.
struct Occurrences {
    /// An occurrence spelt as the condition names it has the value.
    exact: bool,
    /// Some occurrence (in any letter case) has the value.
    wanted: bool,
    /// Some occurrence (in any letter case) has another value, or is not the name's own
    /// spelling.
    other: bool,
}

fn occurrences<'a>(segments: impl Iterator<Item = &'a str>, name: &str, want: &str) -> Occurrences {
    let decoded = |raw: &str| crate::auth::credentials::form_decode(raw);
    let mut found = Occurrences {
        exact: false,
        wanted: false,
        other: false,
    };
    for segment in segments.filter(|s| !s.is_empty()) {
        let (raw_name, raw_value) = segment.split_once('=').unwrap_or((segment, ""));
        let Some(n) = decoded(raw_name) else { continue };
        if !n.eq_ignore_ascii_case(name.as_bytes()) {
            continue;
        }
        let has_value = decoded(raw_value).as_deref() == Some(want.as_bytes());
        if has_value {
            found.wanted = true;
        }
        if has_value && n == name.as_bytes() {
            found.exact = true;
        } else {
            found.other = true;
        }
    }
    found
}
