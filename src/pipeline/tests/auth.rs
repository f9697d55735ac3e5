use super::*;
use crate::auth::test_keys::{self, Signer};
use crate::config::Algorithm;
use crate::pipeline::ports::Document;
use crate::pipeline::state::Counter;
use serde_json::json;

const SECRET: &str = "an HMAC secret of more than thirty-two bytes, for tests";

fn jwt_world(verified_cache_s: u64) -> World {
    World::new(json!({
        "auth": { "users": { "type": "jwt", "issuer": test_keys::ISS, "audiences": [test_keys::AUD],
                             "secret": "JWT_SECRET", "algorithms": ["HS256"], "verified_cache_s": verified_cache_s,
                             "forward_claims": { "sub": "x-user-id" } } },
        "routes": [ { "id": "me", "path": "/me", "upstream": "api", "auth": ["users"] } ]
    }))
}

fn token() -> String {
    test_keys::mint(
        Algorithm::Hs256,
        Signer::Hmac(SECRET.as_bytes()),
        None,
        &test_keys::good_claims(),
    )
}

fn fakes() -> Fakes {
    let f = Fakes::at(test_keys::NOW as f64 * 1000.0);
    f.secrets
        .borrow_mut()
        .insert("JWT_SECRET".into(), SECRET.into());
    f
}

#[test]
fn no_credentials_is_a_synchronous_401() {
    let w = jwt_world(0);
    let f = fakes();
    let mut cx = w.ctx("GET", "https://h.test/me", &f);
    let (sync, ended) = w.run(&mut cx, &f);
    assert!(sync);
    assert_eq!(
        (ended.status(), ended.code()),
        (401, Some("missing_credentials"))
    );
    assert_eq!(f.exchanges(), 0);
}

#[test]
fn a_verified_token_is_forwarded_as_identity_and_cached_tokens_decide_synchronously() {
    let w = jwt_world(60);
    let f = fakes();
    f.header("authorization", &format!("Bearer {}", token()));
    let mut cx = w.ctx("GET", "https://h.test/me", &f);
    let (sync, ended) = w.run(&mut cx, &f);
    assert!(!sync, "the first verification waits");
    assert_eq!(ended.status(), 200);
    assert_eq!(cx.consumer(), Some("jwt/users/user-1"));
    let plan = f.plans.borrow()[0].clone();
    assert!(plan
        .request
        .set
        .contains(&("x-user-id".into(), "user-1".into())));

    let mut cx = w.ctx("GET", "https://h.test/me", &f);
    let (sync, ended) = w.run(&mut cx, &f);
    assert!(sync, "a cached token needs no future");
    assert_eq!(ended.status(), 200);
}

#[test]
fn a_tampered_token_and_a_token_in_two_places_are_refused() {
    let w = World::new(json!({
        "auth": { "users": { "type": "jwt", "issuer": test_keys::ISS, "audiences": [test_keys::AUD],
                             "secret": "JWT_SECRET", "algorithms": ["HS256"], "token_query": "access_token" } },
        "routes": [ { "id": "me", "path": "/me", "upstream": "api", "auth": ["users"] } ]
    }));
    let f = fakes();
    let mut forged = token();
    forged.push('A');
    f.header("authorization", &format!("Bearer {forged}"));
    let mut cx = w.ctx("GET", "https://h.test/me", &f);
    assert_eq!(w.run(&mut cx, &f).1.code(), Some("invalid_token"));

    f.header("authorization", &format!("Bearer {}", token()));
    let mut cx = w.ctx(
        "GET",
        &format!("https://h.test/me?access_token={}", token()),
        &f,
    );
    assert_eq!(w.run(&mut cx, &f).1.code(), Some("bad_request"));
    assert_eq!(f.exchanges(), 0);
}

#[test]
fn a_subject_with_a_space_at_an_end_is_never_another_subject_upstream() {
    // The runtime strips a header value's leading and trailing spaces and tabs: sent as they
    // are, "user-1 " would reach the upstream as user-1's consumer and x-user-id.
    let w = jwt_world(0);
    let f = fakes();
    let mut claims = test_keys::good_claims();
    claims["sub"] = json!("user-1 ");
    let token = test_keys::mint(
        Algorithm::Hs256,
        Signer::Hmac(SECRET.as_bytes()),
        None,
        &claims,
    );
    f.header("authorization", &format!("Bearer {token}"));
    let mut cx = w.ctx("GET", "https://h.test/me", &f);
    assert_eq!(w.run(&mut cx, &f).1.status(), 200);
    let set = f.plans.borrow()[0].request.set.clone();
    assert!(
        set.contains(&("x-user-id".into(), "user-1%20".into())),
        "{set:?}"
    );
    assert!(
        set.contains(&("x-consumer".into(), "jwt/users/user-1%20".into())),
        "{set:?}"
    );
    assert_eq!(
        crate::pipeline::auth::consumer_value("\tkey/a b\t"),
        "%09key/a b%09"
    );
}

