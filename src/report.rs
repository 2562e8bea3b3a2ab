//! The run report: the funnel per source and per stage (records and characters in and
//! out), drop counts per rule, and the provenance each source declared. Written as
//! `report.json` (for tools) and `report.md` (for people), both deterministic: the same
//! recipe and inputs give the same bytes whatever the thread count. Timings, which are
//! not deterministic, go to `timings.json` instead.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::histogram::Histogram;
use crate::ledger::{LedgerSample, Stage};
use crate::recipe::{Recipe, Source};
use crate::shards::ShardSummary;
use crate::stages::eval::EvalReport;
use crate::stages::near_pass::NearSummary;

pub use crate::counters::{FileStat, SourceStats, StageCount};

#[derive(Serialize)]
struct Report<'a> {
    curate_version: &'static str,
    recipe: RecipeInfo<'a>,
    totals: Totals,
    funnel: Vec<FunnelRow>,
    drops: BTreeMap<&'static str, u64>,
    sources: Vec<SourceReport<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shards: Option<&'a ShardSummary>,
    /// Verdicts, rules, facts and obligations, when the recipe has a `[policy]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    compliance: Option<&'a serde_json::Value>,
    /// Eval sets and the contamination found, per benchmark and per source.
    #[serde(skip_serializing_if = "Option::is_none")]
    decontamination: Option<&'a EvalReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    near_dedup: Option<&'a NearSummary>,
    /// Findings a reviewer should look at (e.g. chatbot phrases in a source declared
    /// human-written).
    warnings: Vec<String>,
    /// The first ledger rows of each rule, in ledger order.
    #[serde(skip_serializing_if = "ledger_samples_empty")]
    ledger_samples: Option<&'a BTreeMap<&'static str, Vec<LedgerSample>>>,
}

fn ledger_samples_empty(s: &Option<&BTreeMap<&'static str, Vec<LedgerSample>>>) -> bool {
    s.is_none_or(|m| m.is_empty())
}

/// A source's length distributions: characters of each document kept (in
/// `documents.parquet`), and tokens of each document tokenized (before mixing).
#[derive(Default, Clone, Serialize)]
pub struct Lengths {
    pub chars: Histogram,
    pub tokens: Histogram,
}

/// The optional sections of a report.
#[derive(Default)]
pub struct Extras<'a> {
    pub shards: Option<&'a ShardSummary>,
    /// The compliance section (JSON value, Markdown) when the recipe has a policy.
    pub compliance: Option<(&'a serde_json::Value, &'a str)>,
    pub eval: Option<&'a EvalReport>,
    pub near: Option<&'a NearSummary>,
    /// Length histograms, one per source in recipe order.
    pub lengths: Option<&'a [Lengths]>,
    pub ledger_samples: Option<&'a BTreeMap<&'static str, Vec<LedgerSample>>>,
}

/// A source declared human-written whose documents show chatbot phrases at this rate
/// or more is flagged: a few such phrases can be quoted, many are a sign of undeclared
/// model output.
pub const AI_PHRASE_FLAG_RATE: f64 = 0.01;

#[derive(Serialize)]
struct QualityReport {
    checked: u64,
    ai_phrase_documents: u64,
    ai_phrase_rate: f64,
    pii_redacted: crate::stages::quality::PiiCounts,
}

#[derive(Serialize)]
struct RecipeInfo<'a> {
    name: &'a str,
    file: String,
    sha256: &'a str,
    seed: u64,
}

#[derive(Serialize)]
struct Totals {
    /// Records read from the training sources (eval sets apart, below).
    records_read: u64,
    /// Records read from eval sets (indexed for decontamination, never trained on).
    eval_records_read: u64,
    documents_kept: u64,
    chars_kept: u64,
    ledger_entries: u64,
    errors_skipped: u64,
}

#[derive(Serialize)]
struct FunnelRow {
    stage: &'static str,
    #[serde(flatten)]
    count: StageCount,
}

