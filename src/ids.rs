//! Request ids and W3C trace context.
//!
//! Ids come from a small per-isolate generator seeded once from the platform's randomness, so
//! the hot path makes no call into the runtime for them. They identify, they do not protect:
//! nothing relies on them being unguessable. (The canary's random draw relies only on them
//! being the gateway's and not the client's: a client cannot pick a number it is not asked
//! for, and one that retries draws anew each time.)

/// xoshiro256** — fast, well-distributed, seeded once per isolate.
#[derive(Debug, Clone)]
pub struct IdGenerator {
    s: [u64; 4],
}

impl IdGenerator {
    pub fn new(seed: [u8; 32]) -> IdGenerator {
        let mut s = [0u64; 4];
        for (i, chunk) in seed.chunks_exact(8).enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            s[i] = u64::from_le_bytes(b);
        }
        if s == [0; 4] {
            s[0] = 0x9E37_79B9_7F4A_7C15;
        }
        IdGenerator { s }
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniformly distributed value in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// 32 lower-case hex digits.
    pub fn request_id(&mut self) -> String {
        let mut out = String::with_capacity(32);
        push_hex(&mut out, self.next_u64());
        push_hex(&mut out, self.next_u64());
        out
    }

    /// A new 128-bit trace id, never zero (W3C Trace Context: all-zero is invalid).
    pub fn trace_id(&mut self) -> u128 {
        let id = u128::from(self.next_u64()) << 64 | u128::from(self.next_u64());
        id.max(1)
    }

    /// A new 64-bit span id, never zero.
    pub fn span_id(&mut self) -> u64 {
        self.next_u64().max(1)
    }

    /// A new `traceparent` starting a trace.
    pub fn new_traceparent(&mut self) -> String {
        let mut trace = (self.next_u64(), self.next_u64());
        if trace == (0, 0) {
            trace.1 = 1;
        }
        let span = self.next_u64().max(1);
        let mut out = String::with_capacity(55);
        out.push_str("00-");
        push_hex(&mut out, trace.0);
        push_hex(&mut out, trace.1);
        out.push('-');
        push_hex(&mut out, span);
        out.push_str("-01");
        out
    }
}

/// Appends `v` as 16 lower-case hex digits (without the formatting machinery: this runs on
/// every request).
fn push_hex(out: &mut String, v: u64) {
    for b in v.to_be_bytes() {
        crate::hex::push_lower(out, b);
    }
}

/// Whether a client-supplied request id may be kept: short, of characters that cannot break
/// a log line or a header, and nothing credential-shaped (a `gwk_` key or a JWT sent in the
/// wrong header): the id is written unscrubbed into every line about the request. Only an id
/// holding what a rule of [`Redactor::text`](crate::observe::redact::Redactor::text) needs is
/// read by it.
pub fn is_acceptable_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/' | b'+' | b'=')
        })
        && !(crate::observe::redact::may_hold_credential(id)
            && crate::observe::redact::Redactor::default().text(id) != id)
}

/// Whether `value` is a valid version-00 `traceparent` (W3C Trace Context §3.2).
pub fn is_valid_traceparent(value: &str) -> bool {
    let b = value.as_bytes();
    let lower_hex = |s: &[u8]| {
        s.iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    };
    let not_zero = |s: &[u8]| s.iter().any(|c| *c != b'0');
    b.len() == 55
        && &b[0..3] == b"00-"
        && b[35] == b'-'
        && b[52] == b'-'
        && lower_hex(&b[3..35])
        && not_zero(&b[3..35])
        && lower_hex(&b[36..52])
        && not_zero(&b[36..52])
        && lower_hex(&b[53..55])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let mut g = IdGenerator::new([7; 32]);
        let a = g.request_id();
        let b = g.request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(is_acceptable_request_id(&a));
        let t = g.new_traceparent();
        assert!(is_valid_traceparent(&t), "{t}");
    }

    #[test]
    fn below_stays_in_range() {
        let mut g = IdGenerator::new([1; 32]);
        let mut seen = [0u32; 4];
        for _ in 0..4000 {
            seen[g.below(4) as usize] += 1;
        }
        assert!(seen.iter().all(|n| *n > 800), "{seen:?}");
    }

    #[test]
    fn a_credential_is_never_kept_as_a_request_id() {
        for id in [
            "gwk_AbCdEf0123456789-_xyzXYZ0123456789abcdefghi",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
            "Bearer+abc123",
            "token=abc123",
            "authorization:abc123",
        ] {
            assert!(!is_acceptable_request_id(id), "{id}");
        }
        for id in [
            "trace:abc",
            "a=b",
            "req-1+2",
            "01HZX3K9Q7",
            "eyJ-not-a-token",
        ] {
            assert!(is_acceptable_request_id(id), "{id}");
        }
    }

    #[test]
    fn client_request_ids() {
        assert!(is_acceptable_request_id("abc-123_x.y"));
        assert!(!is_acceptable_request_id(""));
        assert!(!is_acceptable_request_id("a b"));
        assert!(!is_acceptable_request_id("a\r\nx-injected: 1"));
        assert!(!is_acceptable_request_id(&"a".repeat(129)));
    }

    #[test]
    fn traceparents() {
        assert!(is_valid_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(!is_valid_traceparent(
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
        ));
        assert!(!is_valid_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"
        ));
        assert!(!is_valid_traceparent(
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"
        ));
        assert!(!is_valid_traceparent(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(!is_valid_traceparent("garbage"));
    }
}
