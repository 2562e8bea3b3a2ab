//! Command-line interface: argument parsing, wiring and printing. No pipeline logic.
//!
//! Exit codes (documented in the README):
//! - `0`: success;
//! - `1`: policy failure: the compliance check ran and a rule refused the build (a
//!   source or the target rejected, or a conditional rule left unresolved);
//! - `2`: bad input or any other error (a bad recipe, a missing file, a bad record
//!   under `on_error = "fail"`, an I/O failure).
//!
//! stdout is kept for data; the summary, progress and errors go to stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::compliance::{self, Assessment};
use crate::fetch;
use crate::build::{self, ComplianceOutputs, RunOptions, RunSummary};
use crate::recipe;
use crate::report::thousands;

/// Build fine-tuning data that you can prove you are allowed to use.
#[derive(Debug, Parser)]
#[command(
    name = "curate",
    version,
    after_help = "`curate RECIPE` is short for `curate run RECIPE`.\n\nExit codes: 0 success, 1 policy failure, 2 bad input or error."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// The recipe to run (same as `curate run RECIPE`).
    recipe: Option<PathBuf>,

    #[command(flatten)]
    run: RunArgs,

    #[command(flatten)]
    exec: ExecArgs,

    #[command(flatten)]
    global: Global,
}

/// Where a run's tasks run (not what they compute: outputs are identical).
#[derive(Debug, Args, Clone, Default)]
struct ExecArgs {
    /// `local` runs every task in this process; `ray` runs them as Ray tasks on a
    /// cluster whose nodes share the output's folder (see docs/outputs.md).
    #[arg(long, value_enum, default_value_t = Executor::Local)]
    executor: Executor,

    /// The Ray cluster (with `--executor ray`; default: RAY_ADDRESS, else a local one).
    #[arg(long, value_name = "ADDR")]
    address: Option<String>,

    /// The Python that runs the Ray driver (with `--executor ray`; default:
    /// CURATE_RAY_PYTHON, else ./.venv/bin/python, else python3).
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
enum Executor {
    #[default]
    Local,
    Ray,
}

#[derive(Debug, Args)]
struct Global {
    /// Print nothing but errors.
    #[arg(short, long, global = true)]
    quiet: bool,

    /// Never show progress bars (they show only on a terminal anyway).
    #[arg(long, global = true)]
    no_progress: bool,

    /// Use no network: every input must be local or already cached.
    #[arg(long, global = true)]
    offline: bool,
}

#[derive(Debug, Args, Clone, Default)]
struct RunArgs {
    /// Worker threads (default: all cores). Outputs are identical for any value.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,

    /// Write the outputs here instead of the recipe's `[output] dir`.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// Resolve hub and URL sources again and rewrite `curate.lock` before running.
    #[arg(long)]
    update: bool,

    /// Cut the input into about N map tasks (default: one per 256 MB). Outputs are
    /// identical for any value.
    #[arg(long, value_name = "N")]
    tasks: Option<usize>,

