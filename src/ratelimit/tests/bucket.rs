use crate::config::{RateLimitKey, RateLimitPolicy, StoreErrorPolicy};
use crate::ratelimit::{bucket_key, fixed_bucket_key, no_headers, KeyError, KeyFacts};
use serde_json::{json, Map, Value};

fn policy(name: &str, key: RateLimitKey) -> RateLimitPolicy {
    RateLimitPolicy {
        name: name.into(),
        key,
        limit: 10,
        window_s: 1,
        burst: 10,
        on_store_error: StoreErrorPolicy::Allow,
    }
}

fn facts<'a>(ip: Option<&'a str>) -> KeyFacts<'a> {
    KeyFacts {
        client_ip: ip,
        route_id: "get-user",
        consumer: None,
        claims: None,
        scheme: None,
        header: &no_headers,
    }
}

fn key(p: &RateLimitPolicy, f: &KeyFacts<'_>) -> String {
    bucket_key(p, f).unwrap()
}

fn ip_key(ip: Option<&str>) -> String {
    key(&policy("per-ip", RateLimitKey::Ip), &facts(ip))
}

fn claims(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

#[test]
fn names_are_stable_and_fixed_length() {
    // These are part of the deployed state: changing them orphans every bucket.
    assert_eq!(
        ip_key(Some("203.0.113.7")),
        "rl:per-ip:bdfd0ded7067c5966a96d2fec9d872d187dcb6306c8e700e03924d40a074e678"
    );
    assert_eq!(
        ip_key(Some("2001:db8:1:2::99")),
        "rl:per-ip:f9606bcf2a609471e2987ca83a2959baebab93aacddcae98da98407904c8c8de"
    );
    assert_eq!(
        ip_key(None),
        "rl:per-ip:7d551e960af5c84fea343356e40fddec16d4f9f19121b15def82c77441a48085"
    );
    assert_eq!(
        key(&policy("all", RateLimitKey::Global), &facts(None)),
        "rl:all:f519643d1814aa6959294f94b8a48fe1ebe2b7fed505225fc6bfa74807836f54"
    );
    let c = claims(json!({"sub": "user-1"}));
    let mut f = facts(None);
    f.claims = Some(&c);
    f.scheme = Some("idp");
    // SHA-256 of "claim:sub\0idp\0user-1": a claim is keyed with its scheme (the names before
    // that were shared by every issuer's subjects, so they changed once).
    assert_eq!(
        key(&policy("per-user", RateLimitKey::Claim("sub".into())), &f),
        "rl:per-user:54e2e29332595e04e7f816e2533c716da747ab10f7373fd6ded22a5393ff9b61"
    );
    let p = policy("per-key", RateLimitKey::Header("x-api-key".into()));
    assert_eq!(
        key(&p, &facts(Some("203.0.113.7"))),
        "rl:per-key:419880580c4feb8c3044e7589ac28b463b8cf56f00df42616ddfda5d4524f35c"
    );

    let k = ip_key(Some("198.51.100.1"));
    let hex = k.strip_prefix("rl:per-ip:").unwrap();
    assert_eq!(hex.len(), 64);
    assert!(hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
}

#[test]
fn ipv4_is_exact() {
    assert_ne!(ip_key(Some("203.0.113.7")), ip_key(Some("203.0.113.8")));
    assert_eq!(ip_key(Some("203.0.113.7")), ip_key(Some(" 203.0.113.7\t")));
    // An IPv4-mapped IPv6 address is the IPv4 client.
    assert_eq!(
        ip_key(Some("203.0.113.7")),
        ip_key(Some("::ffff:203.0.113.7"))
    );
    assert_eq!(
        ip_key(Some("203.0.113.7")),
        ip_key(Some("::FFFF:cb00:7107"))
    );
}

#[test]
fn ipv6_is_keyed_by_its_64() {
    let a = ip_key(Some("2001:db8:1:2::1"));
    assert_eq!(a, ip_key(Some("2001:db8:1:2:ffff:ffff:ffff:ffff")));
    assert_eq!(a, ip_key(Some("2001:0DB8:0001:0002:0000:0000:0000:0001")));
    assert_eq!(a, ip_key(Some("2001:db8:1:2:aaaa::")));
    assert_ne!(a, ip_key(Some("2001:db8:1:3::1")));
    assert_ne!(a, ip_key(Some("2001:db8:2:2::1")));
    // Loopback is not mistaken for an IPv4-compatible address.
    assert_ne!(ip_key(Some("::1")), ip_key(Some("0.0.0.1")));
}

#[test]
fn missing_or_odd_addresses_are_still_limited() {
    let unknown = ip_key(None);
    assert_eq!(unknown, ip_key(Some("")));
    assert_eq!(unknown, ip_key(Some("  ")));
    // Text that is not an address keys on itself, apart from "unknown" and real addresses.
    let raw = ip_key(Some("unknown"));
    assert_ne!(raw, unknown);
    assert_ne!(ip_key(Some("not-an-ip")), unknown);
    assert_ne!(ip_key(Some("not-an-ip")), ip_key(Some("also-not")));
    assert_ne!(
        ip_key(Some("2001:db8:1:2::/64")),
        ip_key(Some("2001:db8:1:2::1"))
    );
}

#[test]
fn header_keys_trim_and_fall_back_to_the_address() {
    let p = policy("per-tenant", RateLimitKey::Header("x-tenant".into()));
    let lookup = |value: Option<&'static str>| {
        move |name: &str| {
            assert_eq!(name, "x-tenant");
            value.map(str::to_owned)
        }
    };
    let with = |value: Option<&'static str>, ip: Option<&'static str>| {
        let h = lookup(value);
        let mut f = facts(ip);
        f.header = &h;
        key(&p, &f)
    };

    let acme = with(Some("acme"), Some("203.0.113.7"));
    assert_eq!(
        acme,
        with(Some("acme"), Some("198.51.100.1")),
        "the IP plays no part"
    );
    assert_eq!(acme, with(Some(" acme\t"), None));
    assert_ne!(
        acme,
        with(Some("ACME"), None),
        "header values are case-sensitive"
    );
    assert_ne!(acme, with(Some("acme2"), None));

    // Missing or empty: keyed on the address, per address, never unlimited.
    let fallback = with(None, Some("203.0.113.7"));
    assert_eq!(fallback, with(Some(""), Some("203.0.113.7")));
    assert_eq!(fallback, with(Some(" \t "), Some("203.0.113.7")));
    assert_ne!(fallback, with(None, Some("203.0.113.8")));
    assert_eq!(
        with(None, Some("2001:db8::1")),
        with(None, Some("2001:db8::2")),
        "the fallback normalises the address like `ip`"
    );
    // ...and a header naming the address is not the fallback bucket.
    assert_ne!(fallback, with(Some("203.0.113.7"), Some("203.0.113.7")));
    assert_ne!(fallback, with(Some("ip"), Some("203.0.113.7")));

    // The same header policy under another header name is another bucket.
    let other = policy("per-tenant", RateLimitKey::Header("x-org".into()));
    let h = |_: &str| Some("acme".to_owned());
    let mut f = facts(None);
    f.header = &h;
    assert_ne!(key(&other, &f), acme);
}

#[test]
fn header_lookup_only_for_header_keys() {
    let h = |_: &str| -> Option<String> { panic!("headers read for a non-header key") };
    let c = claims(json!({"sub": "u"}));
    let f = KeyFacts {
        client_ip: Some("203.0.113.7"),
        route_id: "r",
        consumer: Some("u"),
        claims: Some(&c),
        scheme: Some("idp"),
        header: &h,
    };
    for k in [
        RateLimitKey::Ip,
        RateLimitKey::Claim("sub".into()),
        RateLimitKey::Consumer,
        RateLimitKey::Route,
        RateLimitKey::Global,
    ] {
        bucket_key(&policy("p", k), &f).unwrap();
    }
}

#[test]
fn claim_keys() {
    let p = policy("per-tenant", RateLimitKey::Claim("tenant".into()));
    let with = |c: Value, consumer: Option<&str>| {
        let c = claims(c);
        let mut f = facts(Some("203.0.113.7"));
        f.claims = Some(&c);
        f.consumer = consumer;
        bucket_key(&p, &f)
    };

    let acme = with(json!({"tenant": "acme"}), Some("alice")).unwrap();
    assert_eq!(acme, with(json!({"tenant": "acme"}), Some("bob")).unwrap());
    assert_ne!(
        acme,
        with(json!({"tenant": "acme "}), None).unwrap(),
        "strings as is"
    );
    // Numbers and booleans key on their JSON text (so 42 and "42" are one tenant).
    assert_eq!(
        with(json!({"tenant": 42}), None).unwrap(),
        with(json!({"tenant": "42"}), None).unwrap()
    );
    assert_ne!(
        with(json!({"tenant": 42}), None).unwrap(),
        with(json!({"tenant": 43}), None).unwrap()
    );
    assert_eq!(
        with(json!({"tenant": true}), None).unwrap(),
        with(json!({"tenant": "true"}), None).unwrap()
    );
    assert_ne!(
        with(json!({"tenant": ["a", "b"]}), None).unwrap(),
        with(json!({"tenant": ["a"]}), None).unwrap()
    );

    // Missing (or null or ""): the consumer, in a bucket of its own kind.
    let fallback = with(json!({"sub": "alice"}), Some("alice")).unwrap();
    assert_eq!(
        fallback,
        with(json!({"tenant": null}), Some("alice")).unwrap()
    );
    assert_eq!(
        fallback,
        with(json!({"tenant": ""}), Some("alice")).unwrap()
    );
    assert_ne!(fallback, with(json!({}), Some("bob")).unwrap());
    assert_ne!(fallback, with(json!({"tenant": "alice"}), None).unwrap());
    let mut f = facts(None);
    f.consumer = Some("alice");
    assert_eq!(
        fallback,
        key(&p, &f),
        "no claims at all is the same as a missing claim"
    );

    // Missing with no consumer to fall back to: refused.
    assert_eq!(
        with(json!({"sub": "alice"}), None),
        Err(KeyError::MissingClaim("tenant".into()))
    );
    assert_eq!(
        with(json!({"sub": "alice"}), Some("")),
        Err(KeyError::MissingClaim("tenant".into()))
    );
}

#[test]
fn claims_are_keyed_per_scheme() {
    let p = policy("per-user", RateLimitKey::Claim("sub".into()));
    let alice = claims(json!({"sub": "alice"}));
    let with = |scheme: Option<&'static str>| {
        let mut f = facts(None);
        f.claims = Some(&alice);
        f.scheme = scheme;
        key(&p, &f)
    };
    // Two issuers' "alice" are two subjects, as their consumers (jwt/<scheme>/alice) are.
    assert_ne!(with(Some("staff")), with(Some("partners")));
    assert_eq!(with(Some("staff")), with(Some("staff")));
    // The scheme and the value do not run into each other: ("ab", "alice") is not ("a", "balice").
    let balice = claims(json!({"sub": "balice"}));
    let mut f = facts(None);
    f.claims = Some(&balice);
    f.scheme = Some("a");
    assert_ne!(key(&p, &f), with(Some("ab")));
}

