//! The cache stage's conformance rules over the fakes: stale-while-revalidate with its
//! background refresh, header updates on 304, conditionals after revalidation, ranges,
//! request directives, targeted fields and statuses.

use super::*;
use crate::pipeline::fakes::Script;
use serde_json::json;

fn world(cache: serde_json::Value) -> World {
    World::new(json!({
        "routes": [ { "id": "c", "path": "/c/{id}", "upstream": "api", "cache": cache } ]
    }))
}

fn respond(status: u16, headers: &[(&str, &str)], body: &str) -> Script {
    Script::Respond(FakeResponse::new(status, headers, body))
}

fn get(w: &World, f: &Fakes, url: &str) -> Ended {
    let mut cx = w.ctx("GET", url, f);
    w.run(&mut cx, f).1
}

#[test]
fn stale_while_revalidate_serves_at_once_and_refreshes_in_the_background() {
    let w = world(json!({ "ttl_s": 600 }));
    let f = Fakes::at(T0);
    let cc = "max-age=10, stale-while-revalidate=60";
    f.answer(respond(
        200,
        &[("cache-control", cc), ("etag", "\"v1\"")],
        "one",
    ));
    get(&w, &f, "https://h.test/c/1");

    f.now_ms.set(T0 + 20_000.0);
    f.answer(respond(
        200,
        &[("cache-control", cc), ("etag", "\"v2\"")],
        "two",
    ));
    let stale = get(&w, &f, "https://h.test/c/1");
    assert_eq!(stale.response().body, "one", "served at once, stale");
    assert_eq!(
        stale.cache_status(),
        "edge-gateway; hit; ttl=-10; detail=\"stale-while-revalidate\""
    );
    assert_eq!(stale.response().header("age"), Some("20"));
    // The refresh ran after the answer: conditional, and its response replaced the entry.
    assert_eq!(f.exchanges(), 2);
    let sent = f.plans.borrow()[1].request.set.clone();
    assert!(
        sent.contains(&("if-none-match".into(), "\"v1\"".into())),
        "{sent:?}"
    );
    assert_eq!(
        w.state.refreshing.borrow().running(),
        0,
        "the key is released"
    );
    let fresh = get(&w, &f, "https://h.test/c/1");
    assert_eq!(fresh.response().body, "two");
    assert!(
        fresh.cache_status().contains("hit; ttl=10"),
        "{}",
        fresh.cache_status()
    );

    // Past the window: no stale serving, the request waits for the upstream.
    f.now_ms.set(T0 + 20_000.0 + 80_000.0);
    f.answer(respond(200, &[("cache-control", cc)], "three"));
    let late = get(&w, &f, "https://h.test/c/1");
    assert_eq!(late.response().body, "three");
}

#[test]
fn one_refresh_per_key_at_a_time() {
    let w = world(json!({ "ttl_s": 600, "stale_while_revalidate_s": 60 }));
    let f = Fakes::at(T0);
    f.answer(respond(200, &[("cache-control", "max-age=1")], "one"));
    get(&w, &f, "https://h.test/c/1");
    f.now_ms.set(T0 + 5_000.0);
    // A refresh of this key is already running in the isolate.
    let key = w.entry_key(
        "https://h.test/c/1",
        &f,
        w.state.cache_seal(&w.gateway, &f).as_deref(),
    );
    assert!(w.state.refreshing.borrow_mut().begin(&key, T0 + 4_000.0));
    let stale = get(&w, &f, "https://h.test/c/1");
    assert_eq!(stale.response().body, "one");
    assert!(stale.cache_status().contains("stale-while-revalidate"));
    assert_eq!(f.exchanges(), 1, "no second refresh was started");
    // A refresh that never ended is taken for lost after a minute.
    assert!(w.state.refreshing.borrow_mut().begin(&key, T0 + 70_000.0));
}

