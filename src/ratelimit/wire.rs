//! The compact form a bucket's request and decision travel in between the gateway and the
//! `RateLimiter` object: a query string and one comma-separated line, cheaper to build and read
//! than JSON bodies on a call made for every limited request.

use super::{Decision, Limits};

/// The query of a take request: `l=<limit>&w=<window_s>&b=<burst>&c=<cost>`.
pub fn take_query(limits: &Limits, cost: u64) -> String {
    format!(
        "l={}&w={}&b={}&c={cost}",
        limits.limit, limits.window_s, limits.burst
    )
}

/// Reads a take request's query; `None` unless all four numbers are present and valid.
pub fn parse_take(query: &str) -> Option<(Limits, u64)> {
    let (mut l, mut w, mut b, mut c) = (None, None, None, None);
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=')?;
        let v: u64 = v.parse().ok()?;
        match k {
            "l" => l = Some(v),
            "w" => w = Some(v),
            "b" => b = Some(v),
            "c" => c = Some(v),
            _ => return None,
        }
    }
    Some((
        Limits {
            limit: l?,
            window_s: w?,
            burst: b?,
        },
        c?,
    ))
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

pub fn parse_decision(line: &str) -> Option<Decision> {
    let mut f = line.split(',');
    let allowed = match f.next()? {
        "1" => true,
        "0" => false,
        _ => return None,
    };
    let mut n = || f.next()?.parse::<u64>().ok();
    let d = Decision {
        allowed,
        limit: n()?,
        remaining: n()?,
        reset_s: n()?,
        retry_after_s: n()?,
        retry_after_ms: n()?,
    };
    f.next().is_none().then_some(d)
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
        let q = take_query(&limits, 2);
        assert_eq!(q, "l=100&w=60&b=150&c=2");
        assert_eq!(parse_take(&q), Some((limits, 2)));
        for bad in [
            "",
            "l=1&w=1&b=1",
            "l=1&w=1&b=1&c=x",
            "l=1&w=1&b=1&c=1&z=2",
            "l=-1&w=1&b=1&c=1",
            "l",
        ] {
            assert_eq!(parse_take(bad), None, "{bad}");
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
