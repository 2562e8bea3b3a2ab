//! The finalize task: the output folder, from every task's outputs.
//!
//! Counters are added up in task order; `documents.parquet` is the map tasks'
//! documents without the passes' drops, written row by row (so its bytes do not depend
//! on how the input was cut); `ledger.parquet` is the map tasks' rows, then each pass's,
//! then the tokenize tasks', then mixing's; then the shards, report, card and manifest.
//! Everything is written into the staging folder, which the caller moves into place.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};

use super::plan::{Plan, TaskKind};
use super::tokenize_task::SpillRow;
use super::work::task_dir;
use super::{Env, StageTiming, TaskCounters};
use crate::ledger::{Rule, Stage};
use crate::output::{self, DocumentsWriter, LedgerWriter, Staging};
use crate::recipe::{Recipe, SourceRole};
use crate::report::{self, SourceStats};
use crate::shards::{self, ShardSummary, Spill, TokDoc};
use crate::stages::near_pass::NearSummary;

/// What the finalize task made, for the summary and `timings.json`.
pub struct Finalized {
    pub stats: Vec<SourceStats>,
    pub documents: u64,
    pub ledger_entries: u64,
    pub shards: Option<ShardSummary>,
    /// Every task's clocks, summed per stage, and the finalize task's own.
    pub clocks: Vec<StageTiming>,
    /// What `report.html` shows: report.json's and manifest.json's values.
    pub report: serde_json::Value,
    pub manifest: Option<serde_json::Value>,
}

