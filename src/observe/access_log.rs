//! The access log: one JSON object per request, written by the completion point with
//! `console.log` so Workers Logs indexes its members.
//!
//! [`should_log`] decides (sampling, `always_log_errors`); [`AccessRecord`] holds every member
//! of the contract and renders the line. Credentials never reach it: the query is redacted,
//! credential headers cannot be configured, and logged header values are scrubbed.

use super::client_ip::client_ip;
use super::redact::Redactor;
use super::{is_error, sample, Completed};
use crate::config::{AccessLogSpec, ClientIpMode, LogField};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use std::borrow::Cow;

/// Whether the request is logged: kept by the sample rate (the route's `log_sample_rate`,
/// else `access_log.sample_rate`), or an error the gateway must always log.
pub fn should_log(c: &Completed, spec: &AccessLogSpec, route_rate: Option<f64>) -> bool {
    let rate = route_rate.unwrap_or(spec.sample_rate);
    sample::keep(c.sample_key, rate) || (spec.always_log_errors && is_error(c.status, c.source))
}

/// The most bytes of a free-text member (`path`, `query`, `user_agent`, a logged header's
/// value) a line carries. A client controls them, and a line must stay far below what a log
/// pipeline accepts (Workers Logs drops an invocation's logs past 256 KB), or the request
/// would go unrecorded.
pub const LOGGED_TEXT_MAX: usize = 2048;

/// What marks a member cut by [`clipped`].
pub const CLIPPED_MARK: &str = "…";

/// `text`, or its first `max`-or-fewer bytes (cut at a character boundary) and
/// [`CLIPPED_MARK`] when it is longer than `max`. Text already owned is cut in place.
pub fn clipped<'t>(text: impl Into<Cow<'t, str>>, max: usize) -> Cow<'t, str> {
    let text = text.into();
    if text.len() <= max {
        return text;
    }
    let end = super::metrics::cut(&text, max).len();
    let mut cut = match text {
        Cow::Borrowed(t) => String::from(&t[..end]),
        Cow::Owned(mut t) => {
            t.truncate(end);
            t
        }
    };
    cut.push_str(CLIPPED_MARK);
    Cow::Owned(cut)
}

/// A client's free text as a line carries it: scrubbed of credentials (see
/// [`Redactor::text`]) and bounded. Cut before it is scrubbed, which bounds the work, and
/// after, which bounds the line (see [`clipped`]).
fn scrubbed<'t>(redactor: &Redactor, text: &str) -> Cow<'t, str> {
    clipped(
        redactor.text(&clipped(text, 4 * LOGGED_TEXT_MAX)),
        LOGGED_TEXT_MAX,
    )
}

/// One access-log line. Members are in the contract's order; the optional ones (`client_ip`,
/// `fields`, `request_headers`) are present only when configured, `null` when configured but
/// unknown for this request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccessRecord<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub ts_ms: u64,
    pub request_id: &'a str,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub route: Option<&'a str>,
    pub method: &'a str,
    pub host: &'a str,
    pub path: Cow<'a, str>,
    pub query: Option<Cow<'a, str>>,
    pub status: u16,
    pub code: Option<&'a str>,
    pub source: &'static str,
    pub upstream: Option<&'a str>,
    pub target: Option<usize>,
    pub attempts: u32,
    pub latency_ms: u64,
    pub upstream_latency_ms: Option<u64>,
    pub cache: Option<&'static str>,
    pub rate_limit: Option<String>,
    pub consumer: Option<&'a str>,
    pub auth_scheme: Option<&'a str>,
    pub variant: Option<&'static str>,
    pub config_digest: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<Option<Cow<'a, str>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<Option<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub colo: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_headers: Option<HeaderValues>,
}

/// The configured request headers, name → value (`null` when the request had none), in the
/// order configured.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderValues(pub Vec<(String, Option<String>)>);

impl Serialize for HeaderValues {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'a> AccessRecord<'a> {
    pub fn new(c: &Completed<'a>, spec: &AccessLogSpec, redactor: &Redactor) -> AccessRecord<'a> {
        let field = |f: LogField| spec.fields.contains(&f);
        let request_headers = (!spec.request_headers.is_empty()).then(|| {
            HeaderValues(
                spec.request_headers
                    .iter()
                    .map(|name| {
                        let value = c
                            .request_headers
                            .iter()
                            .find(|(n, _)| n.eq_ignore_ascii_case(name))
                            // Cut before it is scrubbed, which bounds the work, and after,
                            // which bounds the line (see `clipped`).
                            .map(|(_, v)| scrubbed(redactor, v).into_owned());
                        (name.clone(), value)
                    })
                    .collect(),
            )
        });
        AccessRecord {
            kind: "access",
            ts_ms: c.ts_ms,
            request_id: c.request_id,
            trace_id: c.trace_id.hex(),
            span_id: c.span_id.hex(),
            parent_span_id: c.parent_span_id.map(|s| s.hex()),
            route: c.route,
            method: c.method,
            host: c.host,
            // A refused path is logged as sent, `;` parameters and all, and a token can be a
            // path segment: scrubbed, when it holds anything credential-shaped at all.
            path: if crate::observe::redact::may_hold_credential(c.path) {
                scrubbed(redactor, c.path)
            } else {
                clipped(c.path, LOGGED_TEXT_MAX)
            },
            query: c.query.map(|q| clipped(redactor.query(q), LOGGED_TEXT_MAX)),
            status: c.status,
            code: c.code,
            source: c.source.as_str(),
            upstream: c.upstream,
            target: c.target,
            attempts: c.attempts,
            latency_ms: c.latency_ms,
            upstream_latency_ms: c.upstream_latency_ms,
            cache: c.cache.map(|r| r.as_str()),
            rate_limit: c.rate_limit.map(|r| r.render()),
            consumer: c.consumer,
            auth_scheme: c.auth_scheme,
            variant: c.variant.map(|v| v.as_str()),
            config_digest: c.config_digest,
            client_ip: (spec.client_ip != ClientIpMode::Omit)
                .then(|| client_ip(c.client.ip, spec.client_ip)),
            user_agent: field(LogField::UserAgent)
                .then(|| c.client.user_agent.map(|ua| scrubbed(redactor, ua))),
            country: field(LogField::Country).then_some(c.client.country),
            asn: field(LogField::Asn).then_some(c.client.asn),
            colo: field(LogField::Colo).then_some(c.client.colo),
            request_headers,
        }
    }

    /// The line: one JSON object, no newline.
    pub fn to_json(&self) -> String {
        crate::json::text(self, 1024)
    }
}
