//! Sending a routed request to its upstream: target choice, timeout, retries, circuit breaker.

use super::glue;
use super::isolate::{self, Live};
use super::Exchange;
use crate::balance::choose;
use crate::config::Upstream;
use crate::error::GatewayError;
use crate::forward::{forwarded_for, request_removals, Routed};
use wasm_bindgen::{JsCast, JsValue};
use worker::{wasm_bindgen_futures::JsFuture, web_sys};

/// Statuses that count as the target failing: retried (when safe) and fed to the breaker.
fn is_gateway_failure(status: u16) -> bool {
    matches!(status, 502..=504)
}

fn is_idempotent(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE")
}

/// Why an attempt failed.
enum Failure {
    Timeout,
    Unreachable(String),
    TooLarge,
}

fn classify(tag: JsValue) -> Failure {
    match tag.as_string().as_deref() {
        Some("timeout") => Failure::Timeout,
        Some("too_large") => Failure::TooLarge,
        Some(other) => Failure::Unreachable(other.to_owned()),
        None => Failure::Unreachable(format!("{tag:?}")),
    }
}

/// Forwards the request and returns the upstream's response, relayed with its header edits.
/// `extra_set` carries request headers decided by earlier stages (verified identity).
pub async fn send(
    x: &Exchange<'_>,
    routed: &Routed,
    extra_set: &str,
) -> Result<web_sys::Response, GatewayError> {
    let Exchange {
        env,
        live,
        request,
        inbound,
        trace,
        now_ms,
    } = *x;
    let gateway = &live.gateway;
    let route = gateway.route(routed.route);
    let upstream_index = route.upstream;
    let upstream: &Upstream = &gateway.config.upstreams[upstream_index];
    let extra_remove = glue::names(&request_removals(inbound, trace));
    let limit = if inbound.content_length.is_some() {
        -1.0
    } else {
        gateway.config.settings.max_body_bytes as f64
    };
    let attempts = if is_idempotent(inbound.method) && !glue::has_body(request) {
        1 + upstream.retries
    } else {
        1
    };
    let now = now_ms as u64;
    let mut exclude = None;
    let mut last = GatewayError::UpstreamUnreachable;
    for attempt in 0..attempts {
        let target = {
            let mut breakers = live.breakers.borrow_mut();
            let states = &mut breakers[upstream_index];
            let chosen = isolate::with_ids(|ids| {
                choose(&upstream.targets, |i| !states[i].is_open(now), exclude, ids)
            });
            match (chosen, &upstream.circuit_breaker) {
                (None, _) => return Err(GatewayError::CircuitOpen),
                (Some(t), Some(spec)) => {
                    states[t].admit(spec, now);
                    t
                }
                (Some(t), None) => t,
            }
        };
        let (binding, url) = gateway.target_url(routed, target);
        let fetcher = match binding {
            None => JsValue::UNDEFINED,
            Some(b) => match env.service(b) {
                Ok(f) => f.as_ref().clone(),
                Err(e) => {
                    return Err(GatewayError::Internal {
                        cause: format!("service binding {b}: {e}"),
                    })
                }
            },
        };
        let outcome = match glue::proxy(
            request,
            &live.js_table,
            routed.route as u32,
            &url,
            &extra_remove,
            forwarded_for(inbound).unwrap_or(""),
            inbound.scheme,
            inbound.host,
            &trace.request_id,
            &trace.traceparent,
            extra_set,
            upstream.timeout_ms as f64,
            limit,
            &fetcher,
        ) {
            Ok(promise) => JsFuture::from(promise).await,
            Err(e) => Err(e),
        };
        let last_attempt = attempt + 1 == attempts;
        let failed = match outcome {
            Ok(value) => {
                let response: web_sys::Response = value.unchecked_into();
                let failed = is_gateway_failure(response.status());
                record(live, upstream, upstream_index, target, !failed, now);
                if !failed || last_attempt {
                    return Ok(response);
                }
                if let Some(body) = response.body() {
                    let _ = body.cancel();
                }
                GatewayError::UpstreamUnreachable
            }
            Err(tag) => match classify(tag) {
                Failure::TooLarge => {
                    return Err(GatewayError::PayloadTooLarge {
                        limit: gateway.config.settings.max_body_bytes,
                    })
                }
                Failure::Timeout => {
                    record(live, upstream, upstream_index, target, false, now);
                    GatewayError::UpstreamTimeout
                }
                Failure::Unreachable(reason) => {
                    worker::console_warn!(
                        "{}",
                        serde_json::json!({"event": "upstream_unreachable", "upstream": upstream.name, "target": target, "reason": reason})
                    );
                    record(live, upstream, upstream_index, target, false, now);
                    GatewayError::UpstreamUnreachable
                }
            },
        };
        last = failed;
        exclude = Some(target);
    }
    Err(last)
}

fn record(live: &Live, upstream: &Upstream, index: usize, target: usize, success: bool, now: u64) {
    if let Some(spec) = &upstream.circuit_breaker {
        live.breakers.borrow_mut()[index][target].record(spec, success, now);
    }
}
