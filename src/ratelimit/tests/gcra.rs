use super::*;
use crate::config::{RateLimitKey, RateLimitPolicy, StoreErrorPolicy};

/// One row of a scenario: `times` identical requests at `T0 + at` ms; every one must have the
/// outcome `allowed`, and the last must report the rest.
struct Step {
    at: u64,
    cost: u64,
    times: u32,
    allowed: bool,
    remaining: u64,
    reset_s: u64,
    retry_after_s: u64,
}

#[allow(clippy::too_many_arguments)]
const fn s(
    at: u64,
    cost: u64,
    times: u32,
    allowed: bool,
    remaining: u64,
    reset_s: u64,
    retry_after_s: u64,
) -> Step {
    Step {
        at,
        cost,
        times,
        allowed,
        remaining,
        reset_s,
        retry_after_s,
    }
}

const Y: bool = true;
const N: bool = false;

fn run(name: &str, limits: Limits, steps: &[Step]) {
    let mut b = Bucket::new(limits);
    for (i, st) in steps.iter().enumerate() {
        let mut last = None;
        for k in 0..st.times {
            let d = b.at(T0 + st.at, st.cost);
            assert_eq!(
                d.allowed, st.allowed,
                "{name}: step {i} (at {} cost {}) repetition {k}: {d:?}",
                st.at, st.cost
            );
            last = Some(d);
        }
        let Some(d) = last else { continue };
        let want = Decision {
            allowed: st.allowed,
            limit: d.limit,
            remaining: st.remaining,
            reset_s: st.reset_s,
            retry_after_s: st.retry_after_s,
            retry_after_ms: d.retry_after_ms,
        };
        assert_eq!(d, want, "{name}: step {i} (at {} cost {})", st.at, st.cost);
        // The exact wait agrees with the whole seconds announced.
        assert_eq!(
            d.retry_after_ms.div_ceil(1000),
            d.retry_after_s,
            "{name}: step {i}"
        );
        assert_eq!(d.limit, limits.burst, "{name}: step {i}");
    }
}

#[test]
fn steady_rate_ten_per_second() {
    // T = 100 ms, burst 10.
    run(
        "10/1s",
        lim(10, 1, 10),
        &[
            s(0, 1, 1, Y, 9, 1, 0),
            s(0, 1, 9, Y, 0, 1, 0),
            s(0, 1, 1, N, 0, 1, 1), // the 11th: the next unit is 100 ms away
            s(99, 1, 1, N, 0, 1, 1),
            s(100, 1, 1, Y, 0, 1, 0), // one more after 100 ms
            s(100, 1, 1, N, 0, 1, 1),
            s(150, 1, 1, N, 0, 1, 1),
            s(200, 1, 1, Y, 0, 1, 0),
            s(450, 1, 1, Y, 1, 1, 0), // 250 ms of credit: two units, one spent
            s(450, 1, 1, Y, 0, 1, 0),
            s(450, 1, 1, N, 0, 1, 1),
            s(5_000, 1, 1, Y, 9, 1, 0), // idle: full again
        ],
    );
}

#[test]
fn burst_above_limit() {
    // 20 per second with a burst of 40: T = 50 ms, depth 2 s.
    run(
        "20/1s burst 40",
        lim(20, 1, 40),
        &[
            s(0, 1, 40, Y, 0, 2, 0),
            s(0, 1, 1, N, 0, 2, 1),
            s(1_000, 1, 20, Y, 0, 2, 0), // one second refills 20, not 40
            s(1_000, 1, 1, N, 0, 2, 1),
            s(1_049, 1, 1, N, 0, 2, 1),
            s(1_050, 1, 1, Y, 0, 2, 0),
            s(100_000, 1, 40, Y, 0, 2, 0), // long idle: 40, not more
            s(100_000, 1, 1, N, 0, 2, 1),
        ],
    );
}

#[test]
fn burst_below_limit() {
    // 100 per minute, burst 5: T = 600 ms.
    run(
        "100/60s burst 5",
        lim(100, 60, 5),
        &[
            s(0, 1, 5, Y, 0, 3, 0),
            s(0, 1, 1, N, 0, 3, 1),
            s(599, 1, 1, N, 0, 3, 1),
            s(600, 1, 1, Y, 0, 3, 0),
            s(1_200, 1, 1, Y, 0, 3, 0),
        ],
    );
}

