//! JWT verification (RFC 7515 compact JWS, RFC 7519 claims) against a configured scheme.
//!
//! Pure: no clock (`now_s` is passed in), no I/O. The token's header is decoded here, not by a
//! library, so every member is checked under our own rules:
//!
//! - `alg` must be a string naming one of the scheme's `algorithms` exactly; `none` in any case
//!   is refused on its own.
//! - `crit` in any form is refused: we implement no JWS extension (RFC 7515 §4.1.11).
//! - `typ` is checked only when the scheme sets `typ` (case-insensitive, `application/` prefix
//!   ignored, RFC 7515 §4.1.9).
//! - `kid` only narrows the choice among configured keys. **The header never chooses a key's
//!   algorithm**: a key is a candidate only if it is bound to exactly the header's `alg` (see
//!   [`super::jwk`]).
//! - Every other member (`jku`, `x5u`, `x5c`, `jwk`, `x5t`, `cty`, …) is ignored: nothing is ever
//!   fetched or trusted from a token, so header injection of keys or key URLs has no effect.
//! - Header and claims must be JSON objects without duplicate member names, at any depth (RFC
//!   7515 §5.2 allows refusing them; accepting them would let two parsers disagree on `alg`,
//!   `sub` or a nested claim the gateway forwards).
//!
//! Key selection: with a `kid`, the candidates are the keys with that `kid` and the header's
//! `alg`; if there are none, keys *without* a `kid` bound to that `alg` (an inline key or an HMAC
//! secret) are tried, and failing those the error is [`JwtError::UnknownKey`] (so the caller may
//! refresh its JWKS). This fallback gives nothing away: the same keys are tried for a token that
//! simply omits `kid`. Without a `kid`, every key bound to the `alg` is tried. At most
//! [`MAX_CANDIDATES`] keys are tried for one token.

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::fmt;

use super::b64;
use super::jwk::VerifyingKey;
use crate::config::{Algorithm, JwtScheme};

/// Longest token accepted, in bytes, checked before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8192;

/// Most keys whose signature check one token may cost.
pub const MAX_CANDIDATES: usize = 8;

/// Longest `kid` echoed in an error reason, in characters.
const MAX_KID_ECHO: usize = 64;

/// A token whose signature and claims passed.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    /// Every claim of the payload, registered ones included.
    pub claims: Map<String, Value>,
    /// `sub`, when it is a string.
    pub subject: Option<String>,
    /// `exp` in whole unix seconds (rounded down), when present.
    pub expires_at: Option<i64>,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    TooLong,
    Malformed(&'static str),
    AlgorithmNone,
    /// The header's `alg`, sanitised and bounded.
    AlgorithmNotAllowed(String),
    CriticalHeader,
    /// `kid` is the header's key id, sanitised and bounded (for display, not for lookups).
    UnknownKey {
        kid: Option<String>,
    },
    BadSignature,
    MissingExpiry,
    Expired,
    NotYetValid,
    IssuedInFuture,
    LifetimeTooLong,
    WrongIssuer,
    WrongAudience,
    WrongType,
    /// The named claim (a configuration name) holds a value that cannot become a header.
    UnsafeClaimValue(String),
}

