//! End-to-end tests of the `dialtone` binary: incidents, the interactive walk, runbooks,
//! captures, probes and diagnoses against a real lab, and the architecture's invariants.

mod architecture;
mod bounds;
mod capture;
mod config;
mod diagnose;
mod events;
mod hardening;
mod incident;
mod probe;
mod report;
mod rulebook;
mod serve;
mod support;
mod variants;
mod webhook;
mod work;