pub fn run(env: &Env, plan: &Plan, staging: &Staging, compliance: Option<&super::ComplianceOutputs>) -> anyhow::Result<Finalized> {
    let recipe = env.recipe;
    let names: HashMap<&str, usize> = recipe.sources.iter().map(|s| (s.name.as_str(), s.index)).collect();
    let mut stats = env.eval_stats.clone();
    stats.resize(recipe.sources.len(), SourceStats::default());
    for (st, ps) in stats.iter_mut().zip(&plan.sources) {
        st.warnings = ps.warnings.clone();
    }
    let mut clocks: Vec<StageTiming> = Vec::new();
    let mut near_summary: Option<NearSummary> = None;
    for t in plan.phases.iter().flat_map(|p| &p.tasks).filter(|t| t.kind != TaskKind::Finalize) {
        let c = TaskCounters::read(&task_dir(&plan.work, &t.id).join("counters.json"))?;
        for (i, s) in &c.sources {
            stats.get_mut(*i).with_context(|| format!("task `{}` counts a source the recipe lacks", t.id))?.merge(s);
        }
        for ct in c.clocks {
            match clocks.iter_mut().find(|x| x.stage == ct.stage && x.clock == ct.clock) {
                Some(x) => x.seconds += ct.seconds,
                None => clocks.push(ct),
            }
        }
        if t.kind == TaskKind::Near {
            near_summary = Some(serde_json::from_value(c.extra).context("reading the near-dup pass's summary")?);
        }
    }
    for s in recipe.sources.iter().filter(|s| s.role == SourceRole::Train && !plan.sources[s.index].excluded) {
        if stats[s.index].stages.get(Stage::Read.as_str()).map(|c| c.records_in).unwrap_or(0) == 0 {
            let list: Vec<_> = plan.sources[s.index].files.iter().map(|f| format!("`{}`", f.input.display)).collect();
            bail!(
                "source `{}` has no records (read {})\nhint: an empty source is usually a wrong path or an unfinished download",
                s.name,
                list.join(", ")
            );
        }
    }

    // The documents, without what the passes dropped.
    let t = Instant::now();
    let drops = super::passes::all_drops(plan)?;
    let maps = plan.tasks_of(TaskKind::Map);
    let mut docs_out = DocumentsWriter::create(&staging.file("documents.parquet"))?;
    let mut lengths = vec![report::Lengths::default(); recipe.sources.len()];
    for (ti, mt) in maps.iter().enumerate() {
        let dropped = &drops[ti];
        let (mut row, mut next) = (0u32, 0usize);
        crate::output::parquet::read_documents(&task_dir(&plan.work, &mt.id).join("docs.parquet"), &names, true, &mut |doc| {
            let skip = dropped.get(next) == Some(&row);
            if skip {
                next += 1;
            } else {
                docs_out.push(&doc, &recipe.sources[doc.source])?;
                if let Some(l) = lengths.get_mut(doc.source) {
                    l.chars.add(doc.content.chars());
                }
            }
            row += 1;
            Ok(())
        })?;
    }
    let documents = docs_out.finish()?;

    // The ledger, task by task.
    let mut ledger = LedgerWriter::create(&staging.file("ledger.parquet"))?;
    for kind in [TaskKind::Map, TaskKind::Dedup, TaskKind::Near, TaskKind::Tokenize] {
        for task in plan.tasks_of(kind) {
            super::entries::read(&task_dir(&plan.work, &task.id).join("ledger.jsonl"), &mut |e| {
                ledger.push(&e, &recipe.sources[e.source].name)
            })?;
        }
    }
    let write_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let shard_summary = match &env.tokenizer {
        Some(tok) => {
            let spill = spill(plan)?;
            for d in &spill.docs {
                if let Some(l) = lengths.get_mut(d.source) {
                    l.tokens.add(d.tokens as u64);
                }
            }
            Some(shards::write(staging, recipe, tok, spill, &mut ledger, &mut stats)?)
        }
        None => None,
    };
    let shards_s = t.elapsed().as_secs_f64();
    check_training_output(recipe, &stats, documents, shard_summary.as_ref())?;

    let t = Instant::now();
    let ledger_samples = ledger.samples().clone();
    let ledger_entries = ledger.finish()?;
    let compliance_sections = compliance.map(|c| (&c.report_json, c.report_markdown.as_str()));
    let mut eval_report = env.eval.as_ref().map(|e| {
        let mut set_report = e.report.clone();
        crate::stages::eval::fill_contamination(&mut set_report, recipe, &stats);
        set_report
    });
    if let Some(r) = eval_report.as_mut() {
        r.contamination.retain(|_, v| !v.is_empty());
    }
    let extras = report::Extras {
        shards: shard_summary.as_ref(),
        compliance: compliance_sections,
        eval: eval_report.as_ref(),
        near: near_summary.as_ref(),
        lengths: Some(&lengths),
        ledger_samples: Some(&ledger_samples),
    };
    let rendered = report::render(recipe, &stats, ledger_entries, &extras);
    output::write_file(&staging.file("report.json"), rendered.json.as_bytes())?;
    output::write_file(&staging.file("report.md"), rendered.markdown.as_bytes())?;
    for (name, bytes) in compliance.iter().flat_map(|c| &c.files) {
        if name == "README.md" {
            // The card's compliance part is made before the build; what the build
            // made goes in before its list of sources.
            let card = String::from_utf8_lossy(bytes);
            let contents = card_contents(recipe, documents, shard_summary.as_ref(), eval_report.as_ref());
            let card = match card.find("\n## Sources\n") {
                Some(i) => format!("{}\n{contents}{}", &card[..i], &card[i..]),
                None => format!("{card}\n{contents}"),
            };
            output::write_file(&staging.file(name), card.as_bytes())?;
        } else if name == "NOTICE" {
            let mut notice = String::from_utf8_lossy(bytes).into_owned();
            notice.push_str(&changes_made(recipe));
            output::write_file(&staging.file(name), notice.as_bytes())?;
        } else {
            output::write_file(&staging.file(name), bytes)?;
        }
    }
    let mut manifest_json = None;
    if let Some(sh) = &shard_summary {
        let manifest = report::manifest(
            recipe,
            sh,
            &stats,
            &shards::file_hashes(staging.path())?,
            plan.lock_sha256.as_deref(),
            compliance_sections.map(|c| c.0),
        );
        output::write_file(&staging.file("manifest.json"), manifest.as_bytes())?;
        manifest_json = Some(manifest);
    }
    // The page is written last, by the caller, once timings.json exists: it shows the
    // manifest (so the manifest does not hash it) and the timings.
    let report_value: serde_json::Value = serde_json::from_str(&rendered.json).context("reading back report.json")?;
    let manifest_value: Option<serde_json::Value> =
        manifest_json.as_deref().map(serde_json::from_str).transpose().context("reading back manifest.json")?;
    let report_s = t.elapsed().as_secs_f64();
    clocks.push(StageTiming { stage: "write_output".into(), seconds: write_s + report_s, clock: "wall".into() });
    if shard_summary.is_some() {
        clocks.push(StageTiming { stage: "mix_pack_shards".into(), seconds: shards_s, clock: "wall".into() });
    }
    Ok(Finalized { stats, documents, ledger_entries, shards: shard_summary, clocks, report: report_value, manifest: manifest_value })
}

