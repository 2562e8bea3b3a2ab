//! Per-document stages, each in its own module with the same shape: a pure function
//! (or a small stateful checker, for dedup) that keeps a document or names the rule
//! that drops it. The driver in `crate::pipeline` does the counting and the ledger.
//!
//! Near-dedup and decontamination need state across documents (band hashes of every
//! document; an index of evaluation items) and so come as passes: compute per
//! document in parallel, then decide once over the compact state.

pub mod decontam;
pub mod dedup;
pub mod eval;
pub mod near_pass;
pub mod filter;
pub mod map;
pub mod near_dedup;
pub mod quality;
pub mod words;
