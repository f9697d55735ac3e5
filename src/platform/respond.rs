//! Gateway-generated responses: errors and JSON documents.

use super::glue;
use crate::error::GatewayError;
use worker::web_sys;

/// The one place a [`GatewayError`] becomes a response.
pub fn error(err: &GatewayError, request_id_header: &str, request_id: &str) -> web_sys::Response {
    error_with(err, request_id_header, request_id, &[])
}

/// [`error`], with the headers the request's stages add to every answer.
pub fn error_with(
    err: &GatewayError,
    request_id_header: &str,
    request_id: &str,
    edits: &[(String, String)],
) -> web_sys::Response {
    if let GatewayError::Internal { cause } = err {
        worker::console_error!(
            "{}",
            serde_json::json!({"event": "internal_error", "request_id": request_id, "cause": cause})
        );
    }
    let mut headers: Vec<(&str, String)> = vec![
        ("content-type", "application/problem+json".into()),
        ("cache-control", "no-store".into()),
        (request_id_header, request_id.to_owned()),
    ];
    headers.extend(err.headers());
    headers.extend(edits.iter().map(|(k, v)| (k.as_str(), v.clone())));
    build(err.status(), &err.body(request_id), &headers)
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
