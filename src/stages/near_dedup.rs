//! Near-duplicate detection: MinHash over word n-gram shingles, LSH banding, and
//! union-find clusters across all sources.
//!
//! The method is the one datatrove uses for FineWeb, with its defaults: 5-word
//! shingles, 112 hash functions split into 14 bands of 8 rows
//! (<https://github.com/huggingface/datatrove/blob/main/src/datatrove/pipeline/dedup/minhash.py>,
//! `MinhashConfig`; the FineWeb write-up, <https://huggingface.co/spaces/HuggingFaceFW/blogpost-fineweb-v1>,
//! gives the same 14 × 8 over 5-grams). Two documents become candidates when all 8
//! minimum hashes of at least one band agree, which happens with probability
//! `1 − (1 − s^8)^14` for Jaccard similarity `s`: 0.92 at `s = 0.8`, 0.99 at 0.85, 0.002
//! at 0.33 ([`NearDedupConfig::candidate_probability`]). Where datatrove permutes with
//! `(a·x + b) mod (2^61 − 1)`, the hash functions here are multiply-add-shift with
//! 32-bit values ([`MinHasher::signature_of`]), an equally universal family that costs a
//! few SIMD instructions per shingle and function instead of a 128-bit product.
//!
//! It runs in passes, so the per-document state is small:
//! 1. **Signatures** ([`MinHasher::band_hashes`], parallel, per document): shingle the
//!    normalised words (see [`super::words`]), take the 112 minima, and keep only the
//!    14 band hashes (one `u64` each, 112 bytes per document) in a [`BandTable`],
//!    indexed in precedence order.
//! 2. **Candidates** ([`candidates`]): for each band, sort `(hash, index)` and link the
//!    members of each bucket (each to the bucket's first member and to its predecessor,
//!    which connects the bucket without listing every pair).
//! 3. **Clusters** ([`resolve`]): optionally verify each candidate pair (exact Jaccard
//!    on the shingle sets, or agreement of full signatures, fetched by a callback for the
//!    few documents involved), union-find over the accepted pairs, and the lowest index
//!    of each cluster (the highest-precedence document) survives.
//!
//! **How similarity is estimated.** Only band hashes are kept, so without verification
//! the Jaccard estimate comes from band agreement: a pair agreeing on `k` of `b` bands
//! gets `(k/b)^(1/r)`, the value of `s` at which `k/b` is the expected agreement
//! `s^r`. It is coarse (one band in 14 reads as 0.72, all 14 as 1.0) but costs no second
//! pass. Where the ledger must hold a precise figure, verification recomputes it for
//! candidate pairs only: exact Jaccard from [`shingle_set`] and [`jaccard`], or
//! signature agreement from [`MinHasher::signature`] and [`Signature::agreement`], and
//! pairs below `threshold` are then not merged. Without verification `threshold` is not
//! used; the banding alone decides, as in datatrove.

use std::collections::HashMap;

use rayon::slice::ParallelSliceMut;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::words::{Word, for_each_word, ngram_hash};
use crate::document::Content;
use crate::ledger::{DropReason, Rule};

/// Near-dedup settings. The default verifies every candidate pair by exact Jaccard
/// (`confirm`, threshold 0.7) and, since verification removes the false candidates,
/// bands more loosely than datatrove to find more true ones: 20 bands of 7 rows (140
/// hashes, against datatrove's 14 × 8 = 112, affordable since the hash functions are
/// cheap) put the candidate probability at one half near a Jaccard of 0.65 instead of
/// 0.72, and at 0.82 for a pair at 0.7. [`NearDedupConfig::unverified`] is
/// datatrove's `MinhashConfig` (5-grams, 14 bands of 8 rows, seed 1), what a recipe gets
/// with `confirm = false`. Measured trade-off: docs/stages.md.
#[derive(Debug, Clone, PartialEq)]
pub struct NearDedupConfig {
    /// Words per shingle.
    pub ngram: usize,
    /// LSH bands.
    pub bands: usize,
    /// Minimum hashes per band.
    pub rows: usize,
    /// With verification, the Jaccard similarity a candidate pair needs to be merged.
    pub threshold: f64,
    /// Seed of the permutations. Runs with different seeds find slightly different pairs.
    pub seed: u64,
    /// Verify candidate pairs by exact Jaccard before merging them.
    pub confirm: bool,
}

impl Default for NearDedupConfig {
    fn default() -> Self {
        NearDedupConfig { ngram: 5, bands: 20, rows: 7, threshold: 0.7, seed: 1, confirm: true }
    }
}

impl NearDedupConfig {
    /// datatrove's banding without verification: candidate pairs are merged as found.
    pub fn unverified() -> Self {
        NearDedupConfig { ngram: 5, bands: 14, rows: 8, threshold: 0.8, seed: 1, confirm: false }
    }

    /// Number of hash functions (`bands × rows`).
    pub fn num_hashes(&self) -> usize {
        self.bands * self.rows
    }

    /// Problems with the settings, if any (for the recipe's validation).
    pub fn check(&self) -> Result<(), String> {
        if self.ngram == 0 {
            return Err("`ngram` must be at least 1".into());
        }
        if self.bands == 0 || self.rows == 0 {
            return Err("`bands` and `rows` must be at least 1".into());
        }
        if self.bands > 255 {
            return Err("`bands` must be at most 255".into());
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(format!("`threshold` must be between 0 and 1, not {}", self.threshold));
        }
        Ok(())
    }

