//! The pipeline's ports over the Workers runtime: one value per request holding what the
//! adapters need (the request, `env`, the execution context, the configuration in force).
//! Background work (cache writes, hot-tier fills) is handed to `waitUntil` here.

use super::glue;
use super::isolate::{Live, CONFIG_BINDING};
use crate::pipeline::ctx::CacheKeys;
use crate::pipeline::exchange::ExchangePlan;
use crate::pipeline::ports::*;
use crate::ratelimit::{wire, Grant};
use std::rc::Rc;
use wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{js_sys, web_sys, worker_sys, Env};

/// Binding of the `RateLimiter` Durable Object namespace (see wrangler.toml).
pub const LIMITER_BINDING: &str = "RATE_LIMITER";
/// How long a bucket may take to answer before its policy's `on_store_error` applies.
const STORE_TIMEOUT_MS: f64 = 1_000.0;

/// The platform for one request.
pub struct WorkerPorts {
    pub env: Env,
    pub ctx: worker_sys::Context,
    pub request: web_sys::Request,
    pub live: Rc<Live>,
}

impl WorkerPorts {
    fn wait_until(&self, promise: &js_sys::Promise) {
        let _ = self.ctx.wait_until(promise);
    }
}

fn pairs(set: &[(String, String)]) -> String {
    glue::pairs(set)
}

fn present(joined: &str) -> Vec<Option<String>> {
    joined
        .split('\r')
        .map(|v| v.strip_prefix('1').map(str::to_owned))
        .collect()
}

impl Responses for WorkerPorts {
    type Response = web_sys::Response;
    fn status(&self, r: &web_sys::Response) -> u16 {
        r.status()
    }
    fn headers(&self, r: &web_sys::Response, names: &[&str]) -> Vec<Option<String>> {
        present(&glue::response_headers(r, &glue::join(names, '\n')))
    }
    fn discard(&self, r: web_sys::Response) {
        if let Some(body) = r.body() {
            let _ = body.cancel();
        }
    }
    fn reply(
        &self,
        status: u16,
        headers: &[(String, String)],
    ) -> Result<web_sys::Response, String> {
        glue::respond(status, "", &pairs(headers)).map_err(|e| super::respond::reason(&e))
    }
}

impl RequestHeaders for WorkerPorts {
    fn request_headers(&self, names: &[&str]) -> Vec<Option<String>> {
        present(&glue::request_headers(
            &self.request,
            &glue::join(names, '\n'),
        ))
    }
    fn request_header(&self, name: &str) -> Option<String> {
        self.request.headers().get(name).ok().flatten()
    }
}

impl Clock for WorkerPorts {
    fn now_ms(&self) -> f64 {
        js_sys::Date::now()
    }
}

impl Kv for WorkerPorts {
    async fn kv_text(&self, key: &str) -> Result<Option<String>, String> {
        let kv = self
            .env
            .kv(CONFIG_BINDING)
            .map_err(|e| format!("KV binding: {e}"))?;
        kv.get(key).text().await.map_err(|e| e.to_string())
    }
}

impl Secrets for WorkerPorts {
    fn secret(&self, name: &str) -> Option<String> {
        self.env.secret(name).ok().map(|s| s.to_string())
    }
}

impl Documents for WorkerPorts {
    async fn fetch_document(
        &self,
        url: &str,
        timeout_ms: f64,
        max_bytes: usize,
    ) -> Result<Document, String> {
        let raw = JsFuture::from(glue::fetch_document(url, timeout_ms, max_bytes as f64))
            .await
            .map_err(|e: JsValue| e.as_string().unwrap_or_else(|| "fetch failed".into()))?
            .as_string()
            .ok_or("unreadable document")?;
        let mut parts = raw.splitn(4, '\r');
        Ok(Document {
            status: parts.next().and_then(|s| s.parse().ok()).unwrap_or(0),
            cache_control: parts.next().unwrap_or("").to_owned(),
            url: parts.next().unwrap_or("").to_owned(),
            body: parts.next().unwrap_or("").to_owned(),
        })
    }
    async fn cached_document(&self, url: &str, max_bytes: usize) -> Option<String> {
        JsFuture::from(glue::cached_document(url, max_bytes as f64))
            .await
            .ok()
            .and_then(|v| v.as_string())
    }
    async fn store_document(&self, url: &str, body: &str, ttl_s: u64) {
        let _ = JsFuture::from(glue::store_document(url, body, ttl_s as f64)).await;
    }
}

