//! The rules of [`super::Redactor::text`] that find a credential by its own shape rather than
//! by a name: authentication schemes (`Bearer …`) and tokens (JWTs, the gateway's `gwk_` keys).

use super::REDACTED;

/// How the base64url of a JSON object's first three bytes starts, when those are `{"` or `{`
/// and whitespace (what a JWT's header is): `{"` gives `eyJ`; `{` and a space, tab, line feed
/// or carriage return give `eyA`, `ewk`, `ewo` or `ew0`.
pub const JWT_STARTS: [&[u8; 3]; 5] = [b"eyJ", b"eyA", b"ewk", b"ewo", b"ew0"];

pub(in crate::observe) fn has_jwt_start(b: &[u8]) -> bool {
    b.windows(3).any(|w| JWT_STARTS.iter().any(|s| w == *s))
}

fn is_token68_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~+/=".contains(&c)
}

/// Credentials after an authentication scheme, in any letter case: `Bearer abc…`,
/// `basic dXNlcjpw…`, and after the `Token` and `ApiKey` schemes some APIs use, a credential
/// of at least 16 bytes holding a digit (`Token 9944b09…`; `the token is expired` is prose).
/// A Basic credential is one unless it is a word of letters whose base64 decoding holds no
/// `:` (`basic auth`, `Basic realm`): `user:pass` always encodes to one that does.
pub(super) fn scheme_spans(line: &str) -> Vec<(usize, usize)> {
    let b = line.as_bytes();
    let mut spans = Vec::new();
    let mut covered = 0;
    for at in 0..b.len() {
        // A word (`forbearer`), not a scheme.
        if at < covered
            || !matches!(b[at] | 0x20, b'b' | b't' | b'a')
            || (at > 0 && b[at - 1].is_ascii_alphanumeric())
        {
            continue;
        }
        let Some(scheme) = ["bearer", "basic", "token", "apikey"]
            .into_iter()
            .find(|s| {
                b.get(at..at + s.len())
                    .is_some_and(|w| w.eq_ignore_ascii_case(s.as_bytes()))
            })
        else {
            continue;
        };
        // After the scheme, spaces or tabs, or a form-encoded space (`Bearer+…`; `%20` is
        // read decoded, see `Redactor::text`).
        let after = at + scheme.len();
        let start = after
            + b[after..]
                .iter()
                .take_while(|c| matches!(c, b' ' | b'\t' | b'+'))
                .count();
        if start == after {
            continue;
        }
        let end = start
            + b[start..]
                .iter()
                .take_while(|c| is_token68_byte(**c))
                .count();
        let value = &b[start..end];
        let credential = match scheme {
            "bearer" => true,
            "basic" => !value.iter().all(u8::is_ascii_alphabetic) || decodes_to_colon(value),
            _ => value.len() >= 16 && value.iter().any(u8::is_ascii_digit),
        };
        if credential && end > start && !line[start..end].eq_ignore_ascii_case(REDACTED) {
            spans.push((start, end));
        }
        covered = end;
    }
    spans
}

/// The value of a base64 (or base64url) digit.
fn b64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

/// Whether the base64 digits `digits` decode to bytes holding a `:`, reading whole bytes only
/// and stopping at the first other byte. Hand-rolled rather than `base64ct`'s decoder, which
/// refuses what is not canonical base64: this asks of any text only where a `:` would be.
fn decodes_to_colon(digits: &[u8]) -> bool {
    let (mut bits, mut count) = (0u32, 0);
    for v in digits.iter().map_while(|c| b64_value(*c)) {
        bits = (bits << 6 | u32::from(v)) & 0xFFFF;
        count += 6;
        if count >= 8 {
            count -= 8;
            if (bits >> count) & 0xFF == u32::from(b':') {
                return true;
            }
        }
    }
    false
}

/// Whether a JWT starts at `at`: `eyJ` (`{"`), or base64url whose first bytes decode to `{`
/// then whitespace then whitespace or `"` (a header written with spaces or lines).
fn jwt_header_at(b: &[u8], at: usize) -> bool {
    if b[at..].starts_with(b"eyJ") {
        return true;
    }
    let digit = |i: usize| b.get(at + i).and_then(|c| b64_value(*c));
    let (Some(v0), Some(v1), Some(v2), Some(v3)) = (digit(0), digit(1), digit(2), digit(3)) else {
        return false;
    };
    let v = [v0, v1, v2, v3];
    let bytes = [
        v[0] << 2 | v[1] >> 4,
        (v[1] & 0xF) << 4 | v[2] >> 2,
        (v[2] & 0x3) << 6 | v[3],
    ];
    let space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r');
    bytes[0] == b'{' && space(bytes[1]) && (space(bytes[2]) || bytes[2] == b'"')
}

fn is_b64url_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// Credential-shaped tokens wherever they appear: JWTs (a JSON header's base64url, see
/// [`jwt_header_at`], not inside a word, followed by `.`: a token cut short after its header
/// is still one) and the gateway's API keys (`gwk_…`, whose prefix is
/// kept so the line still says what kind of secret was there). A match inside a token already
/// found starts no other, so the scan is linear in the line.
pub(super) fn token_spans(line: &str) -> Vec<(usize, usize)> {
    let b = line.as_bytes();
    let run = |from: usize| from + b[from..].iter().take_while(|c| is_b64url_byte(**c)).count();
    let mut spans = Vec::new();
    let mut covered = 0;
    for (at, _) in line.match_indices('e') {
        // Inside a word (`keyJar.txt`) it starts no token.
        if at < covered || (at > 0 && b[at - 1].is_ascii_alphanumeric()) || !jwt_header_at(b, at) {
            continue;
        }
        let mut end = run(at);
        covered = end;
        if b.get(end) != Some(&b'.') {
            continue;
        }
        while b.get(end) == Some(&b'.') {
            end = run(end + 1);
        }
        covered = end;
        spans.push((at, end));
    }
    let mut covered = 0;
    for (at, _) in line.match_indices(crate::auth::api_key::KEY_PREFIX) {
        if at < covered {
            continue;
        }
        let start = at + crate::auth::api_key::KEY_PREFIX.len();
        let end = run(start);
        covered = end;
        if end > start && &line[start..end] != REDACTED {
            spans.push((start, end));
        }
    }
    spans
}
