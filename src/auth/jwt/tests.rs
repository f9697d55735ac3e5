use super::*;
use crate::auth::jwk::{hmac_keys, keys_from_values};
use crate::auth::test_keys::{
    self, ed25519_jwk, good_claims, mint, mint_raw, p256_jwk, rsa_jwk, scheme, with, Signer, Which,
    AUD, HMAC_SECRET, ISS, NOW,
};
use serde_json::json;

use Algorithm::*;

const HMAC: Signer<'static> = Signer::Hmac(HMAC_SECRET);

fn hs_keys() -> Vec<VerifyingKey> {
    hmac_keys(HMAC_SECRET, &[Hs256])
}

fn hs_token(claims: &Value) -> String {
    mint(Hs256, HMAC, None, claims)
}

fn rsa_keys(allowed: &[Algorithm]) -> Vec<VerifyingKey> {
    keys_from_values(
        &[
            with(rsa_jwk(Which::A), json!({"kid": "a"})),
            with(rsa_jwk(Which::B), json!({"kid": "b"})),
        ],
        allowed,
    )
}

/// `good_claims()` with members replaced (`null` removes one).
fn claims_with(changes: Value) -> Value {
    let mut claims = good_claims();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn header_token(header: Value, claims: &Value) -> String {
    mint_raw(Hs256, HMAC, &header.to_string(), &claims.to_string())
}

// ---------------------------------------------------------------- claims

#[test]
fn a_good_token_yields_all_claims_subject_and_expiry() {
    let v = verify(
        &hs_token(&good_claims()),
        &scheme(&[Hs256]),
        &hs_keys(),
        NOW,
    )
    .unwrap();
    assert_eq!(v.subject.as_deref(), Some("user-1"));
    assert_eq!(v.expires_at, Some(NOW + 300));
    assert_eq!(v.claims.get("iss"), Some(&json!(ISS)));
    assert_eq!(v.claims.get("aud"), Some(&json!(AUD)));
    assert_eq!(v.claims.get("exp"), Some(&json!(NOW + 300)));
    assert_eq!(v.claims.len(), 5);
}

#[test]
fn a_subject_that_is_not_a_string_is_refused() {
    let verify_claims = |claims: &str| {
        verify(
            &mint_raw(Hs256, HMAC, r#"{"alg":"HS256","typ":"JWT"}"#, claims),
            &scheme(&[Hs256]),
            &hs_keys(),
            NOW,
        )
    };
    let rest = format!(r#""iss":"{ISS}","aud":"{AUD}","exp":{}"#, NOW + 300);
    for sub in [
        "42",
        "1.5",
        r#"["user-1"]"#,
        r#"{"id":"user-1"}"#,
        "true",
        "null",
    ] {
        assert_eq!(
            verify_claims(&format!(r#"{{"sub":{sub},{rest}}}"#)).map(|_| ()),
            Err(JwtError::Malformed("sub must be a string")),
            "{sub}"
        );
    }
    let anonymous = verify_claims(&format!("{{{rest}}}")).unwrap();
    assert_eq!(anonymous.subject, None);
    let named = verify_claims(&format!(r#"{{"sub":"42",{rest}}}"#)).unwrap();
    assert_eq!(named.subject.as_deref(), Some("42"));
}

#[test]
fn claim_rules_table() {
    use JwtError::*;
    // (what, claim changes, expected) with leeway 60 s at NOW.
    let cases: Vec<(&str, Value, Result<(), JwtError>)> = vec![
        (
            "exp exactly now+leeway ago",
            json!({"exp": NOW - 60}),
            Ok(()),
        ),
        (
            "exp one second further",
            json!({"exp": NOW - 61}),
            Err(Expired),
        ),
        (
            "exp fractional inside",
            json!({"exp": (NOW - 60) as f64 + 0.5}),
            Ok(()),
        ),
        (
            "exp fractional outside",
            json!({"exp": (NOW - 61) as f64 + 0.5}),
            Err(Expired),
        ),
        ("exp missing", json!({"exp": null}), Err(MissingExpiry)),
        (
            "exp string",
            json!({"exp": "1700000300"}),
            Err(Malformed("exp must be a number")),
        ),
        (
            "exp null-like bool",
            json!({"exp": true}),
            Err(Malformed("exp must be a number")),
        ),
        ("nbf at now+leeway", json!({"nbf": NOW + 60}), Ok(())),
        (
            "nbf one second later",
            json!({"nbf": NOW + 61}),
            Err(NotYetValid),
        ),
        ("nbf in the past", json!({"nbf": NOW - 1000}), Ok(())),
        (
            "nbf string",
            json!({"nbf": "soon"}),
            Err(Malformed("nbf must be a number")),
        ),
        ("iat at now+leeway", json!({"iat": NOW + 60}), Ok(())),
        (
            "iat one second later",
            json!({"iat": NOW + 61}),
            Err(IssuedInFuture),
        ),
        ("iat fractional", json!({"iat": NOW as f64 - 0.25}), Ok(())),
        (
            "iat string",
            json!({"iat": "x"}),
            Err(Malformed("iat must be a number")),
        ),
        ("iss missing", json!({"iss": null}), Err(WrongIssuer)),
        (
            "iss without slash",
            json!({"iss": "https://id.example.com"}),
            Err(WrongIssuer),
        ),
        (
            "iss other case",
            json!({"iss": "https://ID.example.com/"}),
            Err(WrongIssuer),
        ),
        ("iss as array", json!({"iss": [ISS]}), Err(WrongIssuer)),
        ("aud array with it", json!({"aud": ["other", AUD]}), Ok(())),
        ("aud array alone", json!({"aud": [AUD]}), Ok(())),
        ("aud empty array", json!({"aud": []}), Err(WrongAudience)),
        (
            "aud wrong case",
            json!({"aud": "Orders-API"}),
            Err(WrongAudience),
        ),
        (
            "aud other",
            json!({"aud": "billing-api"}),
            Err(WrongAudience),
        ),
        ("aud missing", json!({"aud": null}), Err(WrongAudience)),
        ("aud number", json!({"aud": 1}), Err(WrongAudience)),
        ("aud empty string", json!({"aud": ""}), Err(WrongAudience)),
        (
            "aud array with non-string",
            json!({"aud": [AUD, 1]}),
            Err(WrongAudience),
        ),
    ];
    let s = scheme(&[Hs256]);
    for (what, changes, expected) in cases {
        let token = hs_token(&claims_with(changes));
        let got = verify(&token, &s, &hs_keys(), NOW).map(|_| ());
        assert_eq!(got, expected, "{what}");
    }
}

#[test]
fn fractional_exp_is_rounded_down() {
    let token = hs_token(&claims_with(json!({"exp": NOW as f64 + 10.75})));
    let v = verify(&token, &scheme(&[Hs256]), &hs_keys(), NOW).unwrap();
    assert_eq!(v.expires_at, Some(NOW + 10));
}

#[test]
fn zero_leeway_boundaries() {
    let mut s = scheme(&[Hs256]);
    s.leeway_s = 0;
    let t = hs_token(&claims_with(json!({"exp": NOW, "nbf": NOW, "iat": NOW})));
    assert!(verify(&t, &s, &hs_keys(), NOW).is_ok());
    assert_eq!(verify(&t, &s, &hs_keys(), NOW + 1), Err(JwtError::Expired));
    assert_eq!(
        verify(&t, &s, &hs_keys(), NOW - 1),
        Err(JwtError::NotYetValid)
    );
}

#[test]
fn exp_is_optional_only_when_the_scheme_says_so() {
    let mut s = scheme(&[Hs256]);
    let t = hs_token(&claims_with(json!({"exp": null})));
    assert_eq!(
        verify(&t, &s, &hs_keys(), NOW),
        Err(JwtError::MissingExpiry)
    );
    s.require_exp = false;
    let v = verify(&t, &s, &hs_keys(), NOW).unwrap();
    assert_eq!(v.expires_at, None);
}

#[test]
fn max_lifetime_needs_iat_and_exp_within_it() {
    let mut s = scheme(&[Hs256]);
    s.max_lifetime_s = Some(300);
    let ok = hs_token(&claims_with(json!({"iat": NOW - 10, "exp": NOW + 290})));
    assert!(verify(&ok, &s, &hs_keys(), NOW).is_ok());
    let long = hs_token(&claims_with(json!({"iat": NOW - 10, "exp": NOW + 291})));
    assert_eq!(
        verify(&long, &s, &hs_keys(), NOW),
        Err(JwtError::LifetimeTooLong)
    );
    let no_iat = hs_token(&claims_with(json!({"iat": null})));
    assert_eq!(
        verify(&no_iat, &s, &hs_keys(), NOW),
        Err(JwtError::LifetimeTooLong)
    );
    s.require_exp = false;
    let no_exp = hs_token(&claims_with(json!({"exp": null})));
    assert_eq!(
        verify(&no_exp, &s, &hs_keys(), NOW),
        Err(JwtError::LifetimeTooLong)
    );
}

#[test]
fn any_of_several_audiences() {
    let mut s = scheme(&[Hs256]);
    s.audiences = vec!["a".into(), "b".into()];
    for (aud, ok) in [
        (json!("b"), true),
        (json!(["x", "a"]), true),
        (json!(["x"]), false),
        (json!("c"), false),
    ] {
        let t = hs_token(&claims_with(json!({ "aud": aud })));
        assert_eq!(verify(&t, &s, &hs_keys(), NOW).is_ok(), ok, "{aud}");
    }
}

// ---------------------------------------------------------------- header

#[test]
fn crit_in_any_form_is_refused() {
    for crit in [json!(["exp"]), json!([]), json!("b64"), json!(null)] {
        let t = header_token(json!({"alg": "HS256", "crit": crit}), &good_claims());
        assert_eq!(
            verify(&t, &scheme(&[Hs256]), &hs_keys(), NOW),
            Err(JwtError::CriticalHeader),
            "{crit}"
        );
    }
}

#[test]
fn typ_is_checked_only_when_configured() {
    let mut s = scheme(&[Hs256]);
    let typed = |typ: Value| header_token(json!({"alg": "HS256", "typ": typ}), &good_claims());
    let untyped = header_token(json!({"alg": "HS256"}), &good_claims());
    assert!(verify(&typed(json!("anything")), &s, &hs_keys(), NOW).is_ok());
    assert!(verify(&untyped, &s, &hs_keys(), NOW).is_ok());

    s.typ = Some("JWT".into());
    for (typ, ok) in [
        (json!("JWT"), true),
        (json!("jwt"), true),
        (json!("application/jwt"), true),
        (json!("Application/JWT"), true),
        (json!("at+jwt"), false),
        (json!("application/"), false),
        (json!("JWTX"), false),
        (json!(1), false),
    ] {
        assert_eq!(
            verify(&typed(typ.clone()), &s, &hs_keys(), NOW).is_ok(),
            ok,
            "{typ}"
        );
    }
    assert_eq!(
        verify(&untyped, &s, &hs_keys(), NOW),
        Err(JwtError::WrongType)
    );

    s.typ = Some("application/at+jwt".into());
    assert!(verify(&typed(json!("at+JWT")), &s, &hs_keys(), NOW).is_ok());
    assert_eq!(
        verify(&typed(json!("JWT")), &s, &hs_keys(), NOW),
        Err(JwtError::WrongType)
    );
}

/// A valid HS256 token of exactly `len` bytes, padding a claim and a header member.
fn token_of_len(len: usize) -> String {
    let b64_len = |n: usize| n / 3 * 4 + [0, 2, 3][n % 3];
    let sig_len = b64_len(32);
    for header_pad in 0..4 {
        let header = json!({"alg": "HS256", "x": "h".repeat(header_pad)}).to_string();
        let base = claims_with(json!({"pad": ""})).to_string().len();
        // Payload bytes whose encoding fills the rest exactly, if there are such.
        let payload_b64 = len - b64_len(header.len()) - sig_len - 2;
        if payload_b64 % 4 == 1 {
            continue;
        }
        let payload_bytes = payload_b64 / 4 * 3 + [0, 0, 1, 2][payload_b64 % 4];
        let claims = claims_with(json!({"pad": "p".repeat(payload_bytes - base)}));
        let t = mint_raw(Hs256, HMAC, &header, &claims.to_string());
        assert_eq!(t.len(), len);
        return t;
    }
    panic!("no token of {len} bytes");
}

#[test]
fn token_length_limit() {
    let s = scheme(&[Hs256]);
    let at_limit = token_of_len(MAX_TOKEN_BYTES);
    assert!(verify(&at_limit, &s, &hs_keys(), NOW).is_ok());
    let over = token_of_len(MAX_TOKEN_BYTES + 1);
    assert_eq!(verify(&over, &s, &hs_keys(), NOW), Err(JwtError::TooLong));
    let junk = "x".repeat(MAX_TOKEN_BYTES + 1);
    assert_eq!(verify(&junk, &s, &hs_keys(), NOW), Err(JwtError::TooLong));
}

#[test]
fn malformed_tokens() {
    let s = scheme(&[Hs256]);
    let good = hs_token(&good_claims());
    let (h, rest) = good.split_once('.').unwrap();
    let (p, sig) = rest.split_once('.').unwrap();
    let enc = |s: &str| test_keys_b64(s.as_bytes());
    let cases = [
        String::new(),
        "abc".to_string(),
        format!("{h}.{p}"),
        format!("{h}.{p}.{sig}.x"),
        format!("{h}.{p}.{sig}."),
        format!("{h}=.{p}.{sig}"),
        format!("{h}.{p}.{sig}="),
        format!("{h}.{p}+.{sig}"),
        format!("{}.{p}.{sig}", enc("not json")),
        format!("{}.{p}.{sig}", enc("[\"HS256\"]")),
        format!("{}.{p}.{sig}", enc("{\"alg\": 256}")),
        format!("{}.{p}.{sig}", enc("{\"typ\": \"JWT\"}")),
        format!("{}.{p}.{sig}", enc("{\"alg\":\"HS256\",\"alg\":\"HS256\"}")),
        format!("{}.{p}.{sig}", enc("{\"alg\":\"HS256\",\"kid\":5}")),
    ];
    for t in cases {
        assert!(
            matches!(verify(&t, &s, &hs_keys(), NOW), Err(JwtError::Malformed(_))),
            "{t:?} -> {:?}",
            verify(&t, &s, &hs_keys(), NOW)
        );
    }
}

fn test_keys_b64(bytes: &[u8]) -> String {
    crate::auth::b64::encode(bytes)
}

#[test]
fn claims_must_be_an_object_with_unique_members_even_when_signed() {
    let s = scheme(&[Hs256]);
    let header = r#"{"alg":"HS256"}"#;
    for claims in [
        "[1,2]",
        "\"sub\"",
        "not json",
        r#"{"iss":"https://id.example.com/","aud":"orders-api","exp":1700000300,"sub":"a","sub":"admin"}"#,
        // Nested objects too, in an object or in an array: a forwarded claim must mean one thing.
        r#"{"iss":"https://id.example.com/","aud":"orders-api","exp":1700000300,"org":{"role":"user","role":"admin"}}"#,
        r#"{"iss":"https://id.example.com/","aud":"orders-api","exp":1700000300,"orgs":[{"id":1},{"id":2,"id":3}]}"#,
    ] {
        let t = mint_raw(Hs256, HMAC, header, claims);
        assert!(
            matches!(verify(&t, &s, &hs_keys(), NOW), Err(JwtError::Malformed(_))),
            "{claims}"
        );
    }
}

#[test]
fn claims_of_every_json_type_with_distinct_members_verify() {
    let s = scheme(&[Hs256]);
    let claims = r#"{"iss":"https://id.example.com/","aud":"orders-api","exp":1700000300,"n":null,"t":true,"i":-3,"u":18446744073709551615,"f":1.5,"s":"x","a":[1,"two",{"k":[],"j":{}}],"o":{"role":"user","nested":{"role":"admin"}}}"#;
    let t = mint_raw(Hs256, HMAC, r#"{"alg":"HS256"}"#, claims);
    let verified = verify(&t, &s, &hs_keys(), NOW).expect("distinct members at every depth");
    let want: Value = serde_json::from_str(claims).unwrap();
    assert_eq!(Value::Object(verified.claims.clone()), want);
}

#[test]
fn alg_none_in_any_case_is_refused() {
    let payload = test_keys_b64(good_claims().to_string().as_bytes());
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = test_keys_b64(json!({ "alg": alg }).to_string().as_bytes());
        for t in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}.AAAA"),
        ] {
            for algs in [vec![Hs256], Algorithm::ALL.to_vec()] {
                assert_eq!(
                    verify(&t, &scheme(&algs), &hs_keys(), NOW),
                    Err(JwtError::AlgorithmNone),
                    "{alg}"
                );
            }
        }
    }
}

#[test]
fn algorithms_outside_the_scheme_are_refused() {
    let s = scheme(&[Rs256]);
    let t = mint(Rs512, Signer::Rsa(Which::A), Some("a"), &good_claims());
    let err = verify(&t, &s, &rsa_keys(&[Rs256, Rs512]), NOW).unwrap_err();
    assert_eq!(err, JwtError::AlgorithmNotAllowed("RS512".into()));
    assert_eq!(err.reason(), "token algorithm RS512 is not accepted");

    let lower = header_token(json!({"alg": "hs256"}), &good_claims());
    assert!(matches!(
        verify(&lower, &scheme(&[Hs256]), &hs_keys(), NOW),
        Err(JwtError::AlgorithmNotAllowed(_))
    ));

    let junk = header_token(json!({"alg": "HS1024\r\n<script>"}), &good_claims());
    let err = verify(&junk, &scheme(&[Hs256]), &hs_keys(), NOW).unwrap_err();
    assert_eq!(err.reason(), "token algorithm is not supported");
    assert!(!format!("{err:?}").contains('\n'));
}

// ---------------------------------------------------------------- keys

#[test]
fn every_supported_asymmetric_algorithm_verifies() {
    let cases = [
        (Rs256, Signer::Rsa(Which::A), rsa_jwk(Which::A)),
        (Ps384, Signer::Rsa(Which::A), rsa_jwk(Which::A)),
        (Es256, Signer::P256(Which::A), p256_jwk(Which::A)),
        (EdDsa, Signer::Ed25519, ed25519_jwk()),
    ];
    for (alg, signer, jwk) in cases {
        let keys = keys_from_values(&[jwk], &[alg]);
        let t = mint(alg, signer, None, &good_claims());
        assert!(verify(&t, &scheme(&[alg]), &keys, NOW).is_ok(), "{alg:?}");
    }
}

#[test]
fn every_hmac_algorithm_verifies_with_its_own_key_only() {
    let s = scheme(&[Hs256, Hs384, Hs512]);
    let keys = hmac_keys(HMAC_SECRET, &[Hs256, Hs384, Hs512]);
    for alg in [Hs256, Hs384, Hs512] {
        let t = mint(alg, HMAC, None, &good_claims());
        assert!(verify(&t, &s, &keys, NOW).is_ok(), "{alg:?}");
        let other = mint(alg, Signer::Hmac(b"another-secret"), None, &good_claims());
        assert_eq!(verify(&other, &s, &keys, NOW), Err(JwtError::BadSignature));
    }
}

#[test]
fn a_token_minted_by_jwt_compact_itself_verifies() {
    use jwt_compact::alg::{Hs256 as JHs256, Hs256Key};
    use jwt_compact::{AlgorithmExt, Claims, Header};
    let custom = good_claims().as_object().unwrap().clone();
    let t = JHs256
        .token(
            &Header::empty().with_key_id("k1"),
            &Claims::new(custom),
            &Hs256Key::new(HMAC_SECRET),
        )
        .unwrap();
    let v = verify(&t, &scheme(&[Hs256]), &hs_keys(), NOW).unwrap();
    assert_eq!(v.subject.as_deref(), Some("user-1"));
}

#[test]
fn rs256_key_never_verifies_ps256_or_hs256() {
    // The JWK has no alg; the scheme allows RS256 first, so the key is bound to RS256 only.
    let keys = keys_from_values(&[rsa_jwk(Which::A)], &[Rs256, Ps256, Hs256]);
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].alg, Rs256);
    let s = scheme(&[Rs256, Ps256, Hs256]);

    let ps = mint(Ps256, Signer::Rsa(Which::A), None, &good_claims());
    assert_eq!(
        verify(&ps, &s, &keys, NOW),
        Err(JwtError::UnknownKey { kid: None })
    );

    let rs = mint(Rs256, Signer::Rsa(Which::A), None, &good_claims());
    assert!(verify(&rs, &s, &keys, NOW).is_ok());
}

#[test]
fn hs256_forgery_with_the_rsa_public_key_is_refused() {
    let der = test_keys::RSA_A_DER_B64
        .replace('+', "-")
        .replace('/', "_")
        .replace('=', "");
    let secrets: Vec<Vec<u8>> = vec![
        test_keys::RSA_A_PEM.as_bytes().to_vec(),
        test_keys::RSA_A_PEM.trim_end().as_bytes().to_vec(),
        crate::auth::b64::decode(&der).unwrap(),
        test_keys::RSA_A_DER_B64.as_bytes().to_vec(),
        crate::auth::b64::decode(test_keys::RSA_A_N).unwrap(),
        test_keys::RSA_A_N.as_bytes().to_vec(),
        rsa_jwk(Which::A).to_string().into_bytes(),
    ];
    // Even a scheme that allows HS256 beside RS256 (with no HMAC secret configured), or a JWKS
    // that claims the RSA key is an HS256 key.
    let jwks = [
        with(rsa_jwk(Which::A), json!({"kid": "a"})),
        with(rsa_jwk(Which::A), json!({"kid": "a", "alg": "HS256"})),
    ];
    for allowed in [vec![Rs256, Hs256], vec![Hs256, Rs256]] {
        let keys = keys_from_values(&jwks, &allowed);
        assert!(keys.iter().all(|k| k.alg == Rs256));
        for secret in &secrets {
            for kid in [Some("a"), None] {
                let t = mint(Hs256, Signer::Hmac(secret), kid, &good_claims());
                let err = verify(&t, &scheme(&allowed), &keys, NOW).unwrap_err();
                assert!(err.is_unknown_key(), "{err:?}");
            }
        }
    }
    // With only RS256 allowed, the header is refused before any key is looked at.
    let t = mint(Hs256, Signer::Hmac(&secrets[0]), Some("a"), &good_claims());
    assert_eq!(
        verify(&t, &scheme(&[Rs256]), &rsa_keys(&[Rs256]), NOW),
        Err(JwtError::AlgorithmNotAllowed("HS256".into()))
    );
}

#[test]
fn kid_selects_the_key_and_a_swapped_kid_fails() {
    let s = scheme(&[Rs256]);
    let keys = rsa_keys(&[Rs256]);
    let by_a = mint(Rs256, Signer::Rsa(Which::A), Some("a"), &good_claims());
    assert!(verify(&by_a, &s, &keys, NOW).is_ok());

    let swapped = mint(Rs256, Signer::Rsa(Which::A), Some("b"), &good_claims());
    assert_eq!(
        verify(&swapped, &s, &keys, NOW),
        Err(JwtError::BadSignature)
    );

    let unknown = mint(Rs256, Signer::Rsa(Which::A), Some("zzz"), &good_claims());
    let err = verify(&unknown, &s, &keys, NOW).unwrap_err();
    assert_eq!(
        err,
        JwtError::UnknownKey {
            kid: Some("zzz".into())
        }
    );
    assert!(err.is_unknown_key());
    assert_eq!(err.reason(), "no known key has id zzz");

    // Without kid every key bound to the algorithm is tried.
    let by_b = mint(Rs256, Signer::Rsa(Which::B), None, &good_claims());
    assert!(verify(&by_b, &s, &keys, NOW).is_ok());

    // Signed by a key we do not have.
    let only_a = keys_from_values(&[rsa_jwk(Which::A)], &[Rs256]);
    assert_eq!(verify(&by_b, &s, &only_a, NOW), Err(JwtError::BadSignature));
    assert_eq!(
        verify(&by_b, &s, &[], NOW),
        Err(JwtError::UnknownKey { kid: None })
    );
}

#[test]
fn a_kid_falls_back_to_keys_without_kid() {
    let s = scheme(&[Hs256]);
    let t = mint(Hs256, HMAC, Some("k1"), &good_claims());
    assert!(verify(&t, &s, &hs_keys(), NOW).is_ok());
    let wrong = mint(Hs256, Signer::Hmac(b"other"), Some("k1"), &good_claims());
    assert_eq!(
        verify(&wrong, &s, &hs_keys(), NOW),
        Err(JwtError::UnknownKey {
            kid: Some("k1".into())
        })
    );
}

#[test]
fn tampering_is_detected() {
    let s = scheme(&[Es256]);
    let keys = keys_from_values(&[p256_jwk(Which::A)], &[Es256]);
    let t = mint(Es256, Signer::P256(Which::A), None, &good_claims());
    assert!(verify(&t, &s, &keys, NOW).is_ok());
    let (h, rest) = t.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();

    let forged = claims_with(json!({"sub": "admin"}));
    let tampered = format!("{h}.{}.{sig}", test_keys_b64(forged.to_string().as_bytes()));
    assert_eq!(
        verify(&tampered, &s, &keys, NOW),
        Err(JwtError::BadSignature)
    );

    let mut bad_sig = sig.as_bytes().to_vec();
    bad_sig[10] = if bad_sig[10] == b'A' { b'B' } else { b'A' };
    let bad_sig = String::from_utf8(bad_sig).unwrap();
    let t2 = format!("{h}.{}.{bad_sig}", rest.split_once('.').unwrap().0);
    assert_eq!(verify(&t2, &s, &keys, NOW), Err(JwtError::BadSignature));

    let other_key = mint(Es256, Signer::P256(Which::B), None, &good_claims());
    assert_eq!(
        verify(&other_key, &s, &keys, NOW),
        Err(JwtError::BadSignature)
    );

    let truncated = format!("{h}.{}.{}", rest.split_once('.').unwrap().0, &sig[..20]);
    assert_eq!(
        verify(&truncated, &s, &keys, NOW),
        Err(JwtError::BadSignature)
    );
}

#[test]
fn header_key_hints_are_ignored() {
    // The attacker signs with their own key and points at it every way the header allows.
    let s = scheme(&[EdDsa, Es256]);
    let keys = keys_from_values(&[with(p256_jwk(Which::A), json!({"kid": "a"}))], &[Es256]);
    let header = json!({
        "alg": "ES256",
        "jku": "https://evil.example/jwks.json",
        "x5u": "https://evil.example/cert.pem",
        "jwk": p256_jwk(Which::B),
        "x5c": ["MIIB"],
    });
    let t = mint_raw(
        Es256,
        Signer::P256(Which::B),
        &header.to_string(),
        &good_claims().to_string(),
    );
    assert_eq!(verify(&t, &s, &keys, NOW), Err(JwtError::BadSignature));

    // The same extra members do not stop a genuine token.
    let genuine = mint_raw(
        Es256,
        Signer::P256(Which::A),
        &header.to_string(),
        &good_claims().to_string(),
    );
    assert!(verify(&genuine, &s, &keys, NOW).is_ok());
}

#[test]
fn candidates_are_bounded() {
    // Many kid-less keys for the algorithm: only MAX_CANDIDATES are tried.
    let s = scheme(&[Hs256]);
    let mut keys: Vec<VerifyingKey> = (0..MAX_CANDIDATES)
        .flat_map(|i| hmac_keys(format!("decoy-{i:0>32}").as_bytes(), &[Hs256]))
        .collect();
    keys.extend(hs_keys());
    let t = hs_token(&good_claims());
    assert_eq!(verify(&t, &s, &keys, NOW), Err(JwtError::BadSignature));
    keys.rotate_right(1);
    assert!(verify(&t, &s, &keys, NOW).is_ok());
}

#[test]
fn reasons_echo_only_a_sanitised_bounded_kid() {
    let kid = format!("a\"b\r\n<script>{}", "k".repeat(200));
    let t = mint(Hs256, HMAC, Some(&kid), &good_claims());
    let err = verify(&t, &scheme(&[Hs256]), &[], NOW).unwrap_err();
    let reason = err.reason();
    assert!(err.is_unknown_key());
    assert!(!reason.contains(['"', '\r', '\n', '<', '>']), "{reason}");
    assert!(reason.len() < 120, "{reason}");
    assert!(
        reason.starts_with("no known key has id a_b___script_kkk"),
        "{reason}"
    );
    for e in [
        JwtError::TooLong,
        JwtError::Malformed("x"),
        JwtError::AlgorithmNone,
        JwtError::CriticalHeader,
        JwtError::BadSignature,
        JwtError::MissingExpiry,
        JwtError::Expired,
        JwtError::NotYetValid,
        JwtError::IssuedInFuture,
        JwtError::LifetimeTooLong,
        JwtError::WrongIssuer,
        JwtError::WrongAudience,
        JwtError::WrongType,
        JwtError::UnsafeClaimValue("sub".into()),
        JwtError::UnknownKey { kid: None },
    ] {
        assert!(!e.reason().is_empty());
        assert!(!e.is_unknown_key() || matches!(e, JwtError::UnknownKey { .. }));
    }
}

// ---------------------------------------------------------------- forwarded claims

fn verified(claims: Value) -> VerifiedToken {
    VerifiedToken {
        claims: claims.as_object().unwrap().clone(),
        subject: None,
        expires_at: None,
    }
}

fn forwarding(pairs: &[(&str, &str)]) -> JwtScheme {
    let mut s = scheme(&[Hs256]);
    s.forward_claims = pairs
        .iter()
        .map(|(c, h)| (c.to_string(), h.to_string()))
        .collect();
    s
}

#[test]
fn forwarded_claims_render_each_json_type() {
    let s = forwarding(&[
        ("sub", "x-user"),
        ("n", "x-n"),
        ("f", "x-f"),
        ("b", "x-b"),
        ("roles", "x-roles"),
        ("org", "x-org"),
        ("gone", "x-gone"),
        ("nothing", "x-nothing"),
        ("name", "x-name"),
        ("pct", "x-pct"),
        ("tab", "x-tab"),
    ]);
    let v = verified(json!({
        "sub": "user-1",
        "n": 42,
        "f": 1.5,
        "b": true,
        "roles": ["admin", "dev"],
        "org": {"id": 7, "name": "Zoë"},
        "nothing": null,
        "name": "José 😀",
        "pct": "100%",
        "tab": "a\tb",
    }));
    let got = forwarded_claims(&v, &s).unwrap();
    let expected: Vec<(String, String)> = [
        ("x-user", "user-1"),
        ("x-n", "42"),
        ("x-f", "1.5"),
        ("x-b", "true"),
        ("x-roles", "[\"admin\",\"dev\"]"),
        ("x-org", "{\"id\":7,\"name\":\"Zo%C3%AB\"}"),
        ("x-name", "Jos%C3%A9 %F0%9F%98%80"),
        ("x-pct", "100%25"),
        ("x-tab", "a\tb"),
    ]
    .iter()
    .map(|(h, v)| (h.to_string(), v.to_string()))
    .collect();
    assert_eq!(got, expected);
}

#[test]
fn forwarded_claims_refuse_control_characters() {
    for bad in [
        json!("a\r\nx-admin: 1"),
        json!("a\nb"),
        json!("a\rb"),
        json!("a\u{0}b"),
        json!("a\u{7f}b"),
        json!("a\u{85}b"),
        json!(["ok", "a\nb"]),
        json!({"k": "a\r"}),
        json!({"a\nb": 1}),
    ] {
        let v = verified(json!({ "sub": bad }));
        assert_eq!(
            forwarded_claims(&v, &forwarding(&[("sub", "x-user")])),
            Err(JwtError::UnsafeClaimValue("sub".into())),
            "{bad}"
        );
    }
    // A control character in a claim that is not forwarded does not matter.
    let v = verified(json!({"sub": "ok", "other": "a\nb"}));
    assert!(forwarded_claims(&v, &forwarding(&[("sub", "x-user")])).is_ok());
}

#[test]
fn forwarded_values_are_always_valid_header_values() {
    let v = verified(json!({"sub": "ünïcödé % \u{2028} ok"}));
    let got = forwarded_claims(&v, &forwarding(&[("sub", "x-user")])).unwrap();
    let value = &got[0].1;
    assert!(
        value
            .bytes()
            .all(|b| b == b'\t' || (0x20..0x7f).contains(&b)),
        "{value}"
    );
}

#[test]
fn forwarded_values_keep_spaces_and_tabs_at_their_ends() {
    // A header value cannot begin or end with a space or tab: the runtime strips them, so
    // " admin" would reach the upstream as "admin", another subject's value. They are
    // percent-encoded instead; inside the value they stay as they are.
    let s = forwarding(&[("sub", "x-user")]);
    for (claim, header) in [
        (" admin", "%20admin"),
        ("admin ", "admin%20"),
        ("\tadmin\t", "%09admin%09"),
        ("  a b  ", "%20%20a b%20%20"),
        (" \t ", "%20%09%20"),
        ("a b", "a b"),
        ("", ""),
    ] {
        let v = verified(json!({ "sub": claim }));
        assert_eq!(
            forwarded_claims(&v, &s).unwrap(),
            vec![("x-user".to_string(), header.to_string())],
            "{claim:?}"
        );
    }
}

// ---------------------------------------------------------------- scopes

#[test]
fn scopes_from_scope_and_scp() {
    let req = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let claims = |v: Value| v.as_object().unwrap().clone();

    let c = claims(json!({"scope": "users:read  orders:write"}));
    assert_eq!(
        missing_scope(&c, &req(&["users:read", "orders:write"])),
        None
    );
    assert_eq!(
        missing_scope(&c, &req(&["users:read", "admin"])),
        Some("admin")
    );
    assert_eq!(missing_scope(&c, &req(&["users"])), Some("users"));
    assert_eq!(missing_scope(&c, &req(&[])), None);
    assert_eq!(missing_scope(&c, &req(&[""])), Some(""));

    let c = claims(json!({"scp": ["users:read", "orders:write", 5]}));
    assert_eq!(missing_scope(&c, &req(&["orders:write"])), None);
    assert_eq!(missing_scope(&c, &req(&["5"])), Some("5"));

    let c = claims(json!({"scp": "users:read orders:write"}));
    assert_eq!(
        missing_scope(&c, &req(&["orders:write", "users:read"])),
        None
    );

    let c = claims(json!({"scope": "a", "scp": ["b"]}));
    assert_eq!(missing_scope(&c, &req(&["a", "b"])), None);
    assert_eq!(missing_scope(&c, &req(&["a", "b", "c", "d"])), Some("c"));

    let c = claims(json!({}));
    assert_eq!(missing_scope(&c, &req(&["a"])), Some("a"));
    let c = claims(json!({"scope": ["a"], "scp": 1}));
    assert_eq!(missing_scope(&c, &req(&["a"])), Some("a"));
}

/// `token` with its signature's second half replaced by `f(second half)`.
fn with_second_half(token: &str, f: impl Fn(&[u8; 32]) -> [u8; 32]) -> String {
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut sig = b64::decode(sig).unwrap();
    let half: [u8; 32] = sig[32..].try_into().unwrap();
    sig[32..].copy_from_slice(&f(&half));
    format!("{input}.{}", b64::encode(&sig))
}

#[test]
fn an_es256_token_and_its_malleated_twin_have_one_cache_form() {
    let keys = keys_from_values(&[p256_jwk(Which::A)], &[Es256]);
    let s = scheme(&[Es256]);
    // Several tokens, so both a low-S and a high-S original are met.
    let mut seen_high = false;
    for n in 0..16 {
        let token = mint(
            Es256,
            Signer::P256(Which::A),
            None,
            &with(good_claims(), json!({"n": n})),
        );
        let twin = with_second_half(&token, |s| {
            low_s(s).unwrap_or_else(|| {
                // A low S: its twin is the high one, n − S, computed the other way round.
                let mut out = [0u8; 32];
                let mut borrow = 0i16;
                for i in (0..32).rev() {
                    let d = i16::from(P256_ORDER[i]) - i16::from(s[i]) - borrow;
                    borrow = i16::from(d < 0);
                    out[i] = (d + 256 * borrow) as u8;
                }
                out
            })
        });
        assert!(
            verify(&twin, &s, &keys, NOW).is_ok(),
            "the twin verifies too"
        );
        assert_eq!(cache_form(&token), cache_form(&twin));
        let low = cache_form(&token);
        seen_high |= low != token;
        assert_eq!(cache_form(&low), low, "the low-S form is its own");
    }
    assert!(seen_high, "one of 16 signatures had a high S");
}

#[test]
fn only_es256_signatures_are_normalised() {
    let high = |_: &[u8; 32]| [0xf0; 32]; // above n/2, below n
                                          // 64-byte signatures of other algorithms (HS512, EdDSA) stay as they are: their twin is
                                          // no valid signature, so it must never share a verified token's entry.
    let hs512 = with_second_half(&mint(Hs512, HMAC, None, &good_claims()), high);
    let ed = with_second_half(&mint(EdDsa, Signer::Ed25519, None, &good_claims()), high);
    for t in [&hs512, &ed] {
        assert_eq!(cache_form(t), t.as_str());
    }
    // An ES256 header whose alg is not plainly one string, an S at or above n, a short one.
    let dup = mint_raw(
        Es256,
        Signer::P256(Which::A),
        r#"{"alg":"ES256","alg":"ES256"}"#,
        &good_claims().to_string(),
    );
    let dup = with_second_half(&dup, high);
    assert_eq!(cache_form(&dup), dup.as_str());
    let es = mint(Es256, Signer::P256(Which::A), None, &good_claims());
    let at_n = with_second_half(&es, |_| P256_ORDER);
    assert_eq!(cache_form(&at_n), at_n.as_str());
    let above_n = with_second_half(&es, |_| [0xff; 32]);
    assert_eq!(cache_form(&above_n), above_n.as_str());
    for t in ["", "a.b", "a.b.c", &es[..es.len() - 1]] {
        assert_eq!(cache_form(t), t);
    }
}

#[test]
fn no_one_character_change_of_a_valid_token_verifies() {
    // Any character anywhere — in the header, the claims, the signature or a separator — to
    // any other base64url character or separator: the token is refused. So no second spelling
    // of a token verifies (base64url is read strictly: no padding, no stray trailing bits).
    let es = (
        scheme(&[Es256]),
        keys_from_values(&[p256_jwk(Which::A)], &[Es256]),
    );
    let hs = (scheme(&[Hs256]), hs_keys());
    let tokens = [
        (
            mint(Es256, Signer::P256(Which::A), None, &good_claims()),
            &es,
        ),
        (hs_token(&good_claims()), &hs),
    ];
    for (token, (s, keys)) in tokens {
        assert!(verify(&token, s, keys, NOW).is_ok());
        for (i, original) in token.char_indices() {
            for c in ['A', 'B', 'Q', 'g', 'w', '0', '9', '-', '_', '.', '='] {
                if c == original {
                    continue;
                }
                let mut changed = token.clone();
                changed.replace_range(i..i + 1, &c.to_string());
                assert!(
                    verify(&changed, s, keys, NOW).is_err(),
                    "character {i} ({original:?} → {c:?}) still verifies: {changed}"
                );
            }
        }
    }
}
