//! coffer-core (being built)
pub mod barrier;
