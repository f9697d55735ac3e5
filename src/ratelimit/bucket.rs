//! Which bucket a request falls into: the name of the Durable Object that owns it.
//!
//! A bucket is named `rl:<policy>:<hex SHA-256 of kind NUL value>`. The policy name keeps
//! policies apart; the hash keeps client-controlled text (header and claim values) out of
//! object names, gives every name the same length however long the value (no truncation, so
//! no truncation collisions), and the `kind` keeps values from different sources apart.
//!
//! | key              | kind                          | value                                  |
//! |------------------|-------------------------------|----------------------------------------|
//! | `ip`             | `ip`                          | the client address, normalised (below) |
//! | `header:<name>`  | `header:<name>`               | the header value, trimmed of SP/HTAB   |
//! |   … missing/empty| `fallback-ip:header:<name>`   | the client address, as for `ip`        |
//! | `claim:<name>`   | `claim:<name>`                | the scheme NUL the claim: a string as is, else its JSON text |
//! |   … missing      | `fallback-consumer:claim:<name>` | the consumer                        |
//! | `consumer`       | `consumer`                    | the authenticated consumer             |
//! | `route`          | `route`                       | the route id                           |
//! | `global`         | `global`                      | empty                                  |
//!
//! Decisions:
//!
//! * **Client address.** IPv4 is keyed exactly (`203.0.113.7`). IPv6 is keyed by its /64
//!   (`2001:db8:1:2::/64`, RFC 5952 text): one subscriber or LAN is routinely handed a whole
//!   /64, so per-address keys would let one client rotate through 2⁶⁴ addresses and never be
//!   limited (Cloudflare's own rate limiting groups IPv6 the same way). An IPv4-mapped address
//!   (`::ffff:203.0.113.7`) is the IPv4 address. Text that is not an address is keyed as
//!   `raw:<text>`. With no address at all (only outside Cloudflare, e.g. local tests) every
//!   such request shares the bucket `unknown`: limited together, never unlimited.
//! * **Missing header.** A request without the header (or with only whitespace) is keyed on
//!   its client address under a distinct kind, so it is still limited and a header value
//!   `1.2.3.4` and the address 1.2.3.4 are different buckets.
//! * **Claims per scheme.** A claim is only as unique as its issuer: two JWT schemes on one
//!   route may both have a `sub: "alice"`, who are different people. So the claim is keyed
//!   with the scheme that verified it (scheme names hold no NUL), as the consumer is
//!   (`jwt/<scheme>/<sub>`).
//! * **Missing claim.** `claim:` keys are only valid on routes whose every scheme is JWT, so
//!   the request is authenticated; a token without the claim (or with `null` or `""`) is keyed
//!   on its consumer, under a distinct kind. With no consumer either the result is
//!   [`KeyError::MissingClaim`].
//! * **Errors** mean the request cannot be attributed to a bucket. The platform must refuse
//!   it (never let it through unlimited).

use crate::config::{RateLimitKey, RateLimitPolicy};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// The request facts a bucket key may be made of.
pub struct KeyFacts<'a> {
    /// The client address Cloudflare reports (`CF-Connecting-IP` / `request.cf`), never a
    /// client-supplied header.
    pub client_ip: Option<&'a str>,
    /// The matched route's id.
    pub route_id: &'a str,
    /// The authenticated consumer (JWT subject or API key id); `None` when unauthenticated.
    pub consumer: Option<&'a str>,
    /// The verified JWT's claims, when a JWT scheme authenticated the request.
    pub claims: Option<&'a Map<String, Value>>,
    /// The scheme that authenticated the request: `claims` are keyed under it.
    pub scheme: Option<&'a str>,
    /// Reads one request header by its lower-case name. Called only for `header:` keys, so
    /// the platform can read headers lazily; [`no_headers`] when there are none to offer.
    pub header: &'a dyn Fn(&str) -> Option<String>,
}

/// A header lookup that finds nothing.
pub fn no_headers(_: &str) -> Option<String> {
    None
}

/// Why a request cannot be put in a bucket. The platform refuses such requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// A `consumer` key on a request without an authenticated consumer.
    NoConsumer,
    /// A `claim:<name>` key whose claim is absent, with no consumer to fall back to.
    MissingClaim(String),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::NoConsumer => f.write_str(
                "the rate limit is keyed on the consumer, but the request is not authenticated",
            ),
            KeyError::MissingClaim(c) => write!(
                f,
                "the rate limit is keyed on claim \"{c}\", which the request does not carry"
            ),
        }
    }
}

