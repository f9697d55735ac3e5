//! An auth scheme (`auth.<name>`): a JWT scheme (issuer, audiences, keys or JWKS URL,
//! algorithms, claims forwarded as headers) or an API-key scheme. Separate because a scheme's
//! `type` decides its whole set of fields, and the JWT checks are the longest of the document.

use super::{header_name, non_ascii, secret_name, settable_header, shown_url, YEAR_S};
use crate::config::json::Json;
use crate::config::model::{
    Algorithm, ApiKeyScheme, ApiKeySource, AuthKind, AuthScheme, JwtScheme,
};
use crate::config::reader::{
    as_object, as_string, as_string_list, index_path, member_path, suggest, Errors, Obj,
};
use crate::headers::{is_hop_by_hop, is_token, GATEWAY_OWNED};

const JWT_FIELDS: &[&str] = &[
    "type",
    "issuer",
    "audiences",
    "jwks_url",
    "keys",
    "secret",
    "algorithms",
    "leeway_s",
    "forward_claims",
    "max_lifetime_s",
    "typ",
    "require_exp",
    "token_cookie",
    "token_query",
    "verified_cache_s",
];
const API_KEY_FIELDS: &[&str] = &["type", "header", "query"];

/// The scheme's `type` decides which fields are known, so without a usable `type` nothing else
/// is checked (every other member would otherwise be reported as unknown).
#[inline(never)]
pub(super) fn auth_scheme(
    name: &str,
    value: &Json,
    path: &str,
    errs: &mut Errors,
) -> Option<AuthScheme> {
    let members = as_object(value, path, errs)?;
    let Some((_, kind)) = members.iter().find(|(k, _)| k == "type") else {
        errs.push(
            path,
            "missing required field \"type\" (\"jwt\" or \"api_key\")",
        );
        return None;
    };
    let type_path = member_path(path, "type");
    let kind = match as_string(kind, &type_path, errs)?.as_str() {
        "jwt" => AuthKind::Jwt(Box::new(jwt_scheme(value, path, errs)?)),
        "api_key" => AuthKind::ApiKey(api_key_scheme(value, path, errs)?),
        t => {
            errs.push(
                &type_path,
                format!("unknown auth type \"{t}\" (expected \"jwt\" or \"api_key\")"),
            );
            return None;
        }
    };
    Some(AuthScheme {
        name: name.to_owned(),
        kind,
    })
}

