//! Header-name rules shared by configuration validation and request processing.

/// Header edits for one message: removals first, then sets (which replace).
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct HeaderEdits {
    pub remove: Vec<String>,
    pub set: Vec<(String, String)>,
}

/// Hop-by-hop headers (RFC 9110 §7.6.1 and the classic list proxies strip): meaningful only for
/// one connection, so never forwarded in either direction.
pub const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Request headers that carry credentials whatever the configuration says: never logged, never
/// an override header, scrubbed from failure lines. `cf-access-client-secret` is a Cloudflare
/// Access service token's secret.
pub const CREDENTIAL_HEADERS: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "cf-access-client-secret",
];

/// Headers the gateway derives itself; configuration may not set or remove them.
pub const GATEWAY_OWNED: [&str; 8] = [
    "host",
    "content-length",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "cf-connecting-ip",
    "traceparent",
];

/// Whether `name` is an RFC 9110 token (a valid header name).
pub fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `value` can be sent as a header value without splitting or truncating it.
pub fn is_safe_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

pub fn is_hop_by_hop(lower_name: &str) -> bool {
    HOP_BY_HOP.contains(&lower_name)
}

/// The CORS response headers, which the gateway alone sets on a route with a CORS policy.
pub const CORS_RESPONSE_HEADERS: [&str; 6] = [
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-expose-headers",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
];

/// The header names listed in a `Connection` header value, lower-cased.
pub fn connection_tokens(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| is_token(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert!(is_token("x-api-key"));
        assert!(!is_token("x api"));
        assert!(!is_token(""));
        assert!(!is_token("x:y"));
    }

    #[test]
    fn values() {
        assert!(is_safe_value("a b\tc"));
        assert!(!is_safe_value("a\r\nb"));
        assert!(!is_safe_value("a\0"));
    }

    #[test]
    fn connection_lists() {
        let t: Vec<_> = connection_tokens(" X-Foo , close,,bad header").collect();
        assert_eq!(t, ["x-foo", "close"]);
    }
}
