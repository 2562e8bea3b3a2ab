//! Judging: the policy's rules evaluated against gathered facts, as a pure function.
//!
//! Every rule is evaluated against the target, and against every source and every
//! catalogued subset of it; **all** rules that fire are reported with the facts they
//! read and where each fact came from, and the most severe decides the verdict:
//! reject if any reject rule fired, else conditional if a conditional rule fired that no
//! sign-off resolves, else allow. A fact no source knows is missing, and a rule about
//! unknowns is written with `missing`, so unknown provenance never passes silently.
//!
//! Subsets: when a source has catalogued subsets and a `where` (or a hub `config`), the
//! `where` is evaluated against each subset's column values to learn which subsets it
//! can select; the verdict is then the worst of the selected subsets (and of the rows in
//! no catalogued subset, when the `where` can select those). Without a filter, the
//! dataset-level facts (which describe the whole conservatively) decide.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::cfg::{Cite, Data, LicenseCite, ObligationKind, Policy, Rule, Scope, Severity};
use super::diags::{Code, Diag, Verdict};
use super::gather::{Disagreement, FactKind, FactOrigin, Level, SourceFacts, TargetFacts};
use super::spdx_expr;
use crate::recipe::Signoff;
use crate::select::WhereExpr;

/// Facts a target rule may name.
pub const TARGET_FACTS: &[&str] = &[
    "target.model",
    "target.family",
    "target.approved_as_base",
    "target.instruction_tuned",
    "target.license",
    "target.lineage",
];

/// Facts a source rule may name (also computed per subset).
pub const SOURCE_FACTS: &[&str] = &[
    "source.id",
    "source.name",
    "source.kind",
    "source.split",
    "source.origin",
    "source.generators",
    "source.generated_by_stated",
    "source.license",
    "source.license_known",
    "source.license_use",
    "source.license_attribution",
    "source.license_share_alike",
    "source.license_no_derivatives",
    "source.license_choice",
    "source.license_exceptions",
    "source.component_licenses",
    "source.license_disagreement",
    "source.card_license_disagrees",
    "source.dpi_license_disagrees",
    "source.subsets_disagree",
    "source.row_filter",
    "source.role",
    "source.eval_of",
    "source.uses_eval_split",
];

/// Fields of each `source.generators` item, named `item.*` inside `some` / `every`.
pub const ITEM_FACTS: &[&str] = &[
    "item.model",
    "item.family",
    "item.vendor",
    "item.approved_as_base",
    "item.instruction_tuned",
    "item.outputs_may_train",
    "item.outputs_same_family",
    "item.outputs_license",
    "item.license",
    "item.output_terms",
    "item.same_family_as_target",
];

/// List facts whose items `some` / `every` range over.
pub const LIST_FACTS: &[&str] = &["source.generators"];

/// The split a source without `split` reads (`fetch::select`).
const DEFAULT_SPLIT: &str = "train";

/// A comparison in a condition leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    In,
    NotIn,
    Contains,
    NotContains,
    Exists,
    Missing,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::In => "in",
            Op::NotIn => "not_in",
            Op::Contains => "contains",
            Op::NotContains => "not_contains",
            Op::Exists => "exists",
            Op::Missing => "missing",
        }
    }
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "in" => Op::In,
            "not_in" => Op::NotIn,
            "contains" => Op::Contains,
            "not_contains" => Op::NotContains,
            "exists" => Op::Exists,
            "missing" => Op::Missing,
            _ => return None,
        })
    }
}

/// A rule's `when`: a leaf on one fact, or a combinator.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Leaf { fact: String, op: Op, value: Option<Value> },
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Some { list: String, cond: Box<Cond> },
    Every { list: String, cond: Box<Cond> },
}

fn to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => Value::from(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        toml::Value::Table(t) => Value::Object(t.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

impl Cond {
    /// Read a condition from its TOML table, told apart by its keys.
    pub fn from_toml(v: &toml::Value) -> Result<Cond, String> {
        let t = v.as_table().ok_or("a condition is an inline table")?;
        let keys: BTreeSet<&str> = t.keys().map(String::as_str).collect();
        let list = |k: &str| -> Result<Vec<Cond>, String> {
            t[k].as_array().ok_or(format!("`{k}` takes a list of conditions"))?.iter().map(Cond::from_toml).collect()
        };
        let only = |allowed: &[&str]| -> Result<(), String> {
            match keys.iter().find(|k| !allowed.contains(k)) {
                Some(k) => Err(format!("unexpected key `{k}` (this form takes {})", allowed.join(", "))),
                None => Ok(()),
            }
        };
        if keys.contains("fact") {
            only(&["fact", "op", "value"])?;
            let fact = t["fact"].as_str().ok_or("`fact` is a string")?.to_string();
            let op_s = t.get("op").and_then(|o| o.as_str()).ok_or("a leaf needs `op`")?;
            let op = Op::parse(op_s).ok_or(format!("unknown op `{op_s}`"))?;
            return Ok(Cond::Leaf { fact, op, value: t.get("value").map(to_json) });
        }
        if keys.contains("all") {
            only(&["all"])?;
            return Ok(Cond::All(list("all")?));
        }
        if keys.contains("any") {
            only(&["any"])?;
            return Ok(Cond::Any(list("any")?));
        }
        if keys.contains("not") {
            only(&["not"])?;
            return Ok(Cond::Not(Box::new(Cond::from_toml(&t["not"])?)));
        }
        for (k, every) in [("some", false), ("every", true)] {
            if keys.contains(k) {
                only(&[k, "where"])?;
                let list = t[k].as_str().ok_or(format!("`{k}` names a list fact"))?.to_string();
                let cond = Box::new(Cond::from_toml(t.get("where").ok_or(format!("`{k}` needs `where`"))?)?);
                return Ok(if every { Cond::Every { list, cond } } else { Cond::Some { list, cond } });
            }
        }
        Err(format!("not a condition (keys: {})", keys.into_iter().collect::<Vec<_>>().join(", ")))
    }
}

/// A fact's value and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FactVal {
    pub value: Value,
    pub from: Vec<FactOrigin>,
}

/// One generator of a source, with its facts.
#[derive(Debug, Clone)]
pub struct Item {
    pub model: String,
    pub facts: BTreeMap<&'static str, FactVal>,
}

/// The facts a rule can read at one level.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub map: BTreeMap<&'static str, FactVal>,
    pub items: Vec<Item>,
    /// Why a fact is missing, when there is more to say than "nobody states it".
    pub missing: BTreeMap<&'static str, String>,
}

