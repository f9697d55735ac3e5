//! Strict base64url without padding (RFC 4648 §5, as RFC 7515 §2 uses it).
//!
//! Decoding refuses padding, characters outside the url-safe alphabet and non-canonical
//! encodings (non-zero trailing bits), so one byte string has exactly one accepted encoding.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

/// Decodes unpadded base64url; `None` for anything that is not its canonical form.
pub fn decode(input: &str) -> Option<Vec<u8>> {
    let bytes = input.as_bytes();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3 + 2);
    let mut chunks = bytes.chunks_exact(4);
    for chunk in &mut chunks {
        let mut n = 0u32;
        for &c in chunk {
            n = (n << 6) | value(c)?;
        }
        out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    match *chunks.remainder() {
        [] => {}
        [a, b] => {
            let n = (value(a)? << 6) | value(b)?;
            if n & 0xf != 0 {
                return None;
            }
            out.push((n >> 4) as u8);
        }
        [a, b, c] => {
            let n = (value(a)? << 12) | (value(b)? << 6) | value(c)?;
            if n & 0x3 != 0 {
                return None;
            }
            out.extend_from_slice(&[(n >> 10) as u8, (n >> 2) as u8]);
        }
        _ => return None,
    }
    Some(out)
}

/// Decodes base64url as found in JWK members: like [`decode`], but tolerates up to two
/// trailing `=` that some key publishers still emit.
pub fn decode_lenient_padding(input: &str) -> Option<Vec<u8>> {
    let mut s = input;
    for _ in 0..2 {
        s = s.strip_suffix('=').unwrap_or(s);
    }
    decode(s)
}

/// Encodes as unpadded base64url.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    let sym = |n: u32, shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
    let mut chunks = bytes.chunks_exact(3);
    for chunk in &mut chunks {
        if let [a, b, c] = *chunk {
            let n = (u32::from(a) << 16) | (u32::from(b) << 8) | u32::from(c);
            out.extend([sym(n, 18), sym(n, 12), sym(n, 6), sym(n, 0)]);
        }
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend([sym(n, 18), sym(n, 12)]);
        }
        [a, b] => {
            let n = (u32::from(a) << 16) | (u32::from(b) << 8);
            out.extend([sym(n, 18), sym(n, 12), sym(n, 6)]);
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length() {
        let data: Vec<u8> = (0u8..=255).collect();
        for len in 0..40 {
            let enc = encode(&data[..len]);
            assert!(!enc.contains('='));
            assert_eq!(decode(&enc).unwrap(), &data[..len], "len {len}");
        }
    }

    #[test]
    fn known_vectors() {
        assert_eq!(encode(b"f"), "Zg");
        assert_eq!(encode(b"fo"), "Zm8");
        assert_eq!(encode(b"foo"), "Zm9v");
        assert_eq!(encode(&[0xfb, 0xff]), "-_8");
        assert_eq!(decode("-_8").unwrap(), vec![0xfb, 0xff]);
    }

    #[test]
    fn refuses_padding_foreign_alphabet_and_non_canonical_forms() {
        assert_eq!(decode("Zg=="), None);
        assert_eq!(decode("Zm+v"), None);
        assert_eq!(decode("Zm/v"), None);
        assert_eq!(decode("Z"), None);
        assert_eq!(decode("Zh"), None); // trailing bits set
        assert_eq!(decode("Zm9"), None);
        assert_eq!(decode("Zm 9v"), None);
        assert_eq!(decode("").unwrap(), Vec::<u8>::new());
        assert_eq!(decode_lenient_padding("Zg==").unwrap(), b"f");
        assert_eq!(decode_lenient_padding("Zg===").ok_or(()), Err(()));
    }
}