    /// Probability that two documents with Jaccard similarity `s` share a band and so
    /// become candidates: `1 − (1 − s^rows)^bands`.
    pub fn candidate_probability(&self, s: f64) -> f64 {
        1.0 - (1.0 - s.powi(self.rows as i32)).powi(self.bands as i32)
    }

    /// The similarity at which the candidate probability is about one half,
    /// `(1/bands)^(1/rows)` (0.72 for 14 × 8).
    pub fn effective_threshold(&self) -> f64 {
        (1.0 / self.bands as f64).powf(1.0 / self.rows as f64)
    }
}

/// Computes shingles, signatures and band hashes with one set of permutations.
#[derive(Debug, Clone)]
pub struct MinHasher {
    ngram: usize,
    bands: usize,
    rows: usize,
    a: Vec<u64>,
    b: Vec<u64>,
}

/// A full MinHash signature: the minimum of each permutation over a document's shingles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature(pub Vec<u64>);

impl Signature {
    /// Fraction of positions where the two signatures agree: an unbiased estimate of
    /// the Jaccard similarity of the two shingle sets (standard error
    /// `sqrt(s(1−s)/k)`, about 0.04 at `s = 0.8` with 112 hashes, 0.034 with 140).
    pub fn agreement(&self, other: &Signature) -> f64 {
        let k = self.0.len().min(other.0.len());
        if k == 0 {
            return 0.0;
        }
        let eq = self.0.iter().zip(&other.0).filter(|(x, y)| x == y).count();
        eq as f64 / k as f64
    }
}

/// splitmix64: a small, well-mixed generator for the permutation parameters.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `mins[j] = min(mins[j], h_j(x))` over every shingle `x`, for the hash functions
/// `h_j(x) = (a_j·x + b_j) >> 32` on the low 32 bits of `x` (see
/// [`MinHasher::signature_of`]). The inner loop over `j` is what the compiler vectorizes.
#[inline(always)]
fn minima(mins: &mut [u32], a: &[u64], b: &[u64], shingles: &[u64]) {
    let k = mins.len();
    let (a, b) = (&a[..k], &b[..k]);
    for &x in shingles {
        let x = x as u32 as u64;
        for ((m, &a), &b) in mins.iter_mut().zip(a).zip(b) {
            let v = (a.wrapping_mul(x).wrapping_add(b) >> 32) as u32;
            *m = (*m).min(v);
        }
    }
}

/// [`minima`] compiled for AVX2 (four 64-bit lanes per instruction instead of SSE2's
/// two); chosen at run time on CPUs that have it. The values are the same.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn minima_avx2(mins: &mut [u32], a: &[u64], b: &[u64], shingles: &[u64]) {
    minima(mins, a, b, shingles)
}

impl MinHasher {
    pub fn new(cfg: &NearDedupConfig) -> MinHasher {
        let k = cfg.num_hashes();
        let mut state = cfg.seed;
        let mut a = Vec::with_capacity(k);
        let mut b = Vec::with_capacity(k);
        for _ in 0..k {
            a.push(splitmix64(&mut state));
            b.push(splitmix64(&mut state));
        }
        MinHasher { ngram: cfg.ngram.max(1), bands: cfg.bands, rows: cfg.rows, a, b }
    }

    /// The shingle hashes of a word sequence, in order and with repeats. A document shorter than `ngram` words is one shingle of all
    /// its words, so short near-identical documents can still match; no words, no
    /// shingles.
    fn shingles_of_words(&self, words: &[Word]) -> Vec<u64> {
        if words.is_empty() {
            return Vec::new();
        }
        if words.len() < self.ngram {
            return vec![ngram_hash(words)];
        }
        words.windows(self.ngram).map(ngram_hash).collect()
    }

    /// Shingle hashes of a text.
    pub fn shingles(&self, text: &str) -> Vec<u64> {
        let mut words = Vec::with_capacity(text.len() / 5 + 1);
        for_each_word(text, |w| words.push(w));
        self.shingles_of_words(&words)
    }

    /// Shingle hashes of a document's content. A chat's messages are one word stream,
    /// each message preceded by a marker word for its role, so the same turns under
    /// other roles are a different document.
    pub fn content_shingles(&self, content: &Content) -> Vec<u64> {
        match content {
            Content::Text(t) => self.shingles(t),
            Content::Messages(ms) => {
                let mut words = Vec::new();
                for m in ms {
                    let marker = format!("\u{1}role:{}", m.role.as_str());
                    words.push(Word { hash: xxhash_rust::xxh3::xxh3_64(marker.as_bytes()), start: 0, end: 0 });
                    for_each_word(&m.content, |w| words.push(w));
                }
                self.shingles_of_words(&words)
            }
        }
    }

