//! CIDR parsing and matching (v4, v6, mapped, edge prefixes), origin patterns and matching
//! (suffix tricks, schemes, ports), and the IP-rules decision.

use super::cidr::{client_address, CidrError, IpNet};
use super::ip_rules::{check, ClientNetwork, IpRuleSet, Refusal};
use super::origin::OriginPattern;
use std::net::IpAddr;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn net(text: &str) -> IpNet {
    IpNet::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn networks_parse_and_match_v4_and_v6() {
    let n = net("203.0.113.0/24");
    assert!(n.contains(ip("203.0.113.0")));
    assert!(n.contains(ip("203.0.113.255")));
    assert!(!n.contains(ip("203.0.114.0")));
    assert!(!n.contains(ip("203.0.112.255")));
    let v6 = net("2001:db8:1::/48");
    assert!(v6.contains(ip("2001:db8:1:ffff::1")));
    assert!(!v6.contains(ip("2001:db8:2::1")));
    // Families never match each other.
    assert!(!n.contains(ip("2001:db8:1::1")));
    assert!(!v6.contains(ip("203.0.113.1")));
    // A bare address is a network of one.
    assert!(net("198.51.100.7").contains(ip("198.51.100.7")));
    assert!(!net("198.51.100.7").contains(ip("198.51.100.8")));
    assert!(net("2001:db8::1").contains(ip("2001:db8::1")));
    assert!(!net("2001:db8::1").contains(ip("2001:db8::2")));
}

#[test]
fn edge_prefixes() {
    assert!(net("0.0.0.0/0").contains(ip("255.255.255.255")));
    assert!(net("0.0.0.0/0").contains(ip("0.0.0.0")));
    assert!(!net("0.0.0.0/0").contains(ip("::1")));
    assert!(net("::/0").contains(ip("ffff::1")));
    assert!(net("10.1.2.3/32").contains(ip("10.1.2.3")));
    assert!(!net("10.1.2.3/32").contains(ip("10.1.2.2")));
    assert!(net("2001:db8::1/128").contains(ip("2001:db8::1")));
    assert!(net("128.0.0.0/1").contains(ip("200.0.0.1")));
    assert!(!net("128.0.0.0/1").contains(ip("127.255.255.255")));
    assert!(net("8000::/1").contains(ip("ffff::")));
    assert!(!net("8000::/1").contains(ip("7fff::")));
}

#[test]
fn host_bits_are_refused_with_the_corrected_network() {
    for (text, corrected) in [
        ("10.0.0.1/8", "10.0.0.0/8"),
        ("203.0.113.77/24", "203.0.113.0/24"),
        ("192.168.1.1/0", "0.0.0.0/0"),
        ("2001:db8::1/32", "2001:db8::/32"),
        ("2001:db8:1:2::/48", "2001:db8:1::/48"),
    ] {
        assert_eq!(
            IpNet::parse(text),
            Err(CidrError::HostBits {
                corrected: corrected.to_owned()
            }),
            "{text}"
        );
    }
    let message = IpNet::parse("10.0.0.1/8").unwrap_err().to_string();
    assert!(message.contains("did you mean \"10.0.0.0/8\""), "{message}");
}

#[test]
fn malformed_networks_are_refused() {
    for text in [
        "",
        "10.0.0",
        "10.0.0.0.0",
        "256.0.0.0",
        "010.0.0.1",
        "10.0.0.0/",
        "example.com",
        "2001:db8::/",
        "2001:db8::g",
        "fe80::1%eth0",
        " 10.0.0.0",
        "10.0.0.0 ",
    ] {
        assert!(IpNet::parse(text).is_err(), "{text:?} should be refused");
    }
    for text in [
        "10.0.0.0/33",
        "10.0.0.0/-1",
        "10.0.0.0/+8",
        "10.0.0.0/08",
        "::/129",
        "::/1000",
    ] {
        assert!(
            matches!(IpNet::parse(text), Err(CidrError::BadPrefix { .. })),
            "{text:?}"
        );
    }
}

#[test]
fn ipv4_mapped_ipv6_is_ipv4_for_rules_and_clients() {
    let v4 = net("203.0.113.0/24");
    assert!(v4.contains(ip("::ffff:203.0.113.9")));
    assert!(!v4.contains(ip("::ffff:203.0.114.9")));
    // A mapped rule is the IPv4 rule it maps.
    let mapped = net("::ffff:203.0.113.0/120");
    assert_eq!(mapped, v4);
    assert!(mapped.contains(ip("203.0.113.200")));
    assert_eq!(net("::ffff:10.0.0.1"), net("10.0.0.1"));
    // The client address is normalised the same way.
    assert_eq!(
        client_address("::ffff:198.51.100.1"),
        Some(ip("198.51.100.1"))
    );
    assert_eq!(client_address("2001:db8::1"), Some(ip("2001:db8::1")));
    assert_eq!(client_address("not an address"), None);
    assert_eq!(client_address(""), None);
    // IPv4-compatible (deprecated) and NAT64 addresses are not IPv4.
    assert!(!v4.contains(ip("::203.0.113.9")));
    assert!(!v4.contains(ip("64:ff9b::203.0.113.9")));
}

fn set(name: &str) -> IpRuleSet {
    IpRuleSet {
        name: name.into(),
        ..IpRuleSet::default()
    }
}

fn from(
    ip_text: Option<&str>,
    country: Option<&'static str>,
    asn: Option<u32>,
) -> ClientNetwork<'static> {
    ClientNetwork {
        ip: ip_text.and_then(client_address),
        country,
        asn,
    }
}

