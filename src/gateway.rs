//! A compiled configuration: the validated document plus everything derived from it once
//! (router, per-route header plans, digest), so requests do no per-request set-up.

use crate::config::{
    ApiKeySource, AuthKind, Config, ConfigErrors, HeaderRules, HostPattern, Route, RouteAuth,
};
use crate::headers::{HeaderEdits, CORS_RESPONSE_HEADERS, HOP_BY_HOP};
use crate::observe::redact::Redactor;
use crate::plan::Plan;
use crate::router::Router;
use sha2::Digest;
use std::collections::{HashMap, HashSet};

/// Everything the request path needs from one configuration version.
#[derive(Debug)]
pub struct Gateway {
    pub config: Config,
    pub router: Router,
    /// `sha256:` and the first 16 hex digits of the document's hash: its version for humans.
    pub digest: String,
    /// The distinct header edits fixed by configuration (routes mostly share a few), and per
    /// route the index of its own: a large table holds, and hands JS, each set once.
    edit_sets: Vec<RouteEdits>,
    route_edit_set: Vec<usize>,
    /// Per route: query parameters that carry credentials (`token_query`, API-key `query`),
    /// removed from the forwarded query once the gateway has consumed them.
    credential_params: Vec<Vec<String>>,
    /// Per route: its compiled plan of stages.
    plans: Vec<Plan>,
    /// Per route: what its rate limits fix for every request.
    rate_limit_fixed: Vec<RateLimitFixed>,
    /// Every request header a route's `match` reads, sorted: read once per request, and only
    /// when a route has header conditions.
    match_headers: Vec<String>,
    /// The configuration's credential names, for redacting log lines (access log query,
    /// failure lines).
    pub redactor: Redactor,
    /// Some IP rule set names countries or ASNs: the client's Cloudflare facts are read for
    /// every request.
    pub reads_client_network: bool,
}

/// The hosts some cached routes may serve: any (one has no host, or a wildcard one) or these.
#[derive(Default)]
struct CachedHosts<'a> {
    any: bool,
    exact: HashSet<&'a str>,
}

impl<'a> CachedHosts<'a> {
    fn add(&mut self, cached: &'a Route) {
        match &cached.host {
            Some(HostPattern::Exact(h)) => {
                self.exact.insert(h.as_str());
            }
            _ => self.any = true,
        }
    }

    /// Whether one of them may serve a host `route` serves.
    fn overlap(&self, route: &Route) -> bool {
        self.any
            || match &route.host {
                Some(HostPattern::Exact(h)) => self.exact.contains(h.as_str()),
                _ => !self.exact.is_empty(),
            }
    }
}

/// Whether an uncached route that accepts an unsafe method may invalidate a cached route's
/// entries (`pipeline::invalidate`), so that its unsafe requests wait for their answers. Either
/// a URL it serves may be one a cached route serves to GET — the hosts may overlap and the
/// paths' literal beginnings (up to the first parameter) may, for one being a beginning of the
/// other is what any URL both patterns match requires — or its answers may name one in
/// `Location` or `Content-Location`: a cached route of one of its upstreams may serve its host.
/// Decided once per configuration, in near-linear time; the request itself then finds the
/// cached routes exactly.
fn may_invalidate_cached(routes: &[Route]) -> impl Fn(&Route) -> bool + '_ {
    let mut hosts = CachedHosts::default();
    let mut by_upstream: HashMap<usize, CachedHosts> = HashMap::new();
    let mut prefixes: Vec<&str> = Vec::new();
    for cached in routes.iter().filter(|r| r.cache.is_some()) {
        hosts.add(cached);
        for u in cached.upstreams() {
            by_upstream.entry(u).or_default().add(cached);
        }
        prefixes.push(literal_prefix(&cached.path));
    }
    prefixes.sort_unstable();
    prefixes.dedup();
    let cached_prefix: HashSet<&str> = prefixes.iter().copied().collect();
    move |route: &Route| {
        let unsafe_methods = crate::cache::INVALIDATING_METHODS
            .iter()
            .any(|m| route.methods.contains(m));
        if route.cache.is_some() || route.websocket || !unsafe_methods || prefixes.is_empty() {
            return false;
        }
        let own = literal_prefix(&route.path);
        // A cached beginning that begins this one, or one that this one begins.
        let begun_by = own
            .char_indices()
            .map(|(i, _)| &own[..i])
            .chain(std::iter::once(own))
            .any(|p| cached_prefix.contains(p));
        let begins = {
            let at = prefixes.partition_point(|p| *p < own);
            prefixes.get(at).is_some_and(|p| p.starts_with(own))
        };
        let shares_urls = hosts.overlap(route) && (begun_by || begins);
        let may_name = route
            .upstreams()
            .any(|u| by_upstream.get(&u).is_some_and(|h| h.overlap(route)));
        shares_urls || may_name
    }
}

