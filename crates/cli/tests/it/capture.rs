//! `dialtone capture …` on recorded lab captures and damaged files.

use super::support::{Cli, repo_root};

/// The NDJSON lines of `capture analyze --json`.
fn lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn of_type<'a>(v: &'a [serde_json::Value], t: &str) -> Vec<&'a serde_json::Value> {
    v.iter().filter(|x| x["type"] == t).collect()
}

/// Split a libpcap file into `n` files of consecutive packets (as `tcpdump -C` would).
fn split_pcap(src: &str, dir: &std::path::Path, n: usize) -> Vec<std::path::PathBuf> {
    let data = std::fs::read(src).expect("read pcap");
    let (header, mut rest) = data.split_at(24);
    let mut packets = Vec::new();
    while rest.len() >= 16 {
        let caplen = u32::from_le_bytes(rest[8..12].try_into().unwrap()) as usize;
        let (p, r) = rest.split_at(16 + caplen);
        packets.push(p);
        rest = r;
    }
    let per = packets.len().div_ceil(n);
    packets
        .chunks(per)
        .enumerate()
        .map(|(i, chunk)| {
            // tcpdump -C names: ring.pcap, ring.pcap1, ring.pcap2, ...
            let name = if i == 0 {
                "ring.pcap".to_owned()
            } else {
                format!("ring.pcap{i}")
            };
            let path = dir.join(name);
            let mut bytes = header.to_vec();
            chunk.iter().for_each(|p| bytes.extend_from_slice(p));
            std::fs::write(&path, bytes).expect("write part");
            path
        })
        .collect()
}

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
    // NDJSON: one object per call, registration and finding, then the summary.
    let v = lines(&r.stdout);
    let calls = of_type(&v, "call");
    assert!(
        calls.iter().any(|c| c["final_status"] == 486),
        "{}",
        r.stdout
    );
    assert!(
        calls.iter().any(|c| c["final_status"] == 200),
        "{}",
        r.stdout
    );
    let findings = of_type(&v, "finding");
    assert!(
        findings
            .iter()
            .any(|f| f["finding"]["outcome"] == "authentication_failure"),
        "{findings:?}"
    );
    let summary = v.last().expect("a summary line");
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["stats"]["calls"], calls.len());
    assert_eq!(
        summary["stats"]["registrations"],
        of_type(&v, "registration").len()
    );
    assert_eq!(summary["outcome"], "authentication_failure");

    // --user keeps one account's traffic.
    let dave = cli.run(&[
        "--json",
        "capture",
        "analyze",
        &data("lab_udp.pcap"),
        "--user",
        "dave",
    ]);
    let dave = lines(&dave.stdout);
    let regs = of_type(&dave, "registration");
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
fn media_verdicts_stream_as_ndjson_and_mark_the_ladder() {
    let cli = Cli::sqlite();
    let r = cli.run(&["--json", "capture", "analyze", &data("lab_media.pcap")]);
    // One-way and no audio point to the network: a finding, exit code 10.
    assert_eq!(r.code, 10, "{}", r.stderr);
    let v = lines(&r.stdout);
    let verdicts: Vec<&str> = of_type(&v, "call")
        .iter()
        .map(|c| c["media"]["verdict"].as_str().unwrap_or("?"))
        .collect();
    for want in ["both_ways", "no_media", "one_way"] {
        assert!(verdicts.contains(&want), "{verdicts:?}");
    }
    let one_way = of_type(&v, "call")
        .into_iter()
        .find(|c| c["media"]["verdict"] == "one_way")
        .expect("one-way call");
    assert!(
        one_way["media"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no RTP from the callee after 200 OK")),
        "{one_way}"
    );
    let stream = &one_way["media"]["streams"][0];
    assert_eq!(stream["codec"], "PCMU");
    assert!(stream["jitter_ms"].is_number(), "{stream}");
    let summary = v.last().expect("summary");
    // Every packet of this recording that is not SIP is RTP (no RTCP: SIPp sends none).
    let stats = &summary["stats"];
    assert_eq!(
        stats["media"]["rtp_packets"]
            .as_u64()
            .zip(stats["packets"].as_u64()),
        stats["packets"]
            .as_u64()
            .zip(stats["sip_messages"].as_u64())
            .map(|(p, s)| (p - s, p)),
        "{stats}"
    );
    assert!(
        stats["media"]["rtp_packets"].as_u64() >= Some(200),
        "{stats}"
    );
    assert_eq!(summary["outcome"], "network_problem");
    assert!(
        of_type(&v, "finding")
            .iter()
            .any(|f| f["finding"]["cause"] == "one_way_audio"),
        "{}",
        r.stdout
    );
    // The table has a media column; the SVG ladder marks the media phase with its verdict.
    let text = cli
        .run(&["capture", "analyze", &data("lab_media.pcap")])
        .stdout;
    assert!(
        text.contains(" media ") && text.contains("one way"),
        "{text}"
    );
    let svg = cli.dir.path().join("media.svg");
    let call = one_way["call_id"].as_str().expect("call-id");
    let r = cli.ok(&[
        "capture",
        "ladder",
        &data("lab_media.pcap"),
        "--call",
        call,
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert!(r.stdout.contains("~~ media: ONE-WAY audio"), "{}", r.stdout);
    let s = std::fs::read_to_string(&svg).expect("svg");
    assert!(s.contains("media: one-way audio"), "{s}");
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
        let v = lines(&r.stdout);
        let warnings = v.last().expect("summary")["warnings"].to_string();
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

#[test]
fn a_ring_buffer_in_a_directory_or_a_glob_is_one_capture() {
    let cli = Cli::sqlite();
    let whole = lines(
        &cli.run(&["--json", "capture", "analyze", &data("lab_udp.pcap")])
            .stdout,
    );
    let dir = cli.dir.path().join("ring");
    std::fs::create_dir_all(&dir).unwrap();
    let parts = split_pcap(&data("lab_udp.pcap"), &dir, 11);
    assert_eq!(parts.len(), 11);
    let ids = |v: &[serde_json::Value]| {
        let mut ids: Vec<String> = of_type(v, "call")
            .iter()
            .map(|c| format!("{} {}", c["call_id"], c["final_status"]))
            .collect();
        ids.sort();
        ids
    };
    // The directory, and a glob the shell did not expand: the same calls as the whole file,
    // none cut in two at a file boundary.
    let glob = dir.join("ring.pcap*");
    for arg in [dir.to_str().unwrap(), glob.to_str().unwrap()] {
        let r = cli.run(&["--json", "capture", "analyze", arg]);
        assert_eq!(r.code, 10, "{arg}: {}", r.stderr);
        let v = lines(&r.stdout);
        assert_eq!(ids(&v), ids(&whole), "{arg}");
        let summary = v.last().unwrap();
        assert_eq!(summary["stats"]["files"], 11, "{summary}");
        assert_eq!(
            summary["stats"]["sip_messages"],
            whole.last().unwrap()["stats"]["sip_messages"]
        );
    }
    // Files given out of order are read in the order of their first packets.
    let mut args: Vec<&str> = vec!["--json", "capture", "analyze"];
    let reversed: Vec<String> = parts
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    args.extend(reversed.iter().map(String::as_str));
    let v = lines(&cli.run(&args).stdout);
    assert_eq!(ids(&v), ids(&whole));
    // The table says how many calls it leaves out past --keep.
    let r = cli.run(&["capture", "analyze", dir.to_str().unwrap(), "--keep", "2"]);
    assert!(r.stdout.contains("are not listed"), "{}", r.stdout);
}
