//! A stored cache entry's own bookkeeping, and what a lookup finds.
//!
//! The Cache API keeps a response and honours only its `Cache-Control: max-age`; the gateway
//! needs more (when the response was stored, the age it had then, its freshness lifetime, its
//! stale-if-error window, the upstream's own `Cache-Control`), so it writes these as headers of
//! the stored copy and removes them whenever the copy is served.

/// When the entry was stored (Unix milliseconds).
pub const STORED_AT: &str = "x-edge-gateway-stored-at";
/// The age the response had when it was stored (seconds).
pub const INITIAL_AGE: &str = "x-edge-gateway-initial-age";
/// The freshness lifetime (seconds).
pub const LIFETIME: &str = "x-edge-gateway-lifetime";
/// How long past its freshness the entry may be served when the upstream fails (seconds).
pub const STALE_IF_ERROR: &str = "x-edge-gateway-stale-if-error";
/// The upstream's `Cache-Control`, restored when the entry is served (the stored copy carries
/// the gateway's own, for the Cache API).
pub const ORIGINAL_CACHE_CONTROL: &str = "x-edge-gateway-cache-control";

/// The upstream's status. Every entry is stored as a 200, because the platform's cache keeps
/// only some statuses (workerd drops a 204, a 400 or a 500 silently); it is served with this one.
pub const STATUS: &str = "x-edge-gateway-status";
/// How long past its freshness the entry may be served while it is refreshed (seconds).
pub const STALE_WHILE_REVALIDATE: &str = "x-edge-gateway-stale-while-revalidate";
/// `1` when the upstream forbade serving the entry stale without revalidation
/// (`must-revalidate`, `proxy-revalidate`, `no-cache`, `s-maxage`): a client's `max-stale`
/// cannot override it.
pub const FORBIDS_STALE: &str = "x-edge-gateway-forbids-stale";
/// The upstream's targeted fields (RFC 9213), kept for revalidation but never served: the
/// gateway is their addressee. Same order as `crate::cache::targeted::TARGET_LIST`.
pub const TARGETED: [&str; 2] = [
    "x-edge-gateway-cloudflare-cdn-cache-control",
    "x-edge-gateway-cdn-cache-control",
];

/// The upstream's `Content-Encoding`, restored when the entry is served. The stored copy has
/// none: its body is the decoded bytes the runtime read, and a copy labelled with a coding
/// would be encoded by the Cache API when written and again by the runtime when served (a
/// hit's body then came out gzip inside gzip, or gzip bytes unlabelled for a client without
/// gzip). Served with the label, the runtime encodes it once, as it does a miss.
pub const CONTENT_ENCODING: &str = "x-edge-gateway-content-encoding";

/// Every bookkeeping header, in the order the platform reports them; none of them ever reaches
/// a client, and an upstream cannot set them (they are removed from its responses before
/// storing).
pub const BOOKKEEPING: [&str; 11] = [
    STORED_AT,
    INITIAL_AGE,
    LIFETIME,
    STALE_IF_ERROR,
    ORIGINAL_CACHE_CONTROL,
    STATUS,
    STALE_WHILE_REVALIDATE,
    FORBIDS_STALE,
    TARGETED[0],
    TARGETED[1],
    CONTENT_ENCODING,
];

/// Representation headers a 304 does not carry (RFC 9110 §15.4.5).
pub const NOT_IN_304: [&str; 6] = [
    "content-length",
    "content-type",
    "content-encoding",
    "content-language",
    "content-range",
    "transfer-encoding",
];

/// Response headers that describe one exchange rather than the stored representation: never
/// stored. (`traceparent` names the trace of the request that filled the entry.)
pub const PER_EXCHANGE: [&str; 5] = [
    "age",
    "cache-status",
    "ratelimit",
    "ratelimit-policy",
    "traceparent",
];

/// Headers a `304` never replaces in the stored response (RFC 9111 §3.2): the framing of the
/// stored body, hop-by-hop fields, what describes one exchange, and `Set-Cookie` (never
/// stored). `Cache-Control` and the targeted fields are merged into the entry's bookkeeping
/// instead of copied.
pub const NOT_UPDATED_BY_304: [&str; 19] = [
    "content-length",
    "content-encoding",
    "content-range",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "set-cookie",
    "age",
    "cache-status",
    "ratelimit",
    "ratelimit-policy",
    "traceparent",
    "cache-control",
    "cdn-cache-control",
    "cloudflare-cdn-cache-control",
];

