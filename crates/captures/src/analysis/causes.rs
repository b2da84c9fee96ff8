//! Causes: what went wrong in a call or registration, in the runbook's terms and plain words.

use serde::Serialize;

use crate::rtp::{MediaProblem, MediaVerdict};

use super::{CallState, Dialog, Kind};

/// What went wrong, in the runbook's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Cause {
    /// Credentials were sent and refused: 403 after Authorization, or 401/407 again (a loop).
    AuthenticationRejected,
    /// 403 without a credentials exchange.
    Forbidden,
    /// TLS errors reported by the client.
    TlsError,
    /// Transport errors reported by the client (connection refused, unreachable, timeouts).
    TransportError,
    /// A request got no final response.
    NoFinalResponse,
    /// The client advertises a private address while the server saw another one (NAT).
    PrivateAddressBehindNat,
    /// 488/415/606, or an SDP answer refusing every audio stream.
    CodecRefused,
    /// 404/484/604: the number or account does not exist.
    UnknownNumber,
    /// 480: the callee is not registered.
    NotRegistered,
    /// 486/600: busy.
    Busy,
    /// 408 from the server: the callee did not answer in time.
    RequestTimeout,
    /// 5xx from the server.
    ServerError,
    /// 603: declined by the callee.
    Declined,
    /// 487 after a CANCEL: the caller hung up before an answer.
    Cancelled,
    /// Any other failure status.
    OtherFailure,
    /// An answered call with RTP in one direction only.
    OneWayAudio,
    /// An answered call with no RTP in either direction.
    NoAudio,
    /// RTP loss or jitter high enough to be heard.
    PoorAudio,
}

/// The runbook outcome a cause points to (`runbook-user-cant-call.md`, step `l2.client_logs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutcomeHint {
    /// `authentication_failure`.
    AuthenticationFailure,
    /// `client_misconfiguration`.
    ClientMisconfiguration,
    /// `tls_failure`.
    TlsFailure,
    /// `network_problem`.
    NetworkProblem,
}

impl OutcomeHint {
    /// The outcome id used by the runbook.
    pub fn id(self) -> &'static str {
        match self {
            OutcomeHint::AuthenticationFailure => "authentication_failure",
            OutcomeHint::ClientMisconfiguration => "client_misconfiguration",
            OutcomeHint::TlsFailure => "tls_failure",
            OutcomeHint::NetworkProblem => "network_problem",
        }
    }
}

impl Cause {
    /// The outcome this cause points to, if it is a fault on the user's side or path.
    pub fn outcome(self, registration: bool) -> Option<OutcomeHint> {
        match self {
            Cause::AuthenticationRejected => Some(OutcomeHint::AuthenticationFailure),
            Cause::Forbidden | Cause::CodecRefused => Some(OutcomeHint::ClientMisconfiguration),
            // An unknown account on REGISTER means the client points at the wrong account/domain.
            Cause::UnknownNumber if registration => Some(OutcomeHint::ClientMisconfiguration),
            Cause::TlsError => Some(OutcomeHint::TlsFailure),
            Cause::TransportError
            | Cause::NoFinalResponse
            | Cause::PrivateAddressBehindNat
            | Cause::OneWayAudio
            | Cause::NoAudio => Some(OutcomeHint::NetworkProblem),
            Cause::RequestTimeout if registration => Some(OutcomeHint::NetworkProblem),
            _ => None,
        }
    }

    fn from_status(code: u16) -> Option<Cause> {
        Some(match code {
            200..=399 => return None,
            403 => Cause::Forbidden,
            404 | 484 | 604 => Cause::UnknownNumber,
            408 => Cause::RequestTimeout,
            415 | 488 | 606 => Cause::CodecRefused,
            480 => Cause::NotRegistered,
            486 | 600 => Cause::Busy,
            487 => Cause::Cancelled,
            603 => Cause::Declined,
            500..=599 => Cause::ServerError,
            _ => Cause::OtherFailure,
        })
    }
}

/// One cause found, in plain words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The cause.
    pub cause: Cause,
    /// The runbook outcome it points to, if any.
    pub outcome: Option<OutcomeHint>,
    /// Plain words for the support agent.
    pub text: String,
    /// The account concerned, when known.
    pub user: Option<String>,
    /// The Call-ID of an example dialog, when the finding comes from one.
    pub call_id: Option<String>,
    /// How many calls, registrations or log lines showed it.
    pub count: u32,
}

