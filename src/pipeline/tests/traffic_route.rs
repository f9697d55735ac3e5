//! The canary and WebSocket stages over the fakes: the exchange each decides, stickiness,
//! overrides, and the completion point's variant and upstream.

use super::*;
use crate::observe::Variant;
use serde_json::json;

fn world() -> World {
    World::new(json!({
        "upstreams": {
            "api": { "targets": [ { "url": "http://upstream.test" } ], "retries": 0 },
            "next": { "targets": [ { "url": "http://next.test" } ], "retries": 2 },
            "sockets": { "targets": [ { "url": "http://sockets.test" } ] }
        },
        "routes": [
            { "id": "split", "path": "/s/{id}", "upstream": "api",
              "canary": { "upstream": "next", "percent": 50, "sticky": "header:x-user", "override_header": "x-canary" } },
            { "id": "live", "path": "/live", "upstream": "sockets", "websocket": true }
        ]
    }))
}

/// The exchange the plan of `url` hands to the executor, and the variant it chose.
fn exchange(w: &World, url: &str, headers: &[(&str, &str)]) -> (ExchangePlan, Option<Variant>) {
    let f = Fakes::at(T0);
    for (n, v) in headers {
        f.header(n, v);
    }
    let mut cx = w.ctx("GET", url, &f);
    let plan = w.gateway.plan(cx.route()).clone();
    match start(&plan, &mut cx, w.services(&f)) {
        Started::Done(Flow::Exchange(e)) => (e, cx.variant),
        Started::Done(Flow::Error(e, _)) => panic!("refused: {e:?}"),
        _ => panic!("expected a synchronous exchange"),
    }
}

use super::super::exchange::ExchangePlan;

const HANDSHAKE_KEY: (&str, &str) = ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
const HANDSHAKE_VERSION: (&str, &str) = ("sec-websocket-version", "13");

/// A browser's handshake headers (RFC 6455 §4.1).
fn handshake_headers(f: &Fakes) {
    f.header("upgrade", "websocket");
    f.header(HANDSHAKE_KEY.0, HANDSHAKE_KEY.1);
    f.header(HANDSHAKE_VERSION.0, HANDSHAKE_VERSION.1);
}

/// A request the runtime would answer 400 only after the gateway opened the upstream's socket
/// (a missing key, version 8, a POST it presents as a GET without its body) is refused before
/// any exchange: the upstream is never reached.
#[test]
fn a_handshake_the_runtime_would_refuse_never_reaches_the_upstream() {
    let w = world();
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Headers, bool, u16); 4] = [
        (&[("upgrade", "websocket"), HANDSHAKE_VERSION], false, 400),
        (
            &[
                ("upgrade", "websocket"),
                HANDSHAKE_KEY,
                ("sec-websocket-version", "8"),
            ],
            false,
            426,
        ),
        (
            &[("upgrade", "websocket"), HANDSHAKE_KEY, HANDSHAKE_VERSION],
            true,
            400,
        ),
        (
            &[
                ("upgrade", "h2c, websocket"),
                HANDSHAKE_KEY,
                HANDSHAKE_VERSION,
            ],
            false,
            400,
        ),
    ];
    for (headers, framed, status) in cases {
        let f = Fakes::at(T0);
        for (n, v) in headers {
            f.header(n, v);
        }
        let mut cx = w.ctx("GET", "https://x/live", &f);
        if framed {
            cx.request.content_length = Some("0".into());
        }
        let plan = w.gateway.plan(cx.route()).clone();
        match start(&plan, &mut cx, w.services(&f)) {
            Started::Done(Flow::Error(e, _)) => assert_eq!(e.status(), status, "{headers:?}"),
            _ => panic!("{headers:?} framed={framed}: expected a refusal before any exchange"),
        }
    }
}

#[test]
fn the_canary_stage_picks_the_upstream_of_the_exchange_and_sticks() {
    let w = world();
    let mut seen = [0usize; 2];
    for i in 0..200 {
        let user = format!("u{i}");
        let (plan, variant) = exchange(&w, "https://api.example.com/s/1", &[("x-user", &user)]);
        let (again, _) = exchange(&w, "https://api.example.com/s/2", &[("x-user", &user)]);
        assert_eq!(plan.upstream, again.upstream, "{user} is sticky");
        let canary = variant == Some(Variant::Canary);
        assert_eq!(
            plan.attempts[0].url.starts_with("http://next.test/"),
            canary
        );
        // The canary upstream's own retries apply to its exchanges.
        assert_eq!(plan.attempts.len(), if canary { 3 } else { 1 });
        seen[usize::from(canary)] += 1;
    }
    assert!(seen[0] > 60 && seen[1] > 60, "{seen:?}");
}

