//! The isolate's side of rate-limit leases (see `crate::ratelimit::lease`): admissions a
//! bucket's owner handed over, spent here without asking it, within their hold.
//!
//! How much to ask for follows demand: half the requests this isolate saw for the bucket during
//! the last hold period (so a lease is spent well within its hold), at most [`MAX_WANT`]. An idle isolate (one request per period) asks for one
//! admission — today's exact per-request decision — and a busy one asks its bucket once per
//! lease. Only one ask per bucket at a time asks for more than one; requests arriving while it
//! is in flight ask for their own admission only, so a burst of concurrent first requests is
//! decided exactly, one by one.
//!
//! A busy bucket asks for its next lease before the last one runs out: the request that finds
//! its reserve or less still held asks (and waits, decided by the owner) instead of spending,
//! so the requests arriving during its ask spend what is left rather than each asking alone
//! (each such ask is a round trip to the owner). The reserve is what twice the last ask's
//! round trip brings at the last period's rate, at least a quarter and at most half of the
//! want. It asks for at most [`MAX_WANT`] minus what is still held.
//!
//! What a lease may cost is admissions not spent: an isolate holds at most [`MAX_WANT`] − 1
//! extras per bucket at a time, for at most [`HOLD_MS`]. Those still held when their hold ends
//! are offered back (taken back exactly when the owner granted nothing since) — otherwise
//! lost. So while a limit has room, at most `MAX_WANT − 1` requests per isolate and bucket per
//! hold period can be refused that a per-request decision would have admitted.
//!
//! A request admitted from a lease reports the decision the owner gave with the bucket's newest
//! lease, which counts that lease as wholly spent. That grant is less than [`HOLD_MS`] old: it
//! came after its ask, and no lease is spent later than its ask plus the hold, the newest's
//! ending last. It cannot count what the owner admitted after that grant to others — other
//! isolates, or this isolate's single asks answered after the lease — which the isolate never
//! learns: its `remaining` is never more than the owner holds when nothing else was admitted
//! since, and otherwise more by at most what was, within that hold.

use super::ports::GiveBack;
use crate::ratelimit::{Decision, Grant, LeaseAsk, Limits};
use std::collections::HashMap;

/// The most admissions one ask asks for. With 64, an isolate at 3,500 requests/s in `make
/// bench` asked its bucket once per 30 requests (two of every three asks for one admission,
/// made while a lease was on its way), and one limit cost a pass-through about a sixth.
pub const MAX_WANT: u64 = 256;
/// How long an isolate may spend a lease's extras, from the moment it asked.
pub const HOLD_MS: u64 = 250;
/// A busy bucket asks for its next lease once `1 / REFILL_SHARE` of its want or less is held.
const REFILL_SHARE: u64 = 4;
/// How long an unanswered lease ask keeps others to single admissions.
const ASK_STALE_MS: f64 = 5_000.0;
/// Buckets an isolate keeps lease state for, at most this many.
const CAPACITY: usize = 4_096;

#[derive(Debug, Clone)]
struct Lease {
    left: u64,
    /// In this isolate's clock: the moment it asked plus the hold. The owner granted later,
    /// so in real time the hold never outlasts the one the owner charged for.
    until_ms: f64,
    tag: u64,
    decision: Decision,
    limits: Limits,
}

impl Lease {
    /// This lease's unspent admissions, offered back to `bucket`.
    fn offer(&self, bucket: &str) -> GiveBack {
        GiveBack {
            bucket: bucket.to_owned(),
            limits: self.limits,
            tag: self.tag,
            unused: self.left,
        }
    }
}

#[derive(Debug, Default)]
struct Bucket {
    leases: Vec<Lease>,
    /// When a lease of more than one admission was asked for, until its answer arrives (an
    /// ask whose answer never comes — its request was cancelled — stops counting after
    /// [`ASK_STALE_MS`]).
    asking: Option<f64>,
    window_start_ms: f64,
    seen: u64,
    seen_before: u64,
    /// How long the last lease ask took to be answered, in ms of this isolate's clock.
    round_trip_ms: f64,
}

