//! diagnosis (placeholder; being written).
