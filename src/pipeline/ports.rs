//! What the platform provides to the pipeline, as small traits. The platform implements them
//! over the Workers runtime (`src/platform/`); [`super::fakes`] implements them in memory, with
//! failures on demand, for host tests. Asynchronous methods are `async fn`: the pipeline runs
//! on one thread, so no future needs to be `Send`.
#![allow(async_fn_in_trait)]

use super::ctx::CacheKeys;
use super::exchange::ExchangePlan;
use crate::ratelimit::{Grant, LeaseAsk, Limits};

/// A response the platform holds (the upstream's, a stored entry, one the gateway built),
/// opaque to the core except through these reads.
pub trait Responses {
    type Response;
    fn status(&self, response: &Self::Response) -> u16;
    /// The named header values of `response`, in order, read in one go.
    fn headers(&self, response: &Self::Response, names: &[&str]) -> Vec<Option<String>>;
    /// Drops a response the client will not get, cancelling its body.
    fn discard(&self, response: Self::Response);
    /// A body-less response the gateway answers itself (a CORS preflight's 204).
    fn reply(&self, status: u16, headers: &[(String, String)]) -> Result<Self::Response, String>;
}

/// The client's request headers (names are lower-case).
pub trait RequestHeaders {
    fn request_headers(&self, names: &[&str]) -> Vec<Option<String>>;
    fn request_header(&self, name: &str) -> Option<String> {
        self.request_headers(&[name]).pop().flatten()
    }
}

/// The platform's time, in milliseconds since the epoch. The core never reads a clock of its
/// own: every instant comes from here or from the request's start.
pub trait Clock {
    fn now_ms(&self) -> f64;
}

/// Reads from the configuration namespace (API-key records).
pub trait Kv {
    async fn kv_text(&self, key: &str) -> Result<Option<String>, String>;
}

/// Worker secrets by name.
pub trait Secrets {
    fn secret(&self, name: &str) -> Option<String>;
}

/// A small document fetched over HTTP (a JWKS).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub status: u16,
    pub cache_control: String,
    /// Where the document finally came from, after any redirects.
    pub url: String,
    pub body: String,
}

/// Fetching documents and sharing them through this location's cache.
pub trait Documents {
    /// Fails, without reading the rest, once the body exceeds `max_bytes`.
    async fn fetch_document(
        &self,
        url: &str,
        timeout_ms: f64,
        max_bytes: usize,
    ) -> Result<Document, String>;
    /// The body stored under `url` in this location's cache, `None` without one or once it
    /// exceeds `max_bytes` (the rest is never read: anyone on the zone can store a huge one).
    async fn cached_document(&self, url: &str, max_bytes: usize) -> Option<String>;
    /// Stores a document for other isolates of this location; failures are ignored.
    async fn store_document(&self, url: &str, body: &str, ttl_s: u64);
}

/// One bucket to ask for a lease (see `crate::ratelimit::lease`).
#[derive(Debug, Clone, PartialEq)]
pub struct Take {
    pub bucket: String,
    pub limits: Limits,
    pub ask: LeaseAsk,
}

/// Unspent extras of a lease, offered back to their bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct GiveBack {
    pub bucket: String,
    pub limits: Limits,
    pub tag: u64,
    pub unused: u64,
}

/// The rate-limit store: one exact owner per bucket.
pub trait Limiter {
    /// Asks every bucket at once; one answer per ask, in order. A failing bucket is an `Err`
    /// with a reason: what that means is the policy's decision, not the port's.
    async fn take(&self, asks: &[Take]) -> Vec<Result<Grant, String>>;
    /// Offers unspent extras back without waiting: an offer that fails loses them (fewer
    /// admissions, never more).
    fn give_back(&self, offers: &[GiveBack]);
}

/// Why an upstream exchange produced no response.
#[derive(Debug, Clone, PartialEq)]
pub enum ExchangeFailure {
    Timeout,
    /// The request body passed the limit while being sent.
    TooLarge,
    /// No connection, or the last attempt failed; the reason is for the log only.
    Unreachable(String),
    /// The upstream answered something that is not an HTTP response the gateway can relay
    /// (a status outside 200–599, an unsolicited 1xx or 101).
    InvalidResponse(String),
}

/// How an exchange went, attempt by attempt, as the executor reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExchangeReport {
    /// Target index and whether that attempt succeeded, in order.
    pub attempts: Vec<(usize, bool)>,
    pub upstream_ms: f64,
}

/// The upstream executor: carries out an [`ExchangePlan`] and reports one outcome.
pub trait Upstream: Responses {
    async fn exchange(
        &self,
        plan: &ExchangePlan,
    ) -> (Result<Self::Response, ExchangeFailure>, ExchangeReport);
}

/// How a stored entry is served to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Serve {
    /// The status it is served with: the upstream's, which the entry's bookkeeping records
    /// (the platform's cache stores every entry as a 200).
    pub status: u16,
    /// Answer `304 Not Modified` (no body, no representation headers).
    pub not_modified: bool,
    /// A HEAD request: no body.
    pub head_only: bool,
    /// Answer `206` with bytes `start..=end` of `length`.
    pub range: Option<(u64, u64, u64)>,
}

