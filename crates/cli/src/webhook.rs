//! Webhooks to the ticket of record: the delivery worker of `dialtone serve` (`--webhooks
//! FILE`), and `dialtone webhook log|redeliver`.
//!
//! The store writes an outbox event for every opening, escalation and closing in the change's
//! own transaction; this worker posts each one, oldest first and one at a time per incident, to
//! the URL configured for the incident's runbook (or the default), with the JSON dossier and the
//! Markdown dossier inside it, an `Idempotency-Key` (the same on every attempt) and an
//! `X-Dialtone-Signature: sha256=HEX` (HMAC-SHA256 of the body with the secret). A 2xx
//! settles the event and a `ticket` field in a JSON answer is kept on the incident; anything
//! else (an error status, a refused or dropped connection, no answer within the timeout) is
//! tried again after 1 s, 2 s, 4 s... up to 5 minutes. Delivery is at least once: a worker
//! killed after the receiver's answer and before recording it sends the event again, with the
//! same key, which the receiver uses to keep one.
//!
//! The file (TOML):
//!
//! ```toml
//! [default]                      # every runbook without its own section
//! url = "http://127.0.0.1:9000/dialtone"
//! secret_env = "DIALTONE_WEBHOOK_SECRET"   # or secret = "..." (keep secrets out of files)
//! timeout = "10s"
//! [runbook.user-cant-call]       # this runbook's own receiver
//! url = "http://tickets.example.net/hook"
//! secret_env = "TICKETS_SECRET"
//! ```
//!
//! Only `http://` URLs are supported by this build.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Subcommand;
use incidents::{Attempt, OutboxEvent, Store};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::exit::{self, coded};
use crate::util::{Ctx, print_json};

/// How often the worker looks for due events when it has nothing to do.
const POLL: Duration = Duration::from_millis(250);
/// How often the worker reads the receivers saved in the admin page again.
const RELOAD: Duration = Duration::from_secs(2);
/// Longest wait between two attempts at one event.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Largest answer read from a receiver.
const MAX_ANSWER: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFile {
    url: String,
    secret: Option<String>,
    secret_env: Option<String>,
    timeout: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WebhookFile {
    default: Option<TargetFile>,
    #[serde(default)]
    runbook: BTreeMap<String, TargetFile>,
}

/// The wait for a receiver's answer when none is configured.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to post one runbook's events.
#[derive(Clone)]
pub struct Target {
    host: String,
    port: u16,
    path: String,
    url: String,
    secret: Vec<u8>,
    timeout: Duration,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The configured receivers.
#[derive(Debug, Clone, Default)]
pub struct Webhooks {
    default: Option<Target>,
    runbooks: BTreeMap<String, Target>,
}

impl Target {
    /// A checked receiver (the same rules for the file and the admin page).
    fn new(scope: &str, url: &str, secret: String, timeout: Duration) -> Result<Target, String> {
        let e = incidents::check_target(scope, url, &secret, timeout)?;
        Ok(Target {
            host: e.host,
            port: e.port,
            path: e.path,
            url: url.to_owned(),
            secret: secret.into_bytes(),
            timeout,
        })
    }
}

impl Webhooks {
    /// The file's receivers with those saved in the admin page over them (the page is the
    /// newer word); a saved receiver that no longer passes the checks is left out, logged.
    pub fn with_saved(&self, saved: &[incidents::WebhookTarget]) -> Webhooks {
        let mut out = self.clone();
        for t in saved {
            match Target::new(&t.scope, &t.url, t.secret.clone(), t.timeout()) {
                Ok(target) if t.scope == incidents::DEFAULT_SCOPE => out.default = Some(target),
                Ok(target) => {
                    out.runbooks.insert(t.scope.clone(), target);
                }
                Err(e) => {
                    tracing::warn!(scope = %t.scope, error = %e, "saved webhook receiver ignored")
                }
            }
        }
        out
    }

    /// (scope, URL) of every receiver, for the admin page.
    pub fn summary(&self) -> Vec<(String, String)> {
        self.default
            .iter()
            .map(|t| (incidents::DEFAULT_SCOPE.to_owned(), t.url.clone()))
            .chain(
                self.runbooks
                    .iter()
                    .map(|(k, t)| (k.clone(), t.url.clone())),
            )
            .collect()
    }

    /// Reads the webhook file; every problem names the file and the key.
    pub fn load(path: &Path) -> anyhow::Result<Webhooks> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| coded(exit::CONFIG, format!("{}: {e}", path.display())))?;
        let file: WebhookFile = toml::from_str(&text)
            .map_err(|e| coded(exit::CONFIG, format!("{}: {e}", path.display())))?;
        let target = |name: &str, t: TargetFile| -> anyhow::Result<Target> {
            let at =
                |what: String| coded(exit::CONFIG, format!("{} [{name}]: {what}", path.display()));
            let secret = match (t.secret, t.secret_env) {
                (Some(s), None) => s,
                (None, Some(var)) => {
                    std::env::var(&var).map_err(|_| at(format!("secret_env: {var} is not set")))?
                }
                _ => return Err(at("give exactly one of secret or secret_env".to_owned())),
            };
            let timeout = match t.timeout {
                Some(s) => diagnosis::config::parse_duration(&s)
                    .map_err(|e| at(format!("timeout: {e}")))?,
                None => DEFAULT_TIMEOUT,
            };
            let scope = if name == "default" {
                incidents::DEFAULT_SCOPE
            } else {
                name.strip_prefix("runbook.").unwrap_or(name)
            };
            Target::new(scope, &t.url, secret, timeout).map_err(at)
        };
        let mut out = Webhooks::default();
        if let Some(d) = file.default {
            out.default = Some(target("default", d)?);
        }
        for (name, t) in file.runbook {
            let section = format!("runbook.{name}");
            out.runbooks.insert(name, target(&section, t)?);
        }
        Ok(out)
    }

    fn for_runbook(&self, runbook: &str) -> Option<&Target> {
        self.runbooks.get(runbook).or(self.default.as_ref())
    }
}

