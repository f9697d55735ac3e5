//! The one driver: runs a route's [`Plan`] over a [`Ctx`], synchronously until the first stage
//! that must wait.

use super::ctx::Ctx;
use super::exchange::ExchangePlan;
use super::ports::Ports;
use super::state::Services;
use super::{
    auth, cache, canary, cors, exchange, invalidate, ip_rules, ratelimit, websocket, Plan,
    StageKind,
};
use crate::error::GatewayError;

/// What a stage's request step decides.
pub enum Step<R> {
    /// Go on with the next stage.
    Next,
    /// Answer the client with this response (a cache hit, a revalidated entry, the upstream's).
    Reply(R),
    /// Refuse the request.
    Fail(GatewayError),
    /// Hand this exchange to the platform's executor; its outcome ends the request.
    Exchange(ExchangePlan),
    /// The stage needs its asynchronous step.
    Wait,
}

/// How a request ends, as far as the pipeline is concerned. `edits` are the response steps'
/// headers, for the platform to add to the answer; an exchange plan carries them already.
pub enum Flow<R> {
    Response(R, Vec<(String, String)>),
    Error(GatewayError, Vec<(String, String)>),
    Exchange(ExchangePlan),
}

/// The synchronous part of running a plan.
pub enum Started<R> {
    Done(Flow<R>),
    /// Stage `at` waits: continue with [`resume`].
    Pending {
        at: usize,
    },
}

