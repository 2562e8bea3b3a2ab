//! A build as a plan of tasks with files between them ([`plan`]), run by an executor:
//! [`executor`] runs them on this machine; any other executor runs `curate task PLAN
//! ID` for each task, phase after phase. Each task writes its outputs and then a
//! completion marker ([`work`]), so a build that was stopped resumes where it was.
//!
//! | module | job |
//! |---|---|
//! | [`plan`] | the phases and tasks, input slicing, task keys |
//! | [`work`] | the work folder, task folders, completion markers |
//! | [`executor`] | the local executor, the summary, resuming |
//! | [`map_task`] | a map task: a slice through the per-document stages |
//! | [`passes`] | exact dedup and near-dup clustering over the map tasks' outputs |
//! | [`tokenize_task`] | a tokenize task: a map task's survivors into token spills |
//! | [`finalize`] | the output folder: documents, ledger, shards, report, manifest |
//! | [`entries`] | ledger rows between tasks |
//! | [`fault`] | named points where a test can kill a run |

pub mod entries;
pub mod executor;
pub mod fault;
pub mod finalize;
pub mod map_task;
pub mod passes;
pub mod plan;
pub mod ray;
pub mod tokenize_task;
pub mod work;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, anyhow};
use serde::Serialize;

use crate::ledger::Stage;
use crate::recipe::Recipe;
use crate::report::SourceStats;
use crate::shards::ShardSummary;
use crate::source::files::InputFile;
use crate::stages::DocStage;
use crate::stages::decontam::DecontamAction;
use crate::stages::eval::EvalSet;
use crate::stages::near_dedup::MinHasher;
use crate::tokenize::TargetTokenizer;

pub use executor::{ComplianceOutputs, RunOptions, run};

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
    /// Tasks run by this run, and tasks found complete from an earlier one.
    pub tasks_run: u64,
    pub tasks_skipped: u64,
    pub stages: Vec<StageTiming>,
}

#[derive(Debug, Default, Clone, Serialize, serde::Deserialize)]
pub struct StageTiming {
    pub stage: String,
    pub seconds: f64,
    /// `cpu` for summed worker time, `wall` for time on one thread.
    pub clock: String,
}

/// This thread's CPU time so far, in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`); 0 where
/// the clock cannot be read.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec and the clock id is a constant the
    // platform defines; clock_gettime writes nothing else.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if r != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The clocks a task keeps, in nanoseconds: CPU time of the per-document stages summed
/// over worker threads, the workers' time off the CPU, the reader's CPU time (and its
/// time blocked on busy workers), and writing's CPU time.
#[derive(Default)]
pub struct Clocks {
    stages: [AtomicU64; Stage::ALL.len()],
    /// Worker time between a record's start and end that was not CPU time: the thread
    /// was preempted, or waited on a lock or a page fault.
    off_cpu: AtomicU64,
    read: AtomicU64,
    /// The reader waiting for the workers to take a batch (a full queue).
    read_blocked: AtomicU64,
    write: AtomicU64,
}

/// One record's clock on a worker thread: the elapsed time of each stage it goes
/// through ([`RecordClock::lap`]), then ([`RecordClock::finish`]) the thread's CPU time
/// over the whole record shared among the stages in proportion, and the rest booked as
/// time off the CPU. Two reads of the thread's CPU clock per record, whatever the
/// number of stages.
pub struct RecordClock {
    cpu0: u64,
    start: Instant,
    last: Instant,
    walls: [u64; Stage::ALL.len()],
}

impl RecordClock {
    pub fn start() -> RecordClock {
        let now = Instant::now();
        RecordClock { cpu0: thread_cpu_ns(), start: now, last: now, walls: [0; Stage::ALL.len()] }
    }

    /// Book the time since the last lap to `stage`.
    pub fn lap(&mut self, stage: Stage) {
        let now = Instant::now();
        // `Stage::ALL` lists the stages in declaration order.
        self.walls[stage as usize] += (now - self.last).as_nanos() as u64;
        self.last = now;
    }

