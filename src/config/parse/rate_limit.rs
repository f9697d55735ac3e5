//! A rate-limit policy (`rate_limits.<name>`): what it is keyed on, its limit, window and
//! burst, and what to do when the counter store fails. Separate from the routes, which only
//! refer to policies by name (and check the key against their own authentication).

use super::{header_name, YEAR_S};
use crate::config::json::Json;
use crate::config::model::{RateLimitKey, RateLimitPolicy, StoreErrorPolicy};
use crate::config::reader::{Errors, Obj};

const RATE_LIMIT_FIELDS: &[&str] = &["key", "limit", "window_s", "burst", "on_store_error"];

#[inline(never)]
pub(super) fn rate_limit(
    name: &str,
    value: &Json,
    path: &str,
    errs: &mut Errors,
) -> Option<RateLimitPolicy> {
    let o = Obj::new(value, path, RATE_LIMIT_FIELDS, errs)?;
    let key_text = o.req_string("key", errs);
    let key = key_text.and_then(|k| {
        let kpath = o.field_path("key");
        let key = match k.as_str() {
            "ip" => Some(RateLimitKey::Ip),
            "consumer" => Some(RateLimitKey::Consumer),
            "route" => Some(RateLimitKey::Route),
            "global" => Some(RateLimitKey::Global),
            _ => {
                if let Some(c) = k.strip_prefix("claim:").filter(|c| !c.is_empty()) {
                    Some(RateLimitKey::Claim(c.to_owned()))
                } else if let Some(h) = k.strip_prefix("header:") {
                    header_name(h, &kpath, errs).map(RateLimitKey::Header)
                } else {
                    None
                }
            }
        };
        if key.is_none() && !k.starts_with("header:") {
            errs.push(
                &kpath,
                format!("unknown key \"{k}\" (expected ip, consumer, route, global, claim:<name> or header:<name>)"),
            );
        }
        key
    });
    let limit = o.req_uint("limit", 1, 1_000_000_000, errs);
    let window_s = o.req_uint("window_s", 1, YEAR_S, errs);
    let burst = o.opt_uint("burst", 1, 1_000_000_000, errs);
    let on_store_error = match o.opt_string("on_store_error", errs).as_deref() {
        None | Some("allow") => Some(StoreErrorPolicy::Allow),
        Some("deny") => Some(StoreErrorPolicy::Deny),
        Some(other) => {
            errs.push(
                &o.field_path("on_store_error"),
                format!("must be \"allow\" or \"deny\", found \"{other}\""),
            );
            None
        }
    };
    let limit = limit?;
    Some(RateLimitPolicy {
        name: name.to_owned(),
        key: key?,
        limit,
        window_s: window_s?,
        burst: burst.unwrap_or(limit),
        on_store_error: on_store_error?,
    })
}
