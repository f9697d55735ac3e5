//! W3C Trace Context (`traceparent`) for the gateway's hop.
//!
//! The gateway is a participant, not a pass-through: it starts a span of its own whose parent is
//! the inbound span, forwards that span upstream, and may return it to the client. Sampling
//! follows `observability.tracing`: new traces by `sample_rate`, inbound ones by their sampled
//! flag when `parent_based`.

use crate::config::TracingSpec;
use crate::ids::IdGenerator;
use crate::observe::sample;

/// A 128-bit trace id; valid ones are never zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct TraceId(pub u128);

/// A 64-bit span id; valid ones are never zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct SpanId(pub u64);

impl TraceId {
    /// 32 lower-case hex digits.
    pub fn hex(self) -> String {
        let mut out = String::with_capacity(32);
        push_hex(&mut out, &self.0.to_be_bytes());
        out
    }
}

impl SpanId {
    /// 16 lower-case hex digits.
    pub fn hex(self) -> String {
        let mut out = String::with_capacity(16);
        push_hex(&mut out, &self.0.to_be_bytes());
        out
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        crate::hex::push_lower(out, *b);
    }
}

/// The sampled bit of `trace-flags`.
pub const FLAG_SAMPLED: u8 = 0x01;
/// The random bit of `trace-flags` (Trace Context level 2): the trace id's low 56 bits are
/// random. It describes the trace id, so it travels with it.
pub const FLAG_RANDOM: u8 = 0x02;

/// A parsed inbound `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub version: u8,
    pub trace_id: TraceId,
    /// The caller's span: the parent of the gateway's.
    pub parent_id: SpanId,
    pub flags: u8,
}

impl TraceParent {
    pub fn sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }
}

/// Why an inbound `traceparent` was not used (the trace is then restarted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceParentError {
    /// Not `version-traceid-parentid-flags` of lower-case hex of the right lengths.
    Malformed,
    /// Version `ff`, forbidden by the specification.
    ForbiddenVersion,
    /// The trace id or the parent id is all zeros.
    ZeroId,
}

/// Parses a `traceparent` header (W3C Trace Context §3.2).
///
/// Version `00` must be exactly 55 characters. A higher version is read as the specification
/// asks of a version-00 implementation: at least 55 characters, the version-00 fields in
/// place, and after the flags either the end or a `-` (what follows is ignored). Only the
/// sampled flag of a future version is kept, since its other bits mean nothing to version 00.
pub fn parse_traceparent(value: &str) -> Result<TraceParent, TraceParentError> {
    let value = value.trim_matches([' ', '\t']);
    let b = value.as_bytes();
    if b.len() < 55 {
        return Err(TraceParentError::Malformed);
    }
    let version = hex_byte(&b[0..2]).ok_or(TraceParentError::Malformed)?;
    if version == 0xff {
        return Err(TraceParentError::ForbiddenVersion);
    }
    let dashes = b[2] == b'-' && b[35] == b'-' && b[52] == b'-';
    let tail_ok = if version == 0 {
        b.len() == 55
    } else {
        b.len() == 55 || b[55] == b'-'
    };
    if !dashes || !tail_ok {
        return Err(TraceParentError::Malformed);
    }
    let trace_id = hex_u128(&b[3..35]).ok_or(TraceParentError::Malformed)?;
    let parent_id = hex_u64(&b[36..52]).ok_or(TraceParentError::Malformed)?;
    let mut flags = hex_byte(&b[53..55]).ok_or(TraceParentError::Malformed)?;
    if trace_id == 0 || parent_id == 0 {
        return Err(TraceParentError::ZeroId);
    }
    if version != 0 {
        flags &= FLAG_SAMPLED;
    }
    Ok(TraceParent {
        version,
        trace_id: TraceId(trace_id),
        parent_id: SpanId(parent_id),
        flags,
    })
}

/// Lower-case hex only: the specification forbids upper case.
fn digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn hex_byte(s: &[u8]) -> Option<u8> {
    Some(digit(*s.first()?)? << 4 | digit(*s.get(1)?)?)
}

