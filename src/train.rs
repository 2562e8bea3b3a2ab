//! `curate train RECIPE`: fine-tune the recipe's base model on its shards with the
//! bundled Python trainer (`trainer/curate_train`, compiled into the binary).
//!
//! 1. The shards' `manifest.json` must exist (`curate RECIPE` wrote it).
//! 2. The base model is checked against the verdicts recorded there: it must be the
//!    model they were reached for, or of a family they allow and itself allowed by the
//!    policy's target rules. A refusal is a policy failure (exit 1), before any Python.
//! 3. The resolved `[train]` settings are written to `settings.json` in the training
//!    folder (default: `train/` in the shards' folder).
//! 4. A Python with the trainer's packages is found: `--python` /
//!    `CURATE_TRAIN_PYTHON` as given, or a virtual environment that curate makes once
//!    (`--venv` / `CURATE_TRAIN_VENV`, default `~/.cache/curate/trainer-venv`) from
//!    `trainer/requirements.txt`.
//! 5. `python -m curate_train --settings settings.json` runs with the terminal's
//!    stdout and stderr, so its progress streams; its exit code is curate's.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::compliance::PolicyFailure;
use crate::compliance::{cfg::Data, diags::Verdict, gather, judge};
use crate::recipe::Recipe;
use crate::recipe::train::Train;

/// The trainer's Python sources, as they are in the repository.
const SOURCES: &[(&str, &str)] = &[
    ("curate_train/__init__.py", include_str!("../trainer/curate_train/__init__.py")),
    ("curate_train/__main__.py", include_str!("../trainer/curate_train/__main__.py")),
    ("curate_train/budget.py", include_str!("../trainer/curate_train/budget.py")),
    ("curate_train/compliance.py", include_str!("../trainer/curate_train/compliance.py")),
    ("curate_train/data.py", include_str!("../trainer/curate_train/data.py")),
    ("curate_train/model.py", include_str!("../trainer/curate_train/model.py")),
    ("curate_train/settings.py", include_str!("../trainer/curate_train/settings.py")),
    ("curate_train/train.py", include_str!("../trainer/curate_train/train.py")),
    ("curate_shards.py", include_str!("../python/curate_shards.py")),
];

/// The pinned packages the virtual environment gets.
pub const REQUIREMENTS: &str = include_str!("../trainer/requirements.txt");

/// What the trainer imports; a Python without one of these cannot train.
const IMPORTS: &str = "import torch, transformers, peft, safetensors, numpy";

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The shards' folder, when not the recipe's `[output] dir`.
    pub out: Option<PathBuf>,
    /// A Python that has the trainer's packages (no virtual environment is made).
    pub python: Option<PathBuf>,
    /// Where to make (or find) the trainer's virtual environment.
    pub venv: Option<PathBuf>,
    /// Discard the checkpoints and train from the start.
    pub restart: bool,
    /// Check and write settings.json, print it, and launch nothing.
    pub dry_run: bool,
    pub offline: bool,
    pub quiet: bool,
}

