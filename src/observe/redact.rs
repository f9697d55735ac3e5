//! Keeping credentials out of everything the gateway writes.
//!
//! Two tools, both built from one [`Redactor`] per configuration version:
//! - [`Redactor::query`] replaces the values of credential query parameters in the access
//!   log's `query` (`token_query`, API-key `query`, `redact_query`, and RFC 6750's
//!   `access_token`), matching names as the gateway's own credential lookup does (percent- and
//!   `+`-decoded) and also in any letter case, every occurrence;
//! - [`Redactor::text`] scrubs a free-text failure line (an exception message, a URL, a
//!   rejected document's error) of anything credential-shaped: URL user-info (with or without
//!   a scheme), credential query parameters, `Authorization`/`Cookie`/API-key header values,
//!   values named as secrets (`password=`, `"client_secret": "…"`), `Bearer`/`Basic`
//!   credentials, JWTs and the gateway's own `gwk_` API keys, percent-encoded or not;
//!
//! and [`super::shown`] shows URLs and member names with what this module finds removed.
//!
//! Redaction errs on the side of removing too much: a failure line that loses a harmless value
//! is better than one that carries a key. It does not guess at secrets by their look alone in
//! a line, though (a request id, a digest and a trace id are long runs of letters and digits):
//! each rule needs a name, a scheme, a separator or a token's own shape. Every rule reads the
//! line once, slices only at ASCII bytes, and leaves a line it finds nothing in uncopied.

use crate::auth::credentials::{form_decode, php_name};
use crate::config::{ApiKeySource, AuthKind, Config};
use crate::headers::CREDENTIAL_HEADERS;
use std::borrow::Cow;

mod shapes;
pub(in crate::observe) use shapes::has_jwt_start;
use shapes::{scheme_spans, token_spans};

/// What replaces a secret.
pub const REDACTED: &str = "REDACTED";

/// Query parameters that always carry credentials (RFC 6750 §2.3).
pub const CREDENTIAL_QUERY_PARAMS: [&str; 1] = ["access_token"];

/// The credential names of one configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Redactor {
    /// Lower-case query parameter names whose values are never written.
    query_names: Vec<String>,
    /// The same names as PHP files them (see `credentials::php_name`), in the same order.
    query_php_names: Vec<Vec<u8>>,
    /// Lower-case header names whose values are never written.
    header_names: Vec<String>,
}

/// Whether `text` without spaces (a path, a header-safe id) holds anything a rule of
/// [`Redactor::text`] can find: a `=`, `:` or `+` (pairs, headers, user-info, `Bearer+…`),
/// a token's start (a JWT header, see [`JWT_STARTS`], or `gwk_`), or `%2`/`%3` (an encoded
/// quote, `:`, `;` or `=`, which the scrub reads decoded). Ordinary paths and ids skip the
/// scrub on it.
pub fn may_hold_credential(text: &str) -> bool {
    text.contains(['=', ':', '+'])
        || has_jwt_start(text.as_bytes())
        || text.contains("gwk_")
        || text.contains("%3")
        || text.contains("%2")
}

impl Default for Redactor {
    /// The names that are credentials in every configuration (for lines written before any
    /// configuration is loaded).
    fn default() -> Redactor {
        Redactor {
            query_names: CREDENTIAL_QUERY_PARAMS.map(str::to_owned).to_vec(),
            query_php_names: CREDENTIAL_QUERY_PARAMS
                .map(|n| php_name(n.as_bytes()))
                .to_vec(),
            header_names: CREDENTIAL_HEADERS.map(str::to_owned).to_vec(),
        }
    }
}

impl Redactor {
    /// Every credential name of `config`: each scheme's `token_query`, API-key `query` and
    /// `header`, and `access_log.redact_query` — of all schemes, not only a route's, since a
    /// request that matches no route may carry them too.
    pub fn new(config: &Config) -> Redactor {
        let mut r = Redactor::default();
        for scheme in &config.auth {
            match &scheme.kind {
                AuthKind::Jwt(j) => {
                    if let Some(q) = &j.token_query {
                        r.add_query(q);
                    }
                }
                AuthKind::ApiKey(k) => match &k.source {
                    ApiKeySource::Query(q) => r.add_query(q),
                    ApiKeySource::Header(h) => {
                        let h = h.to_ascii_lowercase();
                        if !r.header_names.contains(&h) {
                            r.header_names.push(h);
                        }
                    }
                },
            }
        }
        for q in &config.observability.access_log.redact_query {
            r.add_query(q);
        }
        r
    }

