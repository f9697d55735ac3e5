//! The authentication stage: credentials read from the request, JWTs verified with inline
//! keys, the HMAC secret or a JWKS (fetched, shared through the location's cache, re-fetched on
//! an unknown `kid` at most every few seconds: `jwks`), API keys looked up in KV
//! (`api_keys`). The isolate's caches (verified tokens, API-key lookups, parsed keys) let most
//! requests decide synchronously.

mod api_keys;
mod jwks;

pub use api_keys::{API_KEY_MISS_TTL_MS, API_KEY_TTL_MS};
pub use jwks::{jwks_ttl_s, JWKS_REFETCH_INTERVAL_MS, JWKS_RETRY_AFTER_FAILURE_MS};

use super::ctx::{Ctx, Identity};
use super::driver::{Stage, Step};
use super::ports::{Level, Ports};
use super::state::{Counter, Services};
use crate::auth::api_key::ApiKeyRecord;
use crate::auth::credentials::{self, CredentialError};
use crate::auth::jwk::{self, VerifyingKey};
use crate::auth::jwt::{self, JwtError, VerifiedToken};
use crate::auth::token_cache::TokenCache;
use crate::config::{ApiKeyScheme, ApiKeySource, AuthKind, Config, JwtScheme, Route, RouteAuth};
use crate::error::GatewayError;
use crate::gateway::Gateway;
use api_keys::{verify_api_key, ApiKeyLookup};
use jwks::{jwks_keys, JwksEntry};
use std::collections::HashMap;
use std::rc::Rc;

const TOKEN_CACHE_CAPACITY: usize = 1_024;
const STATIC_KEYS_CAPACITY: usize = 64;

/// The isolate's authentication caches.
pub struct AuthState {
    jwks: HashMap<String, JwksEntry>,
    tokens: TokenCache,
    api_keys: HashMap<String, ApiKeyLookup>,
    static_keys: HashMap<String, Rc<Vec<VerifyingKey>>>,
    /// JWKS URLs never loaded whose last fetch failed, until when none is tried again: while
    /// an identity provider is down, requests are refused without each fetching (one URL per
    /// configured scheme, so bounded).
    jwks_down_until: HashMap<String, f64>,
    /// JWKS copies loaded so far: each copy's generation, to tell a refresh that brought one.
    jwks_loads: u64,
}

impl Default for AuthState {
    fn default() -> Self {
        AuthState {
            jwks: HashMap::new(),
            tokens: TokenCache::new(TOKEN_CACHE_CAPACITY),
            api_keys: HashMap::new(),
            static_keys: HashMap::new(),
            jwks_down_until: HashMap::new(),
            jwks_loads: 0,
        }
    }
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

/// Whether a step may wait for the platform, or must decide from the isolate's caches.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    CachedOnly,
    Io,
}

/// Internal result: decided, or it would need I/O in `CachedOnly` mode.
enum Need {
    Io,
    Err(GatewayError),
}

impl From<GatewayError> for Need {
    fn from(e: GatewayError) -> Need {
        Need::Err(e)
    }
}

pub struct Auth;

impl Stage for Auth {
    fn request<P: Ports>(&self, cx: &mut Ctx, s: Services<'_, P>) -> Step<P::Response> {
        // In `CachedOnly` mode nothing awaits a port, so the future is ready at its first poll.
        match super::driver::now_or_never(authenticate(cx, s, Mode::CachedOnly)) {
            Some(Ok(identity)) => accept(cx, s.gateway, identity),
            Some(Err(Need::Err(e))) => Step::Fail(e),
            Some(Err(Need::Io)) | None => Step::Wait,
        }
    }

    async fn wait<P: Ports>(&self, cx: &mut Ctx, s: Services<'_, P>) -> Step<P::Response> {
        match authenticate(cx, s, Mode::Io).await {
            Ok(identity) => accept(cx, s.gateway, identity),
            Err(Need::Err(e)) => Step::Fail(e),
            Err(Need::Io) => Step::Fail(GatewayError::Internal {
                cause: "authentication asked for I/O it was allowed".into(),
            }),
        }
    }
}

/// Records the identity; its forwarded claims and the consumer (`settings.consumer_header`)
/// go upstream.
fn accept<R>(cx: &mut Ctx, gateway: &Gateway, identity: Identity) -> Step<R> {
    cx.request_edits
        .set
        .extend(identity.forward.iter().cloned());
    if let Some(consumer) = &identity.consumer {
        cx.request_edits.set.push((
            gateway.config.settings.consumer_header.clone(),
            consumer_value(consumer),
        ));
    }
    cx.identity = Some(identity);
    Step::Next
}

/// The consumer as a header value: `%`, control and non-ASCII characters and a space or tab at
/// either end percent-encoded (UTF-8), as forwarded claims are, so a subject can never split or
/// end the header, nor lose the space that tells `"alice "` from `alice`.
pub fn consumer_value(consumer: &str) -> String {
    crate::hex::percent_escape(consumer, |c| {
        c.is_ascii() && c != '%' && !c.is_ascii_control()
    })
}

