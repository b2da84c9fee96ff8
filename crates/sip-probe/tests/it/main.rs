//! Integration tests of sip-probe against the real lab (Kamailio + SIPp on loopback, see lab/)
//! and against real local sockets for the conditions the lab cannot produce (silence, garbage).

mod calls;
mod dns;
mod helpers;
mod local;
mod register;
mod tls;
