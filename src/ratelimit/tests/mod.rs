//! Tests of the rate-limiting core: table tests per concern, and a property test against an
//! exact reference simulation.

mod bucket;
mod gcra;
mod headers;
mod lease;
mod persist;
mod property;

use super::{check, Decision, GcraState, Limits};

/// 2026-01-01T00:00:00Z, in milliseconds.
const T0: u64 = 1_767_225_600_000;

fn lim(limit: u64, window_s: u64, burst: u64) -> Limits {
    Limits {
        limit,
        window_s,
        burst,
    }
}

/// One bucket and its persisted state, as a Durable Object would keep it.
struct Bucket {
    limits: Limits,
    state: Option<GcraState>,
}

impl Bucket {
    fn new(limits: Limits) -> Self {
        Bucket {
            limits,
            state: None,
        }
    }

    /// Decides a request at `now_ms` and persists the new state, checking the state contract:
    /// only allowed requests of non-zero cost change the state.
    fn at(&mut self, now_ms: u64, cost: u64) -> Decision {
        let (d, new) = check(self.state, &self.limits, now_ms, cost);
        match new {
            Some(s) => {
                assert!(
                    d.allowed && cost > 0,
                    "state changed by {d:?} (cost {cost})"
                );
                self.state = Some(s);
            }
            None => assert!(!d.allowed || cost == 0, "allowed cost {cost} left no state"),
        }
        assert!(d.remaining <= d.limit, "{d:?}");
        assert_eq!(d.allowed, d.retry_after_s == 0, "{d:?}");
        d
    }

    /// Decides without persisting anything.
    fn peek(&self, now_ms: u64, cost: u64) -> Decision {
        check(self.state, &self.limits, now_ms, cost).0
    }
}
