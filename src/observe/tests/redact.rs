use crate::config::Config;
use crate::observe::redact::{Redactor, REDACTED};

/// A configuration with every kind of credential: a JWT scheme with `token_query`, API keys in
/// a header and in the query, and `redact_query`.
fn redactor() -> Redactor {
    let config = Config::from_json(
        r#"{
        "version": 1,
        "upstreams": { "u": { "targets": [ { "url": "https://u.example" } ] } },
        "auth": {
            "jwt": { "type": "jwt", "issuer": "https://id/", "audiences": ["a"],
                     "jwks_url": "https://id.example/jwks", "algorithms": ["RS256"],
                     "token_query": "token" },
            "keys": { "type": "api_key", "header": "X-Partner-Key" },
            "legacy": { "type": "api_key", "query": "api_key" }
        },
        "observability": { "access_log": { "redact_query": ["sig"] } },
        "routes": [ { "id": "r", "path": "/r", "upstream": "u", "auth": "none" } ]
    }"#,
    )
    .unwrap();
    Redactor::new(&config)
}

#[test]
fn credential_query_values_are_redacted_and_the_rest_kept_byte_for_byte() {
    let r = redactor();
    let cases = [
        ("token=abc", "token=REDACTED"),
        ("a=1&token=abc&b=%20x", "a=1&token=REDACTED&b=%20x"),
        (
            "api_key=k1&sig=s1&access_token=t1",
            "api_key=REDACTED&sig=REDACTED&access_token=REDACTED",
        ),
        // Every duplicate.
        ("token=a&token=b", "token=REDACTED&token=REDACTED"),
        // Percent-encoded and `+`-encoded names, as the gateway's own lookup decodes them.
        ("%74oken=abc", "%74oken=REDACTED"),
        ("api%5Fkey=abc", "api%5Fkey=REDACTED"),
        ("api%5fkey=abc&x=1", "api%5fkey=REDACTED&x=1"),
        // Any letter case.
        ("TOKEN=abc&Sig=x", "TOKEN=REDACTED&Sig=REDACTED"),
        ("%54oken=abc", "%54oken=REDACTED"),
        // A value containing '=' is replaced whole.
        ("token=a=b==", "token=REDACTED"),
        // Lookalikes are not credentials.
        ("tokens=1&mytoken=2&token", "tokens=1&mytoken=2&token"),
        ("token=", "token="),
        ("", ""),
        ("&&token=x&", "&&token=REDACTED&"),
        // Spellings PHP files under a credential's name, which the gateway's lookup reads too.
        ("api.key=abc", "api.key=REDACTED"),
        ("api_key[]=abc&a=1", "api_key[]=REDACTED&a=1"),
        ("access+token=abc", "access+token=REDACTED"),
        ("token[x]=abc", "token[x]=REDACTED"),
        ("api-key=1", "api-key=1"),
    ];
    for (query, want) in cases {
        assert_eq!(r.query(query), want, "{query:?}");
        assert!(!r.query(query).contains("abc"), "{query:?}");
    }
}

#[test]
fn an_unchanged_query_is_borrowed() {
    let r = redactor();
    assert!(matches!(r.query("a=1&b=2"), std::borrow::Cow::Borrowed(_)));
}

#[test]
fn without_a_configuration_the_standard_credentials_are_still_redacted() {
    let r = Redactor::default();
    assert_eq!(
        r.query("access_token=x&token=y"),
        "access_token=REDACTED&token=y"
    );
    assert!(r.is_credential_header("Authorization"));
    assert!(r.is_credential_header("proxy-authorization"));
    assert!(r.is_credential_header("COOKIE"));
    assert!(r.is_credential_header("set-cookie"));
    assert!(!r.is_credential_header("x-partner-key"));
    assert!(redactor().is_credential_header("x-partner-key"));
}

const SECRET: &str = "s3cr3tvalue";

#[test]
fn failure_lines_lose_every_credential_form() {
    let r = redactor();
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzM2NyM3R2YWx1ZSJ9.c2lnbmF0dXJlczNjcjN0dmFsdWU";
    let lines = [
        format!("connect:Fetch API cannot load: https://u.example/x?a=1&token={SECRET}&b=2"),
        format!("connect: https://u.example/x?api_key={SECRET}"),
        format!("https://u.example/x?%74oken={SECRET}#frag"),
        format!("https://u.example/x?sig={SECRET}&sig={SECRET}"),
        format!("https://admin:{SECRET}@u.example/path"),
        format!("\"https://{SECRET}@u.example\" is not allowed"),
        format!("upstream said: authorization: Bearer {SECRET}"),
        format!("Authorization: Basic {SECRET}=="),
        format!("{{\"authorization\":\"Bearer {SECRET}\",\"x\":1}}"),
        format!("{{\"cookie\": \"session={SECRET}; theme=dark\"}}"),
        format!("cookie: session={SECRET}; theme=dark\nnext line"),
        format!("set-cookie: id={SECRET}"),
        format!("proxy-authorization: Digest {SECRET}"),
        format!("X-Partner-Key: {SECRET}"),
        format!("CF-Access-Client-Secret: {SECRET}"),
        format!("x-partner-key={SECRET}"),
        format!("{{\"x-partner-key\":\"{SECRET}\"}}"),
        format!("token {jwt} rejected"),
        format!("bearer    {SECRET}"),
        format!("key gwk_{SECRET}Abc-_ is disabled"),
        format!("access_token={SECRET}"),
    ];
    for line in &lines {
        let out = r.text(line);
        assert!(!out.contains(SECRET), "{line:?} -> {out:?}");
        assert!(!out.contains("c2lnbmF0dXJl"), "{line:?} -> {out:?}");
        assert!(out.contains(REDACTED), "{line:?} -> {out:?}");
    }
}