    fn add_query(&mut self, name: &str) {
        let lower = name.to_ascii_lowercase();
        if !self.query_names.contains(&lower) {
            self.query_php_names.push(php_name(lower.as_bytes()));
            self.query_names.push(lower);
        }
    }

    /// Whether a raw (still encoded) query parameter name names a credential.
    pub fn is_credential_param(&self, raw_name: &str) -> bool {
        let decoded = if raw_name.contains(['%', '+']) {
            form_decode(raw_name)
                .and_then(|b| String::from_utf8(b).ok())
                .map_or(Cow::Borrowed(raw_name), Cow::Owned)
        } else {
            Cow::Borrowed(raw_name)
        };
        if self
            .query_names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(&decoded) || n.eq_ignore_ascii_case(raw_name))
        {
            return true;
        }
        // A spelling PHP files under a credential's name (`access.token`, `api_key[]`) is read
        // as that credential by the gateway's own lookup, so it is one here too.
        if !decoded.contains(['.', ' ', '[', '_']) {
            return false;
        }
        let filed = php_name(decoded.to_ascii_lowercase().as_bytes());
        self.query_php_names.contains(&filed)
    }

    /// Whether a header's value is a credential (its name in any case).
    pub fn is_credential_header(&self, name: &str) -> bool {
        self.header_names
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
    }

    /// `query` (raw, without its first `?`) with the value of every credential parameter
    /// replaced by [`REDACTED`]; everything else is kept byte for byte. Borrowed when nothing
    /// changed. Parameters are split at `&` and at `;` (which some servers read as `&`), and a
    /// name's leading `?`s are ignored: `/r??api_key=…` reaches the gateway's own lookup as
    /// `api_key`, so it must be redacted as `api_key` too.
    pub fn query<'q>(&self, query: &'q str) -> Cow<'q, str> {
        let sensitive = |segment: &str| {
            segment.split_once('=').is_some_and(|(name, value)| {
                !value.is_empty() && self.is_credential_param(name.trim_start_matches('?'))
            })
        };
        if !query.split(['&', ';']).any(sensitive) {
            return Cow::Borrowed(query);
        }
        let mut out = String::with_capacity(query.len());
        let mut rest = query;
        loop {
            let end = rest.find(['&', ';']).unwrap_or(rest.len());
            let segment = &rest[..end];
            match segment.split_once('=') {
                Some((name, _)) if sensitive(segment) => {
                    out.push_str(name);
                    out.push('=');
                    out.push_str(REDACTED);
                }
                _ => out.push_str(segment),
            }
            let Some(separator) = rest[end..].chars().next() else {
                break;
            };
            out.push(separator);
            rest = &rest[end + 1..];
        }
        Cow::Owned(out)
    }

    /// Every string in `value` (members' names kept) scrubbed as [`Redactor::text`] scrubs a
    /// line. A structured line is scrubbed before it is encoded: in its JSON text a quote or a
    /// newline is an escape, which hides the name before a credential.
    pub fn value(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::String(s) => *s = self.text(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.value(v)),
            Value::Object(members) => members.values_mut().for_each(|v| self.value(v)),
            _ => {}
        }
    }

    /// A free-text line with everything credential-shaped replaced by [`REDACTED`].
    ///
    /// A line may quote a URL or a document percent-encoded (a `redirect_uri` holding
    /// `https%3A%2F%2Fuser%3Apass%40host`, `token%3D…`, `Bearer%20…`): when decoding it (up to
    /// [`DECODE_ROUNDS`] times, for text encoded twice) shows a credential the line as written
    /// hides, the line is written decoded, with that credential redacted. Only bytes that
    /// change nothing in a JSON string are decoded (printable ASCII but `"` and `\`), so a
    /// JSON line stays valid; a line whose decoded form shows nothing is written as it was.
    pub fn text(&self, line: &str) -> String {
        let mut out = self.scrub(line).into_owned();
        let mut decoded = percent_decoded(&out);
        for _ in 0..DECODE_ROUNDS {
            let Some(view) = decoded else { break };
            let scrubbed = self.scrub(&view);
            decoded = percent_decoded(&scrubbed);
            if let Cow::Owned(changed) = scrubbed {
                out = changed;
            }
        }
        out
    }

    /// One pass of every rule over `line` as written; copied only where a rule replaced
    /// something.
    fn scrub<'l>(&self, line: &'l str) -> Cow<'l, str> {
        let spans = userinfo_spans(line);
        let line = replace(Cow::Borrowed(line), spans);
        let spans = self.pair_spans(&line);
        let line = replace(line, spans);
        let spans = self.header_spans(&line);
        let line = replace(line, spans);
        let spans = scheme_spans(&line);
        let line = replace(line, spans);
        let spans = token_spans(&line);
        replace(line, spans)
    }

    /// Values of named credentials, whether the configuration names them (credential query
    /// parameters and headers) or every program does (see [`is_secret_word`]):
    /// - `name=value`, `name="value"` (an unquoted value ends at a separator);
    /// - `"name": "value"` and `'name': value`, JSON-ish text, where the name is quoted, also
    ///   with its quotes percent-encoded (`%22password%22:%22…%22`: the scrub reads `%3A`
    ///   decoded, but never a quote, see [`percent_decoded`]). An unquoted `name: value` is one
    ///   only for a name no prose uses otherwise ([`is_password_word`]): prose says `malformed
    ///   token: bad base64`, and a path says `settings.admin.token_secret: must…` (header
    ///   lines are read by `header_spans`).
    fn pair_spans(&self, line: &str) -> Vec<(usize, usize)> {
        let b = line.as_bytes();
        let mut spans = Vec::new();
        // Most lines hold neither an `=` nor a `:`.
        if !line.contains(['=', ':']) {
            return spans;
        }
        // Each value ends at a stop byte or a closing quote, a separator inside a value found
        // already starts no other, and a name never spans a separator: one pass over the line.
        let mut covered = 0;
        for sep in 0..b.len() {
            let colon = b[sep] == b':';
            if sep < covered || !(colon || b[sep] == b'=') {
                continue;
            }
            let mut name_end = sep;
            let mut quote: &[u8] = b"";
            if colon {
                while name_end > 0 && matches!(b[name_end - 1], b' ' | b'\t') {
                    name_end -= 1;
                }
                quote = quote_ending(b, name_end);
                name_end -= quote.len();
            }
            let mut start = b[..name_end]
                .iter()
                .rposition(|c| !is_name_byte(*c))
                .map_or(0, |p| p + 1);
            // `%` and digits are name bytes: an encoded opening quote is read as the name's.
            let quoted_name = !quote.is_empty()
                && (b[..start].ends_with(quote)
                    || (quote.len() > 1 && b[start..name_end].starts_with(quote)));
            if quoted_name && !b[..start].ends_with(quote) {
                start += quote.len();
            }
            let name = &line[start..name_end];
            let credential = if colon {
                (quoted_name && is_secret_word(name))
                    || (quote.is_empty() && is_password_word(name))
            } else {
                !name.is_empty()
                    && (self.is_credential_param(name)
                        || self.is_credential_header(name)
                        || is_secret_word(name))
            };
            if !credential {
                continue;
            }
            let from = skip_spaces(b, sep + 1);
            let encoded_quote = ["%22", "%27"]
                .into_iter()
                .find(|q| b[from.min(b.len())..].starts_with(q.as_bytes()));
            let (from, end) = match (b.get(from), encoded_quote) {
                (Some(&q @ (b'"' | b'\'')), _) => (from + 1, closing(b, from + 1, q)),
                (_, Some(q)) => {
                    let inside = from + q.len();
                    let end = line[inside..].find(q).map_or(b.len(), |p| inside + p);
                    (inside, end)
                }
                _ => (from, value_end(b, from, b"& \t\r\n\"',;#)}]<>\\")),
            };
            if end > from && !line[from..end].eq_ignore_ascii_case(REDACTED) {
                spans.push((from, end));
            }
            covered = end.max(sep + 1);
        }
        spans
    }

    /// Values after a credential header's name: `authorization: …`, `"cookie":"…"`.
    fn header_spans(&self, line: &str) -> Vec<(usize, usize)> {
        let b = line.as_bytes();
        let mut spans = Vec::new();
        if !b.iter().any(|c| matches!(c, b':' | b'=')) {
            return spans;
        }
        let lower = line.to_ascii_lowercase();
        for name in &self.header_names {
            // A name inside a value already found starts no other (one pass per name).
            let mut covered = 0;
            for (at, _) in lower.match_indices(name.as_str()) {
                if at < covered {
                    continue;
                }
                let mut i = at + name.len();
                if b.get(i) == Some(&b'"') {
                    i += 1;
                }
                i = skip_spaces(b, i);
                if !matches!(b.get(i), Some(b':' | b'=')) {
                    continue;
                }
                i = skip_spaces(b, i + 1);
                let (start, end) = if b.get(i) == Some(&b'"') {
                    (i + 1, closing(b, i + 1, b'"'))
                } else {
                    (i, value_end(b, i, b"\r\n\"\\"))
                };
                if end > start {
                    spans.push((start, end));
                    covered = end;
                }
            }
        }
        spans
    }
}

