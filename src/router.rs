//! Route matching: host, then path (matchit), then method — built once per configuration.
//!
//! Every host a request can name selects one table that holds all routes that could apply to
//! it (its exact-host routes, the wildcard routes covering it, and host-less routes). Within a
//! table matchit's priority applies (static beats parameter beats catch-all); two routes with
//! the same path shape and overlapping methods in one table could match the same request, so
//! the document is refused with both ids.
//!
//! Routes with `match` conditions on one path shape are tried, in document order, before the
//! route without conditions (at most one per method); two conditioned routes conflict only
//! when one request could satisfy both ([`compatible`]). A leaf without conditioned routes
//! never reads the request's headers or query, so plain routes cost what they did.

use crate::config::{Config, ConfigError, HostPattern, MatchSpec, MethodSet, Route};
use std::collections::{HashMap, HashSet};

/// The request facts `match` conditions read, asked for only on leaves that have conditions.
pub trait MatchFacts {
    /// The value of a request header (lower-case name), as the runtime combines it.
    fn header(&self, lower_name: &str) -> Option<&str>;
    /// The raw query, without `?`.
    fn query(&self) -> Option<&str>;
}

/// Facts of a request that has no headers and no query (lookups that ignore conditions'
/// inputs: conditioned routes never match them). Only tests look routes up without a request.
#[cfg(test)]
pub struct NoFacts;

#[cfg(test)]
impl MatchFacts for NoFacts {
    fn header(&self, _: &str) -> Option<&str> {
        None
    }
    fn query(&self) -> Option<&str> {
        None
    }
}

/// Why a request whose headers or query meet a route's `match` conditions under one reading
/// and not under another is refused (400 `bad_request`): see [`RouteMatch::AmbiguousConditions`].
pub const AMBIGUOUS_CONDITIONS: &str =
    "the request's headers or query meet a route's match conditions only as some servers read them";

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
    /// A route's conditions hold as some servers read the request and not as others do (the
    /// first of repeated parameters or headers, a `;`-split query, a name in another case):
    /// the route that takes what conditions leave would be forwarded a request its upstream
    /// may read as the conditioned route's, so neither is chosen.
    AmbiguousConditions,
}

#[derive(Debug)]
struct Entry {
    route: usize,
    methods: MethodSet,
    /// The route's `match`; `None` for the route that matches on path alone.
    conditions: Option<Box<MatchSpec>>,
}

#[derive(Debug, Default)]
struct Leaf {
    /// Conditioned routes first (document order), then at most one plain route per method.
    entries: Vec<Entry>,
    allow: MethodSet,
    /// Whether any entry has conditions (only then are the request's facts read).
    conditioned: bool,
}

#[derive(Debug, Default)]
struct Table {
    matcher: matchit::Router<usize>,
    leaves: Vec<Leaf>,
    /// Shape → leaf index.
    shapes: HashMap<String, usize>,
    /// The table under folded patterns, when some member's pattern changes under folding
    /// (see [`fold`]); otherwise this table answers for folded paths.
    folded: Option<Box<fold::FoldedTable>>,
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
                            .map(|e| e.route),
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
        let leaf = &mut self.leaves[leaf];
        let mine = route.conditions.as_ref();
        let clash = leaf.entries.iter().find(|e| {
            e.methods.overlaps(route.methods)
                && match (e.conditions.as_deref(), mine) {
                    (None, None) => true,
                    (Some(a), Some(b)) => compatible(a, b),
                    // A conditioned route is tried first; the plain one takes the rest.
                    _ => false,
                }
        });
        if let Some(other) = clash {
            let common: Vec<&str> = MethodSet(routes[other.route].methods.0 & route.methods.0)
                .names()
                .collect();
            let when = match mine {
                Some(spec) => format!(" when {}", conditions::describe(spec)),
                None => String::new(),
            };
            let why = format!(
                "both match {} {} on {}{when}",
                common.join("/"),
                route.path,
                host_text(&route.host),
            );
            conflicts.push((other.route, index, why));
            return;
        }
        // A CORS preflight carries none of the header values its request will have, so it is
        // routed as a request without them: one route's policy (or none) would answer for the
        // requests a route told apart from it by header conditions takes.
        let by_headers = |c: Option<&MatchSpec>| c.is_some_and(|c| !c.headers.is_empty());
        let preflown = leaf.entries.iter().find(|e| {
            e.methods.overlaps(route.methods)
                && (by_headers(e.conditions.as_deref()) || by_headers(mine))
                && routes[e.route].cors != route.cors
        });
        if let Some(other) = preflown {
            conflicts.push((
                other.route,
                index,
                format!(
                    "header conditions tell them apart on {} {}, and a CORS preflight carries no header values (it is routed as a request without them, so one route's policy would answer for the other's requests): both must name the same cors policy",
                    host_text(&route.host),
                    route.path
                ),
            ));
            return;
        }
        let entry = Entry {
            route: index,
            methods: route.methods,
            conditions: mine.map(|c| Box::new(c.clone())),
        };
        if entry.conditions.is_some() {
            let at = leaf
                .entries
                .iter()
                .position(|e| e.conditions.is_none())
                .unwrap_or(leaf.entries.len());
            leaf.entries.insert(at, entry);
            leaf.conditioned = true;
        } else {
            leaf.entries.push(entry);
        }
        leaf.allow.0 |= route.methods.0;
    }

    fn find<'p, F: MatchFacts>(&self, method: &str, path: &'p str, facts: &F) -> RouteMatch<'p> {
        let Ok(m) = self.matcher.at(path) else {
            return RouteMatch::NotFound;
        };
        let Some(leaf) = self.leaves.get(*m.value) else {
            return RouteMatch::NotFound;
        };
        let found = if leaf.conditioned {
            let mut methods_matched = false;
            let mut ambiguous = false;
            let hit = leaf.entries.iter().find(|e| {
                if ambiguous || !e.methods.contains(method) {
                    return false;
                }
                methods_matched = true;
                match e.conditions.as_deref().map(|c| read_conditions(c, facts)) {
                    None | Some(Reading::Holds) => true,
                    Some(Reading::Ambiguous) => {
                        ambiguous = true;
                        false
                    }
                    Some(Reading::Fails) => false,
                }
            });
            if ambiguous {
                // Conditioned entries come first: nothing after them may take this request.
                return RouteMatch::AmbiguousConditions;
            }
            if hit.is_none() && methods_matched {
                // The path and method fit, but no route's conditions hold.
                return RouteMatch::NotFound;
            }
            hit
        } else {
            leaf.entries.iter().find(|e| e.methods.contains(method))
        };
        match found {
            Some(e) => RouteMatch::Found {
                route: e.route,
                params: m.params.iter().map(|(_, v)| v).collect(),
            },
            None => RouteMatch::MethodNotAllowed { allow: leaf.allow },
        }
    }
}

