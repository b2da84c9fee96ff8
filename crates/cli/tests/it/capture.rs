//! `dialtone capture …` on recorded lab captures and damaged files.

use super::support::{Cli, repo_root};

fn data(name: &str) -> String {
    repo_root()
        .join("crates/captures/test_data")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn analyze_finds_the_calls_and_the_causes() {
    let cli = Cli::sqlite();
    let r = cli.run(&["--json", "capture", "analyze", &data("lab_udp.pcap")]);
    // The capture holds failed registrations: a finding, exit code 10.
    assert_eq!(r.code, 10, "{}", r.stderr);
    let v = r.json();
    let a = &v[0]["analysis"];
    let calls = a["calls"].as_array().expect("calls");
    assert!(calls.iter().any(|c| c["final_status"] == 486), "{a:#}");
    assert!(calls.iter().any(|c| c["final_status"] == 200), "{a:#}");
    let findings = v[0]["findings"].to_string();
    assert!(findings.contains("authentication_failure"), "{findings}");

    // --user keeps one account's traffic.
    let dave = cli
        .run(&[
            "--json",
            "capture",
            "analyze",
            &data("lab_udp.pcap"),
            "--user",
            "dave",
        ])
        .json();
    let regs = dave[0]["analysis"]["registrations"]
        .as_array()
        .expect("registrations");
    assert!(!regs.is_empty());
    assert!(
        regs.iter().all(|r| r.to_string().contains("dave")),
        "{regs:?}"
    );

    // The human table names the causes in words.
    let text = cli
        .run(&["capture", "analyze", &data("lab_udp.pcap")])
        .stdout;
    assert!(
        text.contains("invalid credentials") || text.contains("refused the credentials"),
        "{text}"
    );
}

#[test]
fn ladder_draws_one_call_as_text_and_svg() {
    let cli = Cli::sqlite();
    let svg = cli.dir.path().join("call.svg");
    let r = cli.ok(&[
        "capture",
        "ladder",
        &data("lab_udp.pcap"),
        "--call",
        "1-9030@127.0.0.1",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert!(
        r.stdout.contains("INVITE") && r.stdout.contains("486"),
        "{}",
        r.stdout
    );
    let s = std::fs::read_to_string(&svg).expect("svg written");
    assert!(s.starts_with("<svg") && s.contains("INVITE"), "{s}");
    let missing = cli.run(&[
        "capture",
        "ladder",
        &data("lab_udp.pcap"),
        "--call",
        "no-such-call",
    ]);
    assert_eq!(missing.code, 3, "{}", missing.stderr);
}

#[test]
fn damaged_and_missing_files_give_clear_messages() {
    let cli = Cli::sqlite();
    for f in [
        "truncated_packet.pcap",
        "truncated_file.pcap",
        "corrupt_block.pcapng",
    ] {
        let r = cli.run(&["--json", "capture", "analyze", &data(&format!("edge/{f}"))]);
        assert!(r.code == 0 || r.code == 10, "{f}: {} {}", r.code, r.stderr);
        assert!(!r.stderr.contains("panicked"), "{f}: {}", r.stderr);
        let warnings = r.json()[0]["analysis"]["warnings"].to_string();
        assert!(
            warnings.len() > 2,
            "{f}: a damaged file must carry a warning: {warnings}"
        );
    }
    let r = cli.run(&["capture", "analyze", "/nonexistent/user.pcap"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("/nonexistent/user.pcap"), "{}", r.stderr);
    let garbage = cli.run(&["capture", "analyze", &data("edge/garbage.bin")]);
    assert!(!garbage.stderr.contains("panicked"), "{}", garbage.stderr);
    assert_ne!(
        garbage.code, 0,
        "garbage is not a capture: {}",
        garbage.stdout
    );
}
