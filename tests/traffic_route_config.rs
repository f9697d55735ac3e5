//! A route's `match`, `canary` and `websocket`, seen from outside the crate: defaults, every
//! form accepted as documented, every mistake refused with its JSON path (all at once), and
//! the plans and route edits they compile to.

use edge_gateway::config::{HeaderCondition, MethodSet, StickyKey};
use edge_gateway::gateway::Gateway;
use serde_json::{json, Value};

mod common;
use common::{accepts, errors, merge};

/// A minimal valid document: upstreams `users` and `users-v2` (no retries), `retrying` (two
/// retries), a JWT scheme and one public route `r` that the tests patch.
fn base() -> Value {
    json!({
        "version": 1,
        "upstreams": {
            "users": { "targets": [ { "url": "https://users.internal.example" } ] },
            "users-v2": { "targets": [ { "url": "https://users-v2.internal.example" } ] },
            "retrying": { "targets": [ { "url": "https://r.internal.example" } ], "retries": 2 }
        },
        "auth": {
            "users-jwt": {
                "type": "jwt", "issuer": "https://id.example.com/", "audiences": ["a"],
                "jwks_url": "https://id.example.com/jwks", "algorithms": ["RS256"]
            }
        },
        "routes": [ { "id": "r", "path": "/r", "upstream": "users", "auth": "none" } ]
    })
}

/// The minimal document with route `r` patched by `patch`.
fn route(patch: Value) -> String {
    let mut d = base();
    merge(&mut d["routes"][0], patch);
    d.to_string()
}

/// The one error of `doc`, which must be at `path` and contain `needle`.
fn one_error(doc: &str, path: &str, needle: &str) {
    let errs = errors(doc);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, path, "{errs:?}");
    assert!(
        errs[0].1.contains(needle),
        "{:?} lacks {needle:?}",
        errs[0].1
    );
}

#[test]
fn match_forms_are_read_sorted_and_lower_cased() {
    let c = accepts(&route(json!({
        "match": { "headers": { "X-Api-Version": "2", "x-beta": "*" }, "query": { "v": "a b" } }
    })));
    let m = c.routes[0].conditions.as_ref().expect("conditions");
    assert_eq!(
        m.headers,
        [
            (
                "x-api-version".to_owned(),
                HeaderCondition::Exact("2".into())
            ),
            ("x-beta".to_owned(), HeaderCondition::Present),
        ]
    );
    assert_eq!(m.query, [("v".to_owned(), "a b".to_owned())]);
    assert_eq!(accepts(&route(json!({}))).routes[0].conditions, None);
}

#[test]
fn match_mistakes_are_refused_with_their_paths() {
    one_error(
        &route(json!({ "match": {} })),
        "routes[0].match",
        "at least one",
    );
    one_error(
        &route(json!({ "match": { "headers": {} } })),
        "routes[0].match",
        "at least one",
    );
    one_error(
        &route(json!({ "match": { "header": { "a": "1" } } })),
        "routes[0].match.header",
        "did you mean \"headers\"",
    );
    one_error(
        &route(json!({ "match": { "headers": { "bad name": "1" } } })),
        "routes[0].match.headers[\"bad name\"]",
        "not a valid header name",
    );
    one_error(
        &route(json!({ "match": { "headers": { "host": "a.example" } } })),
        "routes[0].match.headers.host",
        "\"host\" field",
    );
    one_error(
        &route(json!({ "match": { "headers": { "Upgrade": "websocket" } } })),
        "routes[0].match.headers.Upgrade",
        "hop-by-hop",
    );
    one_error(
        &route(json!({ "match": { "headers": { "x-a": "" } } })),
        "routes[0].match.headers.x-a",
        "\"*\"",
    );
    one_error(
        &route(json!({ "match": { "headers": { "x-a": " 2" } } })),
        "routes[0].match.headers.x-a",
        "leading or trailing spaces",
    );
    one_error(
        &route(json!({ "match": { "headers": { "x-a": "a\u{1}b" } } })),
        "routes[0].match.headers.x-a",
        "control characters",
    );
    one_error(
        &route(json!({ "match": { "headers": { "x-a": 2 } } })),
        "routes[0].match.headers.x-a",
        "expected a string",
    );
    one_error(
        &route(json!({ "match": { "headers": { "X-A": "1", "x-a": "2" } } })),
        "routes[0].match.headers.x-a",
        "matched twice",
    );
    one_error(
        &route(json!({ "match": { "query": { "v": "*" } } })),
        "routes[0].match.query.v",
        "exact values",
    );
    one_error(
        &route(json!({ "match": { "query": { "": "1" } } })),
        "routes[0].match.query[\"\"]",
        "must not be empty",
    );
    one_error(
        &route(json!({ "match": { "query": { "v": true } } })),
        "routes[0].match.query.v",
        "expected a string",
    );
}

