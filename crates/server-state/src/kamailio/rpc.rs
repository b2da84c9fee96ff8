//! A minimal JSON-RPC 2.0 client over HTTP/1.1 for Kamailio's `jsonrpcs` + `xhttp` modules.
//!
//! One request per connection with `Connection: close` (Kamailio closes after each reply anyway),
//! a Content-Length body, no batching (Kamailio answers a batch with an empty result), and the
//! whole exchange bounded by one timeout. Kamailio reports every error as code 500 and tells them
//! apart only by `message`, so callers match on the message.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{Error, Result};

/// Biggest reply accepted: a full `ul.dump` of a large server is tens of megabytes.
const MAX_REPLY: usize = 512 * 1024 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct RpcClient {
    host: String,
    port: u16,
    path: String,
    timeout: Duration,
    /// No management interface configured: every call says so at once.
    disabled: bool,
}

impl RpcClient {
    /// A client for a server whose management interface is not configured.
    pub fn none(timeout: Duration) -> RpcClient {
        RpcClient {
            host: String::new(),
            port: 0,
            path: String::new(),
            timeout,
            disabled: true,
        }
    }

    /// Accepts `http://host[:port][/path]`; the path defaults to `/RPC`.
    pub fn new(url: &str, timeout: Duration) -> Result<RpcClient> {
        let rest = url.trim().strip_prefix("http://").ok_or_else(|| {
            Error::Config(format!(
                "rpc_url {url:?} must start with http:// (Kamailio's xhttp serves plain HTTP)"
            ))
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/RPC"),
        };
        if authority.contains('@') {
            return Err(Error::Config(
                "rpc_url must not carry credentials (user:password@): xhttp has no HTTP authentication".into(),
            ));
        }
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| Error::Config(format!("rpc_url {url:?} has no valid host[:port]")))?;
        Ok(RpcClient {
            host,
            port,
            path: path.to_string(),
            timeout,
            disabled: false,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        if self.disabled {
            return "none".into();
        }
        format!("http://{}:{}{}", self.host_for_url(), self.port, self.path)
    }

    fn host_for_url(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// Calls `method` with positional `params` and returns its `result`.
    pub async fn call(&self, method: &str, params: &[Value]) -> Result<Value> {
        if self.disabled {
            return Err(Error::Management(
                "no management interface configured ([management] rpc_url is not set)".into(),
            ));
        }
        let body =
            json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}).to_string();
        let exchange = self.exchange(&body);
        let (status, reply) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                Error::Management(format!(
                    "no answer from {} to {method} within {} ms",
                    self.url(),
                    self.timeout.as_millis()
                ))
            })??;
        let parsed: Option<Value> = serde_json::from_slice(&reply).ok();
        match parsed {
            Some(v) => {
                if let Some(err) = v.get("error") {
                    let message = err
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("error without message")
                        .to_string();
                    return Err(Error::Rpc {
                        method: method.to_string(),
                        message,
                    });
                }
                if status != 200 {
                    return Err(Error::Management(format!(
                        "{} answered HTTP {status} to {method}",
                        self.url()
                    )));
                }
                v.get("result").cloned().ok_or_else(|| {
                    Error::Management(format!("{method}: reply has neither result nor error"))
                })
            }
            None if status != 200 => Err(Error::Management(format!(
                "{} answered HTTP {status} to {method}: {}",
                self.url(),
                snippet(&reply)
            ))),
            None => Err(Error::Management(format!(
                "{method}: reply is not JSON: {}",
                snippet(&reply)
            ))),
        }
    }

    async fn exchange(&self, body: &str) -> Result<(u16, Vec<u8>)> {
        let mut stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| {
                Error::Management(format!(
                    "cannot connect to {}:{}: {e}",
                    self.host_for_url(),
                    self.port
                ))
            })?;
        let request = format!(
            "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.path,
            self.host_for_url(),
            self.port,
            body.len()
        );
        let io = |e: std::io::Error| Error::Management(format!("{}: {e}", self.url()));
        stream.write_all(request.as_bytes()).await.map_err(io)?;
        let mut buf = Vec::with_capacity(16 * 1024);
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if let Some(done) = complete_response(&buf) {
                return done;
            }
            let n = stream.read(&mut chunk).await.map_err(io)?;
            if n == 0 {
                break;
            }
            if buf.len() + n > MAX_REPLY {
                return Err(Error::Management(format!(
                    "{}: reply larger than {MAX_REPLY} bytes",
                    self.url()
                )));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        // The peer closed: whatever arrived is the whole response (RFC 9112 §6.3 item 8).
        match complete_response(&buf) {
            Some(done) => done,
            None => finish_at_eof(&buf),
        }
    }
}

