//! The caching stage: look up, serve fresh entries, revalidate stale ones, fall back to stale
//! copies when the upstream fails, store what RFC 9111 lets a shared cache store, and
//! invalidate on unsafe requests. The rules are in `crate::cache`; this stage applies them
//! through the response-cache port and carries out the exchange itself.

use super::ctx::{CacheKeys, CacheResult, Ctx, Source};
use super::driver::{Stage, Step};
use super::exchange::{self, ExchangePlan};
use super::ports::{Ports, ResponseCache};
use super::state::Services;
use crate::cache::entry::{self, EntryMeta, Lookup};
use crate::cache::{
    cache_key_url, cache_status, freshness_lifetime_s, initial_age_s, not_modified,
    preconditions_apply, retention_s, revalidation_headers, stale_if_error_window_s, storable,
    CacheKeyInput, CacheOutcome, NotStored, RequestFacts, ResponseFacts,
};
use crate::config::{CacheSpec, Route, RouteAuth};
use crate::error::GatewayError;
use crate::forward::{forwarded_host, Routed};
use crate::gateway::Gateway;

/// How long an isolate keeps a hit in memory: an unsafe request or purge handled by another
/// isolate reaches this one's copy within this time (the Cache API entry is gone at once).
pub const HOT_MAX_MS: f64 = 5_000.0;
/// Largest body kept in memory.
pub const HOT_MAX_BYTES: u64 = 256 * 1024;

/// Response headers read from an upstream response for the storability decision.
const RESPONSE_FACTS: [&str; 9] = [
    "cache-control",
    "expires",
    "date",
    "set-cookie",
    "vary",
    "content-length",
    "etag",
    "last-modified",
    "age",
];
/// Bookkeeping headers of a stored entry, then its validators.
const ENTRY_FACTS: [&str; 6] = [
    entry::STORED_AT,
    entry::INITIAL_AGE,
    entry::LIFETIME,
    entry::STALE_IF_ERROR,
    "etag",
    "last-modified",
];

/// The keys of a URL on a route: its entry, and the invalidation marker when the route keys
/// variants (vary headers, consumer) that a single delete could not reach.
pub fn keys(
    gateway: &Gateway,
    scheme: &str,
    host: &str,
    routed: &Routed,
    vary_values: &[Option<String>],
    consumer: Option<&str>,
    variant: Option<crate::observe::Variant>,
) -> CacheKeys {
    let route = gateway.route(routed.route);
    let Some(spec) = &route.cache else {
        return CacheKeys {
            entry: String::new(),
            marker: None,
        };
    };
    let host = host.to_ascii_lowercase();
    let query = routed.upstream_path.split_once('?').map(|(_, q)| q);
    let consumer = if spec.per_consumer { consumer } else { None };
    let generation = gateway.config.settings.cache_generation;
    let base = CacheKeyInput {
        scheme,
        host: &host,
        canonical_path: &routed.canonical_path,
        query,
        vary_values: spec
            .vary
            .iter()
            .zip(vary_values.iter())
            .map(|(n, v)| (n.as_str(), v.as_deref()))
            .collect(),
        consumer,
        variant: match (&route.canary, variant) {
            (Some(_), Some(crate::observe::Variant::Canary)) => Some("canary"),
            _ => None,
        },
        generation,
        route_id: &route.id,
    };
    // A canary route keeps two variants of each URL: one delete could not reach both.
    let marker =
        (!spec.vary.is_empty() || spec.per_consumer || route.canary.is_some()).then(|| {
            let marker_route = format!("{}\u{0}invalidated", route.id);
            cache_key_url(&CacheKeyInput {
                scheme,
                host: &host,
                canonical_path: &routed.canonical_path,
                query,
                vary_values: Vec::new(),
                consumer: None,
                variant: None,
                generation,
                route_id: &marker_route,
            })
        });
    CacheKeys {
        entry: cache_key_url(&base),
        marker,
    }
}

/// The keys of the request being served (its scheme and forwarded authority).
fn request_keys<P: Ports>(cx: &Ctx, s: Services<'_, P>, spec: &CacheSpec) -> Option<CacheKeys> {
    let routed = cx.routed.as_ref()?;
    let vary: Vec<&str> = spec.vary.iter().map(String::as_str).collect();
    let values = if vary.is_empty() {
        Vec::new()
    } else {
        s.ports.request_headers(&vary)
    };
    let host = forwarded_host(&cx.request.inbound());
    Some(keys(
        s.gateway,
        &cx.request.scheme,
        &host,
        routed,
        &values,
        cx.consumer(),
        cx.variant,
    ))
}

