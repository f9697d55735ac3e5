//! Typed reading of a [`Json`] document that records every problem with its JSON path.
//!
//! Validation collects all errors instead of stopping at the first one, so a user fixing a
//! routes file sees the whole list in one run of the validator.

use super::json::Json;
use super::{ConfigError, ConfigErrors};
use crate::observe::{redact::Redactor, shown::shown_name};
use std::borrow::Cow;

/// How many errors a refusal lists; a last one counts the rest. A small document can hold
/// millions of mistakes (`"routes": [1, 1, …]`), and every error is carried by the 422 answer,
/// the log line and the health endpoint.
pub const MAX_LISTED_ERRORS: usize = 100;

/// Collects validation errors: the first [`MAX_LISTED_ERRORS`], and how many more there were.
#[derive(Default)]
pub struct Errors {
    listed: Vec<ConfigError>,
    more: usize,
}

impl Errors {
    /// Records an error. Its message is scrubbed as a log line is (see [`Redactor::text`]): it
    /// may quote a value where a credential was pasted, and it is carried by the refusal's
    /// answer, the log line and the health endpoint. The path is safe as built (see
    /// [`member_path`]).
    pub fn push(&mut self, path: &str, message: impl Into<String>) {
        if self.listed.len() == MAX_LISTED_ERRORS {
            self.more += 1;
            return;
        }
        let message = message.into();
        self.listed.push(ConfigError {
            path: path.to_owned(),
            message: Redactor::default().text(&message),
        });
    }

    /// How many errors were found (listed or not): parts compare it before and after reading
    /// themselves to know whether they were valid.
    pub fn len(&self) -> usize {
        self.listed.len() + self.more
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The listed errors, and the count of the rest as a last one.
    pub fn into_errors(mut self) -> ConfigErrors {
        if self.more > 0 {
            self.listed.push(ConfigError {
                path: String::new(),
                message: format!(
                    "and {} more errors (only the first {MAX_LISTED_ERRORS} are listed)",
                    self.more
                ),
            });
        }
        ConfigErrors(self.listed)
    }

    pub fn into_result<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self.into_errors())
        }
    }
}

/// The path of a member of the object at `parent`: the one place a path shows a member's
/// name, as [`shown_name`] shows it (a credential pasted as a name is cut or redacted), quoted
/// unless it is a plain identifier shown as written (a letter or `_`, then letters, digits,
/// `_` and `-`: a name like `0` could be read as an index).
pub fn member_path(parent: &str, key: &str) -> String {
    let shown = shown_name(key);
    let simple = matches!(shown, Cow::Borrowed(_))
        && key
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    match (parent.is_empty(), simple) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!(
            "{parent}[{}]",
            Json::String(shown.into_owned()).to_json_text()
        ),
    }
}

/// The path of an element of the array at `parent`.
pub fn index_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

impl Json {
    /// A short JSON rendering of a string, for error messages.
    pub fn to_json_text(&self) -> String {
        match self {
            Json::String(s) => serde_json::Value::String(s.clone()).to_string(),
            other => other.kind().to_owned(),
        }
    }
}

/// An object whose members have been checked against the set of known field names.
pub struct Obj<'a> {
    pub path: String,
    members: &'a [(String, Json)],
}

impl<'a> Obj<'a> {
    /// Reads `value` as an object with the given known fields, reporting unknown ones.
    /// Each unknown member is reported at its own path (`routes[3].cache.ttl`).
    pub fn new(value: &'a Json, path: &str, known: &[&str], errs: &mut Errors) -> Option<Obj<'a>> {
        let members = as_object(value, path, errs)?;
        for (key, _) in members {
            if !known.contains(&key.as_str()) {
                let shown = shown_name(key);
                let message = match suggest(key, known) {
                    Some(s) => format!("unknown field \"{shown}\" (did you mean \"{s}\"?)"),
                    None => format!(
                        "unknown field \"{shown}\" (expected one of: {})",
                        known.join(", ")
                    ),
                };
                errs.push(&member_path(path, key), message);
            }
        }
        Some(Obj {
            path: path.to_owned(),
            members,
        })
    }

    pub fn get(&self, key: &str) -> Option<&'a Json> {
        self.members.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn field_path(&self, key: &str) -> String {
        member_path(&self.path, key)
    }

    /// A member that must be present.
    pub fn required(&self, key: &str, errs: &mut Errors) -> Option<&'a Json> {
        let value = self.get(key);
        if value.is_none() {
            errs.push(&self.path, format!("missing required field \"{key}\""));
        }
        value
    }