#[test]
fn a_304_updates_the_stored_headers_and_a_matching_client_gets_304() {
    let w = world(json!({ "ttl_s": 600 }));
    let f = Fakes::at(T0);
    f.answer(respond(
        200,
        &[
            ("cache-control", "max-age=10"),
            ("etag", "\"v1\""),
            ("x-revision", "old"),
            ("content-length", "3"),
            ("cdn-cache-control", "max-age=10"),
        ],
        "one",
    ));
    get(&w, &f, "https://h.test/c/1");
    f.now_ms.set(T0 + 20_000.0);
    f.answer(respond(
        304,
        &[
            ("cache-control", "max-age=100"),
            ("cdn-cache-control", "max-age=50"),
            ("etag", "\"v1\""),
            ("x-revision", "new"),
            ("content-length", "0"),
        ],
        "",
    ));
    f.header("if-none-match", "\"v1\"");
    let r = get(&w, &f, "https://h.test/c/1");
    assert_eq!(
        r.status(),
        304,
        "the client's condition holds after revalidation"
    );
    assert!(r
        .cache_status()
        .starts_with("edge-gateway; fwd=stale; fwd-status=304; ttl=50; stored"));
    f.request_headers.borrow_mut().clear();
    let hit = get(&w, &f, "https://h.test/c/1");
    let h = hit.response();
    assert_eq!(h.body, "one");
    assert_eq!(h.header("x-revision"), Some("new"));
    assert_eq!(h.header("cache-control"), Some("max-age=100"));
    assert_eq!(
        h.header("content-length"),
        Some("3"),
        "framing is the stored body's"
    );
    assert_eq!(h.header("cdn-cache-control"), None, "never forwarded");
    // The targeted field of the 304 decided the new lifetime: 50 s, not Cache-Control's 100.
    f.now_ms.set(T0 + 20_000.0 + 60_000.0);
    f.answer(respond(304, &[("etag", "\"v1\"")], ""));
    let again = get(&w, &f, "https://h.test/c/1");
    assert!(
        again.cache_status().contains("fwd-status=304"),
        "{}",
        again.cache_status()
    );
    assert_eq!(f.exchanges(), 3);
}

#[test]
fn ranges_from_a_stored_response() {
    let w = world(json!({ "ttl_s": 600 }));
    let f = Fakes::at(T0);
    f.answer(respond(
        200,
        &[("cache-control", "max-age=60"), ("content-length", "10")],
        "0123456789",
    ));
    f.header("range", "bytes=2-4");
    let miss = get(&w, &f, "https://h.test/c/1");
    assert_eq!(miss.status(), 200, "a miss fetches the whole response");
    let removed = f.plans.borrow()[0].request.remove.clone();
    assert!(removed.iter().any(|h| h == "range"));
    let part = get(&w, &f, "https://h.test/c/1");
    assert_eq!(part.status(), 206);
    assert_eq!(part.response().body, "234");
    assert_eq!(
        part.response().header("content-range"),
        Some("bytes 2-4/10")
    );
    f.header("range", "bytes=10-");
    let err = get(&w, &f, "https://h.test/c/1");
    assert_eq!(err.status(), 416);
    assert_eq!(err.code(), Some("range_not_satisfiable"));
    let Ended::Error(e) = &err else {
        panic!("not an error: {err:?}")
    };
    assert!(
        e.headers()
            .iter()
            .any(|(k, v)| *k == "cache-status" && v.starts_with("edge-gateway; hit")),
        "{:?}",
        e.headers()
    );
    f.header("range", "bytes=0-1, 3-4");
    assert_eq!(get(&w, &f, "https://h.test/c/1").status(), 200);
    assert_eq!(f.exchanges(), 1);
}

#[test]
fn request_directives_only_where_the_route_honours_them() {
    for honour in [false, true] {
        let w = world(json!({ "ttl_s": 600, "honor_request_directives": honour }));
        let f = Fakes::at(T0);
        f.answer(respond(200, &[("cache-control", "max-age=10")], "one"));
        get(&w, &f, "https://h.test/c/1");
        f.header("cache-control", "no-cache");
        get(&w, &f, "https://h.test/c/1");
        assert_eq!(
            f.exchanges(),
            if honour { 2 } else { 1 },
            "no-cache {honour}"
        );
        f.header("cache-control", "only-if-cached");
        let r = get(&w, &f, "https://h.test/c/2");
        if honour {
            assert_eq!(r.code(), Some("not_cached"));
            assert_eq!(r.status(), 504);
        } else {
            assert_eq!(r.status(), 200);
        }
        // max-stale accepts a stale entry the upstream did not forbid.
        f.now_ms.set(T0 + 30_000.0);
        f.header("cache-control", "max-stale=60");
        let before = f.exchanges();
        let r = get(&w, &f, "https://h.test/c/1");
        assert_eq!(r.status(), 200);
        assert_eq!(
            f.exchanges(),
            if honour { before } else { before + 1 },
            "max-stale {honour}: {}",
            r.cache_status()
        );
    }
}

