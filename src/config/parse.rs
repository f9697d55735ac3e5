//! Turns a [`Json`] document into a [`Config`], checking every field of the version 1 contract.
//!
//! The readers of optional sections (auth schemes, rate limits, CORS, IP rules, observability,
//! a route's methods, scopes, rate limits, auth-scheme list, cache, match and canary) are
//! `#[inline(never)]`: a fresh isolate compiles a Wasm function on its first call, so one whose
//! document leaves a feature out never compiles the code that reads it.

use super::json::Json;
use super::model::*;
use super::observability;
use super::reader::{
    as_object, as_string, as_string_list, index_path, member_path, reference, suggest, Errors, Obj,
};
use super::ConfigErrors;
use super::{canary, cors, ip_rules, route_match};
use crate::headers::{is_hop_by_hop, is_safe_value, is_token, GATEWAY_OWNED};
use crate::path::canonicalize;
use std::collections::HashSet;

const ROOT_FIELDS: &[&str] = &[
    "$schema",
    "version",
    "settings",
    "upstreams",
    "auth",
    "rate_limits",
    "routes",
    "observability",
    "cors",
    "ip_rules",
];
const SETTINGS_FIELDS: &[&str] = &[
    "reload_s",
    "max_body_bytes",
    "request_id_header",
    "cache_generation",
    "admin",
    "consumer_header",
];
const ADMIN_FIELDS: &[&str] = &["path", "token_secret"];
const UPSTREAM_FIELDS: &[&str] = &["targets", "timeout_ms", "retries", "circuit_breaker"];
const TARGET_FIELDS: &[&str] = &["url", "weight"];
const BREAKER_FIELDS: &[&str] = &["failures", "cooldown_s"];
const JWT_FIELDS: &[&str] = &[
    "type",
    "issuer",
    "audiences",
    "jwks_url",
    "keys",
    "secret",
    "algorithms",
    "leeway_s",
    "forward_claims",
    "max_lifetime_s",
    "typ",
    "require_exp",
    "token_cookie",
    "token_query",
    "verified_cache_s",
];
const API_KEY_FIELDS: &[&str] = &["type", "header", "query"];
const RATE_LIMIT_FIELDS: &[&str] = &["key", "limit", "window_s", "burst", "on_store_error"];
const ROUTE_FIELDS: &[&str] = &[
    "id",
    "methods",
    "host",
    "path",
    "upstream",
    "rewrite",
    "auth",
    "scopes",
    "rate_limits",
    "cache",
    "request_headers",
    "response_headers",
    "observability",
    "cors",
    "ip_rules",
    "match",
    "canary",
    "websocket",
];
const CACHE_FIELDS: &[&str] = &[
    "ttl_s",
    "stale_if_error_s",
    "vary",
    "per_consumer",
    "max_body_bytes",
    "default_ttl_s",
    "stale_while_revalidate_s",
    "honor_request_directives",
];
const HEADER_RULE_FIELDS: &[&str] = &["set", "remove"];

const MIB: u64 = 1024 * 1024;
/// The longest duration a configuration may state, in seconds.
pub(super) const YEAR_S: u64 = 365 * 24 * 3600;
/// Largest integer every JSON implementation reads exactly.
const MAX_SAFE_INT: u64 = (1 << 53) - 1;

pub fn config(doc: &Json) -> Result<Config, ConfigErrors> {
    let mut errs = Errors::default();
    let Some(root) = Obj::new(doc, "", ROOT_FIELDS, &mut errs) else {
        return Err(ConfigErrors(errs.0));
    };
    if let Some(v) = root.required("version", &mut errs) {
        if !matches!(v, Json::Number(n) if n.as_u64() == Some(1)) {
            errs.push(
                &root.field_path("version"),
                "unsupported version: this gateway reads version 1",
            );
        }
    }
    // Where editors find the JSON Schema (`./routes.schema.json`); the gateway ignores it.
    root.opt_string("$schema", &mut errs);
    let settings = settings(root.get("settings"), &mut errs);
    let upstreams = named_map(&root, "upstreams", true, &mut errs, upstream);
    let auth = named_map(&root, "auth", false, &mut errs, auth_scheme);
    let rate_limits = named_map(&root, "rate_limits", false, &mut errs, rate_limit);
    let observability = observability::observability(root.get("observability"), &auth, &mut errs);
    let cors = named_map(&root, "cors", false, &mut errs, cors::policy);
    let ip_rules = named_map(&root, "ip_rules", false, &mut errs, ip_rules::rule_set);
    consumer_header_is_free(&settings, &auth, &mut errs);
    let names = Names {
        cors_names: declared(&root, "cors"),
        ip_rule_names: declared(&root, "ip_rules"),
        upstreams: declared(&root, "upstreams"),
        auth_names: declared(&root, "auth"),
        rate_limit_names: declared(&root, "rate_limits"),
        auth: &auth,
        rate_limits: &rate_limits,
        upstream_specs: &upstreams,
    };
    let mut routes = Vec::new();
    let rpath = root.field_path("routes");
    match root.required("routes", &mut errs) {
        Some(Json::Array(items)) => {
            if items.is_empty() {
                errs.push(&rpath, "must contain at least one route");
            }
            // Ids of the routes so far, valid or not, so a duplicate is reported with its route.
            let mut ids = HashSet::new();
            for (i, item) in items.iter().enumerate() {
                let path = index_path(&rpath, i);
                if let Some(r) = route(item, &path, &names, &settings, &mut ids, &mut errs) {
                    routes.push(r);
                }
            }
        }
        Some(other) => errs.push(&rpath, format!("expected an array, found {}", other.kind())),
        None => {}
    }
    errs.into_result(Config {
        settings,
        upstreams,
        auth,
        rate_limits,
        routes,
        observability,
        cors,
        ip_rules,
    })
}

