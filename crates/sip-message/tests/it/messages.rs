//! Every file in test_data/messages is parsed and snapshotted with its typed headers; a table
//! states which ones must be clean and which must carry errors.

use serde::Serialize;
use sip_message::{Message, Parsed, Severity, parse, sdp::SessionDescription};

fn res<T: Serialize>(r: sip_message::Result<T>) -> serde_json::Value {
    match r {
        Ok(v) => serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
        Err(e) => serde_json::Value::String(format!("error: {e}")),
    }
}

#[derive(Serialize)]
struct View {
    diagnostics: Vec<String>,
    start: Option<String>,
    typed: serde_json::Value,
    sdp: Option<serde_json::Value>,
    reprinted_equal: bool,
}

fn view(input: &[u8], parsed: &Parsed) -> View {
    let diagnostics = parsed
        .diagnostics
        .iter()
        .map(|d| format!("{:?}@{}: {}", d.severity, d.offset, d.message))
        .collect();
    let Some(m) = &parsed.message else {
        return View {
            diagnostics,
            start: None,
            typed: serde_json::Value::Null,
            sdp: None,
            reprinted_equal: false,
        };
    };
    let h = m.headers();
    let typed = serde_json::json!({
        "via": res(h.via()),
        "from": res(h.from()),
        "to": res(h.to()),
        "call_id": h.call_id(),
        "cseq": res(h.cseq()),
        "contacts": res(h.contacts()),
        "expires": res(h.expires()),
        "max_forwards": res(h.max_forwards()),
        "content_length": res(h.content_length()),
        "www_authenticate": res(h.www_authenticate()),
        "proxy_authenticate": res(h.proxy_authenticate()),
        "authorization": res(h.authorization()),
        "warnings": res(h.warnings()),
        "reasons": res(h.reasons()),
        "record_route": res(h.record_route()),
        "route": res(h.route()),
        "server": h.server(),
    });
    let sdp = (h.content_type() == Some("application/sdp")).then(|| {
        let (s, d) = SessionDescription::parse(m.body());
        serde_json::json!({
            "audio": s.audio().map(|(i, a)| serde_json::json!({
                "port": a.port, "formats": a.formats, "rtpmaps": a.rtpmaps(),
                "connection": s.media_connection(i), "direction": s.media_direction(i),
            })),
            "media": s.media.len(),
            "diagnostics": d.iter().map(|d| d.message.clone()).collect::<Vec<_>>(),
        })
    });
    let start = match m {
        Message::Request(r) => format!("request {} {}", r.method, r.uri),
        Message::Response(r) => format!("response {} {}", r.status, r.reason),
    };
    // Printing a message read from well-formed CRLF input must give back the same bytes
    // except where folding was joined.
    let reprinted_equal = m.to_bytes() == input;
    View {
        diagnostics,
        start: Some(start),
        typed,
        sdp,
        reprinted_equal,
    }
}

/// (file, parses into a message, carries Error diagnostics)
const EXPECT: &[(&str, bool, bool)] = &[
    ("kamailio-403-warning.sip", true, false),
    ("rfc3261-24.1-register-200.sip", true, false),
    ("rfc3261-24.1-register.sip", true, false),
    ("rfc3261-24.2-f1-invite.sip", true, false),
    ("rfc3261-24.2-f11-ack.sip", true, false),
    ("rfc3261-24.2-f13-bye.sip", true, false),
    ("rfc3261-24.2-f5-180.sip", true, false),
    ("rfc3261-24.2-f9-200.sip", true, false),
    ("rfc3665-2.1-f2-401.sip", true, false),
    ("rfc3665-2.1-f3-register-auth.sip", true, false),
    ("rfc3665-3.1-f4-407.sip", true, false),
    ("rfc4475-3.1.1.2-wsinv.sip", true, false),
    ("rfc4475-3.1.1.3-esc01-compact.sip", true, false),
    ("rfc4475-3.1.2.2-clerr-truncated.sip", true, true),
    ("rfc4475-3.1.2.4-mcl01-multiple-cl.sip", true, true),
    ("rfc4475-3.1.2.6-unterminated-quote.sip", true, true),
    ("rfc4475-3.1.2.7-ltgtruri.sip", false, true),
    ("sha256-challenge-lf-only.sip", true, false),
];

#[test]
fn rfc_examples_parse_as_expected() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/messages");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("test_data/messages exists") {
        let path = entry.expect("dir entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let input = std::fs::read(&path).expect("readable file");
        let parsed = parse(&input);
        let &(_, want_msg, want_err) = EXPECT
            .iter()
            .find(|(f, ..)| *f == name)
            .unwrap_or_else(|| panic!("{name} has no row in EXPECT"));
        assert_eq!(
            parsed.message.is_some(),
            want_msg,
            "{name}: {:#?}",
            parsed.diagnostics
        );
        let has_err = parsed
            .diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error);
        assert_eq!(has_err, want_err, "{name}: {:#?}", parsed.diagnostics);
        insta::assert_yaml_snapshot!(name.clone(), view(&input, &parsed));
        seen += 1;
    }
    assert_eq!(seen, EXPECT.len());
}

#[test]
fn typed_values_of_the_rfc_3261_call() {
    let input = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/test_data/messages/rfc3261-24.2-f9-200.sip"
    ))
    .expect("file");
    let m = parse(&input).message.expect("message");
    let h = m.headers();
    let via = h.via().expect("via");
    assert_eq!(via.len(), 3);
    assert_eq!(via[0].branch(), Some("z9hG4bK4b43c2ff8.1"));
    assert_eq!(via[2].received(), Some("192.0.2.1"));
    assert_eq!(h.to().expect("to").expect("present").tag(), Some("a6c85cf"));
    let rr = h.record_route().expect("rr");
    assert_eq!(rr[1].uri.host, "bigbox3.site3.atlanta.com");
    assert!(rr[0].uri.param("lr").is_some());
}

#[test]
fn digest_challenge_fields() {
    let input = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/test_data/messages/sha256-challenge-lf-only.sip"
    ))
    .expect("file");
    let parsed = parse(&input);
    assert!(
        parsed
            .diagnostics
            .iter()
            .any(|d| d.message.contains("LF only"))
    );
    let ch = parsed
        .message
        .expect("message")
        .headers()
        .www_authenticate()
        .expect("challenges");
    assert_eq!(ch.len(), 2);
    assert_eq!(ch[0].algorithm.as_deref(), Some("SHA-256"));
    assert_eq!(ch[0].qop, vec!["auth", "auth-int"]);
    assert!(ch[0].stale);
    assert!(!ch[1].stale);
    assert_eq!(ch[1].realm.as_deref(), Some("127.0.0.1"));
}
