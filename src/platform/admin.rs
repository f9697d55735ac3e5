//! The gateway's own endpoints under `settings.admin.path`.

use super::isolate::{self, Live};
use super::{config_admin, keys, respond, Exchange};
use crate::auth::admin_token::{AdminToken, MIN_TOKEN_BYTES};
use crate::config::MethodSet;
use crate::control::admin_guard::{self, Verdict};
use crate::error::GatewayError;
use crate::pipeline::ports::{Events, Level, Limiter};
use crate::pipeline::state::Counter;
use worker::{web_sys, Env};

/// Whether `authorization` (an `Authorization` header value) carries the admin token:
/// `Ok(false)` without a configured secret (nobody is an admin), `Err(AdminTokenWeak)` when
/// the secret is too short to be used for anything ([`AdminToken`]).
pub fn is_admin(env: &Env, live: &Live, authorization: Option<&str>) -> Result<bool, GatewayError> {
    let Some(secret_name) = &live.gateway.config.settings.admin.token_secret else {
        return Ok(false);
    };
    let secret = env.secret(secret_name).ok().map(|s| s.to_string());
    let expected = match AdminToken::read(secret) {
        AdminToken::Absent => return Ok(false),
        AdminToken::Weak => {
            return Err(GatewayError::AdminTokenWeak {
                min_bytes: MIN_TOKEN_BYTES,
            })
        }
        AdminToken::Usable(token) => token,
    };
    // The scheme in any case (RFC 9110 §11.1), read as every bearer token is.
    let Ok(Some(token)) = crate::auth::credentials::bearer(authorization) else {
        return Ok(false);
    };
    Ok(crate::hex::secrets_equal(
        token.as_bytes(),
        expected.as_bytes(),
    ))
}

/// Routes a request under the admin path. Everything but the public health summary needs the
/// admin token.
pub async fn handle(x: &Exchange<'_>, rest: &str) -> Result<web_sys::Response, GatewayError> {
    let authorization = x.request.headers().get("authorization").ok().flatten();
    if authorization.is_some() && x.live.gateway.config.settings.admin.token_secret.is_some() {
        spend_attempt(x).await?;
    }
    let admin = is_admin(x.env, x.live, authorization.as_deref());
    let method = x.inbound.method;
    if rest == "/health" {
        return match method {
            "GET" | "HEAD" => Ok(health(x.live, admin.unwrap_or(false))),
            _ => Err(GatewayError::MethodNotAllowed(MethodSet::from_names(&[
                "GET", "HEAD",
            ]))),
        };
    }
    let known = rest == "/keys"
        || rest.starts_with("/keys/")
        || rest.starts_with("/cache/")
        || rest == "/config"
        || rest.starts_with("/config/");
    if !known {
        return Err(GatewayError::NotFound);
    }
    if !admin? {
        return Err(GatewayError::AdminUnauthorized);
    }
    if rest == "/config" || rest.starts_with("/config/") {
        return config_admin::handle(x, rest).await;
    }
    match (method, rest) {
        ("POST", "/keys") => keys::create(x).await,
        ("GET", "/keys") => keys::list(x).await,
        (_, "/keys") => Err(GatewayError::MethodNotAllowed(MethodSet::from_names(&[
            "GET", "POST",
        ]))),
        ("POST", "/cache/purge") => purge(x).await,
        ("POST", "/cache/generation") => bump_generation(x).await,
        (_, "/cache/purge" | "/cache/generation") => {
            Err(GatewayError::MethodNotAllowed(MethodSet::from_names(&[
                "POST",
            ])))
        }
        (_, r) if r.starts_with("/cache/") => Err(GatewayError::NotFound),
        ("DELETE", id) => keys::revoke(x, id.trim_start_matches("/keys/")).await,
        _ => Err(GatewayError::MethodNotAllowed(MethodSet::from_names(&[
            "DELETE",
        ]))),
    }
}

/// Spends one of the client address's admin attempts before its token is looked at (see
/// `crate::control::admin_guard`): over the limit, 429 whatever the token.
async fn spend_attempt(x: &Exchange<'_>) -> Result<(), GatewayError> {
    let take = admin_guard::attempt(x.inbound.client_ip);
    let answer = x
        .ports
        .take(std::slice::from_ref(&take))
        .await
        .into_iter()
        .next()
        .unwrap_or_else(|| Err("no answer".into()));
    let verdict = match admin_guard::verdict(answer) {
        Verdict::StoreFailed(reason) => {
            isolate::count(Counter::RateLimitStoreErrors);
            x.ports.event(
                Level::Error,
                serde_json::json!({
                    "event": "rate_limit_store_error",
                    "policy": admin_guard::POLICY,
                    "reason": reason,
                    "on_store_error": "isolate",
                }),
            );
            let shared = isolate::shared();
            let verdict = shared
                .admin_attempts
                .borrow_mut()
                .decide(&take, x.now_ms as u64);
            verdict
        }
        decided => decided,
    };
    match verdict {
        Verdict::Refused(e) => Err(e),
        _ => Ok(()),
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
        "isolate_counters": isolate::shared().counters.to_json(),
    });
    respond::json(
        200,
        &body,
        &[("x-config-source", live.source.name().to_owned())],
    )
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeRequest {
    url: String,
    /// Request headers that `match` conditions read, so that a header-routed route's entry
    /// for the URL can be reached (names in any case).
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
}

