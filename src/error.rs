//! Every way a request can be refused, and the one place each becomes an HTTP response.
//!
//! Bodies are `application/problem+json` (RFC 9457) with a machine-readable `code`, a reason a
//! person can act on, and the request id. They never carry upstream host names or internals.

use crate::config::{ConfigError, MethodSet};
use crate::path::PathError;

#[derive(Debug, Clone, PartialEq)]
pub enum GatewayError {
    BadPath(PathError),
    BadRequest(&'static str),
    NotFound,
    MethodNotAllowed(MethodSet),
    PayloadTooLarge {
        limit: u64,
    },
    /// Authentication failed; `reason` is safe to show. `invalid_token` is false when no
    /// credentials were presented at all (RFC 6750 §3.1: then no error code is sent).
    Unauthorized {
        reason: String,
        invalid_token: bool,
    },
    /// Signing keys could not be obtained (the identity provider is unreachable).
    AuthUnavailable,
    InsufficientScope {
        missing: String,
    },
    /// The route's IP rules refuse this client (the rule is not named to the client).
    IpForbidden,
    /// A CORS preflight the route's policy does not allow; `reason` is safe to show.
    CorsForbidden {
        reason: String,
    },
    /// A rate limit refused the request. `headers` are the RateLimit-Policy and RateLimit
    /// fields describing every policy of the route.
    RateLimited {
        policy: String,
        retry_after_s: u64,
        headers: Vec<(&'static str, String)>,
    },
    RateLimitUnavailable {
        policy: String,
    },
    UpstreamTimeout,
    UpstreamUnreachable,
    /// The upstream answered with a status that cannot be relayed (an interim 1xx as the
    /// answer, an unrequested 101, or one outside 200–599).
    UpstreamInvalidResponse,
    CircuitOpen,
    AdminUnauthorized,
    /// The admin token's secret is set but shorter than `min_bytes`: the admin API stays
    /// closed (and nothing is sealed with it) until it is replaced.
    AdminTokenWeak {
        min_bytes: usize,
    },
    /// A configuration push without `If-Match`; `current` is the current document's ETag.
    PreconditionRequired {
        current: String,
    },
    /// A configuration push whose `If-Match` is not the current document (`current`: its ETag).
    PreconditionFailed {
        current: String,
    },
    /// A pushed (or rolled-back-to) document failed validation: every error, with its JSON
    /// path.
    DocumentInvalid {
        errors: Vec<ConfigError>,
    },
    /// A rollback to a digest the history does not list.
    ConfigVersionNotFound,
    /// The history index (`routes:history`) was read but is not a valid index; `reason` names
    /// the key and the parse error. Nothing changed. (Status: see `control::refusal`.)
    HistoryUnreadable {
        reason: String,
    },
    /// The history lists `digest`, but its stored copy (`routes@<digest>`) is not there.
    HistoryCopyMissing {
        digest: String,
    },
    /// The history lists `digest`, but its stored copy is not that version: its text hashes
    /// to `actual`.
    HistoryCopyCorrupt {
        digest: String,
        actual: String,
    },
    /// A KV read or write of the control plane failed; `detail` says what was left behind.
    ConfigStoreFailed {
        detail: String,
    },
    /// An admin change was refused because the document it would edit (`digest`) is one the
    /// gateway refuses; `errors` are its validation errors.
    ConfigInvalid {
        digest: String,
        errors: Vec<String>,
    },
    /// The request said `Cache-Control: only-if-cached` (on a route that honours request
    /// directives) and no stored response satisfies it (RFC 9111 §5.2.1.7: 504).
    /// `cache_status` is the answer's `Cache-Status`.
    NotCached {
        cache_status: String,
    },
    /// A `Range` no byte of the stored response satisfies; `length` is its size, for
    /// `Content-Range: bytes */<length>` (RFC 9110 §15.5.17).
    RangeNotSatisfiable {
        length: u64,
        /// The answer's `Cache-Status` (the stored entry it was checked against).
        cache_status: String,
    },
    /// A request without `Upgrade: websocket` on a route that only relays WebSocket handshakes.
    UpgradeRequired,
    /// A failure inside the gateway; `cause` is logged and shown without internals.
    Internal {
        cause: String,
    },
}

impl GatewayError {
    pub fn status(&self) -> u16 {
        match self {
            GatewayError::BadPath(PathError::TooLong) => 414,
            GatewayError::BadPath(_) | GatewayError::BadRequest(_) => 400,
            GatewayError::NotFound | GatewayError::ConfigVersionNotFound => 404,
            GatewayError::PreconditionFailed { .. } => 412,
            GatewayError::DocumentInvalid { .. } => 422,
            GatewayError::PreconditionRequired { .. } => 428,
            GatewayError::ConfigStoreFailed { .. } => 503,
            GatewayError::MethodNotAllowed(_) => 405,
            GatewayError::PayloadTooLarge { .. } => 413,
            GatewayError::Unauthorized { .. } | GatewayError::AdminUnauthorized => 401,
            GatewayError::InsufficientScope { .. }
            | GatewayError::IpForbidden
            | GatewayError::CorsForbidden { .. } => 403,
            GatewayError::ConfigInvalid { .. }
            | GatewayError::HistoryUnreadable { .. }
            | GatewayError::HistoryCopyMissing { .. }
            | GatewayError::HistoryCopyCorrupt { .. } => 409,
            GatewayError::RateLimited { .. } => 429,
            GatewayError::RateLimitUnavailable { .. }
            | GatewayError::CircuitOpen
            | GatewayError::AdminTokenWeak { .. }
            | GatewayError::AuthUnavailable => 503,
            GatewayError::UpstreamTimeout | GatewayError::NotCached { .. } => 504,
            GatewayError::RangeNotSatisfiable { .. } => 416,
            GatewayError::UpstreamUnreachable | GatewayError::UpstreamInvalidResponse => 502,
            GatewayError::UpgradeRequired => 426,
            GatewayError::Internal { .. } => 500,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::BadPath(_) => "invalid_path",
            GatewayError::BadRequest(_) => "bad_request",
            GatewayError::NotFound => "route_not_found",
            GatewayError::MethodNotAllowed(_) => "method_not_allowed",
            GatewayError::PayloadTooLarge { .. } => "payload_too_large",
            GatewayError::Unauthorized {
                invalid_token: true,
                ..
            } => "invalid_token",
            GatewayError::Unauthorized { .. } => "missing_credentials",
            GatewayError::AuthUnavailable => "auth_unavailable",
            GatewayError::InsufficientScope { .. } => "insufficient_scope",
            GatewayError::IpForbidden => "ip_forbidden",
            GatewayError::CorsForbidden { .. } => "cors_forbidden",
            GatewayError::RateLimited { .. } => "rate_limited",
            GatewayError::RateLimitUnavailable { .. } => "rate_limit_unavailable",
            GatewayError::UpstreamTimeout => "upstream_timeout",
            GatewayError::UpstreamUnreachable => "upstream_unreachable",
            GatewayError::UpstreamInvalidResponse => "upstream_invalid_response",
            GatewayError::CircuitOpen => "upstream_circuit_open",
            GatewayError::AdminUnauthorized => "admin_unauthorized",
            GatewayError::AdminTokenWeak { .. } => "admin_token_weak",
            GatewayError::ConfigInvalid { .. } => "config_invalid",
            GatewayError::PreconditionRequired { .. } => "precondition_required",
            GatewayError::PreconditionFailed { .. } => "precondition_failed",
            GatewayError::DocumentInvalid { .. } => "invalid_document",
            GatewayError::ConfigVersionNotFound => "config_version_not_found",
            GatewayError::HistoryUnreadable { .. } => "history_unreadable",
            GatewayError::HistoryCopyMissing { .. } => "history_copy_missing",
            GatewayError::HistoryCopyCorrupt { .. } => "history_copy_corrupt",
            GatewayError::ConfigStoreFailed { .. } => "config_store_unavailable",
            GatewayError::NotCached { .. } => "not_cached",
            GatewayError::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            GatewayError::UpgradeRequired => "upgrade_required",
            GatewayError::Internal { .. } => "internal_error",
        }
    }

    pub fn title(&self) -> &'static str {
        match self.status() {
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            409 => "Conflict",
            412 => "Precondition Failed",
            413 => "Content Too Large",
            414 => "URI Too Long",
            416 => "Range Not Satisfiable",
            422 => "Unprocessable Content",
            426 => "Upgrade Required",
            428 => "Precondition Required",
            429 => "Too Many Requests",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Gateway Timeout",
            _ => "Internal Server Error",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            GatewayError::BadPath(e) => e.reason().to_owned(),
            GatewayError::BadRequest(r) => (*r).to_owned(),
            GatewayError::NotFound => "no route matches this request".into(),
            GatewayError::MethodNotAllowed(allow) => {
                format!(
                    "method not allowed; allowed: {}",
                    allow.names().collect::<Vec<_>>().join(", ")
                )
            }
            GatewayError::PayloadTooLarge { limit } => {
                format!("request body exceeds {limit} bytes")
            }
            GatewayError::Unauthorized { reason, .. } => reason.clone(),
            GatewayError::InsufficientScope { missing } => {
                format!("token lacks scope \"{missing}\"")
            }
            GatewayError::IpForbidden => "this client may not use this route".into(),
            GatewayError::CorsForbidden { reason } => reason.clone(),
            GatewayError::RateLimited {
                policy,
                retry_after_s,
                ..
            } => {
                format!("rate limit \"{policy}\" exceeded; retry after {retry_after_s} s")
            }
            GatewayError::RateLimitUnavailable { policy } => {
                format!("rate limit \"{policy}\" could not be checked")
            }
            GatewayError::UpstreamTimeout => "the upstream did not answer in time".into(),
            GatewayError::UpstreamUnreachable => "the upstream could not be reached".into(),
            GatewayError::UpstreamInvalidResponse => {
                "the upstream's answer was not a valid HTTP response".into()
            }
            GatewayError::CircuitOpen => {
                "the upstream is failing; requests are paused briefly".into()
            }
            GatewayError::AdminUnauthorized => "a valid admin token is required".into(),
            GatewayError::AdminTokenWeak { min_bytes } => format!(
                "the admin API is closed: the admin token's secret is shorter than {min_bytes} bytes; set a longer one (e.g. openssl rand -base64 32)"
            ),
            GatewayError::ConfigInvalid { digest, .. } => format!(
                "the configuration in KV ({digest}) is invalid and is not applied; put a valid document first"
            ),
            GatewayError::AuthUnavailable => {
                "signing keys are unavailable; try again shortly".into()
            }
            GatewayError::PreconditionRequired { .. } => {
                "If-Match is required: send the ETag of GET /config (or * to replace any version)"
                    .into()
            }
            GatewayError::PreconditionFailed { .. } => {
                "the configuration changed since you read it: If-Match is not the current version"
                    .into()
            }
            GatewayError::DocumentInvalid { errors } => {
                format!("the document is invalid ({} errors)", errors.len())
            }
            GatewayError::ConfigVersionNotFound => {
                "no stored configuration version has that digest".into()
            }
            GatewayError::HistoryUnreadable { reason } => format!(
                "{reason}; nothing changed. Restore it, or push a document: the push keeps it aside under routes:history:unreadable@<at_ms> and starts a new index"
            ),
            GatewayError::HistoryCopyMissing { digest } => format!(
                "the history lists {digest}, but its stored copy routes@{digest} is missing; nothing changed"
            ),
            GatewayError::HistoryCopyCorrupt { digest, actual } => format!(
                "the history lists {digest}, but its stored copy routes@{digest} is corrupt: its text hashes to {actual}, so it is not that version; nothing changed"
            ),
            GatewayError::ConfigStoreFailed { detail } => detail.clone(),
            GatewayError::NotCached { .. } => {
                "only-if-cached was requested and no stored response satisfies the request".into()
            }
            GatewayError::RangeNotSatisfiable { length, .. } => {
                format!("the requested range is outside the representation's {length} bytes")
            }
            GatewayError::UpgradeRequired => {
                "this route accepts only WebSocket handshakes (Upgrade: websocket, Sec-WebSocket-Version: 13)".into()
            }
            GatewayError::Internal { .. } => "the gateway failed to handle this request".into(),
        }
    }

    /// Headers the status requires besides the body's content type.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            GatewayError::MethodNotAllowed(allow) => {
                vec![("allow", allow.names().collect::<Vec<_>>().join(", "))]
            }
            GatewayError::Unauthorized {
                reason,
                invalid_token: true,
            } => vec![(
                "www-authenticate",
                format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    quoted_safe(reason)
                ),
            )],
            GatewayError::Unauthorized { .. } => vec![("www-authenticate", "Bearer".into())],
            GatewayError::InsufficientScope { missing } => vec![(
                "www-authenticate",
                format!(
                    "Bearer error=\"insufficient_scope\", scope=\"{}\"",
                    quoted_safe(missing)
                ),
            )],
            GatewayError::AdminUnauthorized => vec![("www-authenticate", "Bearer".into())],
            // RFC 6455 §4.4: the versions the server speaks (the runtime lets no worker send
            // `Upgrade` itself).
            GatewayError::UpgradeRequired => vec![("sec-websocket-version", "13".into())],
            GatewayError::PreconditionRequired { current }
            | GatewayError::PreconditionFailed { current } => {
                vec![("etag", current.clone())]
            }
            GatewayError::RangeNotSatisfiable {
                length,
                cache_status,
            } => vec![
                ("content-range", format!("bytes */{length}")),
                ("cache-status", cache_status.clone()),
            ],
            GatewayError::NotCached { cache_status } => {
                vec![("cache-status", cache_status.clone())]
            }
            GatewayError::RateLimited {
                retry_after_s,
                headers,
                ..
            } => {
                let mut all = vec![("retry-after", retry_after_s.to_string())];
                all.extend(headers.iter().cloned());
                all
            }
            _ => Vec::new(),
        }
    }

    /// The problem+json body.
    pub fn body(&self, request_id: &str) -> String {
        let mut body = serde_json::json!({
            "type": "about:blank",
            "title": self.title(),
            "status": self.status(),
            "code": self.code(),
            "detail": self.detail(),
            "request_id": request_id,
        });
        if let GatewayError::RateLimited { policy, .. }
        | GatewayError::RateLimitUnavailable { policy } = self
        {
            body["policy"] = serde_json::Value::String(policy.clone());
        }
        match self {
            GatewayError::ConfigInvalid { digest, errors } => {
                body["digest"] = digest.as_str().into();
                body["errors"] = errors.clone().into();
            }
            GatewayError::PreconditionRequired { current }
            | GatewayError::PreconditionFailed { current } => {
                body["current_etag"] = current.as_str().into();
            }
            GatewayError::HistoryCopyMissing { digest }
            | GatewayError::HistoryCopyCorrupt { digest, .. } => {
                body["digest"] = digest.as_str().into();
            }
            GatewayError::DocumentInvalid { errors } => {
                body["errors"] = errors
                    .iter()
                    .map(|e| serde_json::json!({ "path": e.path, "message": e.message }))
                    .collect();
            }
            GatewayError::AdminTokenWeak { min_bytes } => {
                body["min_bytes"] = (*min_bytes).into();
            }
            _ => {}
        }
        body.to_string()
    }
}

