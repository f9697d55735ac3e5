//! The client address as the access log keeps it (`access_log.client_ip`).

use crate::config::ClientIpMode;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The address to log for `raw` (what Cloudflare reports in `CF-Connecting-IP`), or `None`
/// when it is omitted or is not an IP address (nothing else is ever logged as one).
///
/// `truncate` keeps the network: IPv4 to its /24, IPv6 to its /48. An IPv4-mapped IPv6
/// address (`::ffff:203.0.113.7`) is an IPv4 client and is truncated and written as IPv4; its
/// /48 would keep nothing of the client's network.
pub fn client_ip(raw: Option<&str>, mode: ClientIpMode) -> Option<String> {
    if mode == ClientIpMode::Omit {
        return None;
    }
    let ip: IpAddr = raw?.trim().parse().ok()?;
    Some(match mode {
        ClientIpMode::Full => ip.to_string(),
        _ => truncate(ip).to_string(),
    })
}

/// The /24 of an IPv4 address, the /48 of an IPv6 one (IPv4-mapped: the /24 of the IPv4).
pub fn truncate(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(truncate_v4(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(truncate_v4(v4)),
            None => {
                let bits = u128::from(v6) & !((1u128 << 80) - 1);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        },
    }
}

fn truncate_v4(ip: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(ip) & 0xffff_ff00)
}