/// A route behind a JWT scheme whose keys come from the JWKS at `https://id.test/jwks`.
fn jwks_world() -> World {
    World::new(json!({
        "auth": { "idp": { "type": "jwt", "issuer": test_keys::ISS, "audiences": [test_keys::AUD],
                           "jwks_url": "https://id.test/jwks", "algorithms": ["ES256"] } },
        "routes": [ { "id": "me", "path": "/me", "upstream": "api", "auth": ["idp"] } ]
    }))
}

/// A good ES256 token naming key `kid`.
fn es256_token(kid: &str) -> String {
    test_keys::mint(
        Algorithm::Es256,
        Signer::P256(test_keys::Which::A),
        Some(kid),
        &test_keys::good_claims(),
    )
}

/// The identity provider serves a JWKS with key A as `k1`.
fn serve_jwks(f: &Fakes) {
    let jwk = test_keys::with(
        test_keys::p256_jwk(test_keys::Which::A),
        json!({"kid": "k1"}),
    );
    f.documents.borrow_mut().insert(
        "https://id.test/jwks".into(),
        Ok(Document {
            status: 200,
            cache_control: "max-age=600".into(),
            url: "https://id.test/jwks".into(),
            body: json!({"keys": [jwk]}).to_string(),
        }),
    );
}

#[test]
fn unknown_kids_refetch_the_jwks_at_most_once_per_interval() {
    let w = jwks_world();
    let f = Fakes::at(test_keys::NOW as f64 * 1000.0);
    serve_jwks(&f);
    let good = es256_token("k1");
    f.header("authorization", &format!("Bearer {good}"));
    let mut cx = w.ctx("GET", "https://h.test/me", &f);
    assert_eq!(w.run(&mut cx, &f).1.status(), 200);
    assert_eq!(f.document_fetches.get(), 1);

    let invented = es256_token("invented");
    f.header("authorization", &format!("Bearer {invented}"));
    for _ in 0..5 {
        let mut cx = w.ctx("GET", "https://h.test/me", &f);
        assert_eq!(w.run(&mut cx, &f).1.code(), Some("invalid_token"));
    }
    assert_eq!(
        f.document_fetches.get(),
        2,
        "one forced refetch for the flood of invented kids"
    );
    f.now_ms.set(f.now_ms.get() + 5_001.0);
    let mut cx = w.ctx("GET", "https://h.test/me", &f);
    w.run(&mut cx, &f);
    assert_eq!(f.document_fetches.get(), 3);
}

#[test]
fn an_unreachable_identity_provider_is_a_503_counted_and_logged() {
    let w = jwks_world();
    let f = Fakes::at(test_keys::NOW as f64 * 1000.0);
    let good = es256_token("k1");
    f.header("authorization", &format!("Bearer {good}"));
    let mut cx = w.ctx("GET", "https://h.test/me", &f);
    assert_eq!(w.run(&mut cx, &f).1.code(), Some("auth_unavailable"));
    assert_eq!(w.state.counters.get(Counter::JwksFailures), 1);
    assert_eq!(f.events.borrow()[0]["event"], "jwks_unavailable");
    // While it is down, the requests that follow are refused without each fetching it (one
    // try per interval), and without a line each.
    let fetches = f.document_fetches.get();
    for _ in 0..10 {
        let mut cx = w.ctx("GET", "https://h.test/me", &f);
        assert_eq!(w.run(&mut cx, &f).1.code(), Some("auth_unavailable"));
    }
    assert_eq!(f.document_fetches.get(), fetches);
    assert_eq!(w.state.counters.get(Counter::JwksFailures), 1);
    // Back, and the interval over: it is fetched again, and serves.
    serve_jwks(&f);
    f.now_ms.set(f.now_ms.get() + 5_000.0);
    let mut cx = w.ctx("GET", "https://h.test/me", &f);
    assert_eq!(w.run(&mut cx, &f).1.status(), 200);
    assert_eq!(f.document_fetches.get(), fetches + 1);
}

