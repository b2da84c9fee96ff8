//! Every route reachable without a login, attacked with hostile input against the real
//! `dialtone serve`: each answer is small and quick, oversized heads get 431, oversized bodies
//! 413, and the server's resident memory (VmRSS from /proc) does not grow with the attack.
//!
//! Routes without a login: GET /login, POST /login, GET /healthz, GET /metrics,
//! GET /static/style.css, GET /static/app.js, GET /api/openapi.json, every page (a redirect to
//! the login), every API route with a missing or invalid token (401), and unknown paths (404).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::serve::Server;
use crate::support::Cli;

/// Bound on every wait for one exchange.
const WAIT: Duration = Duration::from_secs(10);
/// The most a server may grow in resident memory over a repeated attack (after a warm-up round).
const RSS_GROWTH_LIMIT_KIB: u64 = 16 * 1024;
/// The most read of one answer (a bigger one fails the size assertions anyway).
const READ_CAP: usize = 1 << 20;

/// What came back: the status (0 when the server closed without answering) and the answer's
/// size in bytes (head and body).
#[derive(Debug)]
struct Answer {
    status: u16,
    size: usize,
    text: String,
}

/// Sends `head` (without the final blank line) and up to `body` bytes on a fresh connection,
/// then reads the answer. The body may be cut short by the server answering first.
fn exchange(addr: SocketAddr, head: &str, body: &[u8]) -> Answer {
    let s = TcpStream::connect_timeout(&addr, WAIT).expect("connect");
    exchange_on(s, head, body)
}

/// [`exchange`] from another loopback source address (the login throttle counts per address).
fn exchange_from(src: std::net::Ipv4Addr, addr: SocketAddr, head: &str, body: &[u8]) -> Answer {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let s = rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.bind(SocketAddr::from((src, 0)))
            .expect("bind a loopback source");
        tokio::time::timeout(WAIT, sock.connect(addr))
            .await
            .expect("connect in time")
            .expect("connect")
            .into_std()
            .expect("std stream")
    });
    s.set_nonblocking(false).expect("blocking");
    exchange_on(s, head, body)
}

fn exchange_on(mut s: TcpStream, head: &str, body: &[u8]) -> Answer {
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s.set_write_timeout(Some(WAIT)).expect("timeout");
    let mut req = head.as_bytes().to_vec();
    req.extend_from_slice(b"Connection: close\r\n\r\n");
    // A server that refuses early may close while we write: what it answered still counts.
    let _ = s.write_all(&req).and_then(|()| s.write_all(body));
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while raw.len() < READ_CAP {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        size: raw.len(),
        text,
    }
}

