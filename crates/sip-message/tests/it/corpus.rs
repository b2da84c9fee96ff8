//! Replays the fuzz corpus: no input may panic, and malformed seeds must yield diagnostics.

use sip_message::{FrameResult, frame, parse, redact, sdp::SessionDescription};

#[test]
fn corpus_replays_without_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/sip-message/corpus/parse");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        let input = std::fs::read(&path).expect("file");
        let parsed = parse(&input);
        let name = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default();
        if name.starts_with("bad-") {
            assert!(
                !parsed.diagnostics.is_empty(),
                "{name} is malformed but got no diagnostic"
            );
        }
        if let Some(m) = &parsed.message {
            let _ = redact(m).to_bytes();
            let h = m.headers();
            let _ = (
                h.via(),
                h.from(),
                h.to(),
                h.cseq(),
                h.contacts(),
                h.www_authenticate(),
                h.warnings(),
            );
            let _ = SessionDescription::parse(m.body());
        }
        let mut pos = 0;
        let mut steps = 0;
        while pos < input.len() && steps < 10_000 {
            match frame(&input[pos..]) {
                FrameResult::Complete(k) | FrameResult::Skip(k) => {
                    assert!(k > 0, "{name}: framing made no progress");
                    pos += k;
                }
                FrameResult::NeedMore => break,
            }
            steps += 1;
        }
        n += 1;
    }
    assert!(n >= 20, "corpus too small: {n}");
}
