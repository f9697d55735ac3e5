//! Authentication at the edge: reading credentials, obtaining keys (JWKS, inline, HMAC secret),
//! looking up API keys in KV, and the per-isolate caches that keep this off the hot path.
//! The rules themselves (token checks, scope checks, key binding) are in `crate::auth`.

use super::{glue, Exchange};
use crate::auth::api_key::{self, ApiKeyRecord};
use crate::auth::credentials::{self, CredentialError};
use crate::auth::jwk::{self, VerifyingKey};
use crate::auth::jwt::{self, JwtError, VerifiedToken};
use crate::auth::token_cache::TokenCache;
use crate::config::{ApiKeyScheme, ApiKeySource, AuthKind, JwtScheme, Route, RouteAuth};
use crate::error::GatewayError;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::JsFuture;

/// Who the request is, once authenticated.
#[derive(Default)]
pub struct Identity {
    /// Who the request is, for `consumer` rate limits and per-consumer caching:
    /// `jwt/<scheme>/<sub>` or `key/<consumer>`. Namespaced, so a token of one issuer can never
    /// be taken for a subject of another, nor for an API key's consumer.
    pub consumer: Option<String>,
    /// The verified token's claims, for `claim:<name>` rate-limit keys.
    pub claims: Option<Rc<VerifiedToken>>,
    /// Request headers carrying the verified identity upstream (`forward_claims`).
    pub forward: Vec<(String, String)>,
}

/// How long JWKS documents are kept when their `Cache-Control` says nothing, and the bounds
/// put on what it says.
const JWKS_DEFAULT_TTL_S: u64 = 600;
const JWKS_MIN_TTL_S: u64 = 60;
const JWKS_MAX_TTL_S: u64 = 86_400;
/// An unknown `kid` makes the gateway re-fetch the JWKS at most this often per isolate, so
/// tokens with invented key ids cannot be used to flood the identity provider.
const JWKS_REFETCH_INTERVAL_MS: f64 = 5_000.0;
const JWKS_FETCH_TIMEOUT_MS: f64 = 5_000.0;
/// After a failed fetch the last good keys stay in use; the next attempt waits this long.
const JWKS_RETRY_AFTER_FAILURE_MS: f64 = 30_000.0;

const API_KEY_TTL_MS: f64 = 30_000.0;
const API_KEY_MISS_TTL_MS: f64 = 10_000.0;
const API_KEY_CACHE_CAPACITY: usize = 4_096;
const TOKEN_CACHE_CAPACITY: usize = 1_024;

/// A cached API-key lookup (`None`: no such key) and when it stops being trusted.
type ApiKeyLookup = (Option<Rc<ApiKeyRecord>>, f64);

struct JwksEntry {
    text: Rc<str>,
    /// Parsed keys per list of allowed algorithms.
    parsed: HashMap<String, Rc<Vec<VerifyingKey>>>,
    fresh_until_ms: f64,
    last_forced_ms: f64,
}

thread_local! {
    static JWKS: RefCell<HashMap<String, JwksEntry>> = RefCell::new(HashMap::new());
    static TOKENS: RefCell<TokenCache> = RefCell::new(TokenCache::new(TOKEN_CACHE_CAPACITY));
    static API_KEYS: RefCell<HashMap<String, ApiKeyLookup>> = RefCell::new(HashMap::new());
    static STATIC_KEYS: RefCell<HashMap<String, Rc<Vec<VerifyingKey>>>> = RefCell::new(HashMap::new());
}

fn invalid(reason: impl Into<String>) -> GatewayError {
    GatewayError::Unauthorized {
        reason: reason.into(),
        invalid_token: true,
    }
}

fn credential_error(e: CredentialError) -> GatewayError {
    match e {
        CredentialError::Duplicate(_) => {
            GatewayError::BadRequest("more than one credential of a kind was sent")
        }
        CredentialError::Malformed(_) => invalid(e.reason()),
    }
}