impl JwtError {
    /// A short reason, safe to show a client: it never repeats token bytes except a bounded,
    /// sanitised `kid` and the name of a known algorithm.
    pub fn reason(&self) -> String {
        match self {
            JwtError::TooLong => format!("token exceeds {MAX_TOKEN_BYTES} bytes"),
            JwtError::Malformed(what) => format!("malformed token: {what}"),
            JwtError::AlgorithmNone => "unsigned tokens (alg none) are not accepted".into(),
            JwtError::AlgorithmNotAllowed(alg) => match Algorithm::from_name(alg) {
                Some(a) => format!("token algorithm {} is not accepted", a.name()),
                None => "token algorithm is not supported".into(),
            },
            JwtError::CriticalHeader => {
                "token requires header extensions (crit) that are not supported".into()
            }
            JwtError::UnknownKey { kid: Some(kid) } => {
                format!("no known key has id {}", sanitise(kid))
            }
            JwtError::UnknownKey { kid: None } => "no known key matches the token algorithm".into(),
            JwtError::BadSignature => "token signature is invalid".into(),
            JwtError::MissingExpiry => "token has no expiry (exp)".into(),
            JwtError::Expired => "token has expired".into(),
            JwtError::NotYetValid => "token is not valid yet (nbf)".into(),
            JwtError::IssuedInFuture => "token is issued in the future (iat)".into(),
            JwtError::LifetimeTooLong => "token lifetime exceeds the allowed maximum".into(),
            JwtError::WrongIssuer => "token issuer is not accepted".into(),
            JwtError::WrongAudience => "token audience is not accepted".into(),
            JwtError::WrongType => "token type (typ) is not accepted".into(),
            JwtError::UnsafeClaimValue(claim) => {
                format!(
                    "claim {} holds a value that cannot be forwarded",
                    sanitise(claim)
                )
            }
        }
    }

    /// True when no configured key could be tried for this token: a reason to refresh a JWKS.
    pub fn is_unknown_key(&self) -> bool {
        matches!(self, JwtError::UnknownKey { .. })
    }
}

/// Keeps a bounded run of harmless visible ASCII; anything else becomes `_`.
fn sanitise(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(MAX_KID_ECHO)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.:+/=~@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.chars().nth(MAX_KID_ECHO).is_some() {
        out.push_str("...");
    }
    out
}

/// A JSON value in which no object, at any depth, repeats a member name. Nested objects are
/// checked too: a forwarded claim is re-serialised by the gateway (the last duplicate wins in
/// `serde_json`), while an upstream that also reads the raw token may keep the first.
struct UniqueValue(Value);

impl<'de> Deserialize<'de> for UniqueValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;

        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = UniqueValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }

            fn visit_bool<E>(self, v: bool) -> Result<UniqueValue, E> {
                Ok(UniqueValue(Value::Bool(v)))
            }

            fn visit_i64<E>(self, v: i64) -> Result<UniqueValue, E> {
                Ok(UniqueValue(Value::Number(v.into())))
            }

            fn visit_u64<E>(self, v: u64) -> Result<UniqueValue, E> {
                Ok(UniqueValue(Value::Number(v.into())))
            }

            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<UniqueValue, E> {
                serde_json::Number::from_f64(v)
                    .map(|n| UniqueValue(Value::Number(n)))
                    .ok_or_else(|| E::custom("not a finite number"))
            }

            fn visit_str<E>(self, v: &str) -> Result<UniqueValue, E> {
                Ok(UniqueValue(Value::String(v.to_owned())))
            }

            fn visit_string<E>(self, v: String) -> Result<UniqueValue, E> {
                Ok(UniqueValue(Value::String(v)))
            }

            fn visit_unit<E>(self) -> Result<UniqueValue, E> {
                Ok(UniqueValue(Value::Null))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<UniqueValue, A::Error> {
                let mut items = Vec::new();
                while let Some(UniqueValue(item)) = access.next_element()? {
                    items.push(item);
                }
                Ok(UniqueValue(Value::Array(items)))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<UniqueValue, A::Error> {
                let mut map = Map::new();
                while let Some(key) = access.next_key::<String>()? {
                    if map.contains_key(&key) {
                        return Err(serde::de::Error::custom("duplicate member"));
                    }
                    let UniqueValue(value) = access.next_value()?;
                    map.insert(key, value);
                }
                Ok(UniqueValue(Value::Object(map)))
            }
        }

        deserializer.deserialize_any(ValueVisitor)
    }
}

/// A JSON object without a repeated member name at any depth (see [`UniqueValue`]).
fn parse_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<UniqueValue>(bytes) {
        Ok(UniqueValue(Value::Object(map))) => Some(map),
        _ => None,
    }
}

