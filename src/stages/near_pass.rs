//! The near-dedup pass that runs once every document is seen: cluster the band hashes
//! collected during the streaming pass, then copy the documents written so far into
//! `documents.parquet` without the near-duplicates, ledgering each with its cluster,
//! its survivor and the (estimated or verified) Jaccard similarity.
//!
//! Memory is the band table (one band hash per band per document) plus the ids of the
//! documents that survivors' ledger entries name; documents themselves stream from
//! disk. With `confirm = true`, the candidates' shingles are read back first and each
//! candidate pair is checked by exact Jaccard before it is merged.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::Path;

use anyhow::{Context, anyhow};
use arrow_array::{Array, BooleanArray, ListArray, RecordBatch, StringArray, StructArray, UInt32Array, UInt64Array};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;

use crate::document::{Content, Locator, Message};
use crate::ledger::{Entry, Stage};
use crate::output::LedgerWriter;
use crate::recipe::{Recipe, Role};
use crate::report::SourceStats;
use crate::stages::near_dedup::{self, BandTable, MinHasher, NearDedupConfig};

#[derive(Debug, Clone, Serialize)]
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

fn batches(path: &Path) -> anyhow::Result<impl Iterator<Item = anyhow::Result<RecordBatch>>> {
    let f = File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
    let r = ParquetRecordBatchReaderBuilder::try_new(f)
        .and_then(|b| b.with_batch_size(4096).build())
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    Ok(r.map(|b| b.map_err(|e| anyhow!("reading documents back: {e}"))))
}

fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> anyhow::Result<&'a T> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| anyhow!("documents file lacks column `{name}`"))
}

/// The content of row `i` of a documents batch.
fn content_at(b: &RecordBatch, i: usize) -> anyhow::Result<Content> {
    let text = col::<StringArray>(b, "text")?;
    if !text.is_null(i) {
        return Ok(Content::Text(text.value(i).to_string()));
    }
    let msgs = col::<ListArray>(b, "messages")?.value(i);
    let s = msgs.as_any().downcast_ref::<StructArray>().ok_or_else(|| anyhow!("bad messages column"))?;
    let roles = s.column(0).as_any().downcast_ref::<StringArray>().ok_or_else(|| anyhow!("bad role column"))?;
    let contents = s.column(1).as_any().downcast_ref::<StringArray>().ok_or_else(|| anyhow!("bad content column"))?;
    Ok(Content::Messages(
        (0..s.len())
            .map(|j| Message { role: Role::parse(roles.value(j)).unwrap_or(Role::User), content: contents.value(j).to_string() })
            .collect(),
    ))
}

fn parse_id(hex: &str) -> anyhow::Result<u128> {
    u128::from_str_radix(hex, 16).map_err(|_| anyhow!("bad document id `{hex}`"))
}

