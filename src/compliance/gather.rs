//! Gathering facts: for every source (and every catalogued subset of it) and for the
//! target model, what is known and where each fact came from.
//!
//! Fact sources, highest precedence first:
//! 1. the recipe's `override` (each carries a reason);
//! 2. the recipe's assertions (`license`, `origin`, `generated_by`);
//! 3. the catalog (`licenses/catalog/*.toml`), by hub id or alias, subset facts first;
//! 4. the hub card, through [`CardSource`]: `crate::fetch::LockedCards` gives what
//!    `curate.lock` recorded of each fetched dataset's card; otherwise the catalog's
//!    `card_license` records what the card said when the entry was written;
//! 5. a Data Provenance Initiative collection, when the recipe or `--dpi` names one.
//!
//! The first source that knows a fact decides it; every other observation is kept, and
//! two that differ are a [`Disagreement`], reported and never hidden. An assertion that
//! would change the fact a lower source gives is also a *conflict*: assertions are
//! checked, not trusted, and replacing a known fact takes an override with a reason.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::cfg::{Data, Dataset, DpiRef, Origin, RoleHint, Subset};
use super::spdx_expr;
use crate::recipe::{Source, Target};

/// Where a fact came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum FactOrigin {
    /// The recipe's `override`, with its reason.
    Override { reason: String },
    /// The recipe's own `license` / `origin` / `generated_by`.
    Assertion,
    /// A catalog entry (and subset), with the evidence URLs for the fact.
    Catalog {
        dataset: String,
        file: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        subset: Option<String>,
        evidence: Vec<String>,
    },
    /// The hub card; `recorded`: as the catalog recorded it (`card_license`), not read live.
    HubCard { dataset: String, recorded: bool },
    /// Records of a Data Provenance Initiative collection.
    Dpi { collection: String, records: Vec<String> },
    /// A recipe key that is itself the fact (`split`, `where`, `hf`, `path`).
    Recipe { key: String },
    /// A model family in `licenses/models.toml`.
    Models { family: String },
    /// License classes in `licenses/licenses.toml`.
    Licenses { ids: Vec<String> },
    /// Computed by the engine from other facts.
    Engine { note: String },
}

impl FactOrigin {
    /// Lower is more trusted; the order of fact sources.
    fn rank(&self) -> u8 {
        match self {
            FactOrigin::Override { .. } => 0,
            FactOrigin::Assertion => 1,
            FactOrigin::Catalog { .. } => 2,
            FactOrigin::HubCard { .. } => 3,
            FactOrigin::Dpi { .. } => 4,
            _ => 5,
        }
    }
}

impl FactOrigin {
    /// The fact source in a few words (`the catalog`, `the hub card`, `DPI`, …).
    pub fn kind_name(&self) -> &'static str {
        match self {
            FactOrigin::Override { .. } => "the recipe's override",
            FactOrigin::Assertion => "the recipe's assertion",
            FactOrigin::Catalog { .. } => "the catalog",
            FactOrigin::HubCard { .. } => "the hub card",
            FactOrigin::Dpi { .. } => "DPI",
            FactOrigin::Recipe { .. } => "the recipe",
            FactOrigin::Models { .. } => "models.toml",
            FactOrigin::Licenses { .. } => "licenses.toml",
            FactOrigin::Engine { .. } => "the engine",
        }
    }
}

