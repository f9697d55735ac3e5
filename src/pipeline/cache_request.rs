//! What the cache stage reads of the client's request: the keys its URL is stored under (the
//! route's vary headers, the consumer, the canary variant, the forwarded host), and its
//! conditions and directives (validators, `Range`, `Cache-Control`, credentials) with the
//! request facts the storability rules read. Separate from the stage, which decides what to do
//! with an entry; the admin purge derives the same keys without a request.

use super::ctx::{CacheKeys, Ctx};
use super::ports::Ports;
use super::state::Services;
use crate::cache::{cache_key_url, CacheKeyInput, KeySeal, RequestFacts};
use crate::config::{CacheSpec, Route, RouteAuth};
use crate::forward::{forwarded_host, Routed};
use crate::gateway::Gateway;

/// Whose entry it is on a per-consumer route: the consumer, and the `forward_claims` headers
/// sent upstream for it, keyed with it.
pub type Whose<'a> = Option<(&'a str, &'a [(String, String)])>;

/// The keys of a URL on a route: its entry, and the invalidation marker when the route keys
/// variants (vary headers, consumer) that a single delete could not reach; sealed with the
/// gateway's `seal` (`IsolateState::cache_seal`) when it has one.
#[allow(clippy::too_many_arguments)]
pub fn keys(
    gateway: &Gateway,
    seal: Option<&KeySeal>,
    scheme: &str,
    host: &str,
    routed: &Routed,
    vary_values: &[Option<String>],
    whose: Whose<'_>,
    variant: Option<crate::observe::Variant>,
) -> CacheKeys {
    let route = gateway.route(routed.route);
    let Some(spec) = &route.cache else {
        return CacheKeys {
            entry: String::new(),
            marker: None,
            hot_until_ms: None,
        };
    };
    let host = host.to_ascii_lowercase();
    let query = routed.upstream_path.split_once('?').map(|(_, q)| q);
    let (consumer, forwarded) = match whose {
        Some((consumer, forwarded)) if spec.per_consumer => (Some(consumer), forwarded),
        _ => (None, &[][..]),
    };
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
        forwarded,
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
            // The URL alone: no vary values, consumer or variant.
            cache_key_url(
                &CacheKeyInput {
                    vary_values: Vec::new(),
                    consumer: None,
                    forwarded: &[],
                    variant: None,
                    route_id: &marker_route,
                    ..base
                },
                seal,
            )
        });
    CacheKeys {
        entry: cache_key_url(&base, seal),
        marker,
        hot_until_ms: None,
    }
}

/// The keys of the request being served (its scheme and forwarded authority).
pub(super) fn request_keys<P: Ports>(
    cx: &Ctx,
    s: Services<'_, P>,
    spec: &CacheSpec,
) -> Option<CacheKeys> {
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
        s.state.cache_seal(s.gateway, s.ports).as_deref(),
        &cx.request.scheme,
        &host,
        routed,
        &values,
        cx.consumer().map(|c| {
            (
                c,
                cx.identity
                    .as_ref()
                    .map_or(&[][..], |i| i.forward.as_slice()),
            )
        }),
        cx.variant,
    ))
}

/// What the cache stage reads of the client's request.
pub struct Conditions {
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    pub range: Option<String>,
    pub if_range: Option<String>,
    /// The request's `Cache-Control`.
    pub cache_control: Option<String>,
    /// A header that carries credentials came with it (`Authorization`, `Cookie`, a Cloudflare
    /// Access service token's secret: `crate::headers::CREDENTIAL_HEADERS`): whatever the
    /// route's `auth`, the response may be personal (RFC 9111 §3.5).
    pub has_credentials: bool,
}

impl Conditions {
    fn no_store(&self) -> bool {
        crate::cache::control::parse(self.cache_control.as_deref()).no_store
    }
}

pub(super) fn conditions(ports: &impl Ports) -> Conditions {
    let mut names = vec![
        "if-none-match",
        "if-modified-since",
        "range",
        "if-range",
        "cache-control",
    ];
    names.extend(crate::headers::CREDENTIAL_HEADERS);
    let mut f = ports.request_headers(&names).into_iter();
    let mut next = || f.next().flatten();
    Conditions {
        if_none_match: next(),
        if_modified_since: next(),
        range: next(),
        if_range: next(),
        cache_control: next(),
        has_credentials: f.any(|v| v.is_some()),
    }
}

/// The request facts the storability rules read.
pub(super) fn request_facts(route: &Route, cond: &Conditions) -> RequestFacts {
    RequestFacts {
        method_is_get_or_head: true,
        has_authorization: matches!(route.auth, RouteAuth::Schemes(_)) || cond.has_credentials,
        request_no_store: cond.no_store(),
    }
}
