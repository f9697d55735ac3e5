//! `gatewayctl`: the gateway's control-plane command line.
//!
//! Offline, with the same core the worker runs: `validate`, `explain`. Against a deployed
//! gateway's admin API (`--url`/`GATEWAY_URL`, `--token`/`GATEWAY_ADMIN_TOKEN`): `diff`,
//! `push`, `history`, `rollback`. Exit codes: 0 ok, 1 invalid document, 2 usage or network
//! (or any other refusal), 3 conflict (the configuration changed since it was read).
//! The token is sent only in the `Authorization` header and never printed.

use clap::{Parser, Subcommand};
use edge_gateway::config::Json;
use edge_gateway::control::{self, diff, explain, HistoryEntry};
use edge_gateway::gateway::Gateway;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "gatewayctl",
    version,
    about = "Validate, explain, diff, push and roll back the gateway's route table"
)]
struct Cli {
    /// Base URL of the deployed gateway (https://api.example.com).
    #[arg(long, env = "GATEWAY_URL", global = true)]
    url: Option<String>,
    /// The admin bearer token (the Worker secret named by settings.admin.token_secret).
    #[arg(
        long,
        env = "GATEWAY_ADMIN_TOKEN",
        global = true,
        hide_env_values = true
    )]
    token: Option<String>,
    /// The gateway's settings.admin.path.
    #[arg(
        long,
        env = "GATEWAY_ADMIN_PATH",
        global = true,
        default_value = "/__gateway"
    )]
    admin_path: String,
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

/// How a command ended: exit code and what to tell the user (one line on stderr).
struct Failure {
    code: u8,
    message: String,
}

const INVALID: u8 = 1;
const USAGE: u8 = 2;
const CONFLICT: u8 = 3;

fn fail<T>(code: u8, message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure {
        code,
        message: message.into(),
    })
}

fn main() -> ExitCode {
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
    std::fs::read_to_string(path)
        .or_else(|e| fail(USAGE, format!("{}: cannot read: {e}", path.display())))
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
            Err(f) if f.code == INVALID => invalid = true,
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
    let remote = Remote::new(cli)?;
    let current = remote.current()?;
    let rendered = render_diff(&current.text, &text)?;
    print!("{rendered}");
    if control::document_digest(&text) == current.digest && current.source == "kv" {
        println!("{} is already current; nothing pushed", current.digest);
        return Ok(());
    }
    let expected = if_match.map_or_else(
        || current.etag.clone(),
        |t| control::etag(t.trim().trim_matches('"')),
    );
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

/// The configuration the gateway serves now.
struct CurrentDoc {
    text: String,
    etag: String,
    digest: String,
    source: String,
}

/// A gateway's admin API.
struct Remote {
    agent: ureq::Agent,
    base: String,
    token: String,
}

/// An answer of the admin API.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body of a 2xx answer as JSON, or the failure the answer describes.
    fn ok_json(&self) -> Result<serde_json::Value, Failure> {
        if !(200..300).contains(&self.status) {
            return Err(self.failure());
        }
        serde_json::from_str(&self.body).or_else(|_| {
            fail(
                USAGE,
                format!(
                    "unexpected answer (HTTP {}): not JSON; is this an edge-gateway?",
                    self.status
                ),
            )
        })
    }

    /// What a refusal means, from its problem+json body.
    fn failure(&self) -> Failure {
        let problem: Option<serde_json::Value> = serde_json::from_str(&self.body).ok();
        let code = problem
            .as_ref()
            .and_then(|p| p["code"].as_str())
            .unwrap_or("");
        let detail = problem
            .as_ref()
            .and_then(|p| p["detail"].as_str())
            .unwrap_or("");
        let is_problem = self
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/problem+json"));
        if !is_problem || code.is_empty() {
            return Failure {
                code: USAGE,
                message: format!(
                    "unexpected answer (HTTP {}) that is not from an edge-gateway admin API: check --url and --admin-path",
                    self.status
                ),
            };
        }
        match (self.status, code) {
            (412, _) => Failure {
                code: CONFLICT,
                message: format!(
                    "conflict: the configuration changed since it was read (current version {}); run diff and push again",
                    self.header("etag").unwrap_or("?").trim_matches('"')
                ),
            },
            (422, _) => {
                let errors = problem
                    .as_ref()
                    .and_then(|p| p["errors"].as_array().cloned())
                    .unwrap_or_default();
                for e in &errors {
                    let path = e["path"].as_str().unwrap_or("");
                    let message = e["message"].as_str().unwrap_or("");
                    if path.is_empty() {
                        eprintln!("  {message}");
                    } else {
                        eprintln!("  {path}: {message}");
                    }
                }
                Failure {
                    code: INVALID,
                    message: format!("the gateway refused the document: {detail}"),
                }
            }
            (413, _) => Failure {
                code: INVALID,
                message: format!("the gateway refused the document: {detail}"),
            },
            (401, _) => Failure {
                code: USAGE,
                message: "the admin token was refused (check --token / GATEWAY_ADMIN_TOKEN)".into(),
            },
            (404, "route_not_found") => Failure {
                code: USAGE,
                message: "this gateway has no configuration API at that path (check --admin-path, or deploy this version)".into(),
            },
            (status, code) => Failure {
                code: USAGE,
                message: format!("the gateway answered {status} {code}: {detail}"),
            },
        }
    }
}

