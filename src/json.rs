//! JSON text for the values the request path hands to JS (the exchange plan, the access line,
//! the data point), made once per request each.

use serde::Serialize;

/// `value` as JSON, written into a buffer of `capacity` bytes reserved up front: the default
/// buffer of `serde_json::to_string` grows two or three times for these values, and each growth
/// copies what was written (measured in `make bench`'s profile of the pass-through).
pub fn text<T: Serialize + ?Sized>(value: &T, capacity: usize) -> String {
    let mut out = Vec::with_capacity(capacity);
    // Writing strings, numbers and options into memory cannot fail.
    if serde_json::to_writer(&mut out, value).is_err() {
        return String::new();
    }
    // serde_json writes only valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
}
