//! The compact form a bucket's request and decision travel in between the gateway and the
//! `RateLimiter` object: a query string and one comma-separated line, cheaper to build and read
//! than JSON bodies on a call made for every limited request.
//!
//! # Versions
//!
//! During a gradual deploy two builds run at once, and an isolate of one may ask an object of
//! the other, either way round. So the format is versioned by the query: `v=<n>` (not by the
//! path: objects of the builds before this one take any path but `/back` for `/take`), and a
//! query without `v` is version 1 — the format below, which every build since leases speaks (they
//! refuse any key they do not know, `v` included, with 400). An object answers in the version
//! it was asked in, or refuses a version it does not speak ([`Unreadable::Unsupported`]: 501),
//! which the isolate takes as a store error, as it takes any answer it cannot read: a
//! refusal, a line of another shape (more or fewer fields, a field not a number) or none at
//! all. An unreadable answer is never a grant: `on_store_error` decides the one request, and no
//! lease is held.
//!
//! A change of the format is a new version, rolled out in two deploys: first objects that
//! answer it besides the old one while isolates still ask in the old one, then isolates that
//! ask in it. An old version is dropped only in a deploy after every isolate stopped asking in it.
//! This build's isolates ask in version 1 without naming it, since objects of the builds before
//! refuse `v`. (The format before leases, `c=<cost>` and a six-field answer, is no version:
//! the builds since leases refuse it, and it refuses theirs.) A grant's tag is the object's own
//! (see [`super::Owner`]); isolates only echo it.

use super::{Decision, Grant, LeaseAsk, Limits};

/// The version this build's isolates ask in and its objects answer.
pub const VERSION: u64 = 1;

/// Why an object cannot read a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// Not a request of the version it names (or of version 1, naming none).
    Malformed,
    /// A version this build does not speak.
    Unsupported,
}

/// The query of a lease request: `l=<limit>&w=<window_s>&b=<burst>&n=<want>&h=<hold_ms>`.
pub fn take_query(limits: &Limits, ask: LeaseAsk) -> String {
    format!(
        "l={}&w={}&b={}&n={}&h={}",
        limits.limit, limits.window_s, limits.burst, ask.want, ask.hold_ms
    )
}

/// The query of a give-back: `l=…&w=…&b=…&t=<tag>&u=<unused>`.
pub fn give_back_query(limits: &Limits, tag: u64, unused: u64) -> String {
    format!(
        "l={}&w={}&b={}&t={tag}&u={unused}",
        limits.limit, limits.window_s, limits.burst
    )
}

/// Reads `query` into the limits and the two numbers named `a` and `b`: exactly those five
/// numbers, and `v` at most once, as [`VERSION`].
fn parse_five(query: &str, a: &str, b: &str) -> Result<(Limits, u64, u64), Unreadable> {
    let mut v: [Option<u64>; 6] = [None; 6];
    let mut malformed = false;
    for pair in query.split('&') {
        let Some((k, value)) = pair.split_once('=') else {
            malformed = true;
            continue;
        };
        let slot = match k {
            "l" => 0,
            "w" => 1,
            "b" => 2,
            _ if k == a => 3,
            _ if k == b => 4,
            "v" => 5,
            _ => {
                malformed = true;
                continue;
            }
        };
        match value.parse() {
            Ok(n) if v[slot].is_none() => v[slot] = Some(n),
            _ => malformed = true,
        }
    }
    // Another version's request may hold keys this one does not know: the version first.
    if v[5].unwrap_or(VERSION) != VERSION {
        return Err(Unreadable::Unsupported);
    }
    let field = |n: Option<u64>| n.filter(|_| !malformed).ok_or(Unreadable::Malformed);
    let limits = Limits {
        limit: field(v[0])?,
        window_s: field(v[1])?,
        burst: field(v[2])?,
    };
    Ok((limits, field(v[3])?, field(v[4])?))
}

/// Reads a lease request's query.
pub fn parse_take(query: &str) -> Result<(Limits, LeaseAsk), Unreadable> {
    let (limits, want, hold_ms) = parse_five(query, "n", "h")?;
    Ok((limits, LeaseAsk { want, hold_ms }))
}