impl Remote {
    fn new(cli: &Cli) -> Result<Remote, Failure> {
        let Some(url) = cli.url.as_deref().filter(|u| !u.is_empty()) else {
            return fail(USAGE, "the gateway's URL is needed: --url or GATEWAY_URL");
        };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return fail(
                USAGE,
                format!("--url \"{url}\" must start with https:// or http://"),
            );
        }
        let Some(token) = cli.token.clone().filter(|t| !t.is_empty()) else {
            return fail(
                USAGE,
                "the admin token is needed: --token or GATEWAY_ADMIN_TOKEN",
            );
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(300)))
            .build();
        Ok(Remote {
            agent: ureq::Agent::new_with_config(config),
            base: format!(
                "{}{}",
                url.trim_end_matches('/'),
                cli.admin_path.trim_end_matches('/')
            ),
            token,
        })
    }

    /// One request; a network failure is one line and exit 2, with nothing half-written
    /// (the gateway applies a push only once it has the whole body).
    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        progress: Option<&str>,
    ) -> Result<Answer, Failure> {
        let url = format!("{}{path}", self.base);
        let builder = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("authorization", format!("Bearer {}", self.token));
        let builder = headers.iter().fold(builder, |b, (n, v)| b.header(*n, *v));
        let network = |e: ureq::Error| Failure {
            code: USAGE,
            message: format!("cannot reach {url}: {e}"),
        };
        let mut response = if method == "GET" {
            let request = builder
                .body(())
                .or_else(|e| fail(USAGE, format!("{url}: {e}")))?;
            self.agent.run(request).map_err(network)?
        } else {
            let total = body.len() as u64;
            let show = progress.is_some() && total > 1024 * 1024 && std::io::stderr().is_terminal();
            let mut reader = Progress {
                inner: std::io::Cursor::new(body),
                sent: 0,
                total,
                shown: 0,
                label: progress.unwrap_or(""),
                show,
            };
            let request = builder
                .header("content-length", total.to_string())
                .body(ureq::SendBody::from_reader(&mut reader))
                .or_else(|e| fail(USAGE, format!("{url}: {e}")))?;
            let result = self.agent.run(request);
            if show {
                eprintln!();
            }
            result.map_err(network)?
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(control::MAX_DOCUMENT_BYTES + 1024 * 1024)
            .read_to_string()
            .or_else(|e| fail(USAGE, format!("reading the answer of {url}: {e}")))?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    fn current(&self) -> Result<CurrentDoc, Failure> {
        let answer = self.send("GET", "/config", &[], Vec::new(), None)?;
        if answer.status != 200 {
            return Err(answer.failure());
        }
        let (Some(etag), Some(source)) = (answer.header("etag"), answer.header("x-config-source"))
        else {
            return fail(
                USAGE,
                "the answer to GET /config lacks ETag or X-Config-Source: this URL is not an edge-gateway admin API",
            );
        };
        if let Some(rejected) = answer.header("x-config-rejected") {
            eprintln!(
                "warning: KV's routes holds an invalid document ({}); the gateway serves its {source} version",
                rejected.trim_matches('"')
            );
        }
        Ok(CurrentDoc {
            etag: etag.to_owned(),
            digest: etag.trim_matches('"').to_owned(),
            source: source.to_owned(),
            text: answer.body,
        })
    }
}

/// A body reader that draws a progress line on a terminal.
struct Progress<'a> {
    inner: std::io::Cursor<Vec<u8>>,
    sent: u64,
    total: u64,
    shown: u64,
    label: &'a str,
    show: bool,
}

impl Read for Progress<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent += n as u64;
        let percent = (self.sent * 100).checked_div(self.total).unwrap_or(100);
        if self.show && (percent != self.shown || n == 0) {
            self.shown = percent;
            let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
            eprint!(
                "\r{}: {:.1} of {:.1} MiB ({percent}%)",
                self.label,
                mib(self.sent),
                mib(self.total)
            );
            let _ = std::io::stderr().flush();
        }
        Ok(n)
    }
}
