//! SIPp runs against the lab: REGISTER, calls, and a phone that answers.

use super::process::{SIPP_TIMEOUT, free_udp_port, run_bounded, status_text};
use super::{Error, Lab, Result, check_word, io_err};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What a SIPp UAC run gave.
#[derive(Debug, Clone)]
pub struct SippOutcome {
    /// SIPp exit code: 0 when the scenario ran to its end.
    pub exit_code: Option<i32>,
    /// True when the scenario succeeded (exit code 0).
    pub success: bool,
    /// Status code of the last response received, if any.
    pub final_status: Option<u16>,
    /// Call-ID of the exchange (to find its acc, acc_cdrs, sip_trace rows).
    pub call_id: Option<String>,
    /// Every response status received, in order (retransmissions included).
    pub statuses: Vec<u16>,
    /// The messages sent and received (SIPp's message trace), digest
    /// responses redacted.
    pub trace: String,
}

/// A SIPp UAS answering calls (see [`Lab::sipp_phone`]); killed on drop.
#[derive(Debug)]
pub struct SippPhone {
    child: Child,
    addr: SocketAddr,
}

impl SippPhone {
    /// Where the phone listens (UDP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A contact URI for `user` at this phone, for [`Lab::sipp_register_contact`].
    pub fn contact(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.addr)
    }
}

impl Drop for SippPhone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Replaces digest `response="..."` values (RFC 2617 3.2.2) in a SIPp trace.
pub(super) fn redact_digest(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("response=") {
        let (head, tail) = rest.split_at(pos + "response=".len());
        out.push_str(head);
        let quoted = tail.starts_with('"');
        let body = if quoted { &tail[1..] } else { tail };
        let end = if quoted {
            body.find('"').map(|e| e + 1)
        } else {
            body.find([',', '\r', '\n', ' '])
        }
        .unwrap_or(body.len());
        out.push_str(if quoted {
            "\"<redacted>\""
        } else {
            "<redacted>"
        });
        rest = &body[end..];
    }
    out.push_str(rest);
    out
}

/// Status codes of the responses in a SIPp message trace, in order.
pub(super) fn response_statuses(trace: &str) -> Vec<u16> {
    trace
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("SIP/2.0 "))
        .filter_map(|rest| rest.get(..3)?.parse().ok())
        .collect()
}

impl Lab {
    /// Registers `user` with SIPp (UDP, digest auth, Expires 300, a contact
    /// on a free loopback port where nothing answers after SIPp exits).
    ///
    /// A loaded machine can lose a UDP REGISTER or its answer; a REGISTER is idempotent, so one
    /// that got no final answer at all is sent again, three tries at most (each bounded).
    pub fn sipp_register(&self, user: &str, password: &str) -> Result<SippOutcome> {
        let mut outcome =
            self.run_sipp("register.xml", user, password, &[("expires", "300")], &[])?;
        for _ in 1..3 {
            if outcome.final_status.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
            outcome = self.run_sipp("register.xml", user, password, &[("expires", "300")], &[])?;
        }
        Ok(outcome)
    }

    /// Registers `user` with the given contact URI, e.g. a [`SippPhone`]'s
    /// [`SippPhone::contact`], so calls to the account are answered.
    pub fn sipp_register_contact(
        &self,
        user: &str,
        password: &str,
        contact: &str,
    ) -> Result<SippOutcome> {
        if !contact.starts_with("sip:") || contact.contains(['<', '>', '\r', '\n', ' ']) {
            return Err(Error::InvalidArgument(format!("contact {contact:?}")));
        }
        self.run_sipp(
            "register.xml",
            user,
            password,
            &[("expires", "300"), ("contact", contact)],
            &[],
        )
    }

