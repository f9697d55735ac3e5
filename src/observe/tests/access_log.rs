use crate::config::{AccessLogSpec, ClientIpMode, LogField};
use crate::observe::access_log::{should_log, AccessRecord};
use crate::observe::redact::Redactor;
use crate::observe::trace::{SpanId, TraceId};
use crate::observe::{sample, CacheResult, Client, Completed, RateLimitResult, Source, Variant};
use serde_json::{json, Value};

/// A request answered by the upstream, every member filled in.
fn completed() -> Completed<'static> {
    Completed {
        ts_ms: 1_764_000_000_123,
        request_id: "req-1",
        trace_id: TraceId(0x4bf92f3577b34da6a3ce929d0e0e4736),
        span_id: SpanId(0x1122334455667788),
        parent_span_id: Some(SpanId(0x00f067aa0ba902b7)),
        sample_key: 0,
        route: Some("get-user"),
        method: "GET",
        host: "api.example.com",
        path: "/v1/users/42",
        query: Some("a=1&access_token=secret-value"),
        status: 200,
        code: None,
        source: Source::Upstream,
        upstream: Some("users"),
        target: Some(1),
        attempts: 2,
        latency_ms: 35,
        upstream_latency_ms: Some(30),
        cache: Some(CacheResult::Miss),
        rate_limit: Some(RateLimitResult::Allowed),
        consumer: Some("key/acme"),
        auth_scheme: Some("partners"),
        variant: Some(Variant::Canary),
        config_digest: "sha256:0123456789abcdef",
        request_bytes: Some(10),
        response_bytes: Some(2048),
        client: Client {
            ip: Some("203.0.113.77"),
            user_agent: Some("curl/8.5"),
            country: Some("DE"),
            asn: Some(64496),
            colo: Some("FRA"),
        },
        request_headers: &[("x-client-version", "3.1"), ("x-other", "x")],
    }
}

