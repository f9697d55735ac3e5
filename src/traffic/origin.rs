//! Browser origins (`scheme://host[:port]`) for CORS: the patterns a policy may list, and
//! matching a request's `Origin` against them.
//!
//! Patterns are exact origins as browsers serialise them (lower-case, no path, no default
//! port), or `scheme://*.domain[:port]`, which matches any subdomain at a label boundary —
//! never the domain itself, never `evil-domain` or `domain.evil.com`. A request's `Origin` is
//! only ever compared, never reflected unless it matched.

/// One entry of a CORS policy's `origins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// Compared byte for byte with the request's `Origin`.
    Exact(String),
    /// `https://*.example.com`: `scheme`, `.example.com`, and the port when one is written.
    Subdomain {
        scheme: String,
        suffix: String,
        port: Option<u16>,
    },
}

/// The parts of a serialised origin: scheme, host and port as written. `None` when the text
/// is not of the form `scheme://host[:port]`.
fn split(text: &str) -> Option<(&str, &str, Option<&str>)> {
    let (scheme, rest) = text.split_once("://")?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', '\\']) {
        return None;
    }
    if let Some(v6) = rest.strip_prefix('[') {
        let (inside, after) = v6.split_once(']')?;
        let host = rest.get(..inside.len() + 2)?;
        return match after {
            "" => Some((scheme, host, None)),
            _ => Some((scheme, host, Some(after.strip_prefix(':')?))),
        };
    }
    match rest.rsplit_once(':') {
        Some((host, port)) => Some((scheme, host, Some(port))),
        None => Some((scheme, rest, None)),
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" {
        443
    } else {
        80
    }
}

/// A port as browsers write it: decimal, no leading zero, 1–65535.
fn port_number(text: &str) -> Option<u16> {
    if text.is_empty() || text.starts_with('0') || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|p| *p > 0)
}

/// DNS labels as browsers serialise them: lower-case letters, digits, `-` and `_`, 1–63
/// characters each, not starting or ending with `-`.
fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        })
}

/// Domains under which anyone can have a name of their own: hosting platforms that hand out
/// subdomains, and dynamic-DNS services. A wildcard over one would allow any of their
/// customers' pages. Not the whole Public Suffix List (which would weigh more than the rest of
/// the module's configuration code): the names an operator is likely to write.
const SHARED_SUFFIXES: [&str; 40] = [
    "github.io",
    "gitlab.io",
    "pages.dev",
    "workers.dev",
    "trycloudflare.com",
    "netlify.app",
    "vercel.app",
    "now.sh",
    "herokuapp.com",
    "herokudns.com",
    "onrender.com",
    "fly.dev",
    "web.app",
    "firebaseapp.com",
    "appspot.com",
    "run.app",
    "cloudfunctions.net",
    "azurewebsites.net",
    "azurestaticapps.net",
    "azureedge.net",
    "cloudapp.net",
    "cloudfront.net",
    "amazonaws.com",
    "elasticbeanstalk.com",
    "amplifyapp.com",
    "blogspot.com",
    "wordpress.com",
    "myshopify.com",
    "readthedocs.io",
    "surge.sh",
    "glitch.me",
    "repl.co",
    "replit.dev",
    "ngrok.io",
    "ngrok-free.app",
    "ngrok.app",
    "duckdns.org",
    "ddns.net",
    "no-ip.org",
    "dyndns.org",
];

/// Second-level labels that country domains (`co.uk`, `com.au`, `ne.jp`, `gov.br`) open to
/// registration beneath them.
const REGISTRY_LABELS: [&str; 15] = [
    "ac", "co", "com", "edu", "gob", "gov", "gouv", "ltd", "mil", "ne", "net", "nom", "or", "org",
    "plc",
];

