//! Whole pipelines over the fakes: each stage's decisions, refusals and injected failures.

mod auth;
mod cache;
mod cache_conformance;
mod flow;
mod invalidate;
mod ratelimit;
mod traffic;
mod traffic_route;

use super::ctx::{Ctx, Request};
use super::driver::{now_or_never, resume, start, Flow, Started};
use super::fakes::{FakeResponse, Fakes};
use super::state::{Breakers, IsolateState, Services};
use crate::cache::KeySeal;
use crate::forward::{Destination, Trace};
use crate::gateway::Gateway;

pub const T0: f64 = 1_700_000_000_000.0;

/// A configuration: `settings`/`upstreams`/… merged into a minimal valid document.
pub fn gateway(extra: serde_json::Value) -> Gateway {
    let mut doc = serde_json::json!({
        "version": 1,
        "upstreams": { "api": { "targets": [ { "url": "http://upstream.test" } ], "retries": 0 } },
        "routes": [],
    });
    if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            d.insert(k.clone(), v.clone());
        }
    }
    if let Some(routes) = doc["routes"].as_array_mut() {
        for route in routes {
            if route.get("auth").is_none() {
                route["auth"] = "none".into();
            }
        }
    }
    match Gateway::compile(&doc.to_string()) {
        Ok(g) => g,
        Err(e) => panic!("test configuration is invalid: {e}"),
    }
}

/// One isolate: its configuration, breakers and policy state.
pub struct World {
    pub gateway: Gateway,
    pub breakers: Breakers,
    pub state: IsolateState,
}

impl World {
    pub fn new(extra: serde_json::Value) -> World {
        let gateway = gateway(extra);
        World {
            breakers: Breakers::for_gateway(&gateway),
            gateway,
            state: IsolateState::new([7; 32]),
        }
    }

    pub fn services<'a>(&'a self, ports: &'a Fakes) -> Services<'a, Fakes> {
        Services {
            gateway: &self.gateway,
            breakers: &self.breakers,
            state: &self.state,
            ports,
        }
    }

    /// A routed context for `method url` at the fakes' time.
    pub fn ctx(&self, method: &str, url: &str, ports: &Fakes) -> Ctx {
        let (scheme, host, path, query) = crate::forward::split_url(url).expect("absolute url");
        let request = Request {
            method: method.into(),
            scheme: scheme.into(),
            host: host.into(),
            path: path.into(),
            query: query.map(str::to_owned),
            client_ip: Some("203.0.113.9".into()),
            ..Request::default()
        };
        let trace = Trace::begin(
            &request.inbound(),
            &mut self.state.ids.borrow_mut(),
            &self.gateway.config.observability.tracing,
        );
        let mut cx = Ctx::new(request, trace, ports.now_ms.get());
        match self.gateway.destination(&cx.request.inbound()) {
            Ok(Destination::Route(r)) => cx.routed = Some(r),
            other => panic!("{method} {url} is not routed: {other:?}"),
        }
        cx
    }

    /// The entry key of a GET of `url` (no vary values, consumer or variant), named with
    /// `seal`.
    pub fn entry_key(&self, url: &str, ports: &Fakes, seal: Option<&KeySeal>) -> String {
        let cx = self.ctx("GET", url, ports);
        let host = crate::forward::forwarded_host(&cx.request.inbound());
        let routed = cx.routed.as_ref().expect("routed");
        let keys = super::cache::keys(
            &self.gateway,
            seal,
            &cx.request.scheme,
            &host,
            routed,
            &[],
            None,
            None,
        );
        keys.entry
    }

    /// Runs the request's plan: whether it decided synchronously, and how it ended.
    pub fn run(&self, cx: &mut Ctx, ports: &Fakes) -> (bool, Ended) {
        let plan = self.gateway.plan(cx.route()).clone();
        let s = self.services(ports);
        let (sync, flow) = match start(&plan, cx, s) {
            Started::Done(flow) => (true, flow),
            Started::Pending { at } => {
                let flow = now_or_never(resume(&plan, cx, s, at)).expect("fakes never wait");
                (false, flow)
            }
        };
        let ended = self.end(flow, cx, ports);
        // What the platform runs after answering (waitUntil): a cache refresh.
        if let Some(job) = cx.cache_refresh.take() {
            let mut bg = super::cache_refresh::background_ctx(cx, ports.now_ms.get());
            now_or_never(super::cache_refresh::run(&mut bg, s, job)).expect("fakes never wait");
        }
        (sync, ended)
    }

    /// What the platform would do with a flow: carry out an exchange, render an error.
    fn end(&self, flow: Flow<FakeResponse>, cx: &mut Ctx, ports: &Fakes) -> Ended {
        match flow {
            Flow::Response(mut r, edits) => {
                for (k, v) in edits {
                    r.headers.retain(|(name, _)| *name != k);
                    r.headers.push((k, v));
                }
                Ended::Response(r)
            }
            Flow::Error(e, _) => Ended::Error(e),
            Flow::Exchange(plan) => {
                let s = self.services(ports);
                let (result, report) =
                    now_or_never(super::ports::Upstream::exchange(ports, &plan)).expect("ready");
                let failure = result.as_ref().err();
                match super::exchange::settle(
                    cx,
                    s,
                    plan.upstream,
                    failure,
                    &report,
                    ports.now_ms.get(),
                ) {
                    Some(e) => Ended::Error(e),
                    None => Ended::Response(result.expect("a response")),
                }
            }
        }
    }
}

/// How a test request ended.
#[derive(Debug)]
pub enum Ended {
    Response(FakeResponse),
    Error(crate::error::GatewayError),
}

impl Ended {
    pub fn status(&self) -> u16 {
        match self {
            Ended::Response(r) => r.status,
            Ended::Error(e) => e.status(),
        }
    }

    pub fn response(&self) -> &FakeResponse {
        match self {
            Ended::Response(r) => r,
            Ended::Error(e) => panic!("expected a response, got {e:?}"),
        }
    }

    /// The answer's `Cache-Status` ("" without one).
    pub fn cache_status(&self) -> &str {
        self.response().header("cache-status").unwrap_or_default()
    }

    pub fn code(&self) -> Option<&'static str> {
        match self {
            Ended::Error(e) => Some(e.code()),
            Ended::Response(_) => None,
        }
    }
}

/// Stores an API key's record in the fake KV, as the admin endpoint would.
pub fn store_key(f: &Fakes, key: &str, scopes: &[&str]) {
    let hash = crate::auth::api_key::key_hash_hex(key);
    let record = crate::auth::api_key::ApiKeyRecord {
        id: hash[..16].to_owned(),
        consumer: "acme".into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        enabled: true,
        created_at_ms: 1,
        hash: hash.clone(),
    };
    f.kv.borrow_mut().insert(
        crate::auth::api_key::kv_key(&hash),
        serde_json::to_string(&record).unwrap(),
    );
}
