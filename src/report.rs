//! The run report: the funnel per source and per stage (records and characters in and
//! out), drop counts per rule, and the provenance each source declared. Written as
//! `report.json` (for tools) and `report.md` (for people), both deterministic: the same
//! recipe and inputs give the same bytes whatever the thread count. Timings, which are
//! not deterministic, go to `timings.json` instead.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::ledger::{Rule, Stage};
use crate::recipe::{Recipe, Source};
use crate::shards::ShardSummary;

/// Records and characters entering and leaving one stage. The read stage counts raw
/// records and has no character counts (records are not text yet); the map stage turns
/// records into documents (self-instruct rows yield several).
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct StageCount {
    pub records_in: u64,
    pub records_out: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chars_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chars_out: Option<u64>,
}

impl StageCount {
    fn add(&mut self, o: &StageCount) {
        self.records_in += o.records_in;
        self.records_out += o.records_out;
        if let Some(c) = o.chars_in {
            *self.chars_in.get_or_insert(0) += c;
        }
        if let Some(c) = o.chars_out {
            *self.chars_out.get_or_insert(0) += c;
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FileStat {
    pub file: String,
    pub bytes: u64,
    pub records: u64,
}

/// Everything counted for one source during a run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SourceStats {
    pub files: Vec<FileStat>,
    pub stages: BTreeMap<&'static str, StageCount>,
    /// Drops per rule id.
    pub drops: BTreeMap<&'static str, u64>,
    /// Bad records ledgered because the source says `on_error = "skip"`.
    pub errors_skipped: u64,
    /// The source's `limit` was reached; the rest of it was not read.
    pub limit_reached: bool,
}

impl SourceStats {
    pub fn stage(&mut self, s: Stage) -> &mut StageCount {
        self.stages.entry(s.as_str()).or_default()
    }

    pub fn drop(&mut self, r: Rule) {
        *self.drops.entry(r.id()).or_default() += 1;
        if r.is_bad_input() {
            self.errors_skipped += 1;
        }
    }

    pub fn kept(&self) -> (u64, u64) {
        self.stages
            .get(Stage::Dedup.as_str())
            .or_else(|| self.stages.get(Stage::Filter.as_str()))
            .map(|c| (c.records_out, c.chars_out.unwrap_or(0)))
            .unwrap_or((0, 0))
    }
}

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
    records_read: u64,
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
    files: &'a [FileStat],
}

fn funnel(stages: &BTreeMap<&'static str, StageCount>) -> Vec<FunnelRow> {
    Stage::ALL
        .iter()
        .filter_map(|s| stages.get(s.as_str()).map(|c| FunnelRow { stage: s.as_str(), count: *c }))
        .collect()
}

/// The finished report, ready to be written.
pub struct Rendered {
    pub json: String,
    pub markdown: String,
}

/// `shards`: the shard summary when a tokenizer wrote shards; `compliance`: the
/// compliance section (JSON value, Markdown) when the recipe has a policy.
pub fn render(
    recipe: &Recipe,
    stats: &[SourceStats],
    ledger_entries: u64,
    shards: Option<&ShardSummary>,
    compliance: Option<(&serde_json::Value, &str)>,
) -> Rendered {
    let mut total_stages: BTreeMap<&'static str, StageCount> = BTreeMap::new();
    let mut drops: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut totals = Totals { records_read: 0, documents_kept: 0, chars_kept: 0, ledger_entries, errors_skipped: 0 };
    let mut sources = Vec::new();
    for (src, st) in recipe.sources.iter().zip(stats) {
        for (k, c) in &st.stages {
            total_stages.entry(k).or_default().add(c);
        }
        for (k, n) in &st.drops {
            *drops.entry(k).or_default() += n;
        }
        let (kept, chars) = st.kept();
        totals.records_read += st.stages.get("read").map(|c| c.records_in).unwrap_or(0);
        totals.documents_kept += kept;
        totals.chars_kept += chars;
        totals.errors_skipped += st.errors_skipped;
        sources.push(source_report(src, st));
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
        funnel: funnel(&total_stages),
        drops,
        sources,
        shards,
        compliance: compliance.map(|c| c.0),
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

fn source_report<'a>(src: &'a Source, st: &'a SourceStats) -> SourceReport<'a> {
    let (kept, chars) = st.kept();
    SourceReport {
        name: &src.name,
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
        funnel: funnel(&st.stages),
        drops: &st.drops,
        errors_skipped: st.errors_skipped,
        limit_reached: st.limit_reached,
        files: &st.files,
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
        if i > 0 && (s.len() - i) % 3 == 0 {
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
        "**{} documents kept** ({} characters) from {} records read; {} records ledgered, {} of them bad input skipped under `on_error = \"skip\"`.\n",
        thousands(t.documents_kept),
        thousands(t.chars_kept),
        thousands(t.records_read),
        thousands(t.ledger_entries),
        thousands(t.errors_skipped)
    );
    out.push_str("## Funnel, all sources\n\n");
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
/// sha256 of every other output file.
pub fn manifest(recipe: &Recipe, sh: &ShardSummary, stats: &[SourceStats], files: &[(String, String)]) -> String {
    #[derive(Serialize)]
    struct SourceCount<'a> {
        name: &'a str,
        documents_kept: u64,
        train_sequences: u64,
        train_tokens: u64,
        valid_tokens: u64,
    }
    #[derive(Serialize)]
    struct Manifest<'a> {
        format: &'static str,
        version: u32,
        curate_version: &'static str,
        recipe: RecipeInfo<'a>,
        shards: &'a ShardSummary,
        sources: Vec<SourceCount<'a>>,
        files: BTreeMap<&'a str, &'a str>,
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
    };
    let mut s = serde_json::to_string_pretty(&m).expect("manifest serialises");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