    pub fn opt_string(&self, key: &str, errs: &mut Errors) -> Option<String> {
        self.get(key)
            .and_then(|v| as_string(v, &self.field_path(key), errs))
    }

    pub fn req_string(&self, key: &str, errs: &mut Errors) -> Option<String> {
        self.required(key, errs)
            .and_then(|v| as_string(v, &self.field_path(key), errs))
    }

    /// An optional integer within `[min, max]`; `None` when absent or invalid.
    pub fn opt_uint(&self, key: &str, min: u64, max: u64, errs: &mut Errors) -> Option<u64> {
        self.get(key)
            .and_then(|v| as_uint(v, &self.field_path(key), min, max, errs))
    }

    pub fn req_uint(&self, key: &str, min: u64, max: u64, errs: &mut Errors) -> Option<u64> {
        self.required(key, errs)
            .and_then(|v| as_uint(v, &self.field_path(key), min, max, errs))
    }

    pub fn opt_bool(&self, key: &str, errs: &mut Errors) -> Option<bool> {
        match self.get(key) {
            None => None,
            Some(Json::Bool(b)) => Some(*b),
            Some(other) => {
                errs.push(
                    &self.field_path(key),
                    format!("expected true or false, found {}", other.kind()),
                );
                None
            }
        }
    }

    /// An optional array of strings; each element is checked by the caller through its path.
    pub fn opt_string_list(&self, key: &str, errs: &mut Errors) -> Option<Vec<(String, String)>> {
        self.get(key)
            .and_then(|v| as_string_list(v, &self.field_path(key), errs))
    }
}

/// The members of an object, in document order.
pub fn as_object<'a>(
    value: &'a Json,
    path: &str,
    errs: &mut Errors,
) -> Option<&'a [(String, Json)]> {
    match value {
        Json::Object(members) => Some(members),
        other => {
            errs.push(path, format!("expected an object, found {}", other.kind()));
            None
        }
    }
}

pub fn as_string(value: &Json, path: &str, errs: &mut Errors) -> Option<String> {
    match value {
        Json::String(s) => Some(s.clone()),
        other => {
            errs.push(path, format!("expected a string, found {}", other.kind()));
            None
        }
    }
}

pub fn as_uint(value: &Json, path: &str, min: u64, max: u64, errs: &mut Errors) -> Option<u64> {
    let Json::Number(n) = value else {
        errs.push(path, format!("expected an integer, found {}", value.kind()));
        return None;
    };
    match n.as_u64() {
        Some(v) if (min..=max).contains(&v) => Some(v),
        _ if written_as_float(n) => {
            errs.push(path, format!("expected an integer, found {n}"));
            None
        }
        _ => {
            errs.push(path, format!("must be between {min} and {max}, found {n}"));
            None
        }
    }
}

/// Whether `n` was written with a fraction or an exponent (`1.5`, `10.0`, `1e1`). serde_json
/// reads every integer literal that fits in 64 bits as an integer, so an integral float within
/// that span was written as a float; beyond it (`100000000000000000000`) it may have been an
/// integer literal, which is then only out of range.
fn written_as_float(n: &serde_json::Number) -> bool {
    // Integer literals below i64::MIN or above u64::MAX round to at most -2^63 or at least 2^64.
    const MIN: f64 = -9_223_372_036_854_775_808.0;
    const MAX: f64 = 18_446_744_073_709_551_616.0;
    n.as_f64()
        .is_some_and(|f| n.is_f64() && (f.fract() != 0.0 || (MIN < f && f < MAX)))
}

/// Strings of an array, each with its own path for precise follow-up errors.
pub fn as_string_list(
    value: &Json,
    path: &str,
    errs: &mut Errors,
) -> Option<Vec<(String, String)>> {
    let Json::Array(items) = value else {
        errs.push(
            path,
            format!("expected an array of strings, found {}", value.kind()),
        );
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item_path = index_path(path, i);
        if let Some(s) = as_string(item, &item_path, errs) {
            out.push((s, item_path));
        }
    }
    Some(out)
}

