//! `routes.schema.json` agrees with the validator: the schema is walked alongside sample
//! documents that the validator accepts, and on every object the schema describes an unknown
//! member is injected — the validator must reject it, and the field list it names in the error
//! must be exactly the fields the schema documents there. So a field added to the validator but
//! not to the schema (or the other way round) fails here, naming the field and its path; and a
//! schema object or field that no sample reaches fails too, naming what to add below.

use edge_gateway::config::Config;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const UNKNOWN: &str = "zzzzzzzzzzzzzzzzzzzzzzzz";

/// Documents that together use every field the schema documents.
fn samples() -> Vec<(&'static str, String)> {
    let full = r#"{
      "$schema": "./routes.schema.json",
      "version": 1,
      "observability": {
        "access_log": { "sample_rate": 0.5, "always_log_errors": true, "client_ip": "truncate",
                        "fields": ["user_agent", "country"], "request_headers": ["x-client-version"],
                        "redact_query": ["sig"] },
        "metrics": { "binding": "GATEWAY_METRICS", "index": "route", "sample_rate": 1 },
        "tracing": { "sample_rate": 1.0, "parent_based": true, "response_traceparent": false }
      },
      "settings": { "reload_s": 10, "max_body_bytes": 1048576, "request_id_header": "x-request-id",
                    "cache_generation": 3, "admin": { "path": "/__gateway", "token_secret": "ADMIN_TOKEN" } },
      "upstreams": {
        "users": { "targets": [ { "url": "https://users.internal.example", "weight": 2 }, { "url": "service:USERS" } ],
                   "timeout_ms": 5000, "retries": 1, "circuit_breaker": { "failures": 5, "cooldown_s": 30 } }
      },
      "auth": {
        "users-jwt": { "type": "jwt", "issuer": "https://id.example.com/", "audiences": ["api"],
                       "algorithms": ["EdDSA", "HS256"], "jwks_url": "https://id.example.com/jwks.json",
                       "keys": [ { "kty": "OKP", "crv": "Ed25519", "x": "OokWR2Y8ZYKlPb_9rOCvKr84kZtsI1MQ1qk_TKa3Rlw" } ],
                       "secret": "JWT_SECRET", "leeway_s": 30, "forward_claims": { "sub": "x-user-id" },
                       "max_lifetime_s": 3600, "typ": "JWT", "require_exp": true, "token_cookie": "session",
                       "token_query": "access_token", "verified_cache_s": 60 },
        "partners": { "type": "api_key", "header": "x-api-key" },
        "query-partners": { "type": "api_key", "query": "api_key" }
      },
      "rate_limits": { "per-user": { "key": "consumer", "limit": 100, "window_s": 60, "burst": 120, "on_store_error": "deny" } },
      "routes": [
        { "id": "get-user", "methods": ["GET", "HEAD"], "host": "api.example.com", "path": "/v1/users/{id}",
          "upstream": "users", "rewrite": "/users/{id}", "auth": ["users-jwt", "partners"], "scopes": ["users:read"],
          "rate_limits": ["per-user"],
          "cache": { "ttl_s": 60, "stale_if_error_s": 300, "default_ttl_s": 30, "stale_while_revalidate_s": 15, "honor_request_directives": true, "vary": ["accept-language"], "per_consumer": true, "max_body_bytes": 1048576 },
          "request_headers": { "set": { "x-api-version": "1" }, "remove": ["cookie"] },
          "response_headers": { "set": { "x-served-by": "gateway" }, "remove": ["server"] } },
        { "id": "orders", "path": "/v1/orders", "upstream": "users", "auth": ["query-partners"] },
        { "id": "public", "path": "/public", "upstream": "users", "auth": "none",
          "observability": { "log_sample_rate": 0.1, "metrics": true, "tracing": false } }
      ]
    }"#;
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/routes.json"))
        .expect("routes.json");
    vec![
        ("full sample", full.to_owned()),
        ("routes.json", shipped),
        ("traffic policy sample", traffic_sample()),
    ]
}

/// CORS policies, IP rule sets and the consumer header.
fn traffic_sample() -> String {
    r#"{
      "version": 1,
      "settings": { "consumer_header": "x-consumer" },
      "upstreams": { "u": { "targets": [ { "url": "https://u.example" } ] } },
      "auth": { "partners": { "type": "api_key", "header": "x-api-key" } },
      "cors": {
        "web-app": { "origins": ["https://app.example.com", "https://*.example.com"], "methods": ["GET", "POST"],
                     "headers": ["authorization", "content-type"], "expose_headers": ["x-request-id"],
                     "credentials": true, "max_age_s": 600 },
        "public": { "origins": ["*"], "headers": ["*"] }
      },
      "ip_rules": {
        "office-only": { "allow": ["203.0.113.0/24", "2001:db8:1::/48"], "allow_countries": ["DE"], "allow_asns": [64500] },
        "block-abusive": { "deny": ["198.51.100.0/24"], "deny_countries": ["T1"], "deny_asns": [64496] }
      },
      "routes": [
        { "id": "a", "path": "/a", "upstream": "u", "auth": ["partners"], "cors": "web-app",
          "ip_rules": ["block-abusive", "office-only"] },
        { "id": "b", "path": "/b", "upstream": "u", "auth": "none", "cors": "public" }
      ]
    }"#
    .to_owned()
}