impl Limiter for WorkerPorts {
    async fn take(&self, asks: &[Take]) -> Vec<Result<Grant, String>> {
        let requests = bucket_lines(
            asks.iter()
                .map(|a| (a.bucket.as_str(), wire::take_query(&a.limits, a.ask))),
        );
        let answers = JsFuture::from(glue::take_tokens(
            &self.env,
            LIMITER_BINDING,
            &requests,
            STORE_TIMEOUT_MS,
        ))
        .await
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default();
        let mut lines = answers.split('\n');
        asks.iter()
            .map(|_| wire::read_answer(lines.next().unwrap_or("err\tno answer")))
            .collect()
    }

    fn give_back(&self, offers: &[GiveBack]) {
        let lines = bucket_lines(offers.iter().map(|o| {
            (
                o.bucket.as_str(),
                wire::give_back_query(&o.limits, o.tag, o.unused),
            )
        }));
        self.wait_until(&glue::give_back(&self.env, LIMITER_BINDING, &lines));
    }
}

/// "bucket\tquery" lines, "\n"-joined, as `take_tokens` and `give_back` read them.
fn bucket_lines<'a>(items: impl Iterator<Item = (&'a str, String)>) -> String {
    let mut out = String::new();
    for (n, (bucket, query)) in items.enumerate() {
        if n > 0 {
            out.push('\n');
        }
        out.push_str(bucket);
        out.push('\t');
        out.push_str(&query);
    }
    out
}

/// Reads the executor's report: `[target, ok, target, ok, …]`.
pub fn report_of(attempts: &JsValue, upstream_ms: f64) -> ExchangeReport {
    let list = js_sys::Array::from(attempts);
    let numbers: Vec<f64> = list.iter().filter_map(|v| v.as_f64()).collect();
    ExchangeReport {
        attempts: numbers
            .chunks_exact(2)
            .map(|c| (c[0] as usize, c[1] != 0.0))
            .collect(),
        upstream_ms,
    }
}

/// The executor's failure code (see `js/exchange.js`), as the pipeline's failure.
pub fn failure_of(code: u32, reason: String) -> Option<ExchangeFailure> {
    match code {
        0 => None,
        1 => Some(ExchangeFailure::Timeout),
        2 => Some(ExchangeFailure::TooLarge),
        4 => Some(ExchangeFailure::InvalidResponse(reason)),
        _ => Some(ExchangeFailure::Unreachable(reason)),
    }
}

impl Upstream for WorkerPorts {
    async fn exchange(
        &self,
        plan: &ExchangePlan,
    ) -> (Result<web_sys::Response, ExchangeFailure>, ExchangeReport) {
        let outcome = match glue::exchange(
            &self.request,
            &self.env,
            &self.live.js_table,
            &plan.to_json(),
        ) {
            Ok(promise) => JsFuture::from(promise).await,
            Err(e) => Err(e),
        };
        let Ok(outcome) = outcome else {
            return (
                Err(ExchangeFailure::Unreachable("the executor failed".into())),
                ExchangeReport::default(),
            );
        };
        let parts = js_sys::Array::from(&outcome);
        let code = parts.get(1).as_f64().unwrap_or(3.0) as u32;
        let reason = parts.get(4).as_string().unwrap_or_default();
        let report = report_of(&parts.get(2), parts.get(3).as_f64().unwrap_or(0.0));
        let result = match failure_of(code, reason) {
            Some(f) => Err(f),
            None => parts
                .get(0)
                .dyn_into::<web_sys::Response>()
                .map_err(|_| ExchangeFailure::Unreachable("no response".into())),
        };
        (result, report)
    }
}

