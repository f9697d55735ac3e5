//! The gateway's own endpoints under `settings.admin.path`.

use super::isolate::{self, Live};
use super::{keys, respond, Exchange};
use crate::config::MethodSet;
use crate::error::GatewayError;
use sha2::{Digest, Sha256};
use worker::{web_sys, Env};

/// Whether `presented` (an `Authorization` header value) carries the admin token. Without a
/// configured secret nobody is an admin.
pub fn is_admin(env: &Env, live: &Live, authorization: Option<&str>) -> bool {
    let Some(secret_name) = &live.gateway.config.settings.admin.token_secret else {
        return false;
    };
    let Some(token) = authorization.and_then(|a| a.strip_prefix("Bearer ")) else {
        return false;
    };
    let Ok(expected) = env.secret(secret_name).map(|s| s.to_string()) else {
        return false;
    };
    !expected.is_empty() && constant_time_eq(token.as_bytes(), expected.as_bytes())
}

/// Compares digests so neither the length nor the content of the token leaks through timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Routes a request under the admin path. Everything but the public health summary needs the
/// admin token.
pub async fn handle(x: &Exchange<'_>, rest: &str) -> Result<web_sys::Response, GatewayError> {
    let authorization = x.request.headers().get("authorization").ok().flatten();
    let admin = is_admin(x.env, x.live, authorization.as_deref());
    let method = x.inbound.method;
    if rest == "/health" {
        return match method {
            "GET" | "HEAD" => Ok(health(x.live, admin)),
            _ => Err(GatewayError::MethodNotAllowed(MethodSet(0b11))),
        };
    }
    let known = rest == "/keys" || rest.starts_with("/keys/");
    if !known {
        return Err(GatewayError::NotFound);
    }
    if !admin {
        return Err(GatewayError::AdminUnauthorized);
    }
    match (method, rest) {
        ("POST", "/keys") => keys::create(x).await,
        ("GET", "/keys") => keys::list(x).await,
        (_, "/keys") => Err(GatewayError::MethodNotAllowed(MethodSet::from_names(&[
            "GET", "POST",
        ]))),
        ("DELETE", id) => keys::revoke(x, id.trim_start_matches("/keys/")).await,
        _ => Err(GatewayError::MethodNotAllowed(MethodSet::from_names(&[
            "DELETE",
        ]))),
    }
}

fn health(live: &Live, admin: bool) -> web_sys::Response {
    if !admin {
        return respond::json(200, &serde_json::json!({ "status": "ok" }), &[]);
    }
    let settings = &live.gateway.config.settings;
    let last_error = isolate::last_error().map(|e| {
        serde_json::json!({
            "at_ms": e.at_ms as u64,
            "digest": e.digest,
            "errors": e.errors,
        })
    });
    let body = serde_json::json!({
        "status": if last_error.is_some() { "degraded" } else { "ok" },
        "config": {
            "source": live.source.name(),
            "digest": live.gateway.digest,
            "schema_version": 1,
            "loaded_at_ms": live.loaded_at_ms as u64,
            "routes": live.gateway.config.routes.len(),
            "reload_s": settings.reload_s,
        },
        "last_reload_error": last_error,
    });
    respond::json(200, &body, &[])
}
