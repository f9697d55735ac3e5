//! The gateway's own endpoints under `settings.admin.path`.

use super::isolate::{self, Live};
use super::respond;
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

pub async fn handle(
    env: &Env,
    live: &Live,
    method: &str,
    rest: &str,
    authorization: Option<&str>,
    request_id: &str,
) -> Result<web_sys::Response, GatewayError> {
    match (method, rest) {
        ("GET" | "HEAD", "/health") => Ok(health(live, is_admin(env, live, authorization))),
        (_, "/health") => Err(GatewayError::MethodNotAllowed(crate::config::MethodSet(
            0b11,
        ))),
        _ => {
            let _ = request_id;
            Err(GatewayError::NotFound)
        }
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
