//! Targeted cache control (RFC 9213): `CDN-Cache-Control`, and `Cloudflare-CDN-Cache-Control`
//! as the more specific field for this platform.
//!
//! A targeted field is a Structured Fields Dictionary (RFC 8941 §3.2) of cache directives. The
//! gateway's target list is `Cloudflare-CDN-Cache-Control`, then `CDN-Cache-Control`: the first
//! with a valid, non-empty value alone decides the gateway's storability and freshness, and
//! `Cache-Control` and `Expires` are then ignored for that purpose (RFC 9213 §2.1) — they only
//! travel on to the client. A field that fails to parse, or is empty, is ignored as if absent.
//! Targeted fields never reach the client: they are addressed to the gateway.
//!
//! Directive values: a Boolean (`private`, `no-store`, `?1`) sets a flag, `?0` leaves it unset;
//! an Integer is a duration (negative or non-integer durations read as 0, as in
//! `Cache-Control`); a String, Token or Inner List of them after `no-cache`/`private` is the
//! field-name list of the qualified form. Parameters are ignored; unknown directives too.

use super::control::{field_name_list, CacheControl, DELTA_SECONDS_MAX};

/// The targeted fields the gateway obeys, most specific first (lower-case names).
pub const TARGET_LIST: [&str; 2] = ["cloudflare-cdn-cache-control", "cdn-cache-control"];

/// One member value of a Dictionary, as far as cache directives need it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Bool(bool),
    Integer(i64),
    /// A String or a Token.
    Text(String),
    /// An Inner List of Strings/Tokens (other items are dropped).
    List(Vec<String>),
    /// A Decimal or Byte Sequence: valid syntax, no meaning for a directive.
    Other,
}

/// The directives of a targeted field value; `None` when it is empty or not a valid Dictionary.
pub fn parse(value: &str) -> Option<CacheControl> {
    let members = dictionary(value)?;
    if members.is_empty() {
        return None;
    }
    let mut cc = CacheControl::default();
    for (key, value) in members {
        let duration = || match &value {
            Value::Integer(n) => Some(u64::try_from(*n).unwrap_or(0).min(DELTA_SECONDS_MAX)),
            _ => Some(0),
        };
        let flag = matches!(value, Value::Bool(true));
        match key.as_str() {
            "no-store" => cc.no_store |= !matches!(value, Value::Bool(false)),
            "no-cache" | "private" => {
                let fields = match &value {
                    Value::Text(t) => field_name_list(t.split(',')),
                    Value::List(l) => field_name_list(l.iter().map(String::as_str)),
                    Value::Bool(false) => continue,
                    _ => None,
                };
                let (flag_ref, list) = if key == "no-cache" {
                    (&mut cc.no_cache, &mut cc.no_cache_fields)
                } else {
                    (&mut cc.private, &mut cc.private_fields)
                };
                match fields {
                    Some(f) => list.extend(f),
                    None => *flag_ref = true,
                }
            }
            "public" => cc.public |= flag,
            "must-revalidate" => cc.must_revalidate |= !matches!(value, Value::Bool(false)),
            "proxy-revalidate" => cc.proxy_revalidate |= !matches!(value, Value::Bool(false)),
            "no-transform" => cc.no_transform |= !matches!(value, Value::Bool(false)),
            "immutable" => cc.immutable |= flag,
            "s-maxage" => cc.s_maxage = duration(),
            "max-age" => cc.max_age = duration(),
            "stale-if-error" => cc.stale_if_error = duration(),
            "stale-while-revalidate" => cc.stale_while_revalidate = duration(),
            _ => {}
        }
    }
    if cc.no_cache {
        cc.no_cache_fields.clear();
    }
    if cc.private {
        cc.private_fields.clear();
    }
    Some(cc)
}

/// Selects the targeted field that decides: the first of [`TARGET_LIST`] whose value (in
/// `values`, same order) is valid and non-empty, with its index.
pub fn select(values: [Option<&str>; 2]) -> Option<(usize, CacheControl)> {
    values
        .iter()
        .enumerate()
        .find_map(|(i, v)| v.and_then(parse).map(|cc| (i, cc)))
}

