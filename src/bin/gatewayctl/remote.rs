//! The admin API of a deployed gateway as `gatewayctl` uses it, and how its answers become
//! exit codes and one-line messages.

use crate::cli::Cli;
use edge_gateway::control;
use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

/// How a command ended: exit code and what to tell the user (one line on stderr).
pub struct Failure {
    pub code: u8,
    pub message: String,
}

/// The document is invalid.
pub const INVALID: u8 = 1;
/// Usage, network, or any other refusal.
pub const USAGE: u8 = 2;
/// The configuration changed since it was read.
pub const CONFLICT: u8 = 3;

pub fn fail<T>(code: u8, message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure {
        code,
        message: message.into(),
    })
}

/// The configuration the gateway serves now.
pub struct CurrentDoc {
    pub text: String,
    pub etag: String,
    pub digest: String,
    pub source: String,
}

/// A gateway's admin API.
pub struct Remote {
    agent: ureq::Agent,
    base: String,
    token: String,
}

/// An answer of the admin API.
pub struct Answer {
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
    pub fn ok_json(&self) -> Result<serde_json::Value, Failure> {
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
    pub fn new(cli: &Cli) -> Result<Remote, Failure> {
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
    pub fn send(
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

    pub fn current(&self) -> Result<CurrentDoc, Failure> {
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
