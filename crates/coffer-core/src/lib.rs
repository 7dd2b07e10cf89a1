//! coffer-core (being built)
pub mod barrier;
pub mod seal;
