//! A tokenize task: the documents of one map task that the passes kept, rendered
//! through the template and tokenized in parallel, spilled to disk in order.
//!
//! Tokenizing after the dedup decisions spends no encoding on documents that dedup
//! drops. Outputs: `tokens.bin` (u32 LE ids), `mask.bin` (one byte per token),
//! `spill.jsonl` (per document: id, locator, hash, token and loss counts),
//! `ledger.jsonl`, `counters.json`.

use std::collections::HashMap;
use std::io::{BufWriter, Write};

use anyhow::{Context, anyhow};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::entries::EntryWriter;
use super::map_task::{count, trace};
use super::plan::{Plan, Task};
use super::work::{TaskDir, task_dir};
use super::{Clocks, Env, RecordClock, TaskCounters, thread_cpu_ns};
use crate::document::Document;
use crate::hash::hex128;
use crate::ledger::Stage;
use crate::output::parquet::read_documents;
use crate::report::SourceStats;

/// One spilled document.
#[derive(Debug, Serialize, Deserialize)]
pub struct SpillRow {
    pub id: String,
    pub file: String,
    pub row: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sub: Option<u32>,
    pub hash: String,
    pub tokens: u32,
    pub loss: u32,
}

const BATCH: usize = 1024;

pub fn run(env: &Env, plan: &Plan, task: &Task, drops: &[u32], out: &TaskDir) -> anyhow::Result<()> {
    let recipe = env.recipe;
    let src = task.source.context("a tokenize task names its source")?;
    let source = &recipe.sources[src];
    let map_id = task.after.first().context("a tokenize task reads a map task")?;
    let stages = env.doc_stages_at(Stage::Tokenize)?;
    let clocks = Clocks::default();
    let by_name: HashMap<&str, usize> = recipe.sources.iter().map(|s| (s.name.as_str(), s.index)).collect();
    let mut st = SourceStats::default();
    let mut ledger = EntryWriter::create(&out.file("ledger.jsonl"))?;
    let create = |name: &str| -> anyhow::Result<BufWriter<std::fs::File>> {
        let p = out.file(name);
        Ok(BufWriter::with_capacity(1 << 20, std::fs::File::create(&p).with_context(|| format!("cannot create `{}`", p.display()))?))
    };
    let (mut tokens, mut mask, mut spill) = (create("tokens.bin")?, create("mask.bin")?, create("spill.jsonl")?);
    let fault = super::fault::Point::new(&task.id);

    let mut sink = |batch: Vec<Document>| -> anyhow::Result<()> {
        let traced: Vec<_> = env.pool.install(|| {
            batch
                .into_par_iter()
                .map(|d| {
                    let mut clock = RecordClock::start();
                    let t = trace(&stages, d, &source.name, &mut clock).map_err(|e| anyhow!(e));
                    clock.finish(&clocks);
                    t
                })
                .collect::<anyhow::Result<Vec<_>>>()
        })?;
        let cpu0 = thread_cpu_ns();
        for tr in traced {
            if let Some(e) = count(&mut st, &stages, &tr) {
                ledger.push(&e)?;
                continue;
            }
            let d = &tr.d;
            if let Some(note) = &d.note {
                st.drop(note.rule);
                ledger.push(&crate::ledger::Entry { doc_id: d.doc.id, source: d.doc.source, locator: d.doc.locator.clone(), reason: note.clone() })?;
            }
            let tk = d.tokens.as_ref().context("a tokenized document without tokens")?;
            let mut buf = Vec::with_capacity(tk.ids.len() * 4);
            for id in &tk.ids {
                buf.extend_from_slice(&id.to_le_bytes());
            }
            tokens.write_all(&buf).context("writing the token spill")?;
            mask.write_all(&tk.mask).context("writing the mask spill")?;
            let row = SpillRow {
                id: hex128(d.doc.id),
                file: d.doc.locator.file.to_string(),
                row: d.doc.locator.row,
                sub: d.doc.locator.sub,
                hash: hex128(d.doc.content_hash),
                tokens: tk.ids.len() as u32,
                loss: tk.loss_tokens() as u32,
            };
            serde_json::to_writer(&mut spill, &row).context("writing the spill index")?;
            spill.write_all(b"\n").context("writing the spill index")?;
        }
        clocks.add_write_since(cpu0);
        Ok(())
    };
    let mut batch = Vec::with_capacity(BATCH);
    let mut row = 0u32;
    let mut next_drop = 0usize;
    let mut batches = 0u32;
    read_documents(&task_dir(&plan.work, map_id).join("docs.parquet"), &by_name, true, &mut |doc| {
        let dropped = drops.get(next_drop) == Some(&row);
        if dropped {
            next_drop += 1;
        }
        row += 1;
        if !dropped {
            batch.push(doc);
            if batch.len() >= BATCH {
                sink(std::mem::take(&mut batch))?;
                batches += 1;
                if batches == 1 {
                    fault.hit("mid");
                }
            }
        }
        env.progress.add(1);
        Ok(())
    })?;
    if !batch.is_empty() {
        sink(batch)?;
    }
    for w in [&mut tokens, &mut mask, &mut spill] {
        w.flush().context("writing the token spill")?;
    }
    ledger.finish()?;
    TaskCounters { sources: vec![(src, st)], clocks: clocks.snapshot(), extra: serde_json::Value::Null }.write(&out.file("counters.json"))
}
