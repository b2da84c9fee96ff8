//! Client logs and packet captures -> SIP calls and registrations -> causes and ladder diagrams.
//!
//! Entry points: [`analyze_path`] / [`analyze_reader`] build an [`Analysis`]; [`summary_table`],
//! [`ladder_text`], [`ladder_svg`] and [`markdown_section`] render it; [`causes`] lists the
//! findings with the runbook outcome they point to (step `l2.client_logs`).
//!
//! The input is streamed: pcap/pcapng through `pcap-parser`'s buffered reader, logs line by
//! line. Memory depends on the dialogs open at a time, not on the size of the file.

mod analysis;
pub mod input;
mod logs;
mod net;
mod parallel;
mod pcap;
mod render;
pub mod rtp;
pub mod scan;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

pub use analysis::{
    CallSummary, Cause, Finding, Ladder, LadderEvent, LogEvent, OutcomeHint, RegistrationSummary,
    Stats, UserIndex,
};
pub use net::Transport;
pub use render::{ladder_svg, ladder_text, markdown_section, summary_table, time_text};
pub use rtp::{MediaStats, MediaSummary, MediaVerdict, StreamSummary};

/// Errors that stop an analysis before it starts. Damage inside a file is a warning instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Reading the input failed.
    #[error("read error: {0}")]
    Read(#[from] std::io::Error),
    /// No file to read (an empty directory).
    #[error("no input file")]
    NoInput,
    /// Several files were given and this one is not a packet capture.
    #[error(
        "{0} is not a packet capture: several files are read as one capture; analyse a log on its own"
    )]
    NotACapture(PathBuf),
    /// The input is neither a capture nor a text log.
    #[error("unrecognised input: not pcap, pcapng or a text log (first bytes {0})")]
    UnknownFormat(String),
    /// The caller cancelled the analysis ([`AnalyzeOptions::cancel`]).
    #[error("the analysis was cancelled")]
    Cancelled,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of input was read, detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum InputKind {
    /// libpcap capture.
    Pcap,
    /// pcapng capture.
    Pcapng,
    /// baresip log (`baresip -v -s`).
    BaresipLog,
    /// linphone / belle-sip log.
    LinphoneLog,
    /// pjsip / pjsua log.
    PjsipLog,
    /// Any other text log with SIP messages in it.
    TextLog,
}

impl InputKind {
    /// A short human name.
    pub fn name(self) -> &'static str {
        match self {
            InputKind::Pcap => "pcap",
            InputKind::Pcapng => "pcapng",
            InputKind::BaresipLog => "baresip log",
            InputKind::LinphoneLog => "linphone log",
            InputKind::PjsipLog => "pjsip log",
            InputKind::TextLog => "text log",
        }
    }

    /// Whether this is a packet capture.
    pub fn is_capture(self) -> bool {
        matches!(self, InputKind::Pcap | InputKind::Pcapng)
    }
}

/// Options of an analysis.
#[derive(Default)]
pub struct AnalyzeOptions<'a> {
    /// Keep only the calls and registrations of this account or number (From, To or R-URI user).
    pub user: Option<String>,
    /// Called now and then with (bytes done, total bytes; 0 when unknown).
    pub progress: Option<&'a dyn Fn(u64, u64)>,
    /// Keep at most this many call and registration summaries in the [`Analysis`] (`None`: all).
    /// Past it, summaries only go to `on_summary`; their findings are still counted, and
    /// [`Stats::summaries_not_kept`] and a warning say how many were left out. With a limit,
    /// memory depends on the dialogs open at a time, not on the number of calls.
    pub keep: Option<usize>,
    /// Called with every call and registration (after the `user` filter) as soon as it is
    /// summarised, in the order dialogs end: the way to stream results of any size.
    pub on_summary: Option<&'a dyn Fn(Summary<'_>)>,
    /// Stop reading as soon as this turns true (a caller that gave up waiting): the analysis
    /// then ends with [`Error::Cancelled`] within one read of the input (64 KiB).
    pub cancel: Option<&'a AtomicBool>,
    /// Threads that read several capture files (0: one per core; 1: one thread). Each thread
    /// follows a share of the dialogs; the result is the same as on one thread. Captures with
    /// RTP are read on one thread, and so is a single file.
    pub threads: usize,
}

/// A reader that fails once `cancel` is set, so the reading loops stop at their next read.
struct Cancellable<'a, R> {
    inner: R,
    cancel: Option<&'a AtomicBool>,
}

impl<R: Read> Read for Cancellable<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if is_cancelled(self.cancel) {
            return Err(std::io::Error::other("analysis cancelled"));
        }
        self.inner.read(buf)
    }
}

fn is_cancelled(cancel: Option<&AtomicBool>) -> bool {
    cancel.is_some_and(|c| c.load(Ordering::Relaxed))
}

