//! The top-level `cors` policies and a route's `cors` reference.
//!
//! What a browser may do across origins is refused at validation when it would be unsafe:
//! `"*"` with credentials (browsers refuse it, and reflecting every origin instead would hand
//! any site the user's session), `"null"` (sent by sandboxed documents, `file:` pages and
//! redirects: allowing it allows anyone), and origins a browser never sends.

use super::json::Json;
use super::model::*;
use super::parse::header_name;
use super::reader::{reference, suggest, Errors, Obj};

const CORS_FIELDS: &[&str] = &[
    "origins",
    "methods",
    "headers",
    "expose_headers",
    "credentials",
    "max_age_s",
];

/// Longest `max_age_s`: a day (browsers cap it lower anyway).
const MAX_AGE_S: u64 = 86_400;

/// Reads one named policy.
#[inline(never)]
pub(super) fn policy(
    name: &str,
    value: &Json,
    path: &str,
    errs: &mut Errors,
) -> Option<CorsPolicy> {
    let o = Obj::new(value, path, CORS_FIELDS, errs)?;
    let before = errs.len();
    let credentials = o.opt_bool("credentials", errs).unwrap_or(false);
    let mut p = CorsPolicy {
        name: name.to_owned(),
        origins: Vec::new(),
        any_origin: false,
        methods: None,
        headers: Vec::new(),
        any_header: false,
        expose_headers: Vec::new(),
        credentials,
        max_age_s: o.opt_uint("max_age_s", 0, MAX_AGE_S, errs).unwrap_or(600),
    };
    let opath = o.field_path("origins");
    if let Some(list) = o
        .required("origins", errs)
        .and(o.opt_string_list("origins", errs))
    {
        if list.is_empty() {
            errs.push(&opath, "must list at least one origin");
        }
        let mut seen: Vec<String> = Vec::new();
        for (text, ipath) in list {
            // User-info, a query or a fragment is never part of an origin, and may hold a
            // password or a key: such an entry is quoted as a URL is, never as written.
            if text.contains(['@', '?', '#']) {
                errs.push(
                    &ipath,
                    format!(
                        "\"{}\" is not an origin: expected scheme://host[:port], without path, query or user-info",
                        crate::observe::shown::shown_url(&text)
                    ),
                );
                continue;
            }
            if seen.contains(&text) {
                errs.push(&ipath, format!("origin \"{text}\" is listed twice"));
                continue;
            }
            seen.push(text.clone());
            match text.as_str() {
                "*" if credentials => errs.push(
                    &ipath,
                    "\"*\" cannot be used with \"credentials\": true (browsers refuse it); list the origins",
                ),
                "*" => p.any_origin = true,
                "null" => errs.push(
                    &ipath,
                    "\"null\" is never accepted: sandboxed documents, file: pages and redirects all send it, so it would allow anyone",
                ),
                _ => match OriginPattern::parse(&text) {
                    Ok(pattern) => p.origins.push(pattern),
                    Err(why) => errs.push(&ipath, format!("\"{text}\": {why}")),
                },
            }
        }
        if p.any_origin && !p.origins.is_empty() {
            errs.push(
                &opath,
                "\"*\" already allows every origin; list either \"*\" or origins",
            );
        }
    }
    if let Some(list) = o.opt_string_list("methods", errs) {
        if list.is_empty() {
            errs.push(
                &o.field_path("methods"),
                "must list at least one method (omit it to allow the route's methods)",
            );
        }
        let mut set = MethodSet(0);
        for (m, mpath) in list {
            match MethodSet::bit(&m) {
                Some(b) if set.0 & b != 0 => {
                    errs.push(&mpath, format!("method \"{m}\" is listed twice"))
                }
                Some(b) => set.0 |= b,
                None => {
                    let hint = suggest(&m, &MethodSet::NAMES)
                        .map(|s| format!(" (did you mean \"{s}\"?)"))
                        .unwrap_or_default();
                    errs.push(&mpath, format!("unsupported method \"{m}\"{hint}"));
                }
            }
        }
        p.methods = Some(set);
    }
    if let Some(list) = o.opt_string_list("headers", errs) {
        for (h, hpath) in list {
            if h == "*" {
                if credentials {
                    errs.push(
                        &hpath,
                        "\"*\" cannot be used with \"credentials\": true (browsers take it literally); list the headers",
                    );
                }
                p.any_header = true;
                continue;
            }
            if let Some(lower) = header_name(&h, &hpath, errs) {
                if p.headers.contains(&lower) {
                    errs.push(&hpath, twice(&lower));
                } else {
                    p.headers.push(lower);
                }
            }
        }
    }
    if let Some(list) = o.opt_string_list("expose_headers", errs) {
        for (h, hpath) in list {
            if let Some(lower) = header_name(&h, &hpath, errs) {
                if p.expose_headers.contains(&lower) {
                    errs.push(&hpath, twice(&lower));
                } else {
                    p.expose_headers.push(lower);
                }
            }
        }
    }
    (errs.len() == before).then_some(p)
}

fn twice(lower: &str) -> String {
    format!("header \"{lower}\" is listed twice (header names are case-insensitive)")
}

/// Reads a route's `cors`: the name of a declared policy.
pub(super) fn route_cors(o: &Obj, declared: &[&str], errs: &mut Errors) -> Option<usize> {
    let name = o.opt_string("cors", errs)?;
    reference(&name, declared, "CORS policy", &o.field_path("cors"), errs)
}
