//! Tests of sip-events: the HEP codec, event extraction and pairing, the window's store, and a
//! real collector over UDP and TCP.

mod collector;
mod corpus;
mod events;
mod hep;
mod store;
