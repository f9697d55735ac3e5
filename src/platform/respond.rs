//! Gateway-generated responses (errors and JSON documents), and the operational event lines.

use super::glue;
use crate::error::GatewayError;
use crate::observe::redact::Redactor;
use crate::pipeline::ports::Level;
use worker::web_sys;

/// The one place a [`GatewayError`] becomes a response.
pub fn error(err: &GatewayError, request_id_header: &str, request_id: &str) -> web_sys::Response {
    if let GatewayError::Internal { cause } = err {
        log_internal(None, request_id, cause);
    }
    error_with(err, request_id_header, request_id, &[])
}

/// [`error`], with the headers the request's stages add to every answer; the caller logs an
/// internal cause.
pub fn error_with(
    err: &GatewayError,
    request_id_header: &str,
    request_id: &str,
    edits: &[(String, String)],
) -> web_sys::Response {
    let mut headers: Vec<(&str, String)> = vec![
        ("content-type", "application/problem+json".into()),
        ("cache-control", "no-store".into()),
        (request_id_header, request_id.to_owned()),
    ];
    headers.extend(err.headers());
    headers.extend(edits.iter().map(|(k, v)| (k.as_str(), v.clone())));
    build(err.status(), &err.body(request_id), &headers)
}

/// Logs an internal failure's cause (never shown to the client), scrubbed of credentials by
/// the configuration's redactor when there is one.
pub fn log_internal(redactor: Option<&Redactor>, request_id: &str, cause: &str) {
    let line =
        serde_json::json!({"event": "internal_error", "request_id": request_id, "cause": cause});
    log_event(Level::Error, line, redactor);
}

/// Writes an operational event line — the one way the platform writes a line other than the
/// access log. Every string in it is scrubbed of credentials first, before it is encoded (see
/// `Redactor::value`), by the configuration's redactor or, with none, the default one.
pub fn log_event(level: Level, mut line: serde_json::Value, redactor: Option<&Redactor>) {
    match redactor {
        Some(r) => r.value(&mut line),
        None => Redactor::default().value(&mut line),
    }
    match level {
        Level::Info => worker::console_log!("{line}"),
        Level::Warn => worker::console_warn!("{line}"),
        Level::Error => worker::console_error!("{line}"),
    }
}

/// What a thrown JS value says, for a log line: its message only, never its stack (the
/// runtime's internals stay out of logs as they stay out of bodies).
pub fn reason(e: &wasm_bindgen::JsValue) -> String {
    if let Some(text) = e.as_string() {
        return text;
    }
    worker::js_sys::Reflect::get(e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| "an exception without a message".to_owned())
}

/// A JSON response.
pub fn json(status: u16, body: &serde_json::Value, extra: &[(&str, String)]) -> web_sys::Response {
    let mut headers: Vec<(&str, String)> = vec![
        ("content-type", "application/json".into()),
        ("cache-control", "no-store".into()),
    ];
    headers.extend_from_slice(extra);
    build(status, &body.to_string(), &headers)
}

pub fn build(status: u16, body: &str, headers: &[(&str, String)]) -> web_sys::Response {
    match glue::respond(status, body, &glue::pairs(headers)) {
        Ok(r) => r,
        // Only an invalid status or header could fail; fall back to a bare response.
        Err(_) => web_sys::Response::new_with_opt_str(Some(body))
            .unwrap_or_else(|_| web_sys::Response::error()),
    }
}