#[test]
fn canary_defaults_follow_the_route_auth() {
    let public = accepts(&route(
        json!({ "canary": { "upstream": "users-v2", "percent": 5 } }),
    ));
    let c = public.routes[0].canary.as_ref().expect("canary");
    assert_eq!(public.upstreams[c.upstream].name, "users-v2");
    assert_eq!(c.basis_points, 500);
    assert_eq!(c.sticky, StickyKey::Ip);
    assert_eq!(c.override_header, None);
    let authed = accepts(&route(json!({
        "auth": ["users-jwt"], "canary": { "upstream": "users-v2", "percent": 0.01 }
    })));
    let c = authed.routes[0].canary.as_ref().expect("canary");
    assert_eq!(c.sticky, StickyKey::Consumer);
    assert_eq!(c.basis_points, 1);
}

#[test]
fn canary_accepted_forms() {
    for (percent, bp) in [
        (json!(0), 0),
        (json!(100), 10_000),
        (json!(33.33), 3_333),
        (json!(12.5), 1_250),
        (json!(99.99), 9_999),
    ] {
        let c = accepts(&route(
            json!({ "canary": { "upstream": "users-v2", "percent": percent } }),
        ));
        assert_eq!(c.routes[0].canary.as_ref().unwrap().basis_points, bp);
    }
    for (sticky, want) in [
        ("ip", StickyKey::Ip),
        ("none", StickyKey::None),
        ("header:X-User", StickyKey::Header("x-user".into())),
        ("cookie:uid", StickyKey::Cookie("uid".into())),
    ] {
        let c = accepts(&route(json!({
            "canary": { "upstream": "users-v2", "percent": 1, "sticky": sticky, "override_header": "X-Canary" }
        })));
        let spec = c.routes[0].canary.as_ref().unwrap();
        assert_eq!(spec.sticky, want, "{sticky}");
        assert_eq!(spec.override_header.as_deref(), Some("x-canary"));
    }
}

#[test]
fn canary_mistakes_are_refused_with_their_paths() {
    let canary = |spec: Value| route(json!({ "canary": spec }));
    one_error(
        &canary(json!({ "percent": 5 })),
        "routes[0].canary",
        "missing required field \"upstream\"",
    );
    one_error(
        &canary(json!({ "upstream": "users-v2" })),
        "routes[0].canary",
        "missing required field \"percent\"",
    );
    one_error(
        &canary(json!({ "upstream": "users-v3", "percent": 5 })),
        "routes[0].canary.upstream",
        "unknown upstream \"users-v3\" (did you mean \"users-v2\"?)",
    );
    one_error(
        &canary(json!({ "upstream": "users", "percent": 5 })),
        "routes[0].canary.upstream",
        "must differ",
    );
    for bad in [json!(-1), json!(100.01), json!(1000)] {
        one_error(
            &canary(json!({ "upstream": "users-v2", "percent": bad })),
            "routes[0].canary.percent",
            "between 0 and 100",
        );
    }
    for bad in [json!(0.001), json!(33.333)] {
        one_error(
            &canary(json!({ "upstream": "users-v2", "percent": bad })),
            "routes[0].canary.percent",
            "two decimals",
        );
    }
    one_error(
        &canary(json!({ "upstream": "users-v2", "percent": "5" })),
        "routes[0].canary.percent",
        "expected a number",
    );
    one_error(
        &canary(json!({ "upstream": "users-v2", "percent": 5, "sticky": "consumer" })),
        "routes[0].canary.sticky",
        "needs authentication",
    );
    for (bad, needle) in [
        ("session", "expected \"consumer\""),
        ("header:", "not a valid header name"),
        ("header:a b", "not a valid header name"),
        ("cookie:a;b", "not a valid cookie name"),
    ] {
        one_error(
            &canary(json!({ "upstream": "users-v2", "percent": 5, "sticky": bad })),
            "routes[0].canary.sticky",
            needle,
        );
    }
    for (bad, needle) in [
        ("authorization", "carries credentials"),
        ("cookie", "carries credentials"),
        ("x-forwarded-for", "managed by the gateway"),
        ("connection", "managed by the gateway"),
    ] {
        one_error(
            &canary(json!({ "upstream": "users-v2", "percent": 5, "override_header": bad })),
            "routes[0].canary.override_header",
            needle,
        );
    }
    one_error(
        &canary(json!({ "upstream": "users-v2", "percent": 5, "weight": 1 })),
        "routes[0].canary.weight",
        "unknown field",
    );
    // Every mistake at once.
    let all = errors(&canary(
        json!({ "upstream": "nope", "percent": 0.001, "sticky": "x", "override_header": "host" }),
    ));
    assert_eq!(all.len(), 4, "{all:?}");
}

