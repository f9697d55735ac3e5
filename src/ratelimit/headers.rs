//! The `RateLimit-Policy` and `RateLimit` response fields of draft-ietf-httpapi-ratelimit-headers
//! (draft 11, May 2026), serialised as Structured Field Lists (RFC 9651).
//!
//! ```text
//! RateLimit-Policy: "per-user";q=100;w=60, "per-ip";q=20;w=1
//! RateLimit: "per-user";r=42;t=17, "per-ip";r=0;t=1
//! ```
//!
//! * Each member is the policy name as an sf-string, so a client can tie the two fields
//!   together. Names that cannot be an sf-string (characters outside printable ASCII; our
//!   configuration never produces them) are left out of the field rather than altered.
//! * `q` is the configured `limit` and `w` the configured `window_s`: the quota per window, as
//!   the draft defines them. The draft has no burst parameter (it asks for vendor-prefixed
//!   names for anything of one's own), so none is sent; with `burst > limit` a client may see
//!   `r` above `q`, which the draft does not forbid (`q` is a quota, `r` what is available).
//! * `r` is [`Decision::remaining`] and `t` the effective window (draft 11 §4.1.2: the seconds
//!   within which the client can use no more than `r`; draft 10 called it the time until more
//!   quota is made available). For a denied request `t` is [`Decision::retry_after_s`]: `r=0`
//!   holds exactly that long, and `Retry-After` (the longest such wait, see
//!   [`most_restrictive`]) never names a point earlier than the end of a denied policy's
//!   effective window (§6). For an allowed request `t` is
//!   [`Decision::reset_s`], the time until the bucket is full: an upper bound of the draft's
//!   value (GCRA returns one unit every `T`, sooner), so a client that spends at most `r`
//!   within `t` is never refused; it may merely wait longer than it had to.
//! * Integers are clamped to the sf-integer range (15 digits).
//! * An empty input gives an empty string: the fields are non-empty lists, so send none.

use super::gcra::{Decision, Limits};
use std::fmt::Write;

/// The largest sf-integer (RFC 9651 §3.3.1).
const SF_INTEGER_MAX: u64 = 999_999_999_999_999;

/// `RateLimit-Policy`: each policy's quota `q` (= `limit`) per window `w` (= `window_s`).
pub fn policy_header(items: &[(&str, &Limits)]) -> String {
    let mut out = String::new();
    for (name, limits) in items {
        if !start_member(&mut out, name) {
            continue;
        }
        push_param(&mut out, "q", limits.limit);
        // `w` must be a positive integer; it is optional, so a zero window omits it.
        if limits.window_s > 0 {
            push_param(&mut out, "w", limits.window_s);
        }
    }
    out
}

/// `RateLimit`: each policy's available quota `r` and effective window `t` (see the module
/// documentation for what `t` means for allowed and denied decisions).
pub fn ratelimit_header(items: &[(&str, &Decision)]) -> String {
    let mut out = String::new();
    for (name, decision) in items {
        if !start_member(&mut out, name) {
            continue;
        }
        push_param(&mut out, "r", decision.remaining);
        let t = if decision.allowed {
            decision.reset_s
        } else {
            decision.retry_after_s
        };
        push_param(&mut out, "t", t);
    }
    out
}

/// The decision to report when only one can be: a denied decision first (the one with the
/// longest `retry_after_s`), else the lowest `remaining` (then the longest `reset_s`). Ties go
/// to the earlier item. `None` only for an empty slice.
pub fn most_restrictive<'a>(items: &'a [(&'a str, Decision)]) -> Option<&'a (&'a str, Decision)> {
    let mut best: Option<&'a (&'a str, Decision)> = None;
    for item in items {
        match best {
            Some(b) if !more_restrictive(&item.1, &b.1) => {}
            _ => best = Some(item),
        }
    }
    best
}

/// Whether `a` is strictly more restrictive than `b`.
fn more_restrictive(a: &Decision, b: &Decision) -> bool {
    match (a.allowed, b.allowed) {
        (false, true) => true,
        (true, false) => false,
        (false, false) => a.retry_after_s > b.retry_after_s,
        (true, true) => {
            a.remaining < b.remaining || (a.remaining == b.remaining && a.reset_s > b.reset_s)
        }
    }
}

/// Appends the list separator (if needed) and `name` as an sf-string; false, appending
/// nothing, when `name` cannot be an sf-string.
fn start_member(out: &mut String, name: &str) -> bool {
    if !name.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return false;
    }
    if !out.is_empty() {
        out.push_str(", ");
    }
    out.push('"');
    for c in name.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    true
}

fn push_param(out: &mut String, key: &str, value: u64) {
    // Writing to a String cannot fail.
    let _ = write!(out, ";{key}={}", value.min(SF_INTEGER_MAX));
}
