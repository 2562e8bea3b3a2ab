//! `curate train`: the base model checked against the shards' verdicts (refusals are
//! exit 1 and need no Python), the settings it resolves, the errors when Python or
//! its packages are missing, and, when a Python with torch is at hand, a whole run on
//! the quickstart's shards with the tiny model.

mod common;
use common::*;

use std::path::PathBuf;
use std::process::Command;

fn tokenizer() -> String {
    repo().join("recipes/tokenizer/tokenizer.json").display().to_string()
}

/// A recipe whose only source is Llama 2 output, built for a Llama 2 target (the
/// policy then obliges the shards to train only Llama 2), plus the given `[train]`.
fn llama2_recipe(d: &Dir, train: &str) -> PathBuf {
    d.write("chat.jsonl", std::fs::read(repo().join("recipes/data/chat.jsonl")).unwrap());
    d.recipe(&format!(
        r#"[target]
model = "meta-llama/Llama-2-7b-hf"
tokenizer = "{tok}"
template = "llama2"
seq_len = 512

[policy]
use = "neurips-2023"

[[policy.signoff]]
rule = "N23-BASE-LLAMA2-ACCESS"
by = "the team"
reason = "approved for a Llama 2 download link"

[[source]]
name = "llama-chats"
path = "chat.jsonl"
format = "chat"
license = "LicenseRef-Llama2-Community"
origin = "model"
generated_by = ["meta-llama/Llama-2-70b-chat-hf"]

[train]
{train}
"#,
        tok = tokenizer()
    ))
}

/// The quickstart's sources and policy in a temp folder (paths made absolute), with
/// its `[train]` section replaced.
fn quickstart_with(d: &Dir, train: &str) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("recipes/quickstart.toml")).unwrap();
    let head = text.split("\n[train]").next().unwrap();
    let recipes = repo().join("recipes").display().to_string();
    let head = head
        .replace("\"data/", &format!("\"{recipes}/data/"))
        .replace("\"tokenizer/", &format!("\"{recipes}/tokenizer/"));
    let train = train.replace("\"./models/", &format!("\"{recipes}/models/"));
    d.write("quickstart.toml", format!("{head}\n[train]\n{train}\n"))
}

fn code(o: &std::process::Output) -> Option<i32> {
    o.status.code()
}

#[test]
fn a_mistral_base_is_refused_on_llama2_output() {
    let d = Dir::new();
    let r = llama2_recipe(&d, "base = \"mistralai/Mistral-7B-v0.1\"");
    ok(&d.curate(&["--no-progress", "-q", r.to_str().unwrap()]));
    let o = d.curate(&["train", r.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(code(&o), Some(1), "{err}");
    assert!(err.contains("do not allow training `mistralai/Mistral-7B-v0.1`"), "{err}");
    assert!(err.contains("it is of family `mistral`"), "{err}");
    assert!(err.contains("source `llama-chats` holds output that may train only `llama-2`"), "{err}");
    assert!(!d.out().join("train/settings.json").exists(), "nothing is written for a refused base");
}

#[test]
fn same_family_bases_pass_only_the_policys_target_rules() {
    let d = Dir::new();
    // Another Llama 2 base: same family, and its access rule is signed off.
    let r = llama2_recipe(&d, "base = \"meta-llama/Llama-2-13b-hf\"");
    ok(&d.curate(&["--no-progress", "-q", r.to_str().unwrap()]));
    let o = d.curate(&["train", "--dry-run", r.to_str().unwrap()]);
    ok(&o);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["base"]["family"], "llama-2");
    assert_eq!(s["compliance"]["verdict"], "allow");
    // The chat variant is instruction-tuned: not a base under the policy.
    let r = llama2_recipe(&d, "base = \"meta-llama/Llama-2-7b-chat-hf\"");
    let o = d.curate(&["train", "--dry-run", r.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(code(&o), Some(1), "{err}");
    assert!(err.contains("N23-BASE-NOT-INSTRUCT"), "{err}");
}

#[test]
fn dry_run_writes_the_resolved_settings() {
    let d = Dir::new();
    let r = llama2_recipe(&d, "base = \"./weights\"\nmethod = \"lora\"\nepochs = 2\nmerge = true");
    ok(&d.curate(&["--no-progress", "-q", r.to_str().unwrap()]));
    let o = d.curate(&["train", "--dry-run", "--restart", r.to_str().unwrap()]);
    ok(&o);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.out().join("train/settings.json")).unwrap()).unwrap();
    assert_eq!(s, written);
    assert_eq!(s["format"], "curate-train-settings");
    assert_eq!(s["base"]["model"], d.join("weights").display().to_string());
    assert_eq!(s["base"]["id"], "meta-llama/Llama-2-7b-hf");
    assert_eq!(s["base"]["id_from"], "target.model");
    assert_eq!(s["compliance"]["decision"], "the base is the model the verdicts were reached for");
    assert_eq!(s["method"], "lora");
    assert_eq!(s["epochs"], 2.0);
    assert_eq!(s["merge"], true);
    assert_eq!(s["restart"], true);
    assert_eq!(s["budget_hours"], 24.0);
    assert_eq!(s["seed"], 7);
    assert_eq!(s["lora"]["targets"], serde_json::json!(["all-linear"]));
    assert_eq!(s["shards"], d.out().display().to_string());
    assert_eq!(s["output"], d.out().join("train").display().to_string());
}

#[test]
fn shards_without_a_policy_are_not_checked() {
    let d = Dir::new();
    d.write("a.jsonl", "{\"text\": \"one two three four five six\"}\n{\"text\": \"seven eight nine ten eleven\"}\n");
    let r = d.recipe(&format!(
        "[target]\nmodel = \"mistralai/Mistral-7B-v0.1\"\ntokenizer = \"{}\"\nseq_len = 64\n[[source]]\nname = \"a\"\npath = \"a.jsonl\"\nformat = \"text\"\n[train]\nbase = \"Qwen/Qwen-7B\"\n",
        tokenizer()
    ));
    ok(&d.curate(&["--no-progress", "-q", r.to_str().unwrap()]));
    let o = d.curate(&["train", "--dry-run", r.to_str().unwrap()]);
    ok(&o);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["compliance"]["checked"], false);
    assert!(stderr(&o).contains("no compliance verdicts"), "{}", stderr(&o));
}