#[test]
fn window_edges_are_exact() {
    // 5 per 10 s: T = 2 s exactly; after the burst the next unit is due at exactly +2 000 ms.
    run(
        "5/10s",
        lim(5, 10, 5),
        &[
            s(0, 1, 5, Y, 0, 10, 0), // full depth is exactly 10 s, not 11
            s(0, 1, 1, N, 0, 10, 2), // exactly 2 s, not 3
            s(1, 1, 1, N, 0, 10, 2),
            s(1_001, 1, 1, N, 0, 9, 1),
            s(1_999, 1, 1, N, 0, 9, 1),  // 1 ms early
            s(2_000, 1, 1, Y, 0, 10, 0), // exactly on time
            s(2_000, 1, 1, N, 0, 10, 2),
            s(3_999, 1, 1, N, 0, 9, 1),
            s(4_000, 1, 1, Y, 0, 10, 0),
            s(14_000, 1, 1, Y, 4, 2, 0), // exactly one full depth later: full
        ],
    );
}

#[test]
fn three_per_second_is_exactly_three() {
    // T = 1/3 s is not a whole number of milliseconds (nor nanoseconds); a client hammering
    // every millisecond must still get exactly 3 per second once the burst is spent.
    let mut b = Bucket::new(lim(3, 1, 3));
    let mut allowed = Vec::new();
    for ms in 0..30_000 {
        if b.at(T0 + ms, 1).allowed {
            allowed.push(ms);
        }
    }
    assert_eq!(&allowed[..8], &[0, 1, 2, 334, 667, 1_000, 1_334, 1_667]);
    for second in 1..30 {
        let n = allowed.iter().filter(|&&t| t / 1_000 == second).count();
        assert_eq!(n, 3, "second {second}");
    }
    // Every sliding one-second window after the burst holds exactly 3.
    for start in 334..29_000 {
        let n = allowed
            .iter()
            .filter(|&&t| t >= start && t < start + 1_000)
            .count();
        assert_eq!(n, 3, "window starting at {start}");
    }
    assert_eq!(allowed.len(), 3 + 29 * 3 + 2);
}

#[test]
fn long_idle_gives_full_burst_not_more() {
    let mut b = Bucket::new(lim(100, 60, 100));
    for _ in 0..100 {
        assert!(b.at(T0, 1).allowed);
    }
    assert!(!b.at(T0, 1).allowed);
    let ten_years = 10 * 365 * 86_400_000;
    let d = b.peek(T0 + ten_years, 0);
    assert_eq!((d.allowed, d.remaining, d.reset_s), (true, 100, 0));
    for i in 0..100 {
        let d = b.at(T0 + ten_years, 1);
        assert!(d.allowed, "request {i}");
        assert_eq!(d.remaining, 99 - i);
    }
    assert!(!b.at(T0 + ten_years, 1).allowed);

    // A state from the distant past (even the epoch) is a full bucket.
    let (d, _) = check(Some(GcraState { tat: 0, rem: 0 }), &lim(10, 1, 10), T0, 1);
    assert_eq!((d.allowed, d.remaining), (true, 9));
}

#[test]
fn clock_going_backwards_never_gives_more_than_burst() {
    let limits = lim(10, 1, 10);
    let mut b = Bucket::new(limits);
    for _ in 0..10 {
        assert!(b.at(T0 + 10_000, 1).allowed);
    }
    let full = b.state;

    // Ten seconds earlier: the bucket looks used up to 11 s ahead; nothing passes, nothing
    // changes, remaining stays at 0 (no underflow), and the wait includes the step back.
    let d = b.at(T0, 1);
    assert_eq!(
        d,
        Decision {
            allowed: false,
            limit: 10,
            remaining: 0,
            reset_s: 11,
            retry_after_s: 11,
            retry_after_ms: 10_100,
        }
    );
    assert_eq!(b.state, full);
    let d = b.at(T0, 0);
    assert!(!d.allowed);
    assert_eq!(d.retry_after_s, 10);

    // A small step back in a partly used bucket: fewer remaining, never more.
    let mut b = Bucket::new(limits);
    for _ in 0..5 {
        assert!(b.at(T0 + 1_000, 1).allowed);
    }
    assert_eq!(b.peek(T0 + 1_000, 0).remaining, 5);
    assert_eq!(b.peek(T0 + 900, 0).remaining, 4);
    assert_eq!(b.peek(T0, 0).remaining, 0);

    // A clock that keeps flipping back an hour: the early readings are all refused, and the
    // total never exceeds burst + what the latest reading has earned.
    let mut b = Bucket::new(limits);
    let mut passed = 0u64;
    for ms in 0..2_000u64 {
        let now = if ms % 2 == 0 {
            T0 + ms
        } else {
            T0 + ms - 3_600_000
        };
        if b.at(now, 1).allowed {
            passed += 1;
            assert_eq!(ms % 2, 0, "a reading from an hour ago was allowed");
        }
    }
    assert!(passed <= 10 + 1_999 / 100, "{passed}");
}