#[derive(Serialize)]
struct Provenance<'a> {
    license: Option<&'a str>,
    origin: Option<&'static str>,
    generated_by: &'a [String],
}

#[derive(Serialize)]
struct SourceReport<'a> {
    name: &'a str,
    /// `train`, or `eval` for an eval set (read for decontamination, never trained on).
    role: &'static str,
    priority: i64,
    provenance: Provenance<'a>,
    #[serde(rename = "where", skip_serializing_if = "Option::is_none")]
    where_: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sample: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u64>,
    documents_kept: u64,
    chars_kept: u64,
    funnel: Vec<FunnelRow>,
    drops: &'a BTreeMap<&'static str, u64>,
    errors_skipped: u64,
    limit_reached: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    quality: Option<QualityReport>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    contamination: &'a BTreeMap<String, u64>,
    files: &'a [FileStat],
    #[serde(skip_serializing_if = "Option::is_none")]
    lengths: Option<&'a Lengths>,
}

fn funnel(order: &[Stage], stages: &BTreeMap<&'static str, StageCount>) -> Vec<FunnelRow> {
    order
        .iter()
        .filter_map(|s| stages.get(s.as_str()).map(|c| FunnelRow { stage: s.as_str(), count: *c }))
        .collect()
}

/// The finished report, ready to be written.
pub struct Rendered {
    pub json: String,
    pub markdown: String,
}

pub fn render(recipe: &Recipe, stats: &[SourceStats], ledger_entries: u64, extras: &Extras) -> Rendered {
    // The funnel follows the recipe's stage list: execution order.
    let order = crate::stages::plan_stages(recipe);
    let Extras { shards, compliance, eval, near, lengths, ledger_samples } = *extras;
    let mut warnings = Vec::new();
    let mut total_stages: BTreeMap<&'static str, StageCount> = BTreeMap::new();
    let mut drops: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut totals = Totals { records_read: 0, eval_records_read: 0, documents_kept: 0, chars_kept: 0, ledger_entries, errors_skipped: 0 };
    let mut sources = Vec::new();
    for (src, st) in recipe.sources.iter().zip(stats) {
        // Every ledgered record counts under its rule, an eval set's bad rows too.
        for (k, n) in &st.drops {
            *drops.entry(k).or_default() += n;
        }
        let read = st.stages.get("read").map(|c| c.records_in).unwrap_or(0);
        if src.role == crate::recipe::SourceRole::Eval {
            // An eval set's records go to the decontamination index, not down the
            // funnel: counted apart, so that the funnel adds up.
            totals.eval_records_read += read;
            sources.push(source_report(&order, src, st));
            continue;
        }
        for (k, c) in &st.stages {
            total_stages.entry(k).or_default().add(c);
        }
        let (kept, chars) = st.kept();
        totals.records_read += read;
        totals.documents_kept += kept;
        totals.chars_kept += chars;
        totals.errors_skipped += st.errors_skipped;
        warnings.extend(st.warnings.iter().cloned());
        if st.quality_checked > 0 && src.provenance.origin == Some(crate::recipe::Origin::Human) {
            let rate = st.ai_phrase_docs as f64 / st.quality_checked as f64;
            if rate >= AI_PHRASE_FLAG_RATE {
                warnings.push(format!(
                    "source `{}` is declared human-written, but {:.1}% of its documents ({} of {}) hold chatbot phrases: check for undeclared model output",
                    src.name,
                    rate * 100.0,
                    st.ai_phrase_docs,
                    st.quality_checked
                ));
            }
        }
        let mut sr = source_report(&order, src, st);
        sr.lengths = lengths.and_then(|l| l.get(src.index)).filter(|l| l.chars.total() + l.tokens.total() > 0);
        sources.push(sr);
    }
    let report = Report {
        curate_version: env!("CARGO_PKG_VERSION"),
        recipe: RecipeInfo {
            name: &recipe.name,
            file: recipe.path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
            sha256: &recipe.sha256,
            seed: recipe.seed,
        },
        totals,
        funnel: funnel(&order, &total_stages),
        drops,
        sources,
        shards,
        compliance: compliance.map(|c| c.0),
        decontamination: eval,
        near_dedup: near,
        warnings,
        ledger_samples,
    };
    let mut json = serde_json::to_string_pretty(&report).expect("report serialises");
    json.push('\n');
    let mut markdown = markdown(&report);
    if let Some((_, md)) = compliance {
        markdown.push('\n');
        markdown.push_str(md);
    }
    Rendered { json, markdown }
}