/// Reads a give-back's query: the limits, the lease's tag and the unused extras.
pub fn parse_give_back(query: &str) -> Result<(Limits, u64, u64), Unreadable> {
    parse_five(query, "t", "u")
}

/// `allowed,limit,remaining,reset_s,retry_after_s,retry_after_ms` with `allowed` as 1 or 0.
pub fn decision_line(d: &Decision) -> String {
    format!(
        "{},{},{},{},{},{}",
        u8::from(d.allowed),
        d.limit,
        d.remaining,
        d.reset_s,
        d.retry_after_s,
        d.retry_after_ms
    )
}

/// A grant: its decision's line, then `,extra,tag`.
pub fn grant_line(g: &Grant) -> String {
    format!("{},{},{}", decision_line(&g.decision), g.extra, g.tag)
}

pub fn parse_decision(line: &str) -> Option<Decision> {
    let mut f = line.split(',');
    let d = decision_fields(&mut f)?;
    f.next().is_none().then_some(d)
}

pub fn parse_grant(line: &str) -> Option<Grant> {
    let mut f = line.split(',');
    let decision = decision_fields(&mut f)?;
    let extra = f.next()?.parse().ok()?;
    let tag = f.next()?.parse().ok()?;
    f.next().is_none().then_some(Grant {
        decision,
        extra,
        tag,
    })
}

/// One answer of the platform's `take_tokens`: `ok\t<grant line>` or `err\t<reason>`. A line
/// this version cannot read is an error, never a grant.
pub fn read_answer(answer: &str) -> Result<Grant, String> {
    match answer.strip_prefix("ok\t") {
        Some(line) => parse_grant(line).ok_or_else(|| format!("unreadable answer: {line:.100}")),
        None => Err(answer.strip_prefix("err\t").unwrap_or(answer).to_owned()),
    }
}

