use crate::cache::range::{select, RangeAnswer, Validators};

const LM: &str = "Wed, 21 Oct 2026 07:28:00 GMT";

fn stored() -> Validators<'static> {
    Validators {
        etag: Some("\"v1\""),
        last_modified: Some(LM),
    }
}

fn answer(range: &str, length: u64) -> RangeAnswer {
    select(Some(range), None, 200, Some(length), stored())
}

fn partial(start: u64, end: u64, length: u64) -> RangeAnswer {
    RangeAnswer::Partial { start, end, length }
}

#[test]
fn single_ranges() {
    let cases: &[(&str, RangeAnswer)] = &[
        ("bytes=0-3", partial(0, 3, 10)),
        ("bytes=0-0", partial(0, 0, 10)),
        ("bytes=9-9", partial(9, 9, 10)),
        ("bytes=5-", partial(5, 9, 10)),
        ("bytes=5-100", partial(5, 9, 10)),
        ("bytes=-3", partial(7, 9, 10)),
        ("bytes=-100", partial(0, 9, 10)),
        ("BYTES=1-2", partial(1, 2, 10)),
        ("bytes = 1-2", partial(1, 2, 10)),
        ("bytes=1-2,", partial(1, 2, 10)),
        (" bytes=1-2 ", partial(1, 2, 10)),
        ("bytes=10-", RangeAnswer::Unsatisfiable { length: 10 }),
        ("bytes=10-20", RangeAnswer::Unsatisfiable { length: 10 }),
        ("bytes=-0", RangeAnswer::Unsatisfiable { length: 10 }),
        // Ignored: the whole response.
        ("bytes=0-1,3-4", RangeAnswer::Full),
        ("bytes=5-2", RangeAnswer::Full),
        ("bytes=", RangeAnswer::Full),
        ("bytes=-", RangeAnswer::Full),
        ("bytes=a-b", RangeAnswer::Full),
        ("bytes=1-2-3", RangeAnswer::Full),
        ("bytes=+1-2", RangeAnswer::Full),
        ("bytes=99999999999999999999-", RangeAnswer::Full),
        ("items=0-1", RangeAnswer::Full),
        ("0-1", RangeAnswer::Full),
    ];
    for (range, want) in cases {
        assert_eq!(answer(range, 10), *want, "{range:?}");
    }
    assert_eq!(
        answer("bytes=-5", 0),
        RangeAnswer::Unsatisfiable { length: 0 }
    );
    assert_eq!(
        answer("bytes=0-", 0),
        RangeAnswer::Unsatisfiable { length: 0 }
    );
}

#[test]
fn only_a_stored_200_of_known_length_is_cut() {
    assert_eq!(
        select(None, None, 200, Some(10), stored()),
        RangeAnswer::Full
    );
    assert_eq!(
        select(Some("bytes=0-1"), None, 200, None, stored()),
        RangeAnswer::Full
    );
    for status in [203, 204, 301, 404] {
        assert_eq!(
            select(Some("bytes=0-1"), None, status, Some(10), stored()),
            RangeAnswer::Full,
            "{status}"
        );
    }
}

#[test]
fn if_range_needs_a_strong_match() {
    let with =
        |if_range: &str, v: Validators| select(Some("bytes=0-1"), Some(if_range), 200, Some(10), v);
    assert_eq!(with("\"v1\"", stored()), partial(0, 1, 10));
    assert_eq!(with(" \"v1\" ", stored()), partial(0, 1, 10));
    assert_eq!(with("\"v2\"", stored()), RangeAnswer::Full);
    assert_eq!(
        with("W/\"v1\"", stored()),
        RangeAnswer::Full,
        "weak never matches"
    );
    let weak = Validators {
        etag: Some("W/\"v1\""),
        ..stored()
    };
    assert_eq!(with("\"v1\"", weak), RangeAnswer::Full);
    assert_eq!(with(LM, stored()), partial(0, 1, 10));
    assert_eq!(
        with("Wed, 21 Oct 2026 07:28:01 GMT", stored()),
        RangeAnswer::Full
    );
    assert_eq!(with("not a date", stored()), RangeAnswer::Full);
    let none = Validators::default();
    assert_eq!(with("\"v1\"", none), RangeAnswer::Full);
    assert_eq!(with(LM, none), RangeAnswer::Full);
}
