//! One rule book for three interfaces: the same incident actions, in the same order, through
//! the CLI, through the JSON API of a real `dialtone serve`, and through its web pages (a
//! logged-in session with its CSRF token), give the same answers (accepted, or refused with the
//! same reason) and leave the same incident behind.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

use crate::serve::{Server, dechunk};
use crate::support::Cli;

const AGENT: &str = "agent-ann";
const PASSWORD: &str = "a long enough password";

/// One action on the scenario's incident.
enum Act {
    /// Opening, with gate answers given out of the runbook's order.
    Open(&'static [(&'static str, &'static str)]),
    Answer(&'static str, &'static str),
    Revise(&'static str, &'static str),
    Note(&'static str),
    Escalate {
        to: &'static str,
        kind: Option<&'static str>,
    },
    Close {
        outcome: Option<&'static str>,
        reason: Option<&'static str>,
    },
}

/// What the action must give: accepted, or refused with these words in the reason.
enum Expect {
    Ok,
    Refused(&'static str),
}

fn scenario() -> Vec<(Act, Expect)> {
    use Act::*;
    use Expect::*;
    vec![
        (
            Open(&[
                ("gate.client_error", "none"),
                ("gate.operational_requirements", "no"),
            ]),
            Ok,
        ),
        (
            Answer("l1.echo_call", "works"),
            Refused("the runbook now asks l1.connection_status, not l1.echo_call"),
        ),
        (
            Answer("l1.connection_status", "purple"),
            Refused("purple is not an answer of l1.connection_status"),
        ),
        (Answer("l1.connection_status", "connected"), Ok),
        (Answer("l1.force_reconnection", "fine"), Ok),
        (
            Revise("l1.echo_call", "works"),
            Refused("l1.echo_call has no answer to revise"),
        ),
        (Revise("l1.connection_status", "not_connected"), Ok),
        (Note("the user calls from a hotel network"), Ok),
        (
            Escalate {
                to: "L2",
                kind: None,
            },
            Refused("an escalation to L2 needs a kind"),
        ),
        (
            Escalate {
                to: "L2",
                kind: Some("no_such_kind"),
            },
            Refused("unknown escalation kind no_such_kind"),
        ),
        (
            Close {
                outcome: None,
                reason: None,
            },
            Refused("the runbook has reached no outcome yet"),
        ),
        (
            Close {
                outcome: Some("out_of_scope"),
                reason: None,
            },
            Refused("closing with out_of_scope instead needs a reason"),
        ),
        (
            Close {
                outcome: Some("out_of_scope"),
                reason: Some("the user withdrew the report"),
            },
            Ok,
        ),
        (
            Answer("l1.force_reconnection", "fine"),
            Refused("incident 1 is closed"),
        ),
    ]
}

/// The result of one action: accepted, or the refusal's text as the interface shows it.
type Outcome = Result<(), String>;

trait Interface {
    fn act(&mut self, act: &Act) -> Outcome;
}

// ------------------------------------------------------------------ the CLI

struct ViaCli<'a>(&'a Cli);

impl Interface for ViaCli<'_> {
    fn act(&mut self, act: &Act) -> Outcome {
        let owned: Vec<String> = match act {
            Act::Open(gate) => {
                let mut a = vec![
                    "incident".into(),
                    "open".into(),
                    "--account".into(),
                    "1001".into(),
                ];
                for (s, v) in gate.iter() {
                    a.push("--answer".into());
                    a.push(format!("{s}={v}"));
                }
                a
            }
            Act::Answer(step, v) => vec![
                "incident".into(),
                "answer".into(),
                "1".into(),
                (*v).into(),
                "--step".into(),
                (*step).into(),
            ],
            Act::Revise(step, v) => vec![
                "incident".into(),
                "revise".into(),
                "1".into(),
                (*v).into(),
                "--step".into(),
                (*step).into(),
            ],
            Act::Note(t) => vec!["incident".into(), "note".into(), "1".into(), (*t).into()],
            Act::Escalate { to, kind } => {
                let mut a = vec![
                    "incident".into(),
                    "escalate".into(),
                    "1".into(),
                    "--to".into(),
                    (*to).into(),
                    "--reason".into(),
                    "checked everything".into(),
                ];
                if let Some(k) = kind {
                    a.extend(["--kind".into(), (*k).into()]);
                }
                a
            }
            Act::Close { outcome, reason } => {
                let mut a = vec!["incident".into(), "close".into(), "1".into()];
                if let Some(o) = outcome {
                    a.extend(["--outcome".into(), (*o).into()]);
                }
                if let Some(r) = reason {
                    a.extend(["--reason".into(), (*r).into()]);
                }
                a
            }
        };
        let args: Vec<&str> = owned.iter().map(String::as_str).collect();
        let r = self.0.run(&args);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        if r.code == 0 { Ok(()) } else { Err(r.stderr) }
    }
}

// ------------------------------------------------------------------ HTTP

/// One request on a fresh connection with the given extra headers: (status, head, body).
fn http(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let wait = Duration::from_secs(30);
    let mut s = TcpStream::connect_timeout(&server.addr(), wait).expect("connect");
    s.set_read_timeout(Some(wait)).expect("read timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        server.addr(),
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("send head");
    s.write_all(body).expect("send body");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read reply");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn form(fields: &[(&str, &str)]) -> Vec<u8> {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

// ------------------------------------------------------------------ the API

struct ViaApi<'a> {
    server: &'a Server,
    token: String,
}

impl ViaApi<'_> {
    fn version(&self) -> i64 {
        let auth = format!("Bearer {}", self.token);
        let (_, _, body) = http(
            self.server,
            "GET",
            "/api/incidents/1",
            &[("Authorization", &auth)],
            b"",
        );
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        v["incident"]["version"].as_i64().unwrap_or(0)
    }
}

impl Interface for ViaApi<'_> {
    fn act(&mut self, act: &Act) -> Outcome {
        let (path, body) = match act {
            Act::Open(gate) => {
                let gate: serde_json::Map<String, Value> =
                    gate.iter().map(|(s, v)| ((*s).into(), json!(v))).collect();
                (
                    "/api/incidents".to_owned(),
                    json!({"account": "1001", "reporter": "1001", "description": "User can't call", "gate": gate}),
                )
            }
            Act::Answer(step, v) => (
                "/api/incidents/1/answer".into(),
                json!({"version": self.version(), "step": step, "answer": v}),
            ),
            Act::Revise(step, v) => (
                "/api/incidents/1/revise".into(),
                json!({"version": self.version(), "step": step, "answer": v}),
            ),
            Act::Note(t) => ("/api/incidents/1/notes".into(), json!({"text": t})),
            Act::Escalate { to, kind } => (
                "/api/incidents/1/escalate".into(),
                json!({"version": self.version(), "to_level": to, "kind": kind, "reason": "checked everything"}),
            ),
            Act::Close { outcome, reason } => (
                "/api/incidents/1/close".into(),
                json!({"version": self.version(), "outcome": outcome, "reason": reason}),
            ),
        };
        let auth = format!("Bearer {}", self.token);
        let (status, _, reply) = http(
            self.server,
            "POST",
            &path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.to_string().as_bytes(),
        );
        if (200..300).contains(&status) {
            Ok(())
        } else {
            assert!((400..500).contains(&status), "{path}: {status} {reply}");
            Err(reply)
        }
    }
}

