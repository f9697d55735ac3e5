use super::{rfc_date, spec};
use crate::cache::freshness::{
    classify, current_age_s, freshness_lifetime_s, initial_age_s, longest_retention_s, retention_s,
    stale_if_error_window_s, ttl_remaining_s, Freshness,
};
use crate::cache::rules::ResponseFacts;

fn resp<'a>(
    cc: Option<&'a str>,
    expires: Option<&'a str>,
    date: Option<&'a str>,
) -> ResponseFacts<'a> {
    ResponseFacts {
        status: 200,
        cache_control: cc,
        expires,
        date,
        ..ResponseFacts::default()
    }
}

#[test]
fn lifetime_sources_and_cap() {
    let d0 = rfc_date(0);
    let d40 = rfc_date(40);
    let d4000 = rfc_date(4000);
    let dm10 = rfc_date(-10);
    let rfc850_plus_40 = "Sunday, 06-Nov-94 08:50:17 GMT";
    let two = format!("{d40}, {d4000}");
    // (label, cache-control, expires, date, expected) with ttl_s = 60
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        u64,
    );
    let cases: &[Case] = &[
        // Without default_ttl_s a response that states no freshness has none (it used to be
        // fresh for ttl_s).
        ("upstream says nothing", None, None, Some(&d0), 0),
        ("empty cache-control", Some(""), None, None, 0),
        ("public only", Some("public"), None, None, 0),
        (
            "must-revalidate only",
            Some("must-revalidate"),
            None,
            None,
            0,
        ),
        ("max-age", Some("max-age=30"), None, None, 30),
        ("max-age=0", Some("max-age=0"), None, None, 0),
        ("max-age capped", Some("max-age=600"), None, None, 60),
        (
            "s-maxage first",
            Some("s-maxage=10, max-age=30"),
            None,
            None,
            10,
        ),
        (
            "s-maxage over max-age",
            Some("max-age=10, s-maxage=30"),
            None,
            None,
            30,
        ),
        ("s-maxage capped", Some("s-maxage=600"), None, None, 60),
        (
            "max-age beats expires",
            Some("max-age=30"),
            Some(&d4000),
            Some(&d0),
            30,
        ),
        (
            "max-age beats bad expires",
            Some("max-age=30"),
            Some("0"),
            Some(&d0),
            30,
        ),
        ("expires - date", None, Some(&d40), Some(&d0), 40),
        ("expires - date capped", None, Some(&d4000), Some(&d0), 60),
        ("expires before date", None, Some(&dm10), Some(&d0), 0),
        ("expires equals date", None, Some(&d0), Some(&d0), 0),
        ("expires rfc 850", None, Some(rfc850_plus_40), Some(&d0), 40),
        ("expires invalid", None, Some("0"), Some(&d0), 0),
        ("expires -1", None, Some("-1"), Some(&d0), 0),
        ("expires twice", None, Some(&two), Some(&d0), 0),
        ("expires without date", None, Some(&d40), None, 0),
        (
            "expires with bad date",
            None,
            Some(&d40),
            Some("yesterday"),
            0,
        ),
        (
            "cache-control without lifetime, expires",
            Some("public"),
            Some(&d40),
            Some(&d0),
            40,
        ),
        ("no-cache", Some("no-cache"), None, None, 0),
        (
            "no-cache beats max-age",
            Some("no-cache, max-age=60"),
            None,
            None,
            0,
        ),
        (
            "qualified no-cache: the field is stripped instead",
            Some("no-cache=\"x-a\", max-age=60"),
            None,
            None,
            60,
        ),
        ("no-store", Some("no-store"), None, None, 0),
        ("invalid max-age", Some("max-age=abc"), None, None, 0),
        (
            "conflicting max-age",
            Some("max-age=1, max-age=2"),
            None,
            None,
            0,
        ),
        (
            "invalid s-maxage",
            Some("s-maxage=x, max-age=30"),
            None,
            None,
            0,
        ),
        ("unknown directives only", Some("foo, bar=1"), None, None, 0),
    ];
    for (label, cc, expires, date, want) in cases {
        let r = resp(*cc, *expires, *date);
        assert_eq!(freshness_lifetime_s(&r, &spec(60, 0)), *want, "{label}");
    }
    // A route ttl of 0 caps everything to 0.
    assert_eq!(
        freshness_lifetime_s(&resp(Some("max-age=60"), None, None), &spec(0, 0)),
        0
    );
    assert_eq!(
        freshness_lifetime_s(&resp(None, None, None), &spec(0, 0)),
        0
    );
}

