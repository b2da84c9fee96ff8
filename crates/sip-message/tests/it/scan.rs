//! The lean scanner: start lines, header lines (compact and long forms, case, folding),
//! the value helpers, malformed and truncated input (a clear error or a counted skip, never a
//! panic), and agreement with the full parser on the fuzz corpus.

use proptest::prelude::*;
use sip_message::scan::{
    self, HeaderLine, ScanError, StartLine, addr_uri, auth_param, cseq, first_element,
    header_param, uri_user, via_transport,
};

const INVITE: &str = "INVITE sip:95551234@example.test SIP/2.0\r\n\
Via: SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0\r\n\
From: \"Alice, Sales\" <sip:alice@example.test>;tag=a1\r\n\
To: <sip:bob@example.test>\r\n\
Call-ID: abc-123@192.0.2.10\r\n\
CSeq: 7 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5060;transport=tcp>;expires=300\r\n\
Content-Length: 3\r\n\
\r\n\
v=0";

fn names<'a>(s: &scan::Scanned<'a>) -> Vec<&'a str> {
    s.headers().map(|h| h.name).collect()
}

#[test]
fn request_start_line_headers_and_body_offset() {
    let s = scan::scan(INVITE.as_bytes()).unwrap();
    assert_eq!(
        s.start,
        StartLine::Request {
            method: "INVITE",
            uri: "sip:95551234@example.test"
        }
    );
    assert!(s.complete);
    assert_eq!(&INVITE[s.body_offset..], "v=0");
    assert_eq!(
        names(&s),
        [
            "Via",
            "From",
            "To",
            "Call-ID",
            "CSeq",
            "Contact",
            "Content-Length"
        ]
    );
    assert_eq!(s.get("call-id").unwrap().value, "abc-123@192.0.2.10");
    assert_eq!(cseq(s.get("CSeq").unwrap().value), Some((7, "INVITE")));
}

#[test]
fn response_start_line_with_and_without_reason() {
    let s = scan::scan(b"SIP/2.0 486 Busy Here\r\nCSeq: 1 INVITE\r\n\r\n").unwrap();
    assert_eq!(
        s.start,
        StartLine::Response {
            status: 486,
            reason: "Busy Here"
        }
    );
    let s = scan::scan(b"SIP/2.0 200\r\n\r\n").unwrap();
    assert_eq!(
        s.start,
        StartLine::Response {
            status: 200,
            reason: ""
        }
    );
}

#[test]
fn compact_and_long_forms_match_whatever_the_case() {
    let msg = b"BYE sip:b@x SIP/2.0\r\ni: short-form\r\nf: <sip:a@x>\r\nt: sip:b@x\r\nv: SIP/2.0/udp h\r\nm: <sip:a@h>\r\nl: 0\r\n\r\n";
    let s = scan::scan(msg).unwrap();
    for long in ["Call-ID", "CALL-ID", "call-id", "i", "I"] {
        assert_eq!(s.get(long).unwrap().value, "short-form", "{long}");
    }
    assert_eq!(
        uri_user(addr_uri(s.get("From").unwrap().value).unwrap()),
        Some("a")
    );
    assert_eq!(
        uri_user(addr_uri(s.get("to").unwrap().value).unwrap()),
        Some("b")
    );
    assert_eq!(via_transport(s.get("VIA").unwrap().value), Some("udp"));
    assert!(s.get("Contact").is_some());
    assert!(s.get("content-length").is_some());
    // A long name never matches a different compact one.
    assert!(s.get("Supported").is_none());
    let h = HeaderLine {
        name: "cSeQ",
        value: "1 BYE",
        folded: false,
    };
    assert!(h.is("CSeq") && !h.is("Call-ID"));
}