impl std::fmt::Display for FactOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FactOrigin::Override { reason } => write!(f, "recipe override (reason: {reason})"),
            FactOrigin::Assertion => write!(f, "recipe assertion"),
            FactOrigin::Catalog { dataset, file, subset, evidence } => {
                write!(f, "catalog `{dataset}`")?;
                if let Some(s) = subset {
                    write!(f, " subset `{s}`")?;
                }
                write!(f, " (licenses/{file}")?;
                // `{:#}` leaves the evidence out (`explain` prints it once per source).
                if !evidence.is_empty() && !f.alternate() {
                    write!(f, "; evidence: {}", evidence.join(", "))?;
                }
                write!(f, ")")
            }
            FactOrigin::HubCard { dataset, recorded: true } => write!(f, "hub card of `{dataset}`, as recorded in the catalog"),
            FactOrigin::HubCard { dataset, recorded: false } => write!(f, "hub card of `{dataset}`"),
            FactOrigin::Dpi { collection, records } => write!(f, "DPI collection `{collection}` (records {})", records.join(", ")),
            FactOrigin::Recipe { key } => write!(f, "recipe `{key}`"),
            FactOrigin::Models { family } => write!(f, "licenses/models.toml family `{family}`"),
            FactOrigin::Licenses { ids } => write!(f, "licenses/licenses.toml ({})", ids.join(", ")),
            FactOrigin::Engine { note } => write!(f, "{note}"),
        }
    }
}

/// A fact and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fact<T> {
    pub value: T,
    pub from: Vec<FactOrigin>,
}

/// The facts that several sources may state, and so may disagree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FactKind {
    License,
    Origin,
    GeneratedBy,
}

impl FactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FactKind::License => "license",
            FactKind::Origin => "origin",
            FactKind::GeneratedBy => "generated_by",
        }
    }
}

/// One fact source's statement of one fact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    pub fact: FactKind,
    pub value: Value,
    pub from: FactOrigin,
    /// What it is compared by (canonical license text, sorted model ids).
    #[serde(skip)]
    norm: String,
}

impl Observation {
    fn license(expr: &str, from: FactOrigin) -> Observation {
        let norm = spdx_expr::parse(expr).map(|l| l.to_string()).unwrap_or_else(|_| expr.trim().to_string());
        Observation { fact: FactKind::License, value: Value::String(expr.to_string()), from, norm }
    }
    fn origin(o: Origin, from: FactOrigin) -> Observation {
        Observation { fact: FactKind::Origin, value: Value::String(o.as_str().into()), from, norm: o.as_str().into() }
    }
    fn models(m: &[String], from: FactOrigin) -> Observation {
        let set: BTreeSet<String> = m.iter().map(|s| s.trim().to_lowercase()).collect();
        let norm = set.into_iter().collect::<Vec<_>>().join(",");
        Observation { fact: FactKind::GeneratedBy, value: Value::from(m.to_vec()), from, norm }
    }
}

impl Observation {
    /// What the observation is compared by (canonical license text, sorted model ids).
    pub fn norm(&self) -> &str {
        &self.norm
    }
}

/// Fact sources that state different values for one fact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Disagreement {
    pub fact: FactKind,
    pub observations: Vec<Observation>,
}

/// A catalogued subset: which rows it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubsetRef {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<String>,
}

/// The facts of a whole source, or of one subset of it, after precedence.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Level {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subset: Option<SubsetRef>,
    pub license: Option<Fact<String>>,
    pub origin: Option<Fact<Origin>>,
    pub generated_by: Option<Fact<Vec<String>>>,
    pub component_licenses: Option<Fact<bool>>,
    pub role: Option<Fact<RoleHint>>,
    pub eval_of: Option<Fact<Vec<String>>>,
    pub eval_splits: Option<Fact<Vec<String>>>,
    pub observations: Vec<Observation>,
    pub disagreements: Vec<Disagreement>,
    /// Assertions that contradict the fact a lower source gives.
    pub conflicts: Vec<Disagreement>,
    /// With conflicts: this level's facts without the conflicting assertions, so that a
    /// known fact that rejects keeps rejecting (only an `override` replaces it).
    #[serde(skip)]
    pub unasserted: Option<Box<Level>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Hub,
    Path,
    Url,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Hub => "hub",
            SourceKind::Path => "path",
            SourceKind::Url => "url",
        }
    }
}

/// Everything gathered about one source.
#[derive(Debug, Clone, Serialize)]
pub struct SourceFacts {
    pub name: String,
    #[serde(skip)]
    pub index: usize,
    /// The hub id, else the first path as written in the recipe.
    pub id: String,
    pub kind: SourceKind,
    pub split: Option<String>,
    pub config: Option<String>,
    pub row_filter: Option<String>,
    /// The catalog entry it matched, if any.
    pub catalog: Option<String>,
    /// `source_datasets` of a live hub card.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub card_source_datasets: Vec<String>,
    pub whole: Level,
    pub subsets: Vec<Level>,
}

