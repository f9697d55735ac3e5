//! The fetch entry: the order of the request's stages, in one place.

use super::isolate::{self, Live};
use super::{admin, glue, respond, upstream, Exchange};
use crate::error::GatewayError;
use crate::forward::{split_url, Destination, Inbound, Trace};
use worker::{event, js_sys, web_sys, Context, Env};

#[event(fetch)]
pub async fn fetch(
    request: web_sys::Request,
    env: Env,
    _ctx: Context,
) -> worker::Result<web_sys::Response> {
    Ok(handle(&request, &env).await)
}

async fn handle(request: &web_sys::Request, env: &Env) -> web_sys::Response {
    let now_ms = js_sys::Date::now();
    let live = match isolate::current(env, now_ms).await {
        Ok(live) => live,
        Err(cause) => {
            let id = isolate::with_ids(|ids| ids.request_id());
            return respond::error(&GatewayError::Internal { cause }, "x-request-id", &id);
        }
    };
    let settings = &live.gateway.config.settings;
    let url = request.url();
    let method = request.method();
    let picked = glue::pick(&request.headers(), &live.js_table);
    let mut values = glue::picked(&picked);
    let mut next = || values.next().flatten();
    let (content_length, connection, request_id, traceparent, client_ip) =
        (next(), next(), next(), next(), next());
    let Some((scheme, host, path, query)) = split_url(&url) else {
        let id = isolate::with_ids(|ids| ids.request_id());
        let cause = format!("unparseable request URL {url}");
        return respond::error(
            &GatewayError::Internal { cause },
            &settings.request_id_header,
            &id,
        );
    };
    let inbound = Inbound {
        method: &method,
        scheme,
        host,
        path,
        query,
        client_ip,
        content_length,
        connection,
        request_id,
        traceparent,
    };
    let trace = isolate::with_ids(|ids| Trace::begin(&inbound, ids));
    match serve(request, env, &live, &inbound, &trace, now_ms).await {
        Ok(response) => response,
        Err(e) => respond::error(&e, &settings.request_id_header, &trace.request_id),
    }
}

async fn serve(
    request: &web_sys::Request,
    env: &Env,
    live: &Live,
    inbound: &Inbound<'_>,
    trace: &Trace,
    now_ms: f64,
) -> Result<web_sys::Response, GatewayError> {
    let gateway = &live.gateway;
    let routed = match gateway.destination(inbound)? {
        Destination::Admin { rest } => {
            let authorization = request.headers().get("authorization").ok().flatten();
            let response = admin::handle(
                env,
                live,
                inbound.method,
                &rest,
                authorization.as_deref(),
                &trace.request_id,
            )
            .await?;
            return Ok(response);
        }
        Destination::Route(routed) => routed,
    };
    let exchange = Exchange {
        env,
        live,
        request,
        inbound,
        trace,
        now_ms,
    };
    upstream::send(&exchange, &routed, "").await
}