#[test]
fn websocket_routes_take_get_only_and_are_never_cached_or_retried() {
    let c = accepts(&route(json!({ "websocket": true })));
    assert!(c.routes[0].websocket);
    assert_eq!(c.routes[0].methods, MethodSet::from_names(&["GET"]));
    accepts(&route(json!({ "websocket": true, "methods": ["GET"] })));
    assert!(!accepts(&route(json!({}))).routes[0].websocket);
    one_error(
        &route(json!({ "websocket": true, "methods": ["GET", "POST"] })),
        "routes[0].methods",
        "only GET",
    );
    one_error(
        &route(json!({ "websocket": true, "cache": { "ttl_s": 10 } })),
        "routes[0].cache",
        "cannot be cached",
    );
    one_error(
        &route(json!({ "websocket": true, "upstream": "retrying" })),
        "routes[0].websocket",
        "upstream \"retrying\" retries (2)",
    );
    one_error(
        &route(json!({ "websocket": true, "canary": { "upstream": "retrying", "percent": 5 } })),
        "routes[0].websocket",
        "upstream \"retrying\"",
    );
    // A cookie credential on a WebSocket route needs a CORS policy: browsers attach the cookie
    // to a handshake from any site and show that site's page the socket.
    let mut cookie = base();
    cookie["auth"]["session"] = json!({
        "type": "jwt", "issuer": "https://id.example.com/", "audiences": ["a"],
        "jwks_url": "https://id.example.com/jwks", "algorithms": ["RS256"], "token_cookie": "session"
    });
    merge(
        &mut cookie["routes"][0],
        json!({ "websocket": true, "auth": ["users-jwt", "session"] }),
    );
    one_error(
        &cookie.to_string(),
        "routes[0].websocket",
        "auth scheme \"session\" reads its token from a cookie",
    );
    // A "*" policy lets every origin open it.
    cookie["cors"] =
        json!({ "any": { "origins": ["*"] }, "app": { "origins": ["https://app.example.com"] } });
    cookie["routes"][0]["cors"] = json!("any");
    one_error(
        &cookie.to_string(),
        "routes[0].websocket",
        "listing the origins that may open it (not \"*\")",
    );
    cookie["routes"][0]["cors"] = json!("app");
    accepts(&cookie.to_string());
    // Credentials a page elsewhere cannot attach (a header, the query) need none.
    accepts(&route(json!({ "websocket": true, "auth": ["users-jwt"] })));
    one_error(
        &route(json!({ "websocket": "yes" })),
        "routes[0].websocket",
        "expected true or false",
    );
}

