//! A route's `canary` (a share of traffic to another upstream) and `websocket` flag: their
//! validation, with the route facts they depend on.

use super::json::Json;
use super::model::{CanarySpec, MethodSet, StickyKey, Upstream};
use super::parse::{header_name, settable_header};
use super::reader::{reference, Errors, Obj};

const CANARY_FIELDS: &[&str] = &["upstream", "percent", "sticky", "override_header"];

/// What a route's `canary` and `websocket` are checked against.
pub(super) struct RouteFacts<'a> {
    /// Every upstream name the document declares.
    pub upstream_names: &'a [&'a str],
    /// The upstreams that parsed (for their `retries`).
    pub upstreams: &'a [Upstream],
    /// The route's own upstream, when it is valid.
    pub upstream: Option<usize>,
    /// Whether the route authenticates (`auth` lists schemes).
    pub authenticated: bool,
}

/// Reads a route's `canary` at `path`.
#[inline(never)]
pub(super) fn canary(
    value: &Json,
    path: &str,
    facts: &RouteFacts,
    errs: &mut Errors,
) -> Option<CanarySpec> {
    let o = Obj::new(value, path, CANARY_FIELDS, errs)?;
    let before = errs.len();
    let upath = o.field_path("upstream");
    let upstream = o.req_string("upstream", errs).and_then(|name| {
        let i = reference(&name, facts.upstream_names, "upstream", &upath, errs)?;
        if facts.upstream == Some(i) {
            errs.push(
                &upath,
                format!("the canary upstream must differ from the route's own upstream \"{name}\""),
            );
            return None;
        }
        Some(i)
    });
    let basis_points = o
        .required("percent", errs)
        .and_then(|v| percent(v, &o.field_path("percent"), errs));
    let spath = o.field_path("sticky");
    let sticky = match o.opt_string("sticky", errs) {
        None if facts.authenticated => Some(StickyKey::Consumer),
        None => Some(StickyKey::Ip),
        Some(text) => sticky(&text, &spath, facts.authenticated, errs),
    };
    let override_header = o.opt_string("override_header", errs).and_then(|h| {
        let opath = o.field_path("override_header");
        let lower = settable_header(&h, &opath, errs)?;
        // Removing a credential from the forwarded request (as an override header is) would
        // silently break the upstream's own authentication.
        if crate::headers::CREDENTIAL_HEADERS.contains(&lower.as_str()) {
            errs.push(
                &opath,
                format!("\"{lower}\" carries credentials; the override header is removed before forwarding"),
            );
            return None;
        }
        Some(lower)
    });
    if errs.len() > before {
        return None;
    }
    Some(CanarySpec {
        upstream: upstream?,
        basis_points: basis_points?,
        sticky: sticky?,
        override_header,
    })
}

/// `percent`: 0–100 with at most two decimals, as hundredths of a percent.
fn percent(value: &Json, path: &str, errs: &mut Errors) -> Option<u32> {
    let Json::Number(n) = value else {
        errs.push(
            path,
            format!("expected a number from 0 to 100, found {}", value.kind()),
        );
        return None;
    };
    let Some(p) = n.as_f64().filter(|p| (0.0..=100.0).contains(p)) else {
        errs.push(path, format!("must be between 0 and 100, found {n}"));
        return None;
    };
    let scaled = p * 100.0;
    let rounded = scaled.round();
    if (scaled - rounded).abs() > 1e-6 {
        errs.push(
            path,
            format!("at most two decimals are supported (0.01 % steps), found {n}"),
        );
        return None;
    }
    Some(rounded as u32)
}

/// `sticky`: `consumer` | `ip` | `header:<name>` | `cookie:<name>` | `none`.
fn sticky(text: &str, path: &str, authenticated: bool, errs: &mut Errors) -> Option<StickyKey> {
    const FORMS: &str =
        "expected \"consumer\", \"ip\", \"header:<name>\", \"cookie:<name>\" or \"none\"";
    match text {
        "consumer" if !authenticated => {
            errs.push(
                path,
                "\"consumer\" needs authentication, but \"auth\" is \"none\" (use \"ip\", a header or a cookie)",
            );
            None
        }
        "consumer" => Some(StickyKey::Consumer),
        "ip" => Some(StickyKey::Ip),
        "none" => Some(StickyKey::None),
        _ => {
            if let Some(name) = text.strip_prefix("header:") {
                header_name(name, path, errs).map(StickyKey::Header)
            } else if let Some(name) = text.strip_prefix("cookie:") {
                if crate::headers::is_token(name) {
                    Some(StickyKey::Cookie(name.to_owned()))
                } else {
                    errs.push(path, format!("\"{name}\" is not a valid cookie name"));
                    None
                }
            } else {
                errs.push(path, format!("{FORMS}, found \"{text}\""));
                None
            }
        }
    }
}

/// The facts of a `websocket: true` route that its rules are about.
pub(super) struct WebSocketRoute<'a> {
    pub path: &'a str,
    pub methods: MethodSet,
    /// Whether the route listed `methods` (absent means GET only on a WebSocket route).
    pub methods_written: bool,
    pub has_cache: bool,
    /// The route's upstream and its canary's, when valid.
    pub upstreams: [Option<usize>; 2],
}

/// Checks a `websocket: true` route: GET only, no cache, and upstreams that never retry (a
/// handshake is sent once).
#[inline(never)]
pub(super) fn check_websocket(route: &WebSocketRoute, facts: &RouteFacts, errs: &mut Errors) {
    let at = |field: &str| super::reader::member_path(route.path, field);
    if route.methods_written && route.methods != MethodSet::from_names(&["GET"]) {
        errs.push(
            &at("methods"),
            "a WebSocket route accepts only GET (the handshake); write [\"GET\"] or omit \"methods\"",
        );
    }
    if route.has_cache {
        errs.push(&at("cache"), "a WebSocket route cannot be cached");
    }
    for i in route.upstreams.iter().flatten() {
        let Some(u) = facts
            .upstreams
            .iter()
            .find(|u| Some(u.name.as_str()) == facts.upstream_names.get(*i).copied())
        else {
            continue;
        };
        if u.retries > 0 {
            errs.push(
                &at("websocket"),
                format!(
                    "upstream \"{}\" retries ({}), but a WebSocket handshake is never retried: use an upstream with \"retries\": 0",
                    u.name, u.retries
                ),
            );
        }
    }
}