fn spec_of<'a>(gateway: &'a Gateway, cx: &Ctx) -> Option<(&'a Route, &'a CacheSpec)> {
    let route = gateway.route(cx.route());
    route.cache.as_ref().map(|spec| (route, spec))
}

/// Headers every answer of this request carries, then `Age` and `Cache-Status`.
fn answer_headers(
    gateway: &Gateway,
    cx: &Ctx,
    age_s: u64,
    status: String,
) -> Vec<(String, String)> {
    let mut set = exchange::response_set(gateway, cx);
    set.push(("age".into(), age_s.to_string()));
    set.push(("cache-status".into(), status));
    set
}

fn internal(what: &str, cause: String) -> GatewayError {
    GatewayError::Internal {
        cause: format!("{what}: {cause}"),
    }
}

pub struct Cache;

/// Why the cache is not consulted for this request, if it is not.
fn bypass_reason(cx: &Ctx, spec: &CacheSpec) -> Option<&'static str> {
    if spec.per_consumer && cx.consumer().is_none() {
        // Nothing identifies whose data this is: it is neither looked up nor stored.
        return Some("no-consumer");
    }
    match cx.request.method.as_str() {
        "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" => None,
        _ => Some("method"),
    }
}

impl Stage for Cache {
    /// Serves a hit from the isolate's hot tier at once; bypasses go straight to the executor.
    fn request<P: Ports>(&self, cx: &mut Ctx, s: Services<'_, P>) -> Step<P::Response> {
        let Some((_, spec)) = spec_of(s.gateway, cx) else {
            return Step::Fail(internal("cache stage", "route without cache".into()));
        };
        if let Some(why) = bypass_reason(cx, spec) {
            cx.notes.cache = Some(CacheResult::Bypass);
            return match exchange::plan(cx, s) {
                Ok(mut plan) => {
                    plan.response_set.push((
                        "cache-status".into(),
                        cache_status(&CacheOutcome::Bypass(why), None),
                    ));
                    Step::Exchange(plan)
                }
                Err(e) => Step::Fail(e),
            };
        }
        let method = cx.request.method.as_str();
        if method == "GET" || method == "HEAD" {
            let Some(keys) = request_keys(cx, s, spec) else {
                return Step::Wait;
            };
            let hit = from_hot(cx, s, &keys);
            cx.cache_keys = Some(keys);
            if let Some(step) = hit {
                return step;
            }
        }
        Step::Wait
    }

    async fn wait<P: Ports>(&self, cx: &mut Ctx, s: Services<'_, P>) -> Step<P::Response> {
        let Some((route, spec)) = spec_of(s.gateway, cx) else {
            return Step::Fail(internal("cache stage", "route without cache".into()));
        };
        let keys = match cx.cache_keys.clone().or_else(|| request_keys(cx, s, spec)) {
            Some(k) => k,
            None => return Step::Fail(GatewayError::NotFound),
        };
        cx.cache_keys = Some(keys.clone());
        let result = if cx.request.method == "GET" || cx.request.method == "HEAD" {
            lookup_and_fetch(cx, s, route, spec, &keys).await
        } else {
            invalidating(cx, s, spec, &keys).await
        };
        match result {
            Ok(response) => Step::Reply(response),
            Err(e) => Step::Fail(e),
        }
    }
}

/// Serves a fresh entry from the isolate's hot tier, if it holds one.
fn from_hot<P: Ports>(
    cx: &mut Ctx,
    s: Services<'_, P>,
    keys: &CacheKeys,
) -> Option<Step<P::Response>> {
    let hot = s.ports.hot_entry(&keys.entry)?;
    if cx.started_ms >= hot.until_ms {
        return None;
    }
    let [a, b, c, d] = &hot.meta;
    let meta = EntryMeta::parse(a.as_deref()?, b.as_deref()?, c.as_deref()?, d.as_deref()?)?;
    let Lookup::Fresh { age_s, ttl_s } = entry::lookup(&meta, cx.started_ms as u64, None) else {
        return None;
    };
    let not_mod = preconditions_apply(hot.status)
        && not_modified(
            hot.if_none_match.as_deref(),
            hot.if_modified_since.as_deref(),
            hot.etag.as_deref(),
            hot.last_modified.as_deref(),
        );
    let set = answer_headers(
        s.gateway,
        cx,
        age_s,
        cache_status(&CacheOutcome::Hit, Some(ttl_s)),
    );
    cx.notes.cache = Some(CacheResult::Hit);
    cx.notes.source = Source::Cache;
    Some(
        match s
            .ports
            .hot_serve(&keys.entry, &set, not_mod, cx.request.method == "HEAD")
        {
            Ok(r) => Step::Reply(r),
            Err(e) => Step::Fail(internal("serving a cached response", e)),
        },
    )
}