    /// The signature of a set (or multiset) of shingle hashes; `None` when empty.
    ///
    /// Each of the `k` hash functions is Dietzfelbinger's multiply-add-shift,
    /// `h(x) = ((a·x + b) mod 2^64) div 2^32` for a 32-bit key `x` (the low half of the
    /// shingle's hash) and random 64-bit `a`, `b`: strongly universal, with 32-bit values
    /// (M. Dietzfelbinger, "Universal hashing and k-wise independent random variables
    /// via integer arithmetic without primes", STACS 1996, Theorem 3). It needs no
    /// 128-bit product or modular reduction, and the loop over the `k` functions for one
    /// shingle is plain SIMD (a vector multiply, add, shift and minimum per lane group).
    pub fn signature_of(&self, shingles: &[u64]) -> Option<Signature> {
        if shingles.is_empty() {
            return None;
        }
        let mut mins = vec![u32::MAX; self.a.len()];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            unsafe { minima_avx2(&mut mins, &self.a, &self.b, shingles) };
        } else {
            minima(&mut mins, &self.a, &self.b, shingles);
        }
        #[cfg(not(target_arch = "x86_64"))]
        minima(&mut mins, &self.a, &self.b, shingles);
        Some(Signature(mins.into_iter().map(u64::from).collect()))
    }

    /// The full signature of a document (for verifying candidate pairs).
    pub fn signature(&self, content: &Content) -> Option<Signature> {
        self.signature_of(&self.content_shingles(content))
    }

    /// The band hashes of a signature: xxh3 of each band's `rows` minima.
    pub fn bands_of(&self, sig: &Signature) -> BandHashes {
        let mut out = Vec::with_capacity(self.bands);
        let mut buf = Vec::with_capacity(self.rows * 8);
        for (band, chunk) in sig.0.chunks(self.rows).enumerate().take(self.bands) {
            buf.clear();
            for v in chunk {
                buf.extend_from_slice(&v.to_le_bytes());
            }
            out.push(xxh3_64_with_seed(&buf, band as u64));
        }
        BandHashes(out)
    }

    /// The compact per-document state: the band hashes, or `None` for a document with
    /// no words (it can never be a near-duplicate).
    pub fn band_hashes(&self, content: &Content) -> Option<BandHashes> {
        self.signature(content).map(|s| self.bands_of(&s))
    }

    /// Band hashes of plain text already split into words (by [`super::words::words`]).
    pub fn band_hashes_of_words(&self, words: &[Word]) -> Option<BandHashes> {
        self.signature_of(&self.shingles_of_words(words)).map(|s| self.bands_of(&s))
    }

    /// Band hashes of plain text.
    pub fn text_band_hashes(&self, text: &str) -> Option<BandHashes> {
        self.signature_of(&self.shingles(text)).map(|s| self.bands_of(&s))
    }
}

/// One document's band hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BandHashes(pub Vec<u64>);

/// The sorted, deduplicated shingle set of a document, for exact Jaccard.
pub fn shingle_set(hasher: &MinHasher, content: &Content) -> Vec<u64> {
    let mut s = hasher.content_shingles(content);
    s.sort_unstable();
    s.dedup();
    s
}

/// Exact Jaccard similarity of two sorted, deduplicated sets.
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    inter as f64 / (a.len() + b.len() - inter) as f64
}

/// Jaccard estimate from band agreement: `(k/b)^(1/r)`.
pub fn estimate_from_bands(agreeing: usize, bands: usize, rows: usize) -> f64 {
    if bands == 0 {
        return 0.0;
    }
    (agreeing as f64 / bands as f64).powf(1.0 / rows as f64)
}

/// Every document's band hashes, in precedence order (index 0 is kept over all
/// others), stored flat: `bands × 8` bytes per document.
#[derive(Debug, Clone)]
pub struct BandTable {
    bands: usize,
    hashes: Vec<u64>,
    /// Indices of documents without words, sorted.
    missing: Vec<u32>,
}

impl BandTable {
    pub fn new(bands: usize) -> BandTable {
        BandTable { bands, hashes: Vec::new(), missing: Vec::new() }
    }

    /// Appends the next document's band hashes and returns its index.
    pub fn push(&mut self, h: Option<&BandHashes>) -> usize {
        let i = self.len();
        match h {
            Some(h) => {
                assert_eq!(h.0.len(), self.bands, "band count");
                self.hashes.extend_from_slice(&h.0);
            }
            None => {
                self.hashes.extend(std::iter::repeat_n(0, self.bands));
                self.missing.push(i as u32);
            }
        }
        i
    }

    pub fn len(&self) -> usize {
        self.hashes.len() / self.bands.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The band hashes of document `i`, or `None` for a document without words.
    pub fn get(&self, i: usize) -> Option<&[u64]> {
        if self.missing.binary_search(&(i as u32)).is_ok() {
            return None;
        }
        Some(&self.hashes[i * self.bands..(i + 1) * self.bands])
    }

    /// How many bands documents `i` and `j` agree on.
    pub fn agreeing_bands(&self, i: usize, j: usize) -> usize {
        match (self.get(i), self.get(j)) {
            (Some(a), Some(b)) => a.iter().zip(b).filter(|(x, y)| x == y).count(),
            _ => 0,
        }
    }

    /// Bytes held per document.
    pub fn bytes_per_document(&self) -> usize {
        self.bands * 8
    }
}

/// A candidate pair: two documents sharing at least one band bucket, `a < b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub a: u32,
    pub b: u32,
    /// Bands on which they agree.
    pub bands: u16,
}

/// Candidate pairs from LSH buckets, sorted by `(a, b)`.
#[derive(Debug, Clone, Default)]
pub struct Candidates {
    pub pairs: Vec<Pair>,
}

