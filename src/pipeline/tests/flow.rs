use super::*;
use crate::pipeline::fakes::Script;
use crate::pipeline::ports::ExchangeFailure;
use crate::pipeline::state::Counter;
use crate::pipeline::{Plan, StageKind};
use serde_json::json;

fn plain() -> World {
    World::new(json!({
        "routes": [ { "id": "items", "path": "/items/{id}", "upstream": "api", "rewrite": "/v2/items/{id}" } ]
    }))
}

#[test]
fn every_route_compiles_to_its_stages_in_the_fixed_order() {
    let w = World::new(json!({
        "auth": { "keys": { "type": "api_key", "header": "x-api-key" } },
        "rate_limits": { "per-ip": { "key": "ip", "limit": 5, "window_s": 10 } },
        "routes": [
            { "id": "all", "path": "/all", "upstream": "api", "auth": ["keys"], "rate_limits": ["per-ip"], "cache": { "ttl_s": 5 } },
            { "id": "limited", "path": "/limited", "upstream": "api", "rate_limits": ["per-ip"] },
            { "id": "plain", "path": "/plain", "upstream": "api" },
        ]
    }));
    use StageKind::*;
    assert_eq!(
        w.gateway.plan(0),
        &Plan {
            stages: vec![Auth, RateLimit, Cache]
        }
    );
    assert_eq!(
        w.gateway.plan(1),
        &Plan {
            // Beside a cached route, a route taking unsafe methods waits for their answers.
            stages: vec![RateLimit, Invalidate]
        }
    );
    assert_eq!(w.gateway.plan(2).names(), ["invalidate"]);
}

#[test]
fn a_plain_route_is_decided_synchronously_into_one_exchange_plan() {
    let w = plain();
    let f = Fakes::at(T0);
    let mut cx = w.ctx("GET", "https://API.example.com/items/7?x=1", &f);
    let plan = w.gateway.plan(0).clone();
    let Started::Done(Flow::Exchange(exchange)) = start(&plan, &mut cx, w.services(&f)) else {
        panic!("expected a synchronous exchange");
    };
    assert_eq!(exchange.attempts.len(), 1);
    assert_eq!(
        exchange.attempts[0].url,
        "http://upstream.test/v2/items/7?x=1"
    );
    let set: Vec<&str> = exchange
        .request
        .set
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        set,
        [
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-host",
            "x-request-id",
            "traceparent"
        ]
    );
    assert!(exchange
        .request
        .set
        .contains(&("x-forwarded-host".into(), "api.example.com".into())));
    assert_eq!(
        exchange.response_set,
        vec![("x-request-id".into(), cx.trace.request_id.clone())]
    );
    assert_eq!(
        exchange.body_limit,
        Some(w.gateway.config.settings.max_body_bytes)
    );
    // The plan is what the executor reads.
    let text = exchange.to_json();
    assert!(text.contains("\"retry_statuses\":[502,503,504]"), "{text}");
}

#[test]
fn idempotent_requests_get_their_retries_and_others_one_attempt() {
    let w = World::new(json!({
        "upstreams": { "api": { "targets": [ { "url": "http://a.test" }, { "url": "http://b.test" } ], "retries": 1 } },
        "routes": [ { "id": "r", "path": "/r", "upstream": "api", "methods": ["GET", "POST"] } ]
    }));
    let f = Fakes::at(T0);
    f.answer(Script::Respond(FakeResponse::new(503, &[], "busy")));
    let mut cx = w.ctx("GET", "https://h.test/r", &f);
    let (_, ended) = w.run(&mut cx, &f);
    assert_eq!(ended.status(), 200, "the retry went to the other target");
    let plan = f.plans.borrow()[0].clone();
    assert_eq!(plan.attempts.len(), 2);
    assert_ne!(plan.attempts[0].target, plan.attempts[1].target);
    assert_eq!(cx.notes.attempts, 2);

    let mut cx = w.ctx("POST", "https://h.test/r", &f);
    w.run(&mut cx, &f);
    assert_eq!(f.plans.borrow()[1].attempts.len(), 1);
}