/// What the cache stage reads of the client's request.
struct Conditions {
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
    no_store: bool,
    /// An `Authorization` or `Cookie` header came with it: whatever the route's `auth`, the
    /// response may be personal (RFC 9111 §3.5).
    has_credentials: bool,
}

fn conditions(ports: &impl Ports) -> Conditions {
    let mut f = ports
        .request_headers(&[
            "if-none-match",
            "if-modified-since",
            "cache-control",
            "authorization",
            "cookie",
        ])
        .into_iter();
    let mut next = || f.next().flatten();
    let if_none_match = next();
    let if_modified_since = next();
    let no_store = next().is_some_and(|cc| crate::cache::control::parse(Some(&cc)).no_store);
    let authorization = next().is_some();
    let cookie = next().is_some();
    Conditions {
        if_none_match,
        if_modified_since,
        no_store,
        has_credentials: authorization || cookie,
    }
}

/// A stale entry kept while the upstream is asked again.
struct Stale<R> {
    entry: R,
    meta: EntryMeta,
    serve_on_error: bool,
    ttl_s: i64,
}

/// Runs the exchange and settles its outcome: the response, or the client's error.
async fn fetch<P: Ports>(
    cx: &mut Ctx,
    s: Services<'_, P>,
    plan: &ExchangePlan,
) -> Result<P::Response, GatewayError> {
    let (result, report) = s.ports.exchange(plan).await;
    let now = s.ports.now_ms();
    let failure = result.as_ref().err();
    match exchange::settle(cx, s, plan.upstream, failure, &report, now) {
        Some(e) => {
            if let Ok(r) = result {
                s.ports.discard(r);
            }
            Err(e)
        }
        None => result.map_err(|_| internal("upstream exchange", "no response".into())),
    }
}

