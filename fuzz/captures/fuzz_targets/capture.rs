//! Fuzz target: arbitrary bytes as a pcap/pcapng capture, then every rendering.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Force the capture path: most inputs would otherwise be rejected as not pcap.
    let mut input = Vec::with_capacity(data.len() + 24);
    if data.first().is_some_and(|b| b & 1 == 1) {
        input.extend_from_slice(&data[1..]);
    } else {
        // A legacy pcap header with the link type taken from the input.
        let lt: u32 = [0, 1, 12, 101, 108, 113, 228, 229, 276][usize::from(data.get(1).copied().unwrap_or(0)) % 9];
        input.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        input.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0]);
        input.extend_from_slice(&lt.to_le_bytes());
        input.extend_from_slice(data.get(2..).unwrap_or_default());
    }
    if let Ok(a) = captures::analyze_reader(&input[..], &captures::AnalyzeOptions::default()) {
        let _ = captures::summary_table(&a);
        let _ = captures::markdown_section(&a);
        for c in &a.calls {
            let _ = captures::ladder_text(&a, &c.call_id);
            let _ = captures::ladder_svg(&a, &c.call_id);
        }
    }
});
