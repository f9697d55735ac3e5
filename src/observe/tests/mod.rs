//! Host tests of the observability core, one file per module.

mod access_log;
mod client_ip;
mod metrics;
mod redact;
mod sample;
mod shown;
mod trace;