/// The target model's facts.
#[derive(Debug, Clone, Serialize)]
pub struct TargetFacts {
    pub model: String,
    pub family: Option<Fact<String>>,
    pub vendor: Option<String>,
    pub approved_as_base: Option<bool>,
    pub instruction_tuned: Option<Fact<bool>>,
    pub license: Option<String>,
    pub lineage: Vec<String>,
}

// ---------------------------------------------------------------------------
// The hub card hook
// ---------------------------------------------------------------------------

/// What a dataset card's YAML says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HubCard {
    /// The `license:` tag (`mit`, `cc-by-sa-3.0`, `other`, …).
    pub license: Option<String>,
    /// Tags such as `synthetic` or `machine-generated` (from `annotations_creators`).
    pub tags: Vec<String>,
    pub source_datasets: Vec<String>,
}

/// Where dataset cards come from: the lockfile's record (`crate::fetch::LockedCards`),
/// none ([`NoCards`]), or a fixed set in tests. No network code lives here.
pub trait CardSource {
    fn card(&self, hub_id: &str) -> Option<HubCard>;
}

/// No cards: the catalog's record of each card is used.
pub struct NoCards;

impl CardSource for NoCards {
    fn card(&self, _: &str) -> Option<HubCard> {
        None
    }
}

// ---------------------------------------------------------------------------
// The Data Provenance Initiative collection
// ---------------------------------------------------------------------------

/// One record of a DPI `data_summaries/*.json` file.
#[derive(Debug, Clone)]
pub struct DpiRecord {
    /// The file stem (the collection's name).
    pub collection: String,
    pub key: String,
    /// The hub id from `Hugging Face URL` (or the inferred `HF Dataset`), lowercased.
    pub hub_ids: Vec<String>,
    pub licenses: Vec<String>,
    pub models: Vec<String>,
}

/// A DPI collection, read from its root folder (the one holding `data_summaries/`).
#[derive(Debug, Clone, Default)]
pub struct Dpi {
    pub root: PathBuf,
    pub records: Vec<DpiRecord>,
    /// Files that could not be read, with why.
    pub unreadable: Vec<(String, String)>,
}

/// `https://huggingface.co/datasets/org/name[/…]` → `org/name` (lowercased).
pub fn hub_id_from_url(url: &str) -> Option<String> {
    let rest = url
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_start_matches("www.")
        .strip_prefix("huggingface.co/datasets/")?;
    let parts: Vec<&str> = rest.split(['/', '?', '#']).filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        [] => None,
        [one] => Some(one.to_lowercase()),
        [org, name, ..] if *name != "viewer" && *name != "tree" && *name != "blob" => Some(format!("{org}/{name}").to_lowercase()),
        [one, ..] => Some(one.to_lowercase()),
    }
}

