//! Helpers the configuration-contract tests share.
// Each test file compiles this module on its own and uses only some of it.
#![allow(dead_code)]

use edge_gateway::config::{Config, ConfigError, ConfigErrors};
use serde_json::{json, Value};

/// Errors as `(path, message)`.
pub fn pairs(errors: ConfigErrors) -> Vec<(String, String)> {
    errors
        .0
        .into_iter()
        .map(|ConfigError { path, message }| (path, message))
        .collect()
}

/// The errors `Config::from_json` reports, as `(path, message)`; panics if the document is valid.
pub fn errors(doc: &str) -> Vec<(String, String)> {
    match Config::from_json(doc) {
        Ok(_) => panic!("expected validation errors, but the document was accepted:\n{doc}"),
        Err(e) => pairs(e),
    }
}

/// The validated configuration; panics with every error if the document is refused.
pub fn accepts(doc: &str) -> Config {
    Config::from_json(doc).unwrap_or_else(|e| panic!("expected a valid document:\n{doc}\n{e}"))
}

/// RFC 7386 merge patch: objects merge recursively, `null` removes, anything else replaces.
pub fn merge(target: &mut Value, patch: Value) {
    match patch {
        Value::Object(members) => {
            if !target.is_object() {
                *target = json!({});
            }
            let object = target.as_object_mut().expect("an object");
            for (key, value) in members {
                if value.is_null() {
                    object.remove(&key);
                } else {
                    merge(object.entry(key).or_insert(Value::Null), value);
                }
            }
        }
        other => *target = other,
    }
}
