//! In-memory implementations of every port, with failures on demand, for host tests of whole
//! pipelines. The limiter runs the real GCRA; the cache keeps real entries; the upstream
//! answers from a script and records every plan it was given.

use super::ctx::CacheKeys;
use super::exchange::ExchangePlan;
use super::ports::*;
use crate::ratelimit::{Grant, Owner};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};

/// A response held by the fakes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FakeResponse {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl FakeResponse {
    pub fn new(status: u16, headers: &[(&str, &str)], body: &str) -> FakeResponse {
        FakeResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
                .collect(),
            body: body.to_owned(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Replaces `name` (tests tamper with stored entries through it).
    pub fn set(&mut self, name: &str, value: &str) {
        self.headers.retain(|(k, _)| k != name);
        self.headers.push((name.to_owned(), value.to_owned()));
    }

    fn remove(&mut self, name: &str) {
        self.headers.retain(|(k, _)| k != name);
    }
}

/// What the fake upstream does for one exchange.
#[derive(Debug, Clone)]
pub enum Script {
    Respond(FakeResponse),
    Fail(ExchangeFailure),
}

/// Every port, in memory.
#[derive(Default)]
pub struct Fakes {
    pub now_ms: Cell<f64>,
    pub request_headers: RefCell<HashMap<String, String>>,
    pub kv: RefCell<HashMap<String, String>>,
    pub kv_fails: Cell<bool>,
    pub kv_reads: Cell<u32>,
    /// How long a KV read takes: the clock moves on by this much while it is waited for.
    pub kv_takes_ms: Cell<f64>,
    pub secrets: RefCell<HashMap<String, String>>,
    /// URL → what fetching it gives.
    pub documents: RefCell<HashMap<String, Result<Document, String>>>,
    pub document_fetches: Cell<u32>,
    pub shared_documents: RefCell<HashMap<String, String>>,
    /// The largest body the core last agreed to read from the shared cache.
    pub shared_document_bound: Cell<Option<usize>>,
    pub buckets: RefCell<HashMap<String, Owner>>,
    pub limiter_fails: Cell<bool>,
    pub limiter_calls: Cell<u32>,
    /// Every give-back offered, in order.
    pub given_back: RefCell<Vec<GiveBack>>,
    /// Answers of the upstream, in order; when empty it answers 200 "ok".
    pub upstream: RefCell<VecDeque<Script>>,
    pub plans: RefCell<Vec<ExchangePlan>>,
    pub cache: RefCell<HashMap<String, FakeResponse>>,
    pub markers: RefCell<HashMap<String, u64>>,
    /// Invalidations asked for, one per call.
    pub invalidations: Cell<u32>,
    pub hot: RefCell<HashMap<String, (FakeResponse, f64, u16)>>,
    pub cache_fails: Cell<bool>,
    /// Cache writes stay in flight (in `in_flight`) until [`Fakes::land_writes`], as another
    /// isolate's writes are while this one invalidates.
    pub hold_writes: Cell<bool>,
    pub in_flight: RefCell<Vec<(String, FakeResponse, String, u64)>>,
    pub events: RefCell<Vec<serde_json::Value>>,
}

impl Fakes {
    pub fn at(now_ms: f64) -> Fakes {
        let f = Fakes::default();
        f.now_ms.set(now_ms);
        f
    }

    /// Lands the writes held in flight, each then checked against its guard as the platform
    /// checks it (`ports::Guard`).
    pub fn land_writes(&self) {
        for (key, copy, marker, stored_at_ms) in self.in_flight.take() {
            self.write(
                key,
                copy,
                Guard {
                    marker: &marker,
                    stored_at_ms,
                },
            );
        }
    }

    fn write(&self, key: String, copy: FakeResponse, guard: Guard<'_>) {
        if self.hold_writes.get() {
            let held = (key, copy, guard.marker.to_owned(), guard.stored_at_ms);
            self.in_flight.borrow_mut().push(held);
            return;
        }
        let changed = self.markers.borrow().get(guard.marker).copied();
        if changed.is_some_and(|at| at >= guard.stored_at_ms) {
            self.cache.borrow_mut().remove(&key);
        } else {
            self.cache.borrow_mut().insert(key, copy);
        }
    }

    pub fn header(&self, name: &str, value: &str) -> &Self {
        self.request_headers
            .borrow_mut()
            .insert(name.to_ascii_lowercase(), value.to_owned());
        self
    }

    pub fn answer(&self, script: Script) -> &Self {
        self.upstream.borrow_mut().push_back(script);
        self
    }

    pub fn exchanges(&self) -> usize {
        self.plans.borrow().len()
    }
}

impl Responses for Fakes {
    type Response = FakeResponse;
    fn status(&self, r: &FakeResponse) -> u16 {
        r.status
    }
    fn headers(&self, r: &FakeResponse, names: &[&str]) -> Vec<Option<String>> {
        names
            .iter()
            .map(|n| r.header(n).map(str::to_owned))
            .collect()
    }
    fn discard(&self, _: FakeResponse) {}
    fn reply(&self, status: u16, headers: &[(String, String)]) -> Result<FakeResponse, String> {
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Ok(FakeResponse::new(status, &pairs, ""))
    }
}

impl RequestHeaders for Fakes {
    fn request_headers(&self, names: &[&str]) -> Vec<Option<String>> {
        let h = self.request_headers.borrow();
        names.iter().map(|n| h.get(*n).cloned()).collect()
    }
}

impl Clock for Fakes {
    fn now_ms(&self) -> f64 {
        self.now_ms.get()
    }
}

impl Kv for Fakes {
    async fn kv_text(&self, key: &str) -> Result<Option<String>, String> {
        self.kv_reads.set(self.kv_reads.get() + 1);
        self.now_ms.set(self.now_ms.get() + self.kv_takes_ms.get());
        if self.kv_fails.get() {
            return Err("KV is down".into());
        }
        Ok(self.kv.borrow().get(key).cloned())
    }
}

impl Secrets for Fakes {
    fn secret(&self, name: &str) -> Option<String> {
        self.secrets.borrow().get(name).cloned()
    }
}

impl Documents for Fakes {
    async fn fetch_document(
        &self,
        url: &str,
        _timeout_ms: f64,
        max_bytes: usize,
    ) -> Result<Document, String> {
        self.document_fetches.set(self.document_fetches.get() + 1);
        let document = self
            .documents
            .borrow()
            .get(url)
            .cloned()
            .unwrap_or_else(|| Err("no such host".into()))?;
        if document.body.len() > max_bytes {
            return Err(format!("document exceeds {max_bytes} bytes"));
        }
        Ok(document)
    }
    async fn cached_document(&self, url: &str, max_bytes: usize) -> Option<String> {
        self.shared_document_bound.set(Some(max_bytes));
        // As the adapter does: a body over the bound is not read, and counts as no entry.
        self.shared_documents
            .borrow()
            .get(url)
            .filter(|body| body.len() <= max_bytes)
            .cloned()
    }
    async fn store_document(&self, url: &str, body: &str, _ttl_s: u64) {
        self.shared_documents
            .borrow_mut()
            .insert(url.to_owned(), body.to_owned());
    }
}

impl Limiter for Fakes {
    async fn take(&self, asks: &[Take]) -> Vec<Result<Grant, String>> {
        self.limiter_calls.set(self.limiter_calls.get() + 1);
        let now = self.now_ms.get() as u64;
        asks.iter()
            .map(|ask| {
                if self.limiter_fails.get() {
                    return Err("overloaded".into());
                }
                let mut buckets = self.buckets.borrow_mut();
                let owner = buckets
                    .entry(ask.bucket.clone())
                    .or_insert_with(|| Owner::new(None, 0));
                let (grant, _) = owner.lease(&ask.limits, now, ask.ask);
                Ok(grant)
            })
            .collect()
    }

    fn give_back(&self, offers: &[GiveBack]) {
        self.given_back.borrow_mut().extend(offers.iter().cloned());
        let mut buckets = self.buckets.borrow_mut();
        for offer in offers {
            if let Some(owner) = buckets.get_mut(&offer.bucket) {
                let _ = owner.give_back(&offer.limits, offer.tag, offer.unused);
            }
        }
    }
}

impl Upstream for Fakes {
    async fn exchange(
        &self,
        plan: &ExchangePlan,
    ) -> (Result<FakeResponse, ExchangeFailure>, ExchangeReport) {
        self.plans.borrow_mut().push(plan.clone());
        let mut report = ExchangeReport::default();
        let mut result = Err(ExchangeFailure::Unreachable("no attempt".into()));
        for attempt in &plan.attempts {
            let script = self
                .upstream
                .borrow_mut()
                .pop_front()
                .unwrap_or_else(|| Script::Respond(FakeResponse::new(200, &[], "ok")));
            let retry = match &script {
                Script::Respond(r) => plan.retry_statuses.contains(&r.status),
                Script::Fail(ExchangeFailure::TooLarge) => false,
                Script::Fail(_) => true,
            };
            report.attempts.push((attempt.target, !retry));
            result = match script {
                Script::Respond(mut r) => {
                    for (k, v) in &plan.response_set {
                        r.set(k, v);
                    }
                    Ok(r)
                }
                Script::Fail(f) => Err(f),
            };
            if !retry {
                break;
            }
        }
        (result, report)
    }
}

fn apply(r: &mut FakeResponse, set: &[(String, String)]) {
    for (k, v) in set {
        r.set(k, v);
    }
}

impl ResponseCache for Fakes {
    fn hot_entry(&self, key: &str) -> Option<HotEntry> {
        let hot = self.hot.borrow();
        let (r, until_ms, status) = hot.get(key)?;
        let h = |n: &str| r.header(n).map(str::to_owned);
        let request = self.request_headers.borrow();
        Some(HotEntry {
            status: *status,
            meta: crate::cache::entry::EntryMeta::from_bookkeeping(
                &crate::cache::entry::BOOKKEEPING
                    .iter()
                    .map(|n| r.header(n))
                    .collect::<Vec<_>>(),
            ),
            etag: h("etag"),
            last_modified: h("last-modified"),
            until_ms: *until_ms,
            if_none_match: request.get("if-none-match").cloned(),
            if_modified_since: request.get("if-modified-since").cloned(),
            has_range: request.contains_key("range"),
            has_cache_control: request.contains_key("cache-control"),
        })
    }
    fn hot_serve(
        &self,
        key: &str,
        remove: &[&str],
        set: &[(String, String)],
        not_modified: bool,
        head_only: bool,
    ) -> Result<FakeResponse, String> {
        let (entry, status) = self
            .hot
            .borrow()
            .get(key)
            .map(|(r, _, status)| (r.clone(), *status))
            .ok_or("gone")?;
        self.serve_entry(
            entry,
            remove,
            set,
            Serve {
                status,
                not_modified,
                head_only,
                range: None,
            },
        )
    }
    fn hot_fill(
        &self,
        key: &str,
        _marker: Option<&str>,
        entry: &FakeResponse,
        status: u16,
        max_bytes: u64,
        until_ms: f64,
    ) {
        if entry.body.len() as u64 <= max_bytes {
            self.hot
                .borrow_mut()
                .insert(key.to_owned(), (entry.clone(), until_ms, status));
        }
    }
    async fn lookup(&self, key: &str, marker: Option<&str>) -> (Option<FakeResponse>, Option<u64>) {
        if self.cache_fails.get() {
            return (None, None);
        }
        let at = marker.and_then(|m| self.markers.borrow().get(m).copied());
        (self.cache.borrow().get(key).cloned(), at)
    }
    fn serve_entry(
        &self,
        mut entry: FakeResponse,
        remove: &[&str],
        set: &[(String, String)],
        how: Serve,
    ) -> Result<FakeResponse, String> {
        match entry
            .header(crate::cache::entry::ORIGINAL_CACHE_CONTROL)
            .map(str::to_owned)
        {
            Some(cc) => entry.set("cache-control", &cc),
            None => entry.remove("cache-control"),
        }
        entry.status = how.status;
        for name in crate::cache::entry::BOOKKEEPING {
            entry.remove(name);
        }
        if let (Some((start, end, length)), false) = (how.range, how.not_modified) {
            entry.status = 206;
            entry.body = entry
                .body
                .get(start as usize..=end as usize)
                .unwrap_or("")
                .to_owned();
            entry.set("content-range", &format!("bytes {start}-{end}/{length}"));
            entry.set("content-length", &(end - start + 1).to_string());
        }
        if how.not_modified {
            entry.status = 304;
        }
        if how.not_modified || how.head_only {
            entry.body.clear();
        }
        for name in remove {
            entry.remove(name);
        }
        apply(&mut entry, set);
        Ok(entry)
    }
    fn update_entry(
        &self,
        mut entry: FakeResponse,
        from: &FakeResponse,
        exclude: &[&str],
        remove: &[&str],
        meta: &[(String, String)],
    ) -> Result<FakeResponse, String> {
        for (k, v) in &from.headers {
            if !exclude.contains(&k.as_str()) {
                entry.set(k, v);
            }
        }
        for name in remove {
            entry.remove(name);
        }
        apply(&mut entry, meta);
        Ok(entry)
    }
    fn store(
        &self,
        key: &str,
        response: &FakeResponse,
        remove: &[&str],
        meta: &[(String, String)],
        max_bytes: u64,
        guard: Guard<'_>,
    ) {
        if self.cache_fails.get() || response.body.len() as u64 > max_bytes {
            return;
        }
        let mut copy = response.clone();
        for name in remove {
            copy.remove(name);
        }
        apply(&mut copy, meta);
        copy.status = 200; // as the platform stores it: the status is in the bookkeeping
        self.write(key.to_owned(), copy, guard);
    }
    fn refresh(&self, key: &str, entry: &FakeResponse, length: Option<u64>, guard: Guard<'_>) {
        // The entry's body is a stream: the platform writes it without its `Content-Length`
        // unless its length is declared.
        let mut copy = entry.clone();
        match length {
            Some(n) => copy.set("content-length", &n.to_string()),
            None => copy.remove("content-length"),
        }
        self.write(key.to_owned(), copy, guard);
    }
    fn finish(
        &self,
        mut response: FakeResponse,
        set: &[(String, String)],
        not_modified: bool,
        remove: &[&str],
    ) -> Result<FakeResponse, String> {
        for name in remove {
            response.remove(name);
        }
        if not_modified {
            response.status = 304;
            response.body.clear();
        }
        apply(&mut response, set);
        Ok(response)
    }
    async fn invalidate(&self, keys: &CacheKeys, at_ms: f64, _marker_ttl_s: u64) {
        self.invalidations.set(self.invalidations.get() + 1);
        self.markers
            .borrow_mut()
            .insert(keys.guard().into_owned(), at_ms as u64);
        self.cache.borrow_mut().remove(&keys.entry);
        self.hot.borrow_mut().remove(&keys.entry);
    }
}

impl Events for Fakes {
    fn event(&self, _level: Level, line: serde_json::Value) {
        self.events.borrow_mut().push(line);
    }
}