#[test]
fn plans_and_edits() {
    let doc = {
        let mut d = base();
        d["auth"]["users-jwt"]["forward_claims"] = json!({ "sub": "x-user" });
        d["routes"] = json!([
            { "id": "split", "path": "/s", "upstream": "users", "auth": ["users-jwt"],
              "canary": { "upstream": "users-v2", "percent": 5, "override_header": "x-canary" },
              "cache": { "ttl_s": 5 } },
            { "id": "live", "path": "/live", "upstream": "users", "auth": "none", "websocket": true },
            { "id": "plain", "path": "/plain", "upstream": "users", "auth": "none" }
        ]);
        d.to_string()
    };
    let g = Gateway::compile(&doc).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(g.plan(0).names(), ["auth", "canary", "cache"]);
    assert_eq!(g.plan(1).names(), ["websocket"]);
    // It takes every method, and beside a cached route its unsafe ones wait for their answers.
    assert_eq!(g.plan(2).names(), ["invalidate"]);
    let removes = |i: usize, name: &str| g.route_edits(i).request.remove.iter().any(|h| h == name);
    assert!(
        removes(0, "x-canary"),
        "the override header is never forwarded"
    );
    assert!(!removes(2, "x-canary"));
    assert!(!removes(1, "upgrade"), "a WebSocket route keeps Upgrade");
    assert!(!removes(1, "sec-websocket-key"));
    assert!(removes(1, "connection"));
    assert!(removes(2, "upgrade"));
    for h in [
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
    ] {
        assert!(
            removes(0, h) && removes(2, h),
            "{h} only on the WebSocket route"
        );
    }
}

#[test]
fn explain_follows_conditions_and_names_the_canary_and_the_handshake() {
    use edge_gateway::control::explain::{explain, Explanation};
    let g = Gateway::compile(include_str!("../routes.json")).unwrap_or_else(|e| panic!("{e}"));
    let routed = |url: &str, headers: &[(&str, &str)]| {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        match explain(&g, "GET", url, &headers) {
            Ok(Explanation::Routed(plan)) => plan,
            other => panic!("{url}: {other:?}"),
        }
    };
    let base = "http://127.0.0.1:8787";
    assert_eq!(routed(&format!("{base}/v1/echo/x"), &[]).route, "echo");
    assert_eq!(
        routed(&format!("{base}/v1/echo/x"), &[("X-Api-Version", "2")]).route,
        "echo-v2"
    );
    assert_eq!(
        routed(&format!("{base}/v1/users/7?version=2"), &[]).route,
        "get-user-v2"
    );
    let canary = routed(&format!("{base}/v1/canary/x"), &[]);
    let stage = canary.stages.iter().find(|(s, _)| *s == "canary");
    assert_eq!(
        stage.map(|(_, t)| t.as_str()),
        Some("25.00 % to demo-v2, sticky by header x-user, override with x-canary: always | never")
    );
    let plain = routed(&format!("{base}/v1/live"), &[]);
    assert_eq!(plain.refusal.map(|r| r.code), Some("upgrade_required"));
    let upgrade = routed(
        &format!("{base}/v1/live"),
        &[
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
    );
    assert!(upgrade.refusal.is_none());
    // The handshake is checked as the gateway checks it: without a key it is a 400.
    let keyless = routed(
        &format!("{base}/v1/live"),
        &[("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")],
    );
    assert_eq!(keyless.refusal.map(|r| r.code), Some("bad_request"));
    assert!(upgrade.stages.iter().any(|(s, _)| *s == "websocket"));
}

#[test]
fn a_match_never_reads_a_header_the_gateway_sets_from_the_identity() {
    // A condition reads the request as the client sent it: matching on x-consumer or a claim
    // header, any client could pick the route meant for another identity by sending it.
    let mut d = base();
    d["auth"]["users-jwt"]["forward_claims"] = json!({ "sub": "x-user-id" });
    d["routes"][0]["match"] = json!({ "headers": { "X-User-Id": "admin" } });
    one_error(
        &d.to_string(),
        "routes[0].match.headers.X-User-Id",
        "header \"x-user-id\" is a forward_claims header of auth scheme \"users-jwt\" (claim \"sub\"): a condition would read the client's copy, which anyone can send",
    );
    d["routes"][0]["match"] = json!({ "headers": { "x-consumer": "*" } });
    one_error(
        &d.to_string(),
        "routes[0].match.headers.x-consumer",
        "header \"x-consumer\" is settings.consumer_header, which the gateway sets from the verified identity: a condition would read the client's copy, which anyone can send",
    );
}
