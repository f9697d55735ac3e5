//! JSON Web Keys (RFC 7517) as configuration and JWKS documents carry them, turned into
//! verifying keys that are each bound to exactly one signature algorithm.
//!
//! # Supported algorithms
//!
//! Whatever `jwt-compact` (features `p256`, `rsa`, `ed25519-compact`) verifies on wasm32:
//!
//! | `alg`                 | key                              | source                       |
//! |-----------------------|----------------------------------|------------------------------|
//! | HS256, HS384, HS512   | shared secret bytes              | a Worker secret (`secret`)   |
//! | RS256, RS384, RS512   | RSA public key, 2048–4096 bits   | JWKS / inline `kty: "RSA"`   |
//! | PS256, PS384, PS512   | RSA public key, 2048–4096 bits   | JWKS / inline `kty: "RSA"`   |
//! | ES256                 | EC P-256 public key              | JWKS / inline `kty: "EC"`    |
//! | EdDSA                 | Ed25519 public key               | JWKS / inline `kty: "OKP"`   |
//!
//! # Binding a key to one algorithm
//!
//! A key is usable with one algorithm only, chosen here from trusted data and never from a
//! token: the JWK's own `alg` if it has one (it must be in the scheme's `algorithms` and fit the
//! key type), otherwise the first algorithm of `algorithms` that fits the key type (RSA → RS*/PS*,
//! EC P-256 → ES256, OKP Ed25519 → EdDSA). An asymmetric key is never bound to an HMAC algorithm,
//! and `kty: "oct"` keys are never taken from a JWKS or inline keys: HMAC secrets come only from
//! [`hmac_keys`]. This is what defeats the classic "HS256 signed with the RSA public key" forgery.
//!
//! # Keys that are skipped
//!
//! A JWKS is published by someone else and may hold keys we cannot or must not use; those are
//! skipped rather than failing the whole set: `use` present and not `"sig"`, `key_ops` present
//! without `"verify"`, a non-string `kid`, private members (`d`, `p`, `q`, …, `k`), unsupported
//! `kty`/`crv`, an `alg` that is unknown, not allowed or does not fit the key, no allowed algorithm
//! fitting the key, RSA moduli over 4096 bits (which the `rsa` crate refuses), and key
//! material that does not decode.
//!
//! # Weak keys
//!
//! Keys [`super::weak_keys`] finds weak (RSA under 2048 bits, an even or small exponent, the
//! ROCA fingerprint; HMAC secrets shorter than the hash) are never used either. Inline keys are
//! refused at load with the reason ([`weakness`]); a JWKS's weak keys are skipped and reported
//! ([`read_jwks`]) so the platform can count and log them.

use jwt_compact::alg::{
    Ed25519, Es256, Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key, Rsa, RsaPublicKey,
};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{Algorithm as JwtAlgorithm, AlgorithmSignature};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

use super::b64;
use super::weak_keys;
use super::Algorithm;

/// Members that only private keys have: a private key in configuration is a leaked secret.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Most keys taken from one JWKS document (or one inline `keys` list).
pub const MAX_JWKS_KEYS: usize = 100;

/// Largest JWKS document parsed, in bytes.
pub const MAX_JWKS_BYTES: usize = 1 << 20;

/// Whether keys may come from `url`: over https, or from loopback over http (local development
/// and tests), and without user-info. The configured `jwks_url` must be such an address, and so
/// must the one a fetch of it was redirected to: keys read over plaintext could be anyone's.
pub fn key_source_allowed(url: &url::Url) -> bool {
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    (url.scheme() == "https" || (url.scheme() == "http" && loopback))
        && url.username().is_empty()
        && url.password().is_none()
}

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = weak_keys::MIN_RSA_BITS;

type P256Key = <Es256 as JwtAlgorithm>::VerifyingKey;
type Ed25519Key = <Ed25519 as JwtAlgorithm>::VerifyingKey;

/// A public key (or HMAC secret) usable to verify tokens of exactly one algorithm.
#[derive(Clone)]
pub struct VerifyingKey {
    pub kid: Option<String>,
    /// The only algorithm this key verifies.
    pub alg: Algorithm,
    material: KeyMaterial,
}

