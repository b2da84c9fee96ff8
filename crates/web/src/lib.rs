//! web (placeholder; being written).
