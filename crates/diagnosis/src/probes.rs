//! The network half of the evidence: SIP probes against the server as a client would send them
//! (OPTIONS per transport, a burst for round trip and loss, TLS certificate, DNS, an echo call
//! by dialtone's own probe account), through the `sip-probe` crate.

use crate::config::Config;
use crate::decide::{Source, Want};
use crate::evidence::{
    BurstStats, CertSummary, DnsSummary, Got, MediaSummary, ProbeSummary, TransportProbe,
};
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Everything the probes found.
/// Serializable, so that a run can be recorded and replayed (see `RecordedProber`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ProbeResults {
    pub transports: Vec<TransportProbe>,
    pub tls: Option<ProbeSummary>,
    pub echo: Got<ProbeSummary>,
    /// A call between dialtone's two probe accounts, media both ways (PrivateServer's own
    /// self-test between two service accounts); Err when no peer account is configured.
    #[serde(default = "not_configured")]
    pub self_test: Got<ProbeSummary>,
    pub dns: Option<DnsSummary>,
    pub license: Got<bool>,
    pub timings: BTreeMap<String, u64>,
}

fn not_configured() -> Got<ProbeSummary> {
    Err("not recorded".into())
}

/// What an unsent probe says about itself.
const NOT_SENT: &str = "not sent for this check";

/// Sends the probes. A trait so that decisions can be tested on recorded results too.
#[async_trait::async_trait]
pub trait Prober: Send + Sync {
    /// Sends the probes `want` asks for (all of them for a diagnosis).
    async fn run_all(&self, want: &Want) -> ProbeResults;
    /// How long the echo call sends audio.
    fn media_window(&self) -> Duration;
}

/// Replays probe results recorded earlier (a `probes.json` next to a server's exports), for a
/// diagnosis of a server dialtone cannot reach from where it runs.
pub struct RecordedProber {
    results: ProbeResults,
    media_window: Duration,
}

impl RecordedProber {
    pub fn new(results: ProbeResults, media_window: Duration) -> Self {
        RecordedProber {
            results,
            media_window,
        }
    }

    /// Reads `probes.json`.
    pub fn from_file(path: &std::path::Path) -> crate::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| crate::Error::Config(format!("cannot read {}: {e}", path.display())))?;
        let results: ProbeResults = serde_json::from_str(&text)
            .map_err(|e| crate::Error::Config(format!("{}: {e}", path.display())))?;
        Ok(RecordedProber {
            results,
            media_window: Duration::ZERO,
        })
    }
}

#[async_trait::async_trait]
impl Prober for RecordedProber {
    async fn run_all(&self, _want: &Want) -> ProbeResults {
        self.results.clone()
    }

    fn media_window(&self) -> Duration {
        self.media_window
    }
}

/// The real prober: `sip-probe` against the configured server.
pub struct SipProber {
    cfg: Config,
}

impl SipProber {
    pub fn new(cfg: Config) -> Self {
        SipProber { cfg }
    }

    fn options(&self) -> sip_probe::ProbeOptions {
        let mut o = sip_probe::ProbeOptions::default();
        if let Some(p) = &self.cfg.probe {
            if let Some(t) = p.timeout {
                o.timeout_total = t;
            }
            if let Some(w) = p.media_window {
                o.media_window = w;
            }
        }
        o
    }

    fn target(&self, transport: &str) -> sip_probe::ProbeTarget {
        let s = &self.cfg.server;
        sip_probe::ProbeTarget {
            host: s.host.clone().unwrap_or_else(|| s.domain.clone()),
            port: Some(self.cfg.port(transport)),
            transport: match transport {
                "tcp" => sip_probe::Transport::Tcp,
                "tls" => sip_probe::Transport::Tls,
                _ => sip_probe::Transport::Udp,
            },
            domain: s.domain.clone(),
            tls_trust: s.tls_ca.clone(),
            insecure_continue: true,
        }
    }

    /// The transport the echo call uses: UDP when offered (media is UDP anyway), else the first.
    fn call_transport(&self) -> String {
        let t = &self.cfg.server.transports;
        if t.iter().any(|x| x == "udp") {
            "udp".into()
        } else {
            t.first().cloned().unwrap_or_else(|| "udp".into())
        }
    }
}

fn credentials(user: &str, password: &SecretString) -> sip_probe::Credentials {
    sip_probe::Credentials {
        user: user.to_string(),
        password: SecretString::from(password.expose_secret().to_string()),
        auth_user: None,
    }
}

