//! The cache key as a value type.
//!
//! A key is an absolute URL, usable as a Cache API request URL:
//! `https://cache.edge-gateway.invalid/v1/<generation>/<sha256 hex>`. The hash covers every
//! component below, each framed unambiguously (length-prefixed, with a presence tag for optional
//! values), so no two different inputs can be made to produce the same byte stream:
//!
//! 1. the route id — two routes never share entries, even for the same URL;
//! 2. the scheme and the authority exactly as the upstream is told them (`X-Forwarded-Proto`,
//!    `X-Forwarded-Host`: lower-case, port kept), so a response built from them (an absolute
//!    link, an http→https redirect) is only ever served to requests that would produce it;
//! 3. the canonical path (the one form routing, auth and forwarding use);
//! 4. the query parameters, sorted by name (repeated parameters keep their order: `a=2&a=1` is
//!    not `a=1&a=2`), compared in their raw percent-encoded form after upper-casing the hex digits
//!    of `%xx` escapes (RFC 3986 §6.2.2.1). No other decoding: `+` and `%20` stay different, as
//!    do `a` and `a=`. An empty query is no query. A query with a `;`, or with two spellings an
//!    upstream may read as one name (`%61` and `a`, `id` and `ID`), keeps its order;
//! 5. the route's `vary` request headers, sorted by (lower-cased) name, each value trimmed with
//!    runs of spaces and tabs collapsed to one space; an absent header differs from an empty one;
//! 6. the consumer (authenticated subject or API key id) when the route is cached per consumer,
//!    with the verified claims the gateway forwards upstream for it (`forward_claims`): two
//!    tokens of one subject with different claims are two requests to the upstream. Only their
//!    hash is in the key, so it stays one fixed-size URL and never shows a claim;
//! 7. on a canary route, the variant when it is the canary (the primary's keys are those the
//!    route had before it had a canary, so adding one keeps its entries);
//! 8. `settings.cache_generation`: raising it moves every key at once, which is how all entries
//!    are invalidated (they then simply expire).
//!
//! **Sealed keys.** `caches.default` belongs to the zone, not to this Worker: any other Worker
//! on the zone can `put` or `match` any URL in it, and this derivation is public. With a plain
//! hash, such code could compute the key of any URL and plant a response there (served to every
//! client of the route), or read a consumer's stored answer. So when the gateway holds a secret
//! (the admin token) the hash is replaced by an HMAC of it under a key derived from that secret
//! ([`KeySeal`]): outsiders can no longer name an entry, to write it or to read it. Without the
//! secret keys are the plain hash, as they always were. Setting or changing the secret moves
//! every key at once, as raising `cache_generation` does.
//!
//! The method is not in the key: HEAD is answered from the GET entry.
//!
//! **Why headers outside the key cannot influence a stored response.** The upstream request is
//! built from the route (its upstream, rewrite and static header rules, fixed by the route id and
//! the configuration), the host, the canonical path and the query — all in the key — plus the
//! client's other headers. A response that depends on another request header must say so with
//! `Vary` (RFC 9110 §12.5.5), and [`super::rules::storable`] refuses to store a response whose
//! `Vary` names a header outside the key or is `*` (`Accept-Encoding` excepted: the platform cache
//! negotiates content coding itself). Credentials are covered separately: a response to a request
//! with credentials is stored only if the upstream marked it shareable (RFC 9111 §3.5) or the
//! consumer is in the key, and `private` responses are never stored. The residual trust is that
//! the upstream declares its `Vary` honestly. Editing a route's upstream, rewrite or header rules
//! does not change its keys: raise `cache_generation` when such an edit changes responses.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// What names a gateway's entries so that no other code on the zone can: an HMAC state keyed
/// once per isolate (cloned per key, so a key costs two more compression rounds, not four).
#[derive(Clone)]
pub struct KeySeal(HmacSha256);