#[test]
fn huge_limit_one_billion_per_second() {
    let g = 1_000_000_000;
    let limits = lim(g, 1, g);
    let mut b = Bucket::new(limits);
    let d = b.at(T0, g);
    assert_eq!(
        (d.allowed, d.remaining, d.reset_s, d.limit),
        (true, 0, 1, g)
    );
    let d = b.at(T0, 1);
    assert_eq!((d.allowed, d.retry_after_s), (false, 1));
    // One millisecond refills exactly one million.
    assert_eq!(b.peek(T0 + 1, 0).remaining, 1_000_000);
    assert!(!b.peek(T0 + 1, 1_000_001).allowed);
    assert!(b.at(T0 + 1, 1_000_000).allowed);
    assert!(!b.at(T0 + 1, 1).allowed);
    // Fully refilled one second after the last spend.
    assert!(!b.peek(T0 + 1_000, g).allowed);
    assert!(b.at(T0 + 1_001, g).allowed);
}

/// The largest cost `b` would allow at `now_ms`, found by bisection (without spending).
fn largest_passing(b: &Bucket, now_ms: u64) -> u64 {
    let (mut lo, mut hi) = (0u64, 2_000_000_000u64);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if b.peek(now_ms, mid).allowed {
            lo = mid
        } else {
            hi = mid - 1
        }
    }
    lo
}

#[test]
fn rates_that_are_not_whole_nanoseconds_are_never_exceeded() {
    // T = 1.666… ns and 1.000000001 ns: a T cut to whole nanoseconds (1 ns) would let 1.67×
    // and 1.000000001× the limit through.
    for limit in [600_000_000, 999_999_999, 333_333_333] {
        let mut b = Bucket::new(lim(limit, 1, limit));
        assert!(b.at(T0, limit).allowed, "the full bucket, at once");
        // Cost-1 requests one millisecond later: exactly what a millisecond refills.
        let refill = limit / 1_000;
        let mut n = 0u64;
        while b.at(T0 + 1, 1).allowed {
            n += 1;
            assert!(n <= refill, "{limit}: more than {refill} in 1 ms");
        }
        assert_eq!(n, refill, "{limit}");
        // Spending all there is every millisecond for a second: the limit, exactly.
        let mut spent = n;
        for ms in 2..=1_000 {
            let cost = largest_passing(&b, T0 + ms);
            if cost > 0 {
                assert!(b.at(T0 + ms, cost).allowed);
            }
            spent += cost;
        }
        assert_eq!(spent, limit, "{limit} per second, after a full burst");
    }
}

#[test]
fn huge_window_one_per_year() {
    let year_s = 31_536_000;
    let year_ms = year_s * 1_000;
    let mut b = Bucket::new(lim(1, year_s, 1));
    let d = b.at(T0, 1);
    assert_eq!((d.allowed, d.remaining, d.reset_s), (true, 0, year_s));
    let d = b.at(T0, 1);
    assert_eq!((d.allowed, d.retry_after_s), (false, year_s));
    let d = b.at(T0 + year_ms - 1, 1);
    assert_eq!((d.allowed, d.retry_after_s), (false, 1));
    assert!(b.at(T0 + year_ms, 1).allowed);
}

#[test]
fn depth_beyond_a_century_is_capped() {
    // One per year with the largest burst the configuration allows: a billion years of
    // credit. The depth is capped at 100 years (36 525 days), reported as the capacity.
    let year_s = 31_536_000;
    let mut b = Bucket::new(lim(1, year_s, 1_000_000_000));
    let d = b.at(T0, 1);
    assert_eq!((d.allowed, d.limit, d.remaining), (true, 100, 99));
    for _ in 0..99 {
        assert!(b.at(T0, 1).allowed);
    }
    assert!(!b.at(T0, 1).allowed);
}

#[test]
fn absurd_limits_never_panic() {
    let m = u64::MAX;
    let cases = [
        lim(m, m, m),
        lim(1, m, m),
        lim(m, 1, 1),
        lim(m, 1, m),
        lim(1, 1, m),
        lim(1, m, 1),
    ];
    for limits in cases {
        for now in [0, 1, T0, m / 2, m] {
            for cost in [0, 1, 2, m / 2, m] {
                for state in [
                    None,
                    Some(GcraState { tat: 0, rem: 0 }),
                    Some(GcraState { tat: m, rem: 0 }),
                ] {
                    let (d, new) = check(state, &limits, now, cost);
                    assert!(d.remaining <= d.limit, "{limits:?} {now} {cost}: {d:?}");
                    assert_eq!(d.allowed, d.retry_after_s == 0, "{limits:?}: {d:?}");
                    assert!(new.is_none() || d.allowed);
                }
            }
        }
    }
    // More than 10⁹ per second is treated as 10⁹ per second (T is at least 1 ns).
    let mut b = Bucket::new(lim(m, 1, 1_000));
    assert!(b.at(T0, 1_000).allowed);
    assert!(!b.at(T0, 1).allowed);
    assert_eq!(b.peek(T0 + 1, 0).remaining, 1_000);
}

