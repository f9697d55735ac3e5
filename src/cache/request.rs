//! The client's own `Cache-Control` (RFC 9111 §5.2.1), obeyed only on routes with
//! `honor_request_directives: true`. Edge caches usually ignore these directives, so that a
//! client cannot make every request a miss; `no-store` (the request's response is not stored) is
//! obeyed on every route.

use super::control::{self, CacheControl};
use super::entry::{EntryMeta, Lookup};

/// What the client asked of the cache.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestDirectives {
    /// Accept nothing older than this (seconds).
    pub max_age: Option<u64>,
    /// Accept only a response fresh for at least this much longer.
    pub min_fresh: Option<u64>,
    /// Accept a response stale by at most this much ([`control::DELTA_SECONDS_MAX`]: any).
    pub max_stale: Option<u64>,
    /// Revalidate even a fresh response.
    pub no_cache: bool,
    /// Answer from the cache or with 504, never from the upstream.
    pub only_if_cached: bool,
}

impl RequestDirectives {
    /// Reads a request's `Cache-Control` (the same tolerant parser as for responses; `Pragma`
    /// is not read).
    pub fn parse(value: Option<&str>) -> RequestDirectives {
        let cc: CacheControl = control::parse(value);
        RequestDirectives {
            max_age: cc.max_age,
            min_fresh: cc.min_fresh,
            max_stale: cc.max_stale,
            no_cache: cc.no_cache,
            only_if_cached: cc.only_if_cached,
        }
    }
}

/// How a lookup reads once the client's directives are applied (RFC 9111 §4.2, §5.2.1):
///
/// - `no-cache`, an age above `max-age`, or less than `min-fresh` of freshness left make a fresh
///   entry one that must be revalidated (still servable if the upstream then fails, since it is
///   fresh), and forbid serving a stale one while revalidating;
/// - `max-stale[=N]` makes an entry stale by at most `N` seconds usable as it is, unless the
///   upstream forbade serving it stale (`must-revalidate`, `proxy-revalidate`, `no-cache`,
///   `s-maxage`) — and unless one of the rules above applies.
pub fn apply(lookup: Lookup, meta: &EntryMeta, d: &RequestDirectives) -> Lookup {
    let (age_s, ttl_s) = match lookup {
        Lookup::Invalidated => return lookup,
        Lookup::Fresh { age_s, ttl_s } | Lookup::Stale { age_s, ttl_s, .. } => (age_s, ttl_s),
    };
    let too_old = d.max_age.is_some_and(|m| age_s > m);
    let too_close = d
        .min_fresh
        .is_some_and(|m| ttl_s < i64::try_from(m).unwrap_or(i64::MAX));
    if d.no_cache || too_old || too_close {
        return match lookup {
            Lookup::Fresh { .. } => Lookup::Stale {
                age_s,
                ttl_s,
                serve_on_error: true,
                serve_while_revalidating: false,
            },
            Lookup::Stale { serve_on_error, .. } => Lookup::Stale {
                age_s,
                ttl_s,
                serve_on_error,
                serve_while_revalidating: false,
            },
            Lookup::Invalidated => Lookup::Invalidated,
        };
    }
    if let (Lookup::Stale { .. }, Some(max_stale)) = (lookup, d.max_stale) {
        let staleness = age_s.saturating_sub(meta.lifetime_s);
        if !meta.forbids_stale && staleness <= max_stale {
            return Lookup::Fresh { age_s, ttl_s };
        }
    }
    lookup
}

/// Whether a lookup (after [`apply`]) lets the gateway answer without waiting for the upstream.
pub fn answerable_from_cache(lookup: &Lookup) -> bool {
    matches!(
        lookup,
        Lookup::Fresh { .. }
            | Lookup::Stale {
                serve_while_revalidating: true,
                ..
            }
    )
}
