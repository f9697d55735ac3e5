//! Pure extraction of credentials from header and query strings the platform has already read.
//!
//! Ambiguity is refused rather than resolved: if a request carries the same credential twice,
//! the gateway and the upstream could each pick a different one, so that is an error.

/// Why a credential could not be taken from a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialError {
    /// The credential appears more than once; names where (e.g. "Authorization header").
    Duplicate(&'static str),
    /// The credential is present but unusable; says why.
    Malformed(&'static str),
}

impl CredentialError {
    /// A short reason, safe to show a client (it never repeats request bytes).
    pub fn reason(&self) -> String {
        match self {
            CredentialError::Duplicate(what) => format!("the request has more than one {what}"),
            CredentialError::Malformed(why) => (*why).to_string(),
        }
    }
}

const AUTHORIZATION: &str = "bearer credential in the Authorization header";

fn is_token68(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// The auth-scheme word of a credentials string and what follows it.
fn split_scheme(credentials: &str) -> (&str, &str) {
    match credentials.find([' ', '\t']) {
        Some(i) => credentials.split_at(i),
        None => (credentials, ""),
    }
}

/// The bearer token of an `Authorization` value (RFC 6750 §2.1), if it uses the Bearer scheme.
///
/// The scheme name is case-insensitive and followed by one or more spaces and a token68. Other
/// schemes (`Basic …`) give `Ok(None)`. A value with a `,` that involves a Bearer credential is
/// how the runtime presents two merged `Authorization` headers: [`CredentialError::Duplicate`]
/// (a `,` inside another scheme's parameters, as in Digest, is that scheme's business: `Ok(None)`).
pub fn bearer(authorization: Option<&str>) -> Result<Option<&str>, CredentialError> {
    let Some(value) = authorization else {
        return Ok(None);
    };
    let value = value.trim_matches([' ', '\t']);
    if value.contains(',') {
        let has_bearer = value.split(',').any(|part| {
            split_scheme(part.trim_start_matches([' ', '\t']))
                .0
                .eq_ignore_ascii_case("bearer")
        });
        return if has_bearer {
            Err(CredentialError::Duplicate(AUTHORIZATION))
        } else {
            Ok(None)
        };
    }
    let (scheme, rest) = split_scheme(value);
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    if rest.is_empty() {
        return Err(CredentialError::Malformed("the bearer token is empty"));
    }
    if !rest.starts_with(' ') {
        return Err(CredentialError::Malformed(
            "the Bearer scheme must be followed by a space",
        ));
    }
    let token = rest.trim_start_matches(' ');
    if token.is_empty() {
        return Err(CredentialError::Malformed("the bearer token is empty"));
    }
    if !is_token68(token) {
        return Err(CredentialError::Malformed(
            "the bearer token has characters a token cannot have",
        ));
    }
    Ok(Some(token))
}

/// The value of cookie `name` in a `Cookie` header (`a=b; c=d`, RFC 6265 §5.4).
///
/// Names compare exactly; a value in double quotes is unquoted; an empty value counts as absent
/// (a cleared cookie). The named cookie twice is [`CredentialError::Duplicate`].
pub fn cookie(cookie_header: Option<&str>, name: &str) -> Result<Option<String>, CredentialError> {
    let Some(header) = cookie_header else {
        return Ok(None);
    };
    let mut found: Option<&str> = None;
    for pair in header.split(';') {
        let Some((n, v)) = pair.split_once('=') else {
            continue;
        };
        if n.trim_matches([' ', '\t']) != name {
            continue;
        }
        if found.is_some() {
            return Err(CredentialError::Duplicate("credential cookie"));
        }
        let v = v.trim_matches([' ', '\t']);
        let v = v
            .strip_prefix('"')
            .and_then(|inner| inner.strip_suffix('"'))
            .unwrap_or(v);
        found = Some(v);
    }
    Ok(found.filter(|v| !v.is_empty()).map(str::to_string))
}

/// Decodes `application/x-www-form-urlencoded` bytes: `%XX` escapes and `+` as a space.
/// `None` for a `%` not followed by two hex digits.
pub fn form_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = crate::hex::value(bytes.next()?)?;
                let lo = crate::hex::value(bytes.next()?)?;
                out.push(hi << 4 | lo);
            }
            other => out.push(other),
        }
    }
    Some(out)
}