/// The consumer header is the gateway's: no other header the gateway sets may share its name.
fn consumer_header_is_free(settings: &Settings, auth: &[AuthScheme], errs: &mut Errors) {
    let name = &settings.consumer_header;
    if *name == settings.request_id_header {
        errs.push(
            "settings.consumer_header",
            format!("\"{name}\" is also settings.request_id_header"),
        );
    }
    for scheme in auth {
        if let AuthKind::Jwt(j) = &scheme.kind {
            if j.forward_claims.iter().any(|(_, h)| h == name) {
                errs.push(
                    &format!("auth.{}.forward_claims", scheme.name),
                    format!(
                        "header \"{name}\" is settings.consumer_header, which carries the consumer"
                    ),
                );
            }
        }
    }
}

/// What routes may refer to. References are checked against the names the document declares
/// (so an invalid upstream does not also make every route using it "unknown"); indices point
/// into the parsed lists, which match the declarations whenever the document is valid.
struct Names<'a> {
    cors_names: Vec<&'a str>,
    ip_rule_names: Vec<&'a str>,
    upstreams: Vec<&'a str>,
    auth_names: Vec<&'a str>,
    rate_limit_names: Vec<&'a str>,
    auth: &'a [AuthScheme],
    rate_limits: &'a [RateLimitPolicy],
    upstream_specs: &'a [Upstream],
}

impl Names<'_> {
    fn auth_kind(&self, name: &str) -> Option<&AuthKind> {
        self.auth.iter().find(|a| a.name == name).map(|a| &a.kind)
    }
    fn rate_limit(&self, name: &str) -> Option<&RateLimitPolicy> {
        self.rate_limits.iter().find(|r| r.name == name)
    }
}

/// Keys of a top-level object, whatever their values.
fn declared<'a>(root: &Obj<'a>, key: &str) -> Vec<&'a str> {
    match root.get(key) {
        Some(Json::Object(members)) => members.iter().map(|(k, _)| k.as_str()).collect(),
        _ => Vec::new(),
    }
}

/// Whether `name` is usable as an upstream, scheme, policy or route name.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

const NAME_RULE: &str = "must be 1-64 characters of letters, digits, '_', '-' or '.'";

/// Reads an object of named entries (`upstreams`, `auth`, `rate_limits`).
fn named_map<T>(
    root: &Obj,
    key: &str,
    required: bool,
    errs: &mut Errors,
    parse: fn(&str, &Json, &str, &mut Errors) -> Option<T>,
) -> Vec<T> {
    let value = if required {
        root.required(key, errs)
    } else {
        root.get(key)
    };
    let map_path = root.field_path(key);
    let Some(members) = value.and_then(|v| as_object(v, &map_path, errs)) else {
        return Vec::new();
    };
    if required && members.is_empty() {
        errs.push(&map_path, "must define at least one entry");
    }
    let mut out = Vec::new();
    for (name, v) in members {
        let path = member_path(&map_path, name);
        if !valid_name(name) {
            errs.push(&path, format!("name {NAME_RULE}"));
            continue;
        }
        if let Some(item) = parse(name, v, &path, errs) {
            out.push(item);
        }
    }
    out
}

/// Whether `name` is usable as a Worker binding name (secrets and service bindings).
pub(super) fn binding_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn secret_name(value: &str, path: &str, errs: &mut Errors) -> bool {
    let ok = binding_name(value);
    if !ok {
        errs.push(
            path,
            "must be the name of a Worker secret (letters, digits and '_'), never the secret itself",
        );
    }
    ok
}

/// A header name that configuration may use: a token, stored lower-case.
pub(super) fn header_name(name: &str, path: &str, errs: &mut Errors) -> Option<String> {
    if !is_token(name) {
        errs.push(path, format!("\"{name}\" is not a valid header name"));
        return None;
    }
    Some(name.to_ascii_lowercase())
}

/// A header name configuration may set or remove: not one the gateway owns.
pub(super) fn settable_header(name: &str, path: &str, errs: &mut Errors) -> Option<String> {
    let lower = header_name(name, path, errs)?;
    if is_hop_by_hop(&lower) || GATEWAY_OWNED.contains(&lower.as_str()) {
        errs.push(
            path,
            format!("header \"{lower}\" is managed by the gateway and cannot be configured"),
        );
        return None;
    }
    Some(lower)
}

fn settings(value: Option<&Json>, errs: &mut Errors) -> Settings {
    let mut s = Settings {
        reload_s: 10,
        max_body_bytes: 10 * MIB,
        request_id_header: "x-request-id".into(),
        cache_generation: 1,
        admin: Admin {
            path: "/__gateway".into(),
            token_secret: None,
        },
        consumer_header: "x-consumer".into(),
    };
    let Some(value) = value else { return s };
    let Some(o) = Obj::new(value, "settings", SETTINGS_FIELDS, errs) else {
        return s;
    };
    if let Some(v) = o.opt_uint("reload_s", 1, 3600, errs) {
        s.reload_s = v;
    }
    if let Some(v) = o.opt_uint("max_body_bytes", 0, 512 * MIB, errs) {
        s.max_body_bytes = v;
    }
    if let Some(v) = o.opt_string("request_id_header", errs) {
        if let Some(h) = settable_header(&v, &o.field_path("request_id_header"), errs) {
            s.request_id_header = h;
        }
    }
    if let Some(v) = o.opt_string("consumer_header", errs) {
        if let Some(h) = settable_header(&v, &o.field_path("consumer_header"), errs) {
            s.consumer_header = h;
        }
    }
    if let Some(v) = o.opt_uint("cache_generation", 0, MAX_SAFE_INT, errs) {
        s.cache_generation = v;
    }
    if let Some(admin) = o.get("admin") {
        if let Some(a) = Obj::new(admin, &o.field_path("admin"), ADMIN_FIELDS, errs) {
            if let Some(p) = a.opt_string("path", errs) {
                let canonical = canonicalize(&p).ok();
                if p.len() < 2 || p.ends_with('/') || canonical.as_deref() != Some(p.as_str()) {
                    errs.push(
                        &a.field_path("path"),
                        "must be a canonical path like \"/__gateway\" (not \"/\", no trailing slash)",
                    );
                } else {
                    s.admin.path = p;
                }
            }
            if let Some(t) = a.opt_string("token_secret", errs) {
                if secret_name(&t, &a.field_path("token_secret"), errs) {
                    s.admin.token_secret = Some(t);
                }
            }
        }
    }
    s
}