/// A fact a rule read, with its value (`null` when no source knows it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsedFact {
    pub fact: String,
    /// For `item.*`: which generator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    pub value: Value,
    pub from: Vec<FactOrigin>,
}

/// What resolved a conditional finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Resolution {
    Signoff { by: String, reason: String, at: String },
}

/// A duty the output inherits from a rule that fired.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Obligation {
    pub kind: ObligationKind,
    /// Its parameters: a family, a license expression, benchmark names.
    pub params: Vec<String>,
    pub rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CiteOut {
    pub source: String,
    pub url: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LicenseCiteOut {
    pub license: String,
    pub clause: String,
    pub quote: String,
    pub url: String,
}

/// A rule that fired.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub id: String,
    pub severity: Severity,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    pub facts: Vec<UsedFact>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<Resolution>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub obligations: Vec<Obligation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signoff: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    pub cite: Vec<CiteOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub license_cite: Vec<LicenseCiteOut>,
}

impl Finding {
    /// What this finding makes of the verdict.
    pub fn weight(&self) -> Verdict {
        if self.resolved_by.is_some() { Verdict::Allow } else { Verdict::of(self.severity) }
    }
}

fn verdict_of(findings: &[Finding]) -> Verdict {
    findings.iter().map(Finding::weight).max().unwrap_or(Verdict::Allow)
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetVerdict {
    pub model: String,
    pub family: Option<String>,
    pub verdict: Verdict,
    pub rules: Vec<Finding>,
    pub facts: BTreeMap<&'static str, FactVal>,
    /// Target rules that did not fire, for the full trace.
    #[serde(skip)]
    pub not_fired: Vec<String>,
    /// The family named by `[target] override`, with its reason.
    #[serde(rename = "override", skip_serializing_if = "Option::is_none")]
    pub override_: Option<OverrideOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signoffs: Vec<SignoffOut>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubsetVerdict {
    pub name: String,
    /// The rows it names (`column IN values`, or hub configs).
    pub rows: String,
    /// Whether the source reads it (its `where` / `config` can select it).
    pub selected: bool,
    pub verdict: Verdict,
    pub rules: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceVerdict {
    pub name: String,
    pub id: String,
    pub kind: &'static str,
    pub catalog: Option<String>,
    pub verdict: Verdict,
    /// The rules that decided the verdict (tagged with their subset when the verdict
    /// comes from the selected subsets).
    pub rules: Vec<Finding>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subsets: Vec<SubsetVerdict>,
    /// Whether the verdict comes from the subsets a filter selects.
    pub decided_by_subsets: bool,
    /// The dataset-level facts.
    pub facts: BTreeMap<&'static str, FactVal>,
    pub disagreements: Vec<Disagreement>,
    /// Source rules that fired at no level, for the full trace.
    #[serde(skip)]
    pub not_fired: Vec<String>,
    /// The SPDX expression of what the source contributes (selected subsets'), if known.
    pub kept_license: Option<String>,
    /// The facts the recipe's `override` replaced, each with its reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<OverrideOut>,
    /// The sign-offs that resolved a rule of this source.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signoffs: Vec<SignoffOut>,
    /// The verdict the source would get without its `override` (set by `assess`), when
    /// that differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict_without_override: Option<Verdict>,
}

/// A fact a recipe `override` set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverrideOut {
    pub fact: String,
    pub value: Value,
    pub reason: String,
}

/// A sign-off that resolved a rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignoffOut {
    pub rule: String,
    pub by: String,
    pub reason: String,
    pub at: String,
}

fn signoffs_of(rules: &[Finding]) -> Vec<SignoffOut> {
    let mut out: Vec<SignoffOut> = Vec::new();
    for r in rules {
        if let Some(Resolution::Signoff { by, reason, at }) = &r.resolved_by
            && !out.iter().any(|o| o.rule == r.id && o.at == *at)
        {
            out.push(SignoffOut { rule: r.id.clone(), by: by.clone(), reason: reason.clone(), at: at.clone() });
        }
    }
    out
}

/// The whole outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Judgement {
    pub target: TargetVerdict,
    pub sources: Vec<SourceVerdict>,
    pub diagnostics: Vec<Diag>,
}

impl Judgement {
    /// The worst verdict over the target and every source.
    pub fn verdict(&self) -> Verdict {
        self.sources.iter().map(|s| s.verdict).chain([self.target.verdict]).max().unwrap_or(Verdict::Allow)
    }
}