#[test]
fn stale_if_error_window() {
    // The route allows 600 s; the upstream may only shorten it.
    let cases: &[(Option<&str>, u64)] = &[
        (None, 600),
        (Some("max-age=60"), 600),
        (Some("public, max-age=0"), 600),
        (Some("stale-if-error=30"), 30),
        (Some("max-age=60, stale-if-error=0"), 0),
        (Some("stale-if-error=6000"), 600),
        (Some("stale-if-error=abc"), 0),
        (Some("stale-if-error=30, stale-if-error=60"), 0),
        (Some("must-revalidate"), 0),
        (Some("max-age=60, proxy-revalidate"), 0),
        (Some("no-cache"), 0),
        (Some("s-maxage=60"), 0),
        // An explicit stale-if-error is a permission that overrides those.
        (Some("s-maxage=60, stale-if-error=120"), 120),
        (Some("must-revalidate, stale-if-error=120"), 120),
        (Some("no-cache, stale-if-error=6000"), 600),
    ];
    for (cc, want) in cases {
        let r = resp(*cc, None, None);
        assert_eq!(stale_if_error_window_s(&r, &spec(60, 600)), *want, "{cc:?}");
    }
    // A route without stale-if-error never serves stale, whatever the upstream says.
    let r = resp(Some("stale-if-error=100"), None, None);
    assert_eq!(stale_if_error_window_s(&r, &spec(60, 0)), 0);
}

#[test]
fn retention() {
    let with = |cc: &'static str, etag: bool| ResponseFacts {
        has_etag: etag,
        ..resp(Some(cc), None, None)
    };
    let s = spec(60, 600);
    let cases: &[(ResponseFacts, u64)] = &[
        (with("max-age=30", false), 630),
        (with("max-age=30", true), 660),
        (with("max-age=30, must-revalidate", false), 30),
        (with("max-age=30, must-revalidate", true), 60),
        (with("no-cache", true), 60),
        (with("max-age=0", false), 600),
        (with("", false), 600), // no lifetime without default_ttl_s: only the window
        (with("", true), 660),
        (
            ResponseFacts {
                has_last_modified: true,
                ..with("max-age=5, stale-if-error=10", false)
            },
            70,
        ),
    ];
    for (r, want) in cases {
        assert_eq!(retention_s(r, &s), *want, "{r:?}");
    }
    assert_eq!(
        retention_s(&with("", true), &spec(u64::MAX, u64::MAX)),
        u64::MAX
    );
}

/// An invalidation marker lives [`longest_retention_s`]: no entry of the route outlives it,
/// whatever the response says (a stale-while-revalidate window of its own included).
#[test]
fn no_entry_outlives_the_longest_retention() {
    let mut swr = spec(60, 0);
    swr.stale_while_revalidate_s = 60;
    for s in [spec(60, 600), spec(60, 0), swr.clone(), spec(3600, 30)] {
        let longest = longest_retention_s(&s);
        for cc in [
            "",
            "max-age=30",
            "max-age=6000, stale-while-revalidate=6000",
            "stale-while-revalidate=100000",
            "max-age=10, stale-if-error=100000",
            "s-maxage=100000",
        ] {
            for etag in [false, true] {
                let r = ResponseFacts {
                    has_etag: etag,
                    ..resp(Some(cc), None, None)
                };
                assert!(retention_s(&r, &s) <= longest, "{cc:?} on {s:?}");
            }
        }
    }
    // The case that outlived the old marker (ttl_s + stale_if_error_s = 60 s): a 60 s window
    // of stale-while-revalidate.
    let r = resp(Some("max-age=60"), None, None);
    assert_eq!(retention_s(&r, &swr), 120);
    assert_eq!(longest_retention_s(&swr), 120);
}

#[test]
fn current_age() {
    let cases: &[(i64, u64, i64, u64)] = &[
        // (stored_at, age at store, now, expected)
        (100, 0, 100, 0),
        (100, 0, 150, 50),
        (100, 5, 150, 55),
        (100, 5, 90, 5), // the clock went backwards: never negative
        (i64::MIN, 0, i64::MAX, u64::try_from(i64::MAX).unwrap()),
        (i64::MIN, u64::MAX, i64::MAX, u64::MAX),
        (i64::MAX, 7, i64::MIN, 7),
    ];
    for (stored, age, now, want) in cases {
        assert_eq!(
            current_age_s(*stored, *age, *now),
            *want,
            "{stored} {age} {now}"
        );
    }
}

