//! What the cache rules read of a request and its response: a leaf that both the storability
//! and the freshness rules depend on.

use super::control::{self, CacheControl};

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
}

impl ResponseFacts<'_> {
    /// The parsed `Cache-Control` of the response.
    pub fn control(&self) -> CacheControl {
        control::parse(self.cache_control)
    }

    /// The response carries a validator, so a stale copy can be revalidated.
    pub fn has_validator(&self) -> bool {
        self.has_etag || self.has_last_modified
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
