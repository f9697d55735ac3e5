//! GCRA, the generic cell rate algorithm: one timestamp of state per bucket, exact integer
//! arithmetic in fractions of a nanosecond.
//!
//! A policy of `limit` requests per `window_s` seconds with `burst` has an emission interval
//! `T = window_s·10⁹ / limit` ns and a bucket depth `burst·T`. The state is the theoretical
//! arrival time `tat`: the instant at which the bucket would be empty again (full capacity
//! available) if nothing else arrived. A request of cost `c` arriving at `now` is allowed iff
//!
//! ```text
//! max(tat, now) + c·T − now ≤ burst·T          (then tat ← max(tat, now) + c·T)
//! ```
//!
//! which is the classic test `now ≥ tat − τ` with `τ = (burst − 1)·T`, extended to costs. Over
//! any closed interval of length `d` at most `burst + ⌊d / T⌋` units pass, and a client that
//! waits is never refused: it is exactly a token bucket of `burst` tokens refilled at
//! `limit / window_s` per second, without the refill bookkeeping.
//!
//! # Precision
//!
//! Time is counted in *ticks* of `1/limit` ns (the `now_ms` input is multiplied by
//! `10⁶·limit`), so `T` is exactly `window_s·10⁹` ticks, never rounded, and every intermediate
//! is a `u128`, so no configuration can overflow. The state keeps `tat` in whole nanoseconds
//! and the ticks below one nanosecond in [`GcraState::rem`]: decisions are those of the exact
//! token bucket at any rate. A `T` rounded to whole nanoseconds is wrong either way: rounded
//! down, 600 000 000 per second (T = 1.666… ns) would pass 1 000 000 a millisecond instead of
//! 600 000 (below twice the limit, at the highest rates); rounded up, a client exactly on
//! schedule at 3 per second would be refused (three intervals of 333 333 334 ns end 2 ns after
//! the second). `rem` is in ticks of the limit that wrote it: after `limit` is changed it
//! reads as less than 1 ns, like the rest of the state, which the new limits then judge.
//!
//! The bucket depth is capped at 100 years of emission (only a `burst` more than a century's
//! worth of `limit` reaches it; [`Decision::limit`] then reports the effective capacity), so a
//! `tat` always fits a `u64` of nanoseconds until the year 2454. A clock reading that does
//! not fit (after 2554, or microseconds passed as milliseconds) denies every request rather
//! than failing open.

use crate::config::RateLimitPolicy;
use serde::{Deserialize, Serialize};
use std::num::NonZeroU128;

const NS_PER_MS: u128 = 1_000_000;
const NS_PER_S: NonZeroU128 = match NonZeroU128::new(1_000_000_000) {
    Some(n) => n,
    None => unreachable!(), // evaluated at compile time
};
/// The deepest a bucket may be: 100 years (36 525 days), in nanoseconds.
const HORIZON_NS: u128 = 36_525 * 86_400 * 1_000_000_000;

/// The persisted state of one bucket.
///
/// `tat` is the theoretical arrival time in **nanoseconds** since the Unix epoch, rounded
/// down; `rem` the ticks of `1/limit` ns beyond it (below `limit`; see the module's
/// precision). `tat` serialises as a decimal string (`{"tat":"1767225600000000000"}`):
/// nanosecond timestamps exceed 2⁵³, which a JavaScript number cannot hold and which
/// `serde-wasm-bindgen` (used by `worker`'s Durable Object storage) refuses to convert.
/// Deserialising accepts the string or a plain integer. `rem` is left out when 0, so a state
/// on whole nanoseconds reads the same as before it existed, and a state without it is on
/// whole nanoseconds.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct GcraState {
    #[serde(with = "tat_text")]
    pub tat: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rem: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a policy allows, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests (cost units) per window, sustained.
    pub limit: u64,
    pub window_s: u64,
    /// How many units may be spent at once after an idle period.
    pub burst: u64,
}

impl From<&RateLimitPolicy> for Limits {
    fn from(p: &RateLimitPolicy) -> Self {
        Limits {
            limit: p.limit,
            window_s: p.window_s,
            burst: p.burst,
        }
    }
}