fn split_host_port(authority: &str) -> Option<(String, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => 80,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (authority, 80),
    };
    (!host.is_empty()).then(|| (host.to_string(), port))
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.trim().replace(['\r', '\n'], " ")
}

struct Head {
    status: u16,
    body_start: usize,
    content_length: Option<usize>,
    chunked: bool,
}

fn parse_head(buf: &[u8]) -> Option<Result<Head>> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = match status_line
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|c| c.parse::<u16>().ok())
    {
        Some(s) => s,
        None => {
            return Some(Err(Error::Management(format!(
                "not an HTTP response: {}",
                snippet(status_line.as_bytes())
            ))));
        }
    };
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    Some(Ok(Head {
        status,
        body_start: end + 4,
        content_length,
        chunked,
    }))
}

/// The status and body once the response is complete, `None` while more bytes are needed.
pub(crate) fn complete_response(buf: &[u8]) -> Option<Result<(u16, Vec<u8>)>> {
    let head = match parse_head(buf)? {
        Ok(h) => h,
        Err(e) => return Some(Err(e)),
    };
    let body = &buf[head.body_start..];
    if head.chunked {
        return dechunk(body).map(|b| Ok((head.status, b)));
    }
    let len = head.content_length?;
    (body.len() >= len).then(|| Ok((head.status, body[..len].to_vec())))
}

pub(crate) fn finish_at_eof(buf: &[u8]) -> Result<(u16, Vec<u8>)> {
    match parse_head(buf) {
        None if buf.is_empty() => Err(Error::Management(
            "connection closed without a response".into(),
        )),
        None => Err(Error::Management("truncated HTTP response header".into())),
        Some(Err(e)) => Err(e),
        Some(Ok(head)) if head.chunked || head.content_length.is_some() => Err(Error::Management(
            "connection closed before the whole body arrived".into(),
        )),
        Some(Ok(head)) => Ok((head.status, buf[head.body_start..].to_vec())),
    }
}

/// Decodes a chunked body (RFC 9112 §7.1); `None` until the last chunk has arrived.
fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..eol]).ok()?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        body = &body[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        if body.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let cases = [
            (
                "http://127.0.0.1:5071/RPC",
                Some(("127.0.0.1", 5071, "/RPC")),
            ),
            ("http://localhost:5071", Some(("localhost", 5071, "/RPC"))),
            ("http://[::1]:8080/x", Some(("::1", 8080, "/x"))),
            ("http://h", Some(("h", 80, "/RPC"))),
            ("https://h/RPC", None),
            ("http://u:pw@h/RPC", None),
            ("http://h:notaport/RPC", None),
            ("127.0.0.1:5071", None),
        ];
        for (url, want) in cases {
            let got = RpcClient::new(url, Duration::from_secs(1))
                .ok()
                .map(|c| (c.host.clone(), c.port, c.path.clone()));
            let want = want.map(|(h, p, path)| (h.to_string(), p, path.to_string()));
            assert_eq!(got, want, "{url}");
        }
        let err = RpcClient::new("http://u:secretpw@h/RPC", Duration::from_secs(1)).unwrap_err();
        assert!(!err.to_string().contains("secretpw"), "{err}");
    }

    #[test]
    fn responses() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody";
        assert_eq!(
            complete_response(ok).unwrap().unwrap(),
            (200, b"body".to_vec())
        );
        assert!(complete_response(&ok[..ok.len() - 1]).is_none());
        let chunked =
            b"HTTP/1.1 500 Err\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n";
        assert_eq!(
            complete_response(chunked).unwrap().unwrap(),
            (500, b"abc".to_vec())
        );
        assert_eq!(
            finish_at_eof(b"HTTP/1.0 200 OK\r\n\r\nxyz").unwrap(),
            (200, b"xyz".to_vec())
        );
        assert!(finish_at_eof(b"").is_err());
        assert!(finish_at_eof(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
    }
}