/// What every cause rule reads besides the dialog.
struct Facts<'d> {
    registration: bool,
    /// "call" or "registration".
    what: &'static str,
    /// The final status, 0 when there was none.
    status: u16,
    /// `" (warning text)"`, or empty.
    warning: String,
    d: &'d Dialog,
    /// What only a call has; `None` for a registration.
    call: Option<&'d CallState>,
}

impl Facts<'_> {
    fn failed(&self) -> bool {
        !(200..300).contains(&self.status)
    }

    fn challenged(&self) -> bool {
        self.status == 401 || self.status == 407
    }
}

/// A named rule: the cause and its words when it applies.
type Rule = (&'static str, fn(&Facts<'_>) -> Option<(Cause, String)>);

/// What the final response says; evaluated in order, the first rule that applies wins.
const OUTCOME_RULES: &[Rule] = &[
    ("credentials refused", credentials_refused),
    ("challenge never answered", challenge_unanswered),
    ("cancelled before a final response", cancelled),
    ("no final response", no_final_response),
    ("failure status", failure_status),
    ("answer refused the audio stream", answer_refused),
    ("answer codec not offered", codec_not_offered),
];

/// Findings that add to the outcome; every one that applies is reported, in order.
const EXTRA_RULES: &[Rule] = &[("private address behind NAT", behind_nat)];

fn credentials_refused(f: &Facts<'_>) -> Option<(Cause, String)> {
    let d = f.d;
    let refused = d.auth.rejected_after_credentials
        || (d.auth.challenged_after_credentials && f.challenged());
    (f.failed() && refused).then(|| {
        (
            Cause::AuthenticationRejected,
            format!(
                "{} rejected: the server refused the credentials ({} {}{} after {} challenge(s)); check the username and password",
                f.what, f.status, d.final_reason, f.warning, d.auth.rounds
            ),
        )
    })
}

fn challenge_unanswered(f: &Facts<'_>) -> Option<(Cause, String)> {
    (f.failed() && f.challenged()).then(|| {
        (
            Cause::AuthenticationRejected,
            format!(
                "{} challenged ({} {}) and the client never answered with credentials",
                f.what, f.status, f.d.final_reason
            ),
        )
    })
}

fn cancelled(f: &Facts<'_>) -> Option<(Cause, String)> {
    (f.status == 0 && f.call.is_some_and(|c| c.cancelled)).then(|| {
        (
            Cause::Cancelled,
            format!(
                "{} cancelled by the caller before any final response",
                f.what
            ),
        )
    })
}

fn no_final_response(f: &Facts<'_>) -> Option<(Cause, String)> {
    let target = if f.registration { "REGISTER" } else { "INVITE" };
    (f.status == 0).then(|| {
        (
            Cause::NoFinalResponse,
            format!(
                "no final response to the {target} ({} attempt(s), {} retransmission(s)): the server or the path to it did not answer",
                f.d.attempts.max(1),
                f.d.retransmissions
            ),
        )
    })
}

fn failure_status(f: &Facts<'_>) -> Option<(Cause, String)> {
    if !f.failed() {
        return None;
    }
    let cause = Cause::from_status(f.status)?;
    let words = match cause {
        Cause::Forbidden => "forbidden by the server",
        Cause::UnknownNumber if f.registration => "the account is unknown to this server",
        Cause::UnknownNumber => "the dialled number or user does not exist",
        Cause::NotRegistered => "the callee is not registered (offline)",
        Cause::Busy => "the callee is busy",
        Cause::RequestTimeout => "no answer in time (request timeout)",
        Cause::CodecRefused => "no common codec: the media offer was refused",
        Cause::ServerError => "server or gateway error",
        Cause::Declined => "declined by the callee",
        Cause::Cancelled => "cancelled by the caller before an answer",
        _ => "failed",
    };
    let offered = if cause == Cause::CodecRefused {
        offer_had(f.call)
    } else {
        String::new()
    };
    Some((
        cause,
        format!(
            "{} failed: {words} ({} {}{}){offered}",
            f.what, f.status, f.d.final_reason, f.warning
        ),
    ))
}