/// The tokenize tasks' spills, as one list of documents in build order.
fn spill(plan: &Plan) -> anyhow::Result<Spill> {
    let mut parts = Vec::new();
    let mut docs = Vec::new();
    for (pi, t) in plan.tasks_of(TaskKind::Tokenize).into_iter().enumerate() {
        let dir = task_dir(&plan.work, &t.id);
        let source = t.source.context("a tokenize task names its source")?;
        parts.push((dir.join("tokens.bin"), dir.join("mask.bin")));
        let index: PathBuf = dir.join("spill.jsonl");
        // Line by line: the index of a large source does not fit in memory as text.
        let file = std::fs::File::open(&index).with_context(|| format!("cannot read `{}`", index.display()))?;
        let mut offset = 0u64;
        // One copy of each file name for all the documents read from it.
        let mut file_name: Option<std::sync::Arc<str>> = None;
        for (i, line) in std::io::BufRead::lines(std::io::BufReader::new(file)).enumerate() {
            let line = line.with_context(|| format!("cannot read `{}`", index.display()))?;
            let r: SpillRow = serde_json::from_str(&line).with_context(|| format!("`{}` line {}", index.display(), i + 1))?;
            let hex = |s: &str| u128::from_str_radix(s, 16).with_context(|| format!("`{}` line {}: bad id", index.display(), i + 1));
            let name = match &file_name {
                Some(f) if **f == *r.file => f.clone(),
                _ => file_name.insert(std::sync::Arc::from(r.file.as_str())).clone(),
            };
            docs.push(TokDoc {
                id: hex(&r.id)?,
                source,
                locator: crate::document::Locator { file: name, row: r.row, sub: r.sub },
                content_hash: hex(&r.hash)?,
                part: pi as u32,
                offset,
                tokens: r.tokens,
                loss: r.loss,
            });
            offset += r.tokens as u64;
        }
    }
    Ok(Spill { parts, docs })
}

/// Fail a build whose training output is empty, or in which the chat template failed
/// on more than `[pack] max_template_errors` of a source's documents: such a build
/// would otherwise finish with exit 0 and shards that hold little or nothing.
fn check_training_output(recipe: &Recipe, stats: &[SourceStats], documents: u64, shards: Option<&ShardSummary>) -> anyhow::Result<()> {
    let limit = recipe.pack.max_template_errors;
    for s in recipe.sources.iter().filter(|s| s.role == SourceRole::Train) {
        let st = &stats[s.index];
        let reached = st.stages.get(Stage::Tokenize.as_str()).map(|c| c.records_in).unwrap_or(0);
        let failed = st.drops.get(Rule::TemplateError.id()).copied().unwrap_or(0);
        if reached > 0 && failed as f64 > limit * reached as f64 {
            bail!(
                "source `{}`: the chat template failed on {failed} of {reached} documents ({:.1}%), more than `[pack] max_template_errors` allows ({:.1}%)\n  the first: {}\nhint: fix the template or the source's `format`/`fields`; a share of bad rows can be accepted by raising `max_template_errors`",
                s.name,
                100.0 * failed as f64 / reached as f64,
                100.0 * limit,
                st.first_template_error.as_deref().unwrap_or("(not recorded)")
            );
        }
    }
    let empty = match shards {
        Some(sh) => sh.train.sequences == 0,
        None => documents == 0,
    };
    if empty {
        let mut drops: std::collections::BTreeMap<&str, u64> = Default::default();
        for st in stats {
            for (rule, n) in &st.drops {
                *drops.entry(rule).or_default() += n;
            }
        }
        let mut top: Vec<(&str, u64)> = drops.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let list: Vec<String> = top.iter().take(4).map(|(r, n)| format!("{r} {n}")).collect();
        let what = if shards.is_some() { "no document reached the training shards" } else { "no document was kept" };
        bail!(
            "the build's training output is empty: {what} (dropped by rule: {})\nhint: the ledger's rules say where the documents went; check the filters, `seq_len` and the template",
            if list.is_empty() { "none".to_string() } else { list.join(", ") }
        );
    }
    Ok(())
}

