//! Per-isolate state: the configuration in force, its reloads from KV, and id generation.
//!
//! A request takes one `Rc<Live>` at its start and uses it to the end, so a reload never mixes
//! two versions within a request. KV is read at most every `settings.reload_s` seconds; a
//! document that fails validation is recorded and never applied.

use crate::balance::Breaker;
use crate::gateway::Gateway;
use crate::ids::IdGenerator;
use sha2::{Digest, Sha256};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use worker::{web_sys, Env};

/// The document built into the worker, served when KV holds no valid one.
pub const EMBEDDED_ROUTES: &str = include_str!("../../routes.json");
pub const CONFIG_BINDING: &str = "CONFIG";
pub const CONFIG_KEY: &str = "routes";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Embedded,
    Kv,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Embedded => "embedded",
            Source::Kv => "kv",
        }
    }
}

/// Per upstream, per target.
pub type Breakers = Rc<RefCell<Vec<Vec<Breaker>>>>;

/// A configuration in force, with the run-time state that belongs to it.
pub struct Live {
    pub gateway: Gateway,
    pub source: Source,
    pub loaded_at_ms: f64,
    pub breakers: Breakers,
    /// The configuration's fixed header edits and callbacks as a JS table (`glue::table_for`).
    /// The table owns the callbacks: an exchange in JS keeps the table, and so the callbacks,
    /// alive until it ends, however long after a reload has dropped this `Live`.
    pub js_table: JsValue,
}

type FailCallback = Closure<dyn Fn(String, String) -> web_sys::Response>;
type ReportCallback = Closure<dyn Fn(u32, u32, bool)>;

impl Live {
    fn new(gateway: Gateway, source: Source, now_ms: f64) -> Live {
        let breakers: Breakers = Rc::new(RefCell::new(
            gateway
                .config
                .upstreams
                .iter()
                .map(|u| vec![Breaker::default(); u.targets.len()])
                .collect(),
        ));
        let fail = {
            let header = gateway.config.settings.request_id_header.clone();
            let limit = gateway.config.settings.max_body_bytes;
            FailCallback::new(move |tag: String, request_id: String| {
                super::respond::error(&super::upstream::failure(&tag, limit), &header, &request_id)
            })
        };
        let report = {
            let breakers = breakers.clone();
            let specs: Vec<_> = gateway
                .config
                .upstreams
                .iter()
                .map(|u| u.circuit_breaker)
                .collect();
            ReportCallback::new(move |upstream: u32, target: u32, ok: bool| {
                let now = worker::js_sys::Date::now() as u64;
                if let (Some(Some(spec)), Ok(mut states)) =
                    (specs.get(upstream as usize), breakers.try_borrow_mut())
                {
                    if let Some(state) = states
                        .get_mut(upstream as usize)
                        .and_then(|u| u.get_mut(target as usize))
                    {
                        state.record(spec, ok, now);
                    }
                }
            })
        };
        // Ownership passes to JS (`into_js_value`): the closures are freed when the JS garbage
        // collector frees the last table or exchange that refers to them, never while a
        // request started under this configuration can still call them.
        let (fail, report) = (fail.into_js_value(), report.into_js_value());
        Live {
            js_table: super::glue::table_for(&gateway, &fail, &report),
            gateway,
            source,
            loaded_at_ms: now_ms,
            breakers,
        }
    }
}

/// The last document that could not be applied, for the admin health endpoint.
#[derive(Clone)]
pub struct ReloadError {
    pub at_ms: f64,
    pub digest: Option<String>,
    pub errors: Vec<String>,
}

#[derive(Default)]
struct State {
    live: Option<Rc<Live>>,
    /// Hash of the KV text last looked at (applied or refused), to skip re-validating it.
    kv_seen: Option<[u8; 32]>,
    last_check_ms: f64,
    last_error: Option<ReloadError>,
    ids: Option<IdGenerator>,
}

/// Failures counted per isolate (since it started), shown on the admin health endpoint beside
/// the structured log line each of them also writes.
#[derive(Clone, Copy)]
pub enum Counter {
    RateLimitStoreErrors,
    UpstreamFailures,
    JwksFailures,
    ConfigRejected,
    /// Keys or secrets refused as too weak (a JWKS's keys, the HMAC secret).
    WeakKeys,
    /// Upstream answers with a status that cannot be relayed (1xx, 101, outside 200–599).
    UpstreamInvalidResponses,
}