#[test]
fn clear_errors_before_python_runs() {
    let d = Dir::new();
    // No [train].
    let r = d.recipe(&format!("[target]\ntokenizer = \"{}\"\n[[source]]\nname = \"a\"\npath = \"a.jsonl\"\nformat = \"text\"\n", tokenizer()));
    let err = fails(&d.curate(&["train", r.to_str().unwrap()]));
    assert!(err.contains("has no `[train]` section"), "{err}");
    // Shards not built yet.
    let r = llama2_recipe(&d, "");
    let err = fails(&d.curate(&["train", r.to_str().unwrap()]));
    assert!(err.contains("no shards in"), "{err}");
    assert!(err.contains("hint: run `curate"), "{err}");
    ok(&d.curate(&["--no-progress", "-q", r.to_str().unwrap()]));
    // A Python that does not exist.
    let err = fails(&d.curate(&["train", "--python", "/nonexistent/python3", r.to_str().unwrap()]));
    assert!(err.contains("cannot run Python `/nonexistent/python3`"), "{err}");
    // A Python without the packages.
    let fake = d.write("fakepy", "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let err = fails(&d.curate(&["train", "--python", fake.to_str().unwrap(), r.to_str().unwrap()]));
    assert!(err.contains("lacks the trainer's packages (ModuleNotFoundError: No module named 'torch')"), "{err}");
    assert!(err.contains("pip install -r trainer/requirements.txt"), "{err}");
    // --offline never installs.
    let o = assert_cmd::Command::cargo_bin("curate")
        .unwrap()
        .current_dir(d.path())
        .env_remove("CURATE_TRAIN_PYTHON")
        .args(["train", "--offline", "--venv", d.join("venv").to_str().unwrap(), r.to_str().unwrap()])
        .output()
        .unwrap();
    let err = fails(&o);
    assert!(err.contains("`--offline` forbids installing"), "{err}");
}

/// A Python with the trainer's packages: `CURATE_PYTHON` or the repo's `.venv`.
/// With `CURATE_REQUIRE_TORCH=1` (scripts/test.sh) a missing one is a failure.
fn torch_python() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(p) = std::env::var("CURATE_PYTHON") {
        candidates.push(PathBuf::from(p));
    }
    candidates.push(repo().join(".venv/bin/python"));
    for c in candidates {
        let ok = Command::new(&c).args(["-c", "import torch, transformers, peft"]).output().is_ok_and(|o| o.status.success());
        if ok {
            return Some(c);
        }
    }
    if std::env::var("CURATE_REQUIRE_TORCH").as_deref() == Ok("1") {
        panic!("no Python with torch, transformers and peft (CURATE_PYTHON, .venv), and CURATE_REQUIRE_TORCH=1");
    }
    eprintln!("skipped: no Python with torch (scripts/test.sh installs trainer/requirements-test.txt into .venv)");
    None
}

#[test]
fn quickstart_trains_on_cpu_with_the_tiny_model() {
    let Some(py) = torch_python() else { return };
    let d = Dir::new();
    let recipe = quickstart_with(&d, "base = \"./models/tiny-mistral\"\nrandom_init = true\nmethod = \"lora\"\nlora_rank = 4\nmax_steps = 3\ngrad_accum = 1\nbudget_hours = 0.2\ngradient_checkpointing = false\nmerge = true");
    let out = d.join("out");
    ok(&d.curate(&["--no-progress", "-q", "--out", out.to_str().unwrap(), recipe.to_str().unwrap()]));
    let o = d.curate(&["train", "--out", out.to_str().unwrap(), "--python", py.to_str().unwrap(), recipe.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "curate train failed ({:?}):\n{stdout}\n{}", o.status.code(), stderr(&o));
    assert!(stdout.contains("step 3/3"), "{stdout}");
    assert!(stdout.contains("tok/s") && stdout.contains("mem"), "{stdout}");
    let train = out.join("train");
    let rep: serde_json::Value = serde_json::from_slice(&std::fs::read(train.join("report.json")).unwrap()).unwrap();
    assert_eq!(rep["result"]["stop_reason"], "completed");
    assert_eq!(rep["result"]["merged"], true);
    for f in ["adapter/adapter_model.safetensors", "adapter/NOTICE", "adapter/DATA_CARD.md", "merged/config.json", "report.md", "settings.json", "log.jsonl"] {
        assert!(train.join(f).exists(), "{f}");
    }
    assert_eq!(std::fs::read(train.join("adapter/NOTICE")).unwrap(), std::fs::read(out.join("NOTICE")).unwrap());
}