/// Request headers removed before a GET or HEAD on a cached route goes upstream: the gateway
/// wants a whole response it can store, and answers the client's conditions itself.
pub const CLIENT_CONDITIONS: [&str; 6] = [
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
    "if-range",
    "range",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EntryMeta {
    pub stored_at_ms: u64,
    pub initial_age_s: u64,
    pub lifetime_s: u64,
    pub stale_if_error_s: u64,
    pub stale_while_revalidate_s: u64,
    pub forbids_stale: bool,
}

impl EntryMeta {
    /// Reads the values of [`BOOKKEEPING`], in its order; `None` when a required one is missing
    /// or malformed (the entry is then treated as absent). The stale-while-revalidate window and
    /// the forbids-stale flag default to none.
    pub fn from_bookkeeping<S: AsRef<str>>(values: &[Option<S>]) -> Option<EntryMeta> {
        let get = |name: &str| {
            let i = BOOKKEEPING.iter().position(|n| *n == name)?;
            values.get(i).and_then(|v| v.as_ref()).map(AsRef::as_ref)
        };
        let mut meta = EntryMeta::parse(
            get(STORED_AT)?,
            get(INITIAL_AGE)?,
            get(LIFETIME)?,
            get(STALE_IF_ERROR)?,
        )?;
        if let Some(swr) = get(STALE_WHILE_REVALIDATE) {
            meta.stale_while_revalidate_s = swr.parse().ok()?;
        }
        meta.forbids_stale = get(FORBIDS_STALE) == Some("1");
        Some(meta)
    }

    /// Reads the bookkeeping headers; `None` when any is missing or malformed (the entry is
    /// then treated as absent).
    pub fn parse(
        stored_at: &str,
        initial_age: &str,
        lifetime: &str,
        stale_if_error: &str,
    ) -> Option<EntryMeta> {
        Some(EntryMeta {
            stored_at_ms: stored_at.parse().ok()?,
            initial_age_s: initial_age.parse().ok()?,
            lifetime_s: lifetime.parse().ok()?,
            stale_if_error_s: stale_if_error.parse().ok()?,
            ..EntryMeta::default()
        })
    }

    /// The headers that record this entry, and the `Cache-Control` that makes the Cache API
    /// keep it for `retention_s`.
    pub fn headers(
        &self,
        original_cache_control: Option<&str>,
        retention_s: u64,
    ) -> Vec<(&'static str, String)> {
        let mut out = vec![
            (STORED_AT, self.stored_at_ms.to_string()),
            (INITIAL_AGE, self.initial_age_s.to_string()),
            (LIFETIME, self.lifetime_s.to_string()),
            (STALE_IF_ERROR, self.stale_if_error_s.to_string()),
            (
                STALE_WHILE_REVALIDATE,
                self.stale_while_revalidate_s.to_string(),
            ),
            (FORBIDS_STALE, u8::from(self.forbids_stale).to_string()),
            ("cache-control", format!("max-age={}", retention_s.max(1))),
        ];
        if let Some(cc) = original_cache_control {
            out.push((ORIGINAL_CACHE_CONTROL, cc.to_owned()));
        }
        out
    }

    /// The bookkeeping as the route's configuration in force bounds it: a lifetime of at most
    /// `ttl_s`, a stale-if-error window of at most `stale_if_error_s`, and a
    /// stale-while-revalidate window of at most the longer of `ttl_s` and
    /// `stale_while_revalidate_s` (the largest either source of that window can give). An
    /// entry stored under a configuration that allowed more is served by the one in force.
    pub fn within(self, spec: &crate::config::CacheSpec) -> EntryMeta {
        EntryMeta {
            lifetime_s: self.lifetime_s.min(spec.ttl_s),
            stale_if_error_s: self.stale_if_error_s.min(spec.stale_if_error_s),
            stale_while_revalidate_s: self
                .stale_while_revalidate_s
                .min(spec.ttl_s.max(spec.stale_while_revalidate_s)),
            ..self
        }
    }

    /// The entry's current age in whole seconds (never negative).
    pub fn age_s(&self, now_ms: u64) -> u64 {
        self.initial_age_s
            .saturating_add(now_ms.saturating_sub(self.stored_at_ms) / 1000)
    }
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Serve it.
    Fresh { age_s: u64, ttl_s: i64 },
    /// Ask the upstream (conditionally, when the entry has a validator); if the upstream fails
    /// and `serve_on_error`, serve it anyway.
    Stale {
        age_s: u64,
        ttl_s: i64,
        serve_on_error: bool,
        /// Within the stale-while-revalidate window: serve it now and refresh it in the
        /// background.
        serve_while_revalidating: bool,
    },
    /// The URL was invalidated after the entry was stored: as good as absent.
    Invalidated,
}

/// Classifies an entry at `now_ms`. `invalidated_at_ms` is the URL's latest invalidation (an
/// unsafe request or a purge), if any.
pub fn lookup(meta: &EntryMeta, now_ms: u64, invalidated_at_ms: Option<u64>) -> Lookup {
    if invalidated_at_ms.is_some_and(|at| at >= meta.stored_at_ms) {
        return Lookup::Invalidated;
    }
    let age_s = meta.age_s(now_ms);
    let ttl_s = super::ttl_remaining_s(meta.lifetime_s, age_s);
    let serve_while_revalidating = age_s
        < meta
            .lifetime_s
            .saturating_add(meta.stale_while_revalidate_s);
    match super::classify(meta.lifetime_s, age_s, meta.stale_if_error_s) {
        super::Freshness::Fresh => Lookup::Fresh { age_s, ttl_s },
        super::Freshness::StaleServeOnError => Lookup::Stale {
            age_s,
            ttl_s,
            serve_on_error: true,
            serve_while_revalidating,
        },
        super::Freshness::Stale => Lookup::Stale {
            age_s,
            ttl_s,
            serve_on_error: false,
            serve_while_revalidating,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: EntryMeta = EntryMeta {
        stored_at_ms: 1_000_000,
        initial_age_s: 5,
        lifetime_s: 60,
        stale_if_error_s: 30,
        stale_while_revalidate_s: 0,
        forbids_stale: false,
    };

    #[test]
    fn headers_round_trip() {
        let h = META.headers(Some("public, max-age=60"), 95);
        let get = |n: &str| {
            h.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.as_str())
                .unwrap()
        };
        assert_eq!(
            EntryMeta::parse(
                get(STORED_AT),
                get(INITIAL_AGE),
                get(LIFETIME),
                get(STALE_IF_ERROR)
            ),
            Some(META)
        );
        assert_eq!(get("cache-control"), "max-age=95");
        assert_eq!(get(ORIGINAL_CACHE_CONTROL), "public, max-age=60");
        assert_eq!(EntryMeta::parse("x", "1", "1", "1"), None);
        assert_eq!(EntryMeta::parse("1", "-1", "1", "1"), None);
    }

    #[test]
    fn ages_count_from_storage_plus_the_initial_age() {
        assert_eq!(META.age_s(1_000_000), 5);
        assert_eq!(META.age_s(1_009_999), 14);
        assert_eq!(
            META.age_s(999_000),
            5,
            "a clock going backwards never makes it younger"
        );
    }

    #[test]
    fn lookups_classify_fresh_stale_and_invalidated() {
        // age 5 at storage + 54 s = 59 < 60: fresh
        assert_eq!(META.age_s(1_054_000), 59);
        assert_eq!(
            lookup(&META, 1_054_000, None),
            Lookup::Fresh {
                age_s: 59,
                ttl_s: 1
            }
        );
        assert_eq!(
            lookup(&META, 1_055_000, None),
            Lookup::Stale {
                age_s: 60,
                ttl_s: 0,
                serve_on_error: true,
                serve_while_revalidating: false
            }
        );
        assert_eq!(
            lookup(&META, 1_084_999, None),
            Lookup::Stale {
                age_s: 89,
                ttl_s: -29,
                serve_on_error: true,
                serve_while_revalidating: false
            }
        );
        assert_eq!(
            lookup(&META, 1_085_000, None),
            Lookup::Stale {
                age_s: 90,
                ttl_s: -30,
                serve_on_error: false,
                serve_while_revalidating: false
            }
        );
        assert_eq!(
            lookup(&META, 1_001_000, Some(1_000_000)),
            Lookup::Invalidated
        );
        assert_eq!(
            lookup(&META, 1_001_000, Some(999_999)),
            Lookup::Fresh {
                age_s: 6,
                ttl_s: 54
            }
        );
    }
}
