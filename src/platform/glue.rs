//! Bindings to the JS modules in `src/platform/js/` (the exchange executor, the cache and its
//! hot tier, bulk Request/Response/Headers operations), and the JS table each configuration
//! hands over once.

use crate::forward::CONNECTION_PROTECTED;
use crate::gateway::Gateway;
use wasm_bindgen::prelude::*;
use worker::{js_sys, web_sys, Env};

/// The executor of exchange plans and the per-configuration table it reads.
#[wasm_bindgen(module = "/src/platform/js/exchange.js")]
extern "C" {
    fn route_table(json: &str, finish: &JsValue) -> JsValue;
    /// Carries out an exchange plan and resolves to the client's response, after calling the
    /// table's `finish` with the outcome.
    #[wasm_bindgen(catch)]
    pub fn proxy(
        request: &web_sys::Request,
        env: &Env,
        table: &JsValue,
        plan: &str,
        handle: u32,
    ) -> Result<js_sys::Promise, JsValue>;
    /// Carries out an exchange plan and resolves to its raw outcome, for a stage that
    /// continues with the response.
    #[wasm_bindgen(catch)]
    pub fn exchange(
        request: &web_sys::Request,
        env: &Env,
        table: &JsValue,
        plan: &str,
    ) -> Result<js_sys::Promise, JsValue>;
}

/// The completion point's output, and the client facts the access line reads.
#[wasm_bindgen(module = "/src/platform/js/observe.js")]
extern "C" {
    /// Writes what the completion point decided, in one crossing: the access log line (a JSON
    /// object, "" for none) with `console.log`, and the data point (JSON, "" for none) into the
    /// dataset bound as `binding`. 0 written (or no point), 1 no such binding, 2 the binding
    /// refused it.
    pub fn emit(env: &Env, binding: &str, line: &str, point: &str) -> u8;
    /// The client's User-Agent and Cloudflare's country, ASN and colo, then the named request
    /// headers ("1"+value or "0"), "\r"-joined.
    pub fn log_facts(request: &web_sys::Request, names: &str) -> String;
}

/// Reading named headers, and the gateway's own answers.
#[wasm_bindgen(module = "/src/platform/js/headers.js")]
extern "C" {
    #[wasm_bindgen(js_name = named_headers)]
    pub fn response_headers(response: &web_sys::Response, names: &str) -> String;
    #[wasm_bindgen(catch)]
    pub fn respond(status: u16, body: &str, set: &str) -> Result<web_sys::Response, JsValue>;
    pub fn read_request(request: &web_sys::Request, table: &JsValue) -> String;
    #[wasm_bindgen(js_name = named_headers)]
    pub fn request_headers(request: &web_sys::Request, names: &str) -> String;
}

/// Request bodies the gateway answers without reading.
#[wasm_bindgen(module = "/src/platform/js/body.js")]
extern "C" {
    /// The gateway's own answer, once the request's unread body has been drained (so that
    /// the runtime does not reset the connection under the answer).
    pub fn answer_after_body(
        request: &web_sys::Request,
        response: &web_sys::Response,
    ) -> js_sys::Promise;
    /// The body as text, or null once it is over `max_bytes` (the rest is drained, not kept).
    pub fn bounded_text(request: &web_sys::Request, max_bytes: f64) -> js_sys::Promise;
}

/// The response cache: entries looked up, served, stored, refreshed and invalidated.
#[wasm_bindgen(module = "/src/platform/js/cache.js")]
extern "C" {
    pub fn cache_match(key: &str, marker: &str) -> js_sys::Promise;
    #[wasm_bindgen(catch)]
    pub fn serve_entry(
        entry: &web_sys::Response,
        status: u16,
        remove: &str,
        set: &str,
        not_modified: bool,
        head_only: bool,
        range: &str,
    ) -> Result<web_sys::Response, JsValue>;
    #[wasm_bindgen(catch)]
    pub fn update_entry(
        entry: &web_sys::Response,
        from: &web_sys::Response,
        exclude: &str,
        remove: &str,
        meta: &str,
    ) -> Result<web_sys::Response, JsValue>;
    /// `guard` and `stored_at_ms`: see `pipeline::ports::Guard`.
    pub fn store_entry(
        key: &str,
        response: &web_sys::Response,
        remove: &str,
        meta: &str,
        max_bytes: f64,
        guard: &str,
        stored_at_ms: f64,
    ) -> js_sys::Promise;
    /// `length` is the stored body's, or -1 when unknown.
    pub fn refresh_entry(
        key: &str,
        entry: &web_sys::Response,
        length: f64,
        guard: &str,
        stored_at_ms: f64,
    ) -> js_sys::Promise;
    /// The client's response from a fresh upstream one: `remove` ("\n"-joined) dropped, `set`
    /// pairs added, and a 304 when `not_modified`.
    #[wasm_bindgen(catch)]
    pub fn finish_response(
        response: &web_sys::Response,
        set: &str,
        not_modified: bool,
        remove: &str,
    ) -> Result<web_sys::Response, JsValue>;
    pub fn cache_invalidate(
        key: &str,
        marker: &str,
        at_ms: f64,
        marker_ttl_s: f64,
    ) -> js_sys::Promise;
}

