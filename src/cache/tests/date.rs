use crate::cache::date::{format_http_date, parse_http_date, parse_http_date_at};

/// The RFC 9110 §5.6.7 example instant.
const RFC_EXAMPLE: i64 = 784_111_777;

#[test]
fn parses_the_three_rfc_9110_formats() {
    let cases: &[(&str, Option<i64>)] = &[
        ("Sun, 06 Nov 1994 08:49:37 GMT", Some(RFC_EXAMPLE)),
        ("Sunday, 06-Nov-94 08:49:37 GMT", Some(RFC_EXAMPLE)),
        ("Sun Nov  6 08:49:37 1994", Some(RFC_EXAMPLE)),
        // asctime with a two-digit day.
        ("Sun Nov 06 08:49:37 1994", Some(RFC_EXAMPLE)),
        ("Thu, 01 Jan 1970 00:00:00 GMT", Some(0)),
        ("Wed, 31 Dec 1969 23:59:59 GMT", Some(-1)),
        ("Tue, 29 Feb 2000 12:00:00 GMT", Some(951_825_600)),
        ("Fri, 31 Dec 9999 23:59:59 GMT", Some(253_402_300_799)),
        ("Sat, 01 Jan 0000 00:00:00 GMT", Some(-62_167_219_200)),
        // RFC 9111 §4.2: caches match case-insensitively.
        ("sun, 06 nov 1994 08:49:37 gmt", Some(RFC_EXAMPLE)),
        ("SUNDAY, 06-NOV-94 08:49:37 GMT", Some(RFC_EXAMPLE)),
        ("SUN NOV  6 08:49:37 1994", Some(RFC_EXAMPLE)),
        // Surrounding whitespace is not part of the value.
        ("  Sun, 06 Nov 1994 08:49:37 GMT\t", Some(RFC_EXAMPLE)),
        // The day name is redundant and not checked against the date.
        ("Mon, 06 Nov 1994 08:49:37 GMT", Some(RFC_EXAMPLE)),
        // A leap second is the next second.
        ("Sat, 31 Dec 2016 23:59:60 GMT", Some(1_483_228_800)),
        ("Sun, 01 Jan 2017 00:00:00 GMT", Some(1_483_228_800)),
    ];
    for (input, want) in cases {
        assert_eq!(parse_http_date(input), *want, "{input:?}");
    }
}

#[test]
fn rejects_garbage() {
    let cases = [
        "",
        " ",
        "0",
        "-1",
        "now",
        "784111777",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 +0000",
        "Sun, 06 Nov 1994 08:49:37 GMT extra",
        "Sun, 06 Nov 1994 08:49:37 GMTx",
        "Sun,06 Nov 1994 08:49:37 GMT",
        "Sun,  06 Nov 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 November 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 06 Nov 1994 08:49 GMT",
        "Sun, 06-Nov-94 08:49:37 GMT", // short day name, RFC 850 body
        "Sunday, 06 Nov 1994 08:49:37 GMT", // long day name, IMF body
        "Sundae, 06-Nov-94 08:49:37 GMT",
        "Foo, 06 Nov 1994 08:49:37 GMT",
        "Sun 06 Nov 1994 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov  6 08:49:37 94",
        "Sun Nov  6 08:49:37 1994 GMT",
        "Sunday Nov  6 08:49:37 1994",
        "Sun, 06 Xyz 1994 08:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Thu, 29 Feb 2001 08:49:37 GMT",
        "Thu, 29 Feb 1900 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 23:60:00 GMT",
        "Sun, 06 Nov 1994 23:59:61 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT\u{e9}",
        "S\u{e9}n, 06 Nov 1994 08:49:37 GMT",
        "Sun, 0\u{e9} Nov 1994 08:49:37 GMT",
        "Sun, +6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov -994 08:49:37 GMT",
    ];
    for input in cases {
        assert_eq!(parse_http_date(input), None, "{input:?}");
    }
}