fn get(addr: SocketAddr, target: &str, extra: &str) -> Answer {
    exchange(
        addr,
        &format!("GET {target} HTTP/1.1\r\nHost: t\r\n{extra}"),
        b"",
    )
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("/proc status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Runs `attack` once to warm the server up, then three more times, and asserts the server's
/// resident memory grew by less than [`RSS_GROWTH_LIMIT_KIB`] over those three.
fn assert_memory_bounded(server: &Server, what: &str, mut attack: impl FnMut()) {
    attack();
    let before = rss_kib(server.pid());
    let t = Instant::now();
    for _ in 0..3 {
        attack();
    }
    let after = rss_kib(server.pid());
    eprintln!(
        "{what}: VmRSS {before} KiB -> {after} KiB over three rounds ({:.1} s)",
        t.elapsed().as_secs_f64()
    );
    assert!(
        after.saturating_sub(before) < RSS_GROWTH_LIMIT_KIB,
        "{what}: the server grew from {before} KiB to {after} KiB"
    );
}

/// `n` headers of `len` bytes each.
fn headers(n: usize, len: usize) -> String {
    (0..n)
        .map(|i| format!("X-Junk-{i}: {}\r\n", "j".repeat(len)))
        .collect()
}

#[test]
fn login_form_is_bounded_whatever_the_head() {
    let cli = Cli::sqlite();
    let server = Server::start(&cli);
    let addr = server.addr();
    let many_params: String = (0..4000).map(|i| format!("p{i}=v&")).collect();
    assert_memory_bounded(&server, "GET /login", || {
        for _ in 0..40 {
            // A head just under the limit: 90 headers of 600 bytes.
            let a = get(addr, "/login", &headers(90, 600));
            assert_eq!(a.status, 200, "{}", a.text);
            assert!(a.size < 16 * 1024, "login page of {} bytes", a.size);
            let a = get(addr, &format!("/login?{many_params}"), "");
            assert_eq!(a.status, 200, "{}", a.text);
            assert!(a.size < 16 * 1024);
            // Over the limit: one 100 KB header, or more than 100 headers.
            let a = get(addr, "/login", &headers(1, 100 * 1024));
            assert_eq!(a.status, 431, "{}", a.text);
            let a = get(addr, "/login", &headers(150, 10));
            assert_eq!(a.status, 431, "{}", a.text);
        }
    });
}

#[test]
fn login_post_refuses_big_bodies_and_bulk_guessing_stays_bounded() {
    let cli = Cli::sqlite();
    cli.run_with_stdin(
        &["user", "add", "lena", "--role", "l1"],
        "a long password\n",
    );
    let server = Server::start(&cli);
    let addr = server.addr();
    // A body over the login form's limit (16 KiB) is refused after that much, not read whole.
    let big = vec![b'a'; 256 * 1024];
    let t = Instant::now();
    let a = exchange(
        addr,
        &format!(
            "POST /login HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n",
            50 * 1024 * 1024
        ),
        &big,
    );
    assert_eq!(a.status, 413, "{}", a.text);
    assert!(t.elapsed() < Duration::from_secs(5));
    // Wrong passwords for invented names (each a throttle key), from many source addresses so
    // that each one is a real Argon2 verification (with the default memory cost), 4 at once.
    let before_logins = rss_kib(server.pid());
    let n = std::sync::atomic::AtomicU32::new(0);
    let mut verified = std::sync::atomic::AtomicU32::new(0);
    assert_memory_bounded(&server, "POST /login", || {
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..6 {
                        let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let src =
                            std::net::Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8);
                        let body = format!(
                            "username=ghost-{i}-{}&password=wrong{i}&csrf=c",
                            "x".repeat(100)
                        );
                        let a = exchange_from(
                            src,
                            addr,
                            &format!(
                                "POST /login HTTP/1.1\r\nHost: t\r\nCookie: dialtone_login=c\r\n\
                                 Content-Type: application/x-www-form-urlencoded\r\n\
                                 Content-Length: {}\r\n",
                                body.len()
                            ),
                            body.as_bytes(),
                        );
                        assert!(
                            [401, 503].contains(&a.status),
                            "{}",
                            a.text.lines().next().unwrap_or("")
                        );
                        if a.status == 401 {
                            verified.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        assert!(a.size < 16 * 1024);
                    }
                });
            }
        });
    });
    let after = rss_kib(server.pid());
    eprintln!(
        "POST /login: {} wrong logins verified, VmRSS {before_logins} KiB before any, {after} KiB after",
        verified.get_mut()
    );
    assert!(
        *verified.get_mut() >= 40,
        "only {} verified",
        verified.get_mut()
    );
    // Two verification slots of 19 MiB each (Argon2's default cost) and some slack.
    assert!(
        after < before_logins + 96 * 1024,
        "logins took the server from {before_logins} KiB to {after} KiB"
    );
}

#[test]
fn health_metrics_static_files_and_the_openapi_document_are_bounded() {
    let cli = Cli::sqlite();
    let server = Server::start(&cli);
    let addr = server.addr();
    let mut sizes = std::collections::BTreeMap::new();
    let mut metrics = Vec::new();
    assert_memory_bounded(
        &server,
        "/healthz /metrics /static /api/openapi.json",
        || {
            for i in 0..30 {
                // Invented methods and paths (they must not become metric labels).
                let a = exchange(
                    addr,
                    &format!(
                        "X{}{i} /healthz/{} HTTP/1.1\r\nHost: t\r\n",
                        "M".repeat(4000),
                        "p".repeat(4000)
                    ),
                    b"",
                );
                assert!(a.status >= 400, "{}", a.text);
                for path in [
                    "/healthz",
                    "/metrics",
                    "/static/style.css",
                    "/static/app.js",
                    "/api/openapi.json",
                ] {
                    let a = get(addr, path, &headers(50, 500));
                    assert_eq!(a.status, 200, "{path}: {}", a.text);
                    if path != "/metrics" {
                        // Fixed documents.
                        let size = sizes.entry(path).or_insert(a.size);
                        assert_eq!(a.size, *size, "{path} changed size");
                    }
                    assert!(a.size < 256 * 1024, "{path}: {} bytes", a.size);
                }
            }
            metrics.push(get(addr, "/metrics", "").size);
        },
    );
    // After the first round has met every kind of answer, the metrics grow only by their
    // counters' digits, whatever methods and paths were invented.
    eprintln!("/metrics after each round: {metrics:?} bytes");
    let (first, last) = (metrics[0], metrics[metrics.len() - 1]);
    assert!(
        last < first + 1024,
        "/metrics grew from {first} to {last} bytes"
    );
}

