//! Training shards: tokenized documents are spilled to disk as they are kept (so memory
//! holds one small record per document, not the tokens), then mixed, packed and
//! written in pack order as Megatron indexed datasets.
//!
//! Written per split (`train`, and `valid` when asked for):
//! - `SPLIT.bin` / `SPLIT.idx`: token ids, one sequence per document, each ending with
//!   EOS, in pack order;
//! - `SPLIT.loss.bin` / `SPLIT.loss.idx`: the loss mask (uint8, 1 = trained), same
//!   lengths;
//! - `SPLIT.packs.npy`: int64 pack boundaries in sequence indices (`n_packs + 1`
//!   values, from 0): pack `p` is sequences `packs[p]..packs[p+1]`;
//! - `docs.parquet`: one row per written sequence, both splits;
//! - `tokenizer/`: a copy of the tokenizer files, so the shards decode on their own.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::document::Locator;
use crate::ledger::{DropReason, Entry, Rule};
use crate::output::megatron::{DType, IndexedWriter, write_npy_i64};
use crate::output::parquet::ShardDocsWriter;
use crate::output::{LedgerWriter, Staging};
use crate::pack::{self, Item, MixDrop, Seq, SourceMix, Split};
use crate::recipe::{Overlong, Recipe};
use crate::report::SourceStats;
use crate::tokenize::TargetTokenizer;

/// What is kept in memory per tokenized document.
#[derive(Debug, Clone)]
pub struct TokDoc {
    pub id: u128,
    pub source: usize,
    pub locator: Locator,
    pub content_hash: u128,
    /// The spill part holding its tokens, and the offset of its first token there.
    pub part: u32,
    pub offset: u64,
    pub tokens: u32,
    pub loss: u32,
}

