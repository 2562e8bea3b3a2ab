//! Per-document stages, each in its own module with the same shape: a pure function
//! (or a small stateful checker, for dedup) that keeps a document or names the rule
//! that drops it. The driver in `crate::pipeline` does the counting and the ledger.

pub mod dedup;
pub mod filter;
pub mod map;
