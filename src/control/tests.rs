//! The control plane on the host: pushes and rollbacks against an in-memory KV that fails on
//! demand, the precondition, last-good resolution, the diff and `explain`.

use super::diff::{diff, render};
use super::explain::{explain, render as render_explain, Explanation};
use super::history::{self, HistoryEntry};
use super::store::{version_key, ConfigKv, KvError, HISTORY_KEY, LAST_GOOD_KEY, ROUTES_KEY};
use super::*;
use crate::config::Json;
use crate::gateway::Gateway;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Runs a future whose awaits all complete at once (the fake KV never waits).
fn run<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the fake KV never pends"),
    }
}

/// KV in memory; `fail_put`/`fail_get` make operations on those keys fail; `writes` records
/// the order of successful writes.
#[derive(Default)]
struct MemoryKv {
    map: RefCell<BTreeMap<String, String>>,
    fail_put: RefCell<Vec<String>>,
    fail_get: RefCell<Vec<String>>,
    writes: RefCell<Vec<String>>,
}

impl MemoryKv {
    fn with(entries: &[(&str, &str)]) -> MemoryKv {
        let kv = MemoryKv::default();
        for (k, v) in entries {
            kv.map.borrow_mut().insert((*k).into(), (*v).into());
        }
        kv
    }
    fn value(&self, key: &str) -> Option<String> {
        self.map.borrow().get(key).cloned()
    }
    fn fail_put(&self, key: &str) {
        self.fail_put.borrow_mut().push(key.into());
    }
    fn heal(&self) {
        self.fail_put.borrow_mut().clear();
        self.fail_get.borrow_mut().clear();
    }
}

