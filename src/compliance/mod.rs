//! Compliance: a verdict for every source, with the rules and facts that decided it.
//!
//! Cut as cargo-deny cuts a check: [`cfg`] reads the data under `licenses/` (license
//! classes, model families, the catalog, policies), [`gather`] collects facts per source
//! from the recipe, the catalog, the hub card and a DPI collection, each with its origin,
//! [`judge`] evaluates the policy as a pure function, [`diags`] holds the typed codes and
//! [`obligations`] what the output owes. This module wires them and renders the results
//! (`curate check`, `curate explain`, the report section, the dataset card and NOTICE).
//!
//! ```no_run
//! let recipe = curate::recipe::load(std::path::Path::new("recipe.toml")).unwrap();
//! let a = curate::compliance::assess(&recipe, &curate::compliance::Options::default()).unwrap();
//! println!("{}", a.table());
//! ```

pub mod cfg;
pub mod diags;
pub mod gather;
pub mod judge;
pub mod obligations;
pub mod spdx_expr;


use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{Value, json};

use cfg::{Data, Policy, Severity};
use diags::{Level, Verdict};
use gather::{Dpi, NoCards, SourceFacts};
use judge::{Finding, Judgement};
use obligations::Obligations;

use crate::recipe::Recipe;

/// A build the policy refuses: exit code 1, not 2 (the verdicts have been printed).
/// `run`, `check` and `train` raise it; the command line maps it to its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PolicyFailure(pub String);

/// How to assess (not what: that is the recipe).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A DPI collection; overrides the recipe's `[policy] dpi`.
    pub dpi: Option<PathBuf>,
}

/// Everything `check`, `explain` and `run` need.
#[derive(Debug)]
pub struct Assessment {
    pub data: Data,
    pub policy: Policy,
    pub facts: Vec<SourceFacts>,
    pub judgement: Judgement,
    pub obligations: Obligations,
}

/// Gather and judge. Errors are bad input (exit 2): no `[policy]`, an unknown policy,
/// invalid data, an unreadable DPI collection, a sign-off naming an unknown rule.
pub fn assess(recipe: &Recipe, opts: &Options) -> anyhow::Result<Assessment> {
    assess_with_cards(recipe, opts, &NoCards)
}