#[test]
fn unrepresentable_clock_fails_closed() {
    // Microseconds passed as milliseconds: past the year 2554 in nanoseconds.
    let micros = T0 * 1_000;
    let (d, new) = check(None, &lim(10, 1, 10), micros, 1);
    assert!(!d.allowed);
    assert!(d.retry_after_s >= 1);
    assert_eq!(new, None);
    let (d, _) = check(None, &lim(10, 1, 10), u64::MAX, 1);
    assert!(!d.allowed);
}

#[test]
fn cost_above_one() {
    run(
        "10/1s, costs",
        lim(10, 1, 10),
        &[
            s(0, 4, 1, Y, 6, 1, 0),
            s(0, 7, 1, N, 6, 1, 1), // one unit short: due in 100 ms
            s(0, 6, 1, Y, 0, 1, 0),
            s(250, 3, 1, N, 2, 1, 1), // 2 units back, 3 needed: due at 300
            s(299, 3, 1, N, 2, 1, 1),
            s(300, 3, 1, Y, 0, 1, 0),
            s(300, 0, 1, Y, 0, 1, 0), // a cost of 0 peeks
        ],
    );
}

#[test]
fn cost_above_burst_is_never_allowed() {
    // Denied even on a full bucket, state untouched; retry_after_s is the time until the
    // bucket is full, at least 1 s: when the largest passable request (cost = burst) passes.
    let mut b = Bucket::new(lim(10, 1, 10));
    let d = b.at(T0, 11);
    assert_eq!(
        d,
        Decision {
            allowed: false,
            limit: 10,
            remaining: 10,
            reset_s: 0,
            retry_after_s: 1,
            retry_after_ms: 1000,
        }
    );
    assert_eq!(b.state, None);
    for _ in 0..5 {
        assert!(b.at(T0, 1).allowed);
    }
    let d = b.at(T0, 11);
    assert_eq!((d.allowed, d.remaining, d.retry_after_s), (false, 5, 1));

    let mut b = Bucket::new(lim(1, 60, 2));
    assert!(b.at(T0, 2).allowed);
    let d = b.at(T0, 3);
    assert_eq!((d.allowed, d.reset_s, d.retry_after_s), (false, 120, 120));
    // And after that wait, cost = burst passes (cost 3 still never does).
    assert!(!b.at(T0 + 120_000, 3).allowed);
    assert!(b.at(T0 + 120_000, 2).allowed);
}

#[test]
fn degenerate_limits_deny() {
    for (limits, retry) in [
        (lim(0, 60, 10), 60),
        (lim(10, 0, 10), 1),
        (lim(10, 60, 0), 60),
    ] {
        let (d, new) = check(None, &limits, T0, 1);
        assert_eq!((d.allowed, d.limit, d.retry_after_s), (false, 0, retry));
        assert_eq!(new, None);
        let (d, new) = check(None, &limits, T0, 0);
        assert!(d.allowed);
        assert_eq!(new, None);
    }
}