fn jwt_scheme(value: &Json, path: &str, errs: &mut Errors) -> Option<JwtScheme> {
    let o = Obj::new(value, path, JWT_FIELDS, errs)?;
    let before = errs.len();
    let issuer = o.req_string("issuer", errs);
    if issuer.as_deref() == Some("") {
        errs.push(&o.field_path("issuer"), "must not be empty");
    }
    let mut audiences = Vec::new();
    if let Some(list) = o
        .required("audiences", errs)
        .and_then(|v| as_string_list(v, &o.field_path("audiences"), errs))
    {
        if list.is_empty() {
            errs.push(
                &o.field_path("audiences"),
                "must list at least one audience",
            );
        }
        for (aud, p) in list {
            if aud.is_empty() {
                errs.push(&p, "must not be empty");
            }
            audiences.push(aud);
        }
    }
    let jwks_url = o
        .opt_string("jwks_url", errs)
        .filter(|u| jwks_url_ok(u, &o.field_path("jwks_url"), errs));
    let keys = match o.get("keys") {
        None => Vec::new(),
        Some(Json::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, k)| {
                let kpath = index_path(&o.field_path("keys"), i);
                let v = to_value(k);
                match crate::jose::jwk::check_public_jwk(&v) {
                    Ok(()) => Some(v),
                    Err(e) => {
                        errs.push(&kpath, e);
                        None
                    }
                }
            })
            .collect(),
        Some(other) => {
            errs.push(
                &o.field_path("keys"),
                format!("expected an array of JWKs, found {}", other.kind()),
            );
            Vec::new()
        }
    };
    let secret = o
        .opt_string("secret", errs)
        .filter(|s| secret_name(s, &o.field_path("secret"), errs));
    let mut algorithms = Vec::new();
    if let Some(list) = o
        .required("algorithms", errs)
        .and_then(|v| as_string_list(v, &o.field_path("algorithms"), errs))
    {
        if list.is_empty() {
            errs.push(
                &o.field_path("algorithms"),
                "must list at least one algorithm",
            );
        }
        for (name, p) in list {
            match Algorithm::from_name(&name) {
                Some(a) if !algorithms.contains(&a) => algorithms.push(a),
                Some(_) => {}
                None if name.eq_ignore_ascii_case("none") => {
                    errs.push(&p, "\"none\" (unsigned tokens) is never accepted")
                }
                None => {
                    let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
                    let hint = suggest(&name, &names)
                        .map(|s| format!(" (did you mean \"{s}\"?)"))
                        .unwrap_or_else(|| format!(" (supported: {})", names.join(", ")));
                    errs.push(&p, format!("unsupported algorithm \"{name}\"{hint}"));
                }
            }
        }
    }
    // A weak key (RSA under 2048 bits, an even or small exponent, the ROCA fingerprint) is
    // refused with its reason. A key that passed the structural check may still fit none of
    // the scheme's algorithms (wrong curve, an `alg` outside the list): it would be skipped
    // silently at run time, so it is an error here too.
    if !algorithms.is_empty() {
        for (i, key) in keys.iter().enumerate() {
            if let Some(reason) = crate::jose::jwk::weakness(key) {
                errs.push(&index_path(&o.field_path("keys"), i), reason);
            } else if crate::jose::jwk::keys_from_values(std::slice::from_ref(key), &algorithms)
                .is_empty()
            {
                errs.push(
                    &index_path(&o.field_path("keys"), i),
                    "this key cannot verify any of the scheme's algorithms (check kty, crv, alg, use and key size)",
                );
            }
        }
    }
    let has_hmac = algorithms.iter().any(|a| a.is_hmac());
    let has_asymmetric = algorithms.iter().any(|a| !a.is_hmac());
    if has_hmac && secret.is_none() && o.get("secret").is_none() {
        errs.push(
            path,
            "HMAC algorithms (HS*) need \"secret\", the name of a Worker secret",
        );
    }
    if secret.is_some() && !has_hmac && !algorithms.is_empty() {
        errs.push(
            &o.field_path("secret"),
            "a secret is only used with an HMAC algorithm (HS256, HS384, HS512)",
        );
    }
    // An empty `keys` array holds no key; an invalid `jwks_url` or key is reported on its own.
    let no_keys = match o.get("keys") {
        None => true,
        Some(Json::Array(items)) => items.is_empty(),
        Some(_) => false,
    };
    if has_asymmetric && o.get("jwks_url").is_none() && no_keys {
        errs.push(path, "public-key algorithms need \"jwks_url\" or \"keys\"");
    }
    let leeway_s = o.opt_uint("leeway_s", 0, 600, errs).unwrap_or(60);
    let mut forward_claims = Vec::new();
    if let Some(v) = o.get("forward_claims") {
        let fpath = o.field_path("forward_claims");
        match v {
            Json::Object(members) => {
                for (claim, header) in members {
                    let hpath = member_path(&fpath, claim);
                    if claim.is_empty() {
                        errs.push(&hpath, "claim name must not be empty");
                    }
                    if let Some(h) = as_string(header, &hpath, errs) {
                        if let Some(h) = settable_header(&h, &hpath, errs) {
                            if forward_claims.iter().any(|(_, x)| *x == h) {
                                errs.push(&hpath, format!("header \"{h}\" is used for two claims"));
                            }
                            forward_claims.push((claim.clone(), h));
                        }
                    }
                }
            }
            other => errs.push(
                &fpath,
                format!(
                    "expected an object of claim → header, found {}",
                    other.kind()
                ),
            ),
        }
    }
    let max_lifetime_s = o.opt_uint("max_lifetime_s", 1, YEAR_S, errs);
    let typ = o.opt_string("typ", errs);
    if typ.as_deref() == Some("") {
        errs.push(&o.field_path("typ"), "must not be empty");
    }
    let require_exp = o.opt_bool("require_exp", errs).unwrap_or(true);
    let token_cookie = o.opt_string("token_cookie", errs);
    if let Some(c) = &token_cookie {
        if !is_token(c) {
            errs.push(
                &o.field_path("token_cookie"),
                format!("\"{c}\" is not a valid cookie name"),
            );
        }
    }
    let token_query = o.opt_string("token_query", errs);
    if token_query.as_deref() == Some("") {
        errs.push(&o.field_path("token_query"), "must not be empty");
    }
    let verified_cache_s = o.opt_uint("verified_cache_s", 0, 300, errs).unwrap_or(60);
    if errs.len() > before {
        return None;
    }
    Some(JwtScheme {
        issuer: issuer?,
        audiences,
        jwks_url,
        keys,
        secret,
        algorithms,
        leeway_s,
        forward_claims,
        max_lifetime_s,
        typ,
        require_exp,
        token_cookie,
        token_query,
        verified_cache_s,
    })
}

