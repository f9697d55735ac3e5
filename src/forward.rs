//! The synchronous part of handling a request: request id and trace context, canonical path,
//! route match, body limit, the upstream path, and the header edits both ways.
//!
//! It reads only the few request facts the platform hands it ([`Inbound`]) and returns data
//! the platform applies in one go, so the runtime boundary is crossed as little as possible.

use crate::config::{Endpoint, TemplatePart, TracingSpec};
use crate::error::GatewayError;
use crate::gateway::Gateway;
pub use crate::headers::HeaderEdits;
use crate::headers::{connection_tokens, is_hop_by_hop};
use crate::ids::{is_acceptable_request_id, IdGenerator};
use crate::observe::trace::{Inbound as TraceInbound, SpanContext};
use crate::path::canonicalize;
use crate::router::RouteMatch;

/// The request facts the gateway decides on, read once by the platform.
#[derive(Debug, Default, Clone)]
pub struct Inbound<'a> {
    pub method: &'a str,
    /// `http` or `https`, as the client connected.
    pub scheme: &'a str,
    /// Authority the client addressed (host, maybe with port).
    pub host: &'a str,
    /// Raw path of the request URL.
    pub path: &'a str,
    /// Raw query without `?`, forwarded unchanged.
    pub query: Option<&'a str>,
    /// The address Cloudflare reports (`CF-Connecting-IP`).
    pub client_ip: Option<&'a str>,
    pub content_length: Option<&'a str>,
    /// Present when the body is framed by chunking: a length beside it declares nothing.
    pub transfer_encoding: Option<&'a str>,
    pub connection: Option<&'a str>,
    /// The client's value of `settings.request_id_header`.
    pub request_id: Option<&'a str>,
    pub traceparent: Option<&'a str>,
    /// An `OPTIONS` request's `Access-Control-Request-Method` when it also carries `Origin`
    /// (a CORS preflight): it is routed as the request it announces.
    pub preflight: Option<&'a str>,
    /// Values of [`Gateway::match_headers`], in that order (empty when no route has `match`).
    pub match_headers: &'a [Option<String>],
}

/// What `match` conditions read of an [`Inbound`] request.
struct InboundFacts<'g, 'a> {
    names: &'g [String],
    inbound: &'g Inbound<'a>,
}

impl crate::router::MatchFacts for InboundFacts<'_, '_> {
    fn header(&self, lower_name: &str) -> Option<&str> {
        let i = self.names.iter().position(|n| n == lower_name)?;
        self.inbound.match_headers.get(i)?.as_deref()
    }
    fn query(&self) -> Option<&str> {
        self.inbound.query
    }
}

/// Identity of one request across logs, upstream and response.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub request_id: String,
    /// The gateway's span: trace id, its own span id, the inbound parent span, the sampling
    /// decision and the key every sampling decision of the request uses.
    pub span: SpanContext,
    /// The `traceparent` forwarded upstream: `span` rendered (kept equal to it by the methods
    /// that change `span`).
    pub traceparent: String,
    /// The gateway starts the trace (the client's `traceparent` was absent or invalid), so the
    /// client's `tracestate` belongs to no trace it forwards: W3C Trace Context discards it.
    pub drop_tracestate: bool,
}

impl Trace {
    /// The request id (the client's when acceptable) and the gateway's span, sampled per
    /// `tracing`.
    pub fn begin(inbound: &Inbound, ids: &mut IdGenerator, tracing: &TracingSpec) -> Trace {
        let request_id = match inbound.request_id {
            Some(id) if is_acceptable_request_id(id) => id.to_owned(),
            _ => ids.request_id(),
        };
        let (span, seen) = SpanContext::start(inbound.traceparent, tracing, ids);
        Trace {
            request_id,
            traceparent: span.traceparent(),
            span,
            drop_tracestate: !matches!(seen, TraceInbound::Continued),
        }
    }

    /// For a route with `observability.tracing: false`: the gateway's span is forwarded
    /// unsampled, whatever the inbound flag or the rate said.
    pub fn unsample(&mut self) {
        if self.span.sampled {
            self.span.sampled = false;
            self.traceparent = self.span.traceparent();
        }
    }
}

/// What the request addresses.
#[derive(Debug, PartialEq)]
pub enum Destination {
    /// The gateway's own endpoints; `rest` is the path below the admin prefix (`/health`).
    Admin {
        rest: String,
    },
    Route(Routed),
}