    pub fn finish(self, clocks: &Clocks) {
        let wall = (self.last - self.start).as_nanos() as u64;
        let cpu = thread_cpu_ns().saturating_sub(self.cpu0);
        // Without a CPU clock, elapsed time stands in for it.
        let share = if wall == 0 || self.cpu0 == 0 { 1.0 } else { (cpu as f64 / wall as f64).min(1.0) };
        for (c, &w) in clocks.stages.iter().zip(&self.walls) {
            if w > 0 {
                c.fetch_add((w as f64 * share).round() as u64, Ordering::Relaxed);
            }
        }
        clocks.off_cpu.fetch_add((wall as f64 * (1.0 - share)).round() as u64, Ordering::Relaxed);
    }
}

impl Clocks {
    /// The reader thread's CPU time.
    pub fn add_read_cpu(&self, ns: u64) {
        self.read.fetch_add(ns, Ordering::Relaxed);
    }
    pub fn add_read_blocked(&self, since: Instant) {
        self.read_blocked.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
    /// Writing's CPU time: the thread's CPU clock since `cpu0` ([`thread_cpu_ns`]).
    pub fn add_write_since(&self, cpu0: u64) {
        self.write.fetch_add(thread_cpu_ns().saturating_sub(cpu0), Ordering::Relaxed);
    }
    pub fn snapshot(&self) -> Vec<StageTiming> {
        let t = |stage: &str, a: &AtomicU64, clock: &str| StageTiming { stage: stage.into(), seconds: secs(a), clock: clock.into() };
        let mut v = vec![t("read", &self.read, "cpu"), t("read_blocked", &self.read_blocked, "wait")];
        for (s, c) in Stage::ALL.iter().zip(&self.stages) {
            if secs(c) > 0.0 {
                v.push(t(s.as_str(), c, "cpu"));
            }
        }
        v.push(t("workers_off_cpu", &self.off_cpu, "wait"));
        v.push(t("write", &self.write, "cpu"));
        v
    }
}

fn secs(a: &AtomicU64) -> f64 {
    a.load(Ordering::Relaxed) as f64 / 1e9
}

/// What a task counted, saved as `counters.json` in its folder.
pub struct TaskCounters {
    /// Counts per source (recipe index).
    pub sources: Vec<(usize, SourceStats)>,
    pub clocks: Vec<StageTiming>,
    /// A pass's own summary (the near-dup pass's), when it has one.
    pub extra: serde_json::Value,
}

impl TaskCounters {
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let v = serde_json::json!({
            "sources": self.sources.iter().map(|(i, s)| serde_json::json!({"index": i, "counters": s.to_json()})).collect::<Vec<_>>(),
            "clocks": self.clocks,
            "extra": self.extra,
        });
        let mut text = serde_json::to_string(&v).expect("counters serialise");
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("cannot write `{}`", path.display()))
    }

    pub fn read(path: &Path) -> anyhow::Result<TaskCounters> {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?)
            .with_context(|| format!("`{}` is not valid JSON", path.display()))?;
        let mut sources = Vec::new();
        for s in v["sources"].as_array().ok_or_else(|| anyhow!("`{}` has no sources", path.display()))? {
            let i = s["index"].as_u64().ok_or_else(|| anyhow!("`{}`: a source without an index", path.display()))? as usize;
            sources.push((i, SourceStats::from_json(&s["counters"]).with_context(|| format!("in `{}`", path.display()))?));
        }
        let clocks = serde_json::from_value(v["clocks"].clone()).unwrap_or_default();
        Ok(TaskCounters { sources, clocks, extra: v["extra"].clone() })
    }
}

/// What tasks share in one process: the recipe, the worker threads, and what is built
/// once from the recipe (eval index, MinHash permutations, tokenizer).
pub struct Env<'a> {
    pub recipe: &'a Recipe,
    pub pool: rayon::ThreadPool,
    pub threads: usize,
    pub progress: executor::Progress,
    pub eval: Option<EvalSet>,
    /// Counts of the eval sources, made while the index was built.
    pub eval_stats: Vec<SourceStats>,
    pub minhasher: Option<MinHasher>,
    pub tokenizer: Option<TargetTokenizer>,
}

