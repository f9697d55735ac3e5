//! Whether a response may be stored by the gateway's shared cache (RFC 9111 §3, plus the
//! gateway's own rules).

use std::borrow::Cow;
use std::fmt;

use super::control::split_list;
pub use super::facts::{RequestFacts, ResponseFacts};
use super::freshness;
use crate::config::CacheSpec;

/// Why a response was not stored. The rules are checked in the order listed at
/// [`storable`]; the first that applies is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotStored {
    /// The request method is neither GET nor HEAD.
    Method,
    /// The status is not one the gateway caches (see [`status_storable`]).
    Status(u16),
    /// The response has `Cache-Control: no-store`.
    NoStore,
    /// The response has an unqualified `Cache-Control: private`.
    Private,
    /// The response sets a cookie.
    SetCookie,
    /// The response has `Vary: *`.
    VaryStar,
    /// The response varies on this request header (lower-case), which is not part of the key.
    VaryNotKeyed(String),
    /// The request carried credentials and the response does not allow a shared cache to reuse
    /// it (RFC 9111 §3.5), and the route is not cached per consumer.
    Authorization,
    /// `Content-Length` exceeds the route's `max_body_bytes`.
    TooLarge,
    /// The request has `Cache-Control: no-store`.
    RequestNoStore,
    /// The response could never be served from the cache: no freshness, no validator, and no
    /// stale-if-error window.
    ZeroLifetime,
}

impl NotStored {
    /// A short token for the `detail` parameter of `Cache-Status` and for logs. It never contains
    /// data from the request or the response.
    pub fn reason(&self) -> &'static str {
        match self {
            NotStored::Method => "method",
            NotStored::Status(_) => "status",
            NotStored::NoStore => "no-store",
            NotStored::Private => "private",
            NotStored::SetCookie => "set-cookie",
            NotStored::VaryStar => "vary-star",
            NotStored::VaryNotKeyed(_) => "vary-not-keyed",
            NotStored::Authorization => "authorization",
            NotStored::TooLarge => "too-large",
            NotStored::RequestNoStore => "request-no-store",
            NotStored::ZeroLifetime => "zero-lifetime",
        }
    }
}

impl fmt::Display for NotStored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotStored::Status(s) => write!(f, "{} {s}", self.reason()),
            NotStored::VaryNotKeyed(h) => write!(f, "{} {h}", self.reason()),
            _ => f.write_str(self.reason()),
        }
    }
}

pub use super::facts::HEURISTIC_STATUSES;

/// Whether the gateway may store a response with `status`: a heuristically cacheable one
/// ([`HEURISTIC_STATUSES`]) below 500, or any other final status when the response states its
/// freshness explicitly (`explicit`: `max-age`, `s-maxage`, `Expires` or a targeted field's
/// lifetime). A 5xx (501 included) is stored only with explicit freshness. Never 206 (the gateway
/// serves ranges from a stored 200 itself), 304 (an answer to a condition the gateway did not
/// send), 1xx or anything outside 200–599.
pub fn status_storable(status: u16, explicit: bool) -> bool {
    if !(200..=599).contains(&status) || status == 206 || status == 304 {
        return false;
    }
    super::facts::heuristic_status(status) || explicit
}

/// A response to a request may `Vary` on this header although it is not in the key: the platform
/// cache negotiates content coding itself (Cloudflare's cache honours `Vary: Accept-Encoding`
/// and re-encodes or decodes per client), so a stored body is never sent to a client in a coding
/// it did not accept.
pub const VARY_HANDLED_BY_PLATFORM: &str = "accept-encoding";