impl Bucket {
    /// Whether the request at `now_ms` should ask for this bucket's next lease rather than
    /// spend one of the `held` admissions: the bucket is busy (its ask would want more than
    /// one), no lease ask is out, and a quarter of the want or less is still held.
    fn refill_due(&self, held: u64, now_ms: f64) -> bool {
        let want = self.want();
        want > 1 && !self.asking(now_ms) && held <= self.reserve(want)
    }

    /// What is left held when the next lease is asked for: the requests twice the last ask's
    /// round trip brings at the last period's rate, at least `want / REFILL_SHARE` and at most
    /// half of `want` (so an ask is always worth its round trip).
    fn reserve(&self, want: u64) -> u64 {
        let per_ms = self.seen_before as f64 / HOLD_MS as f64;
        let during_asks = (2.0 * per_ms * self.round_trip_ms).ceil() as u64;
        during_asks.clamp(want / REFILL_SHARE, want / 2)
    }

    /// What a lease ask would want: half the requests of the last hold period, at most
    /// [`MAX_WANT`].
    fn want(&self) -> u64 {
        (self.seen_before / 2).clamp(1, MAX_WANT)
    }

    /// Admissions held in live leases.
    fn held(&self, now_ms: f64) -> u64 {
        self.held_where(now_ms, |_| true)
    }

    /// Admissions held in live leases granted under `limits`.
    fn held_under(&self, limits: &Limits, now_ms: f64) -> u64 {
        self.held_where(now_ms, |l| l.limits == *limits)
    }

    fn held_where(&self, now_ms: f64, keep: impl Fn(&Lease) -> bool) -> u64 {
        self.leases
            .iter()
            .filter(|l| now_ms < l.until_ms && keep(l))
            .map(|l| l.left)
            .sum()
    }

    /// Moves leases granted under other limits (the configuration changed since) into
    /// `offers`: they are spent under the limits in force or not at all.
    fn drop_other_limits(&mut self, bucket: &str, limits: &Limits, offers: &mut Vec<GiveBack>) {
        self.leases.retain(|l| {
            let same = l.limits == *limits;
            if !same && l.left > 0 {
                offers.push(l.offer(bucket));
            }
            same
        });
    }

    /// A lease ask is out (and not yet given up on).
    fn asking(&self, now_ms: f64) -> bool {
        self.asking.is_some_and(|at| now_ms - at < ASK_STALE_MS)
    }

    fn note_demand(&mut self, now_ms: f64) {
        let hold = HOLD_MS as f64;
        if now_ms - self.window_start_ms >= hold {
            self.seen_before = if now_ms - self.window_start_ms >= 2.0 * hold {
                0
            } else {
                self.seen
            };
            self.window_start_ms = now_ms;
            self.seen = 0;
        }
        self.seen += 1;
    }

    /// Moves expired leases with admissions left into `offers`.
    fn expire(&mut self, bucket: &str, now_ms: f64, offers: &mut Vec<GiveBack>) {
        self.leases.retain(|l| {
            let live = l.left > 0 && now_ms < l.until_ms;
            if !live && l.left > 0 {
                offers.push(l.offer(bucket));
            }
            live
        });
    }
}

/// Leases held by this isolate, per bucket.
#[derive(Debug, Default)]
pub struct LeaseBook(HashMap<String, Bucket>);

impl LeaseBook {
    /// Whether `bucket` holds an admission this isolate may spend at `now_ms`.
    #[cfg(test)]
    pub fn holds(&self, bucket: &str, now_ms: f64) -> bool {
        self.0.get(bucket).is_some_and(|b| b.held(now_ms) > 0)
    }

    /// Whether the request at `now_ms` is admitted from what `bucket` holds under `limits`
    /// (the policy's, as configured now): it holds such an admission and its next lease is not
    /// due (the request that finds it due asks for it).
    pub fn may_spend(&self, bucket: &str, limits: &Limits, now_ms: f64) -> bool {
        self.0.get(bucket).is_some_and(|b| {
            let held = b.held_under(limits, now_ms);
            held > 0 && !b.refill_due(held, now_ms)
        })
    }

