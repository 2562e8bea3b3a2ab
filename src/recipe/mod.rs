//! The recipe: one TOML file that declares a whole data build.
//!
//! Loading happens in two phases, as cargo-deny does with its config:
//! 1. the TOML is parsed into raw types ([`raw`]) that mirror the file, while every
//!    unknown key is collected (not just the first) with its place in the file;
//! 2. [`validate`] checks meaning (formats, field mappings, regexes, the `where`
//!    expression, unique names) and produces the [`Recipe`] the pipeline runs, again
//!    collecting every problem.
//!
//! Every problem names the file, line and column, and suggests the nearest key where a
//! typo is likely. Relative paths resolve against the recipe's folder.
//!
//! ```toml
//! [recipe]
//! name = "quickstart"
//!
//! [[source]]
//! name = "arith"
//! path = "data/arith.jsonl"
//! format = "instruction"
//! ```

pub mod diag;
pub mod raw;
pub(crate) mod spans;
pub mod train;

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::de::DeTable;

pub use diag::{Diagnostic, RecipeError};
use raw::*;
pub(crate) use spans::{Seg, SpanIndex, path_segments};

use crate::select::WhereExpr;

/// Default limit on one record's size: past it a record is refused (or ledgered with
/// `on_error = "skip"`) rather than read into memory whole.
pub const DEFAULT_MAX_RECORD_BYTES: u64 = 64 * 1024 * 1024;

/// The largest mixing `weight`. Each copy of a document is a training sequence that
/// mixing plans and packing writes, so the work and memory grow with the weight; and
/// repeating data more than a few times gains little (Muennighoff et al., 2023,
/// "Scaling Data-Constrained Language Models": past about 16 epochs further repeats
/// are worth next to nothing). 100 leaves room for upsampling a small source.
pub const MAX_WEIGHT: f64 = 100.0;

/// A checked recipe, ready to run.
#[derive(Debug)]
pub struct Recipe {
    /// The recipe file as given.
    pub path: PathBuf,
    /// The folder relative paths resolve against.
    pub dir: PathBuf,
    /// sha256 of the recipe file's bytes.
    pub sha256: String,
    pub name: String,
    pub description: Option<String>,
    pub seed: u64,
    pub sources: Vec<Source>,
    pub filters: Filters,
    pub dedup: Dedup,
    /// Decontamination settings, when the recipe has eval sources.
    pub decontam: Option<crate::stages::decontam::DecontamConfig>,
    /// The model and tokenizer; shards are written only when a tokenizer is given.
    pub target: Option<Target>,
    /// The compliance policy's name or path, as written.
    pub policy: Option<String>,
    /// A Data Provenance Initiative collection to cross-check facts against
    /// (`[policy] dpi`, resolved against the recipe's folder).
    pub dpi: Option<PathBuf>,
    /// Conditional rules the recipe accepts (`[[policy.signoff]]`).
    pub signoffs: Vec<Signoff>,
    pub pack: Pack,
    pub output_dir: PathBuf,
    /// `[train]`, for `curate train` (see [`train`]).
    pub train: Option<train::Train>,
}

/// What the data will train.
#[derive(Debug, Clone)]
pub struct Target {
    pub model: Option<String>,
    pub tokenizer: Option<TokenizerRef>,
    pub template: Template,
    pub seq_len: u64,
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    /// The family named by `[target] override`, when the model id matches none.
    pub family_override: Option<FamilyOverride>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyOverride {
    pub family: String,
    pub reason: String,
}

/// A conditional rule that the recipe accepts, and who accepted it and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signoff {
    pub rule: String,
    /// `None`: a target rule.
    pub source: Option<String>,
    pub by: String,
    pub reason: String,
    /// Where it is written (for diagnostics), as `line:column`.
    pub at: String,
}

/// Facts the recipe puts above everything else known about a source, with the reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FactOverride {
    pub license: Option<String>,
    pub origin: Option<Origin>,
    pub generated_by: Option<Vec<String>>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenizerRef {
    /// A `tokenizer.json` on disk (resolved against the recipe's folder).
    Local(PathBuf),
    /// `hf:<model id>[@<revision>]`: fetched from the hub at the revision (`main`
    /// when not given).
    Hub { id: String, revision: Option<String> },
}

/// How a document is rendered into text before tokenization, and which parts train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    Plain,
    Alpaca,
    Mistral,
    Llama2,
    Chatml,
    /// The `chat_template` of the tokenizer's `tokenizer_config.json`.
    Tokenizer,
}

