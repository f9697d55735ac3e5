//! The validated configuration: what the gateway runs on after `routes.json` has been checked.
//!
//! Cross-references (a route's upstream, auth schemes, rate-limit policies) are resolved to
//! indices during validation, so the request path never looks a name up.

/// A whole, valid configuration document.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub settings: Settings,
    pub upstreams: Vec<Upstream>,
    pub auth: Vec<AuthScheme>,
    pub rate_limits: Vec<RateLimitPolicy>,
    pub routes: Vec<Route>,
    pub observability: Observability,
    /// Named CORS policies (top-level `cors`).
    pub cors: Vec<CorsPolicy>,
    /// Named IP rule sets (top-level `ip_rules`).
    pub ip_rules: Vec<IpRuleSet>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// How often an isolate re-reads the document from KV.
    pub reload_s: u64,
    /// Largest request body forwarded upstream; larger ones are refused with 413.
    pub max_body_bytes: u64,
    /// Lower-case header name carrying the request id both ways.
    pub request_id_header: String,
    /// Part of every cache key: raising it invalidates every cached entry at once.
    pub cache_generation: u64,
    pub admin: Admin,
    /// Lower-case header carrying the authenticated consumer upstream; a client's copy is
    /// removed on every route.
    pub consumer_header: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Admin {
    /// Path prefix of the gateway's own endpoints (canonical, no trailing slash).
    pub path: String,
    /// Name of the Worker secret holding the admin bearer token.
    pub token_secret: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    pub name: String,
    pub targets: Vec<Target>,
    pub timeout_ms: u64,
    pub retries: u32,
    pub circuit_breaker: Option<CircuitBreakerSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub endpoint: Endpoint,
    pub weight: u32,
}

