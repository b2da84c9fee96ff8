//! pcap and pcapng reading: streams blocks through `pcap-parser` into the packet decoder.

use std::io::Read;

use pcap_parser::pcapng::Block;
use pcap_parser::{PcapBlockOwned, PcapError, create_reader};

use crate::analysis::Analyzer;
use crate::net::{NetDecoder, WarnKind};

/// Reader buffer: large enough for any jumbo frame block, small enough to be constant memory.
const BUFFER: usize = 1 << 20;
const PROGRESS_STEP: u64 = 1 << 23;

struct Iface {
    linktype: i32,
    resolution: u64,
    offset: u64,
}

/// Read a whole capture; damage ends the reading with a warning. Returns the bytes read.
/// Several files of one capture go through the same `net` (flows and fragments continue
/// across files); the caller calls `net.finish` after the last.
pub(crate) fn read_capture<R: Read + Send>(
    input: R,
    net: &mut NetDecoder,
    an: &mut Analyzer<'_>,
    progress: &mut dyn FnMut(u64),
) -> u64 {
    let mut reader = match create_reader(BUFFER, input) {
        Ok(r) => r,
        Err(e) => {
            an.warn(WarnKind::File, header_problem(&e));
            return 0;
        }
    };
    let mut legacy = Iface {
        linktype: 1,
        resolution: 1_000_000,
        offset: 0,
    };
    let mut ifaces: Vec<Iface> = Vec::new();
    let mut last_ts = 0.0;
    let mut last_incomplete: Option<u64> = None;
    let mut next_progress = PROGRESS_STEP;
    loop {
        let consumed = reader.consumed() as u64;
        if consumed >= next_progress {
            progress(consumed);
            next_progress = consumed + PROGRESS_STEP;
        }
        match reader.next() {
            Ok((len, block)) => {
                last_incomplete = None;
                match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        legacy.linktype = h.network.0;
                        // Magic a1b23c4d: nanosecond timestamps.
                        if h.magic_number == 0xa1b2_3c4d || h.magic_number == 0x4d3c_b2a1 {
                            legacy.resolution = 1_000_000_000;
                        }
                    }
                    PcapBlockOwned::Legacy(b) => {
                        let ts =
                            f64::from(b.ts_sec) + f64::from(b.ts_usec) / legacy.resolution as f64;
                        last_ts = ts;
                        let caplen = (b.caplen as usize).min(b.data.len());
                        net.packet(legacy.linktype, ts, &b.data[..caplen], consumed, an);
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => ifaces.clear(),
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        ifaces.push(Iface {
                            linktype: idb.linktype.0,
                            resolution: idb.ts_resolution().unwrap_or(1_000_000).max(1),
                            offset: u64::try_from(idb.ts_offset()).unwrap_or(0),
                        });
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        match ifaces.get(epb.if_id as usize) {
                            Some(i) => {
                                let ts = pcap_parser::pcapng::build_ts_f64(
                                    epb.ts_high,
                                    epb.ts_low,
                                    i.offset,
                                    i.resolution,
                                );
                                last_ts = ts;
                                let caplen = (epb.caplen as usize).min(epb.data.len());
                                net.packet(i.linktype, ts, &epb.data[..caplen], consumed, an);
                            }
                            None => an.warn(
                                WarnKind::BadPacket,
                                format!(
                                    "packet at offset {consumed} names interface {} that was never described",
                                    epb.if_id
                                ),
                            ),
                        }
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        if let Some(i) = ifaces.first() {
                            let len = (spb.origlen as usize).min(spb.data.len());
                            net.packet(i.linktype, last_ts, &spb.data[..len], consumed, an);
                        }
                    }
                    PcapBlockOwned::NG(_) => {}
                }
                // No shift per block: `refill` moves the (small) remainder when it needs room.
                reader.consume_noshift(len);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                if last_incomplete == Some(consumed) {
                    an.warn(
                        WarnKind::File,
                        format!(
                            "file truncated at offset {consumed}: the last block is incomplete"
                        ),
                    );
                    break;
                }
                last_incomplete = Some(consumed);
                if reader.refill().is_err() {
                    an.warn(WarnKind::File, format!("read error at offset {consumed}"));
                    break;
                }
            }
            Err(PcapError::UnexpectedEof) => {
                an.warn(
                    WarnKind::File,
                    format!("file truncated at offset {consumed}: the last block is incomplete"),
                );
                break;
            }
            Err(PcapError::BufferTooSmall) => {
                an.warn(
                    WarnKind::File,
                    format!(
                        "block at offset {consumed} is larger than {BUFFER} bytes: reading stopped"
                    ),
                );
                break;
            }
            Err(e) => {
                an.warn(
                    WarnKind::File,
                    format!(
                        "corrupt block at offset {consumed} ({}): reading stopped",
                        short(&e)
                    ),
                );
                break;
            }
        }
    }
    reader.consumed() as u64
}

fn short<I>(e: &PcapError<I>) -> String {
    match e {
        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
            format!("parse error {kind:?}")
        }
        PcapError::HeaderNotRecognized => "header not recognised".to_owned(),
        PcapError::ReadError => "read error".to_owned(),
        _ => "format error".to_owned(),
    }
}

fn header_problem<I>(e: &PcapError<I>) -> String {
    match e {
        PcapError::Eof | PcapError::Incomplete(_) | PcapError::UnexpectedEof => {
            "file truncated in its header: no packets".to_owned()
        }
        other => format!("capture header unreadable ({}): no packets", short(other)),
    }
}