/// Whether a raw (still encoded) parameter name decodes to `name`, or to a spelling PHP reads
/// as `name` (see [`php_name`]): an upstream in PHP would read `access.token` or
/// `access_token[]` as the credential the gateway consumes, so the gateway reads them as it
/// too. A name with invalid escapes names no parameter we look for.
fn name_matches(raw: &str, name: &str) -> bool {
    let decoded = if raw.contains(['%', '+']) {
        match form_decode(raw) {
            Some(d) => std::borrow::Cow::Owned(d),
            None => return false,
        }
    } else {
        std::borrow::Cow::Borrowed(raw.as_bytes())
    };
    decoded.as_ref() == name.as_bytes()
        || (decoded
            .iter()
            .any(|b| matches!(b, b'.' | b' ' | b'[' | b'_'))
            && php_name(&decoded) == php_name(name.as_bytes()))
}

/// A parameter name as PHP files it: leading spaces dropped, an array suffix (`[…]` closed by
/// a `]`) cut off, and space, `.` and an unclosed `[` read as `_`.
pub(crate) fn php_name(name: &[u8]) -> Vec<u8> {
    let start = name.iter().position(|&b| b != b' ').unwrap_or(name.len());
    let name = &name[start..];
    let end = match name.iter().position(|&b| b == b'[') {
        Some(at) if name[at..].contains(&b']') => at,
        _ => name.len(),
    };
    name[..end]
        .iter()
        .map(|&b| {
            if matches!(b, b' ' | b'.' | b'[') {
                b'_'
            } else {
                b
            }
        })
        .collect()
}

fn split_query(query: &str) -> &str {
    query.strip_prefix('?').unwrap_or(query)
}

/// Whether `c` separates query parameters. `;` does too: some upstream frameworks split on it
/// (HTML 4's recommendation), so a credential hidden behind one would be neither read nor
/// removed by the gateway while the upstream still read it.
fn is_separator(c: char) -> bool {
    c == '&' || c == ';'
}

/// The value of query parameter `name` (names and values percent-decoded, `+` as a space).
///
/// The query may start with `?`; parameters are separated by `&` or `;`. The parameter twice is
/// [`CredentialError::Duplicate`]; a value with an invalid escape or that is not UTF-8 is
/// [`CredentialError::Malformed`]; an empty value counts as absent.
pub fn query_param(query: Option<&str>, name: &str) -> Result<Option<String>, CredentialError> {
    let Some(query) = query else {
        return Ok(None);
    };
    let mut found: Option<&str> = None;
    for segment in split_query(query).split(is_separator) {
        if segment.is_empty() {
            continue;
        }
        let (raw_name, raw_value) = segment.split_once('=').unwrap_or((segment, ""));
        if !name_matches(raw_name, name) {
            continue;
        }
        if found.is_some() {
            return Err(CredentialError::Duplicate("credential query parameter"));
        }
        found = Some(raw_value);
    }
    let Some(raw) = found else {
        return Ok(None);
    };
    let bytes = form_decode(raw).ok_or(CredentialError::Malformed(
        "the credential query parameter has an invalid percent-escape",
    ))?;
    let value = String::from_utf8(bytes)
        .map_err(|_| CredentialError::Malformed("the credential query parameter is not UTF-8"))?;
    Ok(Some(value).filter(|v| !v.is_empty()))
}

