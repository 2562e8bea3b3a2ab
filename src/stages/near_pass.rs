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
    /// How many clusters have each size (the survivor and its near-duplicates), by
    /// size.
    #[serde(default)]
    pub cluster_sizes: Vec<ClusterSize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClusterSize {
    pub size: u64,
    pub clusters: u64,
}

/// Cluster sizes from the cluster number of every dropped document.
pub fn cluster_sizes(dropped_clusters: impl IntoIterator<Item = usize>) -> Vec<ClusterSize> {
    let mut per_cluster: std::collections::BTreeMap<usize, u64> = Default::default();
    for c in dropped_clusters {
        *per_cluster.entry(c).or_default() += 1;
    }
    let mut by_size: std::collections::BTreeMap<u64, u64> = Default::default();
    for n in per_cluster.values() {
        *by_size.entry(n + 1).or_default() += 1;
    }
    by_size.into_iter().map(|(size, clusters)| ClusterSize { size, clusters }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_sizes_count_the_survivor() {
        let sizes = cluster_sizes([0, 0, 1, 2, 2, 2]);
        assert_eq!(sizes, vec![ClusterSize { size: 2, clusters: 1 }, ClusterSize { size: 3, clusters: 1 }, ClusterSize { size: 4, clusters: 1 }]);
        assert!(cluster_sizes([]).is_empty());
    }
}