fn fv(value: impl Into<Value>, from: Vec<FactOrigin>) -> FactVal {
    FactVal { value: value.into(), from }
}

fn engine(note: &str) -> Vec<FactOrigin> {
    vec![FactOrigin::Engine { note: note.into() }]
}

/// The target's facts, by the names rules use.
pub fn target_facts(t: &TargetFacts) -> Facts {
    let mut m = BTreeMap::new();
    let recipe = || vec![FactOrigin::Recipe { key: "target.model".into() }];
    m.insert("target.model", fv(t.model.clone(), recipe()));
    if let Some(f) = &t.family {
        let from = f.from.clone();
        m.insert("target.family", fv(f.value.clone(), from.clone()));
        if let Some(a) = t.approved_as_base {
            m.insert("target.approved_as_base", fv(a, from.clone()));
        }
        if let Some(i) = &t.instruction_tuned {
            m.insert("target.instruction_tuned", fv(i.value, i.from.clone()));
        }
        if let Some(l) = &t.license {
            m.insert("target.license", fv(l.clone(), from.clone()));
        }
        m.insert("target.lineage", fv(t.lineage.clone(), from));
    }
    let mut missing = BTreeMap::new();
    if t.family.is_none() {
        missing.insert(
            "target.family",
            format!("no family in licenses/models.toml has a pattern matching `{}`", t.model),
        );
    }
    Facts { map: m, items: vec![], missing }
}