impl Candidates {
    /// The documents in any candidate pair, sorted: those whose shingles or signature a
    /// verifying caller needs to fetch.
    pub fn documents(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self.pairs.iter().flat_map(|p| [p.a as usize, p.b as usize]).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Finds candidate pairs: documents that share a bucket `(band, hash)`. Within a
/// bucket each member is linked to the first (lowest-index) member and to the member
/// before it; that connects the bucket with at most two links per member rather than
/// one per pair, and gives a verifying caller a second chance when the first link
/// fails. Memory while it runs: 16 bytes per document for one band at a time, plus
/// the links.
pub fn candidates(table: &BandTable) -> Candidates {
    let n = table.len();
    let mut links: Vec<(u32, u32)> = Vec::new();
    let mut bucket: Vec<(u64, u32)> = Vec::with_capacity(n);
    for band in 0..table.bands {
        bucket.clear();
        let mut missing = table.missing.iter().peekable();
        for i in 0..n {
            if missing.peek().is_some_and(|&&m| m as usize == i) {
                missing.next();
                continue;
            }
            bucket.push((table.hashes[i * table.bands + band], i as u32));
        }
        bucket.par_sort_unstable();
        let mut s = 0;
        while s < bucket.len() {
            let mut e = s + 1;
            while e < bucket.len() && bucket[e].0 == bucket[s].0 {
                e += 1;
            }
            for k in s + 1..e {
                links.push((bucket[s].1, bucket[k].1));
                if k > s + 1 {
                    links.push((bucket[k - 1].1, bucket[k].1));
                }
            }
            s = e;
        }
        // Keep the list short between bands: the same pairs recur in many bands.
        if links.len() > 1 << 20 {
            links.sort_unstable();
            links.dedup();
        }
    }
    links.sort_unstable();
    links.dedup();
    let pairs = links
        .into_iter()
        .map(|(a, b)| Pair { a, b, bands: table.agreeing_bands(a as usize, b as usize) as u16 })
        .collect();
    Candidates { pairs }
}

/// How a reported similarity was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimilarityMethod {
    /// Estimated from band agreement, `(k/b)^(1/r)`.
    Bands,
    /// Given by the verifying callback (exact Jaccard, or signature agreement).
    Verified,
}

impl SimilarityMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            SimilarityMethod::Bands => "band agreement",
            SimilarityMethod::Verified => "verified",
        }
    }
}

/// A document dropped as a near-duplicate, with its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct NearDuplicate {
    /// Index of the dropped document.
    pub doc: usize,
    /// Dense cluster number, in order of the clusters' survivors.
    pub cluster: usize,
    /// Index of the kept document of the cluster (its lowest index).
    pub survivor: usize,
    /// The document it was found similar to: the survivor when they were compared
    /// directly, otherwise its most similar linked document in the cluster.
    pub matched: usize,
    /// Jaccard similarity with `matched`.
    pub similarity: f64,
    /// Bands `doc` and `matched` agree on.
    pub bands: u16,
    pub method: SimilarityMethod,
}

impl NearDuplicate {
    /// The ledger reason, given the ids the pipeline knows the documents by.
    pub fn drop_reason(&self, survivor_id: u128, matched_id: u128, survivor_source: &str, bands: usize) -> DropReason {
        use crate::hash::hex128;
        let via = match self.method {
            SimilarityMethod::Bands => format!("estimated from {}/{} agreeing bands", self.bands, bands),
            SimilarityMethod::Verified => "verified".to_string(),
        };
        let detail = if self.matched == self.survivor {
            format!(
                "near-duplicate of {} in source `{survivor_source}` (cluster {}, Jaccard {:.3}, {via})",
                hex128(survivor_id),
                self.cluster,
                self.similarity
            )
        } else {
            format!(
                "near-duplicate of {} (Jaccard {:.3}, {via}) in cluster {} whose kept document is {} in source `{survivor_source}`",
                hex128(matched_id),
                self.similarity,
                self.cluster,
                hex128(survivor_id)
            )
        };
        let mut r = DropReason::new(Rule::NearDuplicate, Some(self.similarity), detail);
        r.duplicate_of = Some(survivor_id);
        r
    }
}

/// The outcome of near-dedup over a [`BandTable`].
#[derive(Debug, Clone, Default)]
pub struct NearDedupResult {
    /// Dropped documents, sorted by index.
    pub duplicates: Vec<NearDuplicate>,
    /// Clusters with at least two documents.
    pub clusters: usize,
    /// Candidate pairs considered.
    pub candidate_pairs: usize,
    /// Candidate pairs a verifying callback rejected.
    pub rejected_pairs: usize,
}

impl NearDedupResult {
    /// The evidence for document `i`, when it is dropped.
    pub fn get(&self, i: usize) -> Option<&NearDuplicate> {
        self.duplicates.binary_search_by_key(&i, |d| d.doc).ok().map(|k| &self.duplicates[k])
    }

    pub fn is_dropped(&self, i: usize) -> bool {
        self.get(i).is_some()
    }

    /// The documents the evidence refers to (survivors and matched documents), sorted:
    /// the ones whose ids a second pass must remember to write the ledger. A survivor
    /// always comes before the documents it replaces; a matched document almost always
    /// does (only when a document's sole links go to later documents does it not).
    pub fn referenced(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self.duplicates.iter().flat_map(|d| [d.survivor, d.matched]).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Union-find with the smaller index as root, so a cluster's root is its survivor.
struct MinUnionFind {
    parent: Vec<u32>,
}

impl MinUnionFind {
    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            self.parent[x as usize] = self.parent[p as usize];
            x = p;
        }
        x
    }
    fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent[hi as usize] = lo;
        }
    }
}