// ------------------------------------------------------------------ the pages

struct ViaPages<'a> {
    server: &'a Server,
    cookie: String,
    csrf: String,
}

impl<'a> ViaPages<'a> {
    fn login(server: &'a Server) -> ViaPages<'a> {
        let (status, head, body) = http(
            server,
            "POST",
            "/login",
            &[
                ("Cookie", "dialtone_login=fixed-login-token"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            &form(&[
                ("username", AGENT),
                ("password", PASSWORD),
                ("csrf", "fixed-login-token"),
            ]),
        );
        assert_eq!(status, 303, "login: {head}\n{body}");
        let cookie = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, v)| v.trim().split(';').next())
            .find(|c| c.starts_with("dialtone_session="))
            .expect("a session cookie")
            .to_owned();
        let (_, _, page) = http(server, "GET", "/incidents/new", &[("Cookie", &cookie)], b"");
        let csrf = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("a CSRF token on the form")
            .to_owned();
        ViaPages {
            server,
            cookie,
            csrf,
        }
    }

    fn version(&self) -> String {
        let (_, _, body) = http(
            self.server,
            "GET",
            "/api/incidents/1",
            &[("Cookie", &self.cookie)],
            b"",
        );
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        v["incident"]["version"].as_i64().unwrap_or(0).to_string()
    }
}

impl Interface for ViaPages<'_> {
    fn act(&mut self, act: &Act) -> Outcome {
        let csrf = self.csrf.clone();
        let (path, fields): (String, Vec<(String, String)>) = match act {
            Act::Open(gate) => {
                let mut f = vec![
                    ("account".into(), "1001".into()),
                    ("reporter".into(), "1001".into()),
                    ("description".into(), "User can't call".into()),
                ];
                f.extend(
                    gate.iter()
                        .map(|(s, v)| (format!("gate.{s}"), (*v).to_owned())),
                );
                ("/incidents".into(), f)
            }
            Act::Answer(step, v) => (
                "/incidents/1/answer".into(),
                vec![
                    ("version".into(), self.version()),
                    ("step".into(), (*step).into()),
                    ("answer".into(), (*v).into()),
                ],
            ),
            Act::Revise(step, v) => (
                "/incidents/1/revise".into(),
                vec![
                    ("version".into(), self.version()),
                    ("step".into(), (*step).into()),
                    ("answer".into(), (*v).into()),
                ],
            ),
            Act::Note(t) => (
                "/incidents/1/notes".into(),
                vec![("text".into(), (*t).into())],
            ),
            Act::Escalate { to, kind } => (
                "/incidents/1/escalate".into(),
                vec![
                    ("version".into(), self.version()),
                    ("to_level".into(), (*to).into()),
                    ("kind".into(), kind.unwrap_or("").into()),
                    ("reason".into(), "checked everything".into()),
                ],
            ),
            Act::Close { outcome, reason } => (
                "/incidents/1/close".into(),
                vec![
                    ("version".into(), self.version()),
                    ("outcome".into(), outcome.unwrap_or("").into()),
                    ("reason".into(), reason.unwrap_or("").into()),
                ],
            ),
        };
        let mut all = vec![("csrf".to_owned(), csrf)];
        all.extend(fields);
        let pairs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (status, head, body) = http(
            self.server,
            "POST",
            &path,
            &[
                ("Cookie", &self.cookie),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            &form(&pairs),
        );
        match status {
            303 => Ok(()),
            400..=499 => Err(body),
            _ => panic!("{path}: {status} {head}\n{body}"),
        }
    }
}

// ------------------------------------------------------------------ the test

/// The incident as the store keeps it, read with the CLI: what must be the same everywhere.
fn state_of(cli: &Cli) -> Value {
    let shown = cli.ok(&["--json", "incident", "show", "1"]).json();
    let inc = &shown["incident"];
    let steps: Vec<Value> = shown["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            json!({
                "step": s["step"], "answer": s["answer"], "source": s["source"],
                "actor": s["actor"], "superseded": !s["superseded_at"].is_null(),
            })
        })
        .collect();
    let notes: Vec<Value> = shown["notes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|n| json!({"text": n["text"], "actor": n["actor"]}))
        .collect();
    json!({
        "account": inc["account"], "level": inc["level"], "status": inc["status"],
        "outcome": inc["outcome"], "assignee": inc["assignee"],
        "current_step": inc["current_step"], "steps": steps, "notes": notes,
    })
}

