//! The typed context a request's stages read and write.

use crate::auth::jwt::VerifiedToken;
use crate::forward::{HeaderEdits, Inbound, Routed, Trace};
pub use crate::observe::{CacheResult, RateLimitResult, Source, Variant};
use std::rc::Rc;

/// The request facts read once at the entry, owned so that an asynchronous continuation can
/// keep them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    pub method: String,
    pub scheme: String,
    pub host: String,
    pub path: String,
    pub query: Option<String>,
    pub client_ip: Option<String>,
    pub content_length: Option<String>,
    pub transfer_encoding: Option<String>,
    pub connection: Option<String>,
    pub request_id: Option<String>,
    pub traceparent: Option<String>,
    /// See [`Inbound::preflight`]; read only for `OPTIONS` requests.
    pub preflight: Option<String>,
    /// Values of the headers `match` conditions read ([`crate::gateway::Gateway::match_headers`]).
    pub match_headers: Vec<Option<String>>,
}

impl Request {
    /// The borrowed view the routing core reads.
    pub fn inbound(&self) -> Inbound<'_> {
        Inbound {
            method: &self.method,
            scheme: &self.scheme,
            host: &self.host,
            path: &self.path,
            query: self.query.as_deref(),
            client_ip: self.client_ip.as_deref(),
            content_length: self.content_length.as_deref(),
            transfer_encoding: self.transfer_encoding.as_deref(),
            connection: self.connection.as_deref(),
            request_id: self.request_id.as_deref(),
            traceparent: self.traceparent.as_deref(),
            preflight: self.preflight.as_deref(),
            match_headers: &self.match_headers,
        }
    }
}

/// Who the request is, once authenticated.
#[derive(Debug, Default, Clone)]
pub struct Identity {
    /// `jwt/<scheme>/<sub>` or `key/<consumer>`: namespaced, so a subject of one issuer can
    /// never be taken for another's, nor for an API key's consumer.
    pub consumer: Option<String>,
    /// The scheme that accepted the credentials.
    pub scheme: String,
    /// The verified token's claims, for `claim:<name>` rate-limit keys.
    pub claims: Option<Rc<VerifiedToken>>,
    /// Request headers carrying the verified identity upstream (`forward_claims`).
    pub forward: Vec<(String, String)>,
}

/// The keys of one request in the response cache: its entry, and the URL's invalidation marker
/// when the route keys variants (vary headers, consumer) that one delete could not reach.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheKeys {
    pub entry: String,
    pub marker: Option<String>,
    /// Until when the isolate's hot tier held this entry when the request looked (`None`: it
    /// did not). A request the hot tier may not answer (a `Range`, an honoured `Cache-Control`)
    /// then leaves that copy as it is instead of copying the entry in again.
    pub hot_until_ms: Option<f64>,
}

impl CacheKeys {
    /// Where an invalidation of the URL records its time on every cached route: the marker, or
    /// on a route without one a key next to the entry's (an entry key never ends in
    /// `/changed`). A write that lands later checks it (see `ports::Guard`); only the marker is
    /// read on lookups, so hits on routes without variants pay nothing for it.
    pub fn guard(&self) -> std::borrow::Cow<'_, str> {
        match &self.marker {
            Some(marker) => marker.into(),
            None => format!("{}/changed", self.entry).into(),
        }
    }
}

/// The rate-limit stage's verdict, owned (see [`RateLimitResult`] for the logged form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimitNote {
    Allowed,
    Limited(String),
    StoreError(String),
}

impl RateLimitNote {
    pub fn as_result(&self) -> RateLimitResult<'_> {
        match self {
            RateLimitNote::Allowed => RateLimitResult::Allowed,
            RateLimitNote::Limited(p) => RateLimitResult::Limited(p),
            RateLimitNote::StoreError(p) => RateLimitResult::StoreError(p),
        }
    }
}

/// What Cloudflare tells about the client, read only when the access log or a route's IP
/// rules ask for it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientFacts {
    pub user_agent: Option<String>,
    pub country: Option<String>,
    pub asn: Option<u32>,
    pub colo: Option<String>,
}

/// What the stages found out, for the completion point.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Notes {
    pub cache: Option<CacheResult>,
    pub rate_limit: Option<RateLimitNote>,
    pub source: Source,
    pub attempts: u32,
    pub target: Option<usize>,
    pub upstream_ms: Option<f64>,
}

/// One request's context, from the entry to the completion point.
#[derive(Debug)]
pub struct Ctx {
    /// When the request arrived (the platform's clock).
    pub started_ms: f64,
    /// The instant the stages decide by: the arrival, then the platform's clock again after
    /// each wait (a stage's, or the configuration's load before the plan started). A lease, a
    /// remembered refusal, a token's expiry or a cache entry's freshness is never judged by an
    /// instant already past.
    pub now_ms: f64,
    pub request: Request,
    pub trace: Trace,
    /// The route the request matched, once routed.
    pub routed: Option<Routed>,
    pub identity: Option<Identity>,
    /// Request headers the stages add or remove (identity, validators, client conditions).
    pub request_edits: HeaderEdits,
    /// The rate-limit stage's bucket names, formed in its request step (a SHA-256 each) and
    /// taken by its wait step.
    pub rate_limit_buckets: Vec<String>,
    /// The RateLimit-Policy and RateLimit fields of an admitted request, for the rate-limit
    /// stage's response step.
    pub rate_limit_headers: Vec<(String, String)>,
    pub cache_keys: Option<CacheKeys>,
    /// A stale entry was served while it is refreshed: the platform runs this after answering.
    pub cache_refresh: Option<super::cache_refresh::CacheRefresh>,
    /// Which upstream served, once a route splits traffic.
    pub variant: Option<Variant>,
    pub notes: Notes,
    /// Client facts and request headers the access log asked for (read at the entry).
    pub client: ClientFacts,
    pub logged_headers: Vec<(String, String)>,
    /// The CORS headers every answer of the request carries (`Vary: Origin`, and for an
    /// allowed origin `Access-Control-Allow-Origin` and the rest), for the CORS stage's
    /// response step.
    pub cors_headers: Vec<(String, String)>,
}

impl Ctx {
    pub fn new(request: Request, trace: Trace, started_ms: f64) -> Ctx {
        Ctx {
            started_ms,
            now_ms: started_ms,
            request,
            trace,
            routed: None,
            identity: None,
            request_edits: HeaderEdits::default(),
            rate_limit_buckets: Vec::new(),
            rate_limit_headers: Vec::new(),
            cache_keys: None,
            cache_refresh: None,
            variant: None,
            notes: Notes::default(),
            client: ClientFacts::default(),
            logged_headers: Vec::new(),
            cors_headers: Vec::new(),
        }
    }

    /// The matched route's index. Stages run only on routed requests.
    pub fn route(&self) -> usize {
        self.routed.as_ref().map_or(0, |r| r.route)
    }

    pub fn consumer(&self) -> Option<&str> {
        self.identity.as_ref().and_then(|i| i.consumer.as_deref())
    }
}
