//! The caching stage: look up, serve fresh entries (304 and ranges included), serve stale ones
//! while they are refreshed in the background (`cache_refresh`), revalidate stale ones and
//! update them from the 304, fall back to stale copies when the upstream fails, store what
//! RFC 9111 lets a shared cache store (`cache_store`), and invalidate on unsafe requests. What
//! it reads of the request (its keys and conditions) is in `cache_request`. The rules are in
//! `crate::cache`; this stage applies them through the response-cache port and carries out the
//! exchange itself.

pub use super::cache_request::keys;

use super::cache_refresh::CacheRefresh;
use super::cache_request::{conditions, request_facts, request_keys, Conditions};
use super::cache_store::{revalidate, serve_stored, store_response, Facts, Stored, Times};
use super::ctx::{CacheKeys, CacheResult, Ctx, Source};
use super::driver::{Stage, Step};
use super::exchange::{self, ExchangePlan};
use super::ports::{Ports, ResponseCache};
use super::state::Services;
use crate::cache::entry::{self, Lookup};
use crate::cache::request::{self as request_directives, RequestDirectives};
use crate::cache::{
    cache_status, not_modified, preconditions_apply, revalidation_headers, CacheOutcome,
    RequestFacts,
};
use crate::config::{CacheSpec, Route};
use crate::error::GatewayError;
use crate::gateway::Gateway;

/// How long an isolate keeps a hit in memory: an unsafe request or purge handled by another
/// isolate reaches this one's copy within this time (the Cache API entry is gone at once). A
/// URL hit all the time costs one Cache API lookup per isolate per this time.
pub const HOT_MAX_MS: f64 = 1_000.0;
/// Largest body kept in memory.
pub const HOT_MAX_BYTES: u64 = 256 * 1024;
/// Most bytes of copies an isolate assembles for the cache at once (its memory is 128 MB, shared
/// by all its requests, of which the hot tier may take 16 MiB): a store that would pass it is
/// abandoned, not written. Twice the largest `cache.max_body_bytes`, so two of the largest
/// bodies can be stored at once.
pub const STORE_BUFFER_MAX_BYTES: u64 = 2 * crate::config::CACHE_BODY_MAX_BYTES;

fn spec_of<'a>(gateway: &'a Gateway, cx: &Ctx) -> Option<(&'a Route, &'a CacheSpec)> {
    let route = gateway.route(cx.route());
    route.cache.as_ref().map(|spec| (route, spec))
}

/// Headers every answer of this request carries, then `Age` and `Cache-Status`: for an answer
/// from a stored entry, after the route's `response_headers.set` in force (the entry was stored
/// with those of the configuration it was stored under).
pub(super) fn answer_headers(
    gateway: &Gateway,
    cx: &Ctx,
    age_s: u64,
    status: String,
) -> Vec<(String, String)> {
    let mut set = gateway.route_edits(cx.route()).response.set.clone();
    set.extend(exchange::response_set(gateway, cx));
    set.push(("age".into(), age_s.to_string()));
    set.push(("cache-status".into(), status));
    set
}

/// What an answer from a stored entry drops: the route's response removals in force (its
/// `response_headers.remove`, an upstream's own CORS headers on a route with a policy), which
/// the entry may have been stored without. Hop-by-hop fields are never stored.
pub(super) fn answer_removals<'g>(gateway: &'g Gateway, cx: &Ctx) -> Vec<&'g str> {
    gateway
        .route_edits(cx.route())
        .response
        .remove
        .iter()
        .map(String::as_str)
        .filter(|h| !crate::headers::is_hop_by_hop(h))
        .collect()
}

