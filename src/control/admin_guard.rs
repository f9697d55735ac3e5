//! A limit on admin API attempts per client address. The admin token is a long secret compared
//! in constant time, so guessing it is hopeless; this also bounds how fast one address may try.
//! Every admin request that presents an `Authorization` header spends one attempt from its
//! address's bucket *before* the token is looked at: once the bucket is empty, a right guess is
//! refused like a wrong one, so the limit caps guesses and not only failures. The bucket lives
//! in the `RateLimiter` Durable Object like a route's, so the bound holds across isolates and
//! locations. When that object does not answer (an outage, or a flood of attempts that keeps it
//! busy past the store timeout), the isolate decides the attempt by a bucket of its own for the
//! address, under the same limits ([`Fallback`]): the limit stays, only per isolate.

use crate::error::GatewayError;
use crate::pipeline::ports::Take;
use crate::ratelimit::bucket::client_address;
use crate::ratelimit::{check, GcraState};
use crate::ratelimit::{policy_header, ratelimit_header, Grant, LeaseAsk, Limits};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// 120 attempts at once, then two a second: `gatewayctl` pushing, reading history and purging
/// from one address stays far below it; a guesser gets about 170,000 tries a day per address.
pub const ADMIN_ATTEMPTS: Limits = Limits {
    limit: 120,
    window_s: 60,
    burst: 120,
};

/// The policy name the refusal and its `RateLimit` fields report.
pub const POLICY: &str = "admin-attempts";

/// The ask for one attempt from `client_ip` (normalised as rate limits key addresses: an IPv6
/// address by its /64). The bucket is `admin:<SHA-256 hex>`, apart from every route bucket
/// (`rl:…`); exact, one admission, no lease.
pub fn attempt(client_ip: Option<&str>) -> Take {
    let digest = Sha256::digest(client_address(client_ip).as_bytes());
    Take {
        bucket: format!("admin:{}", crate::hex::encode(&digest)),
        limits: ADMIN_ATTEMPTS,
        ask: LeaseAsk {
            want: 1,
            hold_ms: 0,
        },
    }
}

/// What the bucket's answer means for the attempt.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Within the limit: the token is checked next.
    Go,
    /// The store did not answer: the attempt is decided by the isolate's [`Fallback`] (an
    /// outage of the limiter must not lock operators out while they repair it, nor lift the
    /// limit for a guesser who keeps the store busy), and the failure is counted and logged.
    StoreFailed(String),
    /// Over the limit: 429 without looking at the token.
    Refused(GatewayError),
}

pub fn verdict(answer: Result<Grant, String>) -> Verdict {
    match answer {
        Err(reason) => Verdict::StoreFailed(reason),
        Ok(grant) => decided(grant.decision),
    }
}

fn decided(decision: crate::ratelimit::Decision) -> Verdict {
    if decision.allowed {
        return Verdict::Go;
    }
    Verdict::Refused(GatewayError::RateLimited {
        policy: POLICY.into(),
        retry_after_s: decision.retry_after_s.max(1),
        headers: vec![
            (
                "ratelimit-policy",
                policy_header(&[(POLICY, &ADMIN_ATTEMPTS)]),
            ),
            ("ratelimit", ratelimit_header(&[(POLICY, &decision)])),
        ],
    })
}

/// Addresses whose buckets this isolate keeps, at most; past it those untouched for a window
/// (full again) are dropped, and if every one is in use, all of them.
const FALLBACK_BUCKETS: usize = 10_000;

/// The isolate's own admin-attempt buckets, used only for attempts whose shared bucket did not
/// answer: `admin:<hash>` → its state and when it was last used.
#[derive(Default)]
pub struct Fallback(HashMap<String, (GcraState, u64)>);