/// Check, resolve, launch; the exit code is the trainer's.
pub fn run(recipe: &Recipe, opts: &Options) -> anyhow::Result<ExitCode> {
    let Some(t) = &recipe.train else {
        bail!(
            "recipe `{}` has no `[train]` section\nhint: add `[train]` with at least `base = \"org/name\"` (or rely on `[target] model`); docs/recipe.md lists the keys",
            recipe.path.display()
        );
    };
    let shards = opts.out.clone().unwrap_or_else(|| recipe.output_dir.clone());
    let manifest_path = shards.join("manifest.json");
    let manifest: Value = match std::fs::read(&manifest_path) {
        Ok(b) => serde_json::from_slice(&b).with_context(|| format!("`{}` is not valid JSON", manifest_path.display()))?,
        Err(_) => bail!(
            "no shards in `{}`: it has no manifest.json\nhint: run `curate {}` first (with `[target] tokenizer`), then `curate train`",
            shards.display(),
            recipe.path.display()
        ),
    };
    let record = check_base(recipe, t, &manifest)?;
    let train_dir = t.dir.clone().unwrap_or_else(|| shards.join("train"));
    std::fs::create_dir_all(&train_dir).with_context(|| format!("cannot create `{}`", train_dir.display()))?;
    let settings = settings_json(recipe, t, &shards, &train_dir, record, opts)?;
    let settings_path = train_dir.join("settings.json");
    let mut text = serde_json::to_string_pretty(&settings)?;
    text.push('\n');
    std::fs::write(&settings_path, &text).with_context(|| format!("cannot write `{}`", settings_path.display()))?;
    if !opts.quiet {
        let c = &settings["compliance"];
        let verdict = if c["checked"] == json!(true) {
            format!("allowed by the verdicts in manifest.json (policy `{}`)", c["policy"].as_str().unwrap_or("?"))
        } else {
            c["note"].as_str().unwrap_or("").to_string()
        };
        eprintln!("curate: base `{}` ({} from `{}`): {verdict}", t.base_id, t.base.location(), t.base_id_from);
    }
    if opts.dry_run {
        print!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    let python = python_for(opts)?;
    let src = write_sources()?;
    if !opts.quiet {
        eprintln!(
            "curate: training with {} (method {}); settings in `{}`, outputs in `{}`",
            python.display(),
            t.method.as_str(),
            settings_path.display(),
            train_dir.display()
        );
    }
    let mut cmd = Command::new(&python);
    cmd.arg("-m").arg("curate_train").arg("--settings").arg(&settings_path);
    let mut path = std::ffi::OsString::from(src.as_os_str());
    if let Some(old) = std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty()) {
        path.push(":");
        path.push(old);
    }
    cmd.env("PYTHONPATH", path).env("PYTHONUNBUFFERED", "1");
    if opts.offline {
        cmd.env("HF_HUB_OFFLINE", "1").env("TRANSFORMERS_OFFLINE", "1");
    }
    let mut child = cmd.spawn().with_context(|| format!("cannot start `{}`", python.display()))?;
    // Ctrl-C reaches the trainer too, which saves a checkpoint and an adapter before
    // it exits; curate waits for that instead of dying first.
    let _guard = IgnoreInterrupts::new();
    let status = child.wait().context("waiting for the trainer")?;
    Ok(exit_code(status))
}

fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    if let Some(c) = status.code() {
        return ExitCode::from(c.clamp(0, 255) as u8);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return ExitCode::from((128 + sig).clamp(0, 255) as u8);
        }
    }
    ExitCode::from(2)
}

/// SIGINT ignored while the trainer runs, restored afterwards.
struct IgnoreInterrupts;

#[cfg(unix)]
mod sig {
    unsafe extern "C" {
        pub fn signal(signum: i32, handler: usize) -> usize;
    }
    pub const SIGINT: i32 = 2;
    pub const SIG_DFL: usize = 0;
    pub const SIG_IGN: usize = 1;
}

impl IgnoreInterrupts {
    fn new() -> Self {
        #[cfg(unix)]
        // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
        unsafe {
            sig::signal(sig::SIGINT, sig::SIG_IGN);
        }
        IgnoreInterrupts
    }
}