fn decision_fields<'a>(f: &mut impl Iterator<Item = &'a str>) -> Option<Decision> {
    let allowed = match f.next()? {
        "1" => true,
        "0" => false,
        _ => return None,
    };
    let mut n = || f.next()?.parse::<u64>().ok();
    Some(Decision {
        allowed,
        limit: n()?,
        remaining: n()?,
        reset_s: n()?,
        retry_after_s: n()?,
        retry_after_ms: n()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_requests_round_trip_and_refuse_garbage() {
        let limits = Limits {
            limit: 100,
            window_s: 60,
            burst: 150,
        };
        let ask = LeaseAsk {
            want: 16,
            hold_ms: 250,
        };
        let q = take_query(&limits, ask);
        assert_eq!(q, "l=100&w=60&b=150&n=16&h=250");
        assert_eq!(parse_take(&q), Ok((limits, ask)));
        let back = give_back_query(&limits, 7, 3);
        assert_eq!(parse_give_back(&back), Ok((limits, 7, 3)));
        assert_eq!(parse_take(&back), Err(Unreadable::Malformed));
        for bad in [
            "",
            "l=1&w=1&b=1&n=1",
            "l=1&w=1&b=1&n=x&h=1",
            "l=1&w=1&b=1&n=1&h=1&z=2",
            "l=1&w=1&b=1&n=1&h=1&n=2",
            "l=1&w=1&b=1&n=1&h=1&l=x",
            "l=-1&w=1&b=1&n=1&h=1",
            "l=1&w=1&b=1&n=1&h=1&v=1&v=1",
            "l=1&w=1&b=1&n=1&h=1&v=x",
            "l",
        ] {
            assert_eq!(parse_take(bad), Err(Unreadable::Malformed), "{bad}");
        }
    }

    /// Version 1 is what the builds before the version was named send and read: the same bytes
    /// both ways, so either build answers the other. Any other version is refused as such, keys
    /// this one does not know or not.
    #[test]
    fn version_one_is_the_unnamed_format_and_other_versions_are_refused() {
        let limits = Limits {
            limit: 10,
            window_s: 1,
            burst: 20,
        };
        let ask = LeaseAsk {
            want: 4,
            hold_ms: 250,
        };
        assert_eq!(parse_take("l=10&w=1&b=20&n=4&h=250"), Ok((limits, ask)));
        assert_eq!(parse_take("v=1&l=10&w=1&b=20&n=4&h=250"), Ok((limits, ask)));
        assert_eq!(
            parse_give_back("l=10&w=1&b=20&t=9&u=2&v=1"),
            Ok((limits, 9, 2))
        );
        for other in [
            "v=2&l=10&w=1&b=20&n=4&h=250",
            "v=0&l=10&w=1&b=20&n=4&h=250",
            "v=2&l=10&w=1&b=20&n=4&h=250&s=1",
            "v=3&want=4",
        ] {
            assert_eq!(parse_take(other), Err(Unreadable::Unsupported), "{other}");
            assert_eq!(
                parse_give_back(other),
                Err(Unreadable::Unsupported),
                "{other}"
            );
        }
        // The isolate asks in version 1 without naming it: an object of an older build refuses
        // a `v` it does not know.
        assert!(!take_query(&limits, ask).contains("v="));
        assert!(!give_back_query(&limits, 9, 2).contains("v="));
        let grant = Grant {
            decision: Decision {
                allowed: true,
                limit: 20,
                remaining: 12,
                reset_s: 1,
                retry_after_s: 0,
                retry_after_ms: 0,
            },
            extra: 3,
            tag: 42,
        };
        assert_eq!(grant_line(&grant), "1,20,12,1,0,0,3,42");
        assert_eq!(parse_grant("1,20,12,1,0,0,3,42"), Some(grant));
        // An older build's tag (the bucket's `tat`) reads as a tag: it is only echoed.
        assert!(parse_grant("1,20,12,1,0,0,3,1767225600000000000").is_some());
    }

    /// Whatever shape an answer of another version takes, version 1 does not read it as a
    /// grant: more or fewer fields, a marker in front, fields that are not numbers.
    #[test]
    fn an_answer_of_another_shape_is_no_grant() {
        assert_eq!(
            read_answer("ok\t1,20,12,1,0,0,3,42").map(|g| g.extra),
            Ok(3)
        );
        assert_eq!(
            read_answer("err\tstatus 501 unsupported version: speaks v=1"),
            Err("status 501 unsupported version: speaks v=1".into())
        );
        assert_eq!(
            read_answer("ok\t1,20,12,1,0,0,3,42,7"),
            Err("unreadable answer: 1,20,12,1,0,0,3,42,7".into())
        );
        assert!(read_answer("").is_err());
        for other in [
            "2,1,20,12,1,0,0,3,42",
            "v2,1,20,12,1,0,0,3,42",
            "1,20,12,1,0,0,3,42,7",
            "1,20,12,1,0,0,3",
            "1,20,12,1,0,0,3.5,42",
            "1,20,12,1,0,0,-3,42",
            "1;20;12;1;0;0;3;42",
            " 1,20,12,1,0,0,3,42",
            "1,20,12,1,0,0,3,42 ",
            "unsupported version",
        ] {
            assert_eq!(parse_grant(other), None, "{other}");
        }
    }

    #[test]
    fn grants_round_trip_and_refuse_garbage() {
        let g = Grant {
            decision: Decision {
                allowed: true,
                limit: 10,
                remaining: 3,
                reset_s: 7,
                retry_after_s: 0,
                retry_after_ms: 0,
            },
            extra: 4,
            tag: 1_767_225_600_000_000_000,
        };
        assert_eq!(parse_grant(&grant_line(&g)), Some(g));
        for bad in [
            "1,10,3,7,0,0",
            "1,10,3,7,0,0,4",
            "1,10,3,7,0,0,4,x",
            "1,10,3,7,0,0,4,5,6",
        ] {
            assert_eq!(parse_grant(bad), None, "{bad}");
        }
    }

    #[test]
    fn decisions_round_trip_and_refuse_garbage() {
        let d = Decision {
            allowed: false,
            limit: 10,
            remaining: 0,
            reset_s: 7,
            retry_after_s: 1,
            retry_after_ms: 650,
        };
        assert_eq!(decision_line(&d), "0,10,0,7,1,650");
        assert_eq!(parse_decision("0,10,0,7,1,650"), Some(d));
        for bad in [
            "",
            "2,1,1,1,1,1",
            "1,1,1,1,1",
            "1,1,1,1,1,1,1",
            "1,-1,1,1,1,1",
            "yes,1,1,1,1,1",
        ] {
            assert_eq!(parse_decision(bad), None, "{bad}");
        }
    }
}
