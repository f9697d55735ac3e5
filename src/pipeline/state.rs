//! State that outlives a request: per isolate (caches, remembered refusals, counters, ids)
//! and per configuration version (circuit breakers). It is policy, so it lives in the core;
//! the platform only keeps one instance alive.

use super::auth::AuthState;
use super::ports::Secrets;
use super::ratelimit::RefusalMemory;
use crate::auth::admin_token::AdminToken;
use crate::balance::Breaker;
use crate::cache::KeySeal;
use crate::gateway::Gateway;
use crate::ids::IdGenerator;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Failures counted per isolate since it started, shown on the admin health endpoint beside
/// the event line each also writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    RateLimitStoreErrors,
    UpstreamFailures,
    JwksFailures,
    ConfigRejected,
    UpstreamInvalidResponses,
    MetricsFailures,
    /// Keys or secrets refused as too weak (a JWKS's keys, the HMAC secret).
    WeakKeys,
    /// API-key records that could not be read (the configuration namespace failing).
    ApiKeyStoreErrors,
}

impl Counter {
    pub const ALL: [(Counter, &'static str); 8] = [
        (Counter::RateLimitStoreErrors, "rate_limit_store_errors"),
        (Counter::UpstreamFailures, "upstream_failures"),
        (Counter::JwksFailures, "jwks_failures"),
        (Counter::ConfigRejected, "config_rejected"),
        (
            Counter::UpstreamInvalidResponses,
            "upstream_invalid_responses",
        ),
        (Counter::MetricsFailures, "metrics_failures"),
        (Counter::WeakKeys, "weak_keys_refused"),
        (Counter::ApiKeyStoreErrors, "api_key_store_errors"),
    ];
}

/// The isolate's counters.
#[derive(Debug, Default)]
pub struct Counters([Cell<u64>; Counter::ALL.len()]);

impl Counters {
    pub fn add(&self, counter: Counter) {
        let cell = &self.0[counter as usize];
        cell.set(cell.get().saturating_add(1));
    }

    pub fn get(&self, counter: Counter) -> u64 {
        self.0[counter as usize].get()
    }

    /// Every counter by name.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            Counter::ALL
                .iter()
                .map(|(c, name)| ((*name).to_owned(), self.get(*c).into()))
                .collect(),
        )
    }
}

/// Policy state of one isolate.
pub struct IsolateState {
    pub auth: RefCell<AuthState>,
    pub refusals: RefCell<RefusalMemory>,
    /// Admin attempts counted by this isolate while the limiter does not answer.
    pub admin_attempts: RefCell<crate::control::admin_guard::Fallback>,
    /// Rate-limit admissions held by this isolate.
    pub leases: RefCell<super::leases::LeaseBook>,
    pub counters: Counters,
    pub ids: RefCell<IdGenerator>,
    /// Background cache refreshes running (stale-while-revalidate), one per key.
    pub refreshing: RefCell<super::cache_refresh::Refreshing>,
    /// The seal of the cache keys, with the name of the secret it was derived from: derived on
    /// the first cached request, not on every one.
    cache_seal: RefCell<Option<(String, Option<Rc<KeySeal>>)>>,
}

impl IsolateState {
    pub fn new(seed: [u8; 32]) -> IsolateState {
        IsolateState {
            auth: RefCell::new(AuthState::default()),
            refusals: RefCell::new(RefusalMemory::default()),
            admin_attempts: RefCell::default(),
            leases: RefCell::default(),
            counters: Counters::default(),
            ids: RefCell::new(IdGenerator::new(seed)),
            refreshing: RefCell::default(),
            cache_seal: RefCell::default(),
        }
    }

    /// The seal of this gateway's cache keys: from the admin token, the one secret a production
    /// gateway holds and no other code on the zone does (see `cache::key`'s "Sealed keys");
    /// `None` without one (or with one too short to use), and the keys are the plain hash.
    pub fn cache_seal(&self, gateway: &Gateway, secrets: &impl Secrets) -> Option<Rc<KeySeal>> {
        let name = gateway.config.settings.admin.token_secret.as_deref()?;
        let derive = || {
            AdminToken::read(secrets.secret(name))
                .usable()
                .and_then(|s| KeySeal::from_secret(&s))
                .map(Rc::new)
        };
        // Never a plain key for want of the memo: unavailable, the seal is derived afresh.
        let Ok(mut memo) = self.cache_seal.try_borrow_mut() else {
            return derive();
        };
        match &*memo {
            Some((seen, seal)) if seen == name => seal.clone(),
            _ => {
                let seal = derive();
                *memo = Some((name.to_owned(), seal.clone()));
                seal
            }
        }
    }

    pub fn request_id(&self) -> String {
        self.ids.borrow_mut().request_id()
    }
}

/// Circuit breakers of one configuration version: per upstream, per target.
#[derive(Debug)]
pub struct Breakers(pub RefCell<Vec<Vec<Breaker>>>);

impl Breakers {
    pub fn for_gateway(gateway: &Gateway) -> Breakers {
        Breakers(RefCell::new(
            gateway
                .config
                .upstreams
                .iter()
                .map(|u| vec![Breaker::default(); u.targets.len()])
                .collect(),
        ))
    }

    /// Records how each attempt of an exchange with `upstream` went.
    pub fn record(
        &self,
        gateway: &Gateway,
        upstream: usize,
        attempts: &[(usize, bool)],
        now_ms: u64,
    ) {
        let Some(spec) = gateway
            .config
            .upstreams
            .get(upstream)
            .and_then(|u| u.circuit_breaker)
        else {
            return;
        };
        let Ok(mut states) = self.0.try_borrow_mut() else {
            return;
        };
        for &(target, ok) in attempts {
            if let Some(state) = states.get_mut(upstream).and_then(|u| u.get_mut(target)) {
                state.record(&spec, ok, now_ms);
            }
        }
    }
}

/// What a request's stages work with besides its own context.
pub struct Services<'a, P> {
    pub gateway: &'a Gateway,
    pub breakers: &'a Breakers,
    pub state: &'a IsolateState,
    pub ports: &'a P,
}

impl<P> Clone for Services<'_, P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P> Copy for Services<'_, P> {}
