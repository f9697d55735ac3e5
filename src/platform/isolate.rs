//! Per-isolate state: the configuration in force, its reloads from KV, and id generation.
//!
//! A request takes one `Rc<Live>` at its start and uses it to the end, so a reload never mixes
//! two versions within a request. KV is read at most every `settings.reload_s` seconds; a
//! document that fails validation is recorded and never applied. An isolate with no valid
//! `routes` to serve (a cold one, or one whose `routes` was deleted) serves the last good
//! document (`control::last_good`); only with none does it serve the embedded one.

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

pub use crate::control::Source;

/// Per upstream, per target.
pub type Breakers = Rc<RefCell<Vec<Vec<Breaker>>>>;

/// A configuration in force, with the run-time state that belongs to it.
pub struct Live {
    pub gateway: Gateway,
    pub source: Source,
    pub loaded_at_ms: f64,
    pub breakers: Breakers,
    /// The configuration's fixed header edits and callbacks as a JS table (`glue::table_for`).
    pub js_table: JsValue,
    /// Kept alive as long as the table that calls them.
    _callbacks: (FailCallback, ReportCallback),
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
        Live {
            js_table: super::glue::table_for(&gateway, fail.as_ref(), report.as_ref()),
            _callbacks: (fail, report),
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
}

impl Counter {
    const ALL: [(Counter, &'static str); 4] = [
        (Counter::RateLimitStoreErrors, "rate_limit_store_errors"),
        (Counter::UpstreamFailures, "upstream_failures"),
        (Counter::JwksFailures, "jwks_failures"),
        (Counter::ConfigRejected, "config_rejected"),
    ];
}

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
    static COUNTERS: [Cell<u64>; 4] = const { [const { Cell::new(0) }; 4] };
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
    let wants_fallback = STATE.with(|s| apply(&mut s.borrow_mut(), read, now_ms));
    if wants_fallback {
        let found = match env.kv(CONFIG_BINDING) {
            Ok(kv) => crate::control::last_good(&super::config_admin::KvPort(kv))
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        STATE.with(|s| adopt_last_good(&mut s.borrow_mut(), found, now_ms));
    }
    REFRESHING.with(|r| r.set(false));
    STATE.with(|s| ensure_live(&mut s.borrow_mut(), now_ms))
}

/// Serves the last good document when one was found.
fn adopt_last_good(
    s: &mut State,
    found: Result<Option<crate::control::resolve::Found>, String>,
    now_ms: f64,
) {
    match found {
        Ok(Some(found)) => {
            worker::console_log!(
                "{}",
                serde_json::json!({"event": "config_last_good", "digest": found.gateway.digest})
            );
            s.live = Some(Rc::new(Live::new(found.gateway, Source::LastGood, now_ms)));
        }
        Ok(None) => {}
        Err(e) => worker::console_error!(
            "{}",
            serde_json::json!({"event": "config_read_failed", "key": "routes:last-good", "error": e})
        ),
    }
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

/// Applies what was read from `routes`; true when the isolate should look for the last good
/// document (it has nothing but the embedded one to serve, or nothing at all).
fn apply(s: &mut State, read: Result<Option<String>, String>, now_ms: f64) -> bool {
    s.last_check_ms = now_ms;
    let mut rejected_new = false;
    let read_failed = read.is_err();
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
                        rejected_new = true;
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
            // A document from `routes` that is gone is no longer served.
            if s.live.as_ref().is_some_and(|l| l.source == Source::Kv) {
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
    match s.live.as_ref().map(|l| l.source) {
        None => !read_failed,
        Some(Source::Embedded) => rejected_new,
        Some(_) => false,
    }
}

/// The configuration to serve: the embedded document when nothing else is in force.
fn ensure_live(s: &mut State, now_ms: f64) -> Result<Rc<Live>, String> {
    if s.live.is_none() {
        let gateway = Gateway::compile(EMBEDDED_ROUTES)
            .map_err(|e| format!("the embedded routes.json is invalid: {e}"))?;
        s.live = Some(Rc::new(Live::new(gateway, Source::Embedded, now_ms)));
    }
    s.live.clone().ok_or_else(|| "no configuration".to_owned())
}