/// RFC 8941 §4.2.2 (Dictionary), strictly: any syntax error rejects the whole field. Duplicate
/// keys: the last one wins (RFC 8941 §3.2).
fn dictionary(input: &str) -> Option<Vec<(String, Value)>> {
    let mut p = Parser {
        b: input.as_bytes(),
        i: 0,
    };
    p.skip_sp();
    let mut out: Vec<(String, Value)> = Vec::new();
    while !p.done() {
        let key = p.key()?;
        let value = if p.eat(b'=') {
            p.item_or_inner_list()?
        } else {
            p.parameters()?;
            Value::Bool(true)
        };
        out.retain(|(k, _)| *k != key);
        out.push((key, value));
        p.skip_ows();
        if p.done() {
            break;
        }
        if !p.eat(b',') {
            return None;
        }
        p.skip_ows();
        if p.done() {
            return None; // a trailing comma
        }
    }
    Some(out)
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn done(&self) -> bool {
        self.i >= self.b.len()
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn skip_sp(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }
    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// `key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )`
    fn key(&mut self) -> Option<String> {
        let start = self.i;
        match self.peek() {
            Some(c) if c.is_ascii_lowercase() || c == b'*' => self.i += 1,
            _ => return None,
        }
        while let Some(c) = self.peek() {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-.*".contains(&c) {
                self.i += 1;
            } else {
                break;
            }
        }
        std::str::from_utf8(self.b.get(start..self.i)?)
            .ok()
            .map(str::to_owned)
    }

    fn parameters(&mut self) -> Option<()> {
        while self.eat(b';') {
            self.skip_sp();
            self.key()?;
            if self.eat(b'=') {
                self.bare_item()?;
            }
        }
        Some(())
    }

    fn item_or_inner_list(&mut self) -> Option<Value> {
        if self.eat(b'(') {
            let mut items = Vec::new();
            loop {
                self.skip_sp();
                if self.eat(b')') {
                    break;
                }
                if let Value::Text(t) = self.bare_item()? {
                    items.push(t);
                }
                self.parameters()?;
                if !matches!(self.peek(), Some(b' ' | b')')) {
                    return None;
                }
            }
            self.parameters()?;
            return Some(Value::List(items));
        }
        let v = self.bare_item()?;
        self.parameters()?;
        Some(v)
    }

    fn bare_item(&mut self) -> Option<Value> {
        match self.peek()? {
            b'-' | b'0'..=b'9' => self.number(),
            b'"' => self.string().map(Value::Text),
            b'?' => {
                self.i += 1;
                let v = match self.peek()? {
                    b'0' => false,
                    b'1' => true,
                    _ => return None,
                };
                self.i += 1;
                Some(Value::Bool(v))
            }
            b':' => {
                self.i += 1;
                while let Some(c) = self.peek() {
                    self.i += 1;
                    if c == b':' {
                        return Some(Value::Other);
                    }
                    if !(c.is_ascii_alphanumeric() || b"+/=".contains(&c)) {
                        return None;
                    }
                }
                None
            }
            c if c.is_ascii_alphabetic() || c == b'*' => {
                let start = self.i;
                while let Some(c) = self.peek() {
                    if c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&c) {
                        self.i += 1;
                    } else {
                        break;
                    }
                }
                let t = std::str::from_utf8(self.b.get(start..self.i)?).ok()?;
                Some(Value::Text(t.to_owned()))
            }
            _ => None,
        }
    }

    fn number(&mut self) -> Option<Value> {
        let negative = self.eat(b'-');
        let start = self.i;
        let mut dot = None;
        while let Some(c) = self.peek() {
            if c.is_ascii_digit() {
                self.i += 1;
            } else if c == b'.' && dot.is_none() {
                dot = Some(self.i);
                self.i += 1;
            } else {
                break;
            }
        }
        let digits = self.b.get(start..self.i)?;
        match dot {
            None => {
                if digits.is_empty() || digits.len() > 15 {
                    return None;
                }
                let n: i64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
                Some(Value::Integer(if negative { -n } else { n }))
            }
            Some(d) => {
                let int_len = d - start;
                let frac_len = self.i - d - 1;
                if int_len == 0 || int_len > 12 || frac_len == 0 || frac_len > 3 {
                    return None;
                }
                Some(Value::Other)
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        self.i += 1; // the opening quote
        let mut out = String::new();
        loop {
            let c = self.peek()?;
            self.i += 1;
            match c {
                b'\\' => {
                    let next = self.peek()?;
                    if next != b'"' && next != b'\\' {
                        return None;
                    }
                    self.i += 1;
                    out.push(char::from(next));
                }
                b'"' => return Some(out),
                0x20..=0x7e => out.push(char::from(c)),
                _ => return None,
            }
        }
    }
}