/// The first millisecond at or after `from` at which `cost` would pass, by bisection over the
/// pure function (allowance is monotone in time while the state is fixed).
fn allowance_instant(b: &Bucket, from: u64, cost: u64) -> u64 {
    let (mut lo, mut hi) = (from, from + 400 * 86_400_000);
    assert!(b.peek(hi, cost).allowed);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if b.peek(mid, cost).allowed {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

#[test]
fn retry_after_is_exact() {
    let configs = [
        lim(10, 1, 10),
        lim(3, 1, 3),
        lim(7, 1, 1),
        lim(100, 60, 100),
        lim(20, 1, 40),
        lim(1, 3_600, 1),
        lim(5, 10, 5),
        lim(1_000_000_000, 1, 1_000_000_000),
    ];
    let mut checked = 0;
    for limits in configs {
        for cost in [1, 2, 3] {
            if cost > limits.burst {
                continue;
            }
            // Drain the bucket at T0, then ask for `cost` more at various points of the
            // refill, including ones between whole intervals.
            let mut drained = Bucket::new(limits);
            assert!(drained.at(T0, limits.burst).allowed);
            for offset in [0, 1, 7, 99, 333, 999, 1_001, 12_345, 59_999, 3_599_999] {
                let mut b = Bucket {
                    limits,
                    state: drained.state,
                };
                let now = T0 + offset;
                let d = b.at(now, cost);
                if d.allowed {
                    continue;
                }
                let at = allowance_instant(&b, now, cost);
                // Exactly the advertised whole seconds, rounded up.
                assert_eq!(
                    d.retry_after_s,
                    (at - now).div_ceil(1_000),
                    "{limits:?} {cost}"
                );
                assert!(!b.peek(at - 1, cost).allowed, "1 ms early must be refused");
                assert!(b.peek(at, cost).allowed);
                // Retrying after Retry-After passes; a second earlier does not.
                assert!(b.peek(now + d.retry_after_s * 1_000, cost).allowed);
                assert!(!b.peek(now + (d.retry_after_s - 1) * 1_000, cost).allowed);
                // The denial left the state alone, so the retry really happens.
                assert!(b.at(now + d.retry_after_s * 1_000, cost).allowed);
                checked += 1;
            }
        }
    }
    assert!(checked > 60, "{checked}");
}

#[test]
fn reset_is_when_the_bucket_is_full() {
    let mut b = Bucket::new(lim(100, 60, 100));
    let d = b.at(T0, 30); // 30 × 600 ms = 18 s
    assert_eq!((d.remaining, d.reset_s), (70, 18));
    assert_eq!(b.peek(T0 + 17_999, 0).remaining, 99);
    assert_eq!(b.peek(T0 + 17_999, 0).reset_s, 1);
    assert_eq!(b.peek(T0 + 18_000, 0).remaining, 100);
    assert_eq!(b.peek(T0 + 18_000, 0).reset_s, 0);
}

#[test]
fn state_serialises_as_a_string() {
    let s = GcraState {
        tat: 1_767_225_600_000_000_000,
        rem: 0,
    };
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(json, r#"{"tat":"1767225600000000000"}"#);
    assert_eq!(serde_json::from_str::<GcraState>(&json).unwrap(), s);
    // Ticks below a nanosecond are a plain number beside it, and only when there are any.
    let fine = GcraState { rem: 2, ..s };
    let json = serde_json::to_string(&fine).unwrap();
    assert_eq!(json, r#"{"tat":"1767225600000000000","rem":2}"#);
    assert_eq!(serde_json::from_str::<GcraState>(&json).unwrap(), fine);
    // A plain number is accepted too, up to u64::MAX.
    assert_eq!(
        serde_json::from_str::<GcraState>(r#"{"tat":5}"#).unwrap(),
        GcraState { tat: 5, rem: 0 }
    );
    let max = GcraState {
        tat: u64::MAX,
        rem: 0,
    };
    let back = serde_json::to_string(&max).unwrap();
    assert_eq!(serde_json::from_str::<GcraState>(&back).unwrap(), max);
    assert_eq!(
        serde_json::from_str::<GcraState>(r#"{"tat":4.0}"#).unwrap(),
        GcraState { tat: 4, rem: 0 }
    );
    // A field this build does not know (a later build's) is passed over: rolled back to this
    // build, a bucket keeps its state instead of reading as full.
    assert_eq!(
        serde_json::from_str::<GcraState>(r#"{"tat":"5","rem":1,"later":[1,"x"]}"#).unwrap(),
        GcraState { tat: 5, rem: 1 }
    );
    for bad in [
        r#"{"tat":"-1"}"#,
        r#"{"tat":""}"#,
        r#"{"tat":"1.5"}"#,
        r#"{"tat":" 1"}"#,
        r#"{"tat":"18446744073709551616"}"#,
        r#"{"tat":-1}"#,
        r#"{"tat":1.5}"#,
        r#"{"tat":null}"#,
        r#"{}"#,
    ] {
        assert!(serde_json::from_str::<GcraState>(bad).is_err(), "{bad}");
    }
}

#[test]
fn decisions_serialise() {
    let d = Bucket::new(lim(10, 1, 10)).at(T0, 1);
    let json = serde_json::to_string(&d).unwrap();
    assert_eq!(serde_json::from_str::<Decision>(&json).unwrap(), d);
}

#[test]
fn limits_come_from_the_policy() {
    let p = RateLimitPolicy {
        name: "per-ip".into(),
        key: RateLimitKey::Ip,
        limit: 20,
        window_s: 1,
        burst: 40,
        on_store_error: StoreErrorPolicy::Allow,
    };
    assert_eq!(Limits::from(&p), lim(20, 1, 40));
}
