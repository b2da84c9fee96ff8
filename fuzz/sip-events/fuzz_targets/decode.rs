//! Fuzz target: the HEPv3 decoder, the TCP framer and SIP event extraction must never panic on
//! any input, framing must always make progress, and what decodes must re-encode and decode
//! to the same packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_events::events::record_from_hep;
use sip_events::hep::{self, Frame};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = hep::decode(data) {
        let _ = record_from_hep(&p, 0);
        if let Ok(again) = hep::encode(&p) {
            let back = hep::decode(&again).expect("an encoded packet decodes");
            assert_eq!(back.payload, p.payload);
            assert_eq!((back.src(), back.dst()), (p.src(), p.dst()));
        }
    }
    let mut pos = 0;
    while pos < data.len() {
        match hep::frame(&data[pos..]) {
            Frame::Packet(n) | Frame::Garbage(n) => {
                assert!(n > 0 && pos + n <= data.len());
                let _ = hep::decode(&data[pos..pos + n]);
                pos += n;
            }
            Frame::NeedMore => break,
        }
    }
});
