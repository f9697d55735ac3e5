use super::*;
use crate::pipeline::fakes::Script;
use serde_json::json;

/// One path, two routes: GET cached on `read`, writes on the uncached `write`.
fn split_routes(read_cache: serde_json::Value) -> World {
    World::new(json!({
        "routes": [
            { "id": "read", "path": "/items/{id}", "upstream": "api", "methods": ["GET", "HEAD"],
              "cache": read_cache },
            { "id": "write", "path": "/items/{id}", "upstream": "api", "methods": ["PUT", "DELETE", "POST"] },
            { "id": "notes", "path": "/items/{id}/notes", "upstream": "api", "methods": ["GET", "POST"] },
            { "id": "other", "path": "/other/{id}", "upstream": "api", "methods": ["GET", "POST"] },
        ]
    }))
}

fn cacheable(body: &str) -> Script {
    Script::Respond(FakeResponse::new(
        200,
        &[("cache-control", "max-age=60")],
        body,
    ))
}

fn answered(status: u16) -> Script {
    Script::Respond(FakeResponse::new(status, &[], "done"))
}

fn get(w: &World, f: &Fakes, url: &str) -> Ended {
    let mut cx = w.ctx("GET", url, f);
    w.run(&mut cx, f).1
}

fn send(w: &World, f: &Fakes, method: &str, url: &str) -> (bool, Ended) {
    let mut cx = w.ctx(method, url, f);
    w.run(&mut cx, f)
}

#[test]
fn a_successful_write_on_another_route_invalidates_the_cached_get_route() {
    let w = split_routes(json!({ "ttl_s": 60 }));
    let f = Fakes::at(T0);
    f.answer(cacheable("v1"));
    get(&w, &f, "https://h.test/items/1");
    get(&w, &f, "https://h.test/items/1");
    assert_eq!((f.cache.borrow().len(), f.hot.borrow().len()), (1, 1));

    // A write that fails invalidates nothing.
    f.answer(answered(500));
    let (sync, failed) = send(&w, &f, "PUT", "https://h.test/items/1");
    assert!(
        !sync,
        "an unsafe request on such a route waits for its answer"
    );
    assert_eq!(failed.response().status, 500);
    assert_eq!((f.cache.borrow().len(), f.hot.borrow().len()), (1, 1));

    // Another URL's write leaves this one alone.
    f.answer(answered(200));
    send(&w, &f, "PUT", "https://h.test/items/2");
    assert_eq!(f.cache.borrow().len(), 1);

    f.answer(answered(204));
    let (_, ok) = send(&w, &f, "DELETE", "https://h.test/items/1");
    assert_eq!(ok.response().status, 204);
    assert!(f.cache.borrow().is_empty() && f.hot.borrow().is_empty());
    assert!(
        ok.response().header("cache-status").is_none(),
        "the write route has no cache of its own"
    );
    f.answer(cacheable("v2"));
    assert_eq!(get(&w, &f, "https://h.test/items/1").response().body, "v2");
}

#[test]
fn a_get_route_with_variants_is_invalidated_through_its_marker() {
    let w = split_routes(json!({ "ttl_s": 60, "vary": ["accept-language"] }));
    let f = Fakes::at(T0);
    f.header("accept-language", "en");
    f.answer(cacheable("english"));
    get(&w, &f, "https://h.test/items/1");
    f.now_ms.set(T0 + 1_000.0);
    f.answer(answered(200));
    send(&w, &f, "POST", "https://h.test/items/1");
    assert_eq!(f.markers.borrow().len(), 1, "every variant of the URL");
    f.now_ms.set(T0 + 2_000.0);
    f.answer(cacheable("english, again"));
    let again = get(&w, &f, "https://h.test/items/1");
    assert_eq!(again.response().body, "english, again");
}

/// Orders read through a cached route, created through an uncached one.
fn order_routes() -> World {
    World::new(json!({
        "routes": [
            { "id": "order", "path": "/orders/{id}", "upstream": "api", "methods": ["GET", "HEAD"],
              "cache": { "ttl_s": 60 } },
            { "id": "create", "path": "/orders", "upstream": "api", "methods": ["POST"] },
        ]
    }))
}

