//! An edge API gateway for Cloudflare Workers.
//!
//! The pure core (configuration, canonical path, routing, header rules, and the decisions of
//! auth, rate limiting and caching) builds and is tested on the host; `platform` is the thin
//! edge that touches the Workers runtime and exists only on wasm32.

pub mod auth;
pub mod balance;
pub mod cache;
pub mod config;
pub mod control;
pub mod error;
pub mod forward;
pub mod gateway;
pub mod headers;
pub mod hex;
pub mod ids;
pub mod jose;
pub mod json;
pub mod observe;
pub mod path;
pub mod pipeline;
pub mod plan;
pub mod ratelimit;
pub mod router;
pub mod traffic;

#[cfg(target_arch = "wasm32")]
mod platform;
