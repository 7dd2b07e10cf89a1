//! coffer-http (being built)