fn created(location_headers: &[(&str, &str)], status: u16) -> Script {
    Script::Respond(FakeResponse::new(status, location_headers, "created"))
}

fn cached_404() -> Script {
    Script::Respond(FakeResponse::new(
        404,
        &[("cache-control", "max-age=60")],
        "no such order",
    ))
}

#[test]
fn a_url_the_answer_names_is_invalidated_on_whichever_route_serves_it() {
    let w = order_routes();
    assert_eq!(w.gateway.plan(1).names(), ["invalidate"]);
    for (header, value) in [
        ("location", "/orders/42"),
        ("location", "https://h.test/orders/42"),
        ("content-location", "orders/42"),
        ("location", "/orders/./42#receipt"),
    ] {
        let f = Fakes::at(T0);
        f.answer(cached_404());
        get(&w, &f, "https://h.test/orders/42");
        assert_eq!(
            get(&w, &f, "https://h.test/orders/42").response().status,
            404
        );
        assert_eq!((f.exchanges(), f.cache.borrow().len()), (1, 1), "a hit");

        f.answer(created(&[(header, value)], 201));
        let (sync, posted) = send(&w, &f, "POST", "https://h.test/orders");
        assert!(!sync, "the write waits for its answer");
        assert_eq!(posted.response().status, 201);
        assert!(
            f.cache.borrow().is_empty() && f.hot.borrow().is_empty(),
            "{header}: {value}"
        );
        f.answer(cacheable("order 42"));
        let now = get(&w, &f, "https://h.test/orders/42");
        assert_eq!(now.response().body, "order 42", "{header}: {value}");
    }
}

#[test]
fn a_url_of_another_origin_or_a_failed_answer_invalidates_nothing() {
    let w = order_routes();
    for (status, value) in [
        (201, "https://other.test/orders/42"),
        (201, "//other.test/orders/42"),
        (201, "http://h.test/orders/42"),
        (201, "https://h.test:8443/orders/42"),
        (201, "/orders/43"),
        (400, "/orders/42"),
        (500, "/orders/42"),
    ] {
        let f = Fakes::at(T0);
        f.answer(cached_404());
        get(&w, &f, "https://h.test/orders/42");
        f.answer(created(&[("location", value)], status));
        send(&w, &f, "POST", "https://h.test/orders");
        assert_eq!(f.cache.borrow().len(), 1, "{status} {value}");
        assert_eq!(
            get(&w, &f, "https://h.test/orders/42").response().status,
            404,
            "{status} {value}: still served from the cache"
        );
        assert_eq!(f.exchanges(), 2, "{status} {value}");
    }
}

#[test]
fn an_answer_names_only_urls_of_its_own_upstream() {
    // One host, two services: the orders service cannot empty the users service's entries.
    let w = World::new(json!({
        "upstreams": {
            "api": { "targets": [ { "url": "http://upstream.test" } ], "retries": 0 },
            "users-svc": { "targets": [ { "url": "http://users.test" } ], "retries": 0 },
            "users-v2": { "targets": [ { "url": "http://users-v2.test" } ], "retries": 0 },
        },
        "routes": [
            { "id": "user", "path": "/users/{id}", "upstream": "users-svc", "methods": ["GET"],
              "cache": { "ttl_s": 60 } },
            { "id": "create", "path": "/orders", "upstream": "api", "methods": ["POST"] },
            { "id": "signup", "path": "/signup", "upstream": "users-v2", "methods": ["POST"] },
            { "id": "register", "path": "/register", "upstream": "api", "methods": ["POST"],
              "canary": { "upstream": "users-svc", "percent": 0 } },
            { "id": "enrol", "path": "/enrol", "upstream": "api", "methods": ["POST"],
              "canary": { "upstream": "users-svc", "percent": 100 } },
        ]
    }));
    // Only the upstream that answered counts: the canary's when the canary was chosen.
    for (post, invalidated) in [
        ("/orders", false),
        ("/signup", false),
        ("/register", false),
        ("/enrol", true),
    ] {
        let f = Fakes::at(T0);
        f.answer(cacheable("alice"));
        get(&w, &f, "https://h.test/users/1");
        f.answer(created(&[("location", "/users/1")], 201));
        send(&w, &f, "POST", &format!("https://h.test{post}"));
        assert_eq!(f.cache.borrow().is_empty(), invalidated, "{post}");
    }
}