#[test]
fn consumer_keys() {
    let p = policy("per-consumer", RateLimitKey::Consumer);
    let with = |c: Option<&str>| {
        let mut f = facts(Some("203.0.113.7"));
        f.consumer = c;
        bucket_key(&p, &f)
    };
    assert_eq!(with(Some("alice")), with(Some("alice")));
    assert_ne!(with(Some("alice")), with(Some("bob")));
    assert_eq!(with(None), Err(KeyError::NoConsumer));
    assert_eq!(with(Some("")), Err(KeyError::NoConsumer));
    // A consumer named like a route or an address is still a consumer.
    let mut f = facts(None);
    f.consumer = Some("get-user");
    assert_ne!(
        key(&p, &f),
        key(&policy("per-consumer", RateLimitKey::Route), &f)
    );
}

#[test]
fn route_and_global_keys() {
    let route = policy("orders", RateLimitKey::Route);
    let a = key(&route, &facts(Some("203.0.113.7")));
    let mut other = facts(Some("198.51.100.1"));
    other.consumer = Some("alice");
    assert_eq!(a, key(&route, &other), "one bucket per route, whoever asks");
    other.route_id = "list-users";
    assert_ne!(a, key(&route, &other));

    let global = policy("everything", RateLimitKey::Global);
    assert_eq!(key(&global, &facts(None)), key(&global, &other));
    // Policies never share buckets, whatever their keys.
    assert_ne!(
        key(&global, &facts(None)),
        key(
            &policy("everything-else", RateLimitKey::Global),
            &facts(None)
        )
    );
}

