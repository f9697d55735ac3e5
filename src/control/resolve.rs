//! Which document the gateway serves, decided the same way by a cold isolate, by
//! `GET /config` and by the push precondition: a valid `routes`; else the last good document
//! (`routes:last-good`, then the newest valid versions in the history); only when KV holds
//! nothing valid, the document built into the worker.

use super::history;
use super::store::{version_key, ConfigKv, KvError, HISTORY_KEY, LAST_GOOD_KEY, ROUTES_KEY};
use crate::gateway::Gateway;

/// How many history versions a cold isolate tries when `routes:last-good` is unusable.
const HISTORY_FALLBACK: usize = 5;

/// Where the document in force came from (`X-Config-Source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Kv,
    LastGood,
    Embedded,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Kv => "kv",
            Source::LastGood => "last-good",
            Source::Embedded => "embedded",
        }
    }
}

/// A valid document found in KV.
pub struct Found {
    pub text: String,
    /// Full `sha256:<hex>` of `text`.
    pub digest: String,
    pub gateway: Gateway,
}

/// A `routes` document that failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub digest: String,
    pub errors: Vec<String>,
}

/// The document in force and why.
pub struct Current {
    pub found: Found,
    pub source: Source,
    /// Set when `routes` exists but is invalid (so `found` is a fallback).
    pub rejected: Option<Rejected>,
}

/// Resolves the document in force. A KV failure is an error, never a silent fall back to the
/// embedded document (that would split the fleet between two configurations).
pub async fn current<K: ConfigKv>(kv: &K, embedded: &str) -> Result<Current, String> {
    let kv_error = |e: KvError| format!("reading KV: {e}");
    let mut rejected = None;
    if let Some(text) = kv.get(ROUTES_KEY).await.map_err(kv_error)? {
        match Gateway::compile(&text) {
            Ok(gateway) => {
                return Ok(Current {
                    found: Found {
                        digest: super::document_digest(&text),
                        text,
                        gateway,
                    },
                    source: Source::Kv,
                    rejected: None,
                })
            }
            Err(errors) => {
                rejected = Some(Rejected {
                    digest: super::document_digest(&text),
                    errors: errors.0.iter().map(ToString::to_string).collect(),
                })
            }
        }
    }
    if let Some(found) = last_good(kv).await.map_err(kv_error)? {
        return Ok(Current {
            found,
            source: Source::LastGood,
            rejected,
        });
    }
    let gateway = Gateway::compile(embedded)
        .map_err(|e| format!("the embedded routes.json is invalid: {e}"))?;
    Ok(Current {
        found: Found {
            text: embedded.to_owned(),
            digest: super::document_digest(embedded),
            gateway,
        },
        source: Source::Embedded,
        rejected,
    })
}

/// The newest document in KV that still validates: `routes:last-good`, else the newest valid
/// versions the history lists. Each is validated again (a newer gateway may be stricter).
pub async fn last_good<K: ConfigKv>(kv: &K) -> Result<Option<Found>, KvError> {
    let mut tried = Vec::new();
    if let Some(found) = valid_at(kv, LAST_GOOD_KEY, None, &mut tried).await? {
        return Ok(Some(found));
    }
    // An unreadable index is no history: the embedded document is all that is left.
    let entries = history::parse(kv.get(HISTORY_KEY).await?.as_deref()).unwrap_or_default();
    for entry in entries.iter().take(HISTORY_FALLBACK) {
        if tried.contains(&entry.digest) {
            continue;
        }
        let key = version_key(&entry.digest);
        if let Some(found) = valid_at(kv, &key, Some(&entry.digest), &mut tried).await? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// The document at `key` if it validates — and, for a history copy, if it is the version the
/// history names (`expected`): a copy whose text hashes to another digest is not that version
/// (a rollback checks the same), so it is passed over, never served under the history's word.
async fn valid_at<K: ConfigKv>(
    kv: &K,
    key: &str,
    expected: Option<&str>,
    tried: &mut Vec<String>,
) -> Result<Option<Found>, KvError> {
    let Some(text) = kv.get(key).await? else {
        return Ok(None);
    };
    let digest = super::document_digest(&text);
    if expected.is_some_and(|want| want != digest) {
        return Ok(None);
    }
    if tried.contains(&digest) {
        return Ok(None);
    }
    tried.push(digest.clone());
    Ok(Gateway::compile(&text).ok().map(|gateway| Found {
        text,
        digest,
        gateway,
    }))
}
