//! Issuance policies: the pure rules that decide which names and subjects a policy allows.
pub mod names;
pub mod subject;