#[test]
fn statuses_are_stored_as_200_and_served_with_their_own() {
    let w = world(json!({ "ttl_s": 600 }));
    let f = Fakes::at(T0);
    f.answer(respond(204, &[("cache-control", "max-age=60")], ""));
    get(&w, &f, "https://h.test/c/1");
    let stored = f.cache.borrow().values().next().cloned().unwrap();
    assert_eq!(stored.status, 200);
    assert_eq!(stored.header(crate::cache::entry::STATUS), Some("204"));
    let hit = get(&w, &f, "https://h.test/c/1");
    assert_eq!(hit.status(), 204);
    assert!(hit.cache_status().contains("hit"));
    f.answer(respond(500, &[], "boom"));
    let r = get(&w, &f, "https://h.test/c/2");
    assert!(
        r.cache_status().contains("detail=\"status\""),
        "{}",
        r.cache_status()
    );
}

#[test]
fn a_recorded_status_the_gateway_never_relays_is_not_served() {
    let w = world(json!({ "ttl_s": 600 }));
    for (i, recorded) in ["99", "700", "1xx", ""].iter().enumerate() {
        let f = Fakes::at(T0);
        let url = format!("https://h.test/c/{i}");
        f.answer(respond(203, &[("cache-control", "max-age=60")], "x"));
        get(&w, &f, &url);
        for entry in f.cache.borrow_mut().values_mut() {
            entry.set(crate::cache::entry::STATUS, recorded);
        }
        // From the stored entry, then from the hot tier it filled.
        for source in ["stored", "hot"] {
            let hit = get(&w, &f, &url);
            assert!(hit.cache_status().contains("hit"), "{recorded:?} {source}");
            assert_eq!(hit.status(), 200, "{recorded:?} {source}");
        }
    }
}

#[test]
fn targeted_fields_decide_and_never_reach_the_client() {
    let w = world(json!({ "ttl_s": 600 }));
    let f = Fakes::at(T0);
    f.answer(respond(
        200,
        &[
            ("cache-control", "no-store"),
            ("cloudflare-cdn-cache-control", "max-age=30"),
            ("cdn-cache-control", "no-store"),
        ],
        "one",
    ));
    let miss = get(&w, &f, "https://h.test/c/1");
    assert!(
        miss.cache_status().contains("ttl=30; stored"),
        "{}",
        miss.cache_status()
    );
    assert_eq!(miss.response().header("cdn-cache-control"), None);
    assert_eq!(miss.response().header("cloudflare-cdn-cache-control"), None);
    assert_eq!(miss.response().header("cache-control"), Some("no-store"));
    let hit = get(&w, &f, "https://h.test/c/1");
    assert_eq!(hit.response().header("cache-control"), Some("no-store"));
    assert_eq!(hit.response().header("cdn-cache-control"), None);
    assert_eq!(f.exchanges(), 1);
}

#[test]
fn a_head_refresh_stores_no_body_but_a_304_still_updates_the_entry() {
    let w = world(json!({ "ttl_s": 600, "stale_while_revalidate_s": 60 }));
    let f = Fakes::at(T0);
    f.answer(respond(
        200,
        &[("cache-control", "max-age=10"), ("etag", "\"v1\"")],
        "one",
    ));
    get(&w, &f, "https://h.test/c/1");
    f.now_ms.set(T0 + 20_000.0);
    // The refresh of a HEAD gets a bodiless 200: it must not replace the entry.
    f.answer(respond(
        200,
        &[("cache-control", "max-age=10"), ("etag", "\"v2\"")],
        "",
    ));
    let mut cx = w.ctx("HEAD", "https://h.test/c/1", &f);
    let (_, head) = w.run(&mut cx, &f);
    assert_eq!(head.status(), 200);
    assert!(head.cache_status().contains("stale-while-revalidate"));
    assert_eq!(f.exchanges(), 2);
    let stored = f.cache.borrow().values().next().cloned().unwrap();
    assert_eq!(stored.body, "one", "the entry keeps its body");
    // Its 304, though, updates the entry's headers and freshness.
    f.now_ms.set(T0 + 40_000.0);
    f.answer(respond(
        304,
        &[("cache-control", "max-age=100"), ("x-new", "1")],
        "",
    ));
    let mut cx = w.ctx("HEAD", "https://h.test/c/1", &f);
    w.run(&mut cx, &f);
    let hit = get(&w, &f, "https://h.test/c/1");
    assert_eq!(hit.response().body, "one");
    assert_eq!(hit.response().header("x-new"), Some("1"));
    assert!(
        hit.cache_status().contains("hit; ttl="),
        "{}",
        hit.cache_status()
    );
    assert_eq!(f.exchanges(), 3);
}

