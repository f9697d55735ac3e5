//! What changes between two documents, by route id and by the names of upstreams, auth
//! schemes and policies: added, removed, and the fields that changed (with both values). It
//! reads the documents as written (not compiled), so it shows what the user wrote.

use crate::config::Json;

/// Top-level members whose entries are named objects, compared entry by entry.
const NAMED_SECTIONS: [&str; 5] = ["upstreams", "auth", "rate_limits", "cors", "ip_rules"];

/// One entry that differs.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// `routes`, `upstreams`, … or a top-level member such as `settings`.
    pub section: String,
    /// The route id or entry name; empty for a top-level member compared as a whole.
    pub name: String,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChangeKind {
    Added,
    Removed,
    Changed(Vec<FieldChange>),
}

/// A field that differs, at its path inside the entry (`cache.ttl_s`); values as compact JSON,
/// `None` when absent.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    pub path: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Compares two documents. Both must be JSON objects (validate them first).
pub fn diff(before: &Json, after: &Json) -> Vec<Change> {
    let empty = Vec::new();
    let (b, a) = (
        members(before).unwrap_or(&empty),
        members(after).unwrap_or(&empty),
    );
    let mut changes = Vec::new();
    for key in union(b, a) {
        let (bv, av) = (get(b, &key), get(a, &key));
        if key == "routes" {
            changes.extend(named_changes(&key, &routes_by_id(bv), &routes_by_id(av)));
        } else if NAMED_SECTIONS.contains(&key.as_str()) {
            let entries = |v: Option<&Json>| -> Vec<(String, Json)> {
                v.and_then(members).cloned().unwrap_or_default()
            };
            changes.extend(named_changes(&key, &entries(bv), &entries(av)));
        } else if bv != av {
            let mut fields = Vec::new();
            match (bv, av) {
                (Some(x), Some(y)) => field_changes("", x, y, &mut fields),
                (x, y) => fields.push(FieldChange {
                    path: String::new(),
                    before: x.map(Json::to_text),
                    after: y.map(Json::to_text),
                }),
            }
            changes.push(Change {
                section: key,
                name: String::new(),
                kind: ChangeKind::Changed(fields),
            });
        }
    }
    changes
}

fn members(v: &Json) -> Option<&Vec<(String, Json)>> {
    match v {
        Json::Object(m) => Some(m),
        _ => None,
    }
}

fn get<'a>(m: &'a [(String, Json)], key: &str) -> Option<&'a Json> {
    m.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Keys of `b`, then those only in `a`, in document order.
fn union(b: &[(String, Json)], a: &[(String, Json)]) -> Vec<String> {
    let mut keys: Vec<String> = b.iter().map(|(k, _)| k.clone()).collect();
    keys.extend(
        a.iter()
            .filter(|(k, _)| !keys.contains(k))
            .map(|(k, _)| k.clone())
            .collect::<Vec<_>>(),
    );
    keys
}

/// Routes keyed by `id` (a route without a string id by its position, `#3`).
fn routes_by_id(v: Option<&Json>) -> Vec<(String, Json)> {
    let Some(Json::Array(items)) = v else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let id = match r {
                Json::Object(m) => match get(m, "id") {
                    Some(Json::String(s)) => s.clone(),
                    _ => format!("#{i}"),
                },
                _ => format!("#{i}"),
            };
            (id, r.clone())
        })
        .collect()
}

fn named_changes(
    section: &str,
    before: &[(String, Json)],
    after: &[(String, Json)],
) -> Vec<Change> {
    let mut out = Vec::new();
    for name in union(before, after) {
        let kind = match (get(before, &name), get(after, &name)) {
            (Some(_), None) => ChangeKind::Removed,
            (None, Some(_)) => ChangeKind::Added,
            (Some(b), Some(a)) if b != a => {
                let mut fields = Vec::new();
                field_changes("", b, a, &mut fields);
                ChangeKind::Changed(fields)
            }
            _ => continue,
        };
        out.push(Change {
            section: section.to_owned(),
            name,
            kind,
        });
    }
    out
}

/// Objects are compared member by member; anything else (arrays included) as a whole value.
fn field_changes(path: &str, b: &Json, a: &Json, out: &mut Vec<FieldChange>) {
    match (b, a) {
        (Json::Object(bm), Json::Object(am)) => {
            for key in union(bm, am) {
                let sub = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match (get(bm, &key), get(am, &key)) {
                    (Some(x), Some(y)) if x == y => {}
                    (Some(x), Some(y)) => field_changes(&sub, x, y, out),
                    (x, y) => out.push(FieldChange {
                        path: sub,
                        before: x.map(Json::to_text),
                        after: y.map(Json::to_text),
                    }),
                }
            }
        }
        _ if b == a => {}
        _ => out.push(FieldChange {
            path: path.to_owned(),
            before: Some(b.to_text()),
            after: Some(a.to_text()),
        }),
    }
}

/// The diff as text for a person: `+` added, `-` removed, `~` changed with each field's
/// `before → after`. `color` adds ANSI colours (only when writing to a terminal).
pub fn render(changes: &[Change], color: bool) -> String {
    if changes.is_empty() {
        return "no changes\n".to_owned();
    }
    let paint = |code: &str, text: String| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text
        }
    };
    let mut out = String::new();
    let mut section = "";
    for c in changes {
        if c.section != section {
            section = &c.section;
            out.push_str(&format!("{section}:\n"));
        }
        let label = if c.name.is_empty() {
            section
        } else {
            c.name.as_str()
        };
        match &c.kind {
            ChangeKind::Added => {
                out.push_str(&format!("{}\n", paint("32", format!("  + {label}"))))
            }
            ChangeKind::Removed => {
                out.push_str(&format!("{}\n", paint("31", format!("  - {label}"))))
            }
            ChangeKind::Changed(fields) => {
                out.push_str(&format!("{}\n", paint("33", format!("  ~ {label}"))));
                for f in fields {
                    let value = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
                    let name = if f.path.is_empty() {
                        "value"
                    } else {
                        f.path.as_str()
                    };
                    out.push_str(&format!(
                        "      {name}: {} → {}\n",
                        paint("31", value(&f.before)),
                        paint("32", value(&f.after))
                    ));
                }
            }
        }
    }
    out
}