fn upstream(name: &str, value: &Json, path: &str, errs: &mut Errors) -> Option<Upstream> {
    let o = Obj::new(value, path, UPSTREAM_FIELDS, errs)?;
    let mut targets = Vec::new();
    match o.required("targets", errs) {
        Some(Json::Array(items)) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                let tpath = index_path(&o.field_path("targets"), i);
                if let Some(t) = target(item, &tpath, errs) {
                    targets.push(t);
                }
            }
        }
        Some(Json::Array(_)) => {
            errs.push(&o.field_path("targets"), "must list at least one target")
        }
        Some(other) => errs.push(
            &o.field_path("targets"),
            format!("expected an array, found {}", other.kind()),
        ),
        None => {}
    }
    let timeout_ms = o.opt_uint("timeout_ms", 1, 300_000, errs).unwrap_or(10_000);
    let retries = o.opt_uint("retries", 0, 5, errs).unwrap_or(0) as u32;
    let circuit_breaker = o
        .get("circuit_breaker")
        .and_then(|v| circuit_breaker(v, &o.field_path("circuit_breaker"), errs));
    if targets.is_empty() {
        return None;
    }
    Some(Upstream {
        name: name.to_owned(),
        targets,
        timeout_ms,
        retries,
        circuit_breaker,
    })
}

/// Every field is read before any is given up on, so each invalid one is reported.
fn circuit_breaker(value: &Json, path: &str, errs: &mut Errors) -> Option<CircuitBreakerSpec> {
    let o = Obj::new(value, path, BREAKER_FIELDS, errs)?;
    let failures = o.req_uint("failures", 1, 10_000, errs);
    let cooldown_s = o.req_uint("cooldown_s", 1, 3600, errs);
    Some(CircuitBreakerSpec {
        failures: failures? as u32,
        cooldown_s: cooldown_s?,
    })
}

fn target(value: &Json, path: &str, errs: &mut Errors) -> Option<Target> {
    let o = Obj::new(value, path, TARGET_FIELDS, errs)?;
    let endpoint = o
        .req_string("url", errs)
        .and_then(|url| endpoint(&url, &o.field_path("url"), errs));
    let weight = o.opt_uint("weight", 1, 1000, errs).unwrap_or(1) as u32;
    Some(Target {
        endpoint: endpoint?,
        weight,
    })
}

/// Parses a target: an absolute http(s) URL without user-info, query or fragment, or
/// `service:<binding>`.
pub fn endpoint(text: &str, path: &str, errs: &mut Errors) -> Option<Endpoint> {
    let shown = shown_url(text);
    if let Some(binding) = text.strip_prefix("service:") {
        if !binding_name(binding) {
            errs.push(
                path,
                format!("\"{shown}\": service binding name must be letters, digits and '_'"),
            );
            return None;
        }
        return Some(Endpoint::Service {
            binding: binding.to_owned(),
        });
    }
    if !text.is_ascii() {
        errs.push(path, non_ascii(&shown));
        return None;
    }
    let url = match url::Url::parse(text) {
        Ok(u) => u,
        Err(e) => {
            errs.push(path, format!("\"{shown}\" is not an absolute URL ({e})"));
            return None;
        }
    };
    let problem = if !matches!(url.scheme(), "http" | "https") {
        Some("scheme must be http or https (or use service:<binding>)")
    } else if !url.username().is_empty() || url.password().is_some() {
        Some("must not contain user-info (credentials belong in request_headers and secrets)")
    } else if url.host_str().is_none_or(str::is_empty) {
        Some("must name a host")
    } else if url.query().is_some() || url.fragment().is_some() {
        Some("must not contain a query or fragment")
    } else {
        None
    };
    if let Some(p) = problem {
        errs.push(path, format!("\"{shown}\": {p}"));
        return None;
    }
    let origin = url.origin().ascii_serialization();
    let base_path = url.path().trim_end_matches('/').to_owned();
    if !base_path.is_empty() && canonicalize(&base_path).ok().as_deref() != Some(base_path.as_str())
    {
        errs.push(path, format!("\"{shown}\": path must be canonical"));
        return None;
    }
    Some(Endpoint::Url { origin, base_path })
}

/// The scheme's `type` decides which fields are known, so without a usable `type` nothing else
/// is checked (every other member would otherwise be reported as unknown).
#[inline(never)]
fn auth_scheme(name: &str, value: &Json, path: &str, errs: &mut Errors) -> Option<AuthScheme> {
    let members = as_object(value, path, errs)?;
    let Some((_, kind)) = members.iter().find(|(k, _)| k == "type") else {
        errs.push(
            path,
            "missing required field \"type\" (\"jwt\" or \"api_key\")",
        );
        return None;
    };
    let type_path = member_path(path, "type");
    let kind = match as_string(kind, &type_path, errs)?.as_str() {
        "jwt" => AuthKind::Jwt(Box::new(jwt_scheme(value, path, errs)?)),
        "api_key" => AuthKind::ApiKey(api_key_scheme(value, path, errs)?),
        t => {
            errs.push(
                &type_path,
                format!("unknown auth type \"{t}\" (expected \"jwt\" or \"api_key\")"),
            );
            return None;
        }
    };
    Some(AuthScheme {
        name: name.to_owned(),
        kind,
    })
}

