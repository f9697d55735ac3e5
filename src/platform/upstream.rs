//! Sending a routed request to its upstream: target order, timeout, retries, circuit breaker.
//!
//! The choices are made here; `glue.js` carries them out (attempts in the chosen order, the
//! per-attempt timeout, relaying) and reports each outcome back to the breakers.

use super::{glue, isolate, Exchange};
use crate::balance::choose;
use crate::error::GatewayError;
use crate::forward::{forwarded_for, forwarded_host, request_removals, Routed};
use worker::js_sys;

fn is_idempotent(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE")
}

/// The error a failed exchange becomes, from `glue.js`'s failure tag: `timeout`, `too_large`,
/// `invalid_status:<n>`, `internal:<cause>` or `connect:<reason>`.
pub fn failure(tag: &str, max_body_bytes: u64) -> GatewayError {
    if tag == "too_large" {
        return GatewayError::PayloadTooLarge {
            limit: max_body_bytes,
        };
    }
    if let Some(cause) = tag.strip_prefix("internal:") {
        return GatewayError::Internal {
            cause: format!("relaying the upstream response: {cause}"),
        };
    }
    isolate::count(isolate::Counter::UpstreamFailures);
    match tag {
        "timeout" => GatewayError::UpstreamTimeout,
        tag if tag.starts_with("invalid_status:") => {
            isolate::count(isolate::Counter::UpstreamInvalidResponses);
            worker::console_warn!(
                "{}",
                serde_json::json!({"event": "upstream_invalid_response", "status": tag.trim_start_matches("invalid_status:")})
            );
            GatewayError::UpstreamInvalidResponse
        }
        reason => {
            worker::console_warn!(
                "{}",
                serde_json::json!({"event": "upstream_unreachable", "reason": reason})
            );
            GatewayError::UpstreamUnreachable
        }
    }
}

/// Header edits decided by the stages before the upstream: newline-joined names (`remove`)
/// and name/value pairs (`set`).
#[derive(Default)]
pub struct StageEdits {
    /// Request headers to remove (e.g. the client's conditions on a cached route).
    pub request_remove: String,
    /// Request headers to set (verified identity, revalidation validators).
    pub request_set: String,
    /// Response headers to set (rate-limit state).
    pub response_set: String,
}

/// Starts the exchange with the upstream; the promise resolves to the client's response.
pub fn forward(
    x: &Exchange<'_>,
    routed: &Routed,
    stages: &StageEdits,
) -> Result<js_sys::Promise, GatewayError> {
    let gateway = &x.live.gateway;
    let upstream_index = gateway.route(routed.route).upstream;
    let upstream = &gateway.config.upstreams[upstream_index];
    let attempts = if is_idempotent(x.inbound.method) {
        1 + upstream.retries as usize
    } else {
        1
    };
    let order = target_order(x, upstream_index, attempts)?;
    let mut targets = String::new();
    for (n, &t) in order.iter().enumerate() {
        let (binding, url) = gateway.target_url(routed, t);
        if n > 0 {
            targets.push('\n');
        }
        targets.push_str(&t.to_string());
        targets.push('\t');
        targets.push_str(binding.unwrap_or(""));
        targets.push('\t');
        targets.push_str(&url);
    }
    let keep = gateway.keyed_headers(routed.route);
    let mut extra_remove = glue::join(&request_removals(x.inbound, x.trace, keep), '\n');
    if !stages.request_remove.is_empty() {
        if !extra_remove.is_empty() {
            extra_remove.push('\n');
        }
        extra_remove.push_str(&stages.request_remove);
    }
    let values = glue::join(
        &[
            extra_remove.as_str(),
            forwarded_for(x.inbound).unwrap_or(""),
            x.inbound.scheme,
            &forwarded_host(x.inbound),
            &x.trace.request_id,
            &x.trace.traceparent,
            &stages.request_set,
            &stages.response_set,
        ],
        '\r',
    );
    let limit = if x.inbound.content_length.is_some() {
        -1.0
    } else {
        gateway.config.settings.max_body_bytes as f64
    };
    glue::proxy(
        x.request,
        x.env,
        &x.live.js_table,
        routed.route as u32,
        upstream_index as u32,
        &targets,
        &values,
        upstream.timeout_ms as f64,
        limit,
    )
    .map_err(|e| GatewayError::Internal {
        cause: format!(
            "starting the upstream exchange: {}",
            super::respond::reason(&e)
        ),
    })
}

/// Targets to try, in order: a weighted choice among those whose breaker lets traffic through,
/// then others for the retries (the same one again when it is the only one).
fn target_order(
    x: &Exchange<'_>,
    upstream_index: usize,
    attempts: usize,
) -> Result<Vec<usize>, GatewayError> {
    let upstream = &x.live.gateway.config.upstreams[upstream_index];
    if upstream.targets.len() == 1 && upstream.circuit_breaker.is_none() {
        return Ok(vec![0; attempts]);
    }
    let now = x.now_ms as u64;
    let mut breakers = x.live.breakers.borrow_mut();
    let states = &mut breakers[upstream_index];
    let mut order: Vec<usize> = Vec::with_capacity(attempts);
    isolate::with_ids(|ids| {
        for _ in 0..attempts {
            let open = |i: usize| states[i].is_open(now);
            let next = choose(&upstream.targets, |i| !open(i) && !order.contains(&i), ids)
                .or_else(|| choose(&upstream.targets, |i| !open(i), ids));
            let Some(t) = next else { break };
            if let Some(spec) = &upstream.circuit_breaker {
                states[t].admit(spec, now);
            }
            order.push(t);
        }
    });
    if order.is_empty() {
        return Err(GatewayError::CircuitOpen);
    }
    Ok(order)
}
