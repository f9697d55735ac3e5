//! The port through which the control plane reads and writes the `CONFIG` KV namespace, and
//! the names of its keys.

use std::fmt;

/// The current document (what `wrangler kv key put` writes, so that path keeps working).
pub const ROUTES_KEY: &str = "routes";
/// The last document that passed validation when it was pushed.
pub const LAST_GOOD_KEY: &str = "routes:last-good";
/// The history index (`[{digest, at_ms, size, note}]`, newest first).
pub const HISTORY_KEY: &str = "routes:history";

/// The immutable copy of one pushed document.
pub fn version_key(digest: &str) -> String {
    format!("routes@{digest}")
}

/// A KV operation that failed, with the platform's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvError(pub String);

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Text values by key. Implemented by the Workers KV adapter in the platform and by an
/// in-memory fake in tests.
// The runtime is single-threaded (Wasm), so the futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait ConfigKv {
    async fn get(&self, key: &str) -> Result<Option<String>, KvError>;
    async fn put(&self, key: &str, value: &str) -> Result<(), KvError>;
    /// Removes `key`; removing a key that is not there succeeds.
    async fn delete(&self, key: &str) -> Result<(), KvError>;
}