/// A source's facts at one level, by the names rules use.
pub fn source_facts(data: &Data, policy_id: &str, target: &TargetFacts, sf: &SourceFacts, lvl: &Level, subsets_disagree: Option<bool>) -> Facts {
    let mut m: BTreeMap<&'static str, FactVal> = BTreeMap::new();
    let key = |k: &str| vec![FactOrigin::Recipe { key: k.into() }];
    let id_key = match sf.kind {
        super::gather::SourceKind::Hub => "hf",
        _ => "path",
    };
    m.insert("source.id", fv(sf.catalog.clone().unwrap_or_else(|| sf.id.clone()), key(id_key)));
    m.insert("source.name", fv(sf.name.clone(), key("name")));
    m.insert("source.kind", fv(sf.kind.as_str(), key(id_key)));
    match &sf.split {
        Some(s) => {
            m.insert("source.split", fv(s.clone(), key("split")));
        }
        None if sf.kind == super::gather::SourceKind::Hub => {
            m.insert("source.split", fv(DEFAULT_SPLIT, engine("the recipe gives no `split`; a hub source reads `train` (docs/recipe.md)")));
        }
        None => {}
    }
    if let Some(w) = &sf.row_filter {
        m.insert("source.row_filter", fv(w.clone(), key("where")));
    }
    if let Some(o) = &lvl.origin {
        m.insert("source.origin", fv(o.value.as_str(), o.from.clone()));
    }

    // The license, read through licenses.toml.
    match &lvl.license {
        Some(l) => {
            m.insert("source.license", fv(l.value.clone(), l.from.clone()));
            let class = spdx_expr::parse(&l.value).ok().map(|e| spdx_expr::classify(&e, &|id| data.license(id)));
            match class {
                Some(c) => {
                    let mut from = l.from.clone();
                    from.push(FactOrigin::Licenses { ids: c.rests_on.clone() });
                    m.insert("source.license_known", fv(c.known, from.clone()));
                    m.insert("source.license_use", fv(c.use_.as_str(), from.clone()));
                    m.insert("source.license_attribution", fv(c.attribution, from.clone()));
                    m.insert("source.license_share_alike", fv(c.share_alike, from.clone()));
                    m.insert("source.license_no_derivatives", fv(c.no_derivatives, from.clone()));
                    if !c.choices.is_empty() {
                        let mut f = from.clone();
                        f.push(FactOrigin::Engine { note: "an SPDX `OR` lets the licensee choose; the least restrictive known alternative is taken".into() });
                        m.insert("source.license_choice", fv(c.choices.clone(), f));
                    }
                    if !c.exceptions.is_empty() {
                        let mut f = from;
                        f.push(FactOrigin::Engine { note: "an SPDX `WITH` exception: reported, not modelled; the base license is judged".into() });
                        m.insert("source.license_exceptions", fv(c.exceptions.clone(), f));
                    }
                }
                None => {
                    m.insert("source.license_known", fv(false, engine("the license is not an SPDX expression")));
                }
            }
        }
        None => {
            m.insert("source.license_known", fv(false, engine("no fact source states a license")));
        }
    }
    if let Some(c) = &lvl.component_licenses {
        m.insert("source.component_licenses", fv(c.value, c.from.clone()));
    }
    // Which pair disagrees on the license: the hub card, or DPI, against the catalog
    // (or, for an uncatalogued dataset, against the fact source that decides).
    let lic_obs: Vec<&super::gather::Observation> = lvl.observations.iter().filter(|o| o.fact == FactKind::License).collect();
    let reference = lic_obs.iter().find(|o| matches!(o.from, FactOrigin::Catalog { .. })).or(lic_obs.first()).copied();
    for (key, is_kind, what) in [
        ("source.card_license_disagrees", (|o: &FactOrigin| matches!(o, FactOrigin::HubCard { .. })) as fn(&FactOrigin) -> bool, "hub card"),
        ("source.dpi_license_disagrees", |o: &FactOrigin| matches!(o, FactOrigin::Dpi { .. }), "DPI"),
    ] {
        let other = lic_obs.iter().find(|o| is_kind(&o.from)).copied();
        let v = match (reference, other) {
            (Some(r), Some(o)) if !is_kind(&r.from) && r.norm() != o.norm() => fv(
                true,
                vec![
                    o.from.clone(),
                    r.from.clone(),
                    FactOrigin::Engine { note: format!("the {what} says `{}`; {} says `{}`", str_of(&o.value), r.from.kind_name(), str_of(&r.value)) },
                ],
            ),
            (_, None) => fv(false, engine(&format!("no {what} license to compare"))),
            _ => fv(false, engine(&format!("the {what} license agrees"))),
        };
        m.insert(key, v);
    }
    let lic_dis = lvl.disagreements.iter().find(|d| d.fact == FactKind::License);
    m.insert(
        "source.license_disagreement",
        match lic_dis {
            Some(d) => fv(true, d.observations.iter().map(|o| o.from.clone()).collect()),
            None => fv(false, engine("no two fact sources disagree on the license")),
        },
    );
    if let Some(d) = subsets_disagree {
        m.insert("source.subsets_disagree", fv(d, engine("the verdicts of the catalogued subsets, judged one by one")));
    }
    if let Some(r) = &lvl.role {
        m.insert("source.role", fv(r.value.as_str(), r.from.clone()));
    }
    if let Some(e) = &lvl.eval_of {
        m.insert("source.eval_of", fv(e.value.clone(), e.from.clone()));
    }
    if let Some(es) = &lvl.eval_splits {
        let mut from = es.from.clone();
        let uses = if es.value.iter().any(|s| s == "*") {
            true
        } else if let Some(s) = &sf.split {
            from.push(FactOrigin::Recipe { key: "split".into() });
            es.value.contains(s)
        } else {
            from.push(FactOrigin::Engine { note: "the recipe gives no `split`; a hub source reads `train` (docs/recipe.md)".into() });
            es.value.iter().any(|s| s == DEFAULT_SPLIT)
        };
        m.insert("source.uses_eval_split", fv(uses, from));
    }

    // Whether any fact source states the generators: `generated_by = []` says "no
    // model output", which is provenance even when `origin` is not given.
    m.insert(
        "source.generated_by_stated",
        match &lvl.generated_by {
            Some(g) => fv(true, g.from.clone()),
            None => fv(false, engine("no fact source states which models generated the data")),
        },
    );

    // Generators, resolved through models.toml.
    let mut items = Vec::new();
    if let Some(g) = &lvl.generated_by {
        m.insert("source.generators", fv(g.value.clone(), g.from.clone()));
        for model in &g.value {
            let mut f: BTreeMap<&'static str, FactVal> = BTreeMap::new();
            let said = g.from.clone();
            f.insert("item.model", fv(model.clone(), said.clone()));
            if let Some(info) = data.model(model) {
                let mut from = said.clone();
                from.push(FactOrigin::Models { family: info.family.id.clone() });
                f.insert("item.family", fv(info.family.id.clone(), from.clone()));
                f.insert("item.vendor", fv(info.family.vendor.clone(), from.clone()));
                f.insert("item.approved_as_base", fv(info.family.approved_as_base.iter().any(|p| p == policy_id), from.clone()));
                f.insert("item.instruction_tuned", fv(info.instruction_tuned, from.clone()));
                f.insert("item.outputs_may_train", fv(info.outputs_may_train.as_str(), from.clone()));
                f.insert("item.outputs_same_family", fv(info.outputs_same_family.clone(), from.clone()));
                if let Some(ol) = &info.family.outputs_license {
                    f.insert("item.outputs_license", fv(ol.clone(), from.clone()));
                }
                f.insert("item.license", fv(info.license.clone(), from.clone()));
                let terms: Vec<&str> = data.output_terms(&info.license).iter().map(|t| t.kind.as_str()).collect();
                let mut tfrom = from.clone();
                tfrom.push(FactOrigin::Licenses { ids: vec![info.license.clone()] });
                f.insert("item.output_terms", fv(terms, tfrom));
                if let Some(tf) = &target.family {
                    let same = info.outputs_same_family.iter().any(|x| *x == tf.value || target.lineage.contains(x));
                    let mut sfrom = from.clone();
                    sfrom.extend(tf.from.iter().cloned());
                    f.insert("item.same_family_as_target", fv(same, sfrom));
                }
            }
            items.push(Item { model: model.clone(), facts: f });
        }
    }
    let mut missing = BTreeMap::new();
    if lvl.origin.is_none() {
        missing.insert("source.origin", "no fact source (recipe, catalog, hub card, DPI) states how the data was made".into());
    }
    Facts { map: m, items, missing }
}