/// One finished call or registration, as passed to [`AnalyzeOptions::on_summary`].
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Summary<'s> {
    /// A call.
    Call(&'s CallSummary),
    /// A registration.
    Registration(&'s RegistrationSummary),
}

impl std::fmt::Debug for AnalyzeOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnalyzeOptions")
            .field("user", &self.user)
            .field("progress", &self.progress.is_some())
            .field("keep", &self.keep)
            .field("on_summary", &self.on_summary.is_some())
            .field("cancel", &self.cancel.is_some())
            .field("threads", &self.threads)
            .finish()
    }
}

/// The result of analysing one capture or log.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// Detected kind of input.
    pub input_kind: InputKind,
    /// Calls, by start time.
    pub calls: Vec<CallSummary>,
    /// Registrations, by start time.
    pub registrations: Vec<RegistrationSummary>,
    /// Every account or number seen (whatever the `user` filter), with counters.
    pub users: BTreeMap<String, UserIndex>,
    /// TLS and transport errors the client wrote in its log.
    pub log_events: Vec<LogEvent>,
    /// Damage and limits met while reading ("truncated packet at offset N", ...).
    pub warnings: Vec<String>,
    /// The findings of every call and registration, kept in `calls`/`registrations` or not,
    /// grouped by cause, account and outcome (client log events are added by [`causes`]).
    pub findings: Vec<Finding>,
    /// RTP streams found without signalling (by their headers), by start time; at most 100
    /// are listed, [`MediaStats::unsignalled_streams`] counts them all.
    pub unsignalled_streams: Vec<StreamSummary>,
    /// Counters.
    pub stats: Stats,
}

/// Analyse a capture or log file (gzip or zstd compressed or not; a directory or glob of
/// capture files is read as one capture, see [`analyze_paths`]).
pub fn analyze_path(path: &Path, opts: &AnalyzeOptions<'_>) -> Result<Analysis> {
    analyze_paths(&[path.to_owned()], opts)
}

/// Analyse several files as one input: directories and globs are expanded, gzip and zstd
/// are decompressed on the fly, and capture files are read one after the other in the time
/// order of their first packets (a ring buffer), so a dialog that spans two files is one call.
/// One file may also be a text log; several text logs are refused (analyse them one by one).
pub fn analyze_paths(paths: &[PathBuf], opts: &AnalyzeOptions<'_>) -> Result<Analysis> {
    let files = input::order(input::expand(paths)?);
    if files.len() == 1 {
        let (reader, total, _) = input::open(&files[0])?;
        return analyze_input(reader, total, opts);
    }
    if files.is_empty() {
        return Err(Error::NoInput);
    }
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    if threads > 1
        && let Some(a) = parallel::analyze(&files, opts, threads)?
    {
        return Ok(a);
    }
    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let mut an = analysis::Analyzer::new(opts.user.clone(), opts.keep, opts.on_summary);
    let mut net = net::NetDecoder::default();
    let mut base = 0u64;
    let mut kind = None;
    for f in &files {
        if is_cancelled(opts.cancel) {
            return Err(Error::Cancelled);
        }
        let (reader, size, _) = input::open(f)?;
        let reader = Cancellable {
            inner: reader,
            cancel: opts.cancel,
        };
        let mut input = BufReader::with_capacity(1 << 16, reader);
        let first = input.fill_buf().map_err(|source| Error::Io {
            path: f.clone(),
            source,
        })?;
        match detect_kind(first) {
            Some(k) if k.is_capture() => {
                kind.get_or_insert(k);
            }
            _ => return Err(Error::NotACapture(f.clone())),
        }
        let mut progress = |done: u64| {
            if let Some(p) = opts.progress {
                p((base + done).min(total), total);
            }
        };
        an.stats.bytes += pcap::read_capture(input, &mut net, &mut an, &mut progress);
        an.stats.files += 1;
        base += size;
    }
    if is_cancelled(opts.cancel) {
        return Err(Error::Cancelled);
    }
    net.finish(&mut an);
    an.stats.packets = net.packets;
    if let Some(p) = opts.progress {
        p(total, total);
    }
    Ok(an.finish(kind.unwrap_or(InputKind::Pcap)))
}

/// Analyse a capture or log from any reader.
pub fn analyze_reader<R: Read + Send>(reader: R, opts: &AnalyzeOptions<'_>) -> Result<Analysis> {
    analyze_input(reader, 0, opts)
}

/// Analyse a capture or log for one account: its own traffic when the filter selects anything;
/// otherwise the whole input, because a client log may name its user differently (a number,
/// a display name). `open` gives a fresh reader each time it is called.
pub fn analyze_for_user<R: Read + Send>(
    mut open: impl FnMut() -> std::io::Result<R>,
    user: &str,
) -> Result<Analysis> {
    let io = |source| Error::Io {
        path: std::path::PathBuf::from("(input)"),
        source,
    };
    let mine = AnalyzeOptions {
        user: Some(user.to_string()),
        ..AnalyzeOptions::default()
    };
    match analyze_reader(open().map_err(io)?, &mine) {
        Ok(a) if a.calls.is_empty() && a.registrations.is_empty() && a.log_events.is_empty() => {
            analyze_reader(open().map_err(io)?, &AnalyzeOptions::default())
        }
        other => other,
    }
}