impl KeySeal {
    /// The seal derived from the gateway's secret with a purpose label (so it never doubles as
    /// another key made from that secret: the JWKS share's, or the token itself); `None` for an
    /// empty secret.
    pub fn from_secret(secret: &str) -> Option<KeySeal> {
        if secret.is_empty() {
            return None;
        }
        let mut derive = HmacSha256::new_from_slice(secret.as_bytes()).ok()?;
        derive.update(b"edge-gateway cache key seal v1");
        let key = derive.finalize().into_bytes();
        HmacSha256::new_from_slice(&key).ok().map(KeySeal)
    }
}

impl std::fmt::Debug for KeySeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySeal(..)")
    }
}

/// The origin of every cache key URL (`.invalid` can never resolve, RFC 6761).
pub const CACHE_KEY_ORIGIN: &str = "https://cache.edge-gateway.invalid";

/// Version of the key derivation; part of both the URL and the hash.
const KEY_VERSION: &str = "v1";

/// Everything that identifies a stored response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKeyInput<'a> {
    /// `http` or `https`, as the client connected.
    pub scheme: &'a str,
    /// The authority as forwarded in `X-Forwarded-Host` (lower-cased again here to be safe).
    pub host: &'a str,
    pub canonical_path: &'a str,
    /// The raw query string, without the leading `?`.
    pub query: Option<&'a str>,
    /// The route's `vary` headers (names as configured) and the request's values; `None` when
    /// the request does not have the header.
    pub vary_values: Vec<(&'a str, Option<&'a str>)>,
    /// `Some` only when the route is cached per consumer.
    pub consumer: Option<&'a str>,
    /// The `forward_claims` headers sent upstream for that consumer (name, value), in the
    /// scheme's order; empty when the route is not cached per consumer.
    pub forwarded: &'a [(String, String)],
    /// `Some("canary")` for the canary variant of a canary route; `None` otherwise.
    pub variant: Option<&'a str>,
    pub generation: u64,
    pub route_id: &'a str,
}

/// The cache key URL for `input`: the hash of its framed components, sealed with `seal` when
/// the gateway has one (see the module's "Sealed keys").
pub fn cache_key_url(input: &CacheKeyInput, seal: Option<&KeySeal>) -> String {
    let mut h = Sha256::new();
    frame(&mut h, b"edge-gateway cache key");
    frame(&mut h, KEY_VERSION.as_bytes());
    h.update(input.generation.to_be_bytes());
    frame(&mut h, input.route_id.as_bytes());
    frame(&mut h, input.scheme.as_bytes());
    frame(&mut h, input.host.to_ascii_lowercase().as_bytes());
    frame(&mut h, input.canonical_path.as_bytes());

    let params = normalised_query(input.query);
    count(&mut h, params.len());
    for (name, value) in &params {
        frame(&mut h, name.as_bytes());
        optional(&mut h, value.as_deref());
    }

    let mut vary: Vec<(String, Option<String>)> = input
        .vary_values
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.map(normalise_header_value)))
        .collect();
    vary.sort();
    count(&mut h, vary.len());
    for (name, value) in &vary {
        frame(&mut h, name.as_bytes());
        optional(&mut h, value.as_deref());
    }

    optional(&mut h, input.consumer);
    // Appended only when present (as the variant below), so keys without forwarded claims are
    // what they always were; every earlier field is framed and each appended part starts with
    // its own framed tag, so no two inputs make one stream.
    if !input.forwarded.is_empty() {
        frame(&mut h, b"forwarded");
        count(&mut h, input.forwarded.len());
        for (name, value) in input.forwarded {
            frame(&mut h, name.as_bytes());
            frame(&mut h, value.as_bytes());
        }
    }
    if let Some(variant) = input.variant {
        frame(&mut h, b"variant");
        frame(&mut h, variant.as_bytes());
    }

    let digest = h.finalize();
    let hex = match seal {
        // An HMAC of the collision-resistant digest: as unforgeable as one over the framed
        // stream, and the framing code stays one.
        Some(KeySeal(mac)) => {
            let mut mac = mac.clone();
            mac.update(&digest);
            crate::hex::encode(&mac.finalize().into_bytes())
        }
        None => crate::hex::encode(&digest),
    };
    format!(
        "{CACHE_KEY_ORIGIN}/{KEY_VERSION}/{}/{hex}",
        input.generation
    )
}

