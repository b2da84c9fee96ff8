//! Fuzz target: arbitrary bytes as a client log, plus the head scanner on the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = captures::scan::scan(data);
    let _ = captures::scan::scan_sdp(data);
    if let Ok(a) = captures::analyze_reader(data, &captures::AnalyzeOptions::default()) {
        let _ = captures::summary_table(&a);
        let _ = captures::markdown_section(&a);
        for r in &a.registrations {
            let _ = captures::ladder_text(&a, &r.call_id);
            let _ = captures::ladder_svg(&a, &r.call_id);
        }
    }
});
