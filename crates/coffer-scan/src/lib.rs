//! coffer-scan (being built)
