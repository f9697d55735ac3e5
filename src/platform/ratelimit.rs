//! The rate-limiting stage: one bucket per policy and key, each decided by its own Durable
//! Object, all asked at once.
//!
//! A denied request still consumes from the route's other policies that allowed it: a client
//! that keeps sending while it is over one limit keeps spending its other budgets, so being
//! limited is never a free pass. It costs one object call per policy per request.

use super::auth::Identity;
use super::{glue, Exchange};
use crate::config::{Route, StoreErrorPolicy};
use crate::error::GatewayError;
use crate::ratelimit::{
    bucket_key, most_restrictive, policy_header, ratelimit_header, Decision, KeyError, KeyFacts,
    Limits,
};
use worker::wasm_bindgen_futures::JsFuture;

/// Binding of the `RateLimiter` Durable Object namespace (see wrangler.toml).
pub const LIMITER_BINDING: &str = "RATE_LIMITER";
/// How long a bucket may take to answer before its policy's `on_store_error` applies.
const STORE_TIMEOUT_MS: f64 = 1_000.0;

/// Checks every policy of the route. On success returns the RateLimit-Policy and RateLimit
/// response headers (newline-joined pairs, empty when the route has no policy).
pub async fn enforce(
    x: &Exchange<'_>,
    route: &Route,
    identity: Option<&Identity>,
) -> Result<String, GatewayError> {
    if route.rate_limits.is_empty() {
        return Ok(String::new());
    }
    let config = &x.live.gateway.config;
    let policies: Vec<_> = route
        .rate_limits
        .iter()
        .map(|i| &config.rate_limits[*i])
        .collect();
    let headers = x.request.headers();
    let read_header = |name: &str| headers.get(name).ok().flatten();
    let facts = KeyFacts {
        client_ip: x.inbound.client_ip,
        route_id: &route.id,
        consumer: identity.and_then(|i| i.consumer.as_deref()),
        claims: identity.and_then(|i| i.claims.as_ref()).map(|c| &c.claims),
        header: &read_header,
    };
    let mut requests = String::new();
    for (n, policy) in policies.iter().enumerate() {
        let bucket = bucket_key(policy, &facts).map_err(|e| match e {
            KeyError::NoConsumer | KeyError::MissingClaim(_) => GatewayError::Unauthorized {
                reason: format!(
                    "the credentials do not identify a consumer for rate limit \"{}\"",
                    policy.name
                ),
                invalid_token: true,
            },
        })?;
        let take = serde_json::json!({
            "limit": policy.limit,
            "window_s": policy.window_s,
            "burst": policy.burst,
            "cost": 1,
        });
        if n > 0 {
            requests.push('\n');
        }
        requests.push_str(&bucket);
        requests.push('\t');
        requests.push_str(&take.to_string());
    }
    let answers = JsFuture::from(glue::take_tokens(
        x.env,
        LIMITER_BINDING,
        &requests,
        STORE_TIMEOUT_MS,
    ))
    .await
    .ok()
    .and_then(|v| v.as_string())
    .unwrap_or_default();
    let mut answers = answers.split('\n');
    let mut decided: Vec<(&str, Decision)> = Vec::with_capacity(policies.len());
    let mut limits: Vec<(&str, Limits)> = Vec::with_capacity(policies.len());
    for policy in &policies {
        let answer = answers.next().unwrap_or("err\tno answer");
        let decision = answer
            .strip_prefix("ok\t")
            .and_then(|json| serde_json::from_str::<Decision>(json).ok());
        match decision {
            Some(d) => {
                decided.push((&policy.name, d));
                limits.push((&policy.name, Limits::from(*policy)));
            }
            None => {
                let reason = answer.strip_prefix("err\t").unwrap_or(answer);
                worker::console_error!(
                    "{}",
                    serde_json::json!({
                        "event": "rate_limit_store_error",
                        "policy": policy.name,
                        "reason": reason,
                        "request_id": x.trace.request_id,
                        "on_store_error": if policy.on_store_error == StoreErrorPolicy::Deny { "deny" } else { "allow" },
                    })
                );
                if policy.on_store_error == StoreErrorPolicy::Deny {
                    return Err(GatewayError::RateLimitUnavailable {
                        policy: policy.name.clone(),
                    });
                }
            }
        }
    }
    let limit_refs: Vec<(&str, &Limits)> = limits.iter().map(|(n, l)| (*n, l)).collect();
    let decision_refs: Vec<(&str, &Decision)> = decided.iter().map(|(n, d)| (*n, d)).collect();
    let mut fields: Vec<(&'static str, String)> = Vec::new();
    if !decided.is_empty() {
        fields.push(("ratelimit-policy", policy_header(&limit_refs)));
        fields.push(("ratelimit", ratelimit_header(&decision_refs)));
    }
    if let Some((policy, decision)) = most_restrictive(&decided).filter(|(_, d)| !d.allowed) {
        return Err(GatewayError::RateLimited {
            policy: (*policy).to_owned(),
            retry_after_s: decision.retry_after_s.max(1),
            headers: fields,
        });
    }
    Ok(glue::pairs(&fields))
}