/// HMAC-SHA256 (RFC 2104) of `body` with `key`, hex.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(body);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The body posted for an event: the envelope around the JSON and Markdown dossiers.
async fn payload(
    store: &Store,
    set: &runbook::RunbookSet,
    ev: &OutboxEvent,
) -> anyhow::Result<Vec<u8>> {
    let d = crate::dossier::load(store, ev.incident_id).await?;
    let md = casework::dossier::markdown(set, &d);
    let mut json = casework::dossier::json(set, &d);
    // The Markdown travels once, beside the JSON.
    if let Some(o) = json.as_object_mut() {
        o.remove("markdown");
    }
    Ok(serde_json::to_vec(&incidents::envelope(ev, json, &md))?)
}

/// One POST; `Ok((status, body))` when an answer came back.
async fn post(t: &Target, ev: &OutboxEvent, body: &[u8]) -> Result<(u16, String), String> {
    let exchange = async {
        let mut conn = tokio::net::TcpStream::connect((t.host.as_str(), t.port))
            .await
            .map_err(|e| format!("connect {}:{}: {e}", t.host, t.port))?;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nIdempotency-Key: {}\r\nX-Dialtone-Event: {}\r\n\
             X-Dialtone-Signature: sha256={}\r\nUser-Agent: dialtone\r\nConnection: close\r\n\r\n",
            t.path,
            t.host,
            t.port,
            body.len(),
            ev.idempotency_key,
            ev.event,
            sign(&t.secret, body)
        );
        conn.write_all(head.as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))?;
        conn.write_all(body)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = conn
                .read(&mut buf)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if answer.len() > MAX_ANSWER {
                break;
            }
            // Done once the headers and Content-Length bytes of body are in.
            if let Some(end) = find(&answer, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
                if let Some(len) = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    && answer.len() >= end + 4 + len
                {
                    break;
                }
            }
        }
        let text = String::from_utf8_lossy(&answer).into_owned();
        let status = text
            .strip_prefix("HTTP/1.")
            .and_then(|r| r.get(2..5))
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| {
                if text.is_empty() {
                    "the receiver closed the connection without an answer".to_owned()
                } else {
                    "the receiver's answer is not HTTP".to_owned()
                }
            })?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    };
    match tokio::time::timeout(t.timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {:?}", t.timeout)),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The wait before attempt `n + 1` after `n` failed ones: 1 s, 2 s, 4 s... at most 5 minutes.
pub fn backoff(failed: i64) -> Duration {
    let exp = u32::try_from(failed.clamp(0, 20)).unwrap_or(20);
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

/// Delivers one event and records the attempt.
async fn deliver(
    store: &Store,
    set: &runbook::RunbookSet,
    hooks: &Webhooks,
    ev: &OutboxEvent,
) -> anyhow::Result<()> {
    let attempt = match hooks.for_runbook(&ev.runbook) {
        None => Attempt::Skipped(format!("no webhook for runbook {}", ev.runbook)),
        Some(t) => {
            let body = payload(store, set, ev).await?;
            match post(t, ev, &body).await {
                Ok((status, answer)) if (200..300).contains(&status) => {
                    let ticket = serde_json::from_str::<serde_json::Value>(&answer)
                        .ok()
                        .and_then(|v| match &v["ticket"] {
                            serde_json::Value::String(s) => Some(s.clone()),
                            serde_json::Value::Number(n) => Some(n.to_string()),
                            _ => None,
                        })
                        .map(|s| s.chars().take(200).collect());
                    tracing::info!(event = ev.id, key = %ev.idempotency_key, status, "webhook delivered");
                    Attempt::Delivered {
                        status,
                        ticket_ref: ticket,
                    }
                }
                Ok((status, _)) => failed(ev, Some(status), format!("HTTP {status}")),
                Err(e) => failed(ev, None, e),
            }
        }
    };
    store.outbox_attempt(ev.id, attempt).await?;
    Ok(())
}

fn failed(ev: &OutboxEvent, status: Option<u16>, error: String) -> Attempt {
    let wait = backoff(ev.attempts);
    tracing::warn!(event = ev.id, key = %ev.idempotency_key, error = %error, retry_in = ?wait, "webhook failed");
    Attempt::Failed {
        status,
        error,
        retry_at: chrono::Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default(),
    }
}

/// The worker: runs until the task is dropped.
pub async fn run(store: Store, set: runbook::RunbookSet, file: Webhooks) {
    let mut hooks = file.clone();
    let mut loaded: Option<std::time::Instant> = None;
    loop {
        // The admin page's receivers are read again every few seconds.
        if loaded.is_none_or(|t| t.elapsed() >= RELOAD) {
            match store.webhook_targets().await {
                Ok(saved) => hooks = file.with_saved(&saved),
                Err(e) => tracing::warn!(error = %e, "reading the saved webhook receivers failed"),
            }
            loaded = Some(std::time::Instant::now());
        }
        match store.outbox_due(16).await {
            Ok(due) if !due.is_empty() => {
                for ev in &due {
                    if let Err(e) = deliver(&store, &set, &hooks, ev).await {
                        tracing::warn!(event = ev.id, error = %e, "webhook delivery could not be recorded");
                    }
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reading the webhook outbox failed"),
        }
        tokio::time::sleep(POLL).await;
    }
}

#[derive(Subcommand, Debug)]
pub enum WebhookCmd {
    /// The delivery log: the newest events, their attempts, status and error.
    Log {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Put an event back in line for delivery now (same idempotency key).
    Redeliver { id: i64 },
    /// Check a webhook file (`dialtone serve --webhooks FILE`).
    Check { file: PathBuf },
}

pub async fn command(ctx: &Ctx, cmd: WebhookCmd) -> anyhow::Result<u8> {
    match cmd {
        WebhookCmd::Check { file } => {
            let hooks = Webhooks::load(&file)?;
            if ctx.json {
                print_json(&serde_json::json!({
                    "default": hooks.default.as_ref().map(|t| &t.url),
                    "runbooks": hooks.runbooks.iter().map(|(k, t)| (k.clone(), t.url.clone())).collect::<BTreeMap<_, _>>(),
                }))?;
            } else {
                println!(
                    "{}: ok ({} runbook section(s){})",
                    file.display(),
                    hooks.runbooks.len(),
                    if hooks.default.is_some() {
                        ", a default"
                    } else {
                        ""
                    }
                );
            }
            Ok(exit::OK)
        }
        WebhookCmd::Log { limit } => {
            let store = ctx.store().await?;
            let log = store.outbox_log(limit).await?;
            if ctx.json {
                print_json(&log)?;
            } else {
                println!(
                    "{:>6}  {:>6}  {:<9} {:<9} {:>3}  {:<6} ERROR",
                    "EVENT", "INC", "KIND", "STATE", "TRY", "STATUS"
                );
                for e in &log {
                    println!(
                        "{:>6}  {:>6}  {:<9} {:<9} {:>3}  {:<6} {}",
                        e.id,
                        e.incident_id,
                        e.event,
                        if e.delivered_at.is_some() {
                            "delivered"
                        } else {
                            "pending"
                        },
                        e.attempts,
                        e.last_status.map_or("-".to_owned(), |s| s.to_string()),
                        e.last_error.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(exit::OK)
        }
        WebhookCmd::Redeliver { id } => {
            let store = ctx.store().await?;
            let ev = store.outbox_redeliver(id, &ctx.actor).await?;
            if ctx.json {
                print_json(&ev)?;
            } else {
                println!(
                    "event {} ({} of incident {}) queued again",
                    ev.id, ev.event, ev.incident_id
                );
            }
            Ok(exit::OK)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_and_backoff_doubles_to_a_cap() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
