use super::{
    check_public_jwk, hmac_keys, hmac_weaknesses, keys_from_jwks, keys_from_values, read_jwks,
    VerifyingKey, MAX_JWKS_BYTES, MAX_JWKS_KEYS,
};
use crate::auth::test_keys::{self, ed25519_jwk, p256_jwk, rsa_jwk, with, Signer, Which};
use crate::config::Algorithm;
use serde_json::json;
use serde_json::Value;

use Algorithm::*;

const SECRET_64: [u8; 64] = [7; 64];

/// A published ROCA-vulnerable 2048-bit modulus (the `roca-detect` project's `mod03.txt`).
const ROCA_N: &str = "nc10IOQgwnCmgGDri1qnRXqfZkj4b6_tJ3XMH3muli8eY_G55RxV-epv3HMy6bAFjJ_y6x_ImFUCnPaq_iHmif6zisn_sS8c43G7XQ6armQWGrznS0JEv2jx7bRBH3VqCXyJKcFHQCReo1X4My0ao2u1DH3LRQXajeAuTlPTj43wYJfadSTfDfk9tI6sjMSvLToWJX6ysq3Ka6Rk5ZdPqSVQ0xsbq_Fh52ktALhuPdiG7KtKv74aj4zCY_9K9VzbRfQkmlGTkl9emD12LwtoAJQ-sCZ7CPQu0xHOH1yG6svIzk08t6L-4e9WQUI6HPQRTl7PUANKYKQSUjr55vSqEQ";