#[test]
fn folded_lines_belong_to_the_header_above() {
    let msg =
        b"REGISTER sip:x SIP/2.0\r\nSubject: first\r\n  second\r\n\tthird\r\nCall-ID: c1\r\n\r\n";
    let s = scan::scan(msg).unwrap();
    let subject = s.get("Subject").unwrap();
    assert!(subject.folded);
    assert_eq!(subject.unfolded(), "first second third");
    let call_id = s.get("Call-ID").unwrap();
    assert!(!call_id.folded);
    assert_eq!(call_id.unfolded(), "c1");
    assert_eq!(names(&s), ["Subject", "Call-ID"]);
    // A folded From still gives its user.
    let msg = b"INVITE sip:x SIP/2.0\r\nFrom: \"A\"\r\n <sip:alice@x>;tag=1\r\n\r\n";
    let from = scan::scan(msg).unwrap().get("From").unwrap();
    assert_eq!(uri_user(addr_uri(from.value).unwrap()), Some("alice"));
}

#[test]
fn bare_lf_line_ends_and_leading_crlf_are_accepted() {
    let msg = b"\r\n\r\nSIP/2.0 200 OK\nCall-ID: lf\nCSeq: 2 REGISTER\n\nbody";
    let s = scan::scan(msg).unwrap();
    assert_eq!(
        s.start,
        StartLine::Response {
            status: 200,
            reason: "OK"
        }
    );
    assert_eq!(s.get("Call-ID").unwrap().value, "lf");
    assert_eq!(cseq(s.get("CSeq").unwrap().value), Some((2, "REGISTER")));
    assert!(s.complete);
    assert_eq!(&msg[s.body_offset..], b"body");
}

#[test]
fn truncated_head_is_scanned_as_far_as_it_goes() {
    let cut = &INVITE.as_bytes()[..INVITE.find("CSeq").unwrap() + 7];
    let s = scan::scan(cut).unwrap();
    assert!(!s.complete);
    assert_eq!(s.body_offset, cut.len());
    assert_eq!(s.get("Call-ID").unwrap().value, "abc-123@192.0.2.10");
    // The cut CSeq is there but unreadable: the helper says so with None.
    assert_eq!(s.get("CSeq").unwrap().value, "7");
    assert_eq!(cseq(s.get("CSeq").unwrap().value), None);
    // Every prefix of a message scans or errors, never panics.
    for n in 0..=INVITE.len() {
        let _ = scan::scan(&INVITE.as_bytes()[..n]).map(|s| s.headers().count());
    }
}

#[test]
fn malformed_start_lines_are_clear_errors() {
    let err = |b: &[u8]| scan::scan(b).unwrap_err();
    assert_eq!(err(b""), ScanError::Empty);
    assert_eq!(err(b"\r\n\r\n"), ScanError::Empty);
    for bad in [
        &b"HTTP/1.1 200 OK\r\n\r\n"[..],
        b"SIP/2.0 20 OK\r\n\r\n",
        b"SIP/2.0 2000 OK\r\n\r\n",
        b"SIP/2.0 099 Low\r\n\r\n",
        b"SIP/2.0 abc\r\n\r\n",
        b"INVITE sip:x\r\n\r\n",
        b"INVITE sip:x HTTP/1.1\r\n\r\n",
        b"INV(TE sip:x SIP/2.0\r\n\r\n",
        b"INVITE sip:x SIP/2.0 extra\r\n\r\n",
        b"\x16\x03\x01\x02\x00",
    ] {
        let e = err(bad);
        assert!(
            matches!(e, ScanError::BadStartLine { .. }),
            "{:?}: {e:?}",
            String::from_utf8_lossy(bad)
        );
        assert!(e.to_string().starts_with("not a SIP start line: "));
    }
    let e = err(b"INVITE sip:x SIP/2.0\r\nFrom: \xff\xfe\r\n\r\n");
    assert_eq!(e, ScanError::NotUtf8 { offset: 28 });
    assert_eq!(
        e.to_string(),
        "the message head is not valid UTF-8 (byte 28)"
    );
    // A bad body does not matter: only the head is read.
    assert!(scan::scan(b"SIP/2.0 200 OK\r\nl: 2\r\n\r\n\xff\xfe").is_ok());
}

