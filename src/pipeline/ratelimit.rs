//! The rate-limiting stage: one bucket per policy and key, each decided by its own exact
//! owner (the limiter port), all asked at once.
//!
//! A request the store refuses has already been counted by the route's other policies, asked
//! at the same time: a client that keeps sending while over one limit keeps spending its other
//! budgets. Once an isolate has been told a bucket refuses, it refuses that bucket's requests
//! itself until the instant the store named, without asking that bucket's owner again: a client
//! flooding while limited costs no store calls for it (and those refusals count nowhere). The
//! route's other buckets are still decided — spent from held leases or asked — so the refusal
//! spends them too and its fields report every policy. Allowed requests are decided by the
//! store through leases (`super::leases`): an idle isolate asks once per request and policy, a
//! busy one once per lease, spending the admissions it holds without asking.

use super::ctx::{Ctx, RateLimitNote};
use super::driver::{Stage, Step};
use super::ports::{Level, Ports, Take};
use super::state::{Counter, Services};
use crate::config::{RateLimitPolicy, StoreErrorPolicy};
use crate::error::GatewayError;
use crate::ratelimit::LeaseAsk;
use crate::ratelimit::{
    bucket_key, most_restrictive, policy_header, ratelimit_header, Decision, KeyError, KeyFacts,
    Limits,
};
use std::collections::HashMap;

/// Buckets an isolate knows to be refusing, at most this many.
const REFUSED_CAPACITY: usize = 4_096;

/// Bucket → (until when it refuses, in ms of this isolate's clock; the store's decision; the
/// limits it was decided under). GCRA refusals change nothing and other isolates can only use a
/// bucket up further, so a bucket refuses at least until then: remembering this is exact, not
/// an approximation — under the same limits. A new configuration changing the policy is
/// decided by the store again.
#[derive(Default)]
pub struct RefusalMemory(HashMap<String, (f64, Decision, Limits)>);

impl RefusalMemory {
    /// A refusal remembered for `bucket` under `limits`, as it stands at `now_ms`.
    pub fn known(&self, bucket: &str, limits: &Limits, now_ms: f64) -> Option<Decision> {
        let (until, d, refused_under) = self.0.get(bucket)?;
        let left_ms = until - now_ms;
        (left_ms > 0.0 && refused_under == limits).then(|| {
            let left_ms = left_ms.ceil() as u64;
            Decision {
                retry_after_ms: left_ms,
                retry_after_s: left_ms.div_ceil(1000).max(1),
                reset_s: d
                    .reset_s
                    .saturating_sub(d.retry_after_s.saturating_sub(left_ms.div_ceil(1000))),
                ..*d
            }
        })
    }

    /// Remembers a refusal under `limits`. `asked_at_ms` is when the question was sent: the
    /// store decided later, so the instant it named is never earlier than `asked_at_ms` + the
    /// wait.
    pub fn remember(&mut self, bucket: &str, limits: Limits, asked_at_ms: f64, d: &Decision) {
        if self.0.len() >= REFUSED_CAPACITY {
            self.0.retain(|_, (until, _, _)| *until > asked_at_ms);
            if self.0.len() >= REFUSED_CAPACITY {
                self.0.clear();
            }
        }
        self.0.insert(
            bucket.to_owned(),
            (asked_at_ms + d.retry_after_ms as f64, *d, limits),
        );
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

pub struct RateLimit;

fn policies<'a, P>(cx: &Ctx, s: Services<'a, P>) -> Vec<&'a RateLimitPolicy> {
    let config = &s.gateway.config;
    s.gateway
        .route(cx.route())
        .rate_limits
        .iter()
        .map(|i| &config.rate_limits[*i])
        .collect()
}

/// The bucket of each policy, or the refusal when a key cannot be formed.
fn buckets<P: Ports>(
    cx: &Ctx,
    s: Services<'_, P>,
    policies: &[&RateLimitPolicy],
) -> Result<Vec<String>, GatewayError> {
    let read_header = |name: &str| s.ports.request_header(name);
    let identity = cx.identity.as_ref();
    let facts = KeyFacts {
        client_ip: cx.request.client_ip.as_deref(),
        route_id: &s.gateway.route(cx.route()).id,
        consumer: identity.and_then(|i| i.consumer.as_deref()),
        claims: identity.and_then(|i| i.claims.as_ref()).map(|c| &c.claims),
        scheme: identity.map(|i| i.scheme.as_str()),
        header: &read_header,
    };
    let fixed = &s.gateway.rate_limit_fixed(cx.route()).buckets;
    policies
        .iter()
        .enumerate()
        .map(|(i, policy)| {
            if let Some(Some(name)) = fixed.get(i) {
                return Ok(name.clone());
            }
            bucket_key(policy, &facts).map_err(|e| match e {
                KeyError::NoConsumer | KeyError::MissingClaim(_) => GatewayError::Unauthorized {
                    reason: format!(
                        "the credentials do not identify a consumer for rate limit \"{}\"",
                        policy.name
                    ),
                    invalid_token: true,
                },
            })
        })
        .collect()
}