    /// Whether the request at `now_ms` should ask for `bucket`'s next lease (see
    /// `Bucket::refill_due`).
    #[cfg(test)]
    pub fn refill_due(&self, bucket: &str, now_ms: f64) -> bool {
        self.0
            .get(bucket)
            .is_some_and(|b| b.refill_due(b.held(now_ms), now_ms))
    }

    /// Admissions `bucket` holds at `now_ms`.
    #[cfg(test)]
    pub fn held(&self, bucket: &str, now_ms: f64) -> u64 {
        self.0.get(bucket).map_or(0, |b| b.held(now_ms))
    }

    /// Spends one admission held under `limits` (the one whose hold ends first) and returns
    /// the decision the owner gave with the newest lease, as of that grant; expired leases, and
    /// those granted under other limits, go to `offers`.
    pub fn spend(
        &mut self,
        bucket: &str,
        limits: &Limits,
        now_ms: f64,
        offers: &mut Vec<GiveBack>,
    ) -> Option<Decision> {
        let b = self.0.get_mut(bucket)?;
        b.expire(bucket, now_ms, offers);
        b.drop_other_limits(bucket, limits, offers);
        b.note_demand(now_ms);
        let lease = b
            .leases
            .iter_mut()
            .min_by(|x, y| x.until_ms.total_cmp(&y.until_ms))?;
        lease.left -= 1;
        // Reported with the newest grant's decision: the latest the isolate knows of the owner
        // (an older lease's answer misses the newer lease). Admissions the owner made since to
        // others are not in it (see the module documentation).
        let decision = b
            .leases
            .iter()
            .max_by(|x, y| x.until_ms.total_cmp(&y.until_ms))
            .map(|l| l.decision)?;
        b.leases.retain(|l| l.left > 0);
        Some(decision)
    }

    /// What to ask `bucket`'s owner for at `now_ms`; expired leases go to `offers`.
    pub fn ask(&mut self, bucket: &str, now_ms: f64, offers: &mut Vec<GiveBack>) -> LeaseAsk {
        if !self.0.contains_key(bucket) && self.0.len() >= CAPACITY {
            self.forget_idle(now_ms, offers);
        }
        let b = self.0.entry(bucket.to_owned()).or_default();
        b.expire(bucket, now_ms, offers);
        b.note_demand(now_ms);
        // What is still held counts against the want: never more than MAX_WANT − 1 extras.
        let want = if b.asking(now_ms) {
            1
        } else {
            b.want().min(MAX_WANT.saturating_sub(b.held(now_ms)).max(1))
        };
        if want > 1 {
            b.asking = Some(now_ms);
        }
        LeaseAsk {
            want,
            hold_ms: HOLD_MS,
        }
    }

    /// Records the owner's answer, at `answered_at_ms`, to an ask made at `asked_at_ms`
    /// (`None`: no answer).
    pub fn answered(
        &mut self,
        bucket: &str,
        limits: Limits,
        ask: LeaseAsk,
        (asked_at_ms, answered_at_ms): (f64, f64),
        grant: Option<&Grant>,
    ) {
        let Some(b) = self.0.get_mut(bucket) else {
            return;
        };
        if ask.want > 1 {
            b.asking = None;
            b.round_trip_ms = (answered_at_ms - asked_at_ms).clamp(0.0, HOLD_MS as f64);
        }
        if let Some(g) = grant.filter(|g| g.decision.allowed && g.extra > 0) {
            b.leases.push(Lease {
                left: g.extra,
                until_ms: asked_at_ms + ask.hold_ms as f64,
                tag: g.tag,
                decision: g.decision,
                limits,
            });
        }
    }

    /// Drops every bucket that holds nothing, and when that is not enough, everything (what
    /// was held is offered back).
    fn forget_idle(&mut self, now_ms: f64, offers: &mut Vec<GiveBack>) {
        for (name, b) in self.0.iter_mut() {
            b.expire(name, now_ms, offers);
        }
        self.0
            .retain(|_, b| !b.leases.is_empty() || b.asking.is_some());
        if self.0.len() >= CAPACITY {
            for (name, b) in self.0.drain() {
                offers.extend(b.leases.iter().map(|l| l.offer(&name)));
            }
        }
    }
}
