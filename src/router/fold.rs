//! Paths that lenient servers take for one another. IIS, ASP.NET and Windows file servers
//! compare paths without letter case and drop trailing dots, spaces and NTFS's `::$DATA` from
//! a name; many frameworks take `/admin/` for `/admin`; nearly every server decodes an escaped
//! sub-delimiter, `:` or `@` (`%3A`, `%24`, `%40`) before matching, which the canonical path
//! keeps escaped (`/jobs/1%3Acancel` is `/jobs/1:cancel` upstream). When such a spelling of a path belongs
//! to another route (`/ADMIN` or `/admin.` reaching a public catch-all beside a protected
//! `/admin`), the gateway cannot know which resource the upstream will serve, so the request
//! is refused (see `Gateway::destination`). Letters are folded as ASP.NET and NTFS compare them.
//!
//! Routes whose own patterns change under folding (`/API/{*rest}`, `/v1./x`) get a folded copy
//! of their table, so that such a route's own requests still find it; documents without one
//! (the usual case) build nothing more.

use super::shape;
use crate::config::Route;
use std::collections::HashMap;

/// The path as a lenient upstream may read it, or `None` when that is the path itself: escaped
/// raw path characters (`%3A`, `%24`, `%40`, …) decoded, letters in one case, each segment
/// without trailing `.`, spaces (`%20`) and `::$DATA` (while something of the segment is
/// left), and no trailing `/` (but the root).
pub(super) fn fold_path(path: &str) -> Option<String> {
    if !needs_folding(path) {
        return None;
    }
    let folded = fold(path, false);
    (folded != path).then_some(folded)
}

/// A route pattern folded as [`fold_path`] folds paths, with `{…}` parameters kept as they are;
/// `None` when folding changes nothing.
pub(super) fn fold_pattern(pattern: &str) -> Option<String> {
    if !needs_folding(pattern) {
        return None;
    }
    let folded = fold(pattern, true);
    (folded != pattern).then_some(folded)
}

/// A cheap scan that rules most paths out: no upper-case letter, no `.`, `%20` or `:` at a
/// segment's end, no escaped raw path character, no trailing `/`.
fn needs_folding(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.len() > 1 && bytes.ends_with(b"/") {
        return true;
    }
    bytes.iter().enumerate().any(|(i, &b)| {
        let at_segment_end = bytes.get(i + 1).is_none_or(|&n| n == b'/');
        let trailing = b == b'.' || (b == b'0' && i >= 2 && &bytes[i - 2..i] == b"%2");
        b.is_ascii_uppercase()
            || (trailing && at_segment_end)
            || (b == b':' && bytes.get(i + 1) == Some(&b':'))
            || (b == b'%' && escaped_pchar(&bytes[i..]).is_some())
    })
}

/// The byte `%xx` at the start of `bytes` escapes, if it is an escape.
fn escape_at(bytes: &[u8]) -> Option<u8> {
    if bytes.first() != Some(&b'%') {
        return None;
    }
    let (hi, lo) = (*bytes.get(1)?, *bytes.get(2)?);
    Some(crate::hex::value(hi)? << 4 | crate::hex::value(lo)?)
}

/// The raw path character `%xx` at the start of `bytes` escapes (`%3A` → `:`), if it is one.
fn escaped_pchar(bytes: &[u8]) -> Option<u8> {
    escape_at(bytes).filter(|&v| crate::path::is_raw_pchar(v))
}

fn fold(path: &str, pattern: bool) -> String {
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        // Decoded first: `%3A%3A%24DATA` is the `::$DATA` trimmed below.
        let segment = decode_escapes(segment);
        let lowered = if pattern {
            lower_literals(&segment)
        } else {
            segment.to_ascii_lowercase()
        };
        // A pattern segment that ends in a parameter has no literal tail to trim.
        if pattern && lowered.ends_with('}') {
            out.push_str(&lowered);
        } else {
            out.push_str(trim_tail(&lowered));
        }
    }
    if out.len() > 1 && out.ends_with('/') {
        out.pop();
    }
    out
}