/// The isolate's hot tier of cache entries.
#[wasm_bindgen(module = "/src/platform/js/hot.js")]
extern "C" {
    pub fn hot_fill(
        key: &str,
        marker: &str,
        entry: &web_sys::Response,
        status: u16,
        max_bytes: f64,
        until_ms: f64,
    ) -> js_sys::Promise;
    pub fn hot_facts(key: &str, request: &web_sys::Request) -> String;
    #[wasm_bindgen(catch)]
    pub fn hot_serve(
        key: &str,
        remove: &str,
        set: &str,
        not_modified: bool,
        head_only: bool,
    ) -> Result<web_sys::Response, JsValue>;
    pub fn hot_drop(key: &str, marker: &str);
}

/// Documents, rate-limit buckets and the Durable Object's storage.
#[wasm_bindgen(module = "/src/platform/js/stores.js")]
extern "C" {
    pub fn fetch_document(url: &str, timeout_ms: f64, max_bytes: f64) -> js_sys::Promise;
    pub fn cached_document(url: &str, max_bytes: f64) -> js_sys::Promise;
    pub fn store_document(url: &str, body: &str, ttl_seconds: f64) -> js_sys::Promise;
    pub fn take_tokens(
        env: &Env,
        binding: &str,
        requests: &str,
        timeout_ms: f64,
    ) -> js_sys::Promise;
    /// Offers unspent lease admissions back ("\n"-joined "name\tquery"), without waiting.
    pub fn give_back(env: &Env, binding: &str, offers: &str) -> js_sys::Promise;
    pub fn put_value(storage: &worker::worker_sys::DurableObjectStorage, key: &str, value: &str);
    pub fn after(ms: u32, callback: &JsValue);
    pub fn schedule_alarm(storage: &worker::worker_sys::DurableObjectStorage, at_ms: f64);
}

/// Request headers the entry reads for every request, in the order [`read_request`] returns
/// them after the URL and method: six fixed ones, then those `match` conditions read.
pub fn inbound_header_names(gateway: &Gateway) -> Vec<&str> {
    let fixed = [
        "content-length",
        "connection",
        &gateway.config.settings.request_id_header,
        "traceparent",
        "cf-connecting-ip",
        "transfer-encoding",
    ];
    fixed
        .into_iter()
        .chain(gateway.match_headers().iter().map(String::as_str))
        .collect()
}

/// Hands a configuration's fixed header edits and the completion callback to JS once, as the
/// table `proxy` reads.
pub fn table_for(gateway: &Gateway, finish: &JsValue) -> JsValue {
    let (sets, of_route) = gateway.edit_sets();
    let edits: Vec<serde_json::Value> = sets
        .iter()
        .map(|e| {
            serde_json::json!({
                "request": { "remove": e.request.remove, "set": e.request.set, "keyed": e.keyed },
                "response": { "remove": e.response.remove, "set": e.response.set },
            })
        })
        .collect();
    let table = serde_json::json!({
        "requestIdHeader": gateway.config.settings.request_id_header,
        "inboundHeaders": inbound_header_names(gateway),
        "connectionProtected": CONNECTION_PROTECTED,
        "removePrefix": crate::gateway::CLIENT_FORWARDING_PREFIX,
        "bookkeeping": crate::cache::entry::BOOKKEEPING,
        "notIn304": crate::cache::entry::NOT_IN_304,
        "storeBudget": crate::pipeline::cache::STORE_BUFFER_MAX_BYTES,
        "edits": edits,
        "routes": of_route,
    });
    route_table(&table.to_string(), finish)
}

/// Joins strings with `separator` for the JS modules.
pub fn join<S: AsRef<str>>(items: &[S], separator: char) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(separator);
        }
        out.push_str(item.as_ref());
    }
    out
}

/// Joins name/value pairs with newlines for the JS modules.
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
