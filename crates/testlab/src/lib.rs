//! testlab (placeholder; being written).
