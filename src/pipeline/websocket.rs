//! The WebSocket stage: the terminal stage of `websocket: true` routes. The handshake has
//! passed every earlier stage (IP rules, auth, rate limits); this hands it to the executor as
//! one exchange whose upstream 101 is relayed, so the runtime joins the client's socket to the
//! upstream's. No frame passes through gateway code.

use super::ctx::Ctx;
use super::driver::{Stage, Step};
use super::exchange;
use super::ports::Ports;
use super::state::Services;
use crate::error::GatewayError;

/// Whether an `Upgrade` header asks for WebSocket (RFC 6455 §4.2.1: the token, any case,
/// possibly among others).
pub fn is_websocket_upgrade(upgrade: &str) -> bool {
    upgrade
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
}

pub struct WebSocket;

impl Stage for WebSocket {
    fn request<P: Ports>(&self, cx: &mut Ctx, s: Services<'_, P>) -> Step<P::Response> {
        let upgrade = s.ports.request_header("upgrade");
        if !upgrade.as_deref().is_some_and(is_websocket_upgrade) {
            return Step::Fail(GatewayError::UpgradeRequired);
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