#[test]
fn the_override_wins_and_bad_values_are_refused() {
    let w = world();
    for user in ["a", "b", "c", "d"] {
        let (plan, v) = exchange(
            &w,
            "https://x/s/1",
            &[("x-user", user), ("x-canary", "always")],
        );
        assert_eq!(
            (v, plan.attempts[0].url.as_str()),
            (Some(Variant::Canary), "http://next.test/s/1")
        );
        let (_, v) = exchange(
            &w,
            "https://x/s/1",
            &[("x-user", user), ("x-canary", "NEVER")],
        );
        assert_eq!(v, Some(Variant::Primary));
    }
    let f = Fakes::at(T0);
    f.header("x-canary", "sometimes");
    let mut cx = w.ctx("GET", "https://x/s/1", &f);
    let (_, ended) = w.run(&mut cx, &f);
    assert_eq!(ended.code(), Some("bad_request"));
}

#[test]
fn the_completion_point_reports_the_variant_and_the_upstream_that_served() {
    let w = world();
    let f = Fakes::at(T0);
    f.header("x-canary", "always");
    let mut cx = w.ctx("GET", "https://x/s/1", &f);
    let (_, ended) = w.run(&mut cx, &f);
    assert_eq!(ended.status(), 200);
    let done = crate::pipeline::complete::complete(
        &cx,
        &w.gateway,
        &crate::pipeline::complete::Outcome::of_status(200),
        T0 + 5.0,
    );
    let line: serde_json::Value = serde_json::from_str(&done.access_log.expect("logged")).unwrap();
    assert_eq!(line["variant"], "canary");
    assert_eq!(line["upstream"], "next");
}

#[test]
fn a_websocket_route_sends_one_handshake_and_refuses_plain_requests() {
    let w = world();
    let (plan, _) = exchange(
        &w,
        "https://x/live",
        &[("upgrade", "WebSocket"), HANDSHAKE_KEY, HANDSHAKE_VERSION],
    );
    assert!(plan.websocket);
    assert_eq!(plan.attempts.len(), 1);
    // The client's `Connection: Upgrade` cannot remove the Upgrade header it names.
    let f = Fakes::at(T0);
    handshake_headers(&f);
    let mut cx = w.ctx("GET", "https://x/live", &f);
    cx.request.connection = Some("Upgrade".into());
    let plan_kinds = w.gateway.plan(cx.route()).clone();
    let Started::Done(Flow::Exchange(e)) = start(&plan_kinds, &mut cx, w.services(&f)) else {
        panic!("expected an exchange");
    };
    assert!(
        !e.request.remove.iter().any(|h| h == "upgrade"),
        "{:?}",
        e.request.remove
    );

    let f = Fakes::at(T0);
    let mut cx = w.ctx("GET", "https://x/live", &f);
    let (_, ended) = w.run(&mut cx, &f);
    assert_eq!(
        (ended.status(), ended.code()),
        (426, Some("upgrade_required"))
    );
    // Plain routes' exchanges are never WebSocket plans.
    let (plain, _) = exchange(&w, "https://x/s/1", &[("upgrade", "websocket")]);
    assert!(!plain.websocket);
}