impl Template {
    pub const ALL: &'static [&'static str] = &["plain", "alpaca", "mistral", "llama2", "chatml", "tokenizer"];
    pub fn parse(s: &str) -> Option<Template> {
        Some(match s {
            "plain" => Template::Plain,
            "alpaca" => Template::Alpaca,
            "mistral" => Template::Mistral,
            "llama2" => Template::Llama2,
            "chatml" => Template::Chatml,
            "tokenizer" => Template::Tokenizer,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        Template::ALL[self as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackMethod {
    /// Best-fit-decreasing: documents sorted by length, each into the fullest pack it
    /// fits; documents are never split.
    BestFit,
    /// Documents in seeded order, each appended to the current pack until one does not
    /// fit, which starts the next pack; documents are never split.
    Concat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlong {
    Drop,
    Truncate,
}

#[derive(Debug, Clone)]
pub struct Pack {
    pub method: PackMethod,
    pub overlong: Overlong,
    pub shuffle: bool,
    pub valid_fraction: f64,
    /// The largest share of a source's documents that may fail to render through the
    /// chat template (`tokenize.template`) before the build fails.
    pub max_template_errors: f64,
}

/// A template that fails on more than 1% of a source's documents is taken to be the
/// wrong template, or a wrong mapping, rather than a few bad rows.
pub const DEFAULT_MAX_TEMPLATE_ERRORS: f64 = 0.01;

impl Default for Pack {
    fn default() -> Self {
        Pack {
            method: PackMethod::BestFit,
            overlong: Overlong::Drop,
            shuffle: true,
            valid_fraction: 0.0,
            max_template_errors: DEFAULT_MAX_TEMPLATE_ERRORS,
        }
    }
}

#[derive(Debug)]
pub struct Source {
    pub name: String,
    /// Position in the recipe (0-based), the default dedup precedence.
    pub index: usize,
    /// The Hugging Face hub id that identifies the dataset (`hf`); a legacy bare id
    /// that `licenses/hub-renames.toml` knows is replaced by its current id.
    pub hf: Option<String>,
    /// The legacy id the recipe wrote, when `hf` was resolved from it.
    pub hf_legacy: Option<String>,
    /// The hub revision (`revision`), when written; `main` otherwise.
    pub revision: Option<String>,
    pub split: Option<String>,
    pub config: Option<String>,
    /// `url = "https://…"`: one file fetched over HTTP(S), with its expected sha256.
    pub url: Option<String>,
    pub sha256: Option<String>,
    /// Paths, globs or folders, resolved against the recipe's folder. Empty for a
    /// source fetched from the hub (`hf` without `path`) or from a `url`.
    pub inputs: Vec<PathBuf>,
    pub reader: Option<ReaderKind>,
    pub mapping: Mapping,
    /// `format` was written. `curate check` judges a source without one; reading it
    /// needs one ([`Recipe::require_formats`]).
    pub format_given: bool,
    pub provenance: Provenance,
    /// `override = { …, reason }`: facts above every other fact source.
    pub override_: Option<FactOverride>,
    pub where_: Option<WhereExpr>,
    pub limit: Option<u64>,
    pub sample: Option<f64>,
    /// Higher wins exact-duplicate ties; equal priorities fall back to recipe order.
    pub priority: i64,
    pub on_error: OnError,
    pub max_record_bytes: u64,
    pub weight: f64,
    pub max_tokens: Option<u64>,
    pub role: SourceRole,
    /// The benchmark an eval source holds (its name by default).
    pub benchmark: String,
}

/// What the source declares about where its data came from. Carried with every
/// document to the end; judged by the compliance stage, never trusted blindly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    pub license: Option<String>,
    pub origin: Option<Origin>,
    /// Model ids whose output the data holds; empty means none declared.
    pub generated_by: Vec<String>,
    /// `generated_by` was written (`[]` then says "no model output"), as opposed to left out.
    pub generated_by_declared: bool,
}

/// How a source's data was made: declared in a recipe, or stated by the compliance
/// catalog, which may also say `unknown` (a recipe that does not know leaves `origin`
/// out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Human,
    Crowd,
    Program,
    Model,
    Mixed,
    Unknown,
}

impl Origin {
    pub const ALL: &'static [&'static str] = &["human", "crowd", "program", "model", "mixed"];
    fn parse(s: &str) -> Option<Origin> {
        Some(match s {
            "human" => Origin::Human,
            "crowd" => Origin::Crowd,
            "program" => Origin::Program,
            "model" => Origin::Model,
            "mixed" => Origin::Mixed,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Human => "human",
            Origin::Crowd => "crowd",
            Origin::Program => "program",
            Origin::Model => "model",
            Origin::Mixed => "mixed",
            Origin::Unknown => "unknown",
        }
    }
}

/// File readers. Chosen from the extension (after `.gz` / `.zst`) unless the source
/// names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReaderKind {
    Jsonl,
    Json,
    Csv,
    Tsv,
    Parquet,
    Txt,
}

impl ReaderKind {
    pub const ALL: &'static [&'static str] = &["jsonl", "json", "csv", "tsv", "parquet", "txt"];
    pub fn parse(s: &str) -> Option<ReaderKind> {
        Some(match s {
            "jsonl" | "ndjson" => ReaderKind::Jsonl,
            "json" => ReaderKind::Json,
            "csv" => ReaderKind::Csv,
            "tsv" => ReaderKind::Tsv,
            "parquet" => ReaderKind::Parquet,
            "txt" | "text" => ReaderKind::Txt,
            _ => return None,
        })
    }
}

/// How records become documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// One text column.
    Text { text: String },
    /// Instruction / optional input / response; with `instances`, one document per
    /// element of that list (self-instruct's shape), each holding `input` and `output`.
    Instruction {
        instruction: String,
        input: Option<String>,
        output: String,
        system: Option<String>,
        instances: Option<String>,
    },
    /// A list of messages, each with a role and content.
    Chat { messages: String, role: String, content: String, roles: BTreeMap<String, Role> },
}

/// Canonical chat roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "system" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            _ => return None,
        })
    }
}

/// Role names understood without a mapping: the OpenAI-style names and ShareGPT's.
pub fn default_roles() -> BTreeMap<String, Role> {
    [
        ("system", Role::System),
        ("user", Role::User),
        ("assistant", Role::Assistant),
        ("human", Role::User),
        ("gpt", Role::Assistant),
        ("prompter", Role::User),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// A bad record stops the run with an error naming the file and row.
    Fail,
    /// A bad record is ledgered and counted in the report; the run goes on.
    Skip,
}

#[derive(Debug, Default)]
pub struct Filters {
    pub min_chars: Option<u64>,
    pub max_chars: Option<u64>,
    pub min_words: Option<u64>,
    pub max_words: Option<u64>,
    pub drop_regex: Vec<regex::Regex>,
    pub keep_regex: Vec<regex::Regex>,
    pub quality: Quality,
}

#[derive(Debug)]
pub struct Dedup {
    pub exact: bool,
    /// MinHash near-dedup, when `[dedup] near` is given.
    pub near: Option<crate::stages::near_dedup::NearDedupConfig>,
}

/// What a source is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceRole {
    Train,
    /// An evaluation set: indexed for decontamination, never trained on.
    Eval,
}

/// What the chatbot-phrase detector does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AiPhrases {
    #[default]
    Off,
    /// Count and report per source, keep the documents.
    Flag,
    Drop,
}

/// Quality presets and detectors from `[filters]` (published thresholds; see
/// docs/stages.md).
#[derive(Debug, Default)]
pub struct Quality {
    pub gopher: Option<crate::stages::quality::GopherQualityConfig>,
    pub repetition: Option<crate::stages::quality::RepetitionConfig>,
    pub c4: Option<crate::stages::quality::C4Config>,
    pub language: Option<crate::stages::quality::LanguageConfig>,
    pub ai_phrases: AiPhrases,
    pub pii: bool,
}

impl Quality {
    /// Whether any check that can drop a document is on.
    pub fn drops(&self) -> bool {
        self.gopher.is_some()
            || self.repetition.is_some()
            || self.c4.is_some()
            || self.language.is_some()
            || self.ai_phrases == AiPhrases::Drop
    }
}