/// A stage: a request step that decides at once or asks to wait, and the asynchronous step
/// run only after it asked to.
pub trait Stage {
    fn request<P: Ports>(&self, cx: &mut Ctx, s: Services<'_, P>) -> Step<P::Response>;

    /// Runs after `request` answered [`Step::Wait`]; never answers `Wait` itself.
    #[allow(async_fn_in_trait)]
    async fn wait<P: Ports>(&self, cx: &mut Ctx, s: Services<'_, P>) -> Step<P::Response>;

    /// The response step: headers this stage adds to every answer of the request — upstream
    /// responses, cache hits and gateway errors alike — from what its request step found.
    fn response(&self, _cx: &Ctx, _set: &mut Vec<(String, String)>) {}
}

/// The terminal stage of routes without a cache.
pub struct Forward;

impl Stage for Forward {
    fn request<P: Ports>(&self, cx: &mut Ctx, s: Services<'_, P>) -> Step<P::Response> {
        match exchange::plan(cx, s) {
            Ok(plan) => Step::Exchange(plan),
            Err(e) => Step::Fail(e),
        }
    }

    async fn wait<P: Ports>(&self, cx: &mut Ctx, s: Services<'_, P>) -> Step<P::Response> {
        self.request(cx, s)
    }
}

fn request_step<P: Ports>(kind: StageKind, cx: &mut Ctx, s: Services<'_, P>) -> Step<P::Response> {
    match kind {
        StageKind::IpRules => ip_rules::IpRules.request(cx, s),
        StageKind::Cors => cors::Cors.request(cx, s),
        StageKind::Auth => auth::Auth.request(cx, s),
        StageKind::RateLimit => ratelimit::RateLimit.request(cx, s),
        StageKind::Cache => cache::Cache.request(cx, s),
        StageKind::Forward => Forward.request(cx, s),
        StageKind::Invalidate => invalidate::Invalidate.request(cx, s),
        StageKind::Canary => canary::Canary.request(cx, s),
        StageKind::WebSocket => websocket::WebSocket.request(cx, s),
    }
}

async fn wait_step<P: Ports>(
    kind: StageKind,
    cx: &mut Ctx,
    s: Services<'_, P>,
) -> Step<P::Response> {
    match kind {
        StageKind::IpRules => ip_rules::IpRules.wait(cx, s).await,
        StageKind::Cors => cors::Cors.wait(cx, s).await,
        StageKind::Auth => auth::Auth.wait(cx, s).await,
        StageKind::RateLimit => ratelimit::RateLimit.wait(cx, s).await,
        StageKind::Cache => cache::Cache.wait(cx, s).await,
        StageKind::Forward => Forward.wait(cx, s).await,
        StageKind::Invalidate => invalidate::Invalidate.wait(cx, s).await,
        StageKind::Canary => canary::Canary.wait(cx, s).await,
        StageKind::WebSocket => websocket::WebSocket.wait(cx, s).await,
    }
}

fn response_step(kind: StageKind, cx: &Ctx, set: &mut Vec<(String, String)>) {
    match kind {
        StageKind::IpRules => ip_rules::IpRules.response(cx, set),
        StageKind::Cors => cors::Cors.response(cx, set),
        StageKind::Auth => auth::Auth.response(cx, set),
        StageKind::RateLimit => ratelimit::RateLimit.response(cx, set),
        StageKind::Cache => cache::Cache.response(cx, set),
        StageKind::Forward => Forward.response(cx, set),
        StageKind::Invalidate => invalidate::Invalidate.response(cx, set),
        StageKind::Canary => canary::Canary.response(cx, set),
        StageKind::WebSocket => websocket::WebSocket.response(cx, set),
    }
}

/// The flow a terminal step at `at` ends in, with the response steps of the stages that ran.
fn ended<R>(plan: &Plan, at: usize, cx: &Ctx, step: Step<R>) -> Option<Flow<R>> {
    let mut edits = Vec::new();
    if !matches!(step, Step::Next | Step::Wait) {
        for kind in plan.stages.iter().take(at + 1) {
            response_step(*kind, cx, &mut edits);
        }
    }
    match step {
        Step::Next | Step::Wait => None,
        Step::Reply(r) => Some(Flow::Response(r, edits)),
        Step::Fail(e) => Some(Flow::Error(e, edits)),
        Step::Exchange(mut p) => {
            p.response_set.extend(edits);
            Some(Flow::Exchange(p))
        }
    }
}

fn no_terminal<R>() -> Flow<R> {
    Flow::Error(
        GatewayError::Internal {
            cause: "a plan ended without a terminal stage".into(),
        },
        Vec::new(),
    )
}

/// Runs `plan` until it ends or a stage waits.
pub fn start<P: Ports>(plan: &Plan, cx: &mut Ctx, s: Services<'_, P>) -> Started<P::Response> {
    for (at, kind) in plan.stages.iter().enumerate() {
        match request_step(*kind, cx, s) {
            Step::Next => {}
            Step::Wait => return Started::Pending { at },
            step => return Started::Done(ended(plan, at, cx, step).unwrap_or_else(no_terminal)),
        }
    }
    Started::Done(no_terminal())
}

/// Continues a plan whose stage `at` waits, to its end.
pub async fn resume<P: Ports>(
    plan: &Plan,
    cx: &mut Ctx,
    s: Services<'_, P>,
    at: usize,
) -> Flow<P::Response> {
    let mut step = match plan.stages.get(at) {
        Some(kind) => waited(*kind, cx, s).await,
        None => return no_terminal(),
    };
    let mut at = at;
    loop {
        if let Some(flow) = ended(plan, at, cx, step) {
            return flow;
        }
        at += 1;
        let Some(kind) = plan.stages.get(at) else {
            return no_terminal();
        };
        step = match request_step(*kind, cx, s) {
            Step::Wait => waited(*kind, cx, s).await,
            other => other,
        };
    }
}

/// A stage's wait step, after which the stages decide by the clock again (see `Ctx::now_ms`).
async fn waited<P: Ports>(kind: StageKind, cx: &mut Ctx, s: Services<'_, P>) -> Step<P::Response> {
    let step = wait_step(kind, cx, s).await;
    cx.now_ms = s.ports.now_ms();
    step
}

/// Runs a whole plan (host tests and callers that are asynchronous anyway).
pub async fn run<P: Ports>(plan: &Plan, cx: &mut Ctx, s: Services<'_, P>) -> Flow<P::Response> {
    match start(plan, cx, s) {
        Started::Done(flow) => flow,
        Started::Pending { at } => resume(plan, cx, s, at).await,
    }
}

/// Polls `future` once: its output when it completes without waiting. Stages use it to run
/// their one implementation in a mode that never awaits the platform.
pub fn now_or_never<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => Some(out),
        std::task::Poll::Pending => None,
    }
}