/// The outcome of one [`check`].
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The bucket's capacity (the configured `burst`; smaller only when the depth was capped,
    /// zero for a degenerate policy).
    pub limit: u64,
    /// How many more requests of cost 1 would be allowed right now (after this one, if it
    /// was allowed). Never more than `limit`.
    pub remaining: u64,
    /// Whole seconds (rounded up) until the bucket is full again; 0 when it is full.
    pub reset_s: u64,
    /// 0 when allowed; otherwise whole seconds (rounded up, at least 1) until the same request
    /// would be allowed. A request that can never be allowed (cost above capacity) gets the
    /// time until the bucket is full, at least 1.
    pub retry_after_s: u64,
    /// The same wait in milliseconds (rounded up): lets a caller remember a refusal exactly.
    #[serde(default)]
    pub retry_after_ms: u64,
}

/// Decides one request of `cost` units arriving at `now_ms` (milliseconds since the Unix
/// epoch) against a bucket in `state` (`None`: never used, i.e. full).
///
/// Returns the decision and, when the bucket changed, the state to persist. A denied request
/// changes nothing, nor does an allowed one of cost 0 (a cost of 0 peeks at the bucket).
///
/// * **Clock going backwards** (`now` earlier than instants already accounted for): `now` is
///   taken as it is and `tat` stays, so the bucket looks *more* used, never less; `remaining`
///   saturates at 0 and nothing beyond `burst` is ever handed out. The price is a wait as long
///   as the step back.
/// * **Long idle**: a `tat` in the past counts as `now`, so the bucket is full: `burst`, not
///   more.
/// * **Cost above `burst`** can never be allowed: the request is denied without touching the
///   state, with `retry_after_s` = time until the bucket is full (at least 1 s), the moment
///   the largest request that can pass (cost = `burst`) would pass. Callers should treat such a
///   cost as a usage error rather than advise the client to retry.
/// * **Degenerate limits** (a zero `limit`, `window_s` or `burst`; configuration validation
///   rejects them) deny every request of non-zero cost, with `retry_after_s = max(window_s, 1)`.
///   They never mean "unlimited".
#[must_use]
pub fn check(
    state: Option<GcraState>,
    limits: &Limits,
    now_ms: u64,
    cost: u64,
) -> (Decision, Option<GcraState>) {
    let Some(shape) = Shape::of(limits) else {
        return (degenerate(limits, cost), None);
    };
    let now = shape.ticks_at_ms(now_ms);
    let tat = state.map_or(now, |s| shape.ticks_of(s).max(now));
    let used = tat.saturating_sub(now);
    let need = u128::from(cost).saturating_mul(shape.t.get());
    let after = used.saturating_add(need);
    let conforming = after <= shape.cap;
    let representable = shape.state_at(tat.saturating_add(need));

    if let (true, Some(new_state)) = (conforming, representable) {
        let decision = Decision {
            allowed: true,
            limit: shape.capacity(),
            remaining: units(shape.cap.saturating_sub(after), shape.t),
            reset_s: shape.seconds_ceil(after),
            retry_after_s: 0,
            retry_after_ms: 0,
        };
        let persist = (cost > 0).then_some(new_state);
        return (decision, persist);
    }

    let reset_s = shape.seconds_ceil(used);
    let (retry_after_s, retry_after_ms) = if !conforming && need <= shape.cap {
        // The bucket drains at one tick per tick: the request fits once `after` is down to
        // `cap`. `after > cap` here, so this is at least one tick, i.e. one second rounded up.
        let wait = after.saturating_sub(shape.cap);
        (shape.seconds_ceil(wait), shape.ms_ceil(wait))
    } else {
        // Never passable (cost above capacity) or not representable (clock past 2554).
        let s = reset_s.max(1);
        (s, s.saturating_mul(1000))
    };
    let decision = Decision {
        allowed: false,
        limit: shape.capacity(),
        remaining: units(shape.cap.saturating_sub(used), shape.t),
        reset_s,
        retry_after_s,
        retry_after_ms,
    };
    (decision, None)
}

