//! IP networks written as addresses or CIDRs (`203.0.113.0/24`, `2001:db8::/32`).
//!
//! Parsing uses `std::net`; a prefix with host bits set (`10.0.0.1/8`) is refused with the
//! corrected network, because such a rule almost always means something other than what the
//! operator wrote. IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is IPv4, in rules and in client
//! addresses alike, so one rule covers both spellings of a client.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4 or IPv6 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpNet {
    V4 { addr: u32, prefix: u8 },
    V6 { addr: u128, prefix: u8 },
}

/// Why a rule entry is not a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CidrError {
    NotAnAddress,
    /// The prefix length is not a number from 0 to `max`.
    BadPrefix {
        max: u8,
    },
    /// Bits below the prefix are set; `corrected` is the network that was probably meant.
    HostBits {
        corrected: String,
    },
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CidrError::NotAnAddress => f.write_str("is not an IPv4 or IPv6 address or CIDR"),
            CidrError::BadPrefix { max } => {
                write!(
                    f,
                    "has a prefix length that is not a number from 0 to {max}"
                )
            }
            CidrError::HostBits { corrected } => write!(
                f,
                "has bits set below its prefix length (did you mean \"{corrected}\"?)"
            ),
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p.min(32))),
    }
}

fn mask128(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p => u128::MAX << (128 - u32::from(p.min(128))),
    }
}

/// A client address as the rules see it: IPv4-mapped IPv6 becomes IPv4.
pub fn normalized(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// The client address in a `CF-Connecting-IP` value, when it is one.
pub fn client_address(value: &str) -> Option<IpAddr> {
    value.trim().parse::<IpAddr>().ok().map(normalized)
}

/// A prefix length: decimal digits without a sign or leading zeros, at most `max`.
fn prefix_len(text: &str, max: u8) -> Result<u8, CidrError> {
    let canonical = !text.is_empty()
        && text.len() <= 3
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    match text.parse::<u8>() {
        Ok(p) if canonical && p <= max => Ok(p),
        _ => Err(CidrError::BadPrefix { max }),
    }
}

impl IpNet {
    /// Parses an address (a network of one) or `address/prefix`.
    pub fn parse(text: &str) -> Result<IpNet, CidrError> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| CidrError::NotAnAddress)?;
        let net = match ip {
            IpAddr::V4(v4) => {
                let prefix = prefix.map_or(Ok(32), |p| prefix_len(p, 32))?;
                IpNet::V4 {
                    addr: u32::from(v4),
                    prefix,
                }
            }
            IpAddr::V6(v6) => {
                let prefix = prefix.map_or(Ok(128), |p| prefix_len(p, 128))?;
                IpNet::V6 {
                    addr: u128::from(v6),
                    prefix,
                }
            }
        };
        let network = net.network();
        if network != net {
            return Err(CidrError::HostBits {
                corrected: network.to_string(),
            });
        }
        Ok(net.mapped_as_v4())
    }

    /// The network with the bits below the prefix cleared.
    fn network(self) -> IpNet {
        match self {
            IpNet::V4 { addr, prefix } => IpNet::V4 {
                addr: addr & mask32(prefix),
                prefix,
            },
            IpNet::V6 { addr, prefix } => IpNet::V6 {
                addr: addr & mask128(prefix),
                prefix,
            },
        }
    }

    /// A network inside `::ffff:0:0/96` is the IPv4 network it maps.
    fn mapped_as_v4(self) -> IpNet {
        const MAPPED: u128 = 0xffff_0000_0000;
        match self {
            IpNet::V6 { addr, prefix } if prefix >= 96 && addr >> 32 == MAPPED >> 32 => IpNet::V4 {
                addr: addr as u32,
                prefix: prefix - 96,
            },
            other => other,
        }
    }

    /// Whether `ip` (normalized: a mapped address is IPv4) lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (*self, normalized(ip)) {
            (IpNet::V4 { addr, prefix }, IpAddr::V4(v4)) => u32::from(v4) & mask32(prefix) == addr,
            (IpNet::V6 { addr, prefix }, IpAddr::V6(v6)) => {
                u128::from(v6) & mask128(prefix) == addr
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            IpNet::V4 { addr, prefix } => write!(f, "{}/{prefix}", Ipv4Addr::from(addr)),
            IpNet::V6 { addr, prefix } => write!(f, "{}/{prefix}", Ipv6Addr::from(addr)),
        }
    }
}
