//! runbook (placeholder; being written).