/// Facts of an entry in the isolate's hot tier, with the client's conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct HotEntry {
    /// The status the entry is served with.
    pub status: u16,
    /// The entry's bookkeeping (`crate::cache::entry::BOOKKEEPING`), read where it is found;
    /// `None` when it does not parse.
    pub meta: Option<crate::cache::entry::EntryMeta>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub until_ms: f64,
    /// The client's `If-None-Match` and `If-Modified-Since`, read in the same crossing.
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    /// The request has a `Range` (the hot tier does not answer it).
    pub has_range: bool,
    /// The request has a `Cache-Control` (the hot tier does not answer it on routes that honour
    /// request directives).
    pub has_cache_control: bool,
}

/// What a write to the cache checks once it has landed: the URL's guard
/// (`CacheKeys::guard`) and when the copy's response arrived. A change recorded there at or
/// after that time (an invalidation that another isolate of the location handled while this
/// copy was in flight, which this isolate's own bookkeeping cannot see) deletes the copy again.
/// The invalidation records the change before it deletes, so a write that lands after the
/// delete finds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guard<'a> {
    pub marker: &'a str,
    pub stored_at_ms: u64,
}

/// The response cache: the location's Cache API plus the isolate's hot tier. The core decides
/// what is stored, for how long and how it is served; the port only moves bytes.
pub trait ResponseCache: Responses {
    /// An entry of the hot tier, if one is held under `key`.
    fn hot_entry(&self, key: &str) -> Option<HotEntry>;
    /// The client's response from a hot entry, with `set` headers.
    fn hot_serve(
        &self,
        key: &str,
        remove: &[&str],
        set: &[(String, String)],
        not_modified: bool,
        head_only: bool,
    ) -> Result<Self::Response, String>;
    /// Keeps a copy of `entry`, served with `status`, in the hot tier until `until_ms` (in the
    /// background).
    fn hot_fill(
        &self,
        key: &str,
        marker: Option<&str>,
        entry: &Self::Response,
        status: u16,
        max_bytes: u64,
        until_ms: f64,
    );
    /// The stored entry under `key`, and the time the URL's `marker` says it changed.
    async fn lookup(
        &self,
        key: &str,
        marker: Option<&str>,
    ) -> (Option<Self::Response>, Option<u64>);
    /// The client's response from a stored entry (bookkeeping removed, served as `how` says),
    /// with `set` headers.
    fn serve_entry(
        &self,
        entry: Self::Response,
        remove: &[&str],
        set: &[(String, String)],
        how: Serve,
    ) -> Result<Self::Response, String>;
    /// `entry` updated by the 304 `from` (RFC 9111 §3.2): each header of `from` not in
    /// `exclude` replaces the entry's, then `remove` is dropped and `meta` set.
    fn update_entry(
        &self,
        entry: Self::Response,
        from: &Self::Response,
        exclude: &[&str],
        remove: &[&str],
        meta: &[(String, String)],
    ) -> Result<Self::Response, String>;
    /// Stores a copy of `response` (in the background), `remove` dropped and `meta` set. The
    /// copy is written only once its body is whole: it is abandoned past `max_bytes` or when its
    /// body fails or ends short, and so never replaces a good entry. An [`invalidate`] of `key`
    /// while the copy is in flight keeps it from staying written (it would bring back the
    /// answer from before the unsafe request); so for [`refresh`].
    ///
    /// Another isolate's invalidation is caught by `guard` once the write has landed.
    ///
    /// [`invalidate`]: ResponseCache::invalidate
    /// [`refresh`]: ResponseCache::refresh
    fn store(
        &self,
        key: &str,
        response: &Self::Response,
        remove: &[&str],
        meta: &[(String, String)],
        max_bytes: u64,
        guard: Guard<'_>,
    );
    /// Re-stores `entry`, already updated by a 304 (in the background), its body declared
    /// `length` bytes long when that is known: a body of undeclared length is written without
    /// its `Content-Length`, and ranges are served only from an entry of known length.
    fn refresh(&self, key: &str, entry: &Self::Response, length: Option<u64>, guard: Guard<'_>);
    /// The client's response from an upstream response: `remove` dropped, `set` added, 304
    /// when `not_modified`.
    fn finish(
        &self,
        response: Self::Response,
        set: &[(String, String)],
        not_modified: bool,
        remove: &[&str],
    ) -> Result<Self::Response, String>;
    /// Records the URL change at `at_ms` under the keys' guard (kept `marker_ttl_s`), then
    /// removes their entry, here and in the hot tier (with every hot entry kept under their
    /// marker, on a route with variants).
    async fn invalidate(&self, keys: &CacheKeys, at_ms: f64, marker_ttl_s: u64);
}

/// Severity of an operational event line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// Where the gateway's own output goes: event lines, the access log, metrics.
pub trait Events {
    /// An operational event (a failing store, a JWKS outage); the sink scrubs its strings of
    /// credentials before it writes it.
    fn event(&self, level: Level, line: serde_json::Value);
}

/// Everything the pipeline needs from the platform.
pub trait Ports:
    RequestHeaders + Clock + Kv + Secrets + Documents + Limiter + Upstream + ResponseCache + Events
{
}

impl<T> Ports for T where
    T: RequestHeaders
        + Clock
        + Kv
        + Secrets
        + Documents
        + Limiter
        + Upstream
        + ResponseCache
        + Events
{
}
