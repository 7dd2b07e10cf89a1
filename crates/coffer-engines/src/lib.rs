//! coffer-engines (being built)
