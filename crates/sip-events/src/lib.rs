//! SIP events over HEP: dialtone as a HEPv3 capture endpoint keeping a bounded, persisted,
//! recent window of SIP events per account.
//!
//! Production Kamailio servers send their trace to a capture server over HEPv3 (siptrace
//! `duplicate_uri` with `hep_mode_on`) far more often than into the `sip_trace` table. The
//! [`Collector`] is that endpoint: it listens on UDP and TCP (the same port, 9060 by HOMER
//! convention), decodes each packet ([`hep`], pure), reads its SIP payload with `sip-message`
//! and keeps only what a "can't call" diagnosis needs ([`events`]): REGISTER, INVITE, BYE and
//! CANCEL requests and the responses of REGISTER and INVITE. Requests and responses are paired
//! by Call-ID and CSeq into **registration attempts** ([`RegAttemptEvent`]) and **call outcomes**
//! ([`CallEvent`]).
//!
//! The window is one SQLite file (WAL; `events.sqlite` in dialtone's data directory) written by
//! one [`EventStore`] in batches (every [`StoreConfig::batch_interval`] or
//! [`StoreConfig::batch_max`] messages); a committed batch survives a crash of the process.
//! Bounds, all from [`StoreConfig`]: at most `max_events` message rows (default 1,000,000) and
//! nothing older than `max_age` (default 7 days), pruned oldest first; registration and call rows
//! go with the messages that made them; at most `queue_capacity` messages (default 50,000) wait
//! in memory, and past that new ones are dropped and counted ([`Counts::dropped`]), never
//! queued. Rows are compact: no message bodies, no credentials (only the `username` of an
//! Authorization header), every text field cut at [`events::MAX_FIELD`] bytes.
//!
//! [`EventWindow`] reads the file from any process: registration attempts and calls of an
//! account, the parties of calls by Call-ID (to join call records that have only Call-IDs), an
//! account's timeline, and how fresh the window is. Every read is bounded in rows
//! ([`store::MAX_READ_ROWS`]) and time ([`store::READ_TIMEOUT`]).
//!
//! Pairing rules (the same in memory within a batch and in SQL across batches): a registration
//! attempt takes its time, account, source, transport, user agent and credentials' username from
//! the first copy of its request, and its result from the last final response (a provisional one
//! only while no final was seen). A call takes its parties from the first INVITE seen (the
//! dialled number is that INVITE's Request-URI user), its result from the deciding response (a
//! 2xx beats everything, later CSeqs beat earlier ones, a final beats a provisional), its answer
//! time from the first 2xx and its end from the first BYE or CANCEL.

pub mod collector;
pub mod events;
pub mod hep;
pub mod store;
pub mod synth;

pub use collector::{Collector, CollectorStats, Counts, Ingest};
pub use events::{CallEvent, CallParties, RegAttemptEvent, SipRecord, TimelineEvent};
pub use hep::{HepError, HepPacket};
pub use store::{DEFAULT_FILE, EventStore, EventWindow, StoreConfig, WindowStats};

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything that can go wrong outside HEP decoding (which has [`HepError`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("events file {path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "no events file at {0} (`dialtone collect` creates it; is it collecting into this file?)"
    )]
    NoWindow(PathBuf),
    #[error("cannot listen for HEP on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "events file {path} has layout {found}, newer than this dialtone knows ({known}): upgrade dialtone or use another file"
    )]
    Layout {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("the events file did not answer within {0:?}")]
    Timeout(std::time::Duration),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
