//! The request pipeline: every route compiles to a [`Plan`] of typed stages in one fixed order,
//! and one driver runs it.
//!
//! ```text
//! admin? ─▶ auth ─▶ rate limit ─▶ cache ─▶ forward          (a route's plan omits what it lacks)
//!                                     └──▶ completion point: access log, metrics, trace
//! ```
//!
//! A stage's request step answers [`Step::Next`], [`Step::Reply`], [`Step::Fail`] or
//! [`Step::Wait`]; only `Wait` needs the stage's asynchronous step. The driver stays
//! synchronous until the first `Wait`, so a route whose stages all decide at once (no auth or a
//! cached token, no rate limit or a remembered refusal, a hot cache hit, the upstream exchange
//! itself) needs no Rust future. Stages talk to the platform only through [`ports`]; the
//! isolate-lifetime policy state they keep (JWKS and API-key caches, remembered refusals,
//! breakers) lives in [`state::IsolateState`], in the core, so whole pipelines run on the host
//! over [`fakes`].

pub mod auth;
pub mod cache;
pub mod complete;
pub mod ctx;
pub mod driver;
pub mod exchange;
pub mod ports;
pub mod ratelimit;
pub mod state;

#[cfg(not(target_arch = "wasm32"))]
pub mod fakes;

pub use ctx::{Ctx, Identity};
pub use driver::{resume, start, Flow, Started};
pub use ports::Ports;

use crate::config::{Route, RouteAuth};

/// The stages a route runs, in the order they run. The order is fixed here and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageKind {
    Auth,
    RateLimit,
    /// Looks up, revalidates and stores responses; it carries out the exchange itself.
    Cache,
    /// Hands the upstream exchange to the platform's executor.
    Forward,
}

impl StageKind {
    pub fn name(self) -> &'static str {
        match self {
            StageKind::Auth => "auth",
            StageKind::RateLimit => "rate_limit",
            StageKind::Cache => "cache",
            StageKind::Forward => "forward",
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
    pub fn for_route(route: &Route) -> Plan {
        let mut stages = Vec::with_capacity(4);
        if !matches!(route.auth, RouteAuth::None) {
            stages.push(StageKind::Auth);
        }
        if !route.rate_limits.is_empty() {
            stages.push(StageKind::RateLimit);
        }
        stages.push(if route.cache.is_some() {
            StageKind::Cache
        } else {
            StageKind::Forward
        });
        Plan { stages }
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.stages.iter().map(|s| s.name()).collect()
    }
}

#[cfg(test)]
pub(crate) mod tests;