impl ResponseCache for WorkerPorts {
    fn hot_entry(&self, key: &str) -> Option<HotEntry> {
        let facts = glue::hot_facts(key, &self.request);
        if facts.is_empty() {
            return None;
        }
        let f: Vec<Option<&str>> = facts
            .split('\r')
            .map(|v| (!v.is_empty()).then_some(v))
            .collect();
        let field = |i: usize| f.get(i).copied().flatten();
        let get = |i: usize| field(i).map(str::to_owned);
        let condition = |i: usize| {
            field(i)
                .and_then(|v| v.strip_prefix('1'))
                .map(str::to_owned)
        };
        // status, the bookkeeping values, ETag, Last-Modified, until, the client's two
        // conditions, and whether it has a Range and a Cache-Control.
        let n = crate::cache::entry::BOOKKEEPING.len();
        let flags = field(n + 6).unwrap_or("00");
        Some(HotEntry {
            status: field(0)?.parse().ok()?,
            // Parsed from the borrowed values: no copy of them is needed.
            meta: f
                .get(1..=n)
                .and_then(crate::cache::entry::EntryMeta::from_bookkeeping),
            etag: get(n + 1),
            last_modified: get(n + 2),
            until_ms: field(n + 3)?.parse().ok()?,
            if_none_match: condition(n + 4),
            if_modified_since: condition(n + 5),
            has_range: flags.starts_with('1'),
            has_cache_control: flags.get(1..2) == Some("1"),
        })
    }
    fn hot_serve(
        &self,
        key: &str,
        remove: &[&str],
        set: &[(String, String)],
        not_modified: bool,
        head_only: bool,
    ) -> Result<web_sys::Response, String> {
        glue::hot_serve(
            key,
            &glue::join(remove, '\n'),
            &pairs(set),
            not_modified,
            head_only,
        )
        .map_err(|e| super::respond::reason(&e))
    }
    fn hot_fill(
        &self,
        key: &str,
        marker: Option<&str>,
        entry: &web_sys::Response,
        status: u16,
        max_bytes: u64,
        until_ms: f64,
    ) {
        self.wait_until(&glue::hot_fill(
            key,
            marker.unwrap_or(""),
            entry,
            status,
            max_bytes as f64,
            until_ms,
        ));
    }
    async fn lookup(
        &self,
        key: &str,
        marker: Option<&str>,
    ) -> (Option<web_sys::Response>, Option<u64>) {
        let found = JsFuture::from(glue::cache_match(key, marker.unwrap_or("")))
            .await
            .ok()
            .map(|v| js_sys::Array::from(&v));
        match found {
            Some(pair) => (
                pair.get(0).dyn_into::<web_sys::Response>().ok(),
                pair.get(1).as_string().and_then(|s| s.parse::<u64>().ok()),
            ),
            None => (None, None),
        }
    }
    fn serve_entry(
        &self,
        entry: web_sys::Response,
        remove: &[&str],
        set: &[(String, String)],
        how: Serve,
    ) -> Result<web_sys::Response, String> {
        let range = how
            .range
            .map(|(start, end, length)| format!("{start}-{end}/{length}"))
            .unwrap_or_default();
        glue::serve_entry(
            &entry,
            how.status,
            &glue::join(remove, '\n'),
            &pairs(set),
            how.not_modified,
            how.head_only,
            &range,
        )
        .map_err(|e| super::respond::reason(&e))
    }
    fn update_entry(
        &self,
        entry: web_sys::Response,
        from: &web_sys::Response,
        exclude: &[&str],
        remove: &[&str],
        meta: &[(String, String)],
    ) -> Result<web_sys::Response, String> {
        glue::update_entry(
            &entry,
            from,
            &glue::join(exclude, '\n'),
            &glue::join(remove, '\n'),
            &pairs(meta),
        )
        .map_err(|e| super::respond::reason(&e))
    }
    fn store(
        &self,
        key: &str,
        response: &web_sys::Response,
        remove: &[&str],
        meta: &[(String, String)],
        max_bytes: u64,
        guard: Guard<'_>,
    ) {
        self.wait_until(&glue::store_entry(
            key,
            response,
            &glue::join(remove, '\n'),
            &pairs(meta),
            max_bytes as f64,
            guard.marker,
            guard.stored_at_ms as f64,
        ));
    }
    fn refresh(&self, key: &str, entry: &web_sys::Response, length: Option<u64>, guard: Guard<'_>) {
        let length = length.map_or(-1.0, |n| n as f64);
        self.wait_until(&glue::refresh_entry(
            key,
            entry,
            length,
            guard.marker,
            guard.stored_at_ms as f64,
        ));
    }
    fn finish(
        &self,
        response: web_sys::Response,
        set: &[(String, String)],
        not_modified: bool,
        remove: &[&str],
    ) -> Result<web_sys::Response, String> {
        glue::finish_response(
            &response,
            &pairs(set),
            not_modified,
            &glue::join(remove, '\n'),
        )
        .map_err(|e| super::respond::reason(&e))
    }
    async fn invalidate(&self, keys: &CacheKeys, at_ms: f64, marker_ttl_s: u64) {
        // Hot entries are kept under the marker a lookup reads; only routes with variants have one.
        glue::hot_drop(&keys.entry, keys.marker.as_deref().unwrap_or(""));
        let _ = JsFuture::from(glue::cache_invalidate(
            &keys.entry,
            &keys.guard(),
            at_ms,
            marker_ttl_s as f64,
        ))
        .await;
    }
}

impl Events for WorkerPorts {
    fn event(&self, level: Level, line: serde_json::Value) {
        super::respond::log_event(level, line, Some(&self.live.gateway.redactor));
    }
}
