//! Mixing and packing: which tokenized documents go into the shards, how often, and in
//! which training sequence.
//!
//! All choices are seeded hashes of the recipe seed and the document id, never a
//! random stream, so they are the same on every run and thread count.
//!
//! - **Split.** A document goes to the validation split when its draw is below
//!   `valid_fraction`; all its copies go with it, so nothing leaks across the split.
//!   Weights and caps shape the training mix only; the validation split keeps one copy
//!   of each of its documents.
//! - **Weight.** `w = k + f`: every training document of the source appears `k` times,
//!   and the first `round(f × n)` documents in seeded order once more. `0.5` keeps half,
//!   `3` repeats each three times, `0` keeps none.
//! - **Token cap.** `max_tokens` walks the source's copies in seeded order (first
//!   copies first) and stops before the cap would be passed.
//! - **Packing.** `best-fit`: best-fit-decreasing (longest first, each into the pack
//!   with the least room that still fits it; O(n log n) with an ordered map);
//!   `concat`: in seeded order, each into the current pack until one does not fit.
//!   Documents are never split. Packs are then shuffled (Fisher-Yates with a seeded
//!   SplitMix64) unless `shuffle = false`.

use std::collections::BTreeMap;

use crate::hash;
use crate::recipe::{Pack, PackMethod};

/// What mixing needs to know about one tokenized document.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: u128,
    pub source: usize,
    pub tokens: u32,
}

/// Per-source mixing settings.
#[derive(Debug, Clone, Copy)]
pub struct SourceMix {
    pub weight: f64,
    pub max_tokens: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Split {
    Train,
    Valid,
}

/// One sequence to write: a document (index into the items) and which copy it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seq {
    pub item: u32,
    pub copy: u32,
}

/// Why a training document ended with no copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MixDrop {
    Weight,
    TokenCap,
}

#[derive(Debug, Default)]
pub struct Mixed {
    pub train: Vec<Seq>,
    pub valid: Vec<Seq>,
    /// Training documents that got no copy, and why.
    pub dropped: Vec<(u32, MixDrop)>,
}

fn draw(seed: u64, salt: &str, id: u128) -> u64 {
    let mut key = Vec::with_capacity(salt.len() + 16);
    key.extend_from_slice(salt.as_bytes());
    key.extend_from_slice(&id.to_le_bytes());
    xxhash_rust::xxh3::xxh3_64_with_seed(&key, seed)
}

pub fn split_of(seed: u64, id: u128, valid_fraction: f64) -> Split {
    if valid_fraction > 0.0 && hash::unit_interval(seed, &[b"valid".as_slice(), &id.to_le_bytes()].concat()) < valid_fraction {
        Split::Valid
    } else {
        Split::Train
    }
}

