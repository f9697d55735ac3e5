//! Corrupted configuration, as a KV write gone wrong or a hand edit might leave it: thousands
//! of pseudo-random mutations of the shipped `routes.json` (a value swapped for one of another
//! type or an edge value, a member removed or renamed, an array emptied, the text cut short or
//! a byte changed). Whatever the document, compiling it never panics, and a refusal always
//! names where the mistake is and what it is — the properties the hot reload and the config
//! endpoints rely on to keep serving the last good table.

use edge_gateway::gateway::Gateway;
use serde_json::{json, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};

mod common;
use common::pairs;

/// SplitMix64, so a failure reproduces from its case number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn shipped() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/routes.json"))
        .expect("routes.json is readable");
    serde_json::from_str(&text).expect("routes.json is JSON")
}

/// Every place in `v` a mutation may touch, as JSON pointers.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        _ => {}
    }
}

/// Values of every type, and the edges validators get wrong.
fn odd_value(rng: &mut Rng) -> Value {
    let choices = [
        Value::Null,
        json!(true),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1e308),
        json!(""),
        json!(" "),
        json!("\u{0}"),
        json!("x\r\nInjected: yes"),
        json!("/{id}/{id}"),
        json!("/{*rest}/x"),
        json!("http://"),
        json!("https://[::1"),
        json!("%"),
        json!("é".repeat(300)),
        json!([]),
        json!([null]),
        json!({}),
        json!({ "unknown": 1 }),
    ];
    choices[rng.below(choices.len())].clone()
}

/// One mutation of `doc`, as text.
fn mutate(doc: &Value, rng: &mut Rng) -> String {
    let mut doc = doc.clone();
    let mut places = Vec::new();
    pointers(&doc, String::new(), &mut places);
    let place = places[rng.below(places.len())].clone();
    let (parent, last) = place.rsplit_once('/').expect("a pointer has a slash");
    match rng.below(6) {
        0 | 1 => {
            if let Some(v) = doc.pointer_mut(&place) {
                *v = odd_value(rng);
            }
        }
        2 => {
            // Remove the member or element.
            match doc.pointer_mut(parent) {
                Some(Value::Object(m)) => {
                    m.remove(&last.replace("~1", "/").replace("~0", "~"));
                }
                Some(Value::Array(a)) => {
                    if let Ok(i) = last.parse::<usize>() {
                        if i < a.len() {
                            a.remove(i);
                        }
                    }
                }
                _ => {}
            }
        }
        3 => {
            // Rename the member (a typo), or empty what it holds.
            if let Some(Value::Object(m)) = doc.pointer_mut(parent) {
                let key = last.replace("~1", "/").replace("~0", "~");
                if let Some(v) = m.remove(&key) {
                    m.insert(format!("{key}_"), v);
                }
            } else if let Some(v) = doc.pointer_mut(&place) {
                *v = match v {
                    Value::Array(_) => json!([]),
                    Value::Object(_) => json!({}),
                    _ => json!(""),
                };
            }
        }
        4 => {
            // The text cut short.
            let text = doc.to_string();
            let mut at = rng.below(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            return text[..at].to_owned();
        }
        _ => {
            // One byte of the text changed.
            let mut bytes = doc.to_string().into_bytes();
            let at = rng.below(bytes.len());
            let replacements = b"{}[]\",:0\\ a\x00\xff";
            bytes[at] = replacements[rng.below(replacements.len())];
            return String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    doc.to_string()
}

#[test]
fn corrupted_documents_never_panic_and_every_refusal_says_where_and_what() {
    let base = shipped();
    Gateway::compile(&base.to_string()).unwrap_or_else(|e| panic!("routes.json: {e}"));
    let mut rng = Rng(0x5eed_c0de);
    let (mut refused, mut accepted) = (0, 0);
    for case in 0..3_000 {
        let text = mutate(&base, &mut rng);
        let outcome = catch_unwind(AssertUnwindSafe(|| Gateway::compile(&text)));
        let Ok(result) = outcome else {
            panic!("case {case}: compiling panicked on:\n{text}");
        };
        match result {
            Ok(_) => accepted += 1,
            Err(e) => {
                refused += 1;
                let errors = pairs(e);
                assert!(!errors.is_empty(), "case {case}: refused without a reason");
                for (path, message) in &errors {
                    assert!(
                        !message.trim().is_empty(),
                        "case {case}: no message at {path:?}:\n{text}"
                    );
                    assert!(
                        path.is_empty()
                            || path.starts_with(|c: char| c.is_ascii_alphabetic() || c == '['),
                        "case {case}: {path:?} is not a JSON path ({message})"
                    );
                }
            }
        }
    }
    // The mutations do both: most break the document, some leave it valid.
    assert!(
        refused > 1_000 && accepted > 100,
        "{refused} refused, {accepted} accepted"
    );
}
