//! Inputs: files, directories and globs; gzip and zstd read streaming; rotated captures in time order.
//!
//! A ring buffer written by `tcpdump -C/-G` (`sbc.pcap`, `sbc.pcap1`, ..., or one file per
//! interval) is read as one capture: files are ordered by the time of their first packet (by
//! name, numbers compared as numbers, when a file has no readable first packet), so dialogs
//! that span two files are joined. Compression is detected from the first bytes, not the name.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Read-ahead of a decompressor's input.
const BUF: usize = 1 << 16;

/// How an input file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain.
    None,
    /// gzip (RFC 1952), possibly several members.
    Gzip,
    /// Zstandard (RFC 8878).
    Zstd,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// Open a file, decompressing gzip and zstd on the fly. Returns the reader and the size of the
/// file on disk (compressed size for compressed files).
pub fn open(path: &Path) -> Result<(Box<dyn Read + Send>, u64, Compression)> {
    let file = File::open(path).map_err(io_err(path))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut buffered = BufReader::with_capacity(BUF, file);
    let first = buffered.fill_buf().map_err(io_err(path))?;
    let compression = if first.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if first.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    };
    let reader: Box<dyn Read + Send> = match compression {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(buffered).map_err(io_err(path))?)
        }
    };
    Ok((reader, size, compression))
}

/// Expand directories (their regular files, not recursively) and globs (`*` and `?` in the
/// last path component, for shells that did not expand them) into files.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(io_err(p))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file())
                .collect();
            files.sort_by(|a, b| natural_cmp(&a.to_string_lossy(), &b.to_string_lossy()));
            out.extend(files);
            continue;
        }
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !p.exists() && (name.contains('*') || name.contains('?')) {
            let dir = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
                _ => PathBuf::from("."),
            };
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map_err(io_err(&dir))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.is_file()
                        && f.file_name()
                            .is_some_and(|n| wildcard(name.as_bytes(), n.as_encoded_bytes()))
                })
                .collect();
            if files.is_empty() {
                return Err(Error::Io {
                    path: p.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no file matches this pattern",
                    ),
                });
            }
            files.sort_by(|a, b| natural_cmp(&a.to_string_lossy(), &b.to_string_lossy()));
            out.extend(files);
            continue;
        }
        out.push(p.clone());
    }
    Ok(out)
}

/// Order capture files as one capture: by the time of their first packet, then by name.
pub fn order(files: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut keyed: Vec<(Option<f64>, PathBuf)> = files
        .into_iter()
        .map(|f| (first_packet_time(&f), f))
        .collect();
    keyed.sort_by(|(ta, a), (tb, b)| match (ta, tb) {
        (Some(x), Some(y)) if x != y => x.total_cmp(y),
        _ => natural_cmp(&a.to_string_lossy(), &b.to_string_lossy()),
    });
    keyed.into_iter().map(|(_, f)| f).collect()
}

/// Time of the first packet of a capture (libpcap format; pcapng blocks are walked to the
/// first Enhanced Packet Block of interface 0 with microsecond resolution assumed).
pub fn first_packet_time(path: &Path) -> Option<f64> {
    let (mut r, _, _) = open(path).ok()?;
    let mut head = [0u8; 4096];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    let h = &head[..n];
    let u32_at = |at: usize, le: bool| -> Option<u32> {
        let b: [u8; 4] = h.get(at..at + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let magic = u32_at(0, true)?;
    let (le, nanos) = match magic {
        0xa1b2_c3d4 => (true, false),
        0xa1b2_3c4d => (true, true),
        0xd4c3_b2a1 => (false, false),
        0x4d3c_b2a1 => (false, true),
        0x0a0d_0d0a => return pcapng_first_time(h),
        _ => return None,
    };
    let sec = u32_at(24, le)?;
    let frac = u32_at(28, le)?;
    Some(f64::from(sec) + f64::from(frac) / if nanos { 1e9 } else { 1e6 })
}

fn pcapng_first_time(h: &[u8]) -> Option<f64> {
    // Byte order from the Section Header's byte-order magic.
    let bom: [u8; 4] = h.get(8..12)?.try_into().ok()?;
    let le = u32::from_le_bytes(bom) == 0x1a2b_3c4d;
    let rd = |at: usize| -> Option<u32> {
        let b: [u8; 4] = h.get(at..at + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let mut at = 0usize;
    for _ in 0..64 {
        let kind = rd(at)?;
        let len = rd(at + 4)? as usize;
        if kind == 6 {
            let high = u64::from(rd(at + 12)?);
            let low = u64::from(rd(at + 16)?);
            return Some(((high << 32) | low) as f64 / 1e6);
        }
        if len < 12 {
            return None;
        }
        at = at.checked_add(len)?;
    }
    None
}

/// `*` and `?` matching of a file name.
fn wildcard(pat: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while n < name.len() {
        if p < pat.len() && (pat[p] == b'?' || pat[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some(p);
            mark = n;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            n = mark;
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// Compare names with digit runs compared as numbers: `cap2` before `cap10`.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let (na, nb) = (trim_zeros(&a[si..i]), trim_zeros(&b[sj..j]));
            let o = na.len().cmp(&nb.len()).then(na.cmp(nb));
            if o.is_ne() {
                return o;
            }
        } else {
            let o = a[i].cmp(&b[j]);
            if o.is_ne() {
                return o;
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let k = d.iter().position(|&c| c != b'0').unwrap_or(d.len());
    &d[k..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_puts_ring_buffer_files_in_sequence() {
        let mut v = vec!["sbc.pcap10", "sbc.pcap2", "sbc.pcap", "sbc.pcap1"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["sbc.pcap", "sbc.pcap1", "sbc.pcap2", "sbc.pcap10"]);
    }

    #[test]
    fn wildcards_match_file_names() {
        assert!(wildcard(b"sbc.pcap*", b"sbc.pcap12"));
        assert!(wildcard(b"*.pcap.gz", b"x.pcap.gz"));
        assert!(wildcard(b"cap?.pcap", b"cap1.pcap"));
        assert!(!wildcard(b"cap?.pcap", b"cap12.pcap"));
        assert!(!wildcard(b"*.gz", b"x.zst"));
    }
}
