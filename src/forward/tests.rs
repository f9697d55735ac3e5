use super::*;

fn gateway(extra_routes: &str) -> Gateway {
    let doc = format!(
        r#"{{
        "version": 1,
        "settings": {{ "max_body_bytes": 100, "request_id_header": "x-request-id" }},
        "upstreams": {{
            "users": {{ "targets": [ {{ "url": "https://users.internal.example/base/" }} ] }},
            "svc": {{ "targets": [ {{ "url": "service:ORDERS" }} ] }}
        }},
        "routes": [
            {{ "id": "user", "methods": ["GET"], "path": "/v1/users/{{id}}", "upstream": "users",
               "rewrite": "/users/{{id}}/profile", "auth": "none",
               "request_headers": {{ "set": {{ "x-api-version": "1" }}, "remove": ["cookie"] }},
               "response_headers": {{ "set": {{ "x-frame-options": "DENY" }}, "remove": ["server"] }} }},
            {{ "id": "files", "path": "/files/{{*rest}}", "upstream": "svc", "rewrite": "/f/{{rest}}", "auth": "none" }}
            {extra_routes}
        ]
    }}"#
    );
    Gateway::compile(&doc).unwrap_or_else(|e| panic!("{e}"))
}

/// What a message ends up with: static removals and sets, then the per-request ones.
fn effective(fixed: &HeaderEdits, per_request: &HeaderEdits) -> HeaderEdits {
    let mut remove = fixed.remove.clone();
    remove.extend(per_request.remove.iter().cloned());
    let mut set = fixed.set.clone();
    set.extend(per_request.set.iter().cloned());
    HeaderEdits { remove, set }
}

fn inbound(path: &str) -> Inbound<'_> {
    Inbound {
        method: "GET",
        scheme: "https",
        host: "api.example.com",
        path,
        ..Inbound::default()
    }
}

