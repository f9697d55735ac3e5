use super::*;
use crate::pipeline::ctx::RateLimitNote;
use crate::pipeline::state::Counter;
use crate::ratelimit::Owner;
use serde_json::json;

fn world(on_store_error: &str) -> World {
    World::new(json!({
        "rate_limits": { "per-ip": { "key": "ip", "limit": 2, "window_s": 60, "on_store_error": on_store_error } },
        "routes": [ { "id": "r", "path": "/r", "upstream": "api", "rate_limits": ["per-ip"] } ]
    }))
}

#[test]
fn the_limit_is_exact_and_a_refusal_is_remembered_without_asking_the_store_again() {
    let w = world("allow");
    let f = Fakes::at(T0);
    for _ in 0..2 {
        let mut cx = w.ctx("GET", "https://h.test/r", &f);
        let (sync, ended) = w.run(&mut cx, &f);
        assert_eq!((sync, ended.status()), (false, 200));
        assert_eq!(cx.notes.rate_limit, Some(RateLimitNote::Allowed));
        let headers = f.plans.borrow().last().unwrap().response_set.clone();
        assert!(headers.iter().any(|(k, _)| k == "ratelimit"), "{headers:?}");
    }
    let mut cx = w.ctx("GET", "https://h.test/r", &f);
    let (sync, ended) = w.run(&mut cx, &f);
    assert_eq!((sync, ended.status()), (false, 429));
    assert_eq!(
        cx.notes.rate_limit,
        Some(RateLimitNote::Limited("per-ip".into()))
    );
    assert_eq!(f.limiter_calls.get(), 3);

    let mut cx = w.ctx("GET", "https://h.test/r", &f);
    let (sync, ended) = w.run(&mut cx, &f);
    assert_eq!(
        (sync, ended.status()),
        (true, 429),
        "remembered: decided at once"
    );
    assert_eq!(f.limiter_calls.get(), 3);
    let Ended::Error(crate::error::GatewayError::RateLimited { retry_after_s, .. }) = ended else {
        panic!("not a rate-limit refusal: {ended:?}")
    };
    assert!((1..=30).contains(&retry_after_s));
    assert_eq!(f.exchanges(), 2);

    // Once the instant the store named has passed, the store is asked again.
    f.now_ms.set(T0 + 30_001.0);
    let mut cx = w.ctx("GET", "https://h.test/r", &f);
    assert_eq!(w.run(&mut cx, &f).1.status(), 200);
    assert_eq!(f.limiter_calls.get(), 4);
}

#[test]
fn a_failing_store_follows_on_store_error_and_is_counted_and_logged() {
    for (policy, status) in [("allow", 200), ("deny", 503)] {
        let w = world(policy);
        let f = Fakes::at(T0);
        f.limiter_fails.set(true);
        let mut cx = w.ctx("GET", "https://h.test/r", &f);
        assert_eq!(
            w.run(&mut cx, &f).1.status(),
            status,
            "on_store_error {policy}"
        );
        assert_eq!(
            cx.notes.rate_limit,
            Some(RateLimitNote::StoreError("per-ip".into()))
        );
        assert_eq!(w.state.counters.get(Counter::RateLimitStoreErrors), 1);
        assert_eq!(f.events.borrow()[0]["event"], "rate_limit_store_error");
        assert_eq!(f.events.borrow()[0]["on_store_error"], policy);
    }
}

#[test]
fn a_consumer_key_without_a_consumer_is_refused_before_the_store_is_asked() {
    use crate::auth::test_keys::{self, Signer};
    let secret = "an HMAC secret of more than thirty-two bytes, for tests";
    let w = World::new(json!({
        "auth": { "u": { "type": "jwt", "issuer": test_keys::ISS, "audiences": [test_keys::AUD],
                         "secret": "S", "algorithms": ["HS256"] } },
        "rate_limits": { "per-user": { "key": "consumer", "limit": 2, "window_s": 60 } },
        "routes": [ { "id": "r", "path": "/r", "upstream": "api", "auth": ["u"], "rate_limits": ["per-user"] } ]
    }));
    let f = Fakes::at(test_keys::NOW as f64 * 1000.0);
    f.secrets.borrow_mut().insert("S".into(), secret.into());
    let mut claims = test_keys::good_claims();
    claims.as_object_mut().unwrap().remove("sub");
    let token = test_keys::mint(
        crate::config::Algorithm::Hs256,
        Signer::Hmac(secret.as_bytes()),
        None,
        &claims,
    );
    f.header("authorization", &format!("Bearer {token}"));
    let mut cx = w.ctx("GET", "https://h.test/r", &f);
    assert_eq!(w.run(&mut cx, &f).1.code(), Some("invalid_token"));
    assert_eq!(f.limiter_calls.get(), 0);
}

