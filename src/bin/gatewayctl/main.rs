//! `gatewayctl`: the gateway's control-plane command line.
//!
//! Offline, with the same core the worker runs: `validate`, `explain`. Against a deployed
//! gateway's admin API (`--url`/`GATEWAY_URL`, `--token`/`GATEWAY_ADMIN_TOKEN`): `diff`,
//! `push`, `history`, `rollback`. Exit codes: 0 ok, 1 invalid document, 2 usage or network
//! (or any other refusal), 3 conflict (the configuration changed since it was read).
//! The token is sent only in the `Authorization` header and never printed.

#[cfg(not(target_arch = "wasm32"))]
mod cli;
#[cfg(not(target_arch = "wasm32"))]
mod remote;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    cli::main()
}

/// A host program: the wasm32 build of this crate (the Worker) has no use for it.
#[cfg(target_arch = "wasm32")]
fn main() {}