/// `query` with every occurrence of parameter `name` removed (matched as [`query_param`] matches
/// it, after `&` or `;`); every other part is kept byte for byte, in order, with the separator
/// that preceded it. A leading `?` is kept unless nothing remains; the result is empty when
/// nothing remains.
pub fn without_query_param(query: &str, name: &str) -> String {
    let (prefix, rest) = match query.strip_prefix('?') {
        Some(rest) => ("?", rest),
        None => ("", query),
    };
    let named = |part: &str| {
        let raw_name = part.split_once('=').map_or(part, |(n, _)| n);
        !part.is_empty() && name_matches(raw_name, name)
    };
    let kept: Vec<String> = rest
        .split('&')
        .filter_map(|segment| {
            if !segment.split(';').any(named) {
                return Some(segment.to_owned());
            }
            let parts: Vec<&str> = segment.split(';').filter(|p| !named(p)).collect();
            // A segment that held only the parameter goes with it.
            (!parts.iter().all(|p| p.is_empty())).then(|| parts.join(";"))
        })
        .collect();
    let joined = kept.join("&");
    if joined.is_empty() {
        String::new()
    } else {
        format!("{prefix}{joined}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_accepts_the_scheme_in_any_case_with_one_or_more_spaces() {
        assert_eq!(
            bearer(Some("Bearer abc.def-_~+/==")),
            Ok(Some("abc.def-_~+/=="))
        );
        assert_eq!(bearer(Some("bearer abc")), Ok(Some("abc")));
        assert_eq!(bearer(Some("BEARER    abc")), Ok(Some("abc")));
        assert_eq!(bearer(Some("Bearer abc ")), Ok(Some("abc")));
    }

    #[test]
    fn bearer_ignores_other_schemes_and_absence() {
        assert_eq!(bearer(None), Ok(None));
        assert_eq!(bearer(Some("Basic dXNlcjpwYXNz")), Ok(None));
        assert_eq!(bearer(Some("Bearerabc")), Ok(None));
        assert_eq!(bearer(Some("")), Ok(None));
        assert_eq!(
            bearer(Some("Digest username=\"a\", realm=\"b\"")),
            Ok(None),
            "commas inside another scheme's parameters are not a merge"
        );
    }

    #[test]
    fn bearer_refuses_merged_headers() {
        for v in [
            "Bearer a, Bearer b",
            "Bearer a,Bearer b",
            "Basic x, Bearer b",
            "Bearer a, Basic x",
            "Bearer a,b",
        ] {
            assert!(
                matches!(bearer(Some(v)), Err(CredentialError::Duplicate(_))),
                "{v}"
            );
        }
    }

    #[test]
    fn bearer_refuses_empty_and_invalid_tokens() {
        for v in [
            "Bearer",
            "Bearer ",
            "Bearer    ",
            "Bearer\tabc",
            "Bearer a b",
            "Bearer a\"b",
            "Bearer =abc",
            "Bearer ab=c",
            "Bearer ===",
            "Bearer é",
        ] {
            assert!(
                matches!(bearer(Some(v)), Err(CredentialError::Malformed(_))),
                "{v:?} -> {:?}",
                bearer(Some(v))
            );
        }
    }

    #[test]
    fn cookies() {
        let h = Some("a=1; token=abc.def; b=2");
        assert_eq!(cookie(h, "token"), Ok(Some("abc.def".into())));
        assert_eq!(cookie(h, "TOKEN"), Ok(None), "names are case-sensitive");
        assert_eq!(cookie(h, "c"), Ok(None));
        assert_eq!(cookie(None, "token"), Ok(None));
        assert_eq!(
            cookie(Some("token=\"xyz\""), "token"),
            Ok(Some("xyz".into()))
        );
        assert_eq!(cookie(Some("token="), "token"), Ok(None));
        assert_eq!(
            cookie(Some("xtoken=1;token=2"), "token"),
            Ok(Some("2".into()))
        );
        assert_eq!(cookie(Some("a=b=c"), "a"), Ok(Some("b=c".into())));
        assert_eq!(cookie(Some(";;token=1;"), "token"), Ok(Some("1".into())));
        assert_eq!(
            cookie(Some("token=1; a=2; token=3"), "token"),
            Err(CredentialError::Duplicate("credential cookie"))
        );
        assert!(matches!(
            cookie(Some("token=; token=3"), "token"),
            Err(CredentialError::Duplicate(_))
        ));
    }

    #[test]
    fn query_params_decode_names_and_values() {
        assert_eq!(
            query_param(Some("a=1&key=abc"), "key"),
            Ok(Some("abc".into()))
        );
        assert_eq!(query_param(Some("?key=abc"), "key"), Ok(Some("abc".into())));
        assert_eq!(
            query_param(Some("key=a%2Bb+c"), "key"),
            Ok(Some("a+b c".into()))
        );
        assert_eq!(query_param(Some("k%65y=v"), "key"), Ok(Some("v".into())));
        assert_eq!(query_param(Some("key=%C3%A9"), "key"), Ok(Some("é".into())));
        assert_eq!(query_param(Some("keys=1&akey=2"), "key"), Ok(None));
        assert_eq!(query_param(Some("key"), "key"), Ok(None));
        assert_eq!(query_param(Some("key="), "key"), Ok(None));
        assert_eq!(query_param(None, "key"), Ok(None));
        assert_eq!(query_param(Some(""), "key"), Ok(None));
        assert_eq!(
            query_param(Some("x=%ZZ&key=1"), "key"),
            Ok(Some("1".into())),
            "another parameter's bad value is not our business"
        );
    }

    #[test]
    fn query_params_refuse_duplicates_and_bad_encodings() {
        assert_eq!(
            query_param(Some("key=1&key=2"), "key"),
            Err(CredentialError::Duplicate("credential query parameter"))
        );
        assert!(matches!(
            query_param(Some("key=1&k%65y=2"), "key"),
            Err(CredentialError::Duplicate(_))
        ));
        assert!(matches!(
            query_param(Some("key=&key=2"), "key"),
            Err(CredentialError::Duplicate(_))
        ));
        for q in ["key=%", "key=%4", "key=%GG", "key=%FF", "key=%C3"] {
            assert!(
                matches!(
                    query_param(Some(q), "key"),
                    Err(CredentialError::Malformed(_))
                ),
                "{q}"
            );
        }
    }

    #[test]
    fn without_query_param_strips_every_occurrence_and_keeps_the_rest() {
        assert_eq!(
            without_query_param("a=1&key=x&b=%20+2", "key"),
            "a=1&b=%20+2"
        );
        assert_eq!(without_query_param("key=x&a=1&k%65y=y&b", "key"), "a=1&b");
        assert_eq!(without_query_param("?key=x&a=1", "key"), "?a=1");
        assert_eq!(without_query_param("?key=x", "key"), "");
        assert_eq!(without_query_param("key", "key"), "");
        assert_eq!(without_query_param("", "key"), "");
        assert_eq!(without_query_param("keys=1&a=%ZZ", "key"), "keys=1&a=%ZZ");
        assert_eq!(without_query_param("a=1&&b=2", "key"), "a=1&&b=2");
    }

    #[test]
    fn spellings_php_reads_as_the_credential_are_the_credential() {
        for q in [
            "access.token=x",
            "access+token=x",
            "access%20token=x",
            "access_token[]=x",
            "access_token[0]=x",
            "+access_token=x",
            "access[token=x",
        ] {
            assert_eq!(
                query_param(Some(q), "access_token"),
                Ok(Some("x".into())),
                "{q}"
            );
            assert_eq!(
                without_query_param(&format!("a=1&{q}"), "access_token"),
                "a=1",
                "{q}"
            );
        }
        assert!(matches!(
            query_param(Some("access_token=x&access.token=y"), "access_token"),
            Err(CredentialError::Duplicate(_))
        ));
        // Other names stay other names.
        for q in [
            "access_tokens=x",
            "accesstoken=x",
            "access-token=x",
            "access_token]=x",
        ] {
            assert_eq!(query_param(Some(q), "access_token"), Ok(None), "{q}");
        }
        assert_eq!(query_param(Some("key[]=x"), "key"), Ok(Some("x".into())));
    }

    #[test]
    fn a_semicolon_separates_parameters_as_some_upstreams_read_it() {
        assert_eq!(query_param(Some("a=1;key=x"), "key"), Ok(Some("x".into())));
        assert_eq!(query_param(Some("?key=x;a=1"), "key"), Ok(Some("x".into())));
        assert!(matches!(
            query_param(Some("key=x;key=y"), "key"),
            Err(CredentialError::Duplicate(_))
        ));
        assert!(matches!(
            query_param(Some("a=1;key=x&key=y"), "key"),
            Err(CredentialError::Duplicate(_))
        ));
        assert_eq!(without_query_param("a=1;key=x&b=2", "key"), "a=1&b=2");
        assert_eq!(without_query_param("a=1;k%65y=x;c=3&b", "key"), "a=1;c=3&b");
        assert_eq!(without_query_param("?key=x;key=y", "key"), "");
        assert_eq!(without_query_param("key=x;&b=2", "key"), "b=2");
        assert_eq!(without_query_param("a=1;;b=2&key=x", "key"), "a=1;;b=2");
        assert_eq!(without_query_param("keys=1;a", "key"), "keys=1;a");
    }

    #[test]
    fn reasons_do_not_echo_request_bytes() {
        assert_eq!(
            CredentialError::Duplicate("credential cookie").reason(),
            "the request has more than one credential cookie"
        );
        assert!(bearer(Some("Bearer <script>"))
            .unwrap_err()
            .reason()
            .find("script")
            .is_none());
    }
}