fn line(c: &Completed, spec: &AccessLogSpec) -> Value {
    let text = AccessRecord::new(c, spec, &Redactor::default()).to_json();
    assert!(!text.contains('\n'), "one line: {text}");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_line_has_every_member_of_the_contract_in_order() {
    let v = line(&completed(), &AccessLogSpec::default());
    let want = json!({
        "type": "access",
        "ts_ms": 1_764_000_000_123u64,
        "request_id": "req-1",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "1122334455667788",
        "parent_span_id": "00f067aa0ba902b7",
        "route": "get-user",
        "method": "GET",
        "host": "api.example.com",
        "path": "/v1/users/42",
        "query": "a=1&access_token=REDACTED",
        "status": 200,
        "code": null,
        "source": "upstream",
        "upstream": "users",
        "target": 1,
        "attempts": 2,
        "latency_ms": 35,
        "upstream_latency_ms": 30,
        "cache": "miss",
        "rate_limit": "allowed",
        "consumer": "key/acme",
        "auth_scheme": "partners",
        "variant": "canary",
        "config_digest": "sha256:0123456789abcdef",
        "client_ip": "203.0.113.0"
    });
    assert_eq!(v, want);
    let text = AccessRecord::new(
        &completed(),
        &AccessLogSpec::default(),
        &Redactor::default(),
    )
    .to_json();
    let keys: Vec<&str> = want
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut at = 0;
    for k in [
        "type",
        "ts_ms",
        "request_id",
        "trace_id",
        "span_id",
        "route",
        "method",
        "host",
        "path",
        "query",
        "status",
        "code",
        "source",
        "upstream",
        "target",
        "attempts",
        "latency_ms",
        "upstream_latency_ms",
        "cache",
        "rate_limit",
        "consumer",
        "auth_scheme",
        "variant",
        "config_digest",
    ] {
        assert!(keys.contains(&k));
        let pos = text.find(&format!("\"{k}\":")).unwrap();
        assert!(pos >= at, "{k} out of order in {text}");
        at = pos;
    }
}

#[test]
fn a_gateway_refusal_without_a_route_has_nulls_not_missing_members() {
    let c = Completed {
        route: None,
        query: None,
        status: 404,
        code: Some("route_not_found"),
        source: Source::Gateway,
        upstream: None,
        target: None,
        attempts: 0,
        upstream_latency_ms: None,
        cache: None,
        rate_limit: None,
        consumer: None,
        auth_scheme: None,
        variant: None,
        parent_span_id: None,
        ..completed()
    };
    let v = line(&c, &AccessLogSpec::default());
    for k in [
        "route",
        "query",
        "upstream",
        "target",
        "upstream_latency_ms",
        "cache",
        "rate_limit",
        "consumer",
        "auth_scheme",
        "variant",
        "parent_span_id",
    ] {
        assert_eq!(v[k], Value::Null, "{k}");
    }
    assert_eq!(v["code"], "route_not_found");
    assert_eq!(v["source"], "gateway");
    assert_eq!(v["attempts"], 0);
}

#[test]
fn rate_limit_and_cache_values_are_rendered_as_the_contract_spells_them() {
    let spec = AccessLogSpec::default();
    for (r, want) in [
        (RateLimitResult::Allowed, "allowed"),
        (RateLimitResult::Limited("per-ip"), "limited:per-ip"),
        (RateLimitResult::StoreError("orders"), "store_error:orders"),
    ] {
        let c = Completed {
            rate_limit: Some(r),
            ..completed()
        };
        assert_eq!(line(&c, &spec)["rate_limit"], want);
    }
    for (r, want) in [
        (CacheResult::Hit, "hit"),
        (CacheResult::Miss, "miss"),
        (CacheResult::Stale, "stale"),
        (CacheResult::Bypass, "bypass"),
    ] {
        let c = Completed {
            cache: Some(r),
            ..completed()
        };
        assert_eq!(line(&c, &spec)["cache"], want);
    }
    let c = Completed {
        variant: Some(Variant::Primary),
        ..completed()
    };
    assert_eq!(line(&c, &spec)["variant"], "primary");
}

#[test]
fn optional_fields_and_request_headers_appear_only_when_asked() {
    let v = line(&completed(), &AccessLogSpec::default());
    for k in ["user_agent", "country", "asn", "colo", "request_headers"] {
        assert!(v.get(k).is_none(), "{k} without being asked");
    }
    let spec = AccessLogSpec {
        fields: vec![
            LogField::Colo,
            LogField::UserAgent,
            LogField::Asn,
            LogField::Country,
        ],
        request_headers: vec!["x-client-version".into(), "x-missing".into()],
        ..AccessLogSpec::default()
    };
    let v = line(&completed(), &spec);
    assert_eq!(v["user_agent"], "curl/8.5");
    assert_eq!(v["country"], "DE");
    assert_eq!(v["asn"], 64496);
    assert_eq!(v["colo"], "FRA");
    assert_eq!(
        v["request_headers"],
        json!({ "x-client-version": "3.1", "x-missing": null })
    );
    assert!(
        v["request_headers"].get("x-other").is_none(),
        "only configured headers"
    );
    // Asked for but unknown: null.
    let c = Completed {
        client: Client::default(),
        ..completed()
    };
    let v = line(&c, &spec);
    for k in ["user_agent", "country", "asn", "colo", "client_ip"] {
        assert_eq!(v[k], Value::Null, "{k}");
    }
}

#[test]
fn logged_header_values_are_scrubbed_of_tokens() {
    let spec = AccessLogSpec {
        request_headers: vec!["x-debug".into()],
        ..AccessLogSpec::default()
    };
    let c = Completed {
        request_headers: &[("X-Debug", "Bearer abc.def.ghi")],
        ..completed()
    };
    let v = line(&c, &spec);
    assert_eq!(v["request_headers"]["x-debug"], "Bearer REDACTED");
}

#[test]
fn client_ip_follows_its_mode() {
    let with = |mode| AccessLogSpec {
        client_ip: mode,
        ..AccessLogSpec::default()
    };
    assert_eq!(
        line(&completed(), &with(ClientIpMode::Full))["client_ip"],
        "203.0.113.77"
    );
    assert_eq!(
        line(&completed(), &with(ClientIpMode::Truncate))["client_ip"],
        "203.0.113.0"
    );
    assert!(line(&completed(), &with(ClientIpMode::Omit))
        .get("client_ip")
        .is_none());
}

#[test]
fn the_query_is_redacted_with_the_configurations_names() {
    let config = crate::config::Config::from_json(
        r#"{ "version": 1,
             "upstreams": { "u": { "targets": [ { "url": "https://u.example" } ] } },
             "auth": { "k": { "type": "api_key", "query": "key" } },
             "observability": { "access_log": { "redact_query": ["sig"] } },
             "routes": [ { "id": "r", "path": "/r", "upstream": "u", "auth": "none" } ] }"#,
    )
    .unwrap();
    let r = Redactor::new(&config);
    let c = Completed {
        query: Some("key=k1&sig=s1&k%65y=k2&page=2"),
        ..completed()
    };
    let text = AccessRecord::new(&c, &AccessLogSpec::default(), &r).to_json();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["query"],
        "key=REDACTED&sig=REDACTED&k%65y=REDACTED&page=2"
    );
    assert!(!text.contains("k1") && !text.contains("s1") && !text.contains("k2"));
}

