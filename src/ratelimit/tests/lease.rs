//! Leases: exact in their upper bound whatever the isolates do with them, exact on return.

use crate::ratelimit::*;

const L: Limits = Limits {
    limit: 10,
    window_s: 10,
    burst: 10,
};
const T_MS: u64 = 1_000;

fn ask(want: u64, hold_ms: u64) -> LeaseAsk {
    LeaseAsk { want, hold_ms }
}

#[test]
fn a_lease_of_one_is_exactly_a_check() {
    let mut state = None;
    for now in [0u64, 10, 20, 3_000, 3_001] {
        let (d, s1) = check(state, &L, now, 1);
        let (g, s2) = lease(state, &L, now, ask(1, 500));
        assert_eq!((g.decision, g.extra), (d, 0));
        assert_eq!(s1, s2);
        state = s1;
    }
}

#[test]
fn extras_take_at_most_half_of_what_is_left_and_none_from_a_nearly_empty_bucket() {
    // Full bucket of 10: the asking request takes 1, a hold of one interval costs nothing more
    // (the asking request already reaches that far), 9 are left: at most 4 extras.
    let (g, s) = lease(None, &L, 0, ask(64, T_MS));
    assert!(g.decision.allowed);
    assert_eq!(g.extra, 4);
    assert_eq!(
        g.decision.remaining, 5,
        "remaining counts the extras as spent"
    );
    assert_eq!(g.tag, 0, "a bare grant is not tagged: the owner tags it");
    // Spend the bucket down to one left: no extras any more.
    let mut state = s;
    for _ in 0..4 {
        state = check(state, &L, 0, 1).1;
    }
    let (g, _) = lease(state, &L, 0, ask(64, T_MS));
    assert!(g.decision.allowed);
    assert_eq!(g.extra, 0);
}

#[test]
fn a_refused_lease_changes_nothing() {
    let mut state = None;
    for _ in 0..10 {
        state = check(state, &L, 0, 1).1;
    }
    let (g, s) = lease(state, &L, 0, ask(8, T_MS));
    assert!(!g.decision.allowed);
    assert_eq!((g.extra, s), (0, None));
    assert_eq!(g.decision.retry_after_ms, T_MS);
}

#[test]
fn the_hold_is_charged_when_the_bucket_is_nearly_full() {
    // A hold of 3 s on a full bucket: the extras count as arriving 3 s from now, so the bucket
    // holds 10 − 3 units of room for them, and half of the 7 (3) are granted.
    let (g, s) = lease(None, &L, 0, ask(64, 3 * T_MS));
    assert_eq!(g.extra, 3);
    assert_eq!(s.map(|s| s.tat), Some((3 + 3) * 1_000_000_000));
}

#[test]
fn returning_unspent_extras_leaves_the_state_of_a_smaller_lease() {
    let mut owner = Owner::new(None, 7);
    let (g, s) = owner.lease(&L, 0, ask(5, T_MS));
    assert_eq!(g.extra, 4);
    assert_ne!(g.tag, 0);
    let (_, smaller) = lease(None, &L, 0, ask(3, T_MS));
    assert_ne!(s, smaller);
    // Not for another tag, other limits, nothing or more than was granted.
    let other = Limits { burst: 11, ..L };
    for (limits, tag, unused) in [
        (L, g.tag + 1, 2),
        (other, g.tag, 2),
        (L, g.tag, 0),
        (L, g.tag, 5),
    ] {
        assert_eq!(
            owner.give_back(&limits, tag, unused),
            None,
            "{limits:?} {tag} {unused}"
        );
        assert_eq!(owner.state(), s);
    }
    assert_eq!(owner.give_back(&L, g.tag, 2), smaller);
    assert_eq!(owner.state(), smaller);
}

