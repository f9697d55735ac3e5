//! `match` conditions: precedence over plain routes, evaluation, and the exact conflict check.

use super::*;
use crate::config::Config;

fn config(routes: &str) -> Config {
    let doc = format!(
        r#"{{"version":1,"upstreams":{{"u":{{"targets":[{{"url":"http://127.0.0.1:9"}}]}}}},"routes":[{routes}]}}"#
    );
    Config::from_json(&doc).unwrap_or_else(|e| panic!("{e}"))
}

struct Facts<'a> {
    headers: &'a [(&'a str, &'a str)],
    query: Option<&'a str>,
}

impl MatchFacts for Facts<'_> {
    fn header(&self, lower_name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == lower_name)
            .map(|(_, v)| *v)
    }
    fn query(&self) -> Option<&str> {
        self.query
    }
}

fn pick(
    c: &Config,
    r: &Router,
    method: &str,
    headers: &[(&str, &str)],
    query: Option<&str>,
) -> String {
    match r.find_with("h", method, "/v1/users/7", &Facts { headers, query }) {
        RouteMatch::Found { route, .. } => c.routes[route].id.clone(),
        RouteMatch::NotFound => "404".into(),
        RouteMatch::AmbiguousConditions => "400".into(),
        RouteMatch::MethodNotAllowed { allow } => {
            format!("405 {}", allow.names().collect::<Vec<_>>().join(","))
        }
    }
}

