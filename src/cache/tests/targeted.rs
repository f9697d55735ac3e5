use crate::cache::control::{CacheControl, DELTA_SECONDS_MAX};
use crate::cache::targeted::{parse, select};

fn max_age(v: u64) -> CacheControl {
    CacheControl {
        max_age: Some(v),
        ..CacheControl::default()
    }
}

#[test]
fn valid_dictionaries() {
    let d = CacheControl::default;
    let cases: &[(&str, CacheControl)] = &[
        ("max-age=60", max_age(60)),
        ("max-age=60 ", max_age(60)),
        ("  max-age=60", max_age(60)),
        (
            "max-age=60,  public",
            CacheControl {
                public: true,
                ..max_age(60)
            },
        ),
        (
            "max-age=60,\tpublic",
            CacheControl {
                public: true,
                ..max_age(60)
            },
        ),
        ("max-age=1, max-age=60", max_age(60)), // the last value of a key wins
        ("max-age=60;foo=bar", max_age(60)),    // parameters are ignored
        ("max-age=999999999999999", max_age(DELTA_SECONDS_MAX)),
        ("max-age=-5", max_age(0)),
        ("max-age=1.5", max_age(0)),
        ("max-age=\"60\"", max_age(0)), // a string is not a duration
        ("max-age", max_age(0)),        // neither is a Boolean
        (
            "no-store",
            CacheControl {
                no_store: true,
                ..d()
            },
        ),
        ("no-store=?0", d()),
        (
            "no-store=?1",
            CacheControl {
                no_store: true,
                ..d()
            },
        ),
        (
            "private",
            CacheControl {
                private: true,
                ..d()
            },
        ),
        (
            "private=\"set-cookie, x-a\"",
            CacheControl {
                private_fields: vec!["set-cookie".into(), "x-a".into()],
                ..d()
            },
        ),
        (
            "no-cache=(\"set-cookie\" x-b)",
            CacheControl {
                no_cache_fields: vec!["set-cookie".into(), "x-b".into()],
                ..d()
            },
        ),
        (
            "no-cache=\"\"",
            CacheControl {
                no_cache: true,
                ..d()
            },
        ),
        (
            "no-cache=1",
            CacheControl {
                no_cache: true,
                ..d()
            },
        ),
        ("public=?0", d()),
        ("unknown=\"x\", other=:aGk=:, max-age=5", max_age(5)),
        (
            "s-maxage=10, stale-while-revalidate=20, stale-if-error=30",
            CacheControl {
                s_maxage: Some(10),
                stale_while_revalidate: Some(20),
                stale_if_error: Some(30),
                ..d()
            },
        ),
    ];
    for (value, want) in cases {
        assert_eq!(parse(value).as_ref(), Some(want), "{value:?}");
    }
}

#[test]
fn invalid_or_empty_fields_are_ignored() {
    for value in [
        "",
        "   ",
        "Max-Age=60",    // keys are lower-case
        "max-age=60,",   // a trailing comma
        ",max-age=60",   // a leading one
        "max-age=60,,x", // an empty member
        "max-age==60",
        "max-age=60 public",        // no comma
        "max-age=\"60",             // an unterminated string
        "max-age=\"\\x\"",          // an invalid escape
        "max-age=1234567890123456", // 16 digits
        "max-age=1.2345",
        "private=(\"a\"",
        "max-age=60;",
        "1max-age=60",
        "max-age=60\u{7f}",
        "max-age=é",
    ] {
        assert_eq!(parse(value), None, "{value:?}");
    }
}

#[test]
fn the_most_specific_valid_field_decides() {
    assert_eq!(select([None, None]), None);
    assert_eq!(
        select([Some("max-age=5"), Some("max-age=10")]),
        Some((0, max_age(5)))
    );
    assert_eq!(
        select([Some("Max-Age=5"), Some("max-age=10")]),
        Some((1, max_age(10))),
        "an invalid Cloudflare-CDN-Cache-Control falls back to CDN-Cache-Control"
    );
    assert_eq!(select([Some(""), None]), None);
}
