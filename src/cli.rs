//! Command-line interface: argument parsing, wiring and printing. No pipeline logic.
//!
//! Exit codes (documented in the README):
//! - `0`: success;
//! - `1`: policy failure: the run completed its checks and a rule refused it;
//! - `2`: bad input or any other error (a bad recipe, a missing file, a bad record
//!   under `on_error = "fail"`, an I/O failure).
//!
//! stdout is kept for data; the summary, progress and errors go to stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::pipeline::{self, RunOptions, RunSummary};
use crate::recipe;
use crate::report::thousands;

/// Build fine-tuning data that you can prove you are allowed to use.
#[derive(Debug, Parser)]
#[command(
    name = "curate",
    version,
    args_conflicts_with_subcommands = true,
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
    global: Global,
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
}

/// Parse arguments, run, print, and return the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = cli.global.quiet;
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            print_error(&e);
            let _ = quiet;
            ExitCode::from(2)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let (recipe_path, run) = match cli.command {
        Some(Command::Inspect { out, pack, split }) => {
            use std::io::IsTerminal;
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            let marks = if color { crate::inspect::Marks::Color } else { crate::inspect::Marks::Brackets };
            print!("{}", crate::inspect::inspect(&out, &split, pack, marks)?);
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Run { recipe, run }) => (recipe, run),
        None => match cli.recipe {
            Some(r) => (r, cli.run),
            None => {
                use clap::CommandFactory;
                Cli::command().print_help()?;
                return Ok(ExitCode::from(2));
            }
        },
    };
    // `--offline` changes nothing yet for local sources: they never touch the network.
    let _ = cli.global.offline;
    let recipe = recipe::load(&recipe_path)?;
    let threads = run.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    if threads == 0 {
        anyhow::bail!("`--threads` must be at least 1");
    }
    let opts = RunOptions { threads, progress: !cli.global.no_progress && !cli.global.quiet, out: run.out };
    let summary = pipeline::run(&recipe, &opts)?;
    if !cli.global.quiet {
        print_summary(&recipe, &summary);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(recipe: &recipe::Recipe, s: &RunSummary) {
    let mut out = String::new();
    out.push_str(&format!("curate: recipe `{}`\n", recipe.name));
    let width = recipe.sources.iter().map(|s| s.name.len()).max().unwrap_or(6).max(6);
    let shards = s.shards.as_ref();
    let seq_col = if shards.is_some() { format!(" {:>10}", "train seqs") } else { String::new() };
    out.push_str(&format!("  {:<width$} {:>10} {:>10} {:>10}{seq_col}  dropped by rule\n", "source", "read", "kept", "dropped"));
    for (i, (src, st)) in recipe.sources.iter().zip(&s.stats).enumerate() {
        let read = st.stages.get("read").map(|c| c.records_in).unwrap_or(0);
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
    out.push_str(&format!("  wrote `{}` (see report.md)\n", s.out_dir.display()));
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
