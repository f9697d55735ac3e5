//! The configuration contract (`routes.json`, version 1) seen from outside the crate: every kind
//! of invalid document is refused with the JSON path of the mistake and a message that says
//! what is wrong, and valid documents are accepted.
//!
//! Most tests are tables of small documents, each a minimal valid document with one mistake
//! merged in (RFC 7386 merge patch: `null` removes a member, arrays are replaced whole). A table
//! reports every failing case at once.
//!
//! Tests marked `#[ignore = "BUG: ..."]` describe what the contract asks for and the validator
//! does not do yet.

use edge_gateway::config::{Config, Endpoint, HostPattern};
use edge_gateway::gateway::Gateway;
use serde_json::{json, Value};

mod common;
use common::{accepts, errors, merge, pairs};

// ---- document builders ------------------------------------------------------------------------

/// The smallest valid document: one upstream, one public route.
fn base() -> Value {
    json!({
        "version": 1,
        "upstreams": { "users": { "targets": [ { "url": "https://users.internal.example" } ] } },
        "routes": [ { "id": "r", "path": "/r", "upstream": "users", "auth": "none" } ]
    })
}

fn text(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("serialisable")
}

/// The minimal document with `patch` merged into it.
fn doc(patch: Value) -> String {
    let mut d = base();
    merge(&mut d, patch);
    text(&d)
}

/// The minimal document with its member `key` replaced by `value` (a merge cannot empty an object).
fn replaced(key: &str, value: Value) -> String {
    let mut d = base();
    d[key] = value;
    text(&d)
}

/// The minimal document with `patch` merged into its route.
fn route(patch: Value) -> String {
    route_in(json!({}), patch)
}

/// The minimal document with `doc_patch` merged into it and `route_patch` into its route.
fn route_in(doc_patch: Value, route_patch: Value) -> String {
    let mut d = base();
    merge(&mut d, doc_patch);
    merge(&mut d["routes"][0], route_patch);
    text(&d)
}

/// A public route on upstream `users` with `patch` merged in (for multi-route documents).
fn r(patch: Value) -> Value {
    let mut v = json!({ "upstream": "users", "auth": "none" });
    merge(&mut v, patch);
    v
}

/// The minimal document with these routes.
fn routes(list: Vec<Value>) -> String {
    let mut d = base();
    d["routes"] = Value::Array(list);
    text(&d)
}

/// The minimal document with `patch` merged into `settings`.
fn settings(patch: Value) -> String {
    doc(json!({ "settings": patch }))
}

/// The minimal document with `patch` merged into upstream `users`.
fn upstream(patch: Value) -> String {
    doc(json!({ "upstreams": { "users": patch } }))
}

/// The minimal document whose only target is `{"url": ...}` with `patch` merged in.
fn target(patch: Value) -> String {
    let mut t = json!({ "url": "https://users.internal.example" });
    merge(&mut t, patch);
    upstream(json!({ "targets": [t] }))
}

/// A published ROCA-vulnerable 2048-bit modulus (the `roca-detect` project's `mod03.txt`).
const ROCA_N: &str = "nc10IOQgwnCmgGDri1qnRXqfZkj4b6_tJ3XMH3muli8eY_G55RxV-epv3HMy6bAFjJ_y6x_ImFUCnPaq_iHmif6zisn_sS8c43G7XQ6armQWGrznS0JEv2jx7bRBH3VqCXyJKcFHQCReo1X4My0ao2u1DH3LRQXajeAuTlPTj43wYJfadSTfDfk9tI6sjMSvLToWJX6ysq3Ka6Rk5ZdPqSVQ0xsbq_Fh52ktALhuPdiG7KtKv74aj4zCY_9K9VzbRfQkmlGTkl9emD12LwtoAJQ-sCZ7CPQu0xHOH1yG6svIzk08t6L-4e9WQUI6HPQRTl7PUANKYKQSUjr55vSqEQ";
/// A normal 2048-bit modulus (the same project's `mod04.txt`).
const NORMAL_N: &str = "r2WWdhl_HbBtp6wRGgoOwXW4t-8HGS_80fa4VMMneF8af9PbfaRc1KMbKy5c4Ngjpo4oyK3xdHMWvszh_ldoBkA5rSBiJgyNGjTgWG3Om8EwkPzJ-4uLLAjtOujWGymBimaWiafZwdqwU7VX-40_nET6rT4YxV5zmwDTyRJlWLyOmAzSrzdxJu9bE3QTZ3S4vTcOPBwUnbOVyPmWlrYosQWUb-ogEG_iTRA6wGJmGpJI6MP2KOALMI0zlTqr5VUTLiGOdO9LV4cWtP5880Do5gSjGb9umVHhlCYB00KRAy21SZnQnl0Dbd41RK01JWu7l9Xj__04Fmwh6ukZlUiFOw";

/// The minimal document with an unused RS256 JWT scheme `j`, `patch` merged into it.
fn jwt(patch: Value) -> String {
    let mut s = json!({
        "type": "jwt",
        "issuer": "https://id.example.com/",
        "audiences": ["orders-api"],
        "jwks_url": "https://id.example.com/.well-known/jwks.json",
        "algorithms": ["RS256"]
    });
    merge(&mut s, patch);
    doc(json!({ "auth": { "j": s } }))
}

/// The minimal document with an unused API-key scheme `k` (header `x-api-key`), `patch` merged.
fn api_key(patch: Value) -> String {
    let mut s = json!({ "type": "api_key", "header": "x-api-key" });
    merge(&mut s, patch);
    doc(json!({ "auth": { "k": s } }))
}

/// The minimal document with an unused rate-limit policy `p`, `patch` merged into it.
fn policy(patch: Value) -> String {
    let mut p = json!({ "key": "ip", "limit": 10, "window_s": 1 });
    merge(&mut p, patch);
    doc(json!({ "rate_limits": { "p": p } }))
}

/// The minimal document whose route caches (`{"ttl_s": 60}` with `patch` merged in).
fn cache(patch: Value) -> String {
    let mut c = json!({ "ttl_s": 60 });
    merge(&mut c, patch);
    route(json!({ "cache": c }))
}

/// Declarations routes can refer to: JWT `users-jwt`, API key `partners`, and a policy of
/// every key kind.
fn declarations() -> Value {
    json!({
        "auth": {
            "users-jwt": {
                "type": "jwt",
                "issuer": "https://id.example.com/",
                "audiences": ["orders-api"],
                "jwks_url": "https://id.example.com/.well-known/jwks.json",
                "algorithms": ["ES256", "RS256"]
            },
            "partners": { "type": "api_key", "header": "x-api-key" }
        },
        "rate_limits": {
            "per-user": { "key": "claim:sub", "limit": 100, "window_s": 60 },
            "per-consumer": { "key": "consumer", "limit": 100, "window_s": 60 },
            "per-ip": { "key": "ip", "limit": 20, "window_s": 1, "burst": 40 },
            "per-key": { "key": "header:x-api-key", "limit": 20, "window_s": 1 },
            "orders": { "key": "route", "limit": 5000, "window_s": 60, "on_store_error": "deny" },
            "everyone": { "key": "global", "limit": 100000, "window_s": 60 }
        }
    })
}

/// The minimal document with [`declarations`] and `patch` merged into its route.
fn declared_route(patch: Value) -> String {
    route_in(declarations(), patch)
}

// ---- running documents ------------------------------------------------------------------------

/// The only error `doc` is refused with; panics unless there is exactly one.
fn sole_error(doc: &str) -> (String, String) {
    let mut e = errors(doc);
    assert_eq!(e.len(), 1, "expected exactly one error:\n{}", show(&e));
    e.remove(0)
}

/// The errors `Gateway::compile` reports; panics if the document compiles.
fn compile_errors(doc: &str) -> Vec<(String, String)> {
    match Gateway::compile(doc) {
        Ok(_) => panic!("expected Gateway::compile to fail, but it compiled:\n{doc}"),
        Err(e) => pairs(e),
    }
}

fn compiles(doc: &str) -> Gateway {
    Gateway::compile(doc)
        .unwrap_or_else(|e| panic!("expected the document to compile:\n{doc}\n{e}"))
}

