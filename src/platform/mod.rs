//! The edge: everything that touches the Workers runtime (fetch entry, KV, outbound fetch,
//! secrets). Decisions are made by the core modules; this layer reads inputs and applies them.

mod admin;
mod entry;
mod glue;
mod isolate;
mod respond;
mod upstream;