#[derive(Clone)]
enum KeyMaterial {
    Rsa(RsaPublicKey),
    P256(P256Key),
    Ed25519(Ed25519Key),
    Hs256(Hs256Key),
    Hs384(Hs384Key),
    Hs512(Hs512Key),
}

impl fmt::Debug for VerifyingKey {
    /// Never prints key material (HMAC keys are secrets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.material {
            KeyMaterial::Rsa(_) => "RSA",
            KeyMaterial::P256(_) => "EC P-256",
            KeyMaterial::Ed25519(_) => "OKP Ed25519",
            KeyMaterial::Hs256(_) | KeyMaterial::Hs384(_) | KeyMaterial::Hs512(_) => "oct",
        };
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg.name())
            .field("kty", &kind)
            .finish()
    }
}

/// Verifies `signature` over `message` with `alg`; false for any malformed signature.
fn verify_with<A: JwtAlgorithm>(
    alg: &A,
    key: &A::VerifyingKey,
    message: &[u8],
    signature: &[u8],
) -> bool {
    // Fixed-length signatures are checked first: some `try_from_slice` implementations panic
    // on a wrong length.
    if let Some(len) = A::Signature::LENGTH {
        if signature.len() != len.get() {
            return false;
        }
    }
    match A::Signature::try_from_slice(signature) {
        Ok(sig) => alg.verify_signature(&sig, key, message),
        Err(_) => false,
    }
}

impl VerifyingKey {
    /// Checks a JWS signature over `message` (the `header.payload` signing input) with this
    /// key's bound algorithm.
    pub fn verify_signature(&self, message: &[u8], signature: &[u8]) -> bool {
        match (&self.material, self.alg) {
            (KeyMaterial::Rsa(k), alg) => {
                let rsa = match alg {
                    Algorithm::Rs256 => Rsa::rs256(),
                    Algorithm::Rs384 => Rsa::rs384(),
                    Algorithm::Rs512 => Rsa::rs512(),
                    Algorithm::Ps256 => Rsa::ps256(),
                    Algorithm::Ps384 => Rsa::ps384(),
                    Algorithm::Ps512 => Rsa::ps512(),
                    _ => return false,
                };
                verify_with(&rsa, k, message, signature)
            }
            (KeyMaterial::P256(k), Algorithm::Es256) => verify_with(&Es256, k, message, signature),
            (KeyMaterial::Ed25519(k), Algorithm::EdDsa) => {
                verify_with(&Ed25519, k, message, signature)
            }
            (KeyMaterial::Hs256(k), Algorithm::Hs256) => verify_with(&Hs256, k, message, signature),
            (KeyMaterial::Hs384(k), Algorithm::Hs384) => verify_with(&Hs384, k, message, signature),
            (KeyMaterial::Hs512(k), Algorithm::Hs512) => verify_with(&Hs512, k, message, signature),
            _ => false,
        }
    }
}

/// Checks that an inline key is a public key of a supported type.
pub fn check_public_jwk(key: &Value) -> Result<(), String> {
    let Value::Object(members) = key else {
        return Err("a JWK must be an object".into());
    };
    if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| members.contains_key(**m)) {
        return Err(format!(
            "JWK holds private member \"{m}\": only public keys belong in configuration (HMAC keys go in a Worker secret named by \"secret\")"
        ));
    }
    match members.get("kty").and_then(Value::as_str) {
        Some("RSA" | "EC" | "OKP") => Ok(()),
        Some(other) => Err(format!(
            "unsupported JWK kty \"{other}\" (expected RSA, EC or OKP)"
        )),
        None => Err("JWK needs \"kty\"".into()),
    }
}

/// The keys of a JWKS document, and why each weak key in it was skipped.
pub struct JwksKeys {
    pub keys: Vec<VerifyingKey>,
    /// One line per weak key: its `kid` (when it has one) and the reason.
    pub weak: Vec<String>,
}

/// Parses a JWKS document (`{"keys": [...]}`) into verifying keys, skipping unusable keys.
///
/// Fails only when the document is not JSON, is larger than [`MAX_JWKS_BYTES`], has no `keys`
/// array, or lists more than [`MAX_JWKS_KEYS`] keys.
pub fn keys_from_jwks(document: &str, allowed: &[Algorithm]) -> Result<Vec<VerifyingKey>, String> {
    read_jwks(document, allowed).map(|k| k.keys)
}