fn show(errors: &[(String, String)]) -> String {
    errors
        .iter()
        .map(|(p, m)| format!("    {p:?}: {m}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One invalid document and the error it must produce.
struct Case {
    name: &'static str,
    doc: String,
    path: String,
    fragments: Vec<&'static str>,
}

/// `doc` must be refused with an error at exactly `path` whose message contains `fragment`.
fn case(name: &'static str, doc: String, path: &str, fragment: &'static str) -> Case {
    Case {
        name,
        doc,
        path: path.to_owned(),
        fragments: vec![fragment],
    }
}

impl Case {
    /// The same error's message must also contain `fragment`.
    fn and(mut self, fragment: &'static str) -> Case {
        self.fragments.push(fragment);
        self
    }
}

fn matches(error: &(String, String), path: &str, fragments: &[&str]) -> bool {
    error.0 == path && fragments.iter().all(|f| error.1.contains(f))
}

/// Runs every case through `Config::from_json` and reports all failures together.
fn check(cases: Vec<Case>) {
    let total = cases.len();
    let mut failures = Vec::new();
    for c in cases {
        match Config::from_json(&c.doc) {
            Ok(_) => failures.push(format!(
                "{}: accepted, expected {:?}: ...{}...\n{}",
                c.name,
                c.path,
                c.fragments.join("..."),
                c.doc
            )),
            Err(e) => {
                let errs = pairs(e);
                if !errs.iter().any(|e| matches(e, &c.path, &c.fragments)) {
                    failures.push(format!(
                        "{}: expected {:?}: ...{}...\n  got:\n{}",
                        c.name,
                        c.path,
                        c.fragments.join("..."),
                        show(&errs)
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

/// Every document must be accepted by `Config::from_json`.
fn check_valid(docs: Vec<(&'static str, String)>) {
    let failures: Vec<String> = docs
        .iter()
        .filter_map(|(name, d)| {
            Config::from_json(d)
                .err()
                .map(|e| format!("{name}: refused:\n{}\n{d}", show(&pairs(e))))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ---- the document as a whole ------------------------------------------------------------------

#[test]
fn the_minimal_document_is_valid() {
    let config = accepts(&doc(json!({})));
    assert_eq!(config.routes.len(), 1);
    assert_eq!(config.settings.reload_s, 10);
    assert_eq!(config.settings.request_id_header, "x-request-id");
    assert_eq!(config.settings.admin.path, "/__gateway");
    compiles(&doc(json!({})));
}

#[test]
fn json_syntax_errors_name_the_line() {
    let e = errors("{\n  \"version\": 1,\n  \"routes\": [,]\n}");
    assert_eq!(e.len(), 1, "{}", show(&e));
    assert_eq!(e[0].0, "");
    assert!(e[0].1.starts_with("invalid JSON: "), "{}", e[0].1);
    assert!(e[0].1.contains("line 3"), "{}", e[0].1);

    for (name, bad) in [
        ("empty", ""),
        ("truncated", "{\"version\": 1,"),
        ("trailing comma", "{\"version\": 1,}"),
        ("trailing text", "{\"version\": 1} x"),
        ("comment", "{\"version\": 1 // one\n}"),
        ("single quotes", "{'version': 1}"),
    ] {
        let e = errors(bad);
        assert!(
            e.len() == 1
                && e[0].0.is_empty()
                && e[0].1.starts_with("invalid JSON")
                && e[0].1.contains("line "),
            "{name}: {}",
            show(&e)
        );
    }
}

/// Text that is not the document as written: a byte-order mark (workerd's `text()` keeps it, so
/// a push or a KV value saved "UTF-8 with BOM" reaches the parser with it), and U+FFFD, which
/// is what every byte that is not UTF-8 becomes when workerd decodes a push body or a KV value.
/// Such a document is refused with the reason, not read with a value silently altered.
#[test]
fn a_bom_or_a_replacement_character_is_refused_with_the_reason() {
    let e = errors(&format!("\u{feff}{}", doc(json!({}))));
    assert!(
        e.len() == 1 && e[0].0.is_empty() && e[0].1.contains("byte-order mark"),
        "{}",
        show(&e)
    );
    // A header value whose `é` was saved in Latin-1 (byte 0xE9) and decoded as U+FFFD.
    let decoded = String::from_utf8_lossy(b"\"caf\xe9\"").into_owned();
    let text = route(json!({ "request_headers": { "set": { "x-a": "PLACEHOLDER" } } }))
        .replace("\"PLACEHOLDER\"", &decoded);
    let e = errors(&text);
    assert!(
        e.len() == 1
            && e[0].0.is_empty()
            && e[0].1.contains("U+FFFD")
            && e[0].1.contains("not UTF-8")
            && e[0].1.contains("line "),
        "{}",
        show(&e)
    );
    // Written as an escape, the character is meant: accepted.
    accepts(
        &route(json!({ "request_headers": { "set": { "x-a": "PLACEHOLDER" } } }))
            .replace("PLACEHOLDER", "caf\\ufffd"),
    );
}

/// Every error path names a member as `member_path` does: a scheme whose name holds a dot is
/// `auth["jwt.main"]`, never `auth.jwt.main`, which would be a member `main` of a scheme `jwt`.
#[test]
fn the_consumer_header_check_names_a_dotted_scheme_unambiguously() {
    let scheme = json!({
        "type": "jwt",
        "issuer": "https://id.example.com/",
        "audiences": ["orders-api"],
        "jwks_url": "https://id.example.com/.well-known/jwks.json",
        "algorithms": ["RS256"],
        "forward_claims": { "sub": "x-consumer" }
    });
    let e = errors(&doc(json!({ "auth": { "jwt.main": scheme } })));
    assert_eq!(
        e.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        vec!["auth[\"jwt.main\"].forward_claims"],
        "{}",
        show(&e)
    );
}

/// A small document can hold millions of mistakes (`"routes": [1, 1, …]`): 4 MB made 2 million
/// errors and 97 MB of error text, which the 422 answer, the log line and the health endpoint
/// would all carry (and a 25 MiB push would not fit a Worker's memory). The first errors are
/// listed and a last one counts the rest.
#[test]
fn a_document_with_very_many_mistakes_lists_the_first_and_counts_the_rest() {
    let items = vec!["1"; 100_000].join(",");
    let e = errors(&replaced(
        "routes",
        serde_json::from_str(&format!("[{items}]")).unwrap(),
    ));
    assert_eq!(e.len(), 101, "{:?}", e.last());
    assert_eq!(
        e[0],
        (
            "routes[0]".into(),
            "expected an object, found a number".into()
        )
    );
    assert_eq!(e[99].0, "routes[99]");
    assert_eq!(
        e[100],
        (
            "".into(),
            "and 99900 more errors (only the first 100 are listed)".into()
        )
    );
    // At the limit itself nothing is summarised.
    let items = vec!["1"; 100].join(",");
    let e = errors(&replaced(
        "routes",
        serde_json::from_str(&format!("[{items}]")).unwrap(),
    ));
    assert_eq!(e.len(), 100);
}

#[test]
fn duplicate_keys_are_refused_at_any_depth() {
    let cases = [
        (
            "root",
            "{\"version\": 1,\n\"version\": 1}",
            "\"version\"",
            "line 2",
        ),
        (
            "route",
            "{\"version\": 1, \"routes\": [\n {\"auth\": \"none\",\n  \"auth\": [\"x\"]}]}",
            "\"auth\"",
            "line 3",
        ),
        (
            "header rules",
            "{\"routes\": [{\"request_headers\": {\"set\": {\"x-a\": \"1\", \"x-a\": \"2\"}}}]}",
            "\"x-a\"",
            "line 1",
        ),
        (
            "upstream names",
            "{\"upstreams\": {\"u\": {}, \"u\": {}}}",
            "\"u\"",
            "line 1",
        ),
    ];
    for (name, text, key, line) in cases {
        let e = errors(text);
        assert!(
            e.len() == 1
                && e[0].0.is_empty()
                && e[0].1.contains("invalid JSON")
                && e[0].1.contains(&format!("duplicate key {key}"))
                && e[0].1.contains(line),
            "{name}: {}",
            show(&e)
        );
    }
}

#[test]
fn the_root_must_be_a_version_1_object() {
    check(vec![
        case(
            "array root",
            "[]".into(),
            "",
            "expected an object, found an array",
        ),
        case(
            "null root",
            "null".into(),
            "",
            "expected an object, found null",
        ),
        case(
            "string root",
            "\"x\"".into(),
            "",
            "expected an object, found a string",
        ),
        case(
            "number root",
            "1".into(),
            "",
            "expected an object, found a number",
        ),
        case(
            "version missing",
            doc(json!({ "version": null })),
            "",
            "missing required field \"version\"",
        ),
        case(
            "version 2",
            doc(json!({ "version": 2 })),
            "version",
            "unsupported version",
        )
        .and("version 1"),
        case(
            "version \"1\"",
            doc(json!({ "version": "1" })),
            "version",
            "unsupported version",
        ),
        case(
            "version 1.5",
            doc(json!({ "version": 1.5 })),
            "version",
            "unsupported version",
        ),
        case(
            "version 0",
            doc(json!({ "version": 0 })),
            "version",
            "unsupported version",
        ),
        case(
            "routes missing",
            doc(json!({ "routes": null })),
            "",
            "missing required field \"routes\"",
        ),
        case(
            "routes empty",
            doc(json!({ "routes": [] })),
            "routes",
            "must contain at least one route",
        ),
        case(
            "routes object",
            doc(json!({ "routes": {} })),
            "routes",
            "expected an array, found an object",
        ),
        case(
            "upstreams missing",
            doc(json!({ "upstreams": null })),
            "",
            "missing required field \"upstreams\"",
        ),
        case(
            "upstreams empty",
            replaced("upstreams", json!({})),
            "upstreams",
            "must define at least one entry",
        ),
        case(
            "upstreams array",
            doc(json!({ "upstreams": [] })),
            "upstreams",
            "expected an object, found an array",
        ),
        case(
            "auth array",
            doc(json!({ "auth": [] })),
            "auth",
            "expected an object, found an array",
        ),
        case(
            "rate_limits string",
            doc(json!({ "rate_limits": "x" })),
            "rate_limits",
            "expected an object, found a string",
        ),
        case(
            "settings array",
            doc(json!({ "settings": [] })),
            "settings",
            "expected an object, found an array",
        ),
        case(
            "route not an object",
            doc(json!({ "routes": ["r"] })),
            "routes[0]",
            "expected an object, found a string",
        ),
    ]);
}

// ---- unknown fields ---------------------------------------------------------------------------

/// (case, document, path of the object holding the unknown member, member, message fragment)
fn unknown_field_cases() -> Vec<(
    &'static str,
    String,
    &'static str,
    &'static str,
    &'static str,
)> {
    vec![
        (
            "root",
            doc(json!({ "upstream": {} })),
            "",
            "upstream",
            "(did you mean \"upstreams\"?)",
        ),
        (
            "settings",
            settings(json!({ "reload": 5 })),
            "settings",
            "reload",
            "(did you mean \"reload_s\"?)",
        ),
        (
            "settings.admin",
            settings(json!({ "admin": { "token": "ADMIN_TOKEN" } })),
            "settings.admin",
            "token",
            "(did you mean \"token_secret\"?)",
        ),
        (
            "upstream",
            upstream(json!({ "timeout": 5 })),
            "upstreams.users",
            "timeout",
            "(did you mean \"timeout_ms\"?)",
        ),
        (
            "target",
            target(json!({ "weigth": 2 })),
            "upstreams.users.targets[0]",
            "weigth",
            "(did you mean \"weight\"?)",
        ),
        (
            "circuit_breaker",
            upstream(
                json!({ "circuit_breaker": { "failures": 5, "cooldown_s": 30, "cooldown": 30 } }),
            ),
            "upstreams.users.circuit_breaker",
            "cooldown",
            "(did you mean \"cooldown_s\"?)",
        ),
        (
            "auth jwt",
            jwt(json!({ "audience": "x" })),
            "auth.j",
            "audience",
            "(did you mean \"audiences\"?)",
        ),
        (
            "auth api_key",
            api_key(json!({ "headers": "x" })),
            "auth.k",
            "headers",
            "(did you mean \"header\"?)",
        ),
        (
            "rate limit",
            policy(json!({ "windows_s": 1 })),
            "rate_limits.p",
            "windows_s",
            "(did you mean \"window_s\"?)",
        ),
        (
            "route",
            route(json!({ "metods": ["GET"] })),
            "routes[0]",
            "metods",
            "(did you mean \"methods\"?)",
        ),
        (
            "cache",
            route(json!({ "cache": { "ttl": 60 } })),
            "routes[0].cache",
            "ttl",
            "(did you mean \"ttl_s\"?)",
        ),
        (
            "request_headers",
            route(json!({ "request_headers": { "sett": {} } })),
            "routes[0].request_headers",
            "sett",
            "(did you mean \"set\"?)",
        ),
        (
            "response_headers, nothing close",
            route(json!({ "response_headers": { "rm": [] } })),
            "routes[0].response_headers",
            "rm",
            "(expected one of: set, remove)",
        ),
        (
            "route, odd key",
            route(json!({ "a b": 1 })),
            "routes[0]",
            "a b",
            "(expected one of: id, methods,",
        ),
    ]
}

/// The path the contract gives an unknown member: `routes[3].cache.ttl`.
fn member_path(object: &str, member: &str) -> String {
    let simple = member
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    match (object.is_empty(), simple) {
        (true, true) => member.to_owned(),
        (false, true) => format!("{object}.{member}"),
        (_, false) => format!("{object}[{}]", json!(member)),
    }
}

#[test]
fn unknown_fields_are_refused_at_every_level() {
    let mut failures = Vec::new();
    for (name, d, object, member, fragment) in unknown_field_cases() {
        let e = errors(&d);
        let message = format!("unknown field {}", json!(member));
        // The contract puts the error on the member itself (`routes[3].cache.ttl`).
        let found = e.iter().any(|(p, m)| {
            *p == member_path(object, member) && m.contains(&message) && m.contains(fragment)
        });
        if !found {
            failures.push(format!(
                "{name}: expected {message} {fragment}\n{}",
                show(&e)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn unknown_field_errors_name_the_member() {
    let cases = unknown_field_cases()
        .into_iter()
        .map(|(name, d, object, member, fragment)| {
            let mut c = case(name, d, &member_path(object, member), fragment);
            c.fragments.insert(0, "unknown field");
            c
        })
        .collect();
    check(cases);
}

// ---- types, ranges and required fields --------------------------------------------------------

#[test]
fn wrong_types_and_out_of_range_numbers_are_refused() {
    check(vec![
        case(
            "string for integer",
            settings(json!({ "reload_s": "10" })),
            "settings.reload_s",
            "expected an integer, found a string",
        ),
        case(
            "float for integer",
            upstream(json!({ "timeout_ms": 1.5 })),
            "upstreams.users.timeout_ms",
            "expected an integer, found 1.5",
        ),
        case(
            "bool for integer",
            upstream(json!({ "retries": true })),
            "upstreams.users.retries",
            "expected an integer, found a boolean",
        ),
        case(
            "negative",
            upstream(json!({ "retries": -1 })),
            "upstreams.users.retries",
            "must be between 0 and 5, found -1",
        ),
        case(
            "negative body size",
            settings(json!({ "max_body_bytes": -5 })),
            "settings.max_body_bytes",
            "found -5",
        ),
        case(
            "huge",
            settings(json!({ "cache_generation": 9007199254740992u64 })),
            "settings.cache_generation",
            "must be between 0 and 9007199254740991",
        ),
        case(
            "reload_s 0",
            settings(json!({ "reload_s": 0 })),
            "settings.reload_s",
            "must be between 1 and 3600, found 0",
        ),
        case(
            "reload_s too big",
            settings(json!({ "reload_s": 3601 })),
            "settings.reload_s",
            "must be between 1 and 3600, found 3601",
        ),
        case(
            "max_body_bytes too big",
            settings(json!({ "max_body_bytes": 536870913u64 })),
            "settings.max_body_bytes",
            "must be between 0 and 536870912",
        ),
        case(
            "timeout_ms 0",
            upstream(json!({ "timeout_ms": 0 })),
            "upstreams.users.timeout_ms",
            "must be between 1 and 300000, found 0",
        ),
        case(
            "retries 9",
            upstream(json!({ "retries": 9 })),
            "upstreams.users.retries",
            "must be between 0 and 5, found 9",
        ),
        case(
            "weight 0",
            target(json!({ "weight": 0 })),
            "upstreams.users.targets[0].weight",
            "must be between 1 and 1000, found 0",
        ),
        case(
            "weight 1001",
            target(json!({ "weight": 1001 })),
            "upstreams.users.targets[0].weight",
            "must be between 1 and 1000, found 1001",
        ),
        case(
            "failures 0",
            upstream(json!({ "circuit_breaker": { "failures": 0, "cooldown_s": 30 } })),
            "upstreams.users.circuit_breaker.failures",
            "must be between 1 and 10000, found 0",
        ),
        case(
            "cooldown_s 0",
            upstream(json!({ "circuit_breaker": { "failures": 5, "cooldown_s": 0 } })),
            "upstreams.users.circuit_breaker.cooldown_s",
            "must be between 1 and 3600, found 0",
        ),
        case(
            "circuit_breaker true",
            upstream(json!({ "circuit_breaker": true })),
            "upstreams.users.circuit_breaker",
            "expected an object, found a boolean",
        ),
        case(
            "targets object",
            upstream(json!({ "targets": {} })),
            "upstreams.users.targets",
            "expected an array, found an object",
        ),
        case(
            "targets empty",
            upstream(json!({ "targets": [] })),
            "upstreams.users.targets",
            "must list at least one target",
        ),
        case(
            "target a string",
            upstream(json!({ "targets": ["https://a.example"] })),
            "upstreams.users.targets[0]",
            "expected an object, found a string",
        ),
        case(
            "url a number",
            target(json!({ "url": 1 })),
            "upstreams.users.targets[0].url",
            "expected a string, found a number",
        ),
        case(
            "id a number",
            route(json!({ "id": 5 })),
            "routes[0].id",
            "expected a string, found a number",
        ),
        case(
            "path an array",
            route(json!({ "path": ["/r"] })),
            "routes[0].path",
            "expected a string, found an array",
        ),
        case(
            "methods a string",
            route(json!({ "methods": "GET" })),
            "routes[0].methods",
            "expected an array of strings, found a string",
        ),
        case(
            "method a number",
            route(json!({ "methods": [1] })),
            "routes[0].methods[0]",
            "expected a string, found a number",
        ),
        case(
            "auth a number",
            route(json!({ "auth": 5 })),
            "routes[0].auth",
            "expected \"none\" or an array, found a number",
        ),
        case(
            "auth an object",
            route(json!({ "auth": {} })),
            "routes[0].auth",
            "expected \"none\" or an array, found an object",
        ),
        case(
            "ttl_s a string",
            cache(json!({ "ttl_s": "60" })),
            "routes[0].cache.ttl_s",
            "expected an integer, found a string",
        ),
        case(
            "ttl_s 0",
            cache(json!({ "ttl_s": 0 })),
            "routes[0].cache.ttl_s",
            "must be between 1 and 31536000, found 0",
        ),
        case(
            "stale_if_error_s negative",
            cache(json!({ "stale_if_error_s": -1 })),
            "routes[0].cache.stale_if_error_s",
            "found -1",
        ),
        case(
            "cache max_body_bytes 0",
            cache(json!({ "max_body_bytes": 0 })),
            "routes[0].cache.max_body_bytes",
            "must be between 1 and",
        ),
        // A stored copy is assembled in the isolate's memory (128 MB in all): a bound near
        // it would let a few concurrent misses exhaust it.
        case(
            "cache max_body_bytes over 16 MiB",
            cache(json!({ "max_body_bytes": 16 * 1024 * 1024 + 1 })),
            "routes[0].cache.max_body_bytes",
            "must be between 1 and 16777216, found 16777217",
        ),
        case(
            "per_consumer a string",
            cache(json!({ "per_consumer": "yes" })),
            "routes[0].cache.per_consumer",
            "expected true or false, found a string",
        ),
        case(
            "cache true",
            route(json!({ "cache": true })),
            "routes[0].cache",
            "expected an object, found a boolean",
        ),
        case(
            "leeway_s too big",
            jwt(json!({ "leeway_s": 601 })),
            "auth.j.leeway_s",
            "must be between 0 and 600, found 601",
        ),
        case(
            "max_lifetime_s 0",
            jwt(json!({ "max_lifetime_s": 0 })),
            "auth.j.max_lifetime_s",
            "must be between 1 and",
        ),
        case(
            "require_exp a string",
            jwt(json!({ "require_exp": "false" })),
            "auth.j.require_exp",
            "expected true or false, found a string",
        ),
        case(
            "limit a float",
            policy(json!({ "limit": 2.5 })),
            "rate_limits.p.limit",
            "expected an integer, found 2.5",
        ),
        case(
            "scopes a string",
            route(json!({ "scopes": "a" })),
            "routes[0].scopes",
            "expected an array of strings, found a string",
        ),
        case(
            "request_headers.set an array",
            route(json!({ "request_headers": { "set": [] } })),
            "routes[0].request_headers.set",
            "expected an object of header → value, found an array",
        ),
        case(
            "request_headers.set value a number",
            route(json!({ "request_headers": { "set": { "x-a": 1 } } })),
            "routes[0].request_headers.set.x-a",
            "expected a string, found a number",
        ),
        case(
            "response_headers.remove a string",
            route(json!({ "response_headers": { "remove": "server" } })),
            "routes[0].response_headers.remove",
            "expected an array of strings, found a string",
        ),
    ]);
}

#[test]
fn missing_required_fields_are_named() {
    let missing = |name, d, path: &str, field: &'static str| {
        case(name, d, path, "missing required field").and(field)
    };
    check(vec![
        missing("routes", doc(json!({ "routes": null })), "", "\"routes\""),
        missing(
            "upstreams",
            doc(json!({ "upstreams": null })),
            "",
            "\"upstreams\"",
        ),
        missing(
            "route id",
            route(json!({ "id": null })),
            "routes[0]",
            "\"id\"",
        ),
        missing(
            "route path",
            route(json!({ "path": null })),
            "routes[0]",
            "\"path\"",
        ),
        missing(
            "route upstream",
            route(json!({ "upstream": null })),
            "routes[0]",
            "\"upstream\"",
        ),
        missing(
            "route auth",
            route(json!({ "auth": null })),
            "routes[0]",
            "\"auth\"",
        ),
        missing(
            "targets",
            upstream(json!({ "targets": null })),
            "upstreams.users",
            "\"targets\"",
        ),
        missing(
            "url",
            target(json!({ "url": null, "weight": 1 })),
            "upstreams.users.targets[0]",
            "\"url\"",
        ),
        missing(
            "ttl_s",
            cache(json!({ "ttl_s": null, "vary": ["accept"] })),
            "routes[0].cache",
            "\"ttl_s\"",
        ),
        missing(
            "limit",
            policy(json!({ "limit": null })),
            "rate_limits.p",
            "\"limit\"",
        ),
        missing(
            "window_s",
            policy(json!({ "window_s": null })),
            "rate_limits.p",
            "\"window_s\"",
        ),
        missing(
            "key",
            policy(json!({ "key": null })),
            "rate_limits.p",
            "\"key\"",
        ),
        missing(
            "failures",
            upstream(json!({ "circuit_breaker": { "cooldown_s": 30 } })),
            "upstreams.users.circuit_breaker",
            "\"failures\"",
        ),
        missing(
            "cooldown_s",
            upstream(json!({ "circuit_breaker": { "failures": 5 } })),
            "upstreams.users.circuit_breaker",
            "\"cooldown_s\"",
        ),
        missing(
            "auth type",
            jwt(json!({ "type": null })),
            "auth.j",
            "\"type\"",
        ),
        missing(
            "jwt issuer",
            jwt(json!({ "issuer": null })),
            "auth.j",
            "\"issuer\"",
        ),
        missing(
            "jwt audiences",
            jwt(json!({ "audiences": null })),
            "auth.j",
            "\"audiences\"",
        ),
        missing(
            "jwt algorithms",
            jwt(json!({ "algorithms": null })),
            "auth.j",
            "\"algorithms\"",
        ),
    ]);
}

#[test]
fn a_route_without_auth_is_never_public_by_accident() {
    let e = errors(&route(json!({ "auth": null })));
    assert_eq!(e.len(), 1, "{}", show(&e));
    assert_eq!(e[0].0, "routes[0]");
    assert!(
        e[0].1.contains("missing required field \"auth\""),
        "{}",
        e[0].1
    );
    assert!(
        e[0].1.contains("\"none\""),
        "the message says how to make a route public: {}",
        e[0].1
    );
}

// ---- names and cross-references ---------------------------------------------------------------

#[test]
fn names_and_references_are_checked() {
    check(vec![
        case(
            "bad upstream name",
            doc(
                json!({ "upstreams": { "bad name": { "targets": [{ "url": "https://a.example" }] } } }),
            ),
            "upstreams[\"bad name\"]",
            "name must be 1-64 characters",
        ),
        case(
            "bad scheme name",
            doc(json!({ "auth": { "a/b": { "type": "api_key", "header": "x-k" } } })),
            "auth[\"a/b\"]",
            "name must be 1-64 characters",
        ),
        case(
            "bad policy name",
            doc(json!({ "rate_limits": { "": { "key": "ip", "limit": 1, "window_s": 1 } } })),
            "rate_limits[\"\"]",
            "name must be 1-64 characters",
        ),
        case(
            "unknown upstream",
            route(json!({ "upstream": "user" })),
            "routes[0].upstream",
            "unknown upstream \"user\" (did you mean \"users\"?)",
        ),
        case(
            "unknown upstream, nothing close",
            route(json!({ "upstream": "billing" })),
            "routes[0].upstream",
            "unknown upstream \"billing\"",
        ),
        case(
            "unknown scheme",
            declared_route(json!({ "auth": ["user-jwt"] })),
            "routes[0].auth[0]",
            "unknown auth scheme \"user-jwt\" (did you mean \"users-jwt\"?)",
        ),
        case(
            "unknown scheme, none declared",
            route(json!({ "auth": ["users-jwt"] })),
            "routes[0].auth[0]",
            "unknown auth scheme \"users-jwt\"",
        ),
        case(
            "scheme listed twice",
            declared_route(json!({ "auth": ["partners", "partners"] })),
            "routes[0].auth[1]",
            "scheme \"partners\" is listed twice",
        ),
        case(
            "scheme not a string",
            declared_route(json!({ "auth": [1] })),
            "routes[0].auth[0]",
            "expected a string, found a number",
        ),
        case(
            "auth []",
            declared_route(json!({ "auth": [] })),
            "routes[0].auth",
            "must name at least one scheme",
        ),
        case(
            "auth \"public\"",
            route(json!({ "auth": "public" })),
            "routes[0].auth",
            "expected \"none\" or a list of scheme names, found \"public\"",
        ),
        case(
            "auth \"None\"",
            route(json!({ "auth": "None" })),
            "routes[0].auth",
            "found \"None\"",
        ),
        case(
            "unknown rate limit",
            declared_route(json!({ "rate_limits": ["per-usr"] })),
            "routes[0].rate_limits[0]",
            "unknown rate limit \"per-usr\" (did you mean \"per-user\"?)",
        ),
        case(
            "rate limit listed twice",
            declared_route(json!({ "rate_limits": ["per-ip", "per-ip"] })),
            "routes[0].rate_limits[1]",
            "rate limit \"per-ip\" is listed twice",
        ),
        case(
            "duplicate route id",
            routes(vec![
                r(json!({ "id": "a", "path": "/a" })),
                r(json!({ "id": "a", "path": "/b" })),
            ]),
            "routes[1].id",
            "duplicate route id \"a\"",
        ),
        case(
            "route id with a space",
            route(json!({ "id": "get user" })),
            "routes[0].id",
            "must be 1-64 characters of letters, digits",
        ),
        case(
            "route id with a slash",
            route(json!({ "id": "users/get" })),
            "routes[0].id",
            "must be 1-64 characters",
        ),
        case(
            "empty route id",
            route(json!({ "id": "" })),
            "routes[0].id",
            "must be 1-64 characters",
        ),
        case(
            "route id too long",
            route(json!({ "id": "x".repeat(65) })),
            "routes[0].id",
            "must be 1-64 characters",
        ),
    ]);
}

// ---- upstream targets -------------------------------------------------------------------------

#[test]
fn upstream_urls_must_be_absolute_http_without_credentials() {
    let url = |name, u: &str, fragment| {
        case(
            name,
            target(json!({ "url": u })),
            "upstreams.users.targets[0].url",
            fragment,
        )
    };
    check(vec![
        url("relative", "/users", "is not an absolute URL"),
        url(
            "no scheme",
            "users.internal.example",
            "is not an absolute URL",
        ),
        url("ftp", "ftp://files.example", "scheme must be http or https"),
        url("file", "file:///etc/passwd", "scheme must be http or https"),
        url("ws", "ws://a.example", "scheme must be http or https"),
        url(
            "user-info",
            "https://user:pass@a.example",
            "must not contain user-info",
        ),
        url(
            "user only",
            "https://user@a.example",
            "must not contain user-info",
        ),
        url(
            "query",
            "https://a.example/?x=1",
            "must not contain a query or fragment",
        ),
        url(
            "empty query",
            "https://a.example/?",
            "must not contain a query or fragment",
        ),
        url(
            "fragment",
            "https://a.example/#top",
            "must not contain a query or fragment",
        ),
        url("missing host", "https://", "is not an absolute URL"),
        url(
            "missing host, port only",
            "http://:8080",
            "is not an absolute URL",
        ),
        url(
            "bad port",
            "https://a.example:99999",
            "is not an absolute URL",
        ),
        url(
            "non-canonical base path",
            "https://a.example/a//b",
            "path must be canonical",
        ),
        url(
            "encoded slash in base path",
            "https://a.example/a%2Fb",
            "path must be canonical",
        ),
        url(
            "binding with a dash",
            "service:user-service",
            "letters, digits and '_'",
        ),
        url("empty binding", "service:", "letters, digits and '_'"),
        url(
            "binding with a space",
            "service:USERS API",
            "letters, digits and '_'",
        ),
    ]);
}

#[test]
fn service_bindings_and_http_urls_are_accepted() {
    let config = accepts(&upstream(json!({
        "targets": [
            { "url": "service:USERS_SERVICE" },
            { "url": "https://users-a.internal.example/base/", "weight": 3 },
            { "url": "http://127.0.0.1:8788" },
            { "url": "http://[::1]:8080/v2" }
        ],
        "timeout_ms": 300000,
        "retries": 5,
        "circuit_breaker": { "failures": 1, "cooldown_s": 3600 }
    })));
    let targets = &config.upstreams[0].targets;
    assert_eq!(
        targets[0].endpoint,
        Endpoint::Service {
            binding: "USERS_SERVICE".into()
        }
    );
    assert_eq!(
        targets[1].endpoint,
        Endpoint::Url {
            origin: "https://users-a.internal.example".into(),
            base_path: "/base".into()
        }
    );
    assert_eq!(targets[1].weight, 3);
    assert_eq!(targets[0].weight, 1, "weight defaults to 1");
    assert_eq!(
        targets[3].endpoint,
        Endpoint::Url {
            origin: "http://[::1]:8080".into(),
            base_path: "/v2".into()
        }
    );
}

// ---- routes -----------------------------------------------------------------------------------

#[test]
fn methods_must_be_upper_case_and_supported() {
    let m = |name, methods: Value, path: &str, fragment| {
        case(name, route(json!({ "methods": methods })), path, fragment)
    };
    check(vec![
        m(
            "lower case",
            json!(["get"]),
            "routes[0].methods[0]",
            "unsupported method \"get\" (did you mean \"GET\"?)",
        ),
        m(
            "mixed case",
            json!(["GET", "Post"]),
            "routes[0].methods[1]",
            "(did you mean \"POST\"?)",
        ),
        m(
            "TRACE",
            json!(["TRACE"]),
            "routes[0].methods[0]",
            "unsupported method \"TRACE\"",
        ),
        m(
            "CONNECT",
            json!(["CONNECT"]),
            "routes[0].methods[0]",
            "unsupported method \"CONNECT\"",
        ),
        m(
            "empty list",
            json!([]),
            "routes[0].methods",
            "must list at least one method",
        ),
    ]);
    let e = errors(&route(json!({ "methods": ["TRACE"] })));
    assert!(
        e[0].1.contains("expected one of GET, HEAD, POST"),
        "{}",
        show(&e)
    );
}

#[test]
fn paths_must_be_canonical_matchit_patterns() {
    let p = |name, path: &str, fragment| {
        case(
            name,
            route(json!({ "path": path })),
            "routes[0].path",
            fragment,
        )
    };
    check(vec![
        p("relative", "users", "\"users\" must start with /"),
        p("empty", "", "must start with /"),
        p("double slash", "/a//b", "must be in canonical form"),
        p("dot segment", "/a/./b", "must be in canonical form"),
        p("dot-dot segment", "/a/../b", "must be in canonical form"),
        p("encoded unreserved", "/a/%62", "must be in canonical form"),
        p("lower-case escape", "/a%3fb", "must be in canonical form"),
        p("encoded slash", "/a%2Fb", "must be in canonical form"),
        p("semicolon", "/a;b", "must be in canonical form"),
        p("backslash", "/a\\b", "must be in canonical form"),
        p("raw space", "/a b", "must be in canonical form"),
        p("double encoding", "/a%252e", "must be in canonical form"),
        p(
            "empty parameter",
            "/a/{}",
            "parameter name \"\" must be letters, digits or '_'",
        ),
        p(
            "dash in parameter",
            "/a/{a-b}",
            "parameter name \"a-b\" must be letters, digits or '_'",
        ),
        p("empty catch-all", "/a/{*}", "parameter name \"*\""),
        p(
            "duplicate parameter",
            "/a/{id}/b/{id}",
            "parameter \"id\" appears twice",
        ),
        p(
            "duplicate across kinds",
            "/a/{id}/{*id}",
            "parameter \"id\" appears twice",
        ),
        p(
            "catch-all not last",
            "/a/{*rest}/b",
            "catch-all {*rest} must end the path",
        ),
        p(
            "catch-all mid-segment",
            "/a{*rest}",
            "catch-all {*rest} must follow a '/'",
        ),
        p("unclosed brace", "/a/{id", "unclosed '{'"),
        p("stray closing brace", "/a/id}", "unmatched '}'"),
        p(
            "admin path",
            "/__gateway",
            "is inside the gateway's admin path \"/__gateway\"",
        ),
        p(
            "inside admin path",
            "/__gateway/x",
            "is inside the gateway's admin path",
        ),
        p(
            "admin catch-all",
            "/__gateway/{*rest}",
            "is inside the gateway's admin path",
        ),
        p(
            "admin path in another case",
            "/__GATEWAY/x",
            "is inside the gateway's admin path",
        ),
    ]);
    check(vec![case(
        "inside a custom admin path",
        route_in(
            json!({ "settings": { "admin": { "path": "/ops" } } }),
            json!({ "path": "/ops/x" }),
        ),
        "routes[0].path",
        "is inside the gateway's admin path \"/ops\"",
    )]);
}

#[test]
fn rewrites_are_canonical_templates_over_the_routes_parameters() {
    let rw = |name, path: &str, rewrite: &str, fragment| {
        case(
            name,
            route(json!({ "path": path, "rewrite": rewrite })),
            "routes[0].rewrite",
            fragment,
        )
    };
    check(vec![
        rw(
            "unknown parameter",
            "/a/{id}",
            "/x/{name}",
            "\"{name}\" is not a parameter of the route's path",
        ),
        rw(
            "parameter of a static path",
            "/a",
            "/x/{id}",
            "\"{id}\" is not a parameter",
        ),
        rw(
            "catch-all syntax",
            "/a/{*rest}",
            "/x/{*rest}",
            "\"{*rest}\" is not a parameter",
        ),
        rw(
            "query",
            "/a/{id}",
            "/x/{id}?full=1",
            "must be a canonical path template",
        ),
        rw(
            "fragment",
            "/a/{id}",
            "/x/{id}#f",
            "must be a canonical path template",
        ),
        rw(
            "dot-dot",
            "/a/{id}",
            "/x/../{id}",
            "must be a canonical path template",
        ),
        rw(
            "encoded dot-dot",
            "/a/{id}",
            "/x/%2e%2e/{id}",
            "must be a canonical path template",
        ),
        rw(
            "double slash",
            "/a/{id}",
            "/x//{id}",
            "must be a canonical path template",
        ),
        rw(
            "stray brace",
            "/a/{id}",
            "/x/{id}}",
            "must be a canonical path template",
        ),
        rw("relative", "/a/{id}", "x/{id}", "must start with /"),
        rw("unclosed", "/a/{id}", "/x/{id", "unclosed '{'"),
    ]);
}

#[test]
fn host_patterns_are_host_names_or_wildcards() {
    let h = |name, host: &str| {
        case(
            name,
            route(json!({ "host": host })),
            "routes[0].host",
            "must be a host name like api.example.com or *.example.com",
        )
    };
    check(vec![
        h("empty label", "a..b"),
        h("space", "exa mple.com"),
        h("port", "host:8080"),
        h("bare wildcard", "*"),
        h("wildcard without a name", "*."),
        h("inner wildcard", "api.*.example.com"),
        h("trailing dot", "example.com."),
        h("empty", ""),
        h("scheme", "https://api.example.com"),
        h("path", "api.example.com/v1"),
        h("ipv6", "[::1]"),
    ]);
    let config = accepts(&routes(vec![
        r(json!({ "id": "a", "path": "/a", "host": "*.example.com" })),
        r(json!({ "id": "b", "path": "/b", "host": "API.Example.com" })),
        r(json!({ "id": "c", "path": "/c", "host": "localhost" })),
    ]));
    assert_eq!(
        config.routes[0].host,
        Some(HostPattern::Suffix(".example.com".into()))
    );
    assert_eq!(
        config.routes[1].host,
        Some(HostPattern::Exact("api.example.com".into()))
    );
}

#[test]
fn authentication_dependent_options_need_authentication() {
    check(vec![
        case(
            "scopes with auth none",
            route(json!({ "scopes": ["users:read"] })),
            "routes[0].scopes",
            "scopes need authentication, but \"auth\" is \"none\"",
        ),
        case(
            "scope with a space",
            declared_route(json!({ "auth": ["users-jwt"], "scopes": ["a b"] })),
            "routes[0].scopes[0]",
            "a scope must be non-empty and contain no spaces",
        ),
        case(
            "empty scope",
            declared_route(json!({ "auth": ["users-jwt"], "scopes": [""] })),
            "routes[0].scopes[0]",
            "must be non-empty",
        ),
        case(
            "cache on a POST-only route",
            route(json!({ "methods": ["POST"], "cache": { "ttl_s": 60 } })),
            "routes[0].cache",
            "caching applies to GET and HEAD",
        ),
        case(
            "cache on a write route",
            route(json!({ "methods": ["PUT", "DELETE"], "cache": { "ttl_s": 60 } })),
            "routes[0].cache",
            "caching applies to GET and HEAD",
        ),
    ]);
}

/// Where the contract's path syntax puts the per-consumer error.
const PER_CONSUMER_PATH: &str = "routes[0].cache.per_consumer";

#[test]
fn per_consumer_caching_needs_authentication() {
    let e = errors(&cache(json!({ "per_consumer": true })));
    assert_eq!(e.len(), 1, "{}", show(&e));
    assert_eq!(e[0].0, PER_CONSUMER_PATH, "{}", show(&e));
    assert!(
        e[0].1
            .contains("per-consumer caching needs authentication, but \"auth\" is \"none\""),
        "{}",
        show(&e)
    );
}

// ---- header rules -----------------------------------------------------------------------------

#[test]
fn header_rules_cannot_touch_gateway_owned_headers_or_smuggle_lines() {
    let set = |name, header: &str, value: &str, path: &str, fragment| {
        case(
            name,
            route(json!({ "request_headers": { "set": { header: value } } })),
            path,
            fragment,
        )
    };
    let managed = "is managed by the gateway and cannot be configured";
    check(vec![
        set(
            "set host",
            "host",
            "evil.example",
            "routes[0].request_headers.set.host",
            managed,
        )
        .and("\"host\""),
        set(
            "set Host",
            "Host",
            "evil.example",
            "routes[0].request_headers.set.Host",
            managed,
        )
        .and("\"host\""),
        set(
            "set x-forwarded-for",
            "x-forwarded-for",
            "1.2.3.4",
            "routes[0].request_headers.set.x-forwarded-for",
            managed,
        ),
        set(
            "set connection",
            "connection",
            "close",
            "routes[0].request_headers.set.connection",
            managed,
        ),
        set(
            "set content-length",
            "content-length",
            "0",
            "routes[0].request_headers.set.content-length",
            managed,
        ),
        set(
            "set transfer-encoding",
            "transfer-encoding",
            "chunked",
            "routes[0].request_headers.set.transfer-encoding",
            managed,
        ),
        set(
            "set forwarded",
            "forwarded",
            "for=1.2.3.4",
            "routes[0].request_headers.set.forwarded",
            managed,
        ),
        set(
            "set cf-connecting-ip",
            "cf-connecting-ip",
            "1.2.3.4",
            "routes[0].request_headers.set.cf-connecting-ip",
            managed,
        ),
        set(
            "set traceparent",
            "traceparent",
            "x",
            "routes[0].request_headers.set.traceparent",
            managed,
        ),
        set(
            "CR LF in value",
            "x-a",
            "1\r\nx-admin: true",
            "routes[0].request_headers.set.x-a",
            "must not contain control characters",
        ),
        set(
            "LF in value",
            "x-a",
            "1\nx",
            "routes[0].request_headers.set.x-a",
            "must not contain control characters",
        ),
        set(
            "CR in value",
            "x-a",
            "1\rx",
            "routes[0].request_headers.set.x-a",
            "must not contain control characters",
        ),
        set(
            "NUL in value",
            "x-a",
            "1\u{0}",
            "routes[0].request_headers.set.x-a",
            "must not contain control characters",
        ),
        set(
            "space in name",
            "bad header",
            "1",
            "routes[0].request_headers.set[\"bad header\"]",
            "\"bad header\" is not a valid header name",
        ),
        set(
            "colon in name",
            "x:y",
            "1",
            // Cut where a pasted `Name: value` starts its value, as the message is.
            "routes[0].request_headers.set[\"x…\"]",
            "\"x…\" is not a valid header name",
        ),
        set(
            "empty name",
            "",
            "1",
            "routes[0].request_headers.set[\"\"]",
            "is not a valid header name",
        ),
        set(
            "non-ASCII name",
            "x-é",
            "1",
            "routes[0].request_headers.set[\"x-é\"]",
            "is not a valid header name",
        ),
        case(
            "remove connection",
            route(json!({ "request_headers": { "remove": ["connection"] } })),
            "routes[0].request_headers.remove[0]",
            managed,
        ),
        case(
            "remove host",
            route(json!({ "request_headers": { "remove": ["cookie", "Host"] } })),
            "routes[0].request_headers.remove[1]",
            managed,
        ),
        case(
            "remove bad name",
            route(json!({ "request_headers": { "remove": ["a b"] } })),
            "routes[0].request_headers.remove[0]",
            "is not a valid header name",
        ),
        case(
            "response set content-length",
            route(json!({ "response_headers": { "set": { "content-length": "1" } } })),
            "routes[0].response_headers.set.content-length",
            managed,
        ),
        case(
            "response remove transfer-encoding",
            route(json!({ "response_headers": { "remove": ["transfer-encoding"] } })),
            "routes[0].response_headers.remove[0]",
            managed,
        ),
        case(
            "response value with LF",
            route(json!({ "response_headers": { "set": { "x-b": "a\nb" } } })),
            "routes[0].response_headers.set.x-b",
            "must not contain control characters",
        ),
        case(
            "request_id_header connection",
            settings(json!({ "request_id_header": "connection" })),
            "settings.request_id_header",
            managed,
        ),
        case(
            "request_id_header host",
            settings(json!({ "request_id_header": "host" })),
            "settings.request_id_header",
            managed,
        ),
        case(
            "request_id_header invalid",
            settings(json!({ "request_id_header": "request id" })),
            "settings.request_id_header",
            "is not a valid header name",
        ),
        case(
            "vary invalid",
            cache(json!({ "vary": ["accept language"] })),
            "routes[0].cache.vary[0]",
            "\"accept language\" is not a valid header name",
        ),
    ]);
}

#[test]
fn ordinary_header_rules_are_accepted_and_lower_cased() {
    let config = accepts(&route(json!({
        "request_headers": { "set": { "X-Api-Version": "1", "authorization": "Bearer x\ty" }, "remove": ["Cookie"] },
        "response_headers": { "set": { "cache-control": "no-store" }, "remove": ["server"] }
    })));
    let rules = &config.routes[0].request_headers;
    assert!(
        rules.set.contains(&("x-api-version".into(), "1".into())),
        "{rules:?}"
    );
    assert_eq!(rules.remove, ["cookie"]);
}

// ---- settings ---------------------------------------------------------------------------------

#[test]
fn settings_are_checked() {
    let admin = |name, a: Value, path: &str, fragment| {
        case(name, settings(json!({ "admin": a })), path, fragment)
    };
    check(vec![
        admin(
            "admin path /",
            json!({ "path": "/" }),
            "settings.admin.path",
            "must be a canonical path like \"/__gateway\"",
        ),
        admin(
            "admin path trailing slash",
            json!({ "path": "/ops/" }),
            "settings.admin.path",
            "no trailing slash",
        ),
        admin(
            "admin path relative",
            json!({ "path": "ops" }),
            "settings.admin.path",
            "must be a canonical path",
        ),
        admin(
            "admin path not canonical",
            json!({ "path": "/a//b" }),
            "settings.admin.path",
            "must be a canonical path",
        ),
        admin(
            "admin token is a value",
            json!({ "token_secret": "s3cr3t-value" }),
            "settings.admin.token_secret",
            "never the secret itself",
        ),
        admin(
            "admin token with spaces",
            json!({ "token_secret": "my admin token" }),
            "settings.admin.token_secret",
            "never the secret itself",
        ),
        admin(
            "admin a string",
            json!("/ops"),
            "settings.admin",
            "expected an object, found a string",
        ),
    ]);
}

// ---- auth schemes -----------------------------------------------------------------------------

#[test]
fn auth_schemes_are_checked() {
    let j = |name, patch: Value, path: &str, fragment| case(name, jwt(patch), path, fragment);
    let k = |name, patch: Value, path: &str, fragment| case(name, api_key(patch), path, fragment);
    let rsa_public = json!({ "kty": "RSA", "n": "sXch", "e": "AQAB" });
    check(vec![
        j(
            "unknown type",
            json!({ "type": "oauth" }),
            "auth.j.type",
            "unknown auth type \"oauth\" (expected \"jwt\" or \"api_key\")",
        ),
        case(
            "scheme a string",
            doc(json!({ "auth": { "j": "jwt" } })),
            "auth.j",
            "expected an object, found a string",
        ),
        j(
            "empty issuer",
            json!({ "issuer": "" }),
            "auth.j.issuer",
            "must not be empty",
        ),
        j(
            "no audiences",
            json!({ "audiences": [] }),
            "auth.j.audiences",
            "must list at least one audience",
        ),
        j(
            "empty audience",
            json!({ "audiences": [""] }),
            "auth.j.audiences[0]",
            "must not be empty",
        ),
        j(
            "audiences a string",
            json!({ "audiences": "api" }),
            "auth.j.audiences",
            "expected an array of strings",
        ),
        j(
            "no algorithms",
            json!({ "algorithms": [] }),
            "auth.j.algorithms",
            "must list at least one algorithm",
        ),
        j(
            "alg none",
            json!({ "algorithms": ["none"] }),
            "auth.j.algorithms[0]",
            "\"none\" (unsigned tokens) is never accepted",
        ),
        j(
            "alg None beside RS256",
            json!({ "algorithms": ["RS256", "None"] }),
            "auth.j.algorithms[1]",
            "unsigned tokens",
        ),
        j(
            "lower-case algorithm",
            json!({ "algorithms": ["rs256"] }),
            "auth.j.algorithms[0]",
            "unsupported algorithm \"rs256\" (did you mean \"RS256\"?)",
        ),
        j(
            "unknown algorithm",
            json!({ "algorithms": ["XX999"] }),
            "auth.j.algorithms[0]",
            "(supported: HS256, HS384",
        ),
        j(
            "HS256 without secret",
            json!({ "algorithms": ["HS256"], "jwks_url": null }),
            "auth.j",
            "HMAC algorithms (HS*) need \"secret\"",
        ),
        j(
            "secret that looks like a value",
            json!({ "algorithms": ["HS256"], "secret": "c2VjcmV0-value" }),
            "auth.j.secret",
            "never the secret itself",
        ),
        j(
            "secret with spaces",
            json!({ "algorithms": ["HS256"], "secret": "my jwt secret" }),
            "auth.j.secret",
            "must be the name of a Worker secret",
        ),
        j(
            "empty secret",
            json!({ "algorithms": ["HS256"], "secret": "" }),
            "auth.j.secret",
            "must be the name of a Worker secret",
        ),
        j(
            "secret without HMAC",
            json!({ "secret": "JWT_SECRET" }),
            "auth.j.secret",
            "a secret is only used with an HMAC algorithm",
        ),
        j(
            "RS256 without keys",
            json!({ "jwks_url": null }),
            "auth.j",
            "public-key algorithms need \"jwks_url\" or \"keys\"",
        ),
        j(
            "ES256 without keys",
            json!({ "jwks_url": null, "algorithms": ["ES256"] }),
            "auth.j",
            "need \"jwks_url\" or \"keys\"",
        ),
        j(
            "EdDSA without keys",
            json!({ "jwks_url": null, "algorithms": ["EdDSA"] }),
            "auth.j",
            "need \"jwks_url\" or \"keys\"",
        ),
        j(
            "jwks over http",
            json!({ "jwks_url": "http://id.example.com/jwks.json" }),
            "auth.j.jwks_url",
            "must be an https URL without user-info",
        ),
        j(
            "jwks over http to a loopback-looking name",
            json!({ "jwks_url": "http://localhost.evil.example/jwks" }),
            "auth.j.jwks_url",
            "must be an https URL",
        ),
        j(
            "jwks with user-info",
            json!({ "jwks_url": "https://u:p@id.example.com/jwks" }),
            "auth.j.jwks_url",
            "without user-info",
        ),
        j(
            "jwks relative",
            json!({ "jwks_url": "/jwks.json" }),
            "auth.j.jwks_url",
            "is not an absolute URL",
        ),
        j(
            "jwks ftp",
            json!({ "jwks_url": "ftp://id.example.com/jwks" }),
            "auth.j.jwks_url",
            "must be an https URL",
        ),
        j(
            "private RSA key",
            json!({ "keys": [{ "kty": "RSA", "n": "sXch", "e": "AQAB", "d": "secret" }] }),
            "auth.j.keys[0]",
            "JWK holds private member \"d\"",
        ),
        j(
            "private EC key",
            json!({ "keys": [rsa_public, { "kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "c" }] }),
            "auth.j.keys[1]",
            "private member \"d\"",
        ),
        j(
            "symmetric key",
            json!({ "keys": [{ "kty": "oct", "k": "c2VjcmV0" }] }),
            "auth.j.keys[0]",
            "private member \"k\"",
        ),
        j(
            "kty oct",
            json!({ "keys": [{ "kty": "oct", "alg": "HS256" }] }),
            "auth.j.keys[0]",
            "unsupported JWK kty \"oct\" (expected RSA, EC or OKP)",
        ),
        j(
            "RSA key too small to be used",
            json!({ "jwks_url": null, "algorithms": ["RS256"], "keys": [rsa_public] }),
            "auth.j.keys[0]",
            "RSA modulus of 24 bits: at least 2048 are required (RFC 7518 §3.3)",
        ),
        j(
            "RSA key with the ROCA fingerprint",
            json!({ "jwks_url": null, "algorithms": ["RS256"], "keys": [{ "kty": "RSA", "n": ROCA_N, "e": "AQAB" }] }),
            "auth.j.keys[0]",
            "ROCA fingerprint (CVE-2017-15361)",
        ),
        j(
            "RSA key with exponent 3",
            json!({ "jwks_url": null, "algorithms": ["RS256"], "keys": [{ "kty": "RSA", "n": NORMAL_N, "e": "Aw" }] }),
            "auth.j.keys[0]",
            "RSA public exponent 3 is below 65537",
        ),
        j(
            "RSA key with an even exponent",
            json!({ "jwks_url": null, "algorithms": ["RS256"], "keys": [{ "kty": "RSA", "n": NORMAL_N, "e": "AQAA" }] }),
            "auth.j.keys[0]",
            "RSA public exponent is even",
        ),
        j(
            "EC key on a curve the scheme cannot use",
            json!({ "jwks_url": null, "algorithms": ["ES256"], "keys": [{ "kty": "EC", "crv": "P-384", "x": "a", "y": "b" }] }),
            "auth.j.keys[0]",
            "cannot verify any of the scheme's algorithms",
        ),
        j(
            "key whose alg is not in algorithms",
            json!({ "jwks_url": null, "algorithms": ["RS256"], "keys": [{ "kty": "EC", "crv": "P-256", "alg": "ES256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" }] }),
            "auth.j.keys[0]",
            "cannot verify any of the scheme's algorithms",
        ),
        j(
            "key without kty",
            json!({ "keys": [{ "n": "sXch", "e": "AQAB" }] }),
            "auth.j.keys[0]",
            "JWK needs \"kty\"",
        ),
        j(
            "key a string",
            json!({ "keys": ["sXch"] }),
            "auth.j.keys[0]",
            "a JWK must be an object",
        ),
        j(
            "keys an object",
            json!({ "keys": rsa_public }),
            "auth.j.keys",
            "expected an array of JWKs, found an object",
        ),
        j(
            "forward claim to host",
            json!({ "forward_claims": { "sub": "host" } }),
            "auth.j.forward_claims.sub",
            "is managed by the gateway",
        ),
        j(
            "forward claim to a bad name",
            json!({ "forward_claims": { "sub": "user id" } }),
            "auth.j.forward_claims.sub",
            "is not a valid header name",
        ),
        j(
            "two claims, one header",
            json!({ "forward_claims": { "sub": "x-user", "email": "X-User" } }),
            "auth.j.forward_claims.sub",
            "header \"x-user\" is used for two claims",
        ),
        j(
            "forward an empty claim",
            json!({ "forward_claims": { "": "x-user" } }),
            "auth.j.forward_claims[\"\"]",
            "claim name must not be empty",
        ),
        j(
            "forward_claims an array",
            json!({ "forward_claims": ["sub"] }),
            "auth.j.forward_claims",
            "expected an object of claim → header",
        ),
        j(
            "empty typ",
            json!({ "typ": "" }),
            "auth.j.typ",
            "must not be empty",
        ),
        j(
            "bad cookie name",
            json!({ "token_cookie": "a b" }),
            "auth.j.token_cookie",
            "\"a b\" is not a valid cookie name",
        ),
        j(
            "empty token_query",
            json!({ "token_query": "" }),
            "auth.j.token_query",
            "must not be empty",
        ),
        k(
            "api key in header and query",
            json!({ "query": "api_key" }),
            "auth.k",
            "needs exactly one of \"header\" or \"query\"",
        ),
        k(
            "api key from nowhere",
            json!({ "header": null }),
            "auth.k",
            "needs exactly one of \"header\" or \"query\"",
        ),
        k(
            "api key in authorization",
            json!({ "header": "authorization" }),
            "auth.k.header",
            "\"authorization\" cannot carry an API key",
        ),
        k(
            "api key in Authorization",
            json!({ "header": "Authorization" }),
            "auth.k.header",
            "\"authorization\" cannot carry an API key",
        ),
        k(
            "api key in cookie",
            json!({ "header": "cookie" }),
            "auth.k.header",
            "\"cookie\" cannot carry an API key",
        ),
        k(
            "api key in host",
            json!({ "header": "host" }),
            "auth.k.header",
            "cannot carry an API key",
        ),
        k(
            "api key in a bad header",
            json!({ "header": "x api key" }),
            "auth.k.header",
            "is not a valid header name",
        ),
        k(
            "empty query name",
            json!({ "header": null, "query": "" }),
            "auth.k.query",
            "must not be empty",
        ),
    ]);
}

#[test]
fn valid_auth_schemes_are_accepted() {
    let ec_public = json!({ "kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" });
    check_valid(vec![
        ("jwks over https", jwt(json!({}))),
        (
            "jwks over http to 127.0.0.1",
            jwt(json!({ "jwks_url": "http://127.0.0.1:8788/jwks.json" })),
        ),
        (
            "jwks over http to localhost",
            jwt(json!({ "jwks_url": "http://localhost/jwks.json" })),
        ),
        (
            "jwks over http to [::1]",
            jwt(json!({ "jwks_url": "http://[::1]:9000/jwks.json" })),
        ),
        (
            "inline public keys",
            jwt(json!({ "jwks_url": null, "algorithms": ["ES256"], "keys": [ec_public] })),
        ),
        (
            "HS256 with a secret name",
            jwt(
                json!({ "jwks_url": null, "algorithms": ["HS256", "HS512"], "secret": "JWT_SECRET" }),
            ),
        ),
        (
            "every optional field",
            jwt(json!({
                "algorithms": ["RS256", "PS256", "EdDSA"],
                "leeway_s": 0,
                "forward_claims": { "sub": "x-user-id", "email": "x-user-email" },
                "max_lifetime_s": 3600,
                "typ": "at+jwt",
                "require_exp": false,
                "token_cookie": "session",
                "token_query": "access_token"
            })),
        ),
        ("api key in a header", api_key(json!({}))),
        (
            "api key in the query",
            api_key(json!({ "header": null, "query": "api_key" })),
        ),
    ]);
}

// ---- rate limits ------------------------------------------------------------------------------

#[test]
fn rate_limit_policies_are_checked() {
    let p = |name, patch: Value, path: &str, fragment| case(name, policy(patch), path, fragment);
    check(vec![
        p("unknown key", json!({ "key": "user" }), "rate_limits.p.key", "unknown key \"user\" (expected ip, consumer, route, global, claim:<name> or header:<name>)"),
        p("upper-case key", json!({ "key": "IP" }), "rate_limits.p.key", "unknown key \"IP\""),
        p("claim without a name", json!({ "key": "claim:" }), "rate_limits.p.key", "unknown key \"claim:\""),
        p("bad header name", json!({ "key": "header:bad header" }), "rate_limits.p.key", "\"bad header\" is not a valid header name"),
        p("header without a name", json!({ "key": "header:" }), "rate_limits.p.key", "\"\" is not a valid header name"),
        p("key a number", json!({ "key": 1 }), "rate_limits.p.key", "expected a string, found a number"),
        p("limit 0", json!({ "limit": 0 }), "rate_limits.p.limit", "must be between 1 and 1000000000, found 0"),
        p("window_s 0", json!({ "window_s": 0 }), "rate_limits.p.window_s", "must be between 1 and 31536000, found 0"),
        p("burst 0", json!({ "burst": 0 }), "rate_limits.p.burst", "must be between 1 and 1000000000, found 0"),
        p("on_store_error maybe", json!({ "on_store_error": "maybe" }), "rate_limits.p.on_store_error", "must be \"allow\" or \"deny\", found \"maybe\""),
        p("on_store_error a bool", json!({ "on_store_error": true }), "rate_limits.p.on_store_error", "expected a string, found a boolean"),
        case("policy a number", doc(json!({ "rate_limits": { "p": 5 } })), "rate_limits.p", "expected an object, found a number"),
    ]);
}

#[test]
fn a_rate_limit_never_keys_on_a_header_the_gateway_sets_from_the_identity() {
    // The limiter reads the request as the client sent it: keyed on x-consumer or a claim
    // header, a client could spend another user's bucket (or rotate its own value to escape
    // the limit) by sending that header itself.
    let with = |key: &str| {
        doc(json!({
            "settings": { "consumer_header": "x-who" },
            "auth": { "idp": { "type": "jwt", "issuer": "https://id.example.com/", "audiences": ["a"],
                               "jwks_url": "https://id.example.com/jwks", "algorithms": ["RS256"],
                               "forward_claims": { "sub": "x-user-id" } } },
            "rate_limits": { "p": { "key": key, "limit": 10, "window_s": 1 } }
        }))
    };
    check(vec![
        case("the consumer header", with("header:x-who"), "rate_limits.p.key", "header \"x-who\" is settings.consumer_header, which the gateway sets from the verified identity: the limit would read the client's copy, which anyone can send; use \"consumer\""),
        case("a claim header, in any case", with("header:X-User-Id"), "rate_limits.p.key", "header \"x-user-id\" is a forward_claims header of auth scheme \"idp\" (claim \"sub\"): the limit would read the client's copy, which anyone can send; use \"claim:sub\""),
    ]);
    check_valid(vec![("another header", with("header:x-tenant"))]);
}

#[test]
fn rate_limit_keys_must_be_available_on_the_route() {
    let d = declared_route;
    check(vec![
        case("claim key on an api_key route", d(json!({ "auth": ["partners"], "rate_limits": ["per-user"] })), "routes[0].rate_limits[0]", "rate limit \"per-user\" is keyed on a JWT claim, but not every scheme of the route is a JWT scheme"),
        case("claim key on a jwt-or-api_key route", d(json!({ "auth": ["users-jwt", "partners"], "rate_limits": ["per-ip", "per-user"] })), "routes[0].rate_limits[1]", "keyed on a JWT claim"),
        case("claim key on a public route", d(json!({ "rate_limits": ["per-user"] })), "routes[0].rate_limits[0]", "but \"auth\" is \"none\""),
        case("consumer key on a public route", d(json!({ "rate_limits": ["per-consumer"] })), "routes[0].rate_limits[0]", "rate limit \"per-consumer\" is keyed on the consumer, but \"auth\" is \"none\""),
    ]);
    check_valid(vec![
        (
            "claim key on a jwt route",
            d(json!({ "auth": ["users-jwt"], "rate_limits": ["per-user", "per-ip"] })),
        ),
        (
            "consumer key on an api_key route",
            d(json!({ "auth": ["partners"], "rate_limits": ["per-consumer"] })),
        ),
        (
            "consumer key on a mixed route",
            d(json!({ "auth": ["users-jwt", "partners"], "rate_limits": ["per-consumer"] })),
        ),
        (
            "anonymous keys on a public route",
            d(json!({ "rate_limits": ["per-ip", "per-key", "orders", "everyone"] })),
        ),
    ]);
}

// ---- valid documents --------------------------------------------------------------------------

/// The example of config-v1.md, verbatim.
const CONTRACT_EXAMPLE: &str = r#"{
  "version": 1,
  "settings": {
    "reload_s": 10,
    "max_body_bytes": 10485760,
    "request_id_header": "x-request-id",
    "cache_generation": 1,
    "admin": { "path": "/__gateway", "token_secret": "ADMIN_TOKEN" }
  },
  "upstreams": {
    "users": {
      "targets": [ { "url": "https://users-a.internal.example", "weight": 3 },
                   { "url": "https://users-b.internal.example", "weight": 1 } ],
      "timeout_ms": 10000,
      "retries": 1,
      "circuit_breaker": { "failures": 5, "cooldown_s": 30 }
    }
  },
  "auth": {
    "users-jwt": {
      "type": "jwt",
      "issuer": "https://id.example.com/",
      "audiences": ["orders-api"],
      "jwks_url": "https://id.example.com/.well-known/jwks.json",
      "algorithms": ["ES256", "RS256"],
      "leeway_s": 60,
      "forward_claims": { "sub": "x-user-id" }
    },
    "partners": { "type": "api_key", "header": "x-api-key" }
  },
  "rate_limits": {
    "per-user": { "key": "claim:sub", "limit": 100, "window_s": 60 },
    "per-ip":   { "key": "ip", "limit": 20, "window_s": 1, "burst": 40 },
    "orders":   { "key": "route", "limit": 5000, "window_s": 60, "on_store_error": "deny" }
  },
  "routes": [
    {
      "id": "get-user",
      "methods": ["GET", "HEAD"],
      "host": "api.example.com",
      "path": "/v1/users/{id}",
      "upstream": "users",
      "rewrite": "/users/{id}",
      "auth": ["users-jwt"],
      "scopes": ["users:read"],
      "rate_limits": ["per-user", "per-ip"],
      "cache": { "ttl_s": 60, "stale_if_error_s": 600, "vary": ["accept-language"] },
      "request_headers":  { "set": { "x-api-version": "1" }, "remove": ["cookie"] },
      "response_headers": { "remove": ["server"] }
    },
    { "id": "health", "methods": ["GET"], "path": "/healthz", "upstream": "users", "auth": "none" }
  ]
}"#;

#[test]
fn the_contract_example_is_valid() {
    let config = accepts(CONTRACT_EXAMPLE);
    assert_eq!(config.routes.len(), 2);
    assert_eq!(config.auth.len(), 2);
    assert_eq!(config.rate_limits.len(), 3);
    assert_eq!(config.rate_limits[1].burst, 40);
    assert_eq!(config.rate_limits[0].burst, 100, "burst defaults to limit");
    assert_eq!(config.routes[0].params, ["id"]);
}

#[test]
fn the_repository_routes_json_compiles() {
    let gateway = compiles(include_str!("../routes.json"));
    let ids: Vec<&str> = gateway
        .config
        .routes
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "get-user",
            "echo",
            "health",
            "cached-user",
            "limited",
            "partner",
            "echo-v2",
            "get-user-v2",
            "canary",
            "live"
        ]
    );
    assert!(gateway.digest.starts_with("sha256:"), "{}", gateway.digest);
}

#[test]
fn valid_routes_are_accepted() {
    check_valid(vec![
        ("root path", route(json!({ "path": "/" }))),
        ("trailing slash", route(json!({ "path": "/users/" }))),
        (
            "pchar characters",
            route(json!({ "path": "/a:b@c!$&'()*+,=/~x_y-z.json" })),
        ),
        (
            "escaped reserved character",
            route(json!({ "path": "/a%20b/%C3%A9" })),
        ),
        (
            "parameters",
            route(
                json!({ "path": "/v1/users/{id}/posts/{post_id}", "rewrite": "/u/{id}/p/{post_id}" }),
            ),
        ),
        (
            "catch-all rewrite",
            route(json!({ "path": "/v1/echo/{*rest}", "rewrite": "/echo/{rest}" })),
        ),
        (
            "rewrite reorders parameters",
            route(json!({ "path": "/a/{x}/b/{y}", "rewrite": "/{y}/{x}" })),
        ),
        (
            "static rewrite",
            route(json!({ "path": "/old", "rewrite": "/new" })),
        ),
        (
            "path beside the admin path",
            route(json!({ "path": "/__gateway2/x" })),
        ),
        (
            "admin path moved",
            route_in(
                json!({ "settings": { "admin": { "path": "/ops" } } }),
                json!({ "path": "/__gateway/x" }),
            ),
        ),
        (
            "every method",
            route(
                json!({ "methods": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] }),
            ),
        ),
        (
            "cache on GET",
            cache(
                json!({ "stale_if_error_s": 600, "vary": ["Accept-Language"], "max_body_bytes": 1024 }),
            ),
        ),
        (
            "cache on a GET and POST route",
            route(json!({ "methods": ["GET", "POST"], "cache": { "ttl_s": 1 } })),
        ),
        (
            "per-consumer cache with auth",
            declared_route(
                json!({ "auth": ["users-jwt"], "cache": { "ttl_s": 60, "per_consumer": true } }),
            ),
        ),
        (
            "scopes with auth",
            declared_route(
                json!({ "auth": ["users-jwt", "partners"], "scopes": ["users:read", "admin"] }),
            ),
        ),
        (
            "empty scopes with auth none",
            route(json!({ "scopes": [] })),
        ),
        (
            "all settings",
            settings(
                json!({ "reload_s": 3600, "max_body_bytes": 0, "request_id_header": "X-Correlation-Id", "cache_generation": 9007199254740991u64, "admin": { "path": "/_/admin", "token_secret": "ADMIN_TOKEN_2" } }),
            ),
        ),
        ("unused declarations", doc(declarations())),
    ]);
}

// ---- route conflicts (Gateway::compile) -------------------------------------------------------

fn assert_conflict(name: &str, list: Vec<Value>, a: &str, b: &str) {
    let d = routes(list);
    accepts(&d);
    let e = compile_errors(&d);
    let quoted = |id: &str| format!("route \"{id}\"");
    assert!(
        e.iter().any(|(p, m)| p.starts_with("routes[")
            && m.contains("conflicts with")
            && m.contains(&quoted(a))
            && m.contains(&quoted(b))),
        "{name}: expected a conflict naming {a} and {b}:\n{}",
        show(&e)
    );
}

#[test]
fn routes_that_could_match_the_same_request_conflict() {
    assert_conflict(
        "same shape, all methods",
        vec![
            r(json!({ "id": "by-id", "path": "/users/{id}" })),
            r(json!({ "id": "by-name", "path": "/users/{name}" })),
        ],
        "by-id",
        "by-name",
    );
    assert_conflict(
        "same shape, overlapping methods",
        vec![
            r(json!({ "id": "read", "path": "/users/{id}", "methods": ["GET", "HEAD"] })),
            r(json!({ "id": "head", "path": "/users/{name}", "methods": ["HEAD", "DELETE"] })),
        ],
        "read",
        "head",
    );
    assert_conflict(
        "same catch-all",
        vec![
            r(json!({ "id": "a", "path": "/files/{*path}" })),
            r(json!({ "id": "b", "path": "/files/{*rest}", "methods": ["GET"] })),
        ],
        "a",
        "b",
    );
    assert_conflict(
        "wildcard host overlaps an exact host",
        vec![
            r(json!({ "id": "exact", "path": "/v1", "host": "api.example.com" })),
            r(json!({ "id": "wild", "path": "/v1", "host": "*.example.com" })),
        ],
        "exact",
        "wild",
    );
    assert_conflict(
        "nested wildcards",
        vec![
            r(json!({ "id": "outer", "path": "/v1", "host": "*.example.com" })),
            r(json!({ "id": "inner", "path": "/v1", "host": "*.eu.example.com" })),
        ],
        "outer",
        "inner",
    );
    assert_conflict(
        "host-less route overlaps a host route",
        vec![
            r(json!({ "id": "hosted", "path": "/v1/{x}", "host": "api.example.com" })),
            r(json!({ "id": "anywhere", "path": "/v1/{y}" })),
        ],
        "hosted",
        "anywhere",
    );
    assert_conflict(
        "host-less route overlaps a wildcard route",
        vec![
            r(json!({ "id": "anywhere", "path": "/v1" })),
            r(json!({ "id": "wild", "path": "/v1", "host": "*.example.com" })),
        ],
        "anywhere",
        "wild",
    );
    assert_conflict(
        "exact hosts differing in case",
        vec![
            r(json!({ "id": "a", "path": "/v1", "host": "API.example.com" })),
            r(json!({ "id": "b", "path": "/v1", "host": "api.example.com" })),
        ],
        "a",
        "b",
    );
}

#[test]
fn the_conflict_error_names_both_routes_once() {
    let d = routes(vec![
        r(json!({ "id": "first", "path": "/users/{id}", "methods": ["GET"] })),
        r(json!({ "id": "second", "path": "/users/{name}", "methods": ["GET", "POST"] })),
    ]);
    let e = compile_errors(&d);
    assert_eq!(e.len(), 1, "{}", show(&e));
    assert_eq!(e[0].0, "routes[1]");
    assert!(
        e[0].1
            .contains("route \"second\" conflicts with route \"first\""),
        "{}",
        e[0].1
    );
    assert!(e[0].1.contains("GET"), "{}", e[0].1);
}

#[test]
fn routes_that_cannot_match_the_same_request_compile() {
    let cases = vec![
        (
            "same path, disjoint methods",
            vec![
                r(json!({ "id": "get", "path": "/users/{id}", "methods": ["GET", "HEAD"] })),
                r(json!({ "id": "put", "path": "/users/{name}", "methods": ["PUT", "DELETE"] })),
            ],
        ),
        (
            "same path, disjoint exact hosts",
            vec![
                r(json!({ "id": "a", "path": "/v1", "host": "a.example.com" })),
                r(json!({ "id": "b", "path": "/v1", "host": "b.example.com" })),
            ],
        ),
        (
            "wildcard does not cover the apex",
            vec![
                r(json!({ "id": "apex", "path": "/v1", "host": "example.com" })),
                r(json!({ "id": "wild", "path": "/v1", "host": "*.example.com" })),
            ],
        ),
        (
            "disjoint wildcards",
            vec![
                r(json!({ "id": "a", "path": "/v1", "host": "*.a.example" })),
                r(json!({ "id": "b", "path": "/v1", "host": "*.b.example" })),
            ],
        ),
        (
            "static beats parameter beats catch-all",
            vec![
                r(json!({ "id": "me", "path": "/users/me" })),
                r(json!({ "id": "one", "path": "/users/{id}" })),
                r(json!({ "id": "rest", "path": "/users/{id}/{*rest}" })),
                r(json!({ "id": "all", "path": "/{*path}" })),
            ],
        ),
        (
            "trailing slash is another path",
            vec![
                r(json!({ "id": "a", "path": "/users" })),
                r(json!({ "id": "b", "path": "/users/" })),
            ],
        ),
    ];
    for (name, list) in cases {
        let d = routes(list);
        if let Err(e) = Gateway::compile(&d) {
            panic!("{name}: refused:\n{}", show(&pairs(e)));
        }
    }
}

// ---- every error is reported ------------------------------------------------------------------

/// Positions of each path's first appearance, for "in document order" checks.
fn assert_in_order(e: &[(String, String)], expected: &[&str]) {
    let positions: Vec<usize> = expected
        .iter()
        .map(|p| {
            e.iter()
                .position(|(path, _)| path == p)
                .unwrap_or_else(|| panic!("no error at {p:?}:\n{}", show(e)))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "errors are not in document order ({expected:?}):\n{}",
        show(e)
    );
}

#[test]
fn every_error_is_reported_in_document_order() {
    let d = r#"{
      "version": 1,
      "settings": { "reload_s": 0 },
      "upstreams": {
        "users": { "targets": [ { "url": "ftp://users.internal.example" } ], "retries": 9 }
      },
      "auth": {
        "j": { "type": "jwt", "issuer": "https://id.example.com/", "audiences": ["a"],
               "jwks_url": "https://id.example.com/jwks", "algorithms": ["none"] }
      },
      "rate_limits": { "p": { "key": "ip", "limit": 0, "window_s": 1 } },
      "routes": [
        { "id": "a", "metods": ["GET"], "path": "/a", "upstream": "users", "auth": "none" },
        { "id": "b", "path": "b", "upstream": "users", "auth": "none" },
        { "id": "c", "path": "/c", "upstream": "users" }
      ]
    }"#;
    let e = errors(d);
    assert!(e.len() >= 8, "{}", show(&e));
    assert_in_order(
        &e,
        &[
            "settings.reload_s",
            "upstreams.users.targets[0].url",
            "upstreams.users.retries",
            "auth.j.algorithms[0]",
            "rate_limits.p.limit",
            "routes[0].metods",
            "routes[1].path",
            "routes[2]",
        ],
    );
}

#[test]
fn one_broken_declaration_does_not_cascade_into_its_users() {
    // The upstream is invalid, but the route naming it is not reported as "unknown upstream".
    let e = errors(&target(json!({ "url": "ftp://a.example" })));
    assert_eq!(e.len(), 1, "{}", show(&e));
    assert_eq!(e[0].0, "upstreams.users.targets[0].url");
}

// ---- not supported yet (delete this test when the features land) -----------------------------

#[test]
fn the_contract_example_compiles_with_every_feature() {
    compiles(&declared_route(json!({ "auth": ["users-jwt"] })));
    compiles(&declared_route(json!({ "rate_limits": ["per-ip"] })));
    compiles(&cache(json!({})));
    compiles(CONTRACT_EXAMPLE);
}

// ---- known bugs -------------------------------------------------------------------------------

#[test]
fn the_per_consumer_error_path_is_a_json_path() {
    let e = errors(&cache(json!({ "per_consumer": true })));
    assert_eq!(e.len(), 1, "{}", show(&e));
    assert_eq!(e[0].0, PER_CONSUMER_PATH, "{}", show(&e));
}

#[test]
fn every_circuit_breaker_error_is_reported() {
    let e = errors(&upstream(
        json!({ "circuit_breaker": { "failures": 0, "cooldown_s": 0 } }),
    ));
    assert_in_order(
        &e,
        &[
            "upstreams.users.circuit_breaker.failures",
            "upstreams.users.circuit_breaker.cooldown_s",
        ],
    );
}

#[test]
fn integer_valued_floats_are_reported_as_not_integers() {
    check(vec![
        case(
            "10.0",
            settings(json!({ "reload_s": 10.0 })),
            "settings.reload_s",
            "expected an integer, found 10.0",
        ),
        case(
            "1e1",
            settings(json!({ "reload_s": 7 })).replace("\"reload_s\": 7", "\"reload_s\": 1e1"),
            "settings.reload_s",
            "expected an integer",
        ),
    ]);
}

#[test]
fn duplicate_route_ids_are_reported_in_document_order() {
    let e = errors(&routes(vec![
        r(json!({ "id": "a", "path": "/a" })),
        r(json!({ "id": "a", "path": "/b" })),
        r(json!({ "id": "c", "path": "c" })),
    ]));
    assert_in_order(&e, &["routes[1].id", "routes[2].path"]);
}

#[test]
fn header_names_differing_in_case_are_one_header() {
    check(vec![case(
        "X-A and x-a",
        route(json!({ "request_headers": { "set": { "X-A": "1", "x-a": "2" } } })),
        "routes[0].request_headers.set.x-a",
        "x-a",
    )]);
}

#[test]
fn a_non_string_auth_type_is_a_type_error() {
    let e = errors(&jwt(json!({ "type": 1 })));
    assert_eq!(e.len(), 1, "{}", show(&e));
    assert_eq!(e[0].0, "auth.j.type");
    assert!(e[0].1.contains("expected a string"), "{}", e[0].1);
}

#[test]
fn public_key_algorithms_need_at_least_one_key() {
    check(vec![case(
        "keys []",
        jwt(json!({ "jwks_url": null, "keys": [] })),
        "auth.j",
        "need \"jwks_url\" or \"keys\"",
    )]);
}

#[test]
fn headers_removed_twice_in_any_case_are_refused() {
    check(vec![case(
        "Server and server",
        route(json!({ "response_headers": { "remove": ["Server", "server"] } })),
        "routes[0].response_headers.remove[1]",
        "header \"server\" is removed twice",
    )]);
}

#[test]
fn an_auth_scheme_without_type_is_only_missing_its_type() {
    // Which fields are known depends on the type, so no other member is called unknown.
    let (path, message) = sole_error(&jwt(json!({ "type": null })));
    assert_eq!(path, "auth.j");
    assert!(
        message.contains("missing required field \"type\""),
        "{message}"
    );
}

#[test]
fn every_target_error_is_reported() {
    let e = errors(&target(json!({ "url": "ftp://a.example", "weight": 0 })));
    assert_in_order(
        &e,
        &[
            "upstreams.users.targets[0].url",
            "upstreams.users.targets[0].weight",
        ],
    );
}

#[test]
fn cache_errors_are_reported_beside_the_route_errors_they_cause() {
    // An invalid ttl_s does not hide that the route cannot cache, or cannot cache per consumer.
    let e = errors(&route(
        json!({ "methods": ["POST"], "cache": { "ttl_s": 0, "per_consumer": true } }),
    ));
    assert_in_order(
        &e,
        &[
            "routes[0].cache",
            "routes[0].cache.ttl_s",
            PER_CONSUMER_PATH,
        ],
    );
}

// ---- one mistake, one error that names it ----------------------------------------------------

#[test]
fn a_name_of_the_wrong_type_is_only_a_type_error() {
    for (name, d, expected) in [
        ("route id", route(json!({ "id": 5 })), "routes[0].id"),
        ("jwt issuer", jwt(json!({ "issuer": 5 })), "auth.j.issuer"),
    ] {
        let (path, message) = sole_error(&d);
        assert_eq!(path, expected, "{name}: {message}");
        assert!(
            message.contains("expected a string, found a number"),
            "{name}: {message}"
        );
    }
}

#[test]
fn an_invalid_service_binding_is_not_called_a_secret() {
    let (path, message) = sole_error(&target(json!({ "url": "service:my-svc" })));
    assert_eq!(path, "upstreams.users.targets[0].url");
    assert!(
        message.contains("service binding name must be letters, digits and '_'"),
        "{message}"
    );
    assert!(!message.contains("secret"), "{message}");
}

#[test]
fn a_head_only_route_cannot_cache_because_head_is_answered_from_get() {
    let (path, message) = sole_error(&route(
        json!({ "methods": ["HEAD"], "cache": { "ttl_s": 60 } }),
    ));
    assert_eq!(path, "routes[0].cache");
    assert!(
        message.contains(
            "caching needs the route to accept GET (HEAD is answered from the GET entry)"
        ),
        "{message}"
    );
}

#[test]
fn non_ascii_urls_are_refused_with_the_punycode_hint() {
    let e = errors(&target(json!({ "url": "https://bücher.example" })));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, "upstreams.users.targets[0].url");
    assert!(e[0].1.contains("punycode"), "{e:?}");
    assert!(Config::from_json(&target(json!({ "url": "https://xn--bcher-kva.example" }))).is_ok());
    let e = errors(&jwt(json!({ "jwks_url": "https://ïd.example/jwks" })));
    assert_eq!(e[0].0, "auth.j.jwks_url");
}

/// A refused URL is quoted in the error (logged, and shown on the health endpoint) without its
/// user-info, query or fragment: an operator's mistake never puts a password or a key there.
#[test]
fn refused_urls_are_quoted_without_their_credentials() {
    let cases = [
        (
            target(json!({ "url": "https://u.example/v1?api_key=SECRET1" })),
            "https://u.example/v1?REDACTED",
        ),
        (
            target(json!({ "url": "https://user:SECRET1@u.example/#SECRET2" })),
            "https://REDACTED@u.example/#REDACTED",
        ),
        (
            jwt(json!({ "jwks_url": "http://id.example/jwks?access_token=SECRET1" })),
            "http://id.example/jwks?REDACTED",
        ),
        (
            jwt(json!({ "jwks_url": "https://u:SECRET1@id.example/jwks?k=SECRET2" })),
            "https://REDACTED@id.example/jwks?REDACTED",
        ),
        // URL parsers read user-info after any number of slashes (or none) for http(s), and
        // a password holding '/', '?' or '#' ends the authority early: quoted whole either way.
        (
            target(json!({ "url": "https:/user:SECRET1@u.example" })),
            "https:/REDACTED@u.example",
        ),
        (
            target(json!({ "url": "https:///user:SECRET1@u.example" })),
            "https:///REDACTED@u.example",
        ),
        (
            target(json!({ "url": "//user:SECRET1@u.example" })),
            "//REDACTED@u.example",
        ),
        (
            target(json!({ "url": "https://user:SECRET1/x@u.example" })),
            "https://REDACTED@u.example",
        ),
        (
            target(json!({ "url": "https://user:SECRET1#x@u.example" })),
            "https://REDACTED@u.example",
        ),
        (
            target(json!({ "url": "https://user:SECRET1?x@u.example" })),
            "https://REDACTED@u.example",
        ),
        (
            jwt(json!({ "jwks_url": "https:/u:SECRET1@id.example/jwks" })),
            "https:/REDACTED@id.example/jwks",
        ),
        // A CORS origin is a URL too.
        (
            replaced(
                "cors",
                json!({ "web": { "origins": ["https://user:SECRET1@app.example"] } }),
            ),
            "https://REDACTED@app.example",
        ),
        (
            replaced(
                "cors",
                json!({ "web": { "origins": ["https://app.example/?Key=SECRET1"] } }),
            ),
            "https://app.example/?REDACTED",
        ),
    ];
    for (doc, shown) in cases {
        let (_, message) = sole_error(&doc);
        assert!(!message.contains("SECRET"), "{message}");
        assert!(message.contains(shown), "{message} should quote {shown}");
    }
}

/// The router's own checks (route conflicts) list their errors the same way.
#[test]
fn very_many_route_conflicts_are_listed_the_same_way() {
    let routes: Vec<Value> = (0..300)
        .map(|i| json!({ "id": format!("r{i}"), "path": "/same", "upstream": "users", "auth": "none" }))
        .collect();
    let text = replaced("routes", Value::Array(routes));
    let e = match Gateway::compile(&text) {
        Ok(_) => panic!("accepted"),
        Err(e) => common::pairs(e),
    };
    assert_eq!(e.len(), 101, "{:?}", e.last());
    assert_eq!(
        e[100],
        (
            "".into(),
            "and 199 more errors (only the first 100 are listed)".into()
        )
    );
}

/// A `vary` header is read from the client's request, but the gateway replaces some headers
/// before the upstream sees them: keying by the client's copy of the consumer or a claim
/// header would let every consumer who sends none share the entry of an upstream that
/// (honestly) answers `Vary: X-Consumer`. Those names are refused, with what to use instead.
#[test]
fn cache_vary_may_not_name_a_header_the_gateway_sets() {
    let with_claims = || {
        let mut d = declarations();
        merge(
            &mut d,
            json!({ "auth": { "users-jwt": { "forward_claims": { "tenant": "x-tenant" } } } }),
        );
        d
    };
    let vary =
        |names: Value| json!({ "auth": ["users-jwt"], "cache": { "ttl_s": 60, "vary": names } });
    check(vec![
        case(
            "the consumer header",
            declared_route(vary(json!(["accept-language", "X-Consumer"]))),
            "routes[0].cache.vary[1]",
            "per_consumer",
        ),
        case(
            "a claim header",
            route_in(with_claims(), vary(json!(["x-tenant"]))),
            "routes[0].cache.vary[0]",
            "forward_claims",
        ),
        case(
            "the request id",
            declared_route(vary(json!(["x-request-id"]))),
            "routes[0].cache.vary[0]",
            "the gateway sets",
        ),
        case(
            "a forwarding header",
            declared_route(vary(json!(["x-forwarded-for"]))),
            "routes[0].cache.vary[0]",
            "the gateway sets",
        ),
        case(
            "traceparent",
            declared_route(vary(json!(["traceparent"]))),
            "routes[0].cache.vary[0]",
            "the gateway sets",
        ),
    ]);
    accepts(&declared_route(vary(json!([
        "accept-language",
        "x-tenant"
    ]))));
}

/// A header name where a whole header line was pasted (`X-Api-Key: <key>`, or the
/// credential itself) is quoted up to where its value would start, without that value: the
/// error is logged and shown on the health endpoint.
#[test]
fn a_header_name_is_quoted_without_a_pasted_value() {
    let cases = [
        (
            replaced(
                "auth",
                json!({ "k": { "type": "api_key", "header": "X-Api-Key: SECRET1" } }),
            ),
            "\"X-Api-Key…\" is not a valid header name",
        ),
        (
            replaced(
                "auth",
                json!({ "k": { "type": "api_key", "header": "Bearer SECRET1" } }),
            ),
            "\"Bearer REDACTED\" is not a valid header name",
        ),
        (
            doc(json!({ "observability": { "access_log": {
                "request_headers": ["Authorization: Bearer SECRET1"] } } })),
            "\"Authorization…\" is not a valid header name",
        ),
        (
            route(json!({ "request_headers": { "remove": ["x-key=SECRET1"] } })),
            "\"x-key…\" is not a valid header name",
        ),
    ];
    for (doc, want) in cases {
        let (_, message) = sole_error(&doc);
        assert!(!message.contains("SECRET"), "{message}");
        assert!(message.contains(want), "{message} should say {want}");
    }
}

/// A credential pasted as a member's NAME (`{"Authorization: Bearer <jwt>": …}`) reaches
/// neither the error's path nor its message: the name is cut where a pasted value starts, and
/// what is credential-shaped in the rest is redacted.
#[test]
fn a_member_name_is_shown_without_a_pasted_credential() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTRUNSRVQxIn0.U0VDUkVUMXNpZw";
    let cases = [
        (
            route(json!({ "request_headers": { "set": {
                format!("Authorization: Bearer {jwt}"): "x" } } })),
            "routes[0].request_headers.set[\"Authorization…\"]",
        ),
        (
            route(json!({ "request_headers": { "set": { format!("Bearer {jwt}"): "x" } } })),
            // Cut after 64 bytes, too.
            "routes[0].request_headers.set[\"Bearer REDACTED…\"]",
        ),
        (
            route(json!({ "match": { "headers": { "x-api-key=SECRET1": "x" } } })),
            "routes[0].match.headers[\"x-api-key…\"]",
        ),
        (
            route(json!({ "X-Api-Key: SECRET1": 1 })),
            "routes[0][\"X-Api-Key…\"]",
        ),
        (
            doc(json!({ "upstreams": { "gwk_SECRET1abc": { "targets": [] } } })),
            "upstreams[\"gwk_REDACTED\"]",
        ),
    ];
    for (doc, want) in cases {
        let all = errors(&doc);
        let shown = show(&all);
        assert!(!shown.contains("SECRET1"), "{shown}");
        assert!(!shown.contains("eyJ"), "{shown}");
        assert!(
            all.iter().any(|(path, _)| path.starts_with(want)),
            "{shown}\nshould have a path {want}"
        );
    }
}
