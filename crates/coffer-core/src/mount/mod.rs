//! The mount table (what is mounted where, persisted one entry per mount) and the router that
//! maps a request path to its mount by longest prefix.

mod router;
mod table;

pub use router::{Route, RouteTable, Target};
pub use table::{MountConfig, MountEntry, Table};