#[test]
fn the_response_step_puts_ratelimit_fields_on_cache_hits_too() {
    let w = World::new(json!({
        "rate_limits": { "per-ip": { "key": "ip", "limit": 5, "window_s": 60 } },
        "routes": [ { "id": "r", "path": "/r", "upstream": "api", "rate_limits": ["per-ip"], "cache": { "ttl_s": 60 } } ]
    }));
    let f = Fakes::at(T0);
    f.answer(crate::pipeline::fakes::Script::Respond(FakeResponse::new(
        200,
        &[("cache-control", "max-age=60")],
        "x",
    )));
    for remaining in ["r=4", "r=3"] {
        let mut cx = w.ctx("GET", "https://h.test/r", &f);
        let (_, ended) = w.run(&mut cx, &f);
        let rl = ended
            .response()
            .header("ratelimit")
            .unwrap_or_default()
            .to_owned();
        assert!(rl.contains(remaining), "{rl}");
    }
    assert_eq!(f.exchanges(), 1, "the second answer was a hit");
}

fn busy_world() -> World {
    World::new(json!({
        "rate_limits": { "wide": { "key": "route", "limit": 100000, "window_s": 10 } },
        "routes": [ { "id": "r", "path": "/r", "upstream": "api", "rate_limits": ["wide"] } ]
    }))
}

/// `n` allowed requests, one per millisecond: the isolate's demand for the route's bucket.
fn busy(w: &World, f: &Fakes, n: usize) {
    for _ in 0..n {
        let mut cx = w.ctx("GET", "https://h.test/r", f);
        assert_eq!(w.run(&mut cx, f).1.status(), 200);
        f.now_ms.set(f.now_ms.get() + 1.0);
    }
}

/// A busy isolate whose store fails (it answers nothing this build can read, as an object of
/// another build might) admits each request by `on_store_error: "allow"` and holds no lease: it
/// asks again for every request, and the bucket is never charged for admissions it did not give.
#[test]
fn a_store_error_is_never_a_lease() {
    let w = busy_world();
    let f = Fakes::at(T0);
    busy(&w, &f, 300);
    let held_before = f.limiter_calls.get();
    f.now_ms
        .set(f.now_ms.get() + crate::pipeline::leases::HOLD_MS as f64 + 1.0);
    f.limiter_fails.set(true);
    busy(&w, &f, 300);
    assert_eq!(
        f.limiter_calls.get() - held_before,
        300,
        "every request asked"
    );
    assert_eq!(w.state.counters.get(Counter::RateLimitStoreErrors), 300);
    // Back to answers: a lease again, after a single ask.
    f.limiter_fails.set(false);
    busy(&w, &f, 50);
    assert!(
        f.limiter_calls.get() - held_before < 300 + 50,
        "leases again"
    );
}

fn ratelimit_field(f: &Fakes) -> String {
    let plans = f.plans.borrow();
    let set = &plans.last().expect("an exchange").response_set;
    set.iter()
        .find(|(k, _)| k == "ratelimit")
        .map(|(_, v)| v.clone())
        .expect("a RateLimit field")
}

