//! The fetch entry: the order of the request's stages, in one place.
//!
//! A request that needs no asynchronous stage (a route without auth, rate limits or cache,
//! with its configuration loaded) is answered without a Rust future: the entry decides
//! synchronously and returns the promise of the upstream exchange itself. Everything else runs
//! as one future.

use super::isolate::{self, Live};
use super::upstream::StageEdits;
use super::{admin, auth, cache, glue, ratelimit, respond, upstream, Exchange};
use crate::config::RouteAuth;
use crate::error::GatewayError;
use crate::forward::{split_url, Destination, Inbound, Routed, Trace};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use worker::{js_sys, wasm_bindgen_futures, web_sys, worker_sys, Env};

/// The Worker's fetch handler.
#[wasm_bindgen(js_name = fetch)]
pub fn fetch(request: web_sys::Request, env: Env, ctx: worker_sys::Context) -> js_sys::Promise {
    let now_ms = js_sys::Date::now();
    match isolate::ready(now_ms) {
        Some(live) => start(request, env, ctx, live, now_ms),
        None => wasm_bindgen_futures::future_to_promise(async move {
            match isolate::current(&env, now_ms).await {
                Ok(live) => {
                    wasm_bindgen_futures::JsFuture::from(start(request, env, ctx, live, now_ms))
                        .await
                }
                Err(cause) => {
                    let id = isolate::with_ids(|ids| ids.request_id());
                    Ok(
                        respond::error(&GatewayError::Internal { cause }, "x-request-id", &id)
                            .into(),
                    )
                }
            }
        }),
    }
}

/// What the entry reads of a request, owned so an asynchronous continuation can keep it.
struct Facts {
    /// URL, method and the inbound headers, as `glue::read_request` joins them.
    joined: String,
}

impl Facts {
    fn inbound(&self) -> Option<Inbound<'_>> {
        let mut fields = self.joined.split('\r');
        let url = fields.next()?;
        let method = fields.next()?;
        let mut header = || fields.next().and_then(|f| f.strip_prefix('1'));
        let (content_length, connection, request_id, traceparent, client_ip) =
            (header(), header(), header(), header(), header());
        let (scheme, host, path, query) = split_url(url)?;
        Some(Inbound {
            method,
            scheme,
            host,
            path,
            query,
            client_ip,
            content_length,
            connection,
            request_id,
            traceparent,
        })
    }
}

fn resolved(response: web_sys::Response) -> js_sys::Promise {
    let value: JsValue = response.into();
    js_sys::Promise::resolve(&value)
}

/// Whether a route's request goes straight to the upstream, with no asynchronous stage.
fn is_direct(live: &Live, routed: &Routed) -> bool {
    let route = live.gateway.route(routed.route);
    matches!(route.auth, crate::config::RouteAuth::None)
        && route.rate_limits.is_empty()
        && route.cache.is_none()
}

fn start(
    request: web_sys::Request,
    env: Env,
    ctx: worker_sys::Context,
    live: Rc<Live>,
    now_ms: f64,
) -> js_sys::Promise {
    let settings = &live.gateway.config.settings;
    let facts = Facts {
        joined: glue::read_request(&request, &live.js_table),
    };
    let Some(inbound) = facts.inbound() else {
        let id = isolate::with_ids(|ids| ids.request_id());
        let cause = format!(
            "unreadable request: {}",
            facts.joined.split('\r').next().unwrap_or("")
        );
        return resolved(respond::error(
            &GatewayError::Internal { cause },
            &settings.request_id_header,
            &id,
        ));
    };
    let trace = isolate::with_ids(|ids| Trace::begin(&inbound, ids));
    // The gateway's own refusals wait for the unread request body to drain (glue.js
    // `answer_after_body`): otherwise the runtime may reset the connection under them.
    let fail = |e: GatewayError, trace: &Trace| {
        glue::answer_after_body(
            &request,
            &respond::error(&e, &settings.request_id_header, &trace.request_id),
        )
    };
    let destination = match live.gateway.destination(&inbound) {
        Ok(d) => d,
        Err(e) => return fail(e, &trace),
    };
    if let Destination::Route(routed) = &destination {
        let x = Exchange {
            env: &env,
            ctx: &ctx,
            live: &live,
            request: &request,
            inbound: &inbound,
            trace: &trace,
            now_ms,
        };
        if is_direct(&live, routed) {
            return upstream::forward(&x, routed, &StageEdits::default())
                .unwrap_or_else(|e| fail(e, &trace));
        }
        let route = live.gateway.route(routed.route);
        if let (Some(spec), RouteAuth::None, true) =
            (&route.cache, &route.auth, route.rate_limits.is_empty())
        {
            if let Some(response) = cache::serve_hot(&x, routed, route, spec) {
                return resolved(response);
            }
        }
    }
    wasm_bindgen_futures::future_to_promise(async move {
        let Some(inbound) = facts.inbound() else {
            return Err(JsValue::from_str("request facts vanished"));
        };
        let x = Exchange {
            env: &env,
            ctx: &ctx,
            live: &live,
            request: &request,
            inbound: &inbound,
            trace: &trace,
            now_ms,
        };
        match serve(&x, destination).await {
            Ok(response) => Ok(response.into()),
            Err(e) => {
                let response = respond::error(
                    &e,
                    &live.gateway.config.settings.request_id_header,
                    &trace.request_id,
                );
                // As for the synchronous refusals above: drain the unread body first.
                wasm_bindgen_futures::JsFuture::from(glue::answer_after_body(&request, &response))
                    .await
            }
        }
    })
}

/// The asynchronous stages, in order.
async fn serve(
    x: &Exchange<'_>,
    destination: Destination,
) -> Result<web_sys::Response, GatewayError> {
    let routed = match destination {
        Destination::Admin { rest } => return admin::handle(x, &rest).await,
        Destination::Route(routed) => routed,
    };
    let route = x.live.gateway.route(routed.route);
    let identity = auth::authenticate(x, route).await?;
    let rate_headers = ratelimit::enforce(x, route, identity.as_ref()).await?;
    let forward = identity
        .as_ref()
        .map(|i| glue::pairs(&i.forward))
        .unwrap_or_default();
    let stages = StageEdits {
        request_set: forward,
        response_set: rate_headers,
        ..StageEdits::default()
    };
    if let Some(spec) = &route.cache {
        return cache::serve(x, &routed, route, spec, identity.as_ref(), stages).await;
    }
    let promise = upstream::forward(x, &routed, &stages)?;
    wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .map(|v| v.unchecked_into())
        .map_err(|e| GatewayError::Internal {
            cause: format!("upstream exchange: {}", respond::reason(&e)),
        })
}
