//! Route matching: host, then path (matchit), then method — built once per configuration.
//!
//! Every host a request can name selects one table that holds all routes that could apply to
//! it (its exact-host routes, the wildcard routes covering it, and host-less routes). Within a
//! table matchit's priority applies (static beats parameter beats catch-all); two routes with
//! the same path shape and overlapping methods in one table could match the same request, so
//! the document is refused with both ids.

use crate::config::{Config, ConfigError, HostPattern, MethodSet, Route};
use std::collections::{HashMap, HashSet};

/// The outcome of matching one request.
#[derive(Debug, PartialEq)]
pub enum RouteMatch<'p> {
    Found {
        /// Index into [`Config::routes`].
        route: usize,
        /// Parameter values in the order of the route's `params`, as they appear in the path.
        params: Vec<&'p str>,
    },
    /// The path matched but not with this method; `allow` lists the methods that would.
    MethodNotAllowed {
        allow: MethodSet,
    },
    NotFound,
}

#[derive(Debug, Default)]
struct Leaf {
    /// (route index, methods), at most one route per method.
    entries: Vec<(usize, MethodSet)>,
    allow: MethodSet,
}

#[derive(Debug, Default)]
struct Table {
    matcher: matchit::Router<usize>,
    leaves: Vec<Leaf>,
    /// Shape → leaf index.
    shapes: HashMap<String, usize>,
}

/// All routing tables of one configuration.
#[derive(Debug, Default)]
pub struct Router {
    any_host: Table,
    exact: HashMap<String, Table>,
    /// Wildcard tables by suffix (`.example.com`).
    suffixes: HashMap<String, Table>,
}

/// A pattern with parameter names erased: two patterns of one shape match the same paths.
fn shape(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').unwrap_or(after.len());
        out.push_str(if after.starts_with('*') { "{*}" } else { "{}" });
        rest = after.get(close + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

fn host_text(h: &Option<HostPattern>) -> String {
    match h {
        None => "any host".into(),
        Some(HostPattern::Exact(e)) => e.clone(),
        Some(HostPattern::Suffix(s)) => format!("*{s}"),
    }
}

impl Table {
    fn insert(
        &mut self,
        routes: &[Route],
        index: usize,
        conflicts: &mut Vec<(usize, usize, String)>,
    ) {
        let route = &routes[index];
        let key = shape(&route.path);
        let leaf = match self.shapes.get(&key) {
            Some(&leaf) => leaf,
            None => {
                let leaf = self.leaves.len();
                if let Err(e) = self.matcher.insert(route.path.clone(), leaf) {
                    let other = match &e {
                        matchit::InsertError::Conflict { with } => self
                            .shapes
                            .get(&shape(with))
                            .and_then(|l| self.leaves[*l].entries.first())
                            .map(|(r, _)| *r),
                        _ => None,
                    };
                    let why = format!(
                        "path \"{}\" cannot be routed beside another route: {e}",
                        route.path
                    );
                    conflicts.push((other.unwrap_or(index), index, why));
                    return;
                }
                self.shapes.insert(key, leaf);
                self.leaves.push(Leaf::default());
                leaf
            }
        };
        let entry = &mut self.leaves[leaf];
        if let Some((other, _)) = entry
            .entries
            .iter()
            .find(|(_, m)| m.overlaps(route.methods))
        {
            let common: Vec<&str> = MethodSet(routes[*other].methods.0 & route.methods.0)
                .names()
                .collect();
            let why = format!(
                "both match {} {} on {}",
                common.join("/"),
                route.path,
                host_text(&route.host),
            );
            conflicts.push((*other, index, why));
            return;
        }
        entry.entries.push((index, route.methods));
        entry.allow.0 |= route.methods.0;
    }

    fn find<'p>(&self, method: &str, path: &'p str) -> RouteMatch<'p> {
        let Ok(m) = self.matcher.at(path) else {
            return RouteMatch::NotFound;
        };
        let Some(leaf) = self.leaves.get(*m.value) else {
            return RouteMatch::NotFound;
        };
        match leaf
            .entries
            .iter()
            .find(|(_, methods)| methods.contains(method))
        {
            Some((route, _)) => RouteMatch::Found {
                route: *route,
                params: m.params.iter().map(|(_, v)| v).collect(),
            },
            None => RouteMatch::MethodNotAllowed { allow: leaf.allow },
        }
    }
}

