//! The rate-limiting stage: one bucket per policy and key, each decided by its own Durable
//! Object, all asked at once.
//!
//! A request an object refuses has already been counted by the route's other policies, asked at
//! the same time: a client that keeps sending while over one limit keeps spending its other
//! budgets. Once an isolate has been told a bucket refuses, it refuses that bucket's requests
//! itself until the instant the object named, asking no object: a client flooding while
//! limited costs no object calls (and those refusals count nowhere). Allowed requests cost
//! one object call per policy.

use super::auth::Identity;
use super::{glue, Exchange};
use crate::config::{Route, StoreErrorPolicy};
use crate::error::GatewayError;
use crate::ratelimit::{
    bucket_key, most_restrictive, policy_header, ratelimit_header, wire, Decision, KeyError,
    KeyFacts, Limits,
};
use std::cell::RefCell;
use std::collections::HashMap;
use worker::wasm_bindgen_futures::JsFuture;

/// Binding of the `RateLimiter` Durable Object namespace (see wrangler.toml).
pub const LIMITER_BINDING: &str = "RATE_LIMITER";
/// How long a bucket may take to answer before its policy's `on_store_error` applies.
const STORE_TIMEOUT_MS: f64 = 1_000.0;
/// Buckets this isolate knows to be refusing, at most this many.
const REFUSED_CAPACITY: usize = 4_096;

thread_local! {
    /// Bucket → (until when it refuses, in ms of this isolate's clock; the object's decision).
    /// GCRA refusals change nothing and other isolates can only use a bucket up further, so a
    /// bucket refuses at least until then: remembering this is exact, not an approximation.
    static REFUSED: RefCell<HashMap<String, (f64, Decision)>> = RefCell::new(HashMap::new());
}

/// A refusal this isolate remembers for `bucket`, as it stands at `now_ms`.
fn known_refusal(bucket: &str, now_ms: f64) -> Option<Decision> {
    REFUSED.with(|r| {
        let r = r.borrow();
        let (until, d) = r.get(bucket)?;
        let left_ms = until - now_ms;
        (left_ms > 0.0).then(|| {
            let left_ms = left_ms.ceil() as u64;
            Decision {
                retry_after_ms: left_ms,
                retry_after_s: left_ms.div_ceil(1000).max(1),
                reset_s: d
                    .reset_s
                    .saturating_sub(d.retry_after_s.saturating_sub(left_ms.div_ceil(1000))),
                ..*d
            }
        })
    })
}

/// Remembers an object's refusal. `asked_at_ms` is when the question was sent: the object
/// decided later, so the instant it named is never earlier than `asked_at_ms` + the wait.
fn remember_refusal(bucket: &str, asked_at_ms: f64, d: &Decision) {
    REFUSED.with(|r| {
        let mut r = r.borrow_mut();
        if r.len() >= REFUSED_CAPACITY {
            r.retain(|_, (until, _)| *until > asked_at_ms);
            if r.len() >= REFUSED_CAPACITY {
                r.clear();
            }
        }
        r.insert(
            bucket.to_owned(),
            (asked_at_ms + d.retry_after_ms as f64, *d),
        );
    });
}

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
    let mut buckets = Vec::with_capacity(policies.len());
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
        if let Some(refusal) = known_refusal(&bucket, x.now_ms) {
            let limits = Limits::from(*policy);
            return Err(GatewayError::RateLimited {
                policy: policy.name.clone(),
                retry_after_s: refusal.retry_after_s,
                headers: vec![
                    (
                        "ratelimit-policy",
                        policy_header(&[(&policy.name, &limits)]),
                    ),
                    ("ratelimit", ratelimit_header(&[(&policy.name, &refusal)])),
                ],
            });
        }
        let take = wire::take_query(&Limits::from(*policy), 1);
        if n > 0 {
            requests.push('\n');
        }
        requests.push_str(&bucket);
        requests.push('\t');
        requests.push_str(&take);
        buckets.push(bucket);
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
    for (policy, bucket) in policies.iter().zip(&buckets) {
        let answer = answers.next().unwrap_or("err\tno answer");
        let decision = answer.strip_prefix("ok\t").and_then(wire::parse_decision);
        match decision {
            Some(d) => {
                if !d.allowed {
                    remember_refusal(bucket, x.now_ms, &d);
                }
                decided.push((&policy.name, d));
                limits.push((&policy.name, Limits::from(*policy)));
            }
            None => {
                let reason = answer.strip_prefix("err\t").unwrap_or(answer);
                super::isolate::count(super::isolate::Counter::RateLimitStoreErrors);
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