fn schema() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/routes.schema.json"))
        .expect("routes.schema.json");
    serde_json::from_str(&text).expect("routes.schema.json is JSON")
}

/// A path or schema pointer as shown in a failure.
fn shown(path: &str) -> &str {
    if path.is_empty() {
        "the top level"
    } else {
        path
    }
}

/// One step from a value to a member or element, to find the value again and to name it.
#[derive(Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// The validator's JSON path (`routes[0].cache`, `upstreams["a b"]`).
fn validator_path(steps: &[Step]) -> String {
    let mut out = String::new();
    for s in steps {
        match s {
            Step::Index(i) => out.push_str(&format!("[{i}]")),
            Step::Key(k)
                if !k.is_empty()
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Key(k) => out.push_str(&format!("[{}]", Value::String(k.clone()))),
        }
    }
    out
}

fn at_mut<'a>(v: &'a mut Value, steps: &[Step]) -> &'a mut Value {
    steps.iter().fold(v, |v, s| match s {
        Step::Key(k) => &mut v[k.as_str()],
        Step::Index(i) => &mut v[*i],
    })
}

/// Follows `$ref`s; returns the node and its pointer in the schema.
fn resolve<'a>(schema: &'a Value, node: &'a Value, pointer: String) -> (&'a Value, String) {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let p = r.strip_prefix('#').expect("local $ref");
            let target = schema
                .pointer(p)
                .unwrap_or_else(|| panic!("dangling $ref {r}"));
            resolve(schema, target, p.to_owned())
        }
        None => (node, pointer),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The `oneOf` branch an instance takes: by its `type` member's `const`, else by JSON type.
fn branch<'a>(
    schema: &'a Value,
    node: &'a Value,
    pointer: &str,
    instance: &Value,
) -> Option<(&'a Value, String)> {
    let branches = node.get("oneOf")?.as_array()?;
    branches.iter().enumerate().find_map(|(i, b)| {
        let (b, p) = resolve(schema, b, format!("{pointer}/oneOf/{i}"));
        let by_const = b
            .pointer("/properties/type/const")
            .map(|c| Some(c) == instance.get("type"));
        let by_type = b
            .get("type")
            .and_then(Value::as_str)
            .map(|t| t == json_type(instance));
        let by_value = b.get("const").map(|c| c == instance);
        by_const
            .or(by_type)
            .or(by_value)
            .unwrap_or(false)
            .then_some((b, p))
    })
}

struct Walk<'s> {
    schema: &'s Value,
    doc: Value,
    name: &'static str,
    /// (schema pointer of an object node, field) seen in a sample.
    covered: BTreeSet<(String, String)>,
    failures: Vec<String>,
}

