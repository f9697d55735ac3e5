//! The gateway's response cache, as pure decisions: what may be stored, under which key, for how
//! long it is fresh, when a stale copy may still be served, how conditional requests are answered
//! and revalidations made, and what `Cache-Status` says. The platform edge owns the Cache API,
//! the clock and the bodies; it calls these functions with header values and Unix seconds.
//!
//! Only routes with a `cache` block are cached, and only for GET and HEAD (HEAD is answered from
//! the GET entry; the Cache API stores GET only).
//!
//! # Which directives decide
//!
//! [`targeted`]: the first valid `Cloudflare-CDN-Cache-Control` or `CDN-Cache-Control`
//! (RFC 9213) alone decides storability and freshness; otherwise `Cache-Control` ([`control`])
//! and `Expires`. The targeted fields never reach clients.
//!
//! # Never cached
//!
//! [`rules::storable`] refuses, with a [`rules::NotStored`] reason for `Cache-Status`:
//! methods other than GET/HEAD; requests with `Cache-Control: no-store`; statuses
//! [`rules::status_storable`] refuses (it accepts a heuristically cacheable status below 500,
//! and any final status with explicit freshness; never 206 or 304); `no-store` and unqualified `private`
//! responses (a qualified `private="f"`/`no-cache="f"` is stored without the named fields);
//! `Set-Cookie`, unless a qualified directive names it; `Vary: *`, or a `Vary` naming a request
//! header that is not in the key (`Accept-Encoding` excepted: the platform cache negotiates
//! content coding); responses to requests with credentials unless marked `public`, `s-maxage` or
//! `must-revalidate` (RFC 9111 §3.5) or the route is cached per consumer; bodies declared larger
//! than `max_body_bytes`; and responses that could never be used (no freshness, no validator, no
//! stale-while-revalidate or stale-if-error window).
//!
//! # The key
//!
//! [`key::cache_key_url`]: `https://cache.edge-gateway.invalid/v1/<generation>/<sha256>` over the
//! route id, host, canonical path, sorted query, the route's `vary` header values, the consumer
//! and its forwarded claims (per-consumer routes) and `settings.cache_generation`, which invalidates everything when
//! raised; an HMAC instead of the hash when the gateway holds its admin token, so that no other
//! code on the zone can name an entry. See [`key`] for why headers outside the key cannot change
//! a stored response.
//!
//! # Freshness
//!
//! [`freshness::freshness_lifetime_s`]: unqualified `no-cache` → 0 (stored, but always
//! revalidated), else `s-maxage`, else `max-age`, else `Expires − Date` (an invalid `Expires` is
//! already expired), else the route's `default_ttl_s` as the heuristic; never more than `ttl_s`.
//! The age is the age at storage ([`freshness::initial_age_s`]: the first member of `Age`) plus
//! the time since ([`freshness::current_age_s`]). A client's own directives apply only on routes
//! that honour them ([`request`]).
//!
//! # Stale-while-revalidate
//!
//! [`freshness::stale_while_revalidate_window_s`]: a stale entry within the window is served at
//! once and refreshed in the background (by the pipeline's cache stage).
//!
//! # Stale-if-error
//!
//! [`freshness::stale_if_error_window_s`]: a stale copy may be served, when the upstream fails,
//! for up to the route's `stale_if_error_s` past the end of its freshness. The upstream can only
//! shorten that: `stale-if-error=N` caps it at `N`; without it, `must-revalidate`,
//! `proxy-revalidate`, `no-cache` or `s-maxage` forbid serving stale (RFC 9111 §4.2.4).
//! [`freshness::classify`] turns lifetime, age and window into [`freshness::Freshness`].
//!
//! # Revalidation
//!
//! A stale entry with a validator is revalidated with [`conditional::revalidation_headers`]
//! (`If-None-Match`, `If-Modified-Since`); a `304` replaces its headers except
//! [`entry::NOT_UPDATED_BY_304`] and refreshes it. Clients' own conditional requests are answered
//! from a stored 2xx response with [`conditional::not_modified`] (weak `ETag` comparison;
//! `If-Modified-Since` only without `If-None-Match`), and their ranges with [`range::select`].
//!
//! # Cache-Status
//!
//! [`status::cache_status`] renders RFC 9211, e.g. `edge-gateway; hit; ttl=42`.

pub mod conditional;
pub mod control;
pub mod date;
pub mod entry;
pub mod facts;
pub mod freshness;
pub mod key;
pub mod named;
pub mod range;
pub mod request;
pub mod rules;
pub mod status;
pub mod targeted;

pub use conditional::{not_modified, preconditions_apply, revalidation_headers};
pub use control::CacheControl;
pub use date::{format_http_date, parse_http_date, parse_http_date_at};
pub use freshness::{
    age_header_s, classify, current_age_s, forbids_stale, freshness_lifetime_s,
    heuristic_lifetime_s, initial_age_s, retention_s, stale_if_error_window_s,
    stale_while_revalidate_window_s, ttl_remaining_s, Freshness,
};
pub use key::{cache_key_url, CacheKeyInput, KeySeal};
pub use rules::{storable, NotStored, RequestFacts, ResponseFacts};
pub use status::{cache_status, CacheOutcome};

/// The unsafe methods whose success invalidates a URL's stored responses (RFC 9111 §4.4; the
/// ones the cache stage forwards, RFC 9110 §9.2.1).
pub const INVALIDATING_METHODS: [&str; 4] = ["POST", "PUT", "PATCH", "DELETE"];

#[cfg(test)]
mod tests;
