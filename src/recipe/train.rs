//! `[train]`: how `curate train` fine-tunes the base model on the recipe's shards.
//!
//! The raw table mirrors the TOML (unknown keys are caught by the loader like any
//! other table's); [`validate`] checks every value, collecting every problem with its
//! place, and resolves the defaults: the base model defaults to `[target] model`, the
//! seed to `[recipe] seed`, the training folder to `train/` in the shards' folder.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::diag::{self, Diagnostic};
use super::raw::OneOrMany;
use super::Target;

/// `[train]` as written.
#[derive(Debug, Default, Deserialize)]
pub struct RawTrain {
    /// A hub id (`org/name`) or a local folder (`/…`, `./…`, `../…`).
    pub base: Option<String>,
    /// Which model a local folder holds (the hub id judged by the compliance check).
    pub base_id: Option<String>,
    /// Build the base from its `config.json` with random weights (tests, smoke runs).
    pub random_init: Option<bool>,
    pub method: Option<String>,
    pub lora_rank: Option<u64>,
    pub lora_alpha: Option<f64>,
    pub lora_dropout: Option<f64>,
    pub lora_targets: Option<OneOrMany>,
    pub learning_rate: Option<f64>,
    pub weight_decay: Option<f64>,
    pub max_grad_norm: Option<f64>,
    pub epochs: Option<f64>,
    pub max_tokens: Option<u64>,
    pub max_steps: Option<u64>,
    pub micro_batch: Option<u64>,
    pub grad_accum: Option<u64>,
    pub warmup: Option<f64>,
    pub budget_hours: Option<f64>,
    pub seed: Option<u64>,
    pub merge: Option<bool>,
    pub checkpoint_minutes: Option<f64>,
    pub eval_every: Option<u64>,
    pub eval_max_packs: Option<u64>,
    pub gradient_checkpointing: Option<bool>,
    pub attention: Option<String>,
    pub dir: Option<String>,
}

/// How the weights are trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// LoRA adapters over a base quantized to 4-bit NF4 (bitsandbytes; needs a GPU).
    Qlora,
    /// LoRA adapters over a base in bf16 (fp32 on CPU).
    Lora,
    /// Every weight.
    Full,
}

impl Method {
    pub const ALL: &'static [&'static str] = &["qlora", "lora", "full"];
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Qlora => "qlora",
            Method::Lora => "lora",
            Method::Full => "full",
        }
    }
}

/// Where the base weights come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// A hub id, loaded (or downloaded) by `transformers`.
    Hub(String),
    /// A local folder, resolved against the recipe's folder.
    Local(PathBuf),
}

impl Base {
    /// What `from_pretrained` is given.
    pub fn location(&self) -> String {
        match self {
            Base::Hub(id) => id.clone(),
            Base::Local(p) => p.display().to_string(),
        }
    }
}

pub const ATTENTION: &[&str] = &["auto", "flash", "sdpa", "eager"];

/// A checked `[train]` section with every default filled in.
#[derive(Debug, Clone)]
pub struct Train {
    pub base: Base,
    /// The model id the compliance check judges (the hub id, or `base_id`, or
    /// `[target] model` for a local folder).
    pub base_id: String,
    /// Where `base_id` came from, for messages: `train.base`, `train.base_id` or
    /// `target.model`.
    pub base_id_from: &'static str,
    pub random_init: bool,
    pub method: Method,
    pub lora_rank: u64,
    pub lora_alpha: f64,
    pub lora_dropout: f64,
    /// Module names, or `["all-linear"]`.
    pub lora_targets: Vec<String>,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub max_grad_norm: f64,
    /// Epochs over the train split; `None` with neither `epochs` nor `max_tokens`
    /// means one epoch.
    pub epochs: Option<f64>,
    /// A token budget: stop after about this many tokens (real, not padding).
    pub max_tokens: Option<u64>,
    pub max_steps: Option<u64>,
    pub micro_batch: u64,
    pub grad_accum: u64,
    /// Warmup as a fraction of the planned optimizer steps.
    pub warmup: f64,
    pub budget_hours: f64,
    pub seed: u64,
    pub merge: bool,
    pub checkpoint_minutes: f64,
    /// Evaluate every this many optimizer steps (besides each checkpoint and the end).
    pub eval_every: Option<u64>,
    pub eval_max_packs: u64,
    pub gradient_checkpointing: bool,
    pub attention: String,
    /// Where the adapter, checkpoints and the training report go; `None`: the
    /// `train` folder inside the shards' output folder.
    pub dir: Option<PathBuf>,
}

/// A local folder is written as a path (`/…`, `./…`, `../…`); anything else is a hub id.
fn looks_local(s: &str) -> bool {
    s.starts_with('/') || s.starts_with("./") || s.starts_with("../") || s == "." || s == ".."
}