fn jwks(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

fn one(key: Value, allowed: &[Algorithm]) -> Option<VerifyingKey> {
    let mut keys = keys_from_values(&[key], allowed);
    assert!(keys.len() <= 1);
    keys.pop()
}

#[test]
fn jwks_document_errors() {
    assert!(keys_from_jwks("not json", &[Rs256]).is_err());
    assert!(keys_from_jwks("{}", &[Rs256]).is_err());
    assert!(keys_from_jwks("{\"keys\": {}}", &[Rs256]).is_err());
    assert!(keys_from_jwks("[]", &[Rs256]).is_err());
    let too_many: Vec<Value> = (0..=MAX_JWKS_KEYS).map(|_| ed25519_jwk()).collect();
    assert!(keys_from_jwks(&jwks(&too_many), &[EdDsa]).is_err());
    let just_enough: Vec<Value> = (0..MAX_JWKS_KEYS).map(|_| ed25519_jwk()).collect();
    assert_eq!(
        keys_from_jwks(&jwks(&just_enough), &[EdDsa]).unwrap().len(),
        MAX_JWKS_KEYS
    );
    let huge = format!(
        "{{\"keys\": [], \"pad\": \"{}\"}}",
        "x".repeat(MAX_JWKS_BYTES)
    );
    assert!(keys_from_jwks(&huge, &[EdDsa]).is_err());
    assert!(keys_from_jwks("{\"keys\": []}", &[EdDsa])
        .unwrap()
        .is_empty());
}

#[test]
fn usable_keys_of_every_type_are_read_with_their_kid() {
    let doc = jwks(&[
        with(rsa_jwk(Which::A), json!({"kid": "r", "use": "sig"})),
        with(p256_jwk(Which::A), json!({"kid": "e", "alg": "ES256"})),
        with(ed25519_jwk(), json!({"kid": "o", "key_ops": ["verify"]})),
    ]);
    let keys = keys_from_jwks(&doc, &[Rs256, Es256, EdDsa]).unwrap();
    let got: Vec<(Option<&str>, Algorithm)> =
        keys.iter().map(|k| (k.kid.as_deref(), k.alg)).collect();
    assert_eq!(
        got,
        vec![(Some("r"), Rs256), (Some("e"), Es256), (Some("o"), EdDsa)]
    );
}

#[test]
fn a_key_without_alg_binds_to_the_first_compatible_allowed_algorithm() {
    let rsa = rsa_jwk(Which::A);
    assert_eq!(one(rsa.clone(), &[Es256, Ps256, Rs256]).unwrap().alg, Ps256);
    assert_eq!(one(rsa.clone(), &[Hs256, Rs384, Rs256]).unwrap().alg, Rs384);
    assert!(one(rsa.clone(), &[Hs256, Es256, EdDsa]).is_none());
    assert_eq!(one(p256_jwk(Which::A), &[Rs256, Es256]).unwrap().alg, Es256);
    assert_eq!(one(ed25519_jwk(), &[Hs512, EdDsa]).unwrap().alg, EdDsa);
    assert!(one(ed25519_jwk(), &[Hs512, Es256]).is_none());
}

#[test]
fn a_key_with_alg_binds_to_it_only_if_allowed_and_fitting() {
    let rsa = rsa_jwk(Which::A);
    let with_alg = |alg: &str| with(rsa.clone(), json!({ "alg": alg }));
    assert_eq!(one(with_alg("RS512"), &[Rs256, Rs512]).unwrap().alg, Rs512);
    assert!(one(with_alg("RS512"), &[Rs256]).is_none(), "not allowed");
    assert!(
        one(with_alg("ES256"), &[Es256, Rs256]).is_none(),
        "not fitting"
    );
    assert!(
        one(with_alg("HS256"), &[Hs256, Rs256]).is_none(),
        "never HMAC"
    );
    assert!(
        one(with_alg("rs256"), &[Rs256]).is_none(),
        "names are exact"
    );
    assert!(one(with_alg("RSA-OAEP"), &[Rs256]).is_none());
    assert!(one(with(rsa.clone(), json!({"alg": 256})), &[Rs256]).is_none());
    assert!(one(with(p256_jwk(Which::A), json!({"alg": "EdDSA"})), &[EdDsa]).is_none());
}

#[test]
fn unusable_keys_are_skipped_not_fatal() {
    let rsa = rsa_jwk(Which::A);
    let skipped = [
        with(rsa.clone(), json!({"use": "enc"})),
        with(rsa.clone(), json!({"use": 1})),
        with(rsa.clone(), json!({"key_ops": ["encrypt"]})),
        with(rsa.clone(), json!({"key_ops": "verify"})),
        with(rsa.clone(), json!({"d": "AQAB"})),
        with(rsa.clone(), json!({"kid": 7})),
        with(p256_jwk(Which::A), json!({"d": "AQAB"})),
        json!({"kty": "oct", "k": "c2VjcmV0"}),
        json!({"kty": "oct", "alg": "HS256"}),
        with(p256_jwk(Which::A), json!({"crv": "P-384"})),
        json!({"kty": "OKP", "crv": "X25519", "x": "OokWR2Y8ZYKlPb_9rOCvKr84kZtsI1MQ1qk_TKa3Rlw"}),
        json!({"kty": "RSA", "e": "AQAB"}),
        json!({"kty": "RSA", "n": "not base64!", "e": "AQAB"}),
        // A 1024-bit modulus: too weak.
        json!({"kty": "RSA", "n": format!("{}w", "_".repeat(170)), "e": "AQAB"}),
        json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}),
        json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}),
        json!({"kty": "XYZ"}),
        json!({"n": "AQAB"}),
        json!("a string"),
    ];
    let mut all = skipped.to_vec();
    all.push(with(rsa, json!({"kid": "good"})));
    let keys = keys_from_jwks(&jwks(&all), &ALL_BUT_NONE).unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0].kid.as_deref(), Some("good"));
    for (i, k) in skipped.iter().enumerate() {
        assert!(one(k.clone(), &ALL_BUT_NONE).is_none(), "key {i} kept");
    }
}

const ALL_BUT_NONE: [Algorithm; 11] = Algorithm::ALL;

#[test]
fn padded_jwk_members_are_tolerated() {
    let n = format!("{}==", test_keys::RSA_A_N);
    // 256 bytes encode to 342 characters plus "==" when padded.
    assert!(one(json!({"kty": "RSA", "n": n, "e": "AQAB"}), &[Rs256]).is_some());
}

#[test]
fn hmac_keys_one_per_allowed_hmac_algorithm() {
    let keys = hmac_keys(&SECRET_64, &[Rs256, Hs512, Hs256, Hs512, Es256]);
    let algs: Vec<Algorithm> = keys.iter().map(|k| k.alg).collect();
    assert_eq!(algs, vec![Hs512, Hs256]);
    assert!(keys.iter().all(|k| k.kid.is_none()));
    assert!(hmac_keys(b"", &[Hs256]).is_empty());
    assert!(hmac_keys(&SECRET_64, &[Rs256, EdDsa]).is_empty());
}

