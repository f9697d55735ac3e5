//! A route's IP rules: named sets of allowed and denied networks, countries and ASNs, and the
//! one decision over all the sets a route lists.
//!
//! Deny wins: any deny match refuses. When any set of the route has an allow list (of any
//! kind), the client must match at least one allow entry, and a client without a usable
//! address is refused (fail closed) — the address is the only fact a client cannot choose.

use super::cidr::IpNet;
use std::net::IpAddr;

/// One named entry of the top-level `ip_rules`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IpRuleSet {
    pub name: String,
    pub allow: Vec<IpNet>,
    pub deny: Vec<IpNet>,
    /// ISO 3166-1 alpha-2 codes (upper-case), `T1` for Tor, as in `request.cf.country`.
    pub allow_countries: Vec<String>,
    pub deny_countries: Vec<String>,
    pub allow_asns: Vec<u32>,
    pub deny_asns: Vec<u32>,
}

impl IpRuleSet {
    fn has_allow_list(&self) -> bool {
        !self.allow.is_empty() || !self.allow_countries.is_empty() || !self.allow_asns.is_empty()
    }

    /// Whether the set names countries or ASNs (so the client's Cloudflare facts are needed).
    pub fn uses_network_facts(&self) -> bool {
        !self.allow_countries.is_empty()
            || !self.deny_countries.is_empty()
            || !self.allow_asns.is_empty()
            || !self.deny_asns.is_empty()
    }
}

/// What the rules look at: the address from `CF-Connecting-IP` (normalized), Cloudflare's
/// country and ASN for the connection.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ClientNetwork<'a> {
    pub ip: Option<IpAddr>,
    pub country: Option<&'a str>,
    pub asn: Option<u32>,
}

/// Why a client was refused, for the gateway's own log line (never shown to the client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A deny entry of the named set matched.
    Denied { set: String },
    /// The route has allow lists and none matched.
    NotAllowed,
    /// The route has allow lists and the request carries no usable address.
    NoAddress,
}

fn country_is(country: Option<&str>, code: &str) -> bool {
    country.is_some_and(|c| c.eq_ignore_ascii_case(code))
}

/// Decides a request against every set a route lists.
pub fn check<'s>(
    sets: impl IntoIterator<Item = &'s IpRuleSet> + Clone,
    client: &ClientNetwork,
) -> Result<(), Refusal> {
    for set in sets.clone() {
        let denied = client
            .ip
            .is_some_and(|ip| set.deny.iter().any(|n| n.contains(ip)))
            || set
                .deny_countries
                .iter()
                .any(|c| country_is(client.country, c))
            || client.asn.is_some_and(|a| set.deny_asns.contains(&a));
        if denied {
            return Err(Refusal::Denied {
                set: set.name.clone(),
            });
        }
    }
    let mut allow_lists = false;
    let mut allowed = false;
    for set in sets {
        if !set.has_allow_list() {
            continue;
        }
        allow_lists = true;
        allowed |= client
            .ip
            .is_some_and(|ip| set.allow.iter().any(|n| n.contains(ip)))
            || set
                .allow_countries
                .iter()
                .any(|c| country_is(client.country, c))
            || client.asn.is_some_and(|a| set.allow_asns.contains(&a));
    }
    match (allow_lists, client.ip, allowed) {
        (false, _, _) => Ok(()),
        (true, None, _) => Err(Refusal::NoAddress),
        (true, Some(_), true) => Ok(()),
        (true, Some(_), false) => Err(Refusal::NotAllowed),
    }
}
