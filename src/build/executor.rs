//! The local executor: makes the plan, runs its tasks on this machine phase after
//! phase (each task on all worker threads), skips the tasks an earlier run completed,
//! and moves the output into place. `curate task` runs one task of a plan, for any
//! other executor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::plan::{Plan, PlanInputs, Task, TaskKind};
use super::work::{self, TaskDir};
use super::{Env, RunSummary, StageTiming, Timings};
use crate::output::{self, Staging};
use crate::recipe::Recipe;
use crate::source::files::{self, InputFile};

/// How a run is carried out (not what it computes: outputs do not depend on these).
#[derive(Debug, Clone, Default)]
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
    /// `--tasks`: about this many map tasks (default: one per 256 MB of input).
    pub tasks: Option<usize>,
    /// `--fresh`: drop an earlier run's completed tasks and start over.
    pub fresh: bool,
}

/// The compliance check's part of a run: sources it rejected (never read), its report
/// section, and the files it adds to the output folder (dataset card, NOTICE).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComplianceOutputs {
    /// Indices of rejected sources.
    pub excluded: Vec<usize>,
    pub report_json: serde_json::Value,
    pub report_markdown: String,
    /// `(file name, bytes)` written into the output folder.
    pub files: Vec<(String, Vec<u8>)>,
}

const COMPLIANCE_FILE: &str = "compliance.json";

/// A progress line on stderr, shown only on a terminal and when asked for.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    pub fn new(enabled: bool) -> Progress {
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
    pub fn task(&self, phase: &str, done: usize, total: usize, what: &str) {
        if let Some(b) = &self.bar {
            b.set_message(format!("{phase} {}/{total}: {what}", done + 1));
        }
    }
    pub fn add(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Per source (by index): its input files, and the warnings found resolving them.
type SourceInputs = (Vec<Vec<InputFile>>, Vec<Vec<String>>);

/// Resolve every source's files before anything is written, so that a missing path
/// fails fast and names its source.
fn resolve_inputs(recipe: &Recipe, opts: &RunOptions) -> anyhow::Result<SourceInputs> {
    let excluded: &[usize] = opts.compliance.as_ref().map(|c| c.excluded.as_slice()).unwrap_or(&[]);
    let mut inputs = Vec::with_capacity(recipe.sources.len());
    let mut warnings = vec![Vec::new(); recipe.sources.len()];
    for s in &recipe.sources {
        // A source the policy rejected is not read at all.
        inputs.push(if excluded.contains(&s.index) {
            vec![]
        } else if let Some(f) = opts.fetched.get(&s.index) {
            f.clone()
        } else {
            let files = files::resolve_noting(s, &recipe.dir, &mut warnings[s.index])?;
            for w in &warnings[s.index] {
                eprintln!("warning: {w}");
            }
            files
        });
    }
    Ok((inputs, warnings))
}

fn tokenizer_path(recipe: &Recipe) -> Option<PathBuf> {
    match recipe.target.as_ref().and_then(|t| t.tokenizer.as_ref()) {
        Some(crate::recipe::TokenizerRef::Local(p)) => Some(p.clone()),
        _ => None,
    }
}

/// Make the plan of a run and write it, with the compliance results, into the work
/// folder. The output's lock must be held (a [`Staging`] of the output).
fn make_plan(recipe: &Recipe, opts: &RunOptions, out_dir: &Path) -> anyhow::Result<Plan> {
    let (inputs, warnings) = resolve_inputs(recipe, opts)?;
    crate::output::check_inputs_outside_output(recipe, &inputs, out_dir)?;
    let work = work::work_dir(out_dir);
    work::check(&work)?;
    if opts.fresh && work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("cannot remove `{}`", work.display()))?;
    }
    let excluded: Vec<usize> = opts.compliance.as_ref().map(|c| c.excluded.clone()).unwrap_or_default();
    let plan = Plan::make(
        recipe,
        &PlanInputs {
            out: out_dir,
            work: &work,
            files: &inputs,
            excluded: &excluded,
            warnings: &warnings,
            lock_sha256: opts.lock_sha256.clone(),
            tokenizer: tokenizer_path(recipe),
            tasks: opts.tasks,
        },
    )?;
    work::create(&work)?;
    if let Some(c) = &opts.compliance {
        work::write_atomic(&work.join(COMPLIANCE_FILE), &serde_json::to_vec(c).expect("compliance serialises"))?;
    } else if work.join(COMPLIANCE_FILE).exists() {
        std::fs::remove_file(work.join(COMPLIANCE_FILE)).context("cannot remove an earlier compliance file")?;
    }
    plan.write(&work.join(super::plan::PLAN_FILE))?;
    let ids: Vec<String> = plan.phases.iter().flat_map(|p| &p.tasks).map(|t| t.id.clone()).collect();
    work::tidy(&work, &ids)?;
    Ok(plan)
}