/// The emission interval and depth of a policy, in ticks of `1/limit` ns.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape {
    /// Ticks per nanosecond: the policy's `limit`.
    per_ns: NonZeroU128,
    /// Emission interval `T`: `window_s·10⁹` ticks, exactly `window_s / limit` seconds.
    pub(super) t: NonZeroU128,
    /// Bucket depth `burst·T`, capped at [`HORIZON_NS`] (but never below `T`).
    pub(super) cap: u128,
}

impl Shape {
    pub(super) fn of(l: &Limits) -> Option<Shape> {
        if l.burst == 0 {
            return None;
        }
        let per_ns = NonZeroU128::new(u128::from(l.limit))?;
        let t = NonZeroU128::new(u128::from(l.window_s).saturating_mul(NS_PER_S.get()))?;
        let horizon = HORIZON_NS.saturating_mul(per_ns.get());
        let cap = u128::from(l.burst)
            .saturating_mul(t.get())
            .min(horizon.max(t.get()));
        Some(Shape { per_ns, t, cap })
    }

    /// Whole units the full bucket holds: `burst`, unless the depth was capped.
    pub(super) fn capacity(&self) -> u64 {
        units(self.cap, self.t)
    }

    /// An instant in milliseconds since the epoch, in ticks.
    pub(super) fn ticks_at_ms(&self, ms: u64) -> u128 {
        u128::from(ms)
            .saturating_mul(NS_PER_MS)
            .saturating_mul(self.per_ns.get())
    }

    /// A persisted state, in ticks. A `rem` of another limit counts as under 1 ns.
    pub(super) fn ticks_of(&self, s: GcraState) -> u128 {
        let rem = u128::from(s.rem).min(self.per_ns.get() - 1);
        u128::from(s.tat)
            .saturating_mul(self.per_ns.get())
            .saturating_add(rem)
    }

    /// The state at `ticks`; `None` when its nanoseconds do not fit a `u64`.
    pub(super) fn state_at(&self, ticks: u128) -> Option<GcraState> {
        let tat = u64::try_from(ticks / self.per_ns).ok()?;
        let rem = u64::try_from(ticks % self.per_ns).ok()?;
        Some(GcraState { tat, rem })
    }

    /// Ticks to whole seconds, rounded up.
    pub(super) fn seconds_ceil(&self, ticks: u128) -> u64 {
        clamp_u64(ticks.div_ceil(NS_PER_S.get().saturating_mul(self.per_ns.get())))
    }

    /// Ticks to whole milliseconds, rounded up.
    fn ms_ceil(&self, ticks: u128) -> u64 {
        clamp_u64(ticks.div_ceil(NS_PER_MS.saturating_mul(self.per_ns.get())))
    }
}

fn degenerate(limits: &Limits, cost: u64) -> Decision {
    let allowed = cost == 0;
    Decision {
        allowed,
        limit: 0,
        remaining: 0,
        reset_s: 0,
        retry_after_s: if allowed { 0 } else { limits.window_s.max(1) },
        retry_after_ms: if allowed {
            0
        } else {
            limits.window_s.max(1).saturating_mul(1000)
        },
    }
}

/// Whole emission intervals in `ticks`, rounded down.
pub(super) fn units(ticks: u128, t: NonZeroU128) -> u64 {
    clamp_u64(ticks / t)
}

fn clamp_u64(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// `tat` as a decimal string on the way out; a string or an integer on the way in.
mod tat_text {
    use serde::de::{self, Deserializer, Visitor};
    use serde::Serializer;
    use std::fmt;

    pub fn serialize<S: Serializer>(tat: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(tat)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(TatVisitor)
    }

    struct TatVisitor;

    impl Visitor<'_> for TatVisitor {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer of nanoseconds, as a decimal string or a number")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
            // What a JavaScript number holding a safe integer arrives as.
            if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 9_007_199_254_740_991.0 {
                Ok(v as u64)
            } else {
                Err(E::invalid_value(de::Unexpected::Float(v), &self))
            }
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(E::invalid_value(de::Unexpected::Str(v), &self));
            }
            v.parse()
                .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
        }
    }
}
