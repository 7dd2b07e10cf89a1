//! Reports: a table for people, JSON for tools, SARIF 2.1.0 for code-scanning dashboards.

pub mod json;
pub mod sarif;
pub mod table;