/// Read and check a recipe file.
pub fn load(path: &Path) -> Result<Recipe, anyhow::Error> {
    let bytes = std::fs::read(path).map_err(|e| {
        anyhow::anyhow!("cannot read recipe `{}`: {e}", path.display())
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "recipe `{}` is not valid UTF-8 (first bad byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok(parse(path, &text)?)
}

impl Recipe {
    /// Every source that will be read names its `format`; `check` and `explain` need
    /// none, so a recipe that lists hub ids only to judge them may leave it out.
    pub fn require_formats(&self) -> anyhow::Result<()> {
        let missing: Vec<&str> = self.sources.iter().filter(|s| !s.format_given).map(|s| s.name.as_str()).collect();
        if !missing.is_empty() {
            anyhow::bail!(
                "recipe `{}`: source(s) `{}` have no `format`, which reading them needs\nhint: add `format = \"text\"`, `\"instruction\"` or `\"chat\"` (`curate check` judges sources without one)",
                self.path.display(),
                missing.join("`, `")
            );
        }
        Ok(())
    }
}

/// Parse and check recipe text; `path` names the file in diagnostics and anchors
/// relative paths.
pub fn parse(path: &Path, text: &str) -> Result<Recipe, RecipeError> {
    let fail = |diagnostics: Vec<Diagnostic>| RecipeError {
        file: path.to_path_buf(),
        text: text.to_string(),
        diagnostics,
    };
    let root = DeTable::parse(text).map_err(|e| {
        fail(vec![Diagnostic::new(format!("TOML syntax: {}", e.message().trim()), e.span())])
    })?;
    let spans = SpanIndex { root: &root };

    let mut diags = Vec::new();
    let mut unknown = Vec::new();
    let de = toml::Deserializer::from(root.clone());
    let raw: Option<RawRecipe> =
        match serde_ignored::deserialize(de, |p| unknown.push(path_segments(&p))) {
            Ok(r) => Some(r),
            Err(e) => {
                diags.push(Diagnostic::new(e.message().trim().to_string(), e.span()));
                None
            }
        };
    for segs in unknown {
        diags.push(unknown_key(&spans, &segs));
    }
    let Some(raw) = raw else { return Err(fail(diags)) };

    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
    let recipe = validate(raw, path, &dir, text, &spans, &mut diags);
    if diags.is_empty() {
        Ok(recipe.expect("validation without diagnostics yields a recipe"))
    } else {
        Err(fail(diags))
    }
}


pub(crate) fn describe_table(segs: &[Seg]) -> String {
    if segs.is_empty() {
        return "the top level".to_string();
    }
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    format!("`{s}`")
}

pub(crate) fn key(path: &[&str]) -> Vec<Seg> {
    path.iter()
        .map(|p| match p.parse::<usize>() {
            Ok(n) => Seg::Index(n),
            Err(_) => Seg::Key(p.to_string()),
        })
        .collect()
}

fn validate(
    raw: RawRecipe,
    path: &Path,
    dir: &Path,
    text: &str,
    spans: &SpanIndex,
    diags: &mut Vec<Diagnostic>,
) -> Option<Recipe> {
    let at = |p: &[&str]| spans.find(&key(p), false);
    let meta = raw.recipe.unwrap_or_default();
    let name = match meta.name {
        Some(n) if valid_name(&n) => n,
        Some(n) => {
            diags.push(
                Diagnostic::new(format!("recipe name `{n}` is not usable as a folder name"), at(&["recipe", "name"]))
                    .with_hint("use letters, digits, `-`, `_` and `.`"),
            );
            n
        }
        None => {
            diags.push(
                Diagnostic::new("missing `[recipe] name`", None)
                    .with_hint("add `[recipe]` with `name = \"my-build\"` at the top"),
            );
            String::new()
        }
    };

    if raw.sources.is_empty() {
        diags.push(
            Diagnostic::new("the recipe declares no `[[source]]`", None)
                .with_hint("add a `[[source]]` table with `name`, `path` and `format`"),
        );
    }

    let mut names = HashSet::new();
    let mut sources = Vec::new();
    for (i, mut rs) in raw.sources.into_iter().enumerate() {
        let idx = i.to_string();
        let sat = |k: &str| at(&["source", &idx, k]);
        let src_at = at(&["source", &idx]);
        let name = match rs.name {
            Some(n) if !valid_name(&n) => {
                diags.push(
                    Diagnostic::new(format!("source name `{n}` must be letters, digits, `-`, `_` or `.`"), sat("name")),
                );
                n
            }
            Some(n) => {
                if !names.insert(n.clone()) {
                    diags.push(Diagnostic::new(format!("source name `{n}` is used twice"), sat("name")));
                }
                n
            }
            None => {
                diags.push(Diagnostic::new(format!("`source[{i}]` has no `name`"), src_at.clone()));
                format!("source-{i}")
            }
        };
        // A legacy bare id (`gsm8k`) that the hub moved to an organisation resolves to
        // its current id; `check` notes which.
        let mut hf_legacy = None;
        if let Some(id) = rs.hf.clone()
            && !id.contains('/')
            && let Some(r) = crate::compliance::cfg::renamed_hub_id(&id)
        {
            hf_legacy = Some(id);
            rs.hf = Some(r.to.clone());
        }
        if let Some(id) = &rs.hf
            && !valid_hub_id(id)
        {
            diags.push(
                Diagnostic::new(format!("source `{name}`: `hf = {id:?}` is not a hub id"), sat("hf"))
                    .with_hint("write it as `org/name`, e.g. `databricks/databricks-dolly-15k`"),
            );
        }
        for k in ["split", "config"] {
            let v = if k == "split" { &rs.split } else { &rs.config };
            if v.as_deref().is_some_and(|v| v.trim().is_empty()) {
                diags.push(Diagnostic::new(format!("source `{name}`: `{k}` is empty"), sat(k)));
            }
        }
        validate_remote(&name, &rs.url, &rs.sha256, &rs.revision, rs.hf.is_some(), rs.path.is_some(), &sat, diags);
        let inputs: Vec<PathBuf> = match rs.path {
            Some(p) => {
                let v = p.into_vec();
                if v.is_empty() {
                    diags.push(Diagnostic::new(format!("source `{name}`: `path` is empty"), sat("path")));
                }
                v.iter().map(|s| dir.join(s)).collect()
            }
            None if rs.hf.is_some() || rs.url.is_some() => vec![],
            None => {
                diags.push(
                    Diagnostic::new(format!("source `{name}` has no `path`"), src_at.clone())
                        .with_hint("give a file, a glob such as `data/*.jsonl`, or a folder"),
                );
                vec![]
            }
        };
        let reader = match rs.reader.as_deref() {
            None => None,
            Some(r) => match ReaderKind::parse(r) {
                Some(k) => Some(k),
                None => {
                    diags.push(
                        Diagnostic::new(format!("unknown reader `{r}`"), sat("reader"))
                            .with_hint(format!("one of: {}", ReaderKind::ALL.join(", "))),
                    );
                    None
                }
            },
        };
        let mapping = build_mapping(&name, rs.format.as_deref(), rs.fields, rs.roles, &sat, diags);
        let origin = match rs.origin.as_deref() {
            None => None,
            Some(o) => match Origin::parse(o) {
                Some(o) => Some(o),
                None => {
                    diags.push(
                        Diagnostic::new(format!("unknown origin `{o}`"), sat("origin"))
                            .with_hint(format!("one of: {}", Origin::ALL.join(", "))),
                    );
                    None
                }
            },
        };
        if let Some(l) = &rs.license {
            check_license(&name, l, sat("license"), diags);
        }
        let override_ = rs.override_.and_then(|o| {
            let oat = || at(&["source", &idx, "override"]);
            let reason = o.reason.clone().filter(|r| !r.trim().is_empty());
            if reason.is_none() {
                diags.push(
                    Diagnostic::new(format!("source `{name}`: `override` needs a `reason`"), oat())
                        .with_hint("say why the known facts are wrong here, e.g. `reason = \"the authors relicensed it, see <url>\"`"),
                );
            }
            if o.license.is_none() && o.origin.is_none() && o.generated_by.is_none() {
                diags.push(
                    Diagnostic::new(format!("source `{name}`: `override` sets no fact"), oat())
                        .with_hint("give one or more of `license`, `origin`, `generated_by`"),
                );
            }
            if let Some(l) = &o.license {
                check_license(&name, l, oat(), diags);
            }
            let origin = o.origin.as_deref().and_then(|s| {
                let parsed = Origin::parse(s);
                if parsed.is_none() {
                    diags.push(
                        Diagnostic::new(format!("source `{name}`: unknown origin `{s}` in `override`"), oat())
                            .with_hint(format!("one of: {}", Origin::ALL.join(", "))),
                    );
                }
                parsed
            });
            if o.generated_by.as_ref().is_some_and(|g| g.iter().any(|m| m.trim().is_empty())) {
                diags.push(Diagnostic::new(format!("source `{name}`: empty model id in `override.generated_by`"), oat()));
            }
            Some(FactOverride { license: o.license, origin, generated_by: o.generated_by, reason: reason? })
        });
        let where_ = match rs.where_ {
            None => None,
            Some(w) => match WhereExpr::parse(&w) {
                Ok(e) => Some(e),
                Err(e) => {
                    diags.push(Diagnostic::new(format!("source `{name}`: bad `where`: {e}"), sat("where")));
                    None
                }
            },
        };
        if let Some(s) = rs.sample
            && !(s > 0.0 && s <= 1.0)
        {
            diags.push(
                Diagnostic::new(format!("source `{name}`: `sample` must be in (0, 1], got {s}"), sat("sample"))
                    .with_hint("`sample = 0.1` keeps a seeded 10% of the records"),
            );
        }
        if rs.limit == Some(0) {
            diags.push(Diagnostic::new(format!("source `{name}`: `limit = 0` reads nothing"), sat("limit")));
        }
        let role = match rs.role.as_deref() {
            None | Some("train") => SourceRole::Train,
            Some("eval") => SourceRole::Eval,
            Some(r) => {
                diags.push(Diagnostic::new(format!("unknown role `{r}`"), sat("role")).with_hint("one of: train, eval"));
                SourceRole::Train
            }
        };
        if rs.benchmark.is_some() && role != SourceRole::Eval {
            diags.push(
                Diagnostic::new(format!("source `{name}`: `benchmark` applies only to `role = \"eval\"`"), sat("benchmark")),
            );
        }
        if role == SourceRole::Eval && (rs.weight.is_some() || rs.max_tokens.is_some()) {
            diags.push(Diagnostic::new(
                format!("source `{name}` is an eval source: `weight` and `max_tokens` do not apply (it is never trained on)"),
                sat("role"),
            ));
        }
        let benchmark = rs.benchmark.clone().unwrap_or_else(|| name.clone());
        let on_error = match rs.on_error.as_deref() {
            None | Some("fail") => OnError::Fail,
            Some("skip") => OnError::Skip,
            Some(o) => {
                diags.push(
                    Diagnostic::new(format!("unknown on_error `{o}`"), sat("on_error")).with_hint("one of: fail, skip"),
                );
                OnError::Fail
            }
        };
        if rs.max_record_bytes == Some(0) {
            diags.push(Diagnostic::new("`max_record_bytes` must be positive", sat("max_record_bytes")));
        }
        if let Some(gb) = &rs.generated_by
            && let Some(bad) = gb.iter().find(|g| g.trim().is_empty())
        {
            diags.push(Diagnostic::new(format!("empty model id {bad:?} in `generated_by`"), sat("generated_by")));
        }
        if let Some(w) = rs.weight
            && !(w.is_finite() && (0.0..=MAX_WEIGHT).contains(&w))
        {
            let why = if w > MAX_WEIGHT {
                format!(
                    "source `{name}`: `weight` must be at most {MAX_WEIGHT}, got {w}: every copy is a training sequence to plan and write, and data repeated that often teaches nothing new"
                )
            } else {
                format!("source `{name}`: `weight` must be 0 or more, got {w}")
            };
            diags.push(
                Diagnostic::new(why, sat("weight"))
                    .with_hint("0.5 keeps a seeded half of the documents, 3 repeats each three times"),
            );
        }
        if rs.max_tokens == Some(0) {
            diags.push(Diagnostic::new(format!("source `{name}`: `max_tokens = 0` keeps nothing"), sat("max_tokens")));
        }
        if let Some(m) = &mapping {
            sources.push(Source {
                name,
                index: i,
                hf: rs.hf,
                revision: rs.revision,
                split: rs.split,
                config: rs.config,
                url: rs.url,
                sha256: rs.sha256.map(|h| h.to_ascii_lowercase()),
                inputs,
                reader,
                mapping: m.clone(),
                format_given: rs.format.is_some(),
                hf_legacy,
                provenance: Provenance {
                    license: rs.license,
                    origin,
                    generated_by_declared: rs.generated_by.is_some(),
                    generated_by: rs.generated_by.unwrap_or_default(),
                },
                override_,
                where_,
                limit: rs.limit,
                sample: rs.sample,
                priority: rs.priority.unwrap_or(0),
                on_error,
                max_record_bytes: rs.max_record_bytes.unwrap_or(DEFAULT_MAX_RECORD_BYTES),
                weight: rs.weight.unwrap_or(1.0),
                max_tokens: rs.max_tokens,
                role,
                benchmark,
            });
        }
    }

    let rf = raw.filters.unwrap_or_default();
    let mut compile = |list: Option<Vec<String>>, k: &str| -> Vec<regex::Regex> {
        let mut out = Vec::new();
        for (j, pat) in list.unwrap_or_default().into_iter().enumerate() {
            match regex::Regex::new(&pat) {
                Ok(r) => out.push(r),
                Err(e) => diags.push(Diagnostic::new(
                    format!("`filters.{k}[{j}]` is not a valid regex: {e}"),
                    at(&["filters", k, &j.to_string()]),
                )),
            }
        }
        out
    };
    let drop_regex = compile(rf.drop_regex, "drop_regex");
    let keep_regex = compile(rf.keep_regex, "keep_regex");
    for (lo, hi, lk, hk) in [
        (rf.min_chars, rf.max_chars, "min_chars", "max_chars"),
        (rf.min_words, rf.max_words, "min_words", "max_words"),
    ] {
        if let (Some(lo), Some(hi)) = (lo, hi)
            && lo > hi
        {
            diags.push(Diagnostic::new(format!("`filters.{lk}` ({lo}) is above `filters.{hk}` ({hi})"), at(&["filters", lk])));
        }
    }
    let quality = validate_quality(rf.quality, rf.language, rf.ai_phrases, rf.pii, &at, diags);
    let filters = Filters {
        min_chars: rf.min_chars,
        max_chars: rf.max_chars,
        min_words: rf.min_words,
        max_words: rf.max_words,
        drop_regex,
        keep_regex,
        quality,
    };
    let raw_dedup = raw.dedup.unwrap_or_default();
    let near = raw_dedup.near.map(|n| {
        // `confirm = false` asks for datatrove's unverified banding, with its defaults.
        let d = if n.confirm == Some(false) {
            crate::stages::near_dedup::NearDedupConfig::unverified()
        } else {
            crate::stages::near_dedup::NearDedupConfig::default()
        };
        let cfg = crate::stages::near_dedup::NearDedupConfig {
            ngram: n.ngram.map(|v| v as usize).unwrap_or(d.ngram),
            bands: n.bands.map(|v| v as usize).unwrap_or(d.bands),
            rows: n.rows.map(|v| v as usize).unwrap_or(d.rows),
            threshold: n.threshold.unwrap_or(d.threshold),
            seed: n.seed.unwrap_or(d.seed),
            confirm: n.confirm.unwrap_or(d.confirm),
        };
        if let Err(e) = cfg.check() {
            diags.push(Diagnostic::new(format!("`dedup.near`: {e}"), at(&["dedup", "near"])));
        }
        cfg
    });
    let dedup = Dedup { exact: raw_dedup.exact.unwrap_or(true), near };
    // A HELM run-spec file adds one eval source per benchmark and indexed field,
    // fetched from the hub like any `hf` source.
    if let Some(helm) = raw.decontaminate.as_ref().and_then(|d| d.helm.clone()) {
        helm_sources(&helm, dir, &mut sources, &at, diags);
    }
    let has_eval = sources.iter().any(|s: &Source| s.role == SourceRole::Eval);
    let decontam = match raw.decontaminate {
        Some(d) => {
            let def = crate::stages::decontam::DecontamConfig::default();
            let action = match d.action.as_deref() {
                None | Some("drop") => crate::stages::decontam::DecontamAction::Drop,
                Some("flag") => crate::stages::decontam::DecontamAction::Flag,
                Some(a) => {
                    diags.push(
                        Diagnostic::new(format!("unknown decontamination action `{a}`"), at(&["decontaminate", "action"]))
                            .with_hint("one of: drop, flag"),
                    );
                    def.action
                }
            };
            let cfg = crate::stages::decontam::DecontamConfig {
                ngram: d.ngram.map(|v| v as usize).unwrap_or(def.ngram),
                min_item_words: d.min_item_words.map(|v| v as usize).unwrap_or(def.min_item_words),
                action,
            };
            if let Err(e) = cfg.check() {
                diags.push(Diagnostic::new(format!("`decontaminate`: {e}"), at(&["decontaminate"])));
            }
            if !has_eval {
                diags.push(
                    Diagnostic::new("`[decontaminate]` needs at least one source with `role = \"eval\"`", at(&["decontaminate"]))
                        .with_hint("add the benchmark's test items as a `[[source]]` with `role = \"eval\"`"),
                );
            }
            Some(cfg)
        }
        None if has_eval => Some(crate::stages::decontam::DecontamConfig::default()),
        None => None,
    };
    if !sources.is_empty() && sources.iter().all(|s| s.role == SourceRole::Eval) {
        diags.push(Diagnostic::new("every source is an eval source: there is nothing to train on", None));
    }
    let target = raw.target.map(|t| validate_target(t, dir, &at, diags));
    let pack = validate_pack(raw.pack, target.as_ref(), &at, diags);
    let (policy, dpi, signoffs) = validate_policy(raw.policy, dir, text, &sources, target.as_ref(), &at, diags);
    let output_dir = match raw.output.and_then(|o| o.dir) {
        Some(d) => dir.join(d),
        None => dir.join("out").join(&name),
    };
    let seed = meta.seed.unwrap_or(0);
    let train = raw.train.map(|t| train::validate(t, dir, seed, target.as_ref(), &at, diags));

    if !diags.is_empty() {
        return None;
    }
    Some(Recipe {
        path: path.to_path_buf(),
        dir: dir.to_path_buf(),
        sha256: crate::hash::sha256_hex(text.as_bytes()),
        name,
        description: meta.description,
        seed,
        sources,
        filters,
        dedup,
        decontam,
        target,
        policy,
        dpi,
        signoffs,
        pack,
        output_dir,
        train,
    })
}

fn helm_sources(
    file: &str,
    dir: &Path,
    sources: &mut Vec<Source>,
    at: &dyn Fn(&[&str]) -> Option<Range<usize>>,
    diags: &mut Vec<Diagnostic>,
) {
    use crate::stages::decontam::helm;
    let path = dir.join(file);
    let span = at(&["decontaminate", "helm"]);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            diags.push(Diagnostic::new(format!("cannot read HELM run specs `{}`: {e}", path.display()), span));
            return;
        }
    };
    let specs = match helm::parse_run_specs(&text) {
        Ok(s) => s,
        Err(e) => {
            diags.push(Diagnostic::new(format!("`{}`: {e}", path.display()), span));
            return;
        }
    };
    let benchmarks = match helm::benchmarks(&specs) {
        Ok(b) => b,
        Err(errors) => {
            for e in errors {
                diags.push(Diagnostic::new(format!("`{}`: {e}", path.display()), span.clone()));
            }
            return;
        }
    };
    for b in benchmarks {
        let d = b.dataset();
        for field in d.text_fields {
            let slug: String =
                b.to_string().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '.' }).collect();
            sources.push(Source {
                name: format!("helm.{slug}.{field}"),
                index: sources.len(),
                hf: Some(d.hub_id.to_string()),
                revision: None,
                split: d.split.map(String::from),
                config: d.config.clone(),
                url: None,
                sha256: None,
                inputs: Vec::new(),
                reader: None,
                mapping: Mapping::Text { text: field.to_string() },
                format_given: true,
                hf_legacy: None,
                provenance: Provenance::default(),
                override_: None,
                where_: None,
                limit: None,
                sample: None,
                priority: 0,
                // A benchmark row without the field (or with it empty) is not an item.
                on_error: OnError::Skip,
                max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
                weight: 1.0,
                max_tokens: None,
                role: SourceRole::Eval,
                benchmark: b.to_string(),
            });
        }
    }
}

