//! IP rules, CORS and the consumer header through whole pipelines over the fakes: the stage
//! order, refusals before authentication, preflights answered without an exchange, and the
//! CORS headers on every kind of answer.

use super::*;
use crate::error::GatewayError;
use crate::pipeline::cors::preflight_method;
use crate::pipeline::fakes::Script;
use crate::pipeline::{Plan, StageKind};
use serde_json::json;

const APP: &str = "https://app.example.com";

fn world() -> World {
    World::new(json!({
        "auth": { "partners": { "type": "api_key", "header": "x-api-key" } },
        "rate_limits": { "one": { "key": "ip", "limit": 1, "window_s": 60 } },
        "cors": {
            "web": { "origins": [APP, "https://*.example.org"], "methods": ["GET", "POST"],
                     "headers": ["authorization", "content-type"], "expose_headers": ["x-request-id"],
                     "credentials": true, "max_age_s": 120 }
        },
        "ip_rules": {
            "office": { "allow": ["203.0.113.0/24", "2001:db8:1::/48"] },
            "abusive": { "deny": ["203.0.113.66"], "deny_countries": ["T1"], "deny_asns": [64496] }
        },
        "routes": [
            { "id": "orders", "methods": ["GET", "POST"], "path": "/orders", "upstream": "api", "auth": ["partners"],
              "cors": "web", "ip_rules": ["office", "abusive"] },
            { "id": "limited", "methods": ["GET"], "path": "/limited", "upstream": "api", "cors": "web",
              "rate_limits": ["one"] },
            { "id": "cached", "methods": ["GET"], "path": "/cached", "upstream": "api", "cors": "web",
              "cache": { "ttl_s": 60 } },
            { "id": "plain", "methods": ["GET"], "path": "/plain", "upstream": "api" }
        ]
    }))
}

/// A routed context as the entry builds it: the client's address and Cloudflare facts, and the
/// preflight's announced method read from the fakes' headers.
fn ctx(w: &World, f: &Fakes, method: &str, path: &str, ip: Option<&str>) -> Ctx {
    let headers = f.request_headers.borrow().clone();
    let request = Request {
        method: method.into(),
        scheme: "https".into(),
        host: "api.example.com".into(),
        path: path.into(),
        client_ip: ip.map(str::to_owned),
        preflight: preflight_method(
            method,
            headers.get("origin").map(String::as_str),
            headers
                .get("access-control-request-method")
                .map(String::as_str),
        ),
        ..Request::default()
    };
    let trace = Trace::begin(
        &request.inbound(),
        &mut w.state.ids.borrow_mut(),
        &w.gateway.config.observability.tracing,
    );
    let mut cx = Ctx::new(request, trace, f.now_ms.get());
    match w.gateway.destination(&cx.request.inbound()) {
        Ok(Destination::Route(r)) => cx.routed = Some(r),
        other => panic!("{method} {path} is not routed: {other:?}"),
    }
    cx
}

/// The flow a request's plan ends in, before the platform renders it.
fn flow(w: &World, cx: &mut Ctx, f: &Fakes) -> Flow<FakeResponse> {
    let plan = w.gateway.plan(cx.route()).clone();
    let s = w.services(f);
    match start(&plan, cx, s) {
        Started::Done(flow) => flow,
        Started::Pending { at } => {
            now_or_never(resume(&plan, cx, s, at)).expect("fakes never wait")
        }
    }
}

fn header<'a>(set: &'a [(String, String)], name: &str) -> Option<&'a str> {
    set.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn office() -> Option<&'static str> {
    Some("203.0.113.9")
}

#[test]
fn ip_rules_then_cors_come_first_in_the_plan() {
    let w = world();
    use StageKind::*;
    assert_eq!(
        w.gateway.plan(0),
        &Plan {
            // Its POSTs' answers may name a URL the cached route serves.
            stages: vec![IpRules, Cors, Auth, Invalidate]
        }
    );
    assert_eq!(w.gateway.plan(1).names(), ["cors", "rate_limit", "forward"]);
    assert_eq!(w.gateway.plan(3).names(), ["forward"]);
}