/// `POST …/cache/purge {"url": "https://api.example.com/v1/users/42?x=1"}`: removes that URL's
/// entries from this location's cache; with `"headers": {"x-api-version": "2"}`, those of the
/// route a GET with those headers reaches.
async fn purge(x: &Exchange<'_>) -> Result<web_sys::Response, GatewayError> {
    let body = keys::read_json_body(x).await?;
    let request: PurgeRequest = serde_json::from_str(&body).map_err(|_| {
        GatewayError::BadRequest(
            "expected {\"url\": \"https://host/path?query\", \"headers\": {\"name\": \"value\"}}",
        )
    })?;
    let match_headers: Vec<Option<String>> = x
        .live
        .gateway
        .match_headers()
        .iter()
        .map(|name| {
            request
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        })
        .collect();
    let Some((scheme, host, path, query)) = crate::forward::split_url(&request.url) else {
        return Err(GatewayError::BadRequest(
            "url must be absolute: https://host/path",
        ));
    };
    let inbound = crate::forward::Inbound {
        method: "GET",
        scheme,
        host,
        path,
        query,
        match_headers: &match_headers,
        ..crate::forward::Inbound::default()
    };
    let routed = match x.live.gateway.destination(&inbound)? {
        crate::forward::Destination::Route(routed) => routed,
        crate::forward::Destination::Admin { .. } => return Err(GatewayError::NotFound),
    };
    let route = x.live.gateway.route(routed.route);
    let Some(spec) = &route.cache else {
        return Err(GatewayError::BadRequest("that URL's route is not cached"));
    };
    let vary: Vec<Option<String>> = spec.vary.iter().map(|_| None).collect();
    let seal = isolate::shared().cache_seal(&x.live.gateway, x.ports);
    let keys = crate::pipeline::cache::keys(
        &x.live.gateway,
        seal.as_deref(),
        scheme,
        &host.to_ascii_lowercase(),
        &routed,
        &vary,
        None,
        None,
    );
    crate::pipeline::cache::invalidate(x.ports, &keys, spec, x.now_ms).await;
    let body =
        serde_json::json!({ "purged": request.url, "route": route.id, "scope": "this location" });
    Ok(respond::json(200, &body, &[]))
}

/// `POST …/cache/generation`: raises `settings.cache_generation` in the document in force,
/// which invalidates every cached entry in every location once it has propagated. The edit is
/// a push through the `ConfigLock`, conditional on the version it edited: a KV read that does
/// not show a push made just before can only fail (412), never write an older document back,
/// and the bump gets its place in the history and becomes the last good document.
async fn bump_generation(x: &Exchange<'_>) -> Result<web_sys::Response, GatewayError> {
    use super::config_admin::{kv_port, store_failed, through_lock};
    let kv = kv_port(x.env)?;
    let current = crate::control::current(&kv, isolate::EMBEDDED_ROUTES)
        .await
        .map_err(|e| store_failed("reading the configuration", e))?;
    // Editing a document the gateway refuses would write a second refused document (or throw
    // the operator's broken one away): a conflict to resolve first, and nothing changes.
    if let Some(rejected) = current.rejected {
        // Named as the health endpoint names it: `sha256:` and the first 8 bytes in hex.
        let digest = rejected
            .digest
            .get(..23)
            .unwrap_or(&rejected.digest)
            .to_owned();
        return Err(GatewayError::ConfigInvalid {
            digest,
            errors: rejected.errors.into_iter().take(50).collect(),
        });
    }
    let (text, generation) =
        crate::config::bump_cache_generation(&current.found.text).map_err(|e| {
            GatewayError::Internal {
                cause: format!("editing the configuration: {e}"),
            }
        })?;
    let if_match = crate::control::etag(&current.found.digest);
    let path = format!("/push?note=cache_generation%20{generation}");
    let pushed = through_lock(x, &path, text, Some(&if_match)).await?;
    let body = serde_json::json!({
        "cache_generation": generation,
        "digest": pushed.digest,
        "previous": pushed.previous,
        "note": "every isolate applies it at its next reload; KV takes up to about 60 s to reach every location",
    });
    Ok(respond::json(
        200,
        &body,
        &[("etag", crate::control::etag(&pushed.digest))],
    ))
}