#[test]
fn hostile_values_stay_inside_their_json_strings() {
    let c = Completed {
        path: "/a\"b\\c\n\u{0}d",
        host: "h\r\nx-injected: 1",
        request_id: "id\"}",
        ..completed()
    };
    let v = line(&c, &AccessLogSpec::default());
    assert_eq!(v["path"], "/a\"b\\c\n\u{0}d");
    assert_eq!(v["host"], "h\r\nx-injected: 1");
    assert_eq!(v["request_id"], "id\"}");
}

/// A sample key kept at `rate` and one dropped at it.
fn keys(rate: f64) -> (u64, u64) {
    let t = sample::threshold(rate);
    (t, t - 1)
}

#[test]
fn sampling_follows_the_rate_and_the_route_overrides_it() {
    let spec = AccessLogSpec {
        sample_rate: 0.5,
        ..AccessLogSpec::default()
    };
    let (kept, dropped) = keys(0.5);
    let ok = |key| Completed {
        sample_key: key,
        ..completed()
    };
    assert!(should_log(&ok(kept), &spec, None));
    assert!(!should_log(&ok(dropped), &spec, None));
    // The route's log_sample_rate replaces the default, in both directions.
    assert!(!should_log(&ok(kept), &spec, Some(0.0)));
    assert!(should_log(&ok(dropped), &spec, Some(1.0)));
    let off = AccessLogSpec {
        sample_rate: 0.0,
        ..AccessLogSpec::default()
    };
    assert!(!should_log(&ok(u64::MAX), &off, None));
    let all = AccessLogSpec::default();
    assert!(should_log(&ok(0), &all, None));
}

#[test]
fn errors_are_logged_at_rate_zero_unless_always_log_errors_is_off() {
    let spec = AccessLogSpec {
        sample_rate: 0.0,
        ..AccessLogSpec::default()
    };
    let with = |status, source| Completed {
        status,
        source,
        ..completed()
    };
    // Every 5xx, whoever produced it.
    assert!(should_log(&with(502, Source::Gateway), &spec, Some(0.0)));
    assert!(should_log(&with(500, Source::Upstream), &spec, None));
    assert!(should_log(&with(503, Source::Cache), &spec, None));
    // Every refusal the gateway generated.
    for status in [400, 401, 403, 404, 405, 413, 429] {
        assert!(
            should_log(&with(status, Source::Gateway), &spec, Some(0.0)),
            "{status}"
        );
    }
    // Not the upstream's own 4xx, nor successes.
    assert!(!should_log(&with(404, Source::Upstream), &spec, None));
    assert!(!should_log(&with(200, Source::Gateway), &spec, None));
    assert!(!should_log(&with(304, Source::Cache), &spec, None));
    let quiet = AccessLogSpec {
        always_log_errors: false,
        ..spec
    };
    assert!(!should_log(&with(502, Source::Gateway), &quiet, None));
    assert!(!should_log(&with(401, Source::Gateway), &quiet, None));
}

