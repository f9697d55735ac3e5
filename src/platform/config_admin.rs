//! The control plane's edge: the admin config endpoints (`GET`/`PUT /config`,
//! `GET /config/history`, `POST /config/rollback`), the Workers KV adapter of the
//! [`ConfigKv`] port, and the `ConfigLock` Durable Object through which every push and
//! rollback runs, one at a time.
//!
//! KV alone cannot decide "exactly one of two concurrent pushes wins": it is eventually
//! consistent, allows one write per second per key, and a read-then-write from two isolates
//! interleaves. One `ConfigLock` object (named `routes`) carries out each push entirely —
//! `If-Match` check and the four writes — inside `blockConcurrencyWhile`, so no other push
//! runs in between; it also remembers the version it wrote last in its own storage, which is
//! strongly consistent, so a KV read that still shows the replaced version is not taken for
//! current.

use super::isolate::{CONFIG_BINDING, EMBEDDED_ROUTES};
use super::{keys, respond, Exchange};
use crate::control::{self, history, ConfigKv, KvError, LockRecord, PushRequest};
use crate::error::GatewayError;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{
    durable_object, web_sys, DurableObject, Env, Headers, Method, Request, RequestInit, Response,
    Result, State,
};

/// The Durable Object namespace binding (see wrangler.toml).
pub const LOCK_BINDING: &str = "CONFIG_LOCK";
const LOCK_RECORD_KEY: &str = "lock";
/// The note, percent-encoded, on the worker → lock request.
const NOTE_HEADER: &str = "x-config-note";

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
}

fn kv_port(env: &Env) -> std::result::Result<KvPort, GatewayError> {
    env.kv(CONFIG_BINDING)
        .map(KvPort)
        .map_err(|e| GatewayError::Internal {
            cause: format!("KV binding {CONFIG_BINDING}: {e}"),
        })
}

fn store_failed(what: &str, e: impl std::fmt::Display) -> GatewayError {
    worker::console_error!(
        "{}",
        serde_json::json!({"event": "config_store_failed", "what": what, "error": e.to_string()})
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
    let entries =
        history::parse(text.as_deref()).map_err(|e| store_failed("reading the history", e))?;
    let body = serde_json::to_value(&entries).map_err(|e| store_failed("the history", e))?;
    Ok(respond::json(200, &body, &[]))
}

/// `PUT /config`: the body is the new document; `If-Match` names the version it replaces.
async fn put_config(x: &Exchange<'_>) -> std::result::Result<web_sys::Response, GatewayError> {
    let limit = control::MAX_DOCUMENT_BYTES;
    let declared = x
        .inbound
        .content_length
        .and_then(|l| l.trim().parse::<u64>().ok());
    if declared.is_some_and(|l| l > limit) {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    let text = JsFuture::from(x.request.text().map_err(|e| GatewayError::Internal {
        cause: format!("reading the body: {e:?}"),
    })?)
    .await
    .ok()
    .and_then(|v| v.as_string())
    .ok_or(GatewayError::BadRequest("unreadable request body"))?;
    if text.len() as u64 > limit {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    let note = x.inbound.query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "note")
            .map(|(_, v)| v.into_owned())
    });
    let note = history::checked_note(note.as_deref()).map_err(GatewayError::BadRequest)?;
    call_lock(x, "/push", note.as_deref(), Some(text)).await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackRequest {
    digest: String,
}

/// `POST /config/rollback {"digest": "sha256:…"}` (a unique prefix of eight or more digits
/// will do).
async fn rollback(x: &Exchange<'_>) -> std::result::Result<web_sys::Response, GatewayError> {
    let body = keys::read_json_body(x).await?;
    let request: RollbackRequest = serde_json::from_str(&body)
        .map_err(|_| GatewayError::BadRequest("expected {\"digest\": \"sha256:…\"}"))?;
    call_lock(x, "/rollback", None, Some(request.digest)).await
}

/// Hands the push or rollback to the `ConfigLock` object and answers with its outcome.
async fn call_lock(
    x: &Exchange<'_>,
    path: &str,
    note: Option<&str>,
    body: Option<String>,
) -> std::result::Result<web_sys::Response, GatewayError> {
    let internal = |what: &str, e: worker::Error| GatewayError::Internal {
        cause: format!("{what}: {e}"),
    };
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
        .map_err(|e| internal("the config lock", e))?;
    let headers = Headers::new();
    let set = |name: &str, value: &str| {
        headers
            .set(name, value)
            .map_err(|e| internal("a header", e))
    };
    if let Some(if_match) = x.request.headers().get("if-match").ok().flatten() {
        set("if-match", &if_match)?;
    }
    if let Some(note) = note {
        // Header values are ASCII: the note travels percent-encoded.
        let encoded: String = url::form_urlencoded::byte_serialize(note.as_bytes()).collect();
        set(NOTE_HEADER, &encoded)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(body.map(|b| b.into()));
    let request = Request::new_with_init(&format!("https://config-lock{path}"), &init)
        .map_err(|e| internal("the config lock request", e))?;
    let mut response = stub
        .fetch_with_request(request)
        .await
        .map_err(|e| internal("the config lock", e))?;
    let text = response
        .text()
        .await
        .map_err(|e| internal("the config lock's answer", e))?;
    let outcome: std::result::Result<control::Pushed, control::PushError> =
        serde_json::from_str(&text).map_err(|e| GatewayError::Internal {
            cause: format!("the config lock answered {}: {e}", response.status_code()),
        })?;
    let pushed = outcome?;
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
        let note = header(NOTE_HEADER).map(|n| {
            url::form_urlencoded::parse(format!("n={n}").as_bytes())
                .map(|(_, v)| v.into_owned())
                .next()
                .unwrap_or_default()
        });
        let rollback = req.path() == "/rollback";
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
                let lock: Option<LockRecord> = storage.get(LOCK_RECORD_KEY).await.ok().flatten();
                let at_ms = worker::js_sys::Date::now() as u64;
                let result = if rollback {
                    control::rollback(&kv, lock.as_ref(), &body, if_match.as_deref(), at_ms, EMBEDDED_ROUTES).await
                } else {
                    let request = PushRequest {
                        text: &body,
                        if_match: if_match.as_deref(),
                        note: note.as_deref(),
                        at_ms,
                    };
                    control::push(&kv, lock.as_ref(), &request, EMBEDDED_ROUTES).await
                };
                if let Ok(pushed) = &result {
                    if let Some(record) = &pushed.lock {
                        // Losing this only weakens the stale-read guard; KV is already written.
                        if let Err(e) = storage.put(LOCK_RECORD_KEY, record).await {
                            worker::console_error!(
                                "{}",
                                serde_json::json!({"event": "config_lock_record_failed", "error": e.to_string()})
                            );
                        }
                    }
                }
                Ok(result)
            })
            .await?;
        match &outcome {
            Ok(pushed) => worker::console_log!(
                "{}",
                serde_json::json!({"event": "config_pushed", "digest": pushed.digest, "previous": pushed.previous, "changed": pushed.changed, "rollback": rollback})
            ),
            Err(control::PushError::Write { stage, cause }) => worker::console_error!(
                "{}",
                serde_json::json!({"event": "config_push_failed", "stage": stage.key(), "error": cause})
            ),
            Err(control::PushError::Read(cause)) => worker::console_error!(
                "{}",
                serde_json::json!({"event": "config_push_failed", "stage": "read", "error": cause})
            ),
            Err(_) => {}
        }
        // The worker maps a refusal to the client's answer (with the request's id).
        Response::from_json(&outcome)
    }
}
