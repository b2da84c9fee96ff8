//! Ports and processes: a free block of loopback ports per lab, and bounded waits on the
//! lab's scripts and programs.

use super::{Error, Result, io_err};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub(super) const SIPP_TIMEOUT: Duration = Duration::from_secs(20);
pub(super) const SCRIPT_TIMEOUT: Duration = Duration::from_secs(40);

/// Ports used by one lab, from one block of 16 consecutive ports.
#[derive(Debug, Clone, Copy)]
pub(super) struct PortBlock(u16);

impl PortBlock {
    const LEN: u16 = 16;

    pub(super) fn env(self) -> [(&'static str, String); 7] {
        let b = self.0;
        [
            ("LAB_SIP_PORT", b.to_string()),
            ("LAB_TLS_PORT", (b + 1).to_string()),
            ("LAB_RPC_PORT", (b + 2).to_string()),
            ("LAB_ECHO_PORT", (b + 3).to_string()),
            ("LAB_GW_PORT", (b + 4).to_string()),
            ("LAB_GW2_PORT", (b + 5).to_string()),
            // base..base+7: echo and gateway RTP (each also uses port+2).
            ("LAB_MEDIA_BASE", (b + 8).to_string()),
        ]
    }
}

/// A cheap process-wide pseudo-random sequence (xorshift) seeded from the
/// clock and pid, so parallel tests and processes pick different ports.
fn next_random() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9);
        x = nanos ^ (u64::from(std::process::id()) << 32) | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    x
}

fn port_free(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    UdpSocket::bind(addr).is_ok() && TcpListener::bind(addr).is_ok()
}

/// Picks a block of free ports below the kernel's ephemeral range
/// (32768 and up), where outgoing sockets do not land.
pub(super) fn pick_port_block() -> Option<PortBlock> {
    const LOW: u64 = 10_000;
    const SLOTS: u64 = (32_768 - LOW) / PortBlock::LEN as u64;
    for _ in 0..64 {
        let base = LOW + (next_random() % SLOTS) * u64::from(PortBlock::LEN);
        let base = u16::try_from(base).ok()?;
        if (base..base + PortBlock::LEN).all(port_free) {
            return Some(PortBlock(base));
        }
    }
    None
}

/// A free UDP port on loopback for a SIPp UAC (from the ephemeral range).
pub(super) fn free_udp_port() -> Result<u16> {
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io_err("binding a UDP port"))?;
    let port = sock
        .local_addr()
        .map_err(io_err("reading a local address"))?
        .port();
    Ok(port)
}

/// Waits for `child` at most `timeout`, killing it when the bound is hit.
fn wait_bounded(mut child: Child, what: &str, timeout: Duration) -> Result<Output> {
    let deadline = Instant::now() + timeout;
    loop {
        match child
            .try_wait()
            .map_err(io_err(format!("waiting for {what}")))?
        {
            Some(_) => {
                return child
                    .wait_with_output()
                    .map_err(io_err(format!("reading the output of {what}")));
            }
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Timeout {
                    what: what.to_string(),
                    timeout,
                });
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Runs `cmd` with piped output, bounded by `timeout`.
pub(super) fn run_bounded(cmd: &mut Command, what: &str, timeout: Duration) -> Result<Output> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io_err(format!("starting {what}")))?;
    // Output is small (scripts and SIPp write their bulk to files), so
    // the pipes cannot fill up while we poll.
    wait_bounded(child, what, timeout)
}

pub(super) fn status_text(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit code {code}"),
        None => "killed by a signal".to_string(),
    }
}