#[test]
fn keys_redirected_away_from_https_are_never_used() {
    let good = es256_token("k1");
    for (landed, serves) in [
        ("http://id.test/jwks", false),
        ("http://10.0.0.7/jwks", false),
        ("https://user:pw@keys.id.test/jwks", false),
        ("not a url", false),
        ("", false),
        ("https://keys.id.test/v2/jwks", true),
        ("http://127.0.0.1:8080/jwks", true),
    ] {
        let w = jwks_world();
        let f = Fakes::at(test_keys::NOW as f64 * 1000.0);
        serve_jwks(&f);
        if let Some(Ok(d)) = f.documents.borrow_mut().get_mut("https://id.test/jwks") {
            d.url = landed.into();
        }
        f.header("authorization", &format!("Bearer {good}"));
        let mut cx = w.ctx("GET", "https://h.test/me", &f);
        let ended = w.run(&mut cx, &f).1;
        if serves {
            assert_eq!(ended.status(), 200, "{landed}");
        } else {
            assert_eq!(ended.code(), Some("auth_unavailable"), "{landed}");
            assert_eq!(w.state.counters.get(Counter::JwksFailures), 1, "{landed}");
            let events = f.events.borrow();
            assert_eq!(events[0]["event"], "jwks_unavailable", "{landed}");
            assert!(
                events[0].to_string().contains("neither https nor loopback"),
                "{landed}: {}",
                events[0]
            );
            assert!(!events[0].to_string().contains("pw"), "{landed}");
        }
    }
}

/// [`jwks_world`] with an admin token secret, which seals the copy isolates share.
fn sealed_jwks_world() -> World {
    World::new(json!({
        "settings": { "admin": { "token_secret": "ADMIN_TOKEN" } },
        "auth": { "idp": { "type": "jwt", "issuer": test_keys::ISS, "audiences": [test_keys::AUD],
                           "jwks_url": "https://id.test/jwks", "algorithms": ["ES256"] } },
        "routes": [ { "id": "me", "path": "/me", "upstream": "api", "auth": ["idp"] } ]
    }))
}

/// A JWKS holding the attacker's key B as `k1`, and a token it signs.
fn attacker_jwks_and_token() -> (String, String) {
    let jwk = test_keys::with(
        test_keys::p256_jwk(test_keys::Which::B),
        json!({"kid": "k1"}),
    );
    let token = test_keys::mint(
        Algorithm::Es256,
        Signer::P256(test_keys::Which::B),
        Some("k1"),
        &test_keys::good_claims(),
    );
    (json!({"keys": [jwk]}).to_string(), token)
}

#[test]
fn a_jwks_planted_in_the_shared_cache_never_verifies_a_token() {
    // Other code on the zone can put any URL into the location's cache: under the JWKS URL
    // itself, under the gateway's share URL, bare or in the sealed format with a made-up seal.
    let (planted, forged) = attacker_jwks_and_token();
    let share = crate::auth::jwks_share::share_url(
        &crate::auth::jwks_share::share_key("the admin token, thirty-two bytes long").unwrap(),
        "https://id.test/jwks",
    );
    let fake_seal = format!(
        "jwks-share-v1\n99999999999999\n{}\n{planted}",
        "0".repeat(64)
    );
    for sealed in [false, true] {
        for (url, body) in [
            ("https://id.test/jwks", planted.clone()),
            (share.as_str(), planted.clone()),
            (share.as_str(), fake_seal.clone()),
        ] {
            let world = if sealed {
                sealed_jwks_world()
            } else {
                jwks_world()
            };
            let f = Fakes::at(test_keys::NOW as f64 * 1000.0);
            f.secrets.borrow_mut().insert(
                "ADMIN_TOKEN".into(),
                "the admin token, thirty-two bytes long".into(),
            );
            serve_jwks(&f);
            f.shared_documents.borrow_mut().insert(url.into(), body);
            f.header("authorization", &format!("Bearer {forged}"));
            let mut cx = world.ctx("GET", "https://h.test/me", &f);
            assert_eq!(
                world.run(&mut cx, &f).1.code(),
                Some("invalid_token"),
                "planted under {url}"
            );
            // Fetched, and once more for the known kid whose signature failed (it could be a
            // key rotated under its kid).
            assert_eq!(f.document_fetches.get(), 2, "the real JWKS was fetched");
            // The real keys still serve.
            f.header("authorization", &format!("Bearer {}", es256_token("k1")));
            let mut cx = world.ctx("GET", "https://h.test/me", &f);
            assert_eq!(world.run(&mut cx, &f).1.status(), 200);
        }
    }
}