/// Returns the documents kept, the dropped rows (ordinals in the first file) and the
/// summary for the report.
pub fn run(
    recipe: &Recipe,
    cfg: &NearDedupConfig,
    table: &BandTable,
    pre: &Path,
    out: &Path,
    ledger: &mut LedgerWriter,
    stats: &mut [SourceStats],
) -> anyhow::Result<(u64, HashSet<u64>, NearSummary)> {
    let cands = near_dedup::candidates(table);
    let result = if cfg.confirm {
        let wanted: HashSet<usize> = cands.documents().into_iter().collect();
        let hasher = MinHasher::new(cfg);
        let mut shingles: HashMap<usize, Vec<u64>> = HashMap::with_capacity(wanted.len());
        let mut ordinal = 0usize;
        for b in batches(pre)? {
            let b = b?;
            for i in 0..b.num_rows() {
                if wanted.contains(&ordinal) {
                    shingles.insert(ordinal, near_dedup::shingle_set(&hasher, &content_at(&b, i)?));
                }
                ordinal += 1;
            }
        }
        let mut verify = |a: usize, b: usize| near_dedup::jaccard(&shingles[&a], &shingles[&b]);
        near_dedup::resolve(&cands, cfg, Some(&mut verify))
    } else {
        near_dedup::resolve(&cands, cfg, None)
    };

    let names: HashMap<&str, usize> = recipe.sources.iter().map(|s| (s.name.as_str(), s.index)).collect();
    let referenced: HashSet<usize> = result.referenced().into_iter().collect();
    let mut known: HashMap<usize, (u128, usize)> = HashMap::with_capacity(referenced.len());
    let mut dropped = HashSet::new();
    let mut writer: Option<ArrowWriter<File>> = None;
    let f = File::create(out).with_context(|| format!("cannot create `{}`", out.display()))?;
    let mut f = Some(f);
    let mut ordinal = 0usize;
    let mut kept = 0u64;
    for b in batches(pre)? {
        let b = b?;
        if writer.is_none() {
            writer = Some(ArrowWriter::try_new(f.take().expect("file once"), b.schema(), Some(crate::output::parquet::props()))?);
        }
        let ids = col::<StringArray>(&b, "id")?;
        let sources = col::<StringArray>(&b, "source")?;
        let files = col::<StringArray>(&b, "file")?;
        let rows = col::<UInt64Array>(&b, "row")?;
        let subs = col::<UInt32Array>(&b, "sub")?;
        let chars = col::<UInt64Array>(&b, "chars")?;
        let mut keep = Vec::with_capacity(b.num_rows());
        for i in 0..b.num_rows() {
            let id = parse_id(ids.value(i))?;
            let src = *names.get(sources.value(i)).ok_or_else(|| anyhow!("unknown source `{}`", sources.value(i)))?;
            if referenced.contains(&ordinal) {
                known.insert(ordinal, (id, src));
            }
            let c = stats[src].stage(Stage::NearDedup);
            c.records_in += 1;
            *c.chars_in.get_or_insert(0) += chars.value(i);
            c.chars_out.get_or_insert(0);
            match result.get(ordinal) {
                Some(nd) => {
                    let (survivor_id, survivor_src) = known[&nd.survivor];
                    let matched_id = known.get(&nd.matched).map(|k| k.0).unwrap_or(survivor_id);
                    let reason = nd.drop_reason(survivor_id, matched_id, &recipe.sources[survivor_src].name, cfg.bands);
                    let e = Entry {
                        doc_id: id,
                        source: src,
                        locator: Locator {
                            file: files.value(i).into(),
                            row: rows.value(i),
                            sub: (!subs.is_null(i)).then(|| subs.value(i)),
                        },
                        reason,
                    };
                    stats[src].drop(e.reason.rule);
                    ledger.push(&e, &recipe.sources[src].name)?;
                    dropped.insert(ordinal as u64);
                    keep.push(false);
                }
                None => {
                    let c = stats[src].stage(Stage::NearDedup);
                    c.records_out += 1;
                    *c.chars_out.get_or_insert(0) += chars.value(i);
                    kept += 1;
                    keep.push(true);
                }
            }
            ordinal += 1;
        }
        let filtered = arrow_select::filter::filter_record_batch(&b, &BooleanArray::from(keep))?;
        writer.as_mut().expect("writer").write(&filtered)?;
    }
    match writer {
        Some(w) => {
            w.close().context("closing documents.parquet")?;
        }
        None => {
            // No document at all: an empty file with the documents schema.
            let w = ArrowWriter::try_new(f.take().expect("file"), crate::output::parquet::documents_schema(), Some(crate::output::parquet::props()))?;
            w.close()?;
        }
    }
    let summary = NearSummary {
        ngram: cfg.ngram,
        bands: cfg.bands,
        rows: cfg.rows,
        confirm: cfg.confirm,
        threshold: cfg.threshold,
        documents: ordinal as u64,
        candidate_pairs: result.candidate_pairs as u64,
        rejected_pairs: result.rejected_pairs as u64,
        clusters: result.clusters as u64,
        dropped: dropped.len() as u64,
    };
    Ok((kept, dropped, summary))
}
