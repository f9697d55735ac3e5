//! The `observability` section of the configuration contract, seen from outside the crate:
//! defaults, every field accepted as documented, and every mistake refused with its JSON path,
//! all errors of a document at once. Same style as `config_validation.rs`: small documents,
//! each a minimal valid document with one mistake merged in.

use edge_gateway::config::{
    ClientIpMode, Config, LogField, MetricsIndex, MetricsSpec, RouteObservability,
};
use serde_json::{json, Value};

mod common;
use common::{accepts, errors, merge};

/// The smallest valid document, with an API-key scheme `partners` (header `x-api-key`), a
/// query-key scheme `legacy` and a JWT scheme, so credential headers have owners.
fn base() -> Value {
    json!({
        "version": 1,
        "upstreams": { "users": { "targets": [ { "url": "https://users.internal.example" } ] } },
        "auth": {
            "partners": { "type": "api_key", "header": "x-api-key" },
            "legacy": { "type": "api_key", "query": "api_key" },
            "users-jwt": {
                "type": "jwt", "issuer": "https://id.example.com/", "audiences": ["a"],
                "jwks_url": "https://id.example.com/jwks", "algorithms": ["RS256"],
                "token_query": "access_token"
            }
        },
        "routes": [ { "id": "r", "path": "/r", "upstream": "users", "auth": "none" } ]
    })
}

/// The minimal document with `observability` set to `section`.
fn obs(section: Value) -> String {
    let mut d = base();
    d["observability"] = section;
    d.to_string()
}

/// The minimal document with the route's `observability` set to `section`.
fn route_obs(section: Value) -> String {
    let mut d = base();
    d["routes"][0]["observability"] = section;
    d.to_string()
}

