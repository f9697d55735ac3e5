use super::*;
use crate::pipeline::fakes::Script;
use crate::pipeline::ports::ExchangeFailure;
use serde_json::json;

fn world() -> World {
    World::new(json!({
        "routes": [ { "id": "c", "path": "/c/{id}", "upstream": "api", "methods": ["GET", "HEAD", "POST", "OPTIONS"],
                      "cache": { "ttl_s": 60, "stale_if_error_s": 600 } } ]
    }))
}

fn cacheable(body: &str) -> Script {
    Script::Respond(FakeResponse::new(
        200,
        &[("cache-control", "max-age=30"), ("etag", "\"v1\"")],
        body,
    ))
}

fn get(w: &World, f: &Fakes, url: &str) -> (bool, Ended) {
    let mut cx = w.ctx("GET", url, f);
    w.run(&mut cx, f)
}

#[test]
fn a_miss_is_stored_then_hit_then_served_from_the_hot_tier_synchronously() {
    let w = world();
    let f = Fakes::at(T0);
    f.answer(cacheable("one"));
    let (_, miss) = get(&w, &f, "https://h.test/c/1");
    assert_eq!(
        miss.response().header("cache-status"),
        Some("edge-gateway; fwd=miss; ttl=30; stored")
    );
    assert_eq!(f.cache.borrow().len(), 1);

    f.now_ms.set(T0 + 2_000.0);
    let (sync, hit) = get(&w, &f, "https://h.test/c/1");
    assert!(!sync, "a Cache API lookup waits");
    assert_eq!(hit.response().body, "one");
    assert_eq!(hit.response().header("age"), Some("2"));
    assert!(hit.cache_status().contains("hit"));
    assert!(
        hit.response().header("x-edge-gateway-stored-at").is_none(),
        "bookkeeping never reaches clients"
    );

    let (sync, hot) = get(&w, &f, "https://h.test/c/1");
    assert!(sync, "the hot tier answers without a future");
    assert_eq!(hot.response().body, "one");
    assert_eq!(f.exchanges(), 1);
}

#[test]
fn a_request_the_hot_tier_may_not_answer_leaves_its_copy_alone() {
    let w = world();
    let f = Fakes::at(T0);
    f.answer(cacheable("one"));
    get(&w, &f, "https://h.test/c/1");
    f.now_ms.set(T0 + 1_000.0);
    get(&w, &f, "https://h.test/c/1");
    let until = |f: &Fakes| f.hot.borrow().values().next().map(|(_, until, _)| *until);
    let filled = until(&f).expect("the Cache API hit filled the hot tier");

    // A Range goes to the Cache API path, which answers it from the stored entry; the hot
    // tier's copy is still valid, so it is not copied in again.
    f.now_ms.set(T0 + 1_500.0);
    f.header("range", "bytes=0-1");
    let (sync, ranged) = get(&w, &f, "https://h.test/c/1");
    assert!(!sync, "answered by the Cache API path");
    assert!(ranged.cache_status().contains("hit"));
    assert_eq!(until(&f), Some(filled));
    f.request_headers.borrow_mut().remove("range");

    // Once the copy has expired, a Cache API hit fills it again.
    f.now_ms.set(filled + 1.0);
    get(&w, &f, "https://h.test/c/1");
    assert!(until(&f).is_some_and(|u| u > filled));
    assert_eq!(f.exchanges(), 1);
}

#[test]
fn client_conditions_are_answered_from_the_entry_and_never_forwarded() {
    let w = world();
    let f = Fakes::at(T0);
    f.answer(cacheable("one"));
    f.header("if-none-match", "\"v1\"");
    let (_, first) = get(&w, &f, "https://h.test/c/1");
    assert_eq!(
        first.status(),
        304,
        "a fresh upstream response that matches is a 304"
    );
    let removed = f.plans.borrow()[0].request.remove.clone();
    assert!(removed.iter().any(|h| h == "if-none-match"), "{removed:?}");
    let (_, second) = get(&w, &f, "https://h.test/c/1");
    assert_eq!(second.status(), 304);
    assert_eq!(f.exchanges(), 1);
}