#[test]
fn a_busy_isolate_asks_once_per_lease_and_spends_held_admissions_without_waiting() {
    let w = busy_world();
    let f = Fakes::at(T0);
    // An idle isolate asks for each request: a quarter of a second of one request per ms.
    busy(&w, &f, 250);
    assert_eq!(
        f.limiter_calls.get(),
        250,
        "one ask per request while demand is unknown"
    );
    // Now busy: each ask brings a lease, spent synchronously by the requests after it. The
    // last period saw 250 requests, so each ask wants 125 and is made when a quarter (31) is
    // left: one ask per 94 requests or so, never one per request.
    let mut sync_answers = 0;
    for _ in 0..640 {
        let mut cx = w.ctx("GET", "https://h.test/r", &f);
        let (sync, ended) = w.run(&mut cx, &f);
        assert_eq!(ended.status(), 200);
        assert_eq!(cx.notes.rate_limit, Some(RateLimitNote::Allowed));
        sync_answers += usize::from(sync);
        f.now_ms.set(f.now_ms.get() + 0.25);
    }
    let asks = f.limiter_calls.get() - 250;
    assert!(
        (6..=7).contains(&asks),
        "640 requests in leases of 125: {asks} asks"
    );
    assert_eq!(sync_answers, 640 - asks as usize);
}

#[test]
fn a_held_admission_reports_what_its_lease_was_granted_with() {
    let w = busy_world();
    let f = Fakes::at(T0);
    busy(&w, &f, 300);
    // Run until a request asks (the previous lease is spent): it brings a new lease.
    loop {
        let mut cx = w.ctx("GET", "https://h.test/r", &f);
        if !w.run(&mut cx, &f).0 {
            break;
        }
    }
    let granted = ratelimit_field(&f);
    let mut cx = w.ctx("GET", "https://h.test/r", &f);
    assert!(w.run(&mut cx, &f).0, "this one spends it");
    assert_eq!(
        ratelimit_field(&f),
        granted,
        "never more remaining than the owner granted with"
    );
    // The owner counts the whole lease as spent: its own answer now is no higher.
    let owner = crate::ratelimit::check(
        f.buckets.borrow().values().next().and_then(Owner::state),
        &crate::ratelimit::Limits {
            limit: 100_000,
            window_s: 10,
            burst: 100_000,
        },
        f.now_ms.get() as u64,
        0,
    )
    .0;
    let reported: u64 = granted
        .split(";r=")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .and_then(|r| r.parse().ok())
        .expect("r= in the RateLimit field");
    assert!(reported <= owner.remaining, "{granted} vs {owner:?}");
}

#[test]
fn unspent_admissions_are_offered_back_once_their_hold_ends() {
    let w = busy_world();
    let f = Fakes::at(T0);
    busy(&w, &f, 300);
    // The last ask took a lease; nothing spends it before its hold ends.
    let open = f
        .buckets
        .borrow()
        .values()
        .next()
        .and_then(Owner::open_tag)
        .expect("an open lease");
    f.now_ms
        .set(f.now_ms.get() + crate::pipeline::leases::HOLD_MS as f64 + 1.0);
    let mut cx = w.ctx("GET", "https://h.test/r", &f);
    assert_eq!(w.run(&mut cx, &f).1.status(), 200);
    // Every lease still holding admissions is offered (a busy bucket holds the lease it is
    // spending and the next one); the newest carries the tag its owner issued.
    let offers = f.given_back.borrow().clone();
    assert!(!offers.is_empty() && offers.len() <= 2, "{offers:?}");
    assert!(offers.iter().all(|o| o.unused > 0), "{offers:?}");
    assert!(
        offers.iter().map(|o| o.unused).sum::<u64>() < crate::pipeline::leases::MAX_WANT,
        "{offers:?}"
    );
    assert!(
        offers.iter().any(|o| o.tag == open),
        "the newest lease is offered under the tag the owner issued: {offers:?}"
    );
}

/// Limits with room for every lease the lease-book tests ask for.
const ROOMY: crate::ratelimit::Limits = crate::ratelimit::Limits {
    limit: 100_000,
    window_s: 10,
    burst: 100_000,
};

/// A grant of `extra` admissions under [`ROOMY`], as its owner gives one to a first ask.
fn roomy_grant(extra: u64) -> crate::ratelimit::Grant {
    let (decision, _) = crate::ratelimit::check(None, &ROOMY, 0, 1);
    crate::ratelimit::Grant {
        decision,
        extra,
        tag: 1,
    }
}

