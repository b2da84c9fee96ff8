//! captures (placeholder; being written).