#[test]
fn stale_entries_are_revalidated_and_served_when_the_upstream_fails() {
    let w = world();
    let f = Fakes::at(T0);
    f.answer(cacheable("one"));
    get(&w, &f, "https://h.test/c/1");

    f.now_ms.set(T0 + 40_000.0);
    f.answer(Script::Respond(FakeResponse::new(
        304,
        &[("cache-control", "max-age=30")],
        "",
    )));
    let (_, revalidated) = get(&w, &f, "https://h.test/c/1");
    assert_eq!(revalidated.response().body, "one");
    assert!(revalidated.cache_status().contains("fwd-status=304"));
    let sent = f.plans.borrow()[1].request.set.clone();
    assert!(
        sent.contains(&("if-none-match".into(), "\"v1\"".into())),
        "{sent:?}"
    );

    f.now_ms.set(T0 + 80_000.0);
    f.answer(Script::Fail(ExchangeFailure::Timeout));
    let (_, stale) = get(&w, &f, "https://h.test/c/1");
    assert_eq!(stale.status(), 200);
    assert!(stale.cache_status().contains("fwd=stale"));

    f.now_ms.set(T0 + 90_000.0);
    f.answer(Script::Respond(FakeResponse::new(503, &[], "down")));
    let (_, stale) = get(&w, &f, "https://h.test/c/1");
    assert_eq!(
        stale.response().body,
        "one",
        "a 5xx is an upstream failure too"
    );
}

#[test]
fn without_a_stale_entry_upstream_failures_reach_the_client() {
    let w = world();
    let f = Fakes::at(T0);
    f.answer(Script::Fail(ExchangeFailure::Timeout));
    let (_, ended) = get(&w, &f, "https://h.test/c/1");
    assert_eq!(ended.code(), Some("upstream_timeout"));
    f.cache_fails.set(true);
    f.answer(cacheable("x"));
    let (_, ended) = get(&w, &f, "https://h.test/c/2");
    assert_eq!(
        ended.status(),
        200,
        "a failing cache is a miss, never an error"
    );
    assert!(f.cache.borrow().is_empty());
}

#[test]
fn unsafe_requests_invalidate_and_other_methods_bypass_synchronously() {
    let w = world();
    let f = Fakes::at(T0);
    f.answer(cacheable("one"));
    get(&w, &f, "https://h.test/c/1");
    get(&w, &f, "https://h.test/c/1");
    assert_eq!(f.hot.borrow().len(), 1);

    let mut cx = w.ctx("POST", "https://h.test/c/1", &f);
    let (_, ended) = w.run(&mut cx, &f);
    assert!(ended.cache_status().contains("invalidated"));
    assert!(f.cache.borrow().is_empty() && f.hot.borrow().is_empty());

    let mut cx = w.ctx("OPTIONS", "https://h.test/c/1", &f);
    let (sync, ended) = w.run(&mut cx, &f);
    assert!(sync);
    assert_eq!(
        ended.response().header("cache-status"),
        Some("edge-gateway; fwd=bypass; detail=\"method\"")
    );
}

#[test]
fn personal_responses_are_not_stored() {
    let w = world();
    let f = Fakes::at(T0);
    f.header("authorization", "Bearer whatever");
    f.answer(cacheable("mine"));
    let (_, ended) = get(&w, &f, "https://h.test/c/1");
    assert!(ended.cache_status().contains("detail="));
    assert!(f.cache.borrow().is_empty());
}

/// Every header the gateway counts as a credential makes the response personal: a Cloudflare
/// Access service token is forwarded to the upstream, which may answer for its holder alone.
#[test]
fn responses_to_any_credential_header_are_not_shared() {
    for name in ["cookie", "cf-access-client-secret", "Authorization"] {
        let w = world();
        let f = Fakes::at(T0);
        f.header(name, "secret-of-one-client");
        f.answer(cacheable("mine"));
        let (_, ended) = get(&w, &f, "https://h.test/c/1");
        assert_eq!(
            ended.response().header("cache-status"),
            Some("edge-gateway; fwd=miss; detail=\"authorization\""),
            "{name}"
        );
        assert!(f.cache.borrow().is_empty(), "{name}");
    }
}

