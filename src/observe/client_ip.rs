//! The client address as the access log keeps it (`access_log.client_ip`).

use crate::config::ClientIpMode;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The address to log for `raw` (what Cloudflare reports in `CF-Connecting-IP`), or `None`
/// when it is omitted or is not an IP address (nothing else is ever logged as one).
///
/// `truncate` keeps the network: IPv4 to its /24, IPv6 to its /48. An IPv4-mapped IPv6
/// address (`::ffff:203.0.113.7`) is an IPv4 client and is truncated and written as IPv4; its
/// /48 would keep nothing of the client's network. A 6to4 address (`2002::/16`) holds its
/// client's whole IPv4 address in its first 48 bits, so it keeps only that address's /24.
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

/// The /24 of an IPv4 address, the /48 of an IPv6 one (IPv4-mapped: the /24 of the IPv4;
/// 6to4: the /40, which is the /24 of the IPv4 address it embeds).
pub fn truncate(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(truncate_v4(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(truncate_v4(v4)),
            None => {
                let kept = if v6.segments()[0] == 0x2002 { 40 } else { 48 };
                let bits = u128::from(v6) & !((1u128 << (128 - kept)) - 1);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        },
    }
}

fn truncate_v4(ip: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(ip) & 0xffff_ff00)
}
