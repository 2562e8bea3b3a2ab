//! The driver: runs the stages over every source and does the counting, the ledger and
//! the writing, the way a datatrove executor wraps its steps.
//!
//! Data flows one way and streams:
//!
//! ```text
//! reader thread ──batches──▶ rayon: parse · select · map · normalise · filter
//!                                         │ (results in record order)
//!                                         ▼
//!                      main thread: exact dedup · ledger · documents.parquet
//! ```
//!
//! Sources are processed in dedup precedence (higher `priority` first, then recipe
//! order), records in file order, and the parallel stage returns results in input
//! order, so every output byte is the same for any `--threads`. Memory holds a few
//! batches in flight and one hash-table entry per kept document.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use rayon::prelude::*;
use serde::Serialize;

use crate::document::Document;
use crate::ledger::{DropReason, Entry, Rule, Stage};
use crate::output::{self, DocumentsWriter, LedgerWriter, Staging};
use crate::recipe::{OnError, Recipe, Source};
use crate::report::{self, FileStat, SourceStats};
use crate::source::files::{self, InputFile};
use crate::source::read::{self, RawRecord};
use crate::stages::dedup::ExactDedup;
use crate::stages::filter;
use crate::stages::decontam::{DecontamAction, EvalIndex};
use crate::stages::map::{RowOutcome, SourceCtx};
use crate::stages::near_dedup::{BandHashes, BandTable, MinHasher};
use crate::recipe::SourceRole;
use crate::shards::{self, ShardSummary, Spill};
use crate::tokenize::{TargetTokenizer, TokenizeError, Tokens};

/// How a run is carried out (not what it computes: outputs do not depend on these).
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub threads: usize,
    pub progress: bool,
    /// Overrides the recipe's output folder.
    pub out: Option<PathBuf>,
    /// What the compliance check decided, when the recipe has a `[policy]`.
    pub compliance: Option<ComplianceOutputs>,
    /// Files of fetched sources (hub, URL), by source index, from `crate::fetch`.
    pub fetched: std::collections::BTreeMap<usize, Vec<InputFile>>,
    /// sha256 of the `curate.lock` the fetched inputs were read through.
    pub lock_sha256: Option<String>,
}

/// The compliance check's part of a run: sources it rejected (never read), its report
/// section, and the files it adds to the output folder (dataset card, NOTICE).
#[derive(Debug, Clone)]
pub struct ComplianceOutputs {
    /// Indices of rejected sources.
    pub excluded: Vec<usize>,
    pub report_json: serde_json::Value,
    pub report_markdown: String,
    /// `(file name, bytes)` written into the output folder.
    pub files: Vec<(String, Vec<u8>)>,
}

/// What a finished run produced, for the summary.
#[derive(Debug)]
pub struct RunSummary {
    pub out_dir: PathBuf,
    pub stats: Vec<SourceStats>,
    pub documents: u64,
    pub ledger_entries: u64,
    pub shards: Option<ShardSummary>,
    pub timings: Timings,
}

/// Where the time went. CPU seconds of the parallel stages are summed over threads,
/// so `bytes / cpu_seconds` is a per-core rate.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Timings {
    pub threads: usize,
    pub wall_seconds: f64,
    pub bytes_read: u64,
    pub records_read: u64,
    pub documents_kept: u64,
    pub stages: Vec<StageTiming>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct StageTiming {
    pub stage: &'static str,
    pub seconds: f64,
    /// `cpu` for summed worker time, `wall` for time on one thread.
    pub clock: &'static str,
}

const BATCH_RECORDS: usize = 2048;
const BATCH_BYTES: u64 = 8 << 20;

/// A batch of records from the reader, or the error that ended reading.
enum Msg {
    Batch(Vec<RawRecord>),
    FileDone { index: usize },
    Failed(anyhow::Error),
}

/// Time spent per stage, in nanoseconds, on one thread.
#[derive(Default)]
struct Clocks {
    eval_ns: u64,
    dedup_ns: u64,
    near_ns: u64,
    shards_ns: u64,
    write_ns: u64,
}

