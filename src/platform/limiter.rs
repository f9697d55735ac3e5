//! The `RateLimiter` Durable Object: the single owner of one rate-limit bucket.
//!
//! One object per policy and key (`idFromName`), so every decision about a bucket is made by
//! one single-threaded owner, in order: exact under any concurrency, across every isolate and
//! location. The arithmetic (GCRA, and leases of several admissions) is `crate::ratelimit`; the
//! object keeps its state in memory and in its SQLite-backed storage, written ahead of every
//! answer that depends on it (`crate::ratelimit::persist`), so no restart, crash or eviction
//! hands out admissions already granted. The object's own clock is the only clock a bucket
//! ever sees.

use super::glue;
use super::respond::log_event;
use crate::pipeline::ports::Level;
use crate::ratelimit::persist::{Trim, WriteAhead, TRIM_AFTER_MS};
use crate::ratelimit::wire::{grant_line, parse_give_back, parse_take, Unreadable, VERSION};
use crate::ratelimit::{GcraState, Limits, Owner};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use worker::worker_sys::DurableObjectStorage;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

const STATE_KEY: &str = "gcra";
/// Idle buckets are cleaned up, but not more often than this per object: a busy bucket that
/// is full again within microseconds (a huge limit) must not cost an alarm per request.
const CLEANUP_AFTER_MS: f64 = 60_000.0;

#[durable_object]
pub struct RateLimiter {
    state: State,
    /// The storage as the glue's writes take it, converted once.
    storage: DurableObjectStorage,
    bucket: RefCell<Owner>,
    loaded: Cell<bool>,
    alarm_pending: Cell<bool>,
    writes: Rc<RefCell<WriteAhead>>,
    trim_pending: Rc<Cell<bool>>,
    /// Writes the exact state once the bucket is quiet (see [`WriteAhead::trim`]); owned by
    /// JS, so a timer can never call a freed closure.
    trim: JsValue,
}

impl RateLimiter {
    /// Loads the persisted state once per object lifetime. Storage reads close the input
    /// gate, so no other request of this bucket runs in between.
    async fn load(&self) -> Result<()> {
        if !self.loaded.get() {
            let stored: Option<String> = self.state.storage().get(STATE_KEY).await?;
            let alarm = self.state.storage().get_alarm().await?.is_some();
            // Another request may have loaded (and changed) the bucket while these reads were
            // in flight: its state is newer than what was read.
            if !self.loaded.get() {
                let restored = self.bucket.borrow_mut().restore(stored.as_deref());
                // An unreadable state is written over by the first decision, which settles it.
                *self.writes.borrow_mut() = WriteAhead::restored(self.bucket.borrow().state());
                if let Err(e) = restored {
                    // Fail closed: the bucket is taken as exhausted, not as full.
                    let line = serde_json::json!({
                        "event": "rate_limit_state_unreadable",
                        "taken_as": "exhausted",
                        "error": e.to_string(),
                    });
                    log_event(Level::Error, line, None);
                }
                self.alarm_pending.set(alarm);
                self.loaded.set(true);
            }
        }
        Ok(())
    }

    /// Keeps the bucket's new state, decided under `limits`. When storage does not hold it
    /// yet, the write starts before the answer is returned, so the output gate holds the answer
    /// until storage has it.
    fn store(&self, next: GcraState, limits: &Limits, now_ms: f64) {
        let write = self
            .writes
            .borrow_mut()
            .changed(next, limits, now_ms as u64);
        if let Some(state) = write {
            write_state(&self.storage, &state);
        }
        if !self.trim_pending.replace(true) {
            glue::after(TRIM_AFTER_MS as u32, &self.trim);
        }
        self.schedule_cleanup(&next, now_ms);
    }

