use crate::config::{MetricsIndex, MetricsSpec};
use crate::observe::metrics::*;
use crate::observe::trace::{SpanId, TraceId};
use crate::observe::{sample, CacheResult, Client, Completed, RateLimitResult, Source, Variant};

fn completed() -> Completed<'static> {
    Completed {
        ts_ms: 1,
        request_id: "req-1",
        trace_id: TraceId(7),
        span_id: SpanId(8),
        route: Some("get-user"),
        method: "GET",
        host: "API.example.com",
        path: "/v1/users/42",
        status: 503,
        code: Some("upstream_unavailable"),
        source: Source::Gateway,
        upstream: Some("users"),
        target: Some(2),
        attempts: 3,
        latency_ms: 120,
        upstream_latency_ms: Some(110),
        cache: Some(CacheResult::Stale),
        rate_limit: Some(RateLimitResult::Limited("per-ip")),
        consumer: Some("jwt/users-jwt/alice"),
        auth_scheme: Some("users-jwt"),
        variant: Some(Variant::Primary),
        config_digest: "sha256:0123456789abcdef",
        request_bytes: Some(100),
        response_bytes: Some(512),
        client: Client {
            colo: Some("FRA"),
            country: Some("DE"),
            ..Client::default()
        },
        ..Completed::default()
    }
}

fn spec(index: MetricsIndex, sample_rate: f64) -> MetricsSpec {
    MetricsSpec {
        index,
        sample_rate,
        ..MetricsSpec::default()
    }
}

#[test]
fn blobs_and_doubles_are_in_the_contracts_order() {
    let p = DataPoint::new(&completed(), &spec(MetricsIndex::Route, 0.25));
    assert_eq!(p.indexes, ["get-user".to_owned()]);
    assert_eq!(
        p.blobs,
        [
            "get-user",
            "GET",
            "5xx",
            "503",
            "gateway",
            "upstream_unavailable",
            "stale",
            "limited:per-ip",
            "users",
            "2",
            "jwt/users-jwt/alice",
            "api.example.com",
            "FRA",
            "DE",
            "primary",
            "sha256:0123456789abcdef",
        ]
    );
    assert_eq!(p.doubles, [503.0, 120.0, 110.0, 3.0, 100.0, 512.0, 4.0]);
    assert_eq!(p.blobs.len(), BLOBS.len());
    assert_eq!(p.doubles.len(), DOUBLES.len());
    assert!(p.blobs.len() <= MAX_SLOTS && p.doubles.len() <= MAX_SLOTS);
}

#[test]
fn the_json_is_what_write_data_point_takes() {
    let p = DataPoint::new(&completed(), &MetricsSpec::default());
    let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
    assert_eq!(v["indexes"], serde_json::json!(["get-user"]));
    assert_eq!(v["blobs"].as_array().unwrap().len(), 16);
    assert_eq!(v["doubles"][0], 503.0);
    assert_eq!(v["doubles"][6], 1.0, "sample factor at rate 1");
}