#[test]
fn a_websocket_route_with_a_cors_policy_refuses_a_handshake_from_another_origin() {
    let w = World::new(json!({
        "upstreams": { "sockets": { "targets": [ { "url": "http://sockets.test" } ] } },
        "cors": { "app": { "origins": ["https://app.example.com"] } },
        "routes": [ { "id": "live", "path": "/live", "upstream": "sockets", "websocket": true, "cors": "app" } ]
    }));
    let handshake = |origin: Option<&str>| {
        let f = Fakes::at(T0);
        handshake_headers(&f);
        if let Some(o) = origin {
            f.header("origin", o);
        }
        let mut cx = w.ctx("GET", "https://x/live", &f);
        let plan = w.gateway.plan(cx.route()).clone();
        match start(&plan, &mut cx, w.services(&f)) {
            Started::Done(Flow::Exchange(e)) => Ok(e.websocket),
            Started::Done(Flow::Error(e, _)) => Err(e.code()),
            _ => panic!("expected a decision at once"),
        }
    };
    // Browsers send no preflight and withhold nothing from the page for a WebSocket: a page on
    // another site would otherwise open the socket with the user's cookies.
    assert_eq!(
        handshake(Some("https://evil.example")),
        Err("cors_forbidden")
    );
    assert_eq!(handshake(Some("https://app.example.com")), Ok(true));
    // Clients that are not browsers send no Origin.
    assert_eq!(handshake(None), Ok(true));
}

/// `sticky: none`, and a request with neither its sticky key nor an address, draw from the
/// isolate's own generator: the client's traceparent (which the gateway continues) cannot pick
/// the variant, however often it is sent.
#[test]
fn a_draw_is_the_gateways_own_never_the_clients_trace_id() {
    use crate::forward::Trace;
    use crate::pipeline::ctx::{Ctx, Request};
    let w = World::new(json!({
        "upstreams": {
            "api": { "targets": [ { "url": "http://upstream.test" } ], "retries": 0 },
            "next": { "targets": [ { "url": "http://next.test" } ], "retries": 0 }
        },
        "routes": [
            { "id": "none", "path": "/none", "upstream": "api",
              "canary": { "upstream": "next", "percent": 50, "sticky": "none" } },
            { "id": "by-user", "path": "/user", "upstream": "api",
              "canary": { "upstream": "next", "percent": 50, "sticky": "header:x-user" } }
        ]
    }));
    let f = Fakes::at(T0);
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for (path, client_ip) in [("/none", Some("203.0.113.9")), ("/user", None)] {
        let mut seen = [0usize; 2];
        for _ in 0..200 {
            let request = Request {
                method: "GET".into(),
                scheme: "https".into(),
                host: "h.test".into(),
                path: path.into(),
                client_ip: client_ip.map(str::to_owned),
                traceparent: Some(traceparent.into()),
                ..Request::default()
            };
            let trace = Trace::begin(
                &request.inbound(),
                &mut w.state.ids.borrow_mut(),
                &w.gateway.config.observability.tracing,
            );
            assert_eq!(
                trace.span.trace_id.hex(),
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "the client's trace is continued"
            );
            let mut cx = Ctx::new(request, trace, f.now_ms.get());
            match w.gateway.destination(&cx.request.inbound()) {
                Ok(Destination::Route(r)) => cx.routed = Some(r),
                other => panic!("{path} is not routed: {other:?}"),
            }
            w.run(&mut cx, &f);
            seen[usize::from(cx.variant == Some(Variant::Canary))] += 1;
        }
        assert!(seen[0] > 60 && seen[1] > 60, "{path}: {seen:?}");
    }
}

/// At 0 % no request reaches the canary by its key, but the override header still forces it
/// there (trying a canary before its rollout): a rollback removes the canary, not its share.
#[test]
fn at_zero_percent_only_the_override_reaches_the_canary() {
    let w = World::new(json!({
        "upstreams": {
            "api": { "targets": [ { "url": "http://upstream.test" } ], "retries": 0 },
            "next": { "targets": [ { "url": "http://next.test" } ], "retries": 0 }
        },
        "routes": [
            { "id": "split", "path": "/s/{id}", "upstream": "api",
              "canary": { "upstream": "next", "percent": 0, "sticky": "header:x-user", "override_header": "x-canary" } }
        ]
    }));
    for i in 0..100 {
        let user = format!("u{i}");
        let (_, v) = exchange(&w, "https://x/s/1", &[("x-user", &user)]);
        assert_eq!(v, Some(Variant::Primary), "{user}");
    }
    let (plan, v) = exchange(&w, "https://x/s/1", &[("x-canary", "always")]);
    assert_eq!(
        (v, plan.attempts[0].url.as_str()),
        (Some(Variant::Canary), "http://next.test/s/1")
    );
    let (_, v) = exchange(&w, "https://x/s/1", &[("x-canary", "never")]);
    assert_eq!(v, Some(Variant::Primary));
}
