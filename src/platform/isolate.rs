//! Per-isolate state: the configuration in force, its reloads from KV, and id generation.
//!
//! A request takes one `Rc<Live>` at its start and uses it to the end, so a reload never mixes
//! two versions within a request. KV is read at most every `settings.reload_s` seconds; a
//! document that fails validation is recorded and never applied. An isolate with no valid
//! `routes` to serve (a cold one, or one whose `routes` was deleted) serves the last good
//! document (`control::last_good`); only with none does it serve the embedded one.

use super::respond::log_event;
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::pipeline::ports::Level;
use crate::pipeline::state::{Breakers, Counter, IsolateState};
use sha2::{Digest, Sha256};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use worker::{js_sys, wasm_bindgen_futures, Env};

/// The document built into the worker, served when KV holds no valid one.
pub const EMBEDDED_ROUTES: &str = include_str!("../../routes.json");
pub const CONFIG_BINDING: &str = "CONFIG";
pub const CONFIG_KEY: &str = "routes";

pub use crate::control::Source;

/// A configuration in force, with the run-time state that belongs to it.
pub struct Live {
    pub gateway: Gateway,
    pub source: Source,
    pub loaded_at_ms: f64,
    pub breakers: Breakers,
    /// The configuration's fixed header edits and the completion callback as a JS table
    /// (`glue::table_for`).
    pub js_table: JsValue,
}

impl Live {
    fn new(gateway: Gateway, source: Source, now_ms: f64) -> Live {
        Live {
            js_table: super::glue::table_for(&gateway, &super::entry::finish_callback()),
            breakers: Breakers::for_gateway(&gateway),
            gateway,
            source,
            loaded_at_ms: now_ms,
        }
    }
}

/// The last document that could not be applied, for the admin health endpoint. Its errors are
/// scrubbed as a log line is when recorded: a KV failure's text is the runtime's, and the
/// endpoint shows it as recorded.
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
}

thread_local! {
    static SHARED: Rc<IsolateState> = Rc::new(IsolateState::new(seed()));
    static STATE: RefCell<State> = RefCell::new(State::default());
    static REFRESHING: Cell<bool> = const { Cell::new(false) };
}

fn seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    if getrandom::fill(&mut seed).is_err() {
        let now = worker::js_sys::Date::now().to_bits().to_le_bytes();
        seed[..8].copy_from_slice(&now);
    }
    seed
}

/// The isolate's policy state (caches, remembered refusals, counters, ids).
pub fn shared() -> Rc<IsolateState> {
    SHARED.with(Rc::clone)
}

