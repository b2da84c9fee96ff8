//! The SIP listeners Kamailio reports, and the certificate its TLS listeners present.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use super::KamailioState;
use crate::TlsListener;

pub(super) fn for_each_object(v: &Value, f: &mut dyn FnMut(&serde_json::Map<String, Value>)) {
    match v {
        Value::Object(map) => {
            f(map);
            map.values().for_each(|x| for_each_object(x, f));
        }
        Value::Array(items) => items.iter().for_each(|x| for_each_object(x, f)),
        _ => {}
    }
}

pub(super) fn find_string(v: &Value, keys: &[&str]) -> Option<String> {
    let mut found = None;
    for_each_object(v, &mut |m| {
        if found.is_none() {
            found = keys
                .iter()
                .find_map(|k| m.get(*k).and_then(Value::as_str))
                .filter(|s| !s.is_empty())
                .map(str::to_string);
        }
    });
    found
}

/// The certificate of the `[server:default]` profile (or the first server profile) of a tls.cfg.
pub(super) fn server_certificate_from_tls_cfg(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut section = String::new();
    let mut first: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.to_ascii_lowercase();
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if k.trim() != "certificate" || !section.starts_with("[server:") {
            continue;
        }
        let v = v.trim().to_string();
        if section == "[server:default]" {
            return Some(v);
        }
        first.get_or_insert(v);
    }
    first
}

/// Expiry of a PEM certificate on this host (the server's own file, when dialtone runs beside it).
pub(super) fn read_not_after(path: &str) -> Option<DateTime<Utc>> {
    let pem = std::fs::read(path).ok()?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    Utc.timestamp_opt(cert.validity().not_after.timestamp(), 0)
        .single()
}

impl KamailioState {
    /// SIP listeners (`proto:ip:port`, the management port left out) and the TLS ones with
    /// their certificate.
    pub(super) async fn listeners(&self) -> (Vec<String>, Vec<TlsListener>) {
        let (mut sip, mut tls) = (Vec::new(), Vec::new());
        let Ok(sockets) = self.rpc.call("core.sockets_list", &[]).await else {
            return (sip, tls);
        };
        // With a tls.cfg file the per-domain certificate there wins over the module default
        // that tls.options also reports.
        let certificate = match self.rpc.call("tls.options", &[]).await {
            Ok(opts) => find_string(&opts, &["config"])
                .and_then(|cfg| server_certificate_from_tls_cfg(&cfg))
                .or_else(|| find_string(&opts, &["certificate", "Certificate"])),
            Err(_) => None,
        };
        let not_after = certificate.as_deref().and_then(read_not_after);
        let rpc_port = self.rpc.port().to_string();
        for_each_object(&sockets, &mut |o| {
            let Some(proto) = o.get("proto").and_then(Value::as_str) else {
                return;
            };
            let proto = proto.to_ascii_lowercase();
            let addr = ["address", "ipaddress", "name"]
                .iter()
                .find_map(|k| o.get(*k).and_then(Value::as_str))
                .unwrap_or("");
            let port = o
                .get("port")
                .map(|p| match p {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            // xhttp serves JSON-RPC on a plain TCP listener: not a SIP transport.
            if proto == "tcp" && port == rpc_port {
                return;
            }
            let address = format!("{addr}:{port}");
            let listener = format!("{proto}:{address}");
            if sip.contains(&listener) {
                return;
            }
            sip.push(listener);
            if proto == "tls" {
                tls.push(TlsListener {
                    address,
                    certificate: certificate.clone(),
                    not_after,
                });
            }
        });
        (sip, tls)
    }
}