#[test]
fn default_ttl_s_gives_a_response_without_freshness_its_lifetime() {
    let w = World::new(json!({
        "routes": [ { "id": "c", "path": "/c/{id}", "upstream": "api",
                      "cache": { "ttl_s": 3600, "default_ttl_s": 3600 } } ]
    }));
    let f = Fakes::at(T0);
    f.answer(Script::Respond(FakeResponse::new(
        200,
        &[
            ("content-type", "application/json"),
            ("content-length", "2"),
        ],
        "{}",
    )));
    let (_, miss) = get(&w, &f, "https://h.test/c/1");
    assert_eq!(
        miss.response().header("cache-status"),
        Some("edge-gateway; fwd=miss; ttl=3600; stored")
    );
    let (_, hit) = get(&w, &f, "https://h.test/c/1");
    assert!(hit.cache_status().contains("hit"));
    assert_eq!(f.exchanges(), 1);
}

/// A 200 that says only `must-revalidate`, with its `ETag`.
fn must_revalidate(etag: &str, body: &str) -> Script {
    Script::Respond(FakeResponse::new(
        200,
        &[("cache-control", "must-revalidate"), ("etag", etag)],
        body,
    ))
}

/// `must-revalidate` lets a shared cache keep the answer to a credentialed request (RFC 9111
/// §3.5) on the condition that it is revalidated once stale; without an explicit lifetime it
/// is stale at once. The route's heuristic freshness (`default_ttl_s`) must not make it fresh:
/// it would be served to every other client without asking the upstream.
#[test]
fn a_personal_answer_kept_for_must_revalidate_gets_no_heuristic_freshness() {
    let w = World::new(json!({
        "routes": [ { "id": "c", "path": "/c/{id}", "upstream": "api",
                      "cache": { "ttl_s": 3600, "default_ttl_s": 3600 } } ]
    }));
    let f = Fakes::at(T0);
    f.header("authorization", "Bearer alice");
    f.answer(must_revalidate("\"alice\"", "alice's data"));
    let (_, miss) = get(&w, &f, "https://h.test/c/me");
    assert_eq!(
        miss.response().header("cache-status"),
        Some("edge-gateway; fwd=miss; ttl=0; stored")
    );
    // Bob asks: the entry is revalidated with his credentials, never served as it is.
    f.header("authorization", "Bearer bob");
    f.answer(must_revalidate("\"bob\"", "bob's data"));
    let (_, bob) = get(&w, &f, "https://h.test/c/me");
    assert_eq!(bob.response().body, "bob's data");
    assert_eq!(f.exchanges(), 2);
    // The same answer to a request without credentials is the upstream's to share, and the
    // heuristic applies to it as to any other.
    let f = Fakes::at(T0);
    f.answer(must_revalidate("\"v\"", "public"));
    let (_, anonymous) = get(&w, &f, "https://h.test/c/1");
    assert_eq!(
        anonymous.response().header("cache-status"),
        Some("edge-gateway; fwd=miss; ttl=3600; stored")
    );
}

#[test]
fn a_bypass_of_the_cache_never_forwards_the_targeted_cache_fields() {
    let w = world();
    let f = Fakes::at(T0);
    let mut cx = w.ctx("OPTIONS", "https://h.test/c/1", &f);
    w.run(&mut cx, &f);
    let plans = f.plans.borrow();
    let remove = &plans.last().expect("an exchange").response_remove;
    for name in crate::cache::targeted::TARGET_LIST {
        assert!(remove.iter().any(|r| r == name), "{name} in {remove:?}");
    }
}