/// `curate plan`: write the plan and return it.
pub fn plan_only(recipe: &Recipe, opts: &RunOptions) -> anyhow::Result<Plan> {
    let out_dir = opts.out.clone().unwrap_or_else(|| recipe.output_dir.clone());
    let staging = Staging::create(&out_dir)?;
    let plan = make_plan(recipe, opts, &out_dir)?;
    drop(staging);
    Ok(plan)
}

/// The key of every task but finalize, in plan order.
fn keys(plan: &Plan, recipe: &Recipe) -> HashMap<String, String> {
    let tok = tokenizer_path(recipe);
    let mut keys: HashMap<String, String> = HashMap::new();
    for t in plan.phases.iter().flat_map(|p| &p.tasks) {
        let upstream: Vec<String> = t.after.iter().map(|a| keys.get(a).cloned().unwrap_or_default()).collect();
        keys.insert(t.id.clone(), plan.key(t, &upstream, tok.as_deref()));
    }
    keys
}

/// Run one task that is not the finalize task into its folder. `drops` holds the
/// passes' drop lists once a tokenize task has read them, so that the tokenize tasks of
/// one process read them once.
fn run_task(env: &Env, plan: &Plan, task: &Task, key: &str, drops: &mut Option<Vec<Vec<u32>>>) -> anyhow::Result<()> {
    let dir = TaskDir::create(&plan.work, &task.id, key)?;
    super::fault::Point::new(&task.id).hit("start");
    match task.kind {
        TaskKind::Map => super::map_task::run(env, plan, task, &dir)?,
        TaskKind::Dedup => super::passes::dedup(env, plan, task, &dir)?,
        TaskKind::Near => super::passes::near(env, plan, task, &dir)?,
        TaskKind::Tokenize => {
            let i = plan.tasks_of(TaskKind::Tokenize).iter().position(|t| t.id == task.id).expect("a tokenize task");
            if drops.is_none() {
                *drops = Some(super::passes::all_drops(plan)?);
            }
            let drops = drops.as_ref().expect("read above");
            super::tokenize_task::run(env, plan, task, &drops[i], &dir)?
        }
        TaskKind::Finalize => bail!("the finalize task writes the output folder, not a task folder"),
    }
    dir.commit()
}

/// A phase's tasks, and those an earlier run has not completed.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseWork {
    pub name: String,
    pub total: usize,
    pub pending: Vec<String>,
}

/// Another executor: runs the pending tasks of every phase but finalize, phase after
/// phase, in other processes (`curate task`); this process then writes the output.
pub type Remote<'a> = &'a mut dyn FnMut(&Plan, &[PhaseWork]) -> anyhow::Result<()>;

/// `curate run`: plan, run every task here, write the output.
pub fn run(recipe: &Recipe, opts: &RunOptions) -> anyhow::Result<RunSummary> {
    run_with(recipe, opts, None)
}

