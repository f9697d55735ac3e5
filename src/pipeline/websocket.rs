//! The WebSocket stage: the terminal stage of `websocket: true` routes. The handshake has
//! passed every earlier stage (IP rules, auth, rate limits); this checks that it is one
//! (RFC 6455 §4.2.1) and hands it to the executor as one exchange whose upstream 101 is
//! relayed, so the runtime joins the client's socket to the upstream's. No frame passes
//! through gateway code.
//!
//! The check is the gateway's own, before the upstream is reached: the runtime opens the
//! upstream's socket with a key and version of its own, whatever the client sent, and only
//! then refuses a client handshake without a key or of another version — so without it the
//! upstream would accept a session nobody joins, and the request be logged as a `101`.

use super::ctx::Ctx;
use super::driver::{Stage, Step};
use super::exchange;
use super::ports::Ports;
use super::state::Services;
use crate::error::GatewayError;

/// The request headers of a handshake, read in one crossing.
const HANDSHAKE_HEADERS: [&str; 3] = ["upgrade", "sec-websocket-key", "sec-websocket-version"];

/// Whether an `Upgrade` header asks for WebSocket (RFC 6455 §4.2.1: the token, any case,
/// possibly among others).
pub fn is_websocket_upgrade(upgrade: &str) -> bool {
    upgrade
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
}

/// A `Sec-WebSocket-Key` as RFC 6455 §4.1 has clients send it: 16 bytes in base64, which is
/// 22 characters of the base64 alphabet and `==`.
fn is_websocket_key(key: &str) -> bool {
    let b = key.as_bytes();
    b.len() == 24
        && b.ends_with(b"==")
        && b[..22]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

/// Why a request on a WebSocket route is not a handshake the gateway relays, or `None` when it
/// is: `upgrade`, `key` and `version` are its headers, `framed` whether it declares a body
/// (`Content-Length` or `Transfer-Encoding`).
///
/// No `Upgrade`, or no `websocket` in it, is 426 `upgrade_required`, and so is a version other than 13
/// (§4.4; the answer says `Sec-WebSocket-Version: 13`). 400 `bad_request`: an `Upgrade` that
/// names other protocols too (the runtime would send a plain request upstream), a missing or
/// malformed key, and a body — a handshake is a GET without one, and the runtime presents a
/// `POST` or `PUT` that asks for an upgrade as a `GET` without its body.
pub fn handshake_refusal(
    upgrade: Option<&str>,
    key: Option<&str>,
    version: Option<&str>,
    framed: bool,
) -> Option<GatewayError> {
    let Some(upgrade) = upgrade.map(str::trim) else {
        return Some(GatewayError::UpgradeRequired);
    };
    if !is_websocket_upgrade(upgrade) {
        return Some(GatewayError::UpgradeRequired);
    }
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Some(GatewayError::BadRequest(
            "a WebSocket handshake's Upgrade names websocket alone",
        ));
    }
    if version.map(str::trim) != Some("13") {
        return Some(GatewayError::UpgradeRequired);
    }
    if !key.map(str::trim).is_some_and(is_websocket_key) {
        return Some(GatewayError::BadRequest(
            "a WebSocket handshake needs a Sec-WebSocket-Key of 16 bytes in base64",
        ));
    }
    if framed {
        return Some(GatewayError::BadRequest(
            "a WebSocket handshake is a GET without a body",
        ));
    }
    None
}

/// [`handshake_refusal`] of the values of [`HANDSHAKE_HEADERS`], in order.
fn refusal(values: &[Option<String>], framed: bool) -> Option<GatewayError> {
    let get = |i: usize| values.get(i).and_then(|v| v.as_deref());
    handshake_refusal(get(0), get(1), get(2), framed)
}

pub struct WebSocket;

impl Stage for WebSocket {
    fn request<P: Ports>(&self, cx: &mut Ctx, s: Services<'_, P>) -> Step<P::Response> {
        let values = s.ports.request_headers(&HANDSHAKE_HEADERS);
        let framed = cx.request.content_length.is_some() || cx.request.transfer_encoding.is_some();
        if let Some(e) = refusal(&values, framed) {
            return Step::Fail(e);
        }
        match exchange::websocket_plan(cx, s) {
            Ok(plan) => Step::Exchange(plan),
            Err(e) => Step::Fail(e),
        }
    }

    async fn wait<P: Ports>(&self, cx: &mut Ctx, s: Services<'_, P>) -> Step<P::Response> {
        self.request(cx, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn code(
        upgrade: Option<&str>,
        key: Option<&str>,
        version: Option<&str>,
        framed: bool,
    ) -> Option<(u16, &'static str)> {
        let values: Vec<Option<String>> = [upgrade, key, version]
            .iter()
            .map(|v| v.map(str::to_owned))
            .collect();
        refusal(&values, framed).map(|e| (e.status(), e.code()))
    }

    #[test]
    fn a_valid_handshake_passes() {
        assert_eq!(code(Some("websocket"), Some(KEY), Some("13"), false), None);
        assert_eq!(code(Some("WebSocket"), Some(KEY), Some("13"), false), None);
        assert_eq!(
            code(Some(" websocket "), Some(KEY), Some(" 13"), false),
            None
        );
    }

    #[test]
    fn what_the_runtime_would_refuse_only_after_opening_the_upstream_is_refused_first() {
        let upgrade = Some("websocket");
        // No key, or one that is not 16 bytes of base64: 400.
        for key in [
            None,
            Some(""),
            Some("abc"),
            Some("dGhlIHNhbXBsZSBub25jZQ"),
            Some("dGhlIHNhbXBsZSBub25j*Q=="),
            Some("dGhlIHNhbXBsZSBub25jZQ==, dGhlIHNhbXBsZSBub25jZQ=="),
        ] {
            assert_eq!(
                code(upgrade, key, Some("13"), false),
                Some((400, "bad_request")),
                "{key:?}"
            );
        }
        // Another version, or none: 426 (RFC 6455 §4.4).
        for version in [None, Some("8"), Some("13, 8"), Some("")] {
            assert_eq!(
                code(upgrade, Some(KEY), version, false),
                Some((426, "upgrade_required")),
                "{version:?}"
            );
        }
        // A body (a POST the runtime presents as a GET): 400.
        assert_eq!(
            code(upgrade, Some(KEY), Some("13"), true),
            Some((400, "bad_request"))
        );
        // Other protocols beside websocket: the runtime would send a plain request.
        assert_eq!(
            code(Some("h2c, websocket"), Some(KEY), Some("13"), false),
            Some((400, "bad_request"))
        );
        // No websocket at all: 426, as before.
        assert_eq!(
            code(Some("h2c"), Some(KEY), Some("13"), false),
            Some((426, "upgrade_required"))
        );
        assert_eq!(
            code(None, Some(KEY), Some("13"), false),
            Some((426, "upgrade_required"))
        );
    }
}