fn validate_quality(
    presets: Option<Vec<String>>,
    language: Option<RawLanguage>,
    ai: Option<String>,
    pii: Option<String>,
    at: &dyn Fn(&[&str]) -> Option<Range<usize>>,
    diags: &mut Vec<Diagnostic>,
) -> Quality {
    use crate::stages::quality as q;
    let mut out = Quality::default();
    for (i, p) in presets.unwrap_or_default().iter().enumerate() {
        match p.as_str() {
            "gopher" => out.gopher = Some(q::GopherQualityConfig::default()),
            "repetition" => out.repetition = Some(q::RepetitionConfig::default()),
            "c4" => out.c4 = Some(q::C4Config::default()),
            other => diags.push(
                Diagnostic::new(format!("unknown quality preset `{other}`"), at(&["filters", "quality", &i.to_string()]))
                    .with_hint("any of: gopher, repetition, c4"),
            ),
        }
    }
    if let Some(l) = language {
        let codes = l.allowed.unwrap_or_else(|| vec!["eng".to_string()]);
        let d = q::LanguageConfig::default();
        match q::LanguageConfig::from_codes(&codes, l.min_confidence.unwrap_or(d.min_confidence)) {
            Ok(c) => out.language = Some(c),
            Err(e) => diags.push(Diagnostic::new(format!("`filters.language`: {e}"), at(&["filters", "language"]))),
        }
    }
    out.ai_phrases = match ai.as_deref() {
        None | Some("off") => AiPhrases::Off,
        Some("flag") => AiPhrases::Flag,
        Some("drop") => AiPhrases::Drop,
        Some(a) => {
            diags.push(
                Diagnostic::new(format!("unknown `ai_phrases` action `{a}`"), at(&["filters", "ai_phrases"]))
                    .with_hint("one of: drop, flag, off"),
            );
            AiPhrases::Off
        }
    };
    out.pii = match pii.as_deref() {
        None | Some("off") => false,
        Some("redact") => true,
        Some(a) => {
            diags.push(Diagnostic::new(format!("unknown `pii` action `{a}`"), at(&["filters", "pii"])).with_hint("one of: redact, off"));
            false
        }
    };
    out
}