/// [`assess`] with hub cards from `cards` (the lockfile's record of each card, or
/// the hub itself for `check`).
pub fn assess_with_cards(recipe: &Recipe, opts: &Options, cards: &dyn gather::CardSource) -> anyhow::Result<Assessment> {
    let Some(policy_name) = &recipe.policy else {
        anyhow::bail!(
            "recipe `{}` has no `[policy]`, so there is nothing to check against\nhint: add `[policy]` with `use = \"neurips-2023\"`",
            recipe.path.display()
        );
    };
    let data = Data::bundled()?;
    let policy = data.policy(policy_name, &recipe.dir)?;
    let target = recipe.target.as_ref().ok_or_else(|| anyhow::anyhow!("`[policy]` needs `[target] model`"))?;
    let target_facts = gather::target(&data, &policy.meta.id, target).map_err(anyhow::Error::msg)?;
    let dpi_path = opts.dpi.clone().or_else(|| recipe.dpi.clone());
    let dpi = dpi_path.as_deref().map(Dpi::load).transpose()?;
    // Eval sources are read only to decontaminate against and never trained on, so
    // the policy on training data does not judge them.
    let facts: Vec<SourceFacts> = recipe
        .sources
        .iter()
        .filter(|s| s.role == crate::recipe::SourceRole::Train)
        .map(|s| gather::source(&data, s, &recipe.dir, cards, dpi.as_ref()))
        .collect();
    let mut judgement = judge::judge(&data, &policy, &target_facts, &facts, &recipe.signoffs);
    if let Some(d) = &dpi {
        for (file, why) in &d.unreadable {
            judgement.diagnostics.push(diags::Diag::new(
                diags::Code::DpiUnreadable,
                None,
                format!("DPI file `{file}.json` in `{}` was skipped: {why}", d.root.display()),
            ));
        }
    }
    for s in &recipe.sources {
        if let (Some(old), Some(new)) = (&s.hf_legacy, &s.hf) {
            let ev = cfg::renamed_hub_id(old).map(|r| format!("; {}", r.evidence)).unwrap_or_default();
            judgement.diagnostics.push(diags::Diag::new(
                diags::Code::HubIdRenamed,
                Some(&s.name),
                format!("source `{}`: `hf = \"{old}\"` is a legacy id; it resolved to `{new}` (licenses/hub-renames.toml{ev})", s.name),
            ));
        }
    }
    let unread: Vec<&str> =
        recipe.sources.iter().filter_map(|s| s.hf.as_deref()).filter(|h| cards.card(h).is_none()).collect();
    if !unread.is_empty() {
        judgement.diagnostics.push(diags::Diag::new(
            diags::Code::HubCardsOffline,
            None,
            format!(
                "hub cards were not read for `{}`: no `curate.lock` records them (`curate lock` reads the cards of fetched sources; a source with a local `path` is not fetched); the catalog's record of each card is used",
                unread.join("`, `")
            ),
        ));
    }
    let errors: Vec<String> =
        judgement.diagnostics.iter().filter(|d| d.level == Level::Error).map(|d| d.message.clone()).collect();
    if !errors.is_empty() {
        anyhow::bail!("{}", errors.join("\n"));
    }
    // What each overridden source would get on the facts without its override.
    if recipe.sources.iter().any(|s| s.override_.is_some()) {
        let plain: Vec<SourceFacts> = recipe
            .sources
            .iter()
            .filter(|s| s.role == crate::recipe::SourceRole::Train)
            .map(|s| gather::source_with(&data, s, &recipe.dir, cards, dpi.as_ref(), false))
            .collect();
        let without = judge::judge(&data, &policy, &target_facts, &plain, &recipe.signoffs);
        for (s, w) in judgement.sources.iter_mut().zip(&without.sources) {
            if !s.overrides.is_empty() && s.verdict != w.verdict {
                s.verdict_without_override = Some(w.verdict);
            }
        }
    }
    let obligations = obligations::collect(&data, &judgement);
    Ok(Assessment { data, policy, facts, judgement, obligations })
}

/// The summary line of `check`, as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub allowed: usize,
    /// Allowed sources that their `override` turned from conditional or reject.
    pub allowed_by_override: usize,
    /// Allowed sources with a resolving sign-off (and no deciding override).
    pub allowed_by_signoff: usize,
    pub conditional: usize,
    pub rejected: usize,
}

