//! Bindings to `glue.js`, the bulk Request/Response/Headers operations.

use crate::forward::CONNECTION_PROTECTED;
use crate::gateway::Gateway;
use wasm_bindgen::prelude::*;
use worker::{js_sys, web_sys};

#[wasm_bindgen(module = "/src/platform/glue.js")]
extern "C" {
    fn route_table(json: &str) -> JsValue;

    #[wasm_bindgen(catch)]
    pub fn proxy(
        request: &web_sys::Request,
        table: &JsValue,
        index: u32,
        url: &str,
        extra_remove: &str,
        forwarded_for: &str,
        proto: &str,
        host: &str,
        request_id: &str,
        traceparent: &str,
        extra_set: &str,
        timeout_ms: f64,
        limit: f64,
        fetcher: &JsValue,
    ) -> Result<js_sys::Promise, JsValue>;

    pub fn has_body(request: &web_sys::Request) -> bool;

    #[wasm_bindgen(catch)]
    pub fn respond(status: u16, body: &str, set: &str) -> Result<web_sys::Response, JsValue>;

    pub fn pick(headers: &web_sys::Headers, table: &JsValue) -> String;
}

/// Request headers the entry reads for every request, in the order [`pick`] returns them.
pub fn inbound_header_names(gateway: &Gateway) -> [&str; 5] {
    [
        "content-length",
        "connection",
        &gateway.config.settings.request_id_header,
        "traceparent",
        "cf-connecting-ip",
    ]
}

/// Hands a configuration's fixed header edits to JS once, as the table `proxy` reads.
pub fn table_for(gateway: &Gateway) -> JsValue {
    let routes: Vec<serde_json::Value> = (0..gateway.config.routes.len())
        .map(|i| {
            let e = gateway.route_edits(i);
            serde_json::json!({
                "request": { "remove": e.request.remove, "set": e.request.set },
                "response": { "remove": e.response.remove, "set": e.response.set },
            })
        })
        .collect();
    let table = serde_json::json!({
        "requestIdHeader": gateway.config.settings.request_id_header,
        "inboundHeaders": inbound_header_names(gateway),
        "connectionProtected": CONNECTION_PROTECTED,
        "routes": routes,
    });
    route_table(&table.to_string())
}

/// Joins header names for `glue.js`.
pub fn names<S: AsRef<str>>(names: &[S]) -> String {
    let mut out = String::new();
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(n.as_ref());
    }
    out
}

/// Joins name/value pairs for `glue.js`.
pub fn pairs<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(k.as_ref());
        out.push('\n');
        out.push_str(v.as_ref());
    }
    out
}

/// Splits what [`pick`] returned into one optional value per requested name.
pub fn picked(joined: &str) -> impl Iterator<Item = Option<&str>> {
    joined.split('\n').map(|v| v.strip_prefix('1'))
}
