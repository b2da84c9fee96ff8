//! Hardening of the CLI: token revocation, exit codes of configuration errors, backups, the
//! audit chain, attachment limits and read-only databases.

use std::process::Command;

use crate::support::*;

/// Runs `sqlite3 FILE SQL` and returns its output.
fn sqlite3(file: &std::path::Path, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(file)
        .arg(sql)
        .output()
        .expect("sqlite3 is installed");
    assert!(
        out.status.success(),
        "sqlite3 {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn tokens_expire_are_revoked_and_both_are_audited() {
    let cli = Cli::sqlite();
    let add = cli.run_with_stdin(
        &["user", "add", "lena", "--role", "l1"],
        "a long password\n",
    );
    assert_eq!(add.code, 0, "{}", add.stderr);
    let t = cli.run(&["user", "token", "lena", "--label", "ci", "--ttl", "30d"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert!(t.stdout.trim().starts_with("dt_"));
    let bad = cli.run(&["user", "token", "lena", "--ttl", "soon"]);
    assert_eq!(bad.code, 5, "{}", bad.stderr);
    let r = cli.run(&["user", "token-revoke", "lena", "--label", "ci"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("revoked 1 API token(s) of lena"),
        "{}",
        r.stdout
    );
    let db = cli.dir.path().join("data/dialtone.sqlite");
    let days = sqlite3(
        &db,
        "SELECT (expires_at - created_at) / 86400000 FROM api_tokens WHERE label = 'ci'",
    );
    assert_eq!(days, "30");
    let revoked = sqlite3(
        &db,
        "SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NOT NULL",
    );
    assert_eq!(revoked, "1");
    let audit = sqlite3(
        &db,
        "SELECT action || ' ' || actor FROM audit_log WHERE incident_id IS NULL ORDER BY id",
    );
    assert_eq!(
        audit,
        "user.create agent-ann\ntoken.create agent-ann\ntoken.revoke agent-ann"
    );
}

#[test]
fn store_urls_that_cannot_work_have_clear_errors_and_codes() {
    // An unsupported scheme is a configuration error (7), as the README says.
    let cli = Cli::with_database("mysql://u:secret@127.0.0.1/x".into());
    let r = cli.run(&["incident", "list"]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(!r.stderr.contains("secret"), "{}", r.stderr);
    // A PostgreSQL that is not there: "connection refused", quickly, storage error (6).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let cli = Cli::with_database(format!("postgres://u:p%2Fw%3Fx%23@127.0.0.1:{port}/x"));
    let t = std::time::Instant::now();
    let r = cli.run(&["incident", "list"]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(r.stderr.to_lowercase().contains("refused"), "{}", r.stderr);
    assert!(!r.stderr.contains("timed out"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("p%2Fw") && !r.stderr.contains("p/w"),
        "{}",
        r.stderr
    );
    assert!(t.elapsed() < std::time::Duration::from_secs(4));
}