/// `org/name` (a model id on the hub).
fn hub_id(s: &str) -> bool {
    let mut parts = s.split('/');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

/// Check `[train]` and fill in its defaults; `seed` is the recipe's `[recipe] seed`.
pub fn validate(
    t: RawTrain,
    dir: &Path,
    seed: u64,
    target: Option<&Target>,
    at: &dyn Fn(&[&str]) -> Option<Range<usize>>,
    diags: &mut Vec<Diagnostic>,
) -> Train {
    let k = |key: &str| at(&["train", key]);
    if target.and_then(|t| t.tokenizer.as_ref()).is_none() {
        diags.push(
            Diagnostic::new("`[train]` needs `[target] tokenizer`: it trains on the shards, which only a tokenizer makes", at(&["train"]))
                .with_hint("add `[target]` with `tokenizer = \"path/to/tokenizer.json\"` (the base model's tokenizer)"),
        );
    }
    let target_model = target.and_then(|t| t.model.clone());

    // The base model and the id the compliance check judges.
    let (base, mut base_id, mut base_id_from) = match (t.base, &target_model) {
        (Some(b), _) if looks_local(&b) => (Base::Local(dir.join(b.strip_prefix("./").unwrap_or(&b))), None, "target.model"),
        (Some(b), _) => {
            if !hub_id(&b) {
                diags.push(
                    Diagnostic::new(format!("`train.base = {b:?}` is neither a hub id nor a local folder"), k("base"))
                        .with_hint("write a hub id as `org/name` (`mistralai/Mistral-7B-v0.1`) and a local folder as a path starting with `/`, `./` or `../`"),
                );
            }
            (Base::Hub(b.clone()), Some(b), "train.base")
        }
        (None, Some(m)) => (Base::Hub(m.clone()), Some(m.clone()), "target.model"),
        (None, None) => {
            diags.push(
                Diagnostic::new("`[train]` needs `base`, the model to fine-tune", at(&["train"]))
                    .with_hint("give `base = \"org/name\"` or a local folder, or `[target] model`, which `base` defaults to"),
            );
            (Base::Hub(String::new()), None, "train.base")
        }
    };
    if let Some(id) = t.base_id {
        if !hub_id(&id) {
            diags.push(
                Diagnostic::new(format!("`train.base_id = {id:?}` is not a model id"), k("base_id"))
                    .with_hint("write it as `org/name`, the hub id of the model the folder holds"),
            );
        }
        base_id = Some(id);
        base_id_from = "train.base_id";
    }
    let base_id = match base_id.or_else(|| target_model.clone()) {
        Some(id) => id,
        None => {
            if matches!(base, Base::Local(_)) {
                diags.push(
                    Diagnostic::new("`train.base` is a local folder: say which model it holds with `base_id`", k("base"))
                        .with_hint("e.g. `base_id = \"mistralai/Mistral-7B-v0.1\"`; the compliance check judges that id"),
                );
            }
            String::new()
        }
    };

    let method = match t.method.as_deref() {
        None | Some("qlora") => Method::Qlora,
        Some("lora") => Method::Lora,
        Some("full") => Method::Full,
        Some(m) => {
            let mut d = Diagnostic::new(format!("unknown training method `{m}`"), k("method"));
            d = match diag::nearest(m, Method::ALL) {
                Some(n) => d.with_hint(format!("did you mean `{n}`?")),
                None => d.with_hint("one of: qlora, lora, full"),
            };
            diags.push(d);
            Method::Qlora
        }
    };
    if method == Method::Full {
        for (key, set) in [
            ("lora_rank", t.lora_rank.is_some()),
            ("lora_alpha", t.lora_alpha.is_some()),
            ("lora_dropout", t.lora_dropout.is_some()),
            ("lora_targets", t.lora_targets.is_some()),
        ] {
            if set {
                diags.push(Diagnostic::new(format!("`train.{key}` does not apply to `method = \"full\"`"), k(key)));
            }
        }
    }
    let lora_rank = t.lora_rank.unwrap_or(16);
    if !(1..=4096).contains(&lora_rank) {
        diags.push(Diagnostic::new(format!("`train.lora_rank` must be between 1 and 4096, got {lora_rank}"), k("lora_rank")));
    }
    let lora_alpha = t.lora_alpha.unwrap_or(2.0 * lora_rank as f64);
    if !(lora_alpha.is_finite() && lora_alpha > 0.0) {
        diags.push(Diagnostic::new(format!("`train.lora_alpha` must be positive, got {lora_alpha}"), k("lora_alpha")));
    }
    let lora_dropout = t.lora_dropout.unwrap_or(0.05);
    if !(0.0..1.0).contains(&lora_dropout) {
        diags.push(Diagnostic::new(format!("`train.lora_dropout` must be in [0, 1), got {lora_dropout}"), k("lora_dropout")));
    }
    let lora_targets = t.lora_targets.map(OneOrMany::into_vec).unwrap_or_else(|| vec!["all-linear".to_string()]);
    if lora_targets.is_empty() || lora_targets.iter().any(|s| s.trim().is_empty()) {
        diags.push(
            Diagnostic::new("`train.lora_targets` needs module names", k("lora_targets"))
                .with_hint("e.g. `[\"q_proj\", \"k_proj\", \"v_proj\", \"o_proj\"]`, or `\"all-linear\"`"),
        );
    }

    let default_lr = if method == Method::Full { 2e-5 } else { 2e-4 };
    let learning_rate = t.learning_rate.unwrap_or(default_lr);
    if !(learning_rate > 0.0 && learning_rate < 1.0) {
        diags.push(Diagnostic::new(format!("`train.learning_rate` must be in (0, 1), got {learning_rate}"), k("learning_rate")));
    }
    let weight_decay = t.weight_decay.unwrap_or(0.0);
    if !(0.0..1.0).contains(&weight_decay) {
        diags.push(Diagnostic::new(format!("`train.weight_decay` must be in [0, 1), got {weight_decay}"), k("weight_decay")));
    }
    let max_grad_norm = t.max_grad_norm.unwrap_or(1.0);
    if !(max_grad_norm.is_finite() && max_grad_norm >= 0.0) {
        diags.push(Diagnostic::new(format!("`train.max_grad_norm` must be 0 (off) or more, got {max_grad_norm}"), k("max_grad_norm")));
    }
    if let Some(e) = t.epochs
        && !(e.is_finite() && e > 0.0 && e <= 1000.0)
    {
        diags.push(Diagnostic::new(format!("`train.epochs` must be in (0, 1000], got {e}"), k("epochs")));
    }
    for (key, v) in [("max_tokens", t.max_tokens), ("max_steps", t.max_steps), ("eval_every", t.eval_every)] {
        if v == Some(0) {
            diags.push(Diagnostic::new(format!("`train.{key}` must be positive"), k(key)));
        }
    }
    let micro_batch = t.micro_batch.unwrap_or(1);
    let grad_accum = t.grad_accum.unwrap_or(8);
    for (key, v) in [("micro_batch", micro_batch), ("grad_accum", grad_accum)] {
        if !(1..=65536).contains(&v) {
            diags.push(Diagnostic::new(format!("`train.{key}` must be between 1 and 65536, got {v}"), k(key)));
        }
    }
    let warmup = t.warmup.unwrap_or(0.03);
    if !(0.0..=0.5).contains(&warmup) {
        diags.push(
            Diagnostic::new(format!("`train.warmup` must be in [0, 0.5], got {warmup}"), k("warmup"))
                .with_hint("the fraction of the planned optimizer steps spent warming up the learning rate, e.g. 0.03"),
        );
    }
    let budget_hours = t.budget_hours.unwrap_or(24.0);
    if !(budget_hours.is_finite() && budget_hours > 0.0 && budget_hours <= 24.0 * 366.0) {
        diags.push(Diagnostic::new(format!("`train.budget_hours` must be positive, got {budget_hours}"), k("budget_hours")));
    }
    let checkpoint_minutes = t.checkpoint_minutes.unwrap_or(30.0);
    if !(checkpoint_minutes.is_finite() && checkpoint_minutes > 0.0) {
        diags.push(Diagnostic::new(format!("`train.checkpoint_minutes` must be positive, got {checkpoint_minutes}"), k("checkpoint_minutes")));
    }
    let eval_max_packs = t.eval_max_packs.unwrap_or(200);
    let attention = t.attention.unwrap_or_else(|| "auto".to_string());
    if !ATTENTION.contains(&attention.as_str()) {
        diags.push(
            Diagnostic::new(format!("unknown attention `{attention}`"), k("attention")).with_hint("one of: auto, flash, sdpa, eager"),
        );
    }
    let train_dir = match t.dir {
        Some(d) if d.trim().is_empty() => {
            diags.push(Diagnostic::new("`train.dir` is empty", k("dir")));
            None
        }
        Some(d) => Some(dir.join(d)),
        None => None,
    };
    Train {
        base,
        base_id,
        base_id_from,
        random_init: t.random_init.unwrap_or(false),
        method,
        lora_rank,
        lora_alpha,
        lora_dropout,
        lora_targets,
        learning_rate,
        weight_decay,
        max_grad_norm,
        epochs: t.epochs,
        max_tokens: t.max_tokens,
        max_steps: t.max_steps,
        micro_batch,
        grad_accum,
        warmup,
        budget_hours,
        seed: t.seed.unwrap_or(seed),
        merge: t.merge.unwrap_or(false),
        checkpoint_minutes,
        eval_every: t.eval_every,
        eval_max_packs,
        gradient_checkpointing: t.gradient_checkpointing.unwrap_or(true),
        attention,
        dir: train_dir,
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_in;
    use super::*;

    const HEAD: &str = r#"
[recipe]
name = "t"
seed = 7
[target]
model = "mistralai/Mistral-7B-v0.1"
tokenizer = "tok/tokenizer.json"
[[source]]
name = "a"
path = "a.jsonl"
format = "text"
"#;

    fn ok(train: &str) -> Train {
        let r = parse_in(Path::new("/r"), &format!("{HEAD}{train}")).unwrap_or_else(|e| panic!("{e}"));
        r.train.expect("a [train] section")
    }

    fn err(text: &str) -> String {
        parse_in(Path::new("/r"), text).expect_err("refused").to_string()
    }

    #[test]
    fn defaults_come_from_the_target_and_the_recipe() {
        let t = ok("[train]\n");
        assert_eq!(t.base, Base::Hub("mistralai/Mistral-7B-v0.1".into()));
        assert_eq!(t.base_id, "mistralai/Mistral-7B-v0.1");
        assert_eq!(t.method, Method::Qlora);
        assert_eq!(t.seed, 7);
        assert_eq!(t.budget_hours, 24.0);
        assert_eq!(t.lora_targets, vec!["all-linear"]);
        assert_eq!(t.lora_alpha, 32.0);
        assert_eq!(t.dir, None);
        assert!(t.gradient_checkpointing && !t.merge && !t.random_init);
    }

    #[test]
    fn a_local_base_is_judged_as_the_target_model_unless_base_id_says_otherwise() {
        let t = ok("[train]\nbase = \"./models/m\"\nmethod = \"lora\"\nlora_targets = [\"q_proj\", \"v_proj\"]\n");
        assert_eq!(t.base, Base::Local(PathBuf::from("/r/models/m")));
        assert_eq!((t.base_id.as_str(), t.base_id_from), ("mistralai/Mistral-7B-v0.1", "target.model"));
        assert_eq!(t.lora_targets, vec!["q_proj", "v_proj"]);
        let t = ok("[train]\nbase = \"/m\"\nbase_id = \"meta-llama/Llama-2-7b-hf\"\n");
        assert_eq!((t.base_id.as_str(), t.base_id_from), ("meta-llama/Llama-2-7b-hf", "train.base_id"));
    }

    #[test]
    fn every_problem_is_located() {
        let e = err(&format!(
            "{HEAD}[train]\nmethod = \"qlroa\"\nlearning_rate = 2.0\nwarmup = 0.9\nmicro_batch = 0\nattention = \"fast\"\nbase = \"not a model\"\nbudget_hours = -1\nlora_dropout = 1.5\nepochs = 0\n"
        ));
        for want in [
            ":13:10: unknown training method `qlroa`",
            "did you mean `qlora`?",
            ":14:17: `train.learning_rate` must be in (0, 1), got 2",
            "`train.warmup` must be in [0, 0.5], got 0.9",
            "`train.micro_batch` must be between 1 and 65536, got 0",
            "unknown attention `fast`",
            "`train.base = \"not a model\"` is neither a hub id nor a local folder",
            "`train.budget_hours` must be positive, got -1",
            "`train.lora_dropout` must be in [0, 1), got 1.5",
            "`train.epochs` must be in (0, 1000], got 0",
        ] {
            assert!(e.contains(want), "missing {want:?} in\n{e}");
        }
    }

    #[test]
    fn unknown_keys_and_lora_keys_with_full_training_are_refused() {
        let e = err(&format!("{HEAD}[train]\nmethod = \"full\"\nlora_rank = 8\nlerning_rate = 1e-5\n"));
        assert!(e.contains("unknown key `lerning_rate` in `train`"), "{e}");
        assert!(e.contains("did you mean `learning_rate`?"), "{e}");
        assert!(e.contains("`train.lora_rank` does not apply to `method = \"full\"`"), "{e}");
    }

    #[test]
    fn train_needs_shards_and_a_model() {
        let e = err("[recipe]\nname = \"t\"\n[[source]]\nname = \"a\"\npath = \"a.jsonl\"\nformat = \"text\"\n[train]\nbase = \"./m\"\n");
        assert!(e.contains("`[train]` needs `[target] tokenizer`"), "{e}");
        assert!(e.contains("`train.base` is a local folder: say which model it holds with `base_id`"), "{e}");
    }
}
