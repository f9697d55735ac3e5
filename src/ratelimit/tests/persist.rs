//! Write-ahead persistence: storage always holds at least what was answered, so a restart at
//! any moment never admits beyond the limit; busy buckets write about once per window.

use super::property::{assert_within_rate, Rng};
use super::{lim, T0};
use crate::ratelimit::persist::{Trim, WriteAhead, TRIM_AFTER_MS, WRITE_WINDOW_MS};
use crate::ratelimit::{check, GcraState, LeaseAsk, Limits, Owner};

/// Whether `a` is at least as used as `b` (one policy: (tat, rem) orders as ticks do).
fn covers(a: Option<GcraState>, b: Option<GcraState>) -> bool {
    match (a, b) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(a), Some(b)) => (a.tat, a.rem) >= (b.tat, b.rem),
    }
}

/// One admission at `now`, decided as the owner decides it and handed to `w`: the new state,
/// and what `w` writes before the answer goes out.
fn admit(
    state: &mut Option<GcraState>,
    w: &mut WriteAhead,
    limits: &Limits,
    now: u64,
) -> (GcraState, Option<GcraState>) {
    let next = check(*state, limits, now, 1).1.expect("allowed");
    *state = Some(next);
    (next, w.changed(next, limits, now))
}

#[test]
fn a_quiet_bucket_writes_its_exact_state_before_each_answer() {
    let limits = lim(10, 60, 10);
    let mut w = WriteAhead::restored(None);
    let mut state = None;
    for i in 0..5 {
        let (next, written) = admit(&mut state, &mut w, &limits, T0 + i * 1_000);
        assert_eq!(written, Some(next), "exact, at once");
        assert_eq!(w.reserved_units(&limits), 0);
    }
}

#[test]
fn a_busy_bucket_reserves_ahead_and_writes_about_once_per_window() {
    let mut w = WriteAhead::restored(None);
    let (mut state, mut stored, mut writes) = (None, None, 0);
    // 5 admissions per ms for 2 s: 10,000 answers, the rate limit well above it.
    let limits_busy = lim(10_000, 1, 10_000);
    for ms in 0..2_000u64 {
        for _ in 0..5 {
            let (next, written) = admit(&mut state, &mut w, &limits_busy, T0 + ms);
            if written.is_some() {
                stored = written;
                writes += 1;
            }
            assert!(
                covers(stored, Some(next)),
                "answered beyond storage at {ms} ms"
            );
        }
    }
    assert!(
        writes <= 2 * 2_000 / WRITE_WINDOW_MS as usize,
        "{writes} writes for 10,000 answers"
    );
}

#[test]
fn a_bucket_slower_than_a_write_per_window_is_written_exactly_every_time() {
    // 19 per second: under one admission per 50 ms, so no margin, even in a burst.
    let limits = lim(19, 1, 19);
    let mut w = WriteAhead::restored(None);
    let mut state = None;
    for i in 0..19 {
        let (next, written) = admit(&mut state, &mut w, &limits, T0);
        assert_eq!(written, Some(next), "admission {i}");
    }
}

#[test]
fn the_margin_is_at_most_what_the_policy_admits_in_a_window() {
    // 200 per second: 10 per 50 ms.
    let limits = lim(200, 1, 1_000);
    let mut w = WriteAhead::restored(None);
    let mut state = None;
    for i in 0..1_000 {
        admit(&mut state, &mut w, &limits, T0);
        assert!(w.reserved_units(&limits) <= 10, "after {i}");
    }
}

#[test]
fn a_reservation_never_goes_past_an_empty_bucket() {
    let limits = lim(5_000, 60, 5);
    let mut w = WriteAhead::restored(None);
    let mut state = None;
    for i in 0..5 {
        admit(&mut state, &mut w, &limits, T0 + i);
        assert!(
            w.reserved_units(&limits) + (i + 1) <= 5,
            "past empty after {i}"
        );
    }
}

#[test]
fn a_give_back_is_written_exactly_at_once() {
    let limits = lim(100, 1, 100);
    let mut owner = Owner::new(None, 1);
    let mut w = WriteAhead::restored(None);
    let ask = LeaseAsk {
        want: 20,
        hold_ms: 250,
    };
    let (grant, next) = owner.lease(&limits, T0, ask);
    assert!(grant.extra > 0);
    let written = w
        .changed(next.expect("changed"), &limits, T0)
        .expect("first write");
    let back = owner
        .give_back(&limits, grant.tag, grant.extra)
        .expect("taken back");
    assert_eq!(
        w.changed(back, &limits, T0 + 10),
        Some(back),
        "the admissions given back are written back at once"
    );
    assert_eq!(w.reserved_units(&limits), 0);
    assert_ne!(written, back);
    assert_eq!(w.trim(T0 + 10 + TRIM_AFTER_MS), Trim::Done);
}