fn refusal(
    policy: &RateLimitPolicy,
    d: &Decision,
    headers: Vec<(&'static str, String)>,
) -> GatewayError {
    GatewayError::RateLimited {
        policy: policy.name.clone(),
        retry_after_s: d.retry_after_s.max(1),
        headers,
    }
}

/// Ends the stage from one decision (or store failure) per policy, in the policies' order:
/// refusals remembered, store failures counted and decided by `on_store_error`, the most
/// restrictive refusal answered, the RateLimit fields kept for the response.
fn conclude<P: Ports>(
    cx: &mut Ctx,
    s: Services<'_, P>,
    policies: &[&RateLimitPolicy],
    buckets: &[String],
    answers: Vec<Result<Decision, String>>,
) -> Step<P::Response> {
    let mut decided: Vec<(&str, Decision)> = Vec::with_capacity(policies.len());
    let mut limits: Vec<(&str, Limits)> = Vec::with_capacity(policies.len());
    let mut outcome = RateLimitNote::Allowed;
    let mut answers = answers.into_iter();
    for (policy, bucket) in policies.iter().zip(buckets) {
        match answers.next().unwrap_or_else(|| Err("no answer".into())) {
            Ok(d) => {
                let policy_limits = Limits::from(*policy);
                let mut memory = s.state.refusals.borrow_mut();
                // A remembered refusal is not remembered again: its instant would creep on.
                if !d.allowed && memory.known(bucket, &policy_limits, cx.now_ms).is_none() {
                    memory.remember(bucket, policy_limits, cx.now_ms, &d);
                }
                drop(memory);
                decided.push((&policy.name, d));
                limits.push((&policy.name, policy_limits));
            }
            Err(reason) => {
                s.state.counters.add(Counter::RateLimitStoreErrors);
                let deny = policy.on_store_error == StoreErrorPolicy::Deny;
                s.ports.event(
                    Level::Error,
                    serde_json::json!({
                        "event": "rate_limit_store_error",
                        "policy": policy.name,
                        "reason": reason,
                        "request_id": cx.trace.request_id,
                        "on_store_error": if deny { "deny" } else { "allow" },
                    }),
                );
                outcome = RateLimitNote::StoreError(policy.name.clone());
                if deny {
                    cx.notes.rate_limit = Some(outcome);
                    return Step::Fail(GatewayError::RateLimitUnavailable {
                        policy: policy.name.clone(),
                    });
                }
            }
        }
    }
    let decision_refs: Vec<(&str, &Decision)> = decided.iter().map(|(n, d)| (*n, d)).collect();
    let mut fields: Vec<(&'static str, String)> = Vec::new();
    if !decided.is_empty() {
        // Every policy decided: the field the configuration fixed; otherwise only the decided.
        let policy_field = if decided.len() == policies.len() {
            s.gateway.rate_limit_fixed(cx.route()).policy_field.clone()
        } else {
            let limit_refs: Vec<(&str, &Limits)> = limits.iter().map(|(n, l)| (*n, l)).collect();
            policy_header(&limit_refs)
        };
        fields.push(("ratelimit-policy", policy_field));
        fields.push(("ratelimit", ratelimit_header(&decision_refs)));
    }
    if let Some((name, d)) = most_restrictive(&decided).filter(|(_, d)| !d.allowed) {
        cx.notes.rate_limit = Some(RateLimitNote::Limited((*name).to_owned()));
        let policy = policies.iter().find(|p| p.name == *name).copied();
        return match policy {
            Some(policy) => Step::Fail(refusal(policy, d, fields)),
            None => Step::Fail(GatewayError::Internal {
                cause: "a refusing policy vanished".into(),
            }),
        };
    }
    cx.notes.rate_limit = Some(outcome);
    cx.rate_limit_headers = fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    Step::Next
}

/// Where one policy's decision comes from in the wait step.
enum Source {
    /// A refusal this isolate remembers: its bucket is not asked.
    Remembered(Decision),
    Held(Decision),
    Asked(usize, LeaseAsk),
}

/// The refusal this isolate remembers for each bucket at `now_ms`, if any.
fn remembered<P>(
    s: Services<'_, P>,
    policies: &[&RateLimitPolicy],
    buckets: &[String],
    now_ms: f64,
) -> Vec<Option<Decision>> {
    let memory = s.state.refusals.borrow();
    policies
        .iter()
        .zip(buckets)
        .map(|(policy, bucket)| memory.known(bucket, &Limits::from(*policy), now_ms))
        .collect()
}

impl Stage for RateLimit {
    /// Decides at once when every bucket is known to refuse or holds an admission this isolate
    /// may spend; otherwise asks the store for the others.
    fn request<P: Ports>(&self, cx: &mut Ctx, s: Services<'_, P>) -> Step<P::Response> {
        let policies = policies(cx, s);
        let buckets = match buckets(cx, s, &policies) {
            Ok(b) => b,
            Err(e) => return Step::Fail(e),
        };
        let now = cx.now_ms;
        let known = remembered(s, &policies, &buckets, now);
        let mut book = s.state.leases.borrow_mut();
        // A bucket whose next lease is due is asked for it (see `leases`): this request waits.
        let at_once = policies
            .iter()
            .zip(&buckets)
            .zip(&known)
            .all(|((p, b), k)| k.is_some() || book.may_spend(b, &Limits::from(*p), now));
        if !at_once {
            cx.rate_limit_buckets = buckets;
            return Step::Wait;
        }
        // Every other bucket holds a live lease, so each spend succeeds.
        let mut offers = Vec::new();
        let spent: Option<Vec<_>> = policies
            .iter()
            .zip(&buckets)
            .zip(known)
            .map(|((p, b), k)| {
                k.or_else(|| book.spend(b, &Limits::from(*p), now, &mut offers))
                    .map(Ok)
            })
            .collect();
        drop(book);
        if !offers.is_empty() {
            s.ports.give_back(&offers);
        }
        let Some(decided) = spent else {
            cx.rate_limit_buckets = buckets;
            return Step::Wait;
        };
        conclude(cx, s, &policies, &buckets, decided)
    }

    async fn wait<P: Ports>(&self, cx: &mut Ctx, s: Services<'_, P>) -> Step<P::Response> {
        let policies = policies(cx, s);
        let buckets = match std::mem::take(&mut cx.rate_limit_buckets) {
            formed if formed.len() == policies.len() => formed,
            _ => match buckets(cx, s, &policies) {
                Ok(b) => b,
                Err(e) => return Step::Fail(e),
            },
        };
        let asked_at = s.ports.now_ms();
        let known = remembered(s, &policies, &buckets, asked_at);
        let mut offers = Vec::new();
        let mut asks: Vec<Take> = Vec::new();
        let sources: Vec<Source> = {
            let mut book = s.state.leases.borrow_mut();
            policies
                .iter()
                .zip(&buckets)
                .zip(known)
                .map(|((policy, bucket), known)| {
                    if let Some(d) = known {
                        return Source::Remembered(d);
                    }
                    let limits = Limits::from(*policy);
                    if book.may_spend(bucket, &limits, asked_at) {
                        if let Some(d) = book.spend(bucket, &limits, asked_at, &mut offers) {
                            return Source::Held(d);
                        }
                    }
                    let ask = book.ask(bucket, asked_at, &mut offers);
                    asks.push(Take {
                        bucket: bucket.clone(),
                        limits,
                        ask,
                    });
                    Source::Asked(asks.len() - 1, ask)
                })
                .collect()
        };
        if !offers.is_empty() {
            s.ports.give_back(&offers);
        }
        let answers = if asks.is_empty() {
            Vec::new()
        } else {
            s.ports.take(&asks).await
        };
        let answered_at = s.ports.now_ms();
        let mut book = s.state.leases.borrow_mut();
        let decided = sources
            .into_iter()
            .zip(policies.iter().zip(&buckets))
            .map(|(source, (policy, bucket))| match source {
                Source::Remembered(d) | Source::Held(d) => Ok(d),
                Source::Asked(i, ask) => {
                    let answer = answers
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| Err("no answer".into()));
                    book.answered(
                        bucket,
                        Limits::from(*policy),
                        ask,
                        (asked_at, answered_at),
                        answer.as_ref().ok(),
                    );
                    answer.map(|g| g.decision)
                }
            })
            .collect();
        drop(book);
        conclude(cx, s, &policies, &buckets, decided)
    }

    fn response(&self, cx: &Ctx, set: &mut Vec<(String, String)>) {
        set.extend(cx.rate_limit_headers.iter().cloned());
    }
}
