//! How error paths and log lines show what may hold a credential: a URL (user-info, query
//! and fragment dropped) and an object's member name (a pasted credential cut or replaced).

use super::redact::{has_jwt_start, replace, Redactor, REDACTED};
use std::borrow::Cow;

/// A URL as a line may quote it: any user-info, and the query and fragment, replaced by
/// [`REDACTED`] (`https://REDACTED@host/p?REDACTED`). Written for text that may not parse:
/// URL parsers read user-info after any number of slashes for http(s) (`https:/u:p@h`,
/// `https:///u:p@h`), or after none, and a password holding `/`, `?` or `#` would end the
/// authority early; so everything before the text's last `@` is user-info here (a path or
/// query holding an `@` loses more than it needs to, never a password).
pub fn shown_url(text: &str) -> String {
    let scheme_end = text
        .find(':')
        .filter(|&i| {
            let scheme = text.as_bytes();
            i > 0
                && scheme[0].is_ascii_alphabetic()
                && scheme[..i]
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c))
        })
        .map_or(0, |i| i + 1);
    let slashes = text[scheme_end..]
        .bytes()
        .take_while(|c| matches!(c, b'/' | b'\\'))
        .count();
    let (prefix, rest) = text.split_at(scheme_end + slashes);
    // Every split is at an ASCII byte, so at a character boundary.
    let (userinfo, rest) = match rest.rfind('@') {
        Some(at) => (format!("{REDACTED}@"), &rest[at + 1..]),
        None => (String::new(), rest),
    };
    let rest = match rest.find(['?', '#']) {
        Some(at) => format!("{}{REDACTED}", &rest[..=at]),
        None => rest.to_owned(),
    };
    format!("{prefix}{userinfo}{rest}")
}

/// The most bytes of a member name an error's path shows.
pub const SHOWN_NAME_MAX: usize = 64;

/// A member name (an object's key) as an error's path shows it. A name is where a pasted
/// credential hides (`"request_headers": {"set": {"Authorization: Bearer eyJ…": …}}`), and the
/// path is carried by the refusal's answer, the log line and the health endpoint. Shown:
/// - cut before the first `=`, or `:` not starting `://`, where a pasted `Name: value` or
///   `name=value` starts its value (`Authorization…`), and after [`SHOWN_NAME_MAX`] bytes,
///   `…` marking the cut;
/// - with what [`Redactor::text`] finds credential-shaped in the rest replaced (`Bearer
///   REDACTED`, a JWT, a `gwk_` key), and any run of letters and digits a person would not
///   write (`sk_live_REDACTED`, see [`is_opaque`]): most keys are one.
///
/// Borrowed when shown as it is: every ordinary name.
pub fn shown_name(name: &str) -> Cow<'_, str> {
    let simple = name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'));
    // The cheap test first: ordinary names are read once, every configuration load.
    if simple
        && name.len() <= SHOWN_NAME_MAX
        && !name.contains(crate::auth::api_key::KEY_PREFIX)
        && !has_jwt_start(name.as_bytes())
        && opaque_runs(name).is_empty()
    {
        return Cow::Borrowed(name);
    }
    let b = name.as_bytes();
    let value_at = (0..b.len())
        .find(|&i| b[i] == b'=' || (b[i] == b':' && !b[i + 1..].starts_with(b"//")))
        .unwrap_or(b.len());
    let cut = super::metrics::cut(&name[..value_at], SHOWN_NAME_MAX);
    let scrubbed = Redactor::default().text(cut);
    let mut shown = replace(Cow::Borrowed(&scrubbed), opaque_runs(&scrubbed)).into_owned();
    if cut.len() < name.len() {
        shown.push('…');
    }
    if shown == name {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(shown)
    }
}

/// How many letters and digits in a row, mixing both, make a name's run a key (see
/// [`shown_name`]).
pub const OPAQUE_RUN: usize = 24;

/// The shortest run of letters and digits [`is_opaque`] reads as a key by its look.
pub const SHORT_OPAQUE_RUN: usize = 16;

/// Whether a run of letters and digits is a key rather than a word: [`OPAQUE_RUN`] or more
/// mixing both; or [`SHORT_OPAQUE_RUN`] or more mixing both that are hex digits only
/// (`a1b2c3d4e5f60718`), or that change between lower case, upper case and digit at least
/// every third byte, as random text does (`4eC39HqLyjWDarjt`) and names do not
/// (`sha256WithRSAEncryption`).
fn is_opaque(run: &[u8]) -> bool {
    let mixed = run.iter().any(u8::is_ascii_digit) && run.iter().any(u8::is_ascii_alphabetic);
    if !mixed || run.len() < SHORT_OPAQUE_RUN {
        return false;
    }
    let class = |c: &u8| (c.is_ascii_digit(), c.is_ascii_uppercase());
    let changes = run
        .windows(2)
        .filter(|w| class(&w[0]) != class(&w[1]))
        .count();
    run.len() >= OPAQUE_RUN || run.iter().all(u8::is_ascii_hexdigit) || changes * 3 >= run.len()
}

fn opaque_runs(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let len = b[i..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        if is_opaque(&b[i..i + len]) {
            spans.push((i, i + len));
        }
        i += len.max(1);
    }
    spans
}