impl Dpi {
    pub fn load(root: &Path) -> anyhow::Result<Dpi> {
        let dir = root.join("data_summaries");
        let rd = std::fs::read_dir(&dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the DPI collection `{}`: {e}\nhint: point `--dpi` (or `[policy] dpi`) at the folder that holds `data_summaries/`",
                root.display()
            )
        })?;
        let mut files: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('_')))
            .collect();
        files.sort();
        let mut dpi = Dpi { root: root.to_path_buf(), ..Dpi::default() };
        for f in files {
            let stem = f.file_stem().unwrap_or_default().to_string_lossy().into_owned();
            let parsed = std::fs::read(&f)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|e| e.to_string()));
            let obj = match parsed {
                Ok(Value::Object(o)) => o,
                Ok(_) => {
                    dpi.unreadable.push((stem, "not a JSON object of records".into()));
                    continue;
                }
                Err(e) => {
                    dpi.unreadable.push((stem, e));
                    continue;
                }
            };
            for (key, r) in obj {
                let strs = |k: &str| -> Vec<String> {
                    r.get(k).and_then(Value::as_array).map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect()).unwrap_or_default()
                };
                let mut hub_ids = Vec::new();
                if let Some(id) = r.get("Hugging Face URL").and_then(Value::as_str).and_then(hub_id_from_url) {
                    hub_ids.push(id);
                }
                if let Some(id) = r.pointer("/Inferred Metadata/HF Dataset").and_then(Value::as_str).filter(|s| !s.is_empty()) {
                    let id = id.to_lowercase();
                    if !hub_ids.contains(&id) {
                        hub_ids.push(id);
                    }
                }
                let licenses = r
                    .get("Licenses")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(|l| l.get("License").and_then(Value::as_str).map(String::from)).collect())
                    .unwrap_or_default();
                dpi.records.push(DpiRecord { collection: stem.clone(), key, hub_ids, licenses, models: strs("Model Generated") });
            }
        }
        Ok(dpi)
    }

    /// Records about a dataset: those the catalog points at (`dpi = [{ collection, ids }]`,
    /// by record name) and those whose hub URL is the dataset's id or an alias.
    pub fn matching<'a>(&'a self, hub_ids: &[String], refs: &[DpiRef]) -> Vec<&'a DpiRecord> {
        let ids: Vec<String> = hub_ids.iter().map(|s| s.to_lowercase()).collect();
        self.records
            .iter()
            .filter(|r| {
                r.hub_ids.iter().any(|h| ids.contains(h))
                    || refs.iter().any(|d| d.collection == r.collection && (d.ids.is_empty() || d.ids.contains(&r.key)))
            })
            .collect()
    }
}

/// A DPI `Model Generated` name as a model id curate resolves (`OpenAI GPT-4` →
/// `openai/gpt-4`); `None` for `templates`, which means program-made.
pub fn dpi_model_id(name: &str) -> Option<String> {
    let n = name.trim().to_lowercase();
    if n == "templates" || n.is_empty() {
        return None;
    }
    // GPT-2's weights are open: it is the `gpt2` family, not OpenAI's API terms.
    if n == "openai gpt-2" {
        return Some("gpt2".into());
    }
    for vendor in ["openai", "anthropic"] {
        if let Some(rest) = n.strip_prefix(&format!("{vendor} ")) {
            return Some(format!("{vendor}/{}", rest.replace(' ', "-")));
        }
    }
    Some(n.replace(' ', "-"))
}

/// A DPI license name as a license id: the `dpi_names` of licenses.toml, else a
/// `LicenseRef-DPI-*` id that licenses.toml does not know (so the license is unknown).
fn dpi_license_id(data: &Data, name: &str) -> String {
    match data.license_for_dpi_name(name) {
        Some(id) => id.to_string(),
        None => {
            let clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect();
            format!("LicenseRef-DPI-{}", clean.trim_matches('-'))
        }
    }
}

// ---------------------------------------------------------------------------
// Gathering
// ---------------------------------------------------------------------------

/// The target model's facts; an error when a family override names no family.
pub fn target(data: &Data, policy_id: &str, t: &Target) -> Result<TargetFacts, String> {
    let model = t.model.clone().unwrap_or_default();
    let info = match &t.family_override {
        Some(o) => {
            let fam = data.family(&o.family).ok_or_else(|| {
                format!("`[target] override` names family `{}`, which licenses/models.toml does not have", o.family)
            })?;
            Some((data.model_in(fam, &model), FactOrigin::Override { reason: o.reason.clone() }))
        }
        None => data.model(&model).map(|m| {
            let id = m.family.id.clone();
            (m, FactOrigin::Models { family: id })
        }),
    };
    Ok(match info {
        None => TargetFacts {
            model,
            family: None,
            vendor: None,
            approved_as_base: None,
            instruction_tuned: None,
            license: None,
            lineage: vec![],
        },
        Some((m, from)) => TargetFacts {
            model,
            family: Some(Fact { value: m.family.id.clone(), from: vec![from.clone()] }),
            vendor: Some(m.family.vendor.clone()),
            approved_as_base: Some(m.family.approved_as_base.iter().any(|p| p == policy_id)),
            instruction_tuned: Some(Fact {
                value: m.instruction_tuned,
                from: vec![match &m.instruction_why {
                    Some(w) => FactOrigin::Engine { note: w.clone() },
                    None => from.clone(),
                }],
            }),
            license: Some(m.license.clone()),
            lineage: m.family.lineage.clone(),
        },
    })
}