fn hex_u64(s: &[u8]) -> Option<u64> {
    s.iter()
        .try_fold(0u64, |acc, c| Some(acc << 4 | u64::from(digit(*c)?)))
}

fn hex_u128(s: &[u8]) -> Option<u128> {
    s.iter()
        .try_fold(0u128, |acc, c| Some(acc << 4 | u128::from(digit(*c)?)))
}

/// The gateway's span in a trace, and the sampling decision for the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpanContext {
    pub trace_id: TraceId,
    /// The gateway's own span, new for every request.
    pub span_id: SpanId,
    /// The inbound span, when the request carried a usable `traceparent`.
    pub parent_span_id: Option<SpanId>,
    /// The sampled flag the gateway forwards.
    pub sampled: bool,
    /// The random flag the gateway forwards: the inbound one for a continued version-00 trace
    /// (it describes the trace id, which is kept); set for a trace the gateway starts, whose
    /// id is drawn at random, so that samplers further on may use its low 56 bits as it does.
    pub random_trace_id: bool,
    /// The 56-bit value every sampling decision of this request uses ([`sample`]): the trace
    /// id's low 56 bits for a trace the gateway started (its id is random); for an inbound trace
    /// id, which the client chose, a random value drawn for the request — so a client cannot
    /// pick a trace id that is never logged or counted.
    pub sample_key: u64,
}

/// What became of the inbound `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    Absent,
    /// Used: the gateway's span is its child.
    Continued,
    /// Unusable, so the trace was restarted (and its `tracestate` must not be forwarded).
    Restarted(TraceParentError),
}

impl SpanContext {
    /// Starts the gateway's span for a request whose `traceparent` header is `header`.
    pub fn start(
        header: Option<&str>,
        spec: &TracingSpec,
        ids: &mut IdGenerator,
    ) -> (SpanContext, Inbound) {
        let parsed = header.map(parse_traceparent);
        let span_id = SpanId(ids.span_id());
        match parsed {
            Some(Ok(parent)) => {
                let sample_key = ids.next_u64() >> (64 - sample::KEY_BITS);
                let sampled = if spec.parent_based {
                    parent.sampled()
                } else {
                    sample::keep(sample_key, spec.sample_rate)
                };
                let span = SpanContext {
                    trace_id: parent.trace_id,
                    span_id,
                    parent_span_id: Some(parent.parent_id),
                    sampled,
                    random_trace_id: parent.version == 0 && parent.flags & FLAG_RANDOM != 0,
                    sample_key,
                };
                (span, Inbound::Continued)
            }
            other => {
                let trace_id = TraceId(ids.trace_id());
                let sample_key = sample::key_of_trace_id(trace_id.0);
                let span = SpanContext {
                    trace_id,
                    span_id,
                    parent_span_id: None,
                    sampled: sample::keep(sample_key, spec.sample_rate),
                    random_trace_id: true,
                    sample_key,
                };
                let inbound = match other {
                    Some(Err(e)) => Inbound::Restarted(e),
                    _ => Inbound::Absent,
                };
                (span, inbound)
            }
        }
    }

    /// The `traceparent` naming the gateway's span: forwarded upstream, and returned to the
    /// client with `response_traceparent`. Always version 00 (the version the gateway speaks),
    /// with the sampled and random flags only.
    pub fn traceparent(&self) -> String {
        let mut out = String::with_capacity(55);
        out.push_str("00-");
        push_hex(&mut out, &self.trace_id.0.to_be_bytes());
        out.push('-');
        push_hex(&mut out, &self.span_id.0.to_be_bytes());
        out.push('-');
        let mut flags = if self.sampled { FLAG_SAMPLED } else { 0 };
        if self.random_trace_id {
            flags |= FLAG_RANDOM;
        }
        // Every other flag is reserved and sent as zero.
        crate::hex::push_lower(&mut out, flags);
        out
    }
}