#[test]
fn deny_wins_and_allow_lists_mean_only_these() {
    let office = IpRuleSet {
        allow: vec![net("203.0.113.0/24"), net("2001:db8:1::/48")],
        ..set("office")
    };
    let abusive = IpRuleSet {
        deny: vec![net("203.0.113.66")],
        deny_countries: vec!["T1".into()],
        deny_asns: vec![64496],
        ..set("abusive")
    };
    let both = [office.clone(), abusive.clone()];
    assert_eq!(
        check(&both, &from(Some("203.0.113.9"), Some("DE"), Some(1))),
        Ok(())
    );
    assert_eq!(
        check(&both, &from(Some("2001:db8:1::5"), None, None)),
        Ok(())
    );
    assert_eq!(
        check(&both, &from(Some("::ffff:203.0.113.9"), None, None)),
        Ok(())
    );
    // Inside the allow list, but denied: deny wins.
    assert_eq!(
        check(&both, &from(Some("203.0.113.66"), None, None)),
        Err(Refusal::Denied {
            set: "abusive".into()
        })
    );
    assert_eq!(
        check(&both, &from(Some("203.0.113.9"), Some("T1"), None)),
        Err(Refusal::Denied {
            set: "abusive".into()
        })
    );
    assert_eq!(
        check(&both, &from(Some("203.0.113.9"), None, Some(64496))),
        Err(Refusal::Denied {
            set: "abusive".into()
        })
    );
    // Outside every allow list.
    assert_eq!(
        check(&both, &from(Some("198.51.100.1"), None, None)),
        Err(Refusal::NotAllowed)
    );
    // No usable address fails closed when an allow list exists ...
    assert_eq!(
        check(&both, &from(None, Some("DE"), None)),
        Err(Refusal::NoAddress)
    );
    assert_eq!(
        check(&both, &from(Some("garbage"), None, None)),
        Err(Refusal::NoAddress)
    );
    // ... and deny-only rules let it through (nothing of it is denied).
    assert_eq!(check([&abusive], &from(None, Some("DE"), None)), Ok(()));
    assert_eq!(
        check([&abusive], &from(Some("198.51.100.1"), None, None)),
        Ok(())
    );
}

#[test]
fn country_and_asn_allow_lists() {
    let eu = IpRuleSet {
        allow_countries: vec!["DE".into(), "FR".into()],
        ..set("eu")
    };
    let partner = IpRuleSet {
        allow_asns: vec![64500],
        ..set("partner")
    };
    let sets = [eu, partner];
    assert_eq!(
        check(&sets, &from(Some("198.51.100.1"), Some("FR"), None)),
        Ok(())
    );
    assert_eq!(
        check(&sets, &from(Some("198.51.100.1"), Some("US"), Some(64500))),
        Ok(())
    );
    assert_eq!(
        check(&sets, &from(Some("198.51.100.1"), Some("US"), Some(64501))),
        Err(Refusal::NotAllowed)
    );
    // Without Cloudflare's facts nothing of an allow list can match.
    assert_eq!(
        check(&sets, &from(Some("198.51.100.1"), None, None)),
        Err(Refusal::NotAllowed)
    );
}

