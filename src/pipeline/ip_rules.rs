//! The IP rules stage, first on a route: refuses a client by its address (`CF-Connecting-IP`
//! only), Cloudflare's country or its ASN before anything else runs, so a refused client
//! learns nothing about the route — not its CORS policy, not its authentication.

use super::ctx::Ctx;
use super::driver::{Stage, Step};
use super::ports::Ports;
use super::state::Services;
use crate::error::GatewayError;
use crate::traffic::cidr::client_address;
use crate::traffic::ip_rules::{check, ClientNetwork};

pub struct IpRules;

impl Stage for IpRules {
    fn request<P: Ports>(&self, cx: &mut Ctx, s: Services<'_, P>) -> Step<P::Response> {
        let config = &s.gateway.config;
        let route = s.gateway.route(cx.route());
        let client = ClientNetwork {
            ip: cx.request.client_ip.as_deref().and_then(client_address),
            country: cx.client.country.as_deref(),
            asn: cx.client.asn,
        };
        let sets = route
            .ip_rules
            .iter()
            .filter_map(|i| config.ip_rules.get(*i));
        match check(sets, &client) {
            Ok(()) => Step::Next,
            Err(_) => Step::Fail(GatewayError::IpForbidden),
        }
    }

    async fn wait<P: Ports>(&self, cx: &mut Ctx, s: Services<'_, P>) -> Step<P::Response> {
        self.request(cx, s)
    }
}