fn source_report<'a>(order: &[Stage], src: &'a Source, st: &'a SourceStats) -> SourceReport<'a> {
    let (kept, chars) = st.kept();
    SourceReport {
        name: &src.name,
        role: match src.role {
            crate::recipe::SourceRole::Train => "train",
            crate::recipe::SourceRole::Eval => "eval",
        },
        priority: src.priority,
        provenance: Provenance {
            license: src.provenance.license.as_deref(),
            origin: src.provenance.origin.map(|o| o.as_str()),
            generated_by: &src.provenance.generated_by,
        },
        where_: src.where_.as_ref().map(|w| w.text()),
        sample: src.sample,
        limit: src.limit,
        documents_kept: kept,
        chars_kept: chars,
        funnel: funnel(order, &st.stages),
        drops: &st.drops,
        errors_skipped: st.errors_skipped,
        limit_reached: st.limit_reached,
        quality: (st.quality_checked > 0 || st.pii.total() > 0).then(|| QualityReport {
            checked: st.quality_checked,
            ai_phrase_documents: st.ai_phrase_docs,
            ai_phrase_rate: if st.quality_checked == 0 {
                0.0
            } else {
                ((st.ai_phrase_docs as f64 / st.quality_checked as f64) * 1e4).round() / 1e4
            },
            pii_redacted: st.pii,
        }),
        contamination: &st.contamination,
        files: &st.files,
        lengths: None,
    }
}

