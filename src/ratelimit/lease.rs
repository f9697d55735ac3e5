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
//! An isolate that did not spend all its extras returns them ([`Owner::give_back`]). The owner
//! takes them back only for the lease it granted last, when its state has not changed since,
//! once, under the limits it was granted under and no more than its extras: then the state becomes exactly that of a smaller
//! lease, so returning is exact too. Otherwise the unspent extras are lost: a lease may refuse
//! requests while the limit had room, never admit one beyond it.
//!
//! A lease is named by a *tag* the owner issues from a counter that starts at a random point of
//! its `2⁶⁰` values when the owner starts and moves on with every grant of extras, and that it
//! keeps in memory only. So a give-back delivered twice, one that arrives after a later change,
//! and one for a lease of an owner that has restarted since (its state reloaded, maybe with a
//! reservation beyond its last one) all find no lease of theirs open, and change nothing. Tags
//! are below `2⁶⁰`, so they are never a `tat` in nanoseconds after 2006 (the tag of the builds
//! that named leases by the bucket's `tat`): a give-back carrying one of those, or one of these
//! shown to such a build, matches nothing either.

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
    /// Names this lease when its extras are returned; 0 when it has none. Issued by the
    /// [`Owner`]; opaque to the isolate, which only echoes it.
    pub tag: u64,
}

/// Decides a lease; returns the grant (untagged: [`Owner::lease`] tags it) and the state to
/// persist (if it changed).
#[must_use]
pub fn lease(
    state: Option<GcraState>,
    limits: &Limits,
    now_ms: u64,
    ask: LeaseAsk,
) -> (Grant, Option<GcraState>) {
    let (decision, after_one) = check(state, limits, now_ms, 1);
    let refused = |decision| {
        (
            Grant {
                decision,
                extra: 0,
                tag: 0,
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
                tag: 0,
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
            tag: 0,
        },
        Some(after),
    )
}

/// The tags' range: `1..TAGS`.
const TAGS: u64 = 1 << 60;

/// A bucket as its owner holds it: the state, and the lease granted last while its extras may
/// still come back. The lease is in memory only, so nothing comes back across a restart.
#[derive(Debug, Clone)]
pub struct Owner {
    state: Option<GcraState>,
    /// The stored state could not be read: the bucket's true state is unknown until the first
    /// decision takes it as exhausted ([`Owner::restore`]).
    unknown: bool,
    /// The tag the next grant of extras is issued.
    next_tag: u64,
    open: Option<Open>,
}

/// The lease whose extras may come back: its tag, its limits and its extras.
#[derive(Debug, Clone, Copy)]
struct Open {
    tag: u64,
    limits: Limits,
    extra: u64,
}

impl Owner {
    /// An owner of a bucket in `state` (`None`: full), issuing tags from `seed` on (drawn at
    /// random by the platform when the owner starts).
    pub fn new(state: Option<GcraState>, seed: u64) -> Owner {
        Owner {
            state,
            unknown: false,
            next_tag: seed % (TAGS - 1) + 1,
            open: None,
        }
    }

    pub fn state(&self) -> Option<GcraState> {
        self.state
    }

    /// The open lease's tag.
    #[cfg(test)]
    pub fn open_tag(&self) -> Option<u64> {
        self.open.map(|o| o.tag)
    }

    /// Replaces the state (read from storage, or deleted): no lease stays open.
    pub fn reset(&mut self, state: Option<GcraState>) {
        self.state = state;
        self.unknown = false;
        self.open = None;
    }

    /// Replaces the state with the one storage holds (`None`: nothing stored, a full bucket).
    /// A stored text that does not decode (written corrupt, or by a build that stored another
    /// shape) is not taken as a full bucket, which would hand out a whole burst the bucket may
    /// have spent: the first decision takes it as exhausted at that moment, under that
    /// decision's limits, and persists that, so the bucket refills at the policy's rate from
    /// there, never faster than it could have. The error is returned for the log.
    pub fn restore(&mut self, stored: Option<&str>) -> Result<(), serde_json::Error> {
        match stored.map(serde_json::from_str::<GcraState>).transpose() {
            Ok(state) => {
                self.reset(state);
                Ok(())
            }
            Err(e) => {
                self.reset(None);
                self.unknown = true;
                Err(e)
            }
        }
    }

    /// Whether the state is unknown (unreadable in storage, and no decision since): such a
    /// state must not be cleaned up as if the bucket were full.
    pub fn is_unknown(&self) -> bool {
        self.unknown
    }

    /// An unknown state becomes an exhausted bucket at `now_ms` under `limits`; returns that
    /// state (to persist), or `None` when the state was known or the limits are degenerate
    /// (which refuse every request anyway, so the state stays unknown).
    fn settle_unknown(&mut self, limits: &Limits, now_ms: u64) -> Option<GcraState> {
        if !self.unknown {
            return None;
        }
        let shape = Shape::of(limits)?;
        let exhausted = shape.state_at(shape.ticks_at_ms(now_ms).saturating_add(shape.cap))?;
        self.reset(Some(exhausted));
        Some(exhausted)
    }

    /// Decides a lease ([`lease`]) and issues its tag; returns the grant and the state to
    /// persist (if it changed). Any change closes the lease that was open.
    pub fn lease(
        &mut self,
        limits: &Limits,
        now_ms: u64,
        ask: LeaseAsk,
    ) -> (Grant, Option<GcraState>) {
        let settled = self.settle_unknown(limits, now_ms);
        let (mut grant, next) = lease(self.state, limits, now_ms, ask);
        let next = next.or(settled);
        if let Some(next) = next {
            self.state = Some(next);
            self.open = None;
            if grant.extra > 0 {
                grant.tag = self.next_tag;
                self.next_tag = self.next_tag % (TAGS - 1) + 1;
                self.open = Some(Open {
                    tag: grant.tag,
                    limits: *limits,
                    extra: grant.extra,
                });
            }
        }
        (grant, next)
    }

    /// Takes back `unused` extras of the lease `tag` granted under `limits`, when it is the
    /// open lease and `unused` is at most its extras; returns the state to persist, or `None`
    /// (nothing changes). The lease is closed: it gives back once.
    pub fn give_back(&mut self, limits: &Limits, tag: u64, unused: u64) -> Option<GcraState> {
        let open = self.open?;
        if open.tag != tag || open.limits != *limits || unused == 0 || unused > open.extra {
            return None;
        }
        let shape = Shape::of(limits)?;
        let back = u128::from(unused).saturating_mul(shape.t.get());
        let next = shape.state_at(shape.ticks_of(self.state?).saturating_sub(back))?;
        self.reset(Some(next));
        Some(next)
    }
}
