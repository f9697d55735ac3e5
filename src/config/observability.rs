//! The top-level `observability` section and a route's `observability` overrides.
//!
//! Everything here decides what reaches log lines and metrics, so a mistake that could leak a
//! credential (`request_headers` naming one) is refused, not tolerated.

use super::json::Json;
use super::model::*;
use super::parse::{binding_name, header_name};
use super::reader::{suggest, Errors, Obj};

const OBSERVABILITY_FIELDS: &[&str] = &["access_log", "metrics", "tracing"];
const ACCESS_LOG_FIELDS: &[&str] = &[
    "sample_rate",
    "always_log_errors",
    "client_ip",
    "fields",
    "request_headers",
    "redact_query",
];
const METRICS_FIELDS: &[&str] = &["binding", "index", "sample_rate"];
const TRACING_FIELDS: &[&str] = &["sample_rate", "parent_based", "response_traceparent"];
const ROUTE_OBSERVABILITY_FIELDS: &[&str] = &["log_sample_rate", "metrics", "tracing"];

/// Bindings the gateway itself uses for other things than metrics.
const RESERVED_BINDINGS: [&str; 3] = ["CONFIG", "RATE_LIMITER", "CONFIG_LOCK"];

/// Reads the top-level `observability`; `auth` are the document's valid schemes (their API-key
/// headers may never be logged).
pub(super) fn observability(
    value: Option<&Json>,
    auth: &[AuthScheme],
    errs: &mut Errors,
) -> Observability {
    let mut out = Observability::default();
    let Some(value) = value else { return out };
    let Some(o) = Obj::new(value, "observability", OBSERVABILITY_FIELDS, errs) else {
        return out;
    };
    if let Some(v) = o.get("access_log") {
        out.access_log = access_log(v, &o.field_path("access_log"), auth, errs);
    }
    if let Some(v) = o.get("metrics") {
        out.metrics = metrics(v, &o.field_path("metrics"), errs);
    }
    if let Some(v) = o.get("tracing") {
        out.tracing = tracing(v, &o.field_path("tracing"), errs);
    }
    out
}

#[inline(never)]
fn access_log(value: &Json, path: &str, auth: &[AuthScheme], errs: &mut Errors) -> AccessLogSpec {
    let mut spec = AccessLogSpec::default();
    let Some(o) = Obj::new(value, path, ACCESS_LOG_FIELDS, errs) else {
        return spec;
    };
    if let Some(r) = rate(&o, "sample_rate", errs) {
        spec.sample_rate = r;
    }
    if let Some(b) = o.opt_bool("always_log_errors", errs) {
        spec.always_log_errors = b;
    }
    if let Some(mode) = one_of(&o, "client_ip", &ClientIpMode::NAMES, errs) {
        spec.client_ip = match mode {
            "full" => ClientIpMode::Full,
            "omit" => ClientIpMode::Omit,
            _ => ClientIpMode::Truncate,
        };
    }
    if let Some(list) = o.opt_string_list("fields", errs) {
        let names: Vec<&str> = LogField::ALL.iter().map(|f| f.name()).collect();
        for (name, p) in list {
            match LogField::ALL.into_iter().find(|f| f.name() == name) {
                Some(f) if spec.fields.contains(&f) => {
                    errs.push(&p, format!("field \"{name}\" is listed twice"))
                }
                Some(f) => spec.fields.push(f),
                None => errs.push(&p, unknown_value("field", &name, &names)),
            }
        }
    }
    if let Some(list) = o.opt_string_list("request_headers", errs) {
        for (name, p) in list {
            let Some(lower) = header_name(&name, &p, errs) else {
                continue;
            };
            if let Some(why) = credential_header(&lower, auth) {
                errs.push(
                    &p,
                    format!("header \"{lower}\" {why}, so it is never logged"),
                );
            } else if spec.request_headers.contains(&lower) {
                errs.push(
                    &p,
                    format!(
                        "header \"{lower}\" is listed twice (header names are case-insensitive)"
                    ),
                );
            } else {
                spec.request_headers.push(lower);
            }
        }
    }
    if let Some(list) = o.opt_string_list("redact_query", errs) {
        for (name, p) in list {
            if name.is_empty() {
                errs.push(&p, "a query parameter name must not be empty");
            } else if spec.redact_query.contains(&name) {
                errs.push(&p, format!("query parameter \"{name}\" is listed twice"));
            } else {
                spec.redact_query.push(name);
            }
        }
    }
    spec
}