#[test]
fn exchange_failures_become_the_gateways_errors_and_are_counted() {
    let w = plain();
    let f = Fakes::at(T0);
    for (failure, status, code) in [
        (ExchangeFailure::Timeout, 504, "upstream_timeout"),
        (
            ExchangeFailure::Unreachable("refused".into()),
            502,
            "upstream_unreachable",
        ),
        (ExchangeFailure::TooLarge, 413, "payload_too_large"),
    ] {
        f.answer(Script::Fail(failure));
        let mut cx = w.ctx("GET", "https://h.test/items/1", &f);
        let (_, ended) = w.run(&mut cx, &f);
        assert_eq!((ended.status(), ended.code()), (status, Some(code)));
    }
    assert_eq!(
        w.state.counters.get(Counter::UpstreamFailures),
        2,
        "a client's oversize body is not an upstream failure"
    );
    let events = f.events.borrow();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event"], "upstream_unreachable");
}

#[test]
fn an_open_breaker_refuses_without_an_exchange_until_its_cooldown_ends() {
    let w = World::new(json!({
        "upstreams": { "api": { "targets": [ { "url": "http://a.test" } ], "retries": 0,
                                "circuit_breaker": { "failures": 2, "cooldown_s": 30 } } },
        "routes": [ { "id": "r", "path": "/r", "upstream": "api" } ]
    }));
    let f = Fakes::at(T0);
    for _ in 0..2 {
        f.answer(Script::Fail(ExchangeFailure::Unreachable("down".into())));
        let mut cx = w.ctx("GET", "https://h.test/r", &f);
        assert_eq!(w.run(&mut cx, &f).1.status(), 502);
    }
    let mut cx = w.ctx("GET", "https://h.test/r", &f);
    let (sync, ended) = w.run(&mut cx, &f);
    assert!(sync);
    assert_eq!(ended.code(), Some("upstream_circuit_open"));
    assert_eq!(f.exchanges(), 2);
    f.now_ms.set(T0 + 31_000.0);
    let mut cx = w.ctx("GET", "https://h.test/r", &f);
    assert_eq!(
        w.run(&mut cx, &f).1.status(),
        200,
        "one probe goes through after the cooldown"
    );
}

#[test]
fn a_recovering_target_is_probed_by_a_first_attempt_never_spent_on_an_unmade_retry() {
    let w = World::new(json!({
        "upstreams": { "api": { "targets": [ { "url": "http://a.test" }, { "url": "http://b.test" } ],
                                "retries": 1,
                                "circuit_breaker": { "failures": 1, "cooldown_s": 30 } } },
        "routes": [ { "id": "r", "path": "/r", "upstream": "api" } ]
    }));
    let f = Fakes::at(T0);
    // Both targets fail once: both breakers open.
    for _ in 0..2 {
        f.answer(Script::Fail(ExchangeFailure::Unreachable("down".into())));
    }
    let mut cx = w.ctx("GET", "https://h.test/r", &f);
    assert_eq!(w.run(&mut cx, &f).1.status(), 502);
    // Past the cooldown both recover; every answer is a success from now on.
    f.now_ms.set(T0 + 31_000.0);
    let mut probed = [false; 2];
    for _ in 0..40 {
        let mut cx = w.ctx("GET", "https://h.test/r", &f);
        assert_eq!(w.run(&mut cx, &f).1.status(), 200);
        let plans = f.plans.borrow();
        let attempts = &plans.last().expect("a plan").attempts;
        for (slot, a) in attempts.iter().enumerate() {
            if !probed[a.target] {
                assert_eq!(
                    slot, 0,
                    "target {} waiting for its probe was planned as a retry",
                    a.target
                );
                probed[a.target] = true;
            }
        }
        // The first attempt answered: only it was made.
        f.now_ms.set(f.now_ms.get() + 10.0);
    }
    assert_eq!(
        probed,
        [true, true],
        "each recovering target got its probe within the cooldown"
    );
}