pub fn run(recipe: &Recipe, opts: &RunOptions) -> anyhow::Result<RunSummary> {
    recipe.require_formats()?;
    let started = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.max(1))
        .thread_name(|i| format!("curate-worker-{i}"))
        .build()
        .context("cannot start worker threads")?;

    // Resolve every source's files before writing anything, so that a missing path
    // fails fast and names its source.
    let excluded: &[usize] = opts.compliance.as_ref().map(|c| c.excluded.as_slice()).unwrap_or(&[]);
    let mut inputs = Vec::with_capacity(recipe.sources.len());
    for s in &recipe.sources {
        // A source the policy rejected is not read at all.
        inputs.push(if excluded.contains(&s.index) {
            vec![]
        } else if let Some(f) = opts.fetched.get(&s.index) {
            f.clone()
        } else {
            files::resolve(s, &recipe.dir)?
        });
    }

    // Load the tokenizer before anything is written: a bad tokenizer fails fast.
    let tokenizer = match recipe.target.as_ref() {
        Some(t) if t.tokenizer.is_some() => Some(TargetTokenizer::load(t)?),
        _ => None,
    };
    let truncate = recipe.pack.overlong == crate::recipe::Overlong::Truncate;

    let out_dir = opts.out.clone().unwrap_or_else(|| recipe.output_dir.clone());
    check_inputs_outside_output(recipe, &inputs, &out_dir)?;
    let staging = Staging::create(&out_dir)?;
    let mut spill = match &tokenizer {
        Some(_) => Some(Spill::create(staging.path())?),
        None => None,
    };
    // With near-dedup, documents are written to a hidden file first and copied into
    // documents.parquet without the near-duplicates once every document is seen.
    let near_on = recipe.dedup.near.is_some();
    let docs_path = staging.file(if near_on { ".documents.pre.parquet" } else { "documents.parquet" });
    let mut docs_out = DocumentsWriter::create(&docs_path)?;
    let mut ledger_out = LedgerWriter::create(&staging.file("ledger.parquet"))?;

    let names: Vec<String> = recipe.sources.iter().map(|s| s.name.clone()).collect();
    let mut stats = vec![SourceStats::default(); recipe.sources.len()];
    let mut dedup = ExactDedup::default();
    let mut clocks = Clocks::default();
    let par = ParClocks::default();
    let mut bytes_read = 0u64;

    let progress = Progress::new(opts.progress);

    // Evaluation sets first: their items are indexed, never trained on.
    let t = Instant::now();
    let mut eval = match &recipe.decontam {
        Some(cfg) => Some(crate::stages::eval::build_index(recipe, cfg, &inputs, excluded, &mut stats)?),
        None => None,
    };
    clocks.eval_ns += t.elapsed().as_nanos() as u64;
    let minhasher = recipe.dedup.near.as_ref().map(MinHasher::new);
    let mut band_table = recipe.dedup.near.as_ref().map(|c| BandTable::new(c.bands));

    let mut order: Vec<&Source> = recipe.sources.iter().filter(|s| s.role == SourceRole::Train).collect();
    order.sort_by_key(|s| (std::cmp::Reverse(s.priority), s.index));

    for source in order {
        if excluded.contains(&source.index) {
            continue;
        }
        let st = &mut stats[source.index];
        let files = &inputs[source.index];
        st.files = files.iter().map(|f| FileStat { file: f.display.clone(), bytes: f.bytes, records: 0 }).collect();
        bytes_read += files.iter().map(|f| f.bytes).sum::<u64>();
        progress.source(&source.name);
        let ctx = SourceCtx { source, seed: recipe.seed };
        let mut sink = Sink {
            source,
            names: &names,
            st,
            dedup: &mut dedup,
            docs: &mut docs_out,
            ledger: &mut ledger_out,
            spill: spill.as_mut(),
            bands: band_table.as_mut(),
            quality_on: recipe.filters.quality.drops() || recipe.filters.quality.ai_phrases != crate::recipe::AiPhrases::Off,
            decontam_on: eval.is_some(),
            selected: 0,
            dedup_enabled: recipe.dedup.exact,
            dedup_ns: 0,
            write_ns: 0,
        };
        let mut current_file = 0usize;
        let (tx, rx) = sync_channel::<Msg>(4);
        let read_ns = &par.read;
        let work = Work {
            pool: &pool,
            ctx: &ctx,
            filters: &recipe.filters,
            eval: eval.as_ref().map(|e| (&e.index, recipe.decontam.as_ref().map(|c| c.action).unwrap_or_default())),
            minhasher: minhasher.as_ref(),
            tokenizer: tokenizer.as_ref(),
            truncate,
            clocks: &par,
        };
        // Three stages overlap: the reader thread reads batch n+2 while the pool maps
        // batch n+1 and the sink thread dedups and writes batch n. Order is kept by
        // the channels, which are FIFO.
        let stop = std::sync::atomic::AtomicBool::new(false);
        let result = std::thread::scope(|scope| -> anyhow::Result<()> {
            scope.spawn(move || reader(files, source.max_record_bytes, tx, read_ns));
            let (ptx, prx) = sync_channel::<(usize, u64, Vec<Processed>)>(2);
            let sink_ref = &mut sink;
            let stop_ref = &stop;
            let sink_thread = scope.spawn(move || -> anyhow::Result<()> {
                for (file, n, outcomes) in prx {
                    if let Some(f) = sink_ref.st.files.get_mut(file) {
                        f.records += n;
                    }
                    let go_on = sink_ref.take(outcomes);
                    match go_on {
                        Ok(true) => {}
                        Ok(false) => {
                            sink_ref.st.limit_reached = true;
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
            for msg in rx {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match msg {
                    Msg::Failed(e) => {
                        failed = Some(e);
                        break;
                    }
                    Msg::FileDone { index } => current_file = index + 1,
                    Msg::Batch(batch) => {
                        let n = batch.len() as u64;
                        let outcomes = work.process(batch);
                        progress.add(n);
                        if ptx.send((current_file, n, outcomes)).is_err() {
                            break;
                        }
                    }
                }
            }
            drop(ptx);
            let sunk = sink_thread.join().map_err(|_| anyhow!("the writer thread panicked"))?;
            // A bad record seen by the sink comes first: it is earlier in the input
            // than a file error found later by the reader.
            sunk?;
            if let Some(e) = failed {
                return Err(e);
            }
            Ok(())
        });
        result.with_context(|| format!("source `{}`", source.name))?;
        clocks.dedup_ns += sink.dedup_ns;
        clocks.write_ns += sink.write_ns;
        let read = sink.st.stage(Stage::Read).records_in;
        if read == 0 {
            let list: Vec<_> = files.iter().map(|f| format!("`{}`", f.display)).collect();
            bail!("source `{}` has no records (read {})\nhint: an empty source is usually a wrong path or an unfinished download", source.name, list.join(", "));
        }
    }
    progress.finish();

    let t = Instant::now();
    let mut documents = docs_out.finish()?;
    clocks.write_ns += t.elapsed().as_nanos() as u64;
    // Only the near-dedup pass is booked to `near_dedup`, not the documents' flush.
    let t = Instant::now();
    let mut near_summary = None;
    if let (Some(cfg), Some(table)) = (&recipe.dedup.near, band_table.take()) {
        let (kept, dropped, summary) =
            crate::stages::near_pass::run(recipe, cfg, &table, &docs_path, &staging.file("documents.parquet"), &mut ledger_out, &mut stats)?;
        std::fs::remove_file(&docs_path).ok();
        documents = kept;
        if let Some(sp) = spill.as_mut() {
            sp.docs.retain(|d| !dropped.contains(&d.ordinal));
        }
        near_summary = Some(summary);
    }
    clocks.near_ns += t.elapsed().as_nanos() as u64;
    let t = Instant::now();
    let shard_summary = match (spill, &tokenizer) {
        (Some(spill), Some(tok)) => Some(shards::write(&staging, recipe, tok, spill, &mut ledger_out, &mut stats)?),
        _ => None,
    };
    clocks.shards_ns += t.elapsed().as_nanos() as u64;
    check_training_output(recipe, &stats, documents, shard_summary.as_ref())?;
    let t = Instant::now();
    let ledger_entries = ledger_out.finish()?;
    let compliance = opts.compliance.as_ref().map(|c| (&c.report_json, c.report_markdown.as_str()));
    if let Some(e) = eval.as_mut() {
        e.finish(recipe, &stats);
    }
    let extras = report::Extras {
        shards: shard_summary.as_ref(),
        compliance,
        eval: eval.as_ref().map(|e| &e.report),
        near: near_summary.as_ref(),
    };
    let rendered = report::render(recipe, &stats, ledger_entries, &extras);
    output::write_file(&staging.file("report.json"), rendered.json.as_bytes())?;
    output::write_file(&staging.file("report.md"), rendered.markdown.as_bytes())?;
    for (name, bytes) in opts.compliance.iter().flat_map(|c| &c.files) {
        output::write_file(&staging.file(name), bytes)?;
    }
    if let Some(sh) = &shard_summary {
        let manifest = report::manifest(recipe, sh, &stats, &shards::file_hashes(staging.path())?, opts.lock_sha256.as_deref(), compliance.map(|c| c.0));
        output::write_file(&staging.file("manifest.json"), manifest.as_bytes())?;
    }
    clocks.write_ns += t.elapsed().as_nanos() as u64;

    let records_read = stats.iter().map(|s| s.stages.get("read").map(|c| c.records_in).unwrap_or(0)).sum();
    let secs = |ns: u64| ns as f64 / 1e9;
    let timings = Timings {
        threads: opts.threads.max(1),
        wall_seconds: started.elapsed().as_secs_f64(),
        bytes_read,
        records_read,
        documents_kept: documents,
        stages: vec![
            StageTiming { stage: "eval_index", seconds: secs(clocks.eval_ns), clock: "wall" },
            StageTiming { stage: "read", seconds: secs(par.read.load(Ordering::Relaxed)), clock: "wall" },
            StageTiming { stage: "map", seconds: secs(par.map.load(Ordering::Relaxed)), clock: "cpu" },
            StageTiming { stage: "filter", seconds: secs(par.filter.load(Ordering::Relaxed)), clock: "cpu" },
            StageTiming { stage: "quality", seconds: secs(par.quality.load(Ordering::Relaxed)), clock: "cpu" },
            StageTiming { stage: "decontam", seconds: secs(par.decontam.load(Ordering::Relaxed)), clock: "cpu" },
            StageTiming { stage: "minhash", seconds: secs(par.minhash.load(Ordering::Relaxed)), clock: "cpu" },
            StageTiming { stage: "tokenize", seconds: secs(par.tokenize.load(Ordering::Relaxed)), clock: "cpu" },
            StageTiming { stage: "dedup", seconds: secs(clocks.dedup_ns), clock: "wall" },
            StageTiming { stage: "near_dedup", seconds: secs(clocks.near_ns), clock: "wall" },
            StageTiming { stage: "mix_pack_shards", seconds: secs(clocks.shards_ns), clock: "wall" },
            StageTiming { stage: "write", seconds: secs(clocks.write_ns), clock: "wall" },
        ],
    };
    let mut tj = serde_json::to_string_pretty(&timings).expect("timings serialise");
    tj.push('\n');
    output::write_file(&staging.file("timings.json"), tj.as_bytes())?;
    let out_dir = staging.commit()?;
    Ok(RunSummary { out_dir, stats, documents, ledger_entries, shards: shard_summary, timings })
}

/// Fail a build whose training output is empty, or in which the chat template failed
/// on more than `[pack] max_template_errors` of a source's documents: such a build
/// would otherwise finish with exit 0 and shards that hold little or nothing.
fn check_training_output(recipe: &Recipe, stats: &[SourceStats], documents: u64, shards: Option<&ShardSummary>) -> anyhow::Result<()> {
    let limit = recipe.pack.max_template_errors;
    for s in recipe.sources.iter().filter(|s| s.role == SourceRole::Train) {
        let st = &stats[s.index];
        let reached = st.stages.get(Stage::Tokenize.as_str()).map(|c| c.records_in).unwrap_or(0);
        let failed = st.drops.get(Rule::TemplateError.id()).copied().unwrap_or(0);
        if reached > 0 && failed as f64 > limit * reached as f64 {
            bail!(
                "source `{}`: the chat template failed on {failed} of {reached} documents ({:.1}%), more than `[pack] max_template_errors` allows ({:.1}%)\n  the first: {}\nhint: fix the template or the source's `format`/`fields`; a share of bad rows can be accepted by raising `max_template_errors`",
                s.name,
                100.0 * failed as f64 / reached as f64,
                100.0 * limit,
                st.first_template_error.as_deref().unwrap_or("(not recorded)")
            );
        }
    }
    let empty = match shards {
        Some(sh) => sh.train.sequences == 0,
        None => documents == 0,
    };
    if empty {
        let mut drops: std::collections::BTreeMap<&str, u64> = Default::default();
        for st in stats {
            for (rule, n) in &st.drops {
                *drops.entry(rule).or_default() += n;
            }
        }
        let mut top: Vec<(&str, u64)> = drops.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let list: Vec<String> = top.iter().take(4).map(|(r, n)| format!("{r} {n}")).collect();
        let what = if shards.is_some() { "no document reached the training shards" } else { "no document was kept" };
        bail!(
            "the build's training output is empty: {what} (dropped by rule: {})\nhint: the ledger's rules say where the documents went; check the filters, `seq_len` and the template",
            if list.is_empty() { "none".to_string() } else { list.join(", ") }
        );
    }
    Ok(())
}

/// Refuse an output folder that a source would read: inside a folder a source walks
/// (the next run would read this run's outputs back in as records), or holding a file
/// a source names. Staging folders beside the output count as the output.
fn check_inputs_outside_output(recipe: &Recipe, inputs: &[Vec<InputFile>], out_dir: &std::path::Path) -> anyhow::Result<()> {
    let out = output::real_path(out_dir);
    let (Some(parent), Some(name)) = (out.parent(), out.file_name()) else { return Ok(()) };
    let hidden = format!(".{}.", name.to_string_lossy());
    let inside_output = |p: &std::path::Path| {
        let p = output::real_path(p);
        if p.starts_with(&out) {
            return true;
        }
        // `.NAME.tmp-PID/…` and `.NAME.old-PID/…`
        p.strip_prefix(parent)
            .ok()
            .and_then(|rest| rest.components().next())
            .map(|c| c.as_os_str().to_string_lossy().starts_with(&hidden))
            .unwrap_or(false)
    };
    for s in &recipe.sources {
        for input in &s.inputs {
            if input.is_dir() && out.starts_with(output::real_path(input)) {
                bail!(
                    "the output folder `{}` is inside `{}`, which source `{}` reads: the next run would read this run's outputs back in as records\nhint: choose an output folder outside the source's folder (`--out`, or `[output] dir`)",
                    out_dir.display(),
                    input.display(),
                    s.name
                );
            }
        }
        if let Some(f) = inputs.get(s.index).and_then(|files| files.iter().find(|f| inside_output(&f.path))) {
            bail!(
                "source `{}` reads `{}`, which is inside the output folder `{}` that this run replaces\nhint: choose another output folder (`--out`, or `[output] dir`), or copy the file out first",
                s.name,
                f.display,
                out_dir.display()
            );
        }
    }
    Ok(())
}

/// The reader thread: reads every file of a source in order, sends batches, and stops
/// when the receiver goes away (a limit was reached or the run failed).
fn reader(files: &[InputFile], max_record_bytes: u64, tx: std::sync::mpsc::SyncSender<Msg>, read_ns: &AtomicU64) {
    let mut batch: Vec<RawRecord> = Vec::with_capacity(BATCH_RECORDS);
    let mut batch_bytes = 0u64;
    let mut open = true;
    let mut t = Instant::now();
    for (index, file) in files.iter().enumerate() {
        let mut first = true;
        let res = read::read_file(file, max_record_bytes, &mut |mut rec| {
            rec.first = std::mem::take(&mut first);
            batch_bytes += rec.bytes;
            batch.push(rec);
            if batch.len() >= BATCH_RECORDS || batch_bytes >= BATCH_BYTES {
                batch_bytes = 0;
                read_ns.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                open = tx.send(Msg::Batch(std::mem::take(&mut batch))).is_ok();
                t = Instant::now();
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
        // Batches never straddle files, so per-file record counts stay exact.
        if !batch.is_empty() {
            batch_bytes = 0;
            if tx.send(Msg::Batch(std::mem::take(&mut batch))).is_err() {
                return;
            }
        }
        if tx.send(Msg::FileDone { index }).is_err() {
            return;
        }
    }
    read_ns.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
}

/// What the parallel stages found about one document.
struct DocExtra {
    /// The first filter, quality or decontamination rule that drops it.
    verdict: Option<DropReason>,
    /// The benchmark it overlaps (dropped or only flagged).
    contaminated: Option<String>,
    /// A chatbot phrase was found (counted whatever the action).
    ai_phrase: bool,
    pii: crate::stages::quality::PiiCounts,
    bands: Option<BandHashes>,
    tokens: Option<Result<Tokens, TokenizeError>>,
}

/// A mapped record with what the parallel stages found about each of its documents.
struct Processed {
    row: RowOutcome,
    docs: Vec<DocExtra>,
}

/// Nanoseconds per parallel stage (summed over threads).
#[derive(Default)]
struct ParClocks {
    read: AtomicU64,
    map: AtomicU64,
    filter: AtomicU64,
    quality: AtomicU64,
    decontam: AtomicU64,
    minhash: AtomicU64,
    tokenize: AtomicU64,
}

/// The parallel stages and what they need.
struct Work<'a> {
    pool: &'a rayon::ThreadPool,
    ctx: &'a SourceCtx<'a>,
    filters: &'a crate::recipe::Filters,
    eval: Option<(&'a EvalIndex, DecontamAction)>,
    minhasher: Option<&'a MinHasher>,
    tokenizer: Option<&'a TargetTokenizer>,
    truncate: bool,
    clocks: &'a ParClocks,
}

fn add(clock: &AtomicU64, since: Instant) -> Instant {
    let now = Instant::now();
    clock.fetch_add((now - since).as_nanos() as u64, Ordering::Relaxed);
    now
}

impl Work<'_> {
    fn process(&self, batch: Vec<RawRecord>) -> Vec<Processed> {
        self.pool.install(|| batch.into_par_iter().map(|rec| self.one(rec)).collect())
    }

    fn one(&self, rec: RawRecord) -> Processed {
        let c = self.clocks;
        let q = &self.filters.quality;
        let t = Instant::now();
        let mut row = self.ctx.process(rec);
        let mut extras = Vec::new();
        if let RowOutcome::Selected { docs, .. } = &mut row {
            let mut pii = Vec::with_capacity(docs.len());
            if q.pii {
                // Redaction changes the text, so the document (hash, lengths) is
                // made again from the redacted content.
                for d in docs.iter_mut() {
                    let (redacted, counts) = crate::stages::quality::redact_content(&d.content);
                    if let Some(content) = redacted {
                        *d = Document::new(d.source, &self.ctx.source.name, d.locator.clone(), content);
                    }
                    pii.push(counts);
                }
            }
            let mut t = add(&c.map, t);
            for (i, d) in docs.iter().enumerate() {
                let mut x = DocExtra {
                    verdict: filter::check(d, self.filters),
                    contaminated: None,
                    ai_phrase: false,
                    pii: pii.get(i).cloned().unwrap_or_default(),
                    bands: None,
                    tokens: None,
                };
                t = add(&c.filter, t);
                if x.verdict.is_none() {
                    let (verdict, ai) = quality_check(d, q);
                    x.verdict = verdict;
                    x.ai_phrase = ai;
                    t = add(&c.quality, t);
                }
                if x.verdict.is_none()
                    && let Some((index, action)) = self.eval
                    && let Some(hit) = index.check(&d.content)
                {
                    x.contaminated = Some(hit.benchmark.clone());
                    if action == DecontamAction::Drop {
                        x.verdict = Some(hit.drop_reason());
                    }
                }
                t = add(&c.decontam, t);
                if x.verdict.is_none() {
                    if let Some(h) = self.minhasher {
                        x.bands = h.band_hashes(&d.content);
                        t = add(&c.minhash, t);
                    }
                    if let Some(tok) = self.tokenizer {
                        x.tokens = Some(tok.render(&d.content).and_then(|r| tok.tokenize(&r, self.truncate)));
                        t = add(&c.tokenize, t);
                    }
                }
                extras.push(x);
            }
        } else {
            add(&c.map, t);
        }
        Processed { row, docs: extras }
    }
}

/// The quality presets, language identification and the chatbot-phrase detector, in
/// that order; the first that fails drops the document. Returns the verdict and
/// whether a chatbot phrase was found.
fn quality_check(d: &Document, q: &crate::recipe::Quality) -> (Option<DropReason>, bool) {
    use crate::recipe::AiPhrases;
    use crate::stages::quality as qs;
    let ai = match q.ai_phrases {
        AiPhrases::Off => None,
        _ => qs::check_ai_phrases(&d.content),
    };
    let found = ai.is_some();
    if !q.drops() {
        return (None, found);
    }
    let text = qs::content_text(&d.content);
    let verdict = q
        .gopher
        .as_ref()
        .and_then(|g| qs::check_gopher_quality(&text, g))
        .or_else(|| q.repetition.as_ref().and_then(|r| qs::check_repetition(&text, r)))
        .or_else(|| q.c4.as_ref().and_then(|c| qs::check_c4(&text, c)))
        .or_else(|| q.language.as_ref().and_then(|l| qs::check_language(&text, l)))
        .or_else(|| if q.ai_phrases == AiPhrases::Drop { ai } else { None })
        .map(DropReason::from);
    (verdict, found)
}

/// The sequential end of the pipeline for one source: counting, dedup, ledger, output.
struct Sink<'a> {
    source: &'a Source,
    names: &'a [String],
    st: &'a mut SourceStats,
    dedup: &'a mut ExactDedup,
    docs: &'a mut DocumentsWriter,
    ledger: &'a mut LedgerWriter,
    spill: Option<&'a mut Spill>,
    /// Near-dedup band hashes of every written document, in write order.
    bands: Option<&'a mut BandTable>,
    quality_on: bool,
    decontam_on: bool,
    selected: u64,
    dedup_enabled: bool,
    dedup_ns: u64,
    write_ns: u64,
}

impl Sink<'_> {
    fn ledger(&mut self, e: &Entry) -> anyhow::Result<()> {
        self.st.drop(e.reason.rule);
        if e.reason.rule == Rule::TemplateError && self.st.first_template_error.is_none() {
            self.st.first_template_error = Some(format!("`{}`: {}", e.locator, e.reason.detail));
        }
        self.ledger.push(e, &self.source.name)
    }

    /// Bad input either stops the run (naming the file and row) or is ledgered.
    fn bad(&mut self, e: &Entry) -> anyhow::Result<()> {
        if self.source.on_error == OnError::Fail {
            return Err(anyhow!(
                "`{}`: {} ({})\nhint: fix the record, or set `on_error = \"skip\"` on source `{}` to ledger bad records and go on",
                e.locator,
                e.reason.detail,
                e.reason.rule.id(),
                self.source.name
            ));
        }
        self.ledger(e)
    }

    /// Take a batch's outcomes in order. Returns false when the source's `limit` is
    /// reached and reading should stop.
    fn take(&mut self, batch: Vec<Processed>) -> anyhow::Result<bool> {
        for Processed { row, docs: extras } in batch {
            if let Some(limit) = self.source.limit
                && self.selected >= limit
            {
                return Ok(false);
            }
            self.st.stage(Stage::Read).records_in += 1;
            match row {
                RowOutcome::Bad(e) => self.bad(&e)?,
                RowOutcome::Fatal(msg) => bail!(msg),
                RowOutcome::Unselected(e) => {
                    self.st.stage(Stage::Read).records_out += 1;
                    self.st.stage(Stage::Select).records_in += 1;
                    self.ledger(&e)?;
                }
                RowOutcome::Selected { docs, failed } => {
                    self.selected += 1;
                    self.st.stage(Stage::Read).records_out += 1;
                    let sel = self.st.stage(Stage::Select);
                    sel.records_in += 1;
                    sel.records_out += 1;
                    let chars: u64 = docs.iter().map(|d| d.chars).sum();
                    let map = self.st.stage(Stage::Map);
                    map.records_in += 1;
                    map.records_out += docs.len() as u64;
                    *map.chars_out.get_or_insert(0) += chars;
                    for e in &failed {
                        self.bad(e)?;
                    }
                    for (doc, extra) in docs.into_iter().zip(extras) {
                        self.document(doc, extra)?;
                    }
                }
            }
        }
        Ok(match self.source.limit {
            Some(limit) => self.selected < limit,
            None => true,
        })
    }

    fn document(&mut self, doc: Document, x: DocExtra) -> anyhow::Result<()> {
        let DocExtra { verdict, contaminated, ai_phrase, pii, bands, tokens } = x;
        self.st.pii.add(&pii);
        if let Some(b) = &contaminated {
            *self.st.contamination.entry(b.clone()).or_default() += 1;
        }
        // The filter, quality and decontamination stages, in order: the document
        // enters each until one drops it.
        let dropped_at = verdict.as_ref().map(|v| v.rule.stage());
        let stages = [(Stage::Filter, true), (Stage::Quality, self.quality_on), (Stage::Decontam, self.decontam_on)];
        for (stage, on) in stages {
            if !on {
                continue;
            }
            let c = self.st.stage(stage);
            c.records_in += 1;
            *c.chars_in.get_or_insert(0) += doc.chars;
            c.chars_out.get_or_insert(0);
            if dropped_at == Some(stage) {
                let reason = verdict.expect("a drop has a reason");
                return self.ledger(&Entry { doc_id: doc.id, source: doc.source, locator: doc.locator, reason });
            }
            c.records_out += 1;
            *c.chars_out.get_or_insert(0) += doc.chars;
            if stage == Stage::Quality {
                self.st.quality_checked += 1;
                self.st.ai_phrase_docs += u64::from(ai_phrase);
            }
        }
        if let Some(reason) = verdict {
            // A rule of a stage not listed above: never expected, but never silent.
            return self.ledger(&Entry { doc_id: doc.id, source: doc.source, locator: doc.locator, reason });
        }
        if self.dedup_enabled {
            let t = Instant::now();
            let d = self.st.stage(Stage::Dedup);
            d.records_in += 1;
            *d.chars_in.get_or_insert(0) += doc.chars;
            d.chars_out.get_or_insert(0);
            let dup = self.dedup.check(&doc, self.names);
            self.dedup_ns += t.elapsed().as_nanos() as u64;
            if let Some(reason) = dup {
                debug_assert_eq!(reason.rule, Rule::ExactDuplicate);
                return self.ledger(&Entry { doc_id: doc.id, source: doc.source, locator: doc.locator, reason });
            }
            let d = self.st.stage(Stage::Dedup);
            d.records_out += 1;
            *d.chars_out.get_or_insert(0) += doc.chars;
        }
        let t = Instant::now();
        let ordinal = self.docs.rows();
        self.docs.push(&doc, self.source)?;
        if let Some(table) = self.bands.as_deref_mut() {
            table.push(bands.as_ref());
        }
        self.write_ns += t.elapsed().as_nanos() as u64;
        if self.spill.is_some() {
            let tk = self.st.stage(Stage::Tokenize);
            tk.records_in += 1;
            let drop = |rule: Rule, value: Option<f64>, detail: String| Entry {
                doc_id: doc.id,
                source: doc.source,
                locator: doc.locator.clone(),
                reason: DropReason::new(rule, value, detail),
            };
            match tokens {
                Some(Ok(t)) => {
                    tk.records_out += 1;
                    if let Some(n) = t.truncated_from {
                        let e = drop(Rule::Truncated, Some(n as f64), format!("{n} tokens cut to seq_len {}", t.ids.len()));
                        self.ledger(&e)?;
                    }
                    let t0 = Instant::now();
                    self.spill.as_deref_mut().expect("spill present").push(&doc, &t, ordinal)?;
                    self.write_ns += t0.elapsed().as_nanos() as u64;
                }
                Some(Err(TokenizeError::Overlong(n))) => {
                    let e = drop(Rule::Overlong, Some(n as f64), format!("{n} tokens > seq_len (overlong = \"drop\")"));
                    self.ledger(&e)?;
                }
                Some(Err(TokenizeError::Template(m))) => self.ledger(&drop(Rule::TemplateError, None, m))?,
                Some(Err(TokenizeError::Tokenizer(m))) => {
                    bail!("`{}`: the tokenizer failed: {m}", doc.locator)
                }
                None => {
                    bail!("internal: document `{}` passed the filters without tokens", doc.locator)
                }
            }
        }
        Ok(())
    }
}

/// A progress line on stderr, shown only on a terminal and when asked for.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(enabled: bool) -> Progress {
        use std::io::IsTerminal;
        if !enabled || !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}: {human_pos} records ({per_sec}) {elapsed}")
                .expect("valid progress template"),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Progress { bar: Some(bar) }
    }
    fn source(&self, name: &str) {
        if let Some(b) = &self.bar {
            b.set_message(format!("reading `{name}`"));
        }
    }
    fn add(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }
    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