/// Why a request header may not be logged, if it carries a credential.
fn credential_header(lower: &str, auth: &[AuthScheme]) -> Option<String> {
    if crate::headers::CREDENTIAL_HEADERS.contains(&lower) {
        return Some("carries credentials".to_owned());
    }
    auth.iter().find_map(|scheme| match &scheme.kind {
        AuthKind::ApiKey(ApiKeyScheme {
            source: ApiKeySource::Header(h),
        }) if h == lower => Some(format!(
            "carries the API key of auth scheme \"{}\"",
            scheme.name
        )),
        _ => None,
    })
}

#[inline(never)]
fn metrics(value: &Json, path: &str, errs: &mut Errors) -> MetricsSpec {
    let mut spec = MetricsSpec::default();
    let Some(o) = Obj::new(value, path, METRICS_FIELDS, errs) else {
        return spec;
    };
    if let Some(b) = o.opt_string("binding", errs) {
        let bpath = o.field_path("binding");
        if !binding_name(&b) || b.starts_with(|c: char| c.is_ascii_digit()) {
            errs.push(
                &bpath,
                format!("\"{b}\" is not a binding name (letters, digits and '_', not starting with a digit)"),
            );
        } else if RESERVED_BINDINGS.contains(&b.as_str()) {
            errs.push(
                &bpath,
                format!("\"{b}\" is a binding the gateway uses for something else; name an Analytics Engine dataset binding"),
            );
        } else {
            spec.binding = b;
            spec.binding_explicit = true;
        }
    }
    if let Some(index) = one_of(&o, "index", &MetricsIndex::NAMES, errs) {
        spec.index = match index {
            "consumer" => MetricsIndex::Consumer,
            "host" => MetricsIndex::Host,
            _ => MetricsIndex::Route,
        };
    }
    if let Some(r) = rate(&o, "sample_rate", errs) {
        spec.sample_rate = r;
    }
    spec
}

#[inline(never)]
fn tracing(value: &Json, path: &str, errs: &mut Errors) -> TracingSpec {
    let mut spec = TracingSpec::default();
    let Some(o) = Obj::new(value, path, TRACING_FIELDS, errs) else {
        return spec;
    };
    if let Some(r) = rate(&o, "sample_rate", errs) {
        spec.sample_rate = r;
    }
    if let Some(b) = o.opt_bool("parent_based", errs) {
        spec.parent_based = b;
    }
    if let Some(b) = o.opt_bool("response_traceparent", errs) {
        spec.response_traceparent = b;
    }
    spec
}

/// Reads a route's `observability`.
pub(super) fn route_observability(
    value: Option<&Json>,
    path: &str,
    errs: &mut Errors,
) -> RouteObservability {
    let mut out = RouteObservability::default();
    let Some(value) = value else { return out };
    let Some(o) = Obj::new(value, path, ROUTE_OBSERVABILITY_FIELDS, errs) else {
        return out;
    };
    out.log_sample_rate = rate(&o, "log_sample_rate", errs);
    if let Some(b) = o.opt_bool("metrics", errs) {
        out.metrics = b;
    }
    if let Some(b) = o.opt_bool("tracing", errs) {
        out.tracing = b;
    }
    out
}

/// An optional share between 0 and 1 (integers 0 and 1 included).
fn rate(o: &Obj, key: &str, errs: &mut Errors) -> Option<f64> {
    let value = o.get(key)?;
    let path = o.field_path(key);
    let Json::Number(n) = value else {
        errs.push(
            &path,
            format!("expected a number between 0 and 1, found {}", value.kind()),
        );
        return None;
    };
    match n.as_f64() {
        Some(r) if (0.0..=1.0).contains(&r) => Some(r),
        _ => {
            errs.push(&path, format!("must be between 0 and 1, found {n}"));
            None
        }
    }
}

/// An optional string that must be one of `names`; the error suggests the closest.
fn one_of<'n>(o: &Obj, key: &str, names: &[&'n str], errs: &mut Errors) -> Option<&'n str> {
    let value = o.opt_string(key, errs)?;
    let found = names.iter().find(|n| **n == value).copied();
    if found.is_none() {
        errs.push(&o.field_path(key), unknown_value(key, &value, names));
    }
    found
}

fn unknown_value(what: &str, value: &str, names: &[&str]) -> String {
    match suggest(value, names) {
        Some(s) => format!("unknown {what} \"{value}\" (did you mean \"{s}\"?)"),
        None => format!(
            "unknown {what} \"{value}\" (expected one of: {})",
            names.join(", ")
        ),
    }
}