impl ConfigKv for MemoryKv {
    async fn get(&self, key: &str) -> Result<Option<String>, KvError> {
        if self.fail_get.borrow().iter().any(|k| k == key) {
            return Err(KvError(format!("injected read failure of {key}")));
        }
        Ok(self.value(key))
    }
    async fn put(&self, key: &str, value: &str) -> Result<(), KvError> {
        // `routes@` fails every version copy; any other name fails that key only.
        let fail = self
            .fail_put
            .borrow()
            .iter()
            .any(|k| key == k || (k.ends_with('@') && key.starts_with(k.as_str())));
        if fail {
            return Err(KvError(format!("injected write failure of {key}")));
        }
        self.writes.borrow_mut().push(key.into());
        self.map.borrow_mut().insert(key.into(), value.into());
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<(), KvError> {
        if self.fail_put.borrow().iter().any(|k| k == "delete") {
            return Err(KvError(format!("injected delete failure of {key}")));
        }
        self.writes.borrow_mut().push(format!("delete {key}"));
        self.map.borrow_mut().remove(key);
        Ok(())
    }
}

const EMBEDDED: &str = r#"{"version":1,"upstreams":{"u":{"targets":[{"url":"http://127.0.0.1:1"}]}},"routes":[{"id":"embedded","path":"/embedded","upstream":"u","auth":"none"}]}"#;

fn doc(route: &str) -> String {
    format!(
        r#"{{"version":1,"upstreams":{{"u":{{"targets":[{{"url":"https://u.example/base"}}]}}}},"routes":[{{"id":"{route}","path":"/{route}/{{id}}","upstream":"u","rewrite":"/x/{{id}}","auth":"none"}}]}}"#
    )
}

fn push_req<'a>(text: &'a str, if_match: Option<&'a str>, at_ms: u64) -> PushRequest<'a> {
    PushRequest {
        text,
        if_match,
        note: Some("test"),
        at_ms,
    }
}

fn tag(text: &str) -> String {
    etag(&document_digest(text))
}

#[test]
fn digests_are_full_sha256_and_etags_quote_them() {
    let d = document_digest("abc");
    assert_eq!(
        d,
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(etag(&d), format!("\"{d}\""));
    assert!(d.starts_with(&crate::hex::short_digest(b"abc")));
}

#[test]
fn if_match_uses_strong_comparison_over_a_list() {
    let d = document_digest("x");
    assert_eq!(precondition(None, &d), Precondition::Missing);
    assert_eq!(precondition(Some("  "), &d), Precondition::Missing);
    assert_eq!(precondition(Some("*"), &d), Precondition::Holds);
    assert_eq!(precondition(Some(&etag(&d)), &d), Precondition::Holds);
    assert_eq!(precondition(Some(&d), &d), Precondition::Holds, "unquoted");
    let list = format!("\"sha256:00\", {}", etag(&d));
    assert_eq!(precondition(Some(&list), &d), Precondition::Holds);
    assert_eq!(
        precondition(Some(&format!("W/{}", etag(&d))), &d),
        Precondition::Stale,
        "a weak tag never matches"
    );
    let other = etag(&document_digest("y"));
    assert_eq!(precondition(Some(&other), &d), Precondition::Stale);
    // A well-formed tag that matches nothing is stale, as HTTP prescribes, even one no
    // version could have.
    let short = format!("\"{}\"", &d[..20]);
    for value in ["\"sha256:00\"", "\"\"", "\"v1\"", short.as_str()] {
        assert_eq!(
            precondition(Some(value), &d),
            Precondition::Stale,
            "{value}"
        );
    }
    // Text that is no entity tag at all says nothing about the version: bad input.
    for value in [
        "latest",
        "sha256:zz",
        "sha256:zz, \"v1\"",
        "\"unterminated",
        "\"a b\"",
    ] {
        assert_eq!(
            precondition(Some(value), &d),
            Precondition::Malformed,
            "{value}"
        );
    }
    assert_eq!(
        precondition(Some(&format!("\"v1\", {other}")), &d),
        Precondition::Stale
    );
}

#[test]
fn a_push_or_rollback_whose_if_match_is_no_entity_tag_is_bad_input_not_a_conflict() {
    let (old, new) = (doc("old"), doc("new"));
    let kv = MemoryKv::with(&[(ROUTES_KEY, &old)]);
    for value in ["latest", "sha256:1234", "2024-01-01"] {
        let e = run(push(&kv, None, &push_req(&new, Some(value), 1), EMBEDDED)).unwrap_err();
        let (status, code, detail) = answer(e);
        assert_eq!((status, code), (400, "bad_request"), "{value}: {detail}");
        assert_eq!(detail, IF_MATCH_RULE);
    }
    run(push(&kv, None, &push_req(&new, Some("*"), 1), EMBEDDED)).unwrap();
    let e = run(rollback(
        &kv,
        None,
        &document_digest(&new),
        Some("abc"),
        2,
        EMBEDDED,
    ))
    .unwrap_err();
    assert_eq!(e, PushError::BadIfMatch);
    assert_eq!(kv.writes.borrow().len(), 4, "only the one push was written");
}

#[test]
fn a_version_named_on_the_command_line_is_an_if_match_that_can_hold() {
    let d = document_digest("x");
    let holds = |given: &str| {
        let value = if_match_for(given).unwrap_or_else(|| panic!("{given:?} refused"));
        precondition(Some(&value), &d)
    };
    // `*` went out as "\"*\"", an entity tag no version has: a push over any version was a
    // conflict (exit 3, "the configuration changed since it was read").
    assert_eq!(holds("*"), Precondition::Holds);
    for given in [
        d.clone(),
        etag(&d),
        d.to_ascii_uppercase().replace("SHA256", "sha256"),
    ] {
        assert_eq!(holds(&given), Precondition::Holds, "{given}");
    }
    assert_eq!(
        holds(&d["sha256:".len()..]),
        Precondition::Holds,
        "bare hex"
    );
    assert_eq!(holds(&document_digest("y")), Precondition::Stale);
    // What names no version is refused before anything is sent, not reported as a conflict.
    for given in ["", "abc", &d[..20], "sha256:xyz", "W/\"sha256:00\""] {
        assert_eq!(if_match_for(given), None, "{given:?}");
    }
}

#[test]
fn a_push_writes_version_history_last_good_then_routes() {
    let old = doc("old");
    let kv = MemoryKv::with(&[(ROUTES_KEY, &old)]);
    let new = doc("new");
    let pushed = run(push(
        &kv,
        None,
        &push_req(&new, Some(&tag(&old)), 1000),
        EMBEDDED,
    ))
    .unwrap();
    let d = document_digest(&new);
    assert_eq!(pushed.digest, d);
    assert_eq!(pushed.previous, document_digest(&old));
    assert!(pushed.changed);
    assert_eq!(
        *kv.writes.borrow(),
        vec![
            version_key(&d),
            HISTORY_KEY.into(),
            LAST_GOOD_KEY.into(),
            ROUTES_KEY.into()
        ]
    );
    assert_eq!(kv.value(ROUTES_KEY).as_deref(), Some(new.as_str()));
    assert_eq!(kv.value(LAST_GOOD_KEY).as_deref(), Some(new.as_str()));
    assert_eq!(kv.value(&version_key(&d)).as_deref(), Some(new.as_str()));
    let h = history::parse(kv.value(HISTORY_KEY).as_deref()).unwrap();
    assert_eq!(
        h,
        vec![HistoryEntry {
            digest: d.clone(),
            at_ms: 1000,
            size: new.len() as u64,
            note: Some("test".into())
        }]
    );
    let lock = pushed.lock.unwrap();
    assert_eq!((lock.current.as_str(), lock.at_ms), (d.as_str(), 1000));
}

#[test]
fn a_push_needs_a_current_if_match() {
    let old = doc("old");
    let kv = MemoryKv::with(&[(ROUTES_KEY, &old)]);
    let new = doc("new");
    let current = document_digest(&old);
    assert_eq!(
        run(push(&kv, None, &push_req(&new, None, 1), EMBEDDED)),
        Err(PushError::PreconditionRequired {
            current: current.clone()
        })
    );
    assert_eq!(
        run(push(
            &kv,
            None,
            &push_req(&new, Some(&tag("another version")), 1),
            EMBEDDED
        )),
        Err(PushError::Stale { current })
    );
    assert!(kv.writes.borrow().is_empty(), "nothing written");
    assert!(run(push(&kv, None, &push_req(&new, Some("*"), 1), EMBEDDED)).is_ok());
}

#[test]
fn with_nothing_in_kv_the_embedded_document_is_current() {
    let kv = MemoryKv::default();
    let new = doc("new");
    assert!(run(push(
        &kv,
        None,
        &push_req(&new, Some(&tag(EMBEDDED)), 1),
        EMBEDDED
    ))
    .is_ok());
}

#[test]
fn two_pushes_from_the_same_version_one_wins_the_other_is_stale() {
    let old = doc("old");
    let kv = MemoryKv::with(&[(ROUTES_KEY, &old)]);
    let (a, b) = (doc("a"), doc("b"));
    let seen = tag(&old);
    let first = run(push(&kv, None, &push_req(&a, Some(&seen), 1), EMBEDDED)).unwrap();
    let second = run(push(
        &kv,
        first.lock.as_ref(),
        &push_req(&b, Some(&seen), 2),
        EMBEDDED,
    ));
    assert_eq!(
        second,
        Err(PushError::Stale {
            current: document_digest(&a)
        })
    );
    assert_eq!(kv.value(ROUTES_KEY).as_deref(), Some(a.as_str()));
}

#[test]
fn a_kv_read_that_still_shows_the_replaced_version_is_not_taken_for_current() {
    let (old, new) = (doc("old"), doc("new"));
    let lock = LockRecord {
        current: document_digest(&new),
        replaced: vec![document_digest(&old)],
        at_ms: 10_000,
    };
    // KV (eventually consistent) still answers with the old document.
    let kv = MemoryKv::with(&[(ROUTES_KEY, &old)]);
    let other = doc("other");
    let stale = run(push(
        &kv,
        Some(&lock),
        &push_req(&other, Some(&tag(&old)), 20_000),
        EMBEDDED,
    ));
    assert_eq!(
        stale,
        Err(PushError::Stale {
            current: document_digest(&new)
        })
    );
    assert!(run(push(
        &kv,
        Some(&lock),
        &push_req(&other, Some(&tag(&new)), 20_000),
        EMBEDDED
    ))
    .is_ok());
    // Past the propagation delay what KV shows is current (say a hand-written document).
    assert_eq!(
        push::effective_current(&document_digest(&old), Some(&lock), 80_000),
        document_digest(&old)
    );
}

#[test]
fn a_kv_read_two_pushes_behind_is_not_taken_for_current_either() {
    let (a, b, c) = (doc("a"), doc("b"), doc("c"));
    let kv = MemoryKv::with(&[(ROUTES_KEY, &a)]);
    let stale = |kv: &MemoryKv| kv.map.borrow_mut().insert(ROUTES_KEY.into(), a.clone());
    let first = run(push(
        &kv,
        None,
        &push_req(&b, Some(&tag(&a)), 1_000),
        EMBEDDED,
    ))
    .unwrap();
    // Two pushes a few seconds apart, KV still answering with `a` each time.
    stale(&kv);
    let second = run(push(
        &kv,
        first.lock.as_ref(),
        &push_req(&c, Some(&tag(&b)), 5_000),
        EMBEDDED,
    ))
    .unwrap();
    stale(&kv);
    let late = doc("late");
    let lost_update = run(push(
        &kv,
        second.lock.as_ref(),
        &push_req(&late, Some(&tag(&a)), 10_000),
        EMBEDDED,
    ));
    assert_eq!(
        lost_update,
        Err(PushError::Stale {
            current: document_digest(&c)
        })
    );
    let record = second.lock.unwrap();
    assert_eq!(
        record.replaced,
        vec![document_digest(&b), document_digest(&a)]
    );
    assert_eq!(
        LockRecord::from_line(&record.to_line()),
        Some(record.clone())
    );
    // A push a propagation delay after the one before starts the list anew.
    let kv = MemoryKv::with(&[(ROUTES_KEY, &c)]);
    let later = run(push(
        &kv,
        Some(&record),
        &push_req(&late, Some(&tag(&c)), 70_000),
        EMBEDDED,
    ))
    .unwrap();
    assert_eq!(later.lock.unwrap().replaced, vec![document_digest(&c)]);
}

#[test]
fn a_lock_record_that_cannot_be_read_refuses_the_push_rather_than_judging_by_kv_alone() {
    // What is at stake: KV still shows the version the lock replaced a moment ago, and a push
    // made from that version would pass a KV-only If-Match (a lost update).
    let (old, new) = (doc("old"), doc("new"));
    let kv = MemoryKv::with(&[(ROUTES_KEY, &old)]);
    let record = LockRecord {
        current: document_digest(&new),
        replaced: vec![document_digest(&old)],
        at_ms: 1000,
    };
    let late = doc("late");
    let stale_push = |lock: Option<&LockRecord>| {
        run(push(
            &kv,
            lock,
            &push_req(&late, Some(&tag(&old)), 2000),
            EMBEDDED,
        ))
    };
    assert!(matches!(
        stale_push(Some(&record)),
        Err(PushError::Stale { .. })
    ));
    assert!(stale_push(None).is_ok(), "without the record it would pass");
    // So a storage read that failed is a refusal (503, nothing changed), not "no record".
    let e = lock_record(Err("storage unavailable".into())).unwrap_err();
    assert!(matches!(e, PushError::Read(_)), "{e:?}");
    assert_eq!(answer(e).1, "config_store_unavailable");
    assert_eq!(lock_record(Ok(None)), Ok(None));
    assert_eq!(lock_record(Ok(Some(record.to_line()))), Ok(Some(record)));
    // A line this version cannot read protects nothing; it must not block pushes for good.
    assert_eq!(lock_record(Ok(Some("garbage".into()))), Ok(None));
}

#[test]
fn invalid_and_oversized_documents_are_refused_before_any_read_or_write() {
    let kv = MemoryKv::default();
    kv.fail_get.borrow_mut().push(ROUTES_KEY.into());
    let Err(PushError::Invalid(errors)) = run(push(
        &kv,
        None,
        &push_req(r#"{"version":1,"routes":[{"id":"x"}]}"#, Some("*"), 1),
        EMBEDDED,
    )) else {
        panic!("expected Invalid");
    };
    assert!(
        errors.iter().any(|e| e.message.contains("\"upstreams\"")),
        "{errors:?}"
    );
    let Err(PushError::Invalid(errors)) =
        run(push(&kv, None, &push_req("{nope", Some("*"), 1), EMBEDDED))
    else {
        panic!("expected Invalid");
    };
    assert!(errors[0].message.starts_with("invalid JSON"), "{errors:?}");
    let big = format!("{}{}", doc("big"), " ".repeat(MAX_DOCUMENT_BYTES as usize));
    assert_eq!(
        run(push(&kv, None, &push_req(&big, Some("*"), 1), EMBEDDED)),
        Err(PushError::TooLarge {
            limit: MAX_DOCUMENT_BYTES
        })
    );
    assert!(kv.writes.borrow().is_empty());
}

#[test]
fn each_kv_write_failure_leaves_routes_pointing_at_a_complete_valid_document() {
    let old = doc("old");
    let new = doc("new");
    let d = document_digest(&new);
    for (failing, stage) in [
        ("routes@", WriteStage::Version),
        (HISTORY_KEY, WriteStage::History),
        (LAST_GOOD_KEY, WriteStage::LastGood),
        (ROUTES_KEY, WriteStage::Routes),
    ] {
        let kv = MemoryKv::with(&[(ROUTES_KEY, &old)]);
        kv.fail_put(failing);
        let result = run(push(
            &kv,
            None,
            &push_req(&new, Some(&tag(&old)), 5),
            EMBEDDED,
        ));
        let Err(PushError::Write { stage: got, .. }) = result else {
            panic!("{failing}: expected a write failure, got {result:?}");
        };
        assert_eq!(got, stage, "{failing}");
        assert_eq!(
            kv.value(ROUTES_KEY).as_deref(),
            Some(old.as_str()),
            "{failing}: unchanged"
        );
        let routes = kv.value(ROUTES_KEY).unwrap();
        assert!(
            Gateway::compile(&routes).is_ok(),
            "{failing}: routes is valid"
        );
        // Every version the history names is stored.
        for e in history::parse(kv.value(HISTORY_KEY).as_deref()).unwrap() {
            assert!(
                kv.value(&version_key(&e.digest)).is_some(),
                "{failing}: {e:?}"
            );
        }
        // A retry once KV works again completes the push, recording the version once.
        kv.heal();
        run(push(
            &kv,
            None,
            &push_req(&new, Some(&tag(&old)), 6),
            EMBEDDED,
        ))
        .unwrap();
        assert_eq!(
            kv.value(ROUTES_KEY).as_deref(),
            Some(new.as_str()),
            "{failing}"
        );
        let h = history::parse(kv.value(HISTORY_KEY).as_deref()).unwrap();
        assert_eq!(
            h.iter().filter(|e| e.digest == d).count(),
            1,
            "{failing}: {h:?}"
        );
        assert!(!stage.consequence().is_empty());
    }
}

#[test]
fn pushing_the_current_document_writes_nothing() {
    let old = doc("old");
    let kv = MemoryKv::with(&[(ROUTES_KEY, &old)]);
    let pushed = run(push(
        &kv,
        None,
        &push_req(&old, Some(&tag(&old)), 1),
        EMBEDDED,
    ))
    .unwrap();
    assert!(!pushed.changed);
    assert!(pushed.lock.is_none());
    assert!(kv.writes.borrow().is_empty());
}

#[test]
fn rollback_makes_a_history_version_current_again() {
    let kv = MemoryKv::default();
    let (a, b) = (doc("a"), doc("b"));
    let first = run(push(&kv, None, &push_req(&a, Some("*"), 1), EMBEDDED)).unwrap();
    run(push(
        &kv,
        first.lock.as_ref(),
        &push_req(&b, Some(&tag(&a)), 2),
        EMBEDDED,
    ))
    .unwrap();
    let da = document_digest(&a);
    // By a prefix, as `gatewayctl history` shows it.
    let back = run(rollback(&kv, None, &da[..20], None, 3, EMBEDDED)).unwrap();
    assert_eq!(back.digest, da);
    assert_eq!(back.previous, document_digest(&b));
    assert_eq!(kv.value(ROUTES_KEY).as_deref(), Some(a.as_str()));
    assert_eq!(kv.value(LAST_GOOD_KEY).as_deref(), Some(a.as_str()));
    let h = history::parse(kv.value(HISTORY_KEY).as_deref()).unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(
        h[0].note.as_deref(),
        Some(format!("rollback to {da}").as_str())
    );
    // Unknown, too short, ambiguous-free garbage; a stale If-Match.
    assert_eq!(
        run(rollback(&kv, None, "sha256:0000000000", None, 4, EMBEDDED)),
        Err(PushError::UnknownDigest)
    );
    assert_eq!(
        run(rollback(&kv, None, "sha256:12", None, 4, EMBEDDED)),
        Err(PushError::BadDigest),
        "too short to name a version: bad input, not an unknown version"
    );
    assert!(matches!(
        run(rollback(
            &kv,
            None,
            &document_digest(&b),
            Some(&tag("another version")),
            4,
            EMBEDDED
        )),
        Err(PushError::Stale { .. })
    ));
}

#[test]
fn rollback_refuses_a_version_whose_copy_is_missing_or_no_longer_valid() {
    let bad = r#"{"version":1}"#;
    let db = document_digest(bad);
    let entry = |d: &str| HistoryEntry {
        digest: d.into(),
        at_ms: 1,
        size: 1,
        note: None,
    };
    let index = history::to_text(&[entry(&db), entry(&document_digest("gone"))]);
    let kv = MemoryKv::with(&[(HISTORY_KEY, &index), (&version_key(&db), bad)]);
    assert!(matches!(
        run(rollback(&kv, None, &db, None, 2, EMBEDDED)),
        Err(PushError::Invalid(_))
    ));
    // Listed, with no copy: not an unknown digest (the history knows it), but a missing copy.
    assert_eq!(
        run(rollback(
            &kv,
            None,
            &document_digest("gone"),
            None,
            2,
            EMBEDDED
        )),
        Err(PushError::CopyMissing(document_digest("gone")))
    );
    assert!(kv.writes.borrow().is_empty());
}

#[test]
fn a_rollback_to_a_listed_version_whose_copy_is_missing_or_another_text_is_not_an_unknown_digest() {
    let (a, b) = (doc("a"), doc("b"));
    let (da, db) = (document_digest(&a), document_digest(&b));
    let index = history::to_text(&[filed(&b, 2), filed(&a, 1)]);
    // routes@<a> holds b's text (a copy written over by hand): it is not version a.
    let kv = MemoryKv::with(&[
        (ROUTES_KEY, &b),
        (HISTORY_KEY, &index),
        (&version_key(&da), &b),
    ]);
    let e = run(rollback(&kv, None, &da[..16], None, 3, EMBEDDED)).unwrap_err();
    assert_eq!(
        e,
        PushError::CopyCorrupt {
            digest: da.clone(),
            actual: db.clone()
        }
    );
    let (status, code, detail) = answer(e.clone());
    assert_eq!((status, code), (409, "history_copy_corrupt"), "{detail}");
    assert!(detail.contains(&format!("routes@{da}")), "{detail}");
    assert!(
        detail.contains(&db) && detail.contains("nothing changed"),
        "{detail}"
    );
    let body: serde_json::Value =
        serde_json::from_str(&crate::error::GatewayError::from(e).body("r")).unwrap();
    assert_eq!(body["digest"], da.as_str());
    // Its copy deleted: missing, named by its full digest.
    kv.map.borrow_mut().remove(&version_key(&da));
    let e = run(rollback(&kv, None, &da, None, 3, EMBEDDED)).unwrap_err();
    let (status, code, detail) = answer(e);
    assert_eq!((status, code), (409, "history_copy_missing"), "{detail}");
    assert!(
        detail.contains(&format!("routes@{da} is missing")),
        "{detail}"
    );
    assert!(kv.writes.borrow().is_empty(), "nothing changed");
    // A digest the history does not list is still 404.
    let e = run(rollback(
        &kv,
        None,
        &document_digest("other"),
        None,
        3,
        EMBEDDED,
    ))
    .unwrap_err();
    assert_eq!(answer(e).1, "config_version_not_found");
}

/// The answer a refused rollback gets: status, code and detail, as the client reads them.
fn answer(e: PushError) -> (u16, &'static str, String) {
    let e = crate::error::GatewayError::from(e);
    (e.status(), e.code(), e.detail())
}

#[test]
fn a_rollback_over_a_corrupt_history_index_says_the_index_is_corrupt_not_that_kv_failed() {
    // KV answers; what it holds under routes:history is not an index (a hand edit cut short).
    let a = doc("a");
    let broken = r#"[{"digest":"sha256:00","at_ms":1,"size":1,"note":null},"#;
    let kv = MemoryKv::with(&[(ROUTES_KEY, &a), (HISTORY_KEY, broken)]);
    let e = run(rollback(&kv, None, &document_digest(&a), None, 2, EMBEDDED)).unwrap_err();
    assert!(matches!(e, PushError::HistoryUnreadable(_)), "{e:?}");
    let (status, code, detail) = answer(e);
    assert_eq!((status, code), (409, "history_unreadable"), "{detail}");
    assert!(detail.contains(HISTORY_KEY), "names the key: {detail}");
    assert!(
        detail.contains("line 1 column"),
        "the parse error: {detail}"
    );
    assert!(detail.contains("nothing changed"), "{detail}");
    assert!(!detail.contains("could not be read"), "{detail}");
    assert!(kv.writes.borrow().is_empty());
    // Valid JSON that is no index (an entry without its size) is the same.
    let kv = MemoryKv::with(&[
        (ROUTES_KEY, &a),
        (HISTORY_KEY, r#"[{"digest":"sha256:00"}]"#),
    ]);
    let e = run(rollback(&kv, None, "sha256:00000000", None, 2, EMBEDDED)).unwrap_err();
    assert_eq!(answer(e).1, "history_unreadable");
    // A KV read that fails is still the store's failure.
    let kv = MemoryKv::with(&[(ROUTES_KEY, &a)]);
    kv.fail_get.borrow_mut().push(HISTORY_KEY.into());
    let e = run(rollback(&kv, None, &document_digest(&a), None, 2, EMBEDDED)).unwrap_err();
    assert_eq!(answer(e).1, "config_store_unavailable");
}

#[test]
fn the_history_listing_of_a_corrupt_index_says_the_index_is_corrupt_not_that_kv_failed() {
    assert_eq!(history::listing(None), Ok("[]".to_owned()));
    let index = history::to_text(&[filed(&doc("a"), 1)]);
    assert_eq!(history::listing(Some(index.clone())), Ok(index));
    for broken in ["[{", "{}", r#"[{"digest":"sha256:00"}]"#] {
        let e = history::listing(Some(broken.to_owned())).unwrap_err();
        let (status, code, detail) = answer(e);
        assert_eq!(
            (status, code),
            (409, "history_unreadable"),
            "{broken}: {detail}"
        );
        assert!(
            detail.starts_with("routes:history is not a valid history index: "),
            "{detail}"
        );
    }
}

#[test]
fn a_rollback_to_something_that_is_not_a_digest_is_bad_input_not_an_unknown_version() {
    let a = doc("a");
    let kv = MemoryKv::default();
    run(push(&kv, None, &push_req(&a, Some("*"), 1), EMBEDDED)).unwrap();
    let full = document_digest(&a);
    let too_long = format!("{full}0");
    for wanted in [
        "",
        "sha256:",
        "sha256:1234567",
        "1234567",
        "sha256:zzzzzzzzzz",
        "main",
        "sha1:0123456789abcdef",
        too_long.as_str(),
    ] {
        let e = run(rollback(&kv, None, wanted, None, 2, EMBEDDED)).unwrap_err();
        let (status, code, detail) = answer(e);
        assert_eq!((status, code), (400, "bad_request"), "{wanted:?}: {detail}");
        assert_eq!(detail, history::DIGEST_RULE);
    }
    // The input is judged before the store: a malformed digest over a corrupt index is 400.
    kv.map.borrow_mut().insert(HISTORY_KEY.into(), "[".into());
    let e = run(rollback(&kv, None, "nope", None, 2, EMBEDDED)).unwrap_err();
    assert_eq!(e, PushError::BadDigest);
    // Well formed and unlisted is still 404; a listed prefix still works.
    kv.map
        .borrow_mut()
        .insert(HISTORY_KEY.into(), history::to_text(&[filed(&a, 1)]));
    let e = run(rollback(&kv, None, "sha256:00000000", None, 2, EMBEDDED)).unwrap_err();
    assert_eq!(answer(e).1, "config_version_not_found");
    assert!(run(rollback(&kv, None, &full[..15], None, 2, EMBEDDED)).is_ok());
}

#[test]
fn copies_of_versions_that_fall_off_the_history_are_deleted_once_the_push_is_current() {
    let kv = MemoryKv::default();
    let docs: Vec<String> = (0..history::HISTORY_CAP + 2)
        .map(|i| doc(&format!("r{i}")))
        .collect();
    let mut current: Option<String> = None;
    let mut push_doc = |text: &str, at_ms: u64| {
        let if_match = current.clone().unwrap_or_else(|| tag(EMBEDDED));
        run(push(
            &kv,
            None,
            &push_req(text, Some(&if_match), at_ms),
            EMBEDDED,
        ))
        .unwrap();
        current = Some(tag(text));
    };
    // The first version is pushed twice, far apart: its copy stays while the history names it.
    push_doc(&docs[0], 0);
    for (i, text) in docs.iter().enumerate().take(history::HISTORY_CAP).skip(1) {
        push_doc(text, i as u64);
    }
    push_doc(&docs[0], 1_000);
    let copies = |kv: &MemoryKv| {
        kv.map
            .borrow()
            .keys()
            .filter(|k| k.starts_with("routes@"))
            .count()
    };
    assert_eq!(
        copies(&kv),
        history::HISTORY_CAP,
        "every version is still named"
    );
    assert!(kv.value(&version_key(&document_digest(&docs[0]))).is_some());
    // Re-pushing docs[0] dropped its first entry, but a newer one names it: its copy stays.
    assert!(kv.value(&version_key(&document_digest(&docs[0]))).is_some());
    // The next push drops docs[1]: its copy goes, after `routes` was written.
    push_doc(&docs[history::HISTORY_CAP], 2_000);
    let gone = version_key(&document_digest(&docs[1]));
    assert!(kv.value(&gone).is_none());
    {
        let writes = kv.writes.borrow();
        let delete_at = writes.iter().position(|w| *w == format!("delete {gone}"));
        let routes_at = writes.iter().rposition(|w| w == ROUTES_KEY);
        assert!(
            matches!((routes_at, delete_at), (Some(r), Some(d)) if r < d),
            "deleted only once the new version is current"
        );
    }
    let entries = history::parse(kv.value(HISTORY_KEY).as_deref()).unwrap();
    for e in &entries {
        assert!(
            kv.value(&version_key(&e.digest)).is_some(),
            "{} has its copy",
            e.digest
        );
    }
    let named: std::collections::HashSet<&String> = entries.iter().map(|e| &e.digest).collect();
    assert_eq!(
        copies(&kv),
        named.len(),
        "no copy the history does not name"
    );
    // A delete that fails leaves the copy behind, and the push still succeeds.
    kv.fail_put("delete");
    push_doc(&docs[history::HISTORY_CAP + 1], 3_000);
    assert!(kv.value(&version_key(&document_digest(&docs[2]))).is_some());
    assert_eq!(
        kv.value(ROUTES_KEY).as_deref(),
        Some(docs[history::HISTORY_CAP + 1].as_str())
    );
}

#[test]
fn history_is_newest_first_capped_and_a_retry_is_recorded_once() {
    let mut entries = Vec::new();
    for i in 0..(history::HISTORY_CAP + 20) {
        let e = HistoryEntry {
            digest: format!("sha256:{i:064x}"),
            at_ms: i as u64,
            size: 1,
            note: None,
        };
        entries = history::recorded(&entries, e);
    }
    assert_eq!(entries.len(), history::HISTORY_CAP);
    assert!(entries.len() >= 50);
    assert_eq!(entries[0].at_ms, (history::HISTORY_CAP + 19) as u64);
    let again = history::recorded(&entries, entries[0].clone());
    assert_eq!(again.len(), entries.len());
    assert_eq!(
        history::find(&entries, "sha256:"),
        Err(history::Lookup::Malformed)
    );
    let ambiguous = vec![
        HistoryEntry {
            digest: format!("sha256:{}", "ab".repeat(32)),
            at_ms: 1,
            size: 1,
            note: None,
        },
        HistoryEntry {
            digest: format!("sha256:{}{}", "ab".repeat(4), "cd".repeat(28)),
            at_ms: 1,
            size: 1,
            note: None,
        },
    ];
    assert_eq!(
        history::find(&ambiguous, "abababab"),
        Err(history::Lookup::Ambiguous)
    );
    assert!(
        history::find(&ambiguous, "ABABABABAB").is_ok(),
        "hex in either case"
    );
    assert!(history::checked_note(Some("line\nbreak")).is_err());
    assert_eq!(history::checked_note(Some("  ")), Ok(None));
}

#[test]
fn an_invalid_routes_falls_back_to_last_good_then_history_then_embedded() {
    let good = doc("good");
    let older = doc("older");
    let invalid = r#"{"version":1,"routes":"nope"}"#;
    let kv = MemoryKv::with(&[(ROUTES_KEY, invalid), (LAST_GOOD_KEY, &good)]);
    let c = run(current(&kv, EMBEDDED)).unwrap();
    assert_eq!(c.source, Source::LastGood);
    assert_eq!(c.found.text, good);
    let rejected = c.rejected.unwrap();
    assert_eq!(rejected.digest, document_digest(invalid));
    assert!(!rejected.errors.is_empty());

    // `routes` missing, last-good unusable: the newest valid version in the history.
    let index = history::to_text(&[filed(invalid, 2), filed(&older, 1)]);
    let kv = MemoryKv::with(&[
        (LAST_GOOD_KEY, invalid),
        (HISTORY_KEY, &index),
        (&version_key(&document_digest(invalid)), invalid),
        (&version_key(&document_digest(&older)), &older),
    ]);
    let c = run(current(&kv, EMBEDDED)).unwrap();
    assert_eq!(
        (c.source, c.found.text.as_str()),
        (Source::LastGood, older.as_str())
    );
    assert!(c.rejected.is_none());

    // Nothing valid anywhere: the embedded document.
    let kv = MemoryKv::with(&[(ROUTES_KEY, invalid)]);
    let c = run(current(&kv, EMBEDDED)).unwrap();
    assert_eq!(c.source, Source::Embedded);
    assert!(c.rejected.is_some());
    // A KV failure is an error, never a silent switch to the embedded document.
    let kv = MemoryKv::with(&[(ROUTES_KEY, invalid)]);
    kv.fail_get.borrow_mut().push(LAST_GOOD_KEY.into());
    assert!(run(current(&kv, EMBEDDED)).is_err());
}

#[test]
fn a_history_copy_that_is_not_the_version_it_is_filed_under_is_passed_over() {
    let named = doc("named");
    let other = doc("other");
    let older = doc("older");
    let index = history::to_text(&[filed(&named, 2), filed(&older, 1)]);
    // The newest entry's copy holds another valid document: not the version the history names.
    let kv = MemoryKv::with(&[
        (HISTORY_KEY, &index),
        (&version_key(&document_digest(&named)), &other),
        (&version_key(&document_digest(&older)), &older),
    ]);
    let c = run(current(&kv, EMBEDDED)).unwrap();
    assert_eq!(
        (c.source, c.found.text.as_str(), c.found.digest.as_str()),
        (
            Source::LastGood,
            older.as_str(),
            document_digest(&older).as_str()
        )
    );
}

/// A history entry filing `text`'s digest at `at_ms`.
fn filed(text: &str, at_ms: u64) -> HistoryEntry {
    HistoryEntry {
        digest: document_digest(text),
        at_ms,
        size: 1,
        note: None,
    }
}

fn json(text: &str) -> Json {
    Json::parse(text).unwrap()
}

#[test]
fn diff_by_route_id_and_upstream_name_with_changed_fields() {
    let before = json(
        r#"{"version":1,"settings":{"reload_s":10},
            "upstreams":{"users":{"targets":[{"url":"https://a.example"}],"timeout_ms":1000},
                         "gone":{"targets":[{"url":"https://g.example"}]}},
            "routes":[{"id":"get-user","path":"/u/{id}","upstream":"users","auth":"none","cache":{"ttl_s":60}},
                      {"id":"old","path":"/old","upstream":"gone","auth":"none"}]}"#,
    );
    let after = json(
        r#"{"version":1,"settings":{"reload_s":5},
            "upstreams":{"users":{"targets":[{"url":"https://b.example"}],"timeout_ms":1000}},
            "routes":[{"id":"new","path":"/new","upstream":"users","auth":"none"},
                      {"id":"get-user","path":"/u/{id}","upstream":"users","auth":"none","rewrite":"/users/{id}"}]}"#,
    );
    let text = render(&diff(&before, &after), false);
    assert_eq!(
        text,
        "settings:\n  ~ settings\n      reload_s: 10 → 5\n\
         upstreams:\n  ~ users\n      targets: [{\"url\":\"https://a.example\"}] → [{\"url\":\"https://b.example\"}]\n  - gone\n\
         routes:\n  ~ get-user\n      cache: {\"ttl_s\":60} → (absent)\n      rewrite: (absent) → \"/users/{id}\"\n  - old\n  + new\n"
    );
    assert_eq!(render(&diff(&before, &before), false), "no changes\n");
    let colored = render(&diff(&before, &after), true);
    assert!(colored.contains("\x1b[32m  + new\x1b[0m"), "{colored}");
    assert!(!text.contains('\x1b'), "plain when not a terminal");
}

#[test]
fn explain_shows_route_stages_and_upstream_url_or_the_refusal() {
    let g = Gateway::compile(
        r#"{"version":1,
            "upstreams":{"users":{"targets":[{"url":"https://u.internal/base","weight":3},{"url":"service:USERS"}],"retries":1}},
            "auth":{"partners":{"type":"api_key","header":"x-api-key"}},
            "rate_limits":{"per-ip":{"key":"ip","limit":5,"window_s":10}},
            "routes":[{"id":"get-user","methods":["GET"],"path":"/v1/users/{id}","upstream":"users","rewrite":"/users/{id}",
                       "auth":"none","rate_limits":["per-ip"],"cache":{"ttl_s":60},
                       "request_headers":{"set":{"x-v":"1"},"remove":["cookie"]}},
                      {"id":"partner","path":"/p/{*rest}","upstream":"users","auth":["partners"]}]}"#,
    )
    .unwrap();
    let url = "https://api.example.com/v1/x/../users/%34%32?q=1";
    let e = explain(&g, "GET", url, &[]).unwrap();
    assert_eq!(
        render_explain("GET", url, &e),
        "GET https://api.example.com/v1/x/../users/%34%32?q=1\n\
         \x20 route            get-user (path /v1/users/{id}, canonical path /v1/users/42)\n\
         \x20 auth             none (public route)\n\
         \x20 rate limits      per-ip (5 per 10 s, burst 5, per client address)\n\
         \x20 cache            ttl 60 s, stale-if-error 0 s\n\
         \x20 upstream         users (timeout 10000 ms, retries 1)\n\
         \x20 request headers  remove cookie; set x-v: 1\n\
         \x20 forwarded to     https://u.internal/base/users/42?q=1 (weight 3)\n\
         \x20                  https://users/users/42?q=1 via service binding USERS (weight 1)\n"
    );
    let refused = |method: &str, url: &str, headers: &[(String, String)]| match explain(
        &g, method, url, headers,
    )
    .unwrap()
    {
        Explanation::Refused(r) => (r.status, r.code),
        Explanation::Routed(p) => p
            .refusal
            .map(|r| (r.status, r.code))
            .unwrap_or((0, "routed")),
        Explanation::Admin { .. } => (0, "admin"),
    };
    assert_eq!(
        refused("DELETE", "https://h/v1/users/1", &[]),
        (405, "method_not_allowed")
    );
    assert_eq!(
        refused("GET", "https://h/nothing", &[]),
        (404, "route_not_found")
    );
    assert_eq!(
        refused("GET", "https://h/v1/users/a%2fb", &[]),
        (400, "invalid_path")
    );
    assert_eq!(
        refused("GET", "https://h/__gateway/health", &[]),
        (0, "admin")
    );
    assert_eq!(
        refused("POST", "https://h/p/x", &[]),
        (401, "missing_credentials")
    );
    let key = [("X-Api-Key".to_owned(), "k".to_owned())];
    assert_eq!(refused("POST", "https://h/p/x", &key), (0, "routed"));
    let big = [("content-length".to_owned(), "99999999999".to_owned())];
    assert_eq!(
        refused("POST", "https://h/p/x", &big),
        (413, "payload_too_large")
    );
    assert!(explain(&g, "GET", "/relative", &[]).is_err());
}

#[test]
fn explain_finds_a_query_credential_as_the_gateway_reads_it() {
    let g = Gateway::compile(
        r#"{"version":1,"upstreams":{"u":{"targets":[{"url":"https://u.internal"}]}},
            "auth":{"keys":{"type":"api_key","query":"api_key"}},
            "routes":[{"id":"p","path":"/p","upstream":"u","auth":["keys"]}]}"#,
    )
    .unwrap();
    let refusal = |url: &str| match explain(&g, "GET", url, &[]).unwrap() {
        Explanation::Routed(p) => p.refusal.map(|r| r.code),
        _ => Some("not routed"),
    };
    for presented in [
        "https://h/p?api_key=k",
        "https://h/p?a=1;api_key=k",
        "https://h/p?api%5Fkey=k",
    ] {
        assert_eq!(refusal(presented), None, "{presented}");
    }
    for absent in [
        "https://h/p",
        "https://h/p?api_key=",
        "https://h/p?api_keys=k",
    ] {
        assert_eq!(refusal(absent), Some("missing_credentials"), "{absent}");
    }
}

