//! Freshness (RFC 9111 §4.2), age, and the stale-if-error window. All times are Unix seconds
//! passed in by the caller; nothing here reads a clock.

use super::control::{parse_delta_seconds, split_list};
use super::date::parse_http_date;
use super::facts::{heuristic_status, Policy, ResponseFacts};
use crate::config::CacheSpec;

/// How long `resp` stays fresh once received, in seconds, always capped by `spec.ttl_s`.
///
/// The deciding directives are the first valid targeted field (`Cloudflare-CDN-Cache-Control`,
/// `CDN-Cache-Control`), else `Cache-Control` (see [`super::targeted`]). In order
/// (RFC 9111 §4.2.1):
/// 1. unqualified `no-cache` or `no-store` → 0: the response may only be reused after
///    revalidation (a qualified `no-cache="f"` does not: the named fields are stripped instead);
/// 2. `s-maxage` (a shared cache reads it first);
/// 3. `max-age`;
/// 4. `Expires` − `Date`, never negative (ignored when a targeted field decides). An `Expires`
///    that is not a valid HTTP-date (`0`, `-1`, two values joined by a comma) means already
///    expired (RFC 9111 §5.3), and so does an `Expires` without a valid `Date`;
/// 5. otherwise the upstream said nothing about freshness: the heuristic lifetime, which is the
///    route's `default_ttl_s` (default 0) for a heuristically cacheable status below 500
///    ([`HEURISTIC_STATUSES`](super::facts::HEURISTIC_STATUSES)) and 0 for anything else.
///
/// Invalid or conflicting `max-age`/`s-maxage` values already read as 0 (see
/// [`super::control`]).
pub fn freshness_lifetime_s(resp: &ResponseFacts, spec: &CacheSpec) -> u64 {
    let policy = resp.policy();
    upstream_lifetime_s(&policy, resp)
        .unwrap_or_else(|| heuristic_lifetime_s(resp.status, spec))
        .min(spec.ttl_s)
}

/// The heuristic freshness (RFC 9111 §4.2.2) of a response that states none: the route's
/// `default_ttl_s` for a heuristically cacheable status that is not a 5xx, else 0.
pub fn heuristic_lifetime_s(status: u16, spec: &CacheSpec) -> u64 {
    if heuristic_status(status) {
        spec.default_ttl_s
    } else {
        0
    }
}

/// The lifetime the upstream gave, or `None` if it said nothing about freshness.
fn upstream_lifetime_s(policy: &Policy, resp: &ResponseFacts) -> Option<u64> {
    let cc = &policy.control;
    if cc.no_cache || cc.no_store {
        return Some(0);
    }
    if let Some(s) = cc.s_maxage {
        return Some(s);
    }
    if let Some(s) = cc.max_age {
        return Some(s);
    }
    let expires = resp.effective_expires(policy)?;
    let lifetime = match (
        parse_http_date(expires),
        resp.date.and_then(parse_http_date),
    ) {
        (Some(exp), Some(date)) => u64::try_from(exp.saturating_sub(date)).unwrap_or(0),
        _ => 0,
    };
    Some(lifetime)
}

/// How long past the end of its freshness a stored `resp` may be served when the upstream fails.
///
/// The route's `spec.stale_if_error_s` is the maximum. The upstream may only shorten it:
/// - an explicit `stale-if-error=N` (RFC 5861) gives `min(N, spec.stale_if_error_s)`; being an
///   explicit permission to serve stale on error, it applies even alongside `must-revalidate`,
///   `proxy-revalidate`, `no-cache` or `s-maxage`;
/// - otherwise `must-revalidate`, `proxy-revalidate`, `no-cache` or `s-maxage` (which implies
///   `proxy-revalidate` for a shared cache, RFC 9111 §5.2.2.10) give 0: RFC 9111 §4.2.4 forbids
///   serving a stale response those directives prohibit;
/// - otherwise the route's value applies as configured (RFC 9111 §4.2.4 lets a cache serve stale
///   by out-of-band agreement, which the route configuration is).
pub fn stale_if_error_window_s(resp: &ResponseFacts, spec: &CacheSpec) -> u64 {
    let cc = resp.control();
    let max = spec.stale_if_error_s;
    if let Some(n) = cc.stale_if_error {
        return n.min(max);
    }
    if cc.must_revalidate || cc.proxy_revalidate || cc.no_cache || cc.s_maxage.is_some() {
        return 0;
    }
    max
}

/// How long past the end of its freshness a stored `resp` may be served at once while it is
/// refreshed in the background (RFC 5861 `stale-while-revalidate`).
///
/// - an explicit `stale-while-revalidate=N` in the deciding field gives `N` (at most the route's
///   `ttl_s`), even beside `s-maxage`, whose implied `proxy-revalidate` it explicitly relaxes;
/// - `no-cache`, `must-revalidate` or `proxy-revalidate` give 0 either way: RFC 9111 §5.2.2.2
///   forbids using such a response stale before a successful revalidation;
/// - otherwise the route's `stale_while_revalidate_s`, unless `s-maxage` is present (a shared
///   cache reads it as `proxy-revalidate`, RFC 9111 §5.2.2.10).
pub fn stale_while_revalidate_window_s(resp: &ResponseFacts, spec: &CacheSpec) -> u64 {
    let cc = resp.control();
    if cc.no_cache || cc.must_revalidate || cc.proxy_revalidate {
        return 0;
    }
    match cc.stale_while_revalidate {
        Some(n) => n.min(spec.ttl_s),
        None if cc.s_maxage.is_some() => 0,
        None => spec.stale_while_revalidate_s,
    }
}

