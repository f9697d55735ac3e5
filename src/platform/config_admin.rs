//! The control plane's edge: the admin config endpoints (`GET`/`PUT /config`,
//! `GET /config/history`, `POST /config/rollback`), the Workers KV adapter of the
//! [`ConfigKv`] port, and the `ConfigLock` Durable Object through which every push and
//! rollback runs, one at a time.
//!
//! KV alone cannot decide "exactly one of two concurrent pushes wins": it is eventually
//! consistent, allows one write per second per key, and a read-then-write from two isolates
//! interleaves. One `ConfigLock` object (named `routes`) carries out each push entirely —
//! `If-Match` check and the four writes — inside `blockConcurrencyWhile`, so no other push
//! runs in between; it also remembers the version it wrote last, and those it replaced, in its
//! own storage, which is strongly consistent, so a KV read that still shows a replaced version
//! is not taken for current.

use super::isolate::{CONFIG_BINDING, EMBEDDED_ROUTES};
use super::{keys, respond, Exchange};
use crate::control::{self, history, ConfigKv, KvError};
use crate::error::GatewayError;
use crate::pipeline::ports::Level;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{durable_object, web_sys, DurableObject, Env, Request, Response, Result, State};

/// The Durable Object namespace binding (see wrangler.toml).
pub const LOCK_BINDING: &str = "CONFIG_LOCK";
const LOCK_RECORD_KEY: &str = "lock";

/// Workers KV as the control plane's store.
pub struct KvPort(pub worker::kv::KvStore);

impl ConfigKv for KvPort {
    async fn get(&self, key: &str) -> std::result::Result<Option<String>, KvError> {
        self.0
            .get(key)
            .text()
            .await
            .map_err(|e| KvError(e.to_string()))
    }

    async fn put(&self, key: &str, value: &str) -> std::result::Result<(), KvError> {
        self.0
            .put(key, value)
            .map_err(|e| KvError(e.to_string()))?
            .execute()
            .await
            .map_err(|e| KvError(e.to_string()))
    }

    async fn delete(&self, key: &str) -> std::result::Result<(), KvError> {
        self.0.delete(key).await.map_err(|e| KvError(e.to_string()))
    }
}

/// The `CONFIG` namespace. A worker deployed without it serves its built-in document (see
/// `isolate`), so the config endpoints say what is missing, as for the lock's binding: not a
/// 500 whose cause is hidden, nor a read that "failed".
pub(super) fn kv_port(env: &Env) -> std::result::Result<KvPort, GatewayError> {
    env.kv(CONFIG_BINDING)
        .map(KvPort)
        .map_err(|_| GatewayError::ConfigStoreFailed {
            detail: format!(
                "the config endpoints need the {CONFIG_BINDING} KV namespace binding (see wrangler.toml); nothing changed"
            ),
        })
}

pub(super) fn store_failed(what: &str, e: impl std::fmt::Display) -> GatewayError {
    super::respond::log_event(
        Level::Error,
        serde_json::json!({"event": "config_store_failed", "what": what, "error": e.to_string()}),
        None,
    );
    GatewayError::ConfigStoreFailed {
        detail: format!("{what} failed; nothing changed"),
    }
}

/// Routes `…/config…`; the caller has checked the admin token.
pub async fn handle(
    x: &Exchange<'_>,
    rest: &str,
) -> std::result::Result<web_sys::Response, GatewayError> {
    let allow = |names: &[&str]| {
        Err(GatewayError::MethodNotAllowed(
            crate::config::MethodSet::from_names(names),
        ))
    };
    match (x.inbound.method, rest) {
        ("GET", "/config") => get_config(x).await,
        ("PUT", "/config") => put_config(x).await,
        (_, "/config") => allow(&["GET", "PUT"]),
        ("GET", "/config/history") => get_history(x).await,
        (_, "/config/history") => allow(&["GET"]),
        ("POST", "/config/rollback") => rollback(x).await,
        (_, "/config/rollback") => allow(&["POST"]),
        _ => Err(GatewayError::NotFound),
    }
}

