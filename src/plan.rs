//! A route's plan: the stages it runs, in the one fixed order. Compiled with the configuration
//! (`gateway`), run by the pipeline's driver (`pipeline::driver`).

use crate::config::{Route, RouteAuth};

/// The stages a route runs, in the order they run. The order is fixed here and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageKind {
    /// Refuses clients by address, country or ASN before anything else on the route.
    IpRules,
    /// Answers preflights and adds the CORS headers to every answer.
    Cors,
    Auth,
    RateLimit,
    /// Chooses the variant (primary or canary upstream) of a canary route.
    Canary,
    /// Looks up, revalidates and stores responses; it carries out the exchange itself.
    Cache,
    /// Hands the upstream exchange to the platform's executor.
    Forward,
    /// Like `Forward`; an unsafe request waits for its answer, to invalidate what a cached
    /// route serving GET of its URL, or of a URL the answer names, stored
    /// (`pipeline::invalidate`).
    Invalidate,
    /// Relays a WebSocket handshake, and the upstream's 101, through the executor.
    WebSocket,
}

impl StageKind {
    pub fn name(self) -> &'static str {
        match self {
            StageKind::IpRules => "ip_rules",
            StageKind::Cors => "cors",
            StageKind::Auth => "auth",
            StageKind::RateLimit => "rate_limit",
            StageKind::Cache => "cache",
            StageKind::Forward => "forward",
            StageKind::Invalidate => "invalidate",
            StageKind::Canary => "canary",
            StageKind::WebSocket => "websocket",
        }
    }
}

/// A route's compiled plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub stages: Vec<StageKind>,
}

impl Plan {
    /// The plan of `route`: its stages in the fixed order, the terminal one last.
    /// `invalidates_cached`: this route's unsafe requests may invalidate a cached route's
    /// entries (see `Gateway::compile`).
    pub fn for_route(route: &Route, invalidates_cached: bool) -> Plan {
        let mut stages = Vec::with_capacity(7);
        if !route.ip_rules.is_empty() {
            stages.push(StageKind::IpRules);
        }
        if route.cors.is_some() {
            stages.push(StageKind::Cors);
        }
        if !matches!(route.auth, RouteAuth::None) {
            stages.push(StageKind::Auth);
        }
        if !route.rate_limits.is_empty() {
            stages.push(StageKind::RateLimit);
        }
        if route.canary.is_some() {
            stages.push(StageKind::Canary);
        }
        stages.push(if route.websocket {
            StageKind::WebSocket
        } else if route.cache.is_some() {
            StageKind::Cache
        } else if invalidates_cached {
            StageKind::Invalidate
        } else {
            StageKind::Forward
        });
        Plan { stages }
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.stages.iter().map(|s| s.name()).collect()
    }
}