/// The keys of a fetched source: `url` (with `sha256`) or `hf` (with `revision`).
#[allow(clippy::too_many_arguments)]
fn validate_remote(
    name: &str,
    url: &Option<String>,
    sha256: &Option<String>,
    revision: &Option<String>,
    has_hf: bool,
    has_path: bool,
    sat: &dyn Fn(&str) -> Option<Range<usize>>,
    diags: &mut Vec<Diagnostic>,
) {
    if let Some(u) = url {
        if has_path {
            diags.push(
                Diagnostic::new(format!("source `{name}` has both `url` and `path`"), sat("url"))
                    .with_hint("keep `path` for a local copy, or `url` to fetch it"),
            );
        }
        if !(u.starts_with("https://") || u.starts_with("http://")) || u.len() < 9 {
            diags.push(
                Diagnostic::new(format!("source `{name}`: `url = {u:?}` is not an http(s) URL"), sat("url"))
                    .with_hint("write it as `https://host/path/file.jsonl`"),
            );
        }
    }
    if let Some(h) = sha256 {
        if url.is_none() {
            diags.push(Diagnostic::new(format!("source `{name}`: `sha256` applies to a `url` source"), sat("sha256")));
        } else if !(h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())) {
            diags.push(Diagnostic::new(format!("source `{name}`: `sha256` must be 64 hex digits"), sat("sha256")));
        }
    }
    if let Some(r) = revision {
        if !has_hf {
            diags.push(Diagnostic::new(format!("source `{name}`: `revision` applies to an `hf` source"), sat("revision")));
        } else if !valid_revision(r) {
            diags.push(
                Diagnostic::new(format!("source `{name}`: `revision = {r:?}` is not a branch, tag or commit"), sat("revision"))
                    .with_hint("e.g. `main`, `v1.0` or a 40-digit commit id"),
            );
        }
    }
}

