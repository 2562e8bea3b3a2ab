//! The compliance data under `licenses/` (schema: docs/compliance-data.md), read in two
//! phases as the recipe is: TOML into serde types while every unknown key is collected
//! with its line, then a validation that checks meaning across files (every license id
//! known, every family referenced exists, every fact a rule names is one the engine
//! computes) and reports every problem at once.
//!
//! The files are compiled into the binary (`include_str!`), so an installed `curate`
//! judges the same way wherever it runs. A recipe may name a policy file of its own
//! instead of a bundled one; it is read with the bundled licenses, models and catalog.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::judge::{Cond, Op, ITEM_FACTS, LIST_FACTS, SOURCE_FACTS, TARGET_FACTS};
use super::spdx_expr;
use crate::recipe::{RecipeError, SpanIndex};

/// The only schema version this build reads.
pub const SCHEMA: u32 = 1;

/// The data files compiled into the binary, by their path under `licenses/`.
pub const BUNDLED: &[(&str, &str)] = &[
    ("licenses.toml", include_str!("../../licenses/licenses.toml")),
    ("models.toml", include_str!("../../licenses/models.toml")),
    ("hub-renames.toml", include_str!("../../licenses/hub-renames.toml")),
    ("catalog/benchmarks-and-tasks.toml", include_str!("../../licenses/catalog/benchmarks-and-tasks.toml")),
    ("catalog/evaluation.toml", include_str!("../../licenses/catalog/evaluation.toml")),
    ("catalog/human-written.toml", include_str!("../../licenses/catalog/human-written.toml")),
    ("catalog/instruction-dpi-1.toml", include_str!("../../licenses/catalog/instruction-dpi-1.toml")),
    ("catalog/instruction-dpi-2.toml", include_str!("../../licenses/catalog/instruction-dpi-2.toml")),
    ("catalog/math-reasoning.toml", include_str!("../../licenses/catalog/math-reasoning.toml")),
    ("catalog/model-generated.toml", include_str!("../../licenses/catalog/model-generated.toml")),
    ("catalog/preference.toml", include_str!("../../licenses/catalog/preference.toml")),
    ("catalog/pretraining.toml", include_str!("../../licenses/catalog/pretraining.toml")),
    ("catalog/question-answering.toml", include_str!("../../licenses/catalog/question-answering.toml")),
    ("catalog/task-collections.toml", include_str!("../../licenses/catalog/task-collections.toml")),
    ("policies/neurips-2023.toml", include_str!("../../licenses/policies/neurips-2023.toml")),
];

/// License texts, so that `text = "texts/…"` can be checked and a NOTICE can point at them.
pub const BUNDLED_TEXTS: &[(&str, &str)] = &[
    ("texts/LicenseRef-Academic-Research-Only.md", include_str!("../../licenses/texts/LicenseRef-Academic-Research-Only.md")),
    ("texts/LicenseRef-Anthropic-Terms.md", include_str!("../../licenses/texts/LicenseRef-Anthropic-Terms.md")),
    ("texts/LicenseRef-BigCode-OpenRAIL-M.md", include_str!("../../licenses/texts/LicenseRef-BigCode-OpenRAIL-M.md")),
    ("texts/LicenseRef-BigScience-RAIL-1.0.md", include_str!("../../licenses/texts/LicenseRef-BigScience-RAIL-1.0.md")),
    ("texts/LicenseRef-Google-GenAI-Terms.md", include_str!("../../licenses/texts/LicenseRef-Google-GenAI-Terms.md")),
    ("texts/LicenseRef-LLaMA-1-Research.txt", include_str!("../../licenses/texts/LicenseRef-LLaMA-1-Research.txt")),
    ("texts/LicenseRef-LMSYS-Chat-1M.md", include_str!("../../licenses/texts/LicenseRef-LMSYS-Chat-1M.md")),
    ("texts/LicenseRef-Llama2-Community.txt", include_str!("../../licenses/texts/LicenseRef-Llama2-Community.txt")),
    ("texts/LicenseRef-Llama3-Community.md", include_str!("../../licenses/texts/LicenseRef-Llama3-Community.md")),
    ("texts/LicenseRef-Llama3.1-Community.md", include_str!("../../licenses/texts/LicenseRef-Llama3.1-Community.md")),
    ("texts/LicenseRef-Microsoft-Services-Agreement.md", include_str!("../../licenses/texts/LicenseRef-Microsoft-Services-Agreement.md")),
    ("texts/LicenseRef-NonCommercial-Research.md", include_str!("../../licenses/texts/LicenseRef-NonCommercial-Research.md")),
    ("texts/LicenseRef-OpenAI-Terms.md", include_str!("../../licenses/texts/LicenseRef-OpenAI-Terms.md")),
    ("texts/LicenseRef-OpenRAIL-M.md", include_str!("../../licenses/texts/LicenseRef-OpenRAIL-M.md")),
    ("texts/LicenseRef-Tongyi-Qianwen-Research.txt", include_str!("../../licenses/texts/LicenseRef-Tongyi-Qianwen-Research.txt")),
    ("texts/LicenseRef-Tongyi-Qianwen.txt", include_str!("../../licenses/texts/LicenseRef-Tongyi-Qianwen.txt")),
];

// ---------------------------------------------------------------------------
// licenses.toml
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct LicensesFile {
    schema: Option<u32>,
    #[serde(default)]
    license: Vec<LicenseClass>,
}

/// How widely a license lets the data be used. `Unspecified` means nobody said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UseLevel {
    Commercial,
    NonCommercial,
    AcademicOnly,
    Unspecified,
}

