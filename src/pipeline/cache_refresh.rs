//! Stale-while-revalidate (RFC 5861): a stale entry within its window is served at once, and
//! the cache stage leaves a [`CacheRefresh`] in the request's context; the platform runs it
//! after the answer is on its way (`waitUntil`). At most one refresh per key runs in an
//! isolate at a time ([`Refreshing`]).

use super::cache::fetch;
use super::cache_store::{revalidate, store_response, Facts, Stored, Times};
use super::ctx::{CacheKeys, Ctx};
use super::exchange::ExchangePlan;
use super::ports::Ports;
use super::state::Services;
use crate::cache::RequestFacts;
use std::collections::HashMap;

/// A refresh that has not finished after this long is taken for lost (its isolate's event
/// loop dropped it), so the key can be refreshed again.
pub const REFRESH_LOST_MS: f64 = 60_000.0;
/// Keys tracked at once; past it, lost refreshes are forgotten first.
const TRACKED_MAX: usize = 10_000;

/// The refreshes running in this isolate, by entry key, with their start time.
#[derive(Debug, Default)]
pub struct Refreshing(HashMap<String, f64>);

impl Refreshing {
    /// Claims `key` for a refresh starting at `now_ms`; false when one is already running.
    pub fn begin(&mut self, key: &str, now_ms: f64) -> bool {
        if let Some(started) = self.0.get(key) {
            if now_ms - started < REFRESH_LOST_MS {
                return false;
            }
        }
        if self.0.len() >= TRACKED_MAX {
            self.0
                .retain(|_, started| now_ms - *started < REFRESH_LOST_MS);
            if self.0.len() >= TRACKED_MAX {
                return false;
            }
        }
        self.0.insert(key.to_owned(), now_ms);
        true
    }

    /// Releases `key` once its refresh has ended.
    pub fn end(&mut self, key: &str) {
        self.0.remove(key);
    }

    pub fn running(&self) -> usize {
        self.0.len()
    }
}

/// A background refresh of one entry: the exchange (conditional when the entry has
/// validators) and what its response may be stored for.
#[derive(Debug, Clone)]
pub struct CacheRefresh {
    pub plan: ExchangePlan,
    pub keys: CacheKeys,
    pub request: RequestFacts,
    /// When the entry being refreshed was stored: a 304 answers for that entry only (its
    /// validators), not for one stored since by another request or isolate.
    pub stored_at_ms: u64,
}

/// The context a background refresh runs in: the request's identity and route, nothing it has
/// already done.
pub fn background_ctx(cx: &Ctx, now_ms: f64) -> Ctx {
    let mut bg = Ctx::new(cx.request.clone(), cx.trace.clone(), now_ms);
    bg.routed = cx.routed.clone();
    bg.identity = cx.identity.clone();
    bg
}

/// Runs a refresh to its end: a 304 updates the entry, a storable response replaces it, and a
/// failure or a 5xx leaves the stale entry as it is. Always releases the key.
pub async fn run<P: Ports>(cx: &mut Ctx, s: Services<'_, P>, job: CacheRefresh) {
    let route = s.gateway.route(cx.route());
    if let Some(spec) = &route.cache {
        let request_ms = s.ports.now_ms();
        let fetched = fetch(cx, s, &job.plan).await;
        let times = Times {
            request_ms,
            response_ms: s.ports.now_ms(),
        };
        match fetched {
            Ok(r) if s.ports.status(&r) == 304 => {
                let (found, invalidated_at) = s
                    .ports
                    .lookup(&job.keys.entry, job.keys.marker.as_deref())
                    .await;
                if let Some(entry) = found {
                    match Stored::read(s.ports, &entry) {
                        // Invalidated since, or replaced: the 304 confirms nothing stored now.
                        Some(stored)
                            if stored.meta.stored_at_ms != job.stored_at_ms
                                || invalidated_at
                                    .is_some_and(|at| at >= stored.meta.stored_at_ms) =>
                        {
                            s.ports.discard(entry)
                        }
                        Some(stored) => {
                            if let Ok(done) = revalidate(
                                s,
                                spec,
                                &job.keys,
                                entry,
                                &stored,
                                &r,
                                &job.request,
                                times,
                            ) {
                                s.ports.discard(done.entry);
                            }
                        }
                        None => s.ports.discard(entry),
                    }
                }
                s.ports.discard(r);
            }
            Ok(r) if s.ports.status(&r) >= 500 => s.ports.discard(r),
            Ok(r) => {
                let facts = Facts::of(s.ports, &r);
                // A HEAD's refresh has no body to store; only its 304 updates the entry.
                let head_only = cx.request.method == "HEAD";
                store_response(
                    s,
                    spec,
                    &job.keys,
                    &r,
                    &facts,
                    &job.request,
                    head_only,
                    times,
                );
                s.ports.discard(r);
            }
            Err(_) => {}
        }
    }
    if let Ok(mut running) = s.state.refreshing.try_borrow_mut() {
        running.end(&job.keys.entry);
    }
}