/// A path pattern up to its first parameter: every URL the pattern matches begins with it.
fn literal_prefix(pattern: &str) -> &str {
    pattern.find('{').map_or(pattern, |at| &pattern[..at])
}

/// A route's static header edits, both ways; per-request edits are applied after them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteEdits {
    /// Hop-by-hop, client-supplied forwarding and identity headers, and the route's removals;
    /// then the route's `request_headers.set`.
    pub request: HeaderEdits,
    /// Hop-by-hop headers and the route's removals; then its `response_headers.set`.
    pub response: HeaderEdits,
    /// Request headers whose value the gateway reads to choose a cached route's entry — its
    /// `vary` headers and every header a `match` condition reads (the route id in the key
    /// stands for them) — and forwards as the client sent them. Their `_` spellings are
    /// removed: CGI, WSGI and Rack read `accept_language` as `accept-language` and keep the
    /// later copy, so the upstream would answer for another key than the gateway used.
    pub keyed: Vec<String>,
}

/// The WebSocket handshake's own request headers: forwarded on `websocket: true` routes only.
pub const WEBSOCKET_HEADERS: [&str; 4] = [
    "sec-websocket-extensions",
    "sec-websocket-key",
    "sec-websocket-protocol",
    "sec-websocket-version",
];

/// Headers clients may send but the gateway alone decides upstream.
const CLIENT_FORWARDING_HEADERS: [&str; 6] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "host",
];

/// Other request headers that claim to carry the client's address, read by common upstream
/// frameworks and libraries (Rails' `Client-IP`, PHP's `HTTP_CLIENT_IP`, `HTTP_X_FORWARDED` and
/// `HTTP_X_CLUSTER_CLIENT_IP`, Node's request-ip, which reads `X-Client-IP` before
/// `X-Forwarded-For`, CDN conventions such as `True-Client-IP`), often before the
/// `X-Forwarded-For` the gateway sets: a client's copy would pass for its address behind the
/// gateway, which trusts `CF-Connecting-IP` alone. Cloudflare's own `CF-Connecting-IPv6` and
/// `CF-Pseudo-IPv4` (Pseudo IPv4) are among them: the gateway reads neither, so it cannot
/// vouch for a copy the client wrote. Removed on every route, like
/// [`CLIENT_FORWARDING_HEADERS`].
pub const CLIENT_ADDRESS_HEADERS: [&str; 12] = [
    "true-client-ip",
    "x-client-ip",
    "client-ip",
    "x-cluster-client-ip",
    "fastly-client-ip",
    "x-originating-ip",
    "x-remote-ip",
    "x-remote-addr",
    "forwarded-for",
    "x-forwarded",
    "cf-connecting-ipv6",
    "cf-pseudo-ipv4",
];

/// Client headers that would act behind the gateway's decisions, removed on every route: a
/// proxy for the upstream's own calls (`Proxy`, "httpoxy"), another connection's settings
/// (`HTTP2-Settings`), another URL, host or scheme than the one routed and authorised
/// (`X-Original-URL`, `X-Rewrite-URL`, `X-Host`, `Front-End-Https`, `X-Url-Scheme`), and
/// another method than the one the route's `methods`, its retries and its cache went by. (On
/// a cached route these, and the `X-Forwarded-*` family, would also change the upstream's
/// answer without changing the cache key.)
pub const NEVER_FORWARDED: [&str; 10] = [
    "proxy",
    "http2-settings",
    "x-original-url",
    "x-rewrite-url",
    "x-host",
    "front-end-https",
    "x-url-scheme",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Every request header with this prefix is removed, whatever follows it: the gateway alone
/// says how the request reached it (it sets `X-Forwarded-For`, `-Proto` and `-Host`), and a
/// client's `X-Forwarded-Prefix`, `-Port`, `-Ssl` or any other member of the family would
/// tell the upstream otherwise.
pub const CLIENT_FORWARDING_PREFIX: &str = "x-forwarded-";

/// What a route's static edits depend on besides the configuration-wide lists.
#[derive(PartialEq, Eq, Hash)]
struct EditInputs<'a> {
    auth: &'a RouteAuth,
    cached: bool,
    cors: bool,
    websocket: bool,
    canary_override: Option<&'a str>,
    request: &'a HeaderRules,
    response: &'a HeaderRules,
    vary: Option<&'a [String]>,
}

