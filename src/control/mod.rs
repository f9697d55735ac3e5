//! The control plane's decisions: document digests and `If-Match`, the history index, the
//! order of the KV writes of a push or a rollback and what each failure leaves behind, which
//! document a cold isolate serves, the diff of two documents, and `explain`.
//!
//! Nothing here touches the runtime: KV is reached through the [`ConfigKv`] port, time comes in
//! as a number, and the same functions run in the worker, in the `ConfigLock` Durable Object,
//! in `gatewayctl` and under `cargo test` (with an in-memory KV that fails on demand).

pub mod admin_guard;
pub mod diff;
pub mod explain;
pub mod history;
pub mod push;
mod refusal;
pub mod resolve;
pub mod store;
pub mod wire;

#[cfg(test)]
mod tests;

pub use history::HistoryEntry;
pub use push::{
    carry_out, lock_record, push, rollback, Action, LockRecord, PushError, PushRequest, Pushed,
    WriteStage,
};
pub use resolve::{current, last_good, Current, Source};
pub use store::{ConfigKv, KvError};

use sha2::{Digest, Sha256};

/// Largest document KV can hold as one value (25 MiB); a larger push is refused with 413.
pub const MAX_DOCUMENT_BYTES: u64 = 25 * 1024 * 1024;

/// `sha256:` and the full hex SHA-256 of the document's exact text: its identity in `ETag`,
/// history and rollback. (`Gateway::digest` is a 16-digit short form for humans.)
pub fn document_digest(text: &str) -> String {
    format!(
        "sha256:{}",
        crate::hex::encode(&Sha256::digest(text.as_bytes()))
    )
}

/// The `ETag` header value of a document digest.
pub fn etag(digest: &str) -> String {
    format!("\"{digest}\"")
}

/// The `If-Match` value for a version named on a command line (`gatewayctl push --if-match`):
/// `*` as it is, a full digest (with or without `sha256:`, quotes, in either case) as its
/// ETag; `None` for anything else (a prefix, a typo), which no version's ETag could equal, so
/// the gateway's 412 would read as "the configuration changed" when it did not.
pub fn if_match_for(given: &str) -> Option<String> {
    if given.trim() == "*" {
        return Some("*".to_owned());
    }
    history::full_digest(given).map(|d| etag(&d))
}

/// What an `If-Match` header says about the current document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// No `If-Match`: a push must say which version it replaces.
    Missing,
    Holds,
    /// The client's version is not the current one.
    Stale,
    /// The header is not `*` or a list of entity tags (RFC 9110 §8.8.3): `latest`, `sha256:12`.
    /// A well-formed tag that matches nothing is [`Precondition::Stale`], as HTTP prescribes,
    /// even one no version could have.
    Malformed,
}

/// What `If-Match` must be on the config endpoints.
pub const IF_MATCH_RULE: &str = "If-Match must be * or a list of entity tags, such as the ETag GET /config sends (\"sha256:\" and 64 hex digits, in quotes)";

/// Evaluates `If-Match` (RFC 9110 §13.1.1, strong comparison): `*`, or a list of entity tags
/// one of which must be the current document's. Weak tags (`W/"…"`) never match; a tag
/// without quotes is accepted too, since people type them.
pub fn precondition(if_match: Option<&str>, current_digest: &str) -> Precondition {
    let Some(value) = if_match.map(str::trim).filter(|v| !v.is_empty()) else {
        return Precondition::Missing;
    };
    if value == "*" {
        return Precondition::Holds;
    }
    fn opaque(tag: &str) -> &str {
        tag.strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(tag)
    }
    let tags: Vec<&str> = value.split(',').map(str::trim).collect();
    let holds = tags
        .iter()
        .any(|tag| !tag.starts_with("W/") && opaque(tag) == current_digest);
    // A well-formed tag that matches nothing says the version changed (412, RFC 9110
    // §13.1.1); text that is no tag at all says nothing and is refused as bad input. A bare
    // digest counts as a tag, since people type them without quotes.
    let is_tag = |tag: &&str| {
        let t = tag.strip_prefix("W/").unwrap_or(tag);
        let quoted = t
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .is_some_and(|inner| {
                inner
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
            });
        quoted || (t.starts_with("sha256:") && history::full_digest(t).is_some())
    };
    if holds {
        Precondition::Holds
    } else if tags.iter().all(is_tag) {
        Precondition::Stale
    } else {
        Precondition::Malformed
    }
}
