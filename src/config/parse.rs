//! Turns a [`Json`] document into a [`Config`], checking every field of the version 1 contract.
//!
//! The readers of optional sections (auth schemes, rate limits, CORS, IP rules, observability,
//! a route's methods, scopes, rate limits, auth-scheme list, cache, match and canary) are
//! `#[inline(never)]`: a fresh isolate compiles a Wasm function on its first call, so one whose
//! document leaves a feature out never compiles the code that reads it.
//!
//! The root reads the document as a whole (`config`) and its `settings`, and holds what the
//! parts share: the names a route may refer to, named maps, and the name, header and URL checks.
//! Each other part of the document is read in a child module of its own: `upstream`, `auth`,
//! `rate_limit`, `route`, and `pattern` for a route's path, rewrite and host patterns.

mod auth;
mod pattern;
mod rate_limit;
mod route;
mod upstream;

use super::json::Json;
use super::model::{
    Admin, AuthKind, AuthScheme, Config, CorsPolicy, RateLimitPolicy, Settings, Upstream,
};
use super::observability;
use super::reader::{as_object, index_path, member_path, Errors, Obj};
use super::ConfigErrors;
use super::{cors, ip_rules};
use crate::headers::{is_hop_by_hop, is_token, GATEWAY_OWNED};
use crate::path::canonicalize;
use auth::auth_scheme;
use rate_limit::rate_limit;
use route::route;
use std::collections::HashSet;
use upstream::upstream;

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

const MIB: u64 = 1024 * 1024;
/// The longest duration a configuration may state, in seconds.
pub(super) const YEAR_S: u64 = 365 * 24 * 3600;
/// Largest integer every JSON implementation reads exactly.
const MAX_SAFE_INT: u64 = (1 << 53) - 1;

pub fn config(doc: &Json) -> Result<Config, ConfigErrors> {
    let mut errs = Errors::default();
    let Some(root) = Obj::new(doc, "", ROOT_FIELDS, &mut errs) else {
        return Err(errs.into_errors());
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
    no_limit_on_identity_headers(&settings, &auth, &rate_limits, &mut errs);
    let names = Names {
        cors_names: declared(&root, "cors"),
        ip_rule_names: declared(&root, "ip_rules"),
        upstreams: declared(&root, "upstreams"),
        auth_names: declared(&root, "auth"),
        rate_limit_names: declared(&root, "rate_limits"),
        auth: &auth,
        rate_limits: &rate_limits,
        upstream_specs: &upstreams,
        cors: &cors,
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

/// Whether `name` (lower-case) is a header the gateway sets from the verified identity (the
/// consumer header, a `forward_claims` header): then whatever reads it from the request
/// (`reader`) would read the client's own copy, which anyone can send with a victim's value.
/// The refusal, and the key that reads the identity itself (`consumer`, `claim:<name>`).
pub(super) fn identity_header(
    name: &str,
    settings: &Settings,
    auth: &[AuthScheme],
    reader: &str,
) -> Option<(String, String)> {
    let spoofable = format!("{reader} would read the client's copy, which anyone can send");
    if name == settings.consumer_header {
        return Some((
            format!("header \"{name}\" is settings.consumer_header, which the gateway sets from the verified identity: {spoofable}"),
            "consumer".to_owned(),
        ));
    }
    auth.iter().find_map(|scheme| match &scheme.kind {
        AuthKind::Jwt(j) => j.forward_claims.iter().find(|(_, h)| h == name).map(|(claim, _)| {
            (
                format!("header \"{name}\" is a forward_claims header of auth scheme \"{}\" (claim \"{claim}\"): {spoofable}", scheme.name),
                format!("claim:{claim}"),
            )
        }),
        AuthKind::ApiKey(_) => None,
    })
}

/// A `header:<name>` rate-limit key reads the request as the client sent it: keyed on an
/// identity header, anyone could spend a victim's bucket, or send a new value per request to
/// escape the limit.
fn no_limit_on_identity_headers(
    settings: &Settings,
    auth: &[AuthScheme],
    rate_limits: &[super::RateLimitPolicy],
    errs: &mut Errors,
) {
    for policy in rate_limits {
        let super::RateLimitKey::Header(name) = &policy.key else {
            continue;
        };
        if let Some((problem, key)) = identity_header(name, settings, auth, "the limit") {
            let path = member_path(&member_path("rate_limits", &policy.name), "key");
            errs.push(&path, format!("{problem}; use \"{key}\""));
        }
    }
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
                    &member_path(&member_path("auth", &scheme.name), "forward_claims"),
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
    cors: &'a [CorsPolicy],
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
        errs.push(
            path,
            format!("\"{}\" is not a valid header name", shown_header_name(name)),
        );
        return None;
    }
    Some(name.to_ascii_lowercase())
}

/// An invalid header name as its error quotes it: cut where a header value would start (a
/// whole `X-Api-Key: <key>` line pasted as a name), and scrubbed of credential shapes (a
/// `Bearer` token pasted instead of the name).
fn shown_header_name(name: &str) -> String {
    let shown = match name.find([':', '=']) {
        Some(at) => format!("{}…", &name[..at]),
        None => name.to_owned(),
    };
    crate::observe::redact::Redactor::default().text(&shown)
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

/// `text` as errors quote it (see [`crate::observe::shown::shown_url`]): errors are logged and
/// shown on the health endpoint, and a password or a key in a query must never reach them.
pub(super) use crate::observe::shown::shown_url;

/// URLs in the document are ASCII: the gateway's URL parser carries no Unicode tables.
fn non_ascii(shown: &str) -> String {
    format!("\"{shown}\" must be ASCII: write an internationalised host in its punycode form (xn--…) and percent-encode the path")
}
