//! The answer the `ConfigLock` object gives the worker: one line per outcome, so the worker
//! needs no deserialiser per type (the rate limiter's wire is as lean, for the same reason:
//! the Wasm module's size). Causes and errors go last, so they may contain anything.

use super::push::{PushError, Pushed, WriteStage};
use crate::config::ConfigError;

const STAGES: [(WriteStage, &str); 4] = [
    (WriteStage::Version, "version"),
    (WriteStage::History, "history"),
    (WriteStage::LastGood, "last-good"),
    (WriteStage::Routes, "routes"),
];

/// The outcome as one line of text.
pub fn encode(outcome: &Result<Pushed, PushError>) -> String {
    match outcome {
        Ok(p) => format!("ok {} {} {}", p.digest, p.previous, u8::from(p.changed)),
        Err(PushError::TooLarge { limit }) => format!("too-large {limit}"),
        Err(PushError::Invalid(errors)) => {
            let list: Vec<serde_json::Value> = errors
                .iter()
                .map(|e| serde_json::json!([e.path, e.message]))
                .collect();
            format!("invalid {}", serde_json::Value::Array(list))
        }
        Err(PushError::PreconditionRequired { current }) => format!("required {current}"),
        Err(PushError::Stale { current }) => format!("stale {current}"),
        Err(PushError::UnknownDigest) => "unknown".into(),
        Err(PushError::AmbiguousDigest) => "ambiguous".into(),
        Err(PushError::BadDigest) => "bad-digest".into(),
        Err(PushError::BadIfMatch) => "bad-if-match".into(),
        Err(PushError::BadNote) => "bad-note".into(),
        Err(PushError::Read(cause)) => format!("read {cause}"),
        Err(PushError::HistoryUnreadable(reason)) => format!("history-unreadable {reason}"),
        Err(PushError::CopyMissing(digest)) => format!("copy-missing {digest}"),
        // The computed digest first: the listed one is whatever the index says.
        Err(PushError::CopyCorrupt { digest, actual }) => format!("copy-corrupt {actual} {digest}"),
        Err(PushError::Write { stage, cause }) => {
            let name = STAGES
                .iter()
                .find(|(s, _)| s == stage)
                .map_or("?", |(_, n)| n);
            format!("write {name} {cause}")
        }
    }
}

/// The outcome a line describes; `None` for a line this version does not understand.
pub fn decode(line: &str) -> Option<Result<Pushed, PushError>> {
    let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
    let text = || rest.to_owned();
    Some(match kind {
        "ok" => {
            let mut f = rest.split(' ');
            let (digest, previous, changed) = (f.next()?, f.next()?, f.next()?);
            Ok(Pushed {
                digest: digest.to_owned(),
                previous: previous.to_owned(),
                changed: changed == "1",
                lock: None,
            })
        }
        "too-large" => Err(PushError::TooLarge {
            limit: rest.parse().ok()?,
        }),
        "invalid" => {
            let list: Vec<serde_json::Value> = serde_json::from_str(rest).ok()?;
            let errors = list
                .iter()
                .map(|e| {
                    Some(ConfigError {
                        path: e.get(0)?.as_str()?.to_owned(),
                        message: e.get(1)?.as_str()?.to_owned(),
                    })
                })
                .collect::<Option<Vec<_>>>()?;
            Err(PushError::Invalid(errors))
        }
        "required" => Err(PushError::PreconditionRequired { current: text() }),
        "stale" => Err(PushError::Stale { current: text() }),
        "unknown" => Err(PushError::UnknownDigest),
        "ambiguous" => Err(PushError::AmbiguousDigest),
        "bad-digest" => Err(PushError::BadDigest),
        "bad-if-match" => Err(PushError::BadIfMatch),
        "bad-note" => Err(PushError::BadNote),
        "read" => Err(PushError::Read(text())),
        "history-unreadable" => Err(PushError::HistoryUnreadable(text())),
        "copy-missing" => Err(PushError::CopyMissing(text())),
        "copy-corrupt" => {
            let (actual, digest) = rest.split_once(' ')?;
            Err(PushError::CopyCorrupt {
                digest: digest.to_owned(),
                actual: actual.to_owned(),
            })
        }
        "write" => {
            let (name, cause) = rest.split_once(' ').unwrap_or((rest, ""));
            let stage = STAGES.iter().find(|(_, n)| *n == name)?.0;
            Err(PushError::Write {
                stage,
                cause: cause.to_owned(),
            })
        }
        _ => return None,
    })
}