/// `segment` as servers read it before matching: escaped raw path characters decoded (the
/// canonical path has already decoded unreserved ones, and refuses `%3B`), and each escaped
/// non-ASCII letter in the case ASP.NET's `OrdinalIgnoreCase` and NTFS compare (its simple
/// upper case: `ä` and `Ä` are one, `ſ` is `s`, `ı` is `i`), ASCII results written raw; the
/// ASCII lower-casing that follows treats both spellings alike.
fn decode_escapes(segment: &str) -> std::borrow::Cow<'_, str> {
    let bytes = segment.as_bytes();
    let decodes = |i: usize| {
        escape_at(&bytes[i..]).is_some_and(|v| v >= 0x80 || crate::path::is_raw_pchar(v))
    };
    if !(0..bytes.len()).any(decodes) {
        return std::borrow::Cow::Borrowed(segment);
    }
    let mut out = String::with_capacity(segment.len());
    let mut i = 0;
    while i < bytes.len() {
        match escape_at(&bytes[i..]) {
            Some(v) if crate::path::is_raw_pchar(v) => {
                out.push(char::from(v));
                i += 3;
            }
            Some(v) if v >= 0x80 => {
                // A run of escaped non-ASCII bytes: UTF-8 (the canonical path refuses
                // anything else).
                let start = i;
                let mut run = Vec::new();
                while let Some(v) = escape_at(&bytes[i..]).filter(|&v| v >= 0x80) {
                    run.push(v);
                    i += 3;
                }
                match std::str::from_utf8(&run) {
                    Ok(text) => text.chars().for_each(|c| push_folded(&mut out, c)),
                    Err(_) => out.push_str(&segment[start..i]),
                }
            }
            _ => {
                // Whole characters only: an escape or an ASCII byte starts every other step.
                let len = segment[i..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&segment[i..i + len]);
                i += len;
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `c` in its simple upper case (itself when that is more than one character), raw when ASCII,
/// else as upper-case escapes of its UTF-8 bytes.
fn push_folded(out: &mut String, c: char) {
    let mut upper = c.to_uppercase();
    let folded = match (upper.next(), upper.next()) {
        (Some(u), None) => u,
        _ => c,
    };
    if folded.is_ascii() {
        out.push(folded);
    } else {
        let mut buf = [0u8; 4];
        for b in folded.encode_utf8(&mut buf).bytes() {
            crate::hex::push_escape(out, b);
        }
    }
}

/// `segment` without the trailing dots, spaces and `::$data` Windows drops from a name (the
/// segment is already in lower case); unchanged when nothing would be left.
fn trim_tail(segment: &str) -> &str {
    let mut rest = segment;
    loop {
        let before = rest.len();
        rest = rest.trim_end_matches('.');
        while let Some(r) = rest.strip_suffix("%20") {
            rest = r;
        }
        if let Some(r) = rest.strip_suffix("::$data") {
            rest = r;
        }
        if rest.len() == before {
            break;
        }
    }
    if rest.is_empty() {
        segment
    } else {
        rest
    }
}

/// ASCII lower case outside `{…}`: parameter names are the route's own.
fn lower_literals(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    let mut depth = 0usize;
    for c in segment.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        out.push(if depth == 0 {
            c.to_ascii_lowercase()
        } else {
            c
        });
    }
    out
}

/// The routes of one table under their folded patterns: which routes a folded path reaches.
#[derive(Debug, Default)]
pub(super) struct FoldedTable {
    matcher: matchit::Router<usize>,
    /// Per leaf, the routes whose folded pattern has its shape.
    leaves: Vec<Vec<usize>>,
    shapes: HashMap<String, usize>,
}

impl FoldedTable {
    /// The folded copy of a table of `members`, or `None` when no member's pattern changes
    /// under folding (the table itself then answers for folded paths).
    pub(super) fn for_members(routes: &[Route], members: &[usize]) -> Option<Box<FoldedTable>> {
        if !members
            .iter()
            .any(|&i| fold_pattern(&routes[i].path).is_some())
        {
            return None;
        }
        let mut table = FoldedTable::default();
        for &i in members {
            let pattern = fold_pattern(&routes[i].path).unwrap_or_else(|| routes[i].path.clone());
            let key = shape(&pattern);
            let leaf = match table.shapes.get(&key) {
                Some(&leaf) => leaf,
                None => {
                    let leaf = table.leaves.len();
                    // Folded patterns that matchit cannot hold side by side (rare: the
                    // originals routed) leave that route out of the check; its requests are
                    // then routed as if no folded spelling existed.
                    if table.matcher.insert(pattern, leaf).is_err() {
                        continue;
                    }
                    table.shapes.insert(key, leaf);
                    table.leaves.push(Vec::new());
                    leaf
                }
            };
            table.leaves[leaf].push(i);
        }
        Some(Box::new(table))
    }

    /// Whether the folded `path` reaches routes none of which is `route`, one of which
    /// `differs` from it.
    pub(super) fn reaches_only_others(
        &self,
        path: &str,
        route: usize,
        differs: impl Fn(usize) -> bool,
    ) -> bool {
        let Ok(m) = self.matcher.at(path) else {
            return false;
        };
        self.leaves.get(*m.value).is_some_and(|routes| {
            !routes.contains(&route) && routes.iter().any(|&other| differs(other))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_fold_as_lenient_servers_read_them() {
        assert_eq!(fold_path("/ADMIN").as_deref(), Some("/admin"));
        assert_eq!(fold_path("/Admin/Keys").as_deref(), Some("/admin/keys"));
        assert_eq!(fold_path("/admin.").as_deref(), Some("/admin"));
        assert_eq!(fold_path("/admin...").as_deref(), Some("/admin"));
        assert_eq!(fold_path("/admin%20").as_deref(), Some("/admin"));
        assert_eq!(fold_path("/admin.%20.").as_deref(), Some("/admin"));
        assert_eq!(fold_path("/admin::$DATA").as_deref(), Some("/admin"));
        assert_eq!(fold_path("/admin./keys").as_deref(), Some("/admin/keys"));
        assert_eq!(fold_path("/ADMIN/").as_deref(), Some("/admin"));
        // Escaped raw path characters are read decoded, as servers decode them.
        assert_eq!(fold_path("/admin::%24DATA").as_deref(), Some("/admin"));
        assert_eq!(fold_path("/admin%3A%3A%24DATA").as_deref(), Some("/admin"));
        assert_eq!(
            fold_path("/jobs/1%3Acancel").as_deref(),
            Some("/jobs/1:cancel")
        );
        assert_eq!(fold_path("/u/%40me").as_deref(), Some("/u/@me"));
        assert_eq!(fold_path("/a%20b%7Cc").as_deref(), Some("/a%20b%7cc"));
        assert_eq!(fold_path("/a%20b"), None);
        // Non-ASCII letters in their simple upper case, as OrdinalIgnoreCase and NTFS read them.
        assert_eq!(fold_path("/%C3%A4rger").as_deref(), Some("/%c3%84rger"));
        assert_eq!(fold_path("/%C3%84RGER").as_deref(), Some("/%c3%84rger"));
        assert_eq!(fold_path("/%C5%BFecret").as_deref(), Some("/secret"));
        assert_eq!(fold_path("/adm%C4%B1n").as_deref(), Some("/admin"));
        assert_eq!(fold_path("/%E2%84%AA").as_deref(), Some("/%e2%84%aa"));
        assert_eq!(fold_path("/%C").as_deref(), Some("/%c"));
        assert_eq!(fold_path("/%C3").as_deref(), Some("/%c3"));
        assert_eq!(fold_path("/admin/").as_deref(), Some("/admin"));
        // Nothing to fold: the usual path costs one scan.
        assert_eq!(fold_path("/admin"), None);
        assert_eq!(fold_path("/"), None);
        assert_eq!(fold_path("/users/42/a.b"), None);
        assert_eq!(fold_path("/a:b"), None);
        // A segment that would vanish is a name of its own (`.` and `..` never get here).
        assert_eq!(fold_path("/..."), None);
        assert_eq!(fold_path("/x/..."), None);
        assert_eq!(fold_path("/X/..."), Some("/x/...".into()));
    }

    #[test]
    fn patterns_fold_their_literals_and_keep_their_parameters() {
        assert_eq!(
            fold_pattern("/API/{Name}/{*Rest}").as_deref(),
            Some("/api/{Name}/{*Rest}")
        );
        assert_eq!(fold_pattern("/v1./x").as_deref(), Some("/v1/x"));
        assert_eq!(
            fold_pattern("/img/{Name}.PNG").as_deref(),
            Some("/img/{Name}.png")
        );
        assert_eq!(fold_pattern("/docs/").as_deref(), Some("/docs"));
        assert_eq!(fold_pattern("/a%3Ab/{id}").as_deref(), Some("/a:b/{id}"));
        assert_eq!(fold_pattern("/users/{id}"), None);
        assert_eq!(fold_pattern("/{*rest}"), None);
    }
}
