//! The fetch entry: reads the request once, routes it, runs its plan through the pipeline and
//! ends every request — direct, cached, refused or administrative — at the completion point.
//!
//! A request whose stages all decide at once (see `crate::pipeline`) needs no Rust future: the
//! entry returns the executor's promise, and the executor calls [`finish_callback`] with the
//! exchange's outcome, which is where such a request ends.

use super::isolate::{self, Live};
use super::ports::{failure_of, report_of, WorkerPorts};
use super::request::{read, read_log_facts, read_preflight};
use super::{admin, glue, respond, Exchange};
use crate::error::GatewayError;
use crate::forward::{Destination, Trace};
use crate::pipeline::complete::{complete, Outcome};
use crate::pipeline::ctx::{Ctx, Request};
use crate::pipeline::exchange::response_set;
use crate::pipeline::exchange::settle;
use crate::pipeline::state::{Counter, IsolateState, Services};
use crate::pipeline::{resume, start, Flow, Started};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use worker::{js_sys, wasm_bindgen_futures, web_sys, worker_sys, Env};

/// The Worker's fetch handler.
#[wasm_bindgen(js_name = fetch)]
pub fn fetch(request: web_sys::Request, env: Env, ctx: worker_sys::Context) -> js_sys::Promise {
    let now_ms = js_sys::Date::now();
    match isolate::serving(&env, now_ms) {
        Some((live, reload)) => {
            if let Some(reload) = reload {
                // The reload outlives this request (a failure is the reload's to record).
                let _ = ctx.wait_until(&reload);
            }
            begin(request, env, ctx, live, now_ms, now_ms)
        }
        None => wasm_bindgen_futures::future_to_promise(async move {
            match isolate::current(&env, now_ms).await {
                Ok(live) => {
                    // The stages decide by the time the configuration was ready.
                    let begun = begin(request, env, ctx, live, now_ms, js_sys::Date::now());
                    wasm_bindgen_futures::JsFuture::from(begun).await
                }
                // KV unreadable with nothing to serve is the store's outage (503, and the next
                // request tries again); anything else is the gateway's own failure.
                Err(e) => {
                    let id = isolate::shared().request_id();
                    Ok(respond::error(&e, "x-request-id", &id).into())
                }
            }
        }),
    }
}

fn resolved(response: web_sys::Response) -> js_sys::Promise {
    let value: JsValue = response.into();
    js_sys::Promise::resolve(&value)
}

/// The gateway's own refusal, sent once the request's unread body has drained (`js/body.js`
/// `answer_after_body`): otherwise the runtime may reset the connection under it.
fn refusal(request: &web_sys::Request, response: web_sys::Response) -> js_sys::Promise {
    glue::answer_after_body(request, &response)
}

/// The completion point on the platform side: hands the request's context and outcome to the
/// core and writes what it decides — the access line, and the data point into the metrics
/// dataset. A missing or failing dataset never fails the request; it is counted.
fn end(cx: &Ctx, live: &Live, env: &Env, outcome: Outcome) {
    let gateway = &live.gateway;
    let completion = complete(cx, gateway, &outcome, js_sys::Date::now());
    if completion.access_log.is_none() && completion.data_point.is_none() {
        return;
    }
    let metrics = &gateway.config.observability.metrics;
    let written = glue::emit(
        env,
        &metrics.binding,
        completion.access_log.as_deref().unwrap_or(""),
        completion.data_point.as_deref().unwrap_or(""),
    );
    match written {
        0 => {}
        // No such binding: counted only when the configuration named one.
        1 if !metrics.binding_explicit => {}
        _ => isolate::count(Counter::MetricsFailures),
    }
}

fn error_response(live: &Live, env: &Env, cx: &Ctx, e: &GatewayError) -> web_sys::Response {
    error_with_edits(live, env, cx, e, &[])
}

