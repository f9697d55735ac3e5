//! The caching stage: look up, serve fresh entries, revalidate stale ones, fall back to stale
//! copies when the upstream fails, store what RFC 9111 lets a shared cache store, and
//! invalidate on unsafe requests. The rules are in `crate::cache`; this module moves
//! responses between the Cache API, the upstream and the client.

use super::auth::Identity;
use super::upstream::{self, StageEdits};
use super::{glue, Exchange};
use crate::cache::entry::{self, EntryMeta, Lookup};
use crate::cache::{
    cache_key_url, cache_status, freshness_lifetime_s, initial_age_s, not_modified,
    preconditions_apply, retention_s, revalidation_headers, stale_if_error_window_s, storable,
    CacheKeyInput, CacheOutcome, NotStored, RequestFacts, ResponseFacts,
};
use crate::config::{CacheSpec, Route, RouteAuth};
use crate::error::GatewayError;
use crate::forward::forwarded_host;
use crate::forward::Routed;
use wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{js_sys, web_sys};

/// How long an isolate keeps a hit in memory: an unsafe request or purge handled by another
/// isolate reaches this one's copy within this time (the Cache API entry is gone at once).
const HOT_MAX_MS: f64 = 5_000.0;
/// Largest body kept in memory.
const HOT_MAX_BYTES: f64 = 256.0 * 1024.0;

/// The keys of one request: its entry, and the URL's invalidation marker when the route keys
/// variants (vary headers, consumer) that a single delete could not reach.
pub struct Keys {
    pub entry: String,
    pub marker: Option<String>,
}

fn keys(
    x: &Exchange<'_>,
    scheme: &str,
    host: &str,
    routed: &Routed,
    route: &Route,
    spec: &CacheSpec,
    consumer: Option<&str>,
) -> Keys {
    let host = host.to_ascii_lowercase();
    let query = routed.upstream_path.split_once('?').map(|(_, q)| q);
    let vary_values: Vec<Option<String>> = if spec.vary.is_empty() {
        Vec::new()
    } else {
        let joined = glue::request_headers(x.request, &glue::join(&spec.vary, '\n'));
        joined
            .split('\r')
            .map(|v| v.strip_prefix('1').map(str::to_owned))
            .collect()
    };
    let consumer = if spec.per_consumer { consumer } else { None };
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
        generation: x.live.gateway.config.settings.cache_generation,
        route_id: &route.id,
    };
    let marker = (!spec.vary.is_empty() || spec.per_consumer).then(|| {
        let marker_route = format!("{}\u{0}invalidated", route.id);
        cache_key_url(&CacheKeyInput {
            scheme,
            host: &host,
            canonical_path: &routed.canonical_path,
            query,
            vary_values: Vec::new(),
            consumer: None,
            generation: base.generation,
            route_id: &marker_route,
        })
    });
    Keys {
        entry: cache_key_url(&base),
        marker,
    }
}

/// The keys of the request being served (its scheme and forwarded authority).
fn request_keys(
    x: &Exchange<'_>,
    routed: &Routed,
    route: &Route,
    spec: &CacheSpec,
    consumer: Option<&str>,
) -> Keys {
    keys(
        x,
        x.inbound.scheme,
        &forwarded_host(x.inbound),
        routed,
        route,
        spec,
        consumer,
    )
}

/// Fields of a "\r"-joined string from `glue.js`, empty ones as `None`.
fn fields(joined: &str) -> Vec<Option<&str>> {
    joined
        .split('\r')
        .map(|f| (!f.is_empty()).then_some(f))
        .collect()
}

fn field<'a>(f: &[Option<&'a str>], i: usize) -> Option<&'a str> {
    f.get(i).copied().flatten()
}

async fn settle(promise: js_sys::Promise) -> Result<web_sys::Response, GatewayError> {
    JsFuture::from(promise)
        .await
        .map(|v| v.unchecked_into())
        .map_err(|e| GatewayError::Internal {
            cause: format!("upstream exchange: {}", super::respond::reason(&e)),
        })
}

fn internal(what: &str, e: JsValue) -> GatewayError {
    GatewayError::Internal {
        cause: format!("{what}: {}", super::respond::reason(&e)),
    }
}

