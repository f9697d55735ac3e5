//! The traffic-policy sections of the configuration contract (`cors`, `ip_rules`, a route's
//! `cors` and `ip_rules`, `settings.consumer_header`): defaults, what is accepted, and every
//! mistake refused at its JSON path with a reason, all errors of a document at once.

use edge_gateway::config::{Config, ConfigError, IpNet, OriginPattern};
use serde_json::{json, Value};

mod common;
use common::{accepts, merge};

/// The smallest valid document with a CORS policy `web` and an IP rule set `office`, both
/// used by route `r`, and an API-key scheme `partners`.
fn base() -> Value {
    json!({
        "version": 1,
        "upstreams": { "users": { "targets": [ { "url": "https://users.internal.example" } ] } },
        "auth": { "partners": { "type": "api_key", "header": "x-api-key" } },
        "cors": { "web": { "origins": ["https://app.example.com"] } },
        "ip_rules": { "office": { "allow": ["203.0.113.0/24"] } },
        "routes": [ { "id": "r", "path": "/r", "upstream": "users", "auth": ["partners"],
                      "cors": "web", "ip_rules": ["office"] } ]
    })
}

fn with(patch: Value) -> String {
    let mut d = base();
    let route = patch.get("routes").and_then(|r| r.get(0)).cloned();
    let mut rest = patch;
    if let (Some(route), Some(obj)) = (route, rest.as_object_mut()) {
        // `routes: [patch]` patches the base's one route (a merge patch replaces arrays).
        obj.remove("routes");
        merge(&mut d["routes"][0], route);
    }
    merge(&mut d, rest);
    d.to_string()
}

fn errors(doc: &str) -> Vec<ConfigError> {
    match Config::from_json(doc) {
        Ok(_) => panic!("expected the document to be refused:\n{doc}"),
        Err(e) => e.0,
    }
}

/// `patch` must be refused with exactly one error, at `path`, containing `fragment`.
fn refused(patch: Value, path: &str, fragment: &str) {
    let doc = with(patch);
    let e = errors(&doc);
    assert_eq!(e.len(), 1, "expected one error for {doc}:\n{e:#?}");
    assert_eq!(e[0].path, path, "{e:#?}");
    assert!(
        e[0].message.contains(fragment),
        "{path}: {:?} lacks {fragment:?}",
        e[0].message
    );
}

#[test]
fn defaults_and_accepted_fields() {
    let c = accepts(&with(json!({})));
    assert_eq!(c.settings.consumer_header, "x-consumer");
    let p = &c.cors[0];
    assert_eq!(p.name, "web");
    assert_eq!(
        p.origins,
        vec![OriginPattern::Exact("https://app.example.com".into())]
    );
    assert_eq!((p.methods, p.credentials, p.max_age_s), (None, false, 600));
    assert_eq!(c.routes[0].cors, Some(0));
    assert_eq!(c.routes[0].ip_rules, vec![0]);
    assert_eq!(
        c.ip_rules[0].allow,
        vec![IpNet::parse("203.0.113.0/24").unwrap()]
    );

    let c = accepts(&with(json!({
        "settings": { "consumer_header": "X-Gateway-Consumer" },
        "cors": { "web": { "origins": ["https://*.example.com", "http://localhost:3000"],
                           "methods": ["GET", "POST"], "headers": ["Authorization", "content-type"],
                           "expose_headers": ["RateLimit"], "credentials": true, "max_age_s": 0 },
                  "open": { "origins": ["*"], "headers": ["*"] } },
        "ip_rules": { "office": { "allow": ["2001:db8::/32", "::ffff:198.51.100.0/120"],
                                  "deny": ["0.0.0.0/0"], "allow_countries": ["DE", "T1"],
                                  "deny_countries": ["XX"], "allow_asns": [1], "deny_asns": [4294967295u64] } }
    })));
    assert_eq!(c.settings.consumer_header, "x-gateway-consumer");
    let policy = |name: &str| c.cors.iter().find(|p| p.name == name).unwrap();
    assert_eq!(policy("web").headers, ["authorization", "content-type"]);
    assert_eq!(policy("web").expose_headers, ["ratelimit"]);
    assert!(policy("open").any_origin && policy("open").any_header);
    // A mapped rule is stored as the IPv4 network it maps.
    assert_eq!(
        c.ip_rules[0].allow[1],
        IpNet::parse("198.51.100.0/24").unwrap()
    );
}

