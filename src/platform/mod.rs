//! The edge: everything that touches the Workers runtime (fetch entry, KV, outbound fetch,
//! secrets). Decisions are made by the core modules; this layer reads inputs and applies them.

mod admin;
mod config_admin;
mod entry;
mod glue;
mod isolate;
mod keys;
mod limiter;
mod ports;
mod request;
mod respond;

use crate::forward::Inbound;
use isolate::Live;
use worker::{web_sys, Env};

/// One admin request: what the admin endpoints read.
pub struct Exchange<'a> {
    pub ports: &'a ports::WorkerPorts,
    pub env: &'a Env,
    pub live: &'a Live,
    pub request: &'a web_sys::Request,
    pub inbound: &'a Inbound<'a>,
    pub now_ms: f64,
}
