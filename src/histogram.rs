//! Length histograms with fixed power-of-two buckets: `[0, 1)`, `[1, 2)`, `[2, 4)`,
//! `[4, 8)`, … The edges do not depend on the data, so two builds of the same documents
//! give the same histogram however the work was split, and a histogram of `u64` values
//! has at most 65 buckets.

use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};

const BUCKETS: usize = 65;

#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    counts: [u64; BUCKETS],
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: [0; BUCKETS] }
    }
}

/// One bucket: values `v` with `from <= v < to` (`to` is absent for the last bucket).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Bucket {
    pub from: u64,
    pub to: Option<u64>,
    pub documents: u64,
}

/// The bucket of `v`: 0 for 0, else one more than the position of its highest set bit.
fn bucket(v: u64) -> usize {
    (u64::BITS - v.leading_zeros()) as usize
}

fn bounds(i: usize) -> (u64, Option<u64>) {
    match i {
        0 => (0, Some(1)),
        _ => (1u64 << (i - 1), if i < 64 { Some(1u64 << i) } else { None }),
    }
}

impl Histogram {
    pub fn add(&mut self, v: u64) {
        self.counts[bucket(v)] += 1;
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The buckets from the first non-empty one to the last, empty ones between
    /// included; none when nothing was added.
    pub fn buckets(&self) -> Vec<Bucket> {
        let Some(first) = self.counts.iter().position(|&n| n > 0) else {
            return Vec::new();
        };
        let last = self.counts.iter().rposition(|&n| n > 0).expect("a non-empty bucket");
        (first..=last)
            .map(|i| {
                let (from, to) = bounds(i);
                Bucket { from, to, documents: self.counts[i] }
            })
            .collect()
    }
}

impl Serialize for Histogram {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = self.buckets();
        let mut seq = s.serialize_seq(Some(b.len()))?;
        for x in &b {
            seq.serialize_element(x)?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_power_of_two_buckets() {
        let mut h = Histogram::default();
        for v in [0, 1, 2, 3, 4, 7, 8, 1000] {
            h.add(v);
        }
        let b = h.buckets();
        assert_eq!(b[0], Bucket { from: 0, to: Some(1), documents: 1 });
        assert_eq!(b[1], Bucket { from: 1, to: Some(2), documents: 1 });
        assert_eq!(b[2], Bucket { from: 2, to: Some(4), documents: 2 });
        assert_eq!(b[3], Bucket { from: 4, to: Some(8), documents: 2 });
        assert_eq!(b[4], Bucket { from: 8, to: Some(16), documents: 1 });
        // 1000 is in [512, 1024); the empty buckets between are kept.
        assert_eq!(b.last(), Some(&Bucket { from: 512, to: Some(1024), documents: 1 }));
        assert_eq!(b.len(), 11);
        assert_eq!(h.total(), 8);
    }

    #[test]
    fn range_is_trimmed_and_the_top_bucket_is_open() {
        let mut h = Histogram::default();
        assert!(h.buckets().is_empty());
        h.add(u64::MAX);
        h.add(1 << 63);
        assert_eq!(h.buckets(), vec![Bucket { from: 1 << 63, to: None, documents: 2 }]);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, r#"[{"from":9223372036854775808,"to":null,"documents":2}]"#);
    }
}
