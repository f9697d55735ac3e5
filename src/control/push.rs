//! Pushes and rollbacks: the precondition, then the KV writes in an order such that a reader
//! never meets a pointer to a document that is not stored yet:
//!
//! 1. `routes@<digest>` (the immutable copy),
//! 2. `routes:history` (now naming a stored copy),
//! 3. `routes:last-good`,
//! 4. `routes` (the switch every isolate reads).
//!
//! Then the copies of versions that fell off the history are deleted.
//!
//! A failure at any step stops there, and `routes` still holds a complete, valid document:
//! [`WriteStage::consequence`] says what was left behind. Retrying the same push is safe (the
//! history records a version once). Callers serialise pushes (the `ConfigLock` Durable
//! Object), so the check of `If-Match` and the writes are one step for every other push.

use super::history::{self, HistoryEntry};
use super::resolve::{current, Source};
use super::store::{version_key, ConfigKv, HISTORY_KEY, LAST_GOOD_KEY, ROUTES_KEY};
use super::{document_digest, precondition, Precondition, MAX_DOCUMENT_BYTES};
use crate::config::{ConfigError, Json};
use crate::gateway::Gateway;

/// How long KV may take to show a write everywhere: a read older than this cannot be stale.
const KV_PROPAGATION_MS: u64 = 60_000;

/// What the lock remembers of the last push it carried out (in its own, strongly consistent
/// storage), so a KV read that still shows a version it replaced is not taken for current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRecord {
    pub current: String,
    /// The versions it replaced, newest first: the last one, and those before it that KV may
    /// still show — each push came less than a propagation delay after the one before, so a
    /// KV read can be more than one version behind. At most [`REPLACED_KEPT`].
    pub replaced: Vec<String>,
    pub at_ms: u64,
}

/// Replaced versions a record keeps: KV takes about one write a second to `routes`, so the
/// version replaced this many pushes ago was replaced more than a propagation delay ago.
const REPLACED_KEPT: usize = 64;

impl LockRecord {
    /// As stored: `<current> <replaced, comma-separated> <at_ms>` (one replaced version is
    /// the line earlier versions wrote).
    pub fn to_line(&self) -> String {
        format!(
            "{} {} {}",
            self.current,
            self.replaced.join(","),
            self.at_ms
        )
    }

    pub fn from_line(line: &str) -> Option<LockRecord> {
        let mut f = line.split(' ');
        let record = LockRecord {
            current: f.next()?.to_owned(),
            replaced: f.next()?.split(',').map(str::to_owned).collect(),
            at_ms: f.next()?.parse().ok()?,
        };
        f.next().is_none().then_some(record)
    }

    /// This record, which follows `before`: the versions `before` still counted as possibly
    /// shown by KV are kept, unless this push came a propagation delay after it.
    fn after(mut self, before: Option<&LockRecord>) -> LockRecord {
        let Some(before) =
            before.filter(|b| self.at_ms.saturating_sub(b.at_ms) < KV_PROPAGATION_MS)
        else {
            return self;
        };
        for digest in &before.replaced {
            if *digest != self.current && !self.replaced.contains(digest) {
                self.replaced.push(digest.clone());
            }
        }
        self.replaced.truncate(REPLACED_KEPT);
        self
    }
}

/// The lock's record as its storage gave it (`read`). A read that failed refuses the push
/// ([`PushError::Read`], nothing written): without the record, `If-Match` would be judged by a
/// KV read that may still show the version just replaced, and a push made from that version
/// would win (a lost update). A line this version cannot parse is no record: it protects
/// nothing, and refusing on it would block every push for good.
pub fn lock_record(read: Result<Option<String>, String>) -> Result<Option<LockRecord>, PushError> {
    let line = read.map_err(|e| PushError::Read(format!("the config lock's record: {e}")))?;
    Ok(line.and_then(|line| LockRecord::from_line(&line)))
}

/// The version a precondition is checked against: what KV shows, unless KV still shows a
/// version the lock replaced less than a propagation delay ago.
pub fn effective_current(kv_digest: &str, lock: Option<&LockRecord>, now_ms: u64) -> String {
    match lock {
        Some(l)
            if l.replaced.iter().any(|d| d == kv_digest)
                && now_ms.saturating_sub(l.at_ms) < KV_PROPAGATION_MS =>
        {
            l.current.clone()
        }
        _ => kv_digest.to_owned(),
    }
}

/// A document to make current.
pub struct PushRequest<'a> {
    pub text: &'a str,
    pub if_match: Option<&'a str>,
    pub note: Option<&'a str>,
    pub at_ms: u64,
}

/// The KV write that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStage {
    Version,
    History,
    LastGood,
    Routes,
}

