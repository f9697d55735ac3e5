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

impl ConfigErrors {
    /// `errors` as a refusal lists them: the first [`reader::MAX_LISTED_ERRORS`], and the count
    /// of the rest as a last one (for checks that collect their own list, such as the router's).
    pub fn capped(errors: Vec<ConfigError>) -> ConfigErrors {
        let mut collected = reader::Errors::default();
        for e in errors {
            collected.push(&e.path, e.message);
        }
        collected.into_errors()
    }
}

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
        let whole = |message: String| {
            ConfigErrors(vec![ConfigError {
                path: String::new(),
                message,
            }])
        };
        if let Some(message) = not_as_written(text) {
            return Err(whole(message));
        }
        let doc = Json::parse(text).map_err(|message| whole(format!("invalid JSON: {message}")))?;
        parse::config(&doc)
    }
}

/// Why `text` is not the document as its author wrote it, if it is not. A byte-order mark is
/// not JSON (and the runtime's decoder keeps it); U+FFFD is what every byte that is not UTF-8
/// becomes when the runtime decodes a push body or a KV value, so a document saved in another
/// encoding would otherwise be read with its values silently altered. The character itself
/// may still be written as the escape `\ufffd`.
fn not_as_written(text: &str) -> Option<String> {
    if text.starts_with('\u{feff}') {
        return Some(
            "the document begins with a byte-order mark (U+FEFF): save it as UTF-8 without a BOM"
                .to_owned(),
        );
    }
    let at = text.find('\u{fffd}')?;
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some(format!(
        "invalid text at line {line} column {column}: U+FFFD, which is what a byte that is not UTF-8 becomes: the document is not UTF-8 (save it as UTF-8; write \"\\ufffd\" if the character is meant)"
    ))
}
