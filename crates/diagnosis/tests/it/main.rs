//! Diagnosis from exported server state: each scenario directory under `test_data/scenarios/`
//! holds a server's exports (the file backend's format), the network probes' results in
//! shorthand (`expect.toml`'s `[probes]`: the network is the one part replayed, not run — the
//! lab tests in the CLI crate run it for real), the agent's answers, and the outcome and step
//! answers dialtone must reach.

mod scenarios;
mod want;
