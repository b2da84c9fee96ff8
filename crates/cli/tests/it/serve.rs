//! `dialtone serve` as an agent meets it: the real binary on a free loopback port, a user made
//! with `dialtone user add`, an API token from `dialtone user token`, and a lab capture uploaded
//! to an incident and shown as ladder diagrams by the captures crate.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::Cli;

/// Bound on every wait for the server (start, connect, each read).
const WAIT: Duration = Duration::from_secs(30);

/// A running `dialtone serve`, stopped (SIGTERM, then SIGKILL) when dropped.
pub(crate) struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    pub(crate) fn start(cli: &Cli) -> Server {
        Server::start_with(cli, &[])
    }

    /// `dialtone serve` with more arguments (e.g. `--config FILE`).
    pub(crate) fn start_with(cli: &Cli, extra: &[&str]) -> Server {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = cli
            .command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn dialtone serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok);
            let _ = tx.send(first);
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(WAIT) {
            Ok(Some(line)) => line,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("dialtone serve printed no address within {WAIT:?}: {other:?}");
            }
        };
        let addr = line
            .strip_prefix("dialtone web listening on http://")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
        Server { child, addr }
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id (to read its memory from /proc).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// One HTTP/1.1 request on a fresh connection; returns (status, head, body).
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        token: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> (u16, String, String) {
        let mut s = TcpStream::connect_timeout(&self.addr, WAIT).expect("connect");
        s.set_read_timeout(Some(WAIT)).expect("read timeout");
        s.set_write_timeout(Some(WAIT)).expect("write timeout");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Connection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).expect("send head");
        s.write_all(body).expect("send body");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read reply");
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of the reply's head");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("status code");
        let mut body = raw[split + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = dechunk(&body);
        }
        (status, head, String::from_utf8_lossy(&body).into_owned())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A graceful stop first (the server handles SIGTERM), then no mercy.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Decodes a chunked body (RFC 9112 §7.1).
pub(crate) fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .expect("chunk size");
        b = &b[eol + 2..];
        if size == 0 || size > b.len() {
            return out;
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or(&[]);
    }
}

/// Decodes standard base64 (to read back the ladder images).
fn unbase64(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            other => panic!("not base64: {:?}", char::from(other)),
        }
    };
    let mut out = Vec::new();
    for q in s.as_bytes().chunks(4) {
        let pad = q.iter().rev().take_while(|c| **c == b'=').count();
        let mut n = 0u32;
        for &c in &q[..q.len() - pad] {
            n = (n << 6) | val(c);
        }
        n <<= 6 * (4 - (q.len() - pad)) as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    out
}

#[test]
fn an_uploaded_capture_is_shown_as_ladders_by_the_real_server() {
    let cli = Cli::sqlite();
    let add = cli.run_with_stdin(
        &["user", "add", "ann", "--role", "l1"],
        "a long enough password\n",
    );
    assert_eq!(add.code, 0, "{}", add.stderr);
    let token = cli.run(&["user", "token", "ann"]);
    assert_eq!(token.code, 0, "{}", token.stderr);
    let token = token.stdout.trim().to_owned();
    assert!(token.starts_with("dt_"), "{token}");

    let server = Server::start(&cli);
    let (status, _, body) = server.request(
        "POST",
        "/api/incidents",
        &token,
        Some("application/json"),
        br#"{"account":"alice","reporter":"alice's manager","description":"calls fail"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let detail: serde_json::Value = serde_json::from_str(&body).expect("json");
    let id = detail["incident"]["id"].as_i64().expect("incident id");

    let pcap = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../captures/test_data/lab_udp.pcap"),
    )
    .expect("lab capture");
    let boundary = "dialtone-serve-test-4b1d";
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"lab_udp.pcap\"\r\n\
         Content-Type: application/vnd.tcpdump.pcap\r\n\r\n"
    )
    .into_bytes();
    form.extend_from_slice(&pcap);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let (status, _, body) = server.request(
        "POST",
        &format!("/api/incidents/{id}/attachments"),
        &token,
        Some(&format!("multipart/form-data; boundary={boundary}")),
        &form,
    );
    assert_eq!(status, 201, "{body}");
    let att: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(att["size"].as_u64(), Some(pcap.len() as u64));
    let att = att["id"].as_i64().expect("attachment id");
    let view = format!("/incidents/{id}/attachments/{att}/view");

    // The step page links to the view.
    let (status, _, page) = server.request("GET", &format!("/incidents/{id}"), &token, None, b"");
    assert_eq!(status, 200);
    assert!(page.contains(&format!("href=\"{view}\"")), "{page}");

    const IMG: &str = "<img src=\"data:image/svg+xml;base64,";
    let images_of = |page: &str| -> Vec<String> {
        page.split(IMG)
            .skip(1)
            .map(|rest| {
                String::from_utf8(unbase64(&rest[..rest.find('"').expect("src end")]))
                    .expect("svg text")
            })
            .collect()
    };
    // By default the view shows the incident account's calls and registrations only (alice's 5
    // calls and 2 registrations), failed ones first, as a table with a jump to each ladder.
    let (status, head, page) = server.request("GET", &view, &token, None, b"");
    assert_eq!(status, 200, "{page}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-security-policy: default-src 'none'; img-src 'self' data:"),
        "{head}"
    );
    assert!(
        page.contains("pcap: 55807 bytes, 106 SIP messages"),
        "{page}"
    );
    assert_eq!(images_of(&page).len(), 7, "{page}");
    assert!(page.contains("Show all 15 in the file"), "{page}");
    assert!(
        !page.contains("f05819620ae7cb7f"),
        "dave's call is not alice's"
    );
    assert!(page.contains("href=\"#ladder-1\""));

    // Everything on demand: one image per call and registration of the capture (8 calls and
    // 7 registrations, as `dialtone capture analyze` finds), each named by its Call-ID.
    let (status, _, page) = server.request("GET", &format!("{view}?all=1"), &token, None, b"");
    assert_eq!(status, 200, "{page}");
    let images = images_of(&page);
    assert_eq!(images.len(), 15, "{page}");
    for call_id in ["1-9030@127.0.0.1", "f05819620ae7cb7f", "1-8703@127.0.0.1"] {
        assert!(
            page.contains(&format!("<code>{call_id}</code>")),
            "{call_id} named on the page"
        );
        assert!(
            images.iter().any(|svg| svg.contains(call_id)),
            "{call_id} has a ladder"
        );
    }
    assert!(page.contains("486 Busy Here"));
    // Real ladders: SVG documents with the SIP methods on the arrows, never inline markup.
    assert!(images.iter().all(|svg| svg.starts_with("<svg")));
    assert!(images.iter().any(|svg| svg.contains("INVITE")));
    assert!(images.iter().any(|svg| svg.contains("REGISTER")));
    assert!(!page.contains("<svg"));
}
