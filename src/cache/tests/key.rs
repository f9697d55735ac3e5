use crate::cache::key::{
    cache_key_url, normalise_header_value, normalised_query, CacheKeyInput, KeySeal,
    CACHE_KEY_ORIGIN,
};

fn base() -> CacheKeyInput<'static> {
    CacheKeyInput {
        variant: None,
        scheme: "https",
        host: "api.example.com",
        canonical_path: "/v1/users/42",
        query: Some("a=1&b=2"),
        vary_values: vec![("accept-language", Some("en"))],
        consumer: None,
        forwarded: &[],
        generation: 1,
        route_id: "get-user",
    }
}

fn key(edit: impl FnOnce(&mut CacheKeyInput<'static>)) -> String {
    let mut input = base();
    edit(&mut input);
    cache_key_url(&input, None)
}

fn same(
    a: impl FnOnce(&mut CacheKeyInput<'static>),
    b: impl FnOnce(&mut CacheKeyInput<'static>),
) -> bool {
    key(a) == key(b)
}

#[test]
fn shape() {
    let k = key(|_| {});
    let prefix = format!("{CACHE_KEY_ORIGIN}/v1/1/");
    assert!(k.starts_with(&prefix), "{k}");
    let hex = &k[prefix.len()..];
    assert_eq!(hex.len(), 64);
    assert!(hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert_eq!(k, key(|_| {}), "deterministic");
    assert!(url::Url::parse(&k).is_ok());
    // Pinned, so that an accidental change to the derivation (which would silently drop every
    // cached entry on deploy) shows up in review. The value was also computed independently from
    // the framing documented in key.rs.
    assert_eq!(
        hex,
        "4507b531d2e79734a81769bd02488e2afc51ec01daa2e6a983b58432d72176a4"
    );
    assert!(key(|i| i.generation = 7).starts_with(&format!("{CACHE_KEY_ORIGIN}/v1/7/")));
}

#[test]
fn query_normalisation() {
    let q =
        |a: Option<&'static str>, b: Option<&'static str>| same(|i| i.query = a, |i| i.query = b);
    let cases: &[(Option<&str>, Option<&str>, bool)] = &[
        (Some("a=1&b=2"), Some("b=2&a=1"), true),
        (Some("a=1&a=2"), Some("a=2&a=1"), false), // repeated params keep their order
        (Some("b=1&a=2"), Some("a=2&b=1"), true),  // names are sorted
        (Some("a=1&a=2"), Some("a=1"), false),     // repeated params are kept
        (Some("a=1&a=1"), Some("a=1"), false),
        (Some(""), None, true), // empty query = no query
        (Some("a=1"), None, false),
        (Some("q=%2f"), Some("q=%2F"), true), // escape hex case
        (Some("%7e=1"), Some("%7E=1"), true),
        (Some("q=%2F"), Some("q=/"), false), // no decoding
        (Some("q=%41"), Some("q=A"), false),
        (Some("q=+"), Some("q=%20"), false),
        (Some("q=A"), Some("q=a"), false),
        (Some("a"), Some("a="), false),
        (Some("a=1&"), Some("a=1"), false), // empty parameters are kept
        (Some("a=b%3Dc"), Some("a=b=c"), false),
        (Some("a=1&b=2"), Some("a=1%26b=2"), false),
        (Some("ab=c"), Some("a=bc"), false),
        (Some("q=%zz"), Some("q=%ZZ"), false), // malformed escapes are left alone
        (Some("q=%2"), Some("q=%2"), true),
        (Some("x=\u{e9}%c3%a9"), Some("x=\u{e9}%C3%A9"), true),
        // An upstream that splits on `;` too reads x = 9, 8 in one and x = 8, 9 in the other.
        (Some("a=1;x=9&x=8"), Some("x=8&a=1;x=9"), false),
        (Some("a=1;b=2"), Some("b=2;a=1"), false),
        (Some("a=1;b=2"), Some("a=1&b=2"), false),
        (Some("a=1;b=%2f"), Some("a=1;b=%2F"), true),
        // Spellings an upstream reads as one name (decoded, `+` as a space, in any letter case,
        // PHP's `.`/space for `_` and `a[]` for `a`): which comes first is which value a
        // first-wins (or last-wins) upstream answers with, so such a query keeps its order.
        (Some("%61=2&a=1"), Some("a=1&%61=2"), false),
        (Some("a+b=1&a%20b=2"), Some("a%20b=2&a+b=1"), false),
        (Some("id=1&ID=2"), Some("ID=2&id=1"), false),
        (Some("a.b=1&a_b=2"), Some("a_b=2&a.b=1"), false),
        (Some("a[]=1&a=2"), Some("a=2&a[]=1"), false),
        (Some("a%5B%5D=1&a=2"), Some("a=2&a%5B%5D=1"), false),
        (Some("b=1&%61=2&a=3"), Some("%61=2&a=3&b=1"), false),
        // Other queries are still sorted, the same spelling repeated included.
        (Some("a=1&b=2&a=3"), Some("b=2&a=1&a=3"), true),
        (Some("B=1&a=2"), Some("a=2&B=1"), true),
        (Some("a%5Bx%5D=1&b=2"), Some("b=2&a%5Bx%5D=1"), true),
    ];
    for (a, b, want) in cases {
        assert_eq!(q(*a, *b), *want, "{a:?} vs {b:?}");
    }
}

#[test]
fn normalised_query_values() {
    let got = normalised_query(Some("b=2&a=1&a=0&c&%2a=x"));
    let want: Vec<(String, Option<String>)> = vec![
        ("%2A".into(), Some("x".into())),
        ("a".into(), Some("1".into())),
        ("a".into(), Some("0".into())),
        ("b".into(), Some("2".into())),
        ("c".into(), None),
    ];
    assert_eq!(got, want);
    assert_eq!(
        normalised_query(Some("a=&a")),
        vec![("a".into(), Some(String::new())), ("a".into(), None)]
    );
    assert!(normalised_query(None).is_empty());
    assert!(normalised_query(Some("")).is_empty());
}

#[test]
fn vary_values() {
    type V = Vec<(&'static str, Option<&'static str>)>;
    let v = |a: V, b: V| same(|i| i.vary_values = a, |i| i.vary_values = b);
    let cases: Vec<(V, V, bool)> = vec![
        (
            vec![("accept-language", None)],
            vec![("accept-language", Some(""))],
            false,
        ),
        (
            vec![("accept-language", Some("en"))],
            vec![("accept-language", Some("fr"))],
            false,
        ),
        (
            vec![("accept-language", Some("en"))],
            vec![("accept-language", Some("EN"))],
            false,
        ),
        (
            vec![("accept-language", Some(" en,  fr\t"))],
            vec![("accept-language", Some("en, fr"))],
            true,
        ),
        (
            vec![("accept-language", Some("en,\t\tfr"))],
            vec![("accept-language", Some("en, fr"))],
            true,
        ),
        (
            vec![("accept-language", Some("en,fr"))],
            vec![("accept-language", Some("en, fr"))],
            false,
        ),
        (
            vec![("accept-language", Some("   "))],
            vec![("accept-language", Some(""))],
            true,
        ),
        (
            vec![("Accept-Language", Some("en"))],
            vec![("accept-language", Some("en"))],
            true,
        ),
        (
            vec![("accept-language", Some("en")), ("x-tenant", Some("t1"))],
            vec![("x-tenant", Some("t1")), ("accept-language", Some("en"))],
            true,
        ),
        (
            vec![("accept-language", Some("en")), ("x-tenant", Some("t1"))],
            vec![("accept-language", Some("t1")), ("x-tenant", Some("en"))],
            false,
        ),
        (vec![("ab", Some(""))], vec![("a", Some("b"))], false),
        (vec![], vec![("accept-language", None)], false),
    ];
    for (a, b, want) in cases {
        let label = format!("{a:?} vs {b:?}");
        assert_eq!(v(a, b), want, "{label}");
    }
}

#[test]
fn normalise_header_values() {
    let cases = [
        ("en", "en"),
        ("  en  ", "en"),
        ("en,  fr", "en, fr"),
        ("a \t b", "a b"),
        ("\t", ""),
        ("", ""),
        ("a\u{a0}b", "a\u{a0}b"), // only SP and HTAB are whitespace here
    ];
    for (input, want) in cases {
        assert_eq!(normalise_header_value(input), want, "{input:?}");
    }
}

#[test]
fn consumer_generation_route_host_and_path_separate_keys() {
    // Consumer.
    assert!(!same(|i| i.consumer = None, |i| i.consumer = Some("alice")));
    assert!(!same(
        |i| i.consumer = Some("alice"),
        |i| i.consumer = Some("bob")
    ));
    assert!(!same(|i| i.consumer = None, |i| i.consumer = Some("")));
    assert!(same(
        |i| i.consumer = Some("alice"),
        |i| i.consumer = Some("alice")
    ));
    // Generation bump.
    assert!(!same(|i| i.generation = 1, |i| i.generation = 2));
    // Route id.
    assert!(!same(|i| i.route_id = "r1", |i| i.route_id = "r2"));
    // Scheme: a response built for http (a redirect to https) never serves https.
    assert!(!same(|i| i.scheme = "http", |i| i.scheme = "https"));
    // The authority as forwarded: a port is part of it.
    assert!(!same(
        |i| i.host = "api.example.com",
        |i| i.host = "api.example.com:4443"
    ));
    // Host, case-insensitively.
    assert!(!same(
        |i| i.host = "a.example.com",
        |i| i.host = "b.example.com"
    ));
    assert!(same(
        |i| i.host = "API.Example.com",
        |i| i.host = "api.example.com"
    ));
    // Path.
    assert!(!same(
        |i| i.canonical_path = "/v1/users/1",
        |i| i.canonical_path = "/v1/users/2"
    ));
    assert!(!same(
        |i| i.canonical_path = "/a",
        |i| i.canonical_path = "/A"
    ));
}

#[test]
fn framing_is_unambiguous() {
    // Moving bytes from one component to the next never collides.
    assert!(!same(
        |i| {
            i.host = "api.example.com";
            i.canonical_path = "/x";
        },
        |i| {
            i.host = "api.example.com/x";
            i.canonical_path = "";
        }
    ));
    assert!(!same(
        |i| {
            i.canonical_path = "/a?b=1";
            i.query = None;
        },
        |i| {
            i.canonical_path = "/a";
            i.query = Some("b=1");
        }
    ));
    assert!(!same(
        |i| {
            i.route_id = "get-user";
            i.host = "api.example.com";
        },
        |i| {
            i.route_id = "get-userapi.example.com";
            i.host = "";
        }
    ));
    assert!(!same(
        |i| {
            i.vary_values = vec![];
            i.consumer = Some("alice");
        },
        |i| {
            i.vary_values = vec![("alice", None)];
            i.consumer = None;
        }
    ));
    assert!(!same(
        |i| {
            i.query = Some("accept-language=en");
            i.vary_values = vec![];
        },
        |i| {
            i.query = None;
            i.vary_values = vec![("accept-language", Some("en"))];
        }
    ));
}

/// A test's forwarded claim headers, for as long as the test runs.
fn claims(pairs: &[(&str, &str)]) -> &'static [(String, String)] {
    let owned: Vec<(String, String)> = pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    Box::leak(owned.into_boxed_slice())
}

#[test]
fn forwarded_claims_separate_keys_and_are_only_hashed() {
    let alice = |i: &mut CacheKeyInput<'static>| i.consumer = Some("jwt/users/alice");
    let with = |pairs: &'static [(String, String)]| {
        move |i: &mut CacheKeyInput<'static>| {
            alice(i);
            i.forwarded = pairs;
        }
    };
    let tenant_a = claims(&[("x-tenant", "a")]);
    // One subject, other claims: another key.
    assert!(!same(with(tenant_a), with(claims(&[("x-tenant", "b")]))));
    assert!(same(with(tenant_a), with(claims(&[("x-tenant", "a")]))));
    // No forwarded claims keep the key the route had before they were keyed.
    assert!(same(alice, with(claims(&[]))));
    assert!(!same(alice, with(claims(&[("x-tenant", "")]))));
    // Framed: a value cannot move into the next header's name.
    assert!(!same(
        with(claims(&[("x-a", "1x-b"), ("", "2")])),
        with(claims(&[("x-a", "1"), ("x-b", "2")]))
    ));
    // Nor can claims be taken for a variant, or the other way round.
    assert!(!same(with(claims(&[("variant", "canary")])), |i| {
        alice(i);
        i.variant = Some("canary");
    }));
    // The key is the fixed-size hash: no claim value shows in it, however long.
    let long = "secret-".repeat(1000);
    let k = key(with(claims(&[("x-email", long.as_str())])));
    assert!(!k.contains("secret"), "{k}");
    assert_eq!(k.len(), key(alice).len());
}

#[test]
fn a_sealed_key_cannot_be_computed_without_the_secret() {
    let input = base();
    let plain = cache_key_url(&input, None);
    let seal = KeySeal::from_secret("admin-token-1").unwrap();
    let sealed = cache_key_url(&input, Some(&seal));
    assert_ne!(
        sealed, plain,
        "the public derivation does not name a sealed entry"
    );
    assert!(
        sealed.starts_with(&format!("{CACHE_KEY_ORIGIN}/v1/1/")),
        "{sealed}"
    );
    assert_eq!(sealed.len(), plain.len(), "one fixed-size URL either way");
    // The same secret names the same entry in every isolate; another secret (another gateway
    // on the zone, or the rotated token) names others.
    let again = KeySeal::from_secret("admin-token-1").unwrap();
    assert_eq!(cache_key_url(&input, Some(&again)), sealed);
    let other = KeySeal::from_secret("admin-token-2").unwrap();
    assert_ne!(cache_key_url(&input, Some(&other)), sealed);
    // Distinct inputs stay distinct under the seal.
    let mut moved = base();
    moved.canonical_path = "/v1/users/43";
    assert_ne!(cache_key_url(&moved, Some(&seal)), sealed);
    assert!(KeySeal::from_secret("").is_none(), "no secret, no seal");
    assert_eq!(format!("{seal:?}"), "KeySeal(..)", "never printed");
}