/// A gateway error as the client's answer: with the headers every answer of the request
/// carries and the stages' response steps, completed.
fn error_with_edits(
    live: &Live,
    env: &Env,
    cx: &Ctx,
    e: &GatewayError,
    edits: &[(String, String)],
) -> web_sys::Response {
    let mut headers = response_set(&live.gateway, cx);
    headers.extend_from_slice(edits);
    error_with_headers(live, env, cx, e, &headers)
}

/// A gateway error with exactly `headers` (an exchange's, which already hold every answer's
/// headers and the stages' response steps), completed.
fn error_with_headers(
    live: &Live,
    env: &Env,
    cx: &Ctx,
    e: &GatewayError,
    headers: &[(String, String)],
) -> web_sys::Response {
    if let GatewayError::Internal { cause } = e {
        respond::log_internal(Some(&live.gateway.redactor), &cx.trace.request_id, cause);
    }
    let response = respond::error_with(
        e,
        &live.gateway.config.settings.request_id_header,
        &cx.trace.request_id,
        headers,
    );
    end(cx, live, env, Outcome::of_error(e));
    response
}

/// Starts a request that arrived at `now_ms` once the configuration is ready at `ready_ms`.
fn begin(
    request: web_sys::Request,
    env: Env,
    ctx: worker_sys::Context,
    live: Rc<Live>,
    now_ms: f64,
    ready_ms: f64,
) -> js_sys::Promise {
    let shared = isolate::shared();
    let joined = glue::read_request(&request, &live.js_table);
    let Some(facts) = read(&joined) else {
        return unreadable(&joined, &live, &env, &shared, now_ms);
    };
    let tracing = &live.gateway.config.observability.tracing;
    let trace = Trace::begin(&facts.inbound(), &mut shared.ids.borrow_mut(), tracing);
    let mut cx = Ctx::new(facts, trace, now_ms);
    cx.now_ms = ready_ms;
    read_log_facts(&mut cx, &live, &request);
    read_preflight(&mut cx, &request);
    let ports = WorkerPorts {
        env,
        ctx,
        request,
        live: live.clone(),
    };
    match live.gateway.destination(&cx.request.inbound()) {
        Err(e) => refusal(&ports.request, error_response(&live, &ports.env, &cx, &e)),
        Ok(Destination::Admin { rest }) => admin_request(cx, ports, live, rest, now_ms),
        Ok(Destination::Route(routed)) => {
            let route = routed.route;
            cx.routed = Some(routed);
            if !live.gateway.route(route).observability.tracing {
                cx.trace.unsample();
            }
            let services = Services {
                gateway: &live.gateway,
                breakers: &live.breakers,
                state: &shared,
                ports: &ports,
            };
            match start(live.gateway.plan(route), &mut cx, services) {
                Started::Done(flow) => conclude(flow, cx, ports),
                Started::Pending { at } => pending(cx, ports, live, shared, route, at),
            }
        }
    }
}

/// A request whose URL or method could not be read: the gateway's 500, completed.
#[inline(never)]
fn unreadable(
    joined: &str,
    live: &Live,
    env: &Env,
    shared: &IsolateState,
    now_ms: f64,
) -> js_sys::Promise {
    let cause = format!(
        "unreadable request: {}",
        joined.split('\r').next().unwrap_or("")
    );
    let cx = Ctx::new(Request::default(), blank_trace(shared), now_ms);
    resolved(error_response(
        live,
        env,
        &cx,
        &GatewayError::Internal { cause },
    ))
}

