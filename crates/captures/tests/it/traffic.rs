//! What a support agent reads from the real recordings and the hand-made edge files.

use captures::{Cause, OutcomeHint, Transport};

use crate::analyze;

fn call<'a>(a: &'a captures::Analysis, to: &str) -> &'a captures::CallSummary {
    a.calls
        .iter()
        .find(|c| c.to_user == to)
        .unwrap_or_else(|| panic!("no call to {to} in {:#?}", a.calls))
}

fn has_cause(causes: &[captures::Finding], cause: Cause) -> bool {
    causes.iter().any(|f| f.cause == cause)
}

#[test]
fn lab_udp_calls_and_registrations_get_their_causes() {
    let a = analyze("lab_udp.pcap", None);
    assert_eq!(a.input_kind, captures::InputKind::Pcap);
    // Wrong password on INVITE: 407, INVITE with credentials, 403 + Warning from Kamailio.
    let wrong = a
        .calls
        .iter()
        .find(|c| c.final_status == Some(403))
        .expect("a call refused with 403");
    assert_eq!(wrong.auth_rounds, 1);
    assert!(has_cause(&wrong.causes, Cause::AuthenticationRejected));
    assert!(
        wrong.warning.contains("invalid credentials"),
        "{}",
        wrong.warning
    );
    // The other outcomes of the lab's routing.
    let busy = call(&a, "94865550000");
    assert_eq!(busy.final_status, Some(486));
    assert!(has_cause(&busy.causes, Cause::Busy));
    assert!(has_cause(
        &call(&a, "nosuchuser").causes,
        Cause::UnknownNumber
    ));
    assert!(has_cause(&call(&a, "bob").causes, Cause::NotRegistered));
    let echo = a
        .calls
        .iter()
        .find(|c| c.to_user == "600" && c.final_status == Some(200))
        .expect("an answered echo call");
    assert!(echo.causes.is_empty());
    assert!(echo.setup_time_ms.is_some() && echo.duration_ms.is_some());
    // Registrations: right password accepted, wrong refused, unknown account.
    let regs = |user: &str, status: u16| {
        a.registrations
            .iter()
            .filter(|r| r.user == user && r.final_status == Some(status))
            .count()
    };
    assert!(regs("alice", 200) >= 1, "{:#?}", a.registrations);
    assert!(regs("alice", 403) >= 1);
    assert!(regs("nosuchuser", 404) >= 1);
    assert_eq!(
        captures::outcome_hint(&a),
        Some(OutcomeHint::AuthenticationFailure)
    );
}

#[test]
fn user_filter_selects_one_accounts_traffic() {
    let all = analyze("lab_udp.pcap", None);
    let dave = analyze("lab_udp.pcap", Some("dave"));
    assert!(!dave.calls.is_empty() && !dave.registrations.is_empty());
    assert!(dave.calls.len() < all.calls.len());
    assert!(
        dave.calls
            .iter()
            .all(|c| c.from_user == "dave" || c.to_user == "dave")
    );
    assert!(dave.registrations.iter().all(|r| r.user == "dave"));
    // The index lists every account whatever the filter, with failure counters.
    assert!(dave.users.contains_key("alice") && dave.users.contains_key("dave"));
    assert!(all.users["alice"].failed_calls >= 4);
    // A number works as well as an account name, with or without '+'.
    let by_number = analyze("lab_udp.pcap", Some("+94865550000"));
    assert!(!by_number.calls.is_empty());
    assert!(by_number.calls.iter().all(|c| c.to_user == "94865550000"));
    assert!(
        analyze("lab_udp.pcap", Some("nobody-at-all"))
            .calls
            .is_empty()
    );
}

#[test]
fn sip_over_tcp_on_linux_cooked_capture() {
    let a = analyze("lab_tcp.pcapng", None);
    assert_eq!(a.input_kind, captures::InputKind::Pcapng);
    assert_eq!(a.calls.len(), 2, "{:#?}", a.calls);
    assert!(a.calls.iter().all(|c| c.transport == Transport::Tcp));
    assert_eq!(call(&a, "600").final_status, Some(200));
    assert_eq!(call(&a, "bob").final_status, Some(480));
}

#[test]
fn sipp_pairs_ringing_codec_refused_and_silence() {
    let a = analyze("sipp_pairs.pcap", None);
    let answered = call(&a, "erin");
    // The UAS rings 150 ms after the 100 Trying, answers 300 ms later.
    let pdd = answered.post_dial_delay_ms.expect("post-dial delay");
    assert!((100..1000).contains(&pdd), "pdd {pdd}");
    assert!(answered.setup_time_ms.expect("setup") > pdd);
    let refused = call(&a, "carol");
    assert_eq!(refused.final_status, Some(488));
    assert_eq!(
        refused.causes[0].outcome,
        Some(OutcomeHint::ClientMisconfiguration)
    );
    let silent = call(&a, "bob");
    assert_eq!(silent.final_status, None);
    assert!(silent.retransmissions >= 3, "{}", silent.retransmissions);
    assert_eq!(silent.causes[0].cause, Cause::NoFinalResponse);
}

