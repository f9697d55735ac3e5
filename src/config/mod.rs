//! The route configuration (`routes.json`, version 1): parsing and validation.
//!
//! The whole contract is checked here, once, before a document is used: every error names its
//! JSON path, unknown fields are errors, and cross-references are resolved to indices.

mod cache_policy;
mod canary;
mod cors;
mod edit;
mod ip_rules;
mod json;
mod model;
mod observability;
mod parse;
mod reader;
mod route_match;

pub use edit::bump_cache_generation;
pub use json::Json;
pub use model::*;

use std::fmt;

/// One problem in a configuration document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// JSON path of the offending value (`routes[3].cache.ttl_s`); empty for the whole document.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a document, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Parses and validates a whole document.
    pub fn from_json(text: &str) -> Result<Config, ConfigErrors> {
        let doc = Json::parse(text).map_err(|message| {
            ConfigErrors(vec![ConfigError {
                path: String::new(),
                message: format!("invalid JSON: {message}"),
            }])
        })?;
        parse::config(&doc)
    }
}
