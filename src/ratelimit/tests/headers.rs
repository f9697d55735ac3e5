use super::*;
use crate::ratelimit::{most_restrictive, policy_header, ratelimit_header};

fn allowed(remaining: u64, reset_s: u64) -> Decision {
    Decision {
        allowed: true,
        limit: 100,
        remaining,
        reset_s,
        retry_after_s: 0,
        retry_after_ms: 0,
    }
}

fn denied(retry_after_s: u64, reset_s: u64) -> Decision {
    Decision {
        allowed: false,
        limit: 100,
        remaining: 0,
        reset_s,
        retry_after_s,
        retry_after_ms: retry_after_s * 1000,
    }
}

/// A strict parser for the subset of RFC 9651 lists these fields use (sf-string items with
/// integer parameters), to show that what we emit parses back to what we meant.
fn parse_list(field: &str) -> Vec<(String, Vec<(String, u64)>)> {
    let b = field.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        assert_eq!(b[i], b'"', "item must be an sf-string in {field:?}");
        i += 1;
        let mut name = String::new();
        loop {
            match b[i] {
                b'\\' => {
                    assert!(matches!(b[i + 1], b'"' | b'\\'), "bad escape in {field:?}");
                    name.push(b[i + 1] as char);
                    i += 2;
                }
                b'"' => {
                    i += 1;
                    break;
                }
                c => {
                    assert!((0x20..=0x7e).contains(&c));
                    name.push(c as char);
                    i += 1;
                }
            }
        }
        let mut params = Vec::new();
        while i < b.len() && b[i] == b';' {
            i += 1;
            let start = i;
            while b[i].is_ascii_lowercase() {
                i += 1;
            }
            let key = field[start..i].to_owned();
            assert_eq!(b[i], b'=');
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            assert!(i - start >= 1 && i - start <= 15, "sf-integer in {field:?}");
            params.push((key, field[start..i].parse().unwrap()));
        }
        out.push((name, params));
        if i == b.len() {
            return out;
        }
        assert_eq!(&field[i..i + 2], ", ", "list separator in {field:?}");
        i += 2;
    }
}