impl Fallback {
    /// Decides `take` (an [`attempt`]) at `now_ms` as its shared bucket would, from this
    /// isolate's attempts alone.
    pub fn decide(&mut self, take: &Take, now_ms: u64) -> Verdict {
        let state = self.0.get(&take.bucket).map(|(s, _)| *s);
        let (decision, next) = check(state, &take.limits, now_ms, 1);
        if let Some(next) = next {
            if self.0.len() >= FALLBACK_BUCKETS && !self.0.contains_key(&take.bucket) {
                let idle_ms = take.limits.window_s.saturating_mul(1000);
                self.0
                    .retain(|_, (_, used)| now_ms.saturating_sub(*used) < idle_ms);
                if self.0.len() >= FALLBACK_BUCKETS {
                    self.0.clear();
                }
            }
            self.0.insert(take.bucket.clone(), (next, now_ms));
        }
        decided(decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::{lease, Decision};

    #[test]
    fn each_address_has_its_own_bucket_and_ipv6_counts_by_its_64() {
        let a = attempt(Some("203.0.113.7")).bucket;
        assert!(a.starts_with("admin:") && a.len() == 6 + 64, "{a}");
        assert_eq!(a, attempt(Some(" 203.0.113.7 ")).bucket);
        assert_ne!(a, attempt(Some("203.0.113.8")).bucket);
        assert_eq!(
            attempt(Some("2001:db8:1:2::1")).bucket,
            attempt(Some("2001:db8:1:2:ffff::9")).bucket
        );
        assert_ne!(
            attempt(Some("2001:db8:1:2::1")).bucket,
            attempt(Some("2001:db8:1:3::1")).bucket
        );
        // The IPv4-mapped form is the IPv4 address.
        assert_eq!(a, attempt(Some("::ffff:203.0.113.7")).bucket);
    }

    /// The limit as the bucket's owner applies it: 120 at once, then one per 500 ms.
    #[test]
    fn the_owner_refuses_the_attempt_after_the_burst_and_the_refusal_says_when() {
        let ask = attempt(Some("198.51.100.1"));
        let mut state = None;
        let now = 1_700_000_000_000;
        for n in 0..120 {
            let (grant, next) = lease(state, &ask.limits, now, ask.ask);
            assert_eq!(verdict(Ok(grant)), Verdict::Go, "attempt {n}");
            state = next;
        }
        let (grant, _) = lease(state, &ask.limits, now, ask.ask);
        let Verdict::Refused(e) = verdict(Ok(grant)) else {
            panic!("the 121st attempt passed");
        };
        assert_eq!(e.status(), 429);
        assert_eq!(e.code(), "rate_limited");
        let headers = e.headers();
        assert!(
            headers.contains(&("retry-after", "1".into())),
            "{headers:?}"
        );
        assert!(
            headers.contains(&("ratelimit-policy", "\"admin-attempts\";q=120;w=60".into())),
            "{headers:?}"
        );
        // Half a second later one more attempt passes.
        let (grant, _) = lease(state, &ask.limits, now + 500, ask.ask);
        assert_eq!(verdict(Ok(grant)), Verdict::Go);
    }

    /// A store that does not answer (down, or kept busy past its timeout by a flood of
    /// attempts) does not lift the limit: the isolate counts the address's attempts itself.
    #[test]
    fn without_the_store_the_isolate_keeps_the_limit_for_each_address() {
        let mut fallback = Fallback::default();
        let guesser = attempt(Some("203.0.113.66"));
        let now = 1_700_000_000_000;
        for n in 0..120 {
            assert_eq!(fallback.decide(&guesser, now), Verdict::Go, "attempt {n}");
        }
        let Verdict::Refused(e) = fallback.decide(&guesser, now) else {
            panic!("the 121st attempt passed without the store");
        };
        assert_eq!((e.status(), e.code()), (429, "rate_limited"));
        assert!(e.headers().contains(&("retry-after", "1".into())));
        // Another address has its own attempts; the guesser gets one more half a second later.
        assert_eq!(
            fallback.decide(&attempt(Some("198.51.100.7")), now),
            Verdict::Go
        );
        assert_eq!(fallback.decide(&guesser, now + 500), Verdict::Go);
        assert!(matches!(
            fallback.decide(&guesser, now + 500),
            Verdict::Refused(_)
        ));
    }

    #[test]
    fn the_fallback_stays_bounded_and_keeps_the_busy_buckets() {
        let mut fallback = Fallback::default();
        let now = 1_700_000_000_000;
        // Addresses seen a window ago fill it; the guesser's bucket is in use now.
        for n in 1..FALLBACK_BUCKETS as u32 {
            let addr = std::net::Ipv4Addr::from(0x0a00_0000 + n).to_string();
            fallback.decide(&attempt(Some(&addr)), now - 60_000);
        }
        let guesser = attempt(Some("203.0.113.66"));
        for _ in 0..121 {
            fallback.decide(&guesser, now);
        }
        // A new address makes room by dropping the idle ones, not the guesser's count.
        assert_eq!(
            fallback.decide(&attempt(Some("198.51.100.7")), now),
            Verdict::Go
        );
        assert_eq!(fallback.0.len(), 2);
        assert!(matches!(
            fallback.decide(&guesser, now),
            Verdict::Refused(_)
        ));
    }

    #[test]
    fn a_store_failure_is_reported_as_such_and_a_refusal_never_says_retry_at_once() {
        assert_eq!(
            verdict(Err("timeout".into())),
            Verdict::StoreFailed("timeout".into())
        );
        let refused = Grant {
            decision: Decision {
                allowed: false,
                limit: 120,
                remaining: 0,
                reset_s: 60,
                retry_after_s: 0,
                retry_after_ms: 0,
            },
            extra: 0,
            tag: 0,
        };
        // A refusal never advises retrying at once.
        let Verdict::Refused(GatewayError::RateLimited { retry_after_s, .. }) =
            verdict(Ok(refused))
        else {
            panic!("not refused");
        };
        assert_eq!(retry_after_s, 1);
    }
}