#[test]
fn a_sealed_copy_spares_the_next_isolate_a_fetch_and_without_a_secret_none_is_shared() {
    let f = Fakes::at(test_keys::NOW as f64 * 1000.0);
    f.secrets.borrow_mut().insert(
        "ADMIN_TOKEN".into(),
        "the admin token, thirty-two bytes long".into(),
    );
    serve_jwks(&f);
    let mut claims = test_keys::good_claims();
    claims["exp"] = json!(test_keys::NOW + 3_600);
    let long = test_keys::mint(
        Algorithm::Es256,
        Signer::P256(test_keys::Which::A),
        Some("k1"),
        &claims,
    );
    f.header("authorization", &format!("Bearer {long}"));
    let first = sealed_jwks_world();
    let mut cx = first.ctx("GET", "https://h.test/me", &f);
    assert_eq!(first.run(&mut cx, &f).1.status(), 200);
    assert_eq!(f.document_fetches.get(), 1);
    let share = crate::auth::jwks_share::share_url(
        &crate::auth::jwks_share::share_key("the admin token, thirty-two bytes long").unwrap(),
        "https://id.test/jwks",
    );
    let stored = f.shared_documents.borrow().get(&share).cloned();
    assert!(
        stored
            .as_deref()
            .is_some_and(|s| s.starts_with("jwks-share-v1\n")),
        "{stored:?}"
    );
    assert!(!f
        .shared_documents
        .borrow()
        .contains_key("https://id.test/jwks"));
    // Another isolate of the location: the sealed copy serves, no fetch.
    let second = sealed_jwks_world();
    let mut cx = second.ctx("GET", "https://h.test/me", &f);
    assert_eq!(second.run(&mut cx, &f).1.status(), 200);
    assert_eq!(f.document_fetches.get(), 1);
    // Past the copy's expiry (max-age=600) it is not used: a replayed old copy opens nothing.
    f.now_ms.set(f.now_ms.get() + 601_000.0);
    let third = sealed_jwks_world();
    let mut cx = third.ctx("GET", "https://h.test/me", &f);
    assert_eq!(third.run(&mut cx, &f).1.status(), 200);
    assert_eq!(f.document_fetches.get(), 2);

    // No admin token secret: nothing is stored, and each isolate fetches.
    let f = Fakes::at(test_keys::NOW as f64 * 1000.0);
    serve_jwks(&f);
    f.header("authorization", &format!("Bearer {}", es256_token("k1")));
    for n in 1..=2 {
        let w = jwks_world();
        let mut cx = w.ctx("GET", "https://h.test/me", &f);
        assert_eq!(w.run(&mut cx, &f).1.status(), 200);
        assert_eq!(f.document_fetches.get(), n);
    }
    assert!(f.shared_documents.borrow().is_empty());
}

/// The ECDSA twin of an ES256 token: S replaced by n − S, a valid signature of the same
/// header and claims under another string.
fn malleated(token: &str) -> String {
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut sig = crate::jose::b64::decode(sig).unwrap();
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(N[i]) - i16::from(sig[32 + i]) - borrow;
        borrow = i16::from(d < 0);
        sig[32 + i] = (d + 256 * borrow) as u8;
    }
    format!("{input}.{}", crate::jose::b64::encode(&sig))
}

#[test]
fn a_malleated_es256_token_is_served_from_the_verified_token_cache() {
    // S and n − S both verify: a twin that missed the cache would cost a full verification
    // for a token already known good, so the cache keys on the low-S form.
    let w = jwks_world();
    let f = Fakes::at(test_keys::NOW as f64 * 1000.0);
    serve_jwks(&f);
    // Whichever of the pair is high-S, each is the other's twin.
    let good = es256_token("k1");
    let twin = malleated(&good);
    assert_ne!(good, twin);
    let keys = crate::auth::jwk::keys_from_jwks(
        &f.documents.borrow()["https://id.test/jwks"]
            .as_ref()
            .unwrap()
            .body,
        &[Algorithm::Es256],
    )
    .unwrap();
    let scheme = test_keys::scheme(&[Algorithm::Es256]);
    for t in [&good, &twin] {
        assert!(crate::auth::jwt::verify(t, &scheme, &keys, test_keys::NOW).is_ok());
    }
    f.header("authorization", &format!("Bearer {good}"));
    let mut cx = w.ctx("GET", "https://h.test/me", &f);
    let (sync, ended) = w.run(&mut cx, &f);
    assert_eq!(
        (sync, ended.status()),
        (false, 200),
        "the first one is verified"
    );
    for t in [&twin, &good] {
        f.header("authorization", &format!("Bearer {t}"));
        let mut cx = w.ctx("GET", "https://h.test/me", &f);
        let (sync, ended) = w.run(&mut cx, &f);
        assert_eq!((sync, ended.status()), (true, 200), "served from the cache");
    }
}