/// Bytes of a parameter or header name (anything but separators and quotes).
fn is_name_byte(c: u8) -> bool {
    !c.is_ascii_whitespace() && !b"&?;,=\"'{}()[]<>:/#\\".contains(&c)
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i
}

/// The first position at or after `from` holding one of `stops` (or the end).
fn value_end(b: &[u8], from: usize, stops: &[u8]) -> usize {
    b[from.min(b.len())..]
        .iter()
        .position(|c| stops.contains(c))
        .map_or(b.len(), |p| from + p)
}

/// The closing `quote` of a string starting at `from` (backslash escapes skipped), or the end.
fn closing(b: &[u8], from: usize, quote: u8) -> usize {
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            c if c == quote => return i,
            _ => i += 1,
        }
    }
    b.len()
}

/// The quote ending at `end`: `"`, `'`, or one percent-encoded (`%22`, `%27`); empty when none.
fn quote_ending(b: &[u8], end: usize) -> &[u8] {
    let before = &b[..end.min(b.len())];
    if matches!(before.last(), Some(b'"' | b'\'')) {
        &before[before.len() - 1..]
    } else if before.ends_with(b"%22") || before.ends_with(b"%27") {
        &before[before.len() - 3..]
    } else {
        b""
    }
}

/// Whether a name is a password's even unquoted, before a `:` (`password: …`,
/// `db_passwd:…`): the last word is `password`, `passwd` or `passphrase`, or the name is
/// `pwd`; no prose names anything else so.
fn is_password_word(name: &str) -> bool {
    let last = name
        .rfind(['_', '-', '.'])
        .map_or(name, |at| &name[at + 1..]);
    ["password", "passwd", "passphrase"]
        .iter()
        .any(|w| w.eq_ignore_ascii_case(last))
        || name.eq_ignore_ascii_case("pwd")
}