#[test]
fn initial_age() {
    // Response received at t = 1000 for a request sent at t = 998.
    let (req_t, resp_t) = (998, 1000);
    let date_5_ago = super::super::date::format_http_date(resp_t - 5);
    let date_future = super::super::date::format_http_date(resp_t + 50);
    let cases: &[(Option<&str>, Option<&str>, u64)] = &[
        // (Age, Date, expected)
        (None, None, 2),                     // only the response delay
        (Some("10"), None, 12),              // age + delay
        (None, Some(&date_5_ago), 5),        // apparent age beats delay
        (Some("1"), Some(&date_5_ago), 5),   // max(apparent 5, corrected 3)
        (Some("10"), Some(&date_5_ago), 12), // max(apparent 5, corrected 12)
        (None, Some(&date_future), 2),       // skewed Date: apparent age 0
        (Some("abc"), None, 2),              // invalid Age is "not available"
        (Some("-5"), None, 2),
        (Some("5, 20"), None, 7), // the first of several (RFC 9111 §5.1)
        (Some("20, 5"), None, 22),
        (Some("x, 20"), None, 2), // an invalid first member: the field is ignored
        (Some(" 7 ,x"), None, 9),
        (Some(""), None, 2),
        (Some("1.5"), None, 2),
        (Some("+3"), None, 2),
        (Some("99999999999999"), None, (1 << 31) + 2),
        (Some("3"), Some("garbage"), 5),
    ];
    for (age, date, want) in cases {
        assert_eq!(
            initial_age_s(*age, *date, req_t, resp_t),
            *want,
            "{age:?} {date:?}"
        );
    }
    // Response time before request time: no negative delay.
    assert_eq!(initial_age_s(Some("4"), None, 1000, 990), 4);
    assert_eq!(
        initial_age_s(None, None, i64::MIN, i64::MAX),
        u64::try_from(i64::MAX).unwrap()
    );
}

#[test]
fn ttl_remaining() {
    let cases: &[(u64, u64, i64)] = &[
        (60, 18, 42),
        (60, 60, 0),
        (60, 90, -30),
        (0, 0, 0),
        (u64::MAX, 0, i64::MAX),
        (0, u64::MAX, -i64::MAX),
    ];
    for (lifetime, age, want) in cases {
        assert_eq!(ttl_remaining_s(*lifetime, *age), *want, "{lifetime} {age}");
    }
}

#[test]
fn classify_boundaries() {
    use Freshness::*;
    let cases: &[(u64, u64, u64, Freshness)] = &[
        // (lifetime, age, stale-if-error window, expected)
        (60, 0, 0, Fresh),
        (60, 59, 0, Fresh),
        (60, 60, 0, Stale),
        (60, 61, 0, Stale),
        (60, 59, 10, Fresh),
        (60, 60, 10, StaleServeOnError),
        (60, 69, 10, StaleServeOnError),
        (60, 70, 10, Stale),
        (0, 0, 0, Stale),
        (0, 0, 1, StaleServeOnError),
        (0, 1, 1, Stale),
        (u64::MAX, u64::MAX - 1, 5, Fresh),
        (u64::MAX, u64::MAX, u64::MAX, Stale),
        (1, u64::MAX, u64::MAX, Stale),
        (10, u64::MAX - 1, u64::MAX, StaleServeOnError),
    ];
    for (lifetime, age, sie, want) in cases {
        assert_eq!(
            classify(*lifetime, *age, *sie),
            *want,
            "{lifetime} {age} {sie}"
        );
    }
}