fn jwt_scheme(value: &Json, path: &str, errs: &mut Errors) -> Option<JwtScheme> {
    let o = Obj::new(value, path, JWT_FIELDS, errs)?;
    let before = errs.0.len();
    let issuer = o.req_string("issuer", errs);
    if issuer.as_deref() == Some("") {
        errs.push(&o.field_path("issuer"), "must not be empty");
    }
    let mut audiences = Vec::new();
    if let Some(list) = o
        .required("audiences", errs)
        .and_then(|v| as_string_list(v, &o.field_path("audiences"), errs))
    {
        if list.is_empty() {
            errs.push(
                &o.field_path("audiences"),
                "must list at least one audience",
            );
        }
        for (aud, p) in list {
            if aud.is_empty() {
                errs.push(&p, "must not be empty");
            }
            audiences.push(aud);
        }
    }
    let jwks_url = o
        .opt_string("jwks_url", errs)
        .filter(|u| jwks_url_ok(u, &o.field_path("jwks_url"), errs));
    let keys = match o.get("keys") {
        None => Vec::new(),
        Some(Json::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, k)| {
                let kpath = index_path(&o.field_path("keys"), i);
                let v = to_value(k);
                match crate::jose::jwk::check_public_jwk(&v) {
                    Ok(()) => Some(v),
                    Err(e) => {
                        errs.push(&kpath, e);
                        None
                    }
                }
            })
            .collect(),
        Some(other) => {
            errs.push(
                &o.field_path("keys"),
                format!("expected an array of JWKs, found {}", other.kind()),
            );
            Vec::new()
        }
    };
    let secret = o
        .opt_string("secret", errs)
        .filter(|s| secret_name(s, &o.field_path("secret"), errs));
    let mut algorithms = Vec::new();
    if let Some(list) = o
        .required("algorithms", errs)
        .and_then(|v| as_string_list(v, &o.field_path("algorithms"), errs))
    {
        if list.is_empty() {
            errs.push(
                &o.field_path("algorithms"),
                "must list at least one algorithm",
            );
        }
        for (name, p) in list {
            match Algorithm::from_name(&name) {
                Some(a) if !algorithms.contains(&a) => algorithms.push(a),
                Some(_) => {}
                None if name.eq_ignore_ascii_case("none") => {
                    errs.push(&p, "\"none\" (unsigned tokens) is never accepted")
                }
                None => {
                    let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
                    let hint = suggest(&name, &names)
                        .map(|s| format!(" (did you mean \"{s}\"?)"))
                        .unwrap_or_else(|| format!(" (supported: {})", names.join(", ")));
                    errs.push(&p, format!("unsupported algorithm \"{name}\"{hint}"));
                }
            }
        }
    }
    // A weak key (RSA under 2048 bits, an even or small exponent, the ROCA fingerprint) is
    // refused with its reason. A key that passed the structural check may still fit none of
    // the scheme's algorithms (wrong curve, an `alg` outside the list): it would be skipped
    // silently at run time, so it is an error here too.
    if !algorithms.is_empty() {
        for (i, key) in keys.iter().enumerate() {
            if let Some(reason) = crate::jose::jwk::weakness(key) {
                errs.push(&index_path(&o.field_path("keys"), i), reason);
            } else if crate::jose::jwk::keys_from_values(std::slice::from_ref(key), &algorithms)
                .is_empty()
            {
                errs.push(
                    &index_path(&o.field_path("keys"), i),
                    "this key cannot verify any of the scheme's algorithms (check kty, crv, alg, use and key size)",
                );
            }
        }
    }
    let has_hmac = algorithms.iter().any(|a| a.is_hmac());
    let has_asymmetric = algorithms.iter().any(|a| !a.is_hmac());
    if has_hmac && secret.is_none() && o.get("secret").is_none() {
        errs.push(
            path,
            "HMAC algorithms (HS*) need \"secret\", the name of a Worker secret",
        );
    }
    if secret.is_some() && !has_hmac && !algorithms.is_empty() {
        errs.push(
            &o.field_path("secret"),
            "a secret is only used with an HMAC algorithm (HS256, HS384, HS512)",
        );
    }
    // An empty `keys` array holds no key; an invalid `jwks_url` or key is reported on its own.
    let no_keys = match o.get("keys") {
        None => true,
        Some(Json::Array(items)) => items.is_empty(),
        Some(_) => false,
    };
    if has_asymmetric && o.get("jwks_url").is_none() && no_keys {
        errs.push(path, "public-key algorithms need \"jwks_url\" or \"keys\"");
    }
    let leeway_s = o.opt_uint("leeway_s", 0, 600, errs).unwrap_or(60);
    let mut forward_claims = Vec::new();
    if let Some(v) = o.get("forward_claims") {
        let fpath = o.field_path("forward_claims");
        match v {
            Json::Object(members) => {
                for (claim, header) in members {
                    let hpath = member_path(&fpath, claim);
                    if claim.is_empty() {
                        errs.push(&hpath, "claim name must not be empty");
                    }
                    if let Some(h) = as_string(header, &hpath, errs) {
                        if let Some(h) = settable_header(&h, &hpath, errs) {
                            if forward_claims.iter().any(|(_, x)| *x == h) {
                                errs.push(&hpath, format!("header \"{h}\" is used for two claims"));
                            }
                            forward_claims.push((claim.clone(), h));
                        }
                    }
                }
            }
            other => errs.push(
                &fpath,
                format!(
                    "expected an object of claim → header, found {}",
                    other.kind()
                ),
            ),
        }
    }
    let max_lifetime_s = o.opt_uint("max_lifetime_s", 1, YEAR_S, errs);
    let typ = o.opt_string("typ", errs);
    if typ.as_deref() == Some("") {
        errs.push(&o.field_path("typ"), "must not be empty");
    }
    let require_exp = o.opt_bool("require_exp", errs).unwrap_or(true);
    let token_cookie = o.opt_string("token_cookie", errs);
    if let Some(c) = &token_cookie {
        if !is_token(c) {
            errs.push(
                &o.field_path("token_cookie"),
                format!("\"{c}\" is not a valid cookie name"),
            );
        }
    }
    let token_query = o.opt_string("token_query", errs);
    if token_query.as_deref() == Some("") {
        errs.push(&o.field_path("token_query"), "must not be empty");
    }
    let verified_cache_s = o.opt_uint("verified_cache_s", 0, 300, errs).unwrap_or(60);
    if errs.0.len() > before {
        return None;
    }
    Some(JwtScheme {
        issuer: issuer?,
        audiences,
        jwks_url,
        keys,
        secret,
        algorithms,
        leeway_s,
        forward_claims,
        max_lifetime_s,
        typ,
        require_exp,
        token_cookie,
        token_query,
        verified_cache_s,
    })
}

