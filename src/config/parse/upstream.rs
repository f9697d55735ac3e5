//! An upstream (`upstreams.<name>`): its targets, timeout, retries and circuit breaker, and
//! the target URL or service binding each target names. Separate from the routes that refer
//! to upstreams by name: this is the one place a target's URL is checked.

use super::{binding_name, non_ascii, shown_url};
use crate::config::json::Json;
use crate::config::model::{CircuitBreakerSpec, Endpoint, Target, Upstream};
use crate::config::reader::{index_path, Errors, Obj};
use crate::path::canonicalize;

const UPSTREAM_FIELDS: &[&str] = &["targets", "timeout_ms", "retries", "circuit_breaker"];
const TARGET_FIELDS: &[&str] = &["url", "weight"];
const BREAKER_FIELDS: &[&str] = &["failures", "cooldown_s"];

pub(super) fn upstream(
    name: &str,
    value: &Json,
    path: &str,
    errs: &mut Errors,
) -> Option<Upstream> {
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
pub(super) fn endpoint(text: &str, path: &str, errs: &mut Errors) -> Option<Endpoint> {
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
