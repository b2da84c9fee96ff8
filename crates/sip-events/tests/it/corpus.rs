//! Replays the HEP decoder's fuzz corpus: no input may panic, `bad-*` seeds must be refused,
//! `ok-*` seeds accepted, and the framer must always make progress.

use sip_events::events::record_from_hep;
use sip_events::hep::{self, Frame};

#[test]
fn corpus_replays_without_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/sip-events/corpus/decode");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        let input = std::fs::read(&path).expect("file");
        let name = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default()
            .to_owned();
        let decoded = hep::decode(&input);
        if name.starts_with("bad-") {
            assert!(decoded.is_err(), "{name} is malformed but was accepted");
        }
        if name.starts_with("ok-") {
            let p = decoded.as_ref().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(record_from_hep(p, 0).is_ok(), "{name}: no SIP record");
        }
        if let Ok(p) = &decoded {
            let _ = record_from_hep(p, 0);
        }
        let mut pos = 0;
        let mut steps = 0;
        while pos < input.len() && steps < 100_000 {
            match hep::frame(&input[pos..]) {
                Frame::Packet(k) | Frame::Garbage(k) => {
                    assert!(k > 0, "{name}: framing made no progress");
                    let _ = hep::decode(&input[pos..pos + k]);
                    pos += k;
                }
                Frame::NeedMore => break,
            }
            steps += 1;
        }
        n += 1;
    }
    assert!(n >= 10, "corpus too small: {n}");
}