/// `GET /config`: the document KV resolves to now (what every isolate serves within
/// `settings.reload_s`), its exact text, `ETag` and `X-Config-Source`.
async fn get_config(x: &Exchange<'_>) -> std::result::Result<web_sys::Response, GatewayError> {
    let kv = kv_port(x.env)?;
    let current = control::current(&kv, EMBEDDED_ROUTES)
        .await
        .map_err(|e| store_failed("reading the configuration", e))?;
    let mut headers = vec![
        ("content-type", "application/json".to_owned()),
        ("cache-control", "no-store".to_owned()),
        ("etag", control::etag(&current.found.digest)),
        ("x-config-source", current.source.name().to_owned()),
    ];
    if let Some(rejected) = &current.rejected {
        headers.push(("x-config-rejected", control::etag(&rejected.digest)));
    }
    Ok(respond::build(200, &current.found.text, &headers))
}

/// `GET /config/history`: newest first.
async fn get_history(x: &Exchange<'_>) -> std::result::Result<web_sys::Response, GatewayError> {
    let kv = kv_port(x.env)?;
    let text = kv
        .get(control::store::HISTORY_KEY)
        .await
        .map_err(|e| store_failed("reading the history", e))?;
    let body = history::listing(text)?;
    Ok(respond::build(
        200,
        &body,
        &[
            ("content-type", "application/json".to_owned()),
            ("cache-control", "no-store".to_owned()),
        ],
    ))
}

