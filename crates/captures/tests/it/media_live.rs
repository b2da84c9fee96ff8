//! Media captured from the lab: tcpdump on loopback while SIPp calls through Kamailio with and
//! without RTP (`play_pcap_audio` to the echo service, which runs `-rtp_echo`), to a UAS that
//! never sends RTP, and with a private address in the caller's SDP.

use std::net::{Ipv4Addr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use captures::{Cause, MediaVerdict, OutcomeHint};

use crate::live::Tcpdump;
use crate::pcapgen::{Link, Pcap, rtp};

fn free_port() -> u16 {
    // An even port (RTP convention) whose odd neighbour is free too, for RTCP.
    for _ in 0..50 {
        let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let p = s.local_addr().expect("addr").port();
        if p.is_multiple_of(2) && p < 65534 && UdpSocket::bind((Ipv4Addr::LOCALHOST, p + 1)).is_ok()
        {
            return p;
        }
    }
    panic!("no free UDP port pair");
}

/// Runs a command to its end, at most `limit`.
fn run(cmd: &mut Command, limit: Duration) -> std::process::ExitStatus {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let st = child.wait().expect("wait");
            return st;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed (and reaped) when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One second of PCMU (50 packets of 20 ms) for SIPp to play; it rewrites the addresses.
fn audio_pcap() -> Vec<u8> {
    let mut p = Pcap::new(Link::Ethernet);
    for i in 0..50u32 {
        p.udp(
            1_000_000.0 + f64::from(i) * 0.02,
            "127.0.0.1:40000",
            "127.0.0.1:40002",
            &rtp(0, 1000 + i as u16, i * 160, 0x1234_5678, 160),
        );
    }
    p.bytes
}

#[test]
fn lab_calls_with_both_way_no_one_way_and_nat_media() {
    let lab = testlab::Lab::start().expect("lab");
    let alice = lab.account("alice").expect("alice").clone();
    let bob = lab.account("bob").expect("bob").clone();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("audio.pcap"), audio_pcap()).expect("audio");
    let sipp_dir = crate::data("sipp");
    let (uac, uac_media, uas, uas_media) = (free_port(), free_port(), free_port(), free_port());
    let echo_media: u16 = lab
        .env()
        .get("LAB_ECHO_MEDIA_PORT")
        .and_then(|p| p.parse().ok())
        .expect("LAB_ECHO_MEDIA_PORT");
    // A phone for bob that answers and never sends RTP (no -rtp_echo, no audio played).
    let _silent = Guard(
        Command::new("sipp")
            .arg("-sf")
            .arg(sipp_dir.join("uas_answer.xml"))
            .args(["-i", "127.0.0.1", "-mi", "127.0.0.1", "-nostdin", "-m", "1"])
            .args(["-p", &uas.to_string(), "-mp", &uas_media.to_string()])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sipp (apt-get install sip-tester)"),
    );
    let reg = lab
        .sipp_register_contact("bob", &bob.password, &format!("sip:bob@127.0.0.1:{uas}"))
        .expect("register bob");
    assert_eq!(reg.final_status, Some(200), "{}", reg.trace);
    let pcap = dir.path().join("media.pcap");
    let call = |scenario: &str, target: &str, sdp_ip: &str| {
        let status = run(
            Command::new("sipp")
                .arg(lab.sip_addr().to_string())
                .arg("-sf")
                .arg(sipp_dir.join(scenario))
                .args(["-t", "u1", "-m", "1", "-nostdin", "-d", "1500"])
                .args(["-i", "127.0.0.1", "-mi", "127.0.0.1"])
                .args(["-p", &uac.to_string(), "-mp", &uac_media.to_string()])
                .args(["-timeout", "15", "-timeout_error"])
                .args(["-key", "user", "alice", "-key", "domain", lab.domain()])
                .args(["-key", "target", target, "-key", "sdp_ip", sdp_ip])
                .args(["-au", "alice", "-ap", &alice.password])
                .current_dir(dir.path()),
            Duration::from_secs(20),
        );
        assert!(status.success(), "sipp {scenario} to {target}: {status}");
    };
    {
        let filter = format!(
            "udp port {} or udp port {uac} or udp port {uac_media} or udp port {} or udp port {echo_media} or udp port {} or udp port {uas} or udp port {uas_media} or udp port {}",
            lab.sip_port(),
            uac_media + 1,
            echo_media + 1,
            uas_media + 1
        );
        let _dump = Tcpdump::start(&pcap, &filter);
        call("media_call.xml", lab.echo_number(), "127.0.0.1");
        call("lab_call.xml", lab.echo_number(), "127.0.0.1");
        call("media_call.xml", "bob", "127.0.0.1");
        call("media_call.xml", lab.echo_number(), "10.20.30.40");
        std::thread::sleep(Duration::from_millis(300));
    }
    if let Ok(keep) = std::env::var("CAPTURES_KEEP_MEDIA_PCAP") {
        std::fs::copy(&pcap, keep).expect("keep the capture");
    }
    let a = captures::analyze_path(&pcap, &captures::AnalyzeOptions::default()).expect("analyze");
    check_lab_media(&a, lab.echo_number());
}

/// What a support agent reads from the four lab calls (shared with the committed recording).
pub fn check_lab_media(a: &captures::Analysis, echo: &str) {
    let table = captures::summary_table(a);
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    assert_eq!(a.calls.len(), 4, "{table}");
    let media = |i: usize| {
        a.calls[i]
            .media
            .as_ref()
            .unwrap_or_else(|| panic!("call {i} has no media: {table}"))
    };
    // 1. Echo: one second of PCMU each way.
    assert_eq!(a.calls[0].to_user, echo);
    let m = media(0);
    assert_eq!(m.verdict, MediaVerdict::BothWays, "{}", m.reason);
    assert!(m.reason.starts_with("audio both ways"), "{}", m.reason);
    for side in ["caller", "callee"] {
        let st = m
            .streams
            .iter()
            .find(|s| serde_json::to_value(s.from).ok() == Some(side.into()))
            .unwrap_or_else(|| panic!("no stream from the {side}: {:?}", m.streams));
        assert_eq!(st.codec, "PCMU");
        // SIPp numbers its 50 packets; a loaded machine may lose one on the way.
        assert_eq!(st.expected, 50, "{st:?}");
        assert!(st.packets >= 46 && st.lost == 50 - st.packets, "{st:?}");
        assert!(st.jitter_ms.is_some_and(|j| j < 40.0), "{st:?}");
        assert!((700..=1300).contains(&st.duration_ms), "{st:?}");
    }
    assert!(a.calls[0].causes.is_empty(), "{:?}", a.calls[0].causes);
    // 2. Echo without RTP: nothing to echo, no audio at all.
    let m = media(1);
    assert_eq!(m.verdict, MediaVerdict::NoMedia, "{}", m.reason);
    assert!(
        m.reason.contains("no RTP in either direction after 200 OK"),
        "{}",
        m.reason
    );
    assert_eq!(a.calls[1].causes[0].cause, Cause::NoAudio);
    assert_eq!(
        a.calls[1].causes[0].outcome,
        Some(OutcomeHint::NetworkProblem)
    );
    // 3. bob's phone answers and stays silent: one-way.
    assert_eq!(a.calls[2].to_user, "bob");
    let m = media(2);
    assert_eq!(m.verdict, MediaVerdict::OneWay, "{}", m.reason);
    assert!(
        m.reason.contains("no RTP from the callee after 200 OK"),
        "{}",
        m.reason
    );
    assert_eq!(a.calls[2].causes[0].cause, Cause::OneWayAudio);
    // 4. A private address in the caller's SDP: the echo answers to where RTP comes from.
    let m = media(3);
    assert!(m.caller_sdp.starts_with("10.20.30.40:"), "{}", m.caller_sdp);
    assert_eq!(m.verdict, MediaVerdict::BothWays, "{}", m.reason);
    assert!(
        m.reason.contains("the caller's SDP announces 10.20.30.40"),
        "{}",
        m.reason
    );
    assert!(
        a.calls[3]
            .causes
            .iter()
            .any(|f| f.cause == Cause::PrivateAddressBehindNat),
        "{:?}",
        a.calls[3].causes
    );
    // The ladder marks the media phase with its verdict.
    let svg = captures::ladder_svg(a, &a.calls[2].call_id).expect("svg");
    assert!(svg.contains("media: one-way audio"), "{svg}");
    let text = captures::ladder_text(a, &a.calls[0].call_id).expect("text");
    assert!(text.contains("~~ media: audio both ways"), "{text}");
}

#[test]
fn the_committed_lab_media_recording_reads_the_same() {
    let a = crate::analyze("lab_media.pcap", None);
    check_lab_media(&a, "600");
    assert!(
        captures::outcome_hint(&a) == Some(OutcomeHint::NetworkProblem),
        "{:?}",
        captures::causes(&a)
    );
}