#[test]
fn nothing_comes_back_once_something_else_was_granted() {
    let mut owner = Owner::new(None, 7);
    let (g, _) = owner.lease(&L, 0, ask(5, T_MS));
    let (single, s) = owner.lease(&L, 10, ask(1, T_MS));
    assert!(single.decision.allowed);
    assert_eq!(owner.give_back(&L, g.tag, 2), None);
    assert_eq!(owner.state(), s);
    // A refusal changes nothing, so the lease before it may still come back.
    let mut owner = Owner::new(None, 7);
    let (g, _) = owner.lease(&L, 0, ask(5, T_MS));
    let before = owner.state();
    for _ in 0..5 {
        owner.lease(&L, 0, ask(1, T_MS));
    }
    let (refused, none) = owner.lease(&L, 0, ask(1, T_MS));
    assert!(!refused.decision.allowed && none.is_none());
    assert_eq!(refused.tag, 0);
    assert_ne!(owner.state(), before);
    assert_eq!(
        owner.give_back(&L, g.tag, 1),
        None,
        "singles were granted since"
    );
}

/// A give-back delivered again — at once, or after the bucket came back to the very state the
/// first one left (other grants of exactly the returned admissions) — changes nothing. Naming a
/// lease by the bucket's `tat` (as builds before the owner issued tags did) took the second one
/// back: its admissions were spent by the grants since, so the bucket passed its limit.
#[test]
fn a_replayed_give_back_changes_nothing() {
    let mut owner = Owner::new(None, 7);
    let (g, s) = owner.lease(&L, 0, ask(5, T_MS));
    assert_eq!(g.extra, 4);
    let back = owner.give_back(&L, g.tag, 4);
    assert!(back.is_some());
    assert_eq!(owner.give_back(&L, g.tag, 4), None, "delivered twice");
    assert_eq!(owner.state(), back);
    // Four single admissions spend what came back: the bucket is at the lease's state again.
    for _ in 0..4 {
        assert!(owner.lease(&L, 0, ask(1, T_MS)).0.decision.allowed);
    }
    assert_eq!(owner.state(), s, "the same state as the lease left");
    assert_eq!(owner.give_back(&L, g.tag, 4), None, "delivered late");
    assert_eq!(owner.state(), s);
    // So at this instant the bucket admits its 10 in all: the lease's own request (its extras
    // came back unspent), the four singles and five more.
    let more = (0..20)
        .take_while(|_| owner.lease(&L, 0, ask(1, T_MS)).0.decision.allowed)
        .count();
    assert_eq!(1 + 4 + more, 10);
}

/// An owner that restarts reloads its state (storage holds at least what it answered from)
/// and draws a new seed: a give-back for a lease from before changes nothing, also once a new
/// lease is open and also when the new owner's state is the old lease's.
#[test]
fn a_give_back_from_before_a_restart_changes_nothing() {
    let mut owner = Owner::new(None, 7);
    let (old, s) = owner.lease(&L, 0, ask(5, T_MS));
    let mut restarted = Owner::new(owner.state(), 0x5eed);
    assert_eq!(restarted.give_back(&L, old.tag, 4), None);
    assert_eq!(restarted.state(), s);
    // The last update lost: the owner reloads the state before that lease, and grants it again.
    let mut lost = Owner::new(None, 0x5eed);
    let (new, again) = lost.lease(&L, 0, ask(5, T_MS));
    assert_eq!((again, new.extra), (s, 4));
    assert_ne!(new.tag, old.tag);
    assert_eq!(lost.give_back(&L, old.tag, 4), None);
    assert_eq!(lost.state(), s);
    assert!(
        lost.give_back(&L, new.tag, 4).is_some(),
        "its own lease comes back"
    );
}

#[test]
fn tags_never_look_like_a_tat_and_never_repeat_within_an_owner() {
    for seed in [0, 1, u64::MAX, (1 << 60) - 2, (1 << 60) - 1, 1 << 60] {
        let mut owner = Owner::new(None, seed);
        let mut seen = std::collections::HashSet::new();
        for n in 0..50u64 {
            let (g, _) = owner.lease(&L, n * 100_000, ask(3, 1));
            assert!(g.extra > 0);
            assert!((1..1 << 60).contains(&g.tag), "seed {seed}: tag {}", g.tag);
            assert!(seen.insert(g.tag), "seed {seed}: tag {} again", g.tag);
        }
    }
}

