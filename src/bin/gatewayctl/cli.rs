//! The commands of `gatewayctl` and their output.

use crate::remote::{Remote, INVALID, USAGE};
use clap::{Parser, Subcommand};
use edge_gateway::config::Json;
use edge_gateway::control::{self, diff, explain, HistoryEntry};
use edge_gateway::gateway::Gateway;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The command line.
#[derive(Parser)]
#[command(
    name = "gatewayctl",
    version,
    about = "Validate, explain, diff, push and roll back the gateway's route table"
)]
pub struct Cli {
    /// Base URL of the deployed gateway (https://api.example.com).
    #[arg(long, env = "GATEWAY_URL", global = true)]
    pub url: Option<String>,
    /// The admin bearer token (the Worker secret named by settings.admin.token_secret).
    #[arg(
        long,
        env = "GATEWAY_ADMIN_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// The gateway's settings.admin.path.
    #[arg(
        long,
        env = "GATEWAY_ADMIN_PATH",
        global = true,
        default_value = "/__gateway"
    )]
    pub admin_path: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check route files with the gateway's own validator.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Show what the gateway would do with a request: route, stages, upstream URL or refusal.
    Explain {
        /// The route file to explain against.
        #[arg(long, default_value = "routes.json")]
        config: PathBuf,
        method: String,
        /// The request's absolute URL (https://api.example.com/v1/users/42).
        request_url: String,
        /// A request header, `name: value` (repeatable).
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
    },
    /// Compare a route file with the configuration the gateway serves.
    Diff { file: PathBuf },
    /// Validate locally, show the diff, then make the file the gateway's configuration.
    Push {
        file: PathBuf,
        /// Recorded in the history beside the version.
        #[arg(long)]
        note: Option<String>,
        /// Push only if this is still the current version (an ETag or digest from `diff` or
        /// `history`); by default, the version read just before pushing.
        #[arg(long)]
        if_match: Option<String>,
    },
    /// List the versions pushed, newest first.
    History,
    /// Make a version from the history current again.
    Rollback { digest: String },
}

pub use crate::remote::{fail, Failure};

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("gatewayctl: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Validate { files } => validate(files),
        Command::Explain {
            config,
            method,
            request_url,
            headers,
        } => explain_request(config, method, request_url, headers),
        Command::Diff { file } => {
            let (_, local) = read_valid(file)?;
            let remote = Remote::new(cli)?;
            let current = remote.current()?;
            print!("{}", render_diff(&current.text, &local)?);
            println!("(current version {})", current.digest);
            Ok(())
        }
        Command::Push {
            file,
            note,
            if_match,
        } => push(cli, file, note.as_deref(), if_match.as_deref()),
        Command::History => history(cli),
        Command::Rollback { digest } => {
            let remote = Remote::new(cli)?;
            let body = serde_json::json!({ "digest": digest }).to_string();
            let answer = remote.send("POST", "/config/rollback", &[], body.into_bytes(), None)?;
            let v = answer.ok_json()?;
            println!(
                "rolled back to {} (replaces {})",
                v["digest"].as_str().unwrap_or("?"),
                v["previous"].as_str().unwrap_or("?")
            );
            Ok(())
        }
    }
}

fn read_file(path: &Path) -> Result<String, Failure> {
    let bytes = std::fs::read(path)
        .or_else(|e| fail(USAGE, format!("{}: cannot read: {e}", path.display())))?;
    // A file that is not UTF-8 is an invalid document (exit 1), not a usage error.
    // Printed here, like the validator's errors (`validate` goes on to the next file).
    String::from_utf8(bytes).or_else(|e| {
        eprintln!(
            "{}: not UTF-8 (the byte at offset {} is not): save it as UTF-8",
            path.display(),
            e.utf8_error().valid_up_to()
        );
        fail(INVALID, "")
    })
}

/// The file's text, once it passes the validator (every error is printed otherwise).
fn read_valid(path: &Path) -> Result<(Gateway, String), Failure> {
    let text = read_file(path)?;
    if text.len() as u64 > control::MAX_DOCUMENT_BYTES {
        return fail(
            INVALID,
            format!("{}: larger than KV's 25 MiB value limit", path.display()),
        );
    }
    match Gateway::compile(&text) {
        Ok(g) => Ok((g, text)),
        Err(errors) => {
            eprintln!("{}: {} error(s)", path.display(), errors.0.len());
            for e in &errors.0 {
                eprintln!("  {e}");
            }
            fail(INVALID, "")
        }
    }
}

