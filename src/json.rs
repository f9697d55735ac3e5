//! JSON text for the values the request path hands to JS (the exchange plan, the access line,
//! the data point), made once per request each.

use serde::Serialize;
use std::io;

/// `value` as JSON, written into a buffer of `capacity` bytes reserved up front: the default
/// buffer of `serde_json::to_string` grows two or three times for these values, and each growth
/// copies what was written (measured in `make bench`'s profile of the pass-through).
pub fn text<T: Serialize + ?Sized>(value: &T, capacity: usize) -> String {
    let mut out = Pieces(Vec::with_capacity(capacity));
    // Writing strings, numbers and options into memory cannot fail.
    if serde_json::to_writer(&mut out, value).is_err() {
        return String::new();
    }
    // serde_json writes only valid UTF-8.
    String::from_utf8(out.0).unwrap_or_default()
}

/// Pieces this long or shorter are copied byte by byte rather than with one `memory.copy`.
const SHORT_PIECE: usize = 16;

/// The buffer serde_json writes into, piece by piece: `,`, `"`, a member name, `"`, `:`, a
/// value. In Wasm a copy of unknown length is a `memory.copy`, which V8 carries out by a call
/// out of the module; counted by callgrind in workerd, each such copy cost about 140
/// instructions, and an access line took some 160 of them. Short pieces copied in a loop cost a
/// few instructions a byte instead.
struct Pieces(Vec<u8>);

impl io::Write for Pieces {
    #[inline]
    fn write(&mut self, piece: &[u8]) -> io::Result<usize> {
        self.put(piece);
        Ok(piece.len())
    }

    #[inline]
    fn write_all(&mut self, piece: &[u8]) -> io::Result<()> {
        self.put(piece);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Pieces {
    #[inline]
    fn put(&mut self, piece: &[u8]) {
        if piece.len() <= SHORT_PIECE {
            for &byte in piece {
                self.0.push(byte);
            }
        } else {
            self.0.extend_from_slice(piece);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::text;
    use serde_json::json;

    #[test]
    fn text_is_what_serde_json_writes() {
        let long = "x".repeat(40);
        let values = [
            json!(null),
            json!({}),
            json!([]),
            json!({ "a": 1, "bb": "two", "c": [true, false, null], "d": { "e": -1.5 } }),
            json!({ "quote\"d": "line\nbreak\ttab\u{1}\u{1f}\\", "é": "日本語 ☃ 😀" }),
            json!({ "exactly_sixteen_": "0123456789abcdef", "seventeen_bytes__": "0123456789abcdefg" }),
            json!({ "long": long, "long_escaped": format!("{long}\"{long}\n") }),
            json!([u64::MAX, i64::MIN, 0.1, 1e300]),
        ];
        for value in values {
            for capacity in [0, 1, 1024] {
                assert_eq!(
                    text(&value, capacity),
                    serde_json::to_string(&value).unwrap()
                );
            }
        }
    }
}
