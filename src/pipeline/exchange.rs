//! The upstream exchange as a plan the platform's executor carries out: which targets in
//! which order, when to retry, the timeout, the body limit and the per-request header edits.
//! The executor decides nothing; it reports one [`ExchangeReport`] back.

use super::ctx::Ctx;
use super::ports::{Events, ExchangeFailure, ExchangeReport, Level};
use super::state::{Counter, Services};
use crate::balance::choose;
use crate::error::GatewayError;
use crate::forward::{forwarded_for, forwarded_host, request_removals, HeaderEdits};
use crate::gateway::Gateway;
use serde::Serialize;

/// Upstream statuses after which another attempt is made while attempts remain (the
/// upstream, or a proxy in front of it, could not answer).
pub const RETRY_STATUSES: [u16; 3] = [502, 503, 504];

/// One attempt: the target's index, its service binding (if any) and the URL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub target: usize,
    pub binding: Option<String>,
    pub url: String,
}

/// Everything the executor needs for one exchange. The route's fixed header edits are in the
/// table handed over once per configuration, indexed by `route`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExchangePlan {
    pub route: usize,
    pub upstream: usize,
    /// Tried in order while one fails and attempts remain. A request with a body is sent once:
    /// its stream cannot be replayed.
    pub attempts: Vec<Attempt>,
    pub retry_statuses: [u16; 3],
    pub timeout_ms: u64,
    /// Bounds a body sent without `Content-Length` (a declared one was checked at routing).
    pub body_limit: Option<u64>,
    /// Per-request edits, applied after the route's: removals first, then sets.
    pub request: HeaderEdits,
    /// Response headers every answer of this request carries (request id, the stages'
    /// response steps).
    pub response_set: Vec<(String, String)>,
    /// Upstream response headers this request's answer must not carry, removed before
    /// `response_set` (e.g. targeted cache fields on a cached route's bypass).
    pub response_remove: Vec<String>,
    /// A WebSocket handshake: sent once, and the upstream's 101 is relayed (the runtime then
    /// joins the two sockets).
    pub websocket: bool,
}

impl ExchangePlan {
    /// The plan as the executor reads it.
    pub fn to_json(&self) -> String {
        crate::json::text(self, 1024)
    }
}

fn is_idempotent(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE")
}

/// Response headers every answer of the request carries; the stages' response steps add
/// theirs (see `driver::Stage::response`).
pub fn response_set(gateway: &Gateway, cx: &Ctx) -> Vec<(String, String)> {
    let mut set = vec![(
        gateway.config.settings.request_id_header.clone(),
        cx.trace.request_id.clone(),
    )];
    if gateway.config.observability.tracing.response_traceparent {
        set.push(("traceparent".into(), cx.trace.traceparent.clone()));
    }
    set
}

/// The exchange for the routed request in `cx`, with the edits its stages made.
pub fn plan<P>(cx: &Ctx, s: Services<'_, P>) -> Result<ExchangePlan, GatewayError> {
    plan_exchange(cx, s, false)
}

/// The exchange of a WebSocket handshake: one attempt, its 101 relayed.
pub fn websocket_plan<P>(cx: &Ctx, s: Services<'_, P>) -> Result<ExchangePlan, GatewayError> {
    plan_exchange(cx, s, true)
}

fn plan_exchange<P>(
    cx: &Ctx,
    s: Services<'_, P>,
    websocket: bool,
) -> Result<ExchangePlan, GatewayError> {
    let gateway = s.gateway;
    let Some(routed) = cx.routed.as_ref() else {
        return Err(GatewayError::NotFound);
    };
    // The canary stage may have chosen the route's canary upstream.
    let upstream_index = super::canary::upstream_of(gateway, cx).ok_or(GatewayError::NotFound)?;
    let Some(upstream) = gateway.config.upstreams.get(upstream_index) else {
        return Err(GatewayError::Internal {
            cause: "a route names an upstream the configuration lacks".into(),
        });
    };
    let inbound = cx.request.inbound();
    let count = if websocket {
        1
    } else if is_idempotent(inbound.method) {
        1 + upstream.retries as usize
    } else {
        1
    };
    let order = target_order(s, upstream_index, count, cx.now_ms as u64)?;
    let attempts = order
        .into_iter()
        .map(|t| {
            let (binding, url) = gateway.target_url_in(routed, upstream_index, t);
            Attempt {
                target: t,
                binding: binding.map(str::to_owned),
                url,
            }
        })
        .collect();
    // A handshake keeps `Upgrade` even when the client's `Connection` names it (it always does).
    let upgrade;
    let keep = if websocket {
        upgrade = ["upgrade".to_owned()];
        &upgrade[..]
    } else {
        gateway.keyed_headers(routed.route)
    };
    let mut remove = request_removals(&inbound, &cx.trace, keep);
    remove.extend(cx.request_edits.remove.iter().cloned());
    let mut set = Vec::with_capacity(5 + cx.request_edits.set.len());
    set.extend(cx.request_edits.set.iter().cloned());
    if let Some(ip) = forwarded_for(&inbound) {
        set.push(("x-forwarded-for".into(), ip.to_owned()));
    }
    set.push(("x-forwarded-proto".into(), inbound.scheme.to_owned()));
    set.push(("x-forwarded-host".into(), forwarded_host(&inbound)));
    set.push((
        gateway.config.settings.request_id_header.clone(),
        cx.trace.request_id.clone(),
    ));
    set.push(("traceparent".into(), cx.trace.traceparent.clone()));
    Ok(ExchangePlan {
        route: routed.route,
        upstream: upstream_index,
        attempts,
        retry_statuses: RETRY_STATUSES,
        timeout_ms: upstream.timeout_ms,
        body_limit: inbound
            .content_length
            .is_none()
            .then_some(gateway.config.settings.max_body_bytes),
        request: HeaderEdits { remove, set },
        response_set: response_set(gateway, cx),
        response_remove: Vec::new(),
        websocket,
    })
}