/// `text` as errors quote it: with any user-info, and the query and fragment, replaced by
/// `REDACTED` (`https://REDACTED@host/p?REDACTED`), since errors are logged and shown on the
/// health endpoint, and a password or a key in a query must never reach them.
fn shown_url(text: &str) -> String {
    let (prefix, rest) = match text.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), text),
    };
    // Both split at ASCII bytes, so at character boundaries.
    let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let authority = match authority.rfind('@') {
        Some(at) => format!("REDACTED{}", &authority[at..]),
        None => authority.to_owned(),
    };
    let tail = match tail.find(['?', '#']) {
        Some(at) => format!("{}{}REDACTED", &tail[..at], &tail[at..=at]),
        None => tail.to_owned(),
    };
    format!("{prefix}{authority}{tail}")
}

/// URLs in the document are ASCII: the gateway's URL parser carries no Unicode tables.
fn non_ascii(shown: &str) -> String {
    format!("\"{shown}\" must be ASCII: write an internationalised host in its punycode form (xn--…) and percent-encode the path")
}

/// JWKS must come over https, except from loopback (local development and tests).
fn jwks_url_ok(text: &str, path: &str, errs: &mut Errors) -> bool {
    let shown = shown_url(text);
    if !text.is_ascii() {
        errs.push(path, non_ascii(&shown));
        return false;
    }
    match url::Url::parse(text) {
        Ok(u) => {
            let loopback = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
            let ok = (u.scheme() == "https" || (u.scheme() == "http" && loopback))
                && u.username().is_empty()
                && u.password().is_none();
            if !ok {
                errs.push(
                    path,
                    format!("\"{shown}\" must be an https URL without user-info"),
                );
            }
            ok
        }
        Err(e) => {
            errs.push(path, format!("\"{shown}\" is not an absolute URL ({e})"));
            false
        }
    }
}

fn to_value(j: &Json) -> serde_json::Value {
    match j {
        Json::Null => serde_json::Value::Null,
        Json::Bool(b) => serde_json::Value::Bool(*b),
        Json::Number(n) => serde_json::Value::Number(n.clone()),
        Json::String(s) => serde_json::Value::String(s.clone()),
        Json::Array(a) => serde_json::Value::Array(a.iter().map(to_value).collect()),
        Json::Object(m) => {
            serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), to_value(v))).collect())
        }
    }
}

fn api_key_scheme(value: &Json, path: &str, errs: &mut Errors) -> Option<ApiKeyScheme> {
    let o = Obj::new(value, path, API_KEY_FIELDS, errs)?;
    let header = o.opt_string("header", errs);
    let query = o.opt_string("query", errs);
    match (header, query) {
        (Some(h), None) => {
            let h = header_name(&h, &o.field_path("header"), errs)?;
            if h == "authorization"
                || h == "cookie"
                || is_hop_by_hop(&h)
                || GATEWAY_OWNED.contains(&h.as_str())
            {
                errs.push(
                    &o.field_path("header"),
                    format!("\"{h}\" cannot carry an API key"),
                );
                return None;
            }
            Some(ApiKeyScheme {
                source: ApiKeySource::Header(h),
            })
        }
        (None, Some(q)) if !q.is_empty() => Some(ApiKeyScheme {
            source: ApiKeySource::Query(q),
        }),
        (None, Some(_)) => {
            errs.push(&o.field_path("query"), "must not be empty");
            None
        }
        _ => {
            errs.push(
                path,
                "an api_key scheme needs exactly one of \"header\" or \"query\"",
            );
            None
        }
    }
}

#[inline(never)]
fn rate_limit(name: &str, value: &Json, path: &str, errs: &mut Errors) -> Option<RateLimitPolicy> {
    let o = Obj::new(value, path, RATE_LIMIT_FIELDS, errs)?;
    let key_text = o.req_string("key", errs);
    let key = key_text.and_then(|k| {
        let kpath = o.field_path("key");
        let key = match k.as_str() {
            "ip" => Some(RateLimitKey::Ip),
            "consumer" => Some(RateLimitKey::Consumer),
            "route" => Some(RateLimitKey::Route),
            "global" => Some(RateLimitKey::Global),
            _ => {
                if let Some(c) = k.strip_prefix("claim:").filter(|c| !c.is_empty()) {
                    Some(RateLimitKey::Claim(c.to_owned()))
                } else if let Some(h) = k.strip_prefix("header:") {
                    header_name(h, &kpath, errs).map(RateLimitKey::Header)
                } else {
                    None
                }
            }
        };
        if key.is_none() && !k.starts_with("header:") {
            errs.push(
                &kpath,
                format!("unknown key \"{k}\" (expected ip, consumer, route, global, claim:<name> or header:<name>)"),
            );
        }
        key
    });
    let limit = o.req_uint("limit", 1, 1_000_000_000, errs);
    let window_s = o.req_uint("window_s", 1, YEAR_S, errs);
    let burst = o.opt_uint("burst", 1, 1_000_000_000, errs);
    let on_store_error = match o.opt_string("on_store_error", errs).as_deref() {
        None | Some("allow") => Some(StoreErrorPolicy::Allow),
        Some("deny") => Some(StoreErrorPolicy::Deny),
        Some(other) => {
            errs.push(
                &o.field_path("on_store_error"),
                format!("must be \"allow\" or \"deny\", found \"{other}\""),
            );
            None
        }
    };
    let limit = limit?;
    Some(RateLimitPolicy {
        name: name.to_owned(),
        key: key?,
        limit,
        window_s: window_s?,
        burst: burst.unwrap_or(limit),
        on_store_error: on_store_error?,
    })
}