fn str_of(v: &Value) -> String {
    v.as_str().map(String::from).unwrap_or_else(|| v.to_string())
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn same(a: &Value, b: &Value) -> bool {
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Evaluate a condition, recording every fact it reads (only the items that made a
/// `some` true) and which generator items matched.
fn eval(c: &Cond, f: &Facts, item: Option<&Item>, used: &mut Vec<UsedFact>, matched: &mut BTreeSet<usize>) -> bool {
    match c {
        Cond::Leaf { fact, op, value } => {
            let got = if fact.starts_with("item.") {
                item.and_then(|i| i.facts.get(fact.as_str()))
            } else {
                f.map.get(fact.as_str())
            };
            used.push(UsedFact {
                fact: fact.clone(),
                item: if fact.starts_with("item.") { item.map(|i| i.model.clone()) } else { None },
                value: got.map(|g| g.value.clone()).unwrap_or(Value::Null),
                from: match got {
                    Some(g) => g.from.clone(),
                    None => {
                        let note = f.missing.get(fact.as_str()).cloned();
                        engine(note.as_deref().unwrap_or("no fact source states it"))
                    }
                },
            });
            let Some(got) = got else { return *op == Op::Missing };
            let v = &got.value;
            let want = value.as_ref().unwrap_or(&Value::Null);
            let known = match v {
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::Null => false,
                _ => true,
            };
            match op {
                Op::Exists => known,
                Op::Missing => !known,
                Op::Eq => same(v, want),
                Op::Ne => !same(v, want),
                Op::In => want.as_array().is_some_and(|l| l.iter().any(|x| same(v, x))),
                Op::NotIn => want.as_array().is_some_and(|l| !l.iter().any(|x| same(v, x))),
                Op::Contains => v.as_array().is_some_and(|l| l.iter().any(|x| same(x, want))),
                Op::NotContains => v.as_array().is_some_and(|l| !l.iter().any(|x| same(x, want))),
            }
        }
        Cond::All(v) => v.iter().all(|x| eval(x, f, item, used, matched)),
        Cond::Any(v) => v.iter().any(|x| eval(x, f, item, used, matched)),
        Cond::Not(x) => !eval(x, f, item, used, matched),
        Cond::Some { cond, .. } | Cond::Every { cond, .. } => {
            let every = matches!(c, Cond::Every { .. });
            let mut result = every;
            for (i, it) in f.items.iter().enumerate() {
                let mut trace = Vec::new();
                let ok = eval(cond, f, Some(it), &mut trace, matched);
                if ok {
                    matched.insert(i);
                }
                if ok || every {
                    used.extend(trace);
                }
                if every && !ok {
                    result = false;
                } else if !every && ok {
                    result = true;
                }
            }
            result
        }
    }
}

/// Sign-offs and which of them resolved something.
struct Signoffs<'a> {
    list: &'a [Signoff],
    used: BTreeSet<usize>,
}

impl Signoffs<'_> {
    fn resolve(&mut self, rule: &str, source: Option<&str>) -> Option<Resolution> {
        let (i, s) = self.list.iter().enumerate().find(|(_, s)| s.rule == rule && s.source.as_deref() == source)?;
        self.used.insert(i);
        Some(Resolution::Signoff { by: s.by.clone(), reason: s.reason.clone(), at: s.at.clone() })
    }
}

fn cites(policy: &Policy, data: &Data, r: &Rule) -> (Vec<CiteOut>, Vec<LicenseCiteOut>) {
    let c = r
        .cite
        .iter()
        .map(|c: &Cite| {
            let s = policy.sources.get(&c.source);
            CiteOut {
                source: c.source.clone(),
                url: s.map(|s| s.url.clone()).unwrap_or_default(),
                title: s.map(|s| s.title.clone()).unwrap_or_default(),
                quote: c.quote.clone(),
                note: c.note.clone(),
            }
        })
        .collect();
    let l = r
        .license_cite
        .iter()
        .map(|lc: &LicenseCite| {
            let term = data.license(&lc.license).and_then(|l| l.output_terms.iter().find(|t| t.clause == lc.clause));
            LicenseCiteOut {
                license: lc.license.clone(),
                clause: lc.clause.clone(),
                quote: term.map(|t| t.quote.clone()).unwrap_or_default(),
                url: term.map(|t| t.url.clone()).or_else(|| data.license(&lc.license).map(|l| l.url.clone())).unwrap_or_default(),
            }
        })
        .collect();
    (c, l)
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().flat_map(strings).collect(),
        Value::Null => vec![],
        other => vec![other.to_string()],
    }
}

/// Evaluate every rule of one scope; return the findings and the ids that did not fire.
#[allow(clippy::too_many_arguments)]
fn run_rules(
    data: &Data,
    policy: &Policy,
    scope: Scope,
    facts: &Facts,
    source: Option<&str>,
    subset: Option<&str>,
    conflicts: &[Disagreement],
    signoffs: &mut Signoffs,
) -> (Vec<Finding>, Vec<String>) {
    let mut out = Vec::new();
    let mut quiet = Vec::new();
    for r in policy.rules.iter().filter(|r| r.scope == scope) {
        let mut used = Vec::new();
        let mut matched = BTreeSet::new();
        if !eval(&r.when, facts, None, &mut used, &mut matched) {
            quiet.push(r.id.clone());
            continue;
        }
        let obligations = r
            .obligations
            .iter()
            .map(|o| {
                let params = match o.from.as_deref() {
                    None => vec![],
                    Some(p) if p.starts_with("item.") => {
                        let mut v: Vec<String> = matched
                            .iter()
                            .filter_map(|&i| facts.items[i].facts.get(p))
                            .flat_map(|x| strings(&x.value))
                            .collect();
                        v.dedup();
                        v
                    }
                    Some(p) => facts.map.get(p).map(|x| strings(&x.value)).unwrap_or_default(),
                };
                Obligation { kind: o.kind, params, rule: r.id.clone(), subset: subset.map(String::from) }
            })
            .collect();
        let resolved_by = if r.severity == Severity::Conditional { signoffs.resolve(&r.id, source) } else { None };
        let (cite, license_cite) = cites(policy, data, r);
        out.push(Finding {
            id: r.id.clone(),
            severity: r.severity,
            description: r.description.clone(),
            subset: subset.map(String::from),
            facts: used,
            resolved_by,
            obligations,
            signoff: r.signoff.clone(),
            hint: r.hint.clone(),
            cite,
            license_cite,
        });
    }
    for c in conflicts {
        let id = Code::AssertionConflict.id();
        let facts = c
            .observations
            .iter()
            .map(|o| UsedFact { fact: format!("source.{}", c.fact.as_str()), item: None, value: o.value.clone(), from: vec![o.from.clone()] })
            .collect();
        out.push(Finding {
            id: id.into(),
            severity: Severity::Conditional,
            description: format!("the recipe asserts a `{}` that contradicts what is known about the data", c.fact.as_str()),
            subset: subset.map(String::from),
            facts,
            resolved_by: signoffs.resolve(id, source),
            obligations: vec![],
            signoff: None,
            hint: Some(format!(
                "remove the assertion, or replace the known fact with `override = {{ {} = …, reason = \"…\" }}`",
                c.fact.as_str()
            )),
            cite: vec![],
            license_cite: vec![],
        });
    }
    (out, quiet)
}