/// Decides whether the gateway may store `resp`, the answer to a request described by `req`, on a
/// route cached as `spec`.
///
/// `keyed_vary` lists the (lower-case) request headers that are part of the cache key, and
/// `per_consumer` says whether the authenticated consumer is part of the key. Rules, in order:
///
/// 1. only GET and HEAD ([`NotStored::Method`]);
/// 2. not when the request says `no-store` ([`NotStored::RequestNoStore`]);
/// 3. only statuses [`status_storable`] accepts ([`NotStored::Status`]);
/// 4. not with `no-store` ([`NotStored::NoStore`]) or unqualified `private`
///    ([`NotStored::Private`]) — also not on a per-consumer route: the gateway is still a shared
///    cache, and a consumer identity (an API key) may be shared by many people. A qualified
///    `private="f"` or `no-cache="f"` is stored without the named fields;
/// 5. never with `Set-Cookie` ([`NotStored::SetCookie`]), unless the upstream named it in a
///    qualified `private`/`no-cache` (then it is stripped from the stored copy, as the upstream
///    asked); the gateway never strips it on its own to make a response storable;
/// 6. not with `Vary: *` ([`NotStored::VaryStar`]), and every header named in `Vary` must be in
///    `keyed_vary` ([`NotStored::VaryNotKeyed`]), except [`VARY_HANDLED_BY_PLATFORM`];
/// 7. when credentials were presented, only if the response has `public`, `s-maxage` or
///    `must-revalidate` (RFC 9111 §3.5), unless `per_consumer` ([`NotStored::Authorization`]);
/// 8. a known `Content-Length` must not exceed `spec.max_body_bytes` ([`NotStored::TooLarge`]);
///    an unknown length is allowed, and the platform bounds the body while streaming it;
/// 9. the stored copy must be usable at some point: a positive freshness lifetime, a validator
///    (`ETag`/`Last-Modified`) to revalidate with, a stale-while-revalidate or stale-if-error window
///    ([`NotStored::ZeroLifetime`]).
pub fn storable(
    req: &RequestFacts,
    resp: &ResponseFacts,
    spec: &CacheSpec,
    keyed_vary: &[String],
    per_consumer: bool,
) -> Result<(), NotStored> {
    if !req.method_is_get_or_head {
        return Err(NotStored::Method);
    }
    if req.request_no_store {
        return Err(NotStored::RequestNoStore);
    }
    if !status_storable(resp.status, resp.has_explicit_freshness()) {
        return Err(NotStored::Status(resp.status));
    }
    let cc = resp.control();
    if cc.no_store {
        return Err(NotStored::NoStore);
    }
    if cc.private {
        return Err(NotStored::Private);
    }
    if resp.has_set_cookie && !cc.stripped_fields().iter().any(|f| f == "set-cookie") {
        return Err(NotStored::SetCookie);
    }
    if let Some(vary) = resp.vary {
        check_vary(vary, keyed_vary)?;
    }
    if req.has_authorization
        && !per_consumer
        && !(cc.public || cc.s_maxage.is_some() || cc.must_revalidate)
    {
        return Err(NotStored::Authorization);
    }
    if resp.content_length.is_some_and(|n| n > spec.max_body_bytes) {
        return Err(NotStored::TooLarge);
    }
    let spec = &*applicable(req, resp, spec, per_consumer);
    if freshness::freshness_lifetime_s(resp, spec) == 0
        && !resp.has_validator()
        && freshness::stale_if_error_window_s(resp, spec) == 0
        && freshness::stale_while_revalidate_window_s(resp, spec) == 0
    {
        return Err(NotStored::ZeroLifetime);
    }
    Ok(())
}

/// The route's settings as they apply to storing `resp`: without the heuristic lifetime
/// (`default_ttl_s`) when the answer to a request with credentials is kept only because it
/// says `must-revalidate` (RFC 9111 §3.5) — not `public` or `s-maxage`, on a route that does
/// not key by consumer. That directive lets a shared cache keep a personal answer on the
/// condition that it is revalidated once stale; without an explicit lifetime it is stale at
/// once, and a heuristic one would serve it to every other client without asking.
pub fn applicable<'a>(
    req: &RequestFacts,
    resp: &ResponseFacts,
    spec: &'a CacheSpec,
    per_consumer: bool,
) -> Cow<'a, CacheSpec> {
    if spec.default_ttl_s == 0 || !req.has_authorization || per_consumer {
        return Cow::Borrowed(spec);
    }
    let cc = resp.control();
    if cc.public || cc.s_maxage.is_some() {
        return Cow::Borrowed(spec);
    }
    Cow::Owned(CacheSpec {
        default_ttl_s: 0,
        ..spec.clone()
    })
}

/// `Vary = #( "*" / field-name )`: a `*` member anywhere means "varies on everything".
fn check_vary(vary: &str, keyed_vary: &[String]) -> Result<(), NotStored> {
    let names: Vec<&str> = split_list(vary)
        .into_iter()
        .map(|n| n.trim_matches([' ', '\t']))
        .filter(|n| !n.is_empty())
        .collect();
    if names.contains(&"*") {
        return Err(NotStored::VaryStar);
    }
    for name in names {
        if name.eq_ignore_ascii_case(VARY_HANDLED_BY_PLATFORM) {
            continue;
        }
        if !keyed_vary.iter().any(|k| k.eq_ignore_ascii_case(name)) {
            return Err(NotStored::VaryNotKeyed(name.to_ascii_lowercase()));
        }
    }
    Ok(())
}