#[test]
fn the_trim_writes_the_exact_state_once_the_bucket_is_quiet() {
    // 10,000 per second: writes close together reserve ahead.
    let limits = lim(10_000, 1, 10_000);
    let mut w = WriteAhead::restored(None);
    let mut state = None;
    for i in 0..100 {
        admit(&mut state, &mut w, &limits, T0 + i / 10);
    }
    assert!(w.reserved_units(&limits) > 0, "a reservation is held");
    let last = T0 + 9;
    assert_eq!(w.trim(last + TRIM_AFTER_MS - 1), Trim::After(1));
    assert_eq!(
        w.trim(last + TRIM_AFTER_MS),
        Trim::Write(state.expect("some"))
    );
    assert_eq!(w.reserved_units(&limits), 0);
    assert_eq!(w.trim(last + 2 * TRIM_AFTER_MS), Trim::Done);
}

#[test]
fn storage_emptied_starts_over() {
    let limits = lim(10, 1, 10);
    let mut w = WriteAhead::restored(None);
    let next = check(None, &limits, T0, 1).1.expect("allowed");
    assert!(w.changed(next, &limits, T0).is_some());
    w.cleared();
    assert_eq!(w.trim(T0 + 10 * TRIM_AFTER_MS), Trim::Done);
    assert_eq!(
        w.changed(next, &limits, T0 + 1),
        Some(next),
        "nothing stored"
    );
}

/// One owner over pseudo-random traffic (plain decisions, leases spent at once, give-backs,
/// trims) that restarts from storage at random moments: every restart reloads only what
/// storage held when the last answer went out, and the admissions over every span still fit
/// the limit. Returns how many restarts happened.
fn run_restarts(limits: Limits, first_seed: u64) -> usize {
    let mut rng = Rng(first_seed);
    let mut owner = Owner::new(None, rng.next());
    let mut w = WriteAhead::restored(None);
    let mut stored: Option<GcraState> = None;
    let mut allowed: Vec<(u64, u64)> = Vec::new();
    let mut restarts = 0;
    let mut now = T0;
    let t_ms = (limits.window_s * 1_000 / limits.limit).max(1);
    for _ in 0..4_000 {
        now += match rng.below(10) {
            0..=5 => 0,
            6..=8 => rng.below(2 * t_ms + 1),
            _ => rng.below(3 * TRIM_AFTER_MS),
        };
        match rng.below(20) {
            0 => {
                // The object ends here: a new one reads what storage holds.
                let text = stored.map(|s| serde_json::to_string(&s).expect("serialises"));
                owner = Owner::new(None, rng.next());
                owner.restore(text.as_deref()).expect("readable");
                w = WriteAhead::restored(stored);
                restarts += 1;
            }
            1 => {
                if let Trim::Write(s) = w.trim(now) {
                    assert!(covers(Some(s), owner.state()), "trim below the owner");
                    stored = Some(s);
                }
            }
            k => {
                let want = if k < 10 { 1 } else { 1 + rng.below(8) };
                let ask = LeaseAsk { want, hold_ms: 0 };
                let (grant, next) = owner.lease(&limits, now, ask);
                if let Some(next) = next {
                    if let Some(written) = w.changed(next, &limits, now) {
                        stored = Some(written);
                    }
                }
                // The answer goes out now: storage must already hold what it tells.
                assert!(covers(stored, owner.state()), "answered beyond storage");
                if grant.decision.allowed {
                    allowed.push((now, 1 + grant.extra));
                }
                if grant.extra > 1 && rng.next().is_multiple_of(3) {
                    let unused = 1 + rng.below(grant.extra);
                    if let Some(back) = owner.give_back(&limits, grant.tag, unused) {
                        assert_eq!(w.changed(back, &limits, now), Some(back));
                        stored = Some(back);
                        allowed.last_mut().expect("pushed").1 -= unused;
                    }
                }
            }
        }
    }
    assert_within_rate(limits, &allowed, &format!("restarts, seed {first_seed}"));
    restarts
}

#[test]
fn restarting_from_storage_at_any_moment_never_exceeds_the_limit() {
    let mut restarts = 0;
    for (n, limits) in [
        lim(10, 1, 10),
        lim(3, 1, 3),
        lim(100, 60, 20),
        lim(1_000, 1, 500),
    ]
    .into_iter()
    .enumerate()
    {
        for seed in 0..4 {
            restarts += run_restarts(limits, 0xfee1_0000 + n as u64 * 16 + seed);
        }
    }
    assert!(
        restarts > 100,
        "the traffic restarted the owner {restarts} times"
    );
}
