//! What the fetch entry reads of the request, each in one crossing of the Wasm boundary: the
//! URL, method and the headers routing needs; a preflight's announced method; the client facts
//! and headers the access log asks for. Separate from the entry, which only runs and ends the
//! request: these turn what `glue` read into the core's `Request` and `Ctx`.

use super::glue;
use super::isolate::Live;
use crate::forward::split_url;
use crate::pipeline::ctx::{ClientFacts, Ctx, Request};
use worker::web_sys;

/// Parses what `glue::read_request` read: URL, method, then the inbound headers.
pub(super) fn read(joined: &str) -> Option<Request> {
    let mut fields = joined.split('\r');
    let url = fields.next()?;
    let method = fields.next()?;
    let mut header = || {
        fields
            .next()
            .and_then(|f| f.strip_prefix('1'))
            .map(str::to_owned)
    };
    let (content_length, connection, request_id, traceparent, client_ip, transfer_encoding) =
        (header(), header(), header(), header(), header(), header());
    // The headers `match` conditions read follow (none unless a route has them).
    let match_headers = fields
        .map(|f| f.strip_prefix('1').map(str::to_owned))
        .collect();
    let (scheme, host, path, query) = split_url(url)?;
    Some(Request {
        method: method.to_owned(),
        scheme: scheme.to_owned(),
        host: host.to_owned(),
        path: path.to_owned(),
        query: query.map(str::to_owned),
        client_ip,
        content_length,
        transfer_encoding,
        connection,
        request_id,
        traceparent,
        preflight: None,
        match_headers,
    })
}

/// A CORS preflight's announced method, read only for `OPTIONS` requests (see
/// `crate::pipeline::cors::preflight_method`).
pub(super) fn read_preflight(cx: &mut Ctx, request: &web_sys::Request) {
    if cx.request.method != "OPTIONS" {
        return;
    }
    let joined = glue::request_headers(request, "origin\naccess-control-request-method");
    let mut f = joined.split('\r').map(|v| v.strip_prefix('1'));
    let (origin, announced) = (f.next().flatten(), f.next().flatten());
    cx.request.preflight = crate::pipeline::cors::preflight_method("OPTIONS", origin, announced);
}

/// What the access log asked to know of the client: Cloudflare's facts and the configured
/// request headers, read in one crossing and only when configured.
pub(super) fn read_log_facts(cx: &mut Ctx, live: &Live, request: &web_sys::Request) {
    let spec = &live.gateway.config.observability.access_log;
    if spec.fields.is_empty()
        && spec.request_headers.is_empty()
        && !live.gateway.reads_client_network
    {
        return;
    }
    let joined = glue::log_facts(request, &glue::join(&spec.request_headers, '\n'));
    let mut f = joined.split('\r');
    let mut next = || f.next().filter(|v| !v.is_empty()).map(str::to_owned);
    cx.client = ClientFacts {
        user_agent: next(),
        country: next(),
        asn: next().and_then(|a| a.parse().ok()),
        colo: next(),
    };
    for name in &spec.request_headers {
        if let Some(value) = f.next().and_then(|v| v.strip_prefix('1')) {
            cx.logged_headers.push((name.clone(), value.to_owned()));
        }
    }
}