fn validate(files: &[PathBuf]) -> Result<(), Failure> {
    let mut invalid = false;
    for file in files {
        match read_valid(file) {
            Ok((g, text)) => println!(
                "{}: valid ({} routes, {} upstreams, version {})",
                file.display(),
                g.config.routes.len(),
                g.config.upstreams.len(),
                control::document_digest(&text)
            ),
            // The next file is checked too, so this one's reason is printed here (the
            // validator's errors already were; a file over KV's limit has only this line).
            Err(f) if f.code == INVALID => {
                if !f.message.is_empty() {
                    eprintln!("{}", f.message);
                }
                invalid = true;
            }
            Err(f) => return Err(f),
        }
    }
    if invalid {
        fail(INVALID, "")
    } else {
        Ok(())
    }
}

fn explain_request(
    config: &Path,
    method: &str,
    url: &str,
    headers: &[String],
) -> Result<(), Failure> {
    let (gateway, _) = read_valid(config)?;
    let mut parsed = Vec::new();
    for h in headers {
        let Some((name, value)) = h.split_once(':') else {
            return fail(USAGE, format!("-H \"{h}\": expected 'name: value'"));
        };
        parsed.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let e = explain::explain(&gateway, method, url, &parsed).or_else(|e| fail(USAGE, e))?;
    print!("{}", explain::render(method, url, &e));
    Ok(())
}

fn render_diff(remote: &str, local: &str) -> Result<String, Failure> {
    let before = Json::parse(remote)
        .or_else(|e| fail(USAGE, format!("the gateway's document is not JSON: {e}")))?;
    let after = Json::parse(local).or_else(|e| fail(INVALID, e))?;
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    Ok(diff::render(&diff::diff(&before, &after), color))
}

fn push(cli: &Cli, file: &Path, note: Option<&str>, if_match: Option<&str>) -> Result<(), Failure> {
    let (_, text) = read_valid(file)?;
    let if_match = match if_match {
        None => None,
        Some(given) => Some(control::if_match_for(given).ok_or_else(|| Failure {
            code: USAGE,
            message: format!(
                "--if-match \"{given}\" names no version: give a full digest (sha256: and 64 hex digits, as diff and history show it), its ETag, or * to push over any version"
            ),
        })?),
    };
    let remote = Remote::new(cli)?;
    let current = remote.current()?;
    let rendered = render_diff(&current.text, &text)?;
    print!("{rendered}");
    if control::document_digest(&text) == current.digest && current.source == "kv" {
        println!("{} is already current; nothing pushed", current.digest);
        return Ok(());
    }
    let expected = if_match.unwrap_or_else(|| current.etag.clone());
    let mut path = "/config".to_owned();
    if let Some(note) = note {
        let encoded: String = url_encode(note);
        path.push_str(&format!("?note={encoded}"));
    }
    let answer = remote.send(
        "PUT",
        &path,
        &[
            ("if-match", expected.as_str()),
            ("content-type", "application/json"),
        ],
        text.into_bytes(),
        Some("pushing"),
    )?;
    let v = answer.ok_json()?;
    println!(
        "pushed {} (replaces {}); every isolate applies it within settings.reload_s, every location within about 60 s",
        v["digest"].as_str().unwrap_or("?"),
        v["previous"].as_str().unwrap_or("?")
    );
    Ok(())
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn history(cli: &Cli) -> Result<(), Failure> {
    let remote = Remote::new(cli)?;
    let current = remote.current()?;
    let answer = remote.send("GET", "/config/history", &[], Vec::new(), None)?;
    let v = answer.ok_json()?;
    let entries: Vec<HistoryEntry> = serde_json::from_value(v)
        .or_else(|e| fail(USAGE, format!("unexpected history from the gateway: {e}")))?;
    if entries.is_empty() {
        println!(
            "no pushes recorded (current version {}, {})",
            current.digest, current.source
        );
    }
    for e in &entries {
        let mark = if e.digest == current.digest { "*" } else { " " };
        let when = edge_gateway::cache::format_http_date((e.at_ms / 1000) as i64);
        println!(
            "{mark} {}  {when}  {} bytes  {}",
            e.digest,
            e.size,
            e.note.as_deref().unwrap_or("")
        );
    }
    Ok(())
}
