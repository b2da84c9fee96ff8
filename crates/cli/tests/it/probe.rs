//! `dialtone probe …` against a real lab: what the command prints and its exit codes.

use super::support::{Cli, Run};
use testlab::Lab;

fn probe(cli: &Cli, lab: &Lab, args: &[&str], password: Option<&str>) -> Run {
    // The SIP port unless the call names another; the target flags go after the subcommand.
    let port = lab.sip_port().to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend_from_slice(&["--host", "127.0.0.1", "--domain", lab.domain()]);
    if !args.contains(&"--port") {
        all.extend_from_slice(&["--port", &port]);
    }
    let mut c = cli.command(&[]);
    c.args(&all);
    if let Some(p) = password {
        c.env("DIALTONE_PROBE_PASSWORD", p);
    }
    let out = c.output().expect("dialtone probe");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn probe_commands_say_what_happened() {
    let lab = Lab::start().expect("lab");
    let cli = Cli::sqlite();
    let alice = lab.account("alice").expect("alice").clone();

    // OPTIONS: a ladder and a verdict in words; exit 0.
    let r = probe(&cli, &lab, &["probe", "options"], None);
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("OPTIONS") && r.stdout.contains("200"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("ok:"), "{}", r.stdout);

    // REGISTER with the right password, as JSON.
    let r = probe(
        &cli,
        &lab,
        &["--json", "probe", "register", "--user", "alice"],
        Some(&alice.password),
    );
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    assert_eq!(r.json()["verdict"]["category"], "ok");
    assert!(!r.stdout.contains(&alice.password), "password in the trace");

    // A wrong password: auth_rejected, exit 10, and neither password nor digest response shown.
    let r = probe(
        &cli,
        &lab,
        &["--json", "probe", "register", "--user", "alice"],
        Some("wrong-Pa55word"),
    );
    assert_eq!(r.code, 10, "{} {}", r.stdout, r.stderr);
    let v = r.json();
    assert_eq!(v["verdict"]["category"], "auth_rejected", "{v:#}");
    assert!(!r.stdout.contains("wrong-Pa55word"));
    let sent_auth = v["trace"].as_array().unwrap().iter().any(|e| {
        e["text"]
            .as_str()
            .is_some_and(|t| t.contains("Authorization"))
    });
    assert!(sent_auth, "the trace shows the authenticated retry");
    assert!(
        !r.stdout.contains("response=\\\"") || r.stdout.contains("response=\\\"<redacted>"),
        "a digest response leaked"
    );

    // An echo call with media measured.
    let r = probe(
        &cli,
        &lab,
        &[
            "probe", "echo", "--number", "600", "--user", "alice", "--media", "500ms",
        ],
        Some(&alice.password),
    );
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("media:") && r.stdout.contains("loss 0.0%"),
        "{}",
        r.stdout
    );

    // The self-test: probe1 calls probe2 on the same server, audio both ways.
    let probe1 = lab.account("probe1").expect("probe1").clone();
    let probe2 = lab.account("probe2").expect("probe2").clone();
    let mut c = cli.command(&[]);
    let port = lab.sip_port().to_string();
    c.args([
        "--json", "probe", "selftest", "--user", "probe1", "--peer", "probe2", "--media", "300ms",
    ])
    .args([
        "--host",
        "127.0.0.1",
        "--domain",
        lab.domain(),
        "--port",
        &port,
    ])
    .env("DIALTONE_PROBE_PASSWORD", &probe1.password)
    .env("DIALTONE_PROBE_PEER_PASSWORD", &probe2.password);
    let out = c.output().expect("selftest");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["verdict"]["category"], "ok", "{v:#}");
    assert!(v["media"]["echoed"].as_u64().unwrap_or(0) > 0, "{v:#}");

    // TLS without the lab's CA: the certificate is reported, the verdict is tls.
    let tls_port = lab.tls_port().to_string();
    let r = probe(
        &cli,
        &lab,
        &[
            "probe",
            "options",
            "--transport",
            "tls",
            "--port",
            &tls_port,
        ],
        None,
    );
    assert_eq!(r.code, 10, "{} {}", r.stdout, r.stderr);
    assert!(r.stdout.contains("tls: subject"), "{}", r.stdout);
    let ca = lab.ca_cert().display().to_string();
    let r = probe(
        &cli,
        &lab,
        &[
            "probe",
            "options",
            "--transport",
            "tls",
            "--port",
            &tls_port,
            "--ca",
            &ca,
        ],
        None,
    );
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);

    // Nothing listening: refused at once, not after 32 s.
    let start = std::time::Instant::now();
    let r = probe(
        &cli,
        &lab,
        &["--json", "probe", "options", "--port", "9"],
        None,
    );
    assert_eq!(r.code, 10);
    assert_eq!(r.json()["verdict"]["category"], "refused");
    assert!(start.elapsed() < std::time::Duration::from_secs(5));

    // No password anywhere: a configuration error naming the variable.
    let r = probe(
        &cli,
        &lab,
        &[
            "probe",
            "register",
            "--user",
            "alice",
            "--password-env",
            "NO_SUCH_VAR_X",
        ],
        None,
    );
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stderr.contains("NO_SUCH_VAR_X"), "{}", r.stderr);
}