/// An administrative request. Out of line, like every path a plain forwarded request does not
/// take: a fresh isolate compiles a Wasm function on its first call.
#[inline(never)]
fn admin_request(
    cx: Ctx,
    ports: WorkerPorts,
    live: Rc<Live>,
    rest: String,
    now_ms: f64,
) -> js_sys::Promise {
    wasm_bindgen_futures::future_to_promise(async move {
        let inbound = cx.request.inbound();
        let x = Exchange {
            ports: &ports,
            env: &ports.env,
            live: &live,
            request: &ports.request,
            inbound: &inbound,
            now_ms,
        };
        match admin::handle(&x, &rest).await {
            Ok(r) => {
                end(&cx, &live, &ports.env, Outcome::of_status(r.status()));
                Ok(r.into())
            }
            Err(e) => {
                let response = error_response(&live, &ports.env, &cx, &e);
                wasm_bindgen_futures::JsFuture::from(refusal(&ports.request, response)).await
            }
        }
    })
}

/// A plan that waits on the platform (a lease, a cache read, a key set): the rest of it runs
/// as a Rust future.
#[inline(never)]
fn pending(
    mut cx: Ctx,
    ports: WorkerPorts,
    live: Rc<Live>,
    shared: Rc<IsolateState>,
    route: usize,
    at: usize,
) -> js_sys::Promise {
    wasm_bindgen_futures::future_to_promise(async move {
        let services = Services {
            gateway: &live.gateway,
            breakers: &live.breakers,
            state: &shared,
            ports: &ports,
        };
        let flow = resume(live.gateway.plan(route), &mut cx, services, at).await;
        if let Some(job) = cx.cache_refresh.take() {
            refresh_in_background(job, &cx, &live, &shared, &ports);
        }
        wasm_bindgen_futures::JsFuture::from(conclude(flow, cx, ports)).await
    })
}

/// Runs a cache refresh (stale-while-revalidate) after the answer, under `waitUntil`, with its
/// own context and everything it needs kept alive.
fn refresh_in_background(
    job: crate::pipeline::cache_refresh::CacheRefresh,
    cx: &Ctx,
    live: &Rc<Live>,
    shared: &Rc<IsolateState>,
    ports: &WorkerPorts,
) {
    let mut bg = crate::pipeline::cache_refresh::background_ctx(cx, js_sys::Date::now());
    let (live, shared) = (live.clone(), shared.clone());
    let ports = WorkerPorts {
        env: ports.env.clone(),
        ctx: JsValue::from(&ports.ctx).unchecked_into(),
        request: Clone::clone(&ports.request),
        live: live.clone(),
    };
    let wait_until: worker_sys::Context = JsValue::from(&ports.ctx).unchecked_into();
    let work = wasm_bindgen_futures::future_to_promise(async move {
        let services = Services {
            gateway: &live.gateway,
            breakers: &live.breakers,
            state: &shared,
            ports: &ports,
        };
        crate::pipeline::cache_refresh::run(&mut bg, services, job).await;
        Ok(JsValue::UNDEFINED)
    });
    let _ = wait_until.wait_until(&work);
}

fn blank_trace(shared: &IsolateState) -> Trace {
    Trace::begin(
        &crate::forward::Inbound::default(),
        &mut shared.ids.borrow_mut(),
        &crate::config::TracingSpec::default(),
    )
}

/// Ends a request whose plan has run: a response or an error now, or the exchange through the
/// executor, which ends it in [`finish_callback`].
fn conclude(flow: Flow<web_sys::Response>, cx: Ctx, ports: WorkerPorts) -> js_sys::Promise {
    let live = ports.live.clone();
    match flow {
        Flow::Response(r, edits) => {
            let r = if edits.is_empty() {
                r
            } else {
                glue::finish_response(&r, &glue::pairs(&edits), false, "").unwrap_or(r)
            };
            end(&cx, &live, &ports.env, Outcome::of_status(r.status()));
            resolved(r)
        }
        Flow::Error(e, edits) => refusal(
            &ports.request,
            error_with_edits(&live, &ports.env, &cx, &e, &edits),
        ),
        Flow::Exchange(plan) => {
            let (request, env) = (Clone::clone(&ports.request), ports.env.clone());
            let json = plan.to_json();
            let handle = in_flight_insert(InFlight {
                cx,
                ports,
                upstream: plan.upstream,
                response_set: plan.response_set,
            });
            match glue::proxy(&request, &env, &live.js_table, &json, handle) {
                Ok(promise) => promise,
                Err(e) => {
                    let cause = format!("starting the upstream exchange: {}", respond::reason(&e));
                    match IN_FLIGHT.with(|m| m.borrow_mut().remove(&handle)) {
                        // With every answer's headers (CORS included), as a failed exchange's.
                        Some(f) => resolved(error_with_headers(
                            &live,
                            &env,
                            &f.cx,
                            &GatewayError::Internal { cause },
                            &f.response_set,
                        )),
                        None => resolved(respond::error(
                            &GatewayError::Internal { cause },
                            "x-request-id",
                            "",
                        )),
                    }
                }
            }
        }
    }
}

