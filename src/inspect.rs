//! `curate inspect OUT [--pack N]`: one pack of the shards, decoded, with the trained
//! spans marked and each document's source and locator, read only from the output
//! folder (the tokenizer copy in `OUT/tokenizer/`, the shards, `docs.parquet`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use arrow_array::{Array, StringArray, UInt32Array, UInt64Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::output::megatron::{IndexedReader, read_npy_i64};

/// Where a sequence came from, from `docs.parquet`.
#[derive(Debug, Clone)]
struct SeqInfo {
    id: String,
    source: String,
    file: String,
    row: u64,
    sub: Option<u32>,
    copy: u32,
}

/// How trained spans are shown.
#[derive(Debug, Clone, Copy)]
pub enum Marks {
    /// `«` and `»` around trained text (works anywhere, survives copy and paste).
    Brackets,
    /// Green text on a terminal.
    Color,
}

pub fn inspect(out: &Path, split: &str, pack: usize, marks: Marks) -> anyhow::Result<String> {
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("manifest.json"))
            .with_context(|| format!("`{}` has no manifest.json: is it a curate output with shards?", out.display()))?,
    )
    .with_context(|| format!("`{}` is not valid JSON", out.join("manifest.json").display()))?;
    let tok_path = out.join("tokenizer/tokenizer.json");
    let tok = tokenizers::Tokenizer::from_file(&tok_path).map_err(|e| anyhow!("cannot load `{}`: {e}", tok_path.display()))?;
    let ids = IndexedReader::open(&out.join(split))?;
    let loss = IndexedReader::open(&out.join(format!("{split}.loss")))?;
    let bounds = read_npy_i64(&out.join(format!("{split}.packs.npy")))?;
    let n_packs = bounds.len().saturating_sub(1);
    if pack >= n_packs {
        bail!("split `{split}` has {n_packs} packs (0 to {}); there is no pack {pack}", n_packs.saturating_sub(1));
    }
    let infos = seq_infos(&out.join("docs.parquet"), split)?;
    let seq_len = manifest["shards"]["seq_len"].as_u64().unwrap_or(0);

    let (a, b) = (bounds[pack] as usize, bounds[pack + 1] as usize);
    let total: usize = (a..b).map(|i| ids.get(i).map(|v| v.len()).unwrap_or(0)).sum();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "pack {pack} (packs are numbered 0 to {}, in training order; {split}): {} documents, {total} of {seq_len} tokens",
        n_packs - 1,
        b - a
    );
    s.push_str(match marks {
        Marks::Brackets => "text in «…» is trained on (loss mask 1); the rest is context only\n",
        Marks::Color => "green text is trained on (loss mask 1); the rest is context only\n",
    });
    for (k, i) in (a..b).enumerate() {
        let t = ids.get(i).ok_or_else(|| anyhow!("sequence {i} is missing from `{split}.bin`"))?;
        let m = loss.get(i).ok_or_else(|| anyhow!("sequence {i} is missing from `{split}.loss.bin`"))?;
        let info = infos.get(&(i as u64));
        let trained = m.iter().filter(|&&x| x == 1).count();
        match info {
            Some(d) => {
                let sub = d.sub.map(|x| format!("#{x}")).unwrap_or_default();
                let copy = if d.copy > 0 { format!(" (copy {})", d.copy + 1) } else { String::new() };
                let _ = writeln!(
                    s,
                    "\n── [{k}] sequence {i} · source `{}` · {}:{}{sub}{copy} · id {}\n   {} tokens, {trained} trained",
                    d.source,
                    d.file,
                    d.row,
                    d.id,
                    t.len()
                );
            }
            None => {
                let _ = writeln!(s, "\n── [{k}] sequence {i} (not in docs.parquet)\n   {} tokens, {trained} trained", t.len());
            }
        }
        // Decode runs of equal mask so that trained spans can be marked.
        let mut j = 0;
        while j < t.len() {
            let start = j;
            while j < t.len() && m[j] == m[start] {
                j += 1;
            }
            let text = tok.decode(&t[start..j], false).map_err(|e| anyhow!("cannot decode: {e}"))?;
            match (m[start] == 1, marks) {
                (true, Marks::Brackets) => {
                    let _ = write!(s, "«{text}»");
                }
                (true, Marks::Color) => {
                    let _ = write!(s, "\u{1b}[32m{text}\u{1b}[0m");
                }
                (false, _) => s.push_str(&text),
            }
        }
        s.push('\n');
    }
    Ok(s)
}

fn seq_infos(path: &Path, split: &str) -> anyhow::Result<HashMap<u64, SeqInfo>> {
    let f = File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .and_then(|b| b.build())
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    let mut out = HashMap::new();
    for batch in reader {
        let b = batch.with_context(|| format!("cannot read `{}`", path.display()))?;
        let col = |name: &str| b.column_by_name(name).ok_or_else(|| anyhow!("`{}` has no column `{name}`", path.display()));
        let str_col = |name: &str| -> anyhow::Result<StringArray> {
            col(name)?.as_any().downcast_ref::<StringArray>().cloned().ok_or_else(|| anyhow!("column `{name}` is not text"))
        };
        let splits = str_col("split")?;
        let ids = str_col("id")?;
        let sources = str_col("source")?;
        let files = str_col("file")?;
        let seqs = col("sequence")?.as_any().downcast_ref::<UInt64Array>().cloned().ok_or_else(|| anyhow!("bad `sequence`"))?;
        let rows = col("row")?.as_any().downcast_ref::<UInt64Array>().cloned().ok_or_else(|| anyhow!("bad `row`"))?;
        let subs = col("sub")?.as_any().downcast_ref::<UInt32Array>().cloned().ok_or_else(|| anyhow!("bad `sub`"))?;
        let copies = col("copy")?.as_any().downcast_ref::<UInt32Array>().cloned().ok_or_else(|| anyhow!("bad `copy`"))?;
        for i in 0..b.num_rows() {
            if splits.value(i) != split {
                continue;
            }
            out.insert(
                seqs.value(i),
                SeqInfo {
                    id: ids.value(i).to_string(),
                    source: sources.value(i).to_string(),
                    file: files.value(i).to_string(),
                    row: rows.value(i),
                    sub: (!subs.is_null(i)).then(|| subs.value(i)),
                    copy: copies.value(i),
                },
            );
        }
    }
    Ok(out)
}