#[test]
fn a_jwks_with_no_usable_key_is_looked_at_again_soon_not_after_its_max_age() {
    // A JWKS that parses but yields no key (empty, every key for encryption, or of a type the
    // scheme cannot use) left the scheme at 503 for as long as its max-age said, up to a day,
    // with nothing to make the gateway look again: no token gets as far as an unknown kid.
    let jwk = test_keys::with(
        test_keys::p256_jwk(test_keys::Which::A),
        json!({"kid": "k1", "use": "enc"}),
    );
    for body in [json!({"keys": []}), json!({"keys": [jwk]})] {
        let w = jwks_world();
        let f = Fakes::at(test_keys::NOW as f64 * 1000.0);
        serve_jwks(&f);
        if let Some(Ok(d)) = f.documents.borrow_mut().get_mut("https://id.test/jwks") {
            d.body = body.to_string();
            d.cache_control = "max-age=86400".into();
        }
        f.header("authorization", &format!("Bearer {}", es256_token("k1")));
        let mut cx = w.ctx("GET", "https://h.test/me", &f);
        assert_eq!(
            w.run(&mut cx, &f).1.code(),
            Some("auth_unavailable"),
            "{body}"
        );
        for _ in 0..5 {
            let mut cx = w.ctx("GET", "https://h.test/me", &f);
            assert_eq!(w.run(&mut cx, &f).1.code(), Some("auth_unavailable"));
        }
        assert_eq!(f.document_fetches.get(), 1, "not fetched on every request");
        // The identity provider puts its key back: within seconds the gateway serves again.
        serve_jwks(&f);
        f.now_ms.set(f.now_ms.get() + 5_000.0);
        let mut cx = w.ctx("GET", "https://h.test/me", &f);
        assert_eq!(w.run(&mut cx, &f).1.status(), 200, "{body}");
        assert_eq!(f.document_fetches.get(), 2);
    }
}

#[test]
fn a_huge_entry_planted_under_the_share_url_is_never_read_whole() {
    // The cache is the zone's: other code can plant a body of hundreds of MiB under the share
    // URL, and reading it whole would fill the isolate's memory as an endless JWKS once could.
    // The core asks for at most a JWKS's limit plus the seal.
    let f = Fakes::at(test_keys::NOW as f64 * 1000.0);
    f.secrets.borrow_mut().insert(
        "ADMIN_TOKEN".into(),
        "the admin token, thirty-two bytes long".into(),
    );
    serve_jwks(&f);
    let share = crate::auth::jwks_share::share_url(
        &crate::auth::jwks_share::share_key("the admin token, thirty-two bytes long").unwrap(),
        "https://id.test/jwks",
    );
    f.shared_documents.borrow_mut().insert(
        share,
        "x".repeat(crate::auth::jwks_share::MAX_SEALED_BYTES + 1),
    );
    f.header("authorization", &format!("Bearer {}", es256_token("k1")));
    let w = sealed_jwks_world();
    let mut cx = w.ctx("GET", "https://h.test/me", &f);
    assert_eq!(w.run(&mut cx, &f).1.status(), 200);
    assert_eq!(
        f.document_fetches.get(),
        1,
        "the keys came from the identity provider"
    );
    assert_eq!(
        f.shared_document_bound.get(),
        Some(crate::auth::jwks_share::MAX_SEALED_BYTES)
    );
}

#[test]
fn a_key_rotated_under_the_same_kid_is_picked_up_like_a_new_kid() {
    // Some providers rotate a key and keep its kid. A token signed by the new key then names a
    // kid the isolate knows, fails its signature, and never made the gateway look at the JWKS
    // again: every new token was refused until the old copy's max-age ran out (up to a day).
    let w = jwks_world();
    let f = Fakes::at(test_keys::NOW as f64 * 1000.0);
    serve_jwks(&f);
    f.header("authorization", &format!("Bearer {}", es256_token("k1")));
    let mut cx = w.ctx("GET", "https://h.test/me", &f);
    assert_eq!(w.run(&mut cx, &f).1.status(), 200);
    // The provider now signs with key B, published as k1.
    let (rotated, token) = attacker_jwks_and_token();
    if let Some(Ok(d)) = f.documents.borrow_mut().get_mut("https://id.test/jwks") {
        d.body = rotated;
    }
    f.header("authorization", &format!("Bearer {token}"));
    let mut cx = w.ctx("GET", "https://h.test/me", &f);
    assert_eq!(
        w.run(&mut cx, &f).1.status(),
        200,
        "the JWKS was read again"
    );
    assert_eq!(f.document_fetches.get(), 2);
    // Still at most one look per interval: forged signatures under a known kid cannot flood
    // the provider, and with nothing new fetched the signature is not checked twice.
    let mut forged = es256_token("k1");
    forged.replace_range(forged.len() - 4.., "AAAA");
    f.header("authorization", &format!("Bearer {forged}"));
    for _ in 0..5 {
        let mut cx = w.ctx("GET", "https://h.test/me", &f);
        assert_eq!(w.run(&mut cx, &f).1.code(), Some("invalid_token"));
    }
    assert_eq!(f.document_fetches.get(), 2);
}