#[test]
fn the_api_with_missing_or_invalid_tokens_is_bounded_and_writes_nothing() {
    let cli = Cli::sqlite();
    let server = Server::start(&cli);
    let addr = server.addr();
    let mut n = 0u64;
    let body = vec![b'{'; 64 * 1024];
    assert_memory_bounded(&server, "API with invalid tokens", || {
        for _ in 0..60 {
            n += 1;
            let token = format!("dt_{n:064x}");
            // A write with a big declared body and an Idempotency-Key: 401 before the body is read.
            let t = Instant::now();
            let a = exchange(
                addr,
                &format!(
                    "POST /api/incidents HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\
                     Idempotency-Key: key-{n}\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\n",
                    100 * 1024 * 1024
                ),
                &body,
            );
            assert_eq!(a.status, 401, "{}", a.text);
            assert!(a.text.contains("\"error\""), "{}", a.text);
            assert!(a.size < 4096);
            assert!(t.elapsed() < Duration::from_secs(5));
            // Reads with no token, an invalid one, and thousands of query parameters.
            let params: String = (0..3000).map(|i| format!("level=L{i}&")).collect();
            for auth in [
                "",
                "Authorization: Bearer \r\n",
                "Authorization: Basic Zm9vOmJhcg==\r\n",
            ] {
                let a = get(addr, &format!("/api/incidents?{params}"), auth);
                assert_eq!(a.status, 401, "{}", a.text);
                assert!(a.size < 4096);
            }
            let a = get(
                addr,
                "/api/attachments/1",
                &format!("Authorization: Bearer {token}\r\n"),
            );
            assert_eq!(a.status, 401, "{}", a.text);
        }
    });
    drop(server);
    // Nothing was written on behalf of those requests (no Idempotency-Key claimed).
    let out = std::process::Command::new("sqlite3")
        .arg(cli.dir.path().join("data/dialtone.sqlite"))
        .arg("SELECT (SELECT COUNT(*) FROM idempotency) || '|' || (SELECT COUNT(*) FROM incidents)")
        .output()
        .expect("sqlite3");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0|0");
}

#[test]
fn pages_without_a_login_and_unknown_paths_are_bounded() {
    let cli = Cli::sqlite();
    let server = Server::start(&cli);
    let addr = server.addr();
    let long = "a".repeat(60 * 1024);
    let body = vec![b'x'; 64 * 1024];
    assert_memory_bounded(&server, "pages without a login, unknown paths", || {
        for _ in 0..30 {
            for path in ["/", "/queue/L1", "/incidents/new", "/incidents/1", "/admin"] {
                let a = get(addr, path, &headers(20, 1000));
                assert_eq!(a.status, 303, "{path}: {}", a.text);
                assert!(a.size < 4096);
            }
            // An upload of a declared 15 MB: sent to the login before the body is read.
            let t = Instant::now();
            let a = exchange(
                addr,
                &format!(
                    "POST /incidents/1/attachments HTTP/1.1\r\nHost: t\r\n\
                     Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n",
                    15 * 1024 * 1024
                ),
                &body,
            );
            assert!([303, 403].contains(&a.status), "{}", a.text);
            assert!(t.elapsed() < Duration::from_secs(5));
            // A 60 KB unknown path: a small 404 that does not echo it.
            let a = get(addr, &format!("/{long}"), "");
            assert_eq!(a.status, 404, "{}", a.text.lines().next().unwrap_or(""));
            assert!(a.size < 16 * 1024, "404 of {} bytes", a.size);
            assert!(!a.text.contains(&long[..100]));
            // A path longer than a request head may be.
            let a = get(addr, &format!("/{long}{long}"), "");
            assert!([414, 431].contains(&a.status), "{}", a.status);
        }
    });
}