fn routed(g: &Gateway, i: &Inbound) -> Routed {
    match g.destination(i) {
        Ok(Destination::Route(r)) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn rewrite_base_path_and_query_make_the_upstream_url() {
    let g = gateway("");
    let mut i = inbound("/v1/users/%34%32");
    i.query = Some("b=2&a=1&x=%2F");
    let r = routed(&g, &i);
    assert_eq!(r.canonical_path, "/v1/users/42");
    assert_eq!(
        g.target_url(&r, 0),
        (
            None,
            "https://users.internal.example/base/users/42/profile?b=2&a=1&x=%2F".to_string()
        )
    );
    let r = routed(&g, &inbound("/files/a/./b/c%20d"));
    assert_eq!(
        g.target_url(&r, 0),
        (Some("ORDERS"), "https://orders/f/a/b/c%20d".to_string())
    );
}

#[test]
fn without_rewrite_the_canonical_path_is_forwarded() {
    let g = gateway(
        r#", { "id": "plain", "path": "/plain/{*p}", "upstream": "users", "auth": "none" }"#,
    );
    let r = routed(&g, &inbound("/plain//x/../y"));
    assert_eq!(
        g.target_url(&r, 0).1,
        "https://users.internal.example/base/plain/y"
    );
}

#[test]
fn refusals() {
    let g = gateway("");
    assert_eq!(
        g.destination(&inbound("/v1/users/%2e%2e%2fadmin")),
        Err(GatewayError::BadPath(
            crate::path::PathError::EncodedSeparator
        ))
    );
    assert_eq!(
        g.destination(&inbound("/nope")),
        Err(GatewayError::NotFound)
    );
    let mut post = inbound("/v1/users/1");
    post.method = "POST";
    assert!(matches!(
        g.destination(&post),
        Err(GatewayError::MethodNotAllowed(_))
    ));
    let mut big = inbound("/files/x");
    big.content_length = Some("101");
    assert_eq!(
        g.destination(&big),
        Err(GatewayError::PayloadTooLarge { limit: 100 })
    );
    big.content_length = Some("100");
    assert!(g.destination(&big).is_ok());
    big.content_length = Some("1e3");
    assert_eq!(
        g.destination(&big),
        Err(GatewayError::BadRequest("invalid Content-Length"))
    );
    // A small length beside chunked framing would let the runtime read a larger body than the
    // one the limit was checked against: both together are refused, chunks alone are counted.
    big.content_length = Some("5");
    big.transfer_encoding = Some("chunked");
    assert_eq!(
        g.destination(&big),
        Err(GatewayError::BadRequest(
            "Content-Length and Transfer-Encoding together"
        ))
    );
    big.content_length = None;
    assert!(g.destination(&big).is_ok());
}

#[test]
fn admin_paths_are_recognised_only_on_segment_boundaries() {
    let g =
        gateway(r#", { "id": "catch", "path": "/{*all}", "upstream": "users", "auth": "none" }"#);
    assert_eq!(
        g.destination(&inbound("/__gateway/health")),
        Ok(Destination::Admin {
            rest: "/health".into()
        })
    );
    assert_eq!(
        g.destination(&inbound("/x/../__gateway/health")),
        Ok(Destination::Admin {
            rest: "/health".into()
        })
    );
    assert!(matches!(
        g.destination(&inbound("/__gatewayx")),
        Ok(Destination::Route(_))
    ));
}

#[test]
fn the_admin_prefix_in_another_letter_case_reaches_no_route() {
    // A catch-all would forward the admin client's token to its upstream.
    let g =
        gateway(r#", { "id": "catch", "path": "/{*all}", "upstream": "users", "auth": "none" }"#);
    for path in ["/__GATEWAY/config", "/__Gateway", "/x/../__gateWay/health"] {
        assert_eq!(
            g.destination(&inbound(path)),
            Err(GatewayError::NotFound),
            "{path}"
        );
    }
    assert!(matches!(
        g.destination(&inbound("/__GATEWAYx")),
        Ok(Destination::Route(_))
    ));
    assert_eq!(crate::forward::admin_rest("/ä", "/a"), None);
    assert_eq!(crate::forward::admin_rest("/A", "/a"), Some(("", false)));
    assert_eq!(crate::forward::admin_rest("/a/b", "/a"), Some(("/b", true)));
}

#[test]
fn request_edits_strip_hop_by_hop_and_spoofable_headers_then_set_the_gateways() {
    let g = gateway("");
    let mut i = inbound("/v1/users/1");
    i.client_ip = Some("203.0.113.7");
    i.connection = Some("keep-alive, X-Secret-Internal, content-length");
    i.request_id = Some("bad id\r\n");
    let mut ids = IdGenerator::new([9; 32]);
    let trace = Trace::begin(&i, &mut ids, &TracingSpec::default());
    assert_ne!(trace.request_id, "bad id\r\n");
    let r = routed(&g, &i);
    let edits = effective(
        &g.route_edits(r.route).request,
        &g.request_edits(&r, &i, &trace),
    );
    for h in [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "te",
        "x-forwarded-for",
        "forwarded",
        "x-real-ip",
        // Other headers upstream frameworks read the client's address from.
        "true-client-ip",
        "x-client-ip",
        "client-ip",
        "x-cluster-client-ip",
        "fastly-client-ip",
        "forwarded-for",
        "x-forwarded",
        "cf-connecting-ipv6",
        "cf-pseudo-ipv4",
        "host",
        "cookie",
        "x-secret-internal",
        // Headers that would act behind the gateway's decisions, on a route without a cache.
        "proxy",
        "http2-settings",
        "x-original-url",
        "x-rewrite-url",
        "x-http-method-override",
        "front-end-https",
    ] {
        assert!(
            edits.remove.iter().any(|x| x == h),
            "{h} not removed: {:?}",
            edits.remove
        );
    }
    assert!(!edits.remove.iter().any(|x| x == "content-length"));
    let set: std::collections::HashMap<_, _> = edits.set.iter().cloned().collect();
    assert_eq!(set["x-forwarded-for"], "203.0.113.7");
    assert_eq!(set["x-forwarded-proto"], "https");
    assert_eq!(set["x-forwarded-host"], "api.example.com");
    assert_eq!(set["x-api-version"], "1");
    assert_eq!(set["x-request-id"], trace.request_id);
    assert!(crate::ids::is_valid_traceparent(&set["traceparent"]));
}

#[test]
fn a_non_ip_client_address_never_reaches_x_forwarded_for() {
    let g = gateway("");
    let mut i = inbound("/v1/users/1");
    i.client_ip = Some("1.2.3.4, 5.6.7.8");
    let trace = Trace::begin(&i, &mut IdGenerator::new([1; 32]), &TracingSpec::default());
    let r = routed(&g, &i);
    let edits = effective(
        &g.route_edits(r.route).request,
        &g.request_edits(&r, &i, &trace),
    );
    assert!(edits.set.iter().all(|(k, _)| k != "x-forwarded-for"));
    assert!(edits.remove.iter().any(|k| k == "x-forwarded-for"));
}

#[test]
fn trace_context_is_kept_when_valid_and_restarted_otherwise() {
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut i = inbound("/");
    i.traceparent = Some(tp);
    i.request_id = Some("client-id-1");
    let mut ids = IdGenerator::new([2; 32]);
    let t = Trace::begin(&i, &mut ids, &TracingSpec::default());
    // The gateway's own span continues the client's trace: same trace id and sampled flag,
    // a new span id whose parent is the client's.
    assert_eq!(
        (
            &t.traceparent[..36],
            &t.traceparent[52..],
            t.request_id.as_str(),
            t.drop_tracestate
        ),
        (&tp[..36], &tp[52..], "client-id-1", false)
    );
    assert_ne!(&t.traceparent[36..52], &tp[36..52]);
    assert_eq!(
        t.span.parent_span_id.map(|s| s.hex()).as_deref(),
        Some(&tp[36..52])
    );
    assert_eq!(t.traceparent, t.span.traceparent());
    i.traceparent = Some("00-zz");
    let t = Trace::begin(&i, &mut ids, &TracingSpec::default());
    assert!(t.drop_tracestate && t.traceparent != "00-zz");
    // A `tracestate` without any `traceparent` belongs to no trace either.
    i.traceparent = None;
    let t = Trace::begin(&i, &mut ids, &TracingSpec::default());
    assert!(t.drop_tracestate);
}

#[test]
fn response_edits() {
    let g = gateway("");
    let trace = Trace {
        request_id: "r1".into(),
        span: Default::default(),
        traceparent: String::new(),
        drop_tracestate: false,
    };
    let e = effective(
        &g.route_edits(0).response,
        &g.response_edits(Some("x-internal-debug, content-length"), &trace),
    );
    assert!(!e.remove.iter().any(|x| x == "content-length"));
    for h in [
        "connection",
        "transfer-encoding",
        "server",
        "x-internal-debug",
    ] {
        assert!(e.remove.iter().any(|x| x == h), "{h}");
    }
    assert!(e.set.contains(&("x-frame-options".into(), "DENY".into())));
    assert!(e.set.contains(&("x-request-id".into(), "r1".into())));
}

#[test]
fn urls_split_into_parts() {
    assert_eq!(
        split_url("https://a.example:8443/x/y?q=1&r"),
        Some(("https", "a.example:8443", "/x/y", Some("q=1&r")))
    );
    assert_eq!(split_url("http://h"), Some(("http", "h", "/", None)));
    assert_eq!(split_url("http://h?x"), Some(("http", "h", "/", Some("x"))));
    assert_eq!(
        split_url("http://h/p?"),
        Some(("http", "h", "/p", Some("")))
    );
    assert_eq!(
        split_url("http://h/p#frag"),
        Some(("http", "h", "/p", None))
    );
    assert_eq!(split_url("nonsense"), None);
}

#[test]
fn a_trailing_slash_that_reaches_another_route_is_refused() {
    let g = gateway(
        r#", { "id": "admin", "path": "/admin", "upstream": "users", "auth": "none", "methods": ["GET"] },
             { "id": "catch", "path": "/{*all}", "upstream": "users", "auth": "none" }"#,
    );
    assert!(
        matches!(g.destination(&inbound("/admin")), Ok(Destination::Route(r)) if g.route(r.route).id == "admin")
    );
    assert_eq!(
        g.destination(&inbound("/admin/")),
        Err(GatewayError::BadPath(
            crate::path::PathError::AmbiguousTrailingSlash
        ))
    );
    // Where both spellings reach the same route, or only one matches, nothing is refused.
    assert!(g.destination(&inbound("/other/")).is_ok());
    assert!(g.destination(&inbound("/files/a/")).is_ok());
    // The route without the slash would refuse this method (405): the slash does not slip past.
    let mut post = inbound("/admin/");
    post.method = "POST";
    assert_eq!(
        g.destination(&post),
        Err(GatewayError::BadPath(
            crate::path::PathError::AmbiguousTrailingSlash
        ))
    );
}

fn route_of(g: &Gateway, path: &str) -> Result<String, GatewayError> {
    g.destination(&inbound(path)).map(|d| match d {
        Destination::Route(r) => g.route(r.route).id.clone(),
        Destination::Admin { rest } => format!("admin {rest}"),
    })
}

const ALIAS: Result<String, GatewayError> = Err(GatewayError::BadPath(
    crate::path::PathError::AmbiguousAlias,
));

#[test]
fn a_path_that_folds_onto_another_route_is_refused() {
    let g = gateway(
        r#", { "id": "admin", "path": "/admin", "upstream": "users", "auth": "none", "methods": ["GET"] },
             { "id": "private", "path": "/private/{*rest}", "upstream": "users", "auth": "none", "methods": ["GET"] },
             { "id": "catch", "path": "/{*all}", "upstream": "users", "auth": "none" }"#,
    );
    assert_eq!(route_of(&g, "/admin").as_deref(), Ok("admin"));
    // What IIS, ASP.NET or a Windows file server takes for /admin reaches the catch-all here.
    for path in [
        "/ADMIN",
        "/Admin",
        "/admin.",
        "/admin..",
        "/admin%20",
        "/Admin.%20",
        "/admin::$DATA",
        "/ADMIN/",
        "/Private/x",
        "/private./x",
        "/PRIVATE/a/b.",
    ] {
        assert_eq!(route_of(&g, path), ALIAS, "{path}");
    }
    // Spellings that fold onto the route they already reach, or onto nothing else, pass.
    for (path, route) in [
        ("/private/X/Y.", "private"),
        ("/Blog/Post", "catch"),
        ("/about.", "catch"),
        ("/users/42/a.b", "catch"),
        ("/v1...v2", "catch"),
    ] {
        assert_eq!(route_of(&g, path).as_deref(), Ok(route), "{path}");
    }
    // The admin prefix in another letter case reaches no route (an admin client's typo would
    // carry its token upstream): see `the_admin_prefix_in_another_letter_case_reaches_no_route`.
    assert_eq!(
        route_of(&g, "/__GATEWAY/health"),
        Err(GatewayError::NotFound)
    );
}

#[test]
fn a_spelling_that_folds_onto_a_route_guarded_alike_passes() {
    let g = gateway(
        r#", { "id": "photos", "path": "/photos/{name}.jpg", "upstream": "users", "auth": "none" },
             { "id": "me", "path": "/v1/accounts/me", "upstream": "users", "auth": "none" },
             { "id": "account", "path": "/v1/accounts/{id}", "upstream": "users", "auth": "none" },
             { "id": "read-only", "path": "/reports", "upstream": "users", "auth": "none", "methods": ["GET"] },
             { "id": "catch", "path": "/{*all}", "upstream": "users", "auth": "none" }"#,
    );
    // A camera's upper-case file name and an id in capitals reach routes that let the same
    // requests through as the routes their folded spellings belong to: nothing to refuse.
    assert_eq!(route_of(&g, "/photos/IMG_1234.JPG").as_deref(), Ok("catch"));
    assert_eq!(route_of(&g, "/v1/accounts/ME").as_deref(), Ok("account"));
    // A route that refuses other methods guards differently from the catch-all.
    assert_eq!(route_of(&g, "/REPORTS"), ALIAS);
}

#[test]
fn routes_spelt_in_upper_case_keep_their_requests_and_their_aliases() {
    let g = gateway(
        r#", { "id": "api", "path": "/API/{*rest}", "upstream": "users", "auth": "none", "methods": ["GET"] },
             { "id": "docs-upper", "path": "/Docs", "upstream": "users", "auth": "none", "methods": ["GET"] },
             { "id": "docs", "path": "/docs", "upstream": "users", "auth": "none", "methods": ["GET"] },
             { "id": "dotted", "path": "/v1./x", "upstream": "users", "auth": "none", "methods": ["GET"] },
             { "id": "catch", "path": "/{*all}", "upstream": "users", "auth": "none" }"#,
    );
    assert_eq!(route_of(&g, "/API/x").as_deref(), Ok("api"));
    assert_eq!(route_of(&g, "/v1./x").as_deref(), Ok("dotted"));
    // Two routes the document tells apart by case each keep their own path.
    assert_eq!(route_of(&g, "/Docs").as_deref(), Ok("docs-upper"));
    assert_eq!(route_of(&g, "/docs").as_deref(), Ok("docs"));
    // Other spellings reach the catch-all, yet fold onto those routes.
    for path in ["/api/x", "/Api/x", "/DOCS", "/v1/x", "/V1./x"] {
        assert_eq!(route_of(&g, path), ALIAS, "{path}");
    }
}

#[test]
fn a_trailing_slash_does_not_slip_past_a_route_whose_conditions_fail() {
    let g = gateway(
        r#", { "id": "ops", "path": "/ops", "upstream": "users", "auth": "none", "match": { "headers": { "x-tenant": "*" } } },
             { "id": "catch", "path": "/{*all}", "upstream": "users", "auth": "none" }"#,
    );
    assert_eq!(
        g.destination(&inbound("/ops/")),
        Err(GatewayError::BadPath(
            crate::path::PathError::AmbiguousTrailingSlash
        ))
    );
    // The same route on both spellings is not ambiguous.
    let same = gateway(
        r#", { "id": "dir", "path": "/d/{*rest}", "upstream": "users", "auth": "none", "methods": ["GET"] }"#,
    );
    assert!(same.destination(&inbound("/d/x/")).is_ok());
}

#[test]
fn forwarded_host_is_lower_case_and_keeps_the_port() {
    let g = gateway("");
    let mut i = inbound("/v1/users/1");
    i.host = "API.Example.com:8443";
    let trace = Trace::begin(&i, &mut IdGenerator::new([4; 32]), &TracingSpec::default());
    let r = routed(&g, &i);
    let edits = g.request_edits(&r, &i, &trace);
    assert!(edits
        .set
        .contains(&("x-forwarded-host".into(), "api.example.com:8443".into())));
}

#[test]
fn connection_tokens_cannot_remove_headers_a_cache_key_reads() {
    let g = gateway(
        r#", { "id": "cached", "path": "/cached", "upstream": "users", "auth": "none",
               "cache": { "ttl_s": 60, "vary": ["accept-language"] } }"#,
    );
    let mut i = inbound("/cached");
    i.connection = Some("accept-language, x-other");
    let trace = Trace::begin(&i, &mut IdGenerator::new([5; 32]), &TracingSpec::default());
    let r = routed(&g, &i);
    let edits = g.request_edits(&r, &i, &trace);
    // (and a `tracestate` without a `traceparent` belongs to no trace)
    assert_eq!(edits.remove, ["x-other", "tracestate"]);
}

/// A parameter that fills part of a segment can capture `..` from a canonical path: the
/// rewritten path would then climb upstream, so the request is refused, never forwarded.
#[test]
fn a_rewrite_never_forwards_a_dot_segment() {
    let g = gateway(
        r#", { "id": "img", "path": "/img/{name}.png", "upstream": "users",
               "rewrite": "/static/{name}/meta", "auth": "none" }"#,
    );
    // `..%20` is `..` to a Windows server, which drops trailing spaces.
    for path in [
        "/img/...png",
        "/img/%2E%2E.png",
        "/img/..png",
        "/img/..%20.png",
        "/img/.%20.png",
    ] {
        match g.destination(&inbound(path)) {
            Err(GatewayError::BadPath(crate::path::PathError::DotSegmentInRewrite)) => {}
            other => panic!("{path}: {other:?}"),
        }
    }
    let ok = routed(&g, &inbound("/img/logo.png"));
    assert_eq!(ok.upstream_path, "/static/logo/meta");
    // A dot inside a segment is no dot segment.
    let ok = routed(&g, &inbound("/img/a..b.png"));
    assert_eq!(ok.upstream_path, "/static/a..b/meta");
}

/// Nearly every server decodes `%3A`, `%24`, `%40` and the other escaped sub-delimiters before
/// it matches a path, while the canonical path keeps them escaped (RFC 3986 does not call them
/// equivalent): such a spelling of another route's path is as ambiguous as `/ADMIN`.
#[test]
fn an_escaped_sub_delimiter_that_decodes_onto_another_route_is_refused() {
    let g = gateway(
        r#", { "id": "admin", "path": "/admin", "upstream": "users", "auth": "none", "methods": ["GET"] },
             { "id": "cancel", "path": "/jobs/{id}:cancel", "upstream": "users", "auth": "none", "methods": ["GET"] },
             { "id": "meta", "path": "/odata/$metadata", "upstream": "users", "auth": "none", "methods": ["GET"] },
             { "id": "me", "path": "/u/@me", "upstream": "users", "auth": "none", "methods": ["GET"] },
             { "id": "catch", "path": "/{*all}", "upstream": "users", "auth": "none" }"#,
    );
    for path in [
        "/admin::%24DATA",
        "/admin%3A%3A$DATA",
        "/admin%3a%3a%24data",
        "/jobs/1%3Acancel",
        "/jobs/1%3ACANCEL",
        "/odata/%24metadata",
        "/u/%40me",
    ] {
        assert_eq!(route_of(&g, path), ALIAS, "{path}");
    }
    // The route's own spellings, and escapes that decode onto the route they reach, pass.
    for (path, route) in [
        ("/jobs/1:cancel", "cancel"),
        ("/jobs/a%40b:cancel", "cancel"),
        ("/u/%40you", "catch"),
        ("/odata/%24other", "catch"),
        ("/a%2Bb%3Dc", "catch"),
    ] {
        assert_eq!(route_of(&g, path).as_deref(), Ok(route), "{path}");
    }
}

/// A staff-only route chosen by a condition beside a public route on the same path: a request
/// that some readers take as meeting the condition (the first of repeated parameters, the
/// first of repeated headers, a `;`-split query, a name in another case, as ASP.NET reads
/// names) must not reach the public route, whose upstream may read it as the staff request.
#[test]
fn a_request_that_meets_a_condition_under_some_reading_never_reaches_the_fallback() {
    let g = gateway(
        r#", { "id": "export", "path": "/reports", "upstream": "users", "auth": "none",
               "match": { "query": { "format": "csv" } } },
             { "id": "ops", "path": "/ops", "upstream": "users", "auth": "none",
               "match": { "headers": { "x-mode": "admin" } } },
             { "id": "ops-public", "path": "/ops", "upstream": "users", "auth": "none", "methods": ["GET"] },
             { "id": "reports", "path": "/reports", "upstream": "users", "auth": "none", "methods": ["GET"] }"#,
    );
    let names = g.match_headers().to_vec();
    let at = |path: &'static str, query: Option<&'static str>, mode: Option<&str>| {
        let values: Vec<Option<String>> = names
            .iter()
            .map(|n| (n == "x-mode").then(|| mode.map(str::to_owned)).flatten())
            .collect();
        let mut i = inbound(path);
        i.query = query;
        i.match_headers = &values;
        g.destination(&i).map(|d| match d {
            Destination::Route(r) => g.route(r.route).id.clone(),
            Destination::Admin { rest } => rest,
        })
    };
    assert_eq!(
        at("/reports", Some("format=csv"), None).as_deref(),
        Ok("export")
    );
    assert_eq!(
        at("/reports", Some("format=html"), None).as_deref(),
        Ok("reports")
    );
    assert_eq!(at("/reports", None, None).as_deref(), Ok("reports"));
    assert_eq!(at("/ops", None, Some("admin")).as_deref(), Ok("ops"));
    assert_eq!(at("/ops", None, Some("user")).as_deref(), Ok("ops-public"));
    assert_eq!(
        at("/ops", None, Some("administrator")).as_deref(),
        Ok("ops-public")
    );
    let ambiguous = Err(GatewayError::BadRequest(
        crate::router::AMBIGUOUS_CONDITIONS,
    ));
    for query in [
        "format=csv&format=html",
        "format=html&format=csv",
        "a=1;format=csv",
        "format=csv;x",
        "FORMAT=csv",
        "Format=csv&format=html",
    ] {
        assert_eq!(at("/reports", Some(query), None), ambiguous, "{query}");
    }
    for mode in ["admin, user", "user,admin", "user , admin"] {
        assert_eq!(at("/ops", None, Some(mode)), ambiguous, "{mode}");
    }
}

/// ASP.NET Core routes with `OrdinalIgnoreCase`, which upper-cases every letter (`ſ` is `S`
/// to it, `Ä` is `ä`), and NTFS compares names through its upper-case table: a non-ASCII
/// spelling of another route's path is as ambiguous as `/ADMIN`.
#[test]
fn a_non_ascii_letter_in_another_case_that_reaches_another_route_is_refused() {
    let g = gateway(
        r#", { "id": "secret", "path": "/secret", "upstream": "users", "auth": "none", "methods": ["GET"] },
             { "id": "aerger", "path": "/%C3%A4rger", "upstream": "users", "auth": "none", "methods": ["GET"] },
             { "id": "catch", "path": "/{*all}", "upstream": "users", "auth": "none" }"#,
    );
    for path in [
        "/%C5%BFecret",
        "/ſecret",
        "/%C3%84rger",
        "/Ärger",
        "/%C3%84RGER",
    ] {
        assert_eq!(route_of(&g, path), ALIAS, "{path}");
    }
    for (path, route) in [
        ("/%C3%A4rger", "aerger"),
        ("/secret", "secret"),
        ("/%C3%B6l", "catch"),
        ("/%C3%96L", "catch"),
        ("/%E2%84%AA", "catch"),
    ] {
        assert_eq!(route_of(&g, path).as_deref(), Ok(route), "{path}");
    }
}
