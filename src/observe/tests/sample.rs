use crate::ids::IdGenerator;
use crate::observe::sample::*;

const TOP: u64 = (1 << 56) - 1;

#[test]
fn rate_one_keeps_everything_and_rate_zero_nothing() {
    for key in [0, 1, 12345, TOP / 2, TOP] {
        assert!(keep(key, 1.0), "{key}");
        assert!(keep(key, 1.5), "{key}");
        assert!(!keep(key, 0.0), "{key}");
        assert!(!keep(key, -1.0), "{key}");
        assert!(!keep(key, f64::NAN), "{key}");
    }
    assert_eq!(threshold(1.0), 0);
    assert_eq!(threshold(0.0), 1 << 56);
    assert_eq!(threshold(0.5), 1 << 55);
}

#[test]
fn the_key_is_the_low_56_bits_of_the_trace_id() {
    assert_eq!(key_of_trace_id(u128::MAX), TOP);
    assert_eq!(
        key_of_trace_id(0x4bf92f3577b34da6_a3ce929d0e0e4736),
        0xce929d0e0e4736
    );
    // The high 72 bits never matter.
    assert_eq!(key_of_trace_id(1 << 56), 0);
    assert_eq!(key_of_trace_id(u128::MAX << 56), 0);
    // Bits above 56 of a key are ignored by the decision too.
    assert_eq!(keep(u64::MAX, 0.5), keep(TOP, 0.5));
}

#[test]
fn one_key_decides_the_same_at_one_rate_and_a_lower_rate_keeps_a_subset() {
    let mut ids = IdGenerator::new([3; 32]);
    let rates = [0.0, 0.001, 0.1, 0.25, 0.5, 0.9, 0.999, 1.0];
    for _ in 0..20_000 {
        let key = key_of_trace_id(ids.trace_id());
        assert_eq!(keep(key, 0.3), keep(key, 0.3));
        for pair in rates.windows(2) {
            if keep(key, pair[0]) {
                assert!(
                    keep(key, pair[1]),
                    "kept at {} but not {}",
                    pair[0],
                    pair[1]
                );
            }
        }
    }
}

#[test]
fn the_share_kept_is_the_rate() {
    let mut ids = IdGenerator::new([11; 32]);
    let keys: Vec<u64> = (0..100_000)
        .map(|_| key_of_trace_id(ids.trace_id()))
        .collect();
    for rate in [0.01, 0.1, 0.25, 0.5, 0.75] {
        let kept = keys.iter().filter(|k| keep(**k, rate)).count() as f64 / keys.len() as f64;
        assert!((kept - rate).abs() < 0.01, "rate {rate}: kept {kept}");
    }
}

#[test]
fn the_boundary_key_is_kept_and_the_one_below_is_not() {
    let t = threshold(0.25);
    assert!(keep(t, 0.25));
    assert!(!keep(t - 1, 0.25));
}

#[test]
fn the_factor_is_the_inverse_of_the_rate() {
    assert_eq!(factor(1.0), 1.0);
    assert_eq!(factor(0.5), 2.0);
    assert_eq!(factor(0.01), 100.0);
    assert_eq!(
        factor(0.0),
        1.0,
        "nothing is kept at 0: no division by zero"
    );
}