impl Counter {
    const ALL: [(Counter, &'static str); COUNTERS_LEN] = [
        (Counter::RateLimitStoreErrors, "rate_limit_store_errors"),
        (Counter::UpstreamFailures, "upstream_failures"),
        (Counter::JwksFailures, "jwks_failures"),
        (Counter::ConfigRejected, "config_rejected"),
        (Counter::WeakKeys, "weak_keys_refused"),
        (
            Counter::UpstreamInvalidResponses,
            "upstream_invalid_responses",
        ),
    ];
}

const COUNTERS_LEN: usize = 6;

/// Adds one to a counter.
pub fn count(counter: Counter) {
    COUNTERS.with(|c| {
        let cell = &c[counter as usize];
        cell.set(cell.get().saturating_add(1));
    });
}

/// Every counter of this isolate, by name.
pub fn counters() -> serde_json::Value {
    COUNTERS.with(|c| {
        serde_json::Value::Object(
            Counter::ALL
                .iter()
                .map(|(counter, name)| ((*name).to_owned(), c[*counter as usize].get().into()))
                .collect(),
        )
    })
}

thread_local! {
    static COUNTERS: [Cell<u64>; COUNTERS_LEN] = const { [const { Cell::new(0) }; COUNTERS_LEN] };
    static STATE: RefCell<State> = RefCell::new(State::default());
    static REFRESHING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the isolate's id generator, seeding it on first use.
pub fn with_ids<T>(f: impl FnOnce(&mut IdGenerator) -> T) -> T {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        let ids = s.ids.get_or_insert_with(|| {
            let mut seed = [0u8; 32];
            if getrandom::fill(&mut seed).is_err() {
                let now = worker::js_sys::Date::now().to_bits().to_le_bytes();
                seed[..8].copy_from_slice(&now);
            }
            IdGenerator::new(seed)
        });
        f(ids)
    })
}

pub fn last_error() -> Option<ReloadError> {
    STATE.with(|s| s.borrow().last_error.clone())
}

/// The configuration in force, when it can be used without reading KV first.
pub fn ready(now_ms: f64) -> Option<Rc<Live>> {
    STATE.with(|s| {
        let s = s.borrow();
        let live = s.live.as_ref()?;
        let due = now_ms - s.last_check_ms >= live.gateway.config.settings.reload_s as f64 * 1000.0;
        (!due || REFRESHING.with(Cell::get)).then(|| live.clone())
    })
}

/// The configuration to serve this request with, reloading from KV when due.
pub async fn current(env: &Env, now_ms: f64) -> Result<Rc<Live>, String> {
    if let Some(live) = ready(now_ms) {
        return Ok(live);
    }
    REFRESHING.with(|r| r.set(true));
    let read = read_kv(env).await;
    REFRESHING.with(|r| r.set(false));
    STATE.with(|s| apply(&mut s.borrow_mut(), read, now_ms))
}

async fn read_kv(env: &Env) -> Result<Option<String>, String> {
    let kv = env
        .kv(CONFIG_BINDING)
        .map_err(|e| format!("KV binding {CONFIG_BINDING}: {e}"))?;
    kv.get(CONFIG_KEY)
        .text()
        .await
        .map_err(|e| format!("reading KV key {CONFIG_KEY}: {e}"))
}

fn apply(
    s: &mut State,
    read: Result<Option<String>, String>,
    now_ms: f64,
) -> Result<Rc<Live>, String> {
    s.last_check_ms = now_ms;
    match read {
        Ok(Some(text)) => {
            let hash: [u8; 32] = Sha256::digest(text.as_bytes()).into();
            let unchanged = s.kv_seen == Some(hash) && s.live.is_some();
            if !unchanged {
                s.kv_seen = Some(hash);
                match Gateway::compile(&text) {
                    Ok(gateway) => {
                        s.live = Some(Rc::new(Live::new(gateway, Source::Kv, now_ms)));
                        s.last_error = None;
                    }
                    Err(errors) => {
                        let errors: Vec<String> =
                            errors.0.iter().map(ToString::to_string).collect();
                        count(Counter::ConfigRejected);
                        worker::console_error!(
                            "{}",
                            serde_json::json!({"event": "config_rejected", "source": "kv", "errors": errors})
                        );
                        s.last_error = Some(ReloadError {
                            at_ms: now_ms,
                            digest: Some(format!("sha256:{}", crate::hex::encode(&hash[..8]))),
                            errors,
                        });
                    }
                }
            }
        }
        Ok(None) => {
            s.kv_seen = None;
            if s.live.as_ref().is_none_or(|l| l.source != Source::Embedded) {
                s.live = None;
            }
        }
        Err(e) => {
            worker::console_error!(
                "{}",
                serde_json::json!({"event": "config_read_failed", "error": e})
            );
            s.last_error = Some(ReloadError {
                at_ms: now_ms,
                digest: None,
                errors: vec![e],
            });
        }
    }
    if s.live.is_none() {
        let gateway = Gateway::compile(EMBEDDED_ROUTES)
            .map_err(|e| format!("the embedded routes.json is invalid: {e}"))?;
        s.live = Some(Rc::new(Live::new(gateway, Source::Embedded, now_ms)));
    }
    s.live.clone().ok_or_else(|| "no configuration".to_owned())
}