pub(super) fn internal(what: &str, cause: String) -> GatewayError {
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
                    plan.response_remove = TARGETED_NEVER_FORWARDED.map(str::to_owned).to_vec();
                    Step::Exchange(plan)
                }
                Err(e) => Step::Fail(e),
            };
        }
        let method = cx.request.method.as_str();
        if method == "GET" || method == "HEAD" {
            let Some(mut keys) = request_keys(cx, s, spec) else {
                return Step::Wait;
            };
            let hit = from_hot(cx, s, &mut keys);
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

/// Serves a fresh entry from the isolate's hot tier, if it holds one. Requests with a `Range`,
/// and with a `Cache-Control` on routes that honour it, go to the Cache API path, which
/// applies them.
fn from_hot<P: Ports>(
    cx: &mut Ctx,
    s: Services<'_, P>,
    keys: &mut CacheKeys,
) -> Option<Step<P::Response>> {
    let hot = s.ports.hot_entry(&keys.entry)?;
    keys.hot_until_ms = Some(hot.until_ms);
    let honours = s
        .gateway
        .route(cx.route())
        .cache
        .as_ref()
        .is_some_and(|c| c.honor_request_directives);
    if cx.now_ms >= hot.until_ms || hot.has_range || (honours && hot.has_cache_control) {
        return None;
    }
    let meta = hot
        .meta?
        .within(s.gateway.route(cx.route()).cache.as_ref()?);
    let Lookup::Fresh { age_s, ttl_s } = entry::lookup(&meta, cx.now_ms as u64, None) else {
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
        match s.ports.hot_serve(
            &keys.entry,
            &answer_removals(s.gateway, cx),
            &set,
            not_mod,
            cx.request.method == "HEAD",
        ) {
            Ok(r) => Step::Reply(r),
            Err(e) => Step::Fail(internal("serving a cached response", e)),
        },
    )
}

/// A stale entry kept while the upstream is asked again.
struct Stale<R> {
    entry: R,
    stored: Stored,
    serve_on_error: bool,
    ttl_s: i64,
}

/// Runs the exchange and settles its outcome: the response, or the client's error.
pub(super) async fn fetch<P: Ports>(
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
    let req = request_facts(route, &cond);
    let directives = if spec.honor_request_directives {
        RequestDirectives::parse(cond.cache_control.as_deref())
    } else {
        RequestDirectives::default()
    };
    // The gateway asks the upstream for whole responses and answers conditions itself.
    cx.request_edits
        .remove
        .extend(entry::CLIENT_CONDITIONS.iter().map(|h| (*h).to_owned()));
    let (found, invalidated_at) = s.ports.lookup(&keys.entry, keys.marker.as_deref()).await;
    // Judged when the lookup has answered, not when the request arrived.
    let now = s.ports.now_ms();
    let now_ms = now as u64;
    let mut stale: Option<Stale<P::Response>> = None;
    if let Some(entry) = found {
        let stored = Stored::read(s.ports, &entry).map(|mut st| {
            st.meta = st.meta.within(spec);
            st
        });
        let lookup = stored.as_ref().map(|st| {
            let found = entry::lookup(&st.meta, now_ms, invalidated_at);
            request_directives::apply(found, &st.meta, &directives)
        });
        match (stored, lookup) {
            (Some(stored), Some(Lookup::Fresh { age_s, ttl_s })) => {
                // Keep it in memory for the next requests (before its body is served), unless
                // the hot tier still holds it.
                let held = keys.hot_until_ms.is_some_and(|until| now < until);
                if ttl_s > 0 && !held {
                    let until = now + HOT_MAX_MS.min(ttl_s as f64 * 1000.0);
                    s.ports.hot_fill(
                        &keys.entry,
                        keys.marker.as_deref(),
                        &entry,
                        stored.status,
                        HOT_MAX_BYTES.min(spec.max_body_bytes),
                        until,
                    );
                }
                return serve_stored(
                    cx,
                    s,
                    entry,
                    &stored,
                    &cond,
                    CacheOutcome::Hit,
                    age_s,
                    ttl_s,
                );
            }
            (
                Some(stored),
                Some(Lookup::Stale {
                    age_s,
                    ttl_s,
                    serve_on_error,
                    serve_while_revalidating,
                }),
            ) => {
                if !head_only || serve_while_revalidating {
                    for (k, v) in revalidation_headers(stored.etag(), stored.last_modified()) {
                        cx.request_edits.set.push((k.to_owned(), v));
                    }
                }
                if serve_while_revalidating {
                    // The plan is made only by the request that claims the refresh: planning
                    // picks a target and may spend a breaker's half-open probe. Without a plan
                    // (no target can take it now) the claim is released and the stale entry is
                    // still served.
                    let claimed = s
                        .state
                        .refreshing
                        .try_borrow_mut()
                        .is_ok_and(|mut r| r.begin(&keys.entry, now));
                    if claimed {
                        match exchange::plan(cx, s) {
                            Ok(plan) => {
                                cx.cache_refresh = Some(CacheRefresh {
                                    plan,
                                    keys: keys.clone(),
                                    request: req,
                                    stored_at_ms: stored.meta.stored_at_ms,
                                });
                            }
                            Err(_) => {
                                if let Ok(mut r) = s.state.refreshing.try_borrow_mut() {
                                    r.end(&keys.entry);
                                }
                            }
                        }
                    }
                    return serve_stored(
                        cx,
                        s,
                        entry,
                        &stored,
                        &cond,
                        CacheOutcome::StaleWhileRevalidate,
                        age_s,
                        ttl_s,
                    );
                }
                stale = Some(Stale {
                    entry,
                    stored,
                    serve_on_error,
                    ttl_s,
                });
            }
            _ => s.ports.discard(entry),
        }
    }
    if directives.only_if_cached {
        if let Some(st) = stale {
            s.ports.discard(st.entry);
        }
        cx.notes.cache = Some(CacheResult::Miss);
        return Err(GatewayError::NotCached {
            cache_status: cache_status(
                &CacheOutcome::Miss {
                    stored: false,
                    reason: Some("only-if-cached"),
                },
                None,
            ),
        });
    }

    let request_ms = cx.started_ms;
    let plan = exchange::plan(cx, s)?;
    let fetched = fetch(cx, s, &plan).await;
    let times = Times {
        request_ms,
        response_ms: s.ports.now_ms(),
    };

    if let Some(st) = stale {
        let failed = match &fetched {
            Err(GatewayError::UpstreamTimeout | GatewayError::UpstreamUnreachable) => true,
            Ok(r) => s.ports.status(r) >= 500,
            Err(_) => false,
        };
        match fetched {
            Ok(r) if s.ports.status(&r) == 304 => {
                // Revalidated: the stored body is current again, with the 304's headers.
                let done = revalidate(s, spec, keys, st.entry, &st.stored, &r, &req, times);
                s.ports.discard(r);
                let done = done?;
                let outcome = CacheOutcome::Revalidated {
                    stored: done.written,
                };
                let age_s = done.stored.meta.initial_age_s;
                return serve_stored(
                    cx,
                    s,
                    done.entry,
                    &done.stored,
                    &cond,
                    outcome,
                    age_s,
                    done.ttl_s,
                );
            }
            fetched if failed && st.serve_on_error => {
                if let Ok(r) = fetched {
                    s.ports.discard(r);
                }
                let outcome = CacheOutcome::Stale {
                    served_because: "upstream-error",
                };
                let age_s = st.stored.meta.age_s(times.response_ms as u64);
                return serve_stored(cx, s, st.entry, &st.stored, &cond, outcome, age_s, st.ttl_s);
            }
            fetched => {
                s.ports.discard(st.entry);
                return finish_fetched(cx, s, spec, keys, fetched, &cond, &req, head_only, times);
            }
        }
    }
    finish_fetched(cx, s, spec, keys, fetched, &cond, &req, head_only, times)
}

/// A miss, or a stale entry replaced by a full response: stored when the rules allow, and
/// answered 304 when the client's conditions hold for it.
#[allow(clippy::too_many_arguments)]
fn finish_fetched<P: Ports>(
    cx: &mut Ctx,
    s: Services<'_, P>,
    spec: &CacheSpec,
    keys: &CacheKeys,
    fetched: Result<P::Response, GatewayError>,
    cond: &Conditions,
    req: &RequestFacts,
    head_only: bool,
    times: Times,
) -> Result<P::Response, GatewayError> {
    cx.notes.cache = Some(CacheResult::Miss);
    let response = fetched?;
    cx.notes.source = Source::Upstream;
    let status = s.ports.status(&response);
    let facts = Facts::of(s.ports, &response);
    let (outcome, ttl) = store_response(s, spec, keys, &response, &facts, req, head_only, times);
    let not_mod = (200..300).contains(&status)
        && not_modified(
            cond.if_none_match.as_deref(),
            cond.if_modified_since.as_deref(),
            facts.etag(),
            facts.last_modified(),
        );
    let set = vec![("cache-status".to_owned(), cache_status(&outcome, ttl))];
    s.ports
        .finish(response, &set, not_mod, TARGETED_NEVER_FORWARDED.as_slice())
        .map_err(|e| internal("finishing a response", e))
}

/// Targeted cache fields (RFC 9213) are addressed to the gateway and never reach the client.
const TARGETED_NEVER_FORWARDED: [&str; 2] = crate::cache::targeted::TARGET_LIST;

/// An unsafe request on a cached route: forwarded, and when it succeeds the URL's entries,
/// and those of the URLs its answer names, are invalidated (RFC 9111 §4.4).
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
    let invalidated = super::invalidate::invalidates(status);
    if invalidated {
        super::invalidate::invalidate_after(cx, s, &response, status, Some((keys, spec))).await;
    }
    let outcome = CacheOutcome::Bypass(if invalidated { "invalidated" } else { "method" });
    let set = vec![("cache-status".to_owned(), cache_status(&outcome, None))];
    s.ports
        .finish(response, &set, false, TARGETED_NEVER_FORWARDED.as_slice())
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
    // The marker must outlive every entry it invalidates, stale windows included.
    let marker_ttl = crate::cache::freshness::longest_retention_s(spec);
    cache.invalidate(keys, now_ms, marker_ttl).await;
}
