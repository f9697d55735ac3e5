//! The completion point over whole pipelines: what each way of ending writes.

use super::*;
use crate::pipeline::fakes::{FakeResponse, Fakes, Script};
use crate::pipeline::tests::{Ended, World, T0};
use serde_json::{json, Value};

fn line(c: &Completion) -> Value {
    serde_json::from_str(c.access_log.as_deref().expect("a log line")).expect("JSON")
}

fn outcome(ended: &Ended) -> Outcome {
    match ended {
        Ended::Response(r) => Outcome::of_status(r.status),
        Ended::Error(e) => Outcome::of_error(e),
    }
}

fn world(observability: Value) -> World {
    World::new(json!({
        "observability": observability,
        "auth": { "keys": { "type": "api_key", "query": "api_key" } },
        "rate_limits": { "per-ip": { "key": "ip", "limit": 1, "window_s": 60 } },
        "routes": [
            { "id": "open", "path": "/open", "upstream": "api", "cache": { "ttl_s": 60 } },
            { "id": "limited", "path": "/limited", "upstream": "api", "rate_limits": ["per-ip"] },
            { "id": "keyed", "path": "/keyed", "upstream": "api", "auth": ["keys"] },
            { "id": "quiet", "path": "/quiet", "upstream": "api", "observability": { "log_sample_rate": 0, "metrics": false } },
        ]
    }))
}

fn run(w: &World, f: &Fakes, method: &str, url: &str) -> Completion {
    let mut cx = w.ctx(method, url, f);
    let (_, ended) = w.run(&mut cx, f);
    f.now_ms.set(f.now_ms.get() + 7.0);
    complete(&cx, &w.gateway, &outcome(&ended), f.now_ms.get())
}

#[test]
fn an_upstream_answer_is_logged_with_its_route_cache_outcome_and_latency() {
    let w = world(json!({}));
    let f = Fakes::at(T0);
    f.answer(Script::Respond(FakeResponse::new(
        200,
        &[("cache-control", "max-age=60")],
        "x",
    )));
    let l = line(&run(&w, &f, "GET", "https://api.test/open?b=2"));
    assert_eq!(l["type"], "access");
    assert_eq!(l["route"], "open");
    assert_eq!(l["status"], 200);
    assert_eq!(l["source"], "upstream");
    assert_eq!(l["cache"], "miss");
    assert_eq!(l["attempts"], 1);
    assert_eq!(l["latency_ms"], 7);
    assert_eq!(l["config_digest"], w.gateway.digest.as_str());
    assert_eq!(l["code"], Value::Null);

    let l = line(&run(&w, &f, "GET", "https://api.test/open?b=2"));
    assert_eq!(
        (l["source"].as_str(), l["cache"].as_str()),
        (Some("cache"), Some("hit"))
    );
}

#[test]
fn refusals_are_the_gateways_and_name_their_code_and_policy() {
    let w = world(json!({}));
    let f = Fakes::at(T0);
    run(&w, &f, "GET", "https://api.test/limited");
    let l = line(&run(&w, &f, "GET", "https://api.test/limited"));
    assert_eq!(l["status"], 429);
    assert_eq!(l["code"], "rate_limited");
    assert_eq!(l["source"], "gateway");
    assert_eq!(l["rate_limit"], "limited:per-ip");
}

#[test]
fn credential_query_values_never_reach_the_line() {
    let w = world(json!({ "access_log": { "redact_query": ["sig"] } }));
    let f = Fakes::at(T0);
    let c = run(
        &w,
        &f,
        "GET",
        "https://api.test/keyed?api_key=gwk_secretvalue&sig=abc&page=2",
    );
    let text = c.access_log.clone().unwrap();
    assert!(
        !text.contains("secretvalue") && !text.contains("abc"),
        "{text}"
    );
    assert!(line(&c)["query"].as_str().unwrap().contains("page=2"));
}

#[test]
fn sampling_drops_successes_but_keeps_every_gateway_error() {
    let w = world(json!({ "access_log": { "sample_rate": 0 }, "metrics": { "sample_rate": 0 } }));
    let f = Fakes::at(T0);
    let ok = run(&w, &f, "GET", "https://api.test/open");
    assert_eq!(ok, Completion::default());
    f.answer(Script::Fail(
        crate::pipeline::ports::ExchangeFailure::Timeout,
    ));
    let failed = run(&w, &f, "GET", "https://api.test/limited");
    assert_eq!(line(&failed)["status"], 504);
    assert!(
        failed.data_point.is_none(),
        "metrics sample errors like everything else"
    );
}

#[test]
fn a_route_can_silence_its_log_and_metrics() {
    let w = world(json!({}));
    let f = Fakes::at(T0);
    assert_eq!(
        run(&w, &f, "GET", "https://api.test/quiet"),
        Completion::default()
    );
    let loud = run(&w, &f, "GET", "https://api.test/open");
    assert!(loud.access_log.is_some() && loud.data_point.is_some());
}

#[test]
fn the_data_point_follows_the_slot_order() {
    let w = world(json!({}));
    let f = Fakes::at(T0);
    let c = run(&w, &f, "GET", "https://api.test/open");
    let p: Value = serde_json::from_str(c.data_point.as_deref().unwrap()).unwrap();
    assert_eq!(p["indexes"], json!(["open"]));
    assert_eq!(p["blobs"][0], "open");
    assert_eq!(p["blobs"][1], "GET");
    assert_eq!(p["blobs"][2], "2xx");
    assert_eq!(p["doubles"][0], 200.0);
}

/// A request URL can carry user-info (a service binding's caller may write
/// `https://user:pass@host/…`); it is no part of the host, which the line and the data point
/// carry.
#[test]
fn user_info_in_the_request_url_is_never_logged_as_the_host() {
    let w = world(json!({ "metrics": { "index": "host" } }));
    let f = Fakes::at(T0);
    f.answer(Script::Respond(FakeResponse::new(200, &[], "x")));
    let c = run(&w, &f, "GET", "https://user:SECRET1@api.test/open?b=2");
    let l = line(&c);
    assert_eq!(l["host"], "api.test");
    let point = c.data_point.expect("a point");
    assert!(!point.to_ascii_lowercase().contains("secret1"), "{point}");
}
