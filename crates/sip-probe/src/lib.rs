//! sip-probe (placeholder; being written).
