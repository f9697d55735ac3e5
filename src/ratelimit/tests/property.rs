//! Property test: GCRA against an exact token-bucket simulation on pseudo-random traffic.
//!
//! The reference keeps a token count in exact integers (one token = `window_s·10⁹` units,
//! refilled at `limit` units per nanosecond, so the emission interval is exact, never rounded),
//! and is written the obvious, bookkeeping-heavy way. Every decision of [`check`] must match it
//! (allowed, remaining, reset, retry-after), and over every span between two allowed arrivals
//! the units allowed must stay within `burst + ⌊span / T⌋`.

use super::*;

/// SplitMix64: a tiny deterministic generator, so failures reproduce.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The exact reference: a token bucket in integer units.
struct Reference {
    limits: Limits,
    /// Units per token: `window_s·10⁹`.
    unit: u128,
    cap: u128,
    tokens: u128,
    last_ns: Option<u128>,
}

impl Reference {
    fn new(limits: Limits) -> Self {
        let unit = u128::from(limits.window_s) * 1_000_000_000;
        let cap = u128::from(limits.burst) * unit;
        Reference {
            limits,
            unit,
            cap,
            tokens: cap,
            last_ns: None,
        }
    }

    fn at(&mut self, now_ms: u64, cost: u64) -> Decision {
        let now = u128::from(now_ms) * 1_000_000;
        let rate = u128::from(self.limits.limit); // units per ns
        if let Some(last) = self.last_ns {
            assert!(now >= last, "the property test's clock only moves forward");
            self.tokens = (self.tokens + rate * (now - last)).min(self.cap);
        }
        self.last_ns = Some(now);
        let need = u128::from(cost) * self.unit;
        let secs_ceil = |units: u128| units.div_ceil(rate * 1_000_000_000) as u64;
        let ms_ceil = |units: u128| units.div_ceil(rate * 1_000_000) as u64;
        if need <= self.tokens {
            self.tokens -= need;
            return Decision {
                allowed: true,
                limit: self.limits.burst,
                remaining: (self.tokens / self.unit) as u64,
                reset_s: secs_ceil(self.cap - self.tokens),
                retry_after_s: 0,
                retry_after_ms: 0,
            };
        }
        let reset_s = secs_ceil(self.cap - self.tokens);
        Decision {
            allowed: false,
            limit: self.limits.burst,
            remaining: (self.tokens / self.unit) as u64,
            reset_s,
            retry_after_s: if need > self.cap {
                reset_s.max(1)
            } else {
                secs_ceil(need - self.tokens)
            },
            retry_after_ms: if need > self.cap {
                reset_s.max(1) * 1000
            } else {
                ms_ceil(need - self.tokens)
            },
        }
    }
}

fn run_property(limits: Limits, seed: u64, arrivals: usize) {
    let mut rng = Rng(seed);
    let mut bucket = Bucket::new(limits);
    let mut reference = Reference::new(limits);
    // Emission interval, for the traffic shape only.
    let t_ms = (limits.window_s * 1_000 / limits.limit).max(1);
    let window_ms = limits.window_s * 1_000;

    let mut now = T0 + rng.below(1_000);
    let mut allowed: Vec<(u64, u64)> = Vec::new(); // (time, cost)
    let mut denied = 0;
    for i in 0..arrivals {
        now += match rng.below(100) {
            0..=39 => 0,                         // simultaneous
            40..=79 => rng.below(2 * t_ms + 1),  // around the sustained rate
            80..=94 => rng.below(window_ms + 1), // slower
            _ => rng.below(3 * window_ms + 1),   // idle
        };
        let cost = match rng.below(100) {
            0..=79 => 1,
            80..=97 => 1 + rng.below(limits.burst.min(5)),
            _ => limits.burst + 1 + rng.below(3), // never passable
        };
        let got = bucket.at(now, cost);
        let want = reference.at(now, cost);
        assert_eq!(
            got,
            want,
            "{limits:?} seed {seed}: arrival {i} at T0+{} ms, cost {cost}",
            now - T0
        );
        if got.allowed {
            allowed.push((now, cost));
        } else {
            denied += 1;
        }
    }
    assert!(
        !allowed.is_empty() && denied > 0,
        "{limits:?}: the traffic should both pass and be refused ({} / {denied})",
        allowed.len()
    );

    // Over every span [a_i, a_j] between allowed arrivals, the units allowed stay within
    // burst + ⌊span / T⌋, with T exact: (units − burst)·window_s·10⁹ ≤ span_ns · limit.
    let unit = i128::from(limits.window_s) * 1_000_000_000;
    let rate = i128::from(limits.limit);
    let burst = i128::from(limits.burst);
    // Every pair, by brute force, over a prefix...
    for i in 0..allowed.len().min(400) {
        let mut units = 0;
        for j in i..allowed.len().min(400) {
            units += i128::from(allowed[j].1);
            let span_ns = i128::from(allowed[j].0 - allowed[i].0) * 1_000_000;
            assert!(
                (units - burst) * unit <= span_ns * rate,
                "{limits:?} seed {seed}: {units} units in {} ms",
                allowed[j].0 - allowed[i].0
            );
        }
    }
    // ...and every pair in linear time.
    assert_within_rate(limits, &allowed, &format!("seed {seed}"));
}