/// Detect the kind of input from its first bytes.
pub fn detect_kind(first: &[u8]) -> Option<InputKind> {
    if first.len() >= 4 {
        match u32::from_le_bytes([first[0], first[1], first[2], first[3]]) {
            0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 => return Some(InputKind::Pcap),
            0x0a0d_0d0a => return Some(InputKind::Pcapng),
            _ => {}
        }
    }
    if first.is_empty() {
        return Some(InputKind::TextLog);
    }
    // Text: no NUL and mostly printable.
    let binary = first
        .iter()
        .filter(|&&c| c == 0 || (c < 0x20 && !matches!(c, b'\n' | b'\r' | b'\t' | 0x1b)))
        .count();
    if binary * 20 > first.len() {
        return None;
    }
    let has = |s: &str| memchr::memmem::find(first, s.as_bytes()).is_some();
    Some(
        if has("baresip") || has("\n#\nUDP ") || has("\n#\r\nUDP ") {
            InputKind::BaresipLog
        } else if has("belle-sip") || has("linphone") || has("liblinphone") {
            InputKind::LinphoneLog
        } else if has("pjsua") || has("pjsip") || has("--end msg--") || has(" bytes Request msg ") {
            InputKind::PjsipLog
        } else {
            InputKind::TextLog
        },
    )
}

fn analyze_input<R: Read + Send>(
    reader: R,
    total: u64,
    opts: &AnalyzeOptions<'_>,
) -> Result<Analysis> {
    let reader = Cancellable {
        inner: reader,
        cancel: opts.cancel,
    };
    if is_cancelled(opts.cancel) {
        return Err(Error::Cancelled);
    }
    let mut input = BufReader::with_capacity(1 << 16, reader);
    let first = input.fill_buf()?;
    let kind = detect_kind(first).ok_or_else(|| {
        Error::UnknownFormat(
            first
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        )
    })?;
    let mut an = analysis::Analyzer::new(opts.user.clone(), opts.keep, opts.on_summary);
    let mut progress = |done: u64| {
        if let Some(p) = opts.progress {
            p(done, total);
        }
    };
    let timed = if kind.is_capture() {
        let mut net = net::NetDecoder::default();
        let bytes = pcap::read_capture(input, &mut net, &mut an, &mut progress);
        net.finish(&mut an);
        an.stats.packets = net.packets;
        an.stats.bytes = bytes;
        true
    } else {
        let (lines, bytes, any_ts) =
            logs::scan_log(&mut input, &mut an, &mut progress).map_err(|e| {
                if is_cancelled(opts.cancel) {
                    Error::Cancelled
                } else {
                    Error::Read(e)
                }
            })?;
        an.stats.packets = lines;
        an.stats.bytes = bytes;
        if !any_ts && an.stats.sip_messages > 0 {
            an.warn(
                net::WarnKind::Log,
                "the log has no timestamps: delays and durations are not available".to_owned(),
            );
        }
        any_ts
    };
    if is_cancelled(opts.cancel) {
        return Err(Error::Cancelled);
    }
    let bytes = an.stats.bytes;
    progress(bytes);
    let mut a = an.finish(kind);
    if !timed {
        for c in &mut a.calls {
            c.post_dial_delay_ms = None;
            c.setup_time_ms = None;
            c.duration_ms = None;
            c.start_text = String::new();
        }
        for r in &mut a.registrations {
            r.start_text = String::new();
        }
    }
    Ok(a)
}

/// The findings of an analysis: causes grouped by kind and account, the ones pointing to a
/// runbook outcome first, then by count.
pub fn causes(a: &Analysis) -> Vec<Finding> {
    let mut grouped: Vec<Finding> = Vec::new();
    let mut add = |f: &Finding| {
        if let Some(g) = grouped
            .iter_mut()
            .find(|g| g.cause == f.cause && g.user == f.user && g.outcome == f.outcome)
        {
            g.count += f.count;
        } else {
            grouped.push(f.clone());
        }
    };
    a.findings.iter().for_each(&mut add);
    for e in &a.log_events {
        add(&Finding {
            cause: e.cause,
            outcome: e.cause.outcome(false),
            text: format!("the client logged: {}", e.text),
            user: None,
            call_id: None,
            count: 1,
        });
    }
    grouped.sort_by(|x, y| {
        (
            x.outcome.is_none(),
            x.outcome,
            std::cmp::Reverse(x.count),
            x.cause,
        )
            .cmp(&(
                y.outcome.is_none(),
                y.outcome,
                std::cmp::Reverse(y.count),
                y.cause,
            ))
    });
    grouped
}

/// The runbook outcome the analysis points to, if any: the first finding that has one.
pub fn outcome_hint(a: &Analysis) -> Option<OutcomeHint> {
    causes(a).into_iter().find_map(|f| f.outcome)
}