/// Parameter names of a matchit pattern, or why the pattern is unusable.
pub fn pattern_params(pattern: &str) -> Result<Vec<String>, String> {
    if !pattern.starts_with('/') {
        return Err("must start with /".into());
    }
    let mut params: Vec<String> = Vec::new();
    let mut sample = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err("unmatched '}'".into());
        }
        sample.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or("unclosed '{'")?;
        let inner = &after[..close];
        let (catch_all, name) = match inner.strip_prefix('*') {
            Some(n) => (true, n),
            None => (false, inner),
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!(
                "parameter name \"{inner}\" must be letters, digits or '_'"
            ));
        }
        if params.iter().any(|p| p == name) {
            return Err(format!("parameter \"{name}\" appears twice"));
        }
        rest = &after[close + 1..];
        if catch_all && !rest.is_empty() {
            return Err(format!("catch-all {{*{name}}} must end the path"));
        }
        if catch_all && !sample.ends_with('/') {
            return Err(format!("catch-all {{*{name}}} must follow a '/'"));
        }
        params.push(name.to_owned());
        sample.push('x');
    }
    sample.push_str(rest);
    if canonicalize(&sample).ok().as_deref() != Some(sample.as_str()) {
        return Err("must be in canonical form (no '//', dot segments, '\\', ';' or escapes that normalise differently)".into());
    }
    Ok(params)
}

fn template(
    text: &str,
    params: &[String],
    path: &str,
    errs: &mut Errors,
) -> Option<Vec<TemplatePart>> {
    let mut parts = Vec::new();
    let mut sample = String::new();
    let mut rest = text;
    if !text.starts_with('/') {
        errs.push(path, "must start with /");
        return None;
    }
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(TemplatePart::Literal(rest[..open].to_owned()));
            sample.push_str(&rest[..open]);
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            errs.push(path, "unclosed '{'");
            return None;
        };
        let name = &after[..close];
        match params.iter().position(|p| p == name) {
            Some(i) => parts.push(TemplatePart::Param(i)),
            None => {
                errs.push(
                    path,
                    format!("\"{{{name}}}\" is not a parameter of the route's path"),
                );
                return None;
            }
        }
        sample.push('x');
        rest = &after[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Literal(rest.to_owned()));
        sample.push_str(rest);
    }
    if sample.contains(['}', '?', '#'])
        || canonicalize(&sample).ok().as_deref() != Some(sample.as_str())
    {
        errs.push(
            path,
            "must be a canonical path template (no '?', '#', '//', dot segments or odd escapes)",
        );
        return None;
    }
    Some(parts)
}

fn host_pattern(text: &str, path: &str, errs: &mut Errors) -> Option<HostPattern> {
    let lower = text.to_ascii_lowercase();
    let (suffix, name) = match lower.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, lower.as_str()),
    };
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !valid {
        errs.push(
            path,
            format!(
                "\"{text}\" must be a host name like api.example.com or *.example.com (no port)"
            ),
        );
        return None;
    }
    Some(if suffix {
        HostPattern::Suffix(format!(".{name}"))
    } else {
        HostPattern::Exact(name.to_owned())
    })
}

fn header_rules(value: Option<&Json>, path: &str, errs: &mut Errors) -> HeaderRules {
    let mut rules = HeaderRules::default();
    let Some(value) = value else { return rules };
    let Some(o) = Obj::new(value, path, HEADER_RULE_FIELDS, errs) else {
        return rules;
    };
    if let Some(v) = o.get("set") {
        let spath = o.field_path("set");
        match v {
            Json::Object(members) => {
                for (name, value) in members {
                    let hpath = member_path(&spath, name);
                    let (Some(name), Some(value)) = (
                        settable_header(name, &hpath, errs),
                        as_string(value, &hpath, errs),
                    ) else {
                        continue;
                    };
                    if rules.set.iter().any(|(n, _)| *n == name) {
                        errs.push(&hpath, once_only(&name, "set"));
                        continue;
                    }
                    if !is_safe_value(&value) {
                        errs.push(
                            &hpath,
                            "value must not contain control characters (CR, LF, NUL)",
                        );
                        continue;
                    }
                    rules.set.push((name, value));
                }
            }
            other => errs.push(
                &spath,
                format!(
                    "expected an object of header → value, found {}",
                    other.kind()
                ),
            ),
        }
    }
    if let Some(list) = o.opt_string_list("remove", errs) {
        for (name, p) in list {
            let Some(name) = settable_header(&name, &p, errs) else {
                continue;
            };
            if rules.remove.contains(&name) {
                errs.push(&p, once_only(&name, "removed"));
                continue;
            }
            rules.remove.push(name);
        }
    }
    rules
}

/// The error for a header named twice in one list: names differing only in case are one header.
fn once_only(lower: &str, what: &str) -> String {
    format!("header \"{lower}\" is {what} twice (header names are case-insensitive)")
}

