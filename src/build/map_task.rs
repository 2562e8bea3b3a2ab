//! A map task: reads its slice of one source and runs the per-document stages before
//! the first whole-corpus pass (PII, filters, quality, decontamination, MinHash).
//!
//! ```text
//! reader thread ──batches──▶ rayon: parse · select · map · the document stages
//!                                         │ (results in record order)
//!                                         ▼
//!                      writer thread: counting · ledger · task outputs
//! ```
//!
//! Outputs (in the task's folder): `docs.parquet` (the documents that passed, in
//! record order), `bands.bin` (their band hashes, with near-dedup), `ledger.jsonl`,
//! `counters.json`.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use rayon::prelude::*;

use super::entries::EntryWriter;
use super::plan::{Plan, Task};
use super::work::TaskDir;
use super::{Clocks, Env, RecordClock, TaskCounters, thread_cpu_ns};
use crate::ledger::{Entry, Rule, Stage};
use crate::output::DocumentsWriter;
use crate::recipe::{OnError, Source};
use crate::report::{FileStat, SourceStats};
use crate::source::files::InputFile;
use crate::source::read::{self, RawRecord};
use crate::stages::map::{RowOutcome, SourceCtx};
use crate::stages::{Doc, DocStage, Verdict};

const BATCH_RECORDS: usize = 2048;
const BATCH_BYTES: u64 = 8 << 20;

/// A batch of records from the reader (with the slice it came from), or the error that
/// ended reading.
enum Msg {
    Batch(usize, Vec<RawRecord>),
    Failed(anyhow::Error),
}

/// A document after the stages: what each stage left of it.
pub(super) struct Traced {
    pub(super) d: Doc,
    /// Characters on entering the first stage, then after each stage that kept it.
    chars: Vec<u64>,
    /// The stage (index into the list) that dropped it, and why.
    dropped: Option<(usize, crate::ledger::DropReason)>,
}

struct Processed {
    row: RowOutcome,
    docs: Vec<Traced>,
}

/// Run one document through `stages` in order until one drops it.
pub(super) fn trace(stages: &[DocStage], doc: crate::document::Document, source: &str, clock: &mut RecordClock) -> Result<Traced, String> {
    let mut t = Traced { chars: vec![doc.chars], d: Doc::new(doc), dropped: None };
    for (i, s) in stages.iter().enumerate() {
        let v = s.apply(&mut t.d, source)?;
        clock.lap(s.id());
        match v {
            Verdict::Keep => t.chars.push(t.d.doc.chars),
            Verdict::Drop(r) => {
                t.dropped = Some((i, r));
                break;
            }
        }
    }
    Ok(t)
}

/// Count one traced document through the stages: the one place where the per-document
/// stages are counted. Returns the drop, if any, as a ledger entry.
pub(super) fn count(st: &mut SourceStats, stages: &[DocStage], t: &Traced) -> Option<Entry> {
    let d = &t.d;
    st.pii.add(&d.pii);
    if let Some(b) = &d.contaminated {
        *st.contamination.entry(b.clone()).or_default() += 1;
    }
    for (i, s) in stages.iter().enumerate() {
        let stage = s.id();
        st.enter(stage, Some(t.chars[i]));
        if let Some((at, reason)) = &t.dropped
            && *at == i
        {
            st.drop(reason.rule);
            if reason.rule == Rule::TemplateError && st.first_template_error.is_none() {
                st.first_template_error = Some(format!("`{}`: {}", d.doc.locator, reason.detail));
            }
            return Some(Entry { doc_id: d.doc.id, source: d.doc.source, locator: d.doc.locator.clone(), reason: reason.clone() });
        }
        st.leave(stage, Some(t.chars[i + 1]));
        if stage == Stage::Quality {
            st.quality_checked += 1;
            st.ai_phrase_docs += u64::from(d.ai_phrase);
        }
    }
    None
}

