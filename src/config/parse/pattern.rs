//! The patterns a route is matched and forwarded on: its `path` (a matchit pattern and its
//! parameters), its `rewrite` template and its `host`. Separate because they are pure text
//! checks, with no reference to the rest of the document.

use crate::config::model::{HostPattern, TemplatePart};
use crate::config::reader::Errors;
use crate::path::canonicalize;

/// Parameter names of a matchit pattern, or why the pattern is unusable.
pub(super) fn pattern_params(pattern: &str) -> Result<Vec<String>, String> {
    if !pattern.starts_with('/') {
        return Err("must start with /".into());
    }
    let mut params: Vec<String> = Vec::new();
    let mut sample = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err("unmatched '}'".into());
        }
        sample.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or("unclosed '{'")?;
        let inner = &after[..close];
        let (catch_all, name) = match inner.strip_prefix('*') {
            Some(n) => (true, n),
            None => (false, inner),
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!(
                "parameter name \"{inner}\" must be letters, digits or '_'"
            ));
        }
        if params.iter().any(|p| p == name) {
            return Err(format!("parameter \"{name}\" appears twice"));
        }
        rest = &after[close + 1..];
        if catch_all && !rest.is_empty() {
            return Err(format!("catch-all {{*{name}}} must end the path"));
        }
        if catch_all && !sample.ends_with('/') {
            return Err(format!("catch-all {{*{name}}} must follow a '/'"));
        }
        params.push(name.to_owned());
        sample.push('x');
    }
    sample.push_str(rest);
    if canonicalize(&sample).ok().as_deref() != Some(sample.as_str()) {
        return Err("must be in canonical form (no '//', dot segments, '\\', ';' or escapes that normalise differently)".into());
    }
    Ok(params)
}

pub(super) fn template(
    text: &str,
    params: &[String],
    path: &str,
    errs: &mut Errors,
) -> Option<Vec<TemplatePart>> {
    let mut parts = Vec::new();
    let mut sample = String::new();
    let mut rest = text;
    if !text.starts_with('/') {
        errs.push(path, "must start with /");
        return None;
    }
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(TemplatePart::Literal(rest[..open].to_owned()));
            sample.push_str(&rest[..open]);
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            errs.push(path, "unclosed '{'");
            return None;
        };
        let name = &after[..close];
        match params.iter().position(|p| p == name) {
            Some(i) => parts.push(TemplatePart::Param(i)),
            None => {
                errs.push(
                    path,
                    format!("\"{{{name}}}\" is not a parameter of the route's path"),
                );
                return None;
            }
        }
        sample.push('x');
        rest = &after[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Literal(rest.to_owned()));
        sample.push_str(rest);
    }
    if sample.contains(['}', '?', '#'])
        || canonicalize(&sample).ok().as_deref() != Some(sample.as_str())
    {
        errs.push(
            path,
            "must be a canonical path template (no '?', '#', '//', dot segments or odd escapes)",
        );
        return None;
    }
    Some(parts)
}

pub(super) fn host_pattern(text: &str, path: &str, errs: &mut Errors) -> Option<HostPattern> {
    let lower = text.to_ascii_lowercase();
    let (suffix, name) = match lower.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, lower.as_str()),
    };
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !valid {
        errs.push(
            path,
            format!(
                "\"{text}\" must be a host name like api.example.com or *.example.com (no port)"
            ),
        );
        return None;
    }
    Some(if suffix {
        HostPattern::Suffix(format!(".{name}"))
    } else {
        HostPattern::Exact(name.to_owned())
    })
}