fn pattern(text: &str) -> OriginPattern {
    OriginPattern::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn exact_origins_match_byte_for_byte() {
    let p = pattern("https://app.example.com");
    assert!(p.matches("https://app.example.com"));
    for other in [
        "http://app.example.com",
        "https://app.example.com:8443",
        "https://app.example.com/",
        "https://APP.example.com",
        "https://app.example.com.evil.com",
        "https://evil-app.example.com",
        "null",
        "",
    ] {
        assert!(!p.matches(other), "{other:?}");
    }
    assert!(pattern("http://localhost:3000").matches("http://localhost:3000"));
    assert!(!pattern("http://localhost:3000").matches("http://localhost:3001"));
    assert!(pattern("http://[::1]:8080").matches("http://[::1]:8080"));
    assert!(pattern("http://127.0.0.1:8080").matches("http://127.0.0.1:8080"));
}

#[test]
fn wildcard_origins_match_at_a_label_boundary_only() {
    let p = pattern("https://*.example.com");
    assert!(p.matches("https://app.example.com"));
    assert!(p.matches("https://a.b.example.com"));
    for other in [
        "https://example.com",
        "https://evil-example.com",
        "https://example.com.evil.com",
        "https://app.example.com.evil.com",
        "https://appexample.com",
        "http://app.example.com",
        "https://app.example.com:8443",
        "https://.example.com",
        "https://a..example.com",
        "https://APP.example.com",
        "https://app.example.com/",
        "https://app.example.com/x",
        "https://user@app.example.com",
        "null",
    ] {
        assert!(!p.matches(other), "{other:?}");
    }
    // A domain of one's own under a public suffix is fine, and so is one that only looks like one.
    for owned in [
        "https://*.example.co.uk",
        "https://*.team.github.io",
        "https://*.co.example.com",
        "https://*.example.io",
        "https://*.go.dev",
    ] {
        assert!(OriginPattern::parse(owned).is_ok(), "{owned}");
    }
    let ported = pattern("https://*.example.com:8443");
    assert!(ported.matches("https://app.example.com:8443"));
    assert!(!ported.matches("https://app.example.com"));
    assert!(!ported.matches("https://app.example.com:08443"));
}

#[test]
fn malformed_origin_patterns_are_refused_with_the_fix() {
    for (text, fragment) in [
        (
            "https://App.example.com",
            "write \"https://app.example.com\"",
        ),
        (
            "https://app.example.com/",
            "write \"https://app.example.com\"",
        ),
        (
            "https://app.example.com:443",
            "write \"https://app.example.com\"",
        ),
        (
            "http://app.example.com:80",
            "write \"http://app.example.com\"",
        ),
        ("https://app.example.com/path", "scheme://host[:port]"),
        ("app.example.com", "scheme://host[:port]"),
        ("https://user@app.example.com", "scheme://host[:port]"),
        ("https://app.example.com?x", "scheme://host[:port]"),
        ("ftp://app.example.com", "not http or https"),
        ("https://*.com", "at least two labels"),
        ("https://*.0.0.1", "not part of an IP address"),
        ("https://*.co.uk", "anyone can have a name under \"co.uk\""),
        (
            "https://*.com.au",
            "write the domain you own (\"*.example.com.au\")",
        ),
        ("https://*.github.io", "anyone can have a name"),
        ("https://*.workers.dev", "anyone can have a name"),
        ("http://*.ne.jp:8080", "anyone can have a name"),
        ("http://*.168.1.1:8080", "not part of an IP address"),
        ("https://*", "first label"),
        ("https://app.*.example.com", "first label"),
        ("https://*example.com", "first label"),
        ("https://app.example.com:99999", "1 to 65535"),
        ("https://app.example.com:0", "1 to 65535"),
        ("https://-app.example.com", "not a valid host"),
        ("https://app..example.com", "not a valid host"),
        ("https://bücher.example", "punycode"),
    ] {
        match OriginPattern::parse(text) {
            Ok(p) => panic!("{text:?} was accepted as {p:?}"),
            Err(e) => assert!(e.contains(fragment), "{text:?}: {e}"),
        }
    }
}
