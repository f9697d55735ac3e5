//! The other URLs a successful unsafe request invalidates (RFC 9111 §4.4): those its answer
//! names in `Location` and `Content-Location`. A `POST /orders` answered `201` with
//! `Location: /orders/42` removes what a `GET /orders/42` stored before the order existed (a
//! heuristically cached 404, say), and a `PUT` answered with `Content-Location` removes the
//! representation it replaced.
//!
//! Only a 2xx names URLs, and only URLs of the request's own origin are taken: an answer naming another host must not
//! empty that host's entries (§4.4 forbids it, as a way for one origin to attack another's).
//! The values are read as the client reads them: URI-references resolved against the
//! request's URL (RFC 3986 §5, dot segments removed), fragment dropped.

use url::Url;

/// The response headers that name other URLs, in the order their URLs are returned.
pub const NAMING_HEADERS: [&str; 2] = ["location", "content-location"];

/// A longer value names nothing: no route takes a URL this long.
const MAX_VALUE_BYTES: usize = 8 * 1024;

/// A URL named by an answer, as the router takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedUrl {
    /// The path, percent-encoded as the client would send it.
    pub path: String,
    /// The query without `?`.
    pub query: Option<String>,
}

/// Whether an answer with `status` may name URLs: only a 2xx does. A redirect's `Location`
/// names nothing, since an endpoint that redirects where the client asks (`next=…`) would let
/// any client empty any entry.
pub fn may_name(status: u16) -> bool {
    (200..300).contains(&status)
}

/// The URLs an answer with `status` names on the origin `scheme://host` of a request to
/// `path`, from `values` (of [`NAMING_HEADERS`], as the answer carried them): `Location` of a
/// 201 (the resource created), `Content-Location` of any 2xx (the representation sent); each
/// once, none that is not of that origin.
pub fn named_urls(
    status: u16,
    scheme: &str,
    host: &str,
    path: &str,
    values: &[Option<String>],
) -> Vec<NamedUrl> {
    if !may_name(status) {
        return Vec::new();
    }
    let counted = |header: &str| header != "location" || status == 201;
    let values = NAMING_HEADERS
        .iter()
        .zip(values)
        .filter(|(header, _)| counted(header))
        .filter_map(|(_, value)| value.as_deref());
    let Ok(base) = Url::parse(&format!("{scheme}://{host}{path}")) else {
        return Vec::new();
    };
    if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
        return Vec::new();
    }
    let mut out: Vec<NamedUrl> = Vec::new();
    for value in values {
        let value = value.trim();
        if value.is_empty() || value.len() > MAX_VALUE_BYTES {
            continue;
        }
        let Ok(named) = base.join(value) else {
            continue;
        };
        if named.origin() != base.origin() || named.username() != "" || named.password().is_some() {
            continue;
        }
        let url = NamedUrl {
            path: named.path().to_owned(),
            query: named.query().map(str::to_owned),
        };
        if !out.contains(&url) {
            out.push(url);
        }
    }
    out
}