fn run(interface: &mut dyn Interface, name: &str) -> Vec<Outcome> {
    scenario()
        .iter()
        .enumerate()
        .map(|(i, (act, expect))| {
            let got = interface.act(act);
            match (expect, &got) {
                (Expect::Ok, Ok(())) => {}
                (Expect::Refused(words), Err(text)) => assert!(
                    text.contains(words),
                    "{name}, action {i}: expected a refusal saying {words:?}, got {text}"
                ),
                (Expect::Ok, Err(text)) => panic!("{name}, action {i}: refused: {text}"),
                (Expect::Refused(words), Ok(())) => {
                    panic!("{name}, action {i}: accepted, expected a refusal saying {words:?}")
                }
            }
            got.map_err(|_| "refused".to_owned())
        })
        .collect()
}

#[test]
fn the_cli_the_api_and_the_pages_follow_one_rule_book() {
    // The CLI.
    let by_cli = Cli::sqlite();
    let cli_results = run(&mut ViaCli(&by_cli), "CLI");

    // The API and the pages, each on its own store behind a real `dialtone serve`.
    let mut states = vec![("CLI", state_of(&by_cli))];
    let mut results = vec![("CLI", cli_results)];
    for via in ["API", "pages"] {
        let cli = Cli::sqlite();
        let add = cli.run_with_stdin(
            &["user", "add", AGENT, "--role", "l1"],
            &format!("{PASSWORD}\n"),
        );
        assert_eq!(add.code, 0, "{}", add.stderr);
        let server = Server::start(&cli);
        let got = if via == "API" {
            let token = cli.ok(&["user", "token", AGENT]).stdout.trim().to_owned();
            run(
                &mut ViaApi {
                    server: &server,
                    token,
                },
                via,
            )
        } else {
            run(&mut ViaPages::login(&server), via)
        };
        drop(server);
        results.push((via, got));
        states.push((via, state_of(&cli)));
    }

    // The same answers and the same incident everywhere, and the incident is what the rules say.
    for (via, r) in &results[1..] {
        assert_eq!(r, &results[0].1, "{via} answered differently from the CLI");
    }
    for (via, s) in &states[1..] {
        assert_eq!(s, &states[0].1, "{via} left another incident than the CLI");
    }
    let s = &states[0].1;
    assert_eq!(s["status"], "closed");
    assert_eq!(s["outcome"], "out_of_scope");
    assert_eq!(s["assignee"], AGENT, "the agent who opens is the assignee");
    let steps = s["steps"].as_array().expect("steps");
    let order: Vec<(&str, bool)> = steps
        .iter()
        .map(|r| {
            (
                r["step"].as_str().unwrap_or(""),
                r["superseded"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        order,
        vec![
            // Gate answers in the order the runbook asks them, not the order given.
            ("gate.operational_requirements", false),
            ("gate.client_error", false),
            // The revision keeps the replaced answers, marked superseded.
            ("l1.connection_status", true),
            ("l1.force_reconnection", true),
            ("l1.connection_status", false),
        ]
    );
    assert_eq!(s["notes"].as_array().map(Vec::len), Some(1));
}
