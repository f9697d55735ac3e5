//! The JWKS a JWT scheme names: fetched (or taken from another isolate's sealed copy in the
//! location's cache, see [`crate::auth::jwks_share`]), kept as long as its `Cache-Control`
//! allows within bounds, re-fetched on an unknown `kid` at most every few seconds, and its keys
//! parsed once per list of allowed algorithms.
//! Separate from the stage because it is the one part of authentication with a refresh policy
//! of its own: what is kept, for how long, and when the identity provider is asked again.

use super::AuthState;
use crate::auth::admin_token::AdminToken;
use crate::auth::jwk::{self, VerifyingKey};
use crate::auth::jwks_share;
use crate::config::JwtScheme;
use crate::pipeline::ports::{Level, Ports};
use crate::pipeline::state::{Counter, Services};
use std::collections::HashMap;
use std::rc::Rc;

/// How long JWKS documents are kept when their `Cache-Control` says nothing, and the bounds
/// put on what it says.
const JWKS_DEFAULT_TTL_S: u64 = 600;
const JWKS_MIN_TTL_S: u64 = 60;
const JWKS_MAX_TTL_S: u64 = 86_400;
/// An unknown `kid` makes the gateway re-fetch the JWKS at most this often per isolate, so
/// tokens with invented key ids cannot be used to flood the identity provider.
pub const JWKS_REFETCH_INTERVAL_MS: f64 = 5_000.0;
const JWKS_FETCH_TIMEOUT_MS: f64 = 5_000.0;
/// After a failed fetch the last good keys stay in use; the next attempt waits this long.
pub const JWKS_RETRY_AFTER_FAILURE_MS: f64 = 30_000.0;

pub(super) struct JwksEntry {
    text: Rc<str>,
    /// Parsed keys per list of allowed algorithms.
    parsed: HashMap<String, Rc<Vec<VerifyingKey>>>,
    fresh_until_ms: f64,
    last_forced_ms: f64,
    /// Which load of the isolate this copy is (see [`jwks_version`]).
    generation: u64,
}

/// Parsed keys depend on the algorithms a scheme allows (they bind keys without `alg`).
fn algorithms_key(scheme: &JwtScheme) -> String {
    let algs: Vec<&str> = scheme.algorithms.iter().map(|a| a.name()).collect();
    algs.join(",")
}

fn parsed(entry: &mut JwksEntry, scheme: &JwtScheme) -> Result<Rc<Vec<VerifyingKey>>, String> {
    let algs = algorithms_key(scheme);
    if let Some(keys) = entry.parsed.get(&algs) {
        return Ok(keys.clone());
    }
    let keys = Rc::new(jwk::keys_from_jwks(&entry.text, &scheme.algorithms)?);
    entry.parsed.insert(algs, keys.clone());
    Ok(keys)
}

/// Which copy of the JWKS at `url` the isolate holds (it changes whenever one is loaded), so
/// a caller can tell whether a refresh brought anything.
pub(super) fn jwks_version(state: &AuthState, url: &str) -> Option<u64> {
    state.jwks.get(url).map(|e| e.generation)
}

/// Whether the JWKS at `url` must be fetched now. A forced fetch (an unknown `kid`) happens at
/// most once per [`JWKS_REFETCH_INTERVAL_MS`]; otherwise when the copy is stale.
fn jwks_due(state: &mut AuthState, url: &str, now_ms: f64, force: bool) -> bool {
    match state.jwks.get_mut(url) {
        None => state
            .jwks_down_until
            .get(url)
            .is_none_or(|until| now_ms >= *until),
        Some(e) if force => {
            if now_ms - e.last_forced_ms < JWKS_REFETCH_INTERVAL_MS {
                false
            } else {
                e.last_forced_ms = now_ms;
                true
            }
        }
        Some(e) => now_ms >= e.fresh_until_ms,
    }
}