/// Reads one route; `ids` holds the ids of the routes before it and receives this one's.
fn route(
    value: &Json,
    path: &str,
    names: &Names,
    settings: &Settings,
    ids: &mut HashSet<String>,
    errs: &mut Errors,
) -> Option<Route> {
    let o = Obj::new(value, path, ROUTE_FIELDS, errs)?;
    let before = errs.0.len();
    let id = o.req_string("id", errs);
    if let Some(id) = &id {
        if !valid_name(id) {
            errs.push(&o.field_path("id"), NAME_RULE);
        } else if !ids.insert(id.clone()) {
            errs.push(&o.field_path("id"), format!("duplicate route id \"{id}\""));
        }
    }
    let websocket = o.opt_bool("websocket", errs).unwrap_or(false);
    let methods = match o.opt_string_list("methods", errs) {
        // A WebSocket route takes handshakes, which are GETs.
        None if websocket => MethodSet::from_names(&["GET"]),
        None => MethodSet::ALL,
        Some(list) => route_methods(list, &o.field_path("methods"), errs),
    };
    let host = o
        .opt_string("host", errs)
        .and_then(|h| host_pattern(&h, &o.field_path("host"), errs));
    let pattern = o.req_string("path", errs);
    let params = pattern.as_deref().and_then(|p| match pattern_params(p) {
        Ok(params) => Some(params),
        Err(e) => {
            errs.push(&o.field_path("path"), format!("\"{p}\" {e}"));
            None
        }
    });
    if let Some(p) = &pattern {
        let admin = &settings.admin.path;
        if p == admin || p.starts_with(&format!("{admin}/")) {
            errs.push(
                &o.field_path("path"),
                format!("\"{p}\" is inside the gateway's admin path \"{admin}\""),
            );
        }
    }
    let upstream = o.req_string("upstream", errs).and_then(|u| {
        reference(
            &u,
            &names.upstreams,
            "upstream",
            &o.field_path("upstream"),
            errs,
        )
    });
    let rewrite = match (o.opt_string("rewrite", errs), &params) {
        (Some(t), Some(params)) => template(&t, params, &o.field_path("rewrite"), errs),
        _ => None,
    };
    let auth = route_auth(&o, names, errs);
    let scopes = o
        .opt_string_list("scopes", errs)
        .map(|list| route_scopes(list, &o.field_path("scopes"), &auth, errs))
        .unwrap_or_default();
    let rate_limits = o
        .opt_string_list("rate_limits", errs)
        .map(|list| route_rate_limits(list, names, &auth, errs))
        .unwrap_or_default();
    let cache = o.get("cache").and_then(|v| {
        let cpath = o.field_path("cache");
        if let Some(problem) = uncacheable(methods) {
            errs.push(&cpath, problem);
        }
        cache_spec(v, &cpath, auth == Some(RouteAuth::None), errs)
    });
    let request_headers = header_rules(
        o.get("request_headers"),
        &o.field_path("request_headers"),
        errs,
    );
    let response_headers = header_rules(
        o.get("response_headers"),
        &o.field_path("response_headers"),
        errs,
    );
    let observability = observability::route_observability(
        o.get("observability"),
        &o.field_path("observability"),
        errs,
    );
    if request_headers
        .set
        .iter()
        .any(|(h, _)| *h == settings.consumer_header)
    {
        errs.push(
            &o.field_path("request_headers"),
            format!(
                "header \"{}\" is settings.consumer_header: the gateway sets it from the authenticated consumer",
                settings.consumer_header
            ),
        );
    }
    let cors = cors::route_cors(&o, &names.cors_names, errs);
    let ip_rules = ip_rules::route_ip_rules(&o, &names.ip_rule_names, errs);
    let conditions = o
        .get("match")
        .and_then(|v| route_match::route_match(v, &o.field_path("match"), errs));
    let facts = canary::RouteFacts {
        upstream_names: &names.upstreams,
        upstreams: names.upstream_specs,
        upstream,
        authenticated: matches!(auth, Some(RouteAuth::Schemes(_))),
    };
    let canary = o
        .get("canary")
        .and_then(|v| canary::canary(v, &o.field_path("canary"), &facts, errs));
    if websocket {
        let route = canary::WebSocketRoute {
            path: &o.path,
            methods,
            methods_written: o.get("methods").is_some(),
            has_cache: o.get("cache").is_some(),
            upstreams: [upstream, canary.as_ref().map(|c| c.upstream)],
        };
        canary::check_websocket(&route, &facts, errs);
    }
    if errs.0.len() > before {
        return None;
    }
    Some(Route {
        id: id?,
        methods,
        host,
        path: pattern?,
        params: params?,
        upstream: upstream?,
        rewrite,
        auth: auth?,
        scopes,
        rate_limits,
        cache,
        request_headers,
        response_headers,
        observability,
        cors,
        ip_rules,
        conditions,
        canary,
        websocket,
    })
}

/// A route's `methods` list (see `route`); out of line, like every optional section's reader.
#[inline(never)]
fn route_methods(list: Vec<(String, String)>, path: &str, errs: &mut Errors) -> MethodSet {
    if list.is_empty() {
        errs.push(path, "must list at least one method (omit it to allow all)");
    }
    let mut set = MethodSet(0);
    for (m, p) in list {
        match MethodSet::bit(&m) {
            Some(b) => set.0 |= b,
            None => {
                let hint = suggest(&m, &MethodSet::NAMES)
                    .map(|s| format!(" (did you mean \"{s}\"?)"))
                    .unwrap_or_else(|| {
                        format!(" (expected one of {})", MethodSet::NAMES.join(", "))
                    });
                errs.push(&p, format!("unsupported method \"{m}\"{hint}"));
            }
        }
    }
    set
}

