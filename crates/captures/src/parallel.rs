//! Several capture files on several threads, with the result of reading them on one.
//!
//! Every thread reads every file, in order, but follows only a share of the dialogs (by a hash
//! of their Call-ID): a dialog that spans files is joined as on one thread, and the times that
//! decide when ended dialogs are summarised (the sweeps) are the same on every thread, since
//! each one sees every SIP message. At each sweep a thread hands over what it summarised; the
//! calling thread merges the shares in the order one thread would have summarised them, and
//! counts, streams and keeps them (`Analyzer::account`), so the result is the same.
//!
//! RTP ties packets to calls by address across all calls, which a share cannot do: as soon as
//! a thread meets UDP that could be RTP or RTCP, the threads stop and the caller reads the
//! files on one thread instead (other UDP, keep-alives or DNS, only counts for its time).

use std::hash::Hasher;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::Duration;

use crate::analysis::{Analyzer, Done};
use crate::rtp::FxHasher;
use crate::{Analysis, AnalyzeOptions, Cancellable, Error, InputKind, Result, net, pcap};

/// Sweeps a thread may run ahead of the merge (bounds the summaries waiting in memory).
const EPOCHS_AHEAD: usize = 4;

/// What one thread summarised at one sweep (or at the end of the input).
struct Epoch {
    /// Dialogs open on this thread just before the sweep.
    open_before: usize,
    /// Summaries, by start and Call-ID.
    done: Vec<Done>,
}

/// The dialog share of an [`Analyzer`] on a thread of its own.
pub(crate) struct Shard {
    index: u64,
    count: u64,
    pub(crate) done: Vec<Done>,
    tx: SyncSender<Epoch>,
    /// Set on UDP that is not SIP (and when the caller cancels): every thread stops.
    stop: Arc<AtomicBool>,
    pub(crate) saw_media: bool,
}