#[test]
fn leap_years() {
    assert!(parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT").is_some());
    assert!(parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT").is_some());
    assert!(parse_http_date("Thu, 29 Feb 2100 00:00:00 GMT").is_none());
    assert!(parse_http_date("Sat, 29 Feb 2025 00:00:00 GMT").is_none());
}

#[test]
fn rfc_850_years_use_a_fixed_pivot_without_a_clock() {
    let cases: &[(&str, &str)] = &[
        (
            "Thursday, 01-Jan-70 00:00:00 GMT",
            "Thu, 01 Jan 1970 00:00:00 GMT",
        ),
        (
            "Friday, 31-Dec-99 23:59:59 GMT",
            "Fri, 31 Dec 1999 23:59:59 GMT",
        ),
        (
            "Saturday, 01-Jan-00 00:00:00 GMT",
            "Sat, 01 Jan 2000 00:00:00 GMT",
        ),
        (
            "Sunday, 01-Jan-69 00:00:00 GMT",
            "Sun, 01 Jan 2069 00:00:00 GMT",
        ),
    ];
    for (rfc850, imf) in cases {
        assert_eq!(parse_http_date(rfc850), parse_http_date(imf), "{rfc850}");
        assert!(parse_http_date(rfc850).is_some(), "{rfc850}");
    }
}

#[test]
fn rfc_850_years_relative_to_now_follow_the_50_year_rule() {
    let y = |year: i64| parse_http_date(&format!("Fri, 01 Jan {year:04} 00:00:00 GMT")).unwrap();
    let in_2026 = y(2026) + 86_400 * 100;
    let in_2099 = y(2099);
    let cases: &[(i64, &str, i64)] = &[
        (in_2026, "Thursday, 01-Jan-26 00:00:00 GMT", 2026),
        (in_2026, "Thursday, 01-Jan-76 00:00:00 GMT", 2076), // exactly 50 years ahead
        (in_2026, "Thursday, 01-Jan-77 00:00:00 GMT", 1977), // more than 50 years ahead
        (in_2026, "Thursday, 01-Jan-94 00:00:00 GMT", 1994),
        (in_2026, "Thursday, 01-Jan-00 00:00:00 GMT", 2000),
        (in_2099, "Thursday, 01-Jan-00 00:00:00 GMT", 2100),
        (in_2099, "Thursday, 01-Jan-49 00:00:00 GMT", 2149),
        (in_2099, "Thursday, 01-Jan-50 00:00:00 GMT", 2050),
    ];
    for (now, input, year) in cases {
        assert_eq!(
            parse_http_date_at(input, *now),
            Some(y(*year)),
            "{input} at {now}"
        );
    }
    // The other formats do not depend on now.
    assert_eq!(
        parse_http_date_at("Sun, 06 Nov 1994 08:49:37 GMT", i64::MIN),
        Some(RFC_EXAMPLE)
    );
    assert_eq!(parse_http_date_at("garbage", 0), None);
}

#[test]
fn formats_imf_fixdate() {
    let cases: &[(i64, &str)] = &[
        (RFC_EXAMPLE, "Sun, 06 Nov 1994 08:49:37 GMT"),
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (-1, "Wed, 31 Dec 1969 23:59:59 GMT"),
        (951_825_600, "Tue, 29 Feb 2000 12:00:00 GMT"),
        (1_483_228_799, "Sat, 31 Dec 2016 23:59:59 GMT"),
        (4_102_444_800, "Fri, 01 Jan 2100 00:00:00 GMT"),
        (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT"),
        (-62_167_219_200, "Sat, 01 Jan 0000 00:00:00 GMT"),
        // Clamped to what four digits can express.
        (i64::MAX, "Fri, 31 Dec 9999 23:59:59 GMT"),
        (i64::MIN, "Sat, 01 Jan 0000 00:00:00 GMT"),
    ];
    for (t, want) in cases {
        assert_eq!(format_http_date(*t), *want, "{t}");
    }
}

#[test]
fn format_then_parse_round_trips() {
    let mut t: i64 = -62_167_219_200;
    while t < 253_402_300_799 {
        let s = format_http_date(t);
        assert_eq!(parse_http_date(&s), Some(t), "{s}");
        t += 7_777_777 * 13 + 1;
    }
    for t in [-86_401, -86_400, -1, 0, 1, 86_399, 86_400, 1_700_000_000] {
        assert_eq!(parse_http_date(&format_http_date(t)), Some(t), "{t}");
    }
}
