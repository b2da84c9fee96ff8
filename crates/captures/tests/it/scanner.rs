//! The lenient head scanner: what it indexes in real-world message shapes.

use captures::scan::{self, StartLine};

/// (message, expected "field=value" pairs that must hold).
const CASES: &[(&str, &[&str])] = &[
    (
        "INVITE sip:bob@example.org SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport\r\nFrom: \"Alice\" <sip:alice@example.org>;tag=aa\r\nTo: <sip:bob@example.org>\r\nCall-ID: c1@h\r\nCSeq: 7 INVITE\r\nContact: <sip:alice@10.0.0.1:5060>\r\nContent-Length: 4\r\n\r\nbody",
        &[
            "method=INVITE",
            "ruri_user=bob",
            "call_id=c1@h",
            "cseq=7 INVITE",
            "branch=z9hG4bK1",
            "from=alice/aa",
            "to=bob/",
            "contact=10.0.0.1",
            "len=4",
            "via_host=10.0.0.1",
        ],
    ),
    // Compact forms (RFC 3261 §7.3.3), LF-only line endings, lower-case names.
    (
        "SIP/2.0 180 Ringing\nv: SIP/2.0/TCP [2001:db8::1]:5060;received=192.0.2.9;branch=z9hG4bKx\nf: <sip:alice@example.org>;tag=f1\nt: <sip:bob@example.org>;tag=t1\ni: compact-1\ncseq: 1 INVITE\nl: 0\n\n",
        &[
            "status=180",
            "call_id=compact-1",
            "branch=z9hG4bKx",
            "via_host=2001:db8::1",
            "received=192.0.2.9",
            "from=alice/f1",
            "to=bob/t1",
            "len=0",
        ],
    ),
    // tel: URIs, a password in the user part, parameters without brackets.
    (
        "INVITE tel:+15551234;phone-context=example.org SIP/2.0\r\nFrom: sip:carol:secret@example.org;tag=c9\r\nTo: tel:+15551234\r\nCall-ID: t\r\nCSeq: 1 INVITE\r\n\r\n",
        &["ruri_user=+15551234", "from=carol/c9", "to=+15551234/"],
    ),
    // Headers cut by a snaplen: indexed up to the damage, no end of headers.
    (
        "REGISTER sip:example.org SIP/2.0\r\nCall-ID: cut\r\nCSeq: 2 REGISTER\r\nFrom: <sip:dave@exa",
        &[
            "method=REGISTER",
            "call_id=cut",
            "cseq=2 REGISTER",
            "complete=false",
        ],
    ),
    // Credentials are noticed, never kept; Warning and Server are indexed.
    (
        "SIP/2.0 403 Forbidden\r\nWarning: 399 h \"invalid password\"\r\nServer: kamailio\r\nCall-ID: w\r\nCSeq: 2 REGISTER\r\n\r\n",
        &[
            "status=403",
            "warning=399 h \"invalid password\"",
            "ua=kamailio",
        ],
    ),
    (
        "REGISTER sip:x SIP/2.0\r\nAuthorization: Digest username=\"a\", response=\"0123\"\r\nCall-ID: a\r\n\r\n",
        &["credentials=true"],
    ),
];

fn field(h: &scan::SipHead<'_>, name: &str) -> String {
    let t = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match name {
        "method" => h.method().map(t).unwrap_or_default(),
        "status" => h.status().map(|s| s.to_string()).unwrap_or_default(),
        "ruri_user" => t(h.ruri_user()),
        "call_id" => t(h.call_id),
        "cseq" => format!("{} {}", h.cseq, t(h.cseq_method)),
        "branch" => t(h.via_branch),
        "via_host" => t(h.via_host),
        "received" => t(h.via_received),
        "from" => format!("{}/{}", t(h.from_user), t(h.from_tag)),
        "to" => format!("{}/{}", t(h.to_user), t(h.to_tag)),
        "contact" => t(h.contact_host),
        "len" => h.content_length.map(|l| l.to_string()).unwrap_or_default(),
        "warning" => t(h.warning),
        "ua" => t(h.user_agent),
        "complete" => h.headers_complete.to_string(),
        "credentials" => h.has_credentials.to_string(),
        other => panic!("unknown field {other}"),
    }
}

#[test]
fn scanner_indexes_correlation_headers() {
    for (msg, expected) in CASES {
        let head = scan::scan(msg.as_bytes()).unwrap_or_else(|| panic!("not SIP: {msg:?}"));
        for e in *expected {
            let (name, want) = e.split_once('=').unwrap_or((e, ""));
            assert_eq!(field(&head, name), want, "{name} in {msg:?}");
        }
    }
}

#[test]
fn scanner_rejects_what_is_not_a_start_line() {
    for not_sip in [
        &b""[..],
        b"\x80\x00\x12\x34rtp",
        b"GET / HTTP/1.1\r\n\r\n",
        b"SIP/2.0 99 Too low\r\n\r\n",
        b"SIP/2.0 abc\r\n\r\n",
        b"invite sip:x SIP/2.0\r\n\r\n",
        b"INVITE sip:x\r\n\r\n",
        b"\r\n\r\n",
    ] {
        assert!(scan::scan(not_sip).is_none(), "{not_sip:?}");
    }
}

#[test]
fn start_lines_follow_rfc3261_7_1_and_7_2() {
    assert_eq!(
        scan::parse_start_line(b"SIP/2.0 486 Busy Here"),
        Some(StartLine::Response {
            code: 486,
            reason: b"Busy Here"
        })
    );
    assert_eq!(
        scan::parse_start_line(b"OPTIONS sip:h SIP/2.0"),
        Some(StartLine::Request {
            method: b"OPTIONS",
            uri: b"sip:h"
        })
    );
}

#[test]
fn sdp_connection_port_and_payload_types() {
    let sdp = scan::scan_sdp(b"v=0\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\nm=audio 0 RTP/AVP 0 8 101\r\nm=audio 4000 RTP/AVP 9\r\n");
    assert_eq!(sdp.connection, "192.168.1.20");
    assert_eq!(sdp.audio_port, Some(0));
    assert_eq!(sdp.payload_types, vec![0, 8, 101]);
}

#[test]
fn call_id_alone_agrees_with_the_full_scan() {
    let cases: &[&[u8]] = &[
        b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nCall-ID: abc@host\r\nCSeq: 1 INVITE\r\n\r\nv=0\r\nCall-ID: body\r\n",
        b"SIP/2.0 200 OK\r\ni: compact\r\n\r\n",
        b"SIP/2.0 200 OK\r\ncall-id:lower \r\n",
        b"SIP/2.0 200 OK\r\n  Call-ID : folded\r\n\r\n",
        b"SIP/2.0 200 OK\r\n\tI:tab\r\nCall-ID: second\r\n",
        b"SIP/2.0 200 OK\r\nCall-ID: first\r\n\r\r\nCall-ID: after\r\n",
        b"SIP/2.0 200 OK\nContent-Length: 0\nCall-ID: lf\n\n",
        b"SIP/2.0 180 Ringing\r\nCSeq: 1 INVITE\r\n",
        b"OPTIONS sip:x SIP/2.0\r\nCall-ID:",
        b"not sip at all\r\nCall-ID: x\r\n",
        b"SIP/2.0 200 OK",
        b"",
    ];
    for msg in cases {
        let full = captures::scan::scan(msg).map(|h| h.call_id.to_vec());
        let alone = captures::scan::call_id(msg).map(<[u8]>::to_vec);
        assert_eq!(alone, full, "{}", String::from_utf8_lossy(msg));
    }
}