/// A request matched to a route.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    pub route: usize,
    pub canonical_path: String,
    /// Path (after `rewrite`) and query to append to a target's origin and base path.
    pub upstream_path: String,
}

impl Gateway {
    /// Canonicalises, routes and checks the declared body size.
    pub fn destination(&self, inbound: &Inbound) -> Result<Destination, GatewayError> {
        let canonical = canonicalize(inbound.path).map_err(GatewayError::BadPath)?;
        let admin = &self.config.settings.admin.path;
        match admin_rest(&canonical, admin) {
            Some((rest, true)) => {
                return Ok(Destination::Admin {
                    rest: rest.to_owned(),
                })
            }
            // `/__GATEWAY/config`: an admin client's typo, whose token a catch-all route would
            // carry to its upstream. The prefix is the gateway's in every letter case.
            Some((_, false)) => return Err(GatewayError::NotFound),
            None => {}
        }
        let (route, params) = match self.find_route(inbound, &canonical) {
            RouteMatch::Found { route, .. }
                if self.trailing_slash_elsewhere(inbound, &canonical, route) =>
            {
                return Err(GatewayError::BadPath(
                    crate::path::PathError::AmbiguousTrailingSlash,
                ))
            }
            // `/ADMIN` or `/admin.` reaching a catch-all beside a protected `/admin`: see
            // `crate::router` (`fold`).
            RouteMatch::Found { route, .. }
                if self
                    .router
                    .alias_elsewhere(inbound.host, &canonical, route, |other| {
                        self.guards_differ(route, other)
                    }) =>
            {
                return Err(GatewayError::BadPath(
                    crate::path::PathError::AmbiguousAlias,
                ))
            }
            RouteMatch::Found { route, params } => (route, params),
            RouteMatch::MethodNotAllowed { allow } => {
                return Err(GatewayError::MethodNotAllowed(allow))
            }
            RouteMatch::NotFound => return Err(GatewayError::NotFound),
            RouteMatch::AmbiguousConditions => {
                return Err(GatewayError::BadRequest(
                    crate::router::AMBIGUOUS_CONDITIONS,
                ))
            }
        };
        // RFC 9112 §6.1: both framings at once may be a smuggling attempt (a gateway that reads
        // the length and a runtime that reads the chunks disagree on where the body ends);
        // refusing is allowed, and it leaves no body whose size the limit did not see.
        if inbound.transfer_encoding.is_some() && inbound.content_length.is_some() {
            return Err(GatewayError::BadRequest(
                "Content-Length and Transfer-Encoding together",
            ));
        }
        if let Some(len) = inbound.content_length {
            let limit = self.config.settings.max_body_bytes;
            match len.trim().parse::<u64>() {
                Ok(n) if n > limit => return Err(GatewayError::PayloadTooLarge { limit }),
                Ok(_) => {}
                Err(_) => return Err(GatewayError::BadRequest("invalid Content-Length")),
            }
        }
        let r = self.route(route);
        let mut upstream_path = match &r.rewrite {
            None => canonical.clone(),
            Some(parts) => {
                let rendered = render(parts, &params);
                // The canonical path has no dot segment, but a parameter that fills only part
                // of one can hold `..` (or `..` before a literal `.`, read as `..` on Windows):
                // the forwarded path must not climb where nothing routed.
                if rendered.split('/').any(crate::path::reads_as_dot_segment) {
                    return Err(GatewayError::BadPath(
                        crate::path::PathError::DotSegmentInRewrite,
                    ));
                }
                rendered
            }
        };
        if let Some(q) = inbound.query {
            let mut query = std::borrow::Cow::Borrowed(q);
            for name in self.credential_params(route) {
                query = std::borrow::Cow::Owned(crate::auth::credentials::without_query_param(
                    &query, name,
                ));
            }
            // A query that consisted only of credentials is dropped entirely.
            if !query.is_empty() || q.is_empty() {
                upstream_path.push('?');
                upstream_path.push_str(&query);
            }
        }
        Ok(Destination::Route(Routed {
            route,
            canonical_path: canonical,
            upstream_path,
        }))
    }