/// `typ` values compared as RFC 7515 §4.1.9 says: case-insensitively, without `application/`.
fn same_type(a: &str, b: &str) -> bool {
    fn strip(s: &str) -> &str {
        match s.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => {
                s.get(12..).unwrap_or("")
            }
            _ => s,
        }
    }
    strip(a).eq_ignore_ascii_case(strip(b))
}

/// Verifies `token` under `scheme` with `keys` at unix time `now_s`.
pub fn verify(
    token: &str,
    scheme: &JwtScheme,
    keys: &[VerifyingKey],
    now_s: i64,
) -> Result<VerifiedToken, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::TooLong);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("expected three dot-separated parts"));
    };
    let header_bytes =
        b64::decode(header_b64).ok_or(JwtError::Malformed("header is not base64url"))?;
    let payload_bytes =
        b64::decode(payload_b64).ok_or(JwtError::Malformed("payload is not base64url"))?;
    let signature =
        b64::decode(signature_b64).ok_or(JwtError::Malformed("signature is not base64url"))?;

    let header = parse_object(&header_bytes).ok_or(JwtError::Malformed(
        "header is not a JSON object with unique members",
    ))?;
    let Some(Value::String(alg_name)) = header.get("alg") else {
        return Err(JwtError::Malformed("header alg must be a string"));
    };
    if alg_name.eq_ignore_ascii_case("none") {
        return Err(JwtError::AlgorithmNone);
    }
    let alg = Algorithm::from_name(alg_name)
        .filter(|a| scheme.algorithms.contains(a))
        .ok_or_else(|| JwtError::AlgorithmNotAllowed(sanitise(alg_name)))?;
    if header.contains_key("crit") {
        return Err(JwtError::CriticalHeader);
    }
    if let Some(expected) = &scheme.typ {
        match header.get("typ") {
            Some(Value::String(typ)) if same_type(typ, expected) => {}
            _ => return Err(JwtError::WrongType),
        }
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(JwtError::Malformed("header kid must be a string")),
    };

    // The signing input is the token up to its second dot.
    let signed_len = header_b64.len() + 1 + payload_b64.len();
    let signing_input = token
        .as_bytes()
        .get(..signed_len)
        .ok_or(JwtError::Malformed("expected three dot-separated parts"))?;
    check_signature(alg, kid, keys, signing_input, &signature)?;

    let claims = parse_object(&payload_bytes).ok_or(JwtError::Malformed(
        "claims are not a JSON object with unique members",
    ))?;
    let expires_at = check_claims(&claims, scheme, now_s)?;
    let subject = match claims.get("sub") {
        Some(Value::String(sub)) => Some(sub.clone()),
        None => None,
        // RFC 7519 §4.1.2: a string. A number or a list would still be forwarded as a claim
        // while naming no consumer, so the upstream and the gateway would disagree on who it is.
        Some(_) => return Err(JwtError::Malformed("sub must be a string")),
    };
    Ok(VerifiedToken {
        claims,
        subject,
        expires_at,
    })
}

fn check_signature(
    alg: Algorithm,
    kid: Option<&str>,
    keys: &[VerifyingKey],
    signing_input: &[u8],
    signature: &[u8],
) -> Result<(), JwtError> {
    let bound = || keys.iter().filter(move |k| k.alg == alg);
    let try_keys = |candidates: &mut dyn Iterator<Item = &VerifyingKey>| -> Option<bool> {
        let mut tried = false;
        for key in candidates.take(MAX_CANDIDATES) {
            tried = true;
            if key.verify_signature(signing_input, signature) {
                return Some(true);
            }
        }
        tried.then_some(false)
    };
    let unknown = || JwtError::UnknownKey {
        kid: kid.map(sanitise),
    };
    let by_kid = match kid {
        Some(kid) => try_keys(&mut bound().filter(|k| k.kid.as_deref() == Some(kid))),
        None => try_keys(&mut bound()),
    };
    match by_kid {
        Some(true) => Ok(()),
        Some(false) => Err(JwtError::BadSignature),
        None if kid.is_some() => match try_keys(&mut bound().filter(|k| k.kid.is_none())) {
            Some(true) => Ok(()),
            _ => Err(unknown()),
        },
        None => Err(unknown()),
    }
}