/// Whether a name says its value is a secret in any program's text, whatever the
/// configuration: `password`, `passwd`, `pwd`, `secret`, `token`, `key`, `apikey`,
/// `signature`, or a name whose last `_`/`-`/`.`-separated word is one of `password`,
/// `passwd`, `secret`, `token`, `key` or `apikey` (`client_secret`, `refresh_token`,
/// `api_key`, `X-Api-Key`, `private.key`); in any letter case.
fn is_secret_word(name: &str) -> bool {
    const WHOLE: [&str; 3] = ["pwd", "signature", "sig"];
    const LAST: [&str; 6] = ["password", "passwd", "secret", "token", "key", "apikey"];
    let last = name
        .rfind(['_', '-', '.'])
        .map_or(name, |at| &name[at + 1..]);
    LAST.iter().any(|w| w.eq_ignore_ascii_case(last))
        || WHOLE.iter().any(|w| w.eq_ignore_ascii_case(name))
}

/// User-info of URLs: `https://user:pass@host` → `https://REDACTED@host`.
///
/// Two rules. After `://`, anything before the authority's last `@` (a user name alone can be
/// a token). And in any word (a run of bytes without spaces or quotes), everything before its
/// last `@` when that holds a `:`: a password without a scheme (`user:pass@host`), after a
/// scheme parsers read anyway (`https:/user:pass@host`, `https:user:pass@host`), or holding a
/// `/` that ends the authority early (`https://user:pa/ss@host`). A bare `user@host` is an
/// address, not a credential, and is kept, as is `mailto:bob@host`. Runs are disjoint and
/// each is read once.
fn userinfo_spans(line: &str) -> Vec<(usize, usize)> {
    let b = line.as_bytes();
    let mut spans = Vec::new();
    if !line.contains('@') {
        return spans;
    }
    for (at, _) in line.match_indices("://") {
        let start = at + 3;
        let end = value_end(b, start, b"/?# \t\r\n\"'<>\\");
        if let Some(last_at) = b[start..end].iter().rposition(|c| *c == b'@') {
            if last_at > 0 {
                spans.push((start, start + last_at));
            }
        }
    }
    let mut i = 0;
    while i < b.len() {
        let end = value_end(b, i, b" \t\r\n\"'<>\\");
        let word = &b[i..end];
        if let Some(last_at) = word.iter().rposition(|c| *c == b'@') {
            // A scheme and the slashes after it are not user-info; nor is `mailto:`, whose
            // `bob@host` is an address.
            let mailto = word.len() > 7 && word[..7].eq_ignore_ascii_case(b"mailto:");
            let scheme = word
                .iter()
                .position(|c| !(c.is_ascii_alphanumeric() || b"+-.".contains(c)))
                .filter(|&p| {
                    p > 0 && word[p] == b':' && matches!(word.get(p + 1), Some(b'/' | b'\\'))
                })
                .map_or(if mailto { 7 } else { 0 }, |p| {
                    p + 1
                        + word[p + 1..]
                            .iter()
                            .take_while(|c| matches!(c, b'/' | b'\\'))
                            .count()
                });
            if last_at > scheme && word[scheme..last_at].contains(&b':') {
                spans.push((i + scheme, i + last_at));
            }
        }
        i = end + 1;
    }
    spans
}