/// A hub revision as a recipe may write it: a branch, tag or commit, with no spaces,
/// control characters, `..` or leading `/`.
fn valid_revision(r: &str) -> bool {
    !r.is_empty() && !r.contains("..") && !r.starts_with('/') && !r.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn validate_target(
    t: RawTarget,
    dir: &Path,
    at: &dyn Fn(&[&str]) -> Option<Range<usize>>,
    diags: &mut Vec<Diagnostic>,
) -> Target {
    let tokenizer = t.tokenizer.map(|s| match s.strip_prefix("hf:") {
        Some(rest) => {
            let (id, revision) = match rest.split_once('@') {
                Some((id, rev)) => (id, Some(rev)),
                None => (rest, None),
            };
            if let Some(r) = revision
                && !valid_revision(r)
            {
                diags.push(
                    Diagnostic::new(
                        format!("`target.tokenizer = {s:?}`: the revision after `@` ({r:?}) is not a branch, tag or commit"),
                        at(&["target", "tokenizer"]),
                    )
                    .with_hint("write it as `hf:org/name@main`, `hf:org/name@v1.0` or `hf:org/name@<40-digit commit id>`"),
                );
            }
            TokenizerRef::Hub { id: id.to_string(), revision: revision.map(str::to_string) }
        }
        None => TokenizerRef::Local(dir.join(s)),
    });
    let template = match t.template.as_deref() {
        None => Template::Plain,
        Some(s) => Template::parse(s).unwrap_or_else(|| {
            let mut d = Diagnostic::new(format!("unknown template `{s}`"), at(&["target", "template"]));
            d = match diag::nearest(s, Template::ALL) {
                Some(n) => d.with_hint(format!("did you mean `{n}`?")),
                None => d.with_hint(format!("one of: {}", Template::ALL.join(", "))),
            };
            diags.push(d);
            Template::Plain
        }),
    };
    let seq_len = t.seq_len.unwrap_or(2048);
    if !(16..=1 << 20).contains(&seq_len) {
        diags.push(Diagnostic::new(
            format!("`target.seq_len` must be between 16 and 1048576, got {seq_len}"),
            at(&["target", "seq_len"]),
        ));
    }
    if tokenizer.is_none() && t.template.is_some() {
        diags.push(
            Diagnostic::new("`target.template` needs `target.tokenizer`", at(&["target", "template"]))
                .with_hint("give a local `tokenizer.json` or `hf:<model id>`"),
        );
    }
    let family_override = t.override_.and_then(|o| {
        let oat = || at(&["target", "override"]);
        let reason = o.reason.filter(|r| !r.trim().is_empty());
        let family = o.family.filter(|f| !f.trim().is_empty());
        if reason.is_none() {
            diags.push(Diagnostic::new("`target.override` needs a `reason`", oat()));
        }
        if family.is_none() {
            diags.push(
                Diagnostic::new("`target.override` needs a `family`", oat())
                    .with_hint("a family id from `licenses/models.toml`, e.g. `family = \"mistral\"`"),
            );
        }
        Some(FamilyOverride { family: family?, reason: reason? })
    });
    Target {
        model: t.model,
        tokenizer,
        template,
        seq_len,
        bos_token: t.bos_token,
        eos_token: t.eos_token,
        family_override,
    }
}

/// `[policy]`: the policy to judge by, a DPI collection, and the sign-offs. The policy
/// itself is loaded by the compliance engine; here only what the recipe alone can tell
/// is checked (a sign-off names a source that exists, says who and why).
#[allow(clippy::type_complexity)]
fn validate_policy(
    p: Option<RawPolicy>,
    dir: &Path,
    text: &str,
    sources: &[Source],
    target: Option<&Target>,
    at: &dyn Fn(&[&str]) -> Option<Range<usize>>,
    diags: &mut Vec<Diagnostic>,
) -> (Option<String>, Option<PathBuf>, Vec<Signoff>) {
    let Some(p) = p else { return (None, None, vec![]) };
    let policy = p.use_.filter(|u| !u.trim().is_empty());
    if policy.is_none() {
        diags.push(
            Diagnostic::new("`[policy]` needs `use`", at(&["policy"]))
                .with_hint("name a bundled policy (`use = \"neurips-2023\"`) or a policy file"),
        );
    }
    if target.and_then(|t| t.model.as_ref()).is_none() {
        diags.push(
            Diagnostic::new("`[policy]` needs `[target] model`: the policy judges the data for the model it will train", at(&["policy"]))
                .with_hint("add `[target]` with `model = \"mistralai/Mistral-7B-v0.1\"` (the base model's hub id)"),
        );
    }
    let dpi = p.dpi.map(|d| dir.join(d));
    let mut signoffs = Vec::new();
    for (i, s) in p.signoff.into_iter().enumerate() {
        let idx = i.to_string();
        let sat = at(&["policy", "signoff", &idx]);
        let place = sat
            .as_ref()
            .map(|r| {
                let (l, c) = RecipeError::line_col(text, r.start);
                format!("{l}:{c}")
            })
            .unwrap_or_default();
        let mut missing = Vec::new();
        for (k, v) in [("rule", &s.rule), ("by", &s.by), ("reason", &s.reason)] {
            if v.as_deref().is_none_or(|v| v.trim().is_empty()) {
                missing.push(format!("`{k}`"));
            }
        }
        if !missing.is_empty() {
            diags.push(
                Diagnostic::new(format!("`policy.signoff[{i}]` needs {}", missing.join(", ")), sat.clone())
                    .with_hint("a sign-off records which rule is accepted, for which source, by whom and why"),
            );
            continue;
        }
        if let Some(src) = &s.source
            && !sources.iter().any(|x| &x.name == src)
        {
            let names: Vec<&str> = sources.iter().map(|x| x.name.as_str()).collect();
            let mut d = Diagnostic::new(format!("`policy.signoff[{i}]` names source `{src}`, which the recipe does not have"), at(&["policy", "signoff", &idx, "source"]));
            if let Some(n) = diag::nearest(src, &names) {
                d = d.with_hint(format!("did you mean `{n}`?"));
            }
            diags.push(d);
            continue;
        }
        signoffs.push(Signoff {
            rule: s.rule.unwrap_or_default(),
            source: s.source,
            by: s.by.unwrap_or_default(),
            reason: s.reason.unwrap_or_default(),
            at: place,
        });
    }
    (policy, dpi, signoffs)
}

/// A license written in the recipe must at least be an SPDX expression; whether each
/// id is known is the compliance engine's business (an unknown one is a finding there).
fn check_license(name: &str, l: &str, span: Option<Range<usize>>, diags: &mut Vec<Diagnostic>) {
    if let Err(e) = crate::compliance::spdx_expr::parse(l) {
        let hint = match crate::compliance::spdx_expr::suggest(l) {
            Some(s) => format!("did you mean `{s}`? SPDX ids are case-sensitive"),
            None => "use SPDX ids joined by AND / OR / WITH, e.g. `CC-BY-SA-3.0` or `MIT AND CC-BY-4.0`; `LicenseRef-<name>` for others".into(),
        };
        diags.push(Diagnostic::new(format!("source `{name}`: license `{l}` is not an SPDX expression: {e}"), span).with_hint(hint));
    }
}

/// `org/name`, as the hub writes dataset ids.
fn valid_hub_id(id: &str) -> bool {
    let mut parts = id.split('/');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

fn validate_pack(
    p: Option<RawPack>,
    target: Option<&Target>,
    at: &dyn Fn(&[&str]) -> Option<Range<usize>>,
    diags: &mut Vec<Diagnostic>,
) -> Pack {
    let mut pack = Pack::default();
    let Some(p) = p else { return pack };
    if target.and_then(|t| t.tokenizer.as_ref()).is_none() {
        diags.push(
            Diagnostic::new("`[pack]` needs `[target] tokenizer`: there is nothing to pack without tokens", at(&["pack"]))
                .with_hint("add `[target]` with `tokenizer = \"path/to/tokenizer.json\"`"),
        );
    }
    match p.method.as_deref() {
        None | Some("best-fit") => {}
        Some("concat") => pack.method = PackMethod::Concat,
        Some(m) => diags.push(
            Diagnostic::new(format!("unknown pack method `{m}`"), at(&["pack", "method"])).with_hint("one of: best-fit, concat"),
        ),
    }
    match p.overlong.as_deref() {
        None | Some("drop") => {}
        Some("truncate") => pack.overlong = Overlong::Truncate,
        Some(m) => diags.push(
            Diagnostic::new(format!("unknown overlong policy `{m}`"), at(&["pack", "overlong"]))
                .with_hint("one of: drop, truncate"),
        ),
    }
    if let Some(s) = p.shuffle {
        pack.shuffle = s;
    }
    if let Some(v) = p.valid_fraction {
        if !(0.0..0.5).contains(&v) {
            diags.push(Diagnostic::new(
                format!("`pack.valid_fraction` must be in [0, 0.5), got {v}"),
                at(&["pack", "valid_fraction"]),
            ));
        }
        pack.valid_fraction = v;
    }
    if let Some(v) = p.max_template_errors {
        if !(0.0..=1.0).contains(&v) {
            diags.push(Diagnostic::new(
                format!("`pack.max_template_errors` must be a share in [0, 1], got {v}"),
                at(&["pack", "max_template_errors"]),
            ));
        }
        pack.max_template_errors = v;
    }
    pack
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n != "."
        && n != ".."
        && n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

const FORMATS: &[&str] = &["text", "instruction", "chat"];

fn build_mapping(
    name: &str,
    format: Option<&str>,
    fields: Option<RawFields>,
    roles: Option<BTreeMap<String, String>>,
    sat: &dyn Fn(&str) -> Option<Range<usize>>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Mapping> {
    let f = fields.unwrap_or_default();
    // Which `fields` keys each format reads; any other key set is a mistake worth
    // naming, since it would otherwise be silently ignored.
    let (mapping, allowed): (Option<Mapping>, &[&str]) = match format {
        Some("text") => (Some(Mapping::Text { text: f.text.clone().unwrap_or_else(|| "text".into()) }), &["text"]),
        Some("instruction") => (
            Some(Mapping::Instruction {
                instruction: f.instruction.clone().unwrap_or_else(|| "instruction".into()),
                input: Some(f.input.clone().unwrap_or_else(|| "input".into())),
                output: f.output.clone().unwrap_or_else(|| "output".into()),
                system: f.system.clone(),
                instances: f.instances.clone(),
            }),
            &["instruction", "input", "output", "system", "instances"],
        ),
        Some("chat") => {
            let mut map = default_roles();
            let mut ok = true;
            for (k, v) in roles.clone().unwrap_or_default() {
                match Role::parse(&v) {
                    Some(r) => {
                        map.insert(k, r);
                    }
                    None => {
                        ok = false;
                        diags.push(
                            Diagnostic::new(format!("source `{name}`: role `{k}` maps to unknown role `{v}`"), sat("roles"))
                                .with_hint("map to one of: system, user, assistant"),
                        );
                    }
                }
            }
            (
                ok.then(|| Mapping::Chat {
                    messages: f.messages.clone().unwrap_or_else(|| "messages".into()),
                    role: f.role.clone().unwrap_or_else(|| "role".into()),
                    content: f.content.clone().unwrap_or_else(|| "content".into()),
                    roles: map,
                }),
                &["messages", "role", "content"],
            )
        }
        Some(other) => {
            let mut d = Diagnostic::new(format!("source `{name}`: unknown format `{other}`"), sat("format"));
            d = match diag::nearest(other, FORMATS) {
                Some(n) => d.with_hint(format!("did you mean `{n}`?")),
                None => d.with_hint("one of: text, instruction, chat"),
            };
            diags.push(d);
            return None;
        }
        // Judging a source needs no format; reading it does (`Recipe::require_formats`).
        None => (
            Some(Mapping::Text { text: f.text.clone().unwrap_or_else(|| "text".into()) }),
            &["text", "instruction", "input", "output", "system", "instances", "messages", "role", "content"],
        ),
    };
    let set: Vec<(&str, bool)> = vec![
        ("text", f.text.is_some()),
        ("instruction", f.instruction.is_some()),
        ("input", f.input.is_some()),
        ("output", f.output.is_some()),
        ("system", f.system.is_some()),
        ("instances", f.instances.is_some()),
        ("messages", f.messages.is_some()),
        ("role", f.role.is_some()),
        ("content", f.content.is_some()),
    ];
    for (k, is_set) in set {
        if is_set && !allowed.contains(&k) {
            diags.push(
                Diagnostic::new(
                    format!("source `{name}`: `fields.{k}` does not apply to format `{}`", format.unwrap_or("")),
                    sat("fields"),
                )
                .with_hint(format!("this format reads: {}", allowed.join(", "))),
            );
        }
    }
    if roles.is_some() && format != Some("chat") {
        diags.push(Diagnostic::new(format!("source `{name}`: `roles` applies only to format `chat`"), sat("roles")));
    }
    mapping
}

/// Parse a recipe from text in tests, naming it `recipe.toml` in a given folder.
#[cfg(test)]
pub(crate) fn parse_in(dir: &Path, text: &str) -> Result<Recipe, RecipeError> {
    parse(&dir.join("recipe.toml"), text)
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Role::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown role `{s}`")))
    }
}

/// A diagnostic for an unknown key, with the nearest known key of its table.
fn unknown_key(spans: &SpanIndex, segs: &[Seg]) -> Diagnostic {
    let key = match segs.last() {
        Some(Seg::Key(k)) => k.clone(),
        _ => String::from("?"),
    };
    let table_path: Vec<&str> = segs[..segs.len().saturating_sub(1)]
        .iter()
        .filter_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })
        .collect();
    let table_name = describe_table(&segs[..segs.len().saturating_sub(1)]);
    let known = known_keys(&table_path);
    let mut d = Diagnostic::new(format!("unknown key `{key}` in {table_name}"), spans.find(segs, true));
    if let Some(near) = diag::nearest(&key, known) {
        d = d.with_hint(format!("did you mean `{near}`?"));
    } else if !known.is_empty() {
        d = d.with_hint(format!("known keys here: {}", known.join(", ")));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> RecipeError {
        parse_in(Path::new("/r"), text).expect_err("recipe should be refused")
    }

    const OK: &str = r#"
[recipe]
name = "t"
[[source]]
name = "a"
path = "data/a.jsonl"
format = "instruction"
"#;

    #[test]
    fn minimal_recipe_resolves_paths_against_its_folder() {
        let r = parse_in(Path::new("/r"), OK).unwrap();
        assert_eq!(r.sources[0].inputs, vec![PathBuf::from("/r/data/a.jsonl")]);
        assert_eq!(r.output_dir, PathBuf::from("/r/out/t"));
        assert!(r.dedup.exact);
    }

    #[test]
    fn every_unknown_key_is_reported_with_line_and_suggestion() {
        let e = err(r#"
[recipe]
name = "t"
sed = 3
[[source]]
name = "a"
path = "a.jsonl"
format = "instruction"
feilds = { instruction = "q" }
[filters]
min_char = 3
"#);
        assert_eq!(e.diagnostics.len(), 3, "{e}");
        let shown = e.to_string();
        assert!(shown.contains("/r/recipe.toml:4:1: unknown key `sed` in `recipe`"), "{shown}");
        assert!(shown.contains("did you mean `seed`?"), "{shown}");
        assert!(shown.contains("/r/recipe.toml:9:1: unknown key `feilds` in `source[0]`"), "{shown}");
        assert!(shown.contains("did you mean `fields`?"), "{shown}");
        assert!(shown.contains(":11:1: unknown key `min_char` in `filters`"), "{shown}");
        assert!(shown.contains("did you mean `min_chars`?"), "{shown}");
    }

    #[test]
    fn unknown_key_inside_inline_fields_table_is_found() {
        let e = err(r#"
[recipe]
name = "t"
[[source]]
name = "a"
path = "a.jsonl"
format = "instruction"
fields = { instruction = "q", ouput = "a" }
"#);
        let shown = e.to_string();
        assert!(shown.contains(":8:31: unknown key `ouput` in `source[0].fields`"), "{shown}");
        assert!(shown.contains("did you mean `output`?"), "{shown}");
    }

    #[test]
    fn semantic_problems_are_all_collected() {
        let e = err(r#"
[recipe]
name = "t"
[[source]]
name = "a"
path = "a.jsonl"
format = "instuction"
[[source]]
name = "a"
path = "b.jsonl"
format = "text"
sample = 1.5
where = "x = = 1"
[filters]
drop_regex = ["(unclosed"]
min_chars = 10
max_chars = 5
"#);
        let shown = e.to_string();
        assert!(shown.contains("unknown format `instuction`"), "{shown}");
        assert!(shown.contains("did you mean `instruction`?"), "{shown}");
        assert!(shown.contains("source name `a` is used twice"), "{shown}");
        assert!(shown.contains("`sample` must be in (0, 1]"), "{shown}");
        assert!(shown.contains("bad `where`"), "{shown}");
        assert!(shown.contains("`filters.drop_regex[0]` is not a valid regex"), "{shown}");
        assert!(shown.contains("`filters.min_chars` (10) is above `filters.max_chars` (5)"), "{shown}");
        assert_eq!(e.diagnostics.len(), 6, "{shown}");
    }

    #[test]
    fn weight_is_bounded() {
        let e = err(r#"
[recipe]
name = "t"
[[source]]
name = "a"
path = "a.jsonl"
format = "text"
weight = 1e12
"#);
        let shown = e.to_string();
        assert!(shown.contains("recipe.toml:8:1"), "{shown}");
        assert!(shown.contains("`weight` must be at most 100, got 1000000000000"), "{shown}");
    }

    #[test]
    fn wrong_type_names_the_place() {
        let e = err("[recipe]\nname = \"t\"\nseed = \"x\"\n");
        let shown = e.to_string();
        assert!(shown.contains("recipe.toml:3:8"), "{shown}");
    }

    #[test]
    fn syntax_error_names_the_place() {
        let e = err("[recipe]\nname = \"t\n");
        assert!(e.to_string().contains("recipe.toml:2:"), "{e}");
    }

    #[test]
    fn fields_that_do_not_apply_are_refused() {
        let e = err(r#"
[recipe]
name = "t"
[[source]]
name = "a"
path = "a.jsonl"
format = "text"
fields = { text = "body", output = "x" }
"#);
        assert!(e.to_string().contains("`fields.output` does not apply to format `text`"), "{e}");
    }
}
