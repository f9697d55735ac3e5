use crate::observe::redact::REDACTED;
use crate::observe::shown::shown_name;

const SECRET: &str = "s3cr3tvalue";

#[test]
fn member_names_are_shown_without_a_pasted_credential() {
    let jwt = format!("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.{SECRET}");
    let cases = [
        (
            format!("Authorization: Bearer {jwt}"),
            "Authorization…".to_owned(),
        ),
        (format!("Bearer {jwt}"), "Bearer REDACTED".to_owned()),
        (format!("x-api-key={SECRET}"), "x-api-key…".to_owned()),
        (
            format!("https://user:{SECRET}@h"),
            "https://user…".to_owned(),
        ),
        (jwt.clone(), REDACTED.to_owned()),
        (format!("gwk_{SECRET}"), "gwk_REDACTED".to_owned()),
        (
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc".to_owned(),
            "sk_live_REDACTED".to_owned(),
        ),
        (
            "X-Api-Key 4eC39HqLyjWDarjtT1zdp7dc".to_owned(),
            "X-Api-Key REDACTED".to_owned(),
        ),
        ("a".repeat(100), format!("{}…", "a".repeat(64))),
        ("é".repeat(40), format!("{}…", "é".repeat(32))),
    ];
    for (name, want) in cases {
        assert_eq!(shown_name(&name), want, "{name:?}");
    }
    // Every name a person writes is shown as written.
    for name in [
        "users",
        "jwt.main",
        "bad name",
        "a/b",
        "x-é",
        "",
        "$schema",
        "billing-service-v2-eu-west-1",
        "X-Request-Id",
        "https://example.com/claims/roles",
        "a".repeat(64).as_str(),
    ] {
        assert!(
            matches!(shown_name(name), std::borrow::Cow::Borrowed(_)),
            "{name:?}: {}",
            shown_name(name)
        );
    }
}

/// Keys shorter than the long-run rule still look like keys: a run of 16 hex digits mixing
/// digits and letters, or 16 letters and digits changing class as often as random text does.
#[test]
fn short_opaque_keys_in_member_names_are_not_shown() {
    for (name, want) in [
        ("a1b2c3d4e5f60718", "REDACTED"),
        ("key-9f86d081884c7d65", "key-REDACTED"),
        ("4eC39HqLyjWDarjt", "REDACTED"),
        ("x_Zq8mP2vL9tR4wY1k", "x_REDACTED"),
    ] {
        assert_eq!(shown_name(name), want, "{name:?}");
    }
    for name in [
        "sha256WithRSAEncryption",
        "oauth2ClientCredentials",
        "deadline-2025-01-01",
        "abcdefabcdefabcdef",
        "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "v1beta1",
        "X-Forwarded-Proto",
    ] {
        assert!(
            matches!(shown_name(name), std::borrow::Cow::Borrowed(_)),
            "{name:?}: {}",
            shown_name(name)
        );
    }
}