/// Evaluate the source rules at one level. Where a recipe assertion contradicts a known
/// fact, the rules are also run on the known facts, and every reject they give stands:
/// an assertion cannot weaken a rejection (only an `override` with a reason can).
#[allow(clippy::too_many_arguments)]
fn source_rules(
    data: &Data,
    policy: &Policy,
    target: &TargetFacts,
    sf: &SourceFacts,
    lvl: &Level,
    disagree: Option<bool>,
    subset: Option<&str>,
    signoffs: &mut Signoffs,
) -> Vec<Finding> {
    let name = sf.name.as_str();
    let f = source_facts(data, &policy.meta.id, target, sf, lvl, disagree);
    let (mut rules, _) = run_rules(data, policy, Scope::Source, &f, Some(name), subset, &lvl.conflicts, signoffs);
    if let Some(known) = &lvl.unasserted {
        let f = source_facts(data, &policy.meta.id, target, sf, known, disagree);
        let mut none = Signoffs { list: &[], used: BTreeSet::new() };
        let (kr, _) = run_rules(data, policy, Scope::Source, &f, Some(name), subset, &[], &mut none);
        for mut r in kr.into_iter().filter(|r| r.severity == Severity::Reject) {
            if rules.iter().any(|x| x.id == r.id && x.severity == Severity::Reject) {
                continue;
            }
            r.description = format!("{} (on the known facts: a recipe assertion does not replace them)", r.description);
            r.hint = Some("an assertion cannot lift a rejection; if the known fact is wrong, replace it with `override = { …, reason = \"…\" }`".into());
            rules.push(r);
        }
    }
    rules
}

/// A value no catalogued subset lists, standing for "any other value" of the column.
const OTHER_VALUE: &str = "\u{0}curate: a value no subset lists";

