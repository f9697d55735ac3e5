//! Leases: a bucket's owner hands one isolate several admissions at once, so a busy isolate
//! asks the owner once per lease instead of once per request — without ever letting more
//! requests through than the policy allows.
//!
//! A lease asked at `now` for `want` admissions with a hold of `hold` is decided as one request
//! of cost 1 at `now` (the asking request's own admission, exactly as [`check`] decides it)
//! plus `e` extra admissions that the isolate spends at any moment in `[now, now + hold]`. The
//! extras are charged as if they all arrived at the *latest* moment they may be spent, and they
//! must fit the bucket at the *earliest*:
//!
//! ```text
//! tat₁ = max(tat, now) + T                       (the asking request)
//! tat₂ = max(tat₁, now + hold) + e·T,  with  tat₂ − now ≤ burst·T
//! ```
//!
//! Whatever the moments the extras are really spent at, the owner's `tat` is then never
//! earlier than the `tat` of the real sequence of admissions, so every later decision (for
//! this isolate or any other) is at least as strict as GCRA on the real sequence: over any
//! interval of length `d` at most `burst + ⌊d/T⌋` requests pass, across every isolate and
//! location — the guarantee of [`check`], word for word.
//!
//! The owner never grants more than half of what the bucket holds after the asking request,
//! so a nearly empty bucket hands out single admissions (today's exact per-request decision)
//! and isolates sharing a bucket each get a shrinking share. A lease of no extras changes the
//! state exactly as [`check`] does: no hold is charged.
//!
//! An isolate that did not spend all its extras returns them ([`give_back`]). The owner takes
//! them back only when nothing else was granted since (its `tat` is still the lease's `tag`):
//! then the state becomes exactly that of a smaller lease, so returning is exact too. Otherwise
//! the unspent extras are lost: a lease may refuse requests while the limit had room, never
//! admit one beyond it.

use super::gcra::{units, Shape};
use super::{check, Decision, GcraState, Limits};

/// What an isolate asks of a bucket's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseAsk {
    /// Admissions wanted, the asking request's included (1: a plain, exact decision).
    pub want: u64,
    /// How long, in ms from the moment it asked, the isolate may spend the extras.
    pub hold_ms: u64,
}

/// The owner's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The asking request's decision. `remaining` counts the extras as spent: never more than
    /// the owner holds at this grant (what it admits later to others is the isolate's to miss).
    pub decision: Decision,
    /// Extra admissions granted beyond the asking request's (0 when refused).
    pub extra: u64,
    /// The bucket's `tat` after this grant, in whole ns: presented when returning extras. Every
    /// admission moves `tat` on by T, at least 1 ns at the 10⁹ per second validation allows,
    /// so any admission since changes it.
    pub tag: u64,
}

/// Decides a lease; returns the grant and the state to persist (if it changed).
#[must_use]
pub fn lease(
    state: Option<GcraState>,
    limits: &Limits,
    now_ms: u64,
    ask: LeaseAsk,
) -> (Grant, Option<GcraState>) {
    let (decision, after_one) = check(state, limits, now_ms, 1);
    let refused = |decision| {
        let tag = state.map_or(0, |s| s.tat);
        (
            Grant {
                decision,
                extra: 0,
                tag,
            },
            None,
        )
    };
    let (Some(shape), Some(one)) = (Shape::of(limits), after_one) else {
        return refused(decision);
    };
    if !decision.allowed {
        return refused(decision);
    }
    let now = shape.ticks_at_ms(now_ms);
    let tat1 = shape.ticks_of(one);
    let hold = shape.ticks_at_ms(ask.hold_ms);
    let base = tat1.max(now.saturating_add(hold));
    let room = shape.cap.saturating_sub(base.saturating_sub(now));
    let extra = ask.want.saturating_sub(1).min(units(room, shape.t) / 2);
    let tat2 = base.saturating_add(u128::from(extra).saturating_mul(shape.t.get()));
    // No extras (or a time past u64 ns): exactly what `check` decided for the one request.
    let Some(after) = (extra > 0).then(|| shape.state_at(tat2)).flatten() else {
        return (
            Grant {
                decision,
                extra: 0,
                tag: one.tat,
            },
            Some(one),
        );
    };
    let used = tat2.saturating_sub(now);
    let decision = Decision {
        remaining: units(shape.cap.saturating_sub(used), shape.t),
        reset_s: shape.seconds_ceil(used),
        ..decision
    };
    (
        Grant {
            decision,
            extra,
            tag: after.tat,
        },
        Some(after),
    )
}

/// Takes back `unused` extras of the lease whose grant left the bucket at `tag`, when nothing
/// was granted since; returns the state to persist, or `None` (nothing changes).
#[must_use]
pub fn give_back(
    state: Option<GcraState>,
    limits: &Limits,
    tag: u64,
    unused: u64,
) -> Option<GcraState> {
    let shape = Shape::of(limits)?;
    let current = state?;
    if current.tat != tag || unused == 0 {
        return None;
    }
    let back = u128::from(unused).saturating_mul(shape.t.get());
    shape.state_at(shape.ticks_of(current).saturating_sub(back))
}