impl UseLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            UseLevel::Commercial => "commercial",
            UseLevel::NonCommercial => "non-commercial",
            UseLevel::AcademicOnly => "academic-only",
            UseLevel::Unspecified => "unspecified",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct LicenseClass {
    pub id: String,
    pub name: String,
    #[serde(rename = "use")]
    pub use_: UseLevel,
    pub attribution: bool,
    pub share_alike: bool,
    pub no_derivatives: bool,
    pub url: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub hub_tags: Vec<String>,
    #[serde(default)]
    pub dpi_names: Vec<String>,
    pub why: String,
    #[serde(default)]
    pub output_terms: Vec<OutputTerm>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputTermKind {
    SameFamilyOnly,
    NoCompetingModels,
    UseRestrictionsCarry,
    NonCommercialOutputs,
}

impl OutputTermKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputTermKind::SameFamilyOnly => "same-family-only",
            OutputTermKind::NoCompetingModels => "no-competing-models",
            OutputTermKind::UseRestrictionsCarry => "use-restrictions-carry",
            OutputTermKind::NonCommercialOutputs => "non-commercial-outputs",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct OutputTerm {
    pub kind: OutputTermKind,
    pub family: Option<String>,
    pub vendor: Option<String>,
    pub clause: String,
    pub quote: String,
    pub url: String,
    pub note: Option<String>,
}

// ---------------------------------------------------------------------------
// models.toml
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct ModelsFile {
    schema: Option<u32>,
    #[serde(default)]
    approval_sources: BTreeMap<String, ApprovalSource>,
    #[serde(default)]
    family: Vec<Family>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApprovalSource {
    pub url: String,
    pub says: String,
}

/// What a family's outputs may be used to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputsMayTrain {
    Forbidden,
    SameFamily,
    AnyApproved,
    Unknown,
}

impl OutputsMayTrain {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputsMayTrain::Forbidden => "forbidden",
            OutputsMayTrain::SameFamily => "same-family",
            OutputsMayTrain::AnyApproved => "any-approved",
            OutputsMayTrain::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Evidence {
    pub fact: String,
    pub url: String,
    pub says: String,
    #[serde(default = "yes")]
    pub checked: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
pub struct Family {
    pub id: String,
    pub name: String,
    pub vendor: String,
    pub patterns: Vec<String>,
    #[serde(default)]
    pub instruct_patterns: Vec<String>,
    #[serde(default)]
    pub instruction_tuned: bool,
    #[serde(default)]
    pub lineage: Vec<String>,
    #[serde(default)]
    pub approved_as_base: Vec<String>,
    pub license: String,
    pub outputs_may_train: OutputsMayTrain,
    #[serde(default)]
    pub outputs_same_family: Vec<String>,
    pub outputs_license: Option<String>,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    #[serde(default)]
    pub variant: Vec<Variant>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Variant {
    pub patterns: Vec<String>,
    pub instruction_tuned: Option<bool>,
    pub license: Option<String>,
    pub outputs_may_train: Option<OutputsMayTrain>,
    pub outputs_same_family: Option<Vec<String>>,
    pub note: Option<String>,
}

/// A model id resolved to its family (and variant), with the variant's overrides applied.
#[derive(Debug, Clone)]
pub struct ModelInfo<'a> {
    pub family: &'a Family,
    pub variant: Option<&'a Variant>,
    pub instruction_tuned: bool,
    /// Why the model counts as instruction-tuned, when it does.
    pub instruction_why: Option<String>,
    pub license: String,
    pub outputs_may_train: OutputsMayTrain,
    pub outputs_same_family: Vec<String>,
}

// ---------------------------------------------------------------------------
// hub-renames.toml
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct RenamesFile {
    schema: Option<u32>,
    #[serde(default)]
    rename: Vec<Rename>,
}

/// A hub dataset that moved from a bare name to an organisation.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Rename {
    pub from: String,
    pub to: String,
    pub evidence: String,
}

/// The bundled rename table, read once (the recipe parser resolves legacy ids with it).
pub fn hub_renames() -> &'static [Rename] {
    static TABLE: std::sync::OnceLock<Vec<Rename>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let (name, text) = BUNDLED.iter().find(|(n, _)| *n == "hub-renames.toml").expect("bundled");
        let mut diags = Vec::new();
        read_toml::<RenamesFile>(name, text, &mut diags).map(|f| f.rename).unwrap_or_default()
    })
}

/// The current id of a legacy bare hub id (`gsm8k` → `openai/gsm8k`), case-insensitive.
pub fn renamed_hub_id(id: &str) -> Option<&'static Rename> {
    hub_renames().iter().find(|r| r.from.eq_ignore_ascii_case(id))
}

/// The other id of a renamed dataset, either way (`gsm8k` ↔ `openai/gsm8k`).
pub fn other_hub_id(id: &str) -> Option<&'static str> {
    hub_renames().iter().find_map(|r| {
        if r.from.eq_ignore_ascii_case(id) {
            Some(r.to.as_str())
        } else if r.to.eq_ignore_ascii_case(id) {
            Some(r.from.as_str())
        } else {
            None
        }
    })
}

// ---------------------------------------------------------------------------
// catalog/*.toml
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct CatalogFile {
    schema: Option<u32>,
    #[serde(default)]
    dataset: Vec<Dataset>,
}

/// How the rows of a dataset were made: the recipe's own type, which the catalog
/// can also state as `unknown`.
pub use crate::recipe::Origin;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoleHint {
    Train,
    Eval,
    TrainAndEval,
}