impl std::error::Error for KeyError {}

/// The bucket of `policy` on the route `route_id` when it is the same for every request of
/// that route (keys `route` and `global`), known once per configuration: the same name
/// [`bucket_key`] forms.
pub fn fixed_bucket_key(policy: &RateLimitPolicy, route_id: &str) -> Option<String> {
    let mut h = Sha256::new();
    match &policy.key {
        RateLimitKey::Route => {
            h.update("route");
            finish(&mut h, route_id);
        }
        RateLimitKey::Global => {
            h.update("global");
            finish(&mut h, "");
        }
        _ => return None,
    }
    Some(name_of(policy, h))
}

/// The name of the Durable Object owning `policy`'s bucket for this request:
/// `rl:<policy name>:<64 hex digits>`. Stable across releases and isolates.
pub fn bucket_key(policy: &RateLimitPolicy, facts: &KeyFacts<'_>) -> Result<String, KeyError> {
    let mut h = Sha256::new();
    match &policy.key {
        RateLimitKey::Ip => {
            h.update("ip");
            finish(&mut h, &client_address(facts.client_ip));
        }
        RateLimitKey::Header(name) => {
            let value = (facts.header)(name);
            match value.as_deref().map(trim_ows).filter(|v| !v.is_empty()) {
                Some(v) => {
                    h.update("header:");
                    h.update(name);
                    finish(&mut h, v);
                }
                None => {
                    h.update("fallback-ip:header:");
                    h.update(name);
                    finish(&mut h, &client_address(facts.client_ip));
                }
            }
        }
        RateLimitKey::Claim(name) => match claim_value(facts.claims, name) {
            Some(v) => {
                h.update("claim:");
                h.update(name);
                finish(&mut h, facts.scheme.unwrap_or(""));
                finish(&mut h, &v);
            }
            None => {
                let consumer =
                    consumer(facts).ok_or_else(|| KeyError::MissingClaim(name.clone()))?;
                h.update("fallback-consumer:claim:");
                h.update(name);
                finish(&mut h, consumer);
            }
        },
        RateLimitKey::Consumer => {
            h.update("consumer");
            finish(&mut h, consumer(facts).ok_or(KeyError::NoConsumer)?);
        }
        RateLimitKey::Route => {
            h.update("route");
            finish(&mut h, facts.route_id);
        }
        RateLimitKey::Global => {
            h.update("global");
            finish(&mut h, "");
        }
    }
    Ok(name_of(policy, h))
}

/// `rl:<policy name>:<hex digest>`.
fn name_of(policy: &RateLimitPolicy, h: Sha256) -> String {
    let digest = h.finalize();
    let mut name = String::with_capacity(policy.name.len().saturating_add(68));
    name.push_str("rl:");
    name.push_str(&policy.name);
    name.push(':');
    name.push_str(&crate::hex::encode(&digest));
    name
}

/// Ends the kind and hashes the value.
fn finish(h: &mut Sha256, value: &str) {
    h.update([0u8]);
    h.update(value);
}

fn consumer<'a>(facts: &KeyFacts<'a>) -> Option<&'a str> {
    facts.consumer.filter(|c| !c.is_empty())
}

/// HTTP optional whitespace (SP, HTAB) removed from both ends.
fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// The normalised client address (see the module documentation).
pub(crate) fn client_address(ip: Option<&str>) -> Cow<'static, str> {
    let Some(raw) = ip.map(trim_ows).filter(|s| !s.is_empty()) else {
        return Cow::Borrowed("unknown");
    };
    Cow::Owned(match raw.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => a.to_string(),
        Ok(IpAddr::V6(a)) => match a.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("{}/64", Ipv6Addr::from(u128::from(a) & (u128::MAX << 64))),
        },
        Err(_) => format!("raw:{raw}"),
    })
}

/// The claim's value as key text; `None` when absent, `null` or the empty string.
fn claim_value<'a>(claims: Option<&'a Map<String, Value>>, name: &str) -> Option<Cow<'a, str>> {
    match claims?.get(name)? {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(Cow::Borrowed(s)),
        other => Some(Cow::Owned(other.to_string())),
    }
}