/// The kinds of the auth schemes `route` accepts, in order (none on a public route).
fn schemes<'c>(route: &'c Route, config: &'c Config) -> impl Iterator<Item = &'c AuthKind> {
    let list: &[usize] = match &route.auth {
        RouteAuth::None => &[],
        RouteAuth::Schemes(list) => list,
    };
    list.iter().map(|i| &config.auth[*i].kind)
}

/// A route's header edits fixed by configuration, both ways.
fn static_edits(
    route: &Route,
    config: &Config,
    identity: &[String],
    match_headers: &[String],
) -> RouteEdits {
    // API keys are credentials for the gateway: the upstream gets the consumer.
    let api_key_headers = schemes(route, config).filter_map(|kind| match kind {
        AuthKind::ApiKey(k) => match &k.source {
            ApiKeySource::Header(h) => Some(h.clone()),
            ApiKeySource::Query(_) => None,
        },
        AuthKind::Jwt(_) => None,
    });
    // A WebSocket route keeps `Upgrade` (its stage checked it asks for websocket) and the
    // handshake's headers; every other route drops both.
    let hop_by_hop = HOP_BY_HOP
        .iter()
        .filter(|h| !(route.websocket && **h == "upgrade"));
    let handshake = WEBSOCKET_HEADERS.iter().filter(|_| !route.websocket);
    let mut request: Vec<String> = hop_by_hop
        .chain(handshake)
        .chain(CLIENT_FORWARDING_HEADERS.iter())
        .chain(CLIENT_ADDRESS_HEADERS.iter())
        .chain(NEVER_FORWARDED.iter())
        .map(|h| (*h).to_owned())
        .chain(identity.iter().cloned())
        // Only the gateway says who the consumer is, on every route.
        .chain(std::iter::once(config.settings.consumer_header.clone()))
        .chain(route.request_headers.remove.iter().cloned())
        .chain(api_key_headers)
        // A canary override is for the gateway; the upstream never sees it.
        .chain(
            route
                .canary
                .iter()
                .filter_map(|c| c.override_header.clone()),
        )
        .collect();
    request.sort();
    request.dedup();
    let mut response: Vec<String> = HOP_BY_HOP
        .iter()
        .map(|h| (*h).to_owned())
        .chain(route.response_headers.remove.iter().cloned())
        // On a route with a CORS policy the gateway alone answers for it: an
        // upstream's own CORS headers could widen it.
        .chain(
            route
                .cors
                .iter()
                .flat_map(|_| CORS_RESPONSE_HEADERS.map(str::to_owned)),
        )
        .collect();
    response.sort();
    response.dedup();
    let mut keyed: Vec<String> = route.cache.as_ref().map_or_else(Vec::new, |c| {
        c.vary
            .iter()
            .chain(match_headers)
            .map(|h| h.to_ascii_lowercase())
            .collect()
    });
    keyed.sort();
    keyed.dedup();
    RouteEdits {
        request: HeaderEdits {
            remove: request,
            set: route.request_headers.set.clone(),
        },
        response: HeaderEdits {
            remove: response,
            set: route.response_headers.set.clone(),
        },
        keyed,
    }
}

impl Gateway {
    /// Validates a document and prepares it for serving; every problem is reported.
    pub fn compile(text: &str) -> Result<Gateway, ConfigErrors> {
        Gateway::compile_hashed(text, &sha2::Sha256::digest(text.as_bytes()).into())
    }