#[test]
fn explain_refuses_two_identities_as_the_gateway_does() {
    let g = Gateway::compile(
        r#"{"version":1,"upstreams":{"u":{"targets":[{"url":"https://u.internal"}]}},
            "auth":{"keys":{"type":"api_key","header":"x-api-key"},
                    "idp":{"type":"jwt","issuer":"https://id.test/","audiences":["a"],"jwks_url":"https://id.test/jwks","algorithms":["ES256"]}},
            "routes":[{"id":"p","path":"/p","upstream":"u","auth":["keys","idp"]}]}"#,
    )
    .unwrap();
    let refusal =
        |headers: &[(String, String)]| match explain(&g, "GET", "https://h/p", headers).unwrap() {
            Explanation::Routed(p) => p.refusal.map(|r| (r.status, r.code)),
            _ => Some((0, "not routed")),
        };
    let key = ("x-api-key".to_string(), "k".to_string());
    let token = ("authorization".to_string(), "Bearer t.t.t".to_string());
    assert_eq!(refusal(std::slice::from_ref(&key)), None);
    assert_eq!(refusal(std::slice::from_ref(&token)), None);
    assert_eq!(refusal(&[key, token]), Some((400, "bad_request")));
}

#[test]
fn the_lock_answers_in_one_line_that_round_trips() {
    use super::wire::{decode, encode};
    let outcomes = vec![
        Ok(Pushed {
            digest: document_digest("a"),
            previous: document_digest("b"),
            changed: true,
            lock: None,
        }),
        Err(PushError::TooLarge { limit: 5 }),
        Err(PushError::Invalid(vec![crate::config::ConfigError {
            path: "routes[0] x".into(),
            message: "a \"quoted\"\nmessage".into(),
        }])),
        Err(PushError::PreconditionRequired {
            current: document_digest("c"),
        }),
        Err(PushError::Stale {
            current: document_digest("d"),
        }),
        Err(PushError::UnknownDigest),
        Err(PushError::AmbiguousDigest),
        Err(PushError::BadDigest),
        Err(PushError::BadIfMatch),
        Err(PushError::BadNote),
        Err(PushError::Read("kv down\nbadly".into())),
        Err(PushError::HistoryUnreadable(
            "routes:history is not a valid history index: EOF at line 1".into(),
        )),
        Err(PushError::CopyMissing(document_digest("e"))),
        Err(PushError::CopyCorrupt {
            digest: document_digest("f"),
            actual: document_digest("g"),
        }),
        Err(PushError::Write {
            stage: WriteStage::LastGood,
            cause: "a b c".into(),
        }),
    ];
    for o in outcomes {
        assert_eq!(decode(&encode(&o)), Some(o.clone()), "{}", encode(&o));
    }
    assert_eq!(decode("what"), None);
    assert_eq!(decode("ok sha256:1"), None);
    assert_eq!(decode("write nowhere x"), None);
    let lock = LockRecord {
        current: document_digest("a"),
        replaced: vec![document_digest("b")],
        at_ms: 7,
    };
    assert_eq!(LockRecord::from_line(&lock.to_line()), Some(lock));
    assert_eq!(LockRecord::from_line("a b"), None);
    assert_eq!(LockRecord::from_line("a b 1 extra"), None);
}