fn opt(n: Option<u64>) -> String {
    n.map(thousands).unwrap_or_else(|| "–".to_string())
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn funnel_table(out: &mut String, rows: &[FunnelRow]) {
    out.push_str("| stage | records in | records out | dropped | chars in | chars out |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let c = &r.count;
        let dropped = if r.stage == "map" {
            // Map turns records into documents; its drops are in the rule table.
            "see rules".to_string()
        } else {
            thousands(c.records_in.saturating_sub(c.records_out))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            r.stage,
            thousands(c.records_in),
            thousands(c.records_out),
            dropped,
            opt(c.chars_in),
            opt(c.chars_out)
        );
    }
}

fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# curate report: {}\n", r.recipe.name);
    let _ = writeln!(
        out,
        "Recipe `{}` (sha256 `{}`), seed {}, curate {}.\n",
        r.recipe.file, r.recipe.sha256, r.recipe.seed, r.curate_version
    );
    let t = &r.totals;
    let _ = writeln!(
        out,
        "**{} documents kept** ({} characters) from {} records read; {} records ledgered, {} of them bad input skipped under `on_error = \"skip\"`.{}\n",
        thousands(t.documents_kept),
        thousands(t.chars_kept),
        thousands(t.records_read),
        thousands(t.ledger_entries),
        thousands(t.errors_skipped),
        if t.eval_records_read > 0 {
            format!(" {} records of eval sets were read apart, for decontamination.", thousands(t.eval_records_read))
        } else {
            String::new()
        }
    );
    out.push_str("## Funnel, training sources\n\n");
    funnel_table(&mut out, &r.funnel);
    out.push_str("\n## Drops by rule\n\n");
    if r.drops.is_empty() {
        out.push_str("Nothing was dropped.\n");
    } else {
        out.push_str("| rule | records |\n|---|---:|\n");
        for (k, n) in &r.drops {
            let _ = writeln!(out, "| `{k}` | {} |", thousands(*n));
        }
        out.push_str("\nEvery dropped record is in `ledger.parquet` with its file, row, measured value and detail.\n");
    }
    out.push_str("\n## Sources\n\n");
    out.push_str("| source | license (declared) | origin | generated by | kept | chars kept |\n|---|---|---|---|---:|---:|\n");
    for s in &r.sources {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            s.name,
            s.provenance.license.unwrap_or("(none declared)"),
            s.provenance.origin.unwrap_or("(none declared)"),
            if s.provenance.generated_by.is_empty() { "(none declared)".to_string() } else { s.provenance.generated_by.join(", ") },
            thousands(s.documents_kept),
            thousands(s.chars_kept)
        );
    }
    if !r.warnings.is_empty() {
        out.push_str("\n## Warnings\n\n");
        for w in &r.warnings {
            let _ = writeln!(out, "- {w}");
        }
    }
    if let Some(e) = r.decontamination {
        decontam_markdown(&mut out, e);
    }
    if let Some(n) = r.near_dedup {
        let _ = writeln!(
            out,
            "\n## Near-duplicates\n\nMinHash over {}-word shingles, {} bands × {} rows{}: {} documents, {} candidate pairs{}, {} clusters, {} documents dropped (each in the ledger as `near_dedup.minhash` with its cluster, kept document and Jaccard similarity).",
            n.ngram,
            n.bands,
            n.rows,
            if n.confirm { format!(", pairs confirmed by exact Jaccard ≥ {}", n.threshold) } else { String::new() },
            thousands(n.documents),
            thousands(n.candidate_pairs),
            if n.confirm { format!(" ({} rejected)", thousands(n.rejected_pairs)) } else { String::new() },
            thousands(n.clusters),
            thousands(n.dropped)
        );
    }
    let quality: Vec<&SourceReport> = r.sources.iter().filter(|s| s.quality.is_some()).collect();
    if !quality.is_empty() {
        out.push_str("\n## Quality and PII\n\n| source | checked | with chatbot phrases | rate | PII spans redacted |\n|---|---:|---:|---:|---|\n");
        for s in quality {
            let q = s.quality.as_ref().expect("filtered");
            let p = &q.pii_redacted;
            let pii: Vec<String> = [("email", p.email), ("phone", p.phone), ("ipv4", p.ipv4), ("ipv6", p.ipv6), ("secret", p.secret)]
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.2}% | {} |",
                s.name,
                thousands(q.checked),
                thousands(q.ai_phrase_documents),
                q.ai_phrase_rate * 100.0,
                if pii.is_empty() { "none".to_string() } else { pii.join(", ") }
            );
        }
    }
    if let Some(sh) = r.shards {
        shards_markdown(&mut out, sh);
    }
    for s in &r.sources {
        let _ = writeln!(out, "\n### {}\n", s.name);
        if let Some(w) = s.where_ {
            let _ = writeln!(out, "Selected with `where {w}`.\n");
        }
        if let Some(f) = s.sample {
            let _ = writeln!(out, "Seeded sample of {f}.\n");
        }
        if s.limit_reached {
            let _ = writeln!(out, "Stopped at `limit = {}`; the rest of the source was not read.\n", s.limit.unwrap_or(0));
        }
        funnel_table(&mut out, &s.funnel);
        if !s.drops.is_empty() {
            out.push('\n');
            let parts: Vec<String> = s.drops.iter().map(|(k, n)| format!("`{k}` {}", thousands(*n))).collect();
            let _ = writeln!(out, "Drops: {}.", parts.join(", "));
        }
        out.push_str("\n| file | bytes | records |\n|---|---:|---:|\n");
        for f in s.files {
            let _ = writeln!(out, "| `{}` | {} | {} |", f.file, thousands(f.bytes), thousands(f.records));
        }
    }
    out
}

