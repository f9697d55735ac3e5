use super::{rfc_date, spec};
use crate::cache::rules::{
    status_storable, storable, NotStored, RequestFacts, ResponseFacts, HEURISTIC_STATUSES,
};

fn get() -> RequestFacts {
    RequestFacts {
        method_is_get_or_head: true,
        has_authorization: false,
        request_no_store: false,
    }
}

fn authed() -> RequestFacts {
    RequestFacts {
        has_authorization: true,
        ..get()
    }
}

fn ok(cache_control: &str) -> ResponseFacts<'_> {
    ResponseFacts {
        status: 200,
        cache_control: Some(cache_control),
        ..ResponseFacts::default()
    }
}

fn keyed() -> Vec<String> {
    vec!["accept-language".to_string(), "x-tenant".to_string()]
}

/// `storable` on a route with ttl 60, no stale-if-error, keyed on `keyed()`.
fn check(req: RequestFacts, resp: ResponseFacts, per_consumer: bool) -> Result<(), NotStored> {
    storable(&req, &resp, &spec(60, 0), &keyed(), per_consumer)
}

#[test]
fn plain_cacheable_responses_are_stored() {
    let plain = ResponseFacts {
        status: 200,
        ..Default::default()
    };
    // Without explicit freshness and without a validator, only a default_ttl_s makes it usable
    // (before default_ttl_s existed, such a response was kept for ttl_s).
    assert_eq!(check(get(), plain, false), Err(NotStored::ZeroLifetime));
    let mut with_default = spec(60, 0);
    with_default.default_ttl_s = 30;
    assert_eq!(
        storable(&get(), &plain, &with_default, &keyed(), false),
        Ok(())
    );
    let validated = ResponseFacts {
        has_etag: true,
        ..plain
    };
    assert_eq!(check(get(), validated, false), Ok(()), "kept to revalidate");
    assert_eq!(check(get(), ok("max-age=60"), false), Ok(()));
    assert_eq!(check(get(), ok("public, max-age=60"), false), Ok(()));
    assert_eq!(
        check(get(), ok("no-transform, immutable, max-age=1"), false),
        Ok(())
    );
}

#[test]
fn method() {
    let post = RequestFacts {
        method_is_get_or_head: false,
        ..get()
    };
    assert_eq!(
        check(post, ok("public, max-age=60"), false),
        Err(NotStored::Method)
    );
    // Method is checked first.
    assert_eq!(check(post, ok("no-store"), false), Err(NotStored::Method));
}

#[test]
fn request_no_store() {
    let req = RequestFacts {
        request_no_store: true,
        ..get()
    };
    assert_eq!(
        check(req, ok("max-age=60"), false),
        Err(NotStored::RequestNoStore)
    );
}

#[test]
fn statuses() {
    // Heuristically cacheable (RFC 9110 §15.1): stored with or without explicit freshness
    // (here with a validator to make them usable).
    for status in HEURISTIC_STATUSES.into_iter().filter(|s| *s < 500) {
        let resp = ResponseFacts {
            status,
            has_etag: true,
            ..ResponseFacts::default()
        };
        assert_eq!(check(get(), resp, false), Ok(()), "{status}");
        assert_eq!(
            check(
                get(),
                ResponseFacts {
                    status,
                    ..ok("max-age=60")
                },
                false
            ),
            Ok(())
        );
    }
    assert!(HEURISTIC_STATUSES.contains(&405) && HEURISTIC_STATUSES.contains(&414));
    // Any other final status only with explicit freshness: max-age, s-maxage, Expires or a
    // targeted field.
    for status in [
        201, 202, 205, 226, 302, 303, 307, 400, 401, 403, 429, 500, 501, 502, 503, 599,
    ] {
        let bare = ResponseFacts {
            status,
            has_etag: true,
            ..ResponseFacts::default()
        };
        assert_eq!(
            check(get(), bare, false),
            Err(NotStored::Status(status)),
            "{status}"
        );
        for explicit in [
            ok("max-age=60"),
            ok("s-maxage=60"),
            ResponseFacts {
                expires: Some("Thu, 01 Jan 2099 00:00:00 GMT"),
                date: Some("Thu, 01 Jan 2098 00:00:00 GMT"),
                ..ResponseFacts::default()
            },
            ResponseFacts {
                targeted: [None, Some("max-age=60")],
                ..ResponseFacts::default()
            },
        ] {
            let resp = ResponseFacts { status, ..explicit };
            assert_eq!(check(get(), resp, false), Ok(()), "{status} {explicit:?}");
        }
    }
    // 501 is heuristically cacheable, but a 5xx needs explicit freshness.
    assert!(!status_storable(501, false));
    assert!(status_storable(501, true));
    // Never: partial content, 304, interim and out-of-range statuses, whatever they say.
    for status in [0, 100, 101, 199, 206, 304, 600, 999] {
        let resp = ResponseFacts {
            status,
            ..ok("public, max-age=60")
        };
        assert_eq!(
            check(get(), resp, false),
            Err(NotStored::Status(status)),
            "{status}"
        );
    }
    // Status is checked before the response's directives.
    let resp = ResponseFacts {
        status: 206,
        ..ok("no-store")
    };
    assert_eq!(check(get(), resp, false), Err(NotStored::Status(206)));
}

