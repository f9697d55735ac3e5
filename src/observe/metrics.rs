//! The Workers Analytics Engine data point written for each (sampled) request.
//!
//! The slot order is public interface (operators' SQL reads `blob1`, `double2`, …): append new
//! slots, never reorder. Empty strings and zeros stand for "none".
//!
//! | slot | value |
//! |---|---|
//! | index1 | route id, consumer or host (`metrics.index`) |
//! | blob1…blob16 | route, method, status class, status, source, code, cache, rate limit, upstream, target, consumer, host, colo, country, variant, config digest |
//! | double1…double7 | status, latency_ms, upstream_latency_ms, attempts, request bytes, response bytes, sample factor |
//!
//! Analytics Engine refuses a point with an index over 96 bytes or blobs over 16 KB in total;
//! every value is cut (at a character boundary) so a point is always accepted.

use super::{sample, status_class, Completed};
use crate::config::{MetricsIndex, MetricsSpec};
use serde::Serialize;
use std::borrow::Cow;

/// Largest index Analytics Engine accepts, in bytes.
pub const MAX_INDEX_BYTES: usize = 96;
/// Largest blob the gateway writes, in bytes: 16 blobs of it stay under the 16 KB total.
pub const MAX_BLOB_BYTES: usize = 1000;
/// Analytics Engine accepts at most this many blobs and doubles per point.
pub const MAX_SLOTS: usize = 20;

/// Slot names, in order, for documentation and tests.
pub const BLOBS: [&str; 16] = [
    "route",
    "method",
    "status_class",
    "status",
    "source",
    "code",
    "cache",
    "rate_limit",
    "upstream",
    "target",
    "consumer",
    "host",
    "colo",
    "country",
    "variant",
    "config_digest",
];
pub const DOUBLES: [&str; 7] = [
    "status",
    "latency_ms",
    "upstream_latency_ms",
    "attempts",
    "request_bytes",
    "response_bytes",
    "sample_factor",
];

/// Whether the request writes a data point: the route counts (`observability.metrics`) and the
/// request is kept at `metrics.sample_rate`.
pub fn should_write(c: &Completed, spec: &MetricsSpec, route_metrics: bool) -> bool {
    route_metrics && sample::keep(c.sample_key, spec.sample_rate)
}

/// The argument of `writeDataPoint`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataPoint<'a> {
    pub indexes: [Cow<'a, str>; 1],
    /// Borrowed from the request's context wherever it can be: a point is made per request.
    pub blobs: Vec<Cow<'a, str>>,
    #[serde(serialize_with = "whole_as_integers")]
    pub doubles: Vec<f64>,
}

/// The doubles, whole ones written as integers (`200`, not `200.0`): the same numbers to
/// `writeDataPoint`, written without the float formatter, which a request would otherwise run
/// (and a fresh isolate compile) for values that are almost always whole.
fn whole_as_integers<S: serde::Serializer>(doubles: &[f64], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    /// Below 2^53 every whole f64 is an exact i64.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    let mut seq = s.serialize_seq(Some(doubles.len()))?;
    for &d in doubles {
        if d.fract() == 0.0 && d.abs() < EXACT {
            seq.serialize_element(&(d as i64))?;
        } else {
            seq.serialize_element(&d)?;
        }
    }
    seq.end()
}

impl<'a> DataPoint<'a> {
    pub fn new(c: &Completed<'a>, spec: &MetricsSpec) -> DataPoint<'a> {
        let opt = |v: Option<&'a str>| Cow::Borrowed(v.unwrap_or(""));
        let host: Cow<'a, str> = if c.host.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(c.host.to_ascii_lowercase())
        } else {
            Cow::Borrowed(c.host)
        };
        let index = match spec.index {
            MetricsIndex::Route => opt(c.route),
            MetricsIndex::Consumer => opt(c.consumer),
            MetricsIndex::Host => host.clone(),
        };
        let blobs: Vec<Cow<'a, str>> = vec![
            opt(c.route),
            Cow::Borrowed(c.method),
            Cow::Borrowed(status_class(c.status)),
            Cow::Owned(c.status.to_string()),
            Cow::Borrowed(c.source.as_str()),
            opt(c.code),
            opt(c.cache.map(|r| r.as_str())),
            c.rate_limit
                .map(|r| Cow::Owned(r.render()))
                .unwrap_or_default(),
            opt(c.upstream),
            c.target
                .map(|t| Cow::Owned(t.to_string()))
                .unwrap_or_default(),
            opt(c.consumer),
            host,
            opt(c.client.colo),
            opt(c.client.country),
            opt(c.variant.map(|v| v.as_str())),
            Cow::Borrowed(c.config_digest),
        ];
        let doubles = vec![
            f64::from(c.status),
            c.latency_ms as f64,
            c.upstream_latency_ms.unwrap_or(0) as f64,
            f64::from(c.attempts),
            c.request_bytes.unwrap_or(0) as f64,
            c.response_bytes.unwrap_or(0) as f64,
            sample::factor(spec.sample_rate),
        ];
        DataPoint {
            indexes: [shortened(index, MAX_INDEX_BYTES)],
            blobs: blobs
                .into_iter()
                .map(|b| shortened(b, MAX_BLOB_BYTES))
                .collect(),
            doubles,
        }
    }

    /// The JSON text the platform hands to `writeDataPoint`.
    pub fn to_json(&self) -> String {
        crate::json::text(self, 512)
    }
}

/// `value` cut to at most `max` bytes (see [`cut`]).
fn shortened(value: Cow<'_, str>, max: usize) -> Cow<'_, str> {
    match value {
        Cow::Borrowed(s) => Cow::Borrowed(cut(s, max)),
        Cow::Owned(s) if s.len() > max => Cow::Owned(cut(&s, max).to_owned()),
        owned => owned,
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends at a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
