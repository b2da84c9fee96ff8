//! Integration tests of sip-message: RFC example files with snapshots, round trips, framing,
//! redaction, SDP and the fuzz corpus replay.

mod corpus;
mod frame;
mod messages;
mod net;
mod redact;
mod roundtrip;
mod scan;
mod sdp;
mod uri;