fn conflicts(routes: &str) -> Vec<String> {
    match Router::build(&config(routes)) {
        Ok(_) => Vec::new(),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

const VERSIONS: &str = r#"
    {"id":"v1","path":"/v1/users/{id}","upstream":"u","auth":"none"},
    {"id":"v2","path":"/v1/users/{id}","upstream":"u","auth":"none","match":{"headers":{"X-Api-Version":"2"}}},
    {"id":"v3","path":"/v1/users/{uid}","upstream":"u","auth":"none","match":{"headers":{"x-api-version":"3"}}}"#;

#[test]
fn conditioned_routes_are_tried_before_the_plain_one_whatever_the_order() {
    let c = config(VERSIONS);
    let r = Router::build(&c).unwrap();
    assert_eq!(pick(&c, &r, "GET", &[], None), "v1");
    assert_eq!(pick(&c, &r, "GET", &[("x-api-version", "2")], None), "v2");
    assert_eq!(pick(&c, &r, "GET", &[("x-api-version", "3")], None), "v3");
    // Exact and case-sensitive: anything else is the plain route's, but for repeated headers
    // of which one has the value, which a reader of the first or last header takes for v2 or
    // v3 (400).
    for other in ["2, 3", "3,2", "1, 2"] {
        assert_eq!(
            pick(&c, &r, "GET", &[("x-api-version", other)], None),
            "400",
            "{other:?}"
        );
    }
    for other in ["4", "2 ", "02", "4, 5", "22", ""] {
        assert_eq!(
            pick(&c, &r, "GET", &[("x-api-version", other)], None),
            "v1",
            "{other:?}"
        );
    }
    // A lookup without facts never meets a condition.
    assert!(matches!(
        r.find("h", "GET", "/v1/users/7"),
        RouteMatch::Found { route: 0, .. }
    ));
}

#[test]
fn without_a_plain_route_unmet_conditions_are_not_found_and_other_methods_405() {
    let c = config(
        r#"{"id":"v2","methods":["GET"],"path":"/v1/users/{id}","upstream":"u","auth":"none","match":{"headers":{"x-api-version":"2"}}}"#,
    );
    let r = Router::build(&c).unwrap();
    assert_eq!(pick(&c, &r, "GET", &[("x-api-version", "2")], None), "v2");
    assert_eq!(pick(&c, &r, "GET", &[], None), "404");
    assert_eq!(
        pick(&c, &r, "POST", &[("x-api-version", "2")], None),
        "405 GET"
    );
}

#[test]
fn present_and_query_conditions() {
    let c = config(
        r#"{"id":"beta","path":"/v1/users/{id}","upstream":"u","auth":"none","match":{"headers":{"x-beta":"*"},"query":{"v":"2"}}},
           {"id":"plain","path":"/v1/users/{id}","upstream":"u","auth":"none"}"#,
    );
    let r = Router::build(&c).unwrap();
    let beta = [("x-beta", "")];
    assert_eq!(pick(&c, &r, "GET", &beta, Some("v=2")), "beta");
    assert_eq!(
        pick(&c, &r, "GET", &beta, Some("a=1&%76=%32")),
        "beta",
        "decoded names and values"
    );
    assert_eq!(pick(&c, &r, "GET", &beta, Some("v=2&v=2")), "beta");
    // Every occurrence must agree: an upstream may read either of repeated parameters. When
    // some do and some do not, neither route is chosen (400): the plain route's upstream could
    // read the request as beta's.
    assert_eq!(pick(&c, &r, "GET", &beta, Some("v=2&v=1")), "400");
    assert_eq!(pick(&c, &r, "GET", &beta, Some("v=1&v=2")), "400");
    assert_eq!(pick(&c, &r, "GET", &beta, Some("v=1&v=3")), "plain");
    assert_eq!(pick(&c, &r, "GET", &beta, Some("v=%zz")), "plain");
    // Read as some upstreams read `;` too: v is "2;x" to one reader and 2 to another, and
    // "1;v=2" or 2 (after a=1) to others.
    assert_eq!(pick(&c, &r, "GET", &beta, Some("v=2;x")), "400");
    assert_eq!(pick(&c, &r, "GET", &beta, Some("v=2;v=1")), "400");
    assert_eq!(pick(&c, &r, "GET", &beta, Some("a=1;v=2")), "400");
    assert_eq!(pick(&c, &r, "GET", &beta, Some("x;y=1&v=2")), "beta");
    assert_eq!(pick(&c, &r, "GET", &beta, Some("vv=2")), "plain");
    // ASP.NET reads names in any case.
    assert_eq!(pick(&c, &r, "GET", &beta, Some("V=2")), "400");
    assert_eq!(pick(&c, &r, "GET", &beta, Some("v=2&V=1")), "400");
    assert_eq!(pick(&c, &r, "GET", &beta, Some("V=1")), "plain");
    assert_eq!(pick(&c, &r, "GET", &beta, None), "plain");
    assert_eq!(
        pick(&c, &r, "GET", &[], Some("v=2")),
        "plain",
        "all conditions must hold"
    );
}

#[test]
fn conditions_that_cannot_both_hold_do_not_conflict() {
    assert_eq!(conflicts(VERSIONS), Vec::<String>::new());
    // Different methods never conflict, conditions or not.
    assert!(conflicts(
        r#"{"id":"a","methods":["GET"],"path":"/x","upstream":"u","auth":"none","match":{"headers":{"h":"*"}}},
           {"id":"b","methods":["POST"],"path":"/x","upstream":"u","auth":"none","match":{"headers":{"h":"*"}}}"#
    )
    .is_empty());
    // Different exact query values.
    assert!(conflicts(
        r#"{"id":"a","path":"/x","upstream":"u","auth":"none","match":{"query":{"v":"1"}}},
           {"id":"b","path":"/x","upstream":"u","auth":"none","match":{"query":{"v":"2"},"headers":{"h":"*"}}}"#
    )
    .is_empty());
}

#[test]
fn conditions_that_can_both_hold_conflict_and_name_both_routes() {
    for (a, b) in [
        (
            r#"{"headers":{"x-api-version":"2"}}"#,
            r#"{"headers":{"x-api-version":"2"}}"#,
        ),
        (
            r#"{"headers":{"x-api-version":"2"}}"#,
            r#"{"headers":{"x-api-version":"*"}}"#,
        ),
        (r#"{"headers":{"x-a":"1"}}"#, r#"{"headers":{"x-b":"1"}}"#),
        (r#"{"headers":{"x-a":"1"}}"#, r#"{"query":{"v":"1"}}"#),
        (
            r#"{"headers":{"x-a":"1"}}"#,
            r#"{"headers":{"x-a":"1","x-b":"2"}}"#,
        ),
        (r#"{"query":{"v":"1"}}"#, r#"{"query":{"v":"1","w":"2"}}"#),
    ] {
        let found = conflicts(&format!(
            r#"{{"id":"first","path":"/v1/users/{{id}}","upstream":"u","auth":"none","match":{a}}},
               {{"id":"second","path":"/v1/users/{{uid}}","upstream":"u","auth":"none","match":{b}}}"#
        ));
        assert_eq!(found.len(), 1, "{a} / {b}: {found:?}");
        assert!(
            found[0].starts_with(
                "routes[1]: route \"second\" conflicts with route \"first\": both match"
            ),
            "{}",
            found[0]
        );
        assert!(found[0].contains(" when "), "{}", found[0]);
    }
    // Two plain routes still conflict as before.
    assert_eq!(
        conflicts(
            r#"{"id":"a","path":"/x","upstream":"u","auth":"none"},
               {"id":"b","path":"/x","upstream":"u","auth":"none","match":{"headers":{"h":"*"}}},
               {"id":"c","path":"/x","upstream":"u","auth":"none"}"#
        ),
        vec!["routes[2]: route \"c\" conflicts with route \"a\": both match GET/HEAD/POST/PUT/PATCH/DELETE/OPTIONS /x on any host".to_owned()]
    );
}

#[test]
fn compatibility_is_symmetric() {
    let spec = |text: &str| {
        config(&format!(
            r#"{{"id":"r","path":"/x","upstream":"u","auth":"none","match":{text}}}"#
        ))
        .routes[0]
            .conditions
            .clone()
            .unwrap()
    };
    let all = [
        spec(r#"{"headers":{"a":"1"}}"#),
        spec(r#"{"headers":{"a":"2"}}"#),
        spec(r#"{"headers":{"a":"*"}}"#),
        spec(r#"{"query":{"a":"1"}}"#),
        spec(r#"{"headers":{"b":"1"},"query":{"a":"2"}}"#),
    ];
    for x in &all {
        assert!(compatible(x, x));
        for y in &all {
            assert_eq!(compatible(x, y), compatible(y, x));
        }
    }
    assert!(!compatible(&all[0], &all[1]));
    assert!(!compatible(&all[3], &all[4]));
}

/// A CORS preflight carries none of the header values the page will send, so it is routed as a
/// request without them: the route that takes what header conditions leave answers it by its
/// own policy (or none), and the browser then sends the request to the conditioned route.
/// Routes told apart by header conditions must therefore name the same policy.
#[test]
fn routes_told_apart_by_header_conditions_name_the_same_cors_policy() {
    let build = |v2_cors: &str, v1_cors: &str, v2_match: &str| {
        let doc = format!(
            r#"{{"version":1,"upstreams":{{"u":{{"targets":[{{"url":"http://127.0.0.1:9"}}]}}}},
               "cors":{{"strict":{{"origins":["https://app.example.com"]}},
                        "lenient":{{"origins":["https://app.example.com","https://partner.example.net"]}}}},
               "routes":[
                 {{"id":"v2","path":"/u","upstream":"u","auth":"none","match":{v2_match}{v2_cors}}},
                 {{"id":"v1","path":"/u","upstream":"u","auth":"none"{v1_cors}}}]}}"#
        );
        let c = Config::from_json(&doc).unwrap_or_else(|e| panic!("{e}"));
        match Router::build(&c) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }
    };
    let headers = r#"{"headers":{"x-api-version":"2"}}"#;
    for (v2, v1) in [
        (r#","cors":"strict""#, r#","cors":"lenient""#),
        (r#","cors":"strict""#, ""),
        ("", r#","cors":"lenient""#),
    ] {
        let found = build(v2, v1, headers);
        assert_eq!(found.len(), 1, "{v2} / {v1}: {found:?}");
        assert!(
            found[0].starts_with("routes[1]: route \"v1\" conflicts with route \"v2\": ")
                && found[0].contains("same cors policy"),
            "{}",
            found[0]
        );
    }
    // The same policy, or conditions a preflight's URL carries (the query), are fine.
    assert!(build(r#","cors":"strict""#, r#","cors":"strict""#, headers).is_empty());
    assert!(build(
        r#","cors":"strict""#,
        r#","cors":"lenient""#,
        r#"{"query":{"v":"2"}}"#
    )
    .is_empty());
}
