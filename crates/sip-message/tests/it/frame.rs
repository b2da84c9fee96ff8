//! Stream framing by Content-Length, keep-alives and garbage.

use sip_message::{FrameResult, frame};

#[test]
fn frame_table() {
    let invite = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/test_data/messages/rfc3261-24.2-f1-invite.sip"
    ))
    .expect("file");
    let n = invite.len();
    let mut two = invite.clone();
    two.extend_from_slice(&invite);
    let cases: Vec<(Vec<u8>, FrameResult)> = vec![
        (invite.clone(), FrameResult::Complete(n)),
        (two, FrameResult::Complete(n)),
        (invite[..n - 5].to_vec(), FrameResult::NeedMore),
        (invite[..40].to_vec(), FrameResult::NeedMore),
        (b"\r\n\r\nOPTIONS".to_vec(), FrameResult::Skip(4)),
        (
            b"hello world\r\nOPTIONS sip:x SIP/2.0\r\n".to_vec(),
            FrameResult::Skip(13),
        ),
        (
            b"OPTIONS sip:x SIP/2.0\r\nContent-Length: zz\r\n\r\nabc".to_vec(),
            FrameResult::Skip(45),
        ),
        (
            b"SIP/2.0 200 OK\r\nl: 3\r\n\r\nabcdef".to_vec(),
            FrameResult::Complete(27),
        ),
        (
            b"SIP/2.0 200 OK\r\n\r\n".to_vec(),
            FrameResult::Complete(18),
        ),
        (Vec::new(), FrameResult::NeedMore),
    ];
    for (input, want) in cases {
        assert_eq!(frame(&input), want, "{:?}", String::from_utf8_lossy(&input));
    }
}

#[test]
fn framing_a_stream_recovers_every_message() {
    let mut stream = Vec::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/messages");
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    names.sort();
    let mut expected = 0;
    for p in &names {
        let name = p.to_string_lossy();
        if name.contains("clerr") || name.contains("mcl01") {
            continue; // their Content-Length is wrong on purpose
        }
        stream.extend_from_slice(b"\r\n\r\n");
        stream.extend_from_slice(&std::fs::read(p).expect("file"));
        expected += 1;
    }
    let mut pos = 0;
    let mut got = 0;
    while pos < stream.len() {
        match frame(&stream[pos..]) {
            FrameResult::Complete(n) => {
                assert!(
                    sip_message::parse(&stream[pos..pos + n]).message.is_some()
                        || stream[pos..].starts_with(b"INVITE <")
                );
                got += 1;
                pos += n;
            }
            FrameResult::Skip(n) => pos += n,
            FrameResult::NeedMore => break,
        }
    }
    assert_eq!(got, expected);
}