    /// Once the bucket is full again its state says nothing a fresh bucket would not: an alarm
    /// then deletes it, so idle buckets cost no storage.
    fn schedule_cleanup(&self, state: &GcraState, now_ms: f64) {
        if !self.alarm_pending.get() {
            let full_at_ms = (state.tat / 1_000_000) as f64 + 1.0;
            let at = full_at_ms.max(now_ms + CLEANUP_AFTER_MS);
            glue::schedule_alarm(&self.storage, at);
            self.alarm_pending.set(true);
        }
    }
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        let writes = Rc::new(RefCell::new(WriteAhead::default()));
        let trim_pending = Rc::new(Cell::new(false));
        let trim = {
            let (writes, pending) = (writes.clone(), trim_pending.clone());
            let storage = storage_of(&state);
            // Returns when to look again (ms; 0: done), which the JS timer honours.
            Closure::<dyn FnMut() -> u32>::new(move || {
                let now_ms = worker::js_sys::Date::now() as u64;
                let Ok(trim) = writes.try_borrow_mut().map(|mut w| w.trim(now_ms)) else {
                    return TRIM_AFTER_MS as u32;
                };
                match trim {
                    Trim::After(ms) => return u32::try_from(ms).unwrap_or(u32::MAX).max(1),
                    Trim::Write(exact) => write_state(&storage, &exact),
                    Trim::Done => {}
                }
                pending.set(false);
                0
            })
            .into_js_value()
        };
        // Where this object's lease tags start: at random, so no tag of an earlier run of this
        // object names a lease of this one. Without randomness, the clock: 2¹⁶ tags per ms apart.
        let mut seed = ((worker::js_sys::Date::now() as u64) << 16).to_le_bytes();
        let _ = getrandom::fill(&mut seed);
        RateLimiter {
            storage: storage_of(&state),
            state,
            bucket: RefCell::new(Owner::new(None, u64::from_le_bytes(seed))),
            loaded: Cell::new(false),
            alarm_pending: Cell::new(false),
            writes,
            trim_pending,
            trim,
        }
    }

    /// `GET /take?l=<limit>&w=<window_s>&b=<burst>&n=<want>&h=<hold_ms>` → a lease's grant line;
    /// `GET /back?l=…&w=…&b=…&t=<tag>&u=<unused>` → 204 (unspent admissions offered back).
    /// Either may name the version, `v=1` (see `crate::ratelimit::wire`); another is refused.
    async fn fetch(&self, req: Request) -> Result<Response> {
        let url = req.url()?;
        let query = url.query().unwrap_or("");
        let back = match url.path() {
            "/take" => false,
            "/back" => true,
            _ => return Response::error("expected /take or /back", 404),
        };
        let unreadable = |e| match e {
            Unreadable::Malformed => Response::error("malformed query", 400),
            Unreadable::Unsupported => {
                Response::error(format!("unsupported version: speaks v={VERSION}"), 501)
            }
        };
        if back {
            let (limits, tag, unused) = match parse_give_back(query) {
                Ok(q) => q,
                Err(e) => return unreadable(e),
            };
            self.load().await?;
            let next = self.bucket.borrow_mut().give_back(&limits, tag, unused);
            if let Some(next) = next {
                self.store(next, &limits, worker::js_sys::Date::now());
            }
            return Ok(Response::empty()?.with_status(204));
        }
        let (limits, ask) = match parse_take(query) {
            Ok(q) => q,
            Err(e) => return unreadable(e),
        };
        self.load().await?;
        let now_ms = worker::js_sys::Date::now();
        let (grant, next) = self.bucket.borrow_mut().lease(&limits, now_ms as u64, ask);
        if let Some(next) = next {
            self.store(next, &limits, now_ms);
        }
        Response::ok(grant_line(&grant))
    }

    async fn alarm(&self) -> Result<Response> {
        self.load().await?;
        self.alarm_pending.set(false);
        let now_ms = worker::js_sys::Date::now();
        let now_ns = (now_ms as u64).saturating_mul(1_000_000);
        if self.bucket.borrow().is_unknown() {
            // What the unreadable state says is unknown, so nothing proves the bucket full:
            // the next decision settles it (see `Owner::restore`).
            return Response::empty();
        }
        let current = self.bucket.borrow().state();
        match current {
            Some(state) if state.tat > now_ns => self.schedule_cleanup(&state, now_ms),
            _ => {
                self.state.storage().delete_all().await?;
                self.bucket.borrow_mut().reset(None);
                self.writes.borrow_mut().cleared();
            }
        }
        Response::empty()
    }
}

/// Starts writing the bucket's state (the output gate holds answers until it is confirmed).
fn write_state(storage: &DurableObjectStorage, state: &GcraState) {
    if let Ok(text) = serde_json::to_string(state) {
        glue::put_value(storage, STATE_KEY, &text);
    }
}

/// The object's storage as the glue's writes take it.
fn storage_of(state: &State) -> DurableObjectStorage {
    let storage = state.storage();
    let raw: JsValue = AsRef::<JsValue>::as_ref(storage.as_raw()).clone();
    raw.unchecked_into()
}
