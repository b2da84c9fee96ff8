//! `dialtone collect` and `dialtone events`: the real binary receives HEP over UDP and TCP,
//! stops cleanly on SIGTERM after committing, keeps what it committed through a `kill -9`, and
//! shows an account's timeline as text and JSON lines.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::Cli;
use sip_events::synth::{self, RegOutcome};

/// Bound on every wait for the collector.
const WAIT: Duration = Duration::from_secs(30);

struct Collector {
    child: Child,
    addr: SocketAddr,
    lines: mpsc::Receiver<String>,
}

impl Collector {
    fn start(cli: &Cli, events: &str) -> Collector {
        let mut child = cli
            .command(&["collect", "--hep", "127.0.0.1:0", "--events", events])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn dialtone collect");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = match rx.recv_timeout(WAIT) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("dialtone collect printed nothing within {WAIT:?}: {e}");
            }
        };
        // "dialtone collecting HEP on udp 127.0.0.1:P and tcp 127.0.0.1:P into FILE"
        let addr = line
            .strip_prefix("dialtone collecting HEP on udp ")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
        assert!(line.contains(&format!("tcp {addr}")), "{line}");
        Collector {
            child,
            addr,
            lines: rx,
        }
    }

    fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `events ACCOUNT --json` lines, polled until `n` are there, each with its final answer
/// (bounded).
fn wait_events(cli: &Cli, events: &str, account: &str, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let r = cli.run(&["--json", "events", account, "--events", events]);
        let v: Vec<serde_json::Value> = r
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        // The window commits in batches: a call may be there before its final answer is.
        let settled = v
            .iter()
            .all(|e| e["status"].as_u64().is_some_and(|s| s > 0));
        if v.len() >= n && settled {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{account}: {} events of {n} after {WAIT:?}: {}{}",
            v.len(),
            r.stdout,
            r.stderr
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn collect_then_events_shows_the_timeline_and_survives_kill_9() {
    let cli = Cli::sqlite();
    let events = cli.dir.path().join("events.sqlite");
    let events = events.to_str().unwrap();
    let client: SocketAddr = "127.0.0.1:5098".parse().unwrap();
    let server: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let t = chrono::Utc::now().timestamp_micros() - 5_000_000;

    // Before any collector: no events file, a clear "not found".
    let r = cli.run(&["events", "alice", "--events", events]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("no events file"), "{}", r.stderr);

    let mut c = Collector::start(&cli, events);
    // alice registers over UDP (challenge, then refused: wrong password).
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for p in synth::wrap(synth::registration(
        "alice",
        "example.test",
        client,
        server,
        "cli-r1",
        t,
        RegOutcome::Refused,
    )) {
        udp.send_to(&p, c.addr).unwrap();
    }
    // Her call over TCP fails with 503.
    let mut tcp = TcpStream::connect(c.addr).unwrap();
    tcp.write_all(
        &synth::wrap(synth::call(
            "alice",
            "95551234",
            "example.test",
            client,
            server,
            "cli-c1",
            t + 1_000_000,
            503,
        ))
        .concat(),
    )
    .unwrap();
    let v = wait_events(&cli, events, "alice", 3);
    let texts: Vec<&str> = v.iter().map(|e| e["text"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        vec![
            "REGISTER from 127.0.0.1:5098 udp (baresip 1.0) → 401 challenge",
            "REGISTER from 127.0.0.1:5098 udp (baresip 1.0) → 403 Forbidden",
            "call to 95551234 → 503 Service Unavailable",
        ]
    );
    assert_eq!(v[1]["kind"], "registration");
    assert_eq!(v[1]["auth_user"], "alice");
    assert_eq!(v[2]["kind"], "call");
    assert_eq!(v[2]["status"], 503);
    // The text form: one line per event, time first.
    let text = cli.ok(&["events", "alice", "--events", events]).stdout;
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.lines().all(|l| l.starts_with("20")), "{text}");
    assert!(text.contains("→ 403 Forbidden"), "{text}");
    // Another account sees nothing, and says so.
    let none = cli.ok(&["events", "bob", "--events", events]).stdout;
    assert!(none.contains("no events for bob"), "{none}");

    // SIGTERM: a clean stop that says what it did.
    std::process::Command::new("kill")
        .args(["-TERM", &c.child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(c.wait_exit(), Some(0), "collect did not stop cleanly");
    let last = std::iter::from_fn(|| c.lines.recv_timeout(Duration::from_secs(5)).ok())
        .find(|l| l.starts_with("stopped:"))
        .expect("a closing line");
    assert!(last.contains("7 messages stored"), "{last}");
    assert!(last.contains("0 dropped"), "{last}");
    drop(c);

    // A new collector on the same file; what it commits survives kill -9.
    let mut c = Collector::start(&cli, events);
    for p in synth::wrap(synth::registration(
        "alice",
        "example.test",
        client,
        server,
        "cli-r2",
        t + 2_000_000,
        RegOutcome::Registered,
    )) {
        udp.send_to(&p, c.addr).unwrap();
    }
    wait_events(&cli, events, "alice", 5);
    c.child.kill().unwrap();
    let _ = c.child.wait();
    let v = wait_events(&cli, events, "alice", 5);
    assert_eq!(
        v[4]["text"],
        "REGISTER from 127.0.0.1:5098 udp (baresip 1.0) → 200 OK registered"
    );
    let st = cli
        .ok(&["--json", "events", "--stats", "--events", events])
        .json();
    assert_eq!(st["events"], 11, "{st}");
    assert_eq!(st["registration_attempts"], 4, "{st}");
}