#[test]
fn default_ttl_is_the_heuristic_and_ttl_caps_it() {
    use crate::cache::heuristic_lifetime_s;
    let mut s = spec(60, 0);
    s.default_ttl_s = 20;
    let silent = |status| ResponseFacts {
        status,
        ..resp(None, None, None)
    };
    assert_eq!(freshness_lifetime_s(&silent(200), &s), 20);
    assert_eq!(freshness_lifetime_s(&silent(404), &s), 20);
    assert_eq!(freshness_lifetime_s(&silent(405), &s), 20);
    assert_eq!(freshness_lifetime_s(&silent(414), &s), 20);
    // Not heuristically cacheable, or a 5xx: no heuristic freshness.
    for status in [201, 302, 400, 500, 501, 503] {
        assert_eq!(freshness_lifetime_s(&silent(status), &s), 0, "{status}");
        assert_eq!(heuristic_lifetime_s(status, &s), 0);
    }
    // Explicit freshness wins over the default, in both directions, and ttl_s caps both.
    assert_eq!(
        freshness_lifetime_s(&resp(Some("max-age=5"), None, None), &s),
        5
    );
    assert_eq!(
        freshness_lifetime_s(&resp(Some("max-age=600"), None, None), &s),
        60
    );
    s.default_ttl_s = 600;
    assert_eq!(freshness_lifetime_s(&silent(200), &s), 60);
}

#[test]
fn targeted_fields_decide_and_expires_is_then_ignored() {
    let d0 = rfc_date(0);
    let d30 = rfc_date(30);
    let with = |cc: Option<&'static str>, cf: Option<&'static str>, cdn: Option<&'static str>| {
        ResponseFacts {
            targeted: [cf, cdn],
            ..resp(cc, None, None)
        }
    };
    let s = spec(600, 0);
    let cases: &[(ResponseFacts, u64)] = &[
        (with(Some("max-age=10"), None, Some("max-age=100")), 100),
        (
            with(Some("max-age=10"), Some("max-age=200"), Some("max-age=100")),
            200,
        ),
        (with(Some("no-store"), None, Some("max-age=100")), 100),
        (with(Some("max-age=100"), None, Some("no-cache")), 0),
        // Invalid or empty targeted fields are ignored: the next one, then Cache-Control.
        (
            with(Some("max-age=10"), Some("max-age=x=1"), Some("max-age=100")),
            100,
        ),
        (with(Some("max-age=10"), Some(""), None), 10),
        (with(Some("max-age=10"), Some("MAX-AGE=5"), None), 10),
        (with(Some("max-age=10"), Some("max-age=5,"), None), 10),
        (with(Some("max-age=10"), None, Some("max-age=-1")), 0),
        (with(Some("max-age=10"), None, Some("max-age=1.5")), 0),
        (
            with(Some("max-age=10"), None, Some("s-maxage=20, max-age=100")),
            20,
        ),
        (
            with(Some("max-age=10"), None, Some("public;x=1, max-age=30;y")),
            30,
        ),
        // A targeted field without a lifetime leaves it to the heuristic (0 here), even if
        // Cache-Control or Expires would say more.
        (with(Some("max-age=10"), None, Some("public")), 0),
    ];
    for (r, want) in cases {
        assert_eq!(freshness_lifetime_s(r, &s), *want, "{r:?}");
    }
    let r = ResponseFacts {
        targeted: [None, Some("public")],
        ..resp(None, Some(&d30), Some(&d0))
    };
    assert_eq!(freshness_lifetime_s(&r, &s), 0, "Expires is ignored");
    assert!(!r.has_explicit_freshness());
    let r = resp(None, Some(&d30), Some(&d0));
    assert_eq!(freshness_lifetime_s(&r, &s), 30);
}

#[test]
fn stale_while_revalidate_windows() {
    use crate::cache::stale_while_revalidate_window_s;
    let mut s = spec(600, 0);
    s.stale_while_revalidate_s = 30;
    let cases: &[(&str, u64)] = &[
        ("max-age=10", 30),
        ("max-age=10, stale-while-revalidate=5", 5),
        ("max-age=10, stale-while-revalidate=5000", 600),
        ("max-age=10, stale-while-revalidate=x", 0),
        ("s-maxage=10", 0),
        ("s-maxage=10, stale-while-revalidate=20", 20),
        ("max-age=10, must-revalidate, stale-while-revalidate=20", 0),
        ("max-age=10, proxy-revalidate", 0),
        ("no-cache, stale-while-revalidate=20", 0),
    ];
    for (cc, want) in cases {
        let r = resp(Some(cc), None, None);
        assert_eq!(stale_while_revalidate_window_s(&r, &s), *want, "{cc}");
    }
    let r = ResponseFacts {
        targeted: [None, Some("max-age=10, stale-while-revalidate=7")],
        ..resp(Some("max-age=10"), None, None)
    };
    assert_eq!(stale_while_revalidate_window_s(&r, &s), 7);
}