#[test]
fn a_busy_bucket_asks_for_its_next_lease_while_a_quarter_is_left_and_never_holds_max_want() {
    use crate::pipeline::leases::{LeaseBook, HOLD_MS, MAX_WANT};
    let (limits, grant) = (ROOMY, roomy_grant);
    let mut book = LeaseBook::default();
    let mut offers = Vec::new();
    let hold = HOLD_MS as f64;
    busy_period(&mut book, 0.0, &mut offers);
    let t = hold + 1.0;
    let first = book.ask("b", t, &mut offers);
    assert_eq!(first.want, MAX_WANT);
    book.answered("b", limits, first, (t, t), Some(&grant(first.want - 1)));
    assert_eq!(book.held("b", t), MAX_WANT - 1);
    // Spending: no refill while more than a quarter of the want is held.
    let mut spent = 0;
    while !book.refill_due("b", t) {
        assert!(book.spend("b", &limits, t, &mut offers).is_some());
        spent += 1;
    }
    assert_eq!(book.held("b", t), MAX_WANT / 4, "after {spent} spends");
    // This request asks for the next lease: only what keeps the isolate under MAX_WANT.
    let next = book.ask("b", t, &mut offers);
    assert_eq!(next.want, MAX_WANT - MAX_WANT / 4);
    // While it is out, the others spend what is left instead of asking.
    assert!(!book.refill_due("b", t));
    assert!(book.holds("b", t));
    assert!(book.spend("b", &limits, t, &mut offers).is_some());
    book.answered("b", limits, next, (t, t), Some(&grant(next.want - 1)));
    assert!(book.held("b", t) < MAX_WANT, "{}", book.held("b", t));
    assert!(offers.is_empty());
}

#[test]
fn one_ask_at_a_time_asks_for_more_than_one_admission_and_a_lost_answer_stops_counting() {
    use crate::pipeline::leases::{LeaseBook, HOLD_MS, MAX_WANT};
    let mut book = LeaseBook::default();
    let mut offers = Vec::new();
    let hold = HOLD_MS as f64;
    // A busy period: 1,000 requests in one hold period make the next ask a full one.
    busy_period(&mut book, 0.0, &mut offers);
    let first = book.ask("b", hold + 1.0, &mut offers);
    assert_eq!(first.want, MAX_WANT);
    let concurrent = book.ask("b", hold + 2.0, &mut offers);
    assert_eq!(
        concurrent.want, 1,
        "while one lease ask is out, others ask for themselves only"
    );
    // Its answer never came (its request was cancelled): after a while asks are full again.
    busy_period(&mut book, 6_000.0, &mut offers);
    assert_eq!(
        book.ask("b", 6_000.0 + hold + 1.0, &mut offers).want,
        MAX_WANT
    );
    assert!(
        offers.is_empty(),
        "nothing was held, so nothing is offered back"
    );
}

/// A stage after a wait decides by the clock after it, not by the request's arrival: a lease
/// whose hold ended while the request's API key was read from KV is not spent (the owner has
/// booked it as spent by then), and the store is asked instead.
#[test]
fn a_lease_is_judged_by_the_time_after_a_wait_not_by_the_arrival() {
    let w = World::new(json!({
        "auth": { "partners": { "type": "api_key", "header": "x-api-key" } },
        "rate_limits": { "wide": { "key": "route", "limit": 100000, "window_s": 10 } },
        "routes": [ { "id": "r", "path": "/r", "upstream": "api", "auth": ["partners"], "rate_limits": ["wide"] } ]
    }));
    let f = Fakes::at(T0);
    let known = crate::auth::api_key::new_key([3; 32]);
    store_key(&f, &known, &[]);
    f.header("x-api-key", &known);
    // Busy: the isolate holds a lease, spent without asking.
    busy(&w, &f, 300);
    let asked = f.limiter_calls.get();
    busy(&w, &f, 5);
    assert_eq!(f.limiter_calls.get(), asked, "spent from the lease");
    // A new key: its record is read from KV, which takes two seconds, far past the lease.
    let fresh = crate::auth::api_key::new_key([4; 32]);
    store_key(&f, &fresh, &[]);
    f.header("x-api-key", &fresh);
    f.kv_takes_ms.set(2000.0);
    let mut cx = w.ctx("GET", "https://h.test/r", &f);
    let (sync, ended) = w.run(&mut cx, &f);
    assert_eq!((sync, ended.status()), (false, 200));
    assert_eq!(cx.now_ms, cx.started_ms + 2000.0);
    assert!(
        f.limiter_calls.get() > asked,
        "the store was asked, not the ended lease spent"
    );
}