/// Authenticates the request for `route`: `Ok(None)` for a public route, the identity when
/// one of the route's schemes accepts the credentials, and 401/403 otherwise.
pub async fn authenticate(
    x: &Exchange<'_>,
    route: &Route,
) -> Result<Option<Identity>, GatewayError> {
    let RouteAuth::Schemes(schemes) = &route.auth else {
        return Ok(None);
    };
    let config = &x.live.gateway.config;
    let headers = x.request.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    let authorization = header("authorization");
    let bearer = credentials::bearer(authorization.as_deref()).map_err(credential_error)?;
    let mut failure: Option<GatewayError> = None;
    for &index in schemes {
        let scheme = &config.auth[index];
        let attempt = match &scheme.kind {
            AuthKind::Jwt(jwt) => {
                let token = jwt_token(jwt, bearer, &header, x.inbound.query)?;
                match token {
                    None => continue,
                    Some(token) => {
                        verify_jwt(x, &scheme.name, jwt, &token)
                            .await
                            .and_then(|verified| {
                                if let Some(missing) =
                                    jwt::missing_scope(&verified.claims, &route.scopes)
                                {
                                    return Err(GatewayError::InsufficientScope {
                                        missing: missing.to_owned(),
                                    });
                                }
                                let forward = jwt::forwarded_claims(&verified, jwt)
                                    .map_err(|e| invalid(e.reason()))?;
                                Ok(Identity {
                                    consumer: verified
                                        .subject
                                        .as_ref()
                                        .map(|sub| format!("jwt/{}/{sub}", scheme.name)),
                                    claims: Some(verified),
                                    forward,
                                })
                            })
                    }
                }
            }
            AuthKind::ApiKey(scheme) => {
                let key = api_key_value(scheme, &header, x.inbound.query)?;
                match key {
                    None => continue,
                    Some(key) => verify_api_key(x, &key).await.and_then(|record| {
                        if let Some(missing) =
                            route.scopes.iter().find(|s| !record.scopes.contains(s))
                        {
                            return Err(GatewayError::InsufficientScope {
                                missing: missing.clone(),
                            });
                        }
                        Ok(Identity {
                            consumer: Some(format!("key/{}", record.consumer)),
                            claims: None,
                            forward: Vec::new(),
                        })
                    }),
                }
            }
        };
        match attempt {
            Ok(identity) => return Ok(Some(identity)),
            // A request that proved who it is but lacks a scope is refused as such.
            Err(e @ (GatewayError::InsufficientScope { .. } | GatewayError::AuthUnavailable)) => {
                return Err(e)
            }
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    Err(failure.unwrap_or(GatewayError::Unauthorized {
        reason: "credentials are required".into(),
        invalid_token: false,
    }))
}

/// The token for a JWT scheme: from `Authorization: Bearer`, or the scheme's cookie or query
/// parameter. Two sources at once are refused: which one would count is ambiguous.
fn jwt_token(
    scheme: &JwtScheme,
    bearer: Option<&str>,
    header: &impl Fn(&str) -> Option<String>,
    query: Option<&str>,
) -> Result<Option<String>, GatewayError> {
    let mut found: Vec<String> = bearer.map(str::to_owned).into_iter().collect();
    if let Some(name) = &scheme.token_cookie {
        if let Some(v) =
            credentials::cookie(header("cookie").as_deref(), name).map_err(credential_error)?
        {
            found.push(v);
        }
    }
    if let Some(name) = &scheme.token_query {
        if let Some(v) = credentials::query_param(query, name).map_err(credential_error)? {
            found.push(v);
        }
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(GatewayError::BadRequest(
            "a token was sent in more than one place",
        )),
    }
}

fn api_key_value(
    scheme: &ApiKeyScheme,
    header: &impl Fn(&str) -> Option<String>,
    query: Option<&str>,
) -> Result<Option<String>, GatewayError> {
    let value = match &scheme.source {
        ApiKeySource::Header(name) => {
            let v = header(name);
            if v.as_deref().is_some_and(|v| v.contains(',')) {
                return Err(GatewayError::BadRequest("more than one API key was sent"));
            }
            v.map(|v| v.trim().to_owned())
        }
        ApiKeySource::Query(name) => {
            credentials::query_param(query, name).map_err(credential_error)?
        }
    };
    Ok(value.filter(|v| !v.is_empty()))
}

async fn verify_jwt(
    x: &Exchange<'_>,
    scheme_name: &str,
    scheme: &JwtScheme,
    token: &str,
) -> Result<Rc<VerifiedToken>, GatewayError> {
    let now_s = (x.now_ms / 1000.0) as i64;
    // Cached tokens and keys are scoped to the scheme in this configuration version: entries
    // of another version (other issuer, audiences or keys) never match.
    let scope = format!("{}/{scheme_name}", x.live.gateway.digest);
    if scheme.verified_cache_s > 0 {
        if let Some(hit) = TOKENS.with(|c| c.borrow_mut().get(&scope, token, now_s)) {
            return Ok(hit);
        }
    }
    let keys = keys_for(x, &scope, scheme, false).await?;
    let verified = match jwt::verify(token, scheme, &keys, now_s) {
        Err(e) if e.is_unknown_key() && scheme.jwks_url.is_some() => {
            // The identity provider may have rotated its keys: look again, within limits.
            let keys = keys_for(x, &scope, scheme, true).await?;
            jwt::verify(token, scheme, &keys, now_s)
        }
        other => other,
    }
    .map_err(|e: JwtError| invalid(e.reason()))?;
    let verified = Rc::new(verified);
    if scheme.verified_cache_s > 0 {
        TOKENS.with(|c| {
            c.borrow_mut().insert(
                &scope,
                token,
                verified.clone(),
                now_s,
                scheme.verified_cache_s as i64,
            )
        });
    }
    Ok(verified)
}

/// Every key the scheme may verify with: inline keys, the HMAC secret, and the JWKS.
async fn keys_for(
    x: &Exchange<'_>,
    scope: &str,
    scheme: &JwtScheme,
    force_refresh: bool,
) -> Result<Rc<Vec<VerifyingKey>>, GatewayError> {
    let mut keys = static_keys(x, scope, scheme);
    if let Some(url) = &scheme.jwks_url {
        match jwks_keys(url, scheme, x.now_ms, force_refresh).await {
            Ok(fetched) if keys.is_empty() => keys = fetched,
            Ok(fetched) => {
                let mut all: Vec<VerifyingKey> = keys.iter().cloned().collect();
                all.extend(fetched.iter().cloned());
                keys = Rc::new(all);
            }
            Err(cause) => {
                super::isolate::count(super::isolate::Counter::JwksFailures);
                worker::console_error!(
                    "{}",
                    serde_json::json!({"event": "jwks_unavailable", "url": url, "cause": cause})
                );
            }
        }
    }
    // Nothing can verify (the JWKS unreachable with no keys known yet, every key too weak, the
    // secret missing or too short): the gateway cannot authenticate anyone, which is its
    // failure, not the client's.
    if keys.is_empty() {
        return Err(GatewayError::AuthUnavailable);
    }
    Ok(keys)
}

/// Inline keys and the HMAC secret, prepared once per isolate, scheme and configuration
/// version (`scope`).
fn static_keys(x: &Exchange<'_>, scope: &str, scheme: &JwtScheme) -> Rc<Vec<VerifyingKey>> {
    if let Some(hit) = STATIC_KEYS.with(|c| c.borrow().get(scope).cloned()) {
        return hit;
    }
    let mut keys = jwk::keys_from_values(&scheme.keys, &scheme.algorithms);
    if let Some(name) = &scheme.secret {
        match x.env.secret(name) {
            Ok(secret) => {
                let secret = secret.to_string();
                // A secret shorter than an algorithm's hash is not used with it: counted and
                // logged (its length, never its value).
                let weak = jwk::hmac_weaknesses(secret.len(), &scheme.algorithms);
                if !weak.is_empty() {
                    super::isolate::count(super::isolate::Counter::WeakKeys);
                    worker::console_error!(
                        "{}",
                        serde_json::json!({"event": "weak_secret_refused", "secret": name, "reasons": weak})
                    );
                }
                keys.extend(jwk::hmac_keys(secret.as_bytes(), &scheme.algorithms));
            }
            Err(e) => worker::console_error!(
                "{}",
                serde_json::json!({"event": "secret_missing", "secret": name, "cause": e.to_string()})
            ),
        }
    }
    let keys = Rc::new(keys);
    STATIC_KEYS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 64 {
            c.clear();
        }
        c.insert(scope.to_owned(), keys.clone());
    });
    keys
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

async fn jwks_keys(
    url: &str,
    scheme: &JwtScheme,
    now_ms: f64,
    force: bool,
) -> Result<Rc<Vec<VerifyingKey>>, String> {
    let fetch_now = JWKS.with(|j| {
        let mut j = j.borrow_mut();
        match j.get_mut(url) {
            None => true,
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
    });
    if fetch_now {
        // Another isolate of this location may already hold a fresh copy, unless the copy we
        // have is being questioned by an unknown kid.
        let from_cache = if force { None } else { cached(url).await };
        let fetched = match from_cache {
            Some(text) => Ok((text, JWKS_MIN_TTL_S, false)),
            None => fetch_jwks(url).await.map(|(text, ttl)| (text, ttl, true)),
        }
        // A document without usable structure is a failed fetch: the last good keys stay.
        .and_then(|(text, ttl_s, store)| {
            let read = jwk::read_jwks(&text, &scheme.algorithms)?;
            // Weak keys (small RSA, bad exponents, ROCA) are skipped, counted and logged.
            if !read.weak.is_empty() {
                super::isolate::count(super::isolate::Counter::WeakKeys);
                worker::console_error!(
                    "{}",
                    serde_json::json!({"event": "jwks_weak_keys_skipped", "url": url, "keys": read.weak})
                );
            }
            Ok((text, ttl_s, store, read.keys))
        });
        match fetched {
            Ok((text, ttl_s, store, keys)) => {
                if store {
                    let _ = JsFuture::from(glue::store_document(url, &text, ttl_s as f64)).await;
                }
                JWKS.with(|j| {
                    let mut j = j.borrow_mut();
                    let last_forced_ms = j
                        .get(url)
                        .map_or(if force { now_ms } else { 0.0 }, |e| e.last_forced_ms);
                    let mut parsed = HashMap::new();
                    parsed.insert(algorithms_key(scheme), Rc::new(keys));
                    j.insert(
                        url.to_owned(),
                        JwksEntry {
                            text: Rc::from(text.as_str()),
                            parsed,
                            fresh_until_ms: now_ms + ttl_s as f64 * 1000.0,
                            last_forced_ms,
                        },
                    );
                });
            }
            Err(cause) => {
                let have_old = JWKS.with(|j| {
                    j.borrow_mut().get_mut(url).map(|e| {
                        e.fresh_until_ms = now_ms + JWKS_RETRY_AFTER_FAILURE_MS;
                    })
                });
                if have_old.is_none() {
                    return Err(cause);
                }
            }
        }
    }
    JWKS.with(|j| match j.borrow_mut().get_mut(url) {
        Some(entry) => parsed(entry, scheme),
        None => Err("no JWKS".to_owned()),
    })
}

async fn cached(url: &str) -> Option<String> {
    JsFuture::from(glue::cached_document(url))
        .await
        .ok()
        .and_then(|v| v.as_string())
}

/// Fetches the JWKS; returns its text and how long to keep it.
async fn fetch_jwks(url: &str) -> Result<(String, u64), String> {
    let raw = JsFuture::from(glue::fetch_document(url, JWKS_FETCH_TIMEOUT_MS))
        .await
        .map_err(|e: JsValue| e.as_string().unwrap_or_else(|| "fetch failed".into()))?
        .as_string()
        .ok_or("unreadable JWKS response")?;
    let mut parts = raw.splitn(3, '\r');
    let status = parts.next().unwrap_or("");
    let cache_control = parts.next().unwrap_or("");
    let body = parts.next().unwrap_or("");
    if status != "200" {
        return Err(format!("JWKS answered {status}"));
    }
    Ok((body.to_owned(), jwks_ttl_s(cache_control)))
}

/// `max-age` from the JWKS response, within sane bounds.
fn jwks_ttl_s(cache_control: &str) -> u64 {
    cache_control
        .split(',')
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .find_map(|v| v.trim_matches('"').parse::<u64>().ok())
        .unwrap_or(JWKS_DEFAULT_TTL_S)
        .clamp(JWKS_MIN_TTL_S, JWKS_MAX_TTL_S)
}

async fn verify_api_key(x: &Exchange<'_>, key: &str) -> Result<Rc<ApiKeyRecord>, GatewayError> {
    if !api_key::is_plausible_key(key) {
        return Err(invalid("malformed API key"));
    }
    let hash = api_key::key_hash_hex(key);
    let cached = API_KEYS.with(|c| {
        c.borrow()
            .get(&hash)
            .filter(|(_, until)| *until > x.now_ms)
            .map(|(r, _)| r.clone())
    });
    let record = match cached {
        Some(record) => record,
        None => {
            let record = lookup_api_key(x, &hash).await?;
            let ttl = if record.is_some() {
                API_KEY_TTL_MS
            } else {
                API_KEY_MISS_TTL_MS
            };
            API_KEYS.with(|c| {
                let mut c = c.borrow_mut();
                if c.len() >= API_KEY_CACHE_CAPACITY {
                    // A flood of unknown keys must not evict the known ones: drop misses and
                    // expired entries first.
                    c.retain(|_, (record, until)| *until > x.now_ms && record.is_some());
                    if c.len() >= API_KEY_CACHE_CAPACITY {
                        c.clear();
                    }
                }
                c.insert(hash.clone(), (record.clone(), x.now_ms + ttl));
            });
            record
        }
    };
    let record = record.ok_or_else(|| invalid("unknown API key"))?;
    api_key::check(&record, &hash).map_err(invalid)?;
    Ok(record)
}

async fn lookup_api_key(
    x: &Exchange<'_>,
    hash: &str,
) -> Result<Option<Rc<ApiKeyRecord>>, GatewayError> {
    let kv = x
        .env
        .kv(super::isolate::CONFIG_BINDING)
        .map_err(|e| GatewayError::Internal {
            cause: format!("KV binding: {e}"),
        })?;
    let text = kv
        .get(&api_key::kv_key(hash))
        .text()
        .await
        .map_err(|e| GatewayError::Internal {
            cause: format!("reading an API key from KV: {e}"),
        })?;
    Ok(text
        .and_then(|t| serde_json::from_str::<ApiKeyRecord>(&t).ok())
        .map(Rc::new))
}

/// Forgets cached API-key lookups (after the admin API revokes or creates a key here).
pub fn forget_api_key(hash: &str) {
    API_KEYS.with(|c| {
        c.borrow_mut().remove(hash);
    });
}
