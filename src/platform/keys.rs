//! The admin API for API keys: create (the key is shown once), list (never the key or its
//! hash), revoke. Keys live in KV as `apikey:<sha256 hex>` → record; the clear key is never
//! stored or logged.

use super::isolate::CONFIG_BINDING;
use super::{respond, Exchange};
use crate::auth::api_key::{self, ApiKeyRecord};
use crate::error::GatewayError;
use serde::Deserialize;
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys;

const MAX_BODY_BYTES: u64 = 16 * 1024;
const LIST_PAGE: u64 = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    consumer: String,
    #[serde(default)]
    scopes: Vec<String>,
}

fn internal(what: &str, e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Internal {
        cause: format!("{what}: {e}"),
    }
}

/// The record as listed: everything but the hash.
/// What Workers KV accepts as a value's metadata, serialised.
const KV_METADATA_MAX_BYTES: usize = 1024;

fn public_view(record: &ApiKeyRecord) -> serde_json::Value {
    serde_json::json!({
        "id": record.id,
        "consumer": record.consumer,
        "scopes": record.scopes,
        "enabled": record.enabled,
        "created_at_ms": record.created_at_ms,
    })
}

/// The body of an admin request. Only an admin gets here (the token is checked first), but the
/// body is bounded anyway.
pub async fn read_json_body(x: &Exchange<'_>) -> Result<String, GatewayError> {
    let too_large = GatewayError::BadRequest("the request body is over 16 KiB");
    let declared = x.inbound.content_length.and_then(|l| l.parse::<u64>().ok());
    if declared.is_some_and(|l| l > MAX_BODY_BYTES) {
        return Err(too_large);
    }
    bounded_body(x, MAX_BODY_BYTES).await?.ok_or(too_large)
}

/// The request body as text, or `None` once it is over `limit` bytes: a streamed body without
/// a length is cut there too, not read whole into the isolate's memory first.
pub async fn bounded_body(x: &Exchange<'_>, limit: u64) -> Result<Option<String>, GatewayError> {
    let unreadable = GatewayError::BadRequest("unreadable request body");
    let value = JsFuture::from(super::glue::bounded_text(x.request, limit as f64))
        .await
        .map_err(|_| unreadable.clone())?;
    if value.is_null() {
        return Ok(None);
    }
    value.as_string().map(Some).ok_or(unreadable)
}

pub async fn create(x: &Exchange<'_>) -> Result<web_sys::Response, GatewayError> {
    let text = read_json_body(x).await?;
    let new: NewKey = serde_json::from_str(&text).map_err(|_| {
        GatewayError::BadRequest("expected {\"consumer\": \"name\", \"scopes\": [\"...\"]}")
    })?;
    let consumer_ok = !new.consumer.is_empty()
        && new.consumer.len() <= 128
        && new.consumer.bytes().all(|b| b.is_ascii_graphic());
    let scopes_ok = new.scopes.len() <= 64
        && new
            .scopes
            .iter()
            .all(|s| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()));
    if !consumer_ok || !scopes_ok {
        return Err(GatewayError::BadRequest(
            "consumer and scopes must be 1-128 visible ASCII characters (at most 64 scopes)",
        ));
    }
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|e| internal("randomness", e))?;
    let key = api_key::new_key(random);
    let hash = api_key::key_hash_hex(&key);
    let record = ApiKeyRecord {
        id: hash.chars().take(16).collect(),
        consumer: new.consumer,
        scopes: new.scopes,
        enabled: true,
        created_at_ms: x.now_ms as u64,
        hash: hash.clone(),
    };
    // The public view is stored as the key's KV metadata (what the listing reads), which KV
    // bounds at 1,024 bytes: past it the write would fail after every check had passed.
    if public_view(&record).to_string().len() > KV_METADATA_MAX_BYTES {
        return Err(GatewayError::BadRequest(
            "consumer and scopes together must fit in 1,024 bytes (KV metadata); use fewer or shorter scopes",
        ));
    }
    let value =
        serde_json::to_string(&record).map_err(|e| internal("encoding the key record", e))?;
    x.env
        .kv(CONFIG_BINDING)
        .map_err(|e| internal("KV binding", e))?
        .put(&api_key::kv_key(&hash), value)
        .map_err(|e| internal("storing the key", e))?
        .metadata(public_view(&record))
        .map_err(|e| internal("storing the key", e))?
        .execute()
        .await
        .map_err(|e| internal("storing the key", e))?;
    super::isolate::shared()
        .auth
        .borrow_mut()
        .forget_api_key(&hash);
    let mut body = public_view(&record);
    body["key"] = serde_json::Value::String(key);
    Ok(respond::json(201, &body, &[]))
}

pub async fn list(x: &Exchange<'_>) -> Result<web_sys::Response, GatewayError> {
    let cursor = x.inbound.query.and_then(|q| {
        crate::auth::credentials::query_param(Some(q), "cursor")
            .ok()
            .flatten()
    });
    let mut request = x
        .env
        .kv(CONFIG_BINDING)
        .map_err(|e| internal("KV binding", e))?
        .list()
        .prefix("apikey:".into())
        .limit(LIST_PAGE);
    if let Some(c) = cursor {
        request = request.cursor(c);
    }
    let page = request
        .execute()
        .await
        .map_err(|e| internal("listing keys", e))?;
    let keys: Vec<serde_json::Value> = page.keys.into_iter().filter_map(|k| k.metadata).collect();
    let body = serde_json::json!({
        "keys": keys,
        "cursor": if page.list_complete { None } else { page.cursor },
    });
    Ok(respond::json(200, &body, &[]))
}

pub async fn revoke(x: &Exchange<'_>, id: &str) -> Result<web_sys::Response, GatewayError> {
    if id.len() != 16
        || !id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(GatewayError::NotFound);
    }
    let kv = x
        .env
        .kv(CONFIG_BINDING)
        .map_err(|e| internal("KV binding", e))?;
    let page = kv
        .list()
        .prefix(format!("apikey:{id}"))
        .limit(10)
        .execute()
        .await
        .map_err(|e| internal("finding the key", e))?;
    if page.keys.is_empty() {
        return Err(GatewayError::NotFound);
    }
    for k in &page.keys {
        kv.delete(&k.name)
            .await
            .map_err(|e| internal("revoking the key", e))?;
        if let Some(hash) = k.name.strip_prefix("apikey:") {
            super::isolate::shared()
                .auth
                .borrow_mut()
                .forget_api_key(hash);
        }
    }
    Ok(respond::json(
        200,
        &serde_json::json!({ "revoked": id }),
        &[],
    ))
}
