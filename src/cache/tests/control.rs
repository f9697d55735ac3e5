use crate::cache::control::{parse, parse_delta_seconds, CacheControl, DELTA_SECONDS_MAX};

fn cc(s: &str) -> CacheControl {
    parse(Some(s))
}

fn max_age(v: u64) -> CacheControl {
    CacheControl {
        max_age: Some(v),
        ..CacheControl::default()
    }
}

#[test]
fn absent_and_empty_say_nothing() {
    assert_eq!(parse(None), CacheControl::default());
    for s in ["", " ", ",", " , ,, ", "\t"] {
        assert_eq!(cc(s), CacheControl::default(), "{s:?}");
    }
}

#[test]
fn flags() {
    let d = CacheControl::default;
    let cases: &[(&str, CacheControl)] = &[
        (
            "no-store",
            CacheControl {
                no_store: true,
                ..d()
            },
        ),
        (
            "NO-STORE",
            CacheControl {
                no_store: true,
                ..d()
            },
        ),
        (
            "no-cache",
            CacheControl {
                no_cache: true,
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
            "Public",
            CacheControl {
                public: true,
                ..d()
            },
        ),
        (
            "must-revalidate",
            CacheControl {
                must_revalidate: true,
                ..d()
            },
        ),
        (
            "proxy-revalidate",
            CacheControl {
                proxy_revalidate: true,
                ..d()
            },
        ),
        (
            "no-transform",
            CacheControl {
                no_transform: true,
                ..d()
            },
        ),
        (
            "must-understand",
            CacheControl {
                must_understand: true,
                ..d()
            },
        ),
        (
            "immutable",
            CacheControl {
                immutable: true,
                ..d()
            },
        ),
        (
            "public, public",
            CacheControl {
                public: true,
                ..d()
            },
        ),
        (
            "public, max-age=60, must-revalidate",
            CacheControl {
                public: true,
                must_revalidate: true,
                max_age: Some(60),
                ..d()
            },
        ),
        (
            "no-cache, no-store, private",
            CacheControl {
                no_cache: true,
                no_store: true,
                private: true,
                ..d()
            },
        ),
    ];
    for (input, want) in cases {
        assert_eq!(cc(input), *want, "{input:?}");
    }
}

#[test]
fn durations() {
    let d = CacheControl::default;
    let cases: &[(&str, CacheControl)] = &[
        ("max-age=60", max_age(60)),
        ("MAX-AGE=60", max_age(60)),
        ("Max-Age=0", max_age(0)),
        ("max-age=\"60\"", max_age(60)),
        ("max-age = 60", max_age(60)),
        ("\tmax-age=60\t", max_age(60)),
        (",,, max-age=60 ,,", max_age(60)),
        ("max-age=060", max_age(60)),
        (
            "s-maxage=30",
            CacheControl {
                s_maxage: Some(30),
                ..d()
            },
        ),
        (
            "s-maxage=30, max-age=60",
            CacheControl {
                s_maxage: Some(30),
                max_age: Some(60),
                ..d()
            },
        ),
        (
            "stale-if-error=300, stale-while-revalidate=30",
            CacheControl {
                stale_if_error: Some(300),
                stale_while_revalidate: Some(30),
                ..d()
            },
        ),
        (
            "max-age=99999999999999999999999",
            max_age(DELTA_SECONDS_MAX),
        ),
        ("max-age=2147483649", max_age(DELTA_SECONDS_MAX)),
        ("max-age=2147483647", max_age(2_147_483_647)),
    ];
    for (input, want) in cases {
        assert_eq!(cc(input), *want, "{input:?}");
    }
}

#[test]
fn invalid_or_conflicting_durations_read_as_zero() {
    let cases = [
        "max-age",
        "max-age=",
        "max-age=\"\"",
        "max-age=abc",
        "max-age=-1",
        "max-age=+1",
        "max-age=1.5",
        "max-age=1e3",
        "max-age=\"60",    // unterminated quote
        "max-age=\"60\"x", // text after the quote
        "max-age=60, max-age=120",
        "max-age=120, MAX-AGE=60",
        "max-age=60, max-age=abc",
        "max-age=abc, max-age=60",
        "max-age=60, max-age",
    ];
    for input in cases {
        assert_eq!(cc(input).max_age, Some(0), "{input:?}");
    }
    // The same value twice is fine.
    assert_eq!(cc("max-age=60, max-age=60").max_age, Some(60));
    assert_eq!(cc("max-age=60, max-age=\"60\"").max_age, Some(60));
    // Every duration directive behaves the same way.
    let c = cc("s-maxage=1, s-maxage=2, stale-if-error=x, stale-while-revalidate");
    assert_eq!(c.s_maxage, Some(0));
    assert_eq!(c.stale_if_error, Some(0));
    assert_eq!(c.stale_while_revalidate, Some(0));
}

/// Qualified `private="f"` and `no-cache="f"` name fields to strip (RFC 9111 §5.2.2.4,
/// §5.2.2.7); until this gateway stored them minus the fields, it read them as unqualified.
#[test]
fn qualified_private_and_no_cache_name_fields() {
    let c = cc("private=\"set-cookie\"");
    assert!(!c.private);
    assert_eq!(c.private_fields, ["set-cookie"]);
    let c = cc("private=\"Set-Cookie, X-Secret\", max-age=60");
    assert!(!c.private);
    assert_eq!(c.private_fields, ["set-cookie", "x-secret"]);
    assert_eq!(
        c.max_age,
        Some(60),
        "the comma inside quotes does not split"
    );
    let c = cc("no-cache=\"set-cookie\", max-age=60");
    assert!(!c.no_cache);
    assert_eq!(c.no_cache_fields, ["set-cookie"]);
    assert_eq!(c.max_age, Some(60));
    // The token form names one field.
    assert_eq!(cc("PRIVATE=set-cookie").private_fields, ["set-cookie"]);
    assert_eq!(
        cc("private=\"a\", no-cache=\"b, a\"").stripped_fields(),
        ["a", "b"]
    );
    // An unqualified occurrence wins.
    let c = cc("private=\"x\", private");
    assert!(c.private);
    assert!(c.private_fields.is_empty());
    assert!(cc("no-store=whatever").no_store);
    assert!(cc("must-revalidate=1").must_revalidate);
    // A list that is empty or not field names is the unqualified directive.
    for bad in [
        "private=\"\"",
        "private=",
        "private=\" , \"",
        "private=\"a b\"",
        "private=\"a;b\"",
    ] {
        let c = cc(bad);
        assert!(c.private, "{bad}");
        assert!(c.private_fields.is_empty(), "{bad}");
    }
    assert!(cc("no-cache=\"a@b\"").no_cache);
    // A malformed argument still sets a restrictive flag.
    let c = cc("private=\"set-cookie, max-age=60");
    assert!(c.private);
    assert_eq!(c.max_age, None, "swallowed by the unterminated quote");
    // Escapes inside quotes: `a"b` is not a field name, so this is plain private.
    let c = cc(r#"private="a\"b, c", max-age=7"#);
    assert!(c.private);
    assert_eq!(c.max_age, Some(7));
}

#[test]
fn request_directives_parse() {
    let c = cc("max-stale, min-fresh=5, only-if-cached, max-age=0");
    assert_eq!(c.max_stale, Some(crate::cache::control::DELTA_SECONDS_MAX));
    assert_eq!(c.min_fresh, Some(5));
    assert!(c.only_if_cached);
    assert_eq!(c.max_age, Some(0));
    assert_eq!(cc("max-stale=30").max_stale, Some(30));
    assert_eq!(
        cc("max-stale=x").max_stale,
        Some(0),
        "invalid: no staleness"
    );
    assert_eq!(cc("min-fresh").min_fresh, Some(0));
}

#[test]
fn permissive_flags_with_an_argument_are_ignored() {
    assert!(!cc("public=\"x\"").public);
    assert!(!cc("public=1").public);
    assert!(cc("public=1, public").public);
    assert!(!cc("immutable=yes").immutable);
}

#[test]
fn unknown_and_malformed_elements_are_skipped() {
    assert_eq!(cc("foo=bar, community=\"UCI\""), CacheControl::default());
    assert_eq!(cc("\"quoted\", max-age=5"), max_age(5));
    assert_eq!(cc("max age=5, max-age=6"), max_age(6));
    assert_eq!(cc("=5, max-age=6"), max_age(6));
    assert_eq!(cc("max-age=6, \u{e9}t\u{e9}=1"), max_age(6));
    assert_eq!(cc("x-ext=\"a,b\", max-age=6"), max_age(6));
}

#[test]
fn delta_seconds() {
    let cases: &[(&str, Option<u64>)] = &[
        ("0", Some(0)),
        ("1", Some(1)),
        ("0000", Some(0)),
        ("86400", Some(86_400)),
        ("2147483648", Some(DELTA_SECONDS_MAX)),
        ("2147483649", Some(DELTA_SECONDS_MAX)),
        ("18446744073709551616", Some(DELTA_SECONDS_MAX)),
        ("", None),
        ("+1", None),
        ("-1", None),
        (" 1", None),
        ("1 ", None),
        ("1s", None),
        ("\u{661}", None), // ARABIC-INDIC DIGIT ONE
    ];
    for (input, want) in cases {
        assert_eq!(parse_delta_seconds(input), *want, "{input:?}");
    }
}