fn answer_refused(f: &Facts<'_>) -> Option<(Cause, String)> {
    (!f.failed() && f.call.is_some_and(|c| c.answer_refused)).then(|| {
        (
            Cause::CodecRefused,
            format!(
                "no common codec: the SDP answer refused the audio stream (port 0){}",
                offer_had(f.call)
            ),
        )
    })
}

fn codec_not_offered(f: &Facts<'_>) -> Option<(Cause, String)> {
    let call = f.call?;
    (!f.failed() && !call.answer_not_offered.is_empty()).then(|| {
        (
            Cause::CodecRefused,
            format!(
                "codec in the answer not in the offer: the answer has {}, the offer had {}",
                codec_names(&call.answer_not_offered),
                codec_names(&call.offer_pts)
            ),
        )
    })
}

fn behind_nat(f: &Facts<'_>) -> Option<(Cause, String)> {
    let nat = f.d.offer_private.as_ref()?;
    Some((
        Cause::PrivateAddressBehindNat,
        format!("private address behind NAT: {nat}"),
    ))
}

/// `"; the offer had PCMU (0), ..."`, or empty when the offer is unknown (or not a call).
fn offer_had(call: Option<&CallState>) -> String {
    match call {
        Some(c) if !c.offer_pts.is_empty() => {
            format!("; the offer had {}", codec_names(&c.offer_pts))
        }
        _ => String::new(),
    }
}

impl Dialog {
    /// The causes of this dialog, most important first: the outcome rules (first match), then
    /// the extra rules.
    pub(super) fn causes(&self) -> Vec<Finding> {
        let registration = self.kind() == Kind::Registration;
        let user = if registration || self.from_user.is_empty() {
            &self.to_user
        } else {
            &self.from_user
        };
        let facts = Facts {
            registration,
            what: if registration { "registration" } else { "call" },
            status: self.final_status.unwrap_or(0),
            warning: if self.warning.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.warning)
            },
            d: self,
            call: self.call(),
        };
        let outcome = OUTCOME_RULES.iter().find_map(|(_name, rule)| rule(&facts));
        let extra = EXTRA_RULES.iter().filter_map(|(_name, rule)| rule(&facts));
        let mut out: Vec<Finding> = outcome
            .into_iter()
            .chain(extra)
            .map(|(cause, text)| Finding {
                cause,
                outcome: cause.outcome(registration),
                text,
                user: (!user.is_empty()).then(|| user.clone()),
                call_id: Some(self.call_id.clone()),
                count: 1,
            })
            .collect();
        if self.cut_by_end
            && let Some(f) = out.first_mut()
            && matches!(
                f.cause,
                Cause::NoFinalResponse | Cause::AuthenticationRejected
            )
            && !self.auth.rejected_after_credentials
        {
            f.text
                .push_str(" (the input ends before this exchange finished)");
            // An exchange cut by the end of the file proves nothing about the user.
            f.outcome = None;
        }
        out
    }
}

/// Payload types in words: static ones by name (RFC 3551 §6), dynamic ones by number.
pub(super) fn codec_names(pts: &[u16]) -> String {
    pts.iter()
        .map(|pt| match pt {
            0 => "PCMU (0)".to_owned(),
            3 => "GSM (3)".to_owned(),
            4 => "G723 (4)".to_owned(),
            8 => "PCMA (8)".to_owned(),
            9 => "G722 (9)".to_owned(),
            18 => "G729 (18)".to_owned(),
            other => format!("payload type {other}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A media problem of a call as a finding: one-way or no audio points to the network, unless
/// the SDP explains it (a codec the offer lacked: the client; a hold: nobody).
pub(super) fn media_finding(p: MediaProblem, user: &Option<String>, call_id: &str) -> Finding {
    let (cause, outcome, text) = match p {
        MediaProblem::Audio {
            verdict,
            text,
            codec,
            hold,
            ..
        } => {
            let cause = if verdict == MediaVerdict::NoMedia {
                Cause::NoAudio
            } else {
                Cause::OneWayAudio
            };
            let outcome = if hold {
                None
            } else if codec {
                Some(OutcomeHint::ClientMisconfiguration)
            } else {
                cause.outcome(false)
            };
            (cause, outcome, text)
        }
        MediaProblem::Quality(text) => (Cause::PoorAudio, None, text),
    };
    Finding {
        cause,
        outcome,
        text,
        user: user.clone(),
        call_id: Some(call_id.to_owned()),
        count: 1,
    }
}
