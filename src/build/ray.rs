//! The Ray executor (`curate run RECIPE --executor ray`): the plan's tasks run as Ray
//! tasks on a cluster, each one `curate task PLAN ID` on whichever node Ray picks.
//!
//! 1. A Python with Ray is found (`--python`, `CURATE_RAY_PYTHON`, `.venv/bin/python`
//!    in the current folder, `python3`) and checked before anything is written.
//! 2. The local executor's code makes the plan under the output's lock
//!    ([`super::executor::run_with`]), which this process holds to the end.
//! 3. The driver (`python/curate_ray`, compiled into the binary and written into the
//!    work folder) gets the job on stdin: it checks that every node sees the plan, the
//!    recipe, the inputs and the curate binary, then submits each phase's pending tasks
//!    and waits for the phase before the next. Its events come back on stdout as lines
//!    `@curate {JSON}`; this module prints them.
//! 4. This process runs the finalize task itself, under the lock it holds, with the
//!    local executor's code: the output folder is written here.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};

use super::RunSummary;
use super::executor::{self, PhaseWork, RunOptions};
use super::plan::{PLAN_FILE, Plan};
use crate::recipe::Recipe;

/// The driver's Python sources, as they are in the repository.
const SOURCES: &[(&str, &str)] = &[
    ("curate_ray/__init__.py", include_str!("../../python/curate_ray/__init__.py")),
    ("curate_ray/__main__.py", include_str!("../../python/curate_ray/__main__.py")),
    ("curate_ray/driver.py", include_str!("../../python/curate_ray/driver.py")),
];

/// The pinned Ray version (`python/curate_ray/requirements.txt`).
const REQUIREMENTS: &str = include_str!("../../python/curate_ray/requirements.txt");

/// Where the driver's sources are written, inside the work folder.
const DRIVER_DIR: &str = "driver";
/// The driver's standard error (Ray's own log lines), in the work folder.
const DRIVER_LOG: &str = "ray-driver.log";

#[derive(Debug, Clone, Default)]
pub struct RayOptions {
    /// The cluster's address; `None` follows Ray's rule (`RAY_ADDRESS`, else a local
    /// cluster).
    pub address: Option<String>,
    /// The Python that runs the driver.
    pub python: Option<PathBuf>,
    /// CPUs each task asks Ray for, and `curate task --threads`.
    pub task_threads: usize,
    pub quiet: bool,
}

fn pinned_version() -> &'static str {
    REQUIREMENTS.lines().find_map(|l| l.trim().strip_prefix("ray==")).unwrap_or("?")
}