impl Router {
    /// Builds the tables, or lists every pair of routes that could match the same request.
    ///
    /// Near-linear in routes and hosts: routes are grouped by host once, and each table takes
    /// its own routes, the host-less ones and the wildcards found by walking its labels (a
    /// host-less route is inserted into every host's table, so a table of H hosts and A
    /// host-less routes costs H × A insertions).
    pub fn build(config: &Config) -> Result<Router, Vec<ConfigError>> {
        let routes = &config.routes;
        let mut router = Router::default();
        let mut conflicts = Vec::new();
        let mut any_host: Vec<usize> = Vec::new();
        // Hosts and suffixes in order of first appearance, each with its routes.
        let mut exact: Vec<(&str, Vec<usize>)> = Vec::new();
        let mut exact_at: HashMap<&str, usize> = HashMap::new();
        let mut suffix: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, r) in routes.iter().enumerate() {
            match &r.host {
                None => any_host.push(i),
                Some(HostPattern::Exact(h)) => match exact_at.get(h.as_str()) {
                    Some(&at) => exact[at].1.push(i),
                    None => {
                        exact_at.insert(h, exact.len());
                        exact.push((h, vec![i]));
                    }
                },
                Some(HostPattern::Suffix(s)) => suffix.entry(s).or_default().push(i),
            }
        }
        // The table for `name`: host-less routes, `own`, and every wildcard ending `name` at a
        // label boundary (`from` is 1 for a host, which a wildcard must extend; 0 for a
        // wildcard, which includes itself), inserted in document order.
        let table = |name: &str, own: &[usize], from: usize, conflicts: &mut Vec<_>| {
            let mut members: Vec<usize> = any_host.iter().chain(own).copied().collect();
            for (at, _) in name.match_indices('.').filter(|(at, _)| *at >= from) {
                if let Some(list) = suffix.get(&name[at..]) {
                    members.extend_from_slice(list);
                }
            }
            members.sort_unstable();
            let mut table = Table::default();
            for i in members {
                table.insert(routes, i, conflicts);
            }
            table
        };
        for &i in &any_host {
            router.any_host.insert(routes, i, &mut conflicts);
        }
        for (host, own) in &exact {
            let t = table(host, own, 1, &mut conflicts);
            router.exact.insert((*host).to_owned(), t);
        }
        let mut suffixes: Vec<&str> = suffix.keys().copied().collect();
        suffixes.sort_unstable();
        for s in suffixes {
            let t = table(s, &[], 0, &mut conflicts);
            router.suffixes.insert(s.to_owned(), t);
        }

        let mut errors: Vec<ConfigError> = Vec::new();
        let mut reported: HashSet<(usize, usize)> = HashSet::new();
        for (a, b, why) in conflicts {
            let pair = (a.min(b), a.max(b));
            if !reported.insert(pair) {
                continue;
            }
            let message = if a == b {
                why
            } else {
                format!(
                    "route \"{}\" conflicts with route \"{}\": {why}",
                    routes[pair.1].id, routes[pair.0].id
                )
            };
            errors.push(ConfigError {
                path: format!("routes[{}]", pair.1),
                message,
            });
        }
        if errors.is_empty() {
            Ok(router)
        } else {
            Err(errors)
        }
    }

    /// Finds the route for a request. `host` is the Host header as sent (any case, maybe with a
    /// port); `path` is the canonical path.
    pub fn find<'p>(&self, host: &str, method: &str, path: &'p str) -> RouteMatch<'p> {
        self.table_for(host).find(method, path)
    }

    /// The host's table: exact, else the longest wildcard covering it (found by walking its
    /// labels, so the cost does not grow with the number of hosts), else the host-less one.
    fn table_for(&self, host: &str) -> &Table {
        if self.exact.is_empty() && self.suffixes.is_empty() {
            return &self.any_host;
        }
        let host = normalize_host(host);
        if let Some(t) = self.exact.get(host.as_str()) {
            return t;
        }
        if !self.suffixes.is_empty() {
            for (at, _) in host.match_indices('.').filter(|(at, _)| *at > 0) {
                if let Some(t) = self.suffixes.get(&host[at..]) {
                    return t;
                }
            }
        }
        &self.any_host
    }
}

/// Lower-case host without port or trailing dot.
pub fn normalize_host(host: &str) -> String {
    let without_port = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    without_port.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests;
