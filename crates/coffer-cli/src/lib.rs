//! coffer-cli (being built)
