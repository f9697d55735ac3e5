//! `gatewayctl explain`: what the gateway would do with one request, decided offline by the
//! same core the worker runs (`Gateway::destination`, `Gateway::target_url`): the route, the
//! stages that apply in order, the upstream URL after `rewrite`, or the refusal and its code.

use crate::config::{AuthKind, RateLimitKey, RouteAuth};
use crate::error::GatewayError;
use crate::forward::{split_url, Destination, Inbound};
use crate::gateway::Gateway;
use crate::plan::StageKind;

/// The outcome for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Explanation {
    /// The gateway's own endpoints (`settings.admin.path`).
    Admin {
        rest: String,
    },
    Refused(Refusal),
    Routed(Plan),
}

/// A refusal as the client would see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub detail: String,
}

impl From<&GatewayError> for Refusal {
    fn from(e: &GatewayError) -> Refusal {
        Refusal {
            status: e.status(),
            code: e.code(),
            detail: e.detail(),
        }
    }
}

/// What happens to a routed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub route: String,
    pub pattern: String,
    pub canonical_path: String,
    /// The stages that apply, in order, each as `(stage, what it does)`.
    pub stages: Vec<(&'static str, String)>,
    /// Each target's URL (or service binding) after `rewrite`, with its weight.
    pub targets: Vec<String>,
    /// Set when the request would be refused at a stage (no credentials for an authenticated
    /// route); signatures, keys and rate-limit counters are not checked offline.
    pub refusal: Option<Refusal>,
}