/// Text safe inside a quoted-string header parameter.
fn quoted_safe(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_problem_json_with_code_and_request_id() {
        let e = GatewayError::NotFound;
        let v: serde_json::Value = serde_json::from_str(&e.body("rid-1")).unwrap();
        assert_eq!(v["status"], 404);
        assert_eq!(v["code"], "route_not_found");
        assert_eq!(v["request_id"], "rid-1");
    }

    #[test]
    fn statuses_and_headers() {
        let e = GatewayError::MethodNotAllowed(MethodSet(0b101));
        assert_eq!(e.status(), 405);
        assert_eq!(e.headers(), vec![("allow", "GET, POST".to_string())]);
        assert_eq!(GatewayError::BadPath(PathError::TooLong).status(), 414);
        assert_eq!(GatewayError::BadPath(PathError::Backslash).status(), 400);
        let e = GatewayError::Unauthorized {
            reason: "bad \"sig\"\r\n".into(),
            invalid_token: true,
        };
        assert_eq!(
            e.headers()[0].1,
            "Bearer error=\"invalid_token\", error_description=\"bad sig\""
        );
    }

    #[test]
    fn config_conflicts_name_the_refused_document() {
        let e = GatewayError::ConfigInvalid {
            digest: "sha256:0123456789abcdef".into(),
            errors: vec!["version: must be 1".into()],
        };
        assert_eq!(e.status(), 409);
        let v: serde_json::Value = serde_json::from_str(&e.body("r")).unwrap();
        assert_eq!(v["code"], "config_invalid");
        assert_eq!(v["title"], "Conflict");
        assert_eq!(v["digest"], "sha256:0123456789abcdef");
        assert_eq!(v["errors"][0], "version: must be 1");
        assert!(v["detail"]
            .as_str()
            .unwrap()
            .contains("sha256:0123456789abcdef"));
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let e = GatewayError::Internal {
            cause: "users-a.internal.example refused".into(),
        };
        assert!(!e.body("r").contains("internal.example"));
    }
}
