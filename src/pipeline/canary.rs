//! The canary stage: sends a sticky share of a route's traffic to its canary upstream.
//!
//! Each request's sticky key (consumer, client address, a header or a cookie) is hashed with
//! the canary upstream's name into a bucket in `0..10000`; the request goes to the canary iff
//! its bucket is below `percent × 100`. So a key keeps its variant while the percentage stays,
//! raising the percentage only moves keys from primary to canary (their buckets stay; the
//! threshold rises past them), and 0 sends no key. Hashing with the canary's name (not the
//! route's) keeps a client on the same side across every route that canaries to that upstream
//! at the same percentage.
//!
//! A request with no key (`sticky: none`, or neither the configured source nor an address)
//! draws its bucket from the isolate's generator: never from anything the client sends, such
//! as the `traceparent` the gateway continues or a request id, which would let a client pick
//! its variant.
//!
//! The override header wins at any percentage, 0 included: `always` is how a canary is tried
//! before its rollout, so a rollback removes the canary (or its override header), not only its
//! percentage.

use super::ctx::{Ctx, Variant};
use super::driver::{Stage, Step};
use super::ports::Ports;
use super::state::Services;
use crate::config::{CanarySpec, StickyKey};
use crate::error::GatewayError;
use crate::gateway::Gateway;
use sha2::{Digest, Sha256};

/// Buckets a sticky key can fall into: `percent` has two decimals, so one bucket is 0.01 %.
pub const BUCKETS: u32 = 10_000;

/// The bucket of `key` for the canary upstream named `canary`, uniform over `0..BUCKETS`.
pub fn bucket(canary: &str, key: &str) -> u32 {
    let mut h = Sha256::new();
    h.update(b"edge-gateway canary\0");
    h.update((canary.len() as u64).to_be_bytes());
    h.update(canary.as_bytes());
    h.update(key.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 2^64 mod 10000 is 1616: a bias below 10^-15, far below what any traffic share shows.
    (u64::from_be_bytes(first) % u64::from(BUCKETS)) as u32
}

/// The variant of a bucket at `basis_points` (hundredths of a percent).
pub fn variant_of(bucket: u32, basis_points: u32) -> Variant {
    if bucket < basis_points {
        Variant::Canary
    } else {
        Variant::Primary
    }
}

/// What an override header's value asks for: `always` is the canary, `never` the primary
/// (ASCII case-insensitive, surrounding spaces ignored); anything else is refused.
pub fn override_of(value: &str) -> Result<Variant, GatewayError> {
    let v = value.trim_matches([' ', '\t']);
    if v.eq_ignore_ascii_case("always") {
        Ok(Variant::Canary)
    } else if v.eq_ignore_ascii_case("never") {
        Ok(Variant::Primary)
    } else {
        Err(GatewayError::BadRequest(
            "the canary override header must be \"always\" or \"never\"",
        ))
    }
}

/// The upstream serving the request in `cx`: the canary's when the canary stage chose it,
/// otherwise the route's.
pub fn upstream_of(gateway: &Gateway, cx: &Ctx) -> Option<usize> {
    let route = gateway.route(cx.routed.as_ref()?.route);
    match (&route.canary, cx.variant) {
        (Some(c), Some(Variant::Canary)) => Some(c.upstream),
        _ => Some(route.upstream),
    }
}

/// The text a request's sticky key hashes: the configured source, else the client address;
/// `None` (no address either, or `none`) when the request draws at random.
fn sticky_key(spec: &CanarySpec, cx: &Ctx, header: Option<String>) -> Option<String> {
    let address = || {
        cx.request
            .client_ip
            .as_deref()
            .map(|ip| format!("ip\0{}", crate::ratelimit::bucket::client_address(Some(ip))))
    };
    let from_source = match &spec.sticky {
        StickyKey::Consumer => cx.consumer().map(|c| format!("consumer\0{c}")),
        StickyKey::Header(_) => header
            .filter(|v| !v.is_empty())
            .map(|v| format!("header\0{v}")),
        StickyKey::Cookie(name) => crate::auth::credentials::cookie(header.as_deref(), name)
            .ok()
            .flatten()
            .map(|v| format!("cookie\0{v}")),
        StickyKey::Ip | StickyKey::None => None,
    };
    match spec.sticky {
        StickyKey::None => None,
        _ => from_source.or_else(address),
    }
}

pub struct Canary;

impl Stage for Canary {
    fn request<P: Ports>(&self, cx: &mut Ctx, s: Services<'_, P>) -> Step<P::Response> {
        let Some(spec) = &s.gateway.route(cx.route()).canary else {
            return Step::Next;
        };
        // At 0% or 100% the outcome is fixed: no sticky key is read or hashed (an override
        // is still honoured, and refused when invalid).
        let split = spec.basis_points > 0 && spec.basis_points < BUCKETS;
        // The headers this decision reads, in one crossing: the override, then the sticky one.
        let sticky_header = match &spec.sticky {
            _ if !split => None,
            StickyKey::Header(h) => Some(h.as_str()),
            StickyKey::Cookie(_) => Some("cookie"),
            _ => None,
        };
        let names: Vec<&str> = spec
            .override_header
            .as_deref()
            .into_iter()
            .chain(sticky_header)
            .collect();
        let mut values = if names.is_empty() {
            Vec::new()
        } else {
            s.ports.request_headers(&names)
        }
        .into_iter();
        let forced = match spec.override_header {
            Some(_) => values.next().flatten(),
            None => None,
        };
        let variant = match forced {
            Some(value) => match override_of(&value) {
                Ok(v) => v,
                Err(e) => return Step::Fail(e),
            },
            None if !split => variant_of(0, spec.basis_points),
            None => {
                let drawn = match sticky_key(spec, cx, values.next().flatten()) {
                    Some(key) => {
                        let canary = s
                            .gateway
                            .config
                            .upstreams
                            .get(spec.upstream)
                            .map_or("", |u| u.name.as_str());
                        bucket(canary, &key)
                    }
                    // The gateway's own draw: uniform over the buckets (`below` is under 10 000).
                    None => s.state.ids.borrow_mut().below(u64::from(BUCKETS)) as u32,
                };
                variant_of(drawn, spec.basis_points)
            }
        };
        cx.variant = Some(variant);
        Step::Next
    }

    async fn wait<P: Ports>(&self, cx: &mut Ctx, s: Services<'_, P>) -> Step<P::Response> {
        self.request(cx, s)
    }
}

#[cfg(test)]
mod tests;