/// Explains `method url` with request `headers`; `Err` when `url` is not an absolute URL.
pub fn explain(
    gateway: &Gateway,
    method: &str,
    url: &str,
    headers: &[(String, String)],
) -> Result<Explanation, String> {
    let (scheme, host, path, query) = split_url(url)
        .filter(|(s, h, _, _)| matches!(*s, "http" | "https") && !h.is_empty())
        .ok_or_else(|| format!("\"{url}\" is not an absolute http(s) URL"))?;
    // Every header as the runtime hands it to the gateway: one value per name, repeated
    // lines joined with ", " (so `match`, framing and handshake checks see what it sees).
    let mut one_per_name: Vec<(String, String)> = Vec::new();
    for (name, _) in headers {
        if !one_per_name
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            if let Some(value) = joined_header(headers, name) {
                one_per_name.push((name.to_ascii_lowercase(), value));
            }
        }
    }
    let header = |name: &str| {
        one_per_name
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let preflight = crate::pipeline::cors::preflight_method(
        method,
        header("origin"),
        header("access-control-request-method"),
    );
    let match_headers: Vec<Option<String>> = gateway
        .match_headers()
        .iter()
        .map(|name| header(name).map(str::to_owned))
        .collect();
    let inbound = Inbound {
        method,
        scheme,
        host,
        path,
        query,
        content_length: header("content-length"),
        transfer_encoding: header("transfer-encoding"),
        connection: header("connection"),
        preflight: preflight.as_deref(),
        match_headers: &match_headers,
        ..Inbound::default()
    };
    let routed = match gateway.destination(&inbound) {
        Err(e) => return Ok(Explanation::Refused(Refusal::from(&e))),
        Ok(Destination::Admin { rest }) => return Ok(Explanation::Admin { rest }),
        Ok(Destination::Route(routed)) => routed,
    };
    let config = &gateway.config;
    let route = gateway.route(routed.route);
    let mut stages = Vec::new();
    let mut refusal = None;
    // The route's own plan says which stages apply, in the order they run.
    let plan = gateway.plan(routed.route);
    let mut public = !plan.stages.contains(&StageKind::Auth);
    for kind in &plan.stages {
        if public && !matches!(kind, StageKind::IpRules | StageKind::Cors) {
            // Where authentication would run.
            stages.push(("auth", "none (public route)".to_owned()));
            public = false;
        }
        match kind {
            StageKind::IpRules => {
                let names: Vec<&str> = route
                    .ip_rules
                    .iter()
                    .filter_map(|i| config.ip_rules.get(*i))
                    .map(|r| r.name.as_str())
                    .collect();
                stages.push((
                    "ip rules",
                    format!(
                        "{} — by CF-Connecting-IP, country and ASN, not checked offline",
                        names.join(", ")
                    ),
                ));
            }
            StageKind::Cors => {
                if let Some(p) = route.cors.and_then(|i| config.cors.get(i)) {
                    if inbound.preflight.is_some() {
                        // The CORS stage answers a preflight itself: nothing after it runs.
                        stages.push((
                            "cors",
                            format!("{} — this preflight is answered by the gateway (204, or 403 cors_forbidden)", p.name),
                        ));
                        break;
                    }
                    stages.push(("cors", p.name.clone()));
                }
            }
            StageKind::Auth => {
                let RouteAuth::Schemes(list) = &route.auth else {
                    continue;
                };
                let described: Vec<String> = list
                    .iter()
                    .filter_map(|i| config.auth.get(*i))
                    .map(|scheme| {
                        let kind = match &scheme.kind {
                            AuthKind::Jwt(_) => "jwt",
                            AuthKind::ApiKey(_) => "api key",
                        };
                        format!("{} ({kind})", scheme.name)
                    })
                    .collect();
                stages.push((
                    "auth",
                    format!(
                        "{} — any one may succeed; credentials are not verified offline",
                        described.join(", ")
                    ),
                ));
                if !route.scopes.is_empty() {
                    stages.push(("scopes", route.scopes.join(" ")));
                }
                // The gateway's own reader, and nothing beside it, says what was presented:
                // a second, looser check could call a request authenticated that the gateway
                // refuses (an empty key, a Basic Authorization, an unrelated cookie).
                let joined = |name: &str| joined_header(headers, name);
                refusal = match crate::pipeline::auth::presented_credentials(
                    config, list, &joined, query,
                ) {
                    Ok(presented) if presented.is_empty() => {
                        Some(Refusal::from(&GatewayError::Unauthorized {
                            reason: "no credentials for any of the route's schemes".into(),
                            invalid_token: false,
                        }))
                    }
                    Ok(_) => None,
                    // Two identities, or a credential sent twice or malformed: refused as such.
                    Err(e) => Some(Refusal::from(&e)),
                };
            }
            StageKind::RateLimit => {
                let policies: Vec<String> = route
                    .rate_limits
                    .iter()
                    .filter_map(|i| config.rate_limits.get(*i))
                    .map(|p| {
                        format!(
                            "{} ({} per {} s, burst {}, per {})",
                            p.name,
                            p.limit,
                            p.window_s,
                            p.burst,
                            key_name(&p.key)
                        )
                    })
                    .collect();
                stages.push(("rate limits", policies.join(", ")));
            }
            StageKind::Cache => {
                let Some(c) = &route.cache else {
                    continue;
                };
                let applies = if matches!(method, "GET" | "HEAD") {
                    ""
                } else {
                    " (not for this method: only GET and HEAD are cached)"
                };
                let mut text =
                    format!("ttl {} s, stale-if-error {} s", c.ttl_s, c.stale_if_error_s);
                if !c.vary.is_empty() {
                    text.push_str(&format!(", vary {}", c.vary.join(" ")));
                }
                if c.default_ttl_s > 0 {
                    text.push_str(&format!(", default ttl {} s", c.default_ttl_s));
                }
                if c.stale_while_revalidate_s > 0 {
                    let swr = c.stale_while_revalidate_s;
                    text.push_str(&format!(", stale-while-revalidate {swr} s"));
                }
                if c.honor_request_directives {
                    text.push_str(", honours request directives");
                }
                if c.per_consumer {
                    text.push_str(", per consumer");
                }
                text.push_str(applies);
                stages.push(("cache", text));
            }
            StageKind::Canary => {
                let Some(c) = &route.canary else {
                    continue;
                };
                let name = config
                    .upstreams
                    .get(c.upstream)
                    .map_or("", |u| u.name.as_str());
                let sticky = match &c.sticky {
                    crate::config::StickyKey::Consumer => "consumer".to_owned(),
                    crate::config::StickyKey::Ip => "ip".to_owned(),
                    crate::config::StickyKey::Header(h) => format!("header {h}"),
                    crate::config::StickyKey::Cookie(k) => format!("cookie {k}"),
                    crate::config::StickyKey::None => "none".to_owned(),
                };
                let mut text = format!(
                    "{}.{:02} % to {name}, sticky by {sticky}",
                    c.basis_points / 100,
                    c.basis_points % 100
                );
                if let Some(h) = &c.override_header {
                    text.push_str(&format!(", override with {h}: always | never"));
                }
                stages.push(("canary", text));
            }
            StageKind::WebSocket => {
                let refused = crate::pipeline::websocket::handshake_refusal(
                    header("upgrade"),
                    header("sec-websocket-key"),
                    header("sec-websocket-version"),
                    inbound.content_length.is_some() || inbound.transfer_encoding.is_some(),
                );
                stages.push((
                    "websocket",
                    "the handshake is relayed once (no retries, no cache); the upstream's 101 joins the sockets".to_owned(),
                ));
                if let (Some(e), None) = (refused, &refusal) {
                    refusal = Some(Refusal::from(&e));
                }
            }
            StageKind::Forward => {}
            StageKind::Invalidate => {
                if crate::pipeline::invalidate::is_unsafe(method) {
                    stages.push((
                        "invalidate",
                        "on success, what cached routes serving GET of this URL, or of a URL of this origin the answer names in Location or Content-Location, stored is invalidated".to_owned(),
                    ));
                }
            }
        }
    }
    let upstream = config.upstreams.get(route.upstream);
    if let Some(u) = upstream {
        let mut text = format!(
            "{} (timeout {} ms, retries {}",
            u.name, u.timeout_ms, u.retries
        );
        if let Some(b) = u.circuit_breaker {
            text.push_str(&format!(
                ", circuit breaker after {} failures for {} s",
                b.failures, b.cooldown_s
            ));
        }
        text.push(')');
        stages.push(("upstream", text));
    }
    let edits = |rules: &crate::config::HeaderRules| {
        let mut parts = Vec::new();
        if !rules.remove.is_empty() {
            parts.push(format!("remove {}", rules.remove.join(" ")));
        }
        for (n, v) in &rules.set {
            parts.push(format!("set {n}: {v}"));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    };
    if let Some(t) = edits(&route.request_headers) {
        stages.push(("request headers", t));
    }
    if let Some(t) = edits(&route.response_headers) {
        stages.push(("response headers", t));
    }
    let targets = upstream
        .map(|u| {
            u.targets
                .iter()
                .enumerate()
                .map(|(i, t)| match gateway.target_url(&routed, i) {
                    (Some(binding), url) => {
                        format!("{url} via service binding {binding} (weight {})", t.weight)
                    }
                    (None, url) => format!("{url} (weight {})", t.weight),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Explanation::Routed(Plan {
        route: route.id.clone(),
        pattern: route.path.clone(),
        canonical_path: routed.canonical_path,
        stages,
        targets,
        refusal,
    }))
}

/// Every value of header `name` joined with `", "`, as the runtime's `Headers.get` hands them
/// to the gateway: two `Authorization` or key headers are then refused here as there.
fn joined_header(headers: &[(String, String)], name: &str) -> Option<String> {
    let mut values = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str());
    let first = values.next()?;
    Some(values.fold(first.to_owned(), |all, v| all + ", " + v))
}

fn key_name(key: &RateLimitKey) -> String {
    match key {
        RateLimitKey::Ip => "client address".into(),
        RateLimitKey::Claim(c) => format!("claim {c}"),
        RateLimitKey::Header(h) => format!("header {h}"),
        RateLimitKey::Consumer => "consumer".into(),
        RateLimitKey::Route => "route".into(),
        RateLimitKey::Global => "everything (global)".into(),
    }
}

/// The explanation as text for a person.
pub fn render(method: &str, url: &str, e: &Explanation) -> String {
    let mut out = format!("{method} {url}\n");
    let line = |out: &mut String, label: &str, text: &str| {
        out.push_str(&format!("  {label:<17}{text}\n"));
    };
    match e {
        Explanation::Admin { rest } => line(
            &mut out,
            "gateway",
            &format!("the gateway's own endpoint {rest} (admin path); never reaches a route"),
        ),
        Explanation::Refused(r) => line(
            &mut out,
            "refused",
            &format!("{} {}: {}", r.status, r.code, r.detail),
        ),
        Explanation::Routed(p) => {
            line(
                &mut out,
                "route",
                &format!(
                    "{} (path {}, canonical path {})",
                    p.route, p.pattern, p.canonical_path
                ),
            );
            for (stage, text) in &p.stages {
                line(&mut out, stage, text);
            }
            match &p.refusal {
                Some(r) => line(
                    &mut out,
                    "refused",
                    &format!("{} {}: {}", r.status, r.code, r.detail),
                ),
                None => {
                    for (i, t) in p.targets.iter().enumerate() {
                        line(&mut out, if i == 0 { "forwarded to" } else { "" }, t);
                    }
                }
            }
        }
    }
    out
}
