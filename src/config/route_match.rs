//! A route's `match`: header and query conditions that distinguish routes on one path shape
//! (API versions by header). Validated here; the router evaluates them
//! ([`crate::router::read_conditions`]) and checks conflicts between them.

use super::json::Json;
use super::model::{HeaderCondition, MatchSpec};
use super::parse::header_name;
use super::reader::{as_object, member_path, Errors, Obj};
use crate::headers::{is_hop_by_hop, is_safe_value};

const MATCH_FIELDS: &[&str] = &["headers", "query"];

/// Headers a condition cannot usefully name: the route's `host` says which host, and
/// connection-level headers mean nothing end to end.
fn unmatchable(lower: &str) -> Option<&'static str> {
    if lower == "host" {
        Some("use the route's \"host\" field to match on the host")
    } else if is_hop_by_hop(lower) {
        Some("it is a hop-by-hop header (use \"websocket\": true for upgrades)")
    } else {
        None
    }
}

/// Reads a route's `match` object at `path`; `identity` says why a header set from the
/// verified identity cannot be matched (a client could send it to pick another's route).
#[inline(never)]
pub(super) fn route_match(
    value: &Json,
    path: &str,
    identity: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<MatchSpec> {
    let before = errs.len();
    let o = Obj::new(value, path, MATCH_FIELDS, errs)?;
    let mut spec = MatchSpec::default();
    if let Some(v) = o.get("headers") {
        let hpath = o.field_path("headers");
        for (name, value) in as_object(v, &hpath, errs).unwrap_or_default() {
            let p = member_path(&hpath, name);
            let Some(lower) = header_name(name, &p, errs) else {
                continue;
            };
            if let Some(why) = unmatchable(&lower) {
                errs.push(&p, format!("header \"{lower}\" cannot be matched: {why}"));
                continue;
            }
            if let Some(problem) = identity(&lower) {
                errs.push(&p, problem);
                continue;
            }
            if spec.headers.iter().any(|(n, _)| *n == lower) {
                errs.push(
                    &p,
                    format!(
                        "header \"{lower}\" is matched twice (header names are case-insensitive)"
                    ),
                );
                continue;
            }
            let Json::String(text) = value else {
                errs.push(
                    &p,
                    format!(
                        "expected a string (an exact value, or \"*\" for any value), found {}",
                        value.kind()
                    ),
                );
                continue;
            };
            let condition = if text == "*" {
                HeaderCondition::Present
            } else if text.is_empty() {
                errs.push(&p, "an exact value must not be empty (use \"*\" to require the header with any value)");
                continue;
            } else if !is_safe_value(text) || text.trim_matches([' ', '\t']) != text {
                errs.push(
                    &p,
                    "a header value has no control characters and no leading or trailing spaces (a request could never carry it)",
                );
                continue;
            } else {
                HeaderCondition::Exact(text.clone())
            };
            spec.headers.push((lower, condition));
        }
    }
    if let Some(v) = o.get("query") {
        let qpath = o.field_path("query");
        for (name, value) in as_object(v, &qpath, errs).unwrap_or_default() {
            let p = member_path(&qpath, name);
            if name.is_empty() {
                errs.push(&p, "a query parameter name must not be empty");
                continue;
            }
            match value {
                Json::String(text) if text == "*" => errs.push(
                    &p,
                    "query conditions are exact values (\"*\" is accepted for headers only)",
                ),
                Json::String(text) => spec.query.push((name.clone(), text.clone())),
                other => errs.push(
                    &p,
                    format!(
                        "expected a string (the exact value), found {}",
                        other.kind()
                    ),
                ),
            }
        }
    }
    if errs.len() > before {
        return None;
    }
    if spec.headers.is_empty() && spec.query.is_empty() {
        errs.push(
            path,
            "must name at least one header or query condition (omit \"match\" to match on the path alone)",
        );
        return None;
    }
    spec.headers.sort_by(|a, b| a.0.cmp(&b.0));
    spec.query.sort_by(|a, b| a.0.cmp(&b.0));
    Some(spec)
}
