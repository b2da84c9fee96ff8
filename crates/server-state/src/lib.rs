//! server-state (placeholder; being written).