/// Decide splits and copies for every item (items in pipeline order).
pub fn mix(items: &[Item], mixes: &[SourceMix], seed: u64, valid_fraction: f64) -> Mixed {
    let mut out = Mixed::default();
    let mut per_source: Vec<Vec<u32>> = vec![Vec::new(); mixes.len()];
    for (i, it) in items.iter().enumerate() {
        match split_of(seed, it.id, valid_fraction) {
            Split::Valid => out.valid.push(Seq { item: i as u32, copy: 0 }),
            Split::Train => per_source[it.source].push(i as u32),
        }
    }
    let mut train: Vec<Seq> = Vec::new();
    for (src, idxs) in per_source.iter().enumerate() {
        let m = mixes[src];
        let mut order = idxs.clone();
        order.sort_by_key(|&i| (draw(seed, "mix", items[i as usize].id), i));
        let k = m.weight.floor() as u32;
        let extra = ((m.weight - m.weight.floor()) * order.len() as f64).round() as usize;
        let mut copies: Vec<u32> = vec![k; order.len()];
        for c in copies.iter_mut().take(extra) {
            *c += 1;
        }
        // Copy-major walk in seeded order, so a cap keeps first copies before repeats.
        let mut seqs = Vec::new();
        let max_copy = copies.iter().copied().max().unwrap_or(0);
        for copy in 0..max_copy {
            for (pos, &i) in order.iter().enumerate() {
                if copies[pos] > copy {
                    seqs.push(Seq { item: i, copy });
                }
            }
        }
        let mut kept_any = vec![false; order.len()];
        let pos_of: std::collections::HashMap<u32, usize> = order.iter().enumerate().map(|(p, &i)| (i, p)).collect();
        let mut total = 0u64;
        let mut capped = false;
        for s in seqs {
            let n = items[s.item as usize].tokens as u64;
            if let Some(cap) = m.max_tokens
                && (capped || total + n > cap)
            {
                capped = true;
                continue;
            }
            total += n;
            kept_any[pos_of[&s.item]] = true;
            train.push(s);
        }
        for (pos, &i) in order.iter().enumerate() {
            if !kept_any[pos] {
                out.dropped.push((i, if copies[pos] == 0 { MixDrop::Weight } else { MixDrop::TokenCap }));
            }
        }
    }
    // Sequences in pipeline order of their documents, then copy, so packing input does
    // not depend on how sources were walked.
    train.sort_by_key(|s| (s.item, s.copy));
    out.dropped.sort_by_key(|d| d.0);
    out.train = train;
    out
}

/// Packs: each a list of sequences whose token counts sum to at most `seq_len`.
pub fn pack(seqs: &[Seq], items: &[Item], cfg: &Pack, seq_len: u32, seed: u64) -> Vec<Vec<Seq>> {
    let len = |s: &Seq| items[s.item as usize].tokens;
    let key = |s: &Seq| draw(seed, "pack", items[s.item as usize].id ^ ((s.copy as u128) << 100));
    let mut packs: Vec<Vec<Seq>> = Vec::new();
    let mut used: Vec<u32> = Vec::new();
    match cfg.method {
        PackMethod::BestFit => {
            let mut order: Vec<Seq> = seqs.to_vec();
            order.sort_by_key(|s| (std::cmp::Reverse(len(s)), key(s), s.item, s.copy));
            // room → packs with exactly that much room left (ordered by index).
            let mut by_room: BTreeMap<(u32, usize), ()> = BTreeMap::new();
            for s in order {
                let n = len(&s);
                let fit = by_room.range((n, 0)..).next().map(|(&k, _)| k);
                match fit {
                    Some((room, p)) => {
                        by_room.remove(&(room, p));
                        packs[p].push(s);
                        used[p] += n;
                        by_room.insert((room - n, p), ());
                    }
                    None => {
                        let p = packs.len();
                        packs.push(vec![s]);
                        used.push(n);
                        by_room.insert((seq_len - n, p), ());
                    }
                }
            }
        }
        PackMethod::Concat => {
            let mut order: Vec<Seq> = seqs.to_vec();
            order.sort_by_key(|s| (key(s), s.item, s.copy));
            for s in order {
                let n = len(&s);
                match used.last() {
                    Some(&u) if u + n <= seq_len => {
                        *used.last_mut().expect("a pack exists") += n;
                        packs.last_mut().expect("a pack exists").push(s);
                    }
                    _ => {
                        packs.push(vec![s]);
                        used.push(n);
                    }
                }
            }
        }
    }
    if cfg.shuffle {
        let mut rng = SplitMix64(seed ^ 0x5e_ed0f_9ac5);
        for i in (1..packs.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            packs.swap(i, j);
        }
    }
    packs
}

/// Real tokens over capacity (`packs × seq_len`).
pub fn efficiency(packs: &[Vec<Seq>], items: &[Item], seq_len: u32) -> f64 {
    if packs.is_empty() {
        return 0.0;
    }
    let real: u64 = packs.iter().flatten().map(|s| items[s.item as usize].tokens as u64).sum();
    real as f64 / (packs.len() as u64 * seq_len as u64) as f64
}

