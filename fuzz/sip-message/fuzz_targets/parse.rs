//! Fuzz target: the SIP parser, the stream framer, the typed headers, redaction and SDP must
//! never panic on any input, and framing must always make progress.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_message::{FrameResult, frame, parse, redact, sdp::SessionDescription};

fuzz_target!(|data: &[u8]| {
    let parsed = parse(data);
    if let Some(m) = &parsed.message {
        let printed = redact(m).to_bytes();
        // What we print must itself be parseable into a message.
        assert!(parse(&m.to_bytes()).message.is_some() || printed.is_empty());
        let h = m.headers();
        let _ = (h.via(), h.from(), h.to(), h.cseq(), h.contacts(), h.expires());
        let _ = (h.www_authenticate(), h.proxy_authenticate(), h.authorization());
        let _ = (h.warnings(), h.reasons(), h.record_route(), h.route());
        let _ = SessionDescription::parse(m.body());
    }
    match frame(data) {
        FrameResult::Complete(n) | FrameResult::Skip(n) => assert!(n > 0 && n <= data.len()),
        FrameResult::NeedMore => {}
    }
});