impl RoleHint {
    pub fn as_str(self) -> &'static str {
        match self {
            RoleHint::Train => "train",
            RoleHint::Eval => "eval",
            RoleHint::TrainAndEval => "train-and-eval",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct DpiRef {
    pub collection: String,
    #[serde(default)]
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Dataset {
    pub id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub name: String,
    /// Who made the dataset, as its card, paper or license file names them (the
    /// copyright holders where a license file names them, else the authors);
    /// NOTICE credits them.
    #[serde(default)]
    pub authors: Vec<String>,
    pub license: String,
    #[serde(default)]
    pub card_license: String,
    #[serde(default)]
    pub component_licenses: bool,
    pub origin: Origin,
    #[serde(default)]
    pub generated_by: Vec<String>,
    pub generated_by_column: Option<String>,
    pub role_hint: RoleHint,
    #[serde(default)]
    pub eval_of: Vec<String>,
    #[serde(default)]
    pub eval_splits: Vec<String>,
    #[serde(default)]
    pub dpi: Vec<DpiRef>,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    #[serde(default)]
    pub subset: Vec<Subset>,
    /// The catalog file it came from (set by the loader).
    #[serde(skip)]
    pub file: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Subset {
    pub name: String,
    pub column: Option<String>,
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub configs: Vec<String>,
    pub origin: Option<Origin>,
    pub generated_by: Option<Vec<String>>,
    pub license: Option<String>,
    pub component_licenses: Option<bool>,
    pub role_hint: Option<RoleHint>,
    pub notes: Option<String>,
    #[serde(default)]
    pub evidence: Vec<Evidence>,
}

impl Dataset {
    /// Evidence URLs for one fact (of the dataset or one of its subsets).
    pub fn evidence_for(&self, subset: Option<&Subset>, fact: &str) -> Vec<String> {
        let list = subset.map(|s| &s.evidence).unwrap_or(&self.evidence);
        let mut urls: Vec<String> = list.iter().filter(|e| e.fact == fact).map(|e| e.url.clone()).collect();
        if urls.is_empty() && subset.is_some() {
            urls = self.evidence.iter().filter(|e| e.fact == fact).map(|e| e.url.clone()).collect();
        }
        urls.dedup();
        urls
    }
}

// ---------------------------------------------------------------------------
// policies/*.toml
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct PolicyFile {
    schema: Option<u32>,
    policy: PolicyMeta,
    #[serde(default)]
    sources: BTreeMap<String, CiteSource>,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PolicyMeta {
    pub id: String,
    pub name: String,
    pub url: String,
    pub summary: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CiteSource {
    pub url: String,
    pub title: String,
}

/// What a rule judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Target,
    Source,
}

/// How much a rule that fires weighs, least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warn,
    Conditional,
    Reject,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Conditional => "conditional",
            Severity::Reject => "reject",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObligationKind {
    TrainOnlyFamily,
    ReleaseUnder,
    CarryUseRestrictions,
    NonCommercial,
    Attribution,
    ShareAlike,
    Decontaminate,
    Publish,
}

impl ObligationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObligationKind::TrainOnlyFamily => "train-only-family",
            ObligationKind::ReleaseUnder => "release-under",
            ObligationKind::CarryUseRestrictions => "carry-use-restrictions",
            ObligationKind::NonCommercial => "non-commercial",
            ObligationKind::Attribution => "attribution",
            ObligationKind::ShareAlike => "share-alike",
            ObligationKind::Decontaminate => "decontaminate",
            ObligationKind::Publish => "publish",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ObligationCfg {
    pub kind: ObligationKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Cite {
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LicenseCite {
    pub license: String,
    pub clause: String,
}

#[derive(Debug, Deserialize)]
struct RawRule {
    id: String,
    scope: Scope,
    severity: Severity,
    description: String,
    when: toml::Value,
    signoff: Option<String>,
    hint: Option<String>,
    #[serde(default)]
    obligations: Vec<ObligationCfg>,
    #[serde(default)]
    cite: Vec<Cite>,
    #[serde(default)]
    license_cite: Vec<LicenseCite>,
}

/// A checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub scope: Scope,
    pub severity: Severity,
    pub description: String,
    pub when: Cond,
    pub signoff: Option<String>,
    pub hint: Option<String>,
    pub obligations: Vec<ObligationCfg>,
    pub cite: Vec<Cite>,
    pub license_cite: Vec<LicenseCite>,
}

/// A checked policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub meta: PolicyMeta,
    pub sources: BTreeMap<String, CiteSource>,
    pub rules: Vec<Rule>,
    /// Where it was read from: `policies/<id>.toml` (bundled) or a path.
    pub file: String,
}

impl Policy {
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

// ---------------------------------------------------------------------------
// Loading and validation
// ---------------------------------------------------------------------------

/// One problem in the compliance data, with its file and place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDiag {
    pub file: String,
    pub line: Option<(usize, usize)>,
    pub message: String,
}

/// Every problem found in the compliance data.
#[derive(Debug)]
pub struct DataError {
    pub diagnostics: Vec<DataDiag>,
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.diagnostics.len();
        write!(f, "invalid compliance data: {n} problem{}", if n == 1 { "" } else { "s" })?;
        for d in &self.diagnostics {
            match d.line {
                Some((l, c)) => write!(f, "\n  --> {}:{l}:{c}: {}", d.file, d.message)?,
                None => write!(f, "\n  --> {}: {}", d.file, d.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for DataError {}

/// The bundled facts (licenses, models, catalog), validated and indexed.
#[derive(Debug)]
pub struct Data {
    pub licenses: Vec<LicenseClass>,
    pub approval_sources: BTreeMap<String, ApprovalSource>,
    pub families: Vec<Family>,
    pub catalog: Vec<Dataset>,
    license_index: HashMap<String, usize>,
    hub_tags: HashMap<String, String>,
    dpi_names: HashMap<String, String>,
    catalog_index: HashMap<String, usize>,
}

/// Reads one TOML file into `T`, collecting unknown keys (every one, with its line)
/// and the first type error.
fn read_toml<T: DeserializeOwned>(file: &str, text: &str, diags: &mut Vec<DataDiag>) -> Option<T> {
    use toml::de::DeTable;
    let at = |span: Option<std::ops::Range<usize>>| span.map(|s| RecipeError::line_col(text, s.start));
    let root = match DeTable::parse(text) {
        Ok(r) => r,
        Err(e) => {
            diags.push(DataDiag { file: file.into(), line: at(e.span()), message: format!("TOML syntax: {}", e.message().trim()) });
            return None;
        }
    };
    let spans = SpanIndex { root: &root };
    let mut unknown = Vec::new();
    let de = toml::Deserializer::from(root.clone());
    let out: Option<T> = match serde_ignored::deserialize(de, |p| unknown.push(crate::recipe::path_segments(&p))) {
        Ok(v) => Some(v),
        Err(e) => {
            diags.push(DataDiag { file: file.into(), line: at(e.span()), message: e.message().trim().to_string() });
            None
        }
    };
    for segs in unknown {
        let key = match segs.last() {
            Some(crate::recipe::Seg::Key(k)) => k.clone(),
            _ => "?".into(),
        };
        let table = crate::recipe::describe_table(&segs[..segs.len().saturating_sub(1)]);
        diags.push(DataDiag {
            file: file.into(),
            line: at(spans.find(&segs, true)),
            message: format!("unknown key `{key}` in {table}"),
        });
    }
    out
}

fn check_schema(file: &str, schema: Option<u32>, diags: &mut Vec<DataDiag>) {
    match schema {
        Some(SCHEMA) => {}
        Some(n) => diags.push(DataDiag {
            file: file.into(),
            line: None,
            message: format!("schema {n} is not one this curate reads (it reads schema {SCHEMA}); upgrade curate"),
        }),
        None => diags.push(DataDiag { file: file.into(), line: None, message: "missing `schema = 1`".into() }),
    }
}

/// Case-insensitive glob over a whole id: `*` any run of characters (`/` included),
/// `?` one character, nothing else special.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

impl Data {
    /// The data compiled into this binary.
    pub fn bundled() -> Result<Data, DataError> {
        let files: Vec<(String, String)> = BUNDLED.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
        let texts: BTreeSet<String> = BUNDLED_TEXTS.iter().map(|(n, _)| n.to_string()).collect();
        Data::from_files(&files, &texts)
    }

    /// Read a `licenses/` folder from disk (tests of the data itself use this too).
    pub fn from_dir(dir: &Path) -> Result<Data, DataError> {
        let mut files = Vec::new();
        let mut texts = BTreeSet::new();
        let mut err = Vec::new();
        let mut read = |rel: String| match std::fs::read_to_string(dir.join(&rel)) {
            Ok(t) => Some((rel, t)),
            Err(e) => {
                err.push(DataDiag { file: rel, line: None, message: format!("cannot read: {e}") });
                None
            }
        };
        files.extend(read("licenses.toml".into()));
        files.extend(read("models.toml".into()));
        if dir.join("hub-renames.toml").is_file() {
            files.extend(read("hub-renames.toml".into()));
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.join("catalog"))
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        for n in names.into_iter().filter(|n| n.ends_with(".toml")) {
            files.extend(read(format!("catalog/{n}")));
        }
        if let Ok(rd) = std::fs::read_dir(dir.join("texts")) {
            for e in rd.flatten() {
                texts.insert(format!("texts/{}", e.file_name().to_string_lossy()));
            }
        }
        if !err.is_empty() {
            return Err(DataError { diagnostics: err });
        }
        Data::from_files(&files, &texts)
    }

    fn from_files(files: &[(String, String)], texts: &BTreeSet<String>) -> Result<Data, DataError> {
        let mut diags = Vec::new();
        let mut licenses = Vec::new();
        let mut families = Vec::new();
        let mut approval_sources = BTreeMap::new();
        let mut catalog = Vec::new();
        for (name, text) in files {
            if name == "licenses.toml" {
                if let Some(f) = read_toml::<LicensesFile>(name, text, &mut diags) {
                    check_schema(name, f.schema, &mut diags);
                    licenses = f.license;
                }
            } else if name == "models.toml" {
                if let Some(f) = read_toml::<ModelsFile>(name, text, &mut diags) {
                    check_schema(name, f.schema, &mut diags);
                    families = f.family;
                    approval_sources = f.approval_sources;
                }
            } else if name == "hub-renames.toml" {
                if let Some(f) = read_toml::<RenamesFile>(name, text, &mut diags) {
                    check_schema(name, f.schema, &mut diags);
                    check_renames(name, &f.rename, &mut diags);
                }
            } else if name.starts_with("catalog/")
                && let Some(f) = read_toml::<CatalogFile>(name, text, &mut diags)
            {
                check_schema(name, f.schema, &mut diags);
                for mut d in f.dataset {
                    d.file = name.clone();
                    catalog.push(d);
                }
            }
        }
        let mut data = Data {
            licenses,
            approval_sources,
            families,
            catalog,
            license_index: HashMap::new(),
            hub_tags: HashMap::new(),
            dpi_names: HashMap::new(),
            catalog_index: HashMap::new(),
        };
        data.index_and_check(texts, &mut diags);
        if diags.is_empty() { Ok(data) } else { Err(DataError { diagnostics: diags }) }
    }

    fn index_and_check(&mut self, texts: &BTreeSet<String>, diags: &mut Vec<DataDiag>) {
        let mut d = |file: &str, message: String| diags.push(DataDiag { file: file.into(), line: None, message });
        // Licenses: unique ids, texts for every LicenseRef, unique hub tags and DPI names.
        for (i, l) in self.licenses.iter().enumerate() {
            if self.license_index.insert(l.id.clone(), i).is_some() {
                d("licenses.toml", format!("license `{}` is listed twice", l.id));
            }
            if let Err(e) = spdx_expr::parse(&l.id) {
                d("licenses.toml", format!("license id `{}` is not an SPDX id or LicenseRef: {e}", l.id));
            }
            if l.id.starts_with("LicenseRef-") {
                match &l.text {
                    None => d("licenses.toml", format!("`{}` needs `text` (every LicenseRef has a text or excerpt)", l.id)),
                    Some(t) if !texts.contains(t) => d("licenses.toml", format!("`{}`: text `{t}` does not exist", l.id)),
                    _ => {}
                }
            }
            for t in &l.hub_tags {
                if let Some(prev) = self.hub_tags.insert(t.to_lowercase(), l.id.clone()) {
                    d("licenses.toml", format!("hub tag `{t}` is given to both `{prev}` and `{}`", l.id));
                }
            }
            for n in &l.dpi_names {
                if let Some(prev) = self.dpi_names.insert(n.to_lowercase(), l.id.clone()) {
                    d("licenses.toml", format!("DPI name `{n}` is given to both `{prev}` and `{}`", l.id));
                }
            }
        }
        let family_ids: BTreeSet<&str> = self.families.iter().map(|f| f.id.as_str()).collect();
        for l in &self.licenses {
            for t in &l.output_terms {
                match t.kind {
                    OutputTermKind::SameFamilyOnly => match &t.family {
                        Some(f) if family_ids.contains(f.as_str()) => {}
                        Some(f) => d("licenses.toml", format!("`{}`: output term names family `{f}`, which models.toml lacks", l.id)),
                        None => d("licenses.toml", format!("`{}`: a same-family-only output term needs `family`", l.id)),
                    },
                    OutputTermKind::NoCompetingModels if t.vendor.is_none() => {
                        d("licenses.toml", format!("`{}`: a no-competing-models output term needs `vendor`", l.id))
                    }
                    _ => {}
                }
            }
        }
        // Models.
        let mut seen = BTreeSet::new();
        for f in &self.families {
            if !seen.insert(f.id.as_str()) {
                d("models.toml", format!("family `{}` is listed twice", f.id));
            }
            if f.patterns.is_empty() {
                d("models.toml", format!("family `{}` has no `patterns`", f.id));
            }
            for l in std::iter::once(&f.license).chain(f.outputs_license.iter()).chain(f.variant.iter().filter_map(|v| v.license.as_ref())) {
                self.check_expr("models.toml", &format!("family `{}`", f.id), l, &mut d);
            }
            let sf = f.variant.iter().filter_map(|v| v.outputs_may_train).chain([f.outputs_may_train]);
            for m in sf {
                if m == OutputsMayTrain::SameFamily && f.outputs_same_family.is_empty() && f.variant.iter().all(|v| v.outputs_same_family.is_none()) {
                    d("models.toml", format!("family `{}`: `same-family` needs `outputs_same_family`", f.id));
                }
            }
            for r in f.lineage.iter().chain(&f.outputs_same_family).chain(f.variant.iter().flat_map(|v| v.outputs_same_family.iter().flatten())) {
                if !family_ids.contains(r.as_str()) {
                    d("models.toml", format!("family `{}` refers to family `{r}`, which does not exist", f.id));
                }
            }
        }
        // Catalog: ids unique across files (aliases too), facts well-formed.
        for (i, ds) in self.catalog.iter().enumerate() {
            for id in std::iter::once(&ds.id).chain(&ds.aliases) {
                if let Some(prev) = self.catalog_index.insert(id.to_lowercase(), i) {
                    let other = &self.catalog[prev];
                    d(&ds.file, format!("dataset id `{id}` is also used by `{}` ({})", other.id, other.file));
                }
            }
            let what = format!("dataset `{}`", ds.id);
            self.check_expr(&ds.file, &what, &ds.license, &mut d);
            if !ds.card_license.is_empty() && !self.hub_tags.contains_key(&ds.card_license.to_lowercase()) {
                d(&ds.file, format!("{what}: `card_license = \"{}\"` is no hub tag in licenses.toml", ds.card_license));
            }
            if ds.evidence.is_empty() {
                d(&ds.file, format!("{what} has no evidence"));
            }
            if ds.name.trim().is_empty() || ds.id.trim().is_empty() {
                d(&ds.file, format!("{what} has no `id` or no `name`"));
            }
            for e in ds.evidence.iter().chain(ds.subset.iter().flat_map(|s| s.evidence.iter())) {
                let host = e.url.strip_prefix("https://").and_then(|r| r.split('/').next()).unwrap_or("");
                if !host.contains('.') || e.url.contains(char::is_whitespace) {
                    d(&ds.file, format!("{what}: evidence URL `{}` is not an https address", e.url));
                }
                if e.says.trim().is_empty() || e.fact.trim().is_empty() {
                    d(&ds.file, format!("{what}: evidence {} needs both `fact` and `says`", e.url));
                }
            }
            let sub_gens = ds.subset.iter().filter_map(|s| s.generated_by.as_ref()).flatten();
            for g in ds.generated_by.iter().chain(sub_gens) {
                if self.model(g).is_none() {
                    d(&ds.file, format!("{what}: generator `{g}` matches no family in models.toml"));
                }
            }
            for s in &ds.subset {
                let what = format!("dataset `{}` subset `{}`", ds.id, s.name);
                match (&s.column, s.values.is_empty(), s.configs.is_empty()) {
                    (Some(_), false, true) | (None, true, false) => {}
                    _ => d(&ds.file, format!("{what}: give either `column` and `values` or `configs`")),
                }
                if let Some(l) = &s.license {
                    self.check_expr(&ds.file, &what, l, &mut d);
                }
                if s.evidence.is_empty() || s.name.trim().is_empty() {
                    d(&ds.file, format!("{what} has no evidence or no `name`"));
                }
            }
        }
    }

    fn check_expr(&self, file: &str, what: &str, expr: &str, d: &mut dyn FnMut(&str, String)) {
        match spdx_expr::parse(expr) {
            Err(e) => d(file, format!("{what}: license `{expr}` is not an SPDX expression: {e}")),
            Ok(l) => {
                for id in l.ids() {
                    if !self.license_index.contains_key(id) {
                        d(file, format!("{what}: license id `{id}` is not in licenses.toml"));
                    }
                }
            }
        }
    }

    pub fn license(&self, id: &str) -> Option<&LicenseClass> {
        self.license_index.get(id).map(|&i| &self.licenses[i])
    }

    /// The license id a hub card's `license:` tag means.
    pub fn license_for_hub_tag(&self, tag: &str) -> Option<&str> {
        self.hub_tags.get(&tag.to_lowercase()).map(String::as_str)
    }

    /// The license id a DPI license name means.
    pub fn license_for_dpi_name(&self, name: &str) -> Option<&str> {
        self.dpi_names.get(&name.to_lowercase()).map(String::as_str)
    }

    /// The catalog entry for a hub id or alias (case-insensitive), or for the other id
    /// of a renamed dataset (`hub-renames.toml`, either way).
    pub fn dataset(&self, id: &str) -> Option<&Dataset> {
        let direct = self.catalog_index.get(&id.to_lowercase());
        direct
            .or_else(|| other_hub_id(id).and_then(|o| self.catalog_index.get(&o.to_lowercase())))
            .map(|&i| &self.catalog[i])
    }

    pub fn family(&self, id: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.id == id)
    }

    /// Resolve a model id: the first family (in file order) with a matching pattern,
    /// then the first of its variants with one.
    pub fn model(&self, model: &str) -> Option<ModelInfo<'_>> {
        let family = self.families.iter().find(|f| f.patterns.iter().any(|p| glob_match(p, model)))?;
        Some(self.model_in(family, model))
    }

    /// A model id taken as a member of `family` (for a recipe's family override).
    pub fn model_in<'a>(&'a self, family: &'a Family, model: &str) -> ModelInfo<'a> {
        let variant = family.variant.iter().find(|v| v.patterns.iter().any(|p| glob_match(p, model)));
        let instruct_pattern = family.instruct_patterns.iter().find(|p| glob_match(p, model));
        let (instruction_tuned, instruction_why) = if let Some(true) = variant.and_then(|v| v.instruction_tuned) {
            (true, Some("a variant of the family marked instruction-tuned in models.toml".to_string()))
        } else if family.instruction_tuned {
            (true, Some(format!("the whole `{}` family is instruction-tuned (models.toml)", family.id)))
        } else if let Some(p) = instruct_pattern {
            (true, Some(format!("the id matches the family's instruction-tuned pattern `{p}`")))
        } else {
            (false, None)
        };
        ModelInfo {
            family,
            variant,
            instruction_tuned,
            instruction_why,
            license: variant.and_then(|v| v.license.clone()).unwrap_or_else(|| family.license.clone()),
            outputs_may_train: variant.and_then(|v| v.outputs_may_train).unwrap_or(family.outputs_may_train),
            outputs_same_family: variant
                .and_then(|v| v.outputs_same_family.clone())
                .unwrap_or_else(|| family.outputs_same_family.clone()),
        }
    }

    /// The kinds of output terms carried by the licenses of an expression.
    pub fn output_terms(&self, expr: &str) -> Vec<&OutputTerm> {
        let Ok(l) = spdx_expr::parse(expr) else { return vec![] };
        l.ids().into_iter().filter_map(|id| self.license(id)).flat_map(|c| c.output_terms.iter()).collect()
    }

    /// Read and check a policy: a bundled one by id, or a file.
    pub fn policy(&self, name: &str, base: &Path) -> Result<Policy, anyhow::Error> {
        let bundled = format!("policies/{name}.toml");
        if let Some((_, text)) = BUNDLED.iter().find(|(n, _)| *n == bundled) {
            return Ok(self.policy_from(&bundled, text)?);
        }
        let looks_like_path = name.contains('/') || name.contains('\\') || name.ends_with(".toml");
        if !looks_like_path {
            let known: Vec<&str> = BUNDLED
                .iter()
                .filter_map(|(n, _)| n.strip_prefix("policies/").and_then(|n| n.strip_suffix(".toml")))
                .collect();
            anyhow::bail!(
                "unknown policy `{name}`\nhint: bundled policies: {}; or give the path of a policy file (ending in `.toml`)",
                known.join(", ")
            );
        }
        let path = base.join(name);
        let text = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("cannot read policy `{}`: {e}", path.display()))?;
        Ok(self.policy_from(&path.display().to_string(), &text)?)
    }

    pub fn policy_from(&self, file: &str, text: &str) -> Result<Policy, DataError> {
        let mut diags = Vec::new();
        let Some(raw) = read_toml::<PolicyFile>(file, text, &mut diags) else {
            return Err(DataError { diagnostics: diags });
        };
        check_schema(file, raw.schema, &mut diags);
        let mut rules = Vec::new();
        let mut ids = BTreeSet::new();
        for r in raw.rule {
            let mut d = |m: String| diags.push(DataDiag { file: file.into(), line: None, message: format!("rule `{}`: {m}", r.id) });
            if !ids.insert(r.id.clone()) {
                d("the id is used twice".into());
            }
            let when = match Cond::from_toml(&r.when) {
                Ok(c) => c,
                Err(e) => {
                    d(format!("`when`: {e}"));
                    continue;
                }
            };
            check_cond(&when, r.scope, false, &mut d);
            for o in &r.obligations {
                if let Some(f) = &o.from
                    && !ITEM_FACTS.contains(&f.as_str())
                    && !SOURCE_FACTS.contains(&f.as_str())
                {
                    d(format!("obligation `from = \"{f}\"` names no fact the engine computes"));
                }
            }
            for c in &r.cite {
                if !raw.sources.contains_key(&c.source) {
                    d(format!("cites `{}`, which is not under `[sources]`", c.source));
                }
                if c.quote.is_none() && c.note.is_none() {
                    d(format!("a citation of `{}` needs a `quote` or a `note`", c.source));
                }
            }
            if r.cite.is_empty() {
                d("cites nothing; every rule names the text it enforces".into());
            }
            for lc in &r.license_cite {
                if self.license(&lc.license).is_none() {
                    d(format!("`license_cite` names `{}`, which licenses.toml lacks", lc.license));
                }
            }
            rules.push(Rule {
                id: r.id,
                scope: r.scope,
                severity: r.severity,
                description: r.description,
                when,
                signoff: r.signoff,
                hint: r.hint,
                obligations: r.obligations,
                cite: r.cite,
                license_cite: r.license_cite,
            });
        }
        if diags.is_empty() {
            Ok(Policy { meta: raw.policy, sources: raw.sources, rules, file: file.to_string() })
        } else {
            Err(DataError { diagnostics: diags })
        }
    }
}

/// Each rename: a bare old id, an `org/name` new id, an evidence address, no repeats.
fn check_renames(file: &str, list: &[Rename], diags: &mut Vec<DataDiag>) {
    let mut seen = BTreeSet::new();
    for r in list {
        let mut d = |m: String| diags.push(DataDiag { file: file.into(), line: None, message: format!("rename `{}` → `{}`: {m}", r.from, r.to) });
        if r.from.is_empty() || r.from.contains('/') {
            d("`from` is a bare (legacy) id without `/`".into());
        }
        if r.to.split('/').count() != 2 || r.to.split('/').any(str::is_empty) {
            d("`to` is an `org/name` hub id".into());
        }
        if !r.evidence.starts_with("https://") && !r.evidence.starts_with("http://") {
            d(format!("evidence `{}` is not a web address", r.evidence));
        }
        if !seen.insert(r.from.to_lowercase()) || !seen.insert(r.to.to_lowercase()) {
            d("an id is renamed twice".into());
        }
    }
}

/// Every fact a condition names must be one the engine computes for the rule's scope;
/// `item.*` only inside `some` / `every`.
fn check_cond(c: &Cond, scope: Scope, in_item: bool, d: &mut dyn FnMut(String)) {
    match c {
        Cond::Leaf { fact, op, value } => {
            let ok = match scope {
                Scope::Target => TARGET_FACTS.contains(&fact.as_str()),
                Scope::Source => SOURCE_FACTS.contains(&fact.as_str()) || (in_item && ITEM_FACTS.contains(&fact.as_str())),
            };
            if !ok {
                d(format!("names fact `{fact}`, which the engine does not compute for {} rules", if scope == Scope::Target { "target" } else { "source" }));
            }
            let needs_value = !matches!(op, Op::Exists | Op::Missing);
            if needs_value != value.is_some() {
                d(format!("`{fact}`: op `{}` {} a `value`", op.as_str(), if needs_value { "needs" } else { "takes no" }));
            }
            if matches!(op, Op::In | Op::NotIn) && !value.as_ref().is_some_and(|v| v.is_array()) {
                d(format!("`{fact}`: op `{}` needs a list `value`", op.as_str()));
            }
        }
        Cond::All(v) | Cond::Any(v) => v.iter().for_each(|x| check_cond(x, scope, in_item, d)),
        Cond::Not(x) => check_cond(x, scope, in_item, d),
        Cond::Some { list, cond } | Cond::Every { list, cond } => {
            if !LIST_FACTS.contains(&list.as_str()) {
                d(format!("`{list}` is not a list fact with items"));
            }
            check_cond(cond, scope, true, d);
        }
    }
}

/// `licenses/` lists as many files as `BUNDLED` and `BUNDLED_TEXTS` hold.
pub fn bundled_file_names() -> Vec<&'static str> {
    BUNDLED.iter().chain(BUNDLED_TEXTS).map(|(n, _)| *n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_is_whole_id_case_insensitive_and_star_crosses_slashes() {
        assert!(glob_match("meta-llama/llama-2-*", "meta-llama/Llama-2-7b-hf"));
        assert!(glob_match("*-chat*", "meta-llama/Llama-2-7b-chat-hf"));
        assert!(!glob_match("llama-2-*", "meta-llama/Llama-2-7b-hf"), "the whole id must match");
        assert!(glob_match("gpt-4*", "gpt-4"));
        assert!(glob_match("opt-?.7b", "opt-2.7b"));
        assert!(!glob_match("gpt2", "gpt2-xl"));
    }

    #[test]
    fn bundled_data_loads_and_validates() {
        let data = Data::bundled().unwrap_or_else(|e| panic!("{e}"));
        assert!(data.catalog.len() >= 40);
        let p = data.policy("neurips-2023", Path::new(".")).unwrap();
        assert_eq!(p.meta.id, "neurips-2023");
        assert!(p.rules.len() >= 28);
    }

    #[test]
    fn the_bundle_holds_every_file_under_licenses() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("licenses");
        let mut on_disk = Vec::new();
        for sub in ["", "catalog", "policies", "texts"] {
            for e in std::fs::read_dir(root.join(sub)).unwrap().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if e.path().is_file() && (name.ends_with(".toml") || sub == "texts") && name != "README.md" {
                    on_disk.push(if sub.is_empty() { name } else { format!("{sub}/{name}") });
                }
            }
        }
        on_disk.sort();
        let mut bundled: Vec<String> = bundled_file_names().into_iter().map(String::from).collect();
        bundled.sort();
        assert_eq!(on_disk, bundled, "add new files under licenses/ to cfg::BUNDLED or BUNDLED_TEXTS");
    }

    #[test]
    fn unknown_keys_and_bad_references_are_all_reported_with_their_line() {
        let data = Data::bundled().unwrap();
        let text = "schema = 1\n[policy]\nid = \"x\"\nname = \"x\"\nurl = \"u\"\nsummary = \"s\"\nsumary = \"typo\"\n\
                    [sources.a]\nurl = \"u\"\ntitle = \"t\"\n\
                    [[rule]]\nid = \"X-1\"\nscope = \"source\"\nseverity = \"reject\"\ndescription = \"d\"\n\
                    when = { fact = \"source.colour\", op = \"eq\", value = \"red\" }\ncite = [{ source = \"b\", quote = \"q\" }]\n";
        let e = data.policy_from("p.toml", text).unwrap_err();
        let shown = e.to_string();
        assert!(shown.contains("p.toml:7:1: unknown key `sumary` in `policy`"), "{shown}");
        let e2 = data.policy_from("p.toml", &text.replace("sumary = \"typo\"\n", "")).unwrap_err().to_string();
        assert!(e2.contains("names fact `source.colour`"), "{e2}");
        assert!(e2.contains("cites `b`, which is not under `[sources]`"), "{e2}");
    }

    #[test]
    fn a_schema_this_build_does_not_know_is_refused() {
        let data = Data::bundled().unwrap();
        let e = data.policy_from("p.toml", "schema = 2\n[policy]\nid = \"x\"\nname = \"x\"\nurl = \"u\"\nsummary = \"s\"\n").unwrap_err();
        assert!(e.to_string().contains("schema 2 is not one this curate reads"), "{e}");
    }

    #[test]
    fn models_resolve_in_file_order_with_variants() {
        let data = Data::bundled().unwrap();
        let m = data.model("meta-llama/Llama-2-7b-hf").unwrap();
        assert_eq!(m.family.id, "llama-2");
        assert!(!m.instruction_tuned);
        assert!(data.model("meta-llama/Llama-2-7b-chat-hf").unwrap().instruction_tuned);
        assert_eq!(data.model("lmsys/vicuna-13b-v1.5").unwrap().outputs_may_train, OutputsMayTrain::SameFamily);
        assert_eq!(data.model("openai-community/gpt2").unwrap().family.vendor, "openai-open-weights");
        assert!(data.model("Open-Orca/Mistral-7B-OpenOrca").is_none());
    }

    /// The loader itself checks every catalog entry's fields, evidence and generators
    /// (so the bundled catalog, which loads, has them); each defect is named.
    #[test]
    fn the_loader_names_each_defect_of_a_catalog_entry() {
        assert!(Data::bundled().is_ok());
        let mut files: Vec<(String, String)> = BUNDLED.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
        files.push((
            "catalog/bad.toml".into(),
            "schema = 1\n[[dataset]]\nid = \"x/bad\"\nname = \" \"\nlicense = \"MIT\"\norigin = \"model\"\n\
             generated_by = [\"nobody/model-9\"]\nrole_hint = \"train\"\nevidence = [\n\
             { fact = \"license\", url = \"http://example.org/x\", says = \"s\" },\n\
             { fact = \"origin\", url = \"https://example.org/y\", says = \" \" },\n]\n"
                .into(),
        ));
        let texts: BTreeSet<String> = BUNDLED_TEXTS.iter().map(|(n, _)| n.to_string()).collect();
        let e = Data::from_files(&files, &texts).unwrap_err().to_string();
        for want in [
            "catalog/bad.toml: dataset `x/bad` has no `id` or no `name`",
            "evidence URL `http://example.org/x` is not an https address",
            "evidence https://example.org/y needs both `fact` and `says`",
            "generator `nobody/model-9` matches no family in models.toml",
        ] {
            assert!(e.contains(want), "`{want}` missing from:\n{e}");
        }
    }
}