    /// Starts a SIPp UAS on a free loopback port that answers every call
    /// (200 with SDP, RTP echoed) until it is dropped: a phone to register.
    pub fn sipp_phone(&self) -> Result<SippPhone> {
        let n = self.sipp_runs.fetch_add(1, Ordering::Relaxed);
        let port = free_udp_port()?;
        let media = free_udp_port()?;
        let out_path = self.run_dir.join(format!("sipp-phone-{n}.out"));
        let out = std::fs::File::create(&out_path)
            .map_err(io_err(format!("creating {}", out_path.display())))?;
        let err = out
            .try_clone()
            .map_err(io_err("duplicating a file handle"))?;
        let child = Command::new("sipp")
            .current_dir(&self.run_dir)
            .arg("-sf")
            .arg(self.lab_dir.join("sipp").join("echo_uas.xml"))
            .args(["-t", "u1", "-nostdin", "-rtp_echo"])
            .args(["-i", &self.ip().to_string(), "-mi", &self.ip().to_string()])
            .args(["-p", &port.to_string(), "-mp", &media.to_string()])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(io_err("starting the SIPp phone"))?;
        let phone = SippPhone {
            child,
            addr: SocketAddr::from((self.ip(), port)),
        };
        // SIPp binds within milliseconds; wait (bounded) until the port is taken.
        let deadline = Instant::now() + Duration::from_secs(3);
        while UdpSocket::bind(phone.addr).is_ok() {
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: "the SIPp phone binding its port".into(),
                    timeout: Duration::from_secs(3),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(phone)
    }

    /// Removes every binding of `user` (Contact: *, Expires: 0).
    pub fn sipp_unregister(&self, user: &str, password: &str) -> Result<SippOutcome> {
        self.run_sipp("unregister.xml", user, password, &[], &[])
    }

    /// Calls `target` (a user, a number, `600`, `9...`) as `user`, holds the
    /// call 500 ms and hangs up.
    pub fn sipp_call(&self, user: &str, password: &str, target: &str) -> Result<SippOutcome> {
        self.sipp_call_for(user, password, target, Duration::from_millis(500))
    }

    /// Like [`Lab::sipp_call`], holding the call for `hold`.
    pub fn sipp_call_for(
        &self,
        user: &str,
        password: &str,
        target: &str,
        hold: Duration,
    ) -> Result<SippOutcome> {
        check_word("target", target)?;
        let hold_ms = hold.as_millis().min(60_000).to_string();
        self.run_sipp(
            "call.xml",
            user,
            password,
            &[("target", target)],
            &["-d", &hold_ms],
        )
    }

    fn run_sipp(
        &self,
        scenario: &str,
        user: &str,
        password: &str,
        keys: &[(&str, &str)],
        extra: &[&str],
    ) -> Result<SippOutcome> {
        check_word("user", user)?;
        if password.is_empty() || password.chars().any(|c| c.is_control()) {
            return Err(Error::InvalidArgument(
                "password is empty or has control characters".into(),
            ));
        }
        // A port picked here may be taken before SIPp binds it: retry.
        let mut last = None;
        for _ in 0..3 {
            let n = self.sipp_runs.fetch_add(1, Ordering::Relaxed);
            let trace_path = self.run_dir.join(format!("sipp-uac-{n}.log"));
            let port = free_udp_port()?.to_string();
            let media = free_udp_port()?.to_string();
            let own_contact = format!("sip:{user}@{}:{port}", self.ip());
            let contact = keys
                .iter()
                .find(|(k, _)| *k == "contact")
                .map_or(own_contact.as_str(), |(_, v)| v);
            let mut cmd = Command::new("sipp");
            cmd.current_dir(&self.run_dir)
                .arg(self.sip_addr().to_string())
                .arg("-sf")
                .arg(self.lab_dir.join("sipp").join(scenario))
                .args(["-t", "u1", "-m", "1", "-nostdin", "-trace_msg"])
                .args(["-i", &self.ip().to_string(), "-mi", &self.ip().to_string()])
                .args(["-p", &port, "-mp", &media])
                .args(["-timeout", "15", "-timeout_error"])
                .arg("-message_file")
                .arg(&trace_path)
                .args([
                    "-key",
                    "user",
                    user,
                    "-key",
                    "domain",
                    self.account_domain(user),
                ])
                .args(["-au", user, "-ap", password]);
            cmd.args(["-key", "contact", contact]);
            for (k, v) in keys.iter().filter(|(k, _)| *k != "contact") {
                cmd.args(["-key", k, v]);
            }
            cmd.args(extra);
            let out = run_bounded(&mut cmd, &format!("sipp {scenario}"), SIPP_TIMEOUT)?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.contains("Unable to bind") {
                last = Some(Error::Command {
                    what: format!("sipp {scenario}"),
                    status: status_text(out.status),
                    stderr: stderr.trim().to_string(),
                });
                continue;
            }
            let trace = std::fs::read(&trace_path)
                .map(|b| redact_digest(&String::from_utf8_lossy(&b)))
                .unwrap_or_default();
            let statuses = response_statuses(&trace);
            let call_id = trace
                .lines()
                .find_map(|l| l.strip_prefix("Call-ID:"))
                .map(|v| v.trim().to_string());
            return Ok(SippOutcome {
                call_id,
                exit_code: out.status.code(),
                success: out.status.success(),
                final_status: statuses.last().copied(),
                statuses,
                trace,
            });
        }
        Err(last.unwrap_or_else(|| Error::InvalidArgument("sipp never ran".into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_responses_are_redacted() {
        let t = "Authorization: Digest username=\"a\", response=\"0123abcd\", nc=1\r\nX: response=abc,y\n";
        let r = redact_digest(t);
        assert!(!r.contains("0123abcd") && !r.contains("=abc,"), "{r}");
        assert!(r.contains("response=\"<redacted>\", nc=1") && r.contains("response=<redacted>,y"));
    }

    #[test]
    fn statuses_come_from_status_lines() {
        let t = "SIP/2.0 401 Unauthorized\r\nVia: x\r\n\r\nREGISTER sip:a SIP/2.0\r\n  SIP/2.0 200 OK\r\nSIP/2.0 9\r\n";
        assert_eq!(response_statuses(t), vec![401, 200]);
    }
}