/// Run map task `task` into `out`.
pub fn run(env: &Env, plan: &Plan, task: &Task, out: &TaskDir) -> anyhow::Result<()> {
    let recipe = env.recipe;
    let src = task.source.context("a map task names its source")?;
    let source = &recipe.sources[src];
    let files: Vec<InputFile> = plan.sources[src].files.iter().map(|f| f.input.clone()).collect();
    let stages = env.doc_stages(Stage::Map)?;
    let clocks = Clocks::default();

    let mut st = SourceStats::default();
    let mut docs_out = DocumentsWriter::create_scratch(&out.file("docs.parquet"))?;
    let mut ledger = EntryWriter::create(&out.file("ledger.jsonl"))?;
    let with_bands = stages.iter().any(|s| s.id() == Stage::MinHash);
    let mut bands = if with_bands {
        Some(std::io::BufWriter::new(
            std::fs::File::create(out.file("bands.bin")).context("cannot create the band hashes' file")?,
        ))
    } else {
        None
    };
    let bands_per_doc = recipe.dedup.near.as_ref().map(|n| n.bands).unwrap_or(0);
    let ctx = SourceCtx { source, seed: recipe.seed };
    let mut file_stats: Vec<FileStat> = Vec::new();
    for s in &task.slices {
        let f = &files[s.file];
        if !file_stats.iter().any(|x| x.file == f.display) {
            // A file's bytes are counted by the task that reads its start.
            let bytes = if s.part.starts_file() { f.bytes } else { 0 };
            file_stats.push(FileStat { file: f.display.clone(), bytes, records: 0 });
        }
    }

    let stop = AtomicBool::new(false);
    let mut selected = 0u64;
    let (tx, rx) = sync_channel::<Msg>(4);
    let slices = &task.slices;
    let files_ref = &files;
    let max = source.max_record_bytes;
    let read_clock = &clocks;
    let fault = super::fault::Point::new(&task.id);
    let result = std::thread::scope(|scope| -> anyhow::Result<()> {
        scope.spawn(move || reader(files_ref, slices, max, tx, read_clock));
        let (ptx, prx) = sync_channel::<(usize, u64, Vec<Processed>)>(2);
        let stop_ref = &stop;
        let st_ref = &mut st;
        let file_stats_ref = &mut file_stats;
        let stages_ref = &stages;
        let docs_ref = &mut docs_out;
        let ledger_ref = &mut ledger;
        let bands_ref = &mut bands;
        let selected_ref = &mut selected;
        let writer = scope.spawn(move || -> anyhow::Result<()> {
            for (slice, n, batch) in prx {
                let name = &files_ref[slices[slice].file].display;
                if let Some(fs) = file_stats_ref.iter_mut().find(|x| &x.file == name) {
                    fs.records += n;
                }
                let cpu0 = thread_cpu_ns();
                let go_on = take(source, st_ref, stages_ref, docs_ref, ledger_ref, bands_ref.as_mut(), bands_per_doc, selected_ref, batch);
                read_clock.add_write_since(cpu0);
                match go_on {
                    Ok(true) => {}
                    Ok(false) => {
                        st_ref.limit_reached = true;
                        stop_ref.store(true, Ordering::Relaxed);
                        return Ok(());
                    }
                    Err(e) => {
                        stop_ref.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
            Ok(())
        });
        let mut failed = None;
        let mut batches = 0u64;
        for msg in rx {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            match msg {
                Msg::Failed(e) => {
                    failed = Some(e);
                    break;
                }
                Msg::Batch(slice, batch) => {
                    let n = batch.len() as u64;
                    let processed: anyhow::Result<Vec<Processed>> = env.pool.install(|| {
                        batch
                            .into_par_iter()
                            .map(|rec| {
                                let mut clock = RecordClock::start();
                                let row = ctx.process(rec);
                                clock.lap(Stage::Map);
                                let mut docs = Vec::new();
                                let row = match row {
                                    RowOutcome::Selected { docs: ds, failed } => {
                                        for d in ds {
                                            docs.push(trace(&stages, d, &source.name, &mut clock).map_err(|e| anyhow!(e))?);
                                        }
                                        RowOutcome::Selected { docs: vec![], failed }
                                    }
                                    other => other,
                                };
                                clock.finish(&clocks);
                                Ok(Processed { row, docs })
                            })
                            .collect()
                    });
                    env.progress.add(n);
                    batches += 1;
                    if batches == 2 {
                        fault.hit("mid");
                    }
                    if ptx.send((slice, n, processed?)).is_err() {
                        break;
                    }
                }
            }
        }
        drop(ptx);
        let sunk = writer.join().map_err(|_| anyhow!("the writer thread panicked"))?;
        sunk?;
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(())
    });
    result.with_context(|| format!("source `{}`", source.name))?;
    st.files = file_stats;
    let cpu0 = thread_cpu_ns();
    docs_out.finish()?;
    ledger.finish()?;
    if let Some(mut b) = bands {
        b.flush().context("writing band hashes")?;
    }
    clocks.add_write_since(cpu0);
    TaskCounters { sources: vec![(src, st)], clocks: clocks.snapshot(), extra: serde_json::Value::Null }
        .write(&out.file("counters.json"))
}

/// The sequential end of a map task: counting, ledger, outputs, in record order.
/// Returns false when the source's `limit` is reached.
#[allow(clippy::too_many_arguments)]
fn take(
    source: &Source,
    st: &mut SourceStats,
    stages: &[DocStage],
    docs: &mut DocumentsWriter,
    ledger: &mut EntryWriter,
    mut bands: Option<&mut std::io::BufWriter<std::fs::File>>,
    bands_per_doc: usize,
    selected: &mut u64,
    batch: Vec<Processed>,
) -> anyhow::Result<bool> {
    let bad = |st: &mut SourceStats, ledger: &mut EntryWriter, e: &Entry| -> anyhow::Result<()> {
        if source.on_error == OnError::Fail {
            bail!(
                "`{}`: {} ({})\nhint: fix the record, or set `on_error = \"skip\"` on source `{}` to ledger bad records and go on",
                e.locator,
                e.reason.detail,
                e.reason.rule.id(),
                source.name
            );
        }
        st.drop(e.reason.rule);
        ledger.push(e)
    };
    for Processed { row, docs: traced } in batch {
        if let Some(limit) = source.limit
            && *selected >= limit
        {
            return Ok(false);
        }
        st.enter(Stage::Read, None);
        match row {
            RowOutcome::Bad(e) => bad(st, ledger, &e)?,
            RowOutcome::Fatal(msg) => bail!(msg),
            RowOutcome::Unselected(e) => {
                st.leave(Stage::Read, None);
                st.enter(Stage::Select, None);
                st.drop(e.reason.rule);
                ledger.push(&e)?;
            }
            RowOutcome::Selected { failed, .. } => {
                *selected += 1;
                st.leave(Stage::Read, None);
                st.enter(Stage::Select, None);
                st.leave(Stage::Select, None);
                let chars: u64 = traced.iter().map(|t| t.chars[0]).sum();
                let map = st.stage(Stage::Map);
                map.records_in += 1;
                map.records_out += traced.len() as u64;
                *map.chars_out.get_or_insert(0) += chars;
                for e in &failed {
                    bad(st, ledger, e)?;
                }
                for t in traced {
                    match count(st, stages, &t) {
                        Some(e) => ledger.push(&e)?,
                        None => {
                            docs.push(&t.d.doc, source)?;
                            if let Some(b) = bands.as_deref_mut() {
                                write_bands(b, t.d.bands.as_ref(), bands_per_doc)?;
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(match source.limit {
        Some(limit) => *selected < limit,
        None => true,
    })
}

/// One document's band hashes: a presence byte, then the bands as u64 LE (zeros when
/// the document has no words to hash).
fn write_bands(w: &mut impl Write, b: Option<&crate::stages::near_dedup::BandHashes>, n: usize) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(1 + n * 8);
    buf.push(u8::from(b.is_some()));
    match b {
        Some(b) => {
            for h in &b.0 {
                buf.extend_from_slice(&h.to_le_bytes());
            }
        }
        None => buf.resize(1 + n * 8, 0),
    }
    w.write_all(&buf).context("writing band hashes")
}

/// The reader thread: reads the slices in order, sends batches, and stops when the
/// receiver goes away (a limit was reached or the run failed).
fn reader(files: &[InputFile], slices: &[super::plan::Slice], max_record_bytes: u64, tx: std::sync::mpsc::SyncSender<Msg>, clocks: &Clocks) {
    // The thread only reads: its CPU clock is reading's CPU time, blocked or not.
    let cpu0 = thread_cpu_ns();
    read_slices(files, slices, max_record_bytes, tx, clocks);
    clocks.add_read_cpu(thread_cpu_ns().saturating_sub(cpu0));
}

fn read_slices(files: &[InputFile], slices: &[super::plan::Slice], max_record_bytes: u64, tx: std::sync::mpsc::SyncSender<Msg>, clocks: &Clocks) {
    for (si, s) in slices.iter().enumerate() {
        let mut batch: Vec<RawRecord> = Vec::with_capacity(BATCH_RECORDS);
        let mut batch_bytes = 0u64;
        let mut open = true;
        let mut first = s.part.starts_file();
        let res = read::read_part(&files[s.file], s.part, max_record_bytes, &mut |mut rec| {
            rec.first = std::mem::take(&mut first);
            batch_bytes += rec.bytes;
            batch.push(rec);
            if batch.len() >= BATCH_RECORDS || batch_bytes >= BATCH_BYTES {
                batch_bytes = 0;
                let sent = Instant::now();
                open = tx.send(Msg::Batch(si, std::mem::take(&mut batch))).is_ok();
                clocks.add_read_blocked(sent);
            }
            open
        });
        if !open {
            return;
        }
        if let Err(e) = res {
            let _ = tx.send(Msg::Failed(e));
            return;
        }
        // Batches never straddle slices, so per-file record counts stay exact.
        if !batch.is_empty() && tx.send(Msg::Batch(si, std::mem::take(&mut batch))).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{Content, Document, Locator};

    fn doc(row: u64, text: &str) -> Document {
        Document::new(0, "s", Locator { file: "f".into(), row, sub: None }, Content::Text(text.into()))
    }

    /// Counting happens in one place: a document enters each stage in the list until
    /// one drops it; characters follow the changes a stage makes.
    #[test]
    fn a_trace_is_counted_stage_by_stage() {
        let filters = crate::recipe::Filters { min_chars: Some(30), ..Default::default() };
        let stages = vec![DocStage::Pii, DocStage::Filter(&filters)];
        let clocks = Clocks::default();
        let mut clock = RecordClock::start();
        let mut st = SourceStats::default();

        let kept = trace(&stages, doc(1, "write to someone@example.com about the plan today"), "s", &mut clock).unwrap();
        assert!(kept.dropped.is_none());
        assert!(kept.chars[1] < kept.chars[0], "redaction shortened the text: {:?}", kept.chars);
        assert!(count(&mut st, &stages, &kept).is_none());

        let short = trace(&stages, doc(2, "too short"), "s", &mut clock).unwrap();
        let e = count(&mut st, &stages, &short).expect("dropped");
        assert_eq!(e.reason.rule, Rule::MinChars);
        assert_eq!(e.locator.row, 2);

        let pii = st.stages["pii"];
        let filter = st.stages["filter"];
        assert_eq!((pii.records_in, pii.records_out), (2, 2));
        assert_eq!((filter.records_in, filter.records_out), (2, 1));
        assert_eq!(pii.chars_out, filter.chars_in, "each stage takes in what the one before let out");
        assert_eq!(st.drops["filter.min_chars"], 1);
        assert_eq!(st.pii.email, 1);
        // The record's CPU time went to the stages it met; the clocks say which is which.
        clock.finish(&clocks);
        let snap = clocks.snapshot();
        let kind = |name: &str| snap.iter().find(|t| t.stage == name).map(|t| t.clock.as_str());
        assert_eq!(kind("pii"), Some("cpu"));
        assert_eq!(kind("workers_off_cpu"), Some("wait"));
        assert_eq!(kind("read_blocked"), Some("wait"));
        assert!(snap.iter().find(|t| t.stage == "pii").unwrap().seconds > 0.0);
    }
}