/// Targets to try, in order: a weighted choice among those whose breaker lets traffic through,
/// then others for the retries (the same one again when it is the only one). A target whose
/// breaker waits for its probe is only ever the first attempt: a probe planned for a retry
/// that is never made (the first attempt succeeded) would re-arm its breaker for a whole
/// cooldown without a request having been sent to it.
fn target_order<P>(
    s: Services<'_, P>,
    upstream_index: usize,
    attempts: usize,
    now_ms: u64,
) -> Result<Vec<usize>, GatewayError> {
    let upstream = &s.gateway.config.upstreams[upstream_index];
    if upstream.targets.len() == 1 && upstream.circuit_breaker.is_none() {
        return Ok(vec![0; attempts]);
    }
    let mut breakers = s.breakers.0.borrow_mut();
    let Some(states) = breakers.get_mut(upstream_index) else {
        return Err(GatewayError::CircuitOpen);
    };
    let mut ids = s.state.ids.borrow_mut();
    let mut order: Vec<usize> = Vec::with_capacity(attempts);
    for slot in 0..attempts {
        let open = |i: usize| {
            states
                .get(i)
                .is_some_and(|b| b.is_open(now_ms) || (slot > 0 && !b.is_closed()))
        };
        let next = choose(
            &upstream.targets,
            |i| !open(i) && !order.contains(&i),
            &mut ids,
        )
        .or_else(|| choose(&upstream.targets, |i| !open(i), &mut ids));
        let Some(t) = next else { break };
        if let (Some(spec), Some(state)) = (&upstream.circuit_breaker, states.get_mut(t)) {
            state.admit(spec, now_ms);
        }
        order.push(t);
    }
    if order.is_empty() {
        return Err(GatewayError::CircuitOpen);
    }
    Ok(order)
}

/// What an exchange's outcome means for the gateway: breakers fed, failures counted and
/// logged, and a failure turned into the client's error.
pub fn settle<P: Events>(
    cx: &mut Ctx,
    s: Services<'_, P>,
    upstream: usize,
    failure: Option<&ExchangeFailure>,
    report: &ExchangeReport,
    now_ms: f64,
) -> Option<GatewayError> {
    s.breakers
        .record(s.gateway, upstream, &report.attempts, now_ms as u64);
    cx.notes.attempts = report.attempts.len() as u32;
    cx.notes.target = report.attempts.last().map(|(t, _)| *t);
    cx.notes.upstream_ms = Some(report.upstream_ms);
    if failure.is_none() {
        cx.notes.source = crate::observe::Source::Upstream;
    }
    let failure = failure?;
    if !matches!(failure, ExchangeFailure::TooLarge) {
        s.state.counters.add(Counter::UpstreamFailures);
    }
    Some(match failure {
        ExchangeFailure::Timeout => GatewayError::UpstreamTimeout,
        ExchangeFailure::TooLarge => GatewayError::PayloadTooLarge {
            limit: s.gateway.config.settings.max_body_bytes,
        },
        ExchangeFailure::InvalidResponse(reason) => {
            s.state.counters.add(Counter::UpstreamInvalidResponses);
            s.ports.event(
                Level::Warn,
                serde_json::json!({
                    "event": "upstream_invalid_response",
                    "request_id": cx.trace.request_id,
                    "upstream": s.gateway.config.upstreams.get(upstream).map(|u| u.name.as_str()),
                    "reason": reason,
                }),
            );
            GatewayError::UpstreamInvalidResponse
        }
        ExchangeFailure::Unreachable(reason) => {
            s.ports.event(
                Level::Warn,
                serde_json::json!({
                    "event": "upstream_unreachable",
                    "request_id": cx.trace.request_id,
                    "upstream": s.gateway.config.upstreams.get(upstream).map(|u| u.name.as_str()),
                    "target": cx.notes.target,
                    "reason": unreachable_class(reason),
                }),
            );
            GatewayError::UpstreamUnreachable
        }
    })
}

/// What kind of connection failure the runtime's message describes, as a fixed word: the
/// runtime's own text (which can name addresses) never reaches a log line.
pub fn unreachable_class(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| m.contains(w));
    if has(&["no service binding"]) {
        "missing_service_binding"
    } else if has(&["refused"]) {
        "connection_refused"
    } else if has(&["dns", "resolve", "lookup", "name not known", "no such host"]) {
        "dns_failure"
    } else if has(&["tls", "ssl", "certificate"]) {
        "tls_failure"
    } else if has(&["lost", "reset", "closed", "disconnected", "eof"]) {
        "connection_lost"
    } else {
        "connection_failed"
    }
}

#[cfg(test)]
mod failure_tests {
    use super::unreachable_class;

    #[test]
    fn runtime_messages_become_fixed_words() {
        for (message, class) in [
            ("Network connection lost.", "connection_lost"),
            ("connect ECONNREFUSED 10.0.0.7:443", "connection_refused"),
            ("DNS lookup failed for users.internal", "dns_failure"),
            ("TLS peer's certificate is not trusted", "tls_failure"),
            ("no service binding USERS", "missing_service_binding"),
            ("internal error; reference = 0123abc", "connection_failed"),
        ] {
            assert_eq!(unreachable_class(message), class, "{message}");
        }
    }
}