#[test]
fn cors_origins_are_refused_when_unsafe_or_malformed() {
    let origins = |list: Value| json!({ "cors": { "web": { "origins": list } } });
    refused(
        json!({ "cors": { "web": { "origins": ["*"], "credentials": true } } }),
        "cors.web.origins[0]",
        "cannot be used with \"credentials\": true",
    );
    refused(
        origins(json!(["null"])),
        "cors.web.origins[0]",
        "never accepted",
    );
    refused(
        origins(json!([])),
        "cors.web.origins",
        "at least one origin",
    );
    refused(
        origins(json!(["https://app.example.com/"])),
        "cors.web.origins[0]",
        "write \"https://app.example.com\"",
    );
    refused(
        origins(json!(["https://App.Example.com"])),
        "cors.web.origins[0]",
        "lower-case",
    );
    refused(
        origins(json!(["https://app.example.com:443"])),
        "cors.web.origins[0]",
        "default port",
    );
    refused(
        origins(json!(["app.example.com"])),
        "cors.web.origins[0]",
        "not an origin",
    );
    refused(
        origins(json!(["https://*.com"])),
        "cors.web.origins[0]",
        "two labels",
    );
    refused(
        origins(json!(["https://a.*.example.com"])),
        "cors.web.origins[0]",
        "first label",
    );
    refused(
        origins(json!([
            "https://app.example.com",
            "https://app.example.com"
        ])),
        "cors.web.origins[1]",
        "listed twice",
    );
    refused(
        origins(json!(["*", "https://app.example.com"])),
        "cors.web.origins",
        "already allows every origin",
    );
    refused(
        json!({ "cors": { "web": { "origins": null } } }),
        "cors.web",
        "missing required field \"origins\"",
    );
}

#[test]
fn cors_fields_are_checked() {
    let field = |k: &str, v: Value| json!({ "cors": { "web": { k: v } } });
    refused(
        field("methods", json!(["GET", "FETCH"])),
        "cors.web.methods[1]",
        "unsupported method",
    );
    refused(
        field("methods", json!([])),
        "cors.web.methods",
        "at least one method",
    );
    refused(
        field("headers", json!(["x y"])),
        "cors.web.headers[0]",
        "not a valid header name",
    );
    refused(
        field("headers", json!(["X-A", "x-a"])),
        "cors.web.headers[1]",
        "listed twice",
    );
    refused(
        json!({ "cors": { "web": { "headers": ["*"], "credentials": true } } }),
        "cors.web.headers[0]",
        "cannot be used with \"credentials\": true",
    );
    refused(
        field("expose_headers", json!(["a:b"])),
        "cors.web.expose_headers[0]",
        "not a valid header name",
    );
    refused(
        field("max_age_s", json!(86401)),
        "cors.web.max_age_s",
        "between 0 and 86400",
    );
    refused(
        field("credentials", json!("yes")),
        "cors.web.credentials",
        "true or false",
    );
    refused(
        field("origin", json!([])),
        "cors.web.origin",
        "did you mean \"origins\"",
    );
    refused(
        json!({ "routes": [ { "cors": "wbe" } ] }),
        "routes[0].cors",
        "unknown CORS policy \"wbe\" (did you mean \"web\"?)",
    );
    refused(
        json!({ "routes": [ { "cors": ["web"] } ] }),
        "routes[0].cors",
        "expected a string",
    );
    // A fixed CORS header on a route with a policy would reach the origins it refuses.
    refused(
        json!({ "routes": [ { "response_headers": { "set": { "Access-Control-Allow-Origin": "*" } } } ] }),
        "routes[0].response_headers",
        "header \"access-control-allow-origin\" is decided by the route's CORS policy",
    );
    refused(
        json!({ "routes": [ { "response_headers": { "set": { "access-control-allow-credentials": "true" } } } ] }),
        "routes[0].response_headers",
        "decided by the route's CORS policy",
    );
    // Without a policy the route's own headers are the operator's CORS, as before.
    let mut plain = base();
    plain["routes"][0].as_object_mut().unwrap().remove("cors");
    plain["routes"][0]["response_headers"] =
        json!({ "set": { "access-control-allow-origin": "*" } });
    accepts(&plain.to_string());
    refused(
        json!({ "cors": { "bad name": { "origins": ["*"] } } }),
        "cors[\"bad name\"]",
        "name must be",
    );
}