/// Comma-separated words in lines of at most about `width` characters.
fn wrap(words: &[String], width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for (i, w) in words.iter().enumerate() {
        let piece = if i + 1 < words.len() { format!("{w},") } else { w.clone() };
        if !cur.is_empty() && cur.len() + 1 + piece.len() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(&piece);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// Rule ids with the subsets each fired in, under (severity, most severe first; resolved).
type Groups = BTreeMap<(std::cmp::Reverse<Severity>, bool), Vec<(String, Vec<String>)>>;

/// Rule ids grouped by severity (most severe first), each with the subsets it fired in.
fn rule_list(rules: &[Finding]) -> Vec<(String, Vec<String>)> {
    let mut groups: Groups = BTreeMap::new();
    for r in rules {
        let list = groups.entry((std::cmp::Reverse(r.severity), r.resolved_by.is_some())).or_default();
        let pos = match list.iter().position(|(id, _)| *id == r.id) {
            Some(p) => p,
            None => {
                list.push((r.id.clone(), vec![]));
                list.len() - 1
            }
        };
        if let Some(s) = &r.subset {
            list[pos].1.push(s.clone());
        }
    }
    groups
        .into_iter()
        .map(|((std::cmp::Reverse(s), resolved), ids)| {
            let sev = if resolved { format!("{} (signed off)", s.as_str()) } else { s.as_str().to_string() };
            let ids = ids
                .into_iter()
                .map(|(id, subs)| if subs.is_empty() { id } else { format!("{id} [{}]", subs.join(", ")) })
                .collect();
            (sev, ids)
        })
        .collect()
}

impl Assessment {
    pub fn verdict(&self) -> Verdict {
        self.judgement.verdict()
    }

    /// True when the data may be built: nothing rejected, nothing conditional unresolved.
    pub fn passes(&self) -> bool {
        self.verdict() == Verdict::Allow
    }

    pub fn source(&self, name: &str) -> Option<&judge::SourceVerdict> {
        self.judgement.sources.iter().find(|s| s.name == name)
    }

    /// Sources that `run` leaves out.
    pub fn rejected(&self) -> Vec<&str> {
        self.judgement.sources.iter().filter(|s| s.verdict == Verdict::Reject).map(|s| s.name.as_str()).collect()
    }

    /// Warnings and notes, for people (stderr).
    pub fn diagnostics_text(&self) -> String {
        let mut out = String::new();
        for d in &self.judgement.diagnostics {
            let level = match d.level {
                Level::Error => "error",
                Level::Warning => "warning",
                Level::Note => "note",
            };
            let _ = writeln!(out, "{level}: {} ({})", d.message, d.code.id());
        }
        out
    }

    /// The verdict table `curate check` prints.
    pub fn table(&self) -> String {
        let j = &self.judgement;
        let mut out = String::new();
        let _ = writeln!(out, "policy `{}`: {}", self.policy.meta.id, self.policy.meta.name);
        let t = &j.target;
        let fam = t.family.as_deref().map(|f| format!(" (family `{f}`)")).unwrap_or_default();
        let _ = writeln!(out, "target `{}`{fam}: {}", t.model, t.verdict.as_str());
        for (sev, ids) in rule_list(&t.rules) {
            let _ = writeln!(out, "    {sev:<22} {}", ids.join(", "));
        }
        if let Some(o) = &t.override_ {
            let _ = writeln!(out, "    {:<22} {} = {} (reason: {})", "override", o.fact, o.value, o.reason);
        }
        for so in &t.signoffs {
            let _ = writeln!(out, "    {:<22} {} by {} (line {}): {}", "signed off", so.rule, so.by, so.at, so.reason);
        }
        out.push('\n');
        let wn = j.sources.iter().map(|s| s.name.len()).max().unwrap_or(6).max(6);
        let wi = j.sources.iter().map(|s| s.id.len()).max().unwrap_or(7).max(7);
        let _ = writeln!(out, "{:<wn$}  {:<wi$}  verdict", "source", "dataset");
        for s in &j.sources {
            let by = match s.verdict_without_override {
                Some(w) => format!(" (by override; {} without it)", w.as_str()),
                None => String::new(),
            };
            let _ = writeln!(out, "{:<wn$}  {:<wi$}  {}{by}", s.name, s.id, s.verdict.as_str());
            for (sev, ids) in rule_list(&s.rules) {
                let _ = writeln!(out, "    {sev:<22} {}", ids.join(", "));
            }
            for (key, label) in [("source.license_choice", "license chosen"), ("source.license_exceptions", "license exception")] {
                if let Some(v) = s.facts.get(key).and_then(|f| f.value.as_array()) {
                    let list: Vec<&str> = v.iter().filter_map(|x| x.as_str()).collect();
                    let _ = writeln!(out, "    {label:<22} {}", list.join("; "));
                }
            }
            for o in &s.overrides {
                let _ = writeln!(out, "    {:<22} {} = {} (reason: {})", "override", o.fact, o.value, o.reason);
            }
            for so in &s.signoffs {
                let _ = writeln!(out, "    {:<22} {} by {} (line {}): {}", "signed off", so.rule, so.by, so.at, so.reason);
            }
            if !s.subsets.is_empty() {
                if s.decided_by_subsets {
                    let sel: Vec<&str> = s.subsets.iter().filter(|x| x.selected).map(|x| x.name.as_str()).collect();
                    let _ = writeln!(out, "    {:<22} {}", "subsets selected", if sel.is_empty() { "none".into() } else { sel.join(", ") });
                } else {
                    for v in [Verdict::Allow, Verdict::Conditional, Verdict::Reject] {
                        let names: Vec<&str> = s.subsets.iter().filter(|x| x.verdict == v).map(|x| x.name.as_str()).collect();
                        if !names.is_empty() {
                            let _ = writeln!(out, "    {:<22} {}", format!("subsets {}", v.as_str()), names.join(", "));
                        }
                    }
                }
            }
        }
        if !self.obligations.publish.is_empty() {
            out.push_str("\nduties:\n");
            for c in &self.obligations.publish {
                let _ = writeln!(out, "  {}", obligations::publish_duty(c));
            }
        }
        let c = self.counts();
        let mut how = Vec::new();
        if c.allowed_by_override > 0 {
            how.push(format!("{} by override", c.allowed_by_override));
        }
        if c.allowed_by_signoff > 0 {
            how.push(format!("{} by sign-off", c.allowed_by_signoff));
        }
        let how = if how.is_empty() { String::new() } else { format!(" ({})", how.join(", ")) };
        let _ = writeln!(
            out,
            "\n{} allowed{how}, {} conditional, {} rejected; overall: {}",
            c.allowed,
            c.conditional,
            c.rejected,
            self.verdict().as_str()
        );
        out
    }

    /// How many sources got each verdict, and how many were allowed only by an
    /// override or a sign-off.
    pub fn counts(&self) -> Counts {
        let j = &self.judgement;
        let count = |v: Verdict| j.sources.iter().filter(|s| s.verdict == v).count();
        let allowed: Vec<_> = j.sources.iter().filter(|s| s.verdict == Verdict::Allow).collect();
        Counts {
            allowed: allowed.len(),
            allowed_by_override: allowed.iter().filter(|s| s.verdict_without_override.is_some()).count(),
            allowed_by_signoff: allowed.iter().filter(|s| s.verdict_without_override.is_none() && !s.signoffs.is_empty()).count(),
            conditional: count(Verdict::Conditional),
            rejected: count(Verdict::Reject),
        }
    }

    /// `curate check --json`.
    pub fn to_json(&self) -> Value {
        let j = &self.judgement;
        json!({
            "policy": { "id": self.policy.meta.id, "name": self.policy.meta.name, "url": self.policy.meta.url, "file": self.policy.file },
            "verdict": self.verdict(),
            "summary": self.counts(),
            "target": j.target,
            "sources": j.sources,
            "obligations": self.obligations,
            "diagnostics": j.diagnostics,
        })
    }

    /// The `compliance` section of report.json: verdicts, rule ids with their facts and
    /// their sources, what was excluded, and the obligations.
    pub fn report_json(&self) -> Value {
        let j = &self.judgement;
        let sources: Vec<Value> = j
            .sources
            .iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "id": s.id,
                    "verdict": s.verdict,
                    "excluded": s.verdict == Verdict::Reject,
                    "license": s.kept_license,
                    "rules": s.rules.iter().map(|r| json!({
                        "id": r.id, "severity": r.severity, "subset": r.subset, "facts": r.facts,
                        "resolved_by": r.resolved_by, "obligations": r.obligations,
                        "cite": r.cite.iter().map(|c| json!({"title": c.title, "url": c.url})).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                    "overrides": s.overrides,
                    "signoffs": s.signoffs,
                    "verdict_without_override": s.verdict_without_override,
                    "subsets": s.subsets.iter().map(|x| json!({
                        "name": x.name, "selected": x.selected, "verdict": x.verdict,
                        "rules": x.rules.iter().map(|r| &r.id).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                    "disagreements": s.disagreements,
                })
            })
            .collect();
        json!({
            "policy": self.policy.meta.id,
            "policy_url": self.policy.meta.url,
            "verdict": self.verdict(),
            "target": { "model": j.target.model, "family": j.target.family, "verdict": j.target.verdict,
                        "rules": j.target.rules.iter().map(|r| json!({"id": r.id, "severity": r.severity, "facts": r.facts, "resolved_by": r.resolved_by})).collect::<Vec<_>>() },
            "sources": sources,
            "obligations": self.obligations,
        })
    }

    /// The `## Compliance` section of report.md.
    pub fn report_markdown(&self) -> String {
        let j = &self.judgement;
        let mut out = String::new();
        let _ = writeln!(out, "## Compliance\n");
        let _ = writeln!(
            out,
            "Policy `{}` ({}). Target `{}`: **{}**.\n",
            self.policy.meta.id,
            self.policy.meta.url,
            j.target.model,
            j.target.verdict.as_str()
        );
        out.push_str("| source | dataset | verdict | rules |\n|---|---|---|---|\n");
        for s in &j.sources {
            let rules: Vec<String> = rule_list(&s.rules).into_iter().map(|(sev, ids)| format!("{sev}: {}", ids.join(", "))).collect();
            let verdict = if s.verdict == Verdict::Reject { "reject (excluded, not read)".to_string() } else { s.verdict.as_str().to_string() };
            let _ = writeln!(out, "| {} | `{}` | {} | {} |", s.name, s.id, verdict, rules.join("; "));
        }
        out.push_str("\nRules cited:\n\n");
        let mut seen = std::collections::BTreeSet::new();
        for r in j.sources.iter().flat_map(|s| &s.rules).chain(&j.target.rules) {
            if seen.insert(r.id.clone()) {
                let cite = r.cite.first().map(|c| format!(" ({})", c.url)).unwrap_or_default();
                let _ = writeln!(out, "- `{}` [{}]: {}{cite}", r.id, r.severity.as_str(), r.description);
            }
        }
        let _ = writeln!(out, "\nThe kept data is licensed `{}`.", self.obligations.license.as_deref().unwrap_or("NOASSERTION"));
        out.push_str("See `README.md` (dataset card) and `NOTICE` for the obligations; `curate explain RECIPE SOURCE` prints each rule trace.\n");
        out
    }

    pub fn dataset_card(&self, recipe_name: &str) -> String {
        obligations::dataset_card(recipe_name, &self.policy.meta.id, &self.judgement.target.model, &self.judgement, &self.obligations, &self.data)
    }

    pub fn notice(&self, recipe_name: &str) -> String {
        obligations::notice(recipe_name, &self.policy.meta.id, &self.obligations)
    }

    /// The whole rule trace for one source, in words.
    pub fn explain(&self, name: &str) -> Option<String> {
        let s = self.source(name)?;
        let f = self.facts.iter().find(|f| f.name == name)?;
        let j = &self.judgement;
        let mut out = String::new();
        let _ = writeln!(out, "source `{}`: {} `{}`", s.name, s.kind, s.id);
        match &s.catalog {
            Some(c) => {
                let _ = writeln!(out, "catalog entry: `{c}`");
                // The evidence once, not on every fact it supports.
                if let Some(d) = self.data.dataset(c) {
                    let mut urls: Vec<&str> = Vec::new();
                    for e in d.evidence.iter().chain(d.subset.iter().flat_map(|x| &x.evidence)) {
                        if !urls.contains(&e.url.as_str()) {
                            urls.push(&e.url);
                        }
                    }
                    for u in urls {
                        let _ = writeln!(out, "  evidence: {u}");
                    }
                }
            }
            None => out.push_str("catalog entry: none (only the recipe and DPI can say anything about it)\n"),
        }
        let _ = writeln!(out, "policy `{}`, target `{}` ({})", self.policy.meta.id, j.target.model, j.target.verdict.as_str());
        let how = if s.decided_by_subsets { " (the worst of the subsets the `where` / `config` selects)" } else { "" };
        let _ = writeln!(out, "\nverdict: {}{how}", s.verdict.as_str());

        out.push_str("\nfacts (the first source listed decides; the others are what else was said):\n");
        for kind in ["license", "origin", "generated_by"] {
            let obs: Vec<_> = f.whole.observations.iter().filter(|o| o.fact.as_str() == kind).collect();
            if obs.is_empty() {
                let _ = writeln!(out, "  {kind:<13} unknown: no fact source states it");
            }
            for (i, o) in obs.iter().enumerate() {
                let lead = if i == 0 { format!("{kind:<13}") } else { format!("{:<13}", "  also") };
                let _ = writeln!(out, "  {lead} {}  <- {:#}", o.value, o.from);
            }
        }
        for (k, v) in &s.facts {
            if matches!(*k, "source.license" | "source.origin" | "source.generators") {
                continue;
            }
            let from: Vec<String> = v.from.iter().map(|o| format!("{o:#}")).collect();
            let _ = writeln!(out, "  {k:<34} {}  <- {}", v.value, from.join("; "));
        }
        if s.disagreements.is_empty() {
            out.push_str("\ndisagreements: none\n");
        } else {
            out.push_str("\ndisagreements (reported, never hidden):\n");
            for d in &s.disagreements {
                let _ = writeln!(out, "  {}:", d.fact.as_str());
                for o in &d.observations {
                    let _ = writeln!(out, "    {:#} says {}", o.from, o.value);
                }
            }
        }

        let finding = |out: &mut String, r: &Finding| {
            let status = match &r.resolved_by {
                Some(judge::Resolution::Signoff { by, reason, at }) => format!(", signed off by {by} (line {at}): {reason}"),
                None => String::new(),
            };
            let sub = r.subset.as_deref().map(|x| format!(" (subset `{x}`)")).unwrap_or_default();
            let _ = writeln!(out, "  [{}] {}{sub}: {}{status}", r.severity.as_str(), r.id, r.description);
            for u in &r.facts {
                let item = u.item.as_deref().map(|i| format!(" of `{i}`")).unwrap_or_default();
                let _ = writeln!(out, "      {}{item} = {}", u.fact, u.value);
                if u.from.is_empty() {
                    out.push_str("          <- no fact source knows it\n");
                }
                for o in &u.from {
                    let _ = writeln!(out, "          <- {o:#}");
                }
            }
            for o in &r.obligations {
                let _ = writeln!(out, "      obligation: {} {}", o.kind.as_str(), o.params.join(", "));
            }
            for c in &r.cite {
                match (&c.quote, &c.note) {
                    (Some(q), _) => {
                        let _ = writeln!(out, "      cites {} <{}>:\n        \"{q}\"", c.source, c.url);
                    }
                    (None, Some(n)) => {
                        let _ = writeln!(out, "      cites {} <{}>, note:\n        {n}", c.source, c.url);
                    }
                    _ => {}
                }
            }
            for c in &r.license_cite {
                let _ = writeln!(out, "      rests on {} {} <{}>:\n        \"{}\"", c.license, c.clause, c.url, c.quote);
            }
            if r.resolved_by.is_none()
                && let Some(sg) = &r.signoff
            {
                let _ = writeln!(
                    out,
                    "      to accept it: `[[policy.signoff]] rule = \"{}\", source = \"{}\", by = \"…\", reason = \"…\"` stating {sg}",
                    r.id, s.name
                );
            }
            if let Some(h) = &r.hint {
                let _ = writeln!(out, "      hint: {h}");
            }
        };

        out.push_str("\nrules that fired and decide the verdict:\n");
        if s.rules.is_empty() {
            out.push_str("  none\n");
        }
        for r in &s.rules {
            finding(&mut out, r);
        }
        if !s.subsets.is_empty() {
            out.push_str("\nsubsets, each judged on its own facts:\n");
            for x in &s.subsets {
                let sel = if x.selected { "selected" } else { "not selected" };
                let _ = writeln!(out, "  {} ({}): {}, {sel}", x.name, x.rows, x.verdict.as_str());
                for r in &x.rules {
                    let _ = writeln!(out, "      [{}] {}", r.severity.as_str(), r.id);
                }
            }
            let allowed: Vec<String> =
                s.subsets.iter().filter(|x| x.verdict == Verdict::Allow).map(|x| x.rows.clone()).collect();
            if !allowed.is_empty() && s.verdict != Verdict::Allow {
                let _ = writeln!(out, "  the allowed subsets are: {}", allowed.join("; "));
            }
        }
        if !s.not_fired.is_empty() {
            out.push_str("\nrules that did not fire:\n");
            for line in wrap(&s.not_fired, 96) {
                let _ = writeln!(out, "  {line}");
            }
        }
        out.push_str("\ntarget rules that fired:\n");
        if j.target.rules.is_empty() {
            out.push_str("  none\n");
        }
        for r in &j.target.rules {
            finding(&mut out, r);
        }
        Some(out)
    }
}