/// Like [`keys_from_jwks`], also naming the weak keys that were skipped.
pub fn read_jwks(document: &str, allowed: &[Algorithm]) -> Result<JwksKeys, String> {
    if document.len() > MAX_JWKS_BYTES {
        return Err(format!("JWKS document exceeds {MAX_JWKS_BYTES} bytes"));
    }
    let parsed: Value =
        serde_json::from_str(document).map_err(|_| "JWKS document is not JSON".to_string())?;
    let Some(keys) = parsed.get("keys").and_then(Value::as_array) else {
        return Err("JWKS document has no \"keys\" array".into());
    };
    if keys.len() > MAX_JWKS_KEYS {
        return Err(format!(
            "JWKS document has {} keys (at most {MAX_JWKS_KEYS})",
            keys.len()
        ));
    }
    let mut out = JwksKeys {
        keys: Vec::new(),
        weak: Vec::new(),
    };
    for jwk in keys {
        match key_from_jwk(jwk, allowed) {
            Ok(key) => out.keys.push(key),
            Err(Skip::Weak(reason)) => {
                let kid = jwk.get("kid").and_then(Value::as_str);
                out.weak.push(match kid {
                    Some(kid) => format!(
                        "kid \"{}\": {reason}",
                        kid.chars().take(64).collect::<String>()
                    ),
                    None => reason,
                });
            }
            Err(Skip::Unusable) => {}
        }
    }
    Ok(out)
}

/// Why a JWK's key material is too weak to trust, if it is (only RSA keys can be: the curves
/// supported have fixed sizes). Keys whose material does not decode are not judged here.
pub fn weakness(jwk: &Value) -> Option<String> {
    let members = jwk.as_object()?;
    if members.get("kty").and_then(Value::as_str) != Some("RSA") {
        return None;
    }
    let n = b64_member(members, "n")?;
    let e = b64_member(members, "e")?;
    weak_keys::rsa_weakness(&n, &e)
}

/// Inline `keys` from configuration, under the same rules as [`keys_from_jwks`] (at most
/// [`MAX_JWKS_KEYS`] are considered).
pub fn keys_from_values(values: &[Value], allowed: &[Algorithm]) -> Vec<VerifyingKey> {
    values
        .iter()
        .take(MAX_JWKS_KEYS)
        .filter_map(|k| key_from_jwk(k, allowed).ok())
        .collect()
}

/// One key per HMAC algorithm in `allowed` (without duplicates), all with `secret`; none for an
/// algorithm whose hash is longer than the secret (see [`hmac_weaknesses`]). These keys have no
/// `kid`.
pub fn hmac_keys(secret: &[u8], allowed: &[Algorithm]) -> Vec<VerifyingKey> {
    let mut out: Vec<VerifyingKey> = Vec::new();
    for &alg in allowed {
        if out.iter().any(|k| k.alg == alg)
            || weak_keys::hmac_secret_weakness(alg, secret.len()).is_some()
        {
            continue;
        }
        let material = match alg {
            Algorithm::Hs256 => KeyMaterial::Hs256(Hs256Key::new(secret)),
            Algorithm::Hs384 => KeyMaterial::Hs384(Hs384Key::new(secret)),
            Algorithm::Hs512 => KeyMaterial::Hs512(Hs512Key::new(secret)),
            _ => continue,
        };
        out.push(VerifyingKey {
            kid: None,
            alg,
            material,
        });
    }
    out
}

/// Why a secret of `len` bytes is refused for some of the HMAC algorithms in `allowed`: one
/// reason per refused algorithm (never the secret itself).
pub fn hmac_weaknesses(len: usize, allowed: &[Algorithm]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, &alg) in allowed.iter().enumerate() {
        if allowed.get(..i).is_some_and(|before| before.contains(&alg)) {
            continue;
        }
        out.extend(weak_keys::hmac_secret_weakness(alg, len));
    }
    out
}

