//! The request pipeline: every route compiles to a [`Plan`] of typed stages in one fixed order,
//! and one driver runs it.
//!
//! ```text
//! admin? ─▶ ip rules ─▶ cors ─▶ auth ─▶ rate limit ─▶ canary ─▶ cache ─▶ forward | websocket
//!                                                 (a route's plan omits what it lacks)
//!                                                 └──▶ completion point: access log, metrics, trace
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
pub mod cache_refresh;
pub mod cache_request;
pub mod cache_store;
pub mod canary;
pub mod complete;
pub mod cors;
pub mod ctx;
pub mod driver;
pub mod exchange;
pub mod invalidate;
pub mod ip_rules;
pub mod leases;
pub mod ports;
pub mod ratelimit;
pub mod state;
pub mod websocket;

#[cfg(not(target_arch = "wasm32"))]
pub mod fakes;

pub use ctx::{Ctx, Identity};
pub use driver::{resume, start, Flow, Started};
pub use ports::Ports;

pub use crate::plan::{Plan, StageKind};

#[cfg(test)]
pub(crate) mod tests;