/// Judge the target and every source. Pure: the same facts give the same verdicts.
pub fn judge(data: &Data, policy: &Policy, target: &TargetFacts, sources: &[SourceFacts], signoffs: &[Signoff]) -> Judgement {
    let mut so = Signoffs { list: signoffs, used: BTreeSet::new() };
    let mut diagnostics = Vec::new();
    let tf = target_facts(target);
    let (trules, tquiet) = run_rules(data, policy, Scope::Target, &tf, None, None, &[], &mut so);
    let target_override = target.family.as_ref().and_then(|f| {
        f.from.iter().find_map(|o| match o {
            FactOrigin::Override { reason } => {
                Some(OverrideOut { fact: "family".into(), value: Value::String(f.value.clone()), reason: reason.clone() })
            }
            _ => None,
        })
    });
    let target_v = TargetVerdict {
        model: target.model.clone(),
        family: target.family.as_ref().map(|f| f.value.clone()),
        verdict: verdict_of(&trules),
        signoffs: signoffs_of(&trules),
        rules: trules,
        facts: tf.map,
        not_fired: tquiet,
        override_: target_override,
    };

    let mut out = Vec::new();
    for sf in sources {
        let name = sf.name.as_str();
        let where_ = sf.row_filter.as_deref().and_then(|w| WhereExpr::parse(w).ok());
        // Each subset on its own.
        let mut subs = Vec::new();
        let mut fired_any: BTreeSet<String> = BTreeSet::new();
        for lvl in &sf.subsets {
            let sname = lvl.subset.as_ref().map(|s| s.name.clone()).unwrap_or_default();
            let rules = source_rules(data, policy, target, sf, lvl, None, Some(&sname), &mut so);
            fired_any.extend(rules.iter().map(|r| r.id.clone()));
            let s = lvl.subset.as_ref().expect("subset levels name their subset");
            let rows = if s.configs.is_empty() {
                format!("{} IN ({})", s.column.as_deref().unwrap_or("?"), s.values.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(", "))
            } else {
                format!("config {}", s.configs.join(", "))
            };
            subs.push(SubsetVerdict { name: sname, rows, selected: true, verdict: verdict_of(&rules), rules });
        }
        let exact = !sf.subsets.is_empty() && (where_.is_some() || sf.config.is_some());
        let disagree = subs.iter().map(|s| s.verdict).collect::<BTreeSet<_>>().len() > 1;
        let (rules, kept_levels): (Vec<Finding>, Vec<&Level>) = if exact {
            // Which subsets the filter can select.
            let mut config_hit = false;
            for (s, lvl) in subs.iter_mut().zip(&sf.subsets) {
                let r = lvl.subset.as_ref().expect("subset");
                s.selected = if !r.configs.is_empty() {
                    let hit = sf.config.as_ref().is_some_and(|c| r.configs.contains(c));
                    config_hit |= hit;
                    hit
                } else {
                    match (&where_, &r.column) {
                        (None, _) => true,
                        (Some(w), Some(col)) => r.values.iter().any(|v| {
                            let mut row = serde_json::Map::new();
                            row.insert(col.clone(), Value::String(v.clone()));
                            w.may_match(&row)
                        }),
                        (Some(_), None) => true,
                    }
                };
            }
            let column = sf.subsets.iter().find_map(|l| l.subset.as_ref().and_then(|s| s.column.clone()));
            let rest = !config_hit
                && match (&where_, column.clone()) {
                    (None, _) => true,
                    (Some(w), Some(col)) => {
                        let mut row = serde_json::Map::new();
                        row.insert(col, Value::String(OTHER_VALUE.into()));
                        w.may_match(&row)
                    }
                    (Some(w), None) => w.may_match(&serde_json::Map::new()),
                };
            // Values the `where` spells out that no subset lists: rows in no catalogued
            // subset, whose provenance the catalog does not give.
            let uncatalogued: Vec<String> = match (&where_, &column) {
                (Some(w), Some(col)) if !rest => w
                    .string_literals()
                    .into_iter()
                    .filter(|v| !sf.subsets.iter().any(|l| l.subset.as_ref().is_some_and(|s| s.values.contains(v))))
                    .filter(|v| {
                        let mut row = serde_json::Map::new();
                        row.insert(col.clone(), Value::String(v.clone()));
                        w.may_match(&row)
                    })
                    .collect(),
                _ => vec![],
            };
            let mut rules: Vec<Finding> = subs.iter().filter(|s| s.selected).flat_map(|s| s.rules.clone()).collect();
            if !uncatalogued.is_empty() {
                let id = Code::UncataloguedRows.id();
                let col = column.clone().unwrap_or_default();
                rules.push(Finding {
                    id: id.into(),
                    severity: Severity::Conditional,
                    description: format!(
                        "rows in no catalogued subset: the `where` selects `{col}` values that no subset of `{}` lists, so how those rows were made is not catalogued",
                        sf.id
                    ),
                    subset: Some("(rows in no catalogued subset)".into()),
                    facts: vec![
                        UsedFact { fact: "source.row_filter".into(), item: None, value: Value::String(sf.row_filter.clone().unwrap_or_default()), from: vec![FactOrigin::Recipe { key: "where".into() }] },
                        UsedFact {
                            fact: format!("uncatalogued `{col}` values"),
                            item: None,
                            value: Value::from(uncatalogued.clone()),
                            from: vec![FactOrigin::Engine { note: format!("no subset of the catalog entry `{}` lists them", sf.catalog.as_deref().unwrap_or(&sf.id)) }],
                        },
                    ],
                    resolved_by: so.resolve(id, Some(name)),
                    obligations: vec![],
                    signoff: Some("how the rows with these values were made, and where that is documented".into()),
                    hint: Some("check the values against the dataset (a typo selects nothing), or sign off their provenance".into()),
                    cite: vec![],
                    license_cite: vec![],
                });
            }
            let mut kept: Vec<&Level> = sf.subsets.iter().zip(&subs).filter(|(_, s)| s.selected).map(|(l, _)| l).collect();
            if rest {
                let tag = "(rows in no catalogued subset)";
                let r = source_rules(data, policy, target, sf, &sf.whole, None, Some(tag), &mut so);
                fired_any.extend(r.iter().map(|x| x.id.clone()));
                rules.extend(r);
                kept.push(&sf.whole);
            } else if !uncatalogued.is_empty() {
                // Their license is the dataset's, as far as anything is known.
                kept.push(&sf.whole);
            }
            if kept.is_empty() {
                diagnostics.push(Diag::new(
                    Code::WhereSelectsNothing,
                    Some(name),
                    format!("source `{name}`: the `where` selects none of the catalogued subsets of `{}`", sf.id),
                ));
            }
            (rules, kept)
        } else {
            let r = source_rules(data, policy, target, sf, &sf.whole, (!subs.is_empty()).then_some(disagree), None, &mut so);
            fired_any.extend(r.iter().map(|x| x.id.clone()));
            (r, vec![&sf.whole])
        };
        let kept_license = spdx_expr::Lic::all_of(
            kept_levels.iter().filter_map(|l| l.license.as_ref()).filter_map(|l| spdx_expr::parse(&l.value).ok()),
        )
        .map(|l| l.to_string());
        let whole_facts = source_facts(data, &policy.meta.id, target, sf, &sf.whole, None);
        let overrides = sf
            .whole
            .observations
            .iter()
            .filter_map(|o| match &o.from {
                FactOrigin::Override { reason } => Some(OverrideOut { fact: o.fact.as_str().into(), value: o.value.clone(), reason: reason.clone() }),
                _ => None,
            })
            .collect();
        out.push(SourceVerdict {
            overrides,
            signoffs: signoffs_of(&rules),
            verdict_without_override: None,
            name: sf.name.clone(),
            id: sf.id.clone(),
            kind: sf.kind.as_str(),
            catalog: sf.catalog.clone(),
            verdict: verdict_of(&rules),
            rules,
            subsets: subs,
            decided_by_subsets: exact,
            facts: whole_facts.map,
            disagreements: sf.whole.disagreements.clone(),
            not_fired: policy.rules.iter().filter(|r| r.scope == Scope::Source && !fired_any.contains(&r.id)).map(|r| r.id.clone()).collect(),
            kept_license,
        });
    }

    for (i, s) in signoffs.iter().enumerate() {
        let rule = policy.rule(&s.rule);
        let engine_rule = s.rule == Code::AssertionConflict.id() || s.rule == Code::UncataloguedRows.id();
        let whom = s.source.as_deref().map(|n| format!(" for source `{n}`")).unwrap_or_else(|| " for the target".into());
        if rule.is_none() && !engine_rule {
            let ids: Vec<&str> = policy.rules.iter().map(|r| r.id.as_str()).collect();
            let near = crate::recipe::diag::nearest(&s.rule, &ids).map(|n| format!("; did you mean `{n}`?")).unwrap_or_default();
            diagnostics.push(Diag::new(
                Code::SignoffUnknownRule,
                s.source.as_deref(),
                format!("sign-off at line {} names rule `{}`, which policy `{}` does not have{near}", s.at, s.rule, policy.meta.id),
            ));
        } else if rule.is_some_and(|r| r.severity != Severity::Conditional) {
            diagnostics.push(Diag::new(
                Code::SignoffNotConditional,
                s.source.as_deref(),
                format!(
                    "sign-off at line {} names `{}`, a {} rule: only conditional rules can be signed off",
                    s.at,
                    s.rule,
                    rule.map(|r| r.severity.as_str()).unwrap_or("")
                ),
            ));
        } else if !so.used.contains(&i) {
            diagnostics.push(Diag::new(
                Code::SignoffUnused,
                s.source.as_deref(),
                format!("sign-off at line {} of `{}`{whom} resolved nothing: the rule did not fire there", s.at, s.rule),
            ));
        }
    }
    Judgement { target: target_v, sources: out, diagnostics }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(s: &str) -> Cond {
        let v: toml::Value = toml::from_str(&format!("c = {s}")).unwrap();
        Cond::from_toml(&v["c"]).unwrap()
    }

    fn facts(pairs: &[(&'static str, Value)]) -> Facts {
        Facts { map: pairs.iter().map(|(k, v)| (*k, fv(v.clone(), vec![]))).collect(), ..Facts::default() }
    }

    fn run(c: &str, f: &Facts) -> bool {
        eval(&cond(c), f, None, &mut Vec::new(), &mut BTreeSet::new())
    }

    #[test]
    fn a_leaf_on_an_unknown_fact_is_false_except_missing() {
        let f = facts(&[]);
        assert!(!run(r#"{ fact = "source.origin", op = "eq", value = "human" }"#, &f));
        assert!(!run(r#"{ fact = "source.origin", op = "ne", value = "human" }"#, &f));
        assert!(!run(r#"{ fact = "source.origin", op = "exists" }"#, &f));
        assert!(run(r#"{ fact = "source.origin", op = "missing" }"#, &f));
        let f = facts(&[("source.origin", Value::from(""))]);
        assert!(run(r#"{ fact = "source.origin", op = "missing" }"#, &f), "an empty string is not known");
    }

    #[test]
    fn every_op_and_combinator() {
        let f = facts(&[("source.kind", Value::from("path")), ("source.eval_of", serde_json::json!(["gsm", "math"]))]);
        assert!(run(r#"{ fact = "source.kind", op = "in", value = ["path", "url"] }"#, &f));
        assert!(!run(r#"{ fact = "source.kind", op = "not_in", value = ["path", "url"] }"#, &f));
        assert!(run(r#"{ fact = "source.eval_of", op = "contains", value = "gsm" }"#, &f));
        assert!(run(r#"{ fact = "source.eval_of", op = "not_contains", value = "mmlu" }"#, &f));
        assert!(run(r#"{ all = [ { fact = "source.kind", op = "eq", value = "path" }, { not = { fact = "source.kind", op = "eq", value = "hub" } } ] }"#, &f));
        assert!(run(r#"{ any = [ { fact = "source.kind", op = "eq", value = "hub" }, { fact = "source.eval_of", op = "exists" } ] }"#, &f));
    }

    #[test]
    fn some_and_every_range_over_generators_and_record_the_matching_items() {
        let item = |vendor: &str| Item {
            model: format!("{vendor}/m"),
            facts: [("item.vendor", fv(vendor, vec![]))].into_iter().collect(),
        };
        let f = Facts { items: vec![item("meta"), item("openai")], ..Facts::default() };
        let c = cond(r#"{ some = "source.generators", where = { fact = "item.vendor", op = "eq", value = "openai" } }"#);
        let mut used = Vec::new();
        let mut matched = BTreeSet::new();
        assert!(eval(&c, &f, None, &mut used, &mut matched));
        assert_eq!(matched.into_iter().collect::<Vec<_>>(), vec![1]);
        assert_eq!(used.len(), 1, "only the matching item's facts are reported");
        assert_eq!(used[0].item.as_deref(), Some("openai/m"));
        let c = cond(r#"{ every = "source.generators", where = { fact = "item.vendor", op = "eq", value = "openai" } }"#);
        assert!(!eval(&c, &f, None, &mut Vec::new(), &mut BTreeSet::new()));
        let empty = Facts::default();
        assert!(eval(&c, &empty, None, &mut Vec::new(), &mut BTreeSet::new()), "every is vacuously true");
    }

    #[test]
    fn malformed_conditions_are_refused() {
        let v: toml::Value = toml::from_str(r#"c = { fact = "x", op = "like" }"#).unwrap();
        assert!(Cond::from_toml(&v["c"]).unwrap_err().contains("unknown op"));
        let v: toml::Value = toml::from_str(r#"c = { all = [], any = [] }"#).unwrap();
        assert!(Cond::from_toml(&v["c"]).is_err());
    }
}