pub fn summarize(r: &sip_probe::ProbeReport) -> ProbeSummary {
    let certificate = r.tls.as_ref().map(|t| CertSummary {
        subject: t.subject.clone(),
        issuer: t.issuer.clone(),
        sans: t.sans.clone(),
        not_before: t.not_before.clone(),
        not_after: t.not_after.clone(),
        verification: if t.verified {
            "valid".to_string()
        } else {
            t.error
                .clone()
                .unwrap_or_else(|| "not verified".to_string())
        },
    });
    let media = r.media.as_ref().map(|m| MediaSummary {
        sent: m.sent,
        echoed: m.echoed,
        loss_percent: m.loss * 100.0,
        rtt_min_ms: m.rtt_min_ms,
        rtt_avg_ms: m.rtt_avg_ms,
        rtt_max_ms: m.rtt_max_ms,
        jitter_ms: m.jitter_ms,
    });
    ProbeSummary {
        category: r.verdict.category,
        summary: r.verdict.summary.clone(),
        status: r.verdict.status,
        duration_ms: r.duration_ms,
        rtt_ms: round_trip_ms(r),
        certificate,
        media,
        ladder: sip_probe::ladder(r),
    }
}

#[async_trait::async_trait]
impl Prober for SipProber {
    fn media_window(&self) -> Duration {
        self.options().media_window
    }

    async fn run_all(&self, want: &Want) -> ProbeResults {
        let opts = self.options();
        let burst = self.cfg.diagnosis.network_burst.max(1);
        let transports_fut = futures::future::join_all(
            self.cfg
                .server
                .transports
                .iter()
                .filter(|t| {
                    want.has(Source::Transports) || (want.has(Source::Tls) && t.as_str() == "tls")
                })
                .map(|t| {
                    let target = self.target(t);
                    let opts = opts.clone();
                    let t = t.clone();
                    async move {
                        let start = Instant::now();
                        let first = sip_probe::options(&target, &opts).await;
                        let first_s = summarize(&first);
                        // The burst measures the path only where the server answers at all.
                        let burst_stats = if first_s.ok() {
                            let mut rtts = Vec::new();
                            let mut answered = 0u32;
                            for _ in 1..burst {
                                let r = sip_probe::options(&target, &opts).await;
                                if r.verdict.category == sip_probe::Category::Ok {
                                    answered += 1;
                                    if let Some(x) = round_trip_ms(&r) {
                                        rtts.push(x);
                                    }
                                }
                            }
                            answered += 1;
                            if let Some(x) = round_trip_ms(&first) {
                                rtts.push(x);
                            }
                            Some(burst_of(burst, answered, &rtts))
                        } else {
                            None
                        };
                        let port = target.port.unwrap_or(0);
                        (
                            t.clone(),
                            start.elapsed().as_millis() as u64,
                            first,
                            TransportProbe {
                                transport: server_state::Transport::parse(&t),
                                port,
                                options: first_s,
                                burst: burst_stats,
                            },
                        )
                    }
                }),
        );
        let echo_fut = async {
            match &self.cfg.probe {
                _ if !want.has(Source::Echo) => Err(NOT_SENT.to_string()),
                None => {
                    Err("no probe account is configured ([probe] in the configuration)".to_string())
                }
                Some(p) => {
                    let start = Instant::now();
                    let creds = credentials(&p.user, &p.password);
                    let target = self.target(&self.call_transport());
                    let r =
                        sip_probe::echo(&target, &creds, &self.cfg.server.echo_number, &opts).await;
                    Ok((summarize(&r), start.elapsed().as_millis() as u64))
                }
            }
        };
        let self_test_fut = async {
            match &self.cfg.probe {
                _ if !want.has(Source::SelfTest) => Err(NOT_SENT.to_string()),
                Some(p) if p.peer_user.is_some() && p.peer_password.is_some() => {
                    let start = Instant::now();
                    let caller = credentials(&p.user, &p.password);
                    let peer_password = p
                        .peer_password
                        .clone()
                        .unwrap_or_else(|| SecretString::from(String::new()));
                    let callee =
                        credentials(p.peer_user.as_deref().unwrap_or_default(), &peer_password);
                    let target = self.target(&self.call_transport());
                    let r = sip_probe::call_between(&target, &caller, &callee, &opts).await;
                    Ok((summarize(&r), start.elapsed().as_millis() as u64))
                }
                _ => Err("no second probe account is configured (probe.peer_user)".to_string()),
            }
        };
        // Every probe runs at once: the transports, the echo call, the self-test call, DNS and
        // the licence service; the slowest (the echo call's media window) sets the pace.
        let (transports, echo, self_test, dns, license) = tokio::join!(
            transports_fut,
            echo_fut,
            self_test_fut,
            async {
                if want.has(Source::Dns) {
                    Some(self.dns().await)
                } else {
                    None
                }
            },
            async {
                if want.has(Source::License) {
                    self.license().await
                } else {
                    Err(NOT_SENT.to_string())
                }
            }
        );
        let mut timings = BTreeMap::new();
        let mut tls = None;
        let mut out = Vec::new();
        for (name, ms, report, tp) in transports {
            timings.insert(format!("options_{name}"), ms);
            if name == "tls" {
                tls = Some(summarize(&report));
            }
            out.push(tp);
        }
        timings.insert(
            "transports".into(),
            timings.values().copied().max().unwrap_or(0),
        );
        if let Some(t) = timings.get("options_tls").copied() {
            timings.insert("tls".into(), t);
        }
        let echo = echo.map(|(s, ms)| {
            timings.insert("echo".into(), ms);
            s
        });
        let self_test = self_test.map(|(s, ms)| {
            timings.insert("self_test".into(), ms);
            s
        });
        ProbeResults {
            transports: out,
            tls,
            echo,
            self_test,
            dns,
            license,
            timings,
        }
    }
}

