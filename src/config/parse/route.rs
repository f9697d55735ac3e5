//! A route (`routes[i]`): its id, methods, host and path, upstream, rewrite, authentication,
//! scopes, rate limits, cache and header rules, and the cross-checks between them. Separate
//! from the named sections it refers to, which are read before any route.

use super::pattern::{host_pattern, pattern_params, template};
use super::{header_name, settable_header, valid_name, Names, MIB, NAME_RULE, YEAR_S};
use crate::config::json::Json;
use crate::config::model::{
    AuthKind, AuthScheme, CacheSpec, HeaderRules, MethodSet, RateLimitKey, Route, RouteAuth,
    Settings,
};
use crate::config::reader::{as_string, index_path, member_path, reference, suggest, Errors, Obj};
use crate::config::{cache_policy, canary, cors, ip_rules, observability, route_match};
use crate::headers::is_safe_value;
use std::collections::HashSet;

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

/// Reads one route; `ids` holds the ids of the routes before it and receives this one's.
pub(super) fn route(
    value: &Json,
    path: &str,
    names: &Names,
    settings: &Settings,
    ids: &mut HashSet<String>,
    errs: &mut Errors,
) -> Option<Route> {
    let o = Obj::new(value, path, ROUTE_FIELDS, errs)?;
    let before = errs.len();
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
        // In any letter case: the gateway refuses those spellings of its prefix at runtime.
        if crate::forward::admin_rest(p, admin).is_some() {
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
        let set_upstream = |h: &str| set_by_gateway(h, settings, names.auth);
        cache_spec(
            v,
            &cpath,
            auth == Some(RouteAuth::None),
            &set_upstream,
            errs,
        )
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
    if o.get("cors").is_some() {
        // The policy alone answers for CORS on the route: a fixed `Access-Control-Allow-Origin:
        // *` would reach the origins the policy refuses, and any such header would contradict
        // the policy's answers to the others.
        for (h, _) in &response_headers.set {
            if crate::headers::CORS_RESPONSE_HEADERS.contains(&h.as_str()) {
                errs.push(
                    &o.field_path("response_headers"),
                    format!(
                        "header \"{h}\" is decided by the route's CORS policy; set it in the policy (or drop the route's \"cors\")"
                    ),
                );
            }
        }
    }
    // A browser sends cookies with a handshake from any site and hides nothing of its answer
    // from the page (no preflight, no CORS): only the policy's origins check stands between
    // another site's page and the user's session (cross-site WebSocket hijacking). A `"*"`
    // policy checks nothing.
    let any_origin = cors
        .and_then(|i| names.cors_names.get(i))
        .and_then(|name| names.cors.iter().find(|p| p.name == *name))
        .is_some_and(|p| p.any_origin);
    if websocket && (o.get("cors").is_none() || any_origin) {
        for name in cookie_schemes(auth.as_ref(), names) {
            errs.push(
                &o.field_path("websocket"),
                format!(
                    "auth scheme \"{name}\" reads its token from a cookie, which browsers send with a WebSocket handshake from any site: name a \"cors\" policy listing the origins that may open it (not \"*\")"
                ),
            );
        }
    }
    let ip_rules = ip_rules::route_ip_rules(&o, &names.ip_rule_names, errs);
    let conditions = o.get("match").and_then(|v| {
        let identity = |h: &str| {
            super::identity_header(h, settings, names.auth, "a condition").map(|(p, _)| p)
        };
        route_match::route_match(v, &o.field_path("match"), &identity, errs)
    });
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
    if errs.len() > before {
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

/// The names of the route's auth schemes that read a cookie (a JWT scheme's `token_cookie`):
/// credentials a browser attaches whichever site made the request.
fn cookie_schemes<'n>(auth: Option<&RouteAuth>, names: &'n Names) -> Vec<&'n str> {
    let Some(RouteAuth::Schemes(list)) = auth else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|i| names.auth_names.get(*i).copied())
        .filter(|name| {
            matches!(names.auth_kind(name), Some(AuthKind::Jwt(j)) if j.token_cookie.is_some())
        })
        .collect()
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

/// Why the upstream never sees the client's copy of request header `name` (lower-case): the
/// gateway sets it on every request. A cache key reading the client's copy would describe
/// another request than the one the upstream answers.
fn set_by_gateway(name: &str, settings: &Settings, auth: &[AuthScheme]) -> Option<String> {
    if name == settings.consumer_header {
        return Some(format!(
            "header \"{name}\" is settings.consumer_header, which the gateway sets upstream: the key would read the client's copy, not the consumer; use \"per_consumer\": true"
        ));
    }
    for scheme in auth {
        if let AuthKind::Jwt(j) = &scheme.kind {
            if j.forward_claims.iter().any(|(_, h)| h == name) {
                return Some(format!(
                    "header \"{name}\" is a forward_claims header of auth scheme \"{}\", which the gateway sets upstream: the key would read the client's copy, not the claim; use \"per_consumer\": true",
                    scheme.name
                ));
            }
        }
    }
    let owned = crate::headers::GATEWAY_OWNED.contains(&name)
        || name.starts_with(crate::gateway::CLIENT_FORWARDING_PREFIX)
        || name == settings.request_id_header;
    owned.then(|| {
        format!(
            "header \"{name}\" is one the gateway sets upstream: the key would read the client's copy, which the upstream never sees (the key already holds the scheme and the host)"
        )
    })
}

/// Reads a route's `cache`; `public` says the route has no authentication (`"auth": "none"`),
/// and `set_upstream` why a request header never reaches the upstream as the client sent it.
#[inline(never)]
fn cache_spec(
    value: &Json,
    path: &str,
    public: bool,
    set_upstream: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<CacheSpec> {
    let o = Obj::new(value, path, CACHE_FIELDS, errs)?;
    let ttl_s = o.req_uint("ttl_s", 1, YEAR_S, errs);
    let stale_if_error_s = o.opt_uint("stale_if_error_s", 0, YEAR_S, errs).unwrap_or(0);
    let mut vary = Vec::new();
    if let Some(list) = o.opt_string_list("vary", errs) {
        for (h, p) in list {
            if let Some(h) = header_name(&h, &p, errs) {
                if let Some(problem) = set_upstream(&h) {
                    errs.push(&p, problem);
                } else if !vary.contains(&h) {
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
        .opt_uint(
            "max_body_bytes",
            1,
            crate::config::CACHE_BODY_MAX_BYTES,
            errs,
        )
        .unwrap_or(5 * MIB);
    let policy = cache_policy::read(&o, ttl_s, errs);
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
