//! Kamailio's JSON-RPC management interface.

use super::{Error, Lab, Result};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const RPC_TIMEOUT: Duration = Duration::from_secs(3);

impl Lab {
    /// Calls a JSON-RPC method and returns its `result`; a JSON-RPC error
    /// becomes [`Error::Rpc`] with Kamailio's message.
    /// On a lab built without the management interface
    /// ([`Variant::rpc`](crate::Variant::rpc) false) this fails at once.
    pub fn rpc(&self, method: &str, params: serde_json::Value) -> Result<serde_json::Value> {
        let rpc_err = |message: String| Error::Rpc {
            method: method.to_string(),
            message,
        };
        if !self.variant.rpc {
            return Err(rpc_err(
                "this lab runs without a management interface (LAB_RPC=off)".into(),
            ));
        }
        let body =
            serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1})
                .to_string();
        let port = self.env_port("LAB_RPC_PORT");
        let addr = SocketAddr::from((self.ip(), port));
        let mut stream = TcpStream::connect_timeout(&addr, RPC_TIMEOUT)
            .map_err(|e| rpc_err(format!("connect {addr}: {e}")))?;
        stream
            .set_read_timeout(Some(RPC_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(RPC_TIMEOUT)))
            .map_err(|e| rpc_err(e.to_string()))?;
        let request = format!(
            "POST /RPC HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|e| rpc_err(format!("send: {e}")))?;
        let mut response = Vec::new();
        // Kamailio closes the connection after each reply (set_reply_close).
        stream
            .take(16 * 1024 * 1024)
            .read_to_end(&mut response)
            .map_err(|e| rpc_err(format!("receive: {e}")))?;
        let text = String::from_utf8_lossy(&response);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| rpc_err("no HTTP header end in the reply".into()))?;
        if !head.starts_with("HTTP/1.") || !head.contains(" 200 ") {
            return Err(rpc_err(format!(
                "HTTP status {}",
                head.lines().next().unwrap_or_default()
            )));
        }
        let json: serde_json::Value =
            serde_json::from_str(body).map_err(|e| rpc_err(format!("bad JSON: {e}")))?;
        if let Some(err) = json.get("error") {
            let message = err
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or("unknown error");
            return Err(rpc_err(message.to_string()));
        }
        json.get("result")
            .cloned()
            .ok_or_else(|| rpc_err("reply has neither result nor error".into()))
    }
}