/// `line` with each span (byte ranges at ASCII boundaries, in any order, maybe overlapping)
/// replaced by [`REDACTED`]; as it was (no copy) without any.
pub(super) fn replace<'l>(line: Cow<'l, str>, mut spans: Vec<(usize, usize)>) -> Cow<'l, str> {
    if spans.is_empty() {
        return line;
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(line.len());
    let mut at = 0;
    for (start, end) in spans {
        if start < at {
            // Overlaps the span just replaced: extend it.
            at = at.max(end);
            continue;
        }
        out.push_str(line.get(at..start).unwrap_or(""));
        out.push_str(REDACTED);
        at = end;
    }
    out.push_str(line.get(at..).unwrap_or(""));
    Cow::Owned(out)
}

/// How many times [`Redactor::text`] decodes a line to look for credentials it hides.
pub const DECODE_ROUNDS: usize = 2;

/// `text` with each `%XX` that encodes printable ASCII other than `"` and `\` decoded (what
/// a JSON string holds as it is); `None` when there is none.
fn percent_decoded(text: &str) -> Option<String> {
    if !text.contains('%') {
        return None;
    }
    let b = text.as_bytes();
    let hex = |i: usize| b.get(i).and_then(|c| (*c as char).to_digit(16));
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => (h * 16 + l) as u8,
            _ => 0,
        };
        if (c.is_ascii_graphic() || c == b' ') && c != b'"' && c != b'\\' {
            out.push(c);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    // Only ASCII bytes were replaced, by ASCII bytes: still UTF-8.
    (out.len() < b.len()).then(|| String::from_utf8(out).ok())?
}
