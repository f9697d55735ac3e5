//! Checks route files with the same code the worker runs, before they are uploaded to KV.
//!
//! Usage: `validate-routes FILE...` — prints every problem and exits 1 if any file is invalid.

use edge_gateway::gateway::Gateway;
use std::process::ExitCode;

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: validate-routes FILE...");
        return ExitCode::from(2);
    }
    let mut ok = true;
    for file in &files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{file}: cannot read: {e}");
                ok = false;
                continue;
            }
        };
        match Gateway::compile(&text) {
            Ok(g) => println!(
                "{file}: valid ({} routes, {} upstreams, version {})",
                g.config.routes.len(),
                g.config.upstreams.len(),
                g.digest
            ),
            Err(errors) => {
                ok = false;
                eprintln!("{file}: {} error(s)", errors.0.len());
                for e in &errors.0 {
                    eprintln!("  {e}");
                }
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
