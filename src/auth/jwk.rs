//! JSON Web Keys (RFC 7517) as configuration and JWKS documents carry them.

use serde_json::Value;

/// Members that only private keys have: a private key in configuration is a leaked secret.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Checks that an inline key is a public key of a supported type.
pub fn check_public_jwk(key: &Value) -> Result<(), String> {
    let Value::Object(members) = key else {
        return Err("a JWK must be an object".into());
    };
    if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| members.contains_key(**m)) {
        return Err(format!(
            "JWK holds private member \"{m}\": only public keys belong in configuration (HMAC keys go in a Worker secret named by \"secret\")"
        ));
    }
    match members.get("kty").and_then(Value::as_str) {
        Some("RSA" | "EC" | "OKP") => Ok(()),
        Some(other) => Err(format!(
            "unsupported JWK kty \"{other}\" (expected RSA, EC or OKP)"
        )),
        None => Err("JWK needs \"kty\"".into()),
    }
}