#[test]
fn whole_doubles_are_written_as_integers_and_fractions_exactly() {
    let p = DataPoint::new(&completed(), &spec(MetricsIndex::Route, 0.3));
    let text = p.to_json();
    assert!(
        text.contains("\"doubles\":[503,120,110,3,100,512,"),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let written: Vec<f64> = v["doubles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_f64().unwrap())
        .collect();
    assert_eq!(
        written, p.doubles,
        "every value reads back as the same number"
    );
    assert_eq!(written[6], 1.0 / 0.3);
}

#[test]
fn the_index_follows_its_mode_and_is_empty_when_unknown() {
    let c = completed();
    assert_eq!(
        DataPoint::new(&c, &spec(MetricsIndex::Consumer, 1.0)).indexes[0],
        "jwt/users-jwt/alice"
    );
    assert_eq!(
        DataPoint::new(&c, &spec(MetricsIndex::Host, 1.0)).indexes[0],
        "api.example.com"
    );
    let anonymous = Completed {
        route: None,
        consumer: None,
        ..completed()
    };
    assert_eq!(
        DataPoint::new(&anonymous, &spec(MetricsIndex::Route, 1.0)).indexes[0],
        ""
    );
    assert_eq!(
        DataPoint::new(&anonymous, &spec(MetricsIndex::Consumer, 1.0)).indexes[0],
        ""
    );
}

#[test]
fn absent_values_are_empty_blobs_and_zero_doubles() {
    let c = Completed {
        route: None,
        status: 404,
        code: Some("route_not_found"),
        upstream: None,
        target: None,
        attempts: 0,
        upstream_latency_ms: None,
        cache: None,
        rate_limit: None,
        consumer: None,
        variant: None,
        request_bytes: None,
        response_bytes: None,
        client: Client::default(),
        ..completed()
    };
    let p = DataPoint::new(&c, &MetricsSpec::default());
    assert_eq!(p.blobs[0], "");
    assert_eq!(p.blobs[2], "4xx");
    for i in [6, 7, 8, 9, 10, 12, 13, 14] {
        assert_eq!(p.blobs[i], "", "blob{}", i + 1);
    }
    assert_eq!(&p.doubles[2..6], [0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn analytics_engine_limits_hold_for_hostile_values() {
    let long = "é".repeat(5000) + "x";
    let host = format!("{}.example.com", "h".repeat(300));
    let c = Completed {
        route: Some(&long),
        consumer: Some(&long),
        host: &host,
        upstream: Some(&long),
        code: Some(&long),
        client: Client {
            colo: Some(&long),
            country: Some(&long),
            ..Client::default()
        },
        config_digest: &long,
        ..completed()
    };
    for index in [
        MetricsIndex::Route,
        MetricsIndex::Consumer,
        MetricsIndex::Host,
    ] {
        let p = DataPoint::new(&c, &spec(index, 1.0));
        assert!(
            p.indexes[0].len() <= MAX_INDEX_BYTES,
            "{}",
            p.indexes[0].len()
        );
        assert!(!p.indexes[0].is_empty());
        let total: usize = p.blobs.iter().map(|b| b.len()).sum();
        assert!(total <= 16_000, "{total}");
        assert!(p.blobs.iter().all(|b| b.len() <= MAX_BLOB_BYTES));
        // Cut at character boundaries: still the value's prefix.
        assert!(long.starts_with(p.blobs[0].as_ref()));
        assert!(p.doubles.iter().all(|d| d.is_finite()));
    }
    assert_eq!(cut("ééé", 5), "éé");
    assert_eq!(cut("ééé", 1), "");
    assert_eq!(cut("abc", 96), "abc");
}

#[test]
fn status_classes() {
    for (status, class) in [
        (101, "1xx"),
        (204, "2xx"),
        (308, "3xx"),
        (429, "4xx"),
        (599, "5xx"),
        (600, "other"),
    ] {
        let c = Completed {
            status,
            ..completed()
        };
        assert_eq!(DataPoint::new(&c, &MetricsSpec::default()).blobs[2], class);
    }
}

#[test]
fn sampling_and_the_route_switch_decide_whether_a_point_is_written() {
    let half = spec(MetricsIndex::Route, 0.5);
    let t = sample::threshold(0.5);
    let with = |key| Completed {
        sample_key: key,
        ..completed()
    };
    assert!(should_write(&with(t), &half, true));
    assert!(!should_write(&with(t - 1), &half, true));
    assert!(
        !should_write(&with(t), &half, false),
        "route metrics: false"
    );
    assert!(should_write(&with(0), &MetricsSpec::default(), true));
    assert!(!should_write(
        &with(u64::MAX),
        &spec(MetricsIndex::Route, 0.0),
        true
    ));
    assert_eq!(DataPoint::new(&with(t), &half).doubles[6], 2.0);
}