/// The Python to run the driver with, checked to have Ray.
fn python_for(opts: &RayOptions) -> anyhow::Result<PathBuf> {
    let python = opts
        .python
        .clone()
        .or_else(|| std::env::var_os("CURATE_RAY_PYTHON").filter(|v| !v.is_empty()).map(PathBuf::from))
        .or_else(|| Some(PathBuf::from(".venv/bin/python")).filter(|p| p.is_file()))
        .unwrap_or_else(|| PathBuf::from("python3"));
    let out = Command::new(&python).args(["-c", "import ray; print(ray.__version__)"]).output().map_err(|e| {
        anyhow!(
            "cannot run Python `{}`: {e}\nhint: give a Python that has Ray with `--python` or CURATE_RAY_PYTHON",
            python.display()
        )
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("").trim().to_string();
        bail!(
            "Python `{}` cannot import Ray ({last})\nhint: `{} -m pip install -r python/curate_ray/requirements.txt` (Ray {}), or give another Python with `--python`",
            python.display(),
            python.display(),
            pinned_version()
        );
    }
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if version != pinned_version() && !opts.quiet {
        eprintln!(
            "warning: Python `{}` has Ray {version}; curate is tested with Ray {} (python/curate_ray/requirements.txt)",
            python.display(),
            pinned_version()
        );
    }
    Ok(python)
}

/// `curate run RECIPE --executor ray`.
pub fn run(recipe: &Recipe, opts: &RunOptions, ray: &RayOptions) -> anyhow::Result<RunSummary> {
    if ray.task_threads == 0 {
        bail!("`--threads` must be at least 1");
    }
    let python = python_for(ray)?;
    let curate = std::env::current_exe().context("cannot find the curate binary's own path")?;
    let mut remote = |plan: &Plan, phases: &[PhaseWork]| drive(plan, phases, &python, &curate, ray);
    executor::run_with(recipe, opts, Some(&mut remote))
}

/// The paths every node must see: the plan, the recipe, the tokenizer, and the
/// folders of the inputs.
fn shared_paths(plan: &Plan) -> Vec<PathBuf> {
    let mut paths = vec![plan.work.join(PLAN_FILE), plan.recipe.clone()];
    paths.extend(plan.tokenizer.clone());
    let mut folders = BTreeSet::new();
    for f in plan.sources.iter().filter(|s| !s.excluded).flat_map(|s| &s.files) {
        if let Some(p) = f.input.path.parent() {
            folders.insert(p.to_path_buf());
        }
    }
    paths.extend(folders);
    paths
}

fn write_driver(work: &Path) -> anyhow::Result<PathBuf> {
    let dir = work.join(DRIVER_DIR);
    for (name, text) in SOURCES {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).with_context(|| format!("cannot create `{}`", dir.display()))?;
        std::fs::write(&path, text).with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    Ok(dir)
}

/// Run the pending tasks on the cluster; returns when every phase is done.
fn drive(plan: &Plan, phases: &[PhaseWork], python: &Path, curate: &Path, opts: &RayOptions) -> anyhow::Result<()> {
    let driver = write_driver(&plan.work)?;
    let job = json!({
        "plan": plan.work.join(PLAN_FILE),
        "curate": curate,
        "threads": opts.task_threads,
        "address": opts.address,
        "shared": shared_paths(plan),
        "phases": phases,
    });
    let mut pythonpath = std::ffi::OsString::from(&driver);
    if let Some(old) = std::env::var_os("PYTHONPATH").filter(|v| !v.is_empty()) {
        pythonpath.push(":");
        pythonpath.push(old);
    }
    // Ray's own log lines (a raylet that died, a worker that was killed) go to a file
    // in the work folder, not between curate's lines; a failure names the file.
    let log_path = plan.work.join(DRIVER_LOG);
    let mut log = std::fs::File::create(&log_path).with_context(|| format!("cannot create `{}`", log_path.display()))?;
    let mut child = Command::new(python)
        .args(["-m", "curate_ray", "--job"])
        .env("PYTHONPATH", pythonpath)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log.try_clone().with_context(|| format!("cannot open `{}` twice", log_path.display()))?)
        .spawn()
        .with_context(|| format!("cannot start the Ray driver with `{}`", python.display()))?;
    {
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(job.to_string().as_bytes()).context("cannot send the job to the Ray driver")?;
    }
    let stdout = child.stdout.take().expect("piped stdout");
    let mut failure: Option<anyhow::Error> = None;
    let mut bar: Option<indicatif::ProgressBar> = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading the Ray driver's output")?;
        let Some(ev) = line.strip_prefix("@curate ") else {
            // Ray prints some of its messages on the driver's standard output.
            let _ = writeln!(log, "{line}");
            continue;
        };
        let ev: Value = serde_json::from_str(ev).with_context(|| format!("the Ray driver wrote a line curate cannot read: {line}"))?;
        let s = |k: &str| ev[k].as_str().unwrap_or("").to_string();
        let n = |k: &str| ev[k].as_u64().unwrap_or(0);
        match ev["event"].as_str() {
            Some("cluster") if !opts.quiet => {
                let nodes = ev["nodes"].as_array().map(Vec::len).unwrap_or(0);
                let cpus: f64 = ev["nodes"].as_array().into_iter().flatten().map(|n| n["cpus"].as_f64().unwrap_or(0.0)).sum();
                let pending: usize = phases.iter().map(|p| p.pending.len()).sum();
                let total: usize = phases.iter().map(|p| p.total).sum();
                let driver = &ev["driver"];
                // Node IDs are hex; a short prefix names one, as Ray's own messages do.
                let driver_id: String = driver["id"].as_str().unwrap_or("?").chars().take(12).collect();
                eprintln!(
                    "curate: Ray cluster of {nodes} node(s), {cpus} CPU(s), driver on node {} ({driver_id}); {pending} of {total} task(s) to run, {} CPU(s) each",
                    driver["ip"].as_str().unwrap_or("?"),
                    opts.task_threads
                );
            }
            Some("task") if !opts.quiet => {
                use std::io::IsTerminal;
                if bar.is_none() && std::io::stderr().is_terminal() {
                    let b = indicatif::ProgressBar::new(n("total"));
                    b.set_style(
                        indicatif::ProgressStyle::with_template("{spinner} {msg} {pos}/{len} tasks {elapsed}").expect("valid progress template"),
                    );
                    bar = Some(b);
                }
                if let Some(b) = &bar {
                    b.set_length(n("total"));
                    b.set_position(n("done"));
                    b.set_message(format!("{}: {} on {}", s("phase"), s("id"), s("node")));
                }
            }
            Some("phase") => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                if !opts.quiet {
                    eprintln!(
                        "  {:<9} {}/{} task(s) done ({} run on {} node(s), {} already complete) in {:.2}s",
                        s("phase"),
                        n("total"),
                        n("total"),
                        n("ran"),
                        n("nodes"),
                        n("skipped"),
                        ev["seconds"].as_f64().unwrap_or(0.0)
                    );
                }
            }
            Some("failed") => failure = Some(task_failure(&s("id"), &s("node"), n("code"), &s("stderr"))),
            Some("error") => {
                let hint = ev["hint"].as_str().map(|h| format!("\nhint: {h}")).unwrap_or_default();
                failure = Some(anyhow!("{}{hint}", s("message")));
            }
            _ => {}
        }
    }
    if let Some(b) = bar.take() {
        b.finish_and_clear();
    }
    let status = child.wait().context("waiting for the Ray driver")?;
    if let Some(e) = failure {
        return Err(e);
    }
    if !status.success() {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n  ");
        bail!(
            "the Ray driver stopped ({status}); the end of its messages (all in `{}`):\n  {tail}\n\
             hint: the tasks that finished are kept in the work folder: run the command again to resume from them \
             (on this cluster once it is up, on another with `--address`, or on this machine without `--executor ray`)",
            log_path.display()
        );
    }
    Ok(())
}