async fn lookup_and_fetch<P: Ports>(
    cx: &mut Ctx,
    s: Services<'_, P>,
    route: &Route,
    spec: &CacheSpec,
    keys: &CacheKeys,
) -> Result<P::Response, GatewayError> {
    let head_only = cx.request.method == "HEAD";
    let cond = conditions(s.ports);
    // The gateway asks the upstream for whole responses and answers conditions itself.
    cx.request_edits
        .remove
        .extend(entry::CLIENT_CONDITIONS.iter().map(|h| (*h).to_owned()));
    let (stored, invalidated_at) = s.ports.lookup(&keys.entry, keys.marker.as_deref()).await;
    let now_ms = cx.started_ms as u64;
    let mut stale: Option<Stale<P::Response>> = None;
    if let Some(entry) = stored {
        let f = s.ports.headers(&entry, &ENTRY_FACTS);
        let status = s.ports.status(&entry);
        let meta = match (&f[0], &f[1], &f[2], &f[3]) {
            (Some(a), Some(b), Some(c), Some(d)) => EntryMeta::parse(a, b, c, d),
            _ => None,
        };
        let (etag, last_modified) = (f[4].clone(), f[5].clone());
        match meta.map(|m| (m, entry::lookup(&m, now_ms, invalidated_at))) {
            Some((_, Lookup::Fresh { age_s, ttl_s })) => {
                let not_mod = preconditions_apply(status)
                    && not_modified(
                        cond.if_none_match.as_deref(),
                        cond.if_modified_since.as_deref(),
                        etag.as_deref(),
                        last_modified.as_deref(),
                    );
                let set = answer_headers(
                    s.gateway,
                    cx,
                    age_s,
                    cache_status(&CacheOutcome::Hit, Some(ttl_s)),
                );
                // Keep it in memory for the next requests (before its body is served).
                let until = cx.started_ms + HOT_MAX_MS.min(ttl_s.max(0) as f64 * 1000.0);
                s.ports.hot_fill(
                    &keys.entry,
                    keys.marker.as_deref(),
                    &entry,
                    HOT_MAX_BYTES.min(spec.max_body_bytes),
                    until,
                );
                cx.notes.cache = Some(CacheResult::Hit);
                cx.notes.source = Source::Cache;
                return s
                    .ports
                    .serve_entry(entry, &set, not_mod, head_only)
                    .map_err(|e| internal("serving a cached response", e));
            }
            Some((
                meta,
                Lookup::Stale {
                    ttl_s,
                    serve_on_error,
                    ..
                },
            )) => {
                if !head_only {
                    for (k, v) in revalidation_headers(etag.as_deref(), last_modified.as_deref()) {
                        cx.request_edits.set.push((k.to_owned(), v));
                    }
                }
                stale = Some(Stale {
                    entry,
                    meta,
                    serve_on_error,
                    ttl_s,
                });
            }
            Some((_, Lookup::Invalidated)) | None => s.ports.discard(entry),
        }
    }

    let request_time_ms = cx.started_ms;
    let plan = exchange::plan(cx, s)?;
    let fetched = fetch(cx, s, &plan).await;
    let response_time_ms = s.ports.now_ms();

    if let Some(st) = stale {
        let failed = match &fetched {
            Err(GatewayError::UpstreamTimeout | GatewayError::UpstreamUnreachable) => true,
            Ok(r) => s.ports.status(r) >= 500,
            Err(_) => false,
        };
        match &fetched {
            Ok(r) if s.ports.status(r) == 304 => {
                // Revalidated: the stored body is current again.
                let f = s.ports.headers(r, &["cache-control", "expires", "date"]);
                let lifetime = revalidated_lifetime(&f, spec).unwrap_or(st.meta.lifetime_s);
                let refreshed = EntryMeta {
                    stored_at_ms: response_time_ms as u64,
                    initial_age_s: 0,
                    lifetime_s: lifetime,
                    ..st.meta
                };
                let retention = lifetime + refreshed.stale_if_error_s;
                // The upstream's original Cache-Control stays recorded in the entry.
                let meta_set = owned(refreshed.headers(None, retention));
                s.ports.refresh(&keys.entry, &st.entry, &meta_set);
                if let Ok(r) = fetched {
                    s.ports.discard(r);
                }
                let set = answer_headers(
                    s.gateway,
                    cx,
                    0,
                    cache_status(
                        &CacheOutcome::Revalidated { stored: true },
                        Some(lifetime as i64),
                    ),
                );
                cx.notes.cache = Some(CacheResult::Stale);
                cx.notes.source = Source::Cache;
                return s
                    .ports
                    .serve_entry(st.entry, &set, false, head_only)
                    .map_err(|e| internal("serving a revalidated response", e));
            }
            _ if failed && st.serve_on_error => {
                if let Ok(r) = fetched {
                    s.ports.discard(r);
                }
                let set = answer_headers(
                    s.gateway,
                    cx,
                    st.meta.age_s(response_time_ms as u64),
                    cache_status(
                        &CacheOutcome::Stale {
                            served_because: "upstream-error",
                        },
                        Some(st.ttl_s),
                    ),
                );
                cx.notes.cache = Some(CacheResult::Stale);
                cx.notes.source = Source::Cache;
                return s
                    .ports
                    .serve_entry(st.entry, &set, false, head_only)
                    .map_err(|e| internal("serving a stale response", e));
            }
            _ => s.ports.discard(st.entry),
        }
    }

    // A miss, or a stale entry replaced by a full response.
    cx.notes.cache = Some(CacheResult::Miss);
    let response = fetched?;
    cx.notes.source = Source::Upstream;
    let status = s.ports.status(&response);
    let f = s.ports.headers(&response, &RESPONSE_FACTS);
    let received_date = crate::cache::format_http_date((response_time_ms / 1000.0) as i64);
    let resp = ResponseFacts {
        status,
        cache_control: f[0].as_deref(),
        expires: f[1].as_deref(),
        date: f[2].as_deref().or(Some(received_date.as_str())),
        has_set_cookie: f[3].is_some(),
        vary: f[4].as_deref(),
        content_length: f[5].as_deref().and_then(|l| l.trim().parse().ok()),
        has_etag: f[6].is_some(),
        has_last_modified: f[7].is_some(),
    };
    let req = RequestFacts {
        method_is_get_or_head: true,
        has_authorization: matches!(route.auth, RouteAuth::Schemes(_)) || cond.has_credentials,
        request_no_store: cond.no_store,
    };
    let decision = if head_only {
        Err(NotStored::Method)
    } else {
        storable(&req, &resp, spec, &spec.vary, spec.per_consumer)
    };
    let (outcome, ttl) = match decision {
        Ok(()) => {
            let lifetime = freshness_lifetime_s(&resp, spec);
            let meta = EntryMeta {
                stored_at_ms: response_time_ms as u64,
                initial_age_s: initial_age_s(
                    f[8].as_deref(),
                    resp.date,
                    (request_time_ms / 1000.0) as i64,
                    (response_time_ms / 1000.0) as i64,
                ),
                lifetime_s: lifetime,
                stale_if_error_s: stale_if_error_window_s(&resp, spec),
            };
            let mut remove: Vec<&str> = entry::BOOKKEEPING.to_vec();
            remove.extend(entry::PER_EXCHANGE);
            remove.push(&s.gateway.config.settings.request_id_header);
            let meta_set = owned(meta.headers(resp.cache_control, retention_s(&resp, spec)));
            s.ports.store(
                &keys.entry,
                &response,
                &remove,
                &meta_set,
                spec.max_body_bytes,
            );
            (
                CacheOutcome::Miss {
                    stored: true,
                    reason: None,
                },
                Some(lifetime as i64),
            )
        }
        Err(why) => (
            CacheOutcome::Miss {
                stored: false,
                reason: Some(why.reason()),
            },
            None,
        ),
    };
    let not_mod = (200..300).contains(&status)
        && not_modified(
            cond.if_none_match.as_deref(),
            cond.if_modified_since.as_deref(),
            f[6].as_deref(),
            f[7].as_deref(),
        );
    let set = vec![("cache-status".to_owned(), cache_status(&outcome, ttl))];
    s.ports
        .finish(response, &set, not_mod)
        .map_err(|e| internal("finishing a response", e))
}