#[test]
fn client_controlled_members_are_cut_to_a_bounded_size() {
    use crate::observe::access_log::{CLIPPED_MARK, LOGGED_TEXT_MAX};
    let long_path = format!("/{}", "é".repeat(LOGGED_TEXT_MAX));
    let long_query = format!(
        "a={}&access_token=secret-value",
        "x".repeat(3 * LOGGED_TEXT_MAX)
    );
    let long_value = format!(
        "{} eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig",
        "\\".repeat(8 * LOGGED_TEXT_MAX)
    );
    let headers = [("x-client-version", long_value.as_str())];
    let mut c = completed();
    c.path = &long_path;
    c.query = Some(&long_query);
    let ua = "u".repeat(5 * LOGGED_TEXT_MAX);
    c.client.user_agent = Some(&ua);
    c.request_headers = &headers;
    let spec = AccessLogSpec {
        fields: vec![LogField::UserAgent],
        request_headers: vec!["x-client-version".into()],
        ..AccessLogSpec::default()
    };
    let v = line(&c, &spec);
    for member in [
        &v["path"],
        &v["query"],
        &v["user_agent"],
        &v["request_headers"]["x-client-version"],
    ] {
        let text = member.as_str().unwrap();
        assert!(
            text.len() <= LOGGED_TEXT_MAX + CLIPPED_MARK.len(),
            "{}",
            text.len()
        );
        assert!(text.ends_with(CLIPPED_MARK));
    }
    // Cut at a character boundary, and never before the redaction: the credential that a cut
    // would have hidden is not there either.
    assert!(v["path"].as_str().unwrap().starts_with("/éé"));
    let whole = serde_json::to_string(&v).unwrap();
    assert!(!whole.contains("secret-value") && !whole.contains("eyJzdWIi"));
    // Short members are kept as they are.
    let v = line(&completed(), &spec);
    assert_eq!(v["path"], "/v1/users/42");
}

/// The path and the User-Agent are the client's text as much as a logged header is: a refused
/// path keeps its `;` parameters as sent, and a token may be anywhere in either.
#[test]
fn the_path_and_the_user_agent_are_scrubbed_as_header_values_are() {
    let spec = AccessLogSpec {
        fields: vec![LogField::UserAgent],
        ..AccessLogSpec::default()
    };
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTRUNSRVQxIn0.U0VDUkVUMXNpZw";
    for (path, ua) in [
        ("/v1/users;access_token=SECRET1", "curl/8.5"),
        (&*format!("/v1/verify/{jwt}"), "curl/8.5"),
        ("/v1/users", "app/1.0 (Authorization: Bearer SECRET1)"),
        ("/v1/users", "gwk_SECRET1"),
        // Percent-encoded: `;access_token=` as an upstream that decodes the path reads it.
        ("/v1/users%3Baccess_token%3DSECRET1", "curl/8.5"),
        ("/v1/users", "app/1.0 (password=SECRET1)"),
    ] {
        let c = Completed {
            path,
            client: Client {
                user_agent: Some(ua),
                ..completed().client
            },
            ..completed()
        };
        let text = AccessRecord::new(&c, &spec, &Redactor::default()).to_json();
        assert!(!text.contains("SECRET1"), "{text}");
        assert!(!text.contains("U0VDUkVUMX"), "{text}");
    }
    // What holds nothing credential-shaped is kept as it is.
    let v = line(&completed(), &spec);
    assert_eq!(
        (&v["path"], &v["user_agent"]),
        (&json!("/v1/users/42"), &json!("curl/8.5"))
    );
}
