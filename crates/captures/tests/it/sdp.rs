//! SDP offer/answer: codecs offered against codecs answered, refusals named.

fn message(dir: &str, t: &str, lines: &[&str], sdp: &[&str]) -> String {
    let body: String = sdp.iter().map(|l| format!("{l}\r\n")).collect();
    let mut out = String::new();
    let mut all: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    if !sdp.is_empty() {
        all.push("Content-Type: application/sdp".to_owned());
    }
    all.push(format!("Content-Length: {}", body.len()));
    all.push(String::new());
    for l in all {
        out.push_str(&format!("2026-11-26 08:00:{t} DEBUG [sip] {dir} {l}\n"));
    }
    for l in sdp {
        out.push_str(&format!("2026-11-26 08:00:{t} DEBUG [sip] {dir} {l}\n"));
    }
    out
}

fn call(answer: &str, answer_sdp: &[&str]) -> captures::Analysis {
    let head = |cseq: &str, tag: bool| {
        vec![
            "Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK-sdp-1".to_owned(),
            "From: <sip:henry@pbx.example.com>;tag=a1".to_owned(),
            format!(
                "To: <sip:1001@pbx.example.com>{}",
                if tag { ";tag=b2" } else { "" }
            ),
            "Call-ID: sdp-call-1".to_owned(),
            format!("CSeq: {cseq}"),
        ]
    };
    let offer = [
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.4",
        "s=-",
        "c=IN IP4 192.0.2.4",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0 8 101",
        "a=rtpmap:101 telephone-event/8000",
    ];
    let mut log = String::new();
    let mut invite = vec!["INVITE sip:1001@pbx.example.com SIP/2.0".to_owned()];
    invite.extend(head("1 INVITE", false));
    let refs: Vec<&str> = invite.iter().map(String::as_str).collect();
    log += &message("SEND >>", "01.000", &refs, &offer);
    let mut resp = vec![format!("SIP/2.0 {answer}")];
    resp.extend(head("1 INVITE", true));
    let refs: Vec<&str> = resp.iter().map(String::as_str).collect();
    log += &message("RECV <<", "02.000", &refs, answer_sdp);
    captures::analyze_reader(log.as_bytes(), &captures::AnalyzeOptions::default()).expect("log")
}

fn texts(a: &captures::Analysis) -> Vec<String> {
    a.calls
        .iter()
        .flat_map(|c| c.causes.iter().map(|f| f.text.clone()))
        .collect()
}

#[test]
fn a_codec_in_the_answer_that_was_not_offered_is_named() {
    let a = call(
        "200 OK",
        &["v=0", "c=IN IP4 192.0.2.9", "m=audio 5000 RTP/AVP 18 101"],
    );
    let t = texts(&a);
    assert!(
        t.iter()
            .any(|x| x.contains("codec in the answer not in the offer")
                && x.contains("G729 (18)")
                && x.contains("PCMU (0), PCMA (8)")),
        "{t:?}"
    );
    assert_eq!(a.calls[0].causes[0].cause, captures::Cause::CodecRefused);
}

#[test]
fn an_answer_within_the_offer_is_fine() {
    // 101 is dynamic: its number may differ in an answer, and here it does not anyway.
    let a = call(
        "200 OK",
        &["v=0", "c=IN IP4 192.0.2.9", "m=audio 5000 RTP/AVP 8 101"],
    );
    assert!(texts(&a).is_empty(), "{:?}", texts(&a));
}

#[test]
fn a_refusal_names_what_was_offered() {
    let a = call("488 Not Acceptable Here", &[]);
    let t = texts(&a);
    assert!(
        t.iter().any(
            |x| x.contains("no common codec") && x.contains("the offer had PCMU (0), PCMA (8)")
        ),
        "{t:?}"
    );
    let a = call(
        "200 OK",
        &["v=0", "c=IN IP4 192.0.2.9", "m=audio 0 RTP/AVP 0"],
    );
    let t = texts(&a);
    assert!(
        t.iter()
            .any(|x| x.contains("port 0") && x.contains("the offer had PCMU (0)")),
        "{t:?}"
    );
}
