//! Target choice and circuit breaking for an upstream, per isolate, with time passed in.

use crate::config::{CircuitBreakerSpec, Target};
use crate::ids::IdGenerator;

/// One target's breaker: closed, or open until a moment after which one probe may pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Breaker {
    consecutive_failures: u32,
    /// 0 when closed.
    open_until_ms: u64,
}

impl Breaker {
    /// Whether a request may go to this target now. Past the cooldown one request is let
    /// through as a probe and the breaker re-arms, so a probe that never reports back cannot
    /// leave it half-open for ever.
    pub fn admit(&mut self, spec: &CircuitBreakerSpec, now_ms: u64) -> bool {
        if self.open_until_ms == 0 {
            return true;
        }
        if now_ms >= self.open_until_ms {
            self.open_until_ms = now_ms.saturating_add(spec.cooldown_s * 1000);
            return true;
        }
        false
    }

    /// Whether the breaker is closed: traffic flows without a probe being spent.
    pub fn is_closed(&self) -> bool {
        self.open_until_ms == 0
    }

    /// Whether `admit` would currently let a request through (without consuming a probe).
    pub fn is_open(&self, now_ms: u64) -> bool {
        self.open_until_ms != 0 && now_ms < self.open_until_ms
    }

    pub fn record(&mut self, spec: &CircuitBreakerSpec, success: bool, now_ms: u64) {
        if success {
            *self = Breaker::default();
            return;
        }
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if self.consecutive_failures >= spec.failures {
            self.open_until_ms = now_ms.saturating_add(spec.cooldown_s * 1000).max(1);
        }
    }
}

/// Picks a target by weight among those `eligible` says may take traffic.
pub fn choose(
    targets: &[Target],
    eligible: impl Fn(usize) -> bool,
    rng: &mut IdGenerator,
) -> Option<usize> {
    let candidates = || targets.iter().enumerate().filter(|(i, _)| eligible(*i));
    let total: u64 = candidates().map(|(_, t)| u64::from(t.weight)).sum();
    if total == 0 {
        return None;
    }
    let mut ticket = rng.below(total);
    for (i, t) in candidates() {
        let w = u64::from(t.weight);
        if ticket < w {
            return Some(i);
        }
        ticket -= w;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Endpoint;

    fn targets(weights: &[u32]) -> Vec<Target> {
        weights
            .iter()
            .map(|w| Target {
                endpoint: Endpoint::Service {
                    binding: "X".into(),
                },
                weight: *w,
            })
            .collect()
    }

    #[test]
    fn weights_shape_the_distribution() {
        let t = targets(&[3, 1]);
        let mut rng = IdGenerator::new([3; 32]);
        let mut counts = [0u32; 2];
        for _ in 0..8000 {
            counts[choose(&t, |_| true, &mut rng).unwrap()] += 1;
        }
        let ratio = f64::from(counts[0]) / f64::from(counts[1]);
        assert!((2.6..3.4).contains(&ratio), "{counts:?}");
    }

    #[test]
    fn ineligible_targets_are_skipped() {
        let t = targets(&[1, 1, 1]);
        let mut rng = IdGenerator::new([5; 32]);
        for _ in 0..100 {
            assert_eq!(choose(&t, |i| i == 2, &mut rng), Some(2));
        }
        assert_eq!(choose(&t, |_| false, &mut rng), None);
    }

    #[test]
    fn breaker_opens_after_consecutive_failures_and_probes_after_cooldown() {
        let spec = CircuitBreakerSpec {
            failures: 3,
            cooldown_s: 10,
        };
        let mut b = Breaker::default();
        b.record(&spec, false, 0);
        b.record(&spec, false, 0);
        b.record(&spec, true, 0);
        b.record(&spec, false, 0);
        b.record(&spec, false, 0);
        assert!(b.admit(&spec, 1));
        b.record(&spec, false, 1_000);
        assert!(b.is_open(1_001));
        assert!(!b.admit(&spec, 10_999));
        // One probe after the cooldown; the next request waits again.
        assert!(b.admit(&spec, 11_000));
        assert!(!b.admit(&spec, 11_001));
        b.record(&spec, true, 11_050);
        assert!(b.admit(&spec, 11_060));
        assert!(!b.is_open(11_060));
    }
}
