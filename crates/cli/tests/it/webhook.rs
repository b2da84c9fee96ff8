//! Webhooks through the real binary: `dialtone serve --webhooks FILE` posts every opening,
//! escalation and closing to a real HTTP receiver on loopback that drops the first connection
//! mid-delivery, answers 500, then stalls past the timeout, and then recovers; `serve` is
//! killed with SIGKILL in the middle and started again. Every event arrives exactly once by
//! idempotency key, in order per incident, signed, with both dossiers, and the receiver's ticket
//! reference is kept on the incident.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::support::Cli;

const SECRET: &str = "a-webhook-secret-for-tests";
/// Bound on the whole wait for deliveries.
const WAIT: Duration = Duration::from_secs(90);

/// What the receiver saw, in arrival order: (key, event, incident, signature ok, body).
type Seen = Arc<Mutex<Vec<(String, String, i64, bool, serde_json::Value)>>>;

fn hmac(key: &[u8], body: &[u8]) -> String {
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let inner = Sha256::new()
        .chain_update(k.map(|b| b ^ 0x36))
        .chain_update(body)
        .finalize();
    let outer = Sha256::new()
        .chain_update(k.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads one request: (headers lowercased, body).
fn read_request(s: &mut TcpStream) -> Option<(BTreeMap<String, String>, Vec<u8>)> {
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut r = BufReader::new(s.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let len: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some((headers, body))
}

/// The receiver: request 1 is dropped after reading it, 2 gets 500, 3 gets no answer for 3 s
/// (the webhook's timeout is 1 s), every later one is accepted once per key with a ticket.
fn receiver(seen: Seen) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(mut s) = conn else { continue };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let Some((h, body)) = read_request(&mut s) else {
                    return;
                };
                match n {
                    0 => return, // killed mid-delivery: the connection just closes
                    1 => {
                        let _ = s.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                        return;
                    }
                    2 => {
                        std::thread::sleep(Duration::from_secs(3));
                        return;
                    }
                    _ => {}
                }
                let key = h.get("idempotency-key").cloned().unwrap_or_default();
                let event = h.get("x-dialtone-event").cloned().unwrap_or_default();
                let sig_ok = h.get("x-dialtone-signature").map(String::as_str)
                    == Some(&format!("sha256={}", hmac(SECRET.as_bytes(), &body)));
                let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let incident = json["incident_id"].as_i64().unwrap_or(-1);
                seen.lock()
                    .unwrap()
                    .push((key, event, incident, sig_ok, json));
                let answer = format!("{{\"ticket\":\"T-{incident}\"}}");
                let _ = s.write_all(
                    format!(
                        "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                        answer.len()
                    )
                    .as_bytes(),
                );
            });
        }
    });
    port
}

/// `dialtone serve --webhooks FILE` on a free port; returns once it listens.
fn serve(cli: &Cli, file: &std::path::Path) -> Child {
    let mut child = cli
        .command(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--webhooks",
            file.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dialtone serve");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next().and_then(Result::ok));
        for _ in lines {}
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Some(l)) if l.starts_with("dialtone web listening") => child,
        other => {
            let _ = child.kill();
            panic!("dialtone serve did not start: {other:?}");
        }
    }
}

fn open(cli: &Cli, account: &str) -> i64 {
    cli.ok(&[
        "--json",
        "incident",
        "open",
        "--account",
        account,
        "--description",
        "cannot call",
    ])
    .json()["incident"]["id"]
        .as_i64()
        .unwrap()
}

