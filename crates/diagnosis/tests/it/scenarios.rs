//! The data-driven scenarios: exports + probe shorthand -> expected outcome and path.

use diagnosis::evidence::{
    BurstStats, CertSummary, DnsSummary, MediaSummary, ProbeSummary, TransportProbe,
};
use diagnosis::{Diagnoser, ProbeResults, RecordedProber, Request};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    account: String,
    /// The time the export was taken (RFC 3339).
    at: String,
    #[serde(default)]
    answers: BTreeMap<String, String>,
    #[serde(default)]
    attach: Vec<String>,
    outcome: Option<String>,
    #[serde(default)]
    escalation: Option<String>,
    /// step id -> expected answer
    #[serde(default)]
    steps: BTreeMap<String, String>,
    /// words the summary must contain
    #[serde(default)]
    summary_contains: Vec<String>,
    #[serde(default)]
    needs_agent: Option<String>,
    /// Every runbook the walk entered besides the first, when the scenario says.
    #[serde(default)]
    redirects: Option<Vec<String>>,
    #[serde(default)]
    probes: Probes,
}

/// The network as it answered, in shorthand.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Probes {
    /// transport -> ok | refused | timeout | tls_expired | tls_untrusted
    #[serde(default = "all_ok")]
    transports: BTreeMap<String, String>,
    /// ok | unavailable | no_echo | none (no probe account)
    #[serde(default = "ok")]
    echo: String,
    #[serde(default)]
    loss_percent: f64,
    #[serde(default = "one")]
    rtt_ms: f64,
    /// ok | failed | none (no second probe account)
    #[serde(default = "ok")]
    self_test: String,
    /// None: no licence service configured
    #[serde(default)]
    license: Option<bool>,
    /// false: DNS fails for the domain
    #[serde(default = "yes")]
    dns: bool,
}

impl Default for Probes {
    fn default() -> Self {
        Probes {
            transports: all_ok(),
            echo: ok(),
            self_test: ok(),
            loss_percent: 0.0,
            rtt_ms: 1.0,
            license: None,
            dns: true,
        }
    }
}

fn all_ok() -> BTreeMap<String, String> {
    ["udp", "tcp", "tls"]
        .iter()
        .map(|t| (t.to_string(), "ok".to_string()))
        .collect()
}
fn ok() -> String {
    "ok".into()
}
fn one() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}

fn summary(category: &str, text: &str) -> ProbeSummary {
    ProbeSummary {
        category: serde_json::from_value(serde_json::Value::from(category))
            .unwrap_or_else(|e| panic!("probe category {category}: {e}")),
        summary: text.into(),
        status: (category == "ok").then_some(200),
        duration_ms: 2,
        rtt_ms: Some(1.0),
        certificate: None,
        media: None,
        ladder: String::new(),
    }
}

fn results(p: &Probes) -> ProbeResults {
    let mut transports = Vec::new();
    let mut tls = None;
    for (t, state) in &p.transports {
        let port = if t == "tls" { 5061 } else { 5060 };
        let mut s = match state.as_str() {
            "ok" => summary("ok", "200 OK to OPTIONS"),
            "refused" => summary(
                "refused",
                &format!("nothing listens on {port}/{t}: connection refused"),
            ),
            "timeout" => summary("timeout", "no answer to OPTIONS within 8 s"),
            "tls_expired" | "tls_untrusted" => summary("tls", "the certificate fails verification"),
            other => panic!("unknown transport state {other}"),
        };
        if t == "tls" && state != "refused" && state != "timeout" {
            s.certificate = Some(CertSummary {
                subject: "CN=voip.example.com".into(),
                issuer: "CN=Example CA".into(),
                sans: vec!["voip.example.com".into()],
                not_before: "2026-01-01T00:00:00Z".into(),
                not_after: if state == "tls_expired" {
                    "2026-06-01T00:00:00Z".into()
                } else {
                    "2027-06-01T00:00:00Z".into()
                },
                verification: match state.as_str() {
                    "tls_expired" => "certificate expired".into(),
                    "tls_untrusted" => "invalid peer certificate: UnknownIssuer".into(),
                    _ => "valid".into(),
                },
            });
            tls = Some(s.clone());
        }
        let burst = (state == "ok").then(|| BurstStats {
            sent: 5,
            answered: (5.0 * (1.0 - p.loss_percent / 100.0)).round() as u32,
            loss_percent: p.loss_percent,
            rtt_min_ms: Some(p.rtt_ms),
            rtt_avg_ms: Some(p.rtt_ms),
            rtt_max_ms: Some(p.rtt_ms),
        });
        transports.push(TransportProbe {
            transport: server_state::Transport::parse(t),
            port,
            options: s,
            burst,
        });
    }
    let echo = match p.echo.as_str() {
        "ok" => {
            let mut s = summary(
                "ok",
                "the echo service answered and echoed 50 of 50 packets",
            );
            s.media = Some(MediaSummary {
                sent: 50,
                echoed: 50,
                loss_percent: 0.0,
                rtt_min_ms: Some(0.2),
                rtt_avg_ms: Some(0.3),
                rtt_max_ms: Some(0.5),
                jitter_ms: Some(0.1),
            });
            Ok(s)
        }
        "unavailable" => Ok(summary("unavailable", "503 Echo service unavailable")),
        "no_echo" => Ok(summary(
            "media_no_echo",
            "the call was answered but no audio came back",
        )),
        "none" => Err("no probe account is configured".to_string()),
        other => panic!("unknown echo state {other}"),
    };
    let dns = if p.dns {
        DnsSummary {
            skipped: false,
            ok: true,
            steps: vec!["SRV _sip._udp.voip.example.com -> 10 5060 sip.voip.example.com".into()],
        }
    } else {
        DnsSummary {
            skipped: false,
            ok: false,
            steps: vec!["A/AAAA voip.example.com: NXDOMAIN".into()],
        }
    };
    ProbeResults {
        transports,
        tls,
        echo,
        self_test: match p.self_test.as_str() {
            "ok" => Ok(summary(
                "ok",
                "probe1 called probe2: answered, 50 of 50 packets each way",
            )),
            "failed" => Ok(summary(
                "unavailable",
                "probe1 could not reach probe2: 480 Temporarily Unavailable",
            )),
            _ => Err("no second probe account is configured".to_string()),
        },
        dns: Some(dns),
        license: p
            .license
            .ok_or_else(|| "no licence service is configured".to_string()),
        timings: BTreeMap::new(),
    }
}

