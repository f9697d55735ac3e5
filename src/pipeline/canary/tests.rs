//! The sticky hash: uniform buckets, the same key the same variant, and raising the percentage
//! moving keys only from primary to canary.

use super::*;

fn keys(n: usize) -> impl Iterator<Item = String> {
    (0..n).map(|i| format!("consumer\0jwt/idp/user-{i}"))
}

#[test]
fn buckets_are_uniform_over_ten_thousand() {
    let n = 200_000;
    let mut deciles = [0usize; 10];
    for key in keys(n) {
        let b = bucket("users-v2", &key);
        assert!(b < BUCKETS);
        deciles[(b / 1000) as usize] += 1;
    }
    // Each decile expects 20,000; a binomial's standard deviation is about 134.
    for (i, count) in deciles.iter().enumerate() {
        assert!((19_300..=20_700).contains(count), "decile {i}: {count}");
    }
}

#[test]
fn shares_follow_the_percentage() {
    let n = 100_000;
    for (basis_points, low, high) in [
        (0, 0, 0),
        (500, 4_700, 5_300),
        (2_500, 24_300, 25_700),
        (10_000, n, n),
    ] {
        let canary = keys(n)
            .filter(|k| variant_of(bucket("users-v2", k), basis_points) == Variant::Canary)
            .count();
        assert!((low..=high).contains(&canary), "{basis_points}: {canary}");
    }
    // 0.01 % steps are honoured: bucket 0 is canary at 0.01 %, bucket 1 is not.
    assert_eq!(variant_of(0, 1), Variant::Canary);
    assert_eq!(variant_of(1, 1), Variant::Primary);
    assert_eq!(variant_of(9_999, 10_000), Variant::Canary);
}

#[test]
fn the_same_key_always_gets_the_same_bucket() {
    for key in keys(100) {
        assert_eq!(bucket("users-v2", &key), bucket("users-v2", &key));
    }
    // Another canary upstream draws independently.
    let moved = keys(1000)
        .filter(|k| bucket("users-v2", k) != bucket("users-v3", k))
        .count();
    assert!(moved > 990, "{moved}");
}

#[test]
fn raising_the_percentage_only_moves_keys_from_primary_to_canary() {
    let steps = [0, 1, 100, 500, 1_000, 2_500, 3_333, 5_000, 9_999, 10_000];
    for key in keys(5_000) {
        let b = bucket("users-v2", &key);
        let mut was_canary = false;
        for bp in steps {
            let canary = variant_of(b, bp) == Variant::Canary;
            assert!(
                !was_canary || canary,
                "{key:?} went back to primary at {bp}"
            );
            was_canary = canary;
        }
        assert!(was_canary, "everyone is on the canary at 100 %");
    }
}

#[test]
fn override_values() {
    assert_eq!(override_of("always"), Ok(Variant::Canary));
    assert_eq!(override_of(" Always "), Ok(Variant::Canary));
    assert_eq!(override_of("NEVER"), Ok(Variant::Primary));
    for bad in ["", "yes", "1", "always,never"] {
        assert_eq!(
            override_of(bad).map_err(|e| e.code()),
            Err("bad_request"),
            "{bad:?}"
        );
    }
}

#[test]
fn the_canary_variant_has_its_own_cache_key_and_the_primary_keeps_the_old_one() {
    use crate::cache::{cache_key_url, CacheKeyInput};
    let input = |variant| CacheKeyInput {
        scheme: "https",
        host: "api.example.com",
        canonical_path: "/v1/users/7",
        query: None,
        vary_values: Vec::new(),
        consumer: None,
        forwarded: &[],
        variant,
        generation: 1,
        route_id: "get-user",
    };
    let primary = cache_key_url(&input(None), None);
    let canary = cache_key_url(&input(Some("canary")), None);
    assert_ne!(primary, canary);
    // Framed: a variant can never be mistaken for a consumer or another field's bytes.
    let mut consumer = input(None);
    consumer.consumer = Some("canary");
    assert_ne!(cache_key_url(&consumer, None), canary);
}
