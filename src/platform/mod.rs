//! The edge: everything that touches the Workers runtime (fetch entry, KV, outbound fetch,
//! secrets). Decisions are made by the core modules; this layer reads inputs and applies them.

mod admin;
mod auth;
mod cache;
mod config_admin;
mod entry;
mod glue;
mod isolate;
mod keys;
mod limiter;
mod ratelimit;
mod respond;
mod upstream;

use crate::forward::{Inbound, Trace};
use isolate::Live;
use worker::{js_sys, web_sys, worker_sys, Env};

/// One request in flight: what every stage after routing reads.
pub struct Exchange<'a> {
    pub env: &'a Env,
    pub ctx: &'a worker_sys::Context,
    pub live: &'a Live,
    pub request: &'a web_sys::Request,
    pub inbound: &'a Inbound<'a>,
    pub trace: &'a Trace,
    pub now_ms: f64,
}

impl Exchange<'_> {
    /// Lets `promise` (a cache write) finish after the response has been sent.
    pub fn wait_until(&self, promise: &js_sys::Promise) {
        let _ = self.ctx.wait_until(promise);
    }
}