    /// Start over: discard the tasks an interrupted run of this output completed.
    #[arg(long)]
    fresh: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a recipe: read, select, normalise, filter and dedup its sources, and write
    /// documents, ledger and report.
    Run {
        /// The recipe file.
        recipe: PathBuf,
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        exec: ExecArgs,
        /// A Data Provenance Initiative collection to cross-check facts against.
        #[arg(long, value_name = "PATH")]
        dpi: Option<PathBuf>,
    },
    /// Write the build's plan (its phases and tasks) into the output's work folder,
    /// and print it; run nothing. `curate task` runs its tasks one by one.
    Plan {
        /// The recipe file.
        recipe: PathBuf,
        #[command(flatten)]
        run: RunArgs,
        /// A Data Provenance Initiative collection to cross-check facts against.
        #[arg(long, value_name = "PATH")]
        dpi: Option<PathBuf>,
    },
    /// Run one task of a plan (what every executor calls). Running a complete task
    /// again does nothing; `finalize` writes the output folder.
    Task {
        /// The plan file (`plan.json` in the output's work folder).
        plan: PathBuf,
        /// The task's id, as the plan names it (e.g. `map-00003`, `dedup`, `finalize`).
        task: String,
        /// Worker threads (default: all cores).
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
    },
    /// Judge every source and the target model against the recipe's policy; read no
    /// data. Exit 0 when all are allowed, 1 when one is rejected or a conditional one
    /// is unresolved, 2 on bad input.
    Check {
        /// The recipe file.
        recipe: PathBuf,
        /// Print the verdicts as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// A Data Provenance Initiative collection (the folder holding `data_summaries/`).
        #[arg(long, value_name = "PATH")]
        dpi: Option<PathBuf>,
    },
    /// Print the whole rule trace for one source: its facts and where each came from,
    /// every rule that fired with the text it enforces, and the rules that did not.
    Explain {
        /// The recipe file.
        recipe: PathBuf,
        /// The source's name in the recipe.
        source: String,
        /// A Data Provenance Initiative collection (the folder holding `data_summaries/`)
        /// to cross-check facts against; overrides the recipe's `[policy] dpi`.
        #[arg(long, value_name = "PATH")]
        dpi: Option<PathBuf>,
    },
    /// Resolve every hub and URL source (revision → commit, files, sizes, sha256) and
    /// write `curate.lock` beside the recipe, printing what changed.
    Lock {
        /// The recipe file.
        recipe: PathBuf,
        /// Write nothing; fail (exit 2) naming each change when the lock is stale.
        #[arg(long)]
        check: bool,
    },
    /// Download every locked input into the cache, and nothing else (writes
    /// `curate.lock` first when there is none).
    Fetch {
        /// The recipe file.
        recipe: PathBuf,
    },
    /// Print one pack of an output's shards, decoded, with trained spans marked
    /// (`«…»`, or green on a terminal) and each document's source and locator.
    Inspect {
        /// The output folder (holding manifest.json and the shards).
        out: PathBuf,
        /// Which pack (0-based, in training order).
        #[arg(long, default_value_t = 0)]
        pack: usize,
        /// `train` or `valid`.
        #[arg(long, default_value = "train")]
        split: String,
    },
    /// Write an output's `report.html` again from its `report.json` (and
    /// `manifest.json`, when there is one), and print its path.
    Report {
        /// The output folder (holding report.json).
        out: PathBuf,
        /// Open the page with the desktop's opener (`xdg-open`, or `open` on macOS).
        #[arg(long)]
        open: bool,
    },
    /// Check a compliance data folder (`licenses.toml`, `models.toml`, `catalog/*.toml`)
    /// the way curate loads its own, and print every problem with its file: for
    /// reviewing an edit to the catalog before it is built in.
    Licenses {
        /// The folder (a copy of the project's `licenses/`).
        dir: PathBuf,
    },
    /// Fine-tune the recipe's base model on its shards with the bundled trainer
    /// (`[train]` in the recipe; see docs/trainer.md). The exit code is the trainer's.
    Train(TrainArgs),
}

/// `curate train`'s options (the launcher is in `crate::train`).
#[derive(Debug, Args)]
struct TrainArgs {
    /// The recipe file (its shards must have been built).
    recipe: PathBuf,
    /// The shards' folder, when not the recipe's `[output] dir`.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// A Python that has the trainer's packages; no virtual environment is made.
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
    /// Where to make (or reuse) the trainer's virtual environment
    /// (default: ~/.cache/curate/trainer-venv).
    #[arg(long, value_name = "DIR")]
    venv: Option<PathBuf>,
    /// Discard the checkpoints and train from the start.
    #[arg(long)]
    restart: bool,
    /// Check the base model, write settings.json and print it; launch nothing.
    #[arg(long)]
    dry_run: bool,
}

pub use crate::compliance::PolicyFailure;

/// Parse arguments, run, print, and return the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = cli.global.quiet;
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            print_error(&e);
            let _ = quiet;
            if e.downcast_ref::<PolicyFailure>().is_some() { ExitCode::from(1) } else { ExitCode::from(2) }
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let (recipe_path, run, exec, dpi) = match cli.command {
        Some(Command::Inspect { out, pack, split }) => {
            use std::io::IsTerminal;
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            let marks = if color { crate::inspect::Marks::Color } else { crate::inspect::Marks::Brackets };
            print!("{}", crate::inspect::inspect(&out, &split, pack, marks)?);
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Report { out, open }) => {
            let page = crate::report_html::rewrite(&out)?;
            println!("{}", page.display());
            if open {
                crate::report_html::open(&page)?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Train(t)) => {
            let recipe = recipe::load(&t.recipe)?;
            let opts = crate::train::Options {
                out: t.out,
                python: t.python,
                venv: t.venv,
                restart: t.restart,
                dry_run: t.dry_run,
                offline: cli.global.offline,
                quiet: cli.global.quiet,
            };
            return crate::train::run(&recipe, &opts);
        }
        Some(Command::Run { recipe, run, exec, dpi }) => (recipe, run, exec, dpi),
        Some(Command::Plan { recipe, run, dpi }) => {
            let (recipe, opts) = prepare(&recipe, &run, dpi, &cli.global)?;
            let plan = build::executor::plan_only(&recipe, &opts)?;
            if !cli.global.quiet {
                print_plan(&plan);
            }
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Task { plan, task, threads }) => {
            let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
            let ran = build::executor::task(&plan, &task, threads)?;
            if !cli.global.quiet {
                eprintln!("curate: task `{task}` {}", if ran { "done" } else { "was already complete" });
            }
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Licenses { dir }) => {
            let data = compliance::cfg::Data::from_dir(&dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
            println!(
                "{}: {} licenses, {} model families, {} datasets ({} with subsets); no problems found",
                dir.display(),
                data.licenses.len(),
                data.families.len(),
                data.catalog.len(),
                data.catalog.iter().filter(|d| !d.subset.is_empty()).count()
            );
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Check { recipe, json, dpi }) => return check(&recipe, json, dpi, cli.global.quiet),
        Some(Command::Explain { recipe, source, dpi }) => return explain(&recipe, &source, dpi),
        Some(Command::Lock { recipe, check }) => return lock(&recipe, check, &cli.global),
        Some(Command::Fetch { recipe }) => return fetch_only(&recipe, &cli.global),
        None => match cli.recipe {
            Some(r) => (r, cli.run, cli.exec, None),
            None => {
                use clap::CommandFactory;
                Cli::command().print_help()?;
                return Ok(ExitCode::from(2));
            }
        },
    };
    if exec.executor == Executor::Local {
        for (given, flag) in [(exec.address.is_some(), "--address"), (exec.python.is_some(), "--python")] {
            if given {
                anyhow::bail!("`{flag}` is for the Ray executor\nhint: add `--executor ray`");
            }
        }
    }
    let (recipe, opts) = prepare(&recipe_path, &run, dpi, &cli.global)?;
    let summary = match exec.executor {
        Executor::Local => build::run(&recipe, &opts)?,
        Executor::Ray => {
            let ray = build::ray::RayOptions {
                address: exec.address,
                python: exec.python,
                // One CPU per task unless `--threads` says more: Ray runs as many
                // tasks side by side as the nodes have CPUs.
                task_threads: run.threads.unwrap_or(1),
                quiet: cli.global.quiet,
            };
            build::ray::run(&recipe, &opts, &ray)?
        }
    };
    if !cli.global.quiet {
        print_summary(&recipe, &summary);
    }
    Ok(ExitCode::SUCCESS)
}

/// Load a recipe, check its output path, resolve and fetch its remote inputs and run
/// the compliance check: everything a run or a plan needs before its first task.
fn prepare(path: &std::path::Path, run: &RunArgs, dpi: Option<PathBuf>, global: &Global) -> anyhow::Result<(recipe::Recipe, RunOptions)> {
    let mut recipe = recipe::load(path)?;
    recipe.require_formats()?;
    // Refuse an output path that is not curate's to replace before any work is done.
    crate::output::check_target(run.out.as_deref().unwrap_or(&recipe.output_dir))?;
    crate::output::install_interrupt_cleanup()?;
    let threads = run.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    if threads == 0 {
        anyhow::bail!("`--threads` must be at least 1");
    }
    // Remote inputs: the lock first (no network when it fits the recipe), so the
    // compliance check can read the hub cards it records.
    let fetcher = fetcher(global)?;
    let mode = if run.update { fetch::Mode::Update } else { fetch::Mode::UseLock };
    let resolved = fetch::resolve(&recipe, &fetcher, mode)?;
    report_lock(&resolved, &recipe, global.quiet);
    let cards = fetch::LockedCards::new(&resolved.lock);
    let mut compliance_out = None;
    if recipe.policy.is_some() {
        let a = compliance::assess_with_cards(&recipe, &compliance::Options { dpi }, &cards)?;
        let d = a.diagnostics_text();
        if !global.quiet && !d.is_empty() {
            eprint!("{d}");
        }
        let unresolved: Vec<&str> = a
            .judgement
            .sources
            .iter()
            .filter(|s| s.verdict == compliance::diags::Verdict::Conditional)
            .map(|s| s.name.as_str())
            .collect();
        let target = a.judgement.target.verdict;
        if !unresolved.is_empty() || target != compliance::diags::Verdict::Allow {
            eprint!("{}", a.table());
            let what = if target != compliance::diags::Verdict::Allow {
                format!("the target model `{}` is {}", a.judgement.target.model, target.as_str())
            } else {
                format!("conditional sources are unresolved: `{}`", unresolved.join("`, `"))
            };
            return Err(PolicyFailure(format!(
                "the policy refuses this build: {what}\nhint: `curate explain {} SOURCE` says what each rule needs (a row filter, or a `[[policy.signoff]]` with a reason)",
                path.display()
            ))
            .into());
        }
        let rejected: Vec<usize> =
            recipe.sources.iter().filter(|s| a.rejected().contains(&s.name.as_str())).map(|s| s.index).collect();
        if !global.quiet && !rejected.is_empty() {
            eprintln!("curate: excluding rejected sources (not read): {}", a.rejected().join(", "));
        }
        compliance_out = Some(ComplianceOutputs {
            excluded: rejected,
            report_json: a.report_json(),
            report_markdown: a.report_markdown(),
            files: vec![
                ("README.md".to_string(), a.dataset_card(&recipe.name).into_bytes()),
                ("NOTICE".to_string(), a.notice(&recipe.name).into_bytes()),
            ],
        });
    }
    let excluded: Vec<usize> = compliance_out.as_ref().map(|c: &ComplianceOutputs| c.excluded.clone()).unwrap_or_default();
    let fetched = fetch::materialize(&recipe, &resolved.lock, &fetcher, &excluded, resolved.written)?;
    if let (Some(path), Some(t)) = (fetched.tokenizer, recipe.target.as_mut()) {
        t.tokenizer = Some(recipe::TokenizerRef::Local(path));
    }
    let opts = RunOptions {
        threads,
        progress: !global.no_progress && !global.quiet,
        out: run.out.clone(),
        compliance: compliance_out,
        lock_sha256: if fetched.inputs.is_empty() && !fetched.tokenizer_locked {
            None
        } else {
            std::fs::read(fetch::lock_path(&recipe)).ok().map(|b| crate::hash::sha256_hex(&b))
        },
        fetched: fetched.inputs,
        tasks: run.tasks,
        fresh: run.fresh,
    };
    Ok((recipe, opts))

}

/// `curate plan`'s listing.
fn print_plan(plan: &build::plan::Plan) {
    let mut out = format!("curate: plan in `{}`\n", plan.work.join(build::plan::PLAN_FILE).display());
    out.push_str(&format!("  stages: {}\n", plan.stages.join(" → ")));
    for p in &plan.phases {
        let bytes: u64 = p.tasks.iter().map(|t| t.bytes).sum();
        let size = if bytes > 0 { format!(" ({} bytes of input)", thousands(bytes)) } else { String::new() };
        out.push_str(&format!("  phase {:<9} {} task(s){size}\n", p.name, p.tasks.len()));
    }
    out.push_str(&format!(
        "  run a task: curate task {} TASK_ID\n",
        plan.work.join(build::plan::PLAN_FILE).display()
    ));
    eprint!("{out}");
}

fn fetcher(g: &Global) -> anyhow::Result<fetch::Fetcher> {
    fetch::Fetcher::from_env(fetch::Options { offline: g.offline, progress: !g.no_progress && !g.quiet, quiet: g.quiet })
}

/// Say that the lock was written and what changed in it.
fn report_lock(r: &fetch::Resolved, recipe: &recipe::Recipe, quiet: bool) {
    if quiet || !r.written {
        return;
    }
    let n = r.lock.sources.len() + usize::from(r.lock.tokenizer.is_some());
    eprintln!("curate: wrote `{}` ({n} remote input(s))", fetch::lock_path(recipe).display());
    for c in &r.changes {
        eprintln!("  {c}");
    }
}

/// `curate lock`: resolve again and write (or, with `--check`, compare).
fn lock(path: &std::path::Path, check: bool, g: &Global) -> anyhow::Result<ExitCode> {
    let recipe = recipe::load(path)?;
    let f = fetcher(g)?;
    let lock_file = fetch::lock_path(&recipe);
    let existed = lock_file.is_file();
    let r = fetch::resolve(&recipe, &f, if check { fetch::Mode::Check } else { fetch::Mode::Update })?;
    if check {
        let current = if existed { Some(fetch::lock::Lock::read(&lock_file)?.to_toml()) } else { None };
        // A recipe with nothing remote needs no lock.
        let needs_lock = existed || !r.lock.sources.is_empty() || r.lock.tokenizer.is_some();
        if needs_lock && current.as_deref() != Some(r.lock.to_toml().as_str()) {
            let why = if !existed { vec![format!("`{}` does not exist", lock_file.display())] } else { r.changes.clone() };
            anyhow::bail!(
                "`{}` is stale:\n  {}\nhint: run `curate lock {}` to update it",
                lock_file.display(),
                why.join("\n  "),
                path.display()
            );
        }
        if !g.quiet {
            eprintln!("curate: `{}` is up to date", lock_file.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !g.quiet {
        if r.written {
            report_lock(&r, &recipe, false);
        } else {
            eprintln!("curate: `{}` is up to date", lock_file.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `curate fetch`: the lock, then every file into the cache.
fn fetch_only(path: &std::path::Path, g: &Global) -> anyhow::Result<ExitCode> {
    let recipe = recipe::load(path)?;
    recipe.require_formats()?;
    let f = fetcher(g)?;
    let r = fetch::resolve(&recipe, &f, fetch::Mode::UseLock)?;
    report_lock(&r, &recipe, g.quiet);
    let m = fetch::materialize(&recipe, &r.lock, &f, &[], r.written)?;
    if !g.quiet {
        let files: usize = m.inputs.values().map(Vec::len).sum::<usize>() + usize::from(m.tokenizer.is_some());
        eprintln!("curate: {files} file(s) in the cache ({} downloaded now)", m.downloaded);
    }
    Ok(ExitCode::SUCCESS)
}

/// Hub cards for `check` and `explain`: those `curate.lock` records; none without a
/// lock (judging then uses the catalog, with a note), so checking needs no network.
fn lock_cards(recipe: &recipe::Recipe) -> anyhow::Result<fetch::LockedCards> {
    let p = fetch::lock_path(recipe);
    let lock = if p.is_file() { fetch::lock::Lock::read(&p)? } else { fetch::lock::Lock::default() };
    Ok(fetch::LockedCards::new(&lock))
}

/// `curate check`: the verdict table (or JSON) on stdout, diagnostics on stderr.
fn check(path: &std::path::Path, json: bool, dpi: Option<PathBuf>, quiet: bool) -> anyhow::Result<ExitCode> {
    let recipe = recipe::load(path)?;
    let a: Assessment = compliance::assess_with_cards(&recipe, &compliance::Options { dpi }, &lock_cards(&recipe)?)?;
    if json {
        let mut s = serde_json::to_string_pretty(&a.to_json())?;
        s.push('\n');
        print!("{s}");
    } else {
        print!("{}", a.table());
    }
    if !quiet {
        eprint!("{}", a.diagnostics_text());
        if !a.passes() && !json {
            eprintln!("hint: `curate explain {} SOURCE` prints the whole rule trace of a source", path.display());
        }
    }
    Ok(if a.passes() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `curate explain`: one source's rule trace, on stdout.
fn explain(path: &std::path::Path, source: &str, dpi: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let recipe = recipe::load(path)?;
    let a = compliance::assess_with_cards(&recipe, &compliance::Options { dpi }, &lock_cards(&recipe)?)?;
    match a.explain(source) {
        Some(text) => {
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        None if recipe.sources.iter().any(|s| s.name == source && s.role == recipe::SourceRole::Eval) => {
            println!(
                "source `{source}` is an eval source (`role = \"eval\"`): it is read only to decontaminate the training data against, never trained on, so policy `{}` does not judge it",
                a.policy.meta.id
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let names: Vec<&str> = recipe.sources.iter().map(|s| s.name.as_str()).collect();
            let near = recipe::diag::nearest(source, &names).map(|n| format!("did you mean `{n}`? ")).unwrap_or_default();
            anyhow::bail!("recipe `{}` has no source `{source}`\nhint: {near}its sources: {}", path.display(), names.join(", "))
        }
    }
}

fn print_summary(recipe: &recipe::Recipe, s: &RunSummary) {
    let mut out = String::new();
    out.push_str(&format!("curate: recipe `{}`\n", recipe.name));
    let width = recipe.sources.iter().map(|s| s.name.len()).max().unwrap_or(6).max(6);
    let shards = s.shards.as_ref();
    let seq_col = if shards.is_some() { format!(" {:>10}", "train seqs") } else { String::new() };
    out.push_str(&format!("  {:<width$} {:>10} {:>10} {:>10}{seq_col}  dropped by rule\n", "source", "records", "docs kept", "dropped"));
    let mut evals = Vec::new();
    for (i, (src, st)) in recipe.sources.iter().zip(&s.stats).enumerate() {
        let read = st.stages.get("read").map(|c| c.records_in).unwrap_or(0);
        if src.role == recipe::SourceRole::Eval {
            // An eval set is indexed for decontamination, never kept or trained on.
            evals.push(format!("  {:<width$} {:>10}  records of `{}`, indexed for decontamination\n", src.name, thousands(read), src.benchmark));
            continue;
        }
        let (kept, _) = st.kept();
        let dropped: u64 = st.drops.values().sum();
        let rules: Vec<String> = st.drops.iter().map(|(k, n)| format!("{k} {n}")).collect();
        // Training sequences: kept documents after the split, weights and caps.
        let seqs = shards.map(|sh| format!(" {:>10}", thousands(sh.sources[i].train_sequences))).unwrap_or_default();
        out.push_str(&format!(
            "  {:<width$} {:>10} {:>10} {:>10}{seqs}  {}\n",
            src.name,
            thousands(read),
            thousands(kept),
            thousands(dropped),
            rules.join(", ")
        ));
    }
    out.push_str("  records: rows read; docs kept: documents in documents.parquet (a self-instruct row gives several);\n");
    out.push_str("  dropped: records and documents in the ledger (mix.weight drops come after docs kept)\n");
    if !evals.is_empty() {
        out.push_str("  eval sets (not trained on):\n");
        for e in evals {
            out.push_str(&e);
        }
    }
    out.push_str(&format!(
        "  {} documents kept, {} records ledgered, in {:.2}s\n",
        thousands(s.documents),
        thousands(s.ledger_entries),
        s.timings.wall_seconds
    ));
    if let Some(sh) = &s.shards {
        out.push_str(&format!(
            "  shards: {} train sequences in {} packs of {} tokens ({:.1}% full){}\n",
            thousands(sh.train.sequences),
            thousands(sh.train.packs),
            sh.seq_len,
            sh.train.efficiency * 100.0,
            sh.valid.as_ref().map(|v| format!(", {} valid sequences", thousands(v.sequences))).unwrap_or_default()
        ));
    }
    let card = if recipe.policy.is_some() { "; dataset card in README.md and NOTICE" } else { "" };
    out.push_str(&format!("  wrote `{}` (see report.html or report.md{card})\n", s.out_dir.display()));
    eprint!("{out}");
}

/// `error: …`, then each cause, then the hints, as uv prints them.
fn print_error(e: &anyhow::Error) {
    let mut hints = Vec::new();
    let mut first = true;
    for cause in e.chain() {
        let text = cause.to_string();
        let mut lines = Vec::new();
        for line in text.lines() {
            match line.trim_start().strip_prefix("hint: ") {
                Some(h) => hints.push(h.to_string()),
                None => lines.push(line),
            }
        }
        let body = lines.join("\n");
        if first {
            eprintln!("error: {body}");
            first = false;
        } else {
            eprintln!("  caused by: {body}");
        }
    }
    for h in hints {
        eprintln!("hint: {h}");
    }
}
