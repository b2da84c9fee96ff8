//! Damage, fuzz corpus replay and bounded memory.

use std::path::Path;

use captures::AnalyzeOptions;

fn run(bytes: &[u8]) -> Option<captures::Analysis> {
    let a = captures::analyze_reader(bytes, &AnalyzeOptions::default()).ok()?;
    // Exercise every rendering too, as the fuzz targets do.
    let _ = captures::summary_table(&a);
    let _ = captures::markdown_section(&a);
    for c in &a.calls {
        let _ = captures::ladder_text(&a, &c.call_id);
        let _ = captures::ladder_svg(&a, &c.call_id);
    }
    Some(a)
}

#[test]
fn every_cut_of_a_capture_and_a_log_is_analysed_up_to_the_cut() {
    for f in ["lab_udp.pcap", "lab_tcp.pcapng", "baresip_calls.log"] {
        let bytes = std::fs::read(crate::data(f)).expect("read");
        let mut last = 0;
        for cut in (0..=bytes.len()).step_by(97).chain([bytes.len()]) {
            let a = run(&bytes[..cut]);
            if cut >= 64 {
                let a = a.unwrap_or_else(|| panic!("{f} cut at {cut}: error"));
                // More bytes never give fewer messages.
                assert!(a.stats.sip_messages >= last, "{f} cut at {cut}");
                last = a.stats.sip_messages;
            }
        }
        assert!(last > 0, "{f}");
    }
}

#[test]
fn fuzz_corpus_replays_without_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/captures/corpus");
    let mut n = 0;
    for target in ["capture", "log"] {
        let Ok(entries) = std::fs::read_dir(dir.join(target)) else {
            panic!("missing corpus {}", dir.join(target).display());
        };
        for e in entries.flatten() {
            let bytes = std::fs::read(e.path()).expect("read");
            let _ = run(&bytes);
            n += 1;
        }
    }
    assert!(n >= 10, "corpus too small: {n}");
}

/// A pcap (raw IPv4 link type) of `calls` finished calls, one every 50 ms.
fn many_calls(calls: usize) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0]);
    out.extend_from_slice(&228u32.to_le_bytes());
    for i in 0..calls {
        let t = 1_795_660_000.0 + i as f64 * 0.05;
        let id = format!("bulk-{i}");
        let hdr = |start: &str, cseq: &str, tag: &str| {
            format!(
                "{start}\r\nVia: SIP/2.0/UDP 10.9.0.1:5060;branch=z9hG4bK{i}{cseq}\r\nFrom: <sip:u{}@h>;tag=f\r\nTo: <sip:1001@h>{tag}\r\nCall-ID: {id}\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n",
                i % 50
            )
        };
        for (k, m) in [
            hdr("INVITE sip:1001@h SIP/2.0", "1 INVITE", ""),
            hdr("SIP/2.0 486 Busy Here", "1 INVITE", ";tag=t"),
            hdr("ACK sip:1001@h SIP/2.0", "1 ACK", ";tag=t"),
        ]
        .iter()
        .enumerate()
        {
            let mut ip = vec![
                0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 9, 0, 1, 10, 9, 0, 2,
            ];
            let total = (20 + 8 + m.len()) as u16;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            ip.extend_from_slice(&5060u16.to_be_bytes());
            ip.extend_from_slice(&5060u16.to_be_bytes());
            ip.extend_from_slice(&((8 + m.len()) as u16).to_be_bytes());
            ip.extend_from_slice(&[0, 0]);
            ip.extend_from_slice(m.as_bytes());
            let ts = t + k as f64 * 0.01;
            out.extend_from_slice(&(ts as u32).to_le_bytes());
            out.extend_from_slice(&(((ts.fract()) * 1e6) as u32).to_le_bytes());
            out.extend_from_slice(&(ip.len() as u32).to_le_bytes());
            out.extend_from_slice(&(ip.len() as u32).to_le_bytes());
            out.extend_from_slice(&ip);
        }
    }
    out
}

#[test]
fn memory_follows_open_dialogs_not_file_size() {
    let a = run(&many_calls(6000)).expect("bulk capture");
    assert_eq!(a.calls.len(), 6000);
    assert!(a.calls.iter().all(|c| c.final_status == Some(486)));
    // 6000 calls over 300 s, each finished within 20 ms and kept 32 s for late
    // retransmissions: at most ~700 open at once, never all 6000.
    assert!(
        a.stats.peak_open_dialogs < 1000,
        "peak {}",
        a.stats.peak_open_dialogs
    );
    assert_eq!(a.users.len(), 51);
}

#[test]
fn progress_is_reported_with_the_total() {
    let seen = std::cell::RefCell::new(Vec::new());
    let cb = |done: u64, total: u64| seen.borrow_mut().push((done, total));
    let opts = AnalyzeOptions {
        user: None,
        progress: Some(&cb),
        ..Default::default()
    };
    let a = captures::analyze_path(&crate::data("lab_udp.pcap"), &opts).expect("analyze");
    let seen = seen.into_inner();
    let size = std::fs::metadata(crate::data("lab_udp.pcap"))
        .expect("meta")
        .len();
    assert_eq!(seen.last(), Some(&(a.stats.bytes, size)));
    assert_eq!(a.stats.bytes, size);
}

#[test]
fn a_cancelled_analysis_stops_within_one_read() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let bytes = many_calls(20_000);
    // Cancelled before it starts: nothing is read.
    let cancel = AtomicBool::new(true);
    let opts = AnalyzeOptions {
        cancel: Some(&cancel),
        ..Default::default()
    };
    assert!(matches!(
        captures::analyze_reader(&bytes[..], &opts),
        Err(captures::Error::Cancelled)
    ));
    // Cancelled half-way (as the web app does when it stops waiting): the reading stops at the
    // next read instead of going through the rest.
    struct Counting<'a> {
        rest: &'a [u8],
        served: &'a AtomicU64,
        cancel: &'a AtomicBool,
    }
    impl std::io::Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.rest.len().min(buf.len());
            buf[..n].copy_from_slice(&self.rest[..n]);
            self.rest = &self.rest[n..];
            if self.served.fetch_add(n as u64, Ordering::Relaxed) + n as u64 >= 1 << 20 {
                self.cancel.store(true, Ordering::Relaxed);
            }
            Ok(n)
        }
    }
    let cancel = AtomicBool::new(false);
    let served = AtomicU64::new(0);
    let opts = AnalyzeOptions {
        cancel: Some(&cancel),
        ..Default::default()
    };
    let reader = Counting {
        rest: &bytes,
        served: &served,
        cancel: &cancel,
    };
    assert!(matches!(
        captures::analyze_reader(reader, &opts),
        Err(captures::Error::Cancelled)
    ));
    let read = served.load(Ordering::Relaxed);
    assert!(
        read <= 3 << 20,
        "read {read} of {} bytes; cancelled after 1 MiB",
        bytes.len()
    );
    // A log is cancelled the same way.
    let log = "INVITE sip:1001@h SIP/2.0\r\nCall-ID: x\r\n\r\n".repeat(50_000);
    let cancel = AtomicBool::new(true);
    let opts = AnalyzeOptions {
        cancel: Some(&cancel),
        ..Default::default()
    };
    assert!(matches!(
        captures::analyze_reader(log.as_bytes(), &opts),
        Err(captures::Error::Cancelled)
    ));
}
