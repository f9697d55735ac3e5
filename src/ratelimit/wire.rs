//! The compact form a bucket's request and decision travel in between the gateway and the
//! `RateLimiter` object: a query string and one comma-separated line, cheaper to build and read
//! than JSON bodies on a call made for every limited request.

use super::{Decision, Grant, LeaseAsk, Limits};

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

/// Reads `query` into the limits and the two numbers named `a` and `b`; `None` unless exactly
/// those five numbers are present and valid.
fn parse_five(query: &str, a: &str, b: &str) -> Option<(Limits, u64, u64)> {
    let mut v: [Option<u64>; 5] = [None; 5];
    for pair in query.split('&') {
        let (k, value) = pair.split_once('=')?;
        let value: u64 = value.parse().ok()?;
        let slot = match k {
            "l" => 0,
            "w" => 1,
            "b" => 2,
            _ if k == a => 3,
            _ if k == b => 4,
            _ => return None,
        };
        if v[slot].replace(value).is_some() {
            return None;
        }
    }
    let limits = Limits {
        limit: v[0]?,
        window_s: v[1]?,
        burst: v[2]?,
    };
    Some((limits, v[3]?, v[4]?))
}

/// Reads a lease request's query.
pub fn parse_take(query: &str) -> Option<(Limits, LeaseAsk)> {
    let (limits, want, hold_ms) = parse_five(query, "n", "h")?;
    Some((limits, LeaseAsk { want, hold_ms }))
}

/// Reads a give-back's query: the limits, the lease's tag and the unused extras.
pub fn parse_give_back(query: &str) -> Option<(Limits, u64, u64)> {
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
        assert_eq!(parse_take(&q), Some((limits, ask)));
        let back = give_back_query(&limits, 7, 3);
        assert_eq!(parse_give_back(&back), Some((limits, 7, 3)));
        assert_eq!(parse_take(&back), None);
        for bad in [
            "",
            "l=1&w=1&b=1&n=1",
            "l=1&w=1&b=1&n=x&h=1",
            "l=1&w=1&b=1&n=1&h=1&z=2",
            "l=1&w=1&b=1&n=1&h=1&n=2",
            "l=-1&w=1&b=1&n=1&h=1",
            "l",
        ] {
            assert_eq!(parse_take(bad), None, "{bad}");
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
