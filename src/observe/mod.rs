//! What the gateway writes about every request: the access log line, the Analytics Engine data
//! point and the W3C trace context.
//!
//! Pure: nothing here touches the `worker` crate or reads a clock. The completion point hands
//! in how a request ended ([`Completed`]); these modules decide whether to write and what:
//!
//! - [`trace`] parses an inbound `traceparent`, decides sampling and makes the gateway's span;
//! - [`sample`] is the one deterministic keep-or-drop decision all three share;
//! - [`access_log`] renders the access line (with [`redact`] and [`client_ip`]);
//! - [`metrics`] lays out the Analytics Engine data point;
//! - [`redact`] keeps credentials out of every line the gateway writes;
//! - [`shown`] shows URLs and member names in errors without them.

pub mod access_log;
pub mod client_ip;
pub mod metrics;
pub mod redact;
pub mod sample;
pub mod shown;
pub mod trace;

use crate::cache::status::CacheOutcome;
use trace::{SpanId, TraceId};

/// Who produced the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    /// The upstream's answer, relayed.
    Upstream,
    /// A stored response.
    Cache,
    /// The gateway itself: a refusal, an error, an admin answer.
    #[default]
    Gateway,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Upstream => "upstream",
            Source::Cache => "cache",
            Source::Gateway => "gateway",
        }
    }
}

/// What the response cache did, as logged and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheResult {
    Hit,
    Miss,
    Stale,
    Bypass,
}

impl CacheResult {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheResult::Hit => "hit",
            CacheResult::Miss => "miss",
            CacheResult::Stale => "stale",
            CacheResult::Bypass => "bypass",
        }
    }
}

impl From<&CacheOutcome> for CacheResult {
    /// Only a fresh entry is a hit: a stale one is `stale` whether it was served as it was or
    /// after the upstream revalidated it with a 304.
    fn from(outcome: &CacheOutcome) -> CacheResult {
        match outcome {
            CacheOutcome::Hit => CacheResult::Hit,
            CacheOutcome::Miss { .. } => CacheResult::Miss,
            CacheOutcome::Stale { .. }
            | CacheOutcome::StaleWhileRevalidate
            | CacheOutcome::Revalidated { .. } => CacheResult::Stale,
            CacheOutcome::Bypass(_) => CacheResult::Bypass,
        }
    }
}

/// The rate-limit stage's verdict on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitResult<'a> {
    Allowed,
    /// Refused by this policy.
    Limited(&'a str),
    /// This policy's counter store failed (the request went on or was refused per
    /// `on_store_error`).
    StoreError(&'a str),
}

impl RateLimitResult<'_> {
    /// `allowed`, `limited:<policy>` or `store_error:<policy>`.
    pub fn render(&self) -> String {
        match self {
            RateLimitResult::Allowed => "allowed".to_owned(),
            RateLimitResult::Limited(p) => format!("limited:{p}"),
            RateLimitResult::StoreError(p) => format!("store_error:{p}"),
        }
    }
}

/// Which upstream of a canary route served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Primary,
    Canary,
}

impl Variant {
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Primary => "primary",
            Variant::Canary => "canary",
        }
    }
}

/// The request's Cloudflare-reported client facts (`CF-Connecting-IP`, `request.cf`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Client<'a> {
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub country: Option<&'a str>,
    pub asn: Option<u32>,
    pub colo: Option<&'a str>,
}

/// How one request ended: what the completion point hands to the access log and the metrics.
/// Borrowed, so building it costs nothing on the hot path.
#[derive(Debug, Clone, Copy, Default)]
pub struct Completed<'a> {
    /// When the request arrived (Unix milliseconds).
    pub ts_ms: u64,
    pub request_id: &'a str,
    pub trace_id: TraceId,
    /// The gateway's span.
    pub span_id: SpanId,
    /// The span of the inbound `traceparent`, if the request had a valid one.
    pub parent_span_id: Option<SpanId>,
    /// [`trace::SpanContext::sample_key`]: what log and metrics sampling decide on.
    pub sample_key: u64,
    /// The route id; `None` when no route matched (404, 405, invalid path, admin calls).
    pub route: Option<&'a str>,
    pub method: &'a str,
    /// The authority the client addressed.
    pub host: &'a str,
    /// The canonical path (the raw one when it could not be canonicalised).
    pub path: &'a str,
    /// The raw query without `?`; credential values are redacted when logged.
    pub query: Option<&'a str>,
    pub status: u16,
    /// The problem `code` of a gateway error response.
    pub code: Option<&'a str>,
    pub source: Source,
    /// The upstream's name.
    pub upstream: Option<&'a str>,
    /// Index of the target that answered, within the upstream.
    pub target: Option<usize>,
    /// Upstream exchanges tried (0 when none was).
    pub attempts: u32,
    /// From arrival to the response head.
    pub latency_ms: u64,
    /// Time spent waiting for the upstream, over all attempts.
    pub upstream_latency_ms: Option<u64>,
    pub cache: Option<CacheResult>,
    pub rate_limit: Option<RateLimitResult<'a>>,
    /// `jwt/<scheme>/<sub>` or `key/<consumer>`.
    pub consumer: Option<&'a str>,
    /// The auth scheme that authenticated the request.
    pub auth_scheme: Option<&'a str>,
    pub variant: Option<Variant>,
    /// The digest of the configuration that served the request.
    pub config_digest: &'a str,
    /// Request body size, when known (`Content-Length`).
    pub request_bytes: Option<u64>,
    /// Response body size, when known.
    pub response_bytes: Option<u64>,
    pub client: Client<'a>,
    /// Values of the configured `access_log.request_headers` the request carried, as
    /// `(lower-case name, value)`.
    pub request_headers: &'a [(&'a str, &'a str)],
}

/// Whether the gateway itself refused or failed the request: every 5xx, and every 4xx the
/// gateway generated. These are kept by `always_log_errors` whatever the sample rate.
pub fn is_error(status: u16, source: Source) -> bool {
    status >= 500 || (source == Source::Gateway && status >= 400)
}

/// The status class for metrics: `2xx`, `4xx`, …
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

#[cfg(test)]
mod tests;
