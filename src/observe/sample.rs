//! The one keep-or-drop decision behind trace, log and metrics sampling.
//!
//! Each request carries one 56-bit random value (its *sample key*, see
//! [`super::trace::SpanContext::sample_key`]); a rate `r` keeps the request when the key is at
//! least the threshold `(1 - r)·2^56`. This is OpenTelemetry's consistent probability sampling
//! (W3C Trace Context level 2 puts the randomness in the trace id's low 56 bits), so:
//! - every decision about one request at the same rate agrees, and a request kept at a lower
//!   rate is kept at every higher one (a logged request at `sample_rate` 0.1 is also traced at
//!   0.5 and counted at 1.0);
//! - rate 1 keeps everything, rate 0 nothing, with no floating-point edge in between.

/// Keys are 56-bit: `0..2^56`.
pub const KEY_BITS: u32 = 56;
const SPAN: u64 = 1 << KEY_BITS;

/// The sample key of a 128-bit trace id: its low 56 bits.
pub fn key_of_trace_id(trace_id: u128) -> u64 {
    (trace_id as u64) & (SPAN - 1)
}

/// The smallest key kept at `rate`: `(1 - rate)·2^56`, `2^56` (nothing) for rate 0 or NaN.
pub fn threshold(rate: f64) -> u64 {
    if rate.is_nan() || rate <= 0.0 {
        return SPAN;
    }
    if rate >= 1.0 {
        return 0;
    }
    // 2^56 is exact in f64; the product stays below it, so the cast cannot saturate wrongly.
    ((1.0 - rate) * SPAN as f64).round() as u64
}

/// Whether a request with sample key `key` is kept at `rate`.
pub fn keep(key: u64, rate: f64) -> bool {
    (key & (SPAN - 1)) >= threshold(rate)
}

/// How many requests one kept request stands for at `rate` (what metrics multiply by);
/// 1 for rates at or above 1, and for 0 (nothing is kept then).
pub fn factor(rate: f64) -> f64 {
    if rate > 0.0 && rate < 1.0 {
        1.0 / rate
    } else {
        1.0
    }
}