/// A configuration that lowers a route's `ttl_s` or its stale windows binds the entries stored
/// before it, in the Cache API and in the hot tier alike: `ttl_s` is the longest the gateway
/// serves a response as fresh, whatever an older configuration allowed.
#[test]
fn entries_stored_under_a_longer_ttl_obey_the_configuration_in_force() {
    let long = World::new(json!({
        "routes": [ { "id": "c", "path": "/c/{id}", "upstream": "api",
                      "cache": { "ttl_s": 600, "stale_if_error_s": 600 } } ]
    }));
    let short = World::new(json!({
        "routes": [ { "id": "c", "path": "/c/{id}", "upstream": "api",
                      "cache": { "ttl_s": 60 } } ]
    }));
    let f = Fakes::at(T0);
    f.answer(Script::Respond(FakeResponse::new(
        200,
        &[("cache-control", "max-age=600"), ("etag", "\"v1\"")],
        "old",
    )));
    get(&long, &f, "https://h.test/c/1");
    f.now_ms.set(T0 + 1_000.0);
    let (_, hit) = get(&long, &f, "https://h.test/c/1");
    assert_eq!(hit.response().body, "old");
    assert!(f.hot.borrow().len() == 1, "the hit fills the hot tier");

    // Within the new ttl_s the entry is still fresh; the hot tier answers.
    f.now_ms.set(T0 + 1_500.0);
    let (sync, hot) = get(&short, &f, "https://h.test/c/1");
    assert!(sync);
    assert_eq!(
        hot.response().header("cache-status"),
        Some("edge-gateway; hit; ttl=59")
    );

    // Past it the entry is revalidated, and a failing upstream gets no stale copy: the route
    // has no stale_if_error_s any more.
    f.now_ms.set(T0 + 120_000.0);
    f.answer(Script::Fail(ExchangeFailure::Timeout));
    let (_, after) = get(&short, &f, "https://h.test/c/1");
    assert_eq!(
        after.status(),
        504,
        "{:?}",
        after.response().header("cache-status")
    );
    assert_eq!(f.exchanges(), 2);
}

/// A `traceparent` on the answer names the trace of the request that filled the entry (the
/// gateway's own, with `response_traceparent`, or the upstream's): never stored, so a hit can
/// never hand it to another client, whatever the configuration in force says.
#[test]
fn the_fillers_traceparent_is_not_stored() {
    let w = world();
    let f = Fakes::at(T0);
    f.answer(Script::Respond(FakeResponse::new(
        200,
        &[
            ("cache-control", "max-age=30"),
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
        ],
        "one",
    )));
    get(&w, &f, "https://h.test/c/1");
    let cache = f.cache.borrow();
    let stored = cache.values().next().expect("stored");
    assert_eq!(stored.header("traceparent"), None);
    drop(cache);
    f.now_ms.set(T0 + 1_000.0);
    let (_, hit) = get(&w, &f, "https://h.test/c/1");
    assert_eq!(hit.response().header("traceparent"), None);
}

/// An upstream answer with the headers of `a` and then `b`.
fn respond(status: u16, a: &[(&str, &str)], b: &[(&str, &str)], body: &str) -> Script {
    Script::Respond(FakeResponse::new(status, &[a, b].concat(), body))
}

/// A 304 refresh writes the entry back; serving ranges needs its length, so the copy written
/// back must keep it.
#[test]
fn an_entry_refreshed_by_a_304_still_answers_ranges() {
    let w = world();
    let f = Fakes::at(T0);
    let v1 = [("etag", "\"v1\""), ("content-length", "10")];
    f.answer(respond(
        200,
        &[("cache-control", "max-age=1")],
        &v1,
        "0123456789",
    ));
    get(&w, &f, "https://h.test/c/1");
    f.now_ms.set(T0 + 2_000.0);
    f.answer(respond(
        304,
        &[("cache-control", "max-age=60")],
        &v1[..1],
        "",
    ));
    f.header("range", "bytes=2-4");
    let (_, refreshed) = get(&w, &f, "https://h.test/c/1");
    assert_eq!(
        refreshed.response().header("cache-status"),
        Some("edge-gateway; fwd=stale; fwd-status=304; ttl=60; stored")
    );
    assert_eq!(
        (refreshed.status(), refreshed.response().body.as_str()),
        (206, "234")
    );
    f.now_ms.set(T0 + 3_000.0);
    let (_, hit) = get(&w, &f, "https://h.test/c/1");
    assert!(hit.cache_status().contains("hit"));
    assert_eq!(hit.status(), 206, "the entry written back keeps its length");
    assert_eq!(hit.response().header("content-range"), Some("bytes 2-4/10"));
    assert_eq!(f.exchanges(), 2);
}