impl Drop for IgnoreInterrupts {
    fn drop(&mut self) {
        #[cfg(unix)]
        // SAFETY: restores the default disposition.
        unsafe {
            sig::signal(sig::SIGINT, sig::SIG_DFL);
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

/// The base against the manifest's verdicts: the record for settings.json, or a
/// [`PolicyFailure`] naming why.
pub fn check_base(recipe: &Recipe, t: &Train, manifest: &Value) -> anyhow::Result<Value> {
    let c = &manifest["compliance"];
    if !c.is_object() {
        return Ok(json!({
            "checked": false,
            "note": "the shards carry no compliance verdicts (the recipe had no `[policy]` when they were built); the base model is not checked",
        }));
    }
    let id = t.base_id.as_str();
    let judged = c["target"]["model"].as_str().unwrap_or("?");
    let families = strings(&c["base_families"]);
    let policy_id = c["policy"].as_str().unwrap_or_default().to_string();
    let is_target = strings(&c["base_models"]).iter().any(|m| m.eq_ignore_ascii_case(id));
    let refuse = |what: String, hint: &str| -> anyhow::Error {
        PolicyFailure(format!("the verdicts in manifest.json do not allow training `{id}` on these shards: {what}\nhint: {hint}")).into()
    };
    let rebuild = format!(
        "to train another model, set `[target] model` to it and run `curate {}` again, so that every source is judged for it",
        recipe.path.display()
    );
    if is_target {
        return Ok(json!({
            "checked": true, "policy": policy_id, "base": id, "family": c["target"]["family"], "verdict": "allow",
            "decision": "the base is the model the verdicts were reached for",
        }));
    }
    let data = Data::bundled()?;
    let Some(family) = data.model(id).map(|m| m.family.id.clone()) else {
        return Err(refuse(
            format!("the verdicts were reached for `{judged}`, and `{id}` matches no model family in licenses/models.toml"),
            &rebuild,
        ));
    };
    if !families.contains(&family) {
        let mut why = String::new();
        for term in c["same_family"].as_array().into_iter().flatten() {
            let fams = strings(&term["families"]);
            if !fams.is_empty() {
                why.push_str(&format!(
                    "\n  source `{}` holds output that may train only `{}`",
                    term["source"].as_str().unwrap_or("?"),
                    fams.join("`, `")
                ));
            }
        }
        let allowed = if families.is_empty() { "none".to_string() } else { format!("`{}`", families.join("`, `")) };
        return Err(refuse(
            format!("it is of family `{family}`; the verdicts (reached for `{judged}`) allow the family {allowed}{why}"),
            &format!("train a model of an allowed family, or {rebuild}"),
        ));
    }
    // Same family as the judged target: the policy's target rules still apply to it
    // (an instruction-tuned variant, a license needing a sign-off).
    let policy = data.policy(&policy_id, &recipe.dir)?;
    let mut target = recipe.target.clone().context("`[train]` needs `[target]`")?;
    target.model = Some(id.to_string());
    target.family_override = None;
    let facts = gather::target(&data, &policy.meta.id, &target).map_err(anyhow::Error::msg)?;
    let j = judge::judge(&data, &policy, &facts, &[], &recipe.signoffs);
    if j.target.verdict != Verdict::Allow {
        let rules: Vec<String> = j
            .target
            .rules
            .iter()
            .filter(|r| r.resolved_by.is_none())
            .map(|r| format!("\n  {} [{}]: {}", r.id, r.severity.as_str(), r.description))
            .collect();
        return Err(refuse(
            format!("as a base it is {} under policy `{policy_id}`{}", j.target.verdict.as_str(), rules.concat()),
            "a conditional rule is accepted with a `[[policy.signoff]]` in the recipe; `curate check` shows the target's rules",
        ));
    }
    Ok(json!({
        "checked": true, "policy": policy_id, "base": id, "family": family, "verdict": "allow",
        "decision": format!("family `{family}` is allowed by the verdicts, and the policy's target rules allow `{id}`"),
    }))
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("cannot resolve `{}`", p.display()))
}

fn settings_json(recipe: &Recipe, t: &Train, shards: &Path, train_dir: &Path, record: Value, opts: &Options) -> anyhow::Result<Value> {
    use crate::recipe::train::Base;
    let model = match &t.base {
        Base::Hub(id) => id.clone(),
        Base::Local(p) => absolute(p)?.display().to_string(),
    };
    Ok(json!({
        "format": "curate-train-settings",
        "version": 1,
        "recipe": { "name": recipe.name, "file": recipe.path.display().to_string(), "sha256": recipe.sha256 },
        "shards": absolute(shards)?.display().to_string(),
        "output": absolute(train_dir)?.display().to_string(),
        "base": { "model": model, "id": t.base_id, "id_from": t.base_id_from, "family": record["family"], "random_init": t.random_init },
        "compliance": record,
        "method": t.method.as_str(),
        "lora": { "rank": t.lora_rank, "alpha": t.lora_alpha, "dropout": t.lora_dropout, "targets": t.lora_targets },
        "learning_rate": t.learning_rate,
        "weight_decay": t.weight_decay,
        "max_grad_norm": t.max_grad_norm,
        "epochs": t.epochs,
        "max_tokens": t.max_tokens,
        "max_steps": t.max_steps,
        "micro_batch": t.micro_batch,
        "grad_accum": t.grad_accum,
        "warmup": t.warmup,
        "budget_hours": t.budget_hours,
        "seed": t.seed,
        "merge": t.merge,
        "checkpoint_minutes": t.checkpoint_minutes,
        "eval_every": t.eval_every,
        "eval_max_packs": t.eval_max_packs,
        "gradient_checkpointing": t.gradient_checkpointing,
        "attention": t.attention,
        "restart": opts.restart,
        "offline": opts.offline,
    }))
}

/// `~/.cache/curate/trainer-venv` (or under `$XDG_CACHE_HOME`).
pub fn default_venv() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("curate").join("trainer-venv"))
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) { venv.join("Scripts").join("python.exe") } else { venv.join("bin").join("python") }
}

