//! Write-ahead persistence of a bucket's state: no answer reveals a state that storage does not
//! already hold, or is writing (the runtime's output gate holds the answer until that write is
//! confirmed). So an object that ends at any moment — its host crashing, a restart for a
//! deploy, an eviction — starts again from a state at least as used as any it answered from:
//! it may refuse a request the limit had room for, never admit one beyond the limit.
//!
//! A write per decision would put a storage write on every answer, so a write reserves ahead:
//! it stores the new state plus `margin` more admissions, and the answers that stay within
//! that reservation need no write. The margin doubles while writes follow each other within
//! [`WRITE_WINDOW_MS`] (a busy bucket settles at about one write per window) and halves
//! otherwise (a quiet bucket writes its exact state), up to what the policy admits in a window
//! (below), and a reservation never goes past an empty bucket. Admissions given back are
//! written back at once. Once the bucket has not changed for [`TRIM_AFTER_MS`], its exact
//! state is written, so an idle object that is evicted loses nothing either.
//!
//! What a restart may cost is the reservation not yet spent: at most `margin` admissions, and
//! the margin is never more than the policy admits in [`WRITE_WINDOW_MS`] at its sustained
//! rate (`limit · 0.05 / window_s`, rounded down). Below 20 admissions per second that is none:
//! such a bucket writes its exact state before every answer that changes it, and a restart
//! costs nothing at all.

use super::gcra::{units, Shape};
use super::{GcraState, Limits};

/// Writes closer together than this grow the reservation.
pub const WRITE_WINDOW_MS: u64 = 50;
/// How long a bucket must stay unchanged before its exact state replaces a reservation.
pub const TRIM_AFTER_MS: u64 = 1_000;

/// What storage holds of one bucket, against what its owner holds.
#[derive(Debug, Clone, Default)]
pub struct WriteAhead {
    /// What storage holds (or is writing); `None`: nothing, a full bucket.
    stored: Option<GcraState>,
    /// The owner's latest state.
    current: Option<GcraState>,
    /// Admissions the next write reserves beyond the state it is for.
    margin: u64,
    last_write_ms: Option<u64>,
    last_change_ms: u64,
}

/// What to do when the trim timer fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trim {
    /// Write this exact state now.
    Write(GcraState),
    /// The bucket changed since: look again after this many ms.
    After(u64),
    /// Storage already holds the exact state.
    Done,
}

impl WriteAhead {
    /// Storage read `stored` (`None` for nothing, or for a state that could not be read: the
    /// owner's first decision then writes what it settled on).
    pub fn restored(stored: Option<GcraState>) -> WriteAhead {
        WriteAhead {
            stored,
            current: stored,
            ..WriteAhead::default()
        }
    }

    /// The owner's state became `next` at `now_ms`, by a decision under `limits` about to be
    /// answered. Returns the state to write before that answer goes out, or `None` when
    /// storage already holds `next` or more.
    pub fn changed(&mut self, next: GcraState, limits: &Limits, now_ms: u64) -> Option<GcraState> {
        let previous = self.current.replace(next);
        self.last_change_ms = now_ms;
        let Some(shape) = Shape::of(limits) else {
            // Limits that refuse everything never advance a state; write what is asked, exactly.
            return self.write(next, now_ms);
        };
        let at = shape.ticks_of(next);
        if previous.is_some_and(|p| shape.ticks_of(p) > at) {
            // Admissions given back: storage may hold them as spent, which a restart would
            // refuse; the exact state is written (no answer ever told more than it).
            self.margin = 0;
            return self.write(next, now_ms);
        }
        if self.stored.is_some_and(|s| shape.ticks_of(s) >= at) {
            return None;
        }
        let close = self
            .last_write_ms
            .is_some_and(|w| now_ms.saturating_sub(w) < WRITE_WINDOW_MS);
        // No more than the policy admits in a window: a bucket whose rate cannot outrun one
        // write per window (below 20 per second) is written exactly, every time.
        let most = units(shape.ticks_at_ms(WRITE_WINDOW_MS).min(shape.cap), shape.t);
        self.margin = if close {
            self.margin.saturating_mul(2).max(1)
        } else {
            self.margin / 2
        }
        .min(most);
        // Never past an empty bucket: a restart finds at worst no admission left.
        let empty_at = shape.ticks_at_ms(now_ms).saturating_add(shape.cap).max(at);
        let reserved = at
            .saturating_add(u128::from(self.margin).saturating_mul(shape.t.get()))
            .min(empty_at);
        let write = shape.state_at(reserved).unwrap_or(next);
        self.write(write, now_ms)
    }

    fn write(&mut self, state: GcraState, now_ms: u64) -> Option<GcraState> {
        self.stored = Some(state);
        self.last_write_ms = Some(now_ms);
        Some(state)
    }

    /// The trim timer fired at `now_ms`: once the bucket has been unchanged for
    /// [`TRIM_AFTER_MS`], the exact state replaces the reservation (and the margin starts
    /// again from none).
    pub fn trim(&mut self, now_ms: u64) -> Trim {
        if self.stored == self.current {
            return Trim::Done;
        }
        let quiet = now_ms.saturating_sub(self.last_change_ms);
        if quiet < TRIM_AFTER_MS {
            return Trim::After(TRIM_AFTER_MS - quiet);
        }
        self.margin = 0;
        match self.current {
            Some(exact) => {
                self.stored = Some(exact);
                Trim::Write(exact)
            }
            // Not reachable (a state is never changed to none), and nothing to write.
            None => Trim::Done,
        }
    }

    /// Storage was emptied (a full bucket's state deleted).
    pub fn cleared(&mut self) {
        *self = WriteAhead::default();
    }

    /// Admissions storage holds as spent beyond the owner's state, under `limits` (what a
    /// restart now would refuse while the limit had room).
    #[cfg(test)]
    pub fn reserved_units(&self, limits: &Limits) -> u64 {
        let (Some(shape), Some(stored)) = (Shape::of(limits), self.stored) else {
            return 0;
        };
        let current = self.current.map_or(0, |c| shape.ticks_of(c));
        units(shape.ticks_of(stored).saturating_sub(current), shape.t)
    }
}
