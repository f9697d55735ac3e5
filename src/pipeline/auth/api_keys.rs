//! API keys: looked up in KV by their hash, and the lookups (misses too, for less time) cached
//! in the isolate until the admin API changes that key. Separate from the stage because the
//! cache's eviction and lifetimes are a policy of their own, which a flood of unknown keys must
//! not defeat.

use super::{invalid, AuthState, Mode, Need};
use crate::auth::api_key::{self, ApiKeyRecord};
use crate::error::GatewayError;
use crate::pipeline::ctx::Ctx;
use crate::pipeline::ports::{Level, Ports};
use crate::pipeline::state::{Counter, Services};
use std::rc::Rc;

pub const API_KEY_TTL_MS: f64 = 30_000.0;
pub const API_KEY_MISS_TTL_MS: f64 = 10_000.0;
const API_KEY_CACHE_CAPACITY: usize = 4_096;

/// A cached API-key lookup (`None`: no such key) and when it stops being trusted.
pub(super) type ApiKeyLookup = (Option<Rc<ApiKeyRecord>>, f64);

impl AuthState {
    /// Forgets a cached API-key lookup (after the admin API created or revoked that key).
    pub fn forget_api_key(&mut self, hash: &str) {
        self.api_keys.remove(hash);
    }
}

pub(super) async fn verify_api_key<P: Ports>(
    cx: &Ctx,
    s: Services<'_, P>,
    key: &str,
    mode: Mode,
) -> Result<Rc<ApiKeyRecord>, Need> {
    if !api_key::is_plausible_key(key) {
        return Err(invalid("malformed API key").into());
    }
    let now_ms = cx.now_ms;
    let hash = api_key::key_hash_hex(key);
    let cached = s
        .state
        .auth
        .borrow()
        .api_keys
        .get(&hash)
        .filter(|(_, until)| *until > now_ms)
        .map(|(r, _)| r.clone());
    let record = match cached {
        Some(record) => record,
        None if mode == Mode::CachedOnly => return Err(Need::Io),
        None => {
            let record = lookup_api_key(s, &hash).await?;
            let ttl = if record.is_some() {
                API_KEY_TTL_MS
            } else {
                API_KEY_MISS_TTL_MS
            };
            remember_api_key(
                &mut s.state.auth.borrow_mut(),
                &hash,
                record.clone(),
                now_ms + ttl,
                now_ms,
            );
            record
        }
    };
    let record = record.ok_or_else(|| invalid("unknown API key"))?;
    api_key::check(&record, &hash).map_err(invalid)?;
    Ok(record)
}

/// Caches a lookup. A flood of unknown keys must not evict the known ones: misses and expired
/// entries are dropped first when the cache is full.
fn remember_api_key(
    state: &mut AuthState,
    hash: &str,
    record: Option<Rc<ApiKeyRecord>>,
    until_ms: f64,
    now_ms: f64,
) {
    let cache = &mut state.api_keys;
    if cache.len() >= API_KEY_CACHE_CAPACITY {
        cache.retain(|_, (record, until)| *until > now_ms && record.is_some());
        if cache.len() >= API_KEY_CACHE_CAPACITY {
            cache.clear();
        }
    }
    cache.insert(hash.to_owned(), (record, until_ms));
}

async fn lookup_api_key<P: Ports>(
    s: Services<'_, P>,
    hash: &str,
) -> Result<Option<Rc<ApiKeyRecord>>, GatewayError> {
    // The store failing is the gateway's outage, not the client's fault, and never a pass:
    // 503 like a JWKS that cannot be reached, counted and logged.
    let text = match s.ports.kv_text(&api_key::kv_key(hash)).await {
        Ok(text) => text,
        Err(cause) => {
            s.state.counters.add(Counter::ApiKeyStoreErrors);
            s.ports.event(
                Level::Error,
                serde_json::json!({"event": "api_key_store_unavailable", "cause": cause}),
            );
            return Err(GatewayError::AuthUnavailable);
        }
    };
    Ok(text
        .and_then(|t| serde_json::from_str::<ApiKeyRecord>(&t).ok())
        .map(Rc::new))
}