#[test]
fn a_rollback_body_names_one_digest_once() {
    let d = document_digest("x");
    assert_eq!(
        push::rollback_target(&format!(r#"{{"digest":"{d}"}}"#)),
        Some(d.clone())
    );
    assert_eq!(
        push::rollback_target(&format!(" {{ \"digest\" : \"{d}\" }}\n")),
        Some(d.clone())
    );
    // Two digests are ambiguous: neither is taken (serde_json's map would keep the last).
    let other = document_digest("y");
    assert_eq!(
        push::rollback_target(&format!(r#"{{"digest":"{d}","digest":"{other}"}}"#)),
        None
    );
    for body in [
        "",
        "not json",
        "{}",
        r#"{"digest":1}"#,
        r#"{"digest":"a","extra":1}"#,
        r#"["digest"]"#,
        r#"{"digest":"a"} trailing"#,
    ] {
        assert_eq!(push::rollback_target(body), None, "{body}");
    }
}

#[test]
fn a_push_over_an_unreadable_history_keeps_the_old_index_aside() {
    let old = doc("old");
    let broken = r#"[{"digest":"sha256:00","at_ms":1,"size":1,"note":null},"#;
    let kv = MemoryKv::with(&[(ROUTES_KEY, &old), (HISTORY_KEY, broken)]);
    let new = doc("new");
    let pushed = run(push(
        &kv,
        None,
        &push_req(&new, Some(&tag(&old)), 1000),
        EMBEDDED,
    ))
    .unwrap();
    assert!(pushed.changed);
    // The push is not blocked, and the index it could not read is not lost: it is kept, as it
    // was, under a key of its own, written before the new index replaces it.
    let aside = history::unreadable_key(1000);
    assert_eq!(kv.value(&aside).as_deref(), Some(broken));
    let writes = kv.writes.borrow().clone();
    let at = |k: &str| writes.iter().position(|w| w == k).unwrap();
    assert!(at(&aside) < at(HISTORY_KEY), "{writes:?}");
    let h = history::parse(kv.value(HISTORY_KEY).as_deref()).unwrap();
    assert_eq!(h.len(), 1);
    // Keeping it aside failed: nothing changed.
    let kv = MemoryKv::with(&[(ROUTES_KEY, &old), (HISTORY_KEY, broken)]);
    kv.fail_put(&aside);
    let e = run(push(
        &kv,
        None,
        &push_req(&new, Some(&tag(&old)), 1000),
        EMBEDDED,
    ))
    .unwrap_err();
    assert!(
        matches!(
            e,
            PushError::Write {
                stage: WriteStage::History,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(kv.value(HISTORY_KEY).as_deref(), Some(broken));
    assert_eq!(kv.value(ROUTES_KEY).as_deref(), Some(old.as_str()));
}

#[test]
fn a_push_query_names_its_note_once_and_nothing_else() {
    assert_eq!(history::note_of_query(None), Ok(None));
    assert_eq!(history::note_of_query(Some("")), Ok(None));
    assert_eq!(
        history::note_of_query(Some("note=by%20hand+%E2%9C%93")),
        Ok(Some("by hand ✓".into()))
    );
    // Which of two notes would be kept is a guess; a misspelt name would drop the note.
    for query in [
        "note=a&note=b",
        "nte=a",
        "note=a&x=1",
        "note=%E9",
        "note=a%0Ab",
    ] {
        assert!(history::note_of_query(Some(query)).is_err(), "{query}");
    }
}

#[test]
fn explain_reads_credentials_only_as_the_gateway_does() {
    // explain once kept a looser presence check of its own: an empty key, a Basic
    // Authorization or an unrelated cookie counted as credentials there, while the gateway
    // refused the request for having none. Each hostile case must get the gateway's answer.
    let g = Gateway::compile(
        r#"{"version":1,"upstreams":{"u":{"targets":[{"url":"https://u.internal"}]}},
            "auth":{"keys":{"type":"api_key","header":"x-api-key"},
                    "qkeys":{"type":"api_key","query":"api_key"},
                    "idp":{"type":"jwt","issuer":"https://id.test/","audiences":["a"],"jwks_url":"https://id.test/jwks",
                           "algorithms":["ES256"],"token_cookie":"session","token_query":"access_token"}},
            "routes":[{"id":"p","path":"/p","upstream":"u","auth":["keys","qkeys","idp"]},
                      {"id":"k","path":"/k","upstream":"u","auth":["keys"]}]}"#,
    )
    .unwrap();
    let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    };
    type Case = (&'static str, Vec<(String, String)>, Option<&'static str>);
    let cases: &[Case] = &[
        ("/p", h(&[]), Some("missing_credentials")),
        ("/p", h(&[("x-api-key", "")]), Some("missing_credentials")),
        ("/p", h(&[("x-api-key", "  ")]), Some("missing_credentials")),
        (
            "/p",
            h(&[("authorization", "Basic dXNlcjpwYXNz")]),
            Some("missing_credentials"),
        ),
        (
            "/p",
            h(&[("cookie", "theme=dark")]),
            Some("missing_credentials"),
        ),
        ("/p?api_key=", h(&[]), Some("missing_credentials")),
        ("/p?access_token=", h(&[]), Some("missing_credentials")),
        (
            "/p",
            h(&[("authorization", "Bearer ")]),
            Some("invalid_token"),
        ),
        ("/p", h(&[("x-api-key", "k")]), None),
        ("/p", h(&[("cookie", "theme=dark; session=t.t.t")]), None),
        ("/p?api_key=k", h(&[("x-api-key", "k")]), None),
        // Two credentials, or one key in two schemes' places with two values.
        (
            "/p",
            h(&[("x-api-key", "k"), ("authorization", "Bearer t.t.t")]),
            Some("bad_request"),
        ),
        (
            "/p?api_key=other",
            h(&[("x-api-key", "k")]),
            Some("bad_request"),
        ),
        (
            "/p?access_token=t.t.t",
            h(&[("cookie", "session=t.t.t")]),
            Some("bad_request"),
        ),
        // Repeated headers reach the gateway joined, as the runtime's Headers.get joins them.
        (
            "/p",
            h(&[
                ("authorization", "Bearer a.b.c"),
                ("Authorization", "Bearer a.b.c"),
            ]),
            Some("bad_request"),
        ),
        (
            "/p",
            h(&[("x-api-key", "k"), ("X-Api-Key", "k")]),
            Some("bad_request"),
        ),
        // On a route of API keys only, Authorization is the upstream's business.
        (
            "/k",
            h(&[("authorization", "Bearer t.t.t")]),
            Some("missing_credentials"),
        ),
        (
            "/k",
            h(&[("authorization", "Bearer "), ("x-api-key", "k")]),
            None,
        ),
    ];
    for (path, headers, want) in cases {
        let url = format!("https://h{path}");
        let explained = match explain(&g, "GET", &url, headers).unwrap() {
            Explanation::Routed(p) => p.refusal.map(|r| r.code),
            other => panic!("{other:?}"),
        };
        // What the gateway's stage decides from the same request, before any verification.
        let joined = |name: &str| {
            let values: Vec<&str> = headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect();
            (!values.is_empty()).then(|| values.join(", "))
        };
        let id = if path.starts_with("/k") { "k" } else { "p" };
        let route = g.config.routes.iter().find(|r| r.id == id).unwrap();
        let crate::config::RouteAuth::Schemes(schemes) = &route.auth else {
            panic!("{id} is authenticated")
        };
        let query = path.split_once('?').map(|(_, q)| q);
        let gateway = match crate::pipeline::auth::presented_credentials(
            &g.config, schemes, &joined, query,
        ) {
            Ok(found) if found.is_empty() => Some("missing_credentials"),
            Ok(_) => None,
            Err(e) => Some(e.code()),
        };
        assert_eq!(gateway, *want, "the gateway, {path} {headers:?}");
        assert_eq!(explained, *want, "explain, {path} {headers:?}");
    }
}

#[test]
fn explain_reads_a_repeated_header_as_the_gateway_does_joined() {
    let g = Gateway::compile(
        r#"{"version":1,
            "upstreams":{"v1":{"targets":[{"url":"https://v1.internal"}]},"v2":{"targets":[{"url":"https://v2.internal"}]}},
            "routes":[{"id":"users-v2","path":"/u","upstream":"v2","auth":"none","match":{"headers":{"x-api-version":"2"}}},
                      {"id":"users","path":"/u","upstream":"v1","auth":"none"}]}"#,
    )
    .unwrap();
    let route = |headers: &[(&str, &str)]| {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        match explain(&g, "GET", "https://h/u", &headers).unwrap() {
            Explanation::Routed(p) => p.route,
            Explanation::Refused(r) => r.code.to_owned(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(route(&[("X-Api-Version", "2")]), "users-v2");
    assert_eq!(route(&[("x-api-version", "1")]), "users");
    // Two lines reach the gateway as one value, "1, 2" or "2, 1", which meets the condition
    // only as a server reading one of them would: refused there, so refused here (explain read
    // the first line alone, and said the first order went to users-v2).
    for lines in [
        [("x-api-version", "1"), ("X-Api-Version", "2")],
        [("x-api-version", "2"), ("x-api-version", "1")],
    ] {
        assert_eq!(route(&lines), "bad_request", "{lines:?}");
    }
}

/// The reason an unreadable history index gives quotes what serde could not read: scrubbed,
/// since it is the answer's detail.
#[test]
fn an_unreadable_history_reason_is_scrubbed() {
    let index = r#"[{"digest":"sha256:ab","at_ms":"Bearer s3cr3t","size":1,"note":null}]"#;
    let reason = history::parse(Some(index)).unwrap_err();
    assert!(
        reason.starts_with("routes:history is not a valid history index: "),
        "{reason}"
    );
    assert!(!reason.contains("s3cr3t"), "{reason}");
}