/// The dataset card's account of the build: its description, what it holds, the
/// evaluation sets it was decontaminated against, and how to load it.
fn card_contents(
    recipe: &Recipe,
    documents: u64,
    shards: Option<&ShardSummary>,
    eval: Option<&crate::stages::eval::EvalReport>,
) -> String {
    use std::fmt::Write as _;
    let n = crate::report::thousands;
    let mut out = String::from("## Contents\n\n");
    if let Some(d) = recipe.description.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        let _ = writeln!(out, "{d}\n");
    }
    out.push_str("| what | count |\n|---|---:|\n");
    let _ = writeln!(out, "| documents (`documents.parquet`) | {} |", n(documents));
    if let Some(sh) = shards {
        let _ = writeln!(out, "| training sequences | {} |", n(sh.train.sequences));
        let _ = writeln!(out, "| training tokens | {} |", n(sh.train.tokens));
        let _ = writeln!(out, "| training tokens with loss | {} |", n(sh.train.loss_tokens));
        let _ = writeln!(out, "| packs of {} tokens | {} |", sh.seq_len, n(sh.train.packs));
        if let Some(v) = &sh.valid {
            let _ = writeln!(out, "| validation sequences | {} |", n(v.sequences));
        }
    }
    out.push_str("\n### Decontamination\n\n");
    match eval {
        Some(e) => {
            let _ = writeln!(
                out,
                "Every training document was checked against these evaluation sets: a document sharing a {}-gram of normalised words with an item (or holding a shorter item whole) was {}.\n",
                e.ngram,
                if e.action == "drop" { "dropped" } else { "flagged in the report" }
            );
            out.push_str("| eval set | benchmark | items indexed | training documents overlapping |\n|---|---|---:|---:|\n");
            for s in &e.sources {
                let hits: u64 = e.contamination.get(&s.benchmark).map(|m| m.values().sum()).unwrap_or(0);
                let _ = writeln!(out, "| {} | {} | {} | {} |", s.source, s.benchmark, n(s.indexed), n(hits));
            }
        }
        None => out.push_str("No evaluation set was given, so the data was not checked for benchmark overlap.\n"),
    }
    out.push_str("\n### Loading\n\n```python\nfrom datasets import load_dataset\n\ndocs = load_dataset(\"parquet\", data_files=\"documents.parquet\", split=\"train\")\n```\n");
    if shards.is_some() {
        out.push_str(
            "\nThe training shards (`train.bin`/`.idx`, Megatron-LM's indexed-dataset format, with `train.loss.*` and `train.packs.npy`) read with numpy alone: `python/curate_shards.py` in curate's repository yields each pack's `input_ids`, `loss_mask` and `position_ids`.\n",
        );
    }
    out
}

/// NOTICE's account of how the sources were changed, from the recipe's stage list (a
/// license such as CC-BY asks that changes be indicated).
fn changes_made(recipe: &Recipe) -> String {
    use crate::ledger::Stage;
    let stages = crate::stages::plan_stages(recipe);
    let mut out = String::from("Changes made\n------------\n");
    let mut line = |s: &str| {
        out.push_str("- ");
        out.push_str(s);
        out.push('\n');
    };
    if recipe.sources.iter().any(|s| s.where_.is_some() || s.sample.is_some() || s.limit.is_some()) {
        line("records were selected (`where`, `sample` or `limit` in the recipe);");
    }
    line("records were mapped to text or chat messages and normalised (Unicode NFC, `\\n` line endings, control characters and surrounding whitespace removed);");
    for s in stages {
        match s {
            Stage::Pii => line("emails, phone numbers, IP addresses and keys were replaced by placeholders (PII redaction);"),
            Stage::Filter => line("documents were filtered by length, emptiness and patterns;"),
            Stage::Quality => line("documents were filtered by quality heuristics (Gopher, repetition, C4, language, chatbot phrases, as the recipe asks);"),
            Stage::Decontam => line("documents overlapping evaluation sets were removed or flagged;"),
            Stage::Dedup => line("exact duplicates were removed;"),
            Stage::NearDedup => line("near-duplicates were removed;"),
            Stage::Tokenize => line("documents were rendered through a chat template, tokenized and packed into training sequences;"),
            Stage::Mix => line("sources were weighted (repeated or subsampled) in the training mix;"),
            _ => {}
        }
    }
    out.push_str("Every removed record is listed, with the rule that removed it, in ledger.parquet.\n");
    out
}