#[test]
fn an_admin_token_under_32_bytes_shares_no_jwks_copy() {
    let f = Fakes::at(test_keys::NOW as f64 * 1000.0);
    f.secrets
        .borrow_mut()
        .insert("ADMIN_TOKEN".into(), "x".repeat(31));
    serve_jwks(&f);
    f.header("authorization", &format!("Bearer {}", es256_token("k1")));
    let w = sealed_jwks_world();
    let mut cx = w.ctx("GET", "https://h.test/me", &f);
    assert_eq!(w.run(&mut cx, &f).1.status(), 200);
    assert!(
        f.shared_documents.borrow().is_empty(),
        "a seal from a short token could be forged offline"
    );
    // The same gateway with a token of 32 bytes shares its copy.
    f.secrets
        .borrow_mut()
        .insert("ADMIN_TOKEN".into(), "x".repeat(32));
    let w = sealed_jwks_world();
    let mut cx = w.ctx("GET", "https://h.test/me", &f);
    assert_eq!(w.run(&mut cx, &f).1.status(), 200);
    assert_eq!(f.shared_documents.borrow().len(), 1);
}

#[test]
fn gateways_with_different_admin_tokens_on_one_zone_never_overwrite_each_others_copy() {
    // A staging and a production gateway on one zone, with one identity provider: keyed on
    // the JWKS URL alone, each overwrote the other's copy and refused it in turn (a warning
    // and a fetch on every cold isolate of both).
    let f = Fakes::at(test_keys::NOW as f64 * 1000.0);
    serve_jwks(&f);
    f.header("authorization", &format!("Bearer {}", es256_token("k1")));
    let isolate = |token: &str| {
        f.secrets
            .borrow_mut()
            .insert("ADMIN_TOKEN".into(), token.into());
        let w = sealed_jwks_world();
        let mut cx = w.ctx("GET", "https://h.test/me", &f);
        assert_eq!(w.run(&mut cx, &f).1.status(), 200);
        f.document_fetches.get()
    };
    assert_eq!(isolate("production token, thirty-two bytes long"), 1);
    assert_eq!(
        isolate("staging token, thirty-two bytes long"),
        2,
        "staging cannot open production's copy"
    );
    assert_eq!(
        isolate("production token, thirty-two bytes long"),
        2,
        "production's copy is still there"
    );
    assert_eq!(
        isolate("staging token, thirty-two bytes long"),
        2,
        "and so is staging's"
    );
    assert_eq!(f.shared_documents.borrow().len(), 2);
    let refused = f
        .events
        .borrow()
        .iter()
        .filter(|e| e["event"] == "jwks_shared_copy_refused")
        .count();
    assert_eq!(refused, 0);
}

fn key_world() -> World {
    World::new(json!({
        "auth": { "partners": { "type": "api_key", "header": "x-api-key" } },
        "routes": [ { "id": "p", "path": "/p", "upstream": "api", "auth": ["partners"], "scopes": ["read"] } ]
    }))
}

#[test]
fn api_keys_are_looked_up_once_then_decided_from_the_isolates_cache() {
    let w = key_world();
    let f = Fakes::at(1_000_000.0);
    let key = crate::auth::api_key::new_key([3; 32]);
    store_key(&f, &key, &["read"]);
    f.header("x-api-key", &key);
    let mut cx = w.ctx("GET", "https://h.test/p", &f);
    let (sync, ended) = w.run(&mut cx, &f);
    assert_eq!((sync, ended.status()), (false, 200));
    assert_eq!(cx.consumer(), Some("key/acme"));
    let mut cx = w.ctx("GET", "https://h.test/p", &f);
    let (sync, ended) = w.run(&mut cx, &f);
    assert!(sync);
    assert_eq!(ended.status(), 200);
    assert_eq!(f.kv_reads.get(), 1);
}