#[test]
fn baresip_logs_wrong_password_calls_and_transport_errors() {
    let wrong = analyze("baresip_wrong_password.log", None);
    assert_eq!(wrong.input_kind, captures::InputKind::BaresipLog);
    assert_eq!(wrong.registrations.len(), 1);
    assert!(has_cause(
        &wrong.registrations[0].causes,
        Cause::AuthenticationRejected
    ));
    let calls = analyze("baresip_calls.log", None);
    assert_eq!(calls.calls.len(), 3);
    assert!(
        calls
            .registrations
            .iter()
            .all(|r| r.final_status == Some(200))
    );
    assert_eq!(call(&calls, "600").final_status, Some(200));
    assert_eq!(call(&calls, "1002").final_status, Some(480));
    // baresip prints the addresses of every message: the ladder uses them.
    assert!(call(&calls, "600").client.starts_with("127.0.0.1:"));
    let tls = analyze("baresip_tls.log", None);
    let f = captures::causes(&tls);
    assert!(
        f.iter().any(|f| f.outcome == Some(OutcomeHint::TlsFailure)),
        "{f:#?}"
    );
    assert!(f.iter().any(|f| f.cause == Cause::TransportError));
    assert_eq!(captures::outcome_hint(&tls), Some(OutcomeHint::TlsFailure));
}

#[test]
fn fragmented_invites_are_reassembled_ipv4_and_ipv6() {
    for f in [
        "edge/fragmented_ipv4.pcap",
        "edge/fragmented_ipv6_null.pcap",
    ] {
        let a = analyze(f, None);
        assert_eq!(a.calls.len(), 1, "{f}");
        let c = &a.calls[0];
        assert_eq!((c.final_status, c.messages), (Some(200), 4), "{f}");
        assert_eq!(c.ladder.label(&c.ladder.events[0]), "INVITE", "{f}");
        assert!(a.warnings.is_empty(), "{f}: {:?}", a.warnings);
    }
}

#[test]
fn tcp_stream_split_packed_reordered_and_retransmitted() {
    let a = analyze("edge/tcp_split_sll.pcap", None);
    let c = &a.calls[0];
    // INVITE (once, despite the retransmitted segment), 100 + 180 (one segment), 486, ACK.
    let labels: Vec<&str> = c.ladder.iter().map(|(_, l)| l).collect();
    assert_eq!(
        labels,
        [
            "INVITE",
            "100 Trying",
            "180 Ringing",
            "486 Busy Here (INVITE)",
            "ACK"
        ]
    );
    assert_eq!(c.transport, Transport::Tcp);
}

#[test]
fn pcapng_with_two_link_types_and_resolutions() {
    let a = analyze("edge/two_interfaces.pcapng", None);
    let r = &a.registrations[0];
    let times: Vec<f64> = r.ladder.events.iter().map(|e| e.t).collect();
    // Ethernet interface in microseconds, raw-IPv4 interface in nanoseconds.
    assert_eq!(times, [0.0, 0.02, 0.05, 0.07]);
    assert_eq!(r.causes[0].cause, Cause::AuthenticationRejected);
}

#[test]
fn nat_private_contact_seen_from_public_address() {
    let a = analyze("edge/nat_private_contact.pcap", None);
    let f = captures::causes(&a);
    let nat = f
        .iter()
        .find(|f| f.cause == Cause::PrivateAddressBehindNat)
        .expect("NAT finding");
    assert_eq!(nat.outcome, Some(OutcomeHint::NetworkProblem));
    assert!(nat.text.contains("192.168.1.20") && nat.text.contains("203.0.113.77"));
    // The 200 answer refuses the audio stream (port 0).
    assert!(has_cause(&a.calls[0].causes, Cause::CodecRefused));
}

#[test]
fn client_logs_of_pjsip_linphone_and_generic_prefixes() {
    let pj = analyze("edge/pjsua.log", None);
    assert_eq!(pj.input_kind, captures::InputKind::PjsipLog);
    let r = &pj.registrations[0];
    assert_eq!((r.attempts, r.auth_rounds), (2, 2));
    assert_eq!(r.causes[0].cause, Cause::AuthenticationRejected);
    assert_eq!(r.client, "client");
    let lin = analyze("edge/linphone.log", None);
    assert_eq!(lin.input_kind, captures::InputKind::LinphoneLog);
    assert_eq!(lin.registrations[0].final_status, Some(404));
    assert!(
        captures::causes(&lin)
            .iter()
            .any(|f| f.outcome == Some(OutcomeHint::TlsFailure))
    );
    let generic = analyze("edge/generic_prefixed.log", None);
    let c = &generic.calls[0];
    assert_eq!(
        (c.post_dial_delay_ms, c.setup_time_ms, c.duration_ms),
        (Some(1540), Some(3040), Some(30000))
    );
    assert_eq!(c.start_text, "2026-11-26 08:00:01.000");
}

#[test]
fn damaged_files_give_results_up_to_the_damage_and_say_so() {
    for (f, warning, min_msgs) in [
        ("edge/truncated_file.pcap", "file truncated at offset", 10),
        (
            "edge/truncated_packet.pcap",
            "truncated packet at offset",
            3,
        ),
        ("edge/truncated_header.pcap", "truncated in its header", 0),
        ("edge/corrupt_block.pcapng", "corrupt block at offset", 3),
    ] {
        let a = analyze(f, None);
        assert!(
            a.warnings.iter().any(|w| w.contains(warning)),
            "{f}: {:?}",
            a.warnings
        );
        assert!(a.stats.sip_messages >= min_msgs, "{f}");
    }
    let err = captures::analyze_path(
        &crate::data("edge/garbage.bin"),
        &captures::AnalyzeOptions::default(),
    );
    assert!(matches!(err, Err(captures::Error::UnknownFormat(_))));
}
