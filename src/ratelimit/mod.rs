//! Rate limiting: the pure core. No clock, no storage, no `worker`.
//!
//! A request on a route with `rate_limits` is checked against each listed policy:
//!
//! 1. [`bucket_key`] turns the policy and the request's facts (client address, route, consumer,
//!    claims, a header) into the name of the bucket, `rl:<policy>:<sha-256>`. The platform
//!    addresses the Durable Object of that name.
//! 2. Inside that object, [`check`] decides the request from the bucket's [`GcraState`], the
//!    policy's [`Limits`], the current time as a number of milliseconds and the request's
//!    cost, and returns the [`Decision`] and the state to write back (if it changed).
//! 3. The worker reports the decisions with [`policy_header`] and [`ratelimit_header`], and
//!    answers a denied one with 429 and `Retry-After` (the [`most_restrictive`] denial's
//!    `retry_after_s`).
//!
//! # The algorithm
//!
//! GCRA (the generic cell rate algorithm, as used by ATM networks and by `redis-cell`) is a
//! token bucket expressed as one timestamp. A policy of `limit` per `window_s` seconds emits
//! one unit every `T = window_s / limit` seconds; the bucket holds `burst` units, i.e. it
//! tolerates arrivals up to `τ = (burst − 1)·T` ahead of schedule. The state is the theoretical
//! arrival time `tat`; a request of cost `c` at `now` passes iff `max(tat, now) + c·T − now ≤
//! burst·T`, and then `tat` advances by `c·T`. There is no window boundary at which a client
//! can double up, no refill bookkeeping, and the state is one timestamp. See [`gcra`] for
//! precision (exact: ticks of `1/limit` ns, `u128` intermediates) and edge cases (clock steps,
//! idle buckets, costs above `burst`).
//!
//! # Exactness
//!
//! Each bucket is owned by one Durable Object, and a Durable Object is single-threaded:
//! requests for one bucket are decided one at a time, each seeing the state the previous one
//! wrote. So a decision is exact, not an estimate merged across isolates or data centres, as
//! long as the object reads the state, calls [`check`] and writes the returned state without
//! yielding to another request in between (the storage API's input/output gates give exactly
//! that), and no answer goes out before storage holds what it was decided in ([`persist`]), so
//! a restart at any moment never grants an admission twice. What happens when the object
//! cannot be reached is the policy's `on_store_error`, decided by the platform.

pub mod bucket;
pub mod gcra;
pub mod headers;
pub mod lease;
pub mod persist;
pub mod wire;

pub use bucket::{bucket_key, fixed_bucket_key, no_headers, KeyError, KeyFacts};
pub use gcra::{check, Decision, GcraState, Limits};
pub use headers::{most_restrictive, policy_header, ratelimit_header};
pub use lease::{lease, Grant, LeaseAsk, Owner};

#[cfg(test)]
mod tests;
