use crate::config::ClientIpMode::{self, *};
use crate::observe::client_ip::client_ip;

fn ip(raw: &str, mode: ClientIpMode) -> Option<String> {
    client_ip(Some(raw), mode)
}

#[test]
fn truncate_keeps_the_ipv4_24_and_the_ipv6_48() {
    assert_eq!(ip("203.0.113.77", Truncate).as_deref(), Some("203.0.113.0"));
    assert_eq!(ip("10.1.2.255", Truncate).as_deref(), Some("10.1.2.0"));
    assert_eq!(
        ip("2001:db8:1234:5678:9abc:def0:1:2", Truncate).as_deref(),
        Some("2001:db8:1234::")
    );
    assert_eq!(
        ip("2001:DB8:1::1", Truncate).as_deref(),
        Some("2001:db8:1::")
    );
    assert_eq!(ip("::1", Truncate).as_deref(), Some("::"));
}

#[test]
fn an_ipv4_mapped_address_is_truncated_as_the_ipv4_it_is() {
    assert_eq!(
        ip("::ffff:203.0.113.77", Truncate).as_deref(),
        Some("203.0.113.0")
    );
    assert_eq!(
        ip("::ffff:cb00:714d", Truncate).as_deref(),
        Some("203.0.113.0")
    );
}

#[test]
fn a_6to4_address_keeps_only_the_24_of_the_ipv4_it_embeds() {
    // 2002:cb00:714d::/48 is 203.0.113.77 itself; its /40 is 203.0.113.0/24.
    assert_eq!(
        ip("2002:cb00:714d:1234::1", Truncate).as_deref(),
        Some("2002:cb00:7100::")
    );
    assert_eq!(
        ip("2002:cb00:71ff::", Truncate).as_deref(),
        Some("2002:cb00:7100::")
    );
}

#[test]
fn full_keeps_the_address_and_omit_drops_it() {
    assert_eq!(ip("203.0.113.77", Full).as_deref(), Some("203.0.113.77"));
    assert_eq!(ip("2001:DB8::1", Full).as_deref(), Some("2001:db8::1"));
    assert_eq!(ip("203.0.113.77", Omit), None);
    assert_eq!(ip("2001:db8::1", Omit), None);
}

#[test]
fn anything_but_an_ip_address_is_never_logged_as_one() {
    for raw in [
        "",
        "unknown",
        "1.2.3.4, 5.6.7.8",
        "1.2.3.4\r\nx: y",
        "1.2.3",
        "[::1]",
    ] {
        assert_eq!(ip(raw, Full), None, "{raw:?}");
        assert_eq!(ip(raw, Truncate), None, "{raw:?}");
    }
    assert_eq!(client_ip(None, Full), None);
}