#[test]
fn failure_lines_keep_what_is_not_a_credential() {
    let r = redactor();
    let keep = [
        "upstream unreachable: connection refused",
        "https://u.example/x?a=1&b=2",
        "JWKS answered 503",
        "config: routes[0].upstream: unknown upstream \"x\"",
        "rate limiter: overloaded",
    ];
    for line in keep {
        assert_eq!(r.text(line), line);
    }
    assert_eq!(
        r.text("https://u.example/x?a=1&token=t&b=2 failed"),
        "https://u.example/x?a=1&token=REDACTED&b=2 failed"
    );
    assert_eq!(
        r.text("https://user:pw@u.example/p"),
        "https://REDACTED@u.example/p"
    );
    assert_eq!(r.text("gwk_abcdef"), "gwk_REDACTED");
    // Redacting twice changes nothing more.
    let once = r.text(&format!(
        "authorization: Bearer {SECRET} at https://a:b@h/?token=t"
    ));
    assert_eq!(r.text(&once), once);
}

#[test]
fn text_redaction_is_safe_on_any_input() {
    let r = redactor();
    for line in [
        "",
        "=",
        "==",
        "token=",
        "://",
        "://@",
        "authorization",
        "authorization:",
        "cookie: \"",
        "Bearer",
        "eyJ",
        "eyJ.",
        "eyJa.b",
        "gwk_",
        "é=é&token=é",
        "ключ=значение token=секрет",
    ] {
        let _ = r.text(line);
    }
    assert!(!r.text("token=секрет").contains("секрет"));
}

#[test]
fn a_json_line_stays_valid_json_after_redaction() {
    let r = redactor();
    let cause = format!(
        "connect:Fetch API cannot load: \"https://a:{SECRET}@u.example/x?sig=1&token={SECRET}\" \"https://u.example/?sig={SECRET}\" (authorization: Bearer {SECRET})"
    );
    let line = serde_json::json!({ "event": "upstream_unreachable", "reason": cause }).to_string();
    let out = r.text(&line);
    assert!(!out.contains(SECRET), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("still JSON");
    assert_eq!(v["event"], "upstream_unreachable");
    // Redacting the value before serialising gives the same result.
    let direct = r.text(&cause);
    assert!(!direct.contains(SECRET), "{direct}");
}

#[test]
fn a_query_credential_is_redacted_however_the_parameters_are_separated() {
    let r = redactor();
    // `/r??api_key=…`: the query the access log gets starts with `?`, and the gateway's own
    // lookup strips it, so the key is `api_key` there and must be redacted as `api_key`.
    assert_eq!(r.query("?api_key=k1"), "?api_key=REDACTED");
    assert_eq!(r.query("??token=t1&a=1"), "??token=REDACTED&a=1");
    // `;` is a separator to some servers behind the gateway.
    assert_eq!(r.query("a=1;token=t1;b=2"), "a=1;token=REDACTED;b=2");
    assert_eq!(r.query("a=1;b=2&c"), "a=1;b=2&c");
    assert!(matches!(r.query("a=1;b=2"), std::borrow::Cow::Borrowed(_)));
}

#[test]
fn structured_lines_are_scrubbed_before_they_are_encoded() {
    let r = redactor();
    // Encoded first, a newline or a quote becomes an escape that hides the name before the
    // credential; scrubbed as values, each string is read as it is.
    let mut line = serde_json::json!({
        "event": "upstream_unreachable",
        "reason": format!("bad\napi_key={SECRET}"),
        "nested": [{ "cause": format!("{{\"cookie\":\"sess={SECRET}\"}}") }],
        "more": format!("{{\"X-Partner-Key\":\"{SECRET}\",\"authorization\":\"Token {SECRET}\"}}"),
        "fragment": format!("https://app/cb#access_token={SECRET}&x=1"),
        "count": 3
    });
    r.value(&mut line);
    let text = line.to_string();
    assert!(!text.contains(SECRET), "{text}");
    assert_eq!(line["event"], "upstream_unreachable");
    assert_eq!(line["count"], 3);
    assert_eq!(line["fragment"], "https://app/cb#access_token=REDACTED&x=1");
}

#[test]
fn a_jwt_cut_short_after_its_header_is_still_redacted() {
    let r = Redactor::default();
    let out = r.text(&format!("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ{SECRET}"));
    assert_eq!(out, "token REDACTED");
    // `eyJ` not followed by a `.` is not a token.
    assert_eq!(r.text("eyJhbGciOi is base64"), "eyJhbGciOi is base64");
}

/// Inputs that made the scans quadratic (each match rescanned the rest of the line): they are
/// scrubbed in one pass now, and whole.
#[test]
fn repeated_credential_shapes_are_scrubbed_whole() {
    let r = redactor();
    let n = 16 * 1024;
    let keys = "gwk_".repeat(n);
    assert_eq!(r.text(&keys), "gwk_REDACTED");
    let jwts = format!("{}.x", "eyJ".repeat(n));
    assert_eq!(r.text(&jwts), "REDACTED");
    let cookies = "cookie:".repeat(n);
    assert!(!r.text(&cookies).contains("cookie:cookie:"));
    let pairs = "x-partner-key=".repeat(n);
    assert_eq!(r.text(&pairs), "x-partner-key=REDACTED");
    let bearers = "bearer ".repeat(n);
    assert!(!r.text(&bearers).contains("bearer bearer"));
}
