//! The runbook crate's integration tests: loading and validation, walking every branch, Mermaid.

mod invalid;
mod mermaid;
mod paths;
mod robust;
mod valid;