/// Clusters candidate pairs and picks survivors. With `verify`, each pair's similarity
/// is what the callback returns for `(a, b)` (exact Jaccard or signature agreement),
/// and a pair below `cfg.threshold` is not merged; without it, every candidate pair is
/// merged and its similarity is estimated from band agreement. Index order is
/// precedence: the lowest index of each cluster survives.
pub fn resolve(
    cands: &Candidates,
    cfg: &NearDedupConfig,
    mut verify: Option<&mut dyn FnMut(usize, usize) -> f64>,
) -> NearDedupResult {
    let docs = cands.documents();
    let local = |i: u32| docs.binary_search(&(i as usize)).expect("document of a pair") as u32;
    let mut uf = MinUnionFind { parent: (0..docs.len() as u32).collect() };
    // Accepted links as (local a, local b, similarity, bands).
    let mut accepted: Vec<(u32, u32, f64, u16)> = Vec::with_capacity(cands.pairs.len());
    let mut rejected = 0;
    let method = if verify.is_some() { SimilarityMethod::Verified } else { SimilarityMethod::Bands };
    for p in &cands.pairs {
        let s = match verify.as_mut() {
            Some(f) => {
                let s = f(p.a as usize, p.b as usize);
                if s < cfg.threshold {
                    rejected += 1;
                    continue;
                }
                s
            }
            None => estimate_from_bands(p.bands as usize, cfg.bands, cfg.rows),
        };
        let (la, lb) = (local(p.a), local(p.b));
        uf.union(la, lb);
        accepted.push((la, lb, s, p.bands));
    }
    // Local ids are in index order, so local roots are survivors too.
    let roots: Vec<u32> = (0..docs.len() as u32).map(|i| uf.find(i)).collect();
    let mut cluster_of: HashMap<u32, usize> = HashMap::new();
    for (i, &r) in roots.iter().enumerate() {
        if r as usize != i || cluster_of.contains_key(&r) {
            continue;
        }
        // A root with no accepted link is not a cluster.
        let next = cluster_of.len();
        cluster_of.insert(r, next);
    }
    // Best evidence per dropped document: a direct link to the survivor wins, then a
    // link to an earlier document (so a streaming pass has seen it already), then the
    // most similar link, then the lowest partner.
    let mut best: HashMap<u32, (u32, f64, u16)> = HashMap::new();
    let mut offer = |d: u32, partner: u32, s: f64, bands: u16, roots: &[u32]| {
        if roots[d as usize] == d {
            return;
        }
        let root = roots[d as usize];
        let rank = |p: u32, s: f64| (p == root, p < d, s, std::cmp::Reverse(p));
        match best.get(&d) {
            Some(&(bp, bs, _)) if rank(bp, bs) >= rank(partner, s) => {}
            _ => {
                best.insert(d, (partner, s, bands));
            }
        }
    };
    for &(a, b, s, bands) in &accepted {
        offer(a, b, s, bands, &roots);
        offer(b, a, s, bands, &roots);
    }
    let mut duplicates: Vec<NearDuplicate> = best
        .into_iter()
        .map(|(d, (partner, s, bands))| {
            let root = roots[d as usize];
            NearDuplicate {
                doc: docs[d as usize],
                cluster: cluster_of[&root],
                survivor: docs[root as usize],
                matched: docs[partner as usize],
                similarity: s,
                bands,
                method,
            }
        })
        .collect();
    duplicates.sort_by_key(|d| d.doc);
    // Roots that only had rejected links are not clusters: renumber densely.
    let mut used: Vec<usize> = duplicates.iter().map(|d| d.cluster).collect();
    used.sort_unstable();
    used.dedup();
    for d in &mut duplicates {
        d.cluster = used.binary_search(&d.cluster).expect("used cluster");
    }
    NearDedupResult { clusters: used.len(), candidate_pairs: cands.pairs.len(), rejected_pairs: rejected, duplicates }
}