/// A `claim:` key on a route with two JWT schemes: each issuer's `sub: alice` is its own
/// subject, with its own bucket, as its consumer (`jwt/<scheme>/alice`) is.
#[test]
fn claim_buckets_are_per_scheme_so_one_issuer_cannot_spend_anothers_subject() {
    use crate::auth::test_keys::{self, Signer};
    let staff = "an HMAC secret of more than thirty-two bytes, for staff";
    let partners = "an HMAC secret of more than thirty-two bytes, for partners";
    let w = World::new(json!({
        "auth": {
            "staff": { "type": "jwt", "issuer": "https://staff.example/", "audiences": [test_keys::AUD],
                       "secret": "STAFF", "algorithms": ["HS256"] },
            "partners": { "type": "jwt", "issuer": "https://partners.example/", "audiences": [test_keys::AUD],
                          "secret": "PARTNERS", "algorithms": ["HS256"] }
        },
        "rate_limits": { "per-user": { "key": "claim:sub", "limit": 1, "window_s": 3600 } },
        "routes": [ { "id": "r", "path": "/r", "upstream": "api", "auth": ["staff", "partners"], "rate_limits": ["per-user"] } ]
    }));
    let f = Fakes::at(test_keys::NOW as f64 * 1000.0);
    f.secrets.borrow_mut().insert("STAFF".into(), staff.into());
    f.secrets
        .borrow_mut()
        .insert("PARTNERS".into(), partners.into());
    let alice_of = |issuer: &str, secret: &str| {
        let mut claims = test_keys::good_claims();
        claims["iss"] = issuer.into();
        claims["sub"] = "alice".into();
        let token = test_keys::mint(
            crate::config::Algorithm::Hs256,
            Signer::Hmac(secret.as_bytes()),
            None,
            &claims,
        );
        format!("Bearer {token}")
    };
    let status = |authorization: &str| {
        f.header("authorization", authorization);
        let mut cx = w.ctx("GET", "https://h.test/r", &f);
        w.run(&mut cx, &f).1.status()
    };
    let partner_alice = alice_of("https://partners.example/", partners);
    let staff_alice = alice_of("https://staff.example/", staff);
    assert_eq!(status(&partner_alice), 200);
    assert_eq!(
        status(&staff_alice),
        200,
        "another issuer's alice has her own bucket"
    );
    assert_eq!(status(&partner_alice), 429, "each alice is still limited");
    assert_eq!(status(&staff_alice), 429);
    assert_eq!(f.buckets.borrow().len(), 2);
}

/// A refusal is remembered for the limits that refused: once a new configuration changes the
/// policy, the store decides again under the new limits instead of the isolate refusing from
/// memory until the old instant.
#[test]
fn a_remembered_refusal_ends_when_the_policy_changes() {
    let daily = |limit: u64| {
        json!({
            "rate_limits": { "daily": { "key": "ip", "limit": limit, "window_s": 86400 } },
            "routes": [ { "id": "r", "path": "/r", "upstream": "api", "rate_limits": ["daily"] } ]
        })
    };
    let old = World::new(daily(1));
    let f = Fakes::at(T0);
    for expect in [200, 429, 429] {
        let mut cx = old.ctx("GET", "https://h.test/r", &f);
        assert_eq!(old.run(&mut cx, &f).1.status(), expect);
    }
    assert_eq!(
        f.limiter_calls.get(),
        2,
        "the second refusal was remembered"
    );
    // The operator raises the limit: the same isolate, a new configuration.
    let gateway = gateway(daily(1000));
    let new = World {
        breakers: Breakers::for_gateway(&gateway),
        gateway,
        state: old.state,
    };
    f.now_ms.set(T0 + 3_600_000.0);
    let mut cx = new.ctx("GET", "https://h.test/r", &f);
    let ended = new.run(&mut cx, &f).1;
    assert_eq!(ended.status(), 200, "{ended:?}");
    assert_eq!(f.limiter_calls.get(), 3, "the store was asked");
    // The old admission's day, judged at 1000 a day: 82 800 s of it left is 958.3 admissions'
    // worth; with this one spent, 40 of 1000 remain.
    assert_eq!(ratelimit_field(&f), "\"daily\";r=40;t=82887");
}