impl Table {
    /// Whether the folded `path` reaches routes none of which is `route`, one of which
    /// `differs` from it.
    fn folded_reaches_only_others(
        &self,
        path: &str,
        route: usize,
        differs: impl Fn(usize) -> bool,
    ) -> bool {
        if let Some(folded) = &self.folded {
            return folded.reaches_only_others(path, route, differs);
        }
        let Ok(m) = self.matcher.at(path) else {
            return false;
        };
        self.leaves.get(*m.value).is_some_and(|leaf| {
            leaf.entries.iter().all(|e| e.route != route)
                && leaf.entries.iter().any(|e| differs(e.route))
        })
    }

    /// Whether the leaf `path` reaches holds a route other than `route`, for any method or
    /// conditions.
    fn holds_other(&self, path: &str, route: usize) -> bool {
        let Ok(m) = self.matcher.at(path) else {
            return false;
        };
        self.leaves
            .get(*m.value)
            .is_some_and(|leaf| leaf.entries.iter().any(|e| e.route != route))
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
            for &i in &members {
                table.insert(routes, i, conflicts);
            }
            table.folded = fold::FoldedTable::for_members(routes, &members);
            table
        };
        for &i in &any_host {
            router.any_host.insert(routes, i, &mut conflicts);
        }
        router.any_host.folded = fold::FoldedTable::for_members(routes, &any_host);
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
    #[cfg(test)]
    pub fn find<'p>(&self, host: &str, method: &str, path: &'p str) -> RouteMatch<'p> {
        self.table_for(host).find(method, path, &NoFacts)
    }

    /// [`Router::find`] for a request whose headers and query `match` conditions may read.
    pub fn find_with<'p, F: MatchFacts>(
        &self,
        host: &str,
        method: &str,
        path: &'p str,
        facts: &F,
    ) -> RouteMatch<'p> {
        self.table_for(host).find(method, path, facts)
    }

    /// Whether `path` on `host` is served, for some method or conditions, by a route other
    /// than `route` (see `Gateway::destination`'s trailing-slash rule).
    pub fn serves_other(&self, host: &str, path: &str, route: usize) -> bool {
        self.table_for(host).holds_other(path, route)
    }

    /// Whether `path` as a lenient upstream may read it (another letter case, without trailing
    /// dots, spaces or slash: [`fold`]) reaches only routes other than `route` on `host`, one of
    /// which `differs` (guards its requests otherwise: see `Gateway::destination`). Where no
    /// pattern changes under folding, a path that folding leaves unchanged costs one scan.
    pub fn alias_elsewhere(
        &self,
        host: &str,
        path: &str,
        route: usize,
        differs: impl Fn(usize) -> bool,
    ) -> bool {
        let table = self.table_for(host);
        match fold::fold_path(path) {
            Some(folded) => table.folded_reaches_only_others(&folded, route, differs),
            // Already in folded form, which may still be another route's folded pattern
            // (`/api/x` beside `/API/{*rest}`).
            None => table
                .folded
                .as_ref()
                .is_some_and(|f| f.reaches_only_others(path, route, differs)),
        }
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

mod conditions;
mod fold;

pub use conditions::{compatible, read_conditions, Reading};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod match_tests;
