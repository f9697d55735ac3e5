//! Route matching: host, then path (matchit), then method — built once per configuration.
//!
//! Every host a request can name selects one table that holds all routes that could apply to
//! it (its exact-host routes, the wildcard routes covering it, and host-less routes). Within a
//! table matchit's priority applies (static beats parameter beats catch-all); two routes with
//! the same path shape and overlapping methods in one table could match the same request, so
//! the document is refused with both ids.

use crate::config::{Config, ConfigError, HostPattern, MethodSet, Route};
use std::collections::HashMap;

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
    /// Wildcard tables, longest suffix first.
    suffixes: Vec<(String, Table)>,
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
    pub fn build(config: &Config) -> Result<Router, Vec<ConfigError>> {
        let routes = &config.routes;
        let mut router = Router::default();
        let mut conflicts = Vec::new();
        let exact_hosts: Vec<&String> = routes
            .iter()
            .filter_map(|r| match &r.host {
                Some(HostPattern::Exact(h)) => Some(h),
                _ => None,
            })
            .collect();
        let mut suffixes: Vec<&String> = routes
            .iter()
            .filter_map(|r| match &r.host {
                Some(HostPattern::Suffix(s)) => Some(s),
                _ => None,
            })
            .collect();
        suffixes.sort_by_key(|s| std::cmp::Reverse(s.len()));
        suffixes.dedup();

        for (i, r) in routes.iter().enumerate() {
            if r.host.is_none() {
                router.any_host.insert(routes, i, &mut conflicts);
            }
        }
        for host in exact_hosts {
            if router.exact.contains_key(host.as_str()) {
                continue;
            }
            let mut table = Table::default();
            for (i, r) in routes.iter().enumerate() {
                if r.host.as_ref().is_none_or(|h| h.matches(host)) {
                    table.insert(routes, i, &mut conflicts);
                }
            }
            router.exact.insert(host.clone(), table);
        }
        for suffix in suffixes {
            let mut table = Table::default();
            for (i, r) in routes.iter().enumerate() {
                let applies = match &r.host {
                    None => true,
                    Some(HostPattern::Exact(_)) => false,
                    Some(HostPattern::Suffix(s)) => suffix.ends_with(s.as_str()),
                };
                if applies {
                    table.insert(routes, i, &mut conflicts);
                }
            }
            router.suffixes.push((suffix.clone(), table));
        }

        let mut errors: Vec<ConfigError> = Vec::new();
        let mut reported: Vec<(usize, usize)> = Vec::new();
        for (a, b, why) in conflicts {
            let pair = (a.min(b), a.max(b));
            if reported.contains(&pair) {
                continue;
            }
            reported.push(pair);
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

    fn table_for(&self, host: &str) -> &Table {
        if self.exact.is_empty() && self.suffixes.is_empty() {
            return &self.any_host;
        }
        let host = normalize_host(host);
        if let Some(t) = self.exact.get(host.as_str()) {
            return t;
        }
        self.suffixes
            .iter()
            .find(|(s, _)| host.len() > s.len() && host.ends_with(s.as_str()))
            .map(|(_, t)| t)
            .unwrap_or(&self.any_host)
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
