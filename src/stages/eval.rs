//! Evaluation sets: sources with `role = "eval"` are read before any training source
//! (with the same readers and mapping) and their items indexed for decontamination.
//! They are never written to the outputs nor trained on.

use std::collections::BTreeMap;

use anyhow::{Context, anyhow};
use serde::Serialize;

use crate::ledger::Stage;
use crate::recipe::{OnError, Recipe, SourceRole};
use crate::report::{FileStat, SourceStats};
use crate::source::files::InputFile;
use crate::source::read;
use crate::stages::decontam::{DecontamAction, DecontamConfig, EvalIndex, EvalItem};
use crate::stages::map::{RowOutcome, SourceCtx};
use crate::stages::quality::content_text;

/// One eval source in the report.
#[derive(Debug, Clone, Serialize)]
pub struct EvalSource {
    pub source: String,
    pub benchmark: String,
    /// Documents read from the source.
    pub items: u64,
    /// Items in the index (long enough to match, see `min_item_words`).
    pub indexed: u64,
    /// Items too short to index.
    pub too_short: u64,
    /// Bad records skipped under `on_error = "skip"`.
    pub skipped: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub ngram: usize,
    pub min_item_words: usize,
    pub action: &'static str,
    pub sources: Vec<EvalSource>,
    /// Training documents overlapping each benchmark, per training source.
    pub contamination: BTreeMap<String, BTreeMap<String, u64>>,
}

pub struct EvalSet {
    pub index: EvalIndex,
    pub report: EvalReport,
}

impl EvalSet {
    /// Fill the per-source contamination table from the run's counts.
    pub fn finish(&mut self, recipe: &Recipe, stats: &[SourceStats]) {
        for (src, st) in recipe.sources.iter().zip(stats) {
            for (bench, n) in &st.contamination {
                *self.report.contamination.entry(bench.clone()).or_default().entry(src.name.clone()).or_default() += n;
            }
        }
    }
}

/// Fill a report's per-source contamination table from the run's counts.
pub fn fill_contamination(report: &mut EvalReport, recipe: &Recipe, stats: &[SourceStats]) {
    for (src, st) in recipe.sources.iter().zip(stats) {
        for (bench, n) in &st.contamination {
            *report.contamination.entry(bench.clone()).or_default().entry(src.name.clone()).or_default() += n;
        }
    }
}

pub fn build_index(
    recipe: &Recipe,
    cfg: &DecontamConfig,
    inputs: &[Vec<InputFile>],
    excluded: &[usize],
    stats: &mut [SourceStats],
) -> anyhow::Result<EvalSet> {
    let mut index = EvalIndex::new(cfg);
    let mut sources = Vec::new();
    for source in recipe.sources.iter().filter(|s| s.role == SourceRole::Eval && !excluded.contains(&s.index)) {
        let ctx = SourceCtx { source, seed: recipe.seed };
        let files = &inputs[source.index];
        let st = &mut stats[source.index];
        st.files = files.iter().map(|f| FileStat { file: f.display.clone(), bytes: f.bytes, records: 0 }).collect();
        let mut es = EvalSource {
            source: source.name.clone(),
            benchmark: source.benchmark.clone(),
            items: 0,
            indexed: 0,
            too_short: 0,
            skipped: 0,
        };
        let mut failure: Option<anyhow::Error> = None;
        for (fi, file) in files.iter().enumerate() {
            let mut first = true;
            read::read_file(file, source.max_record_bytes, &mut |mut rec| {
                rec.first = std::mem::take(&mut first);
                st.files[fi].records += 1;
                st.stage(Stage::Read).records_in += 1;
                let bad = |e: &crate::ledger::Entry| {
                    anyhow!(
                        "`{}`: {} ({})\nhint: fix the record, or set `on_error = \"skip\"` on source `{}`",
                        e.locator,
                        e.reason.detail,
                        e.reason.rule.id(),
                        source.name
                    )
                };
                match ctx.process(rec) {
                    RowOutcome::Fatal(m) => {
                        failure = Some(anyhow!(m));
                        return false;
                    }
                    RowOutcome::Bad(e) => {
                        if source.on_error == OnError::Fail {
                            failure = Some(bad(&e));
                            return false;
                        }
                        es.skipped += 1;
                    }
                    RowOutcome::Unselected(_) => {}
                    RowOutcome::Selected { docs, failed } => {
                        st.stage(Stage::Read).records_out += 1;
                        if let Some(e) = failed.first() {
                            if source.on_error == OnError::Fail {
                                failure = Some(bad(e));
                                return false;
                            }
                            es.skipped += failed.len() as u64;
                        }
                        for d in docs {
                            es.items += 1;
                            let item = EvalItem::new(source.benchmark.clone(), d.locator.to_string(), content_text(&d.content));
                            if index.insert(&item) {
                                es.indexed += 1;
                            } else {
                                es.too_short += 1;
                            }
                        }
                    }
                }
                true
            })
            .with_context(|| format!("eval source `{}`", source.name))?;
            if let Some(e) = failure.take() {
                return Err(e.context(format!("eval source `{}`", source.name)));
            }
        }
        if es.items == 0 {
            anyhow::bail!("eval source `{}` has no items\nhint: an empty eval set decontaminates nothing", source.name);
        }
        sources.push(es);
    }
    Ok(EvalSet {
        index,
        report: EvalReport {
            ngram: cfg.ngram,
            min_item_words: cfg.min_item_words,
            action: match cfg.action {
                DecontamAction::Drop => "drop",
                DecontamAction::Flag => "flag",
            },
            sources,
            contamination: BTreeMap::new(),
        },
    })
}