#[test]
fn a_denied_client_is_refused_before_auth_and_learns_nothing_of_cors() {
    let w = world();
    let f = Fakes::at(T0);
    f.header("origin", APP);
    for ip in [
        Some("198.51.100.1"),
        Some("203.0.113.66"),
        None,
        Some("not-an-ip"),
    ] {
        let mut cx = ctx(&w, &f, "GET", "/orders", ip);
        let Flow::Error(e, edits) = flow(&w, &mut cx, &f) else {
            panic!("{ip:?} was not refused");
        };
        assert_eq!(e, GatewayError::IpForbidden, "{ip:?}");
        assert_eq!((e.status(), e.code()), (403, "ip_forbidden"));
        assert!(
            edits.is_empty(),
            "no CORS headers for a refused client: {edits:?}"
        );
    }
    // Denied by country and ASN from inside the allowed network.
    for (country, asn) in [(Some("T1"), None), (None, Some(64496))] {
        let mut cx = ctx(&w, &f, "GET", "/orders", office());
        cx.client.country = country.map(str::to_owned);
        cx.client.asn = asn;
        assert!(matches!(
            flow(&w, &mut cx, &f),
            Flow::Error(GatewayError::IpForbidden, _)
        ));
    }
    assert_eq!(f.kv_reads.get(), 0, "auth never ran");
    assert_eq!(f.exchanges(), 0);
    // An IPv4-mapped address of the office is the office: auth runs (and refuses: no key).
    let mut cx = ctx(&w, &f, "GET", "/orders", Some("::ffff:203.0.113.9"));
    let Flow::Error(e, edits) = flow(&w, &mut cx, &f) else {
        panic!("expected a refusal");
    };
    assert_eq!(e.code(), "missing_credentials");
    assert_eq!(header(&edits, "access-control-allow-origin"), Some(APP));
}

