//! Integration tests of the lab and the testlab helper: each test starts its own lab on loopback.

mod calls;
mod faults;
mod register;
mod start;
mod variants;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testlab::Lab;

/// Reads a data file of this crate, without comment and blank lines.
pub fn data_lines(name: &str) -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("test_data")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Sends one OPTIONS with sipsak over `transport` (udp or tcp); true on a 200.
pub fn sipsak_options(lab: &Lab, transport: &str) -> bool {
    let uri = format!("sip:{}:{}", lab.ip(), lab.sip_port());
    let status = Command::new("timeout")
        .args([
            "5",
            "sipsak",
            "-s",
            &uri,
            &format!("--transport={transport}"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("sipsak runs");
    status.success()
}

/// The certificate verification result of the lab's TLS port against the lab CA,
/// as `openssl s_client` reports it ("0 (ok)", "10 (certificate has expired)", ...).
pub fn tls_verify(lab: &Lab) -> String {
    let out = Command::new("timeout")
        .args(["5", "openssl", "s_client", "-connect"])
        .arg(lab.tls_addr().to_string())
        .arg("-CAfile")
        .arg(lab.ca_cert())
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("Verify return code: "))
        .unwrap_or("no TLS handshake")
        .to_string()
}

/// dispatcher.list as destination URI -> FLAGS.
pub fn dispatcher_flags(lab: &Lab) -> BTreeMap<String, String> {
    let list = lab
        .rpc("dispatcher.list", serde_json::json!([]))
        .expect("dispatcher.list");
    let mut flags = BTreeMap::new();
    for set in list["RECORDS"].as_array().into_iter().flatten() {
        for t in set["SET"]["TARGETS"].as_array().into_iter().flatten() {
            let dest = &t["DEST"];
            flags.insert(
                dest["URI"].as_str().unwrap_or_default().to_string(),
                dest["FLAGS"].as_str().unwrap_or_default().to_string(),
            );
        }
    }
    flags
}

/// Polls `cond` every 100 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `lab.env` value by key.
pub fn env<'a>(lab: &'a Lab, key: &str) -> &'a str {
    lab.env().get(key).map(String::as_str).unwrap_or_default()
}