/// Why a JWK yields no key.
enum Skip {
    /// Not for signatures, not allowed, malformed or unsupported.
    Unusable,
    /// Usable in form, but too weak to trust (the reason).
    Weak(String),
}

/// Key families a JWK can describe.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    P256,
    Ed25519,
}

impl Family {
    fn fits(self, alg: Algorithm) -> bool {
        match self {
            Family::Rsa => matches!(
                alg,
                Algorithm::Rs256
                    | Algorithm::Rs384
                    | Algorithm::Rs512
                    | Algorithm::Ps256
                    | Algorithm::Ps384
                    | Algorithm::Ps512
            ),
            Family::P256 => alg == Algorithm::Es256,
            Family::Ed25519 => alg == Algorithm::EdDsa,
        }
    }
}

fn b64_member(members: &serde_json::Map<String, Value>, name: &str) -> Option<Vec<u8>> {
    members
        .get(name)
        .and_then(Value::as_str)
        .and_then(b64::decode_lenient_padding)
}

/// One usable key from one JWK, or why it must be skipped (see the module docs).
fn key_from_jwk(jwk: &Value, allowed: &[Algorithm]) -> Result<VerifyingKey, Skip> {
    let (kid, alg, family) = usable_shape(jwk, allowed).ok_or(Skip::Unusable)?;
    if family == Family::Rsa {
        if let Some(reason) = weakness(jwk) {
            return Err(Skip::Weak(reason));
        }
    }
    let material = jwk
        .as_object()
        .and_then(|members| material(members, family))
        .ok_or(Skip::Unusable)?;
    Ok(VerifyingKey { kid, alg, material })
}

/// The `kid`, bound algorithm and key family of a JWK meant for verifying signatures with one
/// of `allowed`; `None` when it is not.
fn usable_shape(jwk: &Value, allowed: &[Algorithm]) -> Option<(Option<String>, Algorithm, Family)> {
    let members = jwk.as_object()?;
    if let Some(usage) = members.get("use") {
        if usage.as_str() != Some("sig") {
            return None;
        }
    }
    if let Some(ops) = members.get("key_ops") {
        let ops = ops.as_array()?;
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return None;
        }
    }
    if PRIVATE_MEMBERS.iter().any(|m| members.contains_key(*m)) {
        return None;
    }
    let kid = match members.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return None,
    };
    let crv = members.get("crv").and_then(Value::as_str);
    let family = match (members.get("kty").and_then(Value::as_str)?, crv) {
        ("RSA", _) => Family::Rsa,
        ("EC", Some("P-256")) => Family::P256,
        ("OKP", Some("Ed25519")) => Family::Ed25519,
        _ => return None,
    };
    let alg = match members.get("alg") {
        Some(alg) => {
            let alg = Algorithm::from_name(alg.as_str()?)?;
            (family.fits(alg) && allowed.contains(&alg)).then_some(alg)?
        }
        None => allowed.iter().copied().find(|a| family.fits(*a))?,
    };
    Some((kid, alg, family))
}

/// The decoded public key of a JWK of `family`.
fn material(members: &serde_json::Map<String, Value>, family: Family) -> Option<KeyMaterial> {
    Some(match family {
        Family::Rsa => {
            let jwk = JsonWebKey::Rsa {
                modulus: Cow::Owned(b64_member(members, "n")?),
                public_exponent: Cow::Owned(b64_member(members, "e")?),
                private_parts: None,
            };
            KeyMaterial::Rsa(RsaPublicKey::try_from(&jwk).ok()?)
        }
        Family::P256 => {
            let jwk = JsonWebKey::EllipticCurve {
                curve: Cow::Borrowed("P-256"),
                x: Cow::Owned(b64_member(members, "x")?),
                y: Cow::Owned(b64_member(members, "y")?),
                secret: None,
            };
            KeyMaterial::P256(P256Key::try_from(&jwk).ok()?)
        }
        Family::Ed25519 => {
            let jwk = JsonWebKey::KeyPair {
                curve: Cow::Borrowed("Ed25519"),
                x: Cow::Owned(b64_member(members, "x")?),
                secret: None,
            };
            KeyMaterial::Ed25519(Ed25519Key::try_from(&jwk).ok()?)
        }
    })
}

#[cfg(test)]
mod tests;
