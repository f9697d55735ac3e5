use super::*;
use crate::auth::test_keys::{rsa_jwk, Which};
use Algorithm::*;

/// A published ROCA-vulnerable 2048-bit modulus (the `roca-detect` project's positive sample
/// `mod03.txt`).
const ROCA_MODULUS: &str = "9dcd7420e420c270a68060eb8b5aa7457a9f6648f86fafed2775cc1f79ae962f1e63f1b9e51c55f9ea6fdc7332e9b0058c9ff2eb1fc89855029cf6aafe21e689feb38ac9ffb12f1ce371bb5d0e9aae64161abce74b4244bf68f1edb4411f756a097c8929c14740245ea355f8332d1aa36bb50c7dcb4505da8de02e4e53d38f8df06097da7524df0df93db48eac8cc4af2d3a16257eb2b2adca6ba464e5974fa92550d31b1babf161e7692d00b86e3dd886ecab4abfbe1a8f8cc263ff4af55cdb45f4249a5193925f5e983d762f0b6800943eb0267b08f42ed311ce1f5c86eacbc8ce4d3cb7a2fee1ef5641423a1cf4114e5ecf50034a60a412523af9e6f4aa11";

/// The same project's negative sample `mod04.txt`: a normal 2048-bit modulus.
const NORMAL_MODULUS: &str = "af659676197f1db06da7ac111a0a0ec175b8b7ef07192ffcd1f6b854c327785f1a7fd3db7da45cd4a31b2b2e5ce0d823a68e28c8adf1747316becce1fe5768064039ad2062260c8d1a34e0586dce9bc13090fcc9fb8b8b2c08ed3ae8d61b29818a669689a7d9c1dab053b557fb8d3f9c44faad3e18c55e739b00d3c9126558bc8e980cd2af377126ef5b1374136774b8bd370e3c1c149db395c8f99696b628b105946fea20106fe24d103ac062661a9248e8c3f628e00b308d33953aabe555132e218e74ef4b578716b4fe7cf340e8e604a319bf6e9951e1942601d34291032db54999d09e5d036dde3544ad35256bbb97d5e3fffd38166c21eae9199548853b";

/// A modulus built to pass the older per-prime test while not being a power of 65537 modulo
/// the primorial (from the same project's `test_fake_mods`): only the full test rejects it.
const FAKE_MODULUS_DEC: &str = "72414128973967872688332736535017614208620368242015797102796086827882754006260204061799547004983731426777596445658889886861027045033760014948048067467947960318205453778973975867532910489227970143091184725760290172935872752222320334100097730483600892686353719855397381316384244147860260153198611313067061116317";

const F4: [u8; 3] = [1, 0, 1];

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn decimal(s: &str) -> Vec<u8> {
    let mut out: Vec<u8> = vec![0];
    for digit in s.bytes().map(|d| u32::from(d - b'0')) {
        let mut carry = digit;
        for byte in out.iter_mut().rev() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            out.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    out
}

fn test_key_modulus() -> Vec<u8> {
    let n = rsa_jwk(Which::A)["n"].as_str().unwrap().to_owned();
    crate::auth::b64::decode_lenient_padding(&n).unwrap()
}

#[test]
fn the_published_roca_modulus_is_detected() {
    let n = hex(ROCA_MODULUS);
    assert_eq!(bit_len(&n), 2048);
    assert!(has_roca_fingerprint(&n));
    let reason = rsa_weakness(&n, &F4).unwrap();
    assert!(reason.contains("ROCA"), "{reason}");
}

#[test]
fn normal_moduli_pass() {
    assert!(!has_roca_fingerprint(&hex(NORMAL_MODULUS)));
    assert_eq!(rsa_weakness(&hex(NORMAL_MODULUS), &F4), None);
    assert_eq!(rsa_weakness(&test_key_modulus(), &F4), None);
    assert_eq!(rsa_weakness(&test_key_modulus(), &[0, 1, 0, 1]), None);
}

#[test]
fn a_modulus_that_fools_the_per_prime_test_is_not_flagged() {
    let n = decimal(FAKE_MODULUS_DEC);
    let per_prime = ROCA_PRIMES
        .iter()
        .all(|&p| discrete_log(ROCA_GENERATOR % p, mod_small(&n, p), p).is_some());
    assert!(per_prime, "the sample must pass the per-prime test");
    assert!(!has_roca_fingerprint(&n));
}

#[test]
fn short_moduli_and_bad_exponents_are_refused() {
    let n = test_key_modulus();
    let short = &n[n.len() - 128..]; // 1024 bits
    assert!(rsa_weakness(short, &F4).unwrap().contains("1024 bits"));
    assert!(rsa_weakness(&n, &[3])
        .unwrap()
        .contains("exponent 3 is below 65537"));
    assert!(rsa_weakness(&n, &[1, 0, 0]).unwrap().contains("even"));
    assert!(rsa_weakness(&n, &[]).unwrap().contains("even"));
    assert!(rsa_weakness(&n, &[0, 0]).unwrap().contains("even"));
    // A large odd exponent is allowed.
    assert_eq!(rsa_weakness(&n, &[1, 0, 0, 0, 0, 0, 0, 0, 0, 1]), None);
}

#[test]
fn hmac_secrets_must_be_as_long_as_the_hash() {
    assert_eq!(hmac_secret_weakness(Hs256, 32), None);
    assert!(hmac_secret_weakness(Hs256, 31)
        .unwrap()
        .contains("at least 32 bytes"));
    assert!(hmac_secret_weakness(Hs384, 47).is_some());
    assert_eq!(hmac_secret_weakness(Hs384, 48), None);
    assert!(hmac_secret_weakness(Hs512, 63).is_some());
    assert_eq!(hmac_secret_weakness(Hs512, 64), None);
    assert_eq!(hmac_secret_weakness(Rs256, 1), None);
}

#[test]
fn bit_lengths() {
    assert_eq!(bit_len(&[]), 0);
    assert_eq!(bit_len(&[0, 0]), 0);
    assert_eq!(bit_len(&[0, 1]), 1);
    assert_eq!(bit_len(&[0x80, 0]), 16);
}