/// A task's own failure, told in curate's words: the task's error message (its stderr
/// from the first `error:` line), then where it ran. Lines before it (warnings) are
/// printed as they are.
fn task_failure(id: &str, node: &str, code: u64, stderr: &str) -> anyhow::Error {
    let lines: Vec<&str> = stderr.lines().collect();
    let first = lines.iter().position(|l| l.starts_with("error: ")).unwrap_or(lines.len());
    for l in &lines[..first] {
        eprintln!("{l}");
    }
    let mut msg = lines[first..].join("\n");
    if let Some(rest) = msg.strip_prefix("error: ") {
        msg = rest.to_string();
    }
    if msg.trim().is_empty() {
        msg = format!("`curate task` exited with code {code} and no message");
    }
    // Hints go last when printed, so where the task ran goes in the body.
    let (body, hints): (Vec<&str>, Vec<&str>) = msg.lines().partition(|l| !l.trim_start().starts_with("hint: "));
    let mut text = body.join("\n");
    text.push_str(&format!("\n  in task `{id}`, on Ray node {node}"));
    for h in hints {
        text.push('\n');
        text.push_str(h);
    }
    anyhow!(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_failure_keeps_curates_message_and_hint() {
        let e = task_failure("map-00001", "10.0.0.2", 2, "warning: w\nerror: bad record\n  caused by: x\nhint: fix it\n");
        assert_eq!(e.to_string(), "bad record\n  caused by: x\n  in task `map-00001`, on Ray node 10.0.0.2\nhint: fix it");
    }

    #[test]
    fn the_pin_is_read_from_the_requirements() {
        assert!(pinned_version().starts_with("2."), "{}", pinned_version());
    }
}