/// Whether `python` runs and has the trainer's packages.
fn check_packages(python: &Path) -> anyhow::Result<()> {
    let out = Command::new(python).args(["-c", IMPORTS]).output().map_err(|e| {
        anyhow::anyhow!("cannot run Python `{}`: {e}\nhint: give an interpreter that exists with `--python`, or leave it out to let curate make a virtual environment", python.display())
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        bail!(
            "Python `{}` lacks the trainer's packages ({last})\nhint: `{} -m pip install -r trainer/requirements.txt`, or leave out `--python` and curate makes its own virtual environment",
            python.display(),
            python.display()
        );
    }
    Ok(())
}

/// The Python to run the trainer with: the one given, or curate's virtual
/// environment, made (once per requirements) when missing.
fn python_for(opts: &Options) -> anyhow::Result<PathBuf> {
    if let Some(p) = opts.python.clone().or_else(|| std::env::var_os("CURATE_TRAIN_PYTHON").filter(|v| !v.is_empty()).map(PathBuf::from)) {
        check_packages(&p)?;
        return Ok(p);
    }
    let venv = match opts.venv.clone().or_else(|| std::env::var_os("CURATE_TRAIN_VENV").filter(|v| !v.is_empty()).map(PathBuf::from)) {
        Some(v) => v,
        None => default_venv().context("no home folder to keep the trainer's virtual environment in\nhint: give one with `--venv DIR`")?,
    };
    let python = venv_python(&venv);
    let stamp = venv.join(".curate-requirements.sha256");
    let want = crate::hash::sha256_hex(REQUIREMENTS.as_bytes());
    if python.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == want) {
        return Ok(python);
    }
    if opts.offline {
        bail!(
            "the trainer's virtual environment `{}` is missing or out of date, and `--offline` forbids installing its packages\nhint: run `curate train` once without `--offline`, or give a prepared Python with `--python`",
            venv.display()
        );
    }
    let base = std::env::var_os("CURATE_PYTHON3").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("python3"));
    let ok = Command::new(&base).arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        bail!(
            "Python 3 is not installed (`{}` does not run); `curate train` needs it for the trainer\nhint: install Python 3.10 or newer, or give a Python that has the trainer's packages with `--python`",
            base.display()
        );
    }
    eprintln!(
        "curate: making the trainer's virtual environment in `{}` (torch, transformers, peft, bitsandbytes from PyPI: about 3 GB to download, once)",
        venv.display()
    );
    if !python.exists() {
        let st = Command::new(&base).arg("-m").arg("venv").arg(&venv).status().context("running `python3 -m venv`")?;
        if !st.success() {
            bail!(
                "`{} -m venv {}` failed\nhint: on Debian and Ubuntu, `apt-get install python3-venv`",
                base.display(),
                venv.display()
            );
        }
    }
    let req = venv.join("requirements.txt");
    std::fs::write(&req, REQUIREMENTS).with_context(|| format!("cannot write `{}`", req.display()))?;
    let st = Command::new(&python)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "-r"])
        .arg(&req)
        .stdout(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::inherit())
        .status()
        .context("running pip")?;
    if !st.success() {
        bail!(
            "pip could not install the trainer's packages into `{}`\nhint: check the network and the messages above; `curate train` tries again next time",
            venv.display()
        );
    }
    std::fs::write(&stamp, format!("{want}\n"))?;
    Ok(python)
}

/// Write the trainer's sources where Python can import them (a folder named by
/// their hash, reused while they do not change).
fn write_sources() -> anyhow::Result<PathBuf> {
    let mut all = String::new();
    for (name, text) in SOURCES {
        all.push_str(name);
        all.push('\0');
        all.push_str(text);
    }
    let hash = crate::hash::sha256_hex(all.as_bytes());
    let dir = std::env::temp_dir().join(format!("curate-trainer-{}", &hash[..16]));
    if dir.join("curate_train").join("__main__.py").exists() {
        return Ok(dir);
    }
    let tmp = std::env::temp_dir().join(format!("curate-trainer-{}.{}", &hash[..16], std::process::id()));
    std::fs::create_dir_all(tmp.join("curate_train")).with_context(|| format!("cannot create `{}`", tmp.display()))?;
    for (name, text) in SOURCES {
        std::fs::write(tmp.join(name), text)?;
    }
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another run put the same files there first.
        let _ = std::fs::remove_dir_all(&tmp);
        if !dir.join("curate_train").join("__main__.py").exists() {
            bail!("cannot write the trainer's sources to `{}`", dir.display());
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_trainer_module_is_compiled_in() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("trainer/curate_train");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".py") {
                let key = format!("curate_train/{name}");
                assert!(SOURCES.iter().any(|(n, _)| *n == key), "{key} is not in train::SOURCES");
            }
        }
    }
}