    /// The route of a request. A CORS preflight is routed by the method it announces, so that
    /// the route's policy answers it even when the route does not accept `OPTIONS`; when that
    /// route has no CORS policy, the `OPTIONS` request is routed as itself.
    fn find_route<'p>(&self, inbound: &Inbound, canonical: &'p str) -> RouteMatch<'p> {
        let facts = InboundFacts {
            names: self.match_headers(),
            inbound,
        };
        if let (Some(announced), "OPTIONS") = (inbound.preflight, inbound.method) {
            if let found @ RouteMatch::Found { route, .. } =
                self.router
                    .find_with(inbound.host, announced, canonical, &facts)
            {
                if self.route(route).cors.is_some() {
                    return found;
                }
            }
        }
        self.router
            .find_with(inbound.host, inbound.method, canonical, &facts)
    }

    /// Whether routes `a` and `b` let different requests through: their methods, `match`
    /// conditions, authentication, scopes, IP rules or rate limits differ. A spelling of a path
    /// that folds from one onto the other matters only then (an upper-case `IMG_1.JPG` that a
    /// public catch-all takes beside a public `/photos/{name}.jpg` is served alike either way).
    fn guards_differ(&self, a: usize, b: usize) -> bool {
        let (a, b) = (self.route(a), self.route(b));
        a.methods != b.methods
            || a.conditions != b.conditions
            || a.auth != b.auth
            || a.scopes != b.scopes
            || a.ip_rules != b.ip_rules
            || a.rate_limits != b.rate_limits
    }

    /// Whether `canonical` ends in `/` and, without it, is served by another route. Many servers
    /// take `/admin/` for `/admin`; if the two belong to different routes (say a catch-all
    /// public one and a protected one), the gateway could not tell which the upstream will
    /// serve, so the request is refused rather than guessed at — also when the other route
    /// would not take this request's method or conditions (`POST /admin/` beside a GET-only
    /// `/admin`, or `/ops/` beside an `/ops` that needs a header): its 405 or 404 is what the
    /// trailing slash would otherwise slip past.
    fn trailing_slash_elsewhere(&self, inbound: &Inbound, canonical: &str, route: usize) -> bool {
        let Some(trimmed) = canonical.strip_suffix('/').filter(|t| !t.is_empty()) else {
            return false;
        };
        self.router.serves_other(inbound.host, trimmed, route)
    }

    /// Per-request edits of the request headers: removals (Connection-named headers) applied
    /// with the route's static removals, then sets (what only the gateway knows) applied after
    /// the route's static sets ([`Gateway::route_edits`]).
    pub fn request_edits(&self, routed: &Routed, inbound: &Inbound, trace: &Trace) -> HeaderEdits {
        let remove = request_removals(inbound, trace, self.keyed_headers(routed.route));
        let mut set = Vec::with_capacity(5);
        if let Some(ip) = forwarded_for(inbound) {
            set.push(("x-forwarded-for".into(), ip.to_owned()));
        }
        set.push(("x-forwarded-proto".into(), inbound.scheme.to_owned()));
        set.push(("x-forwarded-host".into(), forwarded_host(inbound)));
        set.push((
            self.config.settings.request_id_header.clone(),
            trace.request_id.clone(),
        ));
        set.push(("traceparent".into(), trace.traceparent.clone()));
        HeaderEdits { remove, set }
    }

    /// Request headers a route's cache key reads: a client's `Connection` token cannot remove
    /// them, or the upstream would answer a request other than the one the key describes.
    pub fn keyed_headers(&self, route: usize) -> &[String] {
        self.route(route).cache.as_ref().map_or(&[], |c| &c.vary)
    }

    /// Per-request edits of the response headers, applied after the route's static ones.
    pub fn response_edits(&self, connection: Option<&str>, trace: &Trace) -> HeaderEdits {
        let remove = connection
            .map(|c| connection_tokens(c).filter(|t| !is_protected(t)).collect())
            .unwrap_or_default();
        let set = vec![(
            self.config.settings.request_id_header.clone(),
            trace.request_id.clone(),
        )];
        HeaderEdits { remove, set }
    }

    /// The full URL for a target of the route's upstream, or the service binding to call.
    pub fn target_url(&self, routed: &Routed, target: usize) -> (Option<&str>, String) {
        self.target_url_in(routed, self.route(routed.route).upstream, target)
    }

    /// [`Gateway::target_url`] for a target of upstream `upstream` (a canary route's other
    /// upstream).
    pub fn target_url_in(
        &self,
        routed: &Routed,
        upstream: usize,
        target: usize,
    ) -> (Option<&str>, String) {
        let upstream = &self.config.upstreams[upstream];
        match &upstream.targets[target].endpoint {
            Endpoint::Url { origin, base_path } => {
                (None, format!("{origin}{base_path}{}", routed.upstream_path))
            }
            Endpoint::Service { binding } => (
                Some(binding.as_str()),
                format!(
                    "https://{}{}",
                    binding.to_ascii_lowercase(),
                    routed.upstream_path
                ),
            ),
        }
    }
}