/// A seal derived from a short token could be guessed offline from one key: such a token
/// seals nothing (and opens no admin API), so the keys are the plain ones, as without a token.
#[test]
fn an_admin_token_under_32_bytes_seals_no_cache_key() {
    let doc = json!({
        "settings": { "admin": { "token_secret": "ADMIN_TOKEN" } },
        "routes": [ { "id": "c", "path": "/c/{id}", "upstream": "api", "cache": { "ttl_s": 60 } } ]
    });
    for (token, sealed) in [
        ("s3cret-admin-token", false),
        (&*"x".repeat(31), false),
        (&*"x".repeat(32), true),
    ] {
        let w = World::new(doc.clone());
        let f = Fakes::at(T0);
        f.secrets
            .borrow_mut()
            .insert("ADMIN_TOKEN".into(), token.into());
        f.answer(cacheable("one"));
        get(&w, &f, "https://h.test/c/1");
        let stored: Vec<String> = f.cache.borrow().keys().cloned().collect();
        let plain = w.entry_key("https://h.test/c/1", &f, None);
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0] != plain, sealed, "{} bytes", token.len());
    }
}

#[test]
fn with_an_admin_token_entries_are_stored_under_keys_only_the_gateway_can_name() {
    let doc = |admin: bool| {
        let mut doc = json!({
            "routes": [ { "id": "c", "path": "/c/{id}", "upstream": "api", "cache": { "ttl_s": 60 } } ]
        });
        if admin {
            doc["settings"] = json!({ "admin": { "token_secret": "ADMIN_TOKEN" } });
        }
        doc
    };
    let plain_key = |w: &World, f: &Fakes| w.entry_key("https://h.test/c/1", f, None);
    // Without the secret: the public derivation's key.
    let w = World::new(doc(false));
    let f = Fakes::at(T0);
    f.answer(cacheable("one"));
    get(&w, &f, "https://h.test/c/1");
    let stored: Vec<String> = f.cache.borrow().keys().cloned().collect();
    assert_eq!(stored, vec![plain_key(&w, &f)]);
    let unsealed_entries = f.cache.borrow().clone();

    // With it: not that key, so code on the zone computing keys cannot plant or read the
    // entry; and what another isolate with the same token derives, so the location shares it.
    let w = World::new(doc(true));
    let f = Fakes::at(T0);
    f.secrets.borrow_mut().insert(
        "ADMIN_TOKEN".into(),
        "s3cret-admin-token-thirty-two-bytes".into(),
    );
    f.answer(cacheable("one"));
    get(&w, &f, "https://h.test/c/1");
    let stored: Vec<String> = f.cache.borrow().keys().cloned().collect();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], plain_key(&w, &f));
    let other_isolate = World::new(doc(true));
    let f2 = Fakes::at(T0 + 1_000.0);
    f2.secrets.borrow_mut().insert(
        "ADMIN_TOKEN".into(),
        "s3cret-admin-token-thirty-two-bytes".into(),
    );
    f2.cache.borrow_mut().extend(f.cache.borrow().clone());
    let (_, hit) = get(&other_isolate, &f2, "https://h.test/c/1");
    assert!(hit.cache_status().contains("hit"), "{}", hit.cache_status());
    assert_eq!(f2.exchanges(), 0);

    // A well-formed entry under the plain key (what any code running this derivation, a
    // gateway without the token, stores there) is never served: the gateway does not look there.
    let w = World::new(doc(true));
    let f = Fakes::at(T0 + 1_000.0);
    f.secrets.borrow_mut().insert(
        "ADMIN_TOKEN".into(),
        "s3cret-admin-token-thirty-two-bytes".into(),
    );
    f.cache.borrow_mut().extend(unsealed_entries);
    f.answer(cacheable("origin"));
    let (_, r) = get(&w, &f, "https://h.test/c/1");
    assert_eq!(r.response().body, "origin");
}