#[test]
fn unreadable_header_lines_are_skipped_and_counted() {
    let msg = b"INVITE sip:x SIP/2.0\r\n  orphan continuation\r\nno colon here\r\nBad Name: x\r\n: empty name\r\nCall-ID: ok\r\n\r\n";
    let s = scan::scan(msg).unwrap();
    let mut lines = s.headers();
    let got: Vec<_> = lines.by_ref().map(|h| (h.name, h.value)).collect();
    assert_eq!(got, [("Call-ID", "ok")]);
    assert_eq!(lines.skipped(), 4);
}

#[test]
fn value_helpers_read_the_usual_forms() {
    assert_eq!(cseq("  314159   REGISTER "), Some((314159, "REGISTER")));
    assert_eq!(cseq("4294967296 INVITE"), None);
    assert_eq!(cseq("1"), None);
    assert_eq!(cseq("1 INVITE extra"), None);
    assert_eq!(cseq("x INVITE"), None);

    assert_eq!(first_element("<sip:a@x;lr>, <sip:b@y>"), "<sip:a@x;lr>");
    assert_eq!(
        first_element("\"Doe, J\" <sip:j@x>, <sip:k@y>"),
        "\"Doe, J\" <sip:j@x>"
    );

    assert_eq!(
        addr_uri("\"Bob <boss>\" <sips:bob@x:5061>;tag=9"),
        Some("sips:bob@x:5061")
    );
    assert_eq!(addr_uri("sip:carol@x;tag=1"), Some("sip:carol@x"));
    assert_eq!(addr_uri("Carol sip:carol@x"), None);
    assert_eq!(addr_uri("<sip:unterminated@x"), None);
    assert_eq!(addr_uri(""), None);

    assert_eq!(uri_user("sip:+4930123@x;user=phone"), Some("+4930123"));
    assert_eq!(uri_user("SIP:alice:secret@x"), Some("alice"));
    assert_eq!(uri_user("sip:x.test"), None);
    assert_eq!(uri_user("tel:+4930123"), None);
    assert_eq!(uri_user("sip:@x"), None);
    assert_eq!(uri_user("sip:a@b@x"), Some("a@b"));
    assert_eq!(uri_user("sip:x?h=a@b"), None);

    assert_eq!(via_transport("SIP/2.0/WSS h;branch=1"), Some("WSS"));
    assert_eq!(via_transport("SIP / 2.0 / TLS h"), Some("TLS"));
    assert_eq!(via_transport("SIP/2.0"), None);
    assert_eq!(via_transport("garbage"), None);

    let auth = "Digest username=\"bob\", realm=\"x\", uri=\"sip:x\", response=\"0123\"";
    assert_eq!(auth_param(auth, "USERNAME").as_deref(), Some("bob"));
    assert_eq!(auth_param(auth, "realm").as_deref(), Some("x"));
    assert_eq!(auth_param(auth, "nonce"), None);
    assert_eq!(
        auth_param("Digest username=\"a\\\"b, c\"", "username").as_deref(),
        Some("a\"b, c")
    );
    assert_eq!(auth_param("Digest", "username"), None);

    let contact = "<sip:alice@192.0.2.10;transport=tcp>;expires=300;+sip.instance=\"<urn:x>\"";
    assert_eq!(header_param(contact, "Expires").as_deref(), Some("300"));
    assert_eq!(
        header_param(contact, "+sip.instance").as_deref(),
        Some("<urn:x>")
    );
    // URI parameters inside <...> are not header parameters.
    assert_eq!(header_param(contact, "transport"), None);
    assert_eq!(header_param("sip:a@x;tag=1;lr", "lr").as_deref(), Some(""));
    assert_eq!(header_param("sip:a@x", "tag"), None);
}