/// Whether the deciding directives forbid serving `resp` stale without revalidation
/// (`must-revalidate`, `proxy-revalidate`, `no-cache`, or `s-maxage`, which implies
/// `proxy-revalidate` for a shared cache): a client's `max-stale` cannot override them.
pub fn forbids_stale(resp: &ResponseFacts) -> bool {
    let cc = resp.control();
    cc.must_revalidate || cc.proxy_revalidate || cc.no_cache || cc.s_maxage.is_some()
}

/// How long the platform should keep a stored `resp` (the expiry it gives the Cache API), in
/// seconds: its lifetime plus the longer of its stale-if-error and stale-while-revalidate
/// windows; and when it carries a validator, the route's full `ttl_s` plus that window, since a
/// stale copy with a validator can still be revalidated cheaply.
pub fn retention_s(resp: &ResponseFacts, spec: &CacheSpec) -> u64 {
    let fresh = if resp.has_validator() {
        spec.ttl_s.max(freshness_lifetime_s(resp, spec))
    } else {
        freshness_lifetime_s(resp, spec)
    };
    let window =
        stale_if_error_window_s(resp, spec).max(stale_while_revalidate_window_s(resp, spec));
    fresh.saturating_add(window)
}

/// The longest [`retention_s`] of any response on a route with `spec`: an invalidation marker
/// kept this long outlives every entry it invalidates. (A response's own
/// `stale-while-revalidate` may reach `ttl_s`, beyond the route's window.)
pub fn longest_retention_s(spec: &CacheSpec) -> u64 {
    let window = spec
        .stale_if_error_s
        .max(spec.stale_while_revalidate_s)
        .max(spec.ttl_s);
    spec.ttl_s.saturating_add(window)
}

/// The age of a response when it was received (RFC 9111 §4.2.3 `corrected_initial_age`):
/// the larger of the apparent age (`response_time_s − Date`, never negative) and the upstream's
/// `Age` plus the time the request took. An absent `Age` is 0 ("not available"). Of a list
/// (several `Age` lines, or one with commas) only the first member counts, and when that member
/// is not a valid `delta-seconds` the whole field is ignored (RFC 9111 §5.1). An absent or
/// invalid `Date` gives no apparent age.
pub fn initial_age_s(
    age: Option<&str>,
    date: Option<&str>,
    request_time_s: i64,
    response_time_s: i64,
) -> u64 {
    let age_value = age.map_or(0, age_header_s);
    let apparent_age = date
        .and_then(parse_http_date)
        .map_or(0, |d| non_negative(response_time_s.saturating_sub(d)));
    let response_delay = non_negative(response_time_s.saturating_sub(request_time_s));
    apparent_age.max(age_value.saturating_add(response_delay))
}

/// The value of an `Age` field (RFC 9111 §5.1): its first member, or 0 when that is invalid.
pub fn age_header_s(value: &str) -> u64 {
    split_list(value)
        .first()
        .and_then(|v| parse_delta_seconds(v.trim_matches([' ', '\t'])))
        .unwrap_or(0)
}

/// The current age of a stored response (RFC 9111 §4.2.3, simplified): the age it had when
/// stored (see [`initial_age_s`]) plus the time since. Never negative, even if the clock went
/// backwards.
pub fn current_age_s(stored_at_s: i64, age_header_at_store: u64, now_s: i64) -> u64 {
    age_header_at_store.saturating_add(non_negative(now_s.saturating_sub(stored_at_s)))
}

/// Remaining freshness in seconds (`lifetime − age`), negative once stale: the `ttl` of
/// `Cache-Status` (RFC 9211 §2.5).
pub fn ttl_remaining_s(lifetime_s: u64, age_s: u64) -> i64 {
    let lifetime = i64::try_from(lifetime_s).unwrap_or(i64::MAX);
    let age = i64::try_from(age_s).unwrap_or(i64::MAX);
    lifetime.saturating_sub(age)
}

/// What a stored response may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Serve it.
    Fresh,
    /// Stale, but within the stale-if-error window: revalidate or refetch, and serve it if the
    /// upstream fails (connect error, timeout, 5xx).
    StaleServeOnError,
    /// Stale: revalidate or refetch; never serve it without a successful revalidation.
    Stale,
}

/// Classifies a stored response of lifetime `lifetime_s` and age `age_s`, with a stale-if-error
/// window of `stale_if_error_s` (see [`stale_if_error_window_s`]).
///
/// Fresh while `age < lifetime` (RFC 9111 §4.2: fresh if the lifetime exceeds the age); then
/// serve-on-error while `age < lifetime + stale_if_error_s`, a window of exactly
/// `stale_if_error_s` seconds (none when it is 0); then stale.
pub fn classify(lifetime_s: u64, age_s: u64, stale_if_error_s: u64) -> Freshness {
    if age_s < lifetime_s {
        Freshness::Fresh
    } else if age_s < lifetime_s.saturating_add(stale_if_error_s) {
        Freshness::StaleServeOnError
    } else {
        Freshness::Stale
    }
}

fn non_negative(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