/// A bucket known to refuse is not asked again, but the route's other policies are still
/// decided: a refused request spends them (being limited is never a free pass), and the 429
/// carries every policy's fields.
#[test]
fn a_remembered_refusal_still_spends_and_reports_the_other_policies() {
    let w = World::new(json!({
        "rate_limits": {
            "burst": { "key": "ip", "limit": 1, "window_s": 60 },
            "quota": { "key": "ip", "limit": 100, "window_s": 86400 }
        },
        "routes": [ { "id": "r", "path": "/r", "upstream": "api", "rate_limits": ["burst", "quota"] } ]
    }));
    let f = Fakes::at(T0);
    let mut refusals = Vec::new();
    for i in 0..10 {
        let mut cx = w.ctx("GET", "https://h.test/r", &f);
        match w.run(&mut cx, &f).1 {
            Ended::Error(crate::error::GatewayError::RateLimited {
                policy, headers, ..
            }) => {
                assert_eq!(policy, "burst");
                assert_eq!(
                    cx.notes.rate_limit,
                    Some(RateLimitNote::Limited("burst".into()))
                );
                refusals.push(headers);
            }
            ended => assert_eq!((i, ended.status()), (0, 200)),
        }
        f.now_ms.set(f.now_ms.get() + 10.0);
    }
    assert_eq!(refusals.len(), 9);
    // The quota's owner counted all ten requests.
    let quota = crate::ratelimit::Limits {
        limit: 100,
        window_s: 86400,
        burst: 100,
    };
    let buckets = f.buckets.borrow();
    let owner = buckets
        .iter()
        .find(|(name, _)| name.starts_with("rl:quota:"))
        .map(|(_, o)| crate::ratelimit::check(o.state(), &quota, f.now_ms.get() as u64, 0).0)
        .expect("the quota's bucket");
    assert_eq!(owner.remaining, 90);
    // Every refusal, remembered ones included, reports both policies; the quota's remaining
    // goes down with each.
    for (n, headers) in refusals.iter().enumerate() {
        let field = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert_eq!(
            field("ratelimit-policy"),
            "\"burst\";q=1;w=60, \"quota\";q=100;w=86400"
        );
        let quota_left = format!("\"quota\";r={};", 98 - n);
        assert!(
            field("ratelimit").starts_with("\"burst\";r=0;"),
            "{n}: {}",
            field("ratelimit")
        );
        assert!(
            field("ratelimit").contains(&quota_left),
            "{n}: {}",
            field("ratelimit")
        );
    }
    // The refusing bucket was asked once: the nine others of its refusals were remembered, and
    // each request asked the quota's owner once.
    assert_eq!(f.limiter_calls.get(), 10);
}

/// What `RateLimit` on a lease's admission promises with two isolates on a bucket: the owner's
/// answer at the newest grant, with the lease counted as spent. What the other isolate was
/// admitted since is missing from it — and nothing else.
#[test]
fn a_leased_answer_misses_only_what_other_isolates_were_admitted_since_its_grant() {
    let doc = json!({
        "rate_limits": { "shared": { "key": "route", "limit": 2000, "window_s": 1000 } },
        "routes": [ { "id": "r", "path": "/r", "upstream": "api", "rate_limits": ["shared"] } ]
    });
    let (a, b) = (World::new(doc.clone()), World::new(doc));
    let f = Fakes::at(T0);
    busy(&a, &f, 300);
    // Until A asks: the answer it reports is its new lease's grant.
    loop {
        let mut cx = a.ctx("GET", "https://h.test/r", &f);
        if !a.run(&mut cx, &f).0 {
            break;
        }
    }
    let granted_at = f.now_ms.get();
    let granted = r_of(&ratelimit_field(&f));
    // B is admitted a few times, asking the owner each time (it is idle).
    let mut admitted_to_b = 0;
    for _ in 0..5 {
        let mut cx = b.ctx("GET", "https://h.test/r", &f);
        assert_eq!(b.run(&mut cx, &f).1.status(), 200);
        admitted_to_b += 1;
    }
    // A spends its lease: the same answer, which misses B's admissions.
    let mut cx = a.ctx("GET", "https://h.test/r", &f);
    assert!(a.run(&mut cx, &f).0, "admitted from the lease");
    assert!(f.now_ms.get() - granted_at < crate::pipeline::leases::HOLD_MS as f64);
    let reported = r_of(&ratelimit_field(&f));
    assert_eq!(reported, granted);
    let limits = crate::ratelimit::Limits {
        limit: 2000,
        window_s: 1000,
        burst: 2000,
    };
    let owner = crate::ratelimit::check(
        f.buckets.borrow().values().next().and_then(Owner::state),
        &limits,
        f.now_ms.get() as u64,
        0,
    )
    .0;
    assert!(reported > owner.remaining, "{reported} vs {owner:?}");
    assert!(
        reported <= owner.remaining + admitted_to_b,
        "{reported} vs {owner:?}"
    );
}