impl<'a> Env<'a> {
    /// What the tasks of one process share. `only` is the one task kind this process
    /// runs (`curate task`), so that what that kind does not use (the tokenizer for a
    /// map task, the eval index for a tokenize task) is not loaded; `None` loads all.
    pub fn new(recipe: &'a Recipe, plan: &plan::Plan, threads: usize, progress: bool, only: Option<plan::TaskKind>) -> anyhow::Result<Env<'a>> {
        use plan::TaskKind as K;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("curate-worker-{i}"))
            .build()
            .context("cannot start worker threads")?;
        let needs_tokenizer = !matches!(only, Some(K::Map | K::Dedup | K::Near));
        let needs_eval = !matches!(only, Some(K::Dedup | K::Near | K::Tokenize));
        let tokenizer = match recipe.target.as_ref() {
            Some(t) if t.tokenizer.is_some() && needs_tokenizer => Some(TargetTokenizer::load(t)?),
            _ => None,
        };
        let mut eval_stats = vec![SourceStats::default(); recipe.sources.len()];
        let eval = match &recipe.decontam {
            Some(cfg) if needs_eval => {
                let inputs: Vec<Vec<InputFile>> = plan.sources.iter().map(|s| s.files.iter().map(|f| f.input.clone()).collect()).collect();
                let excluded: Vec<usize> = plan.sources.iter().enumerate().filter(|(_, s)| s.excluded).map(|(i, _)| i).collect();
                Some(crate::stages::eval::build_index(recipe, cfg, &inputs, &excluded, &mut eval_stats)?)
            }
            _ => None,
        };
        Ok(Env {
            recipe,
            pool,
            threads: threads.max(1),
            progress: executor::Progress::new(progress),
            eval,
            eval_stats,
            minhasher: recipe.dedup.near.as_ref().map(MinHasher::new),
            tokenizer,
        })
    }

    /// The per-document stages that follow `after` in the recipe's stage list, up to
    /// the next pass. Tokenizing always waits for the dedup decisions: it has a phase
    /// of its own ([`Env::doc_stages_at`]).
    pub fn doc_stages(&self, after: Stage) -> anyhow::Result<Vec<DocStage<'_>>> {
        let list = crate::stages::plan_stages(self.recipe);
        let start = list.iter().position(|s| *s == after).map(|i| i + 1).unwrap_or(0);
        let run: Vec<Stage> =
            list[start..].iter().copied().take_while(|s| crate::stages::is_document_stage(*s) && *s != Stage::Tokenize).collect();
        self.stages_of(&run)
    }

    /// The per-document stages from `first` on, up to the next pass.
    pub fn doc_stages_at(&self, first: Stage) -> anyhow::Result<Vec<DocStage<'_>>> {
        let list = crate::stages::plan_stages(self.recipe);
        let Some(start) = list.iter().position(|s| *s == first) else { return Ok(vec![]) };
        let run: Vec<Stage> = list[start..].iter().copied().take_while(|s| crate::stages::is_document_stage(*s)).collect();
        self.stages_of(&run)
    }

    fn stages_of(&self, run: &[Stage]) -> anyhow::Result<Vec<DocStage<'_>>> {
        let q = &self.recipe.filters.quality;
        let mut out = Vec::new();
        for &s in run {
            out.push(match s {
                Stage::Pii => DocStage::Pii,
                Stage::Filter => DocStage::Filter(&self.recipe.filters),
                Stage::Quality => DocStage::Quality(q),
                Stage::Decontam => {
                    let e = self.eval.as_ref().context("decontamination without an eval index")?;
                    let action = self.recipe.decontam.as_ref().map(|c| c.action).unwrap_or(DecontamAction::Drop);
                    DocStage::Decontam(&e.index, action)
                }
                Stage::MinHash => DocStage::MinHash(self.minhasher.as_ref().context("MinHash without settings")?),
                Stage::Tokenize => DocStage::Tokenize {
                    tokenizer: self.tokenizer.as_ref().context("tokenize without a tokenizer")?,
                    truncate: self.recipe.pack.overlong == crate::recipe::Overlong::Truncate,
                },
                other => unreachable!("{other:?} is not a document stage"),
            });
        }
        Ok(out)
    }
}
