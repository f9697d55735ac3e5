//! Table tests for the caching core, one file per module.

use crate::config::CacheSpec;

mod conditional;
mod control;
mod date;
mod flow;
mod freshness;
mod key;
mod named;
mod range;
mod request;
mod rules;
mod status;
mod targeted;

/// A route cache spec: `ttl_s`, `stale_if_error_s`, keyed on `accept-language`, 1 MiB bodies.
fn spec(ttl_s: u64, stale_if_error_s: u64) -> CacheSpec {
    CacheSpec {
        ttl_s,
        default_ttl_s: 0,
        stale_if_error_s,
        stale_while_revalidate_s: 0,
        honor_request_directives: false,
        vary: vec!["accept-language".to_string()],
        per_consumer: false,
        max_body_bytes: 1 << 20,
    }
}

/// IMF-fixdate for 1994-11-06 08:49:37 (the RFC 9110 example) plus `offset_s`.
fn rfc_date(offset_s: i64) -> String {
    super::date::format_http_date(784_111_777 + offset_s)
}