/// `PUT /config`: the body is the new document; `If-Match` names the version it replaces.
async fn put_config(x: &Exchange<'_>) -> std::result::Result<web_sys::Response, GatewayError> {
    // A query that is not one note is refused before the body is read for nothing.
    history::note_of_query(x.inbound.query).map_err(GatewayError::BadRequest)?;
    let limit = control::MAX_DOCUMENT_BYTES;
    let declared = x
        .inbound
        .content_length
        .and_then(|l| l.trim().parse::<u64>().ok());
    if declared.is_some_and(|l| l > limit) {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    let text = keys::bounded_body(x, limit)
        .await?
        .filter(|text| text.len() as u64 <= limit)
        .ok_or(GatewayError::PayloadTooLarge { limit })?;
    // The query (`?note=…`) goes to the lock as it came, which reads the note the same way.
    let path = match x.inbound.query {
        Some(q) => format!("/push?{q}"),
        None => "/push".to_owned(),
    };
    call_lock(x, &path, text).await
}

/// `POST /config/rollback {"digest": "sha256:…"}` (a unique prefix of eight or more digits
/// will do).
async fn rollback(x: &Exchange<'_>) -> std::result::Result<web_sys::Response, GatewayError> {
    let body = keys::read_json_body(x).await?;
    let digest = control::push::rollback_target(&body).ok_or(GatewayError::BadRequest(
        "expected {\"digest\": \"sha256:…\"}",
    ))?;
    call_lock(x, "/rollback", digest).await
}

/// Hands the push or rollback to the `ConfigLock` object, with the client's `If-Match`, and
/// answers with its outcome.
async fn call_lock(
    x: &Exchange<'_>,
    path: &str,
    body: String,
) -> std::result::Result<web_sys::Response, GatewayError> {
    let if_match = x.request.headers().get("if-match").ok().flatten();
    let pushed = through_lock(x, path, body, if_match.as_deref()).await?;
    let body = serde_json::json!({
        "digest": pushed.digest,
        "previous": pushed.previous,
        "changed": pushed.changed,
        "note": "every isolate applies it at its next reload; KV takes up to about 60 s to reach every location",
    });
    Ok(respond::json(
        200,
        &body,
        &[("etag", control::etag(&pushed.digest))],
    ))
}

/// `path` (`/push?note=…` or `/rollback`) carried out by the `ConfigLock` object, which
/// serialises every change of the document and checks `if_match` against what it knows is
/// current (so a push is never lost to a stale KV read).
pub(super) async fn through_lock(
    x: &Exchange<'_>,
    path: &str,
    body: String,
    if_match: Option<&str>,
) -> std::result::Result<control::Pushed, GatewayError> {
    let internal = |what: &str, e: String| GatewayError::Internal {
        cause: format!("{what}: {e}"),
    };
    let js = |e: JsValue| format!("{e:?}");
    // The lock would find no namespace either and call it a failed read.
    kv_port(x.env)?;
    let namespace = x.env.durable_object(LOCK_BINDING).map_err(|_| {
        GatewayError::ConfigStoreFailed {
            detail: format!(
                "configuration pushes need the {LOCK_BINDING} Durable Object binding (see wrangler.toml); nothing changed"
            ),
        }
    })?;
    let stub = namespace
        .id_from_name("routes")
        .and_then(|id| id.get_stub())
        .map_err(|e| internal("the config lock", e.to_string()))?;
    let headers = web_sys::Headers::new().map_err(|e| internal("headers", js(e)))?;
    if let Some(if_match) = if_match {
        headers
            .set("if-match", if_match)
            .map_err(|e| internal("if-match", js(e)))?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    init.set_body(&JsValue::from_str(&body));
    let request =
        web_sys::Request::new_with_str_and_init(&format!("https://config-lock{path}"), &init)
            .map_err(|e| internal("the config lock request", js(e)))?;
    // The stub's own fetch, on the runtime's Request and Response (no conversions).
    let stub: worker::worker_sys::DurableObject = stub.into_rpc();
    let promise = stub
        .fetch_with_request(&request)
        .map_err(|e| internal("the config lock", js(e)))?;
    let response: web_sys::Response = JsFuture::from(promise)
        .await
        .map_err(|e| internal("the config lock", js(e)))?
        .unchecked_into();
    let text = JsFuture::from(response.text().map_err(|e| internal("the answer", js(e)))?)
        .await
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default();
    let outcome = control::wire::decode(&text).ok_or_else(|| GatewayError::Internal {
        cause: format!(
            "the config lock answered {}: {text:.200}",
            response.status()
        ),
    })?;
    Ok(outcome?)
}

/// Serialises pushes and rollbacks (see the module documentation).
#[durable_object]
pub struct ConfigLock {
    state: State,
    env: Env,
}

impl DurableObject for ConfigLock {
    fn new(state: State, env: Env) -> Self {
        ConfigLock { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let header = |name: &str| req.headers().get(name).ok().flatten();
        let if_match = header("if-match");
        let url = req.url()?;
        let rollback = url.path() == "/rollback";
        let note = match history::note_of_query(url.query()) {
            Ok(note) => note,
            Err(_) => {
                return Response::ok(control::wire::encode(&Err(control::PushError::BadNote)))
            }
        };
        let body = req.text().await?;
        let storage = self.state.storage();
        let env = self.env.clone();
        let outcome = self
            .state
            .block_concurrency_while(async move {
                let Ok(kv) = env.kv(CONFIG_BINDING) else {
                    return Ok(Err(control::PushError::Read(format!(
                        "KV binding {CONFIG_BINDING}"
                    ))));
                };
                let kv = KvPort(kv);
                let read = storage.get::<String>(LOCK_RECORD_KEY).await;
                let lock = match control::lock_record(read.map_err(|e| e.to_string())) {
                    Ok(lock) => lock,
                    Err(refused) => return Ok(Err(refused)),
                };
                let at_ms = worker::js_sys::Date::now() as u64;
                let action = if rollback {
                    control::Action::Rollback { digest: &body }
                } else {
                    control::Action::Push {
                        text: &body,
                        note: note.as_deref(),
                    }
                };
                let result = control::carry_out(
                    &kv,
                    lock.as_ref(),
                    action,
                    if_match.as_deref(),
                    at_ms,
                    EMBEDDED_ROUTES,
                )
                .await;
                if let Ok(pushed) = &result {
                    if let Some(record) = &pushed.lock {
                        // The output gate holds the answer until this write is durable.
                        super::glue::put_value(
                            storage.as_raw(),
                            LOCK_RECORD_KEY,
                            &record.to_line(),
                        );
                    }
                }
                Ok(result)
            })
            .await?;
        // One log line per push or rollback: its outcome as the wire line.
        let line = control::wire::encode(&outcome);
        let kind = if rollback { "rollback" } else { "push" };
        let (level, event) = match &outcome {
            Err(
                control::PushError::Write { .. }
                | control::PushError::Read(_)
                | control::PushError::HistoryUnreadable(_)
                | control::PushError::CopyMissing(_)
                | control::PushError::CopyCorrupt { .. },
            ) => (Level::Error, format!("config_{kind}_failed")),
            _ => (Level::Info, format!("config_{kind}")),
        };
        super::respond::log_event(
            level,
            serde_json::json!({"event": event, "outcome": line}),
            None,
        );
        // The worker maps a refusal to the client's answer (with the request's id).
        Response::ok(line)
    }
}
