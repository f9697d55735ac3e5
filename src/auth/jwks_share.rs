//! The JWKS copy isolates of one location share through the Cache API, sealed so that only the
//! gateway can write one it will read.
//!
//! `caches.default` belongs to the zone, not to this Worker: any other Worker on the zone can
//! `put` any URL in it. A JWKS read from there unchecked would let such code plant its own keys
//! and have the gateway accept the tokens they sign. So the shared copy is
//!
//! - stored under a URL of its own ([`share_url`]), never the JWKS URL, so it never meets (or
//!   overwrites) a response some other code caches for the identity provider's address; the
//!   URL is derived from the sealing key too, so two gateways on one zone (staging and
//!   production, with their own admin tokens) never overwrite each other's copy, and an
//!   outsider cannot even name the entry it would have to replace;
//! - sealed with HMAC-SHA256 under a key derived from a secret only the gateway holds (the admin
//!   token, [`share_key`]), over the JWKS URL, an expiry and the document: a forged, altered,
//!   moved (another scheme's URL) or outlived copy fails [`open`] and the keys are fetched from
//!   the identity provider instead.
//!
//! Without that secret nothing is shared: every isolate fetches the JWKS itself (once per its
//! `max-age`, and on an unknown `kid` at most every few seconds). Outsiders can still delete or
//! overwrite the entry, which only costs a fetch, or put back an older sealed copy they read:
//! it opens only until the expiry it was sealed with, the same moment an isolate that fetched
//! it then would have dropped it, so a replay never keeps a key longer than its `max-age` did.
//!
//! Why not the alternatives: dropping the shared copy makes every new isolate wait for the
//! identity provider on its first JWT request (and multiplies the provider's load by the
//! isolates of every location); checking a copy against a digest kept elsewhere needs a store
//! outsiders cannot write, which here is KV (a read per cold isolate, 1 write/s per key, slow
//! propagation), for what an HMAC over data already at hand gives. Pure: time comes in as
//! `now_ms`.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Origin of shared JWKS entries; `.invalid` (RFC 6761) is never a real host.
pub const SHARE_ORIGIN: &str = "https://jwks.edge-gateway.invalid";
/// The largest sealed entry read back: a JWKS at its limit, the tag, expiry and MAC.
pub const MAX_SEALED_BYTES: usize = super::jwk::MAX_JWKS_BYTES + 128;
/// Format tag of a sealed entry (and of what the MAC covers), changed with the format.
const VERSION: &str = "jwks-share-v1";

/// The cache URL of the shared copy of the JWKS at `jwks_url` sealed with `key`: an HMAC of
/// the JWKS URL, so only the holder of the key can name it.
pub fn share_url(key: &[u8; 32], jwks_url: &str) -> String {
    let id = match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(b"share url\n");
            mac.update(jwks_url.as_bytes());
            crate::hex::encode(&mac.finalize().into_bytes())
        }
        // HMAC takes keys of any length; never reached, and still a per-URL name.
        Err(_) => crate::hex::encode(&Sha256::digest(jwks_url.as_bytes())),
    };
    format!("{SHARE_ORIGIN}/v1/{id}")
}

/// The sealing key, derived from the gateway's secret with a purpose label (so the MAC never
/// doubles as anything else keyed by that secret); `None` for an empty secret.
pub fn share_key(secret: &str) -> Option<[u8; 32]> {
    if secret.is_empty() {
        return None;
    }
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(b"edge-gateway jwks share key v1");
    Some(mac.finalize().into_bytes().into())
}

/// The MAC state over an entry's fields (`None` only if HMAC refused the key, which it never
/// does for 32 bytes).
fn tag(key: &[u8; 32], jwks_url: &str, expires_ms: u64, text: &str) -> Option<HmacSha256> {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).ok()?;
    // Length-prefixed fields: no two (url, expiry, document) triples share an input.
    for field in [VERSION.as_bytes(), jwks_url.as_bytes()] {
        mac.update(&(field.len() as u64).to_be_bytes());
        mac.update(field);
    }
    mac.update(&expires_ms.to_be_bytes());
    mac.update(text.as_bytes());
    Some(mac)
}

/// The entry to store for `text` (the JWKS at `jwks_url`), valid until `expires_ms`.
pub fn seal(key: &[u8; 32], jwks_url: &str, text: &str, expires_ms: u64) -> Option<String> {
    let mac = tag(key, jwks_url, expires_ms, text)?
        .finalize()
        .into_bytes();
    let mac = crate::hex::encode(&mac);
    Some(format!("{VERSION}\n{expires_ms}\n{mac}\n{text}"))
}