/// All facts about one recipe source.
pub fn source(data: &Data, src: &Source, recipe_dir: &Path, cards: &dyn CardSource, dpi: Option<&Dpi>) -> SourceFacts {
    source_with(data, src, recipe_dir, cards, dpi, true)
}

/// [`source`], with or without the recipe's `override` (to learn what it changes).
pub fn source_with(
    data: &Data,
    src: &Source,
    recipe_dir: &Path,
    cards: &dyn CardSource,
    dpi: Option<&Dpi>,
    with_override: bool,
) -> SourceFacts {
    let (id, kind) = match &src.hf {
        Some(h) => (h.clone(), SourceKind::Hub),
        None => {
            let first = src.inputs.first().map(|p| p.strip_prefix(recipe_dir).unwrap_or(p).display().to_string()).unwrap_or_default();
            let kind = if first.starts_with("http://") || first.starts_with("https://") { SourceKind::Url } else { SourceKind::Path };
            (first, kind)
        }
    };
    let ds = src.hf.as_deref().and_then(|h| data.dataset(h));

    // Recipe facts, used at every level.
    let mut recipe_obs = Vec::new();
    if let Some(o) = src.override_.as_ref().filter(|_| with_override) {
        let from = FactOrigin::Override { reason: o.reason.clone() };
        if let Some(l) = &o.license {
            recipe_obs.push(Observation::license(l, from.clone()));
        }
        if let Some(x) = o.origin {
            recipe_obs.push(Observation::origin(x, from.clone()));
        }
        if let Some(g) = &o.generated_by {
            recipe_obs.push(Observation::models(g, from.clone()));
            // A list of generators says the data is model output, as a DPI record's does.
            if o.origin.is_none() && !g.is_empty() {
                recipe_obs.push(Observation::origin(Origin::Model, from.clone()));
            }
        }
    }
    let p = &src.provenance;
    if let Some(l) = &p.license {
        recipe_obs.push(Observation::license(l, FactOrigin::Assertion));
    }
    if let Some(x) = p.origin {
        recipe_obs.push(Observation::origin(x, FactOrigin::Assertion));
    }
    if p.generated_by_declared {
        recipe_obs.push(Observation::models(&p.generated_by, FactOrigin::Assertion));
        if p.origin.is_none() && !p.generated_by.is_empty() {
            recipe_obs.push(Observation::origin(Origin::Model, FactOrigin::Assertion));
        }
    }

    // Dataset-level facts of the card and of DPI.
    let mut outside = Vec::new();
    let mut card_source_datasets = Vec::new();
    if let Some(h) = &src.hf {
        let name = ds.map(|d| d.id.clone()).unwrap_or_else(|| h.clone());
        if let Some(card) = cards.card(h) {
            let from = FactOrigin::HubCard { dataset: name.clone(), recorded: false };
            if let Some(tag) = &card.license {
                let id = data.license_for_hub_tag(tag).unwrap_or("NOASSERTION");
                outside.push(Observation::license(id, from.clone()));
            }
            if card.tags.iter().any(|t| t == "synthetic" || t == "machine-generated") {
                outside.push(Observation::origin(Origin::Model, from.clone()));
            }
            card_source_datasets = card.source_datasets.clone();
        } else if let Some(d) = ds.filter(|d| !d.card_license.is_empty()) {
            let id = data.license_for_hub_tag(&d.card_license).unwrap_or("NOASSERTION");
            outside.push(Observation::license(id, FactOrigin::HubCard { dataset: d.id.clone(), recorded: true }));
        }
    }
    if let Some(dpi) = dpi {
        let mut ids: Vec<String> = src.hf.iter().cloned().collect();
        if let Some(d) = ds {
            ids.push(d.id.clone());
            ids.extend(d.aliases.iter().cloned());
        }
        // A renamed dataset's DPI records may use either id.
        let others: Vec<String> = ids.iter().filter_map(|i| super::cfg::other_hub_id(i)).map(String::from).collect();
        ids.extend(others);
        let refs: &[DpiRef] = ds.map(|d| d.dpi.as_slice()).unwrap_or(&[]);
        let recs = if ids.is_empty() && refs.is_empty() { vec![] } else { dpi.matching(&ids, refs) };
        if !recs.is_empty() {
            let mut collections: Vec<&str> = recs.iter().map(|r| r.collection.as_str()).collect();
            collections.dedup();
            let from = FactOrigin::Dpi {
                collection: collections.join(", "),
                records: recs.iter().map(|r| r.key.clone()).collect(),
            };
            let mut lic: Vec<String> = Vec::new();
            for r in &recs {
                for l in &r.licenses {
                    let id = dpi_license_id(data, l);
                    if !lic.contains(&id) {
                        lic.push(id);
                    }
                }
            }
            if lic.len() > 1 {
                lic.retain(|l| l != "NOASSERTION");
            }
            if !lic.is_empty() {
                outside.push(Observation::license(&lic.join(" AND "), from.clone()));
            }
            let mut models: Vec<String> = Vec::new();
            let mut templates = false;
            for r in &recs {
                for m in &r.models {
                    match dpi_model_id(m) {
                        Some(id) if !models.contains(&id) => models.push(id),
                        Some(_) => {}
                        None => templates = true,
                    }
                }
            }
            if !models.is_empty() {
                outside.push(Observation::origin(Origin::Model, from.clone()));
                outside.push(Observation::models(&models, from.clone()));
            } else if templates {
                outside.push(Observation::origin(Origin::Program, from.clone()));
            }
        }
    }

    let whole = level(ds, None, &recipe_obs, &outside);
    let subsets = ds.map(|d| d.subset.iter().map(|s| level(Some(d), Some(s), &recipe_obs, &[])).collect()).unwrap_or_default();
    SourceFacts {
        name: src.name.clone(),
        index: src.index,
        id,
        kind,
        split: src.split.clone(),
        config: src.config.clone(),
        row_filter: src.where_.as_ref().map(|w| w.text().to_string()),
        catalog: ds.map(|d| d.id.clone()),
        card_source_datasets,
        whole,
        subsets,
    }
}