/// Plan, have `remote` (or this process, when `None`) run the tasks, and write the
/// output here, holding the output's lock throughout: the finalize task runs in this
/// process, under the lock it already holds.
pub fn run_with(recipe: &Recipe, opts: &RunOptions, remote: Option<Remote>) -> anyhow::Result<RunSummary> {
    let started = Instant::now();
    let out_dir = opts.out.clone().unwrap_or_else(|| recipe.output_dir.clone());
    // Taken first: it holds the output's lock for the whole run.
    let staging = Staging::create(&out_dir)?;
    let plan = make_plan(recipe, opts, &out_dir)?;
    let result = run_plan(recipe, opts, &plan, staging, started, remote);
    if result.is_err() {
        // Completed tasks stay for the next run to resume from; a work folder with
        // none is removed.
        let any = std::fs::read_dir(plan.work.join("tasks"))
            .map(|d| d.flatten().any(|e| e.path().join(work::MARKER).is_file()))
            .unwrap_or(false);
        if !any {
            let _ = std::fs::remove_dir_all(&plan.work);
        }
    }
    result
}

fn run_plan(
    recipe: &Recipe,
    opts: &RunOptions,
    plan: &Plan,
    staging: Staging,
    started: Instant,
    remote: Option<Remote>,
) -> anyhow::Result<RunSummary> {
    let keys = keys(plan, recipe);
    let (mut ran, mut skipped) = (0u64, 0u64);
    let by_remote = remote.is_some();
    if let Some(remote) = remote {
        let phases: Vec<PhaseWork> = plan
            .phases
            .iter()
            .filter(|p| p.name != "finalize")
            .map(|p| PhaseWork {
                name: p.name.clone(),
                total: p.tasks.len(),
                pending: p
                    .tasks
                    .iter()
                    .filter(|t| work::completed(&plan.work, &t.id, &keys[&t.id]).is_none())
                    .map(|t| t.id.clone())
                    .collect(),
            })
            .collect();
        remote(plan, &phases)?;
        let pending: u64 = phases.iter().map(|p| p.pending.len() as u64).sum();
        let total: u64 = phases.iter().map(|p| p.total as u64).sum();
        (ran, skipped) = (pending, total - pending);
        // What the other processes wrote must be here, complete.
        for t in plan.phases.iter().flat_map(|p| &p.tasks).filter(|t| t.kind != TaskKind::Finalize) {
            if work::completed(&plan.work, &t.id, &keys[&t.id]).is_none() {
                bail!(
                    "task `{}` finished, but its outputs are not complete in `{}`\nhint: the work folder must be on a filesystem that every node mounts at the same path",
                    t.id,
                    work::task_dir(&plan.work, &t.id).display()
                );
            }
        }
    }
    let env = Env::new(recipe, plan, opts.threads, opts.progress, None)?;
    let local = if by_remote { &[][..] } else { &plan.phases[..] };
    let mut drops = None;
    for phase in local.iter().filter(|p| p.name != "finalize") {
        for (i, task) in phase.tasks.iter().enumerate() {
            let key = &keys[&task.id];
            if work::completed(&plan.work, &task.id, key).is_some() {
                skipped += 1;
                continue;
            }
            env.progress.task(&phase.name, i, phase.tasks.len(), &task.id);
            run_task(&env, plan, task, key, &mut drops).with_context(|| format!("task `{}`", task.id))?;
            ran += 1;
        }
    }
    let compliance = opts.compliance.as_ref();
    let fin = super::finalize::run(&env, plan, &staging, compliance)?;
    env.progress.finish();
    let timings = timings(plan, &fin, env.threads, started, ran, skipped);
    write_timings_and_page(&staging, &timings, &fin)?;
    let out = staging.commit()?;
    std::fs::remove_dir_all(&plan.work).with_context(|| format!("cannot remove the work folder `{}`", plan.work.display()))?;
    Ok(RunSummary {
        out_dir: out,
        stats: fin.stats,
        documents: fin.documents,
        ledger_entries: fin.ledger_entries,
        shards: fin.shards,
        timings,
    })
}