/// Authenticates for the route: the identity when one of its schemes accepts the
/// credentials, 401/403 otherwise, 400 when the request presents two different credentials.
/// Schemes are tried in order; the first failure is reported unless a later scheme accepts.
async fn authenticate<P: Ports>(
    cx: &Ctx,
    s: Services<'_, P>,
    mode: Mode,
) -> Result<Identity, Need> {
    let route = s.gateway.route(cx.route());
    let RouteAuth::Schemes(schemes) = &route.auth else {
        return Ok(Identity::default());
    };
    let header = |name: &str| s.ports.request_header(name);
    let config = &s.gateway.config;
    let presented = presented_credentials(config, schemes, &header, cx.request.query.as_deref())?;
    let mut failure: Option<GatewayError> = None;
    for (index, credential) in presented {
        let scheme = &config.auth[index];
        let attempt = match &scheme.kind {
            AuthKind::Jwt(jwt) => {
                match verify_jwt(cx, s, &scheme.name, jwt, &credential, mode).await {
                    Ok(verified) => jwt_identity(route, &scheme.name, jwt, verified),
                    Err(Need::Io) => return Err(Need::Io),
                    Err(Need::Err(e)) => Err(e),
                }
            }
            AuthKind::ApiKey(_) => match verify_api_key(cx, s, &credential, mode).await {
                Ok(record) => key_identity(route, &scheme.name, &record),
                Err(Need::Io) => return Err(Need::Io),
                Err(Need::Err(e)) => Err(e),
            },
        };
        match attempt {
            Ok(identity) => return Ok(identity),
            // A request that proved who it is but lacks a scope is refused as such.
            Err(e @ (GatewayError::InsufficientScope { .. } | GatewayError::AuthUnavailable)) => {
                return Err(e.into())
            }
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    Err(failure
        .unwrap_or(GatewayError::Unauthorized {
            reason: "credentials are required".into(),
            invalid_token: false,
        })
        .into())
}

/// Every credential the request presents to one of `schemes` (index, token or key), read
/// before any is verified; the refusal when one is malformed, sent twice, or when two differ.
/// Two different ones (an API key and a token, or keys in two schemes' places) would let the
/// gateway vouch for one identity while the upstream, reading the other, takes the request for
/// someone else's. `gatewayctl explain` reads them the same way.
pub fn presented_credentials(
    config: &Config,
    schemes: &[usize],
    header: &impl Fn(&str) -> Option<String>,
    query: Option<&str>,
) -> Result<Vec<(usize, String)>, GatewayError> {
    // `Authorization` is read only for a route that accepts a JWT: on an API-key route it is
    // the upstream's business, and a malformed one must not refuse a valid key.
    let accepts_jwt = schemes
        .iter()
        .any(|&i| matches!(config.auth[i].kind, AuthKind::Jwt(_)));
    let authorization = if accepts_jwt {
        header("authorization")
    } else {
        None
    };
    let bearer = credentials::bearer(authorization.as_deref()).map_err(credential_error)?;
    let mut presented: Vec<(usize, String)> = Vec::new();
    for &index in schemes {
        let credential = match &config.auth[index].kind {
            AuthKind::Jwt(jwt) => jwt_token(jwt, bearer, header, query)?,
            AuthKind::ApiKey(key_scheme) => api_key_value(key_scheme, header, query)?,
        };
        if let Some(credential) = credential {
            if presented.iter().any(|(_, c)| *c != credential) {
                return Err(GatewayError::BadRequest(
                    "credentials of more than one identity were sent",
                ));
            }
            presented.push((index, credential));
        }
    }
    Ok(presented)
}

fn jwt_identity(
    route: &Route,
    scheme_name: &str,
    jwt: &JwtScheme,
    verified: Rc<VerifiedToken>,
) -> Result<Identity, GatewayError> {
    if let Some(missing) = jwt::missing_scope(&verified.claims, &route.scopes) {
        return Err(GatewayError::InsufficientScope {
            missing: missing.to_owned(),
        });
    }
    let forward = jwt::forwarded_claims(&verified, jwt).map_err(|e| invalid(e.reason()))?;
    Ok(Identity {
        consumer: verified
            .subject
            .as_ref()
            .map(|sub| format!("jwt/{scheme_name}/{sub}")),
        scheme: scheme_name.to_owned(),
        claims: Some(verified),
        forward,
    })
}

fn key_identity(
    route: &Route,
    scheme_name: &str,
    record: &ApiKeyRecord,
) -> Result<Identity, GatewayError> {
    if let Some(missing) = route.scopes.iter().find(|s| !record.scopes.contains(s)) {
        return Err(GatewayError::InsufficientScope {
            missing: missing.clone(),
        });
    }
    Ok(Identity {
        consumer: Some(format!("key/{}", record.consumer)),
        scheme: scheme_name.to_owned(),
        claims: None,
        forward: Vec::new(),
    })
}

/// The token for a JWT scheme: from `Authorization: Bearer`, or the scheme's cookie or query
/// parameter. Two sources at once are refused: which one would count is ambiguous.
pub fn jwt_token(
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

/// The API key for a scheme; a header listing several keys is refused.
pub fn api_key_value(
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

async fn verify_jwt<P: Ports>(
    cx: &Ctx,
    s: Services<'_, P>,
    scheme_name: &str,
    scheme: &JwtScheme,
    token: &str,
    mode: Mode,
) -> Result<Rc<VerifiedToken>, Need> {
    let now_ms = cx.now_ms;
    let now_s = (now_ms / 1000.0) as i64;
    // Cached tokens and keys are scoped to the scheme in this configuration version: entries
    // of another version (other issuer, audiences or keys) never match.
    let scope = format!("{}/{scheme_name}", s.gateway.digest);
    if scheme.verified_cache_s > 0 {
        if let Some(hit) = s.state.auth.borrow_mut().tokens.get(&scope, token, now_s) {
            return Ok(hit);
        }
    }
    if mode == Mode::CachedOnly {
        return Err(Need::Io);
    }
    let keys = keys_for(s, &scope, scheme, now_ms, false).await?;
    let verified = match (jwt::verify(token, scheme, &keys, now_s), &scheme.jwks_url) {
        (Err(e), Some(_)) if e.is_unknown_key() => {
            // The identity provider may have rotated its keys: look again, within limits.
            let keys = keys_for(s, &scope, scheme, now_ms, true).await?;
            jwt::verify(token, scheme, &keys, now_s)
        }
        // Some providers rotate a key and keep its kid: a known kid whose signature fails may
        // be a new key. Looked for as an unknown kid is (at most once per interval), and the
        // signature checked again only if a new JWKS came, so a forgery costs one check.
        (Err(JwtError::BadSignature), Some(url)) => {
            let before = jwks::jwks_version(&s.state.auth.borrow(), url);
            let keys = keys_for(s, &scope, scheme, now_ms, true).await?;
            if jwks::jwks_version(&s.state.auth.borrow(), url) == before {
                Err(JwtError::BadSignature)
            } else {
                jwt::verify(token, scheme, &keys, now_s)
            }
        }
        (other, _) => other,
    }
    .map_err(|e: JwtError| invalid(e.reason()))?;
    let verified = Rc::new(verified);
    if scheme.verified_cache_s > 0 {
        s.state.auth.borrow_mut().tokens.insert(
            &scope,
            token,
            verified.clone(),
            now_s,
            scheme.verified_cache_s as i64,
        );
    }
    Ok(verified)
}

/// Every key the scheme may verify with: inline keys, the HMAC secret, and the JWKS.
async fn keys_for<P: Ports>(
    s: Services<'_, P>,
    scope: &str,
    scheme: &JwtScheme,
    now_ms: f64,
    force_refresh: bool,
) -> Result<Rc<Vec<VerifyingKey>>, GatewayError> {
    let mut keys = static_keys(s, scope, scheme);
    if let Some(url) = &scheme.jwks_url {
        match jwks_keys(s, url, scheme, now_ms, force_refresh).await {
            Ok(fetched) if keys.is_empty() => keys = fetched,
            Ok(fetched) => {
                let mut all: Vec<VerifyingKey> = keys.iter().cloned().collect();
                all.extend(fetched.iter().cloned());
                keys = Rc::new(all);
            }
            Err(cause) => {
                s.state.counters.add(Counter::JwksFailures);
                // The URL's query may hold a secret no `redact_query` names (a SAS `sig`):
                // it is named without it, also where the runtime's message repeats it.
                let shown = crate::observe::shown::shown_url(url);
                let cause = cause.replace(url.as_str(), &shown);
                s.ports.event(
                    Level::Error,
                    serde_json::json!({"event": "jwks_unavailable", "url": shown, "cause": cause}),
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
fn static_keys<P: Ports>(
    s: Services<'_, P>,
    scope: &str,
    scheme: &JwtScheme,
) -> Rc<Vec<VerifyingKey>> {
    if let Some(hit) = s.state.auth.borrow().static_keys.get(scope).cloned() {
        return hit;
    }
    let mut keys = jwk::keys_from_values(&scheme.keys, &scheme.algorithms);
    if let Some(name) = &scheme.secret {
        match s.ports.secret(name) {
            Some(secret) => {
                // A secret shorter than an algorithm's hash is not used with it: counted and
                // logged (its length, never its value).
                let weak = jwk::hmac_weaknesses(secret.len(), &scheme.algorithms);
                if !weak.is_empty() {
                    s.state.counters.add(Counter::WeakKeys);
                    s.ports.event(
                        Level::Error,
                        serde_json::json!({"event": "weak_secret_refused", "secret": name, "reasons": weak}),
                    );
                }
                keys.extend(jwk::hmac_keys(secret.as_bytes(), &scheme.algorithms))
            }
            None => s.ports.event(
                Level::Error,
                serde_json::json!({"event": "secret_missing", "secret": name}),
            ),
        }
    }
    let keys = Rc::new(keys);
    let mut auth = s.state.auth.borrow_mut();
    if auth.static_keys.len() > STATIC_KEYS_CAPACITY {
        auth.static_keys.clear();
    }
    auth.static_keys.insert(scope.to_owned(), keys.clone());
    keys
}
