//! The gateway's response cache, as pure decisions: what may be stored, under which key, for how
//! long it is fresh, when a stale copy may still be served, how conditional requests are answered
//! and revalidations made, and what `Cache-Status` says. The platform edge owns the Cache API,
//! the clock and the bodies; it calls these functions with header values and Unix seconds.
//!
//! Only routes with a `cache` block are cached, and only for GET and HEAD (HEAD is answered from
//! the GET entry; the Cache API stores GET only).
//!
//! # Never cached
//!
//! [`rules::storable`] refuses, with a [`rules::NotStored`] reason for `Cache-Status`:
//! methods other than GET/HEAD; requests with `Cache-Control: no-store`; statuses other than
//! 200, 203, 204, 300, 301, 308, 404 and 410 (so never 206 or a 5xx); `no-store` and `private`
//! responses (field-qualified `private="…"` counts as `private`); any response with
//! `Set-Cookie` (never stripped to make it storable); `Vary: *`, or a `Vary` naming a request
//! header that is not in the key (`Accept-Encoding` excepted: the platform cache negotiates
//! content coding); responses to requests with credentials unless marked `public`, `s-maxage` or
//! `must-revalidate` (RFC 9111 §3.5) or the route is cached per consumer; bodies declared larger
//! than `max_body_bytes`; and responses that could never be used (no freshness, no validator, no
//! stale-if-error window).
//!
//! # The key
//!
//! [`key::cache_key_url`]: `https://cache.edge-gateway.invalid/v1/<generation>/<sha256>` over the
//! route id, host, canonical path, sorted query, the route's `vary` header values, the consumer
//! (per-consumer routes) and `settings.cache_generation`, which invalidates everything when
//! raised. See [`key`] for why headers outside the key cannot change a stored response.
//!
//! # Freshness
//!
//! [`freshness::freshness_lifetime_s`]: `no-cache` → 0 (stored, but always revalidated), else
//! `s-maxage`, else `max-age`, else `Expires − Date` (an invalid `Expires` is already expired),
//! else the route's `ttl_s`; never more than `ttl_s`. The age is the age at storage
//! ([`freshness::initial_age_s`]) plus the time since ([`freshness::current_age_s`]).
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
//! (`If-None-Match`, `If-Modified-Since`); a `304` refreshes it. Clients' own conditional requests
//! are answered from a stored 2xx response with [`conditional::not_modified`] (weak `ETag`
//! comparison; `If-Modified-Since` only without `If-None-Match`).
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
pub use key::{cache_key_url, CacheKeyInput};
pub use rules::{storable, NotStored, RequestFacts, ResponseFacts};
pub use status::{cache_status, CacheOutcome};

#[cfg(test)]
mod tests;
