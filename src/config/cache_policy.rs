//! A route cache's freshness policy fields: `default_ttl_s`, `stale_while_revalidate_s` and
//! `honor_request_directives` (read beside the rest of `cache` in `parse/route.rs`).

use super::parse::YEAR_S;
use super::reader::{Errors, Obj};

/// The policy fields of one `cache` object, with their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CachePolicy {
    pub default_ttl_s: u64,
    pub stale_while_revalidate_s: u64,
    pub honor_request_directives: bool,
}

/// Reads the policy fields of the `cache` object `o`, whose `ttl_s` (when valid) caps
/// `default_ttl_s`.
pub fn read(o: &Obj, ttl_s: Option<u64>, errs: &mut Errors) -> CachePolicy {
    let default_ttl_s = o.opt_uint("default_ttl_s", 0, YEAR_S, errs).unwrap_or(0);
    if let Some(ttl) = ttl_s.filter(|ttl| default_ttl_s > *ttl) {
        errs.push(
            &o.field_path("default_ttl_s"),
            format!("{default_ttl_s} is above \"ttl_s\" ({ttl}), which caps every lifetime"),
        );
    }
    CachePolicy {
        default_ttl_s,
        stale_while_revalidate_s: o
            .opt_uint("stale_while_revalidate_s", 0, YEAR_S, errs)
            .unwrap_or(0),
        honor_request_directives: o
            .opt_bool("honor_request_directives", errs)
            .unwrap_or(false),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn doc(cache: &str) -> String {
        format!(
            r#"{{"version": 1, "upstreams": {{"u": {{"targets": [{{"url": "http://u.test"}}]}}}},
               "routes": [{{"id": "r", "path": "/r", "upstream": "u", "auth": "none", "cache": {cache}}}]}}"#
        )
    }

    #[test]
    fn defaults_and_values() {
        let c = Config::from_json(&doc(r#"{"ttl_s": 60}"#)).unwrap();
        let spec = c.routes[0].cache.as_ref().unwrap();
        assert_eq!(spec.default_ttl_s, 0);
        assert_eq!(spec.stale_while_revalidate_s, 0);
        assert!(!spec.honor_request_directives);
        let c = Config::from_json(&doc(
            r#"{"ttl_s": 60, "default_ttl_s": 60, "stale_while_revalidate_s": 30, "honor_request_directives": true}"#,
        ))
        .unwrap();
        let spec = c.routes[0].cache.as_ref().unwrap();
        assert_eq!(
            (spec.default_ttl_s, spec.stale_while_revalidate_s),
            (60, 30)
        );
        assert!(spec.honor_request_directives);
    }

    #[test]
    fn every_error_is_reported_with_its_path() {
        let e = Config::from_json(&doc(
            r#"{"ttl_s": 60, "default_ttl_s": 61, "stale_while_revalidate_s": -1, "honor_request_directives": "yes"}"#,
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("routes[0].cache.default_ttl_s: 61 is above \"ttl_s\" (60)"),
            "{e}"
        );
        assert!(
            e.contains("routes[0].cache.stale_while_revalidate_s:"),
            "{e}"
        );
        assert!(
            e.contains("routes[0].cache.honor_request_directives: expected true or false"),
            "{e}"
        );
        let e = Config::from_json(&doc(r#"{"ttl_s": 60, "default_ttl": 5}"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean \"default_ttl_s\""), "{e}");
    }
}
