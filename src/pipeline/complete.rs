//! The completion point: every request, on every path, ends here with its context and how it
//! ended. The access log line and the metrics data point are decided and made here and nowhere
//! else; the platform only writes them.

use super::ctx::Ctx;
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::observe::{access_log, metrics, Client, Completed, Source};
use std::borrow::Cow;

/// How a request ended, as the client saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: u16,
    /// The problem code of a gateway-generated refusal.
    pub code: Option<&'static str>,
    pub response_bytes: Option<u64>,
}

impl Outcome {
    pub fn of_error(e: &GatewayError) -> Outcome {
        Outcome {
            status: e.status(),
            code: Some(e.code()),
            response_bytes: None,
        }
    }

    pub fn of_status(status: u16) -> Outcome {
        Outcome {
            status,
            code: None,
            response_bytes: None,
        }
    }
}

/// What the completion point writes for one request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Completion {
    /// The access log line (one JSON object), when this request is logged.
    pub access_log: Option<String>,
    /// The `writeDataPoint` argument (JSON), when this request is counted.
    pub data_point: Option<String>,
}

/// Ends a request: decides, from its context and outcome, the access line and the data point.
pub fn complete(cx: &Ctx, gateway: &Gateway, outcome: &Outcome, now_ms: f64) -> Completion {
    let observability = &gateway.config.observability;
    let route = cx.routed.as_ref().map(|r| gateway.route(r.route));
    // A request the gateway refused is the gateway's answer, whatever a stage noted before.
    let source = if outcome.code.is_some() {
        Source::Gateway
    } else {
        cx.notes.source
    };
    let path: Cow<str> = match &cx.routed {
        Some(r) => Cow::Borrowed(&r.canonical_path),
        None => crate::path::canonicalize(&cx.request.path)
            .map(Cow::Owned)
            .unwrap_or(Cow::Borrowed(&cx.request.path)),
    };
    let headers: Vec<(&str, &str)> = cx
        .logged_headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let identity = cx.identity.as_ref();
    let span = &cx.trace.span;
    let c = Completed {
        ts_ms: cx.started_ms as u64,
        request_id: &cx.trace.request_id,
        trace_id: span.trace_id,
        span_id: span.span_id,
        parent_span_id: span.parent_span_id,
        sample_key: span.sample_key,
        route: route.map(|r| r.id.as_str()),
        method: &cx.request.method,
        host: &cx.request.host,
        path: &path,
        query: cx.request.query.as_deref(),
        status: outcome.status,
        code: outcome.code,
        source,
        upstream: super::canary::upstream_of(gateway, cx)
            .and_then(|u| gateway.config.upstreams.get(u))
            .map(|u| u.name.as_str()),
        target: cx.notes.target,
        attempts: cx.notes.attempts,
        latency_ms: (now_ms - cx.started_ms).max(0.0) as u64,
        upstream_latency_ms: cx.notes.upstream_ms.map(|ms| ms.max(0.0) as u64),
        cache: cx.notes.cache,
        rate_limit: cx.notes.rate_limit.as_ref().map(|n| n.as_result()),
        consumer: identity.and_then(|i| i.consumer.as_deref()),
        auth_scheme: identity
            .map(|i| i.scheme.as_str())
            .filter(|s| !s.is_empty()),
        variant: cx.variant,
        config_digest: &gateway.digest,
        request_bytes: cx
            .request
            .content_length
            .as_deref()
            .and_then(|l| l.trim().parse().ok()),
        response_bytes: outcome.response_bytes,
        client: Client {
            ip: cx.request.client_ip.as_deref(),
            user_agent: cx.client.user_agent.as_deref(),
            country: cx.client.country.as_deref(),
            asn: cx.client.asn,
            colo: cx.client.colo.as_deref(),
        },
        request_headers: &headers,
    };
    let per_route = route.map(|r| r.observability).unwrap_or_default();
    let log = &observability.access_log;
    let access_log = access_log::should_log(&c, log, per_route.log_sample_rate)
        .then(|| access_log::AccessRecord::new(&c, log, &gateway.redactor).to_json());
    let spec = &observability.metrics;
    let data_point = metrics::should_write(&c, spec, per_route.metrics)
        .then(|| metrics::DataPoint::new(&c, spec).to_json());
    Completion {
        access_log,
        data_point,
    }
}

#[cfg(test)]
mod tests;