/// The query's parameters as (name, value) pairs, `%xx` hex upper-cased, sorted by name only:
/// repeated parameters keep their order, because upstreams may read them as an ordered list
/// (`a=2&a=1` is not `a=1&a=2`). Empty parameters (`a=1&&b=2`) are kept. A query with a `;` is
/// not sorted: an upstream that also splits on `;` reads `a=1;x=9&x=8` as x = 9, 8, so moving
/// its parts could make two different lists one key. Nor is one where two different spellings
/// may be one name to the upstream (see [`upstream_name`]): `%61=2&a=1` and `a=1&%61=2` are
/// a = 2, 1 and a = 1, 2 to a server that decodes names, so sorting the spellings apart would
/// make them one key.
pub fn normalised_query(query: Option<&str>) -> Vec<(String, Option<String>)> {
    let query = match query {
        None | Some("") => return Vec::new(),
        Some(q) => q,
    };
    let mut params: Vec<(String, Option<String>)> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((n, v)) => (upper_percent_hex(n), Some(upper_percent_hex(v))),
            None => (upper_percent_hex(p), None),
        })
        .collect();
    if !query.contains(';') && !spellings_collide(&params) {
        params.sort_by(|a, b| a.0.cmp(&b.0));
    }
    params
}

/// Whether two parameters spelt differently may have one name to the upstream.
fn spellings_collide(params: &[(String, Option<String>)]) -> bool {
    if params.len() < 2 {
        return false;
    }
    let mut seen: std::collections::HashMap<Vec<u8>, &str> =
        std::collections::HashMap::with_capacity(params.len());
    for (name, _) in params {
        match seen.entry(upstream_name(name)) {
            std::collections::hash_map::Entry::Occupied(first) if *first.get() != name => {
                return true
            }
            std::collections::hash_map::Entry::Occupied(_) => {}
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(name);
            }
        }
    }
    false
}

/// The coarsest reading of a parameter name among common upstream frameworks: percent-decoded
/// with `+` as a space (form decoding), ASCII case folded (ASP.NET), cut at the first `[`
/// (PHP, Rails and `qs` read `a[]` and `a[x]` as parts of `a`), and `.` and spaces read as `_`
/// (PHP). Two spellings with one reading are one name to some upstream.
fn upstream_name(name: &str) -> Vec<u8> {
    let b = name.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let mut c = b[i];
        if c == b'%' {
            let hi = b.get(i + 1).copied().and_then(crate::hex::value);
            let lo = b.get(i + 2).copied().and_then(crate::hex::value);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                c = hi << 4 | lo;
                i += 2;
            }
        } else if c == b'+' {
            c = b' ';
        }
        i += 1;
        match c {
            b'[' => break,
            b'.' | b' ' => out.push(b'_'),
            _ => out.push(c.to_ascii_lowercase()),
        }
    }
    out
}

/// Upper-cases the two hex digits of every well-formed `%xx` escape; nothing else changes.
fn upper_percent_hex(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    for (idx, c) in s.char_indices() {
        if idx < i {
            continue; // part of an escape already written
        }
        match (c, b.get(idx + 1), b.get(idx + 2)) {
            ('%', Some(&h1), Some(&h2)) if h1.is_ascii_hexdigit() && h2.is_ascii_hexdigit() => {
                out.push('%');
                out.push(char::from(h1.to_ascii_uppercase()));
                out.push(char::from(h2.to_ascii_uppercase()));
                i = idx + 3;
            }
            _ => out.push(c),
        }
    }
    out
}

/// Trims spaces and tabs and collapses each internal run of them to one space.
pub fn normalise_header_value(v: &str) -> String {
    v.split([' ', '\t'])
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn frame(h: &mut Sha256, bytes: &[u8]) {
    count(h, bytes.len());
    h.update(bytes);
}

fn count(h: &mut Sha256, n: usize) {
    h.update(u64::try_from(n).unwrap_or(u64::MAX).to_be_bytes());
}

fn optional(h: &mut Sha256, v: Option<&str>) {
    match v {
        None => h.update([0u8]),
        Some(v) => {
            h.update([1u8]);
            frame(h, v.as_bytes());
        }
    }
}