/// Adds one to a counter.
pub fn count(counter: Counter) {
    SHARED.with(|s| s.counters.add(counter));
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

/// The configuration in force whether or not a reload is due, with the reload started in the
/// background when it is due and none is running: a reload never holds up a request, which is
/// served by the table it found. `None` when the isolate has nothing to serve yet (then the
/// request waits for [`current`]).
pub fn serving(env: &Env, now_ms: f64) -> Option<(Rc<Live>, Option<js_sys::Promise>)> {
    if let Some(live) = ready(now_ms) {
        return Some((live, None));
    }
    let live = STATE.with(|s| s.borrow().live.clone())?;
    REFRESHING.with(|r| r.set(true));
    let env = env.clone();
    let reload = wasm_bindgen_futures::future_to_promise(async move {
        let _ = reload(&env, now_ms).await;
        Ok(JsValue::UNDEFINED)
    });
    Some((live, Some(reload)))
}

/// The configuration to serve this request with, reloading from KV when due.
pub async fn current(env: &Env, now_ms: f64) -> Result<Rc<Live>, GatewayError> {
    if let Some(live) = ready(now_ms) {
        return Ok(live);
    }
    REFRESHING.with(|r| r.set(true));
    reload(env, now_ms).await
}

/// Reads `routes` from KV and applies it (or the last good document); `REFRESHING` is set.
async fn reload(env: &Env, now_ms: f64) -> Result<Rc<Live>, GatewayError> {
    let read = read_kv(env).await;
    let read_failed = read.is_err();
    let wants_fallback = STATE.with(|s| apply(&mut s.borrow_mut(), read, now_ms));
    let mut fallback_failed = false;
    if wants_fallback {
        let found = match env.kv(CONFIG_BINDING) {
            Ok(kv) => crate::control::last_good(&super::config_admin::KvPort(kv))
                .await
                .map_err(|e| e.to_string()),
            // No namespace: nothing to fall back on (as `read_kv` reads no `routes`).
            Err(_) => Ok(None),
        };
        fallback_failed = found.is_err();
        STATE.with(|s| adopt_last_good(&mut s.borrow_mut(), found, now_ms));
    }
    REFRESHING.with(|r| r.set(false));
    // `routes` unreadable or refused, and the last good document unreadable too: serving the
    // built-in document would route by another configuration than the fleet's (and, once in
    // force, it would stay so while `routes` is unchanged), so the request is refused (503) and
    // the next one tries again.
    if (read_failed || fallback_failed) && STATE.with(|s| s.borrow().live.is_none()) {
        return Err(GatewayError::ConfigStoreFailed {
            detail: "the route table could not be read from KV; try again".to_owned(),
        });
    }
    STATE
        .with(|s| ensure_live(&mut s.borrow_mut(), now_ms))
        .map_err(|cause| GatewayError::Internal { cause })
}

/// Serves the last good document when one was found.
fn adopt_last_good(
    s: &mut State,
    found: Result<Option<crate::control::resolve::Found>, String>,
    now_ms: f64,
) {
    match found {
        Ok(Some(found)) => {
            log_event(
                Level::Info,
                serde_json::json!({"event": "config_last_good", "digest": found.gateway.digest}),
                None,
            );
            s.live = Some(Rc::new(Live::new(found.gateway, Source::LastGood, now_ms)));
        }
        Ok(None) => {}
        Err(e) => log_event(
            Level::Error,
            serde_json::json!({"event": "config_read_failed", "key": "routes:last-good", "error": e}),
            None,
        ),
    }
}

async fn read_kv(env: &Env) -> Result<Option<String>, String> {
    // A worker deployed without the namespace serves its built-in document everywhere alike:
    // no document, not a failed read (which could split the fleet, see `reload`).
    let Ok(kv) = env.kv(CONFIG_BINDING) else {
        return Ok(None);
    };
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
    match read {
        Ok(Some(text)) => {
            let hash: [u8; 32] = Sha256::digest(text.as_bytes()).into();
            let unchanged = s.kv_seen == Some(hash) && s.live.is_some();
            // The same valid document read again ends an earlier read failure.
            if unchanged && s.live.as_ref().is_some_and(|l| l.source == Source::Kv) {
                s.last_error = None;
            }
            if !unchanged {
                s.kv_seen = Some(hash);
                match Gateway::compile_hashed(&text, &hash) {
                    Ok(gateway) => {
                        s.live = Some(Rc::new(Live::new(gateway, Source::Kv, now_ms)));
                        s.last_error = None;
                    }
                    Err(errors) => {
                        rejected_new = true;
                        let errors: Vec<String> =
                            errors.0.iter().map(ToString::to_string).collect();
                        count(Counter::ConfigRejected);
                        log_event(
                            Level::Error,
                            serde_json::json!({"event": "config_rejected", "source": "kv", "errors": errors}),
                            None,
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
            // Nothing in `routes` is nothing refused (an earlier error is over).
            s.last_error = None;
            // A document from `routes` that is gone is no longer served.
            if s.live.as_ref().is_some_and(|l| l.source == Source::Kv) {
                s.live = None;
            }
        }
        Err(e) => {
            log_event(
                Level::Error,
                serde_json::json!({"event": "config_read_failed", "error": e}),
                None,
            );
            s.last_error = Some(ReloadError {
                at_ms: now_ms,
                digest: None,
                errors: vec![crate::observe::redact::Redactor::default().text(&e)],
            });
        }
    }
    match s.live.as_ref().map(|l| l.source) {
        // Nothing to serve yet: the last good document, whether `routes` was missing, refused
        // or unreadable (see `reload` for what an unreadable one leaves).
        None => true,
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
