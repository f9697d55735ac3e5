use super::rfc_date;
use crate::cache::conditional::{
    not_modified, parse_entity_tag, parse_entity_tag_list, preconditions_apply,
    revalidation_headers, EntityTag,
};

#[test]
fn if_none_match() {
    let cases: &[(&str, Option<&str>, bool)] = &[
        // (If-None-Match, stored ETag, 304?)
        ("\"a\"", Some("\"a\""), true),
        ("\"a\"", Some(" \"a\" "), true),
        ("W/\"a\"", Some("\"a\""), true), // weak comparison
        ("\"a\"", Some("W/\"a\""), true),
        ("W/\"a\"", Some("W/\"a\""), true),
        ("\"b\"", Some("\"a\""), false),
        ("\"A\"", Some("\"a\""), false), // opaque tags are case-sensitive
        ("\"\"", Some("\"\""), true),
        ("\"\"", Some("\"a\""), false),
        // Lists.
        ("\"x\", \"a\"", Some("\"a\""), true),
        ("\"x\",W/\"a\"", Some("\"a\""), true),
        (" \"x\" , , \"a\" ", Some("\"a\""), true),
        ("\"x\", \"y\"", Some("\"a\""), false),
        ("\"a,b\"", Some("\"a,b\""), true), // commas are etagc
        ("\"a\", \"b\"", Some("\"a,b\""), false),
        // * matches whatever is stored.
        ("*", Some("\"a\""), true),
        (" * ", None, true),
        // Malformed lists never match.
        ("\"a\", *", Some("\"a\""), false),
        ("a", Some("\"a\""), false),
        ("w/\"a\"", Some("\"a\""), false), // W/ is case-sensitive
        ("\"a\" \"b\"", Some("\"a\""), false),
        ("\"a\"x", Some("\"a\""), false),
        ("\"a", Some("\"a\""), false),
        ("\"a b\"", Some("\"a b\""), false), // SP is not etagc
        ("", Some("\"a\""), false),
        // Absent or malformed stored ETag never matches.
        ("\"a\"", None, false),
        ("\"a\"", Some("a"), false),
        ("\"a\"", Some("\"a\"junk"), false),
    ];
    for (inm, etag, want) in cases {
        assert_eq!(
            not_modified(Some(inm), None, *etag, None),
            *want,
            "INM {inm:?} vs {etag:?}"
        );
    }
}

#[test]
fn if_none_match_overrides_if_modified_since() {
    let lm = rfc_date(0);
    let later = rfc_date(10);
    // IMS alone would say 304...
    assert!(not_modified(None, Some(&later), Some("\"a\""), Some(&lm)));
    // ...but a present If-None-Match decides, matching or not, well-formed or not.
    assert!(!not_modified(
        Some("\"b\""),
        Some(&later),
        Some("\"a\""),
        Some(&lm)
    ));
    assert!(!not_modified(
        Some("garbage"),
        Some(&later),
        Some("\"a\""),
        Some(&lm)
    ));
    assert!(!not_modified(
        Some(""),
        Some(&later),
        Some("\"a\""),
        Some(&lm)
    ));
    assert!(!not_modified(Some("\"a\""), Some(&later), None, Some(&lm)));
    assert!(not_modified(
        Some("\"a\""),
        Some("garbage"),
        Some("\"a\""),
        None
    ));
}

#[test]
fn if_modified_since() {
    let lm = rfc_date(0);
    let cases: &[(&str, Option<&str>, bool)] = &[
        // (If-Modified-Since, stored Last-Modified, 304?)
        (&rfc_date(0), Some(&lm), true), // equal: not modified
        (&rfc_date(1), Some(&lm), true),
        (&rfc_date(-1), Some(&lm), false),
        ("Sunday, 06-Nov-94 08:49:37 GMT", Some(&lm), true),
        ("Sun Nov  6 08:49:37 1994", Some(&lm), true),
        ("sun, 06 nov 1994 08:49:37 gmt", Some(&lm), true),
        // Applies only with a Last-Modified and valid dates.
        (&rfc_date(10), None, false),
        (&rfc_date(10), Some("garbage"), false),
        ("garbage", Some(&lm), false),
        ("", Some(&lm), false),
        (
            "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT",
            Some(&lm),
            false,
        ),
    ];
    for (ims, last_modified, want) in cases {
        assert_eq!(
            not_modified(None, Some(ims), Some("\"a\""), *last_modified),
            *want,
            "IMS {ims:?} vs {last_modified:?}"
        );
    }
    // No conditional headers: never 304.
    assert!(!not_modified(None, None, Some("\"a\""), Some(&lm)));
}

#[test]
fn preconditions_apply_to_2xx_only() {
    for (status, want) in [
        (200, true),
        (203, true),
        (204, true),
        (299, true),
        (301, false),
        (404, false),
        (410, false),
        (199, false),
    ] {
        assert_eq!(preconditions_apply(status), want, "{status}");
    }
}

#[test]
fn entity_tags() {
    assert_eq!(
        parse_entity_tag("\"a\""),
        Some(EntityTag {
            weak: false,
            opaque: "a"
        })
    );
    assert_eq!(
        parse_entity_tag(" W/\"a\" "),
        Some(EntityTag {
            weak: true,
            opaque: "a"
        })
    );
    assert_eq!(
        parse_entity_tag("\"\u{e9}\""),
        Some(EntityTag {
            weak: false,
            opaque: "\u{e9}"
        })
    );
    assert_eq!(parse_entity_tag("\"a\", \"b\""), None);
    assert_eq!(parse_entity_tag("W/a"), None);
    assert_eq!(parse_entity_tag(""), None);
    assert_eq!(parse_entity_tag_list(""), Some(vec![]));
    assert_eq!(parse_entity_tag_list(" , "), Some(vec![]));
    assert_eq!(
        parse_entity_tag_list("\"a\", W/\"b\""),
        Some(vec![
            EntityTag {
                weak: false,
                opaque: "a"
            },
            EntityTag {
                weak: true,
                opaque: "b"
            }
        ])
    );
    let strong = EntityTag {
        weak: false,
        opaque: "a",
    };
    let weak = EntityTag {
        weak: true,
        opaque: "a",
    };
    assert!(strong.strong_eq(&strong));
    assert!(!strong.strong_eq(&weak));
    assert!(!weak.strong_eq(&weak));
    assert!(weak.weak_eq(&strong));
}

#[test]
fn revalidation_headers_carry_valid_validators_as_received() {
    let lm = rfc_date(0);
    let rfc850 = "Sunday, 06-Nov-94 08:49:37 GMT";
    type Case<'a> = (Option<&'a str>, Option<&'a str>, Vec<(&'a str, String)>);
    let cases: Vec<Case> = vec![
        (None, None, vec![]),
        (Some("\"a\""), None, vec![("if-none-match", "\"a\"".into())]),
        (
            Some(" W/\"a\" "),
            None,
            vec![("if-none-match", "W/\"a\"".into())],
        ),
        (None, Some(&lm), vec![("if-modified-since", lm.clone())]),
        (
            None,
            Some(rfc850),
            vec![("if-modified-since", rfc850.into())],
        ),
        (
            Some("\"a\""),
            Some(&lm),
            vec![
                ("if-none-match", "\"a\"".into()),
                ("if-modified-since", lm.clone()),
            ],
        ),
        (Some("garbage"), Some("garbage"), vec![]),
        (Some("\"a\", \"b\""), None, vec![]),
    ];
    for (etag, last_modified, want) in cases {
        assert_eq!(
            revalidation_headers(etag, last_modified),
            want,
            "{etag:?} {last_modified:?}"
        );
    }
}
