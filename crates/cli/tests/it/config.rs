//! A wrong or missing setting is a clear error naming the key (exit code 7), never a panic.

use super::support::Cli;

const GOOD: &str = r#"
[server]
domain = "voip.example.com"
[management]
export_dir = "EXPORT"
"#;

#[test]
fn each_bad_setting_names_its_key() {
    let cli = Cli::sqlite();
    let export = cli.dir.path().join("export");
    std::fs::create_dir_all(&export).unwrap();
    std::fs::write(
        export.join("accounts.csv"),
        "user,domain,primary_number,alternate_number\nalice,voip.example.com,1001,\n",
    )
    .unwrap();
    let good = GOOD.replace("EXPORT", &export.display().to_string());
    // (configuration text, words the error must contain)
    let cases: Vec<(String, &str)> = vec![
        (good.replace("domain = \"voip.example.com\"", ""), "domain"),
        (
            good.replace("[management]", "[management]\ntimeout = \"fast\""),
            "fast",
        ),
        (good.clone() + "\n[probe]\nuser = \"probe1\"\n", "password"),
        (
            good.replace("[server]", "[server]\ntransports = [\"sctp\"]"),
            "server.transports",
        ),
        (
            good.replace("[server]", "[server]\nbogus_key = 1"),
            "bogus_key",
        ),
        (
            good.replace(&format!("export_dir = \"{}\"", export.display()), ""),
            "management",
        ),
        ("this is = not toml [".to_string(), "line 1"),
    ];
    for (text, words) in &cases {
        let path = cli.dir.path().join("dialtone.toml");
        std::fs::write(&path, text).unwrap();
        let r = cli.run(&["diagnose", "alice", "--config", path.to_str().unwrap()]);
        assert_eq!(r.code, 7, "config {text:?}: {} {}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains(words),
            "config {text:?}: expected {words:?} in {}",
            r.stderr
        );
        assert!(!r.stderr.contains("panicked"));
    }
    std::fs::remove_file(cli.dir.path().join("dialtone.toml")).unwrap();
    let none = cli.run(&["diagnose", "alice"]);
    assert_eq!(none.code, 7);
    assert!(none.stderr.contains("--config"), "{}", none.stderr);
    // The example the CLI prints is itself valid.
    let example = cli.ok(&["config-example"]).stdout;
    assert!(example.contains("[probe]"));
}

#[test]
fn a_probe_password_never_shows_in_errors_or_reports() {
    let cli = Cli::sqlite();
    let export = cli.dir.path().join("export");
    std::fs::create_dir_all(&export).unwrap();
    std::fs::write(
        export.join("accounts.csv"),
        "user,domain,primary_number,alternate_number\nalice,x,1001,\n",
    )
    .unwrap();
    let text = format!(
        "[server]\ndomain = \"127.0.0.1\"\nhost = \"127.0.0.1\"\nudp_port = 9\ntransports = [\"udp\"]\n[management]\nexport_dir = \"{}\"\n[probe]\nuser = \"probe1\"\npassword = \"s3cr3t-Pa55\"\ntimeout = \"1s\"\nmedia_window = \"100ms\"\n",
        export.display()
    );
    let path = cli.dir.path().join("dialtone.toml");
    std::fs::write(&path, text).unwrap();
    let r = cli.run(&[
        "--json",
        "diagnose",
        "alice",
        "--config",
        path.to_str().unwrap(),
        "--log",
        "debug",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !r.stdout.contains("s3cr3t-Pa55") && !r.stderr.contains("s3cr3t-Pa55"),
        "the probe password leaked"
    );
}