/// A shared copy that opened: the document and until when the sealer meant it to be used.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened<'a> {
    pub text: &'a str,
    pub expires_ms: u64,
}

/// Why a stored entry is not used.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not in the sealed format (an old entry, or another writer's).
    Unsealed,
    /// The seal does not match: forged, altered, or sealed for another JWKS URL or secret.
    BadSeal,
    /// Sealed, but past its expiry (a replayed old copy).
    Expired,
}

/// The document in `stored` if the gateway sealed it for `jwks_url` with `key` and it has not
/// expired at `now_ms`. The MAC is checked in constant time, before anything else is trusted.
pub fn open<'a>(
    key: &[u8; 32],
    jwks_url: &str,
    stored: &'a str,
    now_ms: f64,
) -> Result<Opened<'a>, Refused> {
    let mut fields = stored.splitn(4, '\n');
    let (Some(VERSION), Some(expires), Some(mac_hex), Some(text)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(Refused::Unsealed);
    };
    let expires_ms: u64 = expires.parse().map_err(|_| Refused::Unsealed)?;
    let mac = decode_hex(mac_hex).ok_or(Refused::Unsealed)?;
    tag(key, jwks_url, expires_ms, text)
        .ok_or(Refused::BadSeal)?
        .verify_slice(&mac)
        .map_err(|_| Refused::BadSeal)?;
    if now_ms >= expires_ms as f64 {
        return Err(Refused::Expired);
    }
    Ok(Opened { text, expires_ms })
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    b.chunks_exact(2)
        .map(|p| Some(crate::hex::value(p[0])? << 4 | crate::hex::value(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://id.example/jwks";

    fn key(secret: &str) -> [u8; 32] {
        share_key(secret).unwrap()
    }

    #[test]
    fn a_sealed_copy_opens_until_it_expires() {
        let k = key("admin-token");
        let stored = seal(&k, URL, r#"{"keys":[]}"#, 10_000).unwrap();
        assert_eq!(
            open(&k, URL, &stored, 9_999.0),
            Ok(Opened {
                text: r#"{"keys":[]}"#,
                expires_ms: 10_000
            })
        );
        assert_eq!(open(&k, URL, &stored, 10_000.0), Err(Refused::Expired));
    }

    #[test]
    fn forged_altered_moved_or_foreign_copies_do_not_open() {
        let k = key("admin-token");
        let stored = seal(&k, URL, r#"{"keys":[]}"#, 10_000).unwrap();
        // What an outsider can plant: a bare JWKS, or the format with a made-up or copied MAC.
        assert_eq!(open(&k, URL, r#"{"keys":[]}"#, 0.0), Err(Refused::Unsealed));
        let forged = seal(
            &key("attacker guess"),
            URL,
            r#"{"keys":[{"kty":"EC"}]}"#,
            10_000,
        )
        .unwrap();
        assert_eq!(open(&k, URL, &forged, 0.0), Err(Refused::BadSeal));
        let altered = stored.replace(r#"{"keys":[]}"#, r#"{"keys":[{}]}"#);
        assert_eq!(open(&k, URL, &altered, 0.0), Err(Refused::BadSeal));
        let extended = stored.replacen("10000", "99999", 1);
        assert_eq!(open(&k, URL, &extended, 0.0), Err(Refused::BadSeal));
        assert_eq!(
            open(&k, "https://other.example/jwks", &stored, 0.0),
            Err(Refused::BadSeal)
        );
        assert_eq!(
            open(&key("rotated-token"), URL, &stored, 0.0),
            Err(Refused::BadSeal)
        );
        for junk in [
            "",
            "jwks-share-v1",
            "jwks-share-v1\nx\nzz\n{}",
            "jwks-share-v1\n1\n00\n{}",
        ] {
            assert_eq!(open(&k, URL, junk, 0.0), Err(Refused::Unsealed), "{junk:?}");
        }
    }

    #[test]
    fn the_share_url_is_private_and_per_jwks_url() {
        let k = key("admin-token");
        let a = share_url(&k, URL);
        assert!(a.starts_with("https://jwks.edge-gateway.invalid/v1/"));
        assert_eq!(a.len(), SHARE_ORIGIN.len() + 4 + 64);
        assert_ne!(a, share_url(&k, "https://id.example/jwks2"));
        assert_ne!(a, share_url(&key("another gateway's token"), URL));
        assert_eq!(share_key(""), None);
        assert_ne!(key("a"), key("b"));
    }
}