#[test]
fn ip_rules_are_refused_when_they_would_not_mean_what_they_say() {
    let rule = |k: &str, v: Value| json!({ "ip_rules": { "office": { "allow": null, k: v } } });
    refused(
        rule("deny", json!(["10.0.0.1/8"])),
        "ip_rules.office.deny[0]",
        "did you mean \"10.0.0.0/8\"",
    );
    refused(
        rule("deny", json!(["2001:db8::1/32"])),
        "ip_rules.office.deny[0]",
        "did you mean \"2001:db8::/32\"",
    );
    refused(
        rule("deny", json!(["10.0.0.0/33"])),
        "ip_rules.office.deny[0]",
        "0 to 32",
    );
    refused(
        rule("deny", json!(["example.com"])),
        "ip_rules.office.deny[0]",
        "not an IPv4 or IPv6",
    );
    refused(
        rule("deny", json!([])),
        "ip_rules.office.deny",
        "at least one entry",
    );
    refused(
        rule("deny", json!(["10.0.0.0/8", "10.0.0.0/8"])),
        "ip_rules.office.deny[1]",
        "listed twice",
    );
    refused(
        rule("deny_countries", json!(["de"])),
        "ip_rules.office.deny_countries[0]",
        "(write \"DE\")",
    );
    refused(
        rule("allow_countries", json!(["DEU"])),
        "ip_rules.office.allow_countries[0]",
        "ISO 3166-1 alpha-2",
    );
    refused(
        rule("deny_asns", json!([0])),
        "ip_rules.office.deny_asns[0]",
        "between 1 and 4294967295",
    );
    refused(
        rule("deny_asns", json!(["AS64496"])),
        "ip_rules.office.deny_asns[0]",
        "expected an integer",
    );
    refused(
        rule("deny_asns", json!(64496)),
        "ip_rules.office.deny_asns",
        "expected an array",
    );
    refused(
        json!({ "ip_rules": { "office": { "allow": null } } }),
        "ip_rules.office",
        "at least one of",
    );
    refused(
        json!({ "ip_rules": { "office": { "allows": [] } } }),
        "ip_rules.office.allows",
        "did you mean \"allow\"",
    );
    refused(
        json!({ "routes": [ { "ip_rules": ["offise"] } ] }),
        "routes[0].ip_rules[0]",
        "unknown IP rule set \"offise\" (did you mean \"office\"?)",
    );
    refused(
        json!({ "routes": [ { "ip_rules": ["office", "office"] } ] }),
        "routes[0].ip_rules[1]",
        "listed twice",
    );
    refused(
        json!({ "routes": [ { "ip_rules": [] } ] }),
        "routes[0].ip_rules",
        "at least one",
    );
}

#[test]
fn the_consumer_header_is_the_gateways_alone() {
    refused(
        json!({ "settings": { "consumer_header": "x forwarded" } }),
        "settings.consumer_header",
        "not a valid header name",
    );
    refused(
        json!({ "settings": { "consumer_header": "X-Forwarded-For" } }),
        "settings.consumer_header",
        "managed by the gateway",
    );
    refused(
        json!({ "settings": { "consumer_header": "x-request-id" } }),
        "settings.consumer_header",
        "request_id_header",
    );
    refused(
        json!({ "routes": [ { "request_headers": { "set": { "X-Consumer": "admin" } } } ] }),
        "routes[0].request_headers",
        "settings.consumer_header",
    );
    refused(
        json!({ "auth": { "idp": { "type": "jwt", "issuer": "https://id.example/", "audiences": ["a"],
                                   "jwks_url": "https://id.example/jwks", "algorithms": ["RS256"],
                                   "forward_claims": { "sub": "x-consumer" } } } }),
        "auth.idp.forward_claims",
        "settings.consumer_header",
    );
}

#[test]
fn every_mistake_is_reported_at_once() {
    let e = errors(&with(json!({
        "cors": { "web": { "origins": ["null", "https://x.example/"], "max_age_s": -1 } },
        "ip_rules": { "office": { "allow": ["10.0.0.1/8"], "deny_countries": ["tor"] } },
        "routes": [ { "cors": "nope", "ip_rules": ["nope"] } ]
    })));
    let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "cors.web.max_age_s",
            "cors.web.origins[0]",
            "cors.web.origins[1]",
            "ip_rules.office.allow[0]",
            "ip_rules.office.deny_countries[0]",
            "routes[0].cors",
            "routes[0].ip_rules[0]",
        ],
        "{e:#?}"
    );
}