/// Response headers every answer of this request carries besides `Cache-Status`.
fn per_exchange(x: &Exchange<'_>, stages: &StageEdits) -> String {
    let mut set = glue::pairs(&[(
        x.live.gateway.config.settings.request_id_header.as_str(),
        x.trace.request_id.as_str(),
    )]);
    if !stages.response_set.is_empty() {
        set.push('\n');
        set.push_str(&stages.response_set);
    }
    set
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

fn conditions(x: &Exchange<'_>) -> Conditions {
    let joined = glue::request_headers(
        x.request,
        "if-none-match\nif-modified-since\ncache-control\nauthorization\ncookie",
    );
    let mut f = joined
        .split('\r')
        .map(|v| v.strip_prefix('1').map(str::to_owned));
    let if_none_match = f.next().flatten();
    let if_modified_since = f.next().flatten();
    let no_store = f
        .next()
        .flatten()
        .is_some_and(|cc| crate::cache::control::parse(Some(&cc)).no_store);
    let authorization = f.next().flatten().is_some();
    let cookie = f.next().flatten().is_some();
    Conditions {
        if_none_match,
        if_modified_since,
        no_store,
        has_credentials: authorization || cookie,
    }
}

/// Serves a fresh entry from the isolate's hot tier, if it holds one.
fn from_hot(
    x: &Exchange<'_>,
    keys: &Keys,
    head_only: bool,
    stages: &StageEdits,
) -> Option<Result<web_sys::Response, GatewayError>> {
    let facts = glue::hot_facts(&keys.entry, x.request);
    if facts.is_empty() {
        return None;
    }
    let f = fields(&facts);
    let until: f64 = field(&f, 8)?.parse().ok()?;
    if x.now_ms >= until {
        return None;
    }
    let meta = EntryMeta::parse(field(&f, 1)?, field(&f, 2)?, field(&f, 3)?, field(&f, 4)?)?;
    let status: u16 = field(&f, 0)?.parse().ok()?;
    let Lookup::Fresh { age_s, ttl_s } = entry::lookup(&meta, x.now_ms as u64, None) else {
        return None;
    };
    let condition = |i: usize| field(&f, i).and_then(|v| v.strip_prefix('1'));
    let not_mod = preconditions_apply(status)
        && not_modified(condition(9), condition(10), field(&f, 6), field(&f, 7));
    let mut set = per_exchange(x, stages);
    set.push_str(&format!(
        "\nage\n{age_s}\ncache-status\n{}",
        cache_status(&CacheOutcome::Hit, Some(ttl_s))
    ));
    Some(
        glue::hot_serve(&keys.entry, &set, not_mod, head_only)
            .map_err(|e| internal("serving a cached response", e)),
    )
}

/// The synchronous path for a cached public route: a hit in the isolate's hot tier is
/// answered without any asynchronous step.
pub fn serve_hot(
    x: &Exchange<'_>,
    routed: &Routed,
    route: &Route,
    spec: &CacheSpec,
) -> Option<web_sys::Response> {
    let method = x.inbound.method;
    if method != "GET" && method != "HEAD" {
        return None;
    }
    let keys = request_keys(x, routed, route, spec, None);
    from_hot(x, &keys, method == "HEAD", &StageEdits::default())?.ok()
}

/// Runs the request through the cache. `stages` carries the edits of earlier stages.
pub async fn serve(
    x: &Exchange<'_>,
    routed: &Routed,
    route: &Route,
    spec: &CacheSpec,
    identity: Option<&Identity>,
    mut stages: StageEdits,
) -> Result<web_sys::Response, GatewayError> {
    let method = x.inbound.method;
    let consumer = identity.and_then(|i| i.consumer.as_deref());
    if spec.per_consumer && consumer.is_none() {
        // Nothing identifies whose data this is: it is neither looked up nor stored.
        return bypass(x, routed, &stages, "no-consumer").await;
    }
    let keys = request_keys(x, routed, route, spec, consumer);
    if matches!(method, "POST" | "PUT" | "PATCH" | "DELETE") {
        return invalidating(x, routed, spec, &keys, stages).await;
    }
    if method != "GET" && method != "HEAD" {
        return bypass(x, routed, &stages, "method").await;
    }
    let head_only = method == "HEAD";
    if let Some(answer) = from_hot(x, &keys, head_only, &stages) {
        return answer;
    }
    let cond = conditions(x);
    // The gateway asks the upstream for whole responses and answers conditions itself.
    let strip = glue::join(&entry::CLIENT_CONDITIONS, '\n');
    stages.request_remove = if stages.request_remove.is_empty() {
        strip
    } else {
        format!("{}\n{strip}", stages.request_remove)
    };

    let found = JsFuture::from(glue::cache_match(
        &keys.entry,
        keys.marker.as_deref().unwrap_or(""),
    ))
    .await
    .ok()
    .map(|v| js_sys::Array::from(&v));
    let (stored, invalidated_at) = match &found {
        Some(pair) => (
            pair.get(0).dyn_into::<web_sys::Response>().ok(),
            pair.get(1).as_string().and_then(|s| s.parse::<u64>().ok()),
        ),
        None => (None, None),
    };
    let now_ms = x.now_ms as u64;
    let stored = stored.and_then(|entry| {
        let facts = glue::entry_facts(&entry);
        let f = fields(&facts);
        let meta = EntryMeta::parse(field(&f, 1)?, field(&f, 2)?, field(&f, 3)?, field(&f, 4)?)?;
        let status: u16 = field(&f, 0)?.parse().ok()?;
        let etag = field(&f, 6).map(str::to_owned);
        let last_modified = field(&f, 7).map(str::to_owned);
        Some((entry, meta, status, etag, last_modified))
    });

    let mut stale: Option<(web_sys::Response, EntryMeta, bool, i64)> = None;
    if let Some((entry, meta, status, etag, last_modified)) = stored {
        match entry::lookup(&meta, now_ms, invalidated_at) {
            Lookup::Fresh { age_s, ttl_s } => {
                let not_mod = preconditions_apply(status)
                    && not_modified(
                        cond.if_none_match.as_deref(),
                        cond.if_modified_since.as_deref(),
                        etag.as_deref(),
                        last_modified.as_deref(),
                    );
                let mut set = per_exchange(x, &stages);
                set.push_str(&format!(
                    "\nage\n{age_s}\ncache-status\n{}",
                    cache_status(&CacheOutcome::Hit, Some(ttl_s))
                ));
                // Keep it in memory for the next requests (before its body is served).
                let until = x.now_ms + HOT_MAX_MS.min(ttl_s.max(0) as f64 * 1000.0);
                x.wait_until(&glue::hot_fill(
                    &keys.entry,
                    keys.marker.as_deref().unwrap_or(""),
                    &entry,
                    HOT_MAX_BYTES.min(spec.max_body_bytes as f64),
                    until,
                ));
                return glue::serve_entry(&entry, &set, not_mod, head_only)
                    .map_err(|e| internal("serving a cached response", e));
            }
            Lookup::Stale {
                age_s: _,
                ttl_s,
                serve_on_error,
            } => {
                let validators = revalidation_headers(etag.as_deref(), last_modified.as_deref());
                if !validators.is_empty() && !head_only {
                    let pairs = glue::pairs(&validators);
                    stages.request_set = if stages.request_set.is_empty() {
                        pairs
                    } else {
                        format!("{}\n{pairs}", stages.request_set)
                    };
                }
                stale = Some((entry, meta, serve_on_error, ttl_s));
            }
            Lookup::Invalidated => {}
        }
    }

    let request_time_ms = x.now_ms;
    let response = settle(upstream::forward(x, routed, &stages)?).await?;
    let response_time_ms = js_sys::Date::now();
    let status = response.status();

    if let Some((entry, meta, serve_on_error, ttl_s)) = stale {
        if status == 304 {
            // Revalidated: the stored body is current again.
            let refreshed = EntryMeta {
                stored_at_ms: response_time_ms as u64,
                initial_age_s: 0,
                ..meta
            };
            let facts_text = glue::response_facts(&response);
            let f = fields(&facts_text);
            let lifetime = revalidated_lifetime(&f, spec).unwrap_or(meta.lifetime_s);
            let refreshed = EntryMeta {
                lifetime_s: lifetime,
                ..refreshed
            };
            let retention = lifetime + refreshed.stale_if_error_s;
            // The upstream's original Cache-Control stays recorded in the entry.
            let meta_set = glue::pairs(&refreshed.headers(None, retention));
            x.wait_until(&glue::refresh_entry(&keys.entry, &entry, &meta_set));
            let mut set = per_exchange(x, &stages);
            set.push_str(&format!(
                "\nage\n0\ncache-status\n{}",
                cache_status(
                    &CacheOutcome::Revalidated { stored: true },
                    Some(lifetime as i64)
                )
            ));
            return glue::serve_entry(&entry, &set, false, head_only)
                .map_err(|e| internal("serving a revalidated response", e));
        }
        if status >= 500 && serve_on_error {
            let mut set = per_exchange(x, &stages);
            set.push_str(&format!(
                "\nage\n{}\ncache-status\n{}",
                meta.age_s(response_time_ms as u64),
                cache_status(
                    &CacheOutcome::Stale {
                        served_because: "upstream-error"
                    },
                    Some(ttl_s)
                )
            ));
            if let Some(body) = response.body() {
                let _ = body.cancel();
            }
            return glue::serve_entry(&entry, &set, false, head_only)
                .map_err(|e| internal("serving a stale response", e));
        }
    }

    // A miss, or a stale entry replaced by a full response.
    let facts_text = glue::response_facts(&response);
    let f = fields(&facts_text);
    let received_date = crate::cache::format_http_date((response_time_ms / 1000.0) as i64);
    let resp = ResponseFacts {
        status,
        cache_control: field(&f, 1),
        expires: field(&f, 2),
        date: field(&f, 3).or(Some(received_date.as_str())),
        has_set_cookie: field(&f, 4) == Some("1"),
        vary: field(&f, 5),
        content_length: field(&f, 6).and_then(|l| l.trim().parse().ok()),
        has_etag: field(&f, 7).is_some(),
        has_last_modified: field(&f, 8).is_some(),
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
    let outcome = match decision {
        Ok(()) => {
            let lifetime = freshness_lifetime_s(&resp, spec);
            let meta = EntryMeta {
                stored_at_ms: response_time_ms as u64,
                initial_age_s: initial_age_s(
                    field(&f, 9),
                    resp.date,
                    (request_time_ms / 1000.0) as i64,
                    (response_time_ms / 1000.0) as i64,
                ),
                lifetime_s: lifetime,
                stale_if_error_s: stale_if_error_window_s(&resp, spec),
            };
            let mut remove: Vec<&str> = entry::BOOKKEEPING.to_vec();
            remove.extend(entry::PER_EXCHANGE);
            remove.push(&x.live.gateway.config.settings.request_id_header);
            let meta_set = glue::pairs(&meta.headers(resp.cache_control, retention_s(&resp, spec)));
            x.wait_until(&glue::store_entry(
                &keys.entry,
                &response,
                &glue::join(&remove, '\n'),
                &meta_set,
                spec.max_body_bytes as f64,
            ));
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
            field(&f, 7),
            field(&f, 8),
        );
    finish(&response, &outcome.0, outcome.1, not_mod)
}

/// Forwards a request the cache does not handle, saying so in `Cache-Status`.
async fn bypass(
    x: &Exchange<'_>,
    routed: &Routed,
    stages: &StageEdits,
    why: &'static str,
) -> Result<web_sys::Response, GatewayError> {
    let response = settle(upstream::forward(x, routed, stages)?).await?;
    finish(&response, &CacheOutcome::Bypass(why), None, false)
}

/// Adds `Cache-Status` to the client's response, and answers 304 when `not_modified`.
fn finish(
    response: &web_sys::Response,
    outcome: &CacheOutcome,
    ttl_s: Option<i64>,
    not_modified: bool,
) -> Result<web_sys::Response, GatewayError> {
    let set = glue::pairs(&[("cache-status", cache_status(outcome, ttl_s))]);
    glue::finish_response(response, &set, not_modified)
        .map_err(|e| internal("finishing a response", e))
}

/// The lifetime a 304 grants the stored entry: its own Cache-Control/Expires when it sent
/// any (RFC 9111 §4.3.4 updates the stored headers), else the entry's.
fn revalidated_lifetime(f: &[Option<&str>], spec: &CacheSpec) -> Option<u64> {
    let cache_control = field(f, 1);
    let expires = field(f, 2);
    if cache_control.is_none() && expires.is_none() {
        return None;
    }
    let resp = ResponseFacts {
        status: 200,
        cache_control,
        expires,
        date: field(f, 3),
        ..ResponseFacts::default()
    };
    Some(freshness_lifetime_s(&resp, spec))
}

/// An unsafe request on a cached route: forwarded, and when it succeeds the URL's entries
/// are invalidated (RFC 9111 §4.4).
async fn invalidating(
    x: &Exchange<'_>,
    routed: &Routed,
    spec: &CacheSpec,
    keys: &Keys,
    stages: StageEdits,
) -> Result<web_sys::Response, GatewayError> {
    let response = settle(upstream::forward(x, routed, &stages)?).await?;
    let status = response.status();
    let invalidated = (200..400).contains(&status);
    if invalidated {
        x.wait_until(&invalidate(keys, spec));
    }
    let outcome = CacheOutcome::Bypass(if invalidated { "invalidated" } else { "method" });
    finish(&response, &outcome, None, false)
}

/// Removes a URL's entry (and, through its marker, every variant) from this location's cache
/// and this isolate's memory.
fn invalidate(keys: &Keys, spec: &CacheSpec) -> js_sys::Promise {
    let marker = keys.marker.as_deref().unwrap_or("");
    glue::hot_drop(&keys.entry, marker);
    let marker_ttl = spec.ttl_s + spec.stale_if_error_s;
    glue::cache_invalidate(&keys.entry, marker, js_sys::Date::now(), marker_ttl as f64)
}

/// Purges the entries of a URL (`scheme://host…`) in this location, as an unsafe request
/// would.
pub async fn purge(
    x: &Exchange<'_>,
    scheme: &str,
    host: &str,
    routed: &Routed,
    route: &Route,
    spec: &CacheSpec,
) {
    let keys = keys(x, scheme, host, routed, route, spec, None);
    let _ = JsFuture::from(invalidate(&keys, spec)).await;
}