/// (case, document, path of the error, fragments its message must contain)
type Case = (&'static str, String, &'static str, Vec<&'static str>);

fn check(cases: Vec<Case>) {
    let total = cases.len();
    let mut failures = Vec::new();
    for (name, doc, path, fragments) in cases {
        match Config::from_json(&doc) {
            Ok(_) => failures.push(format!("{name}: accepted, expected {path:?}\n{doc}")),
            Err(e) => {
                let found =
                    e.0.iter()
                        .any(|e| e.path == path && fragments.iter().all(|f| e.message.contains(f)));
                if !found {
                    failures.push(format!(
                        "{name}: expected {path:?}: ...{}...\n  got: {e}",
                        fragments.join("...")
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn without_the_section_the_contract_defaults_apply() {
    let c = accepts(&base().to_string());
    let o = &c.observability;
    assert_eq!(o.access_log.sample_rate, 1.0);
    assert!(o.access_log.always_log_errors);
    assert_eq!(o.access_log.client_ip, ClientIpMode::Truncate);
    assert!(o.access_log.fields.is_empty());
    assert!(o.access_log.request_headers.is_empty());
    assert!(o.access_log.redact_query.is_empty());
    assert_eq!(o.metrics.binding, "GATEWAY_METRICS");
    assert_eq!(o.metrics.binding, MetricsSpec::DEFAULT_BINDING);
    assert!(!o.metrics.binding_explicit);
    assert_eq!(o.metrics.index, MetricsIndex::Route);
    assert_eq!(o.metrics.sample_rate, 1.0);
    assert_eq!(o.tracing.sample_rate, 1.0);
    assert!(o.tracing.parent_based);
    assert!(!o.tracing.response_traceparent);
    assert_eq!(c.routes[0].observability, RouteObservability::default());
    assert!(c.routes[0].observability.metrics && c.routes[0].observability.tracing);
    assert_eq!(c.routes[0].observability.log_sample_rate, None);
}

#[test]
fn the_contract_example_is_read_as_written() {
    let c = accepts(&obs(json!({
        "access_log": { "sample_rate": 0.25, "always_log_errors": false, "client_ip": "full",
                        "fields": ["user_agent", "country", "asn", "colo"],
                        "request_headers": ["X-Client-Version"], "redact_query": ["sig"] },
        "metrics":    { "binding": "MY_METRICS", "index": "consumer", "sample_rate": 0.5 },
        "tracing":    { "sample_rate": 0, "parent_based": false, "response_traceparent": true }
    })));
    let o = &c.observability;
    assert_eq!(o.access_log.sample_rate, 0.25);
    assert!(!o.access_log.always_log_errors);
    assert_eq!(o.access_log.client_ip, ClientIpMode::Full);
    assert_eq!(
        o.access_log.fields,
        [
            LogField::UserAgent,
            LogField::Country,
            LogField::Asn,
            LogField::Colo
        ]
    );
    assert_eq!(o.access_log.request_headers, ["x-client-version"]);
    assert_eq!(o.access_log.redact_query, ["sig"]);
    assert_eq!(o.metrics.binding, "MY_METRICS");
    assert!(o.metrics.binding_explicit);
    assert_eq!(o.metrics.index, MetricsIndex::Consumer);
    assert_eq!(o.metrics.sample_rate, 0.5);
    assert_eq!(o.tracing.sample_rate, 0.0);
    assert!(!o.tracing.parent_based);
    assert!(o.tracing.response_traceparent);

    for (mode, want) in [
        ("omit", ClientIpMode::Omit),
        ("truncate", ClientIpMode::Truncate),
    ] {
        let c = accepts(&obs(json!({ "access_log": { "client_ip": mode } })));
        assert_eq!(c.observability.access_log.client_ip, want);
    }
    let c = accepts(&obs(json!({ "metrics": { "index": "host" } })));
    assert_eq!(c.observability.metrics.index, MetricsIndex::Host);
    let c = accepts(&obs(json!({ "metrics": { "binding": "GATEWAY_METRICS" } })));
    assert!(c.observability.metrics.binding_explicit);
}

#[test]
fn route_overrides_are_read() {
    let c = accepts(&route_obs(
        json!({ "log_sample_rate": 0.1, "metrics": false, "tracing": false }),
    ));
    let r = c.routes[0].observability;
    assert_eq!(r.log_sample_rate, Some(0.1));
    assert!(!r.metrics);
    assert!(!r.tracing);
    let c = accepts(&route_obs(json!({ "log_sample_rate": 1 })));
    assert_eq!(c.routes[0].observability.log_sample_rate, Some(1.0));
    accepts(&route_obs(json!({})));
}

#[test]
fn credential_headers_are_refused_in_request_headers_and_the_reason_names_the_scheme() {
    let headers = |list: Value| obs(json!({ "access_log": { "request_headers": list } }));
    check(vec![
        (
            "authorization",
            headers(json!(["authorization"])),
            "observability.access_log.request_headers[0]",
            vec!["\"authorization\"", "carries credentials", "never logged"],
        ),
        (
            "Authorization, any case",
            headers(json!(["x-ok", "Authorization"])),
            "observability.access_log.request_headers[1]",
            vec!["\"authorization\"", "never logged"],
        ),
        (
            "proxy-authorization",
            headers(json!(["proxy-authorization"])),
            "observability.access_log.request_headers[0]",
            vec!["carries credentials"],
        ),
        (
            "cookie",
            headers(json!(["Cookie"])),
            "observability.access_log.request_headers[0]",
            vec!["\"cookie\"", "carries credentials"],
        ),
        (
            "set-cookie",
            headers(json!(["set-cookie"])),
            "observability.access_log.request_headers[0]",
            vec!["\"set-cookie\""],
        ),
        (
            "a Cloudflare Access service token's secret",
            headers(json!(["CF-Access-Client-Secret"])),
            "observability.access_log.request_headers[0]",
            vec!["\"cf-access-client-secret\"", "carries credentials"],
        ),
        (
            "an API-key scheme's header",
            headers(json!(["X-API-Key"])),
            "observability.access_log.request_headers[0]",
            vec![
                "\"x-api-key\"",
                "API key of auth scheme \"partners\"",
                "never logged",
            ],
        ),
        (
            "not a header name",
            headers(json!(["x client"])),
            "observability.access_log.request_headers[0]",
            vec!["not a valid header name"],
        ),
        (
            "twice",
            headers(json!(["x-a", "X-A"])),
            "observability.access_log.request_headers[1]",
            vec!["listed twice"],
        ),
        (
            "not a list",
            headers(json!("x-a")),
            "observability.access_log.request_headers",
            vec!["expected an array of strings"],
        ),
    ]);
}

#[test]
fn rates_outside_zero_to_one_are_refused_everywhere() {
    let mut cases: Vec<Case> = Vec::new();
    for (bad, fragment) in [
        (json!(1.5), "must be between 0 and 1, found 1.5"),
        (json!(-0.1), "must be between 0 and 1, found -0.1"),
        (json!(2), "must be between 0 and 1, found 2"),
        (
            json!("0.5"),
            "expected a number between 0 and 1, found a string",
        ),
        (
            json!(true),
            "expected a number between 0 and 1, found a boolean",
        ),
        (json!(null), "expected a number between 0 and 1, found null"),
    ] {
        cases.push((
            "access_log.sample_rate",
            obs(json!({ "access_log": { "sample_rate": bad.clone() } })),
            "observability.access_log.sample_rate",
            vec![fragment],
        ));
        cases.push((
            "metrics.sample_rate",
            obs(json!({ "metrics": { "sample_rate": bad.clone() } })),
            "observability.metrics.sample_rate",
            vec![fragment],
        ));
        cases.push((
            "tracing.sample_rate",
            obs(json!({ "tracing": { "sample_rate": bad.clone() } })),
            "observability.tracing.sample_rate",
            vec![fragment],
        ));
        cases.push((
            "route log_sample_rate",
            route_obs(json!({ "log_sample_rate": bad })),
            "routes[0].observability.log_sample_rate",
            vec![fragment],
        ));
    }
    check(cases);
}

#[test]
fn unknown_values_and_fields_are_refused_with_hints() {
    check(vec![
        (
            "unknown log field, close",
            obs(json!({ "access_log": { "fields": ["user-agent"] } })),
            "observability.access_log.fields[0]",
            vec![
                "unknown field \"user-agent\"",
                "did you mean \"user_agent\"",
            ],
        ),
        (
            "unknown log field, far",
            obs(json!({ "access_log": { "fields": ["colo", "referer"] } })),
            "observability.access_log.fields[1]",
            vec![
                "unknown field \"referer\"",
                "expected one of: user_agent, country, asn, colo",
            ],
        ),
        (
            "log field twice",
            obs(json!({ "access_log": { "fields": ["asn", "asn"] } })),
            "observability.access_log.fields[1]",
            vec!["listed twice"],
        ),
        (
            "index",
            obs(json!({ "metrics": { "index": "routes" } })),
            "observability.metrics.index",
            vec!["unknown index \"routes\"", "did you mean \"route\""],
        ),
        (
            "index, far",
            obs(json!({ "metrics": { "index": "path" } })),
            "observability.metrics.index",
            vec!["expected one of: route, consumer, host"],
        ),
        (
            "client_ip",
            obs(json!({ "access_log": { "client_ip": "truncated" } })),
            "observability.access_log.client_ip",
            vec![
                "unknown client_ip \"truncated\"",
                "did you mean \"truncate\"",
            ],
        ),
        (
            "client_ip, far",
            obs(json!({ "access_log": { "client_ip": "hash" } })),
            "observability.access_log.client_ip",
            vec!["expected one of: full, truncate, omit"],
        ),
        (
            "client_ip not a string",
            obs(json!({ "access_log": { "client_ip": false } })),
            "observability.access_log.client_ip",
            vec!["expected a string, found a boolean"],
        ),
        (
            "unknown section member",
            obs(json!({ "logs": {} })),
            "observability.logs",
            vec![
                "unknown field \"logs\"",
                "expected one of: access_log, metrics, tracing",
            ],
        ),
        (
            "unknown access_log member",
            obs(json!({ "access_log": { "sample": 1 } })),
            "observability.access_log.sample",
            vec!["unknown field \"sample\"", "did you mean \"sample_rate\""],
        ),
        (
            "unknown metrics member",
            obs(json!({ "metrics": { "dataset": "x" } })),
            "observability.metrics.dataset",
            vec!["unknown field \"dataset\""],
        ),
        (
            "unknown tracing member",
            obs(json!({ "tracing": { "parent_based_sampling": true } })),
            "observability.tracing.parent_based_sampling",
            vec!["unknown field"],
        ),
        (
            "unknown route member",
            route_obs(json!({ "log_sample_rates": 0.1 })),
            "routes[0].observability.log_sample_rates",
            vec![
                "unknown field \"log_sample_rates\"",
                "did you mean \"log_sample_rate\"",
            ],
        ),
        (
            "route member type",
            route_obs(json!({ "metrics": "no" })),
            "routes[0].observability.metrics",
            vec!["expected true or false, found a string"],
        ),
        (
            "section type",
            obs(json!([])),
            "observability",
            vec!["expected an object, found an array"],
        ),
        (
            "route section type",
            route_obs(json!(true)),
            "routes[0].observability",
            vec!["expected an object, found a boolean"],
        ),
        (
            "always_log_errors type",
            obs(json!({ "access_log": { "always_log_errors": 1 } })),
            "observability.access_log.always_log_errors",
            vec!["expected true or false"],
        ),
        (
            "redact_query empty name",
            obs(json!({ "access_log": { "redact_query": [""] } })),
            "observability.access_log.redact_query[0]",
            vec!["must not be empty"],
        ),
        (
            "redact_query twice",
            obs(json!({ "access_log": { "redact_query": ["sig", "sig"] } })),
            "observability.access_log.redact_query[1]",
            vec!["listed twice"],
        ),
    ]);
}

#[test]
fn metrics_binding_must_be_a_binding_name() {
    let binding = |b: Value| obs(json!({ "metrics": { "binding": b } }));
    check(vec![
        (
            "dash",
            binding(json!("gateway-metrics")),
            "observability.metrics.binding",
            vec!["\"gateway-metrics\" is not a binding name"],
        ),
        (
            "empty",
            binding(json!("")),
            "observability.metrics.binding",
            vec!["is not a binding name"],
        ),
        (
            "leading digit",
            binding(json!("1METRICS")),
            "observability.metrics.binding",
            vec!["not starting with a digit"],
        ),
        (
            "space",
            binding(json!("MY METRICS")),
            "observability.metrics.binding",
            vec!["is not a binding name"],
        ),
        (
            "the config namespace",
            binding(json!("CONFIG")),
            "observability.metrics.binding",
            vec!["gateway uses for something else"],
        ),
        (
            "the rate limiter",
            binding(json!("RATE_LIMITER")),
            "observability.metrics.binding",
            vec!["gateway uses for something else"],
        ),
        (
            "not a string",
            binding(json!(7)),
            "observability.metrics.binding",
            vec!["expected a string, found a number"],
        ),
    ]);
}

#[test]
fn every_mistake_of_a_document_is_reported_at_once() {
    let mut d = base();
    d["observability"] = json!({
        "access_log": { "sample_rate": 2, "client_ip": "x", "request_headers": ["cookie"],
                        "fields": ["nope"] },
        "metrics": { "binding": "a-b", "index": "nope", "sample_rate": -1 },
        "tracing": { "sample_rate": 9, "parent_based": "yes" }
    });
    merge(
        &mut d["routes"][0],
        json!({ "observability": { "log_sample_rate": 3, "tracing": 0 } }),
    );
    let paths: Vec<String> = errors(&d.to_string()).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        [
            "observability.access_log.sample_rate",
            "observability.access_log.client_ip",
            "observability.access_log.fields[0]",
            "observability.access_log.request_headers[0]",
            "observability.metrics.binding",
            "observability.metrics.index",
            "observability.metrics.sample_rate",
            "observability.tracing.sample_rate",
            "observability.tracing.parent_based",
            "routes[0].observability.log_sample_rate",
            "routes[0].observability.tracing",
        ]
    );
}

#[test]
fn an_invalid_route_observability_makes_the_route_invalid_but_others_are_still_checked() {
    let mut d = base();
    d["routes"] = json!([
        { "id": "a", "path": "/a", "upstream": "users", "auth": "none",
          "observability": { "metrics": "x" } },
        { "id": "b", "path": "/b", "upstream": "nowhere", "auth": "none" }
    ]);
    let e = errors(&d.to_string());
    assert!(
        e.iter()
            .any(|(p, _)| p == "routes[0].observability.metrics"),
        "{e:?}"
    );
    assert!(e.iter().any(|(p, _)| p == "routes[1].upstream"), "{e:?}");
}

#[test]
fn validation_errors_never_quote_a_password() {
    let mut d = base();
    d["upstreams"]["users"]["targets"] = json!([
        { "url": "https://admin:hunter2secret@users.internal.example" },
        { "url": "ftp://admin:hunter2secret@files.example" },
        { "url": "admin:hunter2secret@users.internal.example" }
    ]);
    d["auth"]["users-jwt"]["jwks_url"] = json!("https://u:hunter2secret@id.example.com/jwks");
    let e = errors(&d.to_string());
    assert_eq!(e.len(), 4, "{e:?}");
    for (path, message) in &e {
        assert!(!message.contains("hunter2secret"), "{path}: {message}");
        assert!(message.contains("REDACTED@"), "{path}: {message}");
    }
}

#[test]
fn a_compiled_gateway_carries_the_redactor_of_its_configuration() {
    let mut d = base();
    d["observability"] = json!({ "access_log": { "redact_query": ["sig"] } });
    let g = edge_gateway::gateway::Gateway::compile(&d.to_string()).expect("compiles");
    assert_eq!(
        g.redactor.query("api_key=k&access_token=t&sig=s&page=2"),
        "api_key=REDACTED&access_token=REDACTED&sig=REDACTED&page=2"
    );
    assert!(g.redactor.is_credential_header("X-API-Key"));
    assert!(!g.redactor.text("x-api-key: gwk_abc").contains("abc"));
}