#[test]
fn long_values_hash_whole() {
    let p = policy("per-key", RateLimitKey::Header("x-api-key".into()));
    let long_a = "k".repeat(4096) + "a";
    let long_b = "k".repeat(4096) + "b";
    let with = |v: String| {
        let h = move |_: &str| Some(v.clone());
        let f = KeyFacts {
            header: &h,
            ..facts(None)
        };
        key(&p, &f)
    };
    let a = with(long_a);
    let b = with(long_b);
    assert_ne!(
        a, b,
        "values differing after the first KiB are different buckets"
    );
    assert_eq!(a.len(), "rl:per-key:".len() + 64);
    assert_eq!(a, with("k".repeat(4096) + "a"));
}

#[test]
fn key_errors_explain_themselves() {
    assert!(KeyError::NoConsumer.to_string().contains("consumer"));
    assert!(KeyError::MissingClaim("tenant".into())
        .to_string()
        .contains("\"tenant\""));
}

#[test]
fn a_bucket_fixed_per_configuration_has_the_name_every_request_would_form() {
    let f = facts(Some("203.0.113.7"));
    for k in [RateLimitKey::Route, RateLimitKey::Global] {
        let p = policy("p", k);
        assert_eq!(fixed_bucket_key(&p, "get-user"), Some(key(&p, &f)));
    }
    // Golden: bucket names are the objects' identities, stable across releases.
    assert_eq!(
        key(&policy("p", RateLimitKey::Global), &f),
        "rl:p:f519643d1814aa6959294f94b8a48fe1ebe2b7fed505225fc6bfa74807836f54"
    );
    for k in [
        RateLimitKey::Ip,
        RateLimitKey::Consumer,
        RateLimitKey::Header("x-tenant".into()),
        RateLimitKey::Claim("tenant".into()),
    ] {
        assert_eq!(fixed_bucket_key(&policy("p", k), "get-user"), None);
    }
}
