//! TEST ONLY key material and token minting for the auth unit tests.
//!
//! These keys were generated once for the test suite and are public: never use them anywhere
//! else. Tokens are signed with `jwt-compact` itself; headers and claims are written as raw JSON
//! so tests can craft hostile headers (`crit`, duplicate members, `alg: none`, …).

use jwt_compact::alg::{Ed25519, Es256, Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key};
use jwt_compact::alg::{Rsa, RsaPrivateKey, SigningKey as _};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{Algorithm as JwtAlgorithm, AlgorithmSignature};
use serde_json::{json, Value};
use std::sync::OnceLock;

use super::b64;
use crate::config::{Algorithm, JwtScheme};

/// TEST ONLY RSA-2048 key "A".
pub const RSA_A_N: &str = "scHye1jXU_-MJSh_bpIhnKe5pfV-mC7iaBtZ_scFTa_MJLqzrXtm_E2km1GgIA3qRkX1aNPjPH0Aw2JtQPra1po6FIhQGJOSEz2QZlqSBzWNRU38ibOSk1JSGaPLsbI0cEkyukVUS5jNWrDDFqPhKpUOYclSXYO00hjNDdphqajfEXAKO1_Pxapr_LFew5ZE9ztV3nT3cJ2FB4r3kLUUbSa5czPwsoUBf-WPX5L53tf0n5jcC_ypnmlUbSUPykXuW2dVi22-tQqc7vpENRI8YYZMsW1khrQX7QEuMrAccT7qKpemQf2TMrRXYiieVSI30kUcIW3LdLjtE-LPbjR6tw";
const RSA_A_D: &str = "FCa1-_i61GlsdEvuglTrnYxAFgnKE6uA_CdZoPHj7oYm4OUPeHO8XY7ZwcfTnL6nF9dXdk5K_PD41K2EUDD__QMX4XsAhYC5NxgsFgZfdpTCEqDAJ8YlMDFNYF26ukbG_hG2P_qbD0Tfxs-yFg9297JVIo3FmhdTuNuZ51-h4a8z5ADr0mC9EcGKxvouwi6BHAN67VtKWHPYAZJ-NfpP8mKVJB0Unfj89Hmjzw_VSxu08EiBkXeTxWeK9TDDAOBLbGfhxq_DPNzj3mWRtkJ0UOd1RmK9yTHR3izkTyQ0XvXVh4_Qcxw55OwqciZ2ZLzWriXaCPrzb-6IRYYtrv331Q";
const RSA_A_P: &str = "9LK49KxFBn-wDo2K3JN0kYl7DAO-ZaQMrGZVbaEQ-WTaPQXZfRNNCDIg3FcRHJiPTD3k107bW5Ja5peYOUpgM1bmqFCbEYLcxQjFdbmvY_mAFglSfaOw8cNBegc9W7mayGWh6XTXyzX92XjOL4dsJT9vX-XPQUzXMHfwu67BrH0";
const RSA_A_Q: &str = "ufe6n0HMOb3v3yFqkhg-ZMv0QIWl4qCb7PZexjy9AOgzauG1L9NU4s3yLFDT_4bs8r2eqP9RQtlgTd33pgxIeYHqm_J2IIUhZXT2-CWMI8TpWXJVgfsg89I8WnWMTWrzEuMvLWSZKTzRhy_Ws4nxbY7wrK5lla-O5QIhWGXjjkM";

/// TEST ONLY: key "A" as a PEM SubjectPublicKeyInfo, as an attacker would download it.
pub const RSA_A_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAscHye1jXU/+MJSh/bpIh
nKe5pfV+mC7iaBtZ/scFTa/MJLqzrXtm/E2km1GgIA3qRkX1aNPjPH0Aw2JtQPra
1po6FIhQGJOSEz2QZlqSBzWNRU38ibOSk1JSGaPLsbI0cEkyukVUS5jNWrDDFqPh
KpUOYclSXYO00hjNDdphqajfEXAKO1/Pxapr/LFew5ZE9ztV3nT3cJ2FB4r3kLUU
bSa5czPwsoUBf+WPX5L53tf0n5jcC/ypnmlUbSUPykXuW2dVi22+tQqc7vpENRI8
YYZMsW1khrQX7QEuMrAccT7qKpemQf2TMrRXYiieVSI30kUcIW3LdLjtE+LPbjR6
twIDAQAB
-----END PUBLIC KEY-----
";

/// TEST ONLY: key "A" as standard base64 of its DER SubjectPublicKeyInfo.
pub const RSA_A_DER_B64: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAscHye1jXU/+MJSh/bpIhnKe5pfV+mC7iaBtZ/scFTa/MJLqzrXtm/E2km1GgIA3qRkX1aNPjPH0Aw2JtQPra1po6FIhQGJOSEz2QZlqSBzWNRU38ibOSk1JSGaPLsbI0cEkyukVUS5jNWrDDFqPhKpUOYclSXYO00hjNDdphqajfEXAKO1/Pxapr/LFew5ZE9ztV3nT3cJ2FB4r3kLUUbSa5czPwsoUBf+WPX5L53tf0n5jcC/ypnmlUbSUPykXuW2dVi22+tQqc7vpENRI8YYZMsW1khrQX7QEuMrAccT7qKpemQf2TMrRXYiieVSI30kUcIW3LdLjtE+LPbjR6twIDAQAB";