fn decontam_markdown(out: &mut String, e: &EvalReport) {
    let _ = writeln!(
        out,
        "\n## Decontamination\n\nTraining documents sharing a {}-word n-gram (or a whole item of fewer words) with an evaluation item were {}; items under {} words are not indexed.\n",
        e.ngram,
        if e.action == "drop" { "dropped (`decontam.ngram` in the ledger names the benchmark, the item and the words)" } else { "flagged and kept" },
        e.min_item_words
    );
    out.push_str("| eval source | benchmark | items | indexed | too short | skipped |\n|---|---|---:|---:|---:|---:|\n");
    for s in &e.sources {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            s.source,
            s.benchmark,
            thousands(s.items),
            thousands(s.indexed),
            thousands(s.too_short),
            thousands(s.skipped)
        );
    }
    out.push_str("\nContaminated training documents per benchmark and source:\n\n");
    if e.contamination.is_empty() {
        out.push_str("None found.\n");
    } else {
        out.push_str("| benchmark | source | documents |\n|---|---|---:|\n");
        for (b, per) in &e.contamination {
            for (src, n) in per {
                let _ = writeln!(out, "| {b} | {src} | {} |", thousands(*n));
            }
        }
    }
}

fn shards_markdown(out: &mut String, sh: &ShardSummary) {
    out.push_str("\n## Shards\n\n");
    let _ = writeln!(
        out,
        "Template `{}`, `seq_len` {}, {} tokens, packing `{}`{}; tokenizer sha256 `{}` ({} entries, EOS `{}` = {}{}).\n",
        sh.template,
        sh.seq_len,
        sh.dtype,
        sh.method,
        if sh.shuffle { ", packs shuffled" } else { "" },
        sh.tokenizer.sha256,
        thousands(sh.tokenizer.vocab_size as u64),
        sh.tokenizer.eos.token,
        sh.tokenizer.eos.id,
        sh.tokenizer.bos.as_ref().map(|b| format!(", BOS `{}` = {}", b.token, b.id)).unwrap_or_default()
    );
    out.push_str("| split | documents | sequences | packs | tokens | trained tokens | packing efficiency |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for (name, s) in [("train", Some(&sh.train)), ("valid", sh.valid.as_ref())] {
        if let Some(s) = s {
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {} | {} | {:.2}% |",
                thousands(s.documents),
                thousands(s.sequences),
                thousands(s.packs),
                thousands(s.tokens),
                thousands(s.loss_tokens),
                s.efficiency * 100.0
            );
        }
    }
    out.push_str("\nToken mix per source, before and after weights and caps:\n\n");
    out.push_str("| source | documents | tokens before | share before | weight | train tokens after | share after | valid tokens |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for s in &sh.sources {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2}% | {}{} | {} | {:.2}% | {} |",
            s.source,
            thousands(s.documents),
            thousands(s.tokens_before),
            s.share_before * 100.0,
            s.weight,
            s.max_tokens.map(|m| format!(" (cap {})", thousands(m))).unwrap_or_default(),
            thousands(s.train_tokens),
            s.share_after * 100.0,
            thousands(s.valid_tokens)
        );
    }
}