#[test]
fn degenerate_limits_grant_nothing() {
    let zero = Limits {
        limit: 0,
        window_s: 10,
        burst: 0,
    };
    let (g, s) = lease(None, &zero, 0, ask(10, 100));
    assert!(!g.decision.allowed);
    assert_eq!((g.extra, s), (0, None));
}

/// SplitMix64, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n.max(1)
    }
}

#[derive(Default, Clone, Copy)]
struct Held {
    left: u64,
    /// When the isolate spends what is left, all at once (within the hold).
    spend_at_ms: u64,
    until_ms: u64,
    tag: u64,
}

/// Several isolates share one bucket and lease with random sizes and holds. The adversary
/// spends each lease's extras in one burst at a random moment of its hold — most often at its
/// very end, while the others keep asking — and returns leftovers or forgets them; give-backs
/// are delivered again at random, and the owner restarts now and then. Every span
/// between two admissions must hold at most `burst + ⌊span / T⌋` of them.
#[test]
fn isolates_sharing_a_bucket_never_jointly_pass_the_limit() {
    let policies = [
        L,
        Limits {
            limit: 200,
            window_s: 10,
            burst: 200,
        },
        Limits {
            limit: 3,
            window_s: 1,
            burst: 5,
        },
        Limits {
            limit: 1_000,
            window_s: 1,
            burst: 50,
        },
        Limits {
            limit: 100,
            window_s: 1,
            burst: 1,
        },
    ];
    for (seed, limits) in (1u64..=60).zip(policies.iter().cycle()) {
        let mut rng = Rng(seed);
        let mut owner = Owner::new(None, seed);
        let mut held = [Held::default(); 4];
        // Every give-back ever sent, delivered again at random (the network duplicating it).
        let mut sent: Vec<(u64, u64)> = Vec::new();
        let mut admitted: Vec<u64> = Vec::new();
        let mut now = 1_000_000u64;
        for _ in 0..4_000 {
            now += rng.below(30);
            for h in held.iter_mut() {
                if h.left > 0 && h.spend_at_ms <= now && now <= h.until_ms {
                    admitted.extend(std::iter::repeat_n(now, h.left as usize));
                    h.left = 0;
                }
            }
            let i = rng.below(held.len() as u64) as usize;
            let h = &mut held[i];
            if h.left > 0 && now <= h.until_ms {
                continue;
            }
            if h.left > 0 && rng.below(2) == 0 {
                let _ = owner.give_back(limits, h.tag, h.left);
                sent.push((h.tag, h.left));
            }
            if !sent.is_empty() && rng.below(4) == 0 {
                let (tag, unused) = sent[rng.below(sent.len() as u64) as usize];
                let _ = owner.give_back(limits, tag, unused);
            }
            if rng.below(200) == 0 {
                // A restart that keeps the state (losing none of it), with a new seed.
                owner = Owner::new(owner.state(), rng.below(u64::MAX));
            }
            let want = 1 + rng.below(64);
            let hold_ms = rng.below(3_000);
            let (g, _) = owner.lease(limits, now, ask(want, hold_ms));
            let spend_at_ms = if rng.below(3) == 0 {
                now + rng.below(hold_ms + 1)
            } else {
                now + hold_ms
            };
            *h = Held {
                left: g.extra,
                spend_at_ms,
                until_ms: now + hold_ms,
                tag: g.tag,
            };
            if g.decision.allowed {
                admitted.push(now);
            }
        }
        admitted.sort_unstable();
        // T exact: burst + ⌊span · limit / window⌋.
        let window_ns = u128::from(limits.window_s) * 1_000_000_000;
        for (a, &first) in admitted.iter().enumerate() {
            for (b, &last) in admitted.iter().enumerate().skip(a) {
                let span_ns = u128::from(last - first) * 1_000_000;
                let most =
                    u128::from(limits.burst) + span_ns * u128::from(limits.limit) / window_ns;
                let count = (b - a + 1) as u128;
                assert!(
                    count <= most,
                    "seed {seed}, {limits:?}: {count} admissions in {} ms, at most {most}",
                    last - first
                );
            }
        }
        assert!(
            admitted.len() > 10,
            "seed {seed}: the simulation admitted almost nothing"
        );
    }
}

