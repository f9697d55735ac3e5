use crate::config::TracingSpec;
use crate::ids::IdGenerator;
use crate::observe::sample;
use crate::observe::trace::*;

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn spec(sample_rate: f64, parent_based: bool) -> TracingSpec {
    TracingSpec {
        sample_rate,
        parent_based,
        response_traceparent: false,
    }
}

#[test]
fn a_version_00_traceparent_is_parsed() {
    let p = parse_traceparent(TP).unwrap();
    assert_eq!(p.version, 0);
    assert_eq!(p.trace_id, TraceId(0x4bf92f3577b34da6a3ce929d0e0e4736));
    assert_eq!(p.parent_id, SpanId(0x00f067aa0ba902b7));
    assert!(p.sampled());
    let unsampled = parse_traceparent(&TP.replace("-01", "-00")).unwrap();
    assert!(!unsampled.sampled());
    // Unknown flag bits of version 00 are kept; only the sampled bit is read.
    let other = parse_traceparent(&format!("{}-fe", &TP[..52])).unwrap();
    assert_eq!(other.flags, 0xfe);
    assert!(!other.sampled());
    // Surrounding whitespace (optional whitespace of the header field) is ignored.
    assert!(parse_traceparent(&format!(" {TP}\t")).is_ok());
}

#[test]
fn malformed_traceparents_are_refused() {
    use TraceParentError::*;
    let cases: Vec<(String, TraceParentError)> = vec![
        ("".into(), Malformed),
        ("garbage".into(), Malformed),
        ("00-zz".into(), Malformed),
        (TP.to_uppercase(), Malformed),
        (TP.replace("4bf9", "4BF9"), Malformed),
        (format!("{TP}-extra"), Malformed),
        (format!("{TP}0"), Malformed),
        (TP[..54].to_owned(), Malformed),
        (TP.replacen('-', "_", 1), Malformed),
        (TP.replace("-00f0", "_00f0"), Malformed),
        (TP.replace("b7-01", "b7_01"), Malformed),
        (TP.replace("4bf9", "4bfg"), Malformed),
        (TP.replace("-01", "-0x"), Malformed),
        (format!("0g{}", &TP[2..]), Malformed),
        (format!("ff{}", &TP[2..]), ForbiddenVersion),
        (
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01".into(),
            ZeroId,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01".into(),
            ZeroId,
        ),
    ];
    for (value, want) in cases {
        assert_eq!(parse_traceparent(&value), Err(want), "{value:?}");
    }
}

#[test]
fn a_future_version_is_read_as_version_00_with_what_follows_ignored() {
    let v1 = format!("01{}", &TP[2..]);
    let p = parse_traceparent(&v1).unwrap();
    assert_eq!(p.version, 1);
    assert_eq!(p.trace_id, TraceId(0x4bf92f3577b34da6a3ce929d0e0e4736));
    assert!(p.sampled());
    let longer = format!("cc{}-what-the-future-holds", &TP[2..]);
    assert_eq!(parse_traceparent(&longer).unwrap().version, 0xcc);
    // After the flags: the end or a dash, nothing else.
    assert!(parse_traceparent(&format!("cc{}x", &TP[2..])).is_err());
    // Shorter than version 00 is never parsed.
    assert!(parse_traceparent(&format!("01{}", &TP[2..54])).is_err());
    // Only the sampled bit of a future version's flags is kept.
    let flags = parse_traceparent(&format!("01{}-ff", &TP[2..52])).unwrap();
    assert_eq!(flags.flags, FLAG_SAMPLED);
    // Zero ids are invalid in every version.
    let zero = format!("01-{}-00f067aa0ba902b7-01", "0".repeat(32));
    assert_eq!(parse_traceparent(&zero), Err(TraceParentError::ZeroId));
}

#[test]
fn an_inbound_trace_is_continued_with_a_new_span_whose_parent_is_the_callers() {
    let mut ids = IdGenerator::new([1; 32]);
    let (span, inbound) = SpanContext::start(Some(TP), &spec(0.0, true), &mut ids);
    assert_eq!(inbound, Inbound::Continued);
    assert_eq!(span.trace_id.hex(), &TP[3..35]);
    assert_eq!(span.parent_span_id, Some(SpanId(0x00f067aa0ba902b7)));
    assert_ne!(span.span_id, SpanId(0x00f067aa0ba902b7));
    assert_ne!(span.span_id, SpanId(0));
    assert!(
        span.sampled,
        "parent-based: the inbound flag wins over rate 0"
    );
    let tp = span.traceparent();
    assert_eq!(&tp[..36], &TP[..36]);
    assert_eq!(&tp[36..52], span.span_id.hex());
    assert!(tp.ends_with("-01"));
    assert!(parse_traceparent(&tp).is_ok());
}

#[test]
fn parent_based_keeps_the_inbound_flag_either_way() {
    let mut ids = IdGenerator::new([2; 32]);
    let unsampled = TP.replace("-01", "-00");
    let (span, _) = SpanContext::start(Some(&unsampled), &spec(1.0, true), &mut ids);
    assert!(
        !span.sampled,
        "an unsampled parent stays unsampled at rate 1"
    );
    assert!(span.traceparent().ends_with("-00"));
}