/// The facts of one level: recipe facts, then the catalog (subset first), then the
/// outside sources (card, DPI), which describe whole datasets only.
fn level(ds: Option<&Dataset>, sub: Option<&Subset>, recipe: &[Observation], outside: &[Observation]) -> Level {
    let mut obs: Vec<Observation> = recipe.to_vec();
    let mut lvl = Level::default();
    if let Some(d) = ds {
        let cat = |fact: &str| FactOrigin::Catalog {
            dataset: d.id.clone(),
            file: d.file.clone(),
            subset: sub.map(|s| s.name.clone()),
            evidence: d.evidence_for(sub, fact),
        };
        obs.push(Observation::license(sub.and_then(|s| s.license.as_deref()).unwrap_or(&d.license), cat("license")));
        obs.push(Observation::origin(sub.and_then(|s| s.origin).unwrap_or(d.origin), cat("origin")));
        obs.push(Observation::models(sub.and_then(|s| s.generated_by.as_deref()).unwrap_or(&d.generated_by), cat("generated_by")));
        let comp = sub.and_then(|s| s.component_licenses).unwrap_or(d.component_licenses);
        lvl.component_licenses = Some(Fact { value: comp, from: vec![cat("component_licenses")] });
        lvl.role = Some(Fact { value: sub.and_then(|s| s.role_hint).unwrap_or(d.role_hint), from: vec![cat("role_hint")] });
        if !d.eval_of.is_empty() {
            lvl.eval_of = Some(Fact { value: d.eval_of.clone(), from: vec![cat("eval_of")] });
        }
        if !d.eval_splits.is_empty() {
            lvl.eval_splits = Some(Fact { value: d.eval_splits.clone(), from: vec![cat("eval_of")] });
        }
        lvl.subset = sub.map(|s| SubsetRef {
            name: s.name.clone(),
            column: s.column.clone(),
            values: s.values.clone(),
            configs: s.configs.clone(),
        });
    }
    obs.extend(outside.iter().cloned());

    for kind in [FactKind::License, FactKind::Origin, FactKind::GeneratedBy] {
        let of: Vec<&Observation> = obs.iter().filter(|o| o.fact == kind).collect();
        let Some(first) = of.first() else { continue };
        let from = vec![first.from.clone()];
        match kind {
            FactKind::License => lvl.license = first.value.as_str().map(|v| Fact { value: v.to_string(), from }),
            FactKind::Origin => {
                lvl.origin = first.value.as_str().and_then(origin_of).map(|v| Fact { value: v, from });
            }
            FactKind::GeneratedBy => {
                let v = first.value.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect());
                lvl.generated_by = v.map(|value| Fact { value, from });
            }
        }
        let norms: BTreeSet<&str> = of.iter().map(|o| o.norm.as_str()).collect();
        if norms.len() > 1 {
            lvl.disagreements.push(Disagreement { fact: kind, observations: of.iter().map(|o| (*o).clone()).collect() });
        }
        // An assertion that decides the fact while a lower source says otherwise.
        if first.from == FactOrigin::Assertion
            && let Some(lower) = of.iter().find(|o| o.from.rank() > FactOrigin::Assertion.rank())
            && lower.norm != first.norm
        {
            lvl.conflicts.push(Disagreement { fact: kind, observations: vec![(*first).clone(), (*lower).clone()] });
        }
    }
    if !lvl.conflicts.is_empty() {
        let kinds: Vec<FactKind> = lvl.conflicts.iter().map(|c| c.fact).collect();
        let kept: Vec<Observation> =
            recipe.iter().filter(|o| !(o.from == FactOrigin::Assertion && kinds.contains(&o.fact))).cloned().collect();
        lvl.unasserted = Some(Box::new(level(ds, sub, &kept, outside)));
    }
    lvl.observations = obs;
    lvl
}