/// `manifest.json`: what a trainer or an auditor needs to trust the shards: the
/// recipe, the tokenizer and its special ids, the layout, per-source counts, and the
/// sha256 of every other output file; `curate.lock`'s sha256 when remote inputs
/// were read through it. `compliance` is the report's compliance section (when the
/// recipe has a policy); the manifest carries what a trainer needs from it (see
/// [`manifest_compliance`]).
pub fn manifest(
    recipe: &Recipe,
    sh: &ShardSummary,
    stats: &[SourceStats],
    files: &[(String, String)],
    lock_sha256: Option<&str>,
    compliance: Option<&serde_json::Value>,
) -> String {
    #[derive(Serialize)]
    struct SourceCount<'a> {
        name: &'a str,
        documents_kept: u64,
        train_sequences: u64,
        train_tokens: u64,
        valid_tokens: u64,
    }
    #[derive(Serialize)]
    struct LockInfo<'a> {
        file: &'static str,
        sha256: &'a str,
    }
    #[derive(Serialize)]
    struct Manifest<'a> {
        format: &'static str,
        version: u32,
        curate_version: &'static str,
        recipe: RecipeInfo<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        lock: Option<LockInfo<'a>>,
        shards: &'a ShardSummary,
        sources: Vec<SourceCount<'a>>,
        files: BTreeMap<&'a str, &'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        compliance: Option<serde_json::Value>,
    }
    let m = Manifest {
        format: "curate-shards",
        version: 1,
        curate_version: env!("CARGO_PKG_VERSION"),
        recipe: RecipeInfo {
            name: &recipe.name,
            file: recipe.path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
            sha256: &recipe.sha256,
            seed: recipe.seed,
        },
        lock: lock_sha256.map(|sha256| LockInfo { file: "curate.lock", sha256 }),
        shards: sh,
        sources: recipe
            .sources
            .iter()
            .zip(stats)
            .zip(&sh.sources)
            .map(|((src, st), t)| SourceCount {
                name: &src.name,
                documents_kept: st.kept().0,
                train_sequences: t.train_sequences,
                train_tokens: t.train_tokens,
                valid_tokens: t.valid_tokens,
            })
            .collect(),
        files: files.iter().map(|(f, h)| (f.as_str(), h.as_str())).collect(),
        compliance: compliance.map(manifest_compliance),
    };
    let mut s = serde_json::to_string_pretty(&m).expect("manifest serialises");
    s.push('\n');
    s
}

/// The manifest's `compliance` section, from the report's: the policy and the target
/// the verdicts were reached for, which base models they allow to train on the shards
/// (`base_models`: the target itself; `base_families`: its family, narrowed by every
/// same-family term such as Llama 2's), and the obligations a trained model inherits,
/// with the files that state them. `curate train` refuses any other base.
pub fn manifest_compliance(report: &serde_json::Value) -> serde_json::Value {
    use serde_json::{Value, json};
    let target = &report["target"];
    let ob = &report["obligations"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default()
    };
    let mut families: Vec<String> = target["family"].as_str().map(|f| vec![f.to_string()]).unwrap_or_default();
    let same_family = ob["same_family"].as_array().cloned().unwrap_or_default();
    for term in &same_family {
        let allowed = strings(&term["families"]);
        if !allowed.is_empty() {
            families.retain(|f| allowed.contains(f));
        }
    }
    json!({
        "policy": report["policy"],
        "verdict": report["verdict"],
        "target": { "model": target["model"], "family": target["family"], "verdict": target["verdict"] },
        "base_models": target["model"].as_str().map(|m| vec![m.to_string()]).unwrap_or_default(),
        "base_families": families,
        "same_family": same_family,
        "license": ob["license"],
        "non_commercial": ob["non_commercial"],
        "use_restrictions": ob["use_restrictions"],
        "attribution": ob["attribution"],
        "files": ["NOTICE", "README.md"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_compliance_narrows_families_by_same_family_terms() {
        let report = serde_json::json!({
            "policy": "p", "verdict": "allow",
            "target": { "model": "meta-llama/Llama-2-7b-hf", "family": "llama-2", "verdict": "allow" },
            "obligations": { "license": "LicenseRef-Llama2-Community", "same_family": [
                { "source": "gen", "families": ["llama-2"], "release_under": ["LicenseRef-Llama2-Community"] }
            ], "non_commercial": [], "use_restrictions": [], "attribution": [] },
        });
        let c = manifest_compliance(&report);
        assert_eq!(c["base_models"], serde_json::json!(["meta-llama/Llama-2-7b-hf"]));
        assert_eq!(c["base_families"], serde_json::json!(["llama-2"]));
        assert_eq!(c["same_family"][0]["source"], "gen");
        let mut other = report.clone();
        other["obligations"]["same_family"][0]["families"] = serde_json::json!(["qwen"]);
        assert_eq!(manifest_compliance(&other)["base_families"], serde_json::json!([]));
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