#[test]
fn a_redirect_names_nothing_and_location_counts_only_on_201() {
    // An endpoint that redirects where the client asks (`/logout?next=/orders/42`) must not
    // let the client empty any entry it likes.
    let w = order_routes();
    for (status, header, invalidated) in [
        (303, "location", false),
        (302, "location", false),
        (200, "location", false),
        (202, "location", false),
        (303, "content-location", false),
        (201, "location", true),
        (200, "content-location", true),
        (204, "content-location", true),
    ] {
        let f = Fakes::at(T0);
        f.answer(cached_404());
        get(&w, &f, "https://h.test/orders/42");
        f.answer(created(&[(header, "/orders/42")], status));
        send(&w, &f, "POST", "https://h.test/orders");
        assert_eq!(
            f.cache.borrow().is_empty(),
            invalidated,
            "{status} {header}"
        );
    }
}

#[test]
fn the_requests_own_url_named_again_is_invalidated_once() {
    let w = World::new(json!({ "routes": [
        { "id": "items", "path": "/items/{id}", "upstream": "api", "methods": ["GET", "PUT"],
          "cache": { "ttl_s": 60, "vary": ["accept-language"] } },
    ] }));
    let f = Fakes::at(T0);
    f.header("accept-language", "en");
    f.answer(cacheable("english"));
    get(&w, &f, "https://h.test/items/1");
    f.answer(created(&[("content-location", "/items/1")], 200));
    send(&w, &f, "PUT", "https://h.test/items/1");
    assert_eq!(f.invalidations.get(), 1);
}

#[test]
fn a_cached_routes_own_write_invalidates_the_urls_it_names_too() {
    let w = World::new(json!({ "routes": [
        { "id": "items", "path": "/items/{id}", "upstream": "api", "cache": { "ttl_s": 60 },
          "methods": ["GET", "HEAD", "PUT"] },
    ] }));
    let f = Fakes::at(T0);
    for id in ["1", "2"] {
        f.answer(cacheable(id));
        get(&w, &f, &format!("https://h.test/items/{id}"));
    }
    assert_eq!(f.cache.borrow().len(), 2);
    f.answer(created(&[("content-location", "/items/2")], 200));
    send(&w, &f, "PUT", "https://h.test/items/1");
    assert!(f.cache.borrow().is_empty(), "its own URL and the one named");
}

#[test]
fn only_routes_that_may_invalidate_a_cached_url_wait_and_safe_methods_never_do() {
    let w = split_routes(json!({ "ttl_s": 60 }));
    let plan = |id: &str| {
        let i = w
            .gateway
            .config
            .routes
            .iter()
            .position(|r| r.id == id)
            .unwrap();
        w.gateway.plan(i).names()
    };
    assert_eq!(plan("read"), ["cache"]);
    assert_eq!(plan("write"), ["invalidate"]);
    // A GET of its URL reaches no cached route, so its writes invalidate nothing unless their
    // answers name a cached URL, and its reads go straight to the executor.
    assert_eq!(plan("notes"), ["invalidate"]);
    // No URL of /other/{id} is one of /items/{id}, but its answers may name one.
    assert_eq!(plan("other"), ["invalidate"]);
    let f = Fakes::at(T0);
    f.answer(answered(200));
    let (sync, _) = send(&w, &f, "GET", "https://h.test/items/1/notes");
    assert!(sync, "a safe method is forwarded at once");
    f.answer(answered(200));
    let (_, posted) = send(&w, &f, "POST", "https://h.test/items/1/notes");
    assert_eq!(posted.response().status, 200);
    assert!(f.markers.borrow().is_empty());

    // Without any cached route, or on another exact host, writes are plain forwards.
    let plain = World::new(json!({
        "routes": [ { "id": "w", "path": "/x", "upstream": "api", "methods": ["POST"] } ]
    }));
    assert_eq!(plain.gateway.plan(0).names(), ["forward"]);
    let hosts = World::new(json!({
        "routes": [
            { "id": "r", "host": "a.test", "path": "/x", "upstream": "api", "cache": { "ttl_s": 60 } },
            { "id": "w", "host": "b.test", "path": "/x", "upstream": "api", "methods": ["POST"] },
            { "id": "w2", "host": "a.test", "path": "/{*any}", "upstream": "api", "methods": ["POST"] },
            { "id": "w3", "host": "a.test", "path": "/y", "upstream": "api", "methods": ["POST"] },
            { "id": "w4", "host": "a.test", "path": "/z", "upstream": "other", "methods": ["POST"] },
        ],
        "upstreams": {
            "api": { "targets": [ { "url": "http://upstream.test" } ], "retries": 0 },
            "other": { "targets": [ { "url": "http://other.test" } ], "retries": 0 },
        }
    }));
    let names = |i: usize| hosts.gateway.plan(i).names();
    assert_eq!(names(1), ["forward"], "another exact host");
    assert_eq!(names(2), ["invalidate"], "a catch-all may serve /x");
    assert_eq!(names(3), ["invalidate"], "an answer to /y may name /x");
    assert_eq!(
        names(4),
        ["forward"],
        "/z of another upstream: never /x, and its answers name nothing /x's upstream serves"
    );
}

