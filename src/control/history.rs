//! The history index (`routes:history`): one entry per push or rollback, newest first, capped.

use serde::{Deserialize, Serialize};

/// How many entries the index keeps (the contract promises at least 50).
pub const HISTORY_CAP: usize = 100;
/// Longest note a push may carry, in characters.
pub const MAX_NOTE_CHARS: usize = 500;

/// One version that was made current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryEntry {
    /// `sha256:<hex>` of the document's exact text; `routes@<digest>` holds it.
    pub digest: String,
    pub at_ms: u64,
    /// Size of the document in bytes.
    pub size: u64,
    pub note: Option<String>,
}

/// Reads the index; a missing index is an empty history. The error names the key and says
/// why the text is not an index (the parse error, cut to 200 characters).
pub fn parse(text: Option<&str>) -> Result<Vec<HistoryEntry>, String> {
    match text {
        None => Ok(Vec::new()),
        Some(t) => serde_json::from_str(t).map_err(|e| {
            // serde quotes what it could not read (`invalid type: string "…"`), and the
            // reason is the answer's detail: scrubbed as a log line is.
            let why: String = e.to_string().chars().take(200).collect();
            let why = crate::observe::redact::Redactor::default().text(&why);
            format!(
                "{} is not a valid history index: {why}",
                super::store::HISTORY_KEY
            )
        }),
    }
}

/// The body of `GET …/config/history`: the index as stored, once it reads as one (`[]` when
/// there is none).
pub fn listing(text: Option<String>) -> Result<String, super::PushError> {
    parse(text.as_deref()).map_err(super::PushError::HistoryUnreadable)?;
    Ok(text.unwrap_or_else(|| "[]".to_owned()))
}

/// Where a push keeps an index it could not read before replacing it (`routes:history:
/// unreadable@<at_ms>`), so nothing the old index listed is lost for good.
pub fn unreadable_key(at_ms: u64) -> String {
    format!("{}:unreadable@{at_ms}", super::store::HISTORY_KEY)
}

/// The index as stored.
pub fn to_text(entries: &[HistoryEntry]) -> String {
    serde_json::to_string(entries).unwrap_or_else(|_| "[]".to_owned())
}

/// The index with `entry` recorded as the newest. Retrying a push that failed half-way records
/// its version once: an identical digest at the top is replaced, not repeated.
pub fn recorded(entries: &[HistoryEntry], entry: HistoryEntry) -> Vec<HistoryEntry> {
    let rest = match entries.first() {
        Some(top) if top.digest == entry.digest => &entries[1..],
        _ => entries,
    };
    std::iter::once(entry)
        .chain(rest.iter().cloned())
        .take(HISTORY_CAP)
        .collect()
}

/// The digests `before` names and `after` no longer does: versions whose stored copies nothing
/// can reach any more (a digest that is still in `after`, however far down, is kept).
pub fn dropped<'a>(before: &'a [HistoryEntry], after: &[HistoryEntry]) -> Vec<&'a str> {
    let kept: std::collections::HashSet<&str> = after.iter().map(|e| e.digest.as_str()).collect();
    let mut out: Vec<&str> = Vec::new();
    for e in before {
        if !kept.contains(e.digest.as_str()) && !out.contains(&e.digest.as_str()) {
            out.push(&e.digest);
        }
    }
    out
}

/// What a rollback's digest must be.
pub const DIGEST_RULE: &str = "the digest must be sha256: and 64 hex digits, or a prefix of at least 8 of those digits (as gatewayctl history shows them)";

/// Why a digest names no single entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Not a digest or a prefix of one ([`DIGEST_RULE`]): no history could list it.
    Malformed,
    Unknown,
    /// The prefix fits several versions; the caller should give more digits.
    Ambiguous,
}

/// `wanted` as the start of a `sha256:<hex>` digest (lower case), if it is a digest or a
/// prefix of one: 8 to 64 hex digits, with or without `sha256:` and ETag quotes.
pub fn digest_prefix(wanted: &str) -> Option<String> {
    let wanted = wanted.trim().trim_matches('"');
    let hex = wanted.strip_prefix("sha256:").unwrap_or(wanted);
    let ok = (8..=64).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| format!("sha256:{}", hex.to_ascii_lowercase()))
}

/// `given` as a whole `sha256:<hex>` digest (lower case), if it is one: 64 hex digits, with or
/// without `sha256:` and ETag quotes.
pub fn full_digest(given: &str) -> Option<String> {
    digest_prefix(given).filter(|d| d.len() == "sha256:".len() + 64)
}

/// The entry a digest names: the full `sha256:<hex>`, or an unambiguous prefix of at least
/// eight hex digits (what `gatewayctl history` and the health endpoint show).
pub fn find<'a>(entries: &'a [HistoryEntry], wanted: &str) -> Result<&'a HistoryEntry, Lookup> {
    let full = digest_prefix(wanted).ok_or(Lookup::Malformed)?;
    let mut matches = entries.iter().filter(|e| e.digest.starts_with(&full));
    let first = matches.next().ok_or(Lookup::Unknown)?;
    if matches.any(|e| e.digest != first.digest) {
        return Err(Lookup::Ambiguous);
    }
    Ok(first)
}

/// What a note must be.
pub const NOTE_RULE: &str = "the note must be at most 500 characters, without control characters";

/// A note as it may be stored: trimmed, printable, bounded.
pub fn checked_note(note: Option<&str>) -> Result<Option<String>, &'static str> {
    let Some(note) = note.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if note.chars().count() > MAX_NOTE_CHARS || note.chars().any(char::is_control) {
        return Err(NOTE_RULE);
    }
    Ok(Some(note.to_owned()))
}

/// What a push's query may be: nothing, or `note=TEXT` once.
pub const QUERY_RULE: &str = "the only query parameter of a push is note, given once (percent-encoded UTF-8, at most 500 characters, without control characters)";

/// The note a push's query (`note=TEXT`, form-encoded) carries. Any other parameter, a second
/// `note`, or escapes that are not UTF-8 are refused rather than dropped or guessed at.
pub fn note_of_query(query: Option<&str>) -> Result<Option<String>, &'static str> {
    let mut note = None;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if key != "note" || note.is_some() || value.contains('\u{fffd}') {
            return Err(QUERY_RULE);
        }
        note = Some(value.into_owned());
    }
    checked_note(note.as_deref()).map_err(|_| QUERY_RULE)
}
