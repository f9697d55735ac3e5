//! Authentication: JWT and API-key schemes.
//!
//! Pure: nothing here touches the `worker` crate or reads a clock. The platform layer reads
//! headers, secrets, KV and JWKS documents and passes them in as data:
//!
//! - [`credentials`] takes a credential out of `Authorization`, a cookie or the query string;
//! - [`jwk`] turns JWKS documents, inline JWKs and HMAC secrets into algorithm-bound keys;
//! - [`jwt`] verifies a token against a scheme and those keys, and maps claims to headers and
//!   scopes;
//! - [`token_cache`] remembers verified tokens per isolate;
//! - [`jwks_share`] seals the JWKS copy isolates share, so no other code can plant keys;
//! - [`api_key`] hashes, generates and checks API keys;
//! - [`weak_keys`] says which keys and secrets are too weak to trust.

pub mod admin_token;
pub mod api_key;
pub mod credentials;
pub mod jwks_share;
pub mod jwt;
pub mod token_cache;

#[cfg(test)]
pub(crate) mod test_keys;

/// Re-exported where authentication code has always found them.
pub use crate::jose::{b64, jwk, weak_keys};