/// For every corpus message the full parser reads, the scanner finds the same start line,
/// Call-ID, CSeq, From/To users and top Via transport.
#[test]
fn agrees_with_the_full_parser_on_the_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/sip-message/corpus/parse");
    let mut compared = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let input = std::fs::read(entry.unwrap().path()).unwrap();
        let parsed = sip_message::parse(&input);
        let scanned = scan::scan(&input);
        let (Some(m), Ok(s)) = (parsed.message, scanned) else {
            continue;
        };
        if parsed
            .diagnostics
            .iter()
            .any(|d| d.message.contains("UTF-8"))
        {
            continue;
        }
        match (&m, s.start) {
            (sip_message::Message::Request(r), StartLine::Request { method, .. }) => {
                assert_eq!(r.method.as_str(), method);
            }
            (sip_message::Message::Response(r), StartLine::Response { status, reason }) => {
                assert_eq!((r.status, r.reason.trim()), (status, reason));
            }
            _ => panic!("request/response disagree"),
        }
        let h = m.headers();
        let get = |n: &str| s.get(n).map(|l| l.unfolded().into_owned());
        assert_eq!(h.call_id().map(str::to_owned), get("Call-ID"));
        if let Ok(Some(c)) = h.cseq() {
            let v = get("CSeq").unwrap();
            assert_eq!(cseq(&v), Some((c.seq, c.method.as_str())));
        }
        if let Ok(Some(f)) = h.from() {
            let v = get("From").unwrap();
            assert_eq!(f.uri.user.as_deref(), addr_uri(&v).and_then(uri_user));
        }
        if let Some(Ok(v)) = h.get("Via").and_then(|v| {
            sip_message::split_list(v)
                .first()
                .map(|v| sip_message::Via::parse(v))
        }) {
            let raw = get("Via").unwrap();
            assert_eq!(
                Some(v.transport.as_str()),
                via_transport(&raw)
                    .map(|t| t.to_ascii_uppercase())
                    .as_deref()
            );
        }
        compared += 1;
    }
    assert!(compared >= 10, "only {compared} corpus messages compared");
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(s) = scan::scan(&bytes) {
            for h in s.headers() {
                let v = h.unfolded();
                let _ = (cseq(&v), via_transport(&v), auth_param(&v, "username"), header_param(&v, "tag"));
                let _ = addr_uri(&v).map(uri_user);
                let _ = first_element(&v);
            }
        }
    }

    #[test]
    fn sip_like_text_never_panics(text in "(SIP/2.0 [0-9]{1,4} [A-Za-z ]{0,8}|[A-Z]{2,9} sip:[a-z@:;<>\",]{0,12} SIP/2.0)(\r?\n[ \t]?[A-Za-z:;<>@\",= /.-]{0,30}){0,8}(\r?\n){0,2}") {
        if let Ok(s) = scan::scan(text.as_bytes()) {
            let mut lines = s.headers();
            for h in lines.by_ref() {
                let _ = (cseq(h.value), via_transport(h.value), auth_param(h.value, "username"), header_param(h.value, "expires"));
                let _ = addr_uri(h.value).map(uri_user);
            }
            prop_assert!(lines.skipped() <= 8);
        }
    }
}

#[test]
fn start_line_alone_reads_a_line_from_bytes() {
    assert_eq!(
        scan::start_line(b"SIP/2.0 486 Busy Here"),
        Ok(StartLine::Response {
            status: 486,
            reason: "Busy Here"
        })
    );
    assert_eq!(
        scan::start_line(b"OPTIONS sip:h SIP/2.0"),
        Ok(StartLine::Request {
            method: "OPTIONS",
            uri: "sip:h"
        })
    );
    assert_eq!(
        scan::start_line(b"SIP/2.0 200 \xe9t\xe9"),
        Err(ScanError::NotUtf8 { offset: 12 })
    );
    for bad in [
        &b""[..],
        b"SIP/2.0 99 Too low",
        b"SIP/2.0 abc",
        b"GET / HTTP/1.1",
        b"INVITE sip:x",
    ] {
        assert!(
            matches!(scan::start_line(bad), Err(ScanError::BadStartLine { .. })),
            "{bad:?}"
        );
    }
}
