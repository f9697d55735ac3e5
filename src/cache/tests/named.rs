use crate::cache::named::{named_urls, NamedUrl};

fn named(scheme: &str, host: &str, path: &str, values: &[&str]) -> Vec<(String, Option<String>)> {
    let values: Vec<Option<String>> = values.iter().map(|v| Some((*v).to_owned())).collect();
    named_urls(201, scheme, host, path, &values)
        .into_iter()
        .map(|NamedUrl { path, query }| (path, query))
        .collect()
}

fn one(path: &str) -> Vec<(String, Option<String>)> {
    vec![(path.to_owned(), None)]
}

#[test]
fn references_resolve_against_the_request_url() {
    assert_eq!(
        named("https", "h.test", "/orders", &["/orders/42"]),
        one("/orders/42")
    );
    assert_eq!(
        named("https", "h.test", "/orders/", &["42"]),
        one("/orders/42")
    );
    assert_eq!(named("https", "h.test", "/a/b/c", &["../d"]), one("/a/d"));
    assert_eq!(
        named(
            "https",
            "h.test",
            "/orders",
            &["https://h.test/orders/42?v=2#top"]
        ),
        vec![("/orders/42".to_owned(), Some("v=2".to_owned()))],
        "the query is kept, the fragment dropped"
    );
    assert_eq!(
        named("https", "H.Test:443", "/x", &["https://h.test/y"]),
        one("/y"),
        "the default port and the host's case are one origin"
    );
}

#[test]
fn another_origin_is_never_named() {
    for other in [
        "https://other.test/orders/42",
        "//other.test/orders/42",
        "/\\other.test/orders/42",
        "http://h.test/orders/42",
        "https://h.test:8443/orders/42",
        "https://h.test.other.test/x",
        "https://user:pw@h.test/x",
        "mailto:a@h.test",
        "data:text/plain,x",
    ] {
        assert!(
            named("https", "h.test", "/orders", &[other]).is_empty(),
            "{other}"
        );
    }
}

#[test]
fn both_headers_are_read_each_url_once_and_nonsense_names_nothing() {
    assert_eq!(
        named("https", "h.test", "/o", &["/a", "/b"]),
        vec![("/a".to_owned(), None), ("/b".to_owned(), None)]
    );
    assert_eq!(
        named("https", "h.test", "/o", &["/a", "https://h.test/a"]),
        one("/a")
    );
    assert!(named("https", "h.test", "/o", &["", "   "]).is_empty());
    assert!(named("https", "h.test", "/o", &["http://[::1"]).is_empty());
    let long = format!("/{}", "a".repeat(9_000));
    assert!(named("https", "h.test", "/o", &[&long]).is_empty());
    assert!(named_urls(201, "https", "h.test", "/o", &[None, None]).is_empty());
    assert!(
        named("https", "bad host", "/o", &["/a"]).is_empty(),
        "no base, no URL"
    );
}