impl SipProber {
    async fn dns(&self) -> DnsSummary {
        let s = &self.cfg.server;
        if s.host.is_some() || s.domain.parse::<std::net::IpAddr>().is_ok() {
            return DnsSummary {
                skipped: true,
                ok: true,
                steps: vec!["a host is configured: DNS not used".into()],
            };
        }
        let target = self.target(s.transports.first().map(String::as_str).unwrap_or("udp"));
        let target = sip_probe::ProbeTarget {
            host: s.domain.clone(),
            port: None,
            ..target
        };
        // An OPTIONS to the bare domain walks RFC 3263 (NAPTR, SRV, A/AAAA) and records each step.
        let report = sip_probe::options(&target, &self.options()).await;
        let ok = report.verdict.category != sip_probe::Category::Dns;
        let steps = report
            .resolution
            .iter()
            .map(|st| match &st.error {
                Some(e) => format!("{} {}: {e}", st.kind, st.query),
                None => format!("{} {} -> {}", st.kind, st.query, st.answers.join(", ")),
            })
            .collect();
        DnsSummary {
            skipped: false,
            ok,
            steps,
        }
    }

    async fn license(&self) -> Got<bool> {
        let Some(url) = &self.cfg.server.license_url else {
            return Err("no licence service is configured (server.license_url)".into());
        };
        let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
        let hostport = rest.split('/').next().unwrap_or(rest);
        let addr = if hostport.contains(':') {
            hostport.to_string()
        } else {
            format!("{hostport}:443")
        };
        let connect = tokio::net::TcpStream::connect(addr);
        match tokio::time::timeout(Duration::from_secs(3), connect).await {
            Ok(Ok(_)) => Ok(true),
            _ => Ok(false),
        }
    }
}

/// The round trip of the exchange: from the first request sent to the last response received.
fn round_trip_ms(r: &sip_probe::ProbeReport) -> Option<f64> {
    let sent = r
        .trace
        .iter()
        .find(|e| e.direction == sip_probe::Direction::Sent)?
        .at_ms;
    let received = r
        .trace
        .iter()
        .rev()
        .find(|e| e.direction == sip_probe::Direction::Received)?
        .at_ms;
    (received >= sent).then(|| (received - sent) as f64)
}

fn burst_of(sent: u32, answered: u32, rtts: &[f64]) -> BurstStats {
    let answered = answered.min(sent);
    let (min, max, avg) = if rtts.is_empty() {
        (None, None, None)
    } else {
        let min = rtts.iter().copied().fold(f64::INFINITY, f64::min);
        let max = rtts.iter().copied().fold(0.0, f64::max);
        (
            Some(min),
            Some(max),
            Some(rtts.iter().sum::<f64>() / rtts.len() as f64),
        )
    };
    BurstStats {
        sent,
        answered,
        loss_percent: 100.0 * f64::from(sent - answered) / f64::from(sent),
        rtt_min_ms: min,
        rtt_avg_ms: avg,
        rtt_max_ms: max,
    }
}
