//! sip-message (placeholder; being written).