/// Whether `domain` is one under which anyone can register a name (see [`SHARED_SUFFIXES`] and
/// [`REGISTRY_LABELS`]; a one-label domain is refused before this is asked).
fn is_public_suffix(domain: &str) -> bool {
    if SHARED_SUFFIXES.contains(&domain) {
        return true;
    }
    match domain.split_once('.') {
        Some((second, country)) => {
            country.len() == 2
                && country.bytes().all(|b| b.is_ascii_lowercase())
                && REGISTRY_LABELS.contains(&second)
        }
        None => false,
    }
}

fn is_host(host: &str) -> bool {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|a| a.to_string() == v6),
        None => is_dns_name(host),
    }
}

impl OriginPattern {
    /// Parses one entry of `origins`; the error says what to write instead. `"*"` and
    /// `"null"` are the caller's to handle.
    pub fn parse(text: &str) -> Result<OriginPattern, String> {
        if text != text.to_ascii_lowercase() {
            return Err(format!(
                "origins are lower-case, as browsers send them (write \"{}\")",
                text.to_ascii_lowercase()
            ));
        }
        if !text.is_ascii() {
            return Err("write an internationalised host in its punycode form (xn--…)".into());
        }
        if let Some(stripped) = text.strip_suffix('/') {
            if split(stripped).is_some() {
                return Err(format!(
                    "an origin has no path, not even \"/\" (write \"{stripped}\")"
                ));
            }
        }
        let Some((scheme, host, port)) = split(text) else {
            return Err(
                "is not an origin: expected scheme://host[:port], without path, query or user-info"
                    .into(),
            );
        };
        if scheme != "https" && scheme != "http" {
            return Err(format!("scheme \"{scheme}\" is not http or https"));
        }
        let port = match port {
            None => None,
            Some(p) => match port_number(p) {
                Some(n) if n == default_port(scheme) => {
                    let without = text.strip_suffix(&format!(":{p}")).unwrap_or(text);
                    return Err(format!(
                        "browsers leave the default port out of an origin (write \"{without}\")"
                    ));
                }
                Some(n) => Some(n),
                None => return Err(format!("port \"{p}\" is not a number from 1 to 65535")),
            },
        };
        if let Some(domain) = host.strip_prefix("*.") {
            if !is_dns_name(domain) || !domain.contains('.') {
                return Err(format!(
                    "\"*.\" must be followed by a domain of at least two labels, like \"*.example.com\", found \"{domain}\""
                ));
            }
            // A host whose last label is a number is an IPv4 address to browsers (WHATWG URL):
            // `*.0.0.1` would allow `https://1.0.0.1`, and no address has subdomains.
            if domain
                .rsplit('.')
                .next()
                .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(format!(
                    "\"*.\" must be followed by a domain name, not part of an IP address, found \"{domain}\""
                ));
            }
            if is_public_suffix(domain) {
                return Err(format!(
                    "anyone can have a name under \"{domain}\", so \"*.{domain}\" would allow other people's sites; write the domain you own (\"*.example.{domain}\")"
                ));
            }
            return Ok(OriginPattern::Subdomain {
                scheme: scheme.to_owned(),
                suffix: format!(".{domain}"),
                port,
            });
        }
        if host.contains('*') {
            return Err(
                "a wildcard may only be the first label of the host (\"https://*.example.com\")"
                    .into(),
            );
        }
        if !is_host(host) {
            return Err(format!("\"{host}\" is not a valid host"));
        }
        Ok(OriginPattern::Exact(text.to_owned()))
    }

    /// Whether the request's `Origin` value is allowed by this pattern.
    pub fn matches(&self, origin: &str) -> bool {
        match self {
            OriginPattern::Exact(o) => o == origin,
            OriginPattern::Subdomain {
                scheme,
                suffix,
                port,
            } => {
                let Some((s, host, p)) = split(origin) else {
                    return false;
                };
                let port_ok = match (p, port) {
                    (None, None) => true,
                    (Some(p), Some(want)) => port_number(p) == Some(*want),
                    _ => false,
                };
                let sub = host.strip_suffix(suffix.as_str()).unwrap_or("");
                s == scheme && port_ok && !sub.is_empty() && is_dns_name(host)
            }
        }
    }
}