/// Waits until the receiver accepted `n` distinct keys.
fn wait_for(seen: &Seen, n: usize) {
    let start = Instant::now();
    loop {
        let distinct: BTreeSet<String> = seen.lock().unwrap().iter().map(|s| s.0.clone()).collect();
        if distinct.len() >= n {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "only {} of {n} events delivered within {WAIT:?}",
            distinct.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn webhooks_survive_drops_500s_timeouts_and_a_killed_server() {
    let cli = Cli::sqlite();
    let seen: Seen = Arc::default();
    let port = receiver(seen.clone());
    let file = cli.dir.path().join("webhooks.toml");
    std::fs::write(
        &file,
        format!("[default]\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret = \"{SECRET}\"\ntimeout = \"1s\"\n"),
    )
    .unwrap();
    cli.ok(&["webhook", "check", file.to_str().unwrap()]);
    let mut server = serve(&cli, &file);
    let a = open(&cli, "alice");
    let b = open(&cli, "bob");
    cli.ok(&[
        "incident",
        "escalate",
        &a.to_string(),
        "--to",
        "L2",
        "--kind",
        "server_status_check",
        "--reason",
        "needs L2",
    ]);
    cli.ok(&[
        "incident",
        "close",
        &b.to_string(),
        "--outcome",
        "out_of_scope",
        "--reason",
        "the user's own PBX",
    ]);
    // The first event survives a dropped connection, a 500 and a timeout (1 + 2 + 4 s back-off).
    wait_for(&seen, 2);
    // Killed in the middle of its work; changes go on while it is down.
    server.kill().expect("kill -9");
    let _ = server.wait();
    cli.ok(&[
        "incident",
        "close",
        &a.to_string(),
        "--outcome",
        "out_of_scope",
        "--reason",
        "the user's own PBX",
    ]);
    let c = open(&cli, "carol");
    let mut server = serve(&cli, &file);
    wait_for(&seen, 6);
    // Let a late duplicate (if any) arrive before judging.
    std::thread::sleep(Duration::from_millis(500));
    let _ = server.kill();
    let _ = server.wait();

    let log = cli.ok(&["--json", "webhook", "log"]).json();
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 6, "open x3, escalate, close x2");
    assert!(
        log.iter().all(|e| !e["delivered_at"].is_null()),
        "every event settled: {log:?}"
    );
    let seen = seen.lock().unwrap();
    // Exactly once by key: every outbox key was received; a repeat (after the kill) would carry
    // the same key and is kept once by the receiver.
    let keys: BTreeSet<String> = log
        .iter()
        .map(|e| e["idempotency_key"].as_str().unwrap().to_owned())
        .collect();
    let received: BTreeSet<String> = seen.iter().map(|s| s.0.clone()).collect();
    assert_eq!(keys, received);
    // In order per incident: first arrivals follow the outbox order.
    for inc in [a, b, c] {
        let mut want: Vec<(i64, String)> = log
            .iter()
            .filter(|e| e["incident_id"] == inc)
            .map(|e| {
                (
                    e["id"].as_i64().unwrap(),
                    e["idempotency_key"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        want.sort();
        let mut got: Vec<String> = Vec::new();
        for s in seen.iter().filter(|s| s.2 == inc) {
            if !got.contains(&s.0) {
                got.push(s.0.clone());
            }
        }
        assert_eq!(
            got,
            want.into_iter().map(|w| w.1).collect::<Vec<_>>(),
            "incident {inc}"
        );
    }
    for (key, event, _, sig_ok, json) in seen.iter() {
        assert!(sig_ok, "{key}: bad signature");
        assert_eq!(json["event"].as_str(), Some(event.as_str()));
        assert!(
            json["dossier_markdown"]
                .as_str()
                .is_some_and(|m| m.contains('#')),
            "{key}: no Markdown dossier"
        );
        assert_eq!(json["dossier"]["incident"]["id"], json["incident_id"]);
    }
    // Six events, three failed attempts (drop, 500, timeout), each recorded; a delivery the
    // kill cut off before it was recorded is made again and recorded once.
    let attempts: i64 = log.iter().map(|e| e["attempts"].as_i64().unwrap()).sum();
    assert_eq!(attempts, 6 + 3, "{log:?}");
    assert!(log.iter().any(|e| e["last_status"] == 201));
    // The ticket reference is kept on the incident, and `incident show` says it.
    let shown = cli
        .ok(&["--json", "incident", "show", &a.to_string()])
        .json();
    assert_eq!(shown["incident"]["ticket_ref"], format!("T-{a}"), "{shown}");
    let text = cli.ok(&["incident", "show", &a.to_string()]).stdout;
    assert!(text.contains(&format!("ticket T-{a}")), "{text}");
}
