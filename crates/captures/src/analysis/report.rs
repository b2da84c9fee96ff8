//! What an analysis reports: call and registration summaries, ladders, counters.

use serde::Serialize;

use crate::net::Transport;
use crate::rtp::{self, MediaSummary};

use super::{Cause, Finding};

/// The ladder diagram of one dialog: columns, arrows and their labels.
///
/// Labels live in one string per dialog rather than one allocation per message: building the
/// ladder runs for every message of a capture.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ladder {
    /// Columns: the addresses (or "client"/"server" in logs) in order of appearance.
    pub endpoints: Vec<String>,
    /// Arrows, in order (capped at 64).
    pub events: Vec<LadderEvent>,
    pub(super) labels: String,
}

impl Ladder {
    /// The label of an arrow (`INVITE`, `180 Ringing`, ...).
    pub fn label(&self, e: &LadderEvent) -> &str {
        let start = e.label_at as usize;
        self.labels
            .get(start..start + usize::from(e.label_len))
            .unwrap_or("")
    }

    /// Arrows with their labels.
    pub fn iter(&self) -> impl Iterator<Item = (&LadderEvent, &str)> {
        self.events.iter().map(|e| (e, self.label(e)))
    }
}

/// One arrow of a ladder diagram.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LadderEvent {
    /// Seconds since the dialog's first message.
    pub t: f64,
    /// Sender: index into the summary's `endpoints`.
    pub from: u8,
    /// Receiver: index into the summary's `endpoints`.
    pub to: u8,
    pub(super) label_at: u32,
    pub(super) label_len: u16,
    /// Same transaction and message seen before (RFC 3261 §17 retransmission).
    pub retransmission: bool,
}

/// A call (INVITE dialog) as seen in the input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallSummary {
    /// Call-ID.
    pub call_id: String,
    /// Caller (From user).
    pub from_user: String,
    /// Callee (Request-URI user, else To user).
    pub to_user: String,
    /// Time of the first message (seconds; Unix time for captures, log time for logs).
    pub start: f64,
    /// `start` as text.
    pub start_text: String,
    /// Final response to the INVITE, if any (the last one after authentication rounds).
    pub final_status: Option<u16>,
    /// Its reason phrase.
    pub final_reason: String,
    /// INVITE -> first 18x, milliseconds.
    pub post_dial_delay_ms: Option<u64>,
    /// INVITE -> 2xx, milliseconds.
    pub setup_time_ms: Option<u64>,
    /// 2xx -> BYE, milliseconds.
    pub duration_ms: Option<u64>,
    /// Retransmitted requests and responses.
    pub retransmissions: u32,
    /// 401/407 challenges received.
    pub auth_rounds: u32,
    /// Transport of the INVITE.
    pub transport: Transport,
    /// Where the INVITE came from.
    pub client: String,
    /// Where it went.
    pub server: String,
    /// User-Agent of the caller.
    pub user_agent: String,
    /// Warning or Reason text of the final response.
    pub warning: String,
    /// Messages seen.
    pub messages: u32,
    /// Causes, most important first; empty for a successful call.
    pub causes: Vec<Finding>,
    /// The media side: RTP streams from the SDP and the verdict (`None`: the call had no SDP).
    pub media: Option<MediaSummary>,
    /// The ladder (capped at 64 arrows); not serialised.
    #[serde(skip)]
    pub ladder: Ladder,
}

/// A registration (REGISTER transactions sharing a Call-ID).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegistrationSummary {
    /// Call-ID.
    pub call_id: String,
    /// Address-of-record user (To user).
    pub user: String,
    /// Registrar host (Request-URI host).
    pub registrar: String,
    /// First message time.
    pub start: f64,
    /// `start` as text.
    pub start_text: String,
    /// REGISTER requests sent (not counting retransmissions).
    pub attempts: u32,
    /// 401/407 challenges received.
    pub auth_rounds: u32,
    /// The last final response that was not a challenge, or the last challenge.
    pub final_status: Option<u16>,
    /// Its reason phrase.
    pub final_reason: String,
    /// Retransmissions.
    pub retransmissions: u32,
    /// Transport.
    pub transport: Transport,
    /// Where the REGISTER came from.
    pub client: String,
    /// Host in the Contact header.
    pub contact_host: String,
    /// User-Agent.
    pub user_agent: String,
    /// Warning text of the final response.
    pub warning: String,
    /// Causes; empty for a successful registration.
    pub causes: Vec<Finding>,
    /// The ladder (capped at 64 arrows); not serialised.
    #[serde(skip)]
    pub ladder: Ladder,
}

/// Counters over the whole input.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Bytes read (after decompression).
    pub bytes: u64,
    /// Files read (several files of a ring buffer make one analysis).
    pub files: u64,
    /// Packets (captures) or lines (logs) read.
    pub packets: u64,
    /// SIP messages found.
    pub sip_messages: u64,
    /// Seconds between the first and the last message.
    pub duration: f64,
    /// Requests outside calls and registrations (OPTIONS, SUBSCRIBE, ...).
    pub other_requests: u64,
    /// Most dialogs held open at once: memory follows this, not the input size.
    pub peak_open_dialogs: u64,
    /// Calls found (matching the `user` filter), kept or not.
    pub calls: u64,
    /// Registrations found (matching the `user` filter), kept or not.
    pub registrations: u64,
    /// Summaries past `AnalyzeOptions::keep` that were streamed or counted but not kept in the
    /// [`crate::Analysis`]; their findings are still counted.
    pub summaries_not_kept: u64,
    /// RTP and RTCP counters.
    pub media: rtp::MediaStats,
}

/// Per-account counters: the index behind `--user`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UserIndex {
    /// Calls placed or received.
    pub calls: u32,
    /// Of which failed.
    pub failed_calls: u32,
    /// Registrations.
    pub registrations: u32,
    /// Of which failed.
    pub failed_registrations: u32,
}

/// A problem the client wrote in its own log (TLS, transport).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEvent {
    /// Line number (1-based).
    pub line: u64,
    /// TLS or transport.
    pub cause: Cause,
    /// The log line, shortened and with secrets removed.
    pub text: String,
}
