//! `dialtone doctor`: for every runbook step with an automated check, whether its evidence is
//! readable on this server, from where, and what is missing with the setting that would fix it.
//! The first thing a new operator runs.

use serde::Serialize;
use server_state::{Capabilities, SourceStatus};
use sip_probe::Category;

use crate::Diagnoser;
use crate::decide::{Want, sources_of};
use runbook::Check;

/// The readiness of one step's automated check.
#[derive(Debug, Clone, Serialize)]
pub struct StepReadiness {
    pub runbook: String,
    pub step: String,
    pub title: String,
    pub check: Check,
    /// Every source the check reads is available.
    pub ready: bool,
    pub sources: Vec<SourceStatus>,
}

/// What `doctor` found.
#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    pub backend: String,
    pub capabilities: Capabilities,
    /// Sources dialtone produces itself (probes, attachments), as configured and as answered.
    pub probes: Vec<SourceStatus>,
    pub steps: Vec<StepReadiness>,
}

impl DoctorReport {
    /// Steps whose check lacks evidence on this server.
    pub fn gaps(&self) -> impl Iterator<Item = &StepReadiness> {
        self.steps.iter().filter(|s| !s.ready)
    }
}

fn status(
    evidence: &str,
    available: bool,
    from: &str,
    missing: Option<String>,
    fix: Option<&str>,
) -> SourceStatus {
    SourceStatus {
        evidence: evidence.into(),
        available,
        from: from.into(),
        missing: if available { None } else { missing },
        fix: if available {
            None
        } else {
            fix.map(str::to_string)
        },
    }
}

impl Diagnoser {
    /// Connects to everything configured and reports, per step, what its check can read.
    pub async fn doctor(&self) -> DoctorReport {
        let cfg = self.config();
        let probe_user = cfg
            .probe
            .as_ref()
            .map(|p| p.user.clone())
            .unwrap_or_else(|| "dialtone-doctor".into());
        let want = Want::checks([
            Check::TransportReachability,
            Check::DnsResolution,
            Check::TlsHandshake,
        ]);
        let req = crate::Request {
            account: probe_user,
            ..crate::Request::default()
        };
        let state = self.state();
        let (caps, g) = tokio::join!(state.capabilities(), self.gather_wanted(&req, want));
        let (silent, answering): (Vec<_>, Vec<_>) = g.transports.iter().partition(|t| {
            matches!(
                t.options.category,
                Category::Refused | Category::Timeout | Category::Unreachable | Category::Dns
            )
        });
        let answering: Vec<String> = answering
            .iter()
            .map(|t| format!("{}/{}", t.transport.as_str(), t.port))
            .collect();
        let silent: Vec<String> = silent
            .iter()
            .map(|t| {
                format!(
                    "{}/{} {}",
                    t.transport.as_str(),
                    t.port,
                    t.options.category.as_str()
                )
            })
            .collect();
        let mut probes = vec![
            status(
                "transports",
                !answering.is_empty(),
                &format!(
                    "SIP OPTIONS from dialtone (answering: {})",
                    answering.join(", ")
                ),
                Some(format!(
                    "no transport answers OPTIONS ({})",
                    silent.join(", ")
                )),
                Some("[server] host, udp_port, tcp_port, tls_port, transports"),
            ),
            status(
                "dns",
                true,
                if cfg.server.host.is_some() {
                    "[server] host is set: resolution skipped"
                } else {
                    "RFC 3263 resolution of [server] domain"
                },
                None,
                None,
            ),
            status(
                "tls",
                !cfg.server.transports.iter().any(|t| t == "tls") || g.tls.is_some(),
                "TLS handshake from dialtone",
                Some("no TLS handshake could be made".into()),
                Some("[server] tls_port and tls_ca"),
            ),
            status(
                "echo",
                cfg.probe.is_some(),
                "echo call by the probe account",
                Some("no probe account is configured".into()),
                Some("[probe] user and password (DIALTONE_CFG_PROBE_PASSWORD)"),
            ),
            status(
                "self_test",
                cfg.probe.as_ref().is_some_and(|p| p.peer_user.is_some()),
                "call between the two probe accounts",
                Some("no second probe account is configured".into()),
                Some("[probe] peer_user and peer_password"),
            ),
            status(
                "license",
                cfg.server.license_url.is_some(),
                "connection to the licence service",
                Some("no licence service is configured".into()),
                Some("[server] license_url"),
            ),
            status(
                "client_logs",
                true,
                "client logs and captures attached to the incident",
                None,
                None,
            ),
        ];
        // Derived sources: what they are read from.
        let find = |ev: &str| caps.sources.iter().find(|s| s.evidence == ev).cloned();
        if let Some(mut w) = find("attempts") {
            w.evidence = "watch".into();
            probes.push(w);
        }
        if let (Some(a), Some(r)) = (find("account"), find("registrations")) {
            probes.push(SourceStatus {
                evidence: "callee".into(),
                available: a.available && r.available,
                from: format!("{}; {}", a.from, r.from),
                missing: a.missing.or(r.missing),
                fix: a.fix.or(r.fix),
            });
        }
        let lookup = |ev: &str| -> SourceStatus {
            caps.sources
                .iter()
                .chain(probes.iter())
                .find(|s| s.evidence == ev)
                .cloned()
                .unwrap_or_else(|| {
                    status(
                        ev,
                        false,
                        "",
                        Some("this backend does not say whether it can read it".into()),
                        None,
                    )
                })
        };
        let mut steps = Vec::new();
        for rb in self.runbooks.iter() {
            for st in &rb.steps {
                let Some(check) = st.check else { continue };
                let sources: Vec<SourceStatus> = sources_of(check)
                    .iter()
                    .map(|s| lookup(s.as_str()))
                    .collect();
                let ready = !sources.is_empty() && sources.iter().all(|s| s.available);
                steps.push(StepReadiness {
                    runbook: rb.id.clone(),
                    step: st.id.clone(),
                    title: st.title.clone(),
                    check,
                    ready,
                    sources,
                });
            }
        }
        DoctorReport {
            backend: caps.backend.clone(),
            capabilities: caps,
            probes,
            steps,
        }
    }
}
