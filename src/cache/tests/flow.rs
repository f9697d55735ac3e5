//! The functions used together, the way the platform edge will: decide, key, store, age,
//! classify, answer, and report.

use super::spec;
use crate::cache::conditional::{not_modified, preconditions_apply, revalidation_headers};
use crate::cache::date::format_http_date;
use crate::cache::freshness::{
    classify, current_age_s, freshness_lifetime_s, initial_age_s, retention_s,
    stale_if_error_window_s, ttl_remaining_s, Freshness,
};
use crate::cache::key::{cache_key_url, CacheKeyInput};
use crate::cache::rules::{storable, RequestFacts, ResponseFacts};
use crate::cache::status::{cache_status, CacheOutcome};

#[test]
fn a_response_through_its_life() {
    let route = spec(60, 600);
    let t0: i64 = 1_700_000_000;
    let date = format_http_date(t0 - 2);
    let last_modified = format_http_date(t0 - 3600);
    let resp = ResponseFacts {
        status: 200,
        cache_control: Some("public, max-age=30"),
        date: Some(&date),
        vary: Some("Accept-Encoding, Accept-Language"),
        content_length: Some(512),
        has_etag: true,
        has_last_modified: true,
        ..ResponseFacts::default()
    };
    let req = RequestFacts {
        method_is_get_or_head: true,
        has_authorization: true,
        request_no_store: false,
    };
    assert_eq!(
        storable(&req, &resp, &route, &route.vary, route.per_consumer),
        Ok(())
    );

    let lifetime = freshness_lifetime_s(&resp, &route);
    assert_eq!(lifetime, 30);
    let window = stale_if_error_window_s(&resp, &route);
    assert_eq!(window, 600);
    assert_eq!(retention_s(&resp, &route), 660);
    let age0 = initial_age_s(Some("1"), Some(&date), t0 - 1, t0);
    assert_eq!(age0, 2); // apparent age from Date

    let key = cache_key_url(
        &CacheKeyInput {
            variant: None,
            scheme: "https",
            host: "api.example.com",
            canonical_path: "/v1/users/42",
            query: None,
            vary_values: vec![("accept-language", Some("en"))],
            consumer: None,
            forwarded: &[],
            generation: 1,
            route_id: "get-user",
        },
        None,
    );
    assert!(key.starts_with("https://cache.edge-gateway.invalid/v1/1/"));
    assert_eq!(
        cache_status(
            &CacheOutcome::Miss {
                stored: true,
                reason: None
            },
            Some(ttl_remaining_s(lifetime, age0))
        ),
        "edge-gateway; fwd=miss; ttl=28; stored"
    );

    // 20 s later: a hit, and the client's copy is current.
    let age = current_age_s(t0, age0, t0 + 20);
    assert_eq!(classify(lifetime, age, window), Freshness::Fresh);
    assert_eq!(
        cache_status(&CacheOutcome::Hit, Some(ttl_remaining_s(lifetime, age))),
        "edge-gateway; hit; ttl=8"
    );
    assert!(preconditions_apply(resp.status));
    assert!(not_modified(
        Some("W/\"v1\""),
        None,
        Some("\"v1\""),
        Some(&last_modified)
    ));

    // 100 s later: stale; revalidate with the validators; serve stale if the upstream fails.
    let age = current_age_s(t0, age0, t0 + 100);
    assert_eq!(
        classify(lifetime, age, window),
        Freshness::StaleServeOnError
    );
    assert_eq!(
        revalidation_headers(Some("\"v1\""), Some(&last_modified)),
        vec![
            ("if-none-match", "\"v1\"".to_string()),
            ("if-modified-since", last_modified.clone())
        ]
    );
    assert_eq!(
        cache_status(
            &CacheOutcome::Stale {
                served_because: "upstream-error"
            },
            Some(ttl_remaining_s(lifetime, age))
        ),
        "edge-gateway; fwd=stale; ttl=-72; detail=\"upstream-error\""
    );

    // Past the window: stale, never served without revalidation.
    let age = current_age_s(t0, age0, t0 + 700);
    assert_eq!(classify(lifetime, age, window), Freshness::Stale);
}