const CONFIG: &str = r#"
[server]
domain = "voip.example.com"
echo_number = "600"
trunk_prefixes = { "1" = ["9", "00"] }
[management]
export_dir = "EXPORT"
"#;

fn run(dir: &Path) -> Result<(), String> {
    let expect_text =
        std::fs::read_to_string(dir.join("expect.toml")).map_err(|e| e.to_string())?;
    let expect: Expect = toml::from_str(&expect_text).map_err(|e| format!("expect.toml: {e}"))?;
    let cfg =
        diagnosis::Config::from_toml(&CONFIG.replace("EXPORT", &dir.display().to_string()), &[])
            .map_err(|e| e.to_string())?;
    let state = diagnosis::open_state(&cfg).map_err(|e| e.to_string())?;
    let prober = Arc::new(RecordedProber::new(results(&expect.probes), Duration::ZERO));
    let d = Diagnoser::new(cfg, state, prober, Arc::new(runbook::RunbookSet::builtin()));
    let at = chrono::DateTime::parse_from_rfc3339(&expect.at)
        .map_err(|e| e.to_string())?
        .to_utc();
    let req = Request {
        account: expect.account.clone(),
        answers: expect.answers.clone().into_iter().collect(),
        at: Some(at),
        attachments: expect
            .attach
            .iter()
            .map(|a| {
                (
                    a.clone(),
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(a),
                )
            })
            .collect(),
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let report = rt.block_on(d.diagnose(&req)).map_err(|e| e.to_string())?;
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    let mut problems = Vec::new();
    if report.outcome != expect.outcome {
        problems.push(format!(
            "outcome {:?}, expected {:?}",
            report.outcome, expect.outcome
        ));
    }
    let esc = report.escalation.as_ref().map(|e| {
        format!("{} {}", e.level, e.kind.clone().unwrap_or_default())
            .trim()
            .to_string()
    });
    if esc != expect.escalation {
        problems.push(format!(
            "escalation {esc:?}, expected {:?}",
            expect.escalation
        ));
    }
    for (step, answer) in &expect.steps {
        match report.path.iter().find(|p| &p.step == step) {
            Some(p) if &p.answer == answer => {}
            Some(p) => problems.push(format!("{step} = {}, expected {answer}", p.answer)),
            None => problems.push(format!("{step} not on the path")),
        }
    }
    for w in &expect.summary_contains {
        if !report.summary.contains(w.as_str()) {
            problems.push(format!("summary {:?} lacks {w:?}", report.summary));
        }
    }
    if let Some(want) = &expect.redirects
        && &report.redirects != want
    {
        problems.push(format!(
            "redirects {:?}, expected {want:?}",
            report.redirects
        ));
    }
    let waiting = report.needs_agent.as_ref().map(|n| n.step.clone());
    if waiting != expect.needs_agent {
        problems.push(format!(
            "needs_agent {waiting:?}, expected {:?}",
            expect.needs_agent
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n{json}", problems.join("\n")))
    }
}

#[test]
fn every_scenario_reaches_its_outcome() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test_data/scenarios");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("scenarios")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 12, "scenarios: {dirs:?}");
    let mut failures = Vec::new();
    for d in &dirs {
        if let Err(e) = run(d) {
            failures.push(format!(
                "== {}\n{e}",
                d.file_name().unwrap_or_default().to_string_lossy()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
}

/// Every outcome of user-cant-call (but the hand-offs) is reached by at least one scenario.
#[test]
fn scenarios_cover_the_outcomes() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test_data/scenarios");
    let mut seen = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(&root).expect("scenarios").flatten() {
        let text = std::fs::read_to_string(e.path().join("expect.toml")).unwrap_or_default();
        if let Ok(x) = toml::from_str::<Expect>(&text)
            && let Some(o) = x.outcome
        {
            seen.insert(o);
        }
    }
    for o in [
        "out_of_scope",
        "temporary_network_problem",
        "not_an_issue_user_not_provisioned",
        "trunk_problem",
        "duplicate_virtual_number",
        "server_service_failure",
        "network_problem",
        "authentication_failure",
        "tls_failure",
        "escalated",
    ] {
        assert!(seen.contains(o), "no scenario reaches {o}: {seen:?}");
    }
}