fn timings(plan: &Plan, fin: &super::finalize::Finalized, threads: usize, started: Instant, ran: u64, skipped: u64) -> Timings {
    let bytes_read = plan
        .sources
        .iter()
        .filter(|s| !s.eval && !s.excluded)
        .flat_map(|s| &s.files)
        .map(|f| f.input.bytes)
        .sum();
    let records_read = fin.stats.iter().map(|s| s.stages.get("read").map(|c| c.records_in).unwrap_or(0)).sum();
    let mut stages: Vec<StageTiming> = fin.clocks.clone();
    for s in &mut stages {
        s.seconds = (s.seconds * 1e6).round() / 1e6;
    }
    Timings {
        threads,
        wall_seconds: started.elapsed().as_secs_f64(),
        bytes_read,
        records_read,
        documents_kept: fin.documents,
        tasks_run: ran,
        tasks_skipped: skipped,
        stages,
    }
}

/// Write `timings.json`, then `report.html`, which shows it with report.json and
/// manifest.json.
fn write_timings_and_page(staging: &Staging, t: &Timings, fin: &super::finalize::Finalized) -> anyhow::Result<()> {
    let mut tj = serde_json::to_string_pretty(t).expect("timings serialise");
    tj.push('\n');
    output::write_file(&staging.file("timings.json"), tj.as_bytes())?;
    let timings = serde_json::to_value(t).expect("timings serialise");
    let html = crate::report_html::render(&fin.report, fin.manifest.as_ref(), Some(&timings), "report.json")?;
    output::write_file(&staging.file("report.html"), html.as_bytes())
}

/// `curate task PLAN ID`: run one task of a written plan. Returns false when the task
/// was already complete. The finalize task writes the output folder and removes the
/// work folder.
pub fn task(plan_path: &Path, id: &str, threads: usize) -> anyhow::Result<bool> {
    let plan = Plan::read(plan_path)?;
    let task = plan.task(id).with_context(|| {
        let ids: Vec<&str> = plan.phases.iter().flat_map(|p| &p.tasks).map(|t| t.id.as_str()).collect();
        format!("the plan `{}` has no task `{id}` (it has: {})", plan_path.display(), ids.join(", "))
    })?;
    let mut recipe = crate::recipe::load(&plan.recipe)?;
    recipe.require_formats()?;
    if recipe.sha256 != plan.recipe_sha256 {
        bail!(
            "the recipe `{}` changed after the plan was made\nhint: make the plan again (`curate plan {}`)",
            plan.recipe.display(),
            plan.recipe.display()
        );
    }
    if let (Some(p), Some(t)) = (&plan.tokenizer, recipe.target.as_mut()) {
        t.tokenizer = Some(crate::recipe::TokenizerRef::Local(p.clone()));
    }
    let env = Env::new(&recipe, &plan, threads, false, Some(task.kind))?;
    let keys = keys(&plan, &recipe);
    if task.kind == TaskKind::Finalize {
        for t in plan.phases.iter().flat_map(|p| &p.tasks).filter(|t| t.kind != TaskKind::Finalize) {
            if work::completed(&plan.work, &t.id, &keys[&t.id]).is_none() {
                bail!("task `{}` is not complete: run it before `finalize`", t.id);
            }
        }
        let started = Instant::now();
        let staging = Staging::create(&plan.out)?;
        let compliance: Option<ComplianceOutputs> = match std::fs::read(plan.work.join(COMPLIANCE_FILE)) {
            Ok(b) => Some(serde_json::from_slice(&b).context("reading the work folder's compliance results")?),
            Err(_) => None,
        };
        let fin = super::finalize::run(&env, &plan, &staging, compliance.as_ref())?;
        let timings = timings(&plan, &fin, env.threads, started, 1, 0);
        write_timings_and_page(&staging, &timings, &fin)?;
        staging.commit()?;
        std::fs::remove_dir_all(&plan.work).with_context(|| format!("cannot remove the work folder `{}`", plan.work.display()))?;
        return Ok(true);
    }
    for a in &task.after {
        if work::completed(&plan.work, a, &keys[a]).is_none() {
            bail!("task `{id}` reads the outputs of `{a}`, which is not complete");
        }
    }
    let key = &keys[id];
    if work::completed(&plan.work, id, key).is_some() {
        return Ok(false);
    }
    run_task(&env, &plan, task, key, &mut None)?;
    Ok(true)
}
