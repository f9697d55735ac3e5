use crate::cache::rules::NotStored;
use crate::cache::status::{cache_status, CacheOutcome};

#[test]
fn cache_status_strings() {
    let cases: &[(CacheOutcome, Option<i64>, &str)] = &[
        (CacheOutcome::Hit, Some(42), "edge-gateway; hit; ttl=42"),
        (CacheOutcome::Hit, None, "edge-gateway; hit"),
        (CacheOutcome::Hit, Some(0), "edge-gateway; hit; ttl=0"),
        (
            CacheOutcome::Miss {
                stored: true,
                reason: None,
            },
            None,
            "edge-gateway; fwd=miss; stored",
        ),
        (
            CacheOutcome::Miss {
                stored: true,
                reason: None,
            },
            Some(60),
            "edge-gateway; fwd=miss; ttl=60; stored",
        ),
        (
            CacheOutcome::Miss {
                stored: false,
                reason: Some("private"),
            },
            Some(60),
            "edge-gateway; fwd=miss; detail=\"private\"",
        ),
        (
            CacheOutcome::Miss {
                stored: false,
                reason: None,
            },
            None,
            "edge-gateway; fwd=miss",
        ),
        (
            CacheOutcome::Stale {
                served_because: "upstream-error",
            },
            Some(-30),
            "edge-gateway; fwd=stale; ttl=-30; detail=\"upstream-error\"",
        ),
        (
            CacheOutcome::Stale {
                served_because: "timeout",
            },
            None,
            "edge-gateway; fwd=stale; detail=\"timeout\"",
        ),
        (
            CacheOutcome::Revalidated { stored: true },
            Some(60),
            "edge-gateway; fwd=stale; fwd-status=304; ttl=60; stored",
        ),
        (
            CacheOutcome::Revalidated { stored: false },
            None,
            "edge-gateway; fwd=stale; fwd-status=304",
        ),
        (
            CacheOutcome::Bypass("method"),
            Some(5),
            "edge-gateway; fwd=bypass; detail=\"method\"",
        ),
        (
            CacheOutcome::Bypass("a\"b\\c\u{e9}\n"),
            None,
            "edge-gateway; fwd=bypass; detail=\"a\\\"b\\\\c??\"",
        ),
        (
            CacheOutcome::Hit,
            Some(i64::MAX),
            "edge-gateway; hit; ttl=999999999999999",
        ),
        (
            CacheOutcome::Hit,
            Some(i64::MIN),
            "edge-gateway; hit; ttl=-999999999999999",
        ),
    ];
    for (outcome, ttl, want) in cases {
        assert_eq!(cache_status(outcome, *ttl), *want, "{outcome:?} {ttl:?}");
    }
}

#[test]
fn every_not_stored_reason_is_a_valid_detail() {
    let all = [
        NotStored::Method,
        NotStored::Status(500),
        NotStored::NoStore,
        NotStored::Private,
        NotStored::SetCookie,
        NotStored::VaryStar,
        NotStored::VaryNotKeyed("x-secret-header".into()),
        NotStored::Authorization,
        NotStored::TooLarge,
        NotStored::RequestNoStore,
        NotStored::ZeroLifetime,
    ];
    for reason in all {
        let s = cache_status(
            &CacheOutcome::Miss {
                stored: false,
                reason: Some(reason.reason()),
            },
            None,
        );
        assert_eq!(
            s,
            format!("edge-gateway; fwd=miss; detail=\"{}\"", reason.reason())
        );
        assert!(
            !s.contains("x-secret-header"),
            "no upstream data in the header"
        );
    }
}