/// Candidates and clusters in one call, without verification.
pub fn cluster(table: &BandTable, cfg: &NearDedupConfig) -> NearDedupResult {
    resolve(&candidates(table), cfg, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str) -> Content {
        Content::Text(t.to_string())
    }

    /// splitmix-driven choices for generated test corpora.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            splitmix64(&mut self.0)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn vocabulary(rng: &mut Rng, n: usize) -> Vec<String> {
        const SYL: [&str; 24] = [
            "ka", "lo", "mi", "ne", "tor", "sa", "vel", "dri", "pa", "qu", "ren", "sto", "ul", "ym", "bra", "cel",
            "fo", "gin", "hal", "jo", "mur", "nix", "or", "pel",
        ];
        let mut v: Vec<String> = (0..n)
            .map(|_| {
                let k = 2 + rng.below(3);
                (0..k).map(|_| SYL[rng.below(SYL.len())]).collect()
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// A templated but varied document: fixed phrases with random fillers.
    fn document(rng: &mut Rng, vocab: &[String]) -> String {
        const FRAMES: [&str; 6] = [
            "The {} of the {} was {} by the {}.",
            "In {} the {} and the {} met near {}.",
            "Reports say that {} {} {} with {}.",
            "After the {}, {} said the {} was {}.",
            "Nobody expected {} to {} the {} so {}.",
            "{} and {} are {} in {}.",
        ];
        let sentences = 12 + rng.below(16);
        let mut out = String::new();
        for s in 0..sentences {
            let frame = FRAMES[rng.below(FRAMES.len())];
            let mut parts = frame.split("{}");
            out.push_str(parts.next().unwrap());
            for p in parts {
                out.push_str(&vocab[rng.below(vocab.len())]);
                out.push_str(p);
            }
            out.push(if s % 5 == 4 { '\n' } else { ' ' });
        }
        out
    }

    /// A near-duplicate by small edits: one or two word changes (replace, delete or
    /// insert), plus edits that must not matter (spacing, punctuation, case).
    fn edit(rng: &mut Rng, vocab: &[String], doc: &str) -> String {
        let mut words: Vec<String> = doc.split(' ').map(str::to_string).collect();
        for _ in 0..1 + rng.below(2) {
            let i = rng.below(words.len());
            match rng.below(3) {
                0 => words[i] = vocab[rng.below(vocab.len())].clone(),
                1 if words.len() > 10 => {
                    words.remove(i);
                }
                _ => words.insert(i, vocab[rng.below(vocab.len())].clone()),
            }
        }
        for _ in 0..3 {
            let i = rng.below(words.len());
            match rng.below(4) {
                0 => words[i] = format!("{},", words[i]),
                1 => words[i] = words[i].to_uppercase(),
                2 => words[i] = format!("  {}\n", words[i]),
                _ => words[i] = words[i].replace('.', "!"),
            }
        }
        words.join(" ")
    }

    struct Planted {
        docs: Vec<String>,
        /// (duplicate index, original index)
        dups: Vec<(usize, usize)>,
        /// Documents that share about half their text with another: must be kept.
        partial: Vec<usize>,
    }

    fn planted(seed: u64, distinct: usize, near: usize, partial: usize) -> Planted {
        let mut rng = Rng(seed);
        let vocab = vocabulary(&mut rng, 3000);
        let mut docs: Vec<String> = (0..distinct).map(|_| document(&mut rng, &vocab)).collect();
        let mut dups = Vec::new();
        for _ in 0..near {
            let orig = rng.below(distinct);
            let d = edit(&mut rng, &vocab, &docs[orig]);
            dups.push((docs.len(), orig));
            docs.push(d);
        }
        let mut parts = Vec::new();
        for _ in 0..partial {
            let orig = &docs[rng.below(distinct)];
            let half: String = orig.chars().take(orig.len() / 2).collect();
            let fresh = document(&mut rng, &vocab);
            parts.push(docs.len());
            docs.push(format!("{half} {fresh}"));
        }
        Planted { docs, dups, partial: parts }
    }

    fn table_of(docs: &[String], h: &MinHasher, bands: usize) -> BandTable {
        let mut t = BandTable::new(bands);
        for d in docs {
            t.push(h.text_band_hashes(d).as_ref());
        }
        t
    }

    /// The signature, on whichever path this CPU takes (AVX2 or not), is the minimum of
    /// every hash function over the shingles, computed here one value at a time.
    #[test]
    fn signatures_are_the_minima_of_the_hash_functions() {
        let h = MinHasher::new(&NearDedupConfig::default());
        let mut st = 5u64;
        let xs: Vec<u64> = (0..997).map(|_| splitmix64(&mut st)).collect();
        let want: Vec<u64> = h
            .a
            .iter()
            .zip(&h.b)
            .map(|(&a, &b)| xs.iter().map(|&x| a.wrapping_mul(x as u32 as u64).wrapping_add(b) >> 32).min().unwrap())
            .collect();
        assert_eq!(h.signature_of(&xs).unwrap().0, want);
        let mut portable = vec![u32::MAX; h.a.len()];
        minima(&mut portable, &h.a, &h.b, &xs);
        assert_eq!(portable.into_iter().map(u64::from).collect::<Vec<_>>(), want);
    }

    #[test]
    fn signature_agreement_estimates_jaccard() {
        // Two sets of 2,000 shingles sharing 1,500: Jaccard 1500 / 2500 = 0.6. With 112
        // functions the standard error is about 0.046; allow four of them.
        let h = MinHasher::new(&NearDedupConfig::default());
        let mut st = 11u64;
        let shared: Vec<u64> = (0..1500).map(|_| splitmix64(&mut st)).collect();
        let mut x = shared.clone();
        let mut y = shared;
        x.extend((0..500).map(|_| splitmix64(&mut st)));
        y.extend((0..500).map(|_| splitmix64(&mut st)));
        let (sx, sy) = (h.signature_of(&x).unwrap(), h.signature_of(&y).unwrap());
        assert!(sx.0.iter().all(|&v| v <= u32::MAX as u64));
        let est = sx.agreement(&sy);
        assert!((est - 0.6).abs() < 0.19, "estimate {est}");
        // Order and repeats do not matter: a signature is of the set.
        let mut z = x.clone();
        z.reverse();
        z.extend_from_slice(&x[..100]);
        assert_eq!(h.signature_of(&z).unwrap(), sx);
    }

    #[test]
    fn same_seed_same_bands_and_other_seeds_differ() {
        let cfg = NearDedupConfig::unverified();
        let t = "the quick brown fox jumps over the lazy dog again and again";
        let a = MinHasher::new(&cfg).text_band_hashes(t).unwrap();
        assert_eq!(a, MinHasher::new(&cfg).text_band_hashes(t).unwrap());
        let other = NearDedupConfig { seed: 2, ..cfg.clone() };
        assert_ne!(a, MinHasher::new(&other).text_band_hashes(t).unwrap());
        assert_eq!(a.0.len(), 14);
        assert!(MinHasher::new(&cfg).text_band_hashes(" ... ").is_none());
    }

    #[test]
    fn short_documents_are_one_shingle() {
        let cfg = NearDedupConfig::unverified();
        let h = MinHasher::new(&cfg);
        assert_eq!(h.shingles("Two words").len(), 1);
        assert_eq!(h.text_band_hashes("Two words!"), h.text_band_hashes("two   WORDS"));
        assert_ne!(h.text_band_hashes("Two words"), h.text_band_hashes("Two birds"));
    }

    #[test]
    fn chats_differ_from_texts_and_by_role() {
        use crate::document::Message;
        use crate::recipe::Role;
        let h = MinHasher::new(&NearDedupConfig::unverified());
        let chat = |r: Role| Content::Messages(vec![Message { role: r, content: "one two three four five six".into() }]);
        assert_ne!(h.band_hashes(&chat(Role::User)), h.band_hashes(&chat(Role::Assistant)));
        assert_ne!(h.band_hashes(&chat(Role::User)), h.band_hashes(&text("one two three four five six")));
    }

    #[test]
    fn the_default_verifies_and_bands_below_its_threshold() {
        let cfg = NearDedupConfig::default();
        assert!(cfg.confirm);
        assert_eq!(cfg.num_hashes(), 140, "20 bands of 7 rows");
        // Pairs at the threshold are likelier candidates than with datatrove's banding.
        assert!((cfg.effective_threshold() - 0.652).abs() < 0.001, "{}", cfg.effective_threshold());
        assert!(cfg.candidate_probability(0.7) > 0.8 && cfg.candidate_probability(0.75) > 0.93);
        assert!(NearDedupConfig::unverified().candidate_probability(0.7) < 0.57);
    }

    #[test]
    fn jaccard_and_band_estimates() {
        assert_eq!(jaccard(&[1, 2, 3], &[2, 3, 4]), 0.5);
        assert_eq!(jaccard(&[], &[]), 1.0);
        assert_eq!(estimate_from_bands(14, 14, 8), 1.0);
        assert!((estimate_from_bands(1, 14, 8) - 0.719).abs() < 0.001);
        let cfg = NearDedupConfig::unverified();
        assert!((cfg.candidate_probability(0.8) - 0.924).abs() < 0.001);
        assert!((cfg.effective_threshold() - 0.719).abs() < 0.001);
    }

    #[test]
    fn precedence_decides_the_survivor() {
        let cfg = NearDedupConfig::unverified();
        let h = MinHasher::new(&cfg);
        let base = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega";
        let edited = base.replace("kappa", "KAPPA,").replace(" mu ", "  mu\n");
        let other = "completely unrelated words that share nothing at all with the greek alphabet listed before in this test";
        let docs = vec![other.to_string(), edited.clone(), base.to_string()];
        let r = cluster(&table_of(&docs, &h, cfg.bands), &cfg);
        assert_eq!(r.duplicates.len(), 1);
        let d = &r.duplicates[0];
        assert_eq!((d.doc, d.survivor, d.matched, d.cluster), (2, 1, 1, 0));
        assert_eq!(d.similarity, 1.0, "punctuation, case and spacing do not change shingles");
        assert!(r.get(0).is_none() && r.get(1).is_none());
        let reason = d.drop_reason(11, 11, "a", cfg.bands);
        assert_eq!(reason.rule, Rule::NearDuplicate);
        assert_eq!(reason.duplicate_of, Some(11));
        assert!(reason.detail.contains("source `a`") && reason.detail.contains("14/14"), "{}", reason.detail);
    }

    #[test]
    fn clusters_are_transitive_and_survivor_is_the_lowest_index() {
        // Chain: each document differs from the previous one by one word; the ends are
        // further apart than the neighbours.
        let cfg = NearDedupConfig::unverified();
        let h = MinHasher::new(&cfg);
        let mut rng = Rng(3);
        let vocab = vocabulary(&mut rng, 500);
        let mut words: Vec<String> = (0..120).map(|_| vocab[rng.below(vocab.len())].clone()).collect();
        let mut docs = vec![];
        for k in 0..4 {
            docs.push(words.join(" "));
            words[10 + 30 * k] = "changed".into();
        }
        let r = cluster(&table_of(&docs, &h, cfg.bands), &cfg);
        assert_eq!(r.clusters, 1);
        assert_eq!(r.duplicates.iter().map(|d| (d.doc, d.survivor)).collect::<Vec<_>>(), [(1, 0), (2, 0), (3, 0)]);
        for d in &r.duplicates {
            assert!(d.matched < d.doc, "evidence points back: {d:?}");
        }
        assert_eq!(r.referenced().first(), Some(&0));
    }

    fn score(p: &Planted, r: &NearDedupResult) -> (f64, f64) {
        let dup_of: HashMap<usize, usize> = p.dups.iter().copied().collect();
        let dropped: Vec<usize> = r.duplicates.iter().map(|d| d.doc).collect();
        let true_pos = dropped.iter().filter(|d| dup_of.contains_key(d)).count();
        let precision = if dropped.is_empty() { 1.0 } else { true_pos as f64 / dropped.len() as f64 };
        let recall = true_pos as f64 / p.dups.len() as f64;
        (precision, recall)
    }

    /// 2,000 distinct templated documents, 200 near-duplicates by small edits, and 100
    /// documents that share half their text with another (kept). Measured on this set:
    /// see docs/stages.md.
    #[test]
    fn planted_near_duplicates_precision_recall_and_similarity() {
        let p = planted(42, 2000, 200, 100);
        let cfg = NearDedupConfig::unverified();
        let h = MinHasher::new(&cfg);
        let table = table_of(&p.docs, &h, cfg.bands);
        assert_eq!(table.bytes_per_document(), 112);
        let cands = candidates(&table);
        let r = resolve(&cands, &cfg, None);
        let (precision, recall) = score(&p, &r);
        eprintln!(
            "near-dedup planted set: precision {precision:.4}, recall {recall:.4}, {} candidate pairs, {} clusters",
            r.candidate_pairs, r.clusters
        );
        assert!(recall >= 0.95, "recall {recall}");
        assert!(precision >= 0.98, "precision {precision}");
        for &i in &p.partial {
            assert!(!r.is_dropped(i), "a half-shared document was dropped: {i}");
        }
        // The survivor is the original (lower index) and the estimate is near the truth.
        let sets: HashMap<usize, Vec<u64>> =
            cands.documents().into_iter().map(|i| (i, shingle_set(&h, &text(&p.docs[i])))).collect();
        let mut err_bands = 0.0;
        let mut n = 0;
        for &(dup, orig) in &p.dups {
            let Some(d) = r.get(dup) else { continue };
            let truth = jaccard(&sets[&dup], &sets[&orig]);
            if d.matched == orig {
                err_bands += (d.similarity - truth).abs();
                n += 1;
            }
        }
        let mae_bands = err_bands / n as f64;
        eprintln!("band-agreement estimate: mean absolute error {mae_bands:.4} over {n} pairs");
        assert!(n as f64 >= 0.9 * p.dups.len() as f64);
        assert!(mae_bands <= 0.05, "band estimate error {mae_bands}");

        // Verified by full signatures: a finer estimate, same decisions.
        let sigs: HashMap<usize, Signature> =
            cands.documents().into_iter().map(|i| (i, h.signature(&text(&p.docs[i])).unwrap())).collect();
        let mut by_sig = |a: usize, b: usize| sigs[&a].agreement(&sigs[&b]);
        let cfg_sig = NearDedupConfig { threshold: 0.7, ..cfg.clone() };
        let rs = resolve(&cands, &cfg_sig, Some(&mut by_sig));
        let (ps, rcs) = score(&p, &rs);
        let mut err_sig = 0.0;
        let mut m = 0;
        for &(dup, orig) in &p.dups {
            if let Some(d) = rs.get(dup)
                && d.matched == orig
            {
                err_sig += (d.similarity - jaccard(&sets[&dup], &sets[&orig])).abs();
                m += 1;
            }
        }
        let mae_sig = err_sig / m as f64;
        eprintln!("signature-verified: precision {ps:.4}, recall {rcs:.4}, estimate error {mae_sig:.4}");
        assert!(rcs >= 0.95 && ps >= 0.98);
        assert!(mae_sig <= 0.03, "signature estimate error {mae_sig}");
    }

    #[test]
    fn exact_confirmation_rejects_pairs_below_threshold() {
        let p = planted(7, 300, 40, 0);
        let cfg = NearDedupConfig { threshold: 0.8, ..Default::default() };
        let h = MinHasher::new(&cfg);
        let table = table_of(&p.docs, &h, cfg.bands);
        let cands = candidates(&table);
        let sets: HashMap<usize, Vec<u64>> =
            cands.documents().into_iter().map(|i| (i, shingle_set(&h, &text(&p.docs[i])))).collect();
        let mut exact = |a: usize, b: usize| jaccard(&sets[&a], &sets[&b]);
        let r = resolve(&cands, &cfg, Some(&mut exact));
        for d in &r.duplicates {
            assert_eq!(d.method, SimilarityMethod::Verified);
            assert!(d.similarity >= 0.8);
            assert_eq!(d.similarity, jaccard(&sets[&d.doc], &sets[&d.matched]));
        }
        let (precision, recall) = score(&p, &r);
        assert!(precision >= 0.98 && recall >= 0.9, "{precision} {recall}");
        // An impossible threshold rejects every pair and drops nothing.
        let strict = NearDedupConfig { threshold: 1.01, ..cfg };
        let r = resolve(&cands, &strict, Some(&mut exact));
        assert!(r.duplicates.is_empty());
        assert_eq!(r.rejected_pairs, cands.pairs.len());
    }

    #[test]
    fn config_checks() {
        assert!(NearDedupConfig::unverified().check().is_ok());
        assert!(NearDedupConfig { ngram: 0, ..Default::default() }.check().is_err());
        assert!(NearDedupConfig { threshold: 1.5, ..Default::default() }.check().is_err());
        assert_eq!(NearDedupConfig::unverified().num_hashes(), 112);
    }

    /// Throughput of band hashing; run with
    /// `cargo test --release --lib near_dedup::tests::bench -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_band_hashes_per_mb() {
        let p = planted(1, 5000, 0, 0);
        let bytes: usize = p.docs.iter().map(|d| d.len()).sum();
        let h = MinHasher::new(&NearDedupConfig::unverified());
        let t = std::time::Instant::now();
        let mut table = BandTable::new(14);
        for d in &p.docs {
            table.push(h.text_band_hashes(d).as_ref());
        }
        let sig = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let r = cluster(&table, &NearDedupConfig::unverified());
        let cl = t.elapsed().as_secs_f64();
        let mb = bytes as f64 / 1e6;
        eprintln!(
            "band hashes: {mb:.1} MB in {sig:.3} s = {:.1} MB/s on one core; clustering {} docs {cl:.3} s ({} dups)",
            mb / sig,
            p.docs.len(),
            r.duplicates.len()
        );
    }
}