/// A NumericDate claim (RFC 7519 §2): any JSON number, fractional or not.
fn numeric_date(
    claims: &Map<String, Value>,
    name: &str,
    malformed: &'static str,
) -> Result<Option<f64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or(JwtError::Malformed(malformed)),
        Some(_) => Err(JwtError::Malformed(malformed)),
    }
}

/// Applies the scheme's claim rules; returns `exp` in whole seconds.
fn check_claims(
    claims: &Map<String, Value>,
    scheme: &JwtScheme,
    now_s: i64,
) -> Result<Option<i64>, JwtError> {
    // f64 holds every integer up to 2^53 exactly, so boundaries at realistic times are exact.
    let now = now_s as f64;
    let leeway = scheme.leeway_s as f64;
    let exp = numeric_date(claims, "exp", "exp must be a number")?;
    let nbf = numeric_date(claims, "nbf", "nbf must be a number")?;
    let iat = numeric_date(claims, "iat", "iat must be a number")?;

    match exp {
        None if scheme.require_exp => return Err(JwtError::MissingExpiry),
        Some(exp) if now > exp + leeway => return Err(JwtError::Expired),
        _ => {}
    }
    if nbf.is_some_and(|nbf| nbf > now + leeway) {
        return Err(JwtError::NotYetValid);
    }
    if iat.is_some_and(|iat| iat > now + leeway) {
        return Err(JwtError::IssuedInFuture);
    }
    if let Some(max) = scheme.max_lifetime_s {
        match (iat, exp) {
            (Some(iat), Some(exp)) if exp - iat <= max as f64 => {}
            _ => return Err(JwtError::LifetimeTooLong),
        }
    }
    match claims.get("iss") {
        Some(Value::String(iss)) if *iss == scheme.issuer => {}
        _ => return Err(JwtError::WrongIssuer),
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => scheme.audiences.contains(aud),
        Some(Value::Array(auds)) => {
            auds.iter().all(Value::is_string)
                && auds
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|aud| scheme.audiences.iter().any(|a| a == aud))
        }
        _ => false,
    };
    if !audience_ok {
        return Err(JwtError::WrongAudience);
    }
    // `as` saturates at the i64 range, so an absurd exp cannot wrap around.
    Ok(exp.map(|e| e.floor() as i64))
}

/// The order n of P-256's group and ⌊n/2⌋ (big-endian): an ES256 signature's S above the
/// half has a twin n − S that verifies as well (ECDSA accepts (r, S) exactly when it accepts
/// (r, n − S)).
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
const P256_HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// n − s for a high s (⌊n/2⌋ < s < n), `None` otherwise.
fn low_s(s: &[u8; 32]) -> Option<[u8; 32]> {
    // Big-endian arrays of one length compare as the numbers they hold.
    if *s <= P256_HALF_ORDER || *s >= P256_ORDER {
        return None;
    }
    let mut out = [0u8; 32];
    let mut borrow = 0u16;
    for i in (0..32).rev() {
        let take = u16::from(s[i]) + borrow;
        let have = u16::from(P256_ORDER[i]);
        borrow = u16::from(have < take);
        out[i] = (have + (borrow << 8) - take) as u8;
    }
    Some(out)
}