#[test]
fn no_store_and_private() {
    let cases: &[(&str, NotStored)] = &[
        ("no-store", NotStored::NoStore),
        ("NO-STORE", NotStored::NoStore),
        ("public, max-age=60, no-store", NotStored::NoStore),
        ("no-store, private", NotStored::NoStore),
        ("private", NotStored::Private),
        ("Private, max-age=60", NotStored::Private),
        ("private=\"\", max-age=60", NotStored::Private),
        ("public, private", NotStored::Private),
        ("s-maxage=60, private", NotStored::Private),
    ];
    for (cc, want) in cases {
        assert_eq!(check(get(), ok(cc), false).as_ref(), Err(want), "{cc}");
        // Not even per consumer.
        assert_eq!(
            check(authed(), ok(cc), true).as_ref(),
            Err(want),
            "{cc} per consumer"
        );
    }
}

#[test]
fn set_cookie() {
    let resp = ResponseFacts {
        has_set_cookie: true,
        ..ok("public, s-maxage=60")
    };
    assert_eq!(check(get(), resp, false), Err(NotStored::SetCookie));
    assert_eq!(check(authed(), resp, true), Err(NotStored::SetCookie));
    // private is reported before Set-Cookie.
    let resp = ResponseFacts {
        has_set_cookie: true,
        ..ok("private")
    };
    assert_eq!(check(get(), resp, false), Err(NotStored::Private));
}

#[test]
fn vary() {
    let cases: &[(&str, Result<(), NotStored>)] = &[
        ("", Ok(())),
        (" , ,", Ok(())),
        ("accept-language", Ok(())),
        ("Accept-Language", Ok(())),
        ("accept-language, X-Tenant", Ok(())),
        // Content coding is the platform cache's business.
        ("Accept-Encoding", Ok(())),
        ("accept-encoding,accept-language", Ok(())),
        ("*", Err(NotStored::VaryStar)),
        (" * ", Err(NotStored::VaryStar)),
        ("accept-language, *", Err(NotStored::VaryStar)),
        ("accept, *", Err(NotStored::VaryStar)),
        ("accept", Err(NotStored::VaryNotKeyed("accept".into()))),
        ("Accept", Err(NotStored::VaryNotKeyed("accept".into()))),
        (
            "accept-language, Cookie",
            Err(NotStored::VaryNotKeyed("cookie".into())),
        ),
        (
            "Accept-Encoding, Origin",
            Err(NotStored::VaryNotKeyed("origin".into())),
        ),
        (
            "authorization",
            Err(NotStored::VaryNotKeyed("authorization".into())),
        ),
        (
            "accept-languages",
            Err(NotStored::VaryNotKeyed("accept-languages".into())),
        ),
    ];
    for (vary, want) in cases {
        let resp = ResponseFacts {
            vary: Some(vary),
            ..ok("max-age=60")
        };
        assert_eq!(check(get(), resp, false), *want, "Vary: {vary}");
    }
    // Without a keyed header, accept-encoding is still allowed and nothing else is.
    let resp = ResponseFacts {
        vary: Some("accept-encoding"),
        ..ok("max-age=60")
    };
    assert_eq!(storable(&get(), &resp, &spec(60, 0), &[], false), Ok(()));
    let resp = ResponseFacts {
        vary: Some("accept-language"),
        ..ok("max-age=60")
    };
    assert_eq!(
        storable(&get(), &resp, &spec(60, 0), &[], false),
        Err(NotStored::VaryNotKeyed("accept-language".into()))
    );
}

#[test]
fn authorization() {
    let cases: &[(&str, Result<(), NotStored>)] = &[
        ("", Err(NotStored::Authorization)),
        ("max-age=60", Err(NotStored::Authorization)),
        ("no-cache, max-age=60", Err(NotStored::Authorization)),
        (
            "proxy-revalidate, max-age=60",
            Err(NotStored::Authorization),
        ),
        ("public=1, max-age=60", Err(NotStored::Authorization)),
        ("public", Ok(())),
        ("public, max-age=60", Ok(())),
        ("s-maxage=60", Ok(())),
        ("must-revalidate", Ok(())),
        ("must-revalidate, max-age=60", Ok(())),
    ];
    for (cc, want) in cases {
        // With a validator, so that no-cache responses are worth storing.
        let resp = ResponseFacts {
            has_etag: true,
            ..ok(cc)
        };
        assert_eq!(check(authed(), resp, false), *want, "{cc:?}");
        // Per consumer, the consumer is in the key.
        assert_eq!(check(authed(), resp, true), Ok(()), "{cc:?} per consumer");
        // Without credentials the rule does not apply.
        assert_eq!(check(get(), resp, false), Ok(()), "{cc:?} anonymous");
    }
}

