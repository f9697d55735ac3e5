//! Invalidation across routes (RFC 9111 §4.4). A successful unsafe request invalidates what is
//! stored for its URL, and a GET of that URL may be served by another route than the unsafe
//! request's own: two routes with one path and different `methods`, the GET one cached. Such a
//! request removes what that GET route stored for the URL, and what is stored for the URLs of
//! its origin that its answer names in `Location` and `Content-Location` (`crate::cache::named`)
//! on routes of the upstream that answered, whether its own route is cached (the cache stage
//! calls [`invalidate_after`]) or not (the [`Invalidate`] stage).

use super::cache::{self, keys};
use super::ctx::{CacheKeys, Ctx};
use super::driver::{Forward, Stage, Step};
use super::exchange;
use super::ports::Ports;
use super::state::Services;
use crate::cache::named::{may_name, named_urls, NAMING_HEADERS};
use crate::config::{CacheSpec, Route};
use crate::forward::{forwarded_host, Destination, Inbound};

/// Whether a request with `method` invalidates its URL when it succeeds.
pub fn is_unsafe(method: &str) -> bool {
    crate::cache::INVALIDATING_METHODS.contains(&method)
}

/// Whether an answer with `status` invalidates (RFC 9111 §4.4: a non-error status).
pub fn invalidates(status: u16) -> bool {
    (200..400).contains(&status)
}

/// The terminal stage of an uncached route whose URLs a cached route may also serve (see
/// `Gateway::compile`): it forwards as [`Forward`] does, except that an unsafe request waits
/// for its answer, to invalidate what a GET of its URL is served from.
pub struct Invalidate;

impl Stage for Invalidate {
    fn request<P: Ports>(&self, cx: &mut Ctx, s: Services<'_, P>) -> Step<P::Response> {
        if is_unsafe(&cx.request.method) {
            Step::Wait
        } else {
            Forward.request(cx, s)
        }
    }

    async fn wait<P: Ports>(&self, cx: &mut Ctx, s: Services<'_, P>) -> Step<P::Response> {
        let plan = match exchange::plan(cx, s) {
            Ok(plan) => plan,
            Err(e) => return Step::Fail(e),
        };
        match cache::fetch(cx, s, &plan).await {
            Ok(response) => {
                let status = s.ports.status(&response);
                if invalidates(status) {
                    invalidate_after(cx, s, &response, status, None).await;
                }
                Step::Reply(response)
            }
            Err(e) => Step::Fail(e),
        }
    }
}

/// The keys of `path` and `query` on this request's origin, as a GET with this request's other
/// facts reaches them, and the route serving them, when that route is cached. Without the GET's
/// own headers and consumer, the keys reach its variants through the route's marker.
fn cached_keys_at<'g, P: Ports>(
    s: Services<'g, P>,
    cx: &Ctx,
    path: &str,
    query: Option<&str>,
) -> Option<(CacheKeys, &'g CacheSpec, usize)> {
    let gateway = s.gateway;
    let inbound = Inbound {
        method: "GET",
        path,
        query,
        preflight: None,
        ..cx.request.inbound()
    };
    let Ok(Destination::Route(routed)) = gateway.destination(&inbound) else {
        return None;
    };
    let spec = gateway.route(routed.route).cache.as_ref()?;
    let host = forwarded_host(&inbound);
    let seal = s.state.cache_seal(gateway, s.ports);
    let keys = keys(
        gateway,
        seal.as_deref(),
        &cx.request.scheme,
        &host,
        &routed,
        &[],
        None,
        None,
    );
    Some((keys, spec, routed.route))
}

/// The route a GET of this request's URL reaches (with this request's headers), when it is
/// another route than the request's own and it is cached, with the URL's keys on it.
pub fn get_route_keys<'g, P: Ports>(
    s: Services<'g, P>,
    cx: &Ctx,
) -> Option<(CacheKeys, &'g CacheSpec)> {
    let query = cx.request.query.as_deref();
    let (keys, spec, route) = cached_keys_at(s, cx, &cx.request.path, query)?;
    (route != cx.route()).then_some((keys, spec))
}

/// The upstream that answered this request: the canary's when the canary was chosen.
fn answering_upstream(cx: &Ctx, route: &Route) -> usize {
    match (cx.variant, &route.canary) {
        (Some(crate::observe::Variant::Canary), Some(canary)) => canary.upstream,
        _ => route.upstream,
    }
}

/// Names one URL's entries on a route, whatever keys reached them: the marker (all variants)
/// when the route keys variants, else the entry.
fn url_key(keys: &CacheKeys) -> &str {
    keys.marker.as_deref().unwrap_or(&keys.entry)
}

/// After a successful unsafe request answered with `status`: removes what is stored for its URL
/// on its own route (`own`: its keys and cache, when the route is cached) and on the GET route
/// of its URL ([`get_route_keys`]), and for each URL `response` names
/// ([`named_urls`]) that a cached route of the upstream that answered serves; each URL once.
pub async fn invalidate_after<P: Ports>(
    cx: &Ctx,
    s: Services<'_, P>,
    response: &P::Response,
    status: u16,
    own: Option<(&CacheKeys, &CacheSpec)>,
) {
    let now = s.ports.now_ms();
    let mut done: Vec<String> = Vec::new();
    if let Some((keys, spec)) = own {
        cache::invalidate(s.ports, keys, spec, now).await;
        done.push(url_key(keys).to_owned());
    }
    if let Some((keys, spec)) = get_route_keys(s, cx) {
        cache::invalidate(s.ports, &keys, spec, now).await;
        done.push(url_key(&keys).to_owned());
    }
    if !may_name(status) {
        return;
    }
    let values = s.ports.headers(response, &NAMING_HEADERS);
    let named = named_urls(
        status,
        &cx.request.scheme,
        &cx.request.host,
        &cx.request.path,
        &values,
    );
    let answering = answering_upstream(cx, s.gateway.route(cx.route()));
    for url in named {
        let Some((keys, spec, route)) = cached_keys_at(s, cx, &url.path, url.query.as_deref())
        else {
            continue;
        };
        // An upstream speaks for its own resources only: one service behind a shared host
        // must not empty another's entries.
        if !s.gateway.route(route).upstreams().any(|u| u == answering) {
            continue;
        }
        if !done.iter().any(|d| d == url_key(&keys)) {
            cache::invalidate(s.ports, &keys, spec, now).await;
            done.push(url_key(&keys).to_owned());
        }
    }
}