/// A stored state that does not decode is taken as an exhausted bucket at the first decision,
/// under that decision's limits: no burst is handed out, and from there admissions come at the
/// policy's rate — over any `d` ms after, at most `⌊d/T⌋`.
#[test]
fn an_unreadable_stored_state_is_an_exhausted_bucket_not_a_full_one() {
    for stored in [
        "",
        "{",
        "null",
        "{\"tat\":\"soon\"}",
        "{\"tat\":-1}",
        "{\"tat\":\"18446744073709551616\"}",
        "\"1767225600000000000\"",
    ] {
        let mut owner = Owner::new(None, 7);
        assert!(owner.restore(Some(stored)).is_err(), "{stored:?}");
        assert!(owner.is_unknown());
        let now = 50_000;
        let (g, s) = owner.lease(&L, now, ask(8, T_MS));
        assert!(!g.decision.allowed, "{stored:?}");
        assert_eq!((g.extra, g.decision.remaining), (0, 0));
        assert_eq!(g.decision.retry_after_ms, T_MS);
        // The exhausted state is persisted, so the corrupt text is repaired, not read again.
        let exhausted = (now + L.window_s * 1_000) * 1_000_000;
        assert_eq!(s.map(|s| (s.tat, s.rem)), Some((exhausted, 0)));
        assert!(!owner.is_unknown());
        let admitted = (0..=10 * T_MS)
            .step_by(100)
            .filter(|d| owner.lease(&L, now + d, ask(1, 0)).0.decision.allowed)
            .count();
        assert_eq!(admitted, 10, "one per T over 10 T, not a burst: {stored:?}");
    }
}

#[test]
fn a_readable_or_absent_stored_state_is_taken_as_it_is() {
    let mut owner = Owner::new(None, 7);
    assert!(owner.restore(Some("{\"tat\":\"3000000000\"}")).is_ok());
    assert_eq!(
        owner.state(),
        Some(GcraState {
            tat: 3_000_000_000,
            rem: 0
        })
    );
    assert!(owner
        .restore(Some("{\"tat\":4000000000,\"rem\":2}"))
        .is_ok());
    assert_eq!(
        owner.state(),
        Some(GcraState {
            tat: 4_000_000_000,
            rem: 2
        })
    );
    assert!(owner.restore(None).is_ok());
    assert_eq!((owner.state(), owner.is_unknown()), (None, false));
    let (g, _) = owner.lease(&L, 0, ask(1, 0));
    assert_eq!(g.decision.remaining, 9, "nothing stored: a full bucket");
}

/// Until a decision settles it, an unknown state gives nothing back, stays unknown under
/// degenerate limits (which refuse anyway) and is not cleaned up as full (`is_unknown`).
#[test]
fn an_unknown_state_stays_closed_until_a_real_decision_settles_it() {
    let mut owner = Owner::new(None, 7);
    assert!(owner.restore(Some("garbage")).is_err());
    assert_eq!(owner.give_back(&L, 8, 1), None);
    assert!(owner.is_unknown());
    let degenerate = Limits { burst: 0, ..L };
    let (g, s) = owner.lease(&degenerate, 0, ask(1, 0));
    assert!(!g.decision.allowed);
    assert_eq!(s, None);
    assert!(owner.is_unknown(), "still unknown for the real limits");
    assert!(!owner.lease(&L, 0, ask(1, 0)).0.decision.allowed);
    assert!(!owner.is_unknown());
}
