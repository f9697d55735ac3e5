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

#[test]
fn only_routes_that_may_share_a_cached_url_wait_and_safe_methods_never_do() {
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
    // Its path begins like the cached one's, so it may share URLs; a GET of its URL reaches no
    // cached route, so its writes invalidate nothing, and its reads go straight to the executor.
    assert_eq!(plan("notes"), ["invalidate"]);
    // No URL of /other/{id} can be one of /items/{id}.
    assert_eq!(plan("other"), ["forward"]);
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
        ]
    }));
    let names = |i: usize| hosts.gateway.plan(i).names();
    assert_eq!(names(1), ["forward"], "another exact host");
    assert_eq!(names(2), ["invalidate"], "a catch-all may serve /x");
    assert_eq!(names(3), ["forward"], "/y is never /x");
}
