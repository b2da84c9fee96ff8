//! incidents (placeholder; being written).