#[test]
fn unknown_keys_are_remembered_briefly_and_missing_scopes_are_403() {
    let w = key_world();
    let f = Fakes::at(1_000_000.0);
    let unknown = crate::auth::api_key::new_key([4; 32]);
    f.header("x-api-key", &unknown);
    for _ in 0..3 {
        let mut cx = w.ctx("GET", "https://h.test/p", &f);
        assert_eq!(w.run(&mut cx, &f).1.code(), Some("invalid_token"));
    }
    assert_eq!(
        f.kv_reads.get(),
        1,
        "a flood of one unknown key costs one KV read"
    );

    let weak = crate::auth::api_key::new_key([5; 32]);
    store_key(&f, &weak, &["write"]);
    f.header("x-api-key", &weak);
    let mut cx = w.ctx("GET", "https://h.test/p", &f);
    assert_eq!(w.run(&mut cx, &f).1.code(), Some("insufficient_scope"));
}

#[test]
fn a_failing_key_store_is_the_gateways_outage_not_a_pass() {
    let w = key_world();
    let f = Fakes::at(1_000_000.0);
    f.kv_fails.set(true);
    f.header("x-api-key", &crate::auth::api_key::new_key([6; 32]));
    let mut cx = w.ctx("GET", "https://h.test/p", &f);
    let ended = w.run(&mut cx, &f).1;
    assert_eq!(
        (ended.status(), ended.code()),
        (503, Some("auth_unavailable"))
    );
    assert_eq!(f.exchanges(), 0);
    assert_eq!(w.state.counters.get(Counter::ApiKeyStoreErrors), 1);
    assert_eq!(f.events.borrow()[0]["event"], "api_key_store_unavailable");
    // Nothing was remembered of the failed read: the store is asked again.
    f.kv_fails.set(false);
    let mut cx = w.ctx("GET", "https://h.test/p", &f);
    assert_eq!(w.run(&mut cx, &f).1.code(), Some("invalid_token"));
    assert_eq!(f.kv_reads.get(), 2);
}

/// On a route whose only scheme is an API key, `Authorization` is the upstream's business: a
/// malformed one does not refuse a valid key.
#[test]
fn an_unrelated_authorization_header_does_not_refuse_a_valid_api_key() {
    let w = key_world();
    let f = Fakes::at(1_000_000.0);
    let key = crate::auth::api_key::new_key([7; 32]);
    store_key(&f, &key, &["read"]);
    f.header("x-api-key", &key);
    for junk in ["Bearer a b", "Bearer a, Bearer b", "Basic", "Bearer"] {
        f.header("authorization", junk);
        let mut cx = w.ctx("GET", "https://h.test/p", &f);
        assert_eq!(w.run(&mut cx, &f).1.status(), 200, "{junk}");
        assert_eq!(cx.consumer(), Some("key/acme"));
    }
}

#[test]
fn two_different_credentials_on_one_request_are_refused_before_either_is_checked() {
    let w = World::new(json!({
        "auth": {
            "users": { "type": "jwt", "issuer": test_keys::ISS, "audiences": [test_keys::AUD],
                       "secret": "JWT_SECRET", "algorithms": ["HS256"] },
            "users-again": { "type": "jwt", "issuer": test_keys::ISS, "audiences": [test_keys::AUD],
                             "secret": "JWT_SECRET", "algorithms": ["HS256"] },
            "partners": { "type": "api_key", "header": "x-api-key" },
            "partners-by-query": { "type": "api_key", "query": "api_key" }
        },
        "routes": [
            { "id": "either", "path": "/either", "upstream": "api", "auth": ["partners", "users"] },
            { "id": "jwts", "path": "/jwts", "upstream": "api", "auth": ["users", "users-again"] },
            { "id": "keys", "path": "/keys", "upstream": "api", "auth": ["partners", "partners-by-query"] }
        ]
    }));
    let key = crate::auth::api_key::new_key([6; 32]);
    let run = |headers: &[(&str, String)], path: &str| {
        let f = fakes();
        store_key(&f, &key, &[]);
        for (name, value) in headers {
            f.header(name, value);
        }
        let mut cx = w.ctx("GET", &format!("https://h.test{path}"), &f);
        let ended = w.run(&mut cx, &f).1;
        (
            ended.status(),
            cx.consumer().map(str::to_owned),
            f.kv_reads.get(),
        )
    };
    let token = token();
    let bearer = ("authorization", format!("Bearer {token}"));
    let api_key = ("x-api-key", key.clone());
    // Either alone is one identity.
    assert_eq!(
        run(std::slice::from_ref(&api_key), "/either").1.as_deref(),
        Some("key/acme")
    );
    assert_eq!(
        run(std::slice::from_ref(&bearer), "/either").1.as_deref(),
        Some("jwt/users/user-1")
    );
    // Both: the upstream would see the token's subject behind the key's consumer. Refused,
    // and nothing is looked up.
    assert_eq!(
        run(&[api_key.clone(), bearer.clone()], "/either"),
        (400, None, 0)
    );
    // Two schemes reading one token agree on it.
    assert_eq!(run(&[bearer], "/jwts").0, 200);
    // A key in the header and another in the query are two identities; the same key twice is one.
    let other = crate::auth::api_key::new_key([7; 32]);
    assert_eq!(
        run(
            std::slice::from_ref(&api_key),
            &format!("/keys?api_key={other}")
        ),
        (400, None, 0)
    );
    assert_eq!(run(&[api_key], &format!("/keys?api_key={key}")).0, 200);
}