/// A stale hit's request, run up to its answer: the refresh it claimed, not yet run.
fn claim_refresh(
    w: &World,
    f: &Fakes,
    url: &str,
) -> (Ctx, super::super::cache_refresh::CacheRefresh) {
    let mut cx = w.ctx("GET", url, f);
    let plan = w.gateway.plan(cx.route()).clone();
    let s = w.services(f);
    let _answer = match start(&plan, &mut cx, s) {
        Started::Done(flow) => flow,
        Started::Pending { at } => {
            now_or_never(resume(&plan, &mut cx, s, at)).expect("fakes never wait")
        }
    };
    let job = cx.cache_refresh.take().expect("a refresh claimed");
    (cx, job)
}

fn run_refresh(w: &World, f: &Fakes, cx: &Ctx, job: super::super::cache_refresh::CacheRefresh) {
    let mut bg = super::super::cache_refresh::background_ctx(cx, f.now_ms.get());
    now_or_never(super::super::cache_refresh::run(
        &mut bg,
        w.services(f),
        job,
    ))
    .expect("ready");
}

/// A successful PUT to `url` (which invalidates it), a millisecond before what follows.
fn invalidate_by_put(w: &World, f: &Fakes, url: &str) {
    f.answer(respond(204, &[], ""));
    let mut put = w.ctx("PUT", url, f);
    w.run(&mut put, f);
    f.now_ms.set(f.now_ms.get() + 1.0);
}

/// Runs the refresh `job`, whose upstream answers 304 with a header that marks what it updated.
fn confirm_late(w: &World, f: &Fakes, cx: &Ctx, job: super::super::cache_refresh::CacheRefresh) {
    f.answer(respond(
        304,
        &[("cache-control", "max-age=100"), ("x-confirmed", "1")],
        "",
    ));
    run_refresh(w, f, cx, job);
}

/// A background refresh's 304 confirms the entry it was asked for, never one the URL's
/// invalidation removed meanwhile, nor one stored since in its place.
#[test]
fn a_late_304_confirms_only_the_entry_it_revalidated() {
    let w = World::new(json!({
        "routes": [ { "id": "c", "path": "/c/{id}", "upstream": "api", "methods": ["GET", "HEAD", "PUT"],
                      "cache": { "ttl_s": 600, "stale_while_revalidate_s": 60, "vary": ["accept-language"] } } ]
    }));
    let url = "https://h.test/c/1";
    let f = Fakes::at(T0);
    f.answer(respond(
        200,
        &[("cache-control", "max-age=10"), ("etag", "\"v1\"")],
        "one",
    ));
    get(&w, &f, url);
    f.now_ms.set(T0 + 20_000.0);
    let (cx, job) = claim_refresh(&w, &f, url);
    // The URL is invalidated while the refresh is out.
    invalidate_by_put(&w, &f, url);
    confirm_late(&w, &f, &cx, job);
    // The invalidated entry stays invalidated: the next GET goes to the upstream.
    f.answer(respond(
        200,
        &[("cache-control", "max-age=100"), ("etag", "\"v2\"")],
        "two",
    ));
    let after = get(&w, &f, url);
    assert_eq!(after.response().body, "two");
    assert_eq!(after.response().header("x-confirmed"), None);

    // Replaced: a refresh claimed for the old entry, a new one stored meanwhile.
    // ("two" was stored at 20 s for 100 s: at 150 s it is stale, within its window.)
    f.now_ms.set(T0 + 150_000.0);
    let (cx, job) = claim_refresh(&w, &f, url);
    invalidate_by_put(&w, &f, url);
    f.answer(respond(
        200,
        &[("cache-control", "max-age=100"), ("etag", "\"v3\"")],
        "three",
    ));
    assert_eq!(get(&w, &f, url).response().body, "three");
    confirm_late(&w, &f, &cx, job);
    let hit = get(&w, &f, url);
    assert_eq!(hit.response().body, "three");
    assert_eq!(
        hit.response().header("x-confirmed"),
        None,
        "a 304 for v2 never updates v3"
    );
}