/// TEST ONLY RSA-2048 key "B".
const RSA_B_N: &str = "y47c7w06AWVTYkwwt6Ob_VlyIrRvKusEn3k7eVvQY7Z3qe28b7BbgzqxV2TSfqhzViNik_YFqeBIFp8qeqUddhDcy4wNYO3wFBN1F5RI2HTHBLvk6OJ6iiAUPIgitzKrbZ84jA0Kn7DISmlEpamE6im3LqvCSmEVlLlDvqFyAvcIUfdrdQoWwEBGFR_MvrDfFx-K8c3azZ04O28eY-aKL3WtauBYGpQ7vPxRJmx79cVDpcESUufsAR1yee1rx5pl6mKii21PrPcj_IKt0TkZn0JQuUZThgiMIgtIUkT6s-POXKWM7jzMncIKfH3-qFlPKe052_ffvnu8ZGheRNGEew";
const RSA_B_D: &str = "HQMa9hn6fyHD7_9P9OclX8c_KeHG87pUtFiruLD0qIw5zfG2U8IyU30qstFfNvInTiBI99xZaPbbD25WuELkSg7pM-by2TJ7GewUBOz7h5j37J14aMDZb5UBjVxnJkPbLwqXHU7r3rVsNpQpATuCAtCN7Tb0asl02_eeci3BztjJUGwsrtxCHsBeHYy8q_96_HJ4JEBIDbH_Ilq_Uuxt6S6KSnkAWce6dGxorAB8_R2SJFvMls_-5y4yJy6Pl_o15Ng0Wvh5ePtAbS1-IPsuv4EmlgFjZ4Sm-rh_ZHpRGx7XF4Zny3mpF1aHchBHkwcyFxdgy4D8X2mV90apO_xzUQ";
const RSA_B_P: &str = "-JzCLhbE67bL_fzolrL_NT4WnC9UlKivTKfW0AcJL5Y6VkNZO7opFT8W9SLCEWWAnN8nuUSJPyThIK-So7_0_OBHFXOVYas_Z8wIqy8UzHrzKbFLVtZFLCGboEwS4HRy9k6kLF0CgaQAyFn0PfdNHMBGtmdhLtFcwEDCOgfBG7c";
const RSA_B_Q: &str = "0ZteNdk_RrC7wPGREEbjlyPQ84uX3sP67MqFmuRoil7cWAWeBNJbSM0dei_10DMfrBzqHitHANuoSPIl-WJjFrwRZVt2F7wxkQVJCzU6EefQxFo4cybIAJZr-w8evw14WQECjAUVQnO6BQma8A05S-lhvkPYvtaOmnk3AEyfJV0";

/// TEST ONLY Ed25519 key: seed, then public key.
const ED_SEED: [u8; 32] = [
    214, 237, 234, 34, 106, 107, 12, 36, 97, 72, 244, 177, 209, 170, 9, 156, 48, 17, 42, 77, 182,
    162, 161, 34, 31, 132, 18, 87, 149, 53, 108, 51,
];
const ED_PK: [u8; 32] = [
    58, 137, 22, 71, 102, 60, 101, 130, 165, 61, 191, 253, 172, 224, 175, 42, 191, 56, 145, 155,
    108, 35, 83, 16, 214, 169, 63, 76, 166, 183, 70, 92,
];
const ED_X: &str = "OokWR2Y8ZYKlPb_9rOCvKr84kZtsI1MQ1qk_TKa3Rlw";

/// TEST ONLY P-256 private scalars.
const P256_A: [u8; 32] = [7; 32];
const P256_B: [u8; 32] = [9; 32];

/// TEST ONLY HMAC secret.
pub const HMAC_SECRET: &[u8] = b"test-only-hmac-secret-0123456789abcdef-long-enough-for-hs512-ok!";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Which {
    A,
    B,
}

fn rsa_private(which: Which) -> &'static RsaPrivateKey {
    static A: OnceLock<RsaPrivateKey> = OnceLock::new();
    static B: OnceLock<RsaPrivateKey> = OnceLock::new();
    let (cell, n, d, p, q) = match which {
        Which::A => (&A, RSA_A_N, RSA_A_D, RSA_A_P, RSA_A_Q),
        Which::B => (&B, RSA_B_N, RSA_B_D, RSA_B_P, RSA_B_Q),
    };
    cell.get_or_init(|| {
        let jwk: JsonWebKey<'_> = serde_json::from_value(
            json!({"kty": "RSA", "n": n, "e": "AQAB", "d": d, "p": p, "q": q}),
        )
        .unwrap();
        RsaPrivateKey::try_from(&jwk).unwrap()
    })
}