/// Over every span between two of the `allowed` arrivals (time in ms, cost; in time order),
/// the units allowed stay within `burst + ⌊span / T⌋`, in linear time: with P the running sum
/// of units, the condition is (P_j·U − a_j·L) + max_{i≤j}(a_i·L − P_{i−1}·U) ≤ burst·U.
pub(super) fn assert_within_rate(limits: Limits, allowed: &[(u64, u64)], context: &str) {
    let unit = i128::from(limits.window_s) * 1_000_000_000;
    let rate = i128::from(limits.limit);
    let burst = i128::from(limits.burst);
    let mut before = 0i128; // P_{i−1}
    let mut best = i128::MIN;
    for &(at, cost) in allowed {
        let at_ns = i128::from(at) * 1_000_000;
        best = best.max(at_ns * rate - before * unit);
        before += i128::from(cost);
        assert!(
            before * unit - at_ns * rate + best <= burst * unit,
            "{limits:?} {context}: too many units in a span ending at T0+{} ms",
            at - T0
        );
    }
}

#[test]
fn matches_exact_reference_and_never_exceeds_the_rate() {
    let configs = [
        lim(10, 1, 10),
        lim(3, 1, 3),   // T = 333.33… ms
        lim(3, 1, 1),   // no tolerance
        lim(7, 1, 5),   // T = 142.857… ms
        lim(20, 1, 40), // burst above limit
        lim(100, 60, 100),
        lim(100, 60, 7), // burst below limit
        lim(1, 5, 2),
        lim(13, 7, 13), // T = 538.46… ms
        lim(1_000, 1, 1_000),
    ];
    for (n, limits) in configs.into_iter().enumerate() {
        for seed in 0..4 {
            run_property(limits, 0x5eed_0000 + (n as u64) * 16 + seed, 5_000);
        }
    }
}

#[test]
fn huge_rates_match_the_reference_too() {
    // 10⁹ per second: T = 1 ns exactly; 6·10⁸: T = 1.666… ns, below the nanosecond the state
    // keeps. Arrivals are milliseconds apart, so the cost distribution is what makes the bucket
    // bind.
    for g in [1_000_000_000, 600_000_000] {
        let limits = lim(g, 1, g);
        let mut rng = Rng(7);
        let mut bucket = Bucket::new(limits);
        let mut reference = Reference::new(limits);
        let mut now = T0;
        let mut outcomes = [0u32; 2];
        for i in 0..5_000 {
            now += rng.below(3);
            let cost = match rng.below(4) {
                0 => rng.below(g) + 1,
                1 => rng.below(2_000_000) + 1,
                2 => g,
                _ => rng.below(10) + 1,
            };
            let got = bucket.at(now, cost);
            assert_eq!(
                got,
                reference.at(now, cost),
                "{g}: arrival {i}, cost {cost}"
            );
            outcomes[usize::from(got.allowed)] += 1;
        }
        assert!(outcomes[0] > 100 && outcomes[1] > 100, "{g}: {outcomes:?}");
    }
}