/// JWKS must come over https, except from loopback (local development and tests).
fn jwks_url_ok(text: &str, path: &str, errs: &mut Errors) -> bool {
    let shown = shown_url(text);
    if !text.is_ascii() {
        errs.push(path, non_ascii(&shown));
        return false;
    }
    match url::Url::parse(text) {
        Ok(u) => {
            let ok = crate::jose::jwk::key_source_allowed(&u);
            if !ok {
                errs.push(
                    path,
                    format!("\"{shown}\" must be an https URL without user-info"),
                );
            }
            ok
        }
        Err(e) => {
            errs.push(path, format!("\"{shown}\" is not an absolute URL ({e})"));
            false
        }
    }
}

fn to_value(j: &Json) -> serde_json::Value {
    match j {
        Json::Null => serde_json::Value::Null,
        Json::Bool(b) => serde_json::Value::Bool(*b),
        Json::Number(n) => serde_json::Value::Number(n.clone()),
        Json::String(s) => serde_json::Value::String(s.clone()),
        Json::Array(a) => serde_json::Value::Array(a.iter().map(to_value).collect()),
        Json::Object(m) => {
            serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), to_value(v))).collect())
        }
    }
}

fn api_key_scheme(value: &Json, path: &str, errs: &mut Errors) -> Option<ApiKeyScheme> {
    let o = Obj::new(value, path, API_KEY_FIELDS, errs)?;
    let header = o.opt_string("header", errs);
    let query = o.opt_string("query", errs);
    match (header, query) {
        (Some(h), None) => {
            let h = header_name(&h, &o.field_path("header"), errs)?;
            if h == "authorization"
                || h == "cookie"
                || is_hop_by_hop(&h)
                || GATEWAY_OWNED.contains(&h.as_str())
            {
                errs.push(
                    &o.field_path("header"),
                    format!("\"{h}\" cannot carry an API key"),
                );
                return None;
            }
            Some(ApiKeyScheme {
                source: ApiKeySource::Header(h),
            })
        }
        (None, Some(q)) if !q.is_empty() => Some(ApiKeyScheme {
            source: ApiKeySource::Query(q),
        }),
        (None, Some(_)) => {
            errs.push(&o.field_path("query"), "must not be empty");
            None
        }
        _ => {
            errs.push(
                path,
                "an api_key scheme needs exactly one of \"header\" or \"query\"",
            );
            None
        }
    }
}
