//! The `Cache-Status` response header (RFC 9211).
//!
//! One list member, named [`CACHE_NAME`], with RFC 9211's parameters in the order the RFC defines
//! them: `hit`, `fwd`, `fwd-status`, `ttl`, `stored`, `collapsed`, `key`, `detail`. The gateway
//! never collapses requests (`collapsed`) and does not disclose keys (`key`), so those two are
//! never emitted. `detail` is always an sf-string.

/// The cache's name in `Cache-Status`.
pub const CACHE_NAME: &str = "edge-gateway";

/// The largest magnitude of a Structured Fields integer (RFC 8941 §3.3.1: at most 15 digits).
const SF_INTEGER_MAX: i64 = 999_999_999_999_999;

/// What the cache did for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Served a fresh stored response without contacting the upstream:
    /// `edge-gateway; hit; ttl=42`.
    Hit,
    /// Nothing usable was stored; the request went upstream. `stored` says whether the response
    /// was then stored, `reason` why not ([`super::rules::NotStored::reason`]):
    /// `edge-gateway; fwd=miss; stored` or `edge-gateway; fwd=miss; detail="private"`.
    Miss {
        stored: bool,
        reason: Option<&'static str>,
    },
    /// A stale stored response within its stale-while-revalidate window was served at once
    /// while it is refreshed in the background:
    /// `edge-gateway; hit; ttl=-3; detail="stale-while-revalidate"`.
    StaleWhileRevalidate,
    /// A stale stored response was served because revalidating or refetching it failed
    /// (`served_because`, e.g. `"upstream-error"`, `"timeout"`):
    /// `edge-gateway; fwd=stale; ttl=-30; detail="upstream-error"`.
    Stale { served_because: &'static str },
    /// A stale stored response was revalidated with the upstream (`304`) and served; `stored`
    /// says whether the refreshed entry was written back:
    /// `edge-gateway; fwd=stale; fwd-status=304; ttl=60; stored`. A revalidation answered with a
    /// new full response is reported as a [`CacheOutcome::Miss`].
    Revalidated { stored: bool },
    /// The cache was not consulted (e.g. `"method"`, `"request-no-store"`):
    /// `edge-gateway; fwd=bypass; detail="method"`.
    Bypass(&'static str),
}

/// The `Cache-Status` value for `outcome`. `ttl_remaining_s` (see
/// [`super::freshness::ttl_remaining_s`], negative when stale) is emitted when there is a stored
/// response it describes: on a hit, a stale or revalidated response, and a miss that was stored;
/// it is ignored for a bypass and for a miss that stored nothing.
pub fn cache_status(outcome: &CacheOutcome, ttl_remaining_s: Option<i64>) -> String {
    let mut out = String::from(CACHE_NAME);
    let (ttl, stored, detail) = match *outcome {
        CacheOutcome::Hit => {
            out.push_str("; hit");
            (ttl_remaining_s, false, None)
        }
        CacheOutcome::StaleWhileRevalidate => {
            out.push_str("; hit");
            (ttl_remaining_s, false, Some("stale-while-revalidate"))
        }
        CacheOutcome::Miss { stored, reason } => {
            out.push_str("; fwd=miss");
            (ttl_remaining_s.filter(|_| stored), stored, reason)
        }
        CacheOutcome::Stale { served_because } => {
            out.push_str("; fwd=stale");
            (ttl_remaining_s, false, Some(served_because))
        }
        CacheOutcome::Revalidated { stored } => {
            out.push_str("; fwd=stale; fwd-status=304");
            (ttl_remaining_s, stored, None)
        }
        CacheOutcome::Bypass(why) => {
            out.push_str("; fwd=bypass");
            (None, false, Some(why))
        }
    };
    if let Some(ttl) = ttl {
        out.push_str("; ttl=");
        out.push_str(&ttl.clamp(-SF_INTEGER_MAX, SF_INTEGER_MAX).to_string());
    }
    if stored {
        out.push_str("; stored");
    }
    if let Some(detail) = detail {
        out.push_str("; detail=");
        push_sf_string(&mut out, detail);
    }
    out
}

/// Appends `s` as a Structured Fields string (RFC 8941 §3.3.3): printable ASCII, with `"` and `\`
/// escaped; any other character is replaced by `?` so the header stays valid.
fn push_sf_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
}
