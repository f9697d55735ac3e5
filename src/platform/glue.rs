//! Bindings to `glue.js`, the bulk Request/Response/Headers operations.

use wasm_bindgen::prelude::*;
use worker::{js_sys, web_sys};

#[wasm_bindgen(module = "/src/platform/glue.js")]
extern "C" {
    #[wasm_bindgen(catch)]
    pub fn forward(
        request: &web_sys::Request,
        url: &str,
        remove: &str,
        set: &str,
        timeout_ms: f64,
        limit: f64,
        fetcher: &JsValue,
    ) -> Result<js_sys::Promise, JsValue>;

    pub fn has_body(request: &web_sys::Request) -> bool;

    #[wasm_bindgen(catch)]
    pub fn relay(
        response: &web_sys::Response,
        remove: &str,
        set: &str,
    ) -> Result<web_sys::Response, JsValue>;

    #[wasm_bindgen(catch)]
    pub fn respond(status: u16, body: &str, set: &str) -> Result<web_sys::Response, JsValue>;

    pub fn pick(headers: &web_sys::Headers, names: &str) -> String;
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
