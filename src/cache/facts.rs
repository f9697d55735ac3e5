//! What the cache rules read of a request and its response: a leaf that both the storability
//! and the freshness rules depend on.

use super::control::{self, CacheControl};
use super::targeted;

/// Statuses RFC 9110 §15.1 marks heuristically cacheable, minus 206: the gateway always asks the
/// upstream for whole responses and answers ranges itself from a stored 200 (the platform's
/// cache refuses partial content).
pub const HEURISTIC_STATUSES: [u16; 11] = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501];

/// Whether the gateway gives `status` heuristic freshness: a heuristically cacheable status
/// that is not a 5xx (a 501 needs explicit freshness).
pub fn heuristic_status(status: u16) -> bool {
    HEURISTIC_STATUSES.contains(&status) && status < 500
}

/// What the storability decision needs to know about an upstream response. Header values are the
/// raw field values (several lines joined with `,`, as `Headers.get` returns them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseFacts<'a> {
    pub status: u16,
    pub cache_control: Option<&'a str>,
    pub expires: Option<&'a str>,
    /// The upstream's `Date`. When the upstream sent none, the platform supplies the time it
    /// received the response (RFC 9110 §6.6.1 requires a recipient with a clock to add one);
    /// without any `Date`, an `Expires` cannot be related to anything and reads as "expired".
    pub date: Option<&'a str>,
    pub has_set_cookie: bool,
    pub vary: Option<&'a str>,
    pub content_length: Option<u64>,
    pub has_etag: bool,
    pub has_last_modified: bool,
    /// `Cloudflare-CDN-Cache-Control` and `CDN-Cache-Control` (RFC 9213), in that order.
    pub targeted: [Option<&'a str>; 2],
}

/// The directives that decide for the gateway, and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub control: CacheControl,
    /// The index in [`targeted::TARGET_LIST`] of the targeted field that decided, if one did;
    /// then `Expires` is ignored too.
    pub targeted: Option<usize>,
}

impl ResponseFacts<'_> {
    /// The directives that decide the gateway's storability and freshness: the first valid
    /// targeted field, else `Cache-Control` (see [`targeted`]).
    pub fn policy(&self) -> Policy {
        match targeted::select(self.targeted) {
            Some((i, control)) => Policy {
                control,
                targeted: Some(i),
            },
            None => Policy {
                control: control::parse(self.cache_control),
                targeted: None,
            },
        }
    }

    /// The effective directives (see [`ResponseFacts::policy`]).
    pub fn control(&self) -> CacheControl {
        self.policy().control
    }

    /// `Expires`, unless a targeted field decides (RFC 9213 §2.1 ignores it then).
    pub fn effective_expires(&self, policy: &Policy) -> Option<&str> {
        if policy.targeted.is_some() {
            None
        } else {
            self.expires
        }
    }

    /// The response carries a validator, so a stale copy can be revalidated.
    pub fn has_validator(&self) -> bool {
        self.has_etag || self.has_last_modified
    }

    /// The upstream stated a freshness lifetime (`s-maxage`, `max-age`, `Expires`, in the
    /// deciding field), as opposed to leaving it to the cache's heuristic.
    pub fn has_explicit_freshness(&self) -> bool {
        let p = self.policy();
        p.control.s_maxage.is_some()
            || p.control.max_age.is_some()
            || self.effective_expires(&p).is_some()
    }
}

/// What the storability decision needs to know about the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestFacts {
    pub method_is_get_or_head: bool,
    /// An `Authorization` header or an API key was presented.
    pub has_authorization: bool,
    /// The request's `Cache-Control` has `no-store`.
    pub request_no_store: bool,
}
