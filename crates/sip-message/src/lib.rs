//! Pure SIP (RFC 3261) and SDP (RFC 4566) messages: parse, print, typed headers, framing, redaction,
//! and a lean lenient head scanner ([`scan`]) for hot paths.
//!
//! Parsing never fails on peer input: [`parse`] returns whatever message it could recover plus
//! [`Diagnostic`]s describing what was wrong, because a troubleshooting tool must be able to show
//! a malformed answer rather than drop it. Typed header accessors return [`Result`] since a
//! header can be present but unreadable; that is an observation too, never a panic.

mod frame;
mod headers;
mod message;
pub mod net;
mod params;
mod parse;
mod redact;
pub mod scan;
pub mod sdp;
mod typed;
mod uri;
mod uri_text;

pub use frame::{FrameResult, frame};
pub use headers::{Header, Headers, canonical_name, split_list};
pub use message::{Message, Method, Request, Response, default_reason};
pub use net::{is_private, is_private_host};
pub use params::Param;
pub use parse::{Diagnostic, Parsed, Severity, parse};
pub use redact::{REDACTED, redact, redact_text};
pub use scan::{ScanError, Scanned, scan};
pub use typed::{CSeq, Credentials, DigestChallenge, NameAddr, Reason, Via, Warning};
pub use uri::{Scheme, Uri};
pub use uri_text::{host_of, uri_hostport, uri_param};

/// Errors from typed access to a header or from building a value (never from [`parse`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A URI could not be read (RFC 3261 §19.1 / §25.1).
    #[error("invalid uri {input:?}: {reason}")]
    InvalidUri { input: String, reason: &'static str },
    /// A header is present but its value does not follow its grammar.
    #[error("invalid {name} header {value:?}: {reason}")]
    InvalidHeader {
        name: &'static str,
        value: String,
        reason: &'static str,
    },
    /// A header the caller asked for is absent.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// An SDP body could not be read at all.
    #[error("invalid sdp: {0}")]
    InvalidSdp(String),
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