    /// [`Gateway::compile`] for a caller that already hashed the document (hashing a large
    /// one costs as much as parts of compiling it).
    pub fn compile_hashed(text: &str, sha256: &[u8; 32]) -> Result<Gateway, ConfigErrors> {
        let config = Config::from_json(text)?;
        let router = Router::build(&config).map_err(ConfigErrors::capped)?;
        let identity: Vec<String> = config
            .auth
            .iter()
            .filter_map(|a| match &a.kind {
                AuthKind::Jwt(j) => Some(j.forward_claims.iter().map(|(_, h)| h.clone())),
                AuthKind::ApiKey(_) => None,
            })
            .flatten()
            .collect();
        let credential_params = config
            .routes
            .iter()
            .map(|route| {
                schemes(route, &config)
                    .filter_map(|kind| match kind {
                        AuthKind::Jwt(j) => j.token_query.clone(),
                        AuthKind::ApiKey(k) => match &k.source {
                            ApiKeySource::Query(q) => Some(q.clone()),
                            ApiKeySource::Header(_) => None,
                        },
                    })
                    .collect()
            })
            .collect();
        let mut match_headers: Vec<String> = config
            .routes
            .iter()
            .filter_map(|r| r.conditions.as_ref())
            .flat_map(|c| c.headers.iter().map(|(name, _)| name.clone()))
            .collect();
        match_headers.sort();
        match_headers.dedup();
        // Routes mostly share their edits: each distinct set is built once, keyed by what
        // decides it (hashing the inputs is far cheaper than building the lists per route).
        let mut edit_sets: Vec<RouteEdits> = Vec::new();
        let mut known: HashMap<EditInputs<'_>, usize> = HashMap::new();
        let route_edit_set: Vec<usize> = config
            .routes
            .iter()
            .map(|route| {
                let inputs = EditInputs {
                    auth: &route.auth,
                    cached: route.cache.is_some(),
                    cors: route.cors.is_some(),
                    websocket: route.websocket,
                    canary_override: route
                        .canary
                        .as_ref()
                        .and_then(|c| c.override_header.as_deref()),
                    request: &route.request_headers,
                    response: &route.response_headers,
                    vary: route.cache.as_ref().map(|c| c.vary.as_slice()),
                };
                *known.entry(inputs).or_insert_with(|| {
                    edit_sets.push(static_edits(route, &config, &identity, &match_headers));
                    edit_sets.len() - 1
                })
            })
            .collect();
        let digest = crate::hex::digest_of(sha256);
        let plans = {
            let shares = may_invalidate_cached(&config.routes);
            config
                .routes
                .iter()
                .map(|r| Plan::for_route(r, shares(r)))
                .collect()
        };
        let rate_limit_fixed = config
            .routes
            .iter()
            .map(|r| RateLimitFixed::of(r, &config))
            .collect();
        Ok(Gateway {
            rate_limit_fixed,
            match_headers,
            reads_client_network: config.ip_rules.iter().any(|r| r.uses_network_facts()),
            redactor: Redactor::new(&config),
            plans,
            config,
            router,
            digest,
            edit_sets,
            route_edit_set,
            credential_params,
        })
    }

    pub fn route(&self, index: usize) -> &Route {
        &self.config.routes[index]
    }

    /// Query parameters of this route that carry credentials.
    pub fn credential_params(&self, route: usize) -> &[String] {
        &self.credential_params[route]
    }

    /// The route's plan of stages.
    pub fn plan(&self, route: usize) -> &Plan {
        &self.plans[route]
    }

    /// What the route's rate limits fix for every request.
    pub fn rate_limit_fixed(&self, route: usize) -> &RateLimitFixed {
        &self.rate_limit_fixed[route]
    }

    /// The request headers `match` conditions read, in the order [`Inbound::match_headers`]
    /// holds their values.
    ///
    /// [`Inbound::match_headers`]: crate::forward::Inbound::match_headers
    pub fn match_headers(&self) -> &[String] {
        &self.match_headers
    }

    /// The route's static header edits.
    pub fn route_edits(&self, route: usize) -> &RouteEdits {
        &self.edit_sets[self.route_edit_set[route]]
    }

    /// The distinct static header edits, and per route the index of its own.
    pub fn edit_sets(&self) -> (&[RouteEdits], &[usize]) {
        (&self.edit_sets, &self.route_edit_set)
    }
}

/// What a route's rate limits fix per configuration, so that its requests neither hash a
/// bucket name that never changes nor format the same `RateLimit-Policy` field again.
#[derive(Debug, Default)]
pub struct RateLimitFixed {
    /// `RateLimit-Policy` when every policy of the route is decided.
    pub policy_field: String,
    /// Per policy of the route, in its order: the bucket when it is the same for every request
    /// (keys `route` and `global`).
    pub buckets: Vec<Option<String>>,
}

impl RateLimitFixed {
    fn of(route: &Route, config: &Config) -> RateLimitFixed {
        if route.rate_limits.is_empty() {
            return RateLimitFixed::default();
        }
        let policies: Vec<_> = route
            .rate_limits
            .iter()
            .map(|i| &config.rate_limits[*i])
            .collect();
        let limits: Vec<_> = policies
            .iter()
            .map(|p| (p.name.as_str(), crate::ratelimit::Limits::from(*p)))
            .collect();
        let refs: Vec<_> = limits.iter().map(|(n, l)| (*n, l)).collect();
        RateLimitFixed {
            policy_field: crate::ratelimit::policy_header(&refs),
            buckets: policies
                .iter()
                .map(|p| crate::ratelimit::fixed_bucket_key(p, &route.id))
                .collect(),
        }
    }
}
