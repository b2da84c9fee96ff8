//! Several files as one capture (rotated ring buffers), and gzip / zstd inputs.

use std::io::Write;
use std::path::{Path, PathBuf};

use captures::AnalyzeOptions;

/// Split a libpcap file into `n` files of consecutive packets, named as `tcpdump -C` does.
fn split(src: &Path, dir: &Path, n: usize) -> Vec<PathBuf> {
    let data = std::fs::read(src).expect("read");
    let (header, mut rest) = data.split_at(24);
    let mut packets = Vec::new();
    while rest.len() >= 16 {
        let caplen = u32::from_le_bytes(rest[8..12].try_into().unwrap()) as usize;
        let (p, r) = rest.split_at(16 + caplen);
        packets.push(p);
        rest = r;
    }
    packets
        .chunks(packets.len().div_ceil(n))
        .enumerate()
        .map(|(i, chunk)| {
            let path = dir.join(if i == 0 {
                "sbc.pcap".to_owned()
            } else {
                format!("sbc.pcap{i}")
            });
            let mut bytes = header.to_vec();
            chunk.iter().for_each(|p| bytes.extend_from_slice(p));
            std::fs::write(&path, bytes).expect("write");
            path
        })
        .collect()
}

fn calls(a: &captures::Analysis) -> Vec<(String, Option<u16>, u32)> {
    let mut v: Vec<_> = a
        .calls
        .iter()
        .map(|c| (c.call_id.clone(), c.final_status, c.messages))
        .collect();
    v.sort();
    v
}

#[test]
fn a_ring_buffer_read_as_one_capture_joins_dialogs_across_files() {
    let whole = crate::analyze("lab_udp.pcap", None);
    let dir = tempfile::tempdir().unwrap();
    let parts = split(&crate::data("lab_udp.pcap"), dir.path(), 12);
    // Any order on the command line: files are read in the order of their first packets.
    let mut given = parts.clone();
    given.reverse();
    let a = captures::analyze_paths(&given, &AnalyzeOptions::default()).expect("analyze");
    assert_eq!(a.stats.files, 12);
    assert_eq!(a.stats.sip_messages, whole.stats.sip_messages);
    // Same calls with the same message counts: none was cut in two at a file boundary.
    assert_eq!(calls(&a), calls(&whole));
    assert_eq!(a.registrations.len(), whole.registrations.len());
    assert_eq!(captures::causes(&a), captures::causes(&whole));
    // A directory does the same.
    let d = captures::analyze_paths(&[dir.path().to_owned()], &AnalyzeOptions::default())
        .expect("analyze dir");
    assert_eq!(calls(&d), calls(&whole));
}