/// Two tokens of one subject whose forwarded claims differ are two requests to the upstream:
/// an answer computed from one token's `x-tenant` must never be served to the other's.
#[test]
fn per_consumer_entries_are_keyed_by_the_claims_forwarded_upstream() {
    let w = World::new(json!({
        "auth": { "users": { "type": "jwt", "issuer": test_keys::ISS, "audiences": [test_keys::AUD],
                             "secret": "JWT_SECRET", "algorithms": ["HS256"],
                             "forward_claims": { "tenant": "x-tenant" } } },
        "routes": [ { "id": "me", "path": "/me", "upstream": "api", "auth": ["users"],
                      "cache": { "ttl_s": 60, "per_consumer": true } } ]
    }));
    let f = fakes();
    let token_of = |tenant: &str| {
        let mut claims = test_keys::good_claims();
        claims["tenant"] = json!(tenant);
        test_keys::mint(
            Algorithm::Hs256,
            Signer::Hmac(SECRET.as_bytes()),
            None,
            &claims,
        )
    };
    let answer = |body: &str| {
        f.answer(crate::pipeline::fakes::Script::Respond(FakeResponse::new(
            200,
            &[("cache-control", "max-age=60")],
            body,
        )));
    };
    let get = |tenant: &str| {
        f.header("authorization", &format!("Bearer {}", token_of(tenant)));
        let mut cx = w.ctx("GET", "https://h.test/me", &f);
        w.run(&mut cx, &f).1
    };
    answer("tenant a");
    assert_eq!(get("a").response().body, "tenant a");
    answer("tenant b");
    assert_eq!(
        get("b").response().body,
        "tenant b",
        "not tenant a's answer"
    );
    assert_eq!(f.exchanges(), 2);
    // Each token still hits its own entry.
    assert_eq!(get("a").response().body, "tenant a");
    assert_eq!(get("b").response().body, "tenant b");
    assert_eq!(f.exchanges(), 2);
}

/// A JWKS URL may carry a secret of its own in its query (a storage SAS `sig`, a function
/// key `code`) that no `redact_query` names: the failure line names the URL without its query,
/// in its own member and wherever the runtime's message repeats it.
#[test]
fn a_jwks_failure_line_names_the_url_without_its_query() {
    let url = "https://id.test/jwks?sv=2024&sig=SAS1SECRET";
    let w = World::new(json!({
        "auth": { "idp": { "type": "jwt", "issuer": test_keys::ISS, "audiences": [test_keys::AUD],
                           "jwks_url": url, "algorithms": ["ES256"] } },
        "routes": [ { "id": "me", "path": "/me", "upstream": "api", "auth": ["idp"] } ]
    }));
    let f = Fakes::at(test_keys::NOW as f64 * 1000.0);
    f.documents
        .borrow_mut()
        .insert(url.into(), Err(format!("Fetch API cannot load: {url}")));
    f.header("authorization", &format!("Bearer {}", es256_token("k1")));
    let mut cx = w.ctx("GET", "https://h.test/me", &f);
    assert_eq!(w.run(&mut cx, &f).1.code(), Some("auth_unavailable"));
    let mut line = f.events.borrow()[0].clone();
    // As the platform writes it.
    w.gateway.redactor.value(&mut line);
    assert_eq!(line["event"], "jwks_unavailable");
    assert!(!line.to_string().contains("SAS1SECRET"), "{line}");
    assert_eq!(line["url"], "https://id.test/jwks?REDACTED");
}
