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
        "SELECT CAST(ROUND((expires_at - created_at) / 86400000.0) AS INTEGER) FROM api_tokens WHERE label = 'ci'",
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

#[test]
fn audit_verify_names_a_row_edited_with_sqlite3() {
    let cli = Cli::sqlite();
    for acc in ["alice", "bob"] {
        let r = cli.run(&["incident", "open", "--account", acc, "--reporter", "r"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let ok = cli.run(&["audit", "verify"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stdout.contains("intact"), "{}", ok.stdout);
    let db = cli.dir.path().join("data/dialtone.sqlite");
    let first_of_bob = sqlite3(&db, "SELECT MIN(id) FROM audit_log WHERE incident_id = 2");
    sqlite3(
        &db,
        &format!(
            "DROP TRIGGER audit_log_no_update; \
             UPDATE audit_log SET detail = '{{}}' WHERE id = {first_of_bob};"
        ),
    );
    let bad = cli.run(&["--json", "audit", "verify"]);
    assert_eq!(bad.code, 10, "{}", bad.stderr);
    assert_eq!(
        bad.json()["first_broken"]["id"].as_i64(),
        first_of_bob.parse::<i64>().ok()
    );
}

#[test]
fn a_backup_holds_everything_and_restores() {
    let cli = Cli::sqlite();
    for acc in ["alice", "bob", "carol"] {
        let r = cli.run(&["incident", "open", "--account", acc, "--reporter", "r"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let file = cli.dir.path().join("backup.sqlite");
    let b = cli.run(&["backup", file.to_str().expect("utf8")]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    // A second backup to the same file is refused, not overwritten.
    let again = cli.run(&["backup", file.to_str().expect("utf8")]);
    assert_eq!(again.code, 5, "{}", again.stderr);
    // Restore: the copy alone (no -wal beside it) is a working store with every incident.
    assert!(!cli.dir.path().join("backup.sqlite-wal").exists());
    let restored = Cli::with_database(format!("sqlite://{}", file.display()));
    let list = restored.run(&["--json", "incident", "list"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let accounts: Vec<String> = list
        .json()
        .as_array()
        .expect("list")
        .iter()
        .map(|i| i["account"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(accounts, ["carol", "bob", "alice"]);
    let v = restored.run(&["audit", "verify"]);
    assert_eq!(v.code, 0, "{}", v.stdout);
}

#[test]
fn incident_list_works_beside_a_writer_and_on_a_read_only_file() {
    let cli = Cli::sqlite();
    let r = cli.run(&["incident", "open", "--account", "alice", "--reporter", "r"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let db = cli.dir.path().join("data/dialtone.sqlite");
    // Another process holds the write lock.
    let mut holder = Command::new("sqlite3")
        .arg(&db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sqlite3");
    {
        use std::io::{BufRead, Write};
        let stdin = holder.stdin.as_mut().expect("stdin");
        writeln!(stdin, "BEGIN IMMEDIATE; SELECT 'locked';").expect("write");
        stdin.flush().expect("flush");
        let mut line = String::new();
        std::io::BufReader::new(holder.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        assert_eq!(line.trim(), "locked");
    }
    let t = std::time::Instant::now();
    let list = cli.run(&["--json", "incident", "list"]);
    let took = t.elapsed();
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert_eq!(list.json().as_array().map(Vec::len), Some(1));
    assert!(
        took < std::time::Duration::from_secs(3),
        "waited {took:?} for the lock"
    );

    // A read-only medium (a tmpfs remounted read-only; needs root, as CI runs).
    let ro = tempfile::tempdir().expect("dir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(ro.path())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("read-only half skipped: cannot mount a tmpfs (not root)");
        return;
    }
    let copy = ro.path().join("dialtone.sqlite");
    let b = cli.run(&["backup", copy.to_str().expect("utf8")]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let remounted = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(ro.path())
        .status()
        .is_ok_and(|s| s.success());
    let ro_cli = Cli::with_database(format!("sqlite://{}/dialtone.sqlite", ro.path().display()));
    let list = ro_cli.run(&["--json", "incident", "list"]);
    let write = ro_cli.run(&["incident", "open", "--account", "bob", "--reporter", "r"]);
    let _ = Command::new("umount").arg(ro.path()).status();
    assert!(remounted, "remount read-only failed");
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert_eq!(list.json().as_array().map(Vec::len), Some(1));
    assert_ne!(write.code, 0, "a write on a read-only medium succeeded");
    assert!(
        write.stderr.contains("readonly") || write.stderr.contains("read-only"),
        "{}",
        write.stderr
    );
}

#[test]
fn attach_refuses_files_over_the_limit_before_reading_them() {
    let cli = Cli::sqlite();
    let r = cli.run(&["incident", "open", "--account", "alice", "--reporter", "r"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // A sparse 200 MB file: refused at once, nothing stored.
    let big = cli.dir.path().join("big.pcap");
    std::fs::File::create(&big)
        .and_then(|f| f.set_len(200 * 1024 * 1024))
        .expect("sparse file");
    let t = std::time::Instant::now();
    let a = cli.run(&["incident", "attach", "1", big.to_str().expect("utf8")]);
    assert_eq!(a.code, 5, "{}", a.stderr);
    assert!(a.stderr.contains("limit"), "{}", a.stderr);
    assert!(t.elapsed() < std::time::Duration::from_secs(2));
    let small = cli.dir.path().join("small.log");
    std::fs::write(&small, vec![b'x'; 2000]).expect("small");
    let limited = cli.run(&[
        "incident",
        "attach",
        "1",
        small.to_str().expect("utf8"),
        "--max-size",
        "1000",
    ]);
    assert_eq!(limited.code, 5, "{}", limited.stderr);
    let ok = cli.run(&["incident", "attach", "1", small.to_str().expect("utf8")]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let db = cli.dir.path().join("data/dialtone.sqlite");
    assert_eq!(
        sqlite3(&db, "SELECT COUNT(*), SUM(size) FROM attachments"),
        "1|2000"
    );
}

#[test]
fn open_with_answers_is_one_transaction() {
    let cli = Cli::sqlite();
    let r = cli.run(&["incident", "list"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let db = cli.dir.path().join("data/dialtone.sqlite");
    // A fault after the incident row is written: the step insert fails.
    sqlite3(
        &db,
        "CREATE TRIGGER fail_steps BEFORE INSERT ON step_records \
         BEGIN SELECT RAISE(ABORT, 'injected fault'); END;",
    );
    let open = cli.run(&[
        "incident",
        "open",
        "--account",
        "alice",
        "--reporter",
        "r",
        "--answer",
        "gate.operational_requirements=no",
        "--answer",
        "gate.client_error=none",
    ]);
    assert_ne!(open.code, 0, "{}", open.stdout);
    assert!(open.stderr.contains("injected fault"), "{}", open.stderr);
    assert_eq!(
        sqlite3(&db, "SELECT COUNT(*) FROM incidents"),
        "0",
        "half an open was kept"
    );
    sqlite3(&db, "DROP TRIGGER fail_steps;");
    let open = cli.run(&[
        "--json",
        "incident",
        "open",
        "--account",
        "alice",
        "--reporter",
        "r",
        "--answer",
        "gate.operational_requirements=no",
        "--answer",
        "gate.client_error=none",
    ]);
    assert_eq!(open.code, 0, "{}", open.stderr);
    assert_eq!(sqlite3(&db, "SELECT COUNT(*) FROM step_records"), "2");
    assert_eq!(
        sqlite3(&db, "SELECT version, current_step FROM incidents"),
        "3|l1.connection_status"
    );
    let v = cli.run(&["audit", "verify"]);
    assert_eq!(v.code, 0, "{}", v.stdout);
}

#[test]
fn an_empty_runbook_dir_is_not_found_and_logs_have_no_colours_in_a_pipe() {
    let cli = Cli::sqlite();
    let empty = cli.dir.path().join("runbooks");
    std::fs::create_dir_all(&empty).expect("dir");
    let r = cli.run(&[
        "--runbooks",
        empty.to_str().expect("utf8"),
        "runbook",
        "list",
    ]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("no runbook files"), "{}", r.stderr);
    let nope = cli.run(&["--runbooks", "nope", "runbook", "list"]);
    assert_eq!(nope.code, 3, "{}", nope.stderr);
    // Logs into a pipe (a file, a journal): no ANSI escapes.
    let logged = cli.run(&["--log", "info", "incident", "list"]);
    assert_eq!(logged.code, 0, "{}", logged.stderr);
    assert!(
        logged.stderr.contains("schema migrated"),
        "{}",
        logged.stderr
    );
    assert!(!logged.stderr.contains('\u{1b}'), "{:?}", logged.stderr);
}

/// Peak RSS in KiB of `dialtone ARGS` (GNU time's %M).
fn peak_rss_kib(cli: &Cli, args: &[&str]) -> (Run, u64) {
    let report = cli.dir.path().join("time.txt");
    let mut c = Command::new("/usr/bin/time");
    c.arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&report)
        .arg(bin())
        .env_remove("DIALTONE_CONFIG")
        .env_remove("DIALTONE_DATABASE")
        .env("DIALTONE_USER", "agent-ann")
        .arg("--data-dir")
        .arg(cli.dir.path().join("data"))
        .args(args);
    let out = c
        .output()
        .expect("/usr/bin/time is installed (apt-get install time)");
    let kib = std::fs::read_to_string(&report)
        .expect("time report")
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("peak RSS in KiB");
    (
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        kib,
    )
}

#[test]
fn attach_streams_a_file_at_the_limit_in_bounded_memory() {
    let cli = Cli::sqlite();
    cli.ok(&["incident", "open", "--account", "alice", "--reporter", "r"]);
    // 20 MiB (the default limit) of incompressible bytes.
    let file = cli.dir.path().join("capture.pcap");
    let mut bytes = Vec::with_capacity(20 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while bytes.len() < 20 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(&file, &bytes).expect("write");
    let (_, baseline) = peak_rss_kib(&cli, &["incident", "show", "1"]);
    let (run, peak) = peak_rss_kib(
        &cli,
        &["incident", "attach", "1", file.to_str().expect("utf8")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    eprintln!(
        "incident attach of 20 MiB: peak RSS {} KiB ({} KiB above `incident show`, {} KiB)",
        peak,
        peak.saturating_sub(baseline),
        baseline
    );
    // Holding the file once would be 20 MiB above the baseline; chunks keep it well under.
    assert!(
        peak.saturating_sub(baseline) < 12 * 1024,
        "attach took {peak} KiB at its peak, {baseline} KiB without the file"
    );
    let db = cli.dir.path().join("data/dialtone.sqlite");
    assert_eq!(
        sqlite3(
            &db,
            "SELECT size, (SELECT SUM(length(data)) FROM attachment_chunks) FROM attachments"
        ),
        format!("{}|{}", 20 << 20, 20 << 20)
    );
    // The content comes back whole (the dossier reads it) and the audit holds its SHA-256.
    let sum = Command::new("sha256sum")
        .arg(&file)
        .output()
        .expect("sha256sum");
    let sum = String::from_utf8_lossy(&sum.stdout);
    let sum = sum.split_whitespace().next().expect("sum");
    let audit = sqlite3(
        &db,
        "SELECT json_extract(detail, '$.sha256') FROM audit_log WHERE action = 'attachment'",
    );
    assert_eq!(audit, sum);
    let out = cli.dir.path().join("copy.pcap");
    let stored = sqlite3(
        &db,
        &format!(
            "SELECT writefile('{}', (SELECT group_concat(data, '') FROM \
             (SELECT data FROM attachment_chunks ORDER BY seq)))",
            out.display()
        ),
    );
    assert_eq!(stored, (20u64 << 20).to_string());
    assert!(std::fs::read(&out).expect("copy") == bytes);
    let v = cli.run(&["audit", "verify"]);
    assert_eq!(v.code, 0, "{}", v.stdout);
}
