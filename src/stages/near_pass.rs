//! What the near-dup pass (`crate::build::passes::near`) reports.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NearSummary {
    pub ngram: usize,
    pub bands: usize,
    pub rows: usize,
    pub confirm: bool,
    pub threshold: f64,
    pub documents: u64,
    pub candidate_pairs: u64,
    pub rejected_pairs: u64,
    pub clusters: u64,
    pub dropped: u64,
}