impl WriteStage {
    /// What a failure at this stage leaves behind, for the operator.
    pub fn consequence(self) -> &'static str {
        match self {
            WriteStage::Version | WriteStage::History => {
                "nothing changed: the current document is still in force; retry the push"
            }
            WriteStage::LastGood => {
                "the version is stored and in the history but not current: the current document is still in force; retry the push"
            }
            WriteStage::Routes => {
                "the version is stored and recorded as last good but not current: the current document is still in force; retry the push"
            }
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            WriteStage::Version => "routes@<digest>",
            WriteStage::History => HISTORY_KEY,
            WriteStage::LastGood => LAST_GOOD_KEY,
            WriteStage::Routes => ROUTES_KEY,
        }
    }
}

/// Why a push or rollback did not happen.
#[derive(Debug, Clone, PartialEq)]
pub enum PushError {
    TooLarge {
        limit: u64,
    },
    Invalid(Vec<ConfigError>),
    PreconditionRequired {
        current: String,
    },
    Stale {
        current: String,
    },
    UnknownDigest,
    AmbiguousDigest,
    /// What the rollback names is not a digest ([`history::DIGEST_RULE`]).
    BadDigest,
    /// `If-Match` is not `*` or a list of entity tags ([`super::IF_MATCH_RULE`]).
    BadIfMatch,
    /// The note breaks [`history::NOTE_RULE`].
    BadNote,
    /// The current state could not be read; nothing was written.
    Read(String),
    /// The history index was read but is not a valid index (the reason names the key and the
    /// parse error); nothing was written.
    HistoryUnreadable(String),
    /// The history lists this digest, but `routes@<digest>` is not there.
    CopyMissing(String),
    /// The history lists `digest`, but the text stored under it hashes to `actual`.
    CopyCorrupt {
        digest: String,
        actual: String,
    },
    Write {
        stage: WriteStage,
        cause: String,
    },
}

/// A version made current.
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed {
    pub digest: String,
    /// The version it replaced.
    pub previous: String,
    /// False when the document was already current (nothing was written).
    pub changed: bool,
    /// What the lock should remember now (`None` when nothing was written).
    pub lock: Option<LockRecord>,
}

/// What to make current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// A new document, with its note for the history.
    Push {
        text: &'a str,
        note: Option<&'a str>,
    },
    /// A version from the history, by digest (or an unambiguous prefix).
    Rollback { digest: &'a str },
}

/// Validates `request.text` with the compiler the worker runs, checks `If-Match` and makes
/// the document current.
pub async fn push<K: ConfigKv>(
    kv: &K,
    lock: Option<&LockRecord>,
    request: &PushRequest<'_>,
    embedded: &str,
) -> Result<Pushed, PushError> {
    let action = Action::Push {
        text: request.text,
        note: request.note,
    };
    carry_out(kv, lock, action, request.if_match, request.at_ms, embedded).await
}

/// Makes a version from the history current again, validated again (a newer gateway may be
/// stricter than the one that accepted it). `If-Match` is optional here; when given it is
/// checked like a push's.
pub async fn rollback<K: ConfigKv>(
    kv: &K,
    lock: Option<&LockRecord>,
    wanted: &str,
    if_match: Option<&str>,
    at_ms: u64,
    embedded: &str,
) -> Result<Pushed, PushError> {
    let action = Action::Rollback { digest: wanted };
    carry_out(kv, lock, action, if_match, at_ms, embedded).await
}

