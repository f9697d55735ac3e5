//! The top-level `ip_rules` sets and a route's `ip_rules` list.
//!
//! A rule that does not mean what it says is refused: a CIDR with host bits set (the error
//! names the network it probably meant), a country that is not an ISO 3166 alpha-2 code (or
//! `T1`, Cloudflare's code for Tor), an empty list (which would allow nobody or nothing).

use super::json::Json;
use super::model::*;
use super::reader::{index_path, reference, Errors, Obj};
use crate::traffic::cidr::IpNet;

const IP_RULE_FIELDS: &[&str] = &[
    "allow",
    "deny",
    "allow_countries",
    "deny_countries",
    "allow_asns",
    "deny_asns",
];

/// Reads one named set.
#[inline(never)]
pub(super) fn rule_set(
    name: &str,
    value: &Json,
    path: &str,
    errs: &mut Errors,
) -> Option<IpRuleSet> {
    let o = Obj::new(value, path, IP_RULE_FIELDS, errs)?;
    let before = errs.len();
    if IP_RULE_FIELDS.iter().all(|f| o.get(f).is_none()) {
        errs.push(
            path,
            format!("must have at least one of: {}", IP_RULE_FIELDS.join(", ")),
        );
    }
    let set = IpRuleSet {
        name: name.to_owned(),
        allow: networks(&o, "allow", errs),
        deny: networks(&o, "deny", errs),
        allow_countries: countries(&o, "allow_countries", errs),
        deny_countries: countries(&o, "deny_countries", errs),
        allow_asns: asns(&o, "allow_asns", errs),
        deny_asns: asns(&o, "deny_asns", errs),
    };
    (errs.len() == before).then_some(set)
}

fn non_empty(o: &Obj, key: &str, len: usize, errs: &mut Errors) {
    if len == 0 {
        errs.push(
            &o.field_path(key),
            "must list at least one entry (omit it instead)",
        );
    }
}

fn networks(o: &Obj, key: &str, errs: &mut Errors) -> Vec<IpNet> {
    let Some(list) = o.opt_string_list(key, errs) else {
        return Vec::new();
    };
    non_empty(o, key, list.len(), errs);
    let mut out: Vec<IpNet> = Vec::new();
    for (text, path) in list {
        match IpNet::parse(&text) {
            Ok(net) if out.contains(&net) => {
                errs.push(&path, format!("\"{text}\" is listed twice"))
            }
            Ok(net) => out.push(net),
            Err(why) => errs.push(&path, format!("\"{text}\" {why}")),
        }
    }
    out
}

/// ISO 3166-1 alpha-2 (two upper-case letters) or `T1` (Tor).
fn is_country(code: &str) -> bool {
    code == "T1" || (code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()))
}

fn countries(o: &Obj, key: &str, errs: &mut Errors) -> Vec<String> {
    let Some(list) = o.opt_string_list(key, errs) else {
        return Vec::new();
    };
    non_empty(o, key, list.len(), errs);
    let mut out: Vec<String> = Vec::new();
    for (code, path) in list {
        if !is_country(&code) {
            let upper = code.to_ascii_uppercase();
            let hint = if is_country(&upper) {
                format!(" (write \"{upper}\")")
            } else {
                String::new()
            };
            errs.push(
                &path,
                format!(
                    "\"{code}\" is not an ISO 3166-1 alpha-2 country code or \"T1\" (Tor){hint}"
                ),
            );
        } else if out.contains(&code) {
            errs.push(&path, format!("country \"{code}\" is listed twice"));
        } else {
            out.push(code);
        }
    }
    out
}

fn asns(o: &Obj, key: &str, errs: &mut Errors) -> Vec<u32> {
    let lpath = o.field_path(key);
    let Some(value) = o.get(key) else {
        return Vec::new();
    };
    let Json::Array(items) = value else {
        errs.push(
            &lpath,
            format!("expected an array of AS numbers, found {}", value.kind()),
        );
        return Vec::new();
    };
    non_empty(o, key, items.len(), errs);
    let mut out: Vec<u32> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = index_path(&lpath, i);
        let Some(n) = super::reader::as_uint(item, &path, 1, u64::from(u32::MAX), errs) else {
            continue;
        };
        let n = n as u32;
        if out.contains(&n) {
            errs.push(&path, format!("AS number {n} is listed twice"));
        } else {
            out.push(n);
        }
    }
    out
}

/// Reads a route's `ip_rules`: names of declared sets.
pub(super) fn route_ip_rules(o: &Obj, declared: &[&str], errs: &mut Errors) -> Vec<usize> {
    let mut out = Vec::new();
    let Some(list) = o.opt_string_list("ip_rules", errs) else {
        return out;
    };
    if list.is_empty() {
        errs.push(
            &o.field_path("ip_rules"),
            "must name at least one IP rule set (omit it for none)",
        );
    }
    for (name, path) in list {
        match reference(&name, declared, "IP rule set", &path, errs) {
            Some(i) if out.contains(&i) => {
                errs.push(&path, format!("IP rule set \"{name}\" is listed twice"))
            }
            Some(i) => out.push(i),
            None => {}
        }
    }
    out
}