fn owned(pairs: Vec<(&'static str, String)>) -> Vec<(String, String)> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The lifetime a 304 grants the stored entry: its own Cache-Control/Expires when it sent
/// any (RFC 9111 §4.3.4 updates the stored headers), else the entry's.
fn revalidated_lifetime(f: &[Option<String>], spec: &CacheSpec) -> Option<u64> {
    let cache_control = f.first().and_then(|v| v.as_deref());
    let expires = f.get(1).and_then(|v| v.as_deref());
    if cache_control.is_none() && expires.is_none() {
        return None;
    }
    let resp = ResponseFacts {
        status: 200,
        cache_control,
        expires,
        date: f.get(2).and_then(|v| v.as_deref()),
        ..ResponseFacts::default()
    };
    Some(freshness_lifetime_s(&resp, spec))
}

/// An unsafe request on a cached route: forwarded, and when it succeeds the URL's entries
/// are invalidated (RFC 9111 §4.4).
async fn invalidating<P: Ports>(
    cx: &mut Ctx,
    s: Services<'_, P>,
    spec: &CacheSpec,
    keys: &CacheKeys,
) -> Result<P::Response, GatewayError> {
    let plan = exchange::plan(cx, s)?;
    let response = fetch(cx, s, &plan).await?;
    cx.notes.source = Source::Upstream;
    cx.notes.cache = Some(CacheResult::Bypass);
    let status = s.ports.status(&response);
    let invalidated = (200..400).contains(&status);
    if invalidated {
        invalidate(s.ports, keys, spec, s.ports.now_ms()).await;
    }
    let outcome = CacheOutcome::Bypass(if invalidated { "invalidated" } else { "method" });
    let set = vec![("cache-status".to_owned(), cache_status(&outcome, None))];
    s.ports
        .finish(response, &set, false)
        .map_err(|e| internal("finishing a response", e))
}

/// Removes a URL's entry (and, through its marker, every variant) from this location's cache
/// and this isolate's memory.
pub async fn invalidate<C: ResponseCache>(
    cache: &C,
    keys: &CacheKeys,
    spec: &CacheSpec,
    now_ms: f64,
) {
    let marker_ttl = spec.ttl_s + spec.stale_if_error_s;
    cache
        .invalidate(&keys.entry, keys.marker.as_deref(), now_ms, marker_ttl)
        .await;
}