/// The one string the verified-token cache knows `token` by. An ES256 token's signature is
/// malleable: anyone holding a token can make its twin with S replaced by n − S, a different
/// string that verifies all the same, and a cache keyed on the string would make every twin
/// pay a full verification. So an ES256 token with a high S is known by its low-S twin.
/// Refusing high S instead would break legitimate tokens: WebCrypto and npm `jose` emit it
/// about half the time. Other algorithms, and anything that is not plainly ES256, are their
/// own string: at worst a twin is verified, never served unverified.
pub fn cache_form(token: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    let Some((input, sig_b64)) = token.rsplit_once('.') else {
        return Cow::Borrowed(token);
    };
    // 64 bytes are 86 base64url characters (HS512 and EdDSA too: the header tells them apart).
    if sig_b64.len() != 86 {
        return Cow::Borrowed(token);
    }
    let Some(sig) = b64::decode(sig_b64) else {
        return Cow::Borrowed(token);
    };
    let (Some(r), Some(s)) = (sig.get(..32), sig.get(32..).and_then(|s| s.try_into().ok())) else {
        return Cow::Borrowed(token);
    };
    let Some(low) = low_s(s) else {
        return Cow::Borrowed(token);
    };
    // Only now, for a high S, is the header read: its `alg` must be exactly ES256 (the token can
    // then verify only as ES256, where the twin verifies too).
    let header = input.split('.').next().and_then(b64::decode);
    let es256 = header
        .as_deref()
        .and_then(parse_object)
        .is_some_and(|h| h.get("alg").and_then(Value::as_str) == Some("ES256"));
    if !es256 {
        return Cow::Borrowed(token);
    }
    let mut normal = Vec::with_capacity(64);
    normal.extend_from_slice(r);
    normal.extend_from_slice(&low);
    Cow::Owned(format!("{input}.{}", b64::encode(&normal)))
}

/// Request headers to add for the scheme's `forward_claims`: `(header name, value)` pairs.
///
/// Strings are forwarded as they are, numbers and booleans as their JSON text, arrays and objects
/// as compact JSON; a `null` or absent claim produces no header. A value with a control character
/// other than tab anywhere in it (CR, LF and NUL included, nested strings and member names too) is
/// refused with [`JwtError::UnsafeClaimValue`] rather than altered. So that every value is a valid
/// header value, `%`, every non-ASCII character and a space or tab at either end are
/// percent-encoded as UTF-8 (`é` → `%C3%A9`, `%` → `%25`, `"a "` → `a%20`: the runtime would
/// strip it); upstreams percent-decode to get the claim back.
pub fn forwarded_claims(
    verified: &VerifiedToken,
    scheme: &JwtScheme,
) -> Result<Vec<(String, String)>, JwtError> {
    let mut out = Vec::with_capacity(scheme.forward_claims.len());
    for (claim, header) in &scheme.forward_claims {
        let Some(value) = verified.claims.get(claim) else {
            continue;
        };
        if has_control(value) {
            return Err(JwtError::UnsafeClaimValue(claim.clone()));
        }
        let text = match value {
            Value::Null => continue,
            Value::String(s) => percent_encode(s),
            other => percent_encode(&other.to_string()),
        };
        out.push((header.clone(), text));
    }
    Ok(out)
}

fn has_control(value: &Value) -> bool {
    let bad = |s: &str| s.chars().any(|c| c.is_control() && c != '\t');
    match value {
        Value::String(s) => bad(s),
        Value::Array(items) => items.iter().any(has_control),
        Value::Object(members) => members.iter().any(|(k, v)| bad(k) || has_control(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

fn percent_encode(s: &str) -> String {
    crate::hex::percent_escape(s, |c| c.is_ascii() && c != '%')
}

/// The first of `required` that the claims do not grant, if any.
///
/// Granted scopes are the union of `scope` (a space-separated string, RFC 8693 §4.2) and `scp`
/// (an array of strings, or a space-separated string, as some issuers emit it).
pub fn missing_scope<'a>(claims: &Map<String, Value>, required: &'a [String]) -> Option<&'a str> {
    let in_words = |v: Option<&Value>, want: &str| {
        v.and_then(Value::as_str)
            .is_some_and(|s| s.split(' ').any(|w| !w.is_empty() && w == want))
    };
    let granted = |want: &str| {
        in_words(claims.get("scope"), want)
            || in_words(claims.get("scp"), want)
            || claims
                .get("scp")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(want)))
    };
    required
        .iter()
        .map(String::as_str)
        .find(|want| !granted(want))
}

#[cfg(test)]
mod tests;