#[test]
fn gzip_and_zstd_files_are_read_as_they_are() {
    let whole = crate::analyze("lab_udp.pcap", None);
    let raw = std::fs::read(crate::data("lab_udp.pcap")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("cap.pcap.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&raw).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let zst = dir.path().join("cap.pcap.zst");
    std::fs::write(&zst, zstd::encode_all(&raw[..], 3).unwrap()).unwrap();
    for f in [&gz, &zst] {
        let a = captures::analyze_path(f, &AnalyzeOptions::default()).expect("analyze");
        assert_eq!(a.stats.bytes, raw.len() as u64, "{}", f.display());
        assert_eq!(calls(&a), calls(&whole), "{}", f.display());
    }
    // A gzip ring buffer: each part compressed.
    let ring = dir.path().join("ring");
    std::fs::create_dir(&ring).unwrap();
    for p in split(&crate::data("lab_udp.pcap"), &ring, 5) {
        let bytes = std::fs::read(&p).unwrap();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&bytes).unwrap();
        std::fs::write(format!("{}.gz", p.display()), enc.finish().unwrap()).unwrap();
        std::fs::remove_file(&p).unwrap();
    }
    let a = captures::analyze_paths(&[ring], &AnalyzeOptions::default()).expect("ring");
    assert_eq!(calls(&a), calls(&whole));
    // A damaged gzip stream is a warning or an error, never a panic.
    let mut cut = std::fs::read(&gz).unwrap();
    cut.truncate(cut.len() / 2);
    std::fs::write(&gz, cut).unwrap();
    let _ = captures::analyze_path(&gz, &AnalyzeOptions::default());
}

#[test]
fn past_the_keep_limit_summaries_stream_and_findings_still_count() {
    let whole = crate::analyze("lab_udp.pcap", None);
    let streamed = std::cell::RefCell::new(0usize);
    let count = |_: captures::Summary<'_>| *streamed.borrow_mut() += 1;
    let opts = AnalyzeOptions {
        keep: Some(3),
        on_summary: None,
        ..Default::default()
    };
    let a = captures::analyze_path(&crate::data("lab_udp.pcap"), &opts).expect("analyze");
    assert_eq!(a.calls.len() + a.registrations.len(), 3);
    let total = whole.calls.len() + whole.registrations.len();
    // Streaming delivers every summary whatever the limit.
    let opts = AnalyzeOptions {
        keep: Some(0),
        on_summary: Some(&count),
        ..Default::default()
    };
    let s = captures::analyze_path(&crate::data("lab_udp.pcap"), &opts).expect("analyze");
    assert!(s.calls.is_empty() && s.registrations.is_empty());
    assert_eq!(*streamed.borrow(), total);
    assert_eq!(a.stats.summaries_not_kept as usize, total - 3);
    assert_eq!(a.stats.calls as usize, whole.calls.len());
    assert!(
        a.warnings.iter().any(|w| w.contains("not listed")),
        "{:?}",
        a.warnings
    );
    // Every finding is still counted, with the same totals per cause.
    let per_cause = |a: &captures::Analysis| {
        let mut m = std::collections::BTreeMap::new();
        for f in captures::causes(a) {
            *m.entry(format!("{:?}", f.cause)).or_insert(0) += f.count;
        }
        m
    };
    assert_eq!(per_cause(&a), per_cause(&whole));
}

/// A copy of a libpcap file with only the packets that carry SIP (no RTP: read in parallel).
fn sip_only(src: &Path, dst: &Path) {
    let data = std::fs::read(src).expect("read");
    let (header, mut rest) = data.split_at(24);
    let mut out = header.to_vec();
    while rest.len() >= 16 {
        let caplen = u32::from_le_bytes(rest[8..12].try_into().unwrap()) as usize;
        let (p, r) = rest.split_at(16 + caplen);
        if p.windows(7).any(|w| w == b"SIP/2.0") {
            out.extend_from_slice(p);
        }
        rest = r;
    }
    std::fs::write(dst, out).expect("write");
}

#[test]
fn several_threads_give_the_result_of_one() {
    for name in ["lab_udp.pcap", "sipp_pairs.pcap", "lab_media.pcap"] {
        let dir = tempfile::tempdir().unwrap();
        for (tag, whole) in [
            ("sip", dir.path().join("whole.pcap")),
            ("all", crate::data(name)),
        ] {
            if tag == "sip" {
                sip_only(&crate::data(name), &whole);
            }
            let parts_dir = dir.path().join(tag);
            std::fs::create_dir(&parts_dir).unwrap();
            let parts = split(&whole, &parts_dir, 7);
            for keep in [None, Some(3)] {
                let run = |threads: usize| {
                    let streamed = std::cell::RefCell::new(Vec::new());
                    let note = |s: captures::Summary<'_>| {
                        streamed
                            .borrow_mut()
                            .push(serde_json::to_string(&s).unwrap());
                    };
                    let opts = AnalyzeOptions {
                        keep,
                        threads,
                        on_summary: Some(&note),
                        ..Default::default()
                    };
                    let a = captures::analyze_paths(&parts, &opts).expect("analyze");
                    let ladders: Vec<_> = a.calls.iter().map(|c| c.ladder.clone()).collect();
                    let value = serde_json::to_value(&a).unwrap();
                    (value, ladders, streamed.into_inner())
                };
                let one = run(1);
                for threads in [2, 3] {
                    let many = run(threads);
                    assert_eq!(
                        many.0, one.0,
                        "{name} {tag} keep {keep:?} {threads} threads"
                    );
                    assert_eq!(many.1, one.1, "{name} {tag} ladders, {threads} threads");
                    assert_eq!(many.2, one.2, "{name} {tag} streamed, {threads} threads");
                }
            }
        }
    }
}