/// A route's `scopes`, which need authentication.
#[inline(never)]
fn route_scopes(
    list: Vec<(String, String)>,
    path: &str,
    auth: &Option<RouteAuth>,
    errs: &mut Errors,
) -> Vec<String> {
    let mut scopes = Vec::new();
    for (s, p) in list {
        if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c.is_control()) {
            errs.push(&p, "a scope must be non-empty and contain no spaces");
        } else {
            scopes.push(s);
        }
    }
    if !scopes.is_empty() && *auth == Some(RouteAuth::None) {
        errs.push(path, "scopes need authentication, but \"auth\" is \"none\"");
    }
    scopes
}

/// A route's `rate_limits`: references to declared policies, each listed once, keyed on what
/// the route's authentication can provide.
#[inline(never)]
fn route_rate_limits(
    list: Vec<(String, String)>,
    names: &Names,
    auth: &Option<RouteAuth>,
    errs: &mut Errors,
) -> Vec<usize> {
    let mut rate_limits = Vec::new();
    for (name, p) in list {
        let Some(i) = reference(&name, &names.rate_limit_names, "rate limit", &p, errs) else {
            continue;
        };
        if rate_limits.contains(&i) {
            errs.push(&p, format!("rate limit \"{name}\" is listed twice"));
            continue;
        }
        rate_limits.push(i);
        let Some(policy) = names.rate_limit(&name) else {
            continue;
        };
        match (&policy.key, auth) {
            (RateLimitKey::Consumer | RateLimitKey::Claim(_), Some(RouteAuth::None)) => {
                errs.push(
                    &p,
                    format!(
                        "rate limit \"{name}\" is keyed on the consumer, but \"auth\" is \"none\""
                    ),
                );
            }
            (RateLimitKey::Claim(_), Some(RouteAuth::Schemes(schemes)))
                if schemes.iter().any(|s| {
                    let scheme = names.auth_names.get(*s).copied().unwrap_or("");
                    !matches!(names.auth_kind(scheme), Some(AuthKind::Jwt(_)))
                }) =>
            {
                errs.push(&p, format!("rate limit \"{name}\" is keyed on a JWT claim, but not every scheme of the route is a JWT scheme"));
            }
            _ => {}
        }
    }
    rate_limits
}

fn route_auth(o: &Obj, names: &Names, errs: &mut Errors) -> Option<RouteAuth> {
    let apath = o.field_path("auth");
    let Some(v) = o.get("auth") else {
        errs.push(
            &o.path,
            "missing required field \"auth\" (a list of schemes, or \"none\" to make the route public)",
        );
        return None;
    };
    match v {
        Json::String(s) if s == "none" => Some(RouteAuth::None),
        Json::String(s) => {
            errs.push(
                &apath,
                format!("expected \"none\" or a list of scheme names, found \"{s}\""),
            );
            None
        }
        Json::Array(items) => auth_scheme_list(items, &apath, names, errs),
        other => {
            errs.push(
                &apath,
                format!("expected \"none\" or an array, found {}", other.kind()),
            );
            None
        }
    }
}

/// A route's list of auth schemes: declared names, each listed once.
#[inline(never)]
fn auth_scheme_list(
    items: &[Json],
    apath: &str,
    names: &Names,
    errs: &mut Errors,
) -> Option<RouteAuth> {
    if items.is_empty() {
        errs.push(apath, "must name at least one scheme (or be \"none\")");
        return None;
    }
    let known = &names.auth_names;
    let mut schemes = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = index_path(apath, i);
        let Some(name) = as_string(item, &p, errs) else {
            continue;
        };
        match reference(&name, known, "auth scheme", &p, errs) {
            Some(i) if !schemes.contains(&i) => schemes.push(i),
            Some(_) => errs.push(&p, format!("scheme \"{name}\" is listed twice")),
            None => {}
        }
    }
    (schemes.len() == items.len()).then_some(RouteAuth::Schemes(schemes))
}

/// Why a route accepting `methods` cannot cache, if it cannot.
fn uncacheable(methods: MethodSet) -> Option<&'static str> {
    if methods.contains("GET") {
        None
    } else if methods.contains("HEAD") {
        Some("caching needs the route to accept GET (HEAD is answered from the GET entry)")
    } else {
        Some("caching applies to GET and HEAD, and this route accepts neither")
    }
}

/// Reads a route's `cache`; `public` says the route has no authentication (`"auth": "none"`).
#[inline(never)]
fn cache_spec(value: &Json, path: &str, public: bool, errs: &mut Errors) -> Option<CacheSpec> {
    let o = Obj::new(value, path, CACHE_FIELDS, errs)?;
    let ttl_s = o.req_uint("ttl_s", 1, YEAR_S, errs);
    let stale_if_error_s = o.opt_uint("stale_if_error_s", 0, YEAR_S, errs).unwrap_or(0);
    let mut vary = Vec::new();
    if let Some(list) = o.opt_string_list("vary", errs) {
        for (h, p) in list {
            if let Some(h) = header_name(&h, &p, errs) {
                if !vary.contains(&h) {
                    vary.push(h);
                }
            }
        }
    }
    let per_consumer = o.opt_bool("per_consumer", errs).unwrap_or(false);
    if per_consumer && public {
        errs.push(
            &o.field_path("per_consumer"),
            "per-consumer caching needs authentication, but \"auth\" is \"none\"",
        );
    }
    let max_body_bytes = o
        .opt_uint("max_body_bytes", 1, 512 * MIB, errs)
        .unwrap_or(5 * MIB);
    let policy = super::cache_policy::read(&o, ttl_s, errs);
    Some(CacheSpec {
        ttl_s: ttl_s?,
        default_ttl_s: policy.default_ttl_s,
        stale_if_error_s,
        stale_while_revalidate_s: policy.stale_while_revalidate_s,
        honor_request_directives: policy.honor_request_directives,
        vary,
        per_consumer,
        max_body_bytes,
    })
}
