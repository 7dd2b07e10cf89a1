//! ACL policies: HCL `path "..." { capabilities = [...] }` rules, compiled once per policy set
//! into an `Acl` and cached, so the per-request check is a lookup and never a parse.

mod acl;
mod store;

pub use acl::{Acl, Capabilities, Rules};
pub use store::PolicyStore;
