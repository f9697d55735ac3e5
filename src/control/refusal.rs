//! A refused push or rollback as the gateway's error: the one mapping, kept with the control
//! plane so that the error module depends on nothing of it.

use super::{etag, history, PushError};
use crate::error::GatewayError;

/// The one mapping of a refused push or rollback.
///
/// A history that KV returned but that does not hold what it should (an index that is not an
/// index, a listed version whose copy is missing or is another text) is 409 Conflict: the
/// store answered, so it is not 503 (which says "try again", and would fail the same way
/// forever); the gateway did nothing wrong, so it is not 500; and the digest asked for is
/// listed, so it is not 404. The request conflicts with the state of KV, which the operator
/// can mend (the detail says how) — as 409 `config_invalid` says of a refused `routes`.
impl From<PushError> for GatewayError {
    fn from(e: PushError) -> GatewayError {
        match e {
            PushError::TooLarge { limit } => GatewayError::PayloadTooLarge { limit },
            PushError::Invalid(errors) => GatewayError::DocumentInvalid { errors },
            PushError::PreconditionRequired { current } => GatewayError::PreconditionRequired {
                current: etag(&current),
            },
            PushError::Stale { current } => GatewayError::PreconditionFailed {
                current: etag(&current),
            },
            PushError::UnknownDigest => GatewayError::ConfigVersionNotFound,
            PushError::AmbiguousDigest => GatewayError::BadRequest(
                "that digest prefix fits several versions: give more digits",
            ),
            PushError::BadIfMatch => GatewayError::BadRequest(super::IF_MATCH_RULE),
            PushError::BadDigest => GatewayError::BadRequest(history::DIGEST_RULE),
            PushError::BadNote => GatewayError::BadRequest(history::NOTE_RULE),
            PushError::Read(_) => GatewayError::ConfigStoreFailed {
                detail: "the configuration store could not be read; nothing changed".into(),
            },
            PushError::HistoryUnreadable(reason) => GatewayError::HistoryUnreadable { reason },
            PushError::CopyMissing(digest) => GatewayError::HistoryCopyMissing { digest },
            PushError::CopyCorrupt { digest, actual } => {
                GatewayError::HistoryCopyCorrupt { digest, actual }
            }
            PushError::Write { stage, .. } => GatewayError::ConfigStoreFailed {
                detail: format!("writing {} failed: {}", stage.key(), stage.consequence()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigError;

    #[test]
    fn refused_pushes_carry_the_current_etag_and_every_error() {
        let e = GatewayError::from(PushError::Stale {
            current: "sha256:ab".into(),
        });
        assert_eq!((e.status(), e.code()), (412, "precondition_failed"));
        assert_eq!(e.headers(), vec![("etag", "\"sha256:ab\"".to_string())]);
        let v: serde_json::Value = serde_json::from_str(&e.body("r")).unwrap();
        assert_eq!(v["current_etag"], "\"sha256:ab\"");
        let e = GatewayError::from(PushError::Invalid(vec![ConfigError {
            path: "routes[0].auth".into(),
            message: "missing".into(),
        }]));
        let v: serde_json::Value = serde_json::from_str(&e.body("r")).unwrap();
        assert_eq!(v["status"], 422);
        assert_eq!(v["errors"][0]["path"], "routes[0].auth");
        let e = GatewayError::from(PushError::Write {
            stage: crate::control::WriteStage::Routes,
            cause: "kv down at 10.0.0.1".into(),
        });
        assert_eq!(e.status(), 503);
        assert!(!e.body("r").contains("10.0.0.1"), "the cause is not shown");
        assert_eq!(
            GatewayError::from(PushError::TooLarge { limit: 5 }).status(),
            413
        );
        assert_eq!(GatewayError::from(PushError::UnknownDigest).status(), 404);
    }
}
