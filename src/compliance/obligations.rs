//! What the output owes: the combined SPDX expression of what was kept, attributions,
//! share-alike, same-family terms, non-commercial terms, carried use restrictions and the
//! benchmarks to decontaminate against; written into the report, the dataset card
//! (`README.md` with Hugging Face YAML) and `NOTICE`.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use super::cfg::{Data, ObligationKind};
use super::diags::Verdict;
use super::gather::FactOrigin;
use super::judge::{Judgement, SourceVerdict};
use super::spdx_expr::{self, Lic};

#[derive(Debug, Clone, Default, Serialize)]
pub struct Credit {
    pub source: String,
    pub dataset: String,
    pub license: String,
    /// Who made the dataset (copyright holders or authors), as the catalog names them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<String>,
    /// Where the license is stated (evidence URLs or the recipe).
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct FamilyTerm {
    pub source: String,
    /// Families the shards holding this source may train.
    pub families: Vec<String>,
    /// Licenses the data must be released under.
    pub release_under: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Obligations {
    /// `AND` of the licenses of everything kept, and of licenses outputs must carry.
    pub license: Option<String>,
    /// Kept sources (not rejected), in recipe order.
    pub kept: Vec<String>,
    pub attribution: Vec<Credit>,
    pub share_alike: Vec<Credit>,
    pub same_family: Vec<FamilyTerm>,
    pub non_commercial: Vec<String>,
    pub use_restrictions: Vec<Credit>,
    /// `(source, benchmarks)`.
    pub decontaminate: Vec<(String, Vec<String>)>,
    /// Self-made sources that must be public by submission time.
    pub publish: Vec<Credit>,
}

fn evidence(s: &SourceVerdict) -> Vec<String> {
    let mut out = Vec::new();
    for o in s.facts.get("source.license").map(|f| f.from.as_slice()).unwrap_or(&[]) {
        match o {
            FactOrigin::Catalog { evidence, .. } => out.extend(evidence.iter().cloned()),
            FactOrigin::Override { reason } => out.push(format!("recipe override: {reason}")),
            other => out.push(other.to_string()),
        }
    }
    out
}

/// Gather the obligations of every source that is not rejected.
pub fn collect(data: &Data, j: &Judgement) -> Obligations {
    let mut ob = Obligations::default();
    let mut parts: Vec<Lic> = Vec::new();
    for s in j.sources.iter().filter(|s| s.verdict != Verdict::Reject) {
        ob.kept.push(s.name.clone());
        if let Some(l) = s.kept_license.as_deref().and_then(|l| spdx_expr::parse(l).ok()) {
            parts.push(l);
        }
        let credit = |ob_license: Option<String>| Credit {
            source: s.name.clone(),
            dataset: s.id.clone(),
            license: ob_license.or_else(|| s.kept_license.clone()).unwrap_or_else(|| "NOASSERTION".into()),
            authors: s.catalog.as_deref().and_then(|c| data.dataset(c)).map(|d| d.authors.clone()).unwrap_or_default(),
            evidence: evidence(s),
        };
        let mut kinds = BTreeSet::new();
        let mut term = FamilyTerm { source: s.name.clone(), ..FamilyTerm::default() };
        let mut bench = BTreeSet::new();
        let mut restrictions = BTreeSet::new();
        for o in s.rules.iter().flat_map(|r| &r.obligations) {
            kinds.insert(o.kind);
            match o.kind {
                ObligationKind::TrainOnlyFamily => term.families.extend(o.params.iter().cloned()),
                ObligationKind::ReleaseUnder => term.release_under.extend(o.params.iter().cloned()),
                ObligationKind::Decontaminate => bench.extend(o.params.iter().cloned()),
                ObligationKind::CarryUseRestrictions => restrictions.extend(o.params.iter().cloned()),
                _ => {}
            }
        }
        if kinds.contains(&ObligationKind::Attribution) {
            ob.attribution.push(credit(None));
        }
        if kinds.contains(&ObligationKind::ShareAlike) {
            ob.share_alike.push(credit(None));
        }
        if kinds.contains(&ObligationKind::Publish) {
            ob.publish.push(credit(None));
        }
        if kinds.contains(&ObligationKind::NonCommercial) {
            ob.non_commercial.push(s.name.clone());
        }
        if !restrictions.is_empty() {
            ob.use_restrictions.push(credit(Some(restrictions.into_iter().collect::<Vec<_>>().join(" AND "))));
        }
        if !term.families.is_empty() || !term.release_under.is_empty() {
            term.families.sort();
            term.families.dedup();
            term.release_under.sort();
            term.release_under.dedup();
            for r in &term.release_under {
                if let Ok(l) = spdx_expr::parse(r) {
                    parts.push(l);
                }
            }
            ob.same_family.push(term);
        }
        if !bench.is_empty() {
            ob.decontaminate.push((s.name.clone(), bench.into_iter().collect()));
        }
    }
    ob.license = Lic::all_of(parts).map(|l| l.to_string());
    ob
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// The dataset card: Hugging Face YAML front matter, then the compliance summary.
pub fn dataset_card(recipe_name: &str, policy: &str, target: &str, j: &Judgement, ob: &Obligations, data: &Data) -> String {
    let mut out = String::from("---\n");
    // `license:` takes hub tags; an expression the hub cannot say becomes `other`, with
    // the expression in `license_name` and the details in NOTICE.
    let tags: Option<Vec<&str>> = ob.license.as_deref().and_then(|l| spdx_expr::parse(l).ok()).and_then(|l| match &l {
        Lic::Leaf { id, exception: None } => data.license(id).and_then(|c| c.hub_tags.first()).map(|t| vec![t.as_str()]),
        Lic::And(v) => v
            .iter()
            .map(|x| match x {
                Lic::Leaf { id, exception: None } => data.license(id).and_then(|c| c.hub_tags.first().map(String::as_str)),
                _ => None,
            })
            .collect(),
        _ => None,
    });
    match (&ob.license, tags) {
        (Some(_), Some(t)) if t.len() == 1 => {
            let _ = writeln!(out, "license: {}", t[0]);
        }
        (Some(_), Some(t)) => {
            out.push_str("license:\n");
            for x in t {
                let _ = writeln!(out, "- {x}");
            }
        }
        (Some(l), None) => {
            let _ = writeln!(out, "license: other\nlicense_name: {}\nlicense_link: NOTICE", yaml_str(l));
        }
        (None, _) => out.push_str("license: unknown\n"),
    }
    if let Some(l) = &ob.license {
        let _ = writeln!(out, "# SPDX: {l}");
    }
    let kept: Vec<&SourceVerdict> = j.sources.iter().filter(|s| ob.kept.contains(&s.name)).collect();
    let mut datasets: Vec<String> = kept.iter().filter(|s| s.kind == "hub").map(|s| s.id.clone()).collect();
    if kept.iter().any(|s| s.kind != "hub") {
        datasets.push("original".into());
    }
    datasets.dedup();
    if !datasets.is_empty() {
        out.push_str("source_datasets:\n");
        for d in &datasets {
            let _ = writeln!(out, "- {}", yaml_str(d));
        }
    }
    out.push_str("tags:\n- curate\n");
    let _ = writeln!(out, "- {}", yaml_str(policy));
    if ob.same_family.iter().any(|t| !t.families.is_empty()) {
        out.push_str("- same-family-terms\n");
    }
    let _ = writeln!(out, "pretty_name: {}", yaml_str(recipe_name));
    out.push_str("---\n\n");
    let _ = writeln!(out, "# {recipe_name}\n");
    let _ = writeln!(
        out,
        "Fine-tuning data built by curate for the base model `{target}`, judged by the `{policy}` policy. \
         Every source below was checked before it was read; `report.md` and `report.json` hold the rule trace.\n"
    );
    out.push_str("## Sources\n\n| source | dataset | license | verdict |\n|---|---|---|---|\n");
    for s in &j.sources {
        let verdict = if ob.kept.contains(&s.name) { s.verdict.as_str().to_string() } else { format!("{} (excluded)", s.verdict.as_str()) };
        let _ = writeln!(out, "| {} | `{}` | {} | {} |", s.name, s.id, s.kept_license.as_deref().unwrap_or("unknown"), verdict);
    }
    out.push_str("\n## License and obligations\n\n");
    let _ = writeln!(out, "The kept data is licensed `{}` (all of these apply together).", ob.license.as_deref().unwrap_or("NOASSERTION"));
    obligations_prose(&mut out, ob);
    out
}

fn obligations_prose(out: &mut String, ob: &Obligations) {
    for t in &ob.same_family {
        if !t.families.is_empty() {
            let _ = writeln!(out, "\n- Same-family terms (`{}`): these data may only train models of the `{}` family.", t.source, t.families.join("`, `"));
        }
        if !t.release_under.is_empty() {
            let _ = writeln!(out, "- `{}` holds model output that must be released under `{}`.", t.source, t.release_under.join("`, `"));
        }
    }
    if !ob.share_alike.is_empty() {
        let list: Vec<String> = ob.share_alike.iter().map(|c| format!("`{}` ({})", c.source, c.license)).collect();
        let _ = writeln!(out, "- Share-alike: anything released from these data must carry the same license: {}.", list.join(", "));
    }
    if !ob.non_commercial.is_empty() {
        let _ = writeln!(out, "- Non-commercial: `{}` may not be used commercially.", ob.non_commercial.join("`, `"));
    }
    for c in &ob.use_restrictions {
        let _ = writeln!(out, "- Use restrictions of `{}` travel with `{}`.", c.license, c.source);
    }
    for c in &ob.publish {
        let _ = writeln!(out, "- {}", publish_duty(c));
    }
    for (s, b) in &ob.decontaminate {
        let _ = writeln!(out, "- `{s}` overlaps evaluation benchmarks ({}): decontaminate against them.", b.join(", "));
    }
    if !ob.attribution.is_empty() {
        out.push_str("- Attribution: see `NOTICE`.\n");
    }
}

/// `NOTICE`: who must be credited, and the terms that travel with the data.
/// The duty a self-made source carries, in one sentence.
pub fn publish_duty(c: &Credit) -> String {
    format!("Publish: `{}` ({}) is self-made data; it must be open-sourced and publicly accessible by the time of submission.", c.source, c.dataset)
}

/// Links to the text of each SPDX license in an expression (the SPDX list's pages).
fn license_links(expr: &str) -> Vec<String> {
    let mut ids: Vec<&str> = expr
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|t| !t.is_empty() && !matches!(*t, "AND" | "OR" | "WITH") && !t.starts_with("LicenseRef-") && *t != "NOASSERTION")
        .collect();
    ids.dedup();
    ids.into_iter().map(|id| format!("https://spdx.org/licenses/{}.html", id.trim_end_matches('+'))).collect()
}

pub fn notice(recipe_name: &str, policy: &str, ob: &Obligations) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{recipe_name}\n\nThis dataset was built by curate (policy `{policy}`) from the sources below.");
    let _ = writeln!(out, "Combined license of the kept data: {}\n", ob.license.as_deref().unwrap_or("NOASSERTION"));
    if !ob.attribution.is_empty() {
        out.push_str("Attributions\n------------\n");
        for c in &ob.attribution {
            let _ = writeln!(out, "- {} ({}), licensed {}.", c.dataset, c.source, c.license);
            if !c.authors.is_empty() {
                let _ = writeln!(out, "    By: {}", c.authors.join("; "));
            }
            for link in license_links(&c.license) {
                let _ = writeln!(out, "    License text: {link}");
            }
            // Where the license is stated; the recipe's own word is said once.
            let stated: Vec<&String> = c.evidence.iter().filter(|e| e.starts_with("http")).collect();
            if stated.is_empty() {
                let _ = writeln!(out, "    License as declared in the recipe.");
            }
            for e in stated {
                let _ = writeln!(out, "    Stated at: {e}");
            }
        }
        out.push('\n');
    }
    if !ob.share_alike.is_empty() {
        out.push_str("Share-alike\n-----------\n");
        for c in &ob.share_alike {
            let _ = writeln!(out, "- {} ({}): adaptations must be released under {} or a compatible license.", c.dataset, c.source, c.license);
        }
        out.push('\n');
    }
    if !ob.same_family.is_empty() {
        out.push_str("Same-family terms\n-----------------\n");
        for t in &ob.same_family {
            if !t.families.is_empty() {
                let _ = writeln!(out, "- {}: may only be used to train or improve models of the {} family (or derivative works).", t.source, t.families.join(", "));
            }
            if !t.release_under.is_empty() {
                let _ = writeln!(out, "- {}: must be released under {}.", t.source, t.release_under.join(", "));
            }
        }
        out.push('\n');
    }
    if !ob.non_commercial.is_empty() {
        let _ = writeln!(out, "Non-commercial\n--------------\n- {}: non-commercial use only.\n", ob.non_commercial.join(", "));
    }
    if !ob.publish.is_empty() {
        out.push_str("Self-made data to publish\n-------------------------\n");
        for c in &ob.publish {
            let _ = writeln!(out, "- {} ({}): must be open-sourced and publicly accessible by the time of submission.", c.dataset, c.source);
        }
        out.push('\n');
    }
    if !ob.use_restrictions.is_empty() {
        out.push_str("Use restrictions\n----------------\n");
        for c in &ob.use_restrictions {
            let _ = writeln!(out, "- {}: the use restrictions of {} apply.", c.source, c.license);
        }
        out.push('\n');
    }
    out
}