/// Parts of an absolute request URL as the runtime serialises it:
/// `(scheme, host[:port], path, query)`. User-info (a caller's `https://user:pass@host/…`) is
/// no part of the host: it is dropped, so it is never routed on, forwarded or logged.
pub fn split_url(url: &str) -> Option<(&str, &str, &str, Option<&str>)> {
    let (scheme, rest) = url.split_once("://")?;
    let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.find('/') {
        Some(i) => before_query.split_at(i),
        None => (before_query, "/"),
    };
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    Some((scheme, authority, path, query))
}

/// The per-request removals of [`Gateway::request_edits`]: headers the client named in
/// `Connection` (except protected ones and `keep`, the headers a cache key reads), and a
/// `tracestate` without a usable `traceparent`. They are applied before any header the
/// gateway or the route sets, so a `Connection` token can never remove those.
pub fn request_removals(inbound: &Inbound, trace: &Trace, keep: &[String]) -> Vec<String> {
    let mut remove = Vec::new();
    if let Some(c) = inbound.connection {
        remove.extend(connection_tokens(c).filter(|t| !is_protected(t) && !keep.contains(t)));
    }
    if trace.drop_tracestate {
        remove.push("tracestate".into());
    }
    remove
}

/// End-to-end headers a `Connection` token may not remove: message framing and the
/// gateway's own decisions depend on them.
pub const CONNECTION_PROTECTED: [&str; 10] = [
    "content-length",
    "content-type",
    "content-encoding",
    "host",
    "authorization",
    "cache-control",
    "etag",
    "last-modified",
    "vary",
    "date",
];

fn is_protected(name: &str) -> bool {
    !is_hop_by_hop(name) && CONNECTION_PROTECTED.contains(&name)
}

/// The authority for `X-Forwarded-Host`: the one the client addressed, lower-cased (hosts are
/// case-insensitive), port kept. The cache key uses exactly this value.
pub fn forwarded_host(inbound: &Inbound) -> String {
    inbound.host.to_ascii_lowercase()
}

/// The client address for `X-Forwarded-For`: only what Cloudflare reports, and only if it is
/// an IP address.
pub fn forwarded_for<'a>(inbound: &Inbound<'a>) -> Option<&'a str> {
    inbound.client_ip.filter(|ip| is_ip_literal(ip))
}

fn render(parts: &[TemplatePart], params: &[&str]) -> String {
    let mut out = String::new();
    for part in parts {
        match part {
            TemplatePart::Literal(l) => out.push_str(l),
            TemplatePart::Param(i) => out.push_str(params.get(*i).copied().unwrap_or("")),
        }
    }
    out
}

/// Whether `s` looks like an IPv4 or IPv6 address (what Cloudflare reports), so nothing else
/// ever lands in `X-Forwarded-For`.
fn is_ip_literal(s: &str) -> bool {
    !s.is_empty() && s.len() <= 45 && (s.parse::<std::net::IpAddr>().is_ok())
}

/// The path below the admin prefix `admin` when `canonical` is inside it, and whether it is
/// spelt exactly (otherwise only in another letter case). Only on segment boundaries:
/// `/__gatewayx` is not inside `/__gateway`.
pub fn admin_rest<'p>(canonical: &'p str, admin: &str) -> Option<(&'p str, bool)> {
    let head = canonical.as_bytes().get(..admin.len())?;
    if !head.eq_ignore_ascii_case(admin.as_bytes()) {
        return None;
    }
    let rest = canonical.get(admin.len()..)?;
    (rest.is_empty() || rest.starts_with('/')).then(|| (rest, head == admin.as_bytes()))
}

#[cfg(test)]
mod tests;