/// The index of `name` among the `declared` names; otherwise an "unknown `what`" error at
/// `path`, with the likely intended name when there is one.
pub fn reference(
    name: &str,
    declared: &[&str],
    what: &str,
    path: &str,
    errs: &mut Errors,
) -> Option<usize> {
    let i = declared.iter().position(|n| *n == name);
    if i.is_none() {
        let hint = suggest(name, declared)
            .map(|s| format!(" (did you mean \"{s}\"?)"))
            .unwrap_or_default();
        errs.push(path, format!("unknown {what} \"{name}\"{hint}"));
    }
    i
}

/// The known name closest to `unknown`, when it is close enough to be a likely typo.
pub fn suggest<'k>(unknown: &str, known: &[&'k str]) -> Option<&'k str> {
    let lower = unknown.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&lower, &k.to_ascii_lowercase()), *k))
        .filter(|(d, k)| {
            *d <= 2.max(k.len() / 3) || k.to_ascii_lowercase().starts_with(lower.as_str())
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(suggest("ttl", &["ttl_s", "vary"]), Some("ttl_s"));
        assert_eq!(suggest("metods", &["methods", "path"]), Some("methods"));
        assert_eq!(suggest("Path", &["methods", "path"]), Some("path"));
        assert_eq!(suggest("zzzzzz", &["methods", "path"]), None);
        assert_eq!(suggest("get", &["GET", "POST"]), Some("GET"));
    }

    /// The one message `as_uint(text, 1..=10)` reports.
    fn uint_error(text: &str) -> String {
        let mut errs = Errors::default();
        let value = Json::parse(text).unwrap();
        assert_eq!(as_uint(&value, "n", 1, 10, &mut errs), None, "{text}");
        assert_eq!(errs.len(), 1, "{text}");
        errs.into_errors().0.remove(0).message
    }

    #[test]
    fn floats_are_not_integers_but_huge_integers_are_out_of_range() {
        for text in ["1.5", "10.0", "1e1", "-0.0", "-3.0", "1e19"] {
            let m = uint_error(text);
            assert!(m.starts_with("expected an integer, found "), "{text}: {m}");
        }
        assert_eq!(uint_error("10.0"), "expected an integer, found 10.0");
        for text in ["11", "-1", "100000000000000000000", "-9223372036854775809"] {
            let m = uint_error(text);
            assert!(
                m.starts_with("must be between 1 and 10, found "),
                "{text}: {m}"
            );
        }
    }

    #[test]
    fn paths_quote_unusual_keys() {
        assert_eq!(member_path("", "routes"), "routes");
        assert_eq!(member_path("upstreams", "users"), "upstreams.users");
        assert_eq!(member_path("upstreams", "a b"), "upstreams[\"a b\"]");
        assert_eq!(
            member_path("", "0uth"),
            "[\"0uth\"]",
            "not to be read as an index"
        );
        assert_eq!(member_path("u", "-x"), "u[\"-x\"]");
        assert_eq!(member_path("u", "_x-1"), "u._x-1");
        assert_eq!(index_path("routes", 3), "routes[3]");
    }

    #[test]
    fn paths_never_show_a_credential_pasted_as_a_name() {
        let set = "routes[0].request_headers.set";
        assert_eq!(
            member_path(set, "Authorization: Bearer eyJhbGciOiJub25lIn0.eyJ9.c2ln"),
            "routes[0].request_headers.set[\"Authorization…\"]"
        );
        assert_eq!(
            member_path("upstreams", "gwk_abc"),
            "upstreams[\"gwk_REDACTED\"]"
        );
        assert_eq!(member_path("", "x=1"), "[\"x…\"]");
        // A name shown as written keeps its form.
        assert_eq!(
            member_path(set, "x-api-version"),
            format!("{set}.x-api-version")
        );
        assert_eq!(member_path("auth", "jwt.main"), "auth[\"jwt.main\"]");
    }

    #[test]
    fn messages_are_scrubbed_as_they_are_recorded() {
        let mut errs = Errors::default();
        errs.push("auth.k", "unknown scheme \"Bearer s3cr3t\"");
        let listed = errs.into_errors().0;
        assert_eq!(listed[0].message, "unknown scheme \"Bearer REDACTED\"");
    }
}