/// The digest a `POST …/config/rollback` body names: exactly `{"digest": "…"}`. The body is
/// read with the configuration's own JSON reader, which refuses a repeated key, so a body
/// naming two digests is refused rather than rolled back to whichever came last.
pub fn rollback_target(body: &str) -> Option<String> {
    match Json::parse(body).ok()? {
        Json::Object(members) => match members.as_slice() {
            [(key, Json::String(digest))] if key == "digest" => Some(digest.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// A push or a rollback: one path, so the precondition and the writes exist once.
pub async fn carry_out<K: ConfigKv>(
    kv: &K,
    lock: Option<&LockRecord>,
    action: Action<'_>,
    if_match: Option<&str>,
    at_ms: u64,
    embedded: &str,
) -> Result<Pushed, PushError> {
    let (text, note, is_push) = match action {
        Action::Push { text, note } => {
            if text.len() as u64 > MAX_DOCUMENT_BYTES {
                return Err(PushError::TooLarge {
                    limit: MAX_DOCUMENT_BYTES,
                });
            }
            let note = history::checked_note(note).map_err(|_| PushError::BadNote)?;
            (std::borrow::Cow::Borrowed(text), note, true)
        }
        Action::Rollback { digest } => {
            let (digest, text) = stored_version(kv, digest).await?;
            let note = Some(format!("rollback to {digest}"));
            (std::borrow::Cow::Owned(text), note, false)
        }
    };
    Gateway::compile(&text).map_err(|e| PushError::Invalid(e.0))?;
    let (current_digest, in_kv) =
        checked_precondition(kv, lock, if_match, at_ms, embedded, is_push).await?;
    let digest = document_digest(&text);
    if is_push && digest == current_digest && in_kv {
        return Ok(Pushed {
            lock: None,
            digest,
            previous: current_digest,
            changed: false,
        });
    }
    let mut pushed = commit(kv, &text, &digest, current_digest, note, at_ms, is_push).await?;
    pushed.lock = pushed.lock.map(|record| record.after(lock));
    Ok(pushed)
}

/// The digest and text of the history version `wanted` names.
async fn stored_version<K: ConfigKv>(kv: &K, wanted: &str) -> Result<(String, String), PushError> {
    // What no history could list is the request's fault, whatever KV holds.
    history::digest_prefix(wanted).ok_or(PushError::BadDigest)?;
    let index = kv
        .get(HISTORY_KEY)
        .await
        .map_err(|e| PushError::Read(e.0))?;
    // KV answered: an index it holds that does not read as one is the index's fault, not the
    // store's (a push would set it aside and start a new one; a rollback has nothing to go by).
    let entries = history::parse(index.as_deref()).map_err(PushError::HistoryUnreadable)?;
    let entry = history::find(&entries, wanted).map_err(|e| match e {
        history::Lookup::Malformed => PushError::BadDigest,
        history::Lookup::Unknown => PushError::UnknownDigest,
        history::Lookup::Ambiguous => PushError::AmbiguousDigest,
    })?;
    // The history knows this version from here on: a copy that is gone or is another text is
    // the store's damage to report as such, not an unknown digest.
    let digest = entry.digest.clone();
    let Some(text) = kv
        .get(&version_key(&digest))
        .await
        .map_err(|e| PushError::Read(e.0))?
    else {
        return Err(PushError::CopyMissing(digest));
    };
    let actual = document_digest(&text);
    if actual != digest {
        return Err(PushError::CopyCorrupt { digest, actual });
    }
    Ok((digest, text))
}

/// The current version's digest (and whether it is `routes` itself), once `If-Match` holds.
async fn checked_precondition<K: ConfigKv>(
    kv: &K,
    lock: Option<&LockRecord>,
    if_match: Option<&str>,
    now_ms: u64,
    embedded: &str,
    required: bool,
) -> Result<(String, bool), PushError> {
    let resolved = current(kv, embedded).await.map_err(PushError::Read)?;
    let current_digest = effective_current(&resolved.found.digest, lock, now_ms);
    let in_kv = resolved.source == Source::Kv;
    match (precondition(if_match, &current_digest), required) {
        (Precondition::Holds, _) | (Precondition::Missing, false) => Ok((current_digest, in_kv)),
        (Precondition::Missing, true) => Err(PushError::PreconditionRequired {
            current: current_digest,
        }),
        (Precondition::Stale, _) => Err(PushError::Stale {
            current: current_digest,
        }),
        (Precondition::Malformed, _) => Err(PushError::BadIfMatch),
    }
}

/// The four writes, in order; `store_version` is false when the copy is already stored.
async fn commit<K: ConfigKv>(
    kv: &K,
    text: &str,
    digest: &str,
    previous: String,
    note: Option<String>,
    at_ms: u64,
    store_version: bool,
) -> Result<Pushed, PushError> {
    let index = kv
        .get(HISTORY_KEY)
        .await
        .map_err(|e| PushError::Read(e.0))?;
    // An unreadable index is replaced rather than blocking every push forever, but kept aside
    // first (as part of the history stage), so the versions it listed are not lost for good.
    let (entries, unreadable) = match history::parse(index.as_deref()) {
        Ok(entries) => (entries, None),
        Err(_) => (Vec::new(), index),
    };
    let entry = HistoryEntry {
        digest: digest.to_owned(),
        at_ms,
        size: text.len() as u64,
        note,
    };
    let recorded = history::recorded(&entries, entry);
    let write = |stage: WriteStage| move |e: super::KvError| PushError::Write { stage, cause: e.0 };
    if store_version {
        kv.put(&version_key(digest), text)
            .await
            .map_err(write(WriteStage::Version))?;
    }
    if let Some(text) = &unreadable {
        kv.put(&history::unreadable_key(at_ms), text)
            .await
            .map_err(write(WriteStage::History))?;
    }
    kv.put(HISTORY_KEY, &history::to_text(&recorded))
        .await
        .map_err(write(WriteStage::History))?;
    kv.put(LAST_GOOD_KEY, text)
        .await
        .map_err(write(WriteStage::LastGood))?;
    kv.put(ROUTES_KEY, text)
        .await
        .map_err(write(WriteStage::Routes))?;
    // Only once the new version is current: a copy the history no longer names can never be
    // rolled back to or fallen back on, and would otherwise stay in KV for good. A failed
    // delete only leaves that copy behind.
    for gone in history::dropped(&entries, &recorded) {
        let _ = kv.delete(&version_key(gone)).await;
    }
    Ok(Pushed {
        digest: digest.to_owned(),
        lock: Some(LockRecord {
            current: digest.to_owned(),
            replaced: vec![previous.clone()],
            at_ms,
        }),
        previous,
        changed: true,
    })
}
