use crate::cache::entry::{lookup, EntryMeta, Lookup};
use crate::cache::request::{answerable_from_cache, apply, RequestDirectives};

/// Stored at t = 1000 s with age 0, fresh for 60 s, 30 s of stale-while-revalidate.
const META: EntryMeta = EntryMeta {
    stored_at_ms: 1_000_000,
    initial_age_s: 0,
    lifetime_s: 60,
    stale_if_error_s: 0,
    stale_while_revalidate_s: 30,
    forbids_stale: false,
};

fn at(age_s: u64, meta: &EntryMeta, cc: &str) -> Lookup {
    let found = lookup(meta, meta.stored_at_ms + age_s * 1000, None);
    apply(found, meta, &RequestDirectives::parse(Some(cc)))
}

fn fresh(l: &Lookup) -> bool {
    matches!(l, Lookup::Fresh { .. })
}

fn revalidating_in_background(l: &Lookup) -> bool {
    matches!(
        l,
        Lookup::Stale {
            serve_while_revalidating: true,
            ..
        }
    )
}

#[test]
fn without_directives_nothing_changes() {
    assert!(fresh(&at(10, &META, "")));
    assert!(revalidating_in_background(&at(70, &META, "")));
    assert!(fresh(&at(10, &META, "foo, max-stale=x=1")));
}

#[test]
fn no_cache_max_age_and_min_fresh_force_revalidation() {
    for cc in [
        "no-cache",
        "max-age=5",
        "min-fresh=55",
        "max-age=abc",
        "MAX-AGE=5",
    ] {
        let l = at(10, &META, cc);
        assert!(
            matches!(
                l,
                Lookup::Stale {
                    serve_on_error: true,
                    serve_while_revalidating: false,
                    ..
                }
            ),
            "{cc}: {l:?}"
        );
        assert!(!answerable_from_cache(&l));
    }
    assert!(fresh(&at(10, &META, "max-age=10")));
    assert!(fresh(&at(10, &META, "min-fresh=50")));
    // A stale entry is not served while revalidating to a client that wants it younger.
    assert!(!revalidating_in_background(&at(70, &META, "max-age=60")));
}

#[test]
fn max_stale_accepts_stale_entries_the_upstream_allows() {
    assert!(fresh(&at(70, &META, "max-stale=10")));
    assert!(fresh(&at(70, &META, "max-stale")));
    assert!(!fresh(&at(75, &META, "max-stale=10")));
    assert!(
        !fresh(&at(70, &META, "max-stale=x")),
        "invalid: no staleness"
    );
    let strict = EntryMeta {
        forbids_stale: true,
        stale_while_revalidate_s: 0,
        ..META
    };
    assert!(!fresh(&at(70, &strict, "max-stale")));
    // max-age still applies alongside max-stale.
    assert!(!fresh(&at(70, &META, "max-stale=100, max-age=65")));
}

#[test]
fn only_if_cached_is_read() {
    assert!(RequestDirectives::parse(Some("only-if-cached")).only_if_cached);
    assert!(RequestDirectives::parse(Some(" ONLY-IF-CACHED , max-age=1")).only_if_cached);
    assert!(!RequestDirectives::parse(None).only_if_cached);
}