/// Token ids (u32 LE) and mask bytes of the tokenized documents, in parts (one per
/// tokenize task), and the documents in build order.
pub struct Spill {
    /// `(tokens file, mask file)` per part.
    pub parts: Vec<(PathBuf, PathBuf)>,
    pub docs: Vec<TokDoc>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SplitSummary {
    pub documents: u64,
    pub sequences: u64,
    pub packs: u64,
    pub tokens: u64,
    pub loss_tokens: u64,
    /// Real tokens over `packs × seq_len`.
    pub efficiency: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SourceTokens {
    pub source: String,
    /// Tokenized documents kept by every earlier stage.
    pub documents: u64,
    /// Their tokens, before weights and caps.
    pub tokens_before: u64,
    /// Share of all tokens before mixing.
    pub share_before: f64,
    pub weight: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Training sequences and tokens after weights and caps.
    pub train_sequences: u64,
    pub train_tokens: u64,
    /// Share of the training tokens after mixing.
    pub share_after: f64,
    pub valid_tokens: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SpecialToken {
    pub token: String,
    pub id: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenizerInfo {
    pub file: String,
    pub sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_sha256: Option<String>,
    pub vocab_size: usize,
    pub bos: Option<SpecialToken>,
    pub eos: SpecialToken,
    pub pad: Option<SpecialToken>,
}

/// Everything the report and manifest say about the shards.
#[derive(Debug, Clone, Serialize)]
pub struct ShardSummary {
    pub tokenizer: TokenizerInfo,
    pub template: &'static str,
    pub seq_len: u32,
    pub dtype: &'static str,
    pub method: &'static str,
    pub shuffle: bool,
    pub overlong: &'static str,
    pub valid_fraction: f64,
    pub train: SplitSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid: Option<SplitSummary>,
    pub sources: Vec<SourceTokens>,
}

/// Mix, pack and write the shards into the staging folder. Mixing drops go to the
/// ledger and the sources' stats.
pub fn write(
    staging: &Staging,
    recipe: &Recipe,
    tok: &TargetTokenizer,
    spill: Spill,
    ledger: &mut LedgerWriter,
    stats: &mut [SourceStats],
) -> anyhow::Result<ShardSummary> {
    let Spill { parts, docs } = spill;

    let seq_len = tok.seq_len as u32;
    let items: Vec<Item> = docs.iter().map(|d| Item { id: d.id, source: d.source, tokens: d.tokens }).collect();
    let mixes: Vec<SourceMix> =
        recipe.sources.iter().map(|s| SourceMix { weight: s.weight, max_tokens: s.max_tokens }).collect();
    let mixed = pack::mix(&items, &mixes, recipe.seed, recipe.pack.valid_fraction);
    for &(i, why) in &mixed.dropped {
        let d = &docs[i as usize];
        let src = &recipe.sources[d.source];
        let (rule, detail) = match why {
            MixDrop::Weight => (Rule::MixWeight, format!("weight {} left no copy", src.weight)),
            MixDrop::TokenCap => (Rule::MixTokenCap, format!("max_tokens {} reached", src.max_tokens.unwrap_or(0))),
        };
        let e = Entry {
            doc_id: d.id,
            source: d.source,
            locator: d.locator.clone(),
            reason: DropReason::new(rule, Some(d.tokens as f64), detail),
        };
        stats[d.source].drop(rule);
        ledger.push(&e, &src.name)?;
    }

    let dtype = if tok.uses_u16() { DType::U16 } else { DType::I32 };
    // Sequences are read back from the spill in pack order with positioned reads
    // (not a memory map: mapped pages would count as the process's memory, and the
    // spill is as large as the corpus's tokens).
    let mut files = Vec::with_capacity(parts.len());
    for (t, m) in &parts {
        let tf = File::open(t).with_context(|| format!("cannot open `{}`", t.display()))?;
        let mf = File::open(m).with_context(|| format!("cannot open `{}`", m.display()))?;
        files.push((tf, mf));
    }
    let mut tok_buf: Vec<u8> = Vec::new();
    let mut mask_buf: Vec<u8> = Vec::new();
    let mut docs_out = ShardDocsWriter::create(&staging.file("docs.parquet"))?;

    let mut write_split = |name: &str, split: Split, seqs: &[Seq]| -> anyhow::Result<SplitSummary> {
        let packs = pack::pack(seqs, &items, &recipe.pack, seq_len, recipe.seed);
        let eff = pack::efficiency(&packs, &items, seq_len);
        let mut ids = IndexedWriter::create(&staging.file(name), dtype)?;
        let mut loss = IndexedWriter::create(&staging.file(&format!("{name}.loss")), DType::U8)?;
        let mut bounds: Vec<i64> = Vec::with_capacity(packs.len() + 1);
        bounds.push(0);
        let (mut tokens, mut loss_tokens) = (0u64, 0u64);
        let mut seen = std::collections::HashSet::new();
        for (p, pk) in packs.iter().enumerate() {
            for s in pk {
                let d = &docs[s.item as usize];
                use std::os::unix::fs::FileExt;
                let n = d.tokens as usize;
                tok_buf.resize(n * 4, 0);
                mask_buf.resize(n, 0);
                let (tok_file, mask_file) = &files[d.part as usize];
                tok_file.read_exact_at(&mut tok_buf, d.offset * 4).context("reading the token spill")?;
                mask_file.read_exact_at(&mut mask_buf, d.offset).context("reading the mask spill")?;
                let t: Vec<u32> = tok_buf.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
                ids.push(&t)?;
                loss.push(&mask_buf)?;
                let src = &recipe.sources[d.source];
                docs_out.push(split, p as u64, (ids.len() - 1) as u64, d, s.copy, src)?;
                tokens += d.tokens as u64;
                loss_tokens += d.loss as u64;
                seen.insert(s.item);
            }
            bounds.push(ids.len() as i64);
            if p == 0 {
                crate::build::fault::Point::new("finalize").hit("shards");
            }
        }
        ids.finish()?;
        loss.finish()?;
        write_npy_i64(&staging.file(&format!("{name}.packs.npy")), &bounds)?;
        Ok(SplitSummary {
            documents: seen.len() as u64,
            sequences: seqs.len() as u64,
            packs: packs.len() as u64,
            tokens,
            loss_tokens,
            efficiency: (eff * 1e6).round() / 1e6,
        })
    };
    let train = write_split("train", Split::Train, &mixed.train)?;
    let valid = if recipe.pack.valid_fraction > 0.0 { Some(write_split("valid", Split::Valid, &mixed.valid)?) } else { None };
    docs_out.finish()?;
    drop(files);

    // Token mix per source, before and after weights and caps.
    let mut sources: Vec<SourceTokens> = recipe
        .sources
        .iter()
        .map(|s| SourceTokens {
            source: s.name.clone(),
            documents: 0,
            tokens_before: 0,
            share_before: 0.0,
            weight: s.weight,
            max_tokens: s.max_tokens,
            train_sequences: 0,
            train_tokens: 0,
            share_after: 0.0,
            valid_tokens: 0,
        })
        .collect();
    for d in &docs {
        sources[d.source].documents += 1;
        sources[d.source].tokens_before += d.tokens as u64;
    }
    for s in &mixed.train {
        let d = &docs[s.item as usize];
        sources[d.source].train_sequences += 1;
        sources[d.source].train_tokens += d.tokens as u64;
    }
    for s in &mixed.valid {
        let d = &docs[s.item as usize];
        sources[d.source].valid_tokens += d.tokens as u64;
    }
    // Eval sets are never packed: the mix lists the training sources only.
    let mut sources: Vec<SourceTokens> =
        sources.into_iter().zip(&recipe.sources).filter(|(_, s)| s.role == crate::recipe::SourceRole::Train).map(|(t, _)| t).collect();
    let before: u64 = sources.iter().map(|s| s.tokens_before).sum();
    let after: u64 = sources.iter().map(|s| s.train_tokens).sum();
    let share = |n: u64, total: u64| if total == 0 { 0.0 } else { ((n as f64 / total as f64) * 1e4).round() / 1e4 };
    for s in &mut sources {
        s.share_before = share(s.tokens_before, before);
        s.share_after = share(s.train_tokens, after);
    }

    copy_tokenizer(staging, tok)?;
    let special = |p: &Option<(String, u32)>| p.as_ref().map(|(t, i)| SpecialToken { token: t.clone(), id: *i });
    Ok(ShardSummary {
        tokenizer: TokenizerInfo {
            file: "tokenizer/tokenizer.json".to_string(),
            sha256: tok.sha256.clone(),
            config_sha256: tok.config_sha256.clone(),
            vocab_size: tok.vocab_size,
            bos: special(&tok.bos),
            eos: SpecialToken { token: tok.eos.0.clone(), id: tok.eos.1 },
            pad: special(&tok.pad),
        },
        template: tok.template.as_str(),
        seq_len,
        dtype: dtype.name(),
        method: match recipe.pack.method {
            crate::recipe::PackMethod::BestFit => "best-fit",
            crate::recipe::PackMethod::Concat => "concat",
        },
        shuffle: recipe.pack.shuffle,
        overlong: match recipe.pack.overlong {
            Overlong::Drop => "drop",
            Overlong::Truncate => "truncate",
        },
        valid_fraction: recipe.pack.valid_fraction,
        train,
        valid,
        sources,
    })
}

fn copy_tokenizer(staging: &Staging, tok: &TargetTokenizer) -> anyhow::Result<()> {
    let dir = staging.file("tokenizer");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    std::fs::copy(&tok.path, dir.join("tokenizer.json"))
        .with_context(|| format!("cannot copy `{}`", tok.path.display()))?;
    if let Some(c) = &tok.config_path {
        std::fs::copy(c, dir.join("tokenizer_config.json")).with_context(|| format!("cannot copy `{}`", c.display()))?;
    }
    Ok(())
}

/// The file name (relative to the output) and sha256 of every output file but the
/// manifest, the timings and report.html (which shows the manifest), sorted.
pub fn file_hashes(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> anyhow::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let p = e?.path();
            if p.is_dir() {
                walk(base, &p, out)?;
            } else {
                let rel = p.strip_prefix(base).expect("inside base").to_string_lossy().replace('\\', "/");
                if !matches!(rel.as_str(), "manifest.json" | "timings.json" | "report.html") && !rel.starts_with('.') {
                    out.push((rel, crate::hash::sha256_file(&p)?));
                }
            }
        }
        Ok(())
    }
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    /// What finalize holds per document is what docs/ARCHITECTURE.md says it is.
    #[test]
    fn per_document_state_is_as_documented() {
        assert!(std::mem::size_of::<super::TokDoc>() <= 96, "TokDoc is {} bytes", std::mem::size_of::<super::TokDoc>());
        assert!(std::mem::size_of::<crate::pack::Item>() <= 32);
        assert_eq!(std::mem::size_of::<crate::pack::Seq>(), 8);
    }
}