/// CPU time (user + system) of a process so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let rest = &stat[stat.rfind(')').expect("comm end") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
}

/// A pcap of `calls` INVITE / 486 / ACK exchanges over UDP (raw IPv4 link type).
fn capture_of(calls: usize) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0]);
    out.extend_from_slice(&228u32.to_le_bytes());
    for i in 0..calls {
        let ts = 1_795_660_000u32 + (i / 20) as u32;
        let hdr = |start: &str, cseq: &str, tag: &str| {
            format!(
                "{start}\r\nVia: SIP/2.0/UDP 10.9.0.1:5060;branch=z9hG4bK{i}{}\r\n\
                 From: <sip:u{}@h>;tag=f\r\nTo: <sip:1001@h>{tag}\r\nCall-ID: bulk-{i}\r\n\
                 CSeq: {cseq}\r\nContent-Length: 0\r\n\r\n",
                cseq.len(),
                i % 50
            )
        };
        for m in [
            hdr("INVITE sip:1001@h SIP/2.0", "1 INVITE", ""),
            hdr("SIP/2.0 486 Busy Here", "1 INVITE", ";tag=t"),
            hdr("ACK sip:1001@h SIP/2.0", "1 ACK", ";tag=t"),
        ] {
            let total = (20 + 8 + m.len()) as u16;
            let mut ip = vec![
                0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 9, 0, 1, 10, 9, 0, 2,
            ];
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            let udp_len = (8 + m.len()) as u16;
            ip.extend_from_slice(&5060u16.to_be_bytes());
            ip.extend_from_slice(&5060u16.to_be_bytes());
            ip.extend_from_slice(&udp_len.to_be_bytes());
            ip.extend_from_slice(&[0, 0]);
            ip.extend_from_slice(m.as_bytes());
            out.extend_from_slice(&ts.to_le_bytes());
            out.extend_from_slice(&((i % 1000) as u32 * 1000).to_le_bytes());
            out.extend_from_slice(&(ip.len() as u32).to_le_bytes());
            out.extend_from_slice(&(ip.len() as u32).to_le_bytes());
            out.extend_from_slice(&ip);
        }
    }
    out
}

#[test]
fn an_analysis_that_times_out_stops_using_the_cpu_and_frees_its_slot() {
    let cli = Cli::sqlite();
    cli.run_with_stdin(
        &["user", "add", "ann", "--role", "l1"],
        "a long enough password\n",
    );
    let token = cli.ok(&["user", "token", "ann"]).stdout.trim().to_owned();
    cli.ok(&["incident", "open", "--account", "alice", "--reporter", "r"]);
    // A capture the debug build takes far longer than the bound to analyse, and a small one.
    let dir = cli.dir.path();
    std::fs::write(dir.join("huge.pcap"), capture_of(22_000)).expect("write");
    std::fs::write(dir.join("small.pcap"), capture_of(3)).expect("write");
    for f in ["huge.pcap", "small.pcap"] {
        cli.ok(&[
            "incident",
            "attach",
            "1",
            dir.join(f).to_str().expect("utf8"),
        ]);
    }
    let server = Server::start_with(&cli, &["--view-timeout", "300ms"]);
    // Three timed-out analyses in a row (there are two slots): each is stopped.
    for _ in 0..3 {
        let (status, _, page) =
            server.request("GET", "/incidents/1/attachments/1/view", &token, None, b"");
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("was stopped"), "{page}");
    }
    // Within a second the server is idle again: no analysis keeps a core busy.
    std::thread::sleep(Duration::from_millis(1000));
    let before = cpu_ticks(server.pid());
    std::thread::sleep(Duration::from_millis(1000));
    let used = cpu_ticks(server.pid()) - before;
    eprintln!("CPU used by the server in the second after three timed-out analyses: {used} ticks");
    assert!(
        used < 30,
        "the server used {used} ticks of 100 in a second after the timeouts"
    );
    // And the next analysis gets a slot.
    let (status, _, page) =
        server.request("GET", "/incidents/1/attachments/2/view", &token, None, b"");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("486 Busy Here"), "{page}");
}