/// A request waiting for its exchange: everything it started with lives until it ends.
struct InFlight {
    cx: Ctx,
    ports: WorkerPorts,
    upstream: usize,
    /// The headers every answer of the request carries, the stages' response steps included:
    /// a failed exchange's error carries them too.
    response_set: Vec<(String, String)>,
}

thread_local! {
    static IN_FLIGHT: RefCell<HashMap<u32, InFlight>> = RefCell::new(HashMap::new());
    static NEXT_HANDLE: Cell<u32> = const { Cell::new(1) };
    static FINISH: JsValue = Closure::<dyn Fn(u32, u16, u32, JsValue, f64, String) -> JsValue>::new(finish).into_js_value();
}

/// Requests waiting for their exchange, at most this many: past it, those older than
/// [`IN_FLIGHT_MAX_AGE_MS`] are forgotten (their client went away and the runtime dropped the
/// exchange without settling it), so an isolate's memory stays bounded.
const IN_FLIGHT_LIMIT: usize = 10_000;
const IN_FLIGHT_MAX_AGE_MS: f64 = 600_000.0;

fn in_flight_insert(request: InFlight) -> u32 {
    let handle = NEXT_HANDLE.with(|n| {
        let h = n.get();
        n.set(h.wrapping_add(1).max(1));
        h
    });
    IN_FLIGHT.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= IN_FLIGHT_LIMIT {
            let oldest = request.cx.started_ms - IN_FLIGHT_MAX_AGE_MS;
            m.retain(|_, f| f.cx.started_ms > oldest);
        }
        m.insert(handle, request);
    });
    handle
}

/// The completion callback of every configuration's JS table. Owned by JS (its GC frees it),
/// created once per isolate, so no request can outlive it.
pub fn finish_callback() -> JsValue {
    FINISH.with(JsValue::clone)
}

/// An exchange ended: breakers fed, failures counted, the request completed. Returns the
/// gateway's error response when the exchange failed.
fn finish(
    handle: u32,
    status: u16,
    failure: u32,
    attempts: JsValue,
    upstream_ms: f64,
    reason: String,
) -> JsValue {
    let Some(InFlight {
        mut cx,
        ports,
        upstream,
        response_set,
    }) = IN_FLIGHT.with(|m| m.borrow_mut().remove(&handle))
    else {
        return JsValue::UNDEFINED;
    };
    let live = ports.live.clone();
    let shared = isolate::shared();
    let services = Services {
        gateway: &live.gateway,
        breakers: &live.breakers,
        state: &shared,
        ports: &ports,
    };
    let failure = failure_of(failure, reason);
    let report = report_of(&attempts, upstream_ms);
    let error = settle(
        &mut cx,
        services,
        upstream,
        failure.as_ref(),
        &report,
        js_sys::Date::now(),
    );
    match error {
        Some(e) => error_with_headers(&live, &ports.env, &cx, &e, &response_set).into(),
        None => {
            end(&cx, &live, &ports.env, Outcome::of_status(status));
            JsValue::UNDEFINED
        }
    }
}