pub(super) async fn jwks_keys<P: Ports>(
    s: Services<'_, P>,
    url: &str,
    scheme: &JwtScheme,
    now_ms: f64,
    force: bool,
) -> Result<Rc<Vec<VerifyingKey>>, String> {
    let fetch_now = jwks_due(&mut s.state.auth.borrow_mut(), url, now_ms, force);
    if fetch_now {
        // Another isolate of this location may already hold a fresh copy, unless the copy we
        // have is being questioned by an unknown kid. Only a copy the gateway sealed counts:
        // the cache is the zone's, and anyone on it could plant keys there.
        let share_key = share_key(s);
        let from_cache = match &share_key {
            Some(key) if !force => shared_copy(s, key, url, now_ms).await,
            _ => None,
        };
        let fetched = match from_cache {
            Some((text, ttl_s)) => Ok((text, ttl_s, false)),
            None => fetch_jwks(s, url)
                .await
                .map(|(text, ttl)| (text, ttl, true)),
        }
        // A document without usable structure is a failed fetch: the last good keys stay.
        .and_then(|(text, ttl_s, store)| {
            let read = jwk::read_jwks(&text, &scheme.algorithms)?;
            // Weak keys (small RSA, bad exponents, ROCA) are skipped, counted and logged.
            if !read.weak.is_empty() {
                s.state.counters.add(Counter::WeakKeys);
                s.ports.event(
                    Level::Error,
                    serde_json::json!({"event": "jwks_weak_keys_skipped", "url": crate::observe::shown::shown_url(url), "keys": read.weak}),
                );
            }
            // A JWKS with no key the scheme can use leaves it refusing every token as the
            // gateway's outage (503), and no token then gets as far as an unknown kid to make
            // the gateway look again: kept for its max-age, that could last a day. So it is
            // looked at again as soon as an unreachable one would be, and never shared.
            if read.keys.is_empty() {
                let retry_s = (JWKS_REFETCH_INTERVAL_MS / 1000.0) as u64;
                return Ok((text, ttl_s.min(retry_s), false, read.keys));
            }
            Ok((text, ttl_s, store, read.keys))
        });
        match fetched {
            Ok((text, ttl_s, store, keys)) => {
                if let (true, Some(key)) = (store, &share_key) {
                    let expires_ms = (now_ms + ttl_s as f64 * 1000.0) as u64;
                    if let Some(sealed) = jwks_share::seal(key, url, &text, expires_ms) {
                        let share_url = jwks_share::share_url(key, url);
                        s.ports.store_document(&share_url, &sealed, ttl_s).await;
                    }
                }
                let mut auth = s.state.auth.borrow_mut();
                let last_forced_ms = auth
                    .jwks
                    .get(url)
                    .map_or(if force { now_ms } else { 0.0 }, |e| e.last_forced_ms);
                auth.jwks_down_until.remove(url);
                let mut parsed = HashMap::new();
                parsed.insert(algorithms_key(scheme), Rc::new(keys));
                auth.jwks_loads += 1;
                let generation = auth.jwks_loads;
                auth.jwks.insert(
                    url.to_owned(),
                    JwksEntry {
                        text: Rc::from(text.as_str()),
                        parsed,
                        fresh_until_ms: now_ms + ttl_s as f64 * 1000.0,
                        last_forced_ms,
                        generation,
                    },
                );
            }
            Err(cause) => {
                let mut auth = s.state.auth.borrow_mut();
                match auth.jwks.get_mut(url) {
                    Some(e) => e.fresh_until_ms = now_ms + JWKS_RETRY_AFTER_FAILURE_MS,
                    None => {
                        auth.jwks_down_until
                            .insert(url.to_owned(), now_ms + JWKS_REFETCH_INTERVAL_MS);
                        return Err(cause);
                    }
                }
            }
        }
    }
    match s.state.auth.borrow_mut().jwks.get_mut(url) {
        Some(entry) => parsed(entry, scheme),
        // Never loaded, and its last fetch failed a moment ago (already counted and logged):
        // no keys from it, so the request is refused as the gateway's outage.
        None => Ok(Rc::new(Vec::new())),
    }
}

/// The key that seals the shared copy: derived from the admin token, the one secret every
/// production gateway holds and no other code on the zone does. Without it nothing is shared
/// (each isolate fetches for itself): an unsealed copy in a zone-wide cache could be anyone's;
/// nor with a token too short to use ([`AdminToken`]).
fn share_key<P: Ports>(s: Services<'_, P>) -> Option<[u8; 32]> {
    let name = s.gateway.config.settings.admin.token_secret.as_ref()?;
    jwks_share::share_key(&AdminToken::read(s.ports.secret(name)).usable()?)
}

/// The sealed copy another isolate stored, and how long to keep it (at most
/// [`JWKS_MIN_TTL_S`], never past its seal's expiry); a copy that fails its seal is logged and
/// ignored, so the keys come from the identity provider.
async fn shared_copy<P: Ports>(
    s: Services<'_, P>,
    key: &[u8; 32],
    url: &str,
    now_ms: f64,
) -> Option<(String, u64)> {
    let share_url = jwks_share::share_url(key, url);
    let stored = s
        .ports
        .cached_document(&share_url, jwks_share::MAX_SEALED_BYTES)
        .await?;
    match jwks_share::open(key, url, &stored, now_ms) {
        Ok(opened) => {
            let left_s = ((opened.expires_ms as f64 - now_ms) / 1000.0).floor() as u64;
            Some((opened.text.to_owned(), left_s.clamp(1, JWKS_MIN_TTL_S)))
        }
        // Expired is a replay or a late read, not worth a line; the others mean somebody else
        // wrote the entry (or the admin token changed).
        Err(jwks_share::Refused::Expired) => None,
        Err(refused) => {
            s.ports.event(
                Level::Warn,
                serde_json::json!({"event": "jwks_shared_copy_refused", "url": crate::observe::shown::shown_url(url), "why": format!("{refused:?}")}),
            );
            None
        }
    }
}

/// Fetches the JWKS; returns its text and how long to keep it.
async fn fetch_jwks<P: Ports>(s: Services<'_, P>, url: &str) -> Result<(String, u64), String> {
    // Bounded while it is read: a JWKS read whole before its size was judged could fill the
    // isolate's memory.
    let document = s
        .ports
        .fetch_document(url, JWKS_FETCH_TIMEOUT_MS, jwk::MAX_JWKS_BYTES)
        .await?;
    if document.status != 200 {
        return Err(format!("JWKS answered {}", document.status));
    }
    // The runtime follows redirects: one away from https (or from loopback) would have the
    // keys read over plaintext from wherever it pointed.
    let source = url::Url::parse(&document.url).ok();
    if !source.as_ref().is_some_and(jwk::key_source_allowed) {
        let shown = source.map_or_else(
            || "an unreadable address".to_owned(),
            |u| format!("{}://{}", u.scheme(), u.host_str().unwrap_or("")),
        );
        return Err(format!(
            "JWKS redirected to {shown}, which is neither https nor loopback"
        ));
    }
    Ok((document.body, jwks_ttl_s(&document.cache_control)))
}

/// `max-age` from the JWKS response, within sane bounds.
pub fn jwks_ttl_s(cache_control: &str) -> u64 {
    cache_control
        .split(',')
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .find_map(|v| v.trim_matches('"').parse::<u64>().ok())
        .unwrap_or(JWKS_DEFAULT_TTL_S)
        .clamp(JWKS_MIN_TTL_S, JWKS_MAX_TTL_S)
}
