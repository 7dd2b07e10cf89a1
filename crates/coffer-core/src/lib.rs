//! coffer-core (being built)