impl Shard {
    /// Whether this thread follows the dialog with this Call-ID.
    pub(crate) fn mine(&self, call_id: &[u8]) -> bool {
        let mut h = FxHasher::default();
        h.write(call_id);
        let x = h.finish();
        // The high bits: the multiply leaves the low ones poorly mixed.
        let mixed = (x ^ (x >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
        mixed % self.count.max(1) == self.index
    }

    /// Hand over what the last sweep summarised.
    pub(crate) fn epoch(&mut self, open_before: usize) {
        let done = std::mem::take(&mut self.done);
        // A closed channel: the caller gave up on the threads; the reading stops soon.
        let _ = self.tx.send(Epoch { open_before, done });
    }

    /// UDP that could be RTP or RTCP: this input needs one thread.
    pub(crate) fn media(&mut self) {
        self.saw_media = true;
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Read `files` (capture files, in order) on `threads` threads. `None`: they hold media, read
/// them on one thread.
pub(crate) fn analyze(
    files: &[PathBuf],
    opts: &AnalyzeOptions<'_>,
    threads: usize,
) -> Result<Option<Analysis>> {
    // Every file is opened and recognised first, so that a bad one fails before any output.
    let mut kind = None;
    for f in files {
        let (reader, _, _) = crate::input::open(f)?;
        let mut input = BufReader::with_capacity(1 << 12, reader);
        let first = input.fill_buf().map_err(|source| Error::Io {
            path: f.clone(),
            source,
        })?;
        match crate::detect_kind(first) {
            Some(k) if k.is_capture() => {
                kind.get_or_insert(k);
            }
            _ => return Err(Error::NotACapture(f.clone())),
        }
    }
    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let stop = Arc::new(AtomicBool::new(false));
    let done_bytes = AtomicU64::new(0);
    let mut main = Analyzer::new(opts.user.clone(), opts.keep, opts.on_summary);
    let outcome = std::thread::scope(|scope| {
        let mut rxs: Vec<Receiver<Epoch>> = Vec::new();
        let mut handles = Vec::new();
        for index in 0..threads {
            let (tx, rx) = sync_channel(EPOCHS_AHEAD);
            rxs.push(rx);
            let user = opts.user.clone();
            let done_bytes = &done_bytes;
            let stop = Arc::clone(&stop);
            handles.push(scope.spawn(move || {
                let mut an = Analyzer::new(user, None, None);
                an.shard = Some(Shard {
                    index: index as u64,
                    count: threads as u64,
                    done: Vec::new(),
                    tx,
                    stop: Arc::clone(&stop),
                    saw_media: false,
                });
                read_share(files, &mut an, &stop, (index == 0).then_some(done_bytes))
            }));
        }
        let merged = merge(&rxs, &mut main, opts, &stop, &done_bytes, total);
        drop(rxs);
        let ends: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        (merged, ends)
    });
    let (merged, ends) = outcome;
    let cancelled = crate::is_cancelled(opts.cancel);
    let mut ends = ends
        .into_iter()
        .map(|e| e.map_err(|_| Error::Read(std::io::Error::other("a reading thread failed"))))
        .collect::<Result<Vec<_>>>()?;
    if cancelled {
        return Err(Error::Cancelled);
    }
    if !merged || ends.iter().any(|e| e.saw_media) {
        return Ok(None);
    }
    // Everything but the dialogs is the same on every thread: take the first one's.
    let first = ends.swap_remove(0);
    let other_requests: u64 =
        first.stats.other_requests + ends.iter().map(|e| e.stats.other_requests).sum::<u64>();
    main.adopt(first, other_requests);
    if let Some(p) = opts.progress {
        p(total, total);
    }
    Ok(Some(main.finish(kind.unwrap_or(InputKind::Pcap))))
}

/// One thread: every file in order through its own decoder and its share of the dialogs.
fn read_share(
    files: &[PathBuf],
    an: &mut Analyzer<'_>,
    stop: &AtomicBool,
    progress: Option<&AtomicU64>,
) -> crate::analysis::ShareEnd {
    let mut net = net::NetDecoder::default();
    let mut base = 0u64;
    for f in files {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        // Opened and recognised before the threads started.
        let Ok((reader, size, _)) = crate::input::open(f) else {
            break;
        };
        let reader = Cancellable {
            inner: reader,
            cancel: Some(stop),
        };
        let input = BufReader::with_capacity(1 << 16, reader);
        let mut report = |done: u64| {
            if let Some(p) = progress {
                p.store(base + done, Ordering::Relaxed);
            }
        };
        an.stats.bytes += pcap::read_capture(input, &mut net, an, &mut report);
        an.stats.files += 1;
        base += size;
    }
    net.finish(an);
    an.stats.packets = net.packets;
    an.end_share()
}

/// Merge the threads' epochs in order, counting each summary on `main`. `false`: stopped
/// early (media, a cancel, a thread that ended before the others).
fn merge(
    rxs: &[Receiver<Epoch>],
    main: &mut Analyzer<'_>,
    opts: &AnalyzeOptions<'_>,
    stop: &AtomicBool,
    done_bytes: &AtomicU64,
    total: u64,
) -> bool {
    let mut peak = 0usize;
    loop {
        let mut epochs = Vec::with_capacity(rxs.len());
        let mut ended = 0;
        for rx in rxs {
            loop {
                if crate::is_cancelled(opts.cancel) {
                    stop.store(true, Ordering::Relaxed);
                }
                if stop.load(Ordering::Relaxed) {
                    return false;
                }
                match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(e) => {
                        epochs.push(e);
                        break;
                    }
                    Err(RecvTimeoutError::Timeout) => {
                        if let Some(p) = opts.progress {
                            p(done_bytes.load(Ordering::Relaxed).min(total), total);
                        }
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        ended += 1;
                        break;
                    }
                }
            }
        }
        if ended == rxs.len() {
            main.stats.peak_open_dialogs = peak as u64;
            return true;
        }
        if ended > 0 {
            // The threads disagree on the sweeps: cannot happen, but never merge wrongly.
            return false;
        }
        peak = peak.max(epochs.iter().map(|e| e.open_before).sum());
        let mut lists: Vec<std::vec::IntoIter<Done>> =
            epochs.into_iter().map(|e| e.done.into_iter()).collect();
        let mut heads: Vec<Option<Done>> = lists.iter_mut().map(Iterator::next).collect();
        // A k-way merge by (start, Call-ID): each list is in that order already.
        loop {
            let mut best: Option<usize> = None;
            for (i, h) in heads.iter().enumerate() {
                let Some(d) = h else { continue };
                let better = match best.and_then(|b| heads[b].as_ref()) {
                    None => true,
                    Some(b) => {
                        let (ka, kb) = (d.key(), b.key());
                        ka.0.total_cmp(&kb.0).then(ka.1.cmp(kb.1)).is_lt()
                    }
                };
                if better {
                    best = Some(i);
                }
            }
            let Some(i) = best else { break };
            if let Some(d) = heads[i].take() {
                main.account(d);
            }
            heads[i] = lists[i].next();
        }
        if let Some(p) = opts.progress {
            p(done_bytes.load(Ordering::Relaxed).min(total), total);
        }
    }
}
