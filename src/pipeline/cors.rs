//! The CORS stage, after IP rules and before authentication and rate limits: it answers a
//! preflight itself (204, or 403 `cors_forbidden`) without reaching the upstream, and decides
//! the CORS headers every answer of the request carries — upstream responses, cache hits and
//! gateway errors alike — through its response step.
//!
//! The request's `Origin` is echoed only after it matched the policy; a request from any other
//! origin gets no CORS headers (the browser then withholds the answer from the page). Every
//! answer on the route says `Vary: Origin`, so no shared cache hands one origin's answer to
//! another.

use super::ctx::Ctx;
use super::driver::{Stage, Step};
use super::exchange;
use super::ports::Ports;
use super::state::Services;
use crate::config::{CorsPolicy, MethodSet};
use crate::error::GatewayError;
use crate::headers::is_token;

/// The request headers the stage reads, in one crossing (the method a preflight announces was
/// read with the request: `Request::preflight`).
const REQUEST_HEADERS: [&str; 2] = ["origin", "access-control-request-headers"];

/// The method a CORS preflight announces: `OPTIONS` with both `Origin` and
/// `Access-Control-Request-Method`. Routing uses it to find the route the preflight is for.
pub fn preflight_method(
    method: &str,
    origin: Option<&str>,
    announced: Option<&str>,
) -> Option<String> {
    match (method, origin, announced) {
        ("OPTIONS", Some(_), Some(m)) => Some(m.to_owned()),
        _ => None,
    }
}

/// Headers of an answer to an allowed origin (`Vary` is added for every request).
fn allowed_headers(policy: &CorsPolicy, origin: &str) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(4);
    let value = if policy.any_origin && !policy.credentials {
        "*".to_owned()
    } else {
        origin.to_owned()
    };
    out.push(("access-control-allow-origin".to_owned(), value));
    if policy.credentials {
        out.push((
            "access-control-allow-credentials".to_owned(),
            "true".to_owned(),
        ));
    }
    if !policy.expose_headers.is_empty() {
        out.push((
            "access-control-expose-headers".to_owned(),
            policy.expose_headers.join(", "),
        ));
    }
    out
}

fn forbidden(reason: impl Into<String>) -> GatewayError {
    GatewayError::CorsForbidden {
        reason: reason.into(),
    }
}

/// The request headers a preflight asks for, checked against the policy: the lower-case list
/// to allow, or the refusal.
fn requested_headers(
    policy: &CorsPolicy,
    value: Option<&str>,
) -> Result<Vec<String>, GatewayError> {
    let mut out = Vec::new();
    for name in value.unwrap_or("").split(',') {
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        if !is_token(&name) || name.len() > 64 {
            return Err(forbidden(
                "Access-Control-Request-Headers names an invalid header",
            ));
        }
        let allowed =
            policy.headers.contains(&name) || (policy.any_header && name != "authorization");
        if !allowed {
            return Err(forbidden(format!(
                "request header \"{name}\" is not allowed by the route's CORS policy"
            )));
        }
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

/// The preflight's own headers (the allowed origin's come from the response step).
fn preflight_headers(
    policy: &CorsPolicy,
    methods: MethodSet,
    headers: &[String],
) -> Vec<(String, String)> {
    let mut out = vec![(
        "access-control-allow-methods".to_owned(),
        methods.names().collect::<Vec<_>>().join(", "),
    )];
    if !headers.is_empty() {
        out.push((
            "access-control-allow-headers".to_owned(),
            headers.join(", "),
        ));
    }
    out.push((
        "access-control-max-age".to_owned(),
        policy.max_age_s.to_string(),
    ));
    out
}

pub struct Cors;

impl Stage for Cors {
    fn request<P: Ports>(&self, cx: &mut Ctx, s: Services<'_, P>) -> Step<P::Response> {
        let route = s.gateway.route(cx.route());
        let Some(policy) = route.cors.and_then(|i| s.gateway.config.cors.get(i)) else {
            return Step::Next;
        };
        cx.cors_headers = vec![("vary".to_owned(), "Origin".to_owned())];
        let mut read = s.ports.request_headers(&REQUEST_HEADERS).into_iter();
        let (origin, asked) = (read.next().flatten(), read.next().flatten());
        let Some(origin) = origin else {
            return Step::Next;
        };
        let allowed = policy.allows_origin(&origin);
        let Some(announced) = cx.request.preflight.clone() else {
            // Browsers apply no CORS to a WebSocket handshake: the answer is never withheld from
            // the page, so on a WebSocket route the policy's origins are enforced here (a page
            // elsewhere would otherwise open a socket with the user's cookies).
            if !allowed && route.websocket {
                return Step::Fail(forbidden(
                    "origin is not allowed by the route's CORS policy",
                ));
            }
            if allowed {
                cx.cors_headers.extend(allowed_headers(policy, &origin));
            }
            return Step::Next;
        };
        if !allowed {
            return Step::Fail(forbidden(
                "origin is not allowed by the route's CORS policy",
            ));
        }
        // The policy answers for its route's methods alone: a preflight for a method of
        // another route on the path (one without a policy) is routed here as the OPTIONS it is,
        // and allowing it would let a page elsewhere send that route's request.
        let methods = MethodSet(policy.methods.unwrap_or(route.methods).0 & route.methods.0);
        if !methods.contains(&announced) {
            let names: Vec<&str> = methods.names().collect();
            return Step::Fail(forbidden(format!(
                "the requested method is not allowed by the route's CORS policy; allowed: {}",
                names.join(", ")
            )));
        }
        let headers = match requested_headers(policy, asked.as_deref()) {
            Ok(h) => h,
            Err(e) => return Step::Fail(e),
        };
        cx.cors_headers.extend(allowed_headers(policy, &origin));
        let mut set = exchange::response_set(s.gateway, cx);
        set.extend(preflight_headers(policy, methods, &headers));
        match s.ports.reply(204, &set) {
            Ok(r) => Step::Reply(r),
            Err(cause) => Step::Fail(GatewayError::Internal {
                cause: format!("answering a preflight: {cause}"),
            }),
        }
    }

    async fn wait<P: Ports>(&self, cx: &mut Ctx, s: Services<'_, P>) -> Step<P::Response> {
        self.request(cx, s)
    }

    fn response(&self, cx: &Ctx, set: &mut Vec<(String, String)>) {
        set.extend(cx.cors_headers.iter().cloned());
    }
}
