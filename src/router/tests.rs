use super::*;
use crate::config::Config;

fn config(routes: &str) -> Result<Config, String> {
    let doc = format!(
        r#"{{"version":1,"upstreams":{{"u":{{"targets":[{{"url":"http://127.0.0.1:9"}}]}}}},"routes":[{routes}]}}"#
    );
    Config::from_json(&doc).map_err(|e| e.to_string())
}

fn router(routes: &str) -> (Config, Router) {
    let c = config(routes).unwrap();
    let r = Router::build(&c).unwrap_or_else(|e| panic!("{e:?}"));
    (c, r)
}

fn conflict(routes: &str) -> String {
    let c = config(routes).unwrap();
    match Router::build(&c) {
        Ok(_) => panic!("expected a conflict for {routes}"),
        Err(e) => e
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn found<'p>(
    r: &Router,
    c: &Config,
    host: &str,
    method: &str,
    path: &'p str,
) -> (String, Vec<&'p str>) {
    match r.find(host, method, path) {
        RouteMatch::Found { route, params } => (c.routes[route].id.clone(), params),
        other => panic!("{method} {host}{path}: {other:?}"),
    }
}

#[test]
fn static_beats_parameter_beats_catch_all() {
    let (c, r) = router(
        r#"{"id":"me","path":"/users/me","upstream":"u","auth":"none"},
           {"id":"one","path":"/users/{id}","upstream":"u","auth":"none"},
           {"id":"rest","path":"/users/{id}/{*rest}","upstream":"u","auth":"none"},
           {"id":"all","path":"/{*path}","upstream":"u","auth":"none"}"#,
    );
    assert_eq!(found(&r, &c, "h", "GET", "/users/me").0, "me");
    assert_eq!(
        found(&r, &c, "h", "GET", "/users/42"),
        ("one".into(), vec!["42"])
    );
    assert_eq!(
        found(&r, &c, "h", "GET", "/users/42/a/b"),
        ("rest".into(), vec!["42", "a/b"])
    );
    assert_eq!(
        found(&r, &c, "h", "GET", "/other/x"),
        ("all".into(), vec!["other/x"])
    );
}

#[test]
fn wrong_method_is_405_with_allowed_methods() {
    let (c, r) = router(
        r#"{"id":"read","methods":["GET","HEAD"],"path":"/items","upstream":"u","auth":"none"},
           {"id":"write","methods":["POST"],"path":"/items","upstream":"u","auth":"none"}"#,
    );
    assert_eq!(found(&r, &c, "h", "POST", "/items").0, "write");
    match r.find("h", "DELETE", "/items") {
        RouteMatch::MethodNotAllowed { allow } => {
            assert_eq!(allow.names().collect::<Vec<_>>(), ["GET", "HEAD", "POST"])
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.find("h", "GET", "/nothing"), RouteMatch::NotFound);
    assert_eq!(
        r.find("h", "get", "/items"),
        RouteMatch::MethodNotAllowed {
            allow: MethodSet(0b111)
        }
    );
}

#[test]
fn hosts_select_tables() {
    let (c, r) = router(
        r#"{"id":"exact","host":"api.example.com","path":"/a","upstream":"u","auth":"none"},
           {"id":"wild","host":"*.example.com","path":"/b","upstream":"u","auth":"none"},
           {"id":"any","path":"/c","upstream":"u","auth":"none"}"#,
    );
    assert_eq!(found(&r, &c, "API.Example.com:443", "GET", "/a").0, "exact");
    assert_eq!(found(&r, &c, "api.example.com", "GET", "/b").0, "wild");
    assert_eq!(found(&r, &c, "api.example.com.", "GET", "/c").0, "any");
    assert_eq!(found(&r, &c, "x.y.example.com", "GET", "/b").0, "wild");
    assert_eq!(r.find("x.example.com", "GET", "/a"), RouteMatch::NotFound);
    assert_eq!(r.find("example.com", "GET", "/b"), RouteMatch::NotFound);
    assert_eq!(r.find("evil.com", "GET", "/b"), RouteMatch::NotFound);
    assert_eq!(r.find("evilexample.com", "GET", "/b"), RouteMatch::NotFound);
    assert_eq!(found(&r, &c, "evil.com", "GET", "/c").0, "any");
}

#[test]
fn host_specific_static_route_wins_over_host_less_parameter() {
    let (c, r) = router(
        r#"{"id":"param","path":"/users/{id}","upstream":"u","auth":"none"},
           {"id":"me","host":"api.example.com","path":"/users/me","upstream":"u","auth":"none"}"#,
    );
    assert_eq!(found(&r, &c, "api.example.com", "GET", "/users/me").0, "me");
    assert_eq!(
        found(&r, &c, "api.example.com", "GET", "/users/7").0,
        "param"
    );
    assert_eq!(found(&r, &c, "other", "GET", "/users/me").0, "param");
}

#[test]
fn same_shape_and_method_conflicts_name_both_routes() {
    let e = conflict(
        r#"{"id":"first","path":"/users/{id}","upstream":"u","auth":"none"},
           {"id":"second","methods":["GET"],"path":"/users/{name}","upstream":"u","auth":"none"}"#,
    );
    assert!(e.contains("\"second\"") && e.contains("\"first\""), "{e}");
    assert!(e.starts_with("routes[1]"), "{e}");
}

#[test]
fn overlapping_hosts_conflict() {
    let e = conflict(
        r#"{"id":"a","host":"api.example.com","path":"/x","upstream":"u","auth":"none"},
           {"id":"b","path":"/x","upstream":"u","auth":"none"}"#,
    );
    assert!(e.contains("\"a\"") && e.contains("\"b\""), "{e}");
    let e = conflict(
        r#"{"id":"a","host":"*.example.com","path":"/x","upstream":"u","auth":"none"},
           {"id":"b","host":"api.example.com","path":"/x","upstream":"u","auth":"none"}"#,
    );
    assert!(e.contains("\"a\"") && e.contains("\"b\""), "{e}");
    // Disjoint hosts or methods do not conflict.
    router(
        r#"{"id":"a","host":"a.example.com","methods":["GET"],"path":"/x","upstream":"u","auth":"none"},
           {"id":"b","host":"b.example.com","path":"/x","upstream":"u","auth":"none"},
           {"id":"c","host":"a.example.com","methods":["POST"],"path":"/x","upstream":"u","auth":"none"}"#,
    );
}

#[test]
fn a_conflict_is_reported_once() {
    let e = conflict(
        r#"{"id":"a","host":"*.example.com","path":"/x","upstream":"u","auth":"none"},
           {"id":"b","host":"*.example.com","path":"/x","upstream":"u","auth":"none"},
           {"id":"c","host":"api.example.com","path":"/y","upstream":"u","auth":"none"}"#,
    );
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn host_normalisation() {
    assert_eq!(normalize_host("API.Example.COM:8443"), "api.example.com");
    assert_eq!(normalize_host("[::1]:80"), "[::1]");
    assert_eq!(normalize_host("example.com."), "example.com");
}

#[test]
fn nested_wildcards_choose_the_longest_suffix_and_never_the_apex() {
    let (_, r) = router(
        r#"{"id":"outer","host":"*.example.com","path":"/x","upstream":"u","auth":"none"},
           {"id":"inner","host":"*.api.example.com","path":"/w","upstream":"u","auth":"none"},
           {"id":"one","host":"a.api.example.com","path":"/y","upstream":"u","auth":"none"},
           {"id":"free","path":"/z","upstream":"u","auth":"none"}"#,
    );
    let id = |host: &str, path: &str| match r.find(host, "GET", path) {
        RouteMatch::Found { route, .. } => route as i64,
        _ => -1,
    };
    assert_eq!(id("b.api.example.com", "/w"), 1, "the longer wildcard");
    assert_eq!(id("deep.b.api.example.com", "/w"), 1);
    assert_eq!(
        id("b.api.example.com", "/x"),
        0,
        "whose table has the shorter one's routes"
    );
    assert_eq!(id("www.example.com", "/x"), 0);
    assert_eq!(id("www.example.com", "/w"), -1);
    assert_eq!(
        id("api.example.com", "/w"),
        -1,
        "*.api.example.com never covers its apex"
    );
    assert_eq!(id("api.example.com", "/x"), 0);
    assert_eq!(
        id("example.com", "/x"),
        -1,
        "*.example.com never covers its apex"
    );
    assert_eq!(id("evil-example.com", "/x"), -1);
    assert_eq!(id("a.api.example.com", "/y"), 2);
    assert_eq!(
        id("a.api.example.com", "/w"),
        1,
        "an exact host's table has its wildcards"
    );
    assert_eq!(id("a.api.example.com", "/x"), 0);
    assert_eq!(id("a.api.example.com", "/z"), 3, "and the host-less routes");
    assert_eq!(id("other.test", "/z"), 3);
}

/// Ten thousand routes, each on its own host: each host finds its own route.
#[test]
fn many_hosts_each_get_one_table_with_their_own_route() {
    let routes: Vec<String> = (0..10_000)
        .map(|i| format!(r#"{{"id":"r{i}","host":"h{i}.example.com","path":"/p","upstream":"u","auth":"none"}}"#))
        .collect();
    let (_, r) = router(&routes.join(","));
    for i in [0usize, 4_999, 9_999] {
        match r.find(&format!("H{i}.example.com:443"), "GET", "/p") {
            RouteMatch::Found { route, .. } => assert_eq!(route, i),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        r.find("h10000.example.com", "GET", "/p"),
        RouteMatch::NotFound
    );
}