#[test]
fn hmac_secrets_shorter_than_the_hash_are_not_used() {
    let all = [Hs256, Hs384, Hs512];
    let algs = |secret: &[u8]| -> Vec<Algorithm> {
        hmac_keys(secret, &all).iter().map(|k| k.alg).collect()
    };
    assert_eq!(algs(&SECRET_64[..31]), vec![]);
    assert_eq!(algs(&SECRET_64[..32]), vec![Hs256]);
    assert_eq!(algs(&SECRET_64[..48]), vec![Hs256, Hs384]);
    assert_eq!(algs(&SECRET_64), vec![Hs256, Hs384, Hs512]);
    let reasons = hmac_weaknesses(40, &[Hs256, Hs384, Hs384, Hs512]);
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].contains("HS384 secret needs at least 48 bytes"));
    assert!(reasons[1].contains("HS512 secret needs at least 64 bytes"));
    assert!(hmac_weaknesses(64, &[Hs256, Hs384, Hs512]).is_empty());
}

#[test]
fn weak_jwks_keys_are_skipped_and_named() {
    // An odd 1024-bit modulus.
    let small = json!({"kty": "RSA", "kid": "small", "e": "AQAB", "n": "r2WWdhl_HbBtp6wRGgoOwXW4t-8HGS_80fa4VMMneF8af9PbfaRc1KMbKy5c4Ngjpo4oyK3xdHMWvszh_ldoBkA5rSBiJgyNGjTgWG3Om8EwkPzJ-4uLLAjtOujWGymBimaWiafZwdqwU7VX-40_nET6rT4YxV5zmwDTyRJlWAE"});
    let doc = jwks(&[
        small,
        with(rsa_jwk(Which::A), json!({"kid": "three", "e": "Aw"})),
        json!({"kty": "RSA", "n": ROCA_N, "e": "AQAB"}),
        with(rsa_jwk(Which::B), json!({"kid": "good"})),
        with(
            rsa_jwk(Which::B),
            json!({"kid": "not-for-signing", "use": "enc", "e": "Aw"}),
        ),
    ]);
    let read = read_jwks(&doc, &[Rs256]).unwrap();
    let kids: Vec<Option<&str>> = read.keys.iter().map(|k| k.kid.as_deref()).collect();
    assert_eq!(kids, vec![Some("good")]);
    assert_eq!(read.weak.len(), 3, "{:?}", read.weak);
    assert!(
        read.weak[0].starts_with("kid \"small\": RSA modulus of 1024 bits"),
        "{:?}",
        read.weak
    );
    assert!(read.weak[1].contains("exponent 3 is below 65537"));
    assert!(read.weak[2].contains("ROCA"));
    assert_eq!(keys_from_jwks(&doc, &[Rs256]).unwrap().len(), 1);
}

#[test]
fn debug_never_shows_secrets() {
    let keys = hmac_keys(b"super-secret-value-super-secret-value", &[Hs256]);
    let shown = format!("{keys:?}");
    assert!(!shown.contains("super-secret"), "{shown}");
    assert!(shown.contains("HS256"));
}

#[test]
fn signatures_of_the_wrong_length_are_refused_without_panicking() {
    let mut keys = hmac_keys(&SECRET_64, &[Hs256, Hs384, Hs512]);
    keys.extend(keys_from_values(
        &[p256_jwk(Which::A), ed25519_jwk(), rsa_jwk(Which::A)],
        &[Es256, EdDsa, Rs256],
    ));
    assert_eq!(keys.len(), 6);
    for key in &keys {
        for len in [0usize, 1, 31, 32, 47, 48, 63, 64, 65, 255, 256, 257] {
            assert!(
                !key.verify_signature(b"a.b", &vec![0u8; len]),
                "{key:?} {len}"
            );
        }
    }
}

#[test]
fn keys_verify_only_their_own_algorithm() {
    let keys = keys_from_values(
        &[with(rsa_jwk(Which::A), json!({"alg": "RS256"}))],
        &[Rs256, Ps256],
    );
    let msg = b"header.payload";
    let rs = test_keys::sign(Rs256, Signer::Rsa(Which::A), msg);
    let ps = test_keys::sign(Ps256, Signer::Rsa(Which::A), msg);
    assert!(keys[0].verify_signature(msg, &rs));
    assert!(!keys[0].verify_signature(msg, &ps));
}

#[test]
fn check_public_jwk_is_unchanged() {
    assert!(check_public_jwk(&rsa_jwk(Which::A)).is_ok());
    assert!(check_public_jwk(&json!({"kty": "oct", "k": "x"})).is_err());
    assert!(check_public_jwk(&json!({"kty": "RSA", "d": "x"})).is_err());
    assert!(check_public_jwk(&json!({"kty": "XYZ"})).is_err());
    assert!(check_public_jwk(&json!([])).is_err());
}