fn origin_of(s: &str) -> Option<Origin> {
    Some(match s {
        "human" => Origin::Human,
        "crowd" => Origin::Crowd,
        "program" => Origin::Program,
        "model" => Origin::Model,
        "mixed" => Origin::Mixed,
        "unknown" => Origin::Unknown,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_urls_become_ids() {
        assert_eq!(hub_id_from_url("https://huggingface.co/datasets/tatsu-lab/alpaca").as_deref(), Some("tatsu-lab/alpaca"));
        assert_eq!(hub_id_from_url("https://huggingface.co/datasets/gsm8k").as_deref(), Some("gsm8k"));
        assert_eq!(hub_id_from_url("https://huggingface.co/datasets/Org/Name/viewer/x").as_deref(), Some("org/name"));
        assert_eq!(hub_id_from_url("https://github.com/tatsu-lab/stanford_alpaca"), None);
        assert_eq!(hub_id_from_url(""), None);
    }

    #[test]
    fn dpi_model_names_become_model_ids() {
        assert_eq!(dpi_model_id("OpenAI GPT-4").as_deref(), Some("openai/gpt-4"));
        assert_eq!(dpi_model_id("OpenAI ChatGPT").as_deref(), Some("openai/chatgpt"));
        assert_eq!(dpi_model_id("OpenAI GPT-2").as_deref(), Some("gpt2"));
        assert_eq!(dpi_model_id("Anthropic Internal Models").as_deref(), Some("anthropic/internal-models"));
        assert_eq!(dpi_model_id("Llama-2-70b-chat-hf").as_deref(), Some("llama-2-70b-chat-hf"));
        assert_eq!(dpi_model_id("templates"), None);
    }
}