impl Walk<'_> {
    fn walk(&mut self, node: &Value, pointer: String, steps: Vec<Step>) {
        let (node, pointer) = resolve(self.schema, node, pointer);
        let instance = steps.iter().fold(&self.doc, |v, s| match s {
            Step::Key(k) => &v[k.as_str()],
            Step::Index(i) => &v[*i],
        });
        let instance = instance.clone();
        if node.get("properties").is_none() {
            if let Some((b, p)) = branch(self.schema, node, &pointer, &instance) {
                return self.walk(b, p, steps);
            }
        }
        match (&instance, node.get("properties").and_then(Value::as_object)) {
            (Value::Object(members), Some(properties)) => {
                let path = validator_path(&steps);
                for (key, _) in members {
                    if !properties.contains_key(key) {
                        self.failures.push(format!(
                            "{}: the validator accepts \"{key}\" at `{path}` but routes.schema.json ({pointer}) does not document it",
                            self.name
                        ));
                        continue;
                    }
                    self.covered.insert((pointer.clone(), key.clone()));
                    let mut sub = steps.clone();
                    sub.push(Step::Key(key.clone()));
                    self.walk(&properties[key], format!("{pointer}/properties/{key}"), sub);
                }
                self.check_unknown_rejected(
                    node,
                    &pointer,
                    &steps,
                    properties.keys().cloned().collect(),
                );
            }
            (Value::Object(members), None) => {
                if let Some(values) = node.get("additionalProperties").filter(|a| a.is_object()) {
                    for (key, _) in members {
                        let mut sub = steps.clone();
                        sub.push(Step::Key(key.clone()));
                        self.walk(values, format!("{pointer}/additionalProperties"), sub);
                    }
                }
            }
            (Value::Array(items), _) => {
                if let Some(item) = node.get("items") {
                    for i in 0..items.len() {
                        let mut sub = steps.clone();
                        sub.push(Step::Index(i));
                        self.walk(item, format!("{pointer}/items"), sub);
                    }
                }
            }
            _ => {}
        }
    }

    /// Injects an unknown member here: the validator must reject it at this path, and the
    /// fields it lists as expected must be the schema's.
    fn check_unknown_rejected(
        &mut self,
        node: &Value,
        pointer: &str,
        steps: &[Step],
        documented: BTreeSet<String>,
    ) {
        let path = validator_path(steps);
        if node.get("additionalProperties") != Some(&Value::Bool(false)) {
            self.failures.push(format!("routes.schema.json {pointer} (`{path}`) must set \"additionalProperties\": false: the validator rejects unknown fields"));
            return;
        }
        let mut doc = self.doc.clone();
        if let Value::Object(m) = at_mut(&mut doc, steps) {
            m.insert(UNKNOWN.into(), Value::Bool(true));
        }
        let unknown_path =
            validator_path(&[steps.to_vec(), vec![Step::Key(UNKNOWN.into())]].concat());
        let errors = match Config::from_json(&doc.to_string()) {
            Ok(_) => {
                self.failures.push(format!(
                    "{}: an unknown field at `{path}` was accepted",
                    self.name
                ));
                return;
            }
            Err(e) => e.0,
        };
        let Some(error) = errors.iter().find(|e| e.path == unknown_path) else {
            self.failures.push(format!(
                "{}: an unknown field at `{path}` was not reported at `{unknown_path}`: {errors:?}",
                self.name
            ));
            return;
        };
        let Some(list) = error
            .message
            .split("expected one of: ")
            .nth(1)
            .and_then(|l| l.strip_suffix(')'))
        else {
            self.failures.push(format!(
                "{}: the error at `{unknown_path}` lists no expected fields: {}",
                self.name, error.message
            ));
            return;
        };
        let accepted: BTreeSet<String> = list.split(", ").map(str::to_owned).collect();
        for field in accepted.difference(&documented) {
            self.failures.push(format!(
                "the validator accepts \"{field}\" at {} but routes.schema.json ({}) does not document it",
                shown(&path),
                shown(pointer)
            ));
        }
        for field in documented.difference(&accepted) {
            self.failures.push(format!(
                "routes.schema.json ({}) documents \"{field}\" at {} but the validator rejects it",
                shown(pointer),
                shown(&path)
            ));
        }
    }
}

/// Every (object node, field) the schema documents.
fn documented_fields(schema: &Value) -> BTreeSet<(String, String)> {
    fn visit(v: &Value, pointer: String, out: &mut BTreeSet<(String, String)>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::Object(props)) = m.get("properties") {
                    for key in props.keys() {
                        out.insert((pointer.clone(), key.clone()));
                    }
                }
                for (k, child) in m {
                    let k = k.replace('~', "~0").replace('/', "~1");
                    visit(child, format!("{pointer}/{k}"), out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    visit(child, format!("{pointer}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    visit(schema, String::new(), &mut out);
    out
}

#[test]
fn the_schema_documents_exactly_what_the_validator_accepts() {
    let schema = schema();
    let mut covered = BTreeSet::new();
    let mut failures = BTreeSet::new();
    for (name, text) in samples() {
        if let Err(e) = edge_gateway::gateway::Gateway::compile(&text) {
            failures.insert(format!("{name} must be valid: {e}"));
            continue;
        }
        let mut walk = Walk {
            schema: &schema,
            doc: serde_json::from_str(&text).expect("sample is JSON"),
            name,
            covered: BTreeSet::new(),
            failures: Vec::new(),
        };
        walk.walk(&schema, String::new(), Vec::new());
        covered.extend(walk.covered);
        failures.extend(walk.failures);
    }
    let mut missing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (pointer, field) in documented_fields(&schema).difference(&covered) {
        missing
            .entry(pointer.clone())
            .or_default()
            .push(field.clone());
    }
    for (pointer, fields) in missing {
        failures.insert(format!(
            "routes.schema.json documents {} at {} but no sample in tests/schema.rs uses it: add it to a sample so this test can check it against the validator",
            fields.join(", "),
            if pointer.is_empty() { "the top level" } else { &pointer }
        ));
    }
    let failures: Vec<String> = failures.into_iter().collect();
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

#[test]
fn routes_json_points_editors_at_the_schema() {
    let (_, shipped) = samples().remove(1);
    let v: Value = serde_json::from_str(&shipped).unwrap();
    assert_eq!(v["$schema"], "./routes.schema.json");
}

#[test]
fn schema_must_be_a_string_when_present() {
    let doc = r#"{"$schema": 1, "version": 1, "upstreams": {"u": {"targets": [{"url": "https://u.example"}]}},
                  "routes": [{"id": "a", "path": "/a", "upstream": "u", "auth": "none"}]}"#;
    let errors = Config::from_json(doc).unwrap_err().0;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "[\"$schema\"]");
    assert!(
        errors[0].message.contains("expected a string"),
        "{errors:?}"
    );
}