#[test]
fn without_parent_based_an_inbound_trace_is_sampled_by_the_rate() {
    let mut ids = IdGenerator::new([3; 32]);
    let unsampled = TP.replace("-01", "-00");
    let (span, _) = SpanContext::start(Some(&unsampled), &spec(1.0, false), &mut ids);
    assert!(span.sampled);
    let (span, _) = SpanContext::start(Some(TP), &spec(0.0, false), &mut ids);
    assert!(!span.sampled);
    assert!(span.traceparent().ends_with("-00"));
    // In between, the decision is the request's sample key at the rate.
    for _ in 0..200 {
        let (span, _) = SpanContext::start(Some(TP), &spec(0.5, false), &mut ids);
        assert_eq!(span.sampled, sample::keep(span.sample_key, 0.5));
    }
}

#[test]
fn a_client_chosen_trace_id_does_not_choose_the_sample_key() {
    // The same inbound trace id, many requests: the keys differ (drawn per request), so a
    // trace id whose low bits are zero cannot make every request unlogged.
    let low = "00-4bf92f3577b34da6a300000000000001-00f067aa0ba902b7-01";
    assert_eq!(
        sample::key_of_trace_id(parse_traceparent(low).unwrap().trace_id.0),
        1
    );
    let mut ids = IdGenerator::new([4; 32]);
    let kept = (0..1000)
        .filter(|_| {
            let (span, _) = SpanContext::start(Some(low), &spec(1.0, true), &mut ids);
            sample::keep(span.sample_key, 0.5)
        })
        .count();
    assert!((350..650).contains(&kept), "{kept}");
}

#[test]
fn a_new_trace_is_sampled_from_its_own_trace_id() {
    let mut ids = IdGenerator::new([5; 32]);
    let mut sampled = 0;
    for _ in 0..2000 {
        let (span, inbound) = SpanContext::start(None, &spec(0.25, true), &mut ids);
        assert_eq!(inbound, Inbound::Absent);
        assert_eq!(span.parent_span_id, None);
        assert_eq!(span.sample_key, sample::key_of_trace_id(span.trace_id.0));
        assert_eq!(span.sampled, sample::keep(span.sample_key, 0.25));
        sampled += usize::from(span.sampled);
        let tp = span.traceparent();
        assert!(crate::ids::is_valid_traceparent(&tp), "{tp}");
        // Its id is drawn at random, which the random flag says.
        assert!(tp.ends_with(if span.sampled { "-03" } else { "-02" }));
    }
    assert!((400..600).contains(&sampled), "{sampled}");
}

#[test]
fn an_invalid_traceparent_restarts_the_trace() {
    let mut ids = IdGenerator::new([6; 32]);
    let (span, inbound) = SpanContext::start(Some("00-zz"), &spec(1.0, true), &mut ids);
    assert_eq!(inbound, Inbound::Restarted(TraceParentError::Malformed));
    assert_eq!(span.parent_span_id, None);
    assert!(span.sampled);
    let ff = format!("ff{}", &TP[2..]);
    let (span, inbound) = SpanContext::start(Some(&ff), &spec(1.0, true), &mut ids);
    assert_eq!(
        inbound,
        Inbound::Restarted(TraceParentError::ForbiddenVersion)
    );
    assert_ne!(span.trace_id.hex(), &TP[3..35]);
}

#[test]
fn ids_render_as_fixed_width_lower_hex() {
    assert_eq!(TraceId(1).hex(), format!("{}1", "0".repeat(31)));
    assert_eq!(SpanId(0xab).hex(), "00000000000000ab");
    assert_eq!(TraceId(u128::MAX).hex(), "f".repeat(32));
}

#[test]
fn only_the_sampled_and_random_flags_are_forwarded() {
    let mut ids = IdGenerator::new([7; 32]);
    let with = |flags: &str, ids: &mut IdGenerator| {
        let header = format!("{}-{flags}", &TP[..52]);
        let (span, _) = SpanContext::start(Some(&header), &spec(1.0, true), ids);
        span.traceparent()[53..].to_owned()
    };
    assert_eq!(with("01", &mut ids), "01");
    assert_eq!(
        with("03", &mut ids),
        "03",
        "the random flag travels with the trace id"
    );
    assert_eq!(with("02", &mut ids), "02");
    assert_eq!(
        with("ff", &mut ids),
        "03",
        "reserved flags are sent as zero"
    );
    assert_eq!(with("fc", &mut ids), "00");
    // A future version's flags mean nothing here: only its sampled bit is kept.
    let future = format!("01{}-03", &TP[2..52]);
    let (span, _) = SpanContext::start(Some(&future), &spec(1.0, true), &mut ids);
    assert!(span.traceparent().ends_with("-01"));
    // Traces the gateway starts carry the sampled and the random flag (their ids are random).
    let (span, _) = SpanContext::start(None, &spec(1.0, true), &mut ids);
    assert!(span.traceparent().ends_with("-03"));
}