type P256Signing = <Es256 as JwtAlgorithm>::SigningKey;
type EdSigning = <Ed25519 as JwtAlgorithm>::SigningKey;

fn p256_private(which: Which) -> P256Signing {
    let raw = match which {
        Which::A => P256_A,
        Which::B => P256_B,
    };
    <P256Signing as jwt_compact::alg::SigningKey<Es256>>::from_slice(&raw).unwrap()
}

/// Public RSA JWK (no `alg`, no `kid`).
pub fn rsa_jwk(which: Which) -> Value {
    let n = match which {
        Which::A => RSA_A_N,
        Which::B => RSA_B_N,
    };
    json!({"kty": "RSA", "n": n, "e": "AQAB"})
}

/// Public P-256 JWK (no `alg`, no `kid`).
pub fn p256_jwk(which: Which) -> Value {
    let vk = p256_private(which).to_verifying_key();
    serde_json::to_value(JsonWebKey::from(&vk)).unwrap()
}

/// Public Ed25519 JWK (no `alg`, no `kid`).
pub fn ed25519_jwk() -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "x": ED_X})
}

/// A JWK with extra members merged in.
pub fn with(mut jwk: Value, extra: Value) -> Value {
    if let (Some(o), Some(e)) = (jwk.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    jwk
}

/// What signs a test token.
#[derive(Clone, Copy, Debug)]
pub enum Signer<'a> {
    Rsa(Which),
    P256(Which),
    Ed25519,
    Hmac(&'a [u8]),
}

/// Signs `message` with `alg` using jwt-compact.
pub fn sign(alg: Algorithm, signer: Signer<'_>, message: &[u8]) -> Vec<u8> {
    match (alg, signer) {
        (Algorithm::Hs256, Signer::Hmac(s)) => {
            Hs256.sign(&Hs256Key::new(s), message).as_bytes().to_vec()
        }
        (Algorithm::Hs384, Signer::Hmac(s)) => {
            Hs384.sign(&Hs384Key::new(s), message).as_bytes().to_vec()
        }
        (Algorithm::Hs512, Signer::Hmac(s)) => {
            Hs512.sign(&Hs512Key::new(s), message).as_bytes().to_vec()
        }
        (Algorithm::Es256, Signer::P256(w)) => {
            Es256.sign(&p256_private(w), message).as_bytes().to_vec()
        }
        (Algorithm::EdDsa, Signer::Ed25519) => {
            let mut raw = [0u8; 64];
            raw[..32].copy_from_slice(&ED_SEED);
            raw[32..].copy_from_slice(&ED_PK);
            let sk =
                <EdSigning as jwt_compact::alg::SigningKey<Ed25519>>::from_slice(&raw).unwrap();
            Ed25519.sign(&sk, message).as_bytes().to_vec()
        }
        (alg, Signer::Rsa(w)) => {
            let rsa: Rsa = alg.name().parse().unwrap();
            rsa.sign(rsa_private(w), message).as_bytes().to_vec()
        }
        (alg, signer) => panic!("cannot sign {alg:?} with {signer:?}"),
    }
}

/// A compact JWS over raw header and claims JSON, signed with `alg`.
pub fn mint_raw(alg: Algorithm, signer: Signer<'_>, header: &str, claims: &str) -> String {
    let input = format!(
        "{}.{}",
        b64::encode(header.as_bytes()),
        b64::encode(claims.as_bytes())
    );
    let sig = sign(alg, signer, input.as_bytes());
    format!("{input}.{}", b64::encode(&sig))
}

/// A token with `alg` (and `kid` if given) in the header and `claims`.
pub fn mint(alg: Algorithm, signer: Signer<'_>, kid: Option<&str>, claims: &Value) -> String {
    let mut header = json!({"alg": alg.name(), "typ": "JWT"});
    if let Some(kid) = kid {
        header["kid"] = json!(kid);
    }
    mint_raw(alg, signer, &header.to_string(), &claims.to_string())
}

pub const NOW: i64 = 1_700_000_000;
pub const ISS: &str = "https://id.example.com/";
pub const AUD: &str = "orders-api";

/// Claims that pass [`scheme`] at [`NOW`].
pub fn good_claims() -> Value {
    json!({
        "iss": ISS,
        "aud": AUD,
        "sub": "user-1",
        "iat": NOW - 10,
        "exp": NOW + 300,
    })
}

/// A scheme accepting `algorithms`, issuer [`ISS`], audience [`AUD`], leeway 60 s.
pub fn scheme(algorithms: &[Algorithm]) -> JwtScheme {
    JwtScheme {
        issuer: ISS.into(),
        audiences: vec![AUD.into()],
        jwks_url: None,
        keys: Vec::new(),
        secret: None,
        algorithms: algorithms.to_vec(),
        leeway_s: 60,
        forward_claims: Vec::new(),
        max_lifetime_s: None,
        typ: None,
        require_exp: true,
        token_cookie: None,
        token_query: None,
        verified_cache_s: 0,
    }
}