#[test]
fn a_preflight_is_answered_without_auth_or_upstream_even_when_the_route_lacks_options() {
    let w = world();
    let f = Fakes::at(T0);
    f.header("origin", APP)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "Authorization, Content-Type",
        );
    let mut cx = ctx(&w, &f, "OPTIONS", "/orders", office());
    let Flow::Response(r, edits) = flow(&w, &mut cx, &f) else {
        panic!("a preflight is answered");
    };
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-methods"), Some("GET, POST"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("authorization, content-type")
    );
    assert_eq!(r.header("access-control-max-age"), Some("120"));
    assert_eq!(r.header("x-request-id"), Some(cx.trace.request_id.as_str()));
    assert_eq!(header(&edits, "access-control-allow-origin"), Some(APP));
    assert_eq!(
        header(&edits, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(header(&edits, "vary"), Some("Origin"));
    assert_eq!(f.exchanges(), 0);
    assert_eq!(f.kv_reads.get(), 0);
}

#[test]
fn preflights_the_policy_does_not_allow_are_403_cors_forbidden() {
    let w = world();
    for (origin, method, headers, fragment) in [
        ("https://evil.example", "GET", "", "origin"),
        ("https://evil-example.com", "GET", "", "origin"),
        ("https://app.example.com.evil.com", "GET", "", "origin"),
        ("http://app.example.com", "GET", "", "origin"),
        ("null", "GET", "", "origin"),
        ("https://example.org", "GET", "", "origin"),
        (APP, "GET", "x-secret", "\"x-secret\""),
        (APP, "GET", "bad header", "invalid header"),
    ] {
        let f = Fakes::at(T0);
        f.header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", headers);
        let mut cx = ctx(&w, &f, "OPTIONS", "/orders", office());
        match flow(&w, &mut cx, &f) {
            Flow::Error(GatewayError::CorsForbidden { reason }, edits) => {
                assert!(reason.contains(fragment), "{origin} {headers}: {reason}");
                assert_eq!(header(&edits, "access-control-allow-origin"), None);
                assert_eq!(header(&edits, "vary"), Some("Origin"));
            }
            _ => panic!("{origin} {method} {headers} was not refused"),
        }
        assert_eq!(f.exchanges(), 0);
    }
    // A method the policy does not list, on a route that accepts it as OPTIONS: routed as
    // itself, refused by the policy.
    let w2 = World::new(json!({
        "cors": { "web": { "origins": [APP], "methods": ["GET"] } },
        "routes": [ { "id": "all", "path": "/all", "upstream": "api", "cors": "web" } ]
    }));
    let f = Fakes::at(T0);
    f.header("origin", APP)
        .header("access-control-request-method", "DELETE");
    let mut cx = ctx(&w2, &f, "OPTIONS", "/all", office());
    assert!(matches!(
        flow(&w2, &mut cx, &f),
        Flow::Error(GatewayError::CorsForbidden { .. }, _)
    ));
}

/// A preflight for a method of another route on the path, one without a CORS policy, is routed
/// as the OPTIONS request it is, to a route with a policy: that policy answers for its own
/// route's methods only, never for the other route's (which would let a page elsewhere send
/// the DELETE the other route serves).
#[test]
fn a_policy_answers_preflights_only_for_its_own_routes_methods() {
    let w = World::new(json!({
        "cors": { "web": { "origins": [APP], "methods": ["GET", "DELETE"] } },
        "routes": [
            { "id": "read", "methods": ["GET", "OPTIONS"], "path": "/doc", "upstream": "api", "cors": "web" },
            { "id": "delete", "methods": ["DELETE"], "path": "/doc", "upstream": "api" }
        ]
    }));
    let f = Fakes::at(T0);
    f.header("origin", APP)
        .header("access-control-request-method", "DELETE");
    let mut cx = ctx(&w, &f, "OPTIONS", "/doc", office());
    assert_eq!(w.gateway.route(cx.route()).id, "read");
    match flow(&w, &mut cx, &f) {
        Flow::Error(GatewayError::CorsForbidden { reason }, _) => {
            assert!(reason.contains("allowed: GET"), "{reason}");
            assert!(!reason.contains("DELETE"), "{reason}");
        }
        Flow::Response(r, _) => panic!(
            "answered {} allowing {:?} for another route",
            r.status,
            r.header("access-control-allow-methods")
        ),
        _ => panic!("expected a refusal"),
    }
    // Its own GET still passes, and the methods it lists are its route's.
    let f = Fakes::at(T0);
    f.header("origin", APP)
        .header("access-control-request-method", "GET");
    let mut cx = ctx(&w, &f, "OPTIONS", "/doc", office());
    let Flow::Response(r, _) = flow(&w, &mut cx, &f) else {
        panic!("a preflight for GET is answered");
    };
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-methods"), Some("GET"));
    assert_eq!(f.exchanges(), 0);
}

#[test]
fn options_that_is_no_preflight_is_routed_as_itself() {
    let w = world();
    let f = Fakes::at(T0);
    f.header("origin", APP);
    let request = Request {
        method: "OPTIONS".into(),
        scheme: "https".into(),
        host: "api.example.com".into(),
        path: "/orders".into(),
        ..Request::default()
    };
    assert!(matches!(
        w.gateway.destination(&request.inbound()),
        Err(GatewayError::MethodNotAllowed(_))
    ));
    // A preflight for a route without CORS is no preflight of the gateway's either.
    let announced = Request {
        path: "/plain".into(),
        preflight: Some("GET".into()),
        ..request
    };
    assert!(matches!(
        w.gateway.destination(&announced.inbound()),
        Err(GatewayError::MethodNotAllowed(_))
    ));
}

#[test]
fn answers_to_an_allowed_origin_carry_the_cors_headers_and_others_only_vary() {
    let w = world();
    let key = crate::auth::api_key::new_key([3; 32]);
    for (origin, allowed) in [
        (APP, true),
        ("https://shop.example.org", true),
        ("https://example.org", false),
        ("https://evil.example", false),
        ("null", false),
    ] {
        let f = Fakes::at(T0);
        store_key(&f, &key, &[]);
        f.header("origin", origin).header("x-api-key", &key);
        // A GET: the route's POSTs wait for their answers (see the plan above).
        let mut cx = ctx(&w, &f, "GET", "/orders", office());
        let Flow::Exchange(plan) = flow(&w, &mut cx, &f) else {
            panic!("{origin}: expected the exchange");
        };
        let set = &plan.response_set;
        assert_eq!(header(set, "vary"), Some("Origin"), "{origin}");
        let expected = allowed.then_some(origin);
        assert_eq!(
            header(set, "access-control-allow-origin"),
            expected,
            "{origin}"
        );
        assert_eq!(
            header(set, "access-control-allow-credentials").is_some(),
            allowed
        );
        assert_eq!(
            header(set, "access-control-expose-headers"),
            allowed.then_some("x-request-id")
        );
    }
    // No Origin: not a CORS request, but the answer still varies on Origin.
    let f = Fakes::at(T0);
    store_key(&f, &key, &[]);
    f.header("x-api-key", &key);
    let mut cx = ctx(&w, &f, "GET", "/orders", office());
    let Flow::Exchange(plan) = flow(&w, &mut cx, &f) else {
        panic!("expected the exchange");
    };
    assert_eq!(header(&plan.response_set, "vary"), Some("Origin"));
    assert_eq!(
        header(&plan.response_set, "access-control-allow-origin"),
        None
    );
}

#[test]
fn gateway_errors_and_cache_hits_carry_the_cors_headers() {
    let w = world();
    let f = Fakes::at(T0);
    f.header("origin", APP);
    // 401 and 429.
    let mut cx = ctx(&w, &f, "GET", "/orders", office());
    let Flow::Error(e, edits) = flow(&w, &mut cx, &f) else {
        panic!()
    };
    assert_eq!(e.status(), 401);
    assert_eq!(header(&edits, "access-control-allow-origin"), Some(APP));
    for expected in [None, Some(429)] {
        let mut cx = ctx(&w, &f, "GET", "/limited", office());
        match (flow(&w, &mut cx, &f), expected) {
            (Flow::Exchange(plan), None) => {
                assert_eq!(
                    header(&plan.response_set, "access-control-allow-origin"),
                    Some(APP)
                )
            }
            (Flow::Error(e, edits), Some(429)) => {
                assert_eq!(e.status(), 429);
                assert_eq!(header(&edits, "access-control-allow-origin"), Some(APP));
                assert_eq!(header(&edits, "vary"), Some("Origin"));
            }
            _ => panic!("unexpected flow"),
        }
    }
    // A miss is stored without them; the hit gets them for its own origin.
    f.answer(Script::Respond(FakeResponse::new(
        200,
        &[
            ("cache-control", "max-age=30"),
            ("access-control-allow-origin", "*"),
        ],
        "body",
    )));
    let mut cx = ctx(&w, &f, "GET", "/cached", office());
    let Flow::Response(_, edits) = flow(&w, &mut cx, &f) else {
        panic!("a miss is answered by the cache stage");
    };
    assert_eq!(header(&edits, "access-control-allow-origin"), Some(APP));
    let stored = f.cache.borrow().values().next().cloned().expect("stored");
    assert_eq!(
        stored.header("vary"),
        None,
        "the gateway's Vary is not stored"
    );
    f.header("origin", "https://shop.example.org");
    f.now_ms.set(T0 + 1_000.0);
    let mut cx = ctx(&w, &f, "GET", "/cached", office());
    let Flow::Response(hit, edits) = flow(&w, &mut cx, &f) else {
        panic!("a hit");
    };
    assert!(hit.header("cache-status").unwrap().contains("hit"));
    assert_eq!(
        header(&edits, "access-control-allow-origin"),
        Some("https://shop.example.org")
    );
    assert_eq!(f.exchanges(), 1);
}

#[test]
fn upstream_cors_headers_are_removed_on_cors_routes_only() {
    let w = world();
    let cors_route = &w.gateway.route_edits(0).response.remove;
    assert!(cors_route
        .iter()
        .any(|h| h == "access-control-allow-origin"));
    let plain = &w.gateway.route_edits(3).response.remove;
    assert!(!plain.iter().any(|h| h == "access-control-allow-origin"));
}

#[test]
fn the_consumer_goes_upstream_and_a_clients_copy_never_does() {
    let w = world();
    for i in 0..w.gateway.config.routes.len() {
        assert!(
            w.gateway
                .route_edits(i)
                .request
                .remove
                .iter()
                .any(|h| h == "x-consumer"),
            "route {i} removes the client's x-consumer"
        );
    }
    let f = Fakes::at(T0);
    let key = crate::auth::api_key::new_key([9; 32]);
    store_key(&f, &key, &[]);
    f.header("x-api-key", &key)
        .header("x-consumer", "key/admin");
    let mut cx = ctx(&w, &f, "GET", "/orders", office());
    let Flow::Exchange(plan) = flow(&w, &mut cx, &f) else {
        panic!("expected the exchange");
    };
    assert_eq!(header(&plan.request.set, "x-consumer"), Some("key/acme"));
    // A public route sets none.
    let mut cx = ctx(&w, &f, "GET", "/plain", office());
    let Flow::Exchange(plan) = flow(&w, &mut cx, &f) else {
        panic!("expected the exchange");
    };
    assert_eq!(header(&plan.request.set, "x-consumer"), None);
}

#[test]
fn the_consumer_header_is_configurable_and_its_value_always_a_valid_header() {
    let w = World::new(json!({
        "settings": { "consumer_header": "X-Authenticated-Consumer" },
        "routes": [ { "id": "p", "path": "/p", "upstream": "api" } ]
    }));
    assert_eq!(
        w.gateway.config.settings.consumer_header,
        "x-authenticated-consumer"
    );
    assert!(w
        .gateway
        .route_edits(0)
        .request
        .remove
        .iter()
        .any(|h| h == "x-authenticated-consumer"));
    assert_eq!(
        crate::pipeline::auth::consumer_value("jwt/idp/j\u{f6}rg%\r\nx"),
        "jwt/idp/j%C3%B6rg%25%0D%0Ax"
    );
}

#[test]
fn explain_lists_ip_rules_and_cors_first_and_stops_at_an_answered_preflight() {
    use crate::control::explain::{explain, Explanation};
    let w = world();
    let stages = |method: &str, headers: &[(&str, &str)]| {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        match explain(
            &w.gateway,
            method,
            "https://api.example.com/orders",
            &headers,
        )
        .unwrap()
        {
            Explanation::Routed(p) => (
                p.stages.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
                p.refusal.map(|r| r.code),
            ),
            other => panic!("{other:?}"),
        }
    };
    let (names, refusal) = stages("GET", &[]);
    assert_eq!(names[..3], ["ip rules", "cors", "auth"]);
    assert_eq!(refusal, Some("missing_credentials"));
    let (names, refusal) = stages(
        "OPTIONS",
        &[("Origin", APP), ("Access-Control-Request-Method", "POST")],
    );
    assert_eq!(names[..2], ["ip rules", "cors"]);
    assert!(!names.contains(&"auth"), "{names:?}");
    assert_eq!(refusal, None, "a preflight needs no credentials");
}