fn params(list: &[(&str, u64)]) -> Vec<(String, u64)> {
    list.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[test]
fn policy_reports_quota_per_window() {
    assert_eq!(
        policy_header(&[("per-user", &lim(100, 60, 100))]),
        r#""per-user";q=100;w=60"#
    );
    // q is the limit, not the burst; the draft defines no burst parameter.
    assert_eq!(
        policy_header(&[
            ("per-user", &lim(100, 60, 100)),
            ("per-ip", &lim(20, 1, 40)),
        ]),
        r#""per-user";q=100;w=60, "per-ip";q=20;w=1"#
    );
}

#[test]
fn ratelimit_reports_remaining_and_effective_window() {
    assert_eq!(
        ratelimit_header(&[("per-user", &allowed(42, 17))]),
        r#""per-user";r=42;t=17"#
    );
    // Denied: r=0 for exactly the time until a retry passes, so t equals Retry-After.
    assert_eq!(
        ratelimit_header(&[("per-user", &denied(3, 60))]),
        r#""per-user";r=0;t=3"#
    );
    assert_eq!(
        ratelimit_header(&[("per-user", &allowed(42, 17)), ("per-ip", &denied(1, 2))]),
        r#""per-user";r=42;t=17, "per-ip";r=0;t=1"#
    );
}

#[test]
fn headers_from_real_decisions() {
    let limits = lim(10, 1, 10);
    let mut b = Bucket::new(limits);
    let first = b.at(T0, 1);
    assert_eq!(
        ratelimit_header(&[("per-ip", &first)]),
        r#""per-ip";r=9;t=1"#
    );
    for _ in 0..9 {
        b.at(T0, 1);
    }
    let refused = b.at(T0, 1);
    assert_eq!(
        ratelimit_header(&[("per-ip", &refused)]),
        r#""per-ip";r=0;t=1"#
    );
    assert_eq!(
        policy_header(&[("per-ip", &limits)]),
        r#""per-ip";q=10;w=1"#
    );
}

#[test]
fn names_are_escaped_sf_strings() {
    let field = policy_header(&[(r#"a"b\c"#, &lim(1, 2, 3)), ("plain", &lim(4, 5, 6))]);
    assert_eq!(field, r#""a\"b\\c";q=1;w=2, "plain";q=4;w=5"#);
    assert_eq!(
        parse_list(&field),
        vec![
            (r#"a"b\c"#.to_owned(), params(&[("q", 1), ("w", 2)])),
            ("plain".to_owned(), params(&[("q", 4), ("w", 5)])),
        ]
    );
    let field = ratelimit_header(&[(r#"\"#, &allowed(1, 2))]);
    assert_eq!(field, r#""\\";r=1;t=2"#);
    assert_eq!(parse_list(&field)[0].0, r"\");
    // Spaces and every other printable character are fine as they are.
    let name = "a b~!#$%&'()*+,-./:;<=>?@[]^_`{|}";
    assert_eq!(
        parse_list(&policy_header(&[(name, &lim(1, 1, 1))]))[0].0,
        name
    );
}

#[test]
fn names_that_cannot_be_sf_strings_are_left_out() {
    let l = lim(1, 1, 1);
    assert_eq!(
        policy_header(&[("café", &l), ("ok", &l), ("tab\there", &l), ("nl\n", &l)]),
        r#""ok";q=1;w=1"#
    );
    assert_eq!(policy_header(&[("café", &l)]), "");
    assert_eq!(
        ratelimit_header(&[("\u{7f}", &allowed(1, 1)), ("ok", &allowed(2, 3))]),
        r#""ok";r=2;t=3"#
    );
}

#[test]
fn empty_input_gives_empty_field() {
    assert_eq!(policy_header(&[]), "");
    assert_eq!(ratelimit_header(&[]), "");
    assert_eq!(policy_header(&[("", &lim(1, 1, 1))]), r#""";q=1;w=1"#);
}

#[test]
fn integers_stay_in_sf_range() {
    let field = policy_header(&[("big", &lim(u64::MAX, u64::MAX, u64::MAX))]);
    assert_eq!(field, r#""big";q=999999999999999;w=999999999999999"#);
    parse_list(&field);
    let mut d = allowed(u64::MAX, u64::MAX);
    d.limit = u64::MAX;
    let field = ratelimit_header(&[("big", &d)]);
    assert_eq!(field, r#""big";r=999999999999999;t=999999999999999"#);
    // w must be positive: a zero window (never valid config) omits the optional parameter.
    assert_eq!(policy_header(&[("z", &lim(5, 0, 5))]), r#""z";q=5"#);
}

#[test]
fn fields_parse_back() {
    let l1 = lim(100, 60, 100);
    let l2 = lim(20, 1, 40);
    let field = policy_header(&[("per-user", &l1), ("per-ip", &l2)]);
    assert_eq!(
        parse_list(&field),
        vec![
            ("per-user".to_owned(), params(&[("q", 100), ("w", 60)])),
            ("per-ip".to_owned(), params(&[("q", 20), ("w", 1)])),
        ]
    );
    let field = ratelimit_header(&[("per-user", &allowed(0, 5)), ("per-ip", &denied(2, 9))]);
    assert_eq!(
        parse_list(&field),
        vec![
            ("per-user".to_owned(), params(&[("r", 0), ("t", 5)])),
            ("per-ip".to_owned(), params(&[("r", 0), ("t", 2)])),
        ]
    );
}

#[test]
fn most_restrictive_prefers_denials_then_lowest_remaining() {
    assert_eq!(most_restrictive(&[]), None);

    let items = [
        ("a", allowed(5, 1)),
        ("b", denied(1, 1)),
        ("c", allowed(0, 9)),
    ];
    assert_eq!(most_restrictive(&items).map(|i| i.0), Some("b"));

    // Among denials, the longest wait binds.
    let items = [
        ("a", denied(1, 60)),
        ("b", denied(7, 7)),
        ("c", denied(3, 3)),
    ];
    assert_eq!(most_restrictive(&items).map(|i| i.0), Some("b"));

    // All allowed: the lowest remaining; equal remaining, the longer reset.
    let items = [
        ("a", allowed(5, 1)),
        ("b", allowed(2, 1)),
        ("c", allowed(9, 1)),
    ];
    assert_eq!(most_restrictive(&items).map(|i| i.0), Some("b"));
    let items = [
        ("a", allowed(2, 1)),
        ("b", allowed(2, 30)),
        ("c", allowed(2, 5)),
    ];
    assert_eq!(most_restrictive(&items).map(|i| i.0), Some("b"));

    // Full ties go to the first listed.
    let items = [("a", denied(2, 2)), ("b", denied(2, 2))];
    assert_eq!(most_restrictive(&items).map(|i| i.0), Some("a"));
    let items = [("a", allowed(2, 2)), ("b", allowed(2, 2))];
    assert_eq!(most_restrictive(&items).map(|i| i.0), Some("a"));

    let one = [("only", allowed(100, 0))];
    assert_eq!(most_restrictive(&one), Some(&one[0]));
}