fn r_of(field: &str) -> u64 {
    field
        .split(";r=")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .and_then(|r| r.parse().ok())
        .expect("r= in the RateLimit field")
}

#[test]
fn a_lease_granted_under_other_limits_is_not_spent_but_offered_back() {
    use crate::pipeline::leases::{LeaseBook, HOLD_MS};
    use crate::ratelimit::{Grant, Limits};
    let old = Limits {
        limit: 1_000,
        window_s: 1,
        burst: 1_000,
    };
    // The configuration, changed while the lease was held: one a day.
    let new = Limits {
        limit: 1,
        window_s: 86_400,
        burst: 1,
    };
    let (decision, _) = crate::ratelimit::check(None, &old, 0, 1);
    let mut book = LeaseBook::default();
    let mut offers = Vec::new();
    let hold = HOLD_MS as f64;
    busy_period(&mut book, 0.0, &mut offers);
    let t = hold + 1.0;
    let ask = book.ask("b", t, &mut offers);
    assert!(ask.want > 1);
    let grant = Grant {
        decision,
        extra: ask.want - 1,
        tag: 7,
    };
    book.answered("b", old, ask, (t, t), Some(&grant));
    assert!(book.may_spend("b", &old, t));
    assert!(!book.may_spend("b", &new, t));
    assert_eq!(book.spend("b", &new, t, &mut offers), None);
    assert_eq!(offers.len(), 1, "{offers:?}");
    assert_eq!(
        (offers[0].limits, offers[0].unused, offers[0].tag),
        (old, ask.want - 1, 7)
    );
    assert!(!book.may_spend("b", &old, t), "given back, not kept");
}

/// A busy period for bucket `b`: 1,000 requests within one hold period from `from_ms`, which
/// make its next ask a full one.
fn busy_period(
    book: &mut crate::pipeline::leases::LeaseBook,
    from_ms: f64,
    offers: &mut Vec<crate::pipeline::ports::GiveBack>,
) {
    let hold = crate::pipeline::leases::HOLD_MS as f64;
    for i in 0..1_000 {
        let _ = book.ask("b", from_ms + f64::from(i) * hold / 1_000.0, offers);
    }
}

#[test]
fn a_slow_owner_makes_a_busy_bucket_ask_for_its_next_lease_earlier() {
    use crate::pipeline::leases::{LeaseBook, HOLD_MS, MAX_WANT};
    let limits = ROOMY;
    let held_at_refill = |round_trip_ms: f64| {
        let mut book = LeaseBook::default();
        let mut offers = Vec::new();
        // 1,000 requests per hold period: 4 per ms.
        busy_period(&mut book, 0.0, &mut offers);
        let t = HOLD_MS as f64 + 1.0;
        let ask = book.ask("b", t, &mut offers);
        assert_eq!(ask.want, MAX_WANT);
        let grant = roomy_grant(ask.want - 1);
        book.answered("b", limits, ask, (t, t + round_trip_ms), Some(&grant));
        let now = t + round_trip_ms;
        while !book.refill_due("b", now) {
            assert!(book.spend("b", &limits, now, &mut offers).is_some());
        }
        book.held("b", now)
    };
    // An owner answering at once: the next lease is asked for when a quarter is left.
    assert_eq!(held_at_refill(0.0), MAX_WANT / 4);
    // 10 ms per ask at 4 requests per ms: 80 arrive during two round trips.
    assert_eq!(held_at_refill(10.0), 80);
    // Never more than half of the want, so every ask is worth its round trip.
    assert_eq!(held_at_refill(100.0), MAX_WANT / 2);
}