#[test]
fn too_large() {
    let max = spec(60, 0).max_body_bytes;
    let cases: &[(Option<u64>, Result<(), NotStored>)] = &[
        (None, Ok(())),
        (Some(0), Ok(())),
        (Some(max), Ok(())),
        (Some(max + 1), Err(NotStored::TooLarge)),
        (Some(u64::MAX), Err(NotStored::TooLarge)),
    ];
    for (len, want) in cases {
        let resp = ResponseFacts {
            content_length: *len,
            ..ok("max-age=60")
        };
        assert_eq!(check(get(), resp, false), *want, "{len:?}");
    }
}

#[test]
fn zero_lifetime() {
    let date = rfc_date(0);
    let expired = rfc_date(-10);
    #[derive(Clone, Copy)]
    struct Case<'a> {
        cc: &'a str,
        expires: Option<&'a str>,
        etag: bool,
        last_modified: bool,
        ttl_s: u64,
        stale_if_error_s: u64,
        zero: bool,
    }
    let base = Case {
        cc: "",
        expires: None,
        etag: false,
        last_modified: false,
        ttl_s: 60,
        stale_if_error_s: 0,
        zero: false,
    };
    let cases = [
        Case {
            cc: "max-age=0",
            zero: true,
            ..base
        },
        Case {
            cc: "s-maxage=0",
            zero: true,
            ..base
        },
        Case {
            cc: "no-cache",
            zero: true,
            ..base
        },
        Case {
            cc: "max-age=abc",
            zero: true,
            ..base
        },
        Case {
            expires: Some("0"),
            zero: true,
            ..base
        },
        Case {
            expires: Some(expired.as_str()),
            zero: true,
            ..base
        },
        Case {
            ttl_s: 0,
            zero: true,
            ..base
        },
        // A validator makes a stale copy useful: it can be revalidated.
        Case {
            cc: "max-age=0",
            etag: true,
            ..base
        },
        Case {
            cc: "no-cache",
            last_modified: true,
            ..base
        },
        Case {
            ttl_s: 0,
            etag: true,
            ..base
        },
        // So does a stale-if-error window...
        Case {
            cc: "max-age=0",
            stale_if_error_s: 60,
            ..base
        },
        Case {
            expires: Some("0"),
            stale_if_error_s: 60,
            ..base
        },
        // ...unless the upstream forbids serving stale.
        Case {
            cc: "max-age=0, must-revalidate",
            stale_if_error_s: 60,
            zero: true,
            ..base
        },
        Case {
            cc: "no-cache",
            stale_if_error_s: 60,
            zero: true,
            ..base
        },
        Case {
            cc: "s-maxage=0",
            stale_if_error_s: 60,
            zero: true,
            ..base
        },
        Case {
            cc: "max-age=0, stale-if-error=0",
            stale_if_error_s: 60,
            zero: true,
            ..base
        },
        Case {
            cc: "no-cache, stale-if-error=30",
            stale_if_error_s: 60,
            ..base
        },
        // Positive lifetimes.
        Case {
            cc: "max-age=1",
            ..base
        },
        // No freshness stated and no default_ttl_s: nothing to reuse.
        Case {
            cc: "",
            zero: true,
            ..base
        },
    ];
    for c in cases {
        let resp = ResponseFacts {
            expires: c.expires,
            date: Some(date.as_str()),
            has_etag: c.etag,
            has_last_modified: c.last_modified,
            ..ok(c.cc)
        };
        let mut s = spec(c.ttl_s, c.stale_if_error_s);
        s.vary = keyed();
        assert_eq!(
            storable(&get(), &resp, &s, &keyed(), false),
            if c.zero {
                Err(NotStored::ZeroLifetime)
            } else {
                Ok(())
            },
            "cc={:?} expires={:?} etag={} lm={} ttl={} sie={}",
            c.cc,
            c.expires,
            c.etag,
            c.last_modified,
            c.ttl_s,
            c.stale_if_error_s
        );
    }
}

#[test]
fn reasons_are_short_tokens() {
    let cases: &[(NotStored, &str, &str)] = &[
        (NotStored::Method, "method", "method"),
        (NotStored::Status(206), "status", "status 206"),
        (NotStored::NoStore, "no-store", "no-store"),
        (NotStored::Private, "private", "private"),
        (NotStored::SetCookie, "set-cookie", "set-cookie"),
        (NotStored::VaryStar, "vary-star", "vary-star"),
        (
            NotStored::VaryNotKeyed("accept".into()),
            "vary-not-keyed",
            "vary-not-keyed accept",
        ),
        (NotStored::Authorization, "authorization", "authorization"),
        (NotStored::TooLarge, "too-large", "too-large"),
        (
            NotStored::RequestNoStore,
            "request-no-store",
            "request-no-store",
        ),
        (NotStored::ZeroLifetime, "zero-lifetime", "zero-lifetime"),
    ];
    for (v, reason, display) in cases {
        assert_eq!(v.reason(), *reason);
        assert_eq!(v.to_string(), *display);
        assert!(reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'));
    }
}