/// Two isolates of one location: `a` is still writing a GET's copy when `b` handles a write to
/// the URL. `a`'s own bookkeeping of writes in flight cannot see `b`'s invalidation; the guard
/// it checks once its write has landed does.
fn write_in_flight_elsewhere(w_a: &World, w_b: &World, method: &str) -> Fakes {
    let f = Fakes::at(T0);
    f.hold_writes.set(true);
    f.answer(cacheable("v1"));
    get(w_a, &f, "https://h.test/items/1");
    assert_eq!(f.in_flight.borrow().len(), 1, "the copy is still in flight");
    f.hold_writes.set(false);
    f.now_ms.set(T0 + 20.0);
    f.answer(answered(204));
    send(w_b, &f, method, "https://h.test/items/1");
    f.land_writes();
    f
}

#[test]
fn another_isolates_copy_in_flight_does_not_outlive_the_invalidation() {
    // The write on the cached route itself, and on another route of the same URL.
    for (read_cache, method) in [
        (json!({ "ttl_s": 60 }), "DELETE"),
        (json!({ "ttl_s": 60, "vary": ["accept-language"] }), "PUT"),
    ] {
        let (a, b) = (split_routes(read_cache.clone()), split_routes(read_cache));
        let f = write_in_flight_elsewhere(&a, &b, method);
        assert!(
            f.cache.borrow().is_empty(),
            "{method}: the copy from before the write was deleted once it landed"
        );
        f.answer(cacheable("v2"));
        assert_eq!(get(&a, &f, "https://h.test/items/1").response().body, "v2");
    }
    // The route's own unsafe requests (one cached route for every method).
    let one_route = || {
        World::new(json!({ "routes": [
            { "id": "items", "path": "/items/{id}", "upstream": "api", "cache": { "ttl_s": 60 } },
        ] }))
    };
    let f = write_in_flight_elsewhere(&one_route(), &one_route(), "POST");
    assert!(f.cache.borrow().is_empty());
}

#[test]
fn a_copy_whose_answer_came_after_the_invalidation_stays() {
    let (a, b) = (
        split_routes(json!({ "ttl_s": 60 })),
        split_routes(json!({ "ttl_s": 60 })),
    );
    let f = Fakes::at(T0);
    f.answer(answered(204));
    send(&b, &f, "DELETE", "https://h.test/items/1");
    f.now_ms.set(T0 + 20.0);
    f.hold_writes.set(true);
    f.answer(cacheable("v2"));
    get(&a, &f, "https://h.test/items/1");
    f.hold_writes.set(false);
    f.land_writes();
    assert_eq!(
        f.cache.borrow().len(),
        1,
        "an answer from after the change is kept"
    );
    assert_eq!(get(&b, &f, "https://h.test/items/1").response().body, "v2");
    assert_eq!(f.exchanges(), 2, "the second GET was a hit");
}
