//! Renderings: summary table, text and SVG ladders, Markdown for the dossier; no secrets.

use crate::analyze;

#[test]
fn text_ladder_of_a_ringing_answered_call() {
    let a = analyze("sipp_pairs.pcap", None);
    let c = a.calls.iter().find(|c| c.to_user == "erin").expect("call");
    let ladder = captures::ladder_text(&a, &c.call_id).expect("ladder");
    let lines: Vec<&str> = ladder.lines().collect();
    assert!(lines[0].contains("dave -> erin (200 OK)"), "{ladder}");
    // One arrow per message, caller on the left: requests point right, responses left.
    let invite = lines.iter().find(|l| l.contains("INVITE")).expect("INVITE");
    assert!(invite.contains("->") || invite.contains("-->"), "{ladder}");
    let ringing = lines
        .iter()
        .find(|l| l.contains("180 Ringing"))
        .expect("180");
    assert!(ringing.contains("<-"), "{ladder}");
    // Plus one line for the media phase between the answer and the BYE.
    assert_eq!(lines.len(), 3 + c.ladder.events.len(), "{ladder}");
    let media = lines
        .iter()
        .position(|l| l.contains("~~ media: not judged"))
        .expect("media");
    let bye = lines.iter().position(|l| l.contains("BYE")).expect("BYE");
    assert_eq!(media + 1, bye, "{ladder}");
    assert!(captures::ladder_text(&a, "no-such-call").is_none());
}

#[test]
fn svg_ladder_is_well_formed_and_escaped() {
    let log = "SEND\nINVITE sip:bob@h SIP/2.0\nCall-ID: a<b&\"c\nCSeq: 1 INVITE\nFrom: <sip:x@h>;tag=1\nTo: <sip:bob@h>\n\nRECV\nSIP/2.0 404 Not <Found>\nCall-ID: a<b&\"c\nCSeq: 1 INVITE\n\n";
    let a = captures::analyze_reader(log.as_bytes(), &captures::AnalyzeOptions::default())
        .expect("log");
    let svg = captures::ladder_svg(&a, "a<b&\"c").expect("svg");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("a&lt;b&amp;&quot;c") && svg.contains("404 Not &lt;Found&gt;"));
    assert!(!svg.contains("a<b"));
    assert_eq!(svg.matches("<line").count(), 2 + 2, "{svg}");
}

#[test]
fn summary_and_markdown_name_the_causes() {
    let a = analyze("lab_udp.pcap", None);
    let table = captures::summary_table(&a);
    assert!(table.contains("Calls: ") && table.contains("Registrations: "));
    assert!(table.contains("[authentication_failure]"), "{table}");
    let md = captures::markdown_section(&a);
    assert!(md.starts_with("### Client log / capture analysis"));
    assert!(md.contains("`authentication_failure`"));
    assert!(md.contains("| call start | from | to |"));
    assert!(md.contains("| retransmissions | media | cause |"), "{md}");
    // Every row of a table has the cells of its header (pipes in data are escaped).
    let mut cells = None;
    for line in md.lines() {
        if line.starts_with("|---") {
            continue;
        }
        if !line.starts_with('|') {
            cells = None;
            continue;
        }
        let n = line.matches(" | ").count() + 2;
        assert_eq!(*cells.get_or_insert(n), n, "{line}");
    }
}

#[test]
fn digest_responses_and_passwords_never_come_out() {
    for f in [
        "baresip_wrong_password.log",
        "baresip_calls.log",
        "edge/pjsua.log",
        "edge/two_interfaces.pcapng",
    ] {
        let raw = std::fs::read(crate::data(f)).expect("read");
        let raw = String::from_utf8_lossy(&raw);
        let secrets: Vec<&str> = raw
            .match_indices("response=\"")
            .map(|(i, _)| &raw[i + 10..i + 10 + raw[i + 10..].find('"').unwrap_or(0)])
            .filter(|s| s.len() >= 8)
            .collect();
        assert!(!secrets.is_empty(), "{f} has no credentials to test with");
        let a = crate::analyze(f, None);
        let mut out = vec![
            serde_json::to_string(&a).expect("json"),
            format!("{a:?}"),
            captures::summary_table(&a),
            captures::markdown_section(&a),
        ];
        for id in a
            .calls
            .iter()
            .map(|c| &c.call_id)
            .chain(a.registrations.iter().map(|r| &r.call_id))
        {
            out.extend(captures::ladder_text(&a, id));
            out.extend(captures::ladder_svg(&a, id));
        }
        for s in &secrets {
            assert!(out.iter().all(|o| !o.contains(s)), "{f}: secret leaked");
        }
    }
}

#[test]
fn svg_ladders_name_the_caller_and_draw_challenges_neutral() {
    let a = analyze("lab_udp.pcap", None);
    let c = a
        .calls
        .iter()
        .find(|c| c.auth_rounds > 0 && c.final_status.is_some_and(|s| s >= 400))
        .expect("a challenged call that failed");
    let svg = captures::ladder_svg(&a, &c.call_id).expect("svg");
    // The caller's column is named by user and user agent, the other side "SIP server"; the
    // addresses stay below the names.
    assert!(svg.contains(&format!(">{} (", c.from_user)), "{svg}");
    assert!(svg.contains(">SIP server<"), "{svg}");
    assert!(svg.contains(&format!(">{}<", c.client)), "{svg}");
    // The 407 challenge is grey; the final failure is red.
    let challenge = svg
        .lines()
        .find(|l| l.contains(">407 ") || l.contains(">401 "))
        .expect("a challenge arrow");
    assert!(
        challenge.contains("#6b7280") && !challenge.contains("#c0392b"),
        "{challenge}"
    );
    let code = c.final_status.expect("final").to_string();
    let failure = svg
        .lines()
        .find(|l| l.contains(&format!(">{code} ")))
        .expect("the final failure");
    assert!(failure.contains("#c0392b"), "{failure}");
}