/// Where a target lives.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    /// An absolute URL: `origin` is `scheme://host[:port]`, `base_path` is prefixed to every
    /// forwarded path (empty, or starting with `/` and without a trailing `/`).
    Url { origin: String, base_path: String },
    /// A Worker service binding, addressed through `env` by its binding name.
    Service { binding: String },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CircuitBreakerSpec {
    /// Consecutive failures that open the breaker.
    pub failures: u32,
    /// How long an open breaker refuses traffic before letting one probe through.
    pub cooldown_s: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuthScheme {
    pub name: String,
    pub kind: AuthKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AuthKind {
    Jwt(Box<JwtScheme>),
    ApiKey(ApiKeyScheme),
}

pub use crate::jose::Algorithm;
pub use crate::traffic::cidr::IpNet;
pub use crate::traffic::ip_rules::IpRuleSet;
pub use crate::traffic::origin::OriginPattern;

/// A named CORS policy (top-level `cors`): which origins a browser may call a route from,
/// with which methods and headers, and what the preflight answer says.
#[derive(Debug, Clone, PartialEq)]
pub struct CorsPolicy {
    pub name: String,
    pub origins: Vec<OriginPattern>,
    /// `"*"`: every origin (only without credentials).
    pub any_origin: bool,
    /// Methods a preflight may ask for; `None`: the route's methods.
    pub methods: Option<MethodSet>,
    /// Lower-case request headers a preflight may ask for.
    pub headers: Vec<String>,
    /// `"*"` in `headers`: any header but `authorization` (only without credentials).
    pub any_header: bool,
    /// Lower-case response headers the browser lets the page read.
    pub expose_headers: Vec<String>,
    pub credentials: bool,
    pub max_age_s: u64,
}

impl CorsPolicy {
    /// Whether the request's `Origin` value is one this policy allows.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.any_origin || self.origins.iter().any(|p| p.matches(origin))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct JwtScheme {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub jwks_url: Option<String>,
    /// Inline public keys (JWK objects), checked by the auth module during validation.
    pub keys: Vec<serde_json::Value>,
    /// Name of the Worker secret holding the HMAC key.
    pub secret: Option<String>,
    pub algorithms: Vec<Algorithm>,
    pub leeway_s: u64,
    /// Claim name → lower-case request header name.
    pub forward_claims: Vec<(String, String)>,
    pub max_lifetime_s: Option<u64>,
    pub typ: Option<String>,
    pub require_exp: bool,
    pub token_cookie: Option<String>,
    pub token_query: Option<String>,
    /// How long a verified token is remembered per isolate (never past its `exp`); 0 = never.
    pub verified_cache_s: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ApiKeySource {
    /// Lower-case header name.
    Header(String),
    Query(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyScheme {
    pub source: ApiKeySource,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitPolicy {
    pub name: String,
    pub key: RateLimitKey,
    pub limit: u64,
    pub window_s: u64,
    pub burst: u64,
    pub on_store_error: StoreErrorPolicy,
}

/// What a rate-limit bucket is keyed on.
#[derive(Debug, Clone, PartialEq)]
pub enum RateLimitKey {
    Ip,
    Claim(String),
    /// Lower-case header name; a request without it falls back to its IP.
    Header(String),
    Consumer,
    Route,
    Global,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorPolicy {
    Allow,
    Deny,
}

/// HTTP methods a route may accept, as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MethodSet(pub u16);

impl MethodSet {
    pub const NAMES: [&'static str; 7] =
        ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    pub const ALL: MethodSet = MethodSet((1 << 7) - 1);

    pub fn bit(method: &str) -> Option<u16> {
        Self::NAMES
            .iter()
            .position(|m| *m == method)
            .map(|i| 1 << i)
    }

    /// The set of the given names (unknown names are ignored).
    pub fn from_names(names: &[&str]) -> MethodSet {
        MethodSet(
            names
                .iter()
                .filter_map(|m| Self::bit(m))
                .fold(0, |a, b| a | b),
        )
    }

    pub fn contains(self, method: &str) -> bool {
        Self::bit(method).is_some_and(|b| self.0 & b != 0)
    }

    pub fn overlaps(self, other: MethodSet) -> bool {
        self.0 & other.0 != 0
    }

    /// Method names in a stable order, for `Allow` headers.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, m)| *m)
    }
}

/// A route's host condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    /// `*.example.com`, stored as `.example.com`: matches any host ending in it.
    Suffix(String),
}

impl HostPattern {
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => h == host,
            HostPattern::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteAuth {
    /// Explicitly public.
    None,
    /// Indices into [`Config::auth`]; any one may succeed.
    Schemes(Vec<usize>),
}

/// A piece of a `rewrite` template.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplatePart {
    Literal(String),
    /// Position of the parameter in the route's path pattern.
    Param(usize),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct HeaderRules {
    /// Lower-case name → value.
    pub set: Vec<(String, String)>,
    /// Lower-case names.
    pub remove: Vec<String>,
}

/// The largest `cache.max_body_bytes` (16 MiB). A copy being stored is assembled whole in the
/// isolate's memory (128 MB, shared by every request it serves) before it is written, so the
/// bound must leave room for several concurrent misses; larger bodies still stream through,
/// unstored.
pub const CACHE_BODY_MAX_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct CacheSpec {
    /// The longest a response is kept, and the cap on every freshness lifetime.
    pub ttl_s: u64,
    /// The freshness of a response that states none (RFC 9111 §4.2.2 heuristic); 0 = none.
    pub default_ttl_s: u64,
    pub stale_if_error_s: u64,
    /// How long past its freshness an entry is served while it is refreshed in the
    /// background, when the upstream's directives do not say.
    pub stale_while_revalidate_s: u64,
    /// Obey the client's request `Cache-Control` (`max-age`, `min-fresh`, `max-stale`,
    /// `no-cache`, `only-if-cached`); edge caches usually ignore it.
    pub honor_request_directives: bool,
    /// Lower-case request header names that are part of the cache key.
    pub vary: Vec<String>,
    pub per_consumer: bool,
    pub max_body_bytes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub id: String,
    pub methods: MethodSet,
    pub host: Option<HostPattern>,
    /// The matchit pattern, as written.
    pub path: String,
    /// Parameter names of `path`, in order.
    pub params: Vec<String>,
    pub upstream: usize,
    pub rewrite: Option<Vec<TemplatePart>>,
    pub auth: RouteAuth,
    pub scopes: Vec<String>,
    pub rate_limits: Vec<usize>,
    pub cache: Option<CacheSpec>,
    pub request_headers: HeaderRules,
    pub response_headers: HeaderRules,
    pub observability: RouteObservability,
    /// `match`: header and query conditions (`None`: the route matches on path alone).
    pub conditions: Option<MatchSpec>,
    pub canary: Option<CanarySpec>,
    /// `websocket: true`: the route relays WebSocket handshakes (and nothing else).
    pub websocket: bool,
    /// Index into [`Config::cors`].
    pub cors: Option<usize>,
    /// Indices into [`Config::ip_rules`], in the order listed.
    pub ip_rules: Vec<usize>,
}

impl Route {
    /// The upstreams the route forwards to: its own, then its canary's.
    pub fn upstreams(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.upstream).chain(self.canary.as_ref().map(|c| c.upstream))
    }
}

/// What the gateway writes about every request (top-level `observability`): the access log
/// line, the Analytics Engine data point and the trace context.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observability {
    pub access_log: AccessLogSpec,
    pub metrics: MetricsSpec,
    pub tracing: TracingSpec,
}

/// `observability.access_log`.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessLogSpec {
    /// Share of requests logged (0–1), decided from the trace id.
    pub sample_rate: f64,
    /// Every 5xx and every refusal the gateway itself answers is logged whatever the rate.
    pub always_log_errors: bool,
    pub client_ip: ClientIpMode,
    /// Optional members, in the order written.
    pub fields: Vec<LogField>,
    /// Lower-case request header names whose values are logged; credentials are refused.
    pub request_headers: Vec<String>,
    /// Query parameters whose values are logged as `REDACTED`, besides the credential ones.
    pub redact_query: Vec<String>,
}

impl Default for AccessLogSpec {
    fn default() -> AccessLogSpec {
        AccessLogSpec {
            sample_rate: 1.0,
            always_log_errors: true,
            client_ip: ClientIpMode::Truncate,
            fields: Vec::new(),
            request_headers: Vec::new(),
            redact_query: Vec::new(),
        }
    }
}

/// How much of the client address the access log keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIpMode {
    Full,
    /// IPv4 to its /24, IPv6 to its /48.
    Truncate,
    Omit,
}

impl ClientIpMode {
    pub const NAMES: [&'static str; 3] = ["full", "truncate", "omit"];
}

/// Optional access-log members, from the request's Cloudflare properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogField {
    UserAgent,
    Country,
    Asn,
    Colo,
}

impl LogField {
    pub const ALL: [LogField; 4] = [
        LogField::UserAgent,
        LogField::Country,
        LogField::Asn,
        LogField::Colo,
    ];

    /// The name in `fields` and the member name in the log line.
    pub fn name(self) -> &'static str {
        match self {
            LogField::UserAgent => "user_agent",
            LogField::Country => "country",
            LogField::Asn => "asn",
            LogField::Colo => "colo",
        }
    }
}

/// `observability.metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSpec {
    /// Name of the Analytics Engine dataset binding.
    pub binding: String,
    /// Whether `binding` was written in the document: then a missing binding is a fault the
    /// health endpoint reports; the default binding may simply not be declared.
    pub binding_explicit: bool,
    pub index: MetricsIndex,
    /// Share of requests that write a data point (0–1), decided from the trace id.
    pub sample_rate: f64,
}

impl MetricsSpec {
    pub const DEFAULT_BINDING: &'static str = "GATEWAY_METRICS";
}

impl Default for MetricsSpec {
    fn default() -> MetricsSpec {
        MetricsSpec {
            binding: MetricsSpec::DEFAULT_BINDING.to_owned(),
            binding_explicit: false,
            index: MetricsIndex::Route,
            sample_rate: 1.0,
        }
    }
}

/// What a data point is indexed (and so sampled by Analytics Engine) on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsIndex {
    Route,
    Consumer,
    Host,
}