/// SplitMix64 (Steele, Lea, Flood 2014), a tiny seeded generator for the shuffle.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(lens: &[u32], source: usize) -> Vec<Item> {
        lens.iter().enumerate().map(|(i, &t)| Item { id: 1000 + i as u128 + (source as u128) * 1_000_000, source, tokens: t }).collect()
    }

    fn cfg(method: PackMethod) -> Pack {
        Pack { method, ..Pack::default() }
    }

    #[test]
    fn weights_keep_half_or_repeat() {
        let it = items(&[10; 100], 0);
        let m = mix(&it, &[SourceMix { weight: 0.5, max_tokens: None }], 1, 0.0);
        assert_eq!(m.train.len(), 50);
        assert_eq!(m.dropped.len(), 50);
        assert!(m.dropped.iter().all(|d| d.1 == MixDrop::Weight));
        let m = mix(&it, &[SourceMix { weight: 3.0, max_tokens: None }], 1, 0.0);
        assert_eq!(m.train.len(), 300);
        let m = mix(&it, &[SourceMix { weight: 1.25, max_tokens: None }], 1, 0.0);
        assert_eq!(m.train.len(), 125);
    }

    #[test]
    fn token_cap_keeps_first_copies_first() {
        let it = items(&[10; 10], 0);
        let m = mix(&it, &[SourceMix { weight: 2.0, max_tokens: Some(125) }], 1, 0.0);
        assert_eq!(m.train.len(), 12);
        let firsts = m.train.iter().filter(|s| s.copy == 0).count();
        assert_eq!(firsts, 10, "every document once before any repeat");
        assert!(m.dropped.is_empty());
    }

    #[test]
    fn valid_split_is_seeded_and_whole() {
        let it = items(&[10; 1000], 0);
        let m = mix(&it, &[SourceMix { weight: 2.0, max_tokens: None }], 9, 0.1);
        assert!((60..140).contains(&m.valid.len()), "{}", m.valid.len());
        let valid: std::collections::HashSet<u32> = m.valid.iter().map(|s| s.item).collect();
        assert!(m.train.iter().all(|s| !valid.contains(&s.item)), "no document in both splits");
        assert_eq!(m.train.len(), 2 * (1000 - m.valid.len()));
    }

    #[test]
    fn best_fit_never_overfills_and_beats_concat() {
        let lens: Vec<u32> = (0..500).map(|i| 1 + (i * 7919 % 900) as u32).collect();
        let it = items(&lens, 0);
        let seqs: Vec<Seq> = (0..it.len() as u32).map(|i| Seq { item: i, copy: 0 }).collect();
        let bf = pack(&seqs, &it, &cfg(PackMethod::BestFit), 1024, 3);
        let cc = pack(&seqs, &it, &cfg(PackMethod::Concat), 1024, 3);
        for p in bf.iter().chain(cc.iter()) {
            assert!(p.iter().map(|s| it[s.item as usize].tokens).sum::<u32>() <= 1024);
        }
        let total: usize = bf.iter().map(|p| p.len()).sum();
        assert_eq!(total, 500, "every sequence packed once");
        let (e_bf, e_cc) = (efficiency(&bf, &it, 1024), efficiency(&cc, &it, 1024));
        assert!(e_bf > 0.95, "best-fit efficiency {e_bf}");
        assert!(e_bf >= e_cc, "{e_bf} < {e_cc}");
    }

    #[test]
    fn packing_is_deterministic_and_shuffled_by_seed() {
        let it = items(&(1..200).collect::<Vec<_>>(), 0);
        let seqs: Vec<Seq> = (0..it.len() as u32).map(|i| Seq { item: i, copy: 0 }).collect();
        let a = pack(&seqs, &it, &cfg(PackMethod::BestFit), 256, 3);
        assert_eq!(a, pack(&seqs, &it, &cfg(PackMethod::BestFit), 256, 3));
        assert_ne!(a, pack(&seqs, &it, &cfg(PackMethod::BestFit), 256, 4));
    }
}
