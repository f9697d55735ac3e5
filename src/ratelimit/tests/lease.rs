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
    assert_eq!(s.map(|s| s.tat), Some(g.tag));
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
    let (g, s) = lease(None, &L, 0, ask(5, T_MS));
    assert_eq!(g.extra, 4);
    let (_, smaller) = lease(None, &L, 0, ask(3, T_MS));
    assert_eq!(give_back(s, &L, g.tag, 2), smaller);
    // Nothing back once something else was granted since, or for a stale tag.
    let later = check(s, &L, 10, 1).1;
    assert_eq!(give_back(later, &L, g.tag, 2), None);
    assert_eq!(give_back(s, &L, g.tag.wrapping_add(1), 2), None);
    assert_eq!(give_back(s, &L, g.tag, 0), None);
    assert_eq!(give_back(None, &L, g.tag, 2), None);
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
/// very end, while the others keep asking — and returns leftovers or forgets them. Every span
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
        let mut state: Option<GcraState> = None;
        let mut held = [Held::default(); 4];
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
                if let Some(s) = give_back(state, limits, h.tag, h.left) {
                    state = Some(s);
                }
            }
            let want = 1 + rng.below(64);
            let hold_ms = rng.below(3_000);
            let (g, s) = lease(state, limits, now, ask(want, hold_ms));
            if let Some(s) = s {
                state = Some(s);
            }
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