impl MetricsIndex {
    pub const NAMES: [&'static str; 3] = ["route", "consumer", "host"];
}

/// `observability.tracing`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TracingSpec {
    /// Share of new traces (no usable inbound `traceparent`) that are sampled.
    pub sample_rate: f64,
    /// Keep the sampled flag of an inbound `traceparent`.
    pub parent_based: bool,
    /// Return the gateway's `traceparent` to the client.
    pub response_traceparent: bool,
}

impl Default for TracingSpec {
    fn default() -> TracingSpec {
        TracingSpec {
            sample_rate: 1.0,
            parent_based: true,
            response_traceparent: false,
        }
    }
}

/// A route's `observability`: overrides of the top-level defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RouteObservability {
    /// Replaces `access_log.sample_rate` on this route.
    pub log_sample_rate: Option<f64>,
    /// `false`: no data point for this route.
    pub metrics: bool,
    /// `false`: the gateway samples no trace on this route (its span is forwarded unsampled).
    pub tracing: bool,
}

impl Default for RouteObservability {
    fn default() -> RouteObservability {
        RouteObservability {
            log_sample_rate: None,
            metrics: true,
            tracing: true,
        }
    }
}

/// A route's `match`: conditions on the request's headers and query that must all hold. Routes
/// with conditions are tried before routes without them on the same path shape.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MatchSpec {
    /// Lower-case header name and its condition, sorted by name.
    pub headers: Vec<(String, HeaderCondition)>,
    /// Query parameter name and its exact value (both as decoded), sorted by name.
    pub query: Vec<(String, String)>,
}

/// What a `match.headers` entry asks of a request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderCondition {
    /// `"*"`: the header is present, with any value.
    Present,
    /// The header's value is exactly this (case-sensitive).
    Exact(String),
}

/// A route's `canary`: a share of its traffic goes to another upstream, sticky per key.
#[derive(Debug, Clone, PartialEq)]
pub struct CanarySpec {
    /// Index into [`Config::upstreams`]; never the route's own upstream.
    pub upstream: usize,
    /// The canary's share in hundredths of a percent (0–10000): a sticky key whose bucket in
    /// 0..10000 is below it goes to the canary.
    pub basis_points: u32,
    pub sticky: StickyKey,
    /// Lower-case request header whose value `always` / `never` forces the variant; it is
    /// never forwarded.
    pub override_header: Option<String>,
}

/// What keeps a client on one variant of a canary route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StickyKey {
    /// The authenticated consumer (needs auth on the route).
    Consumer,
    /// The address Cloudflare reports.
    Ip,
    /// Lower-case request header name.
    Header(String),
    /// Cookie name.
    Cookie(String),
    /// No stickiness: each request draws from its trace id.
    None,
}
