//! Ledger rows between tasks: one JSON object per line, in the order the task found
//! them; the finalize task copies them, task by task, into `ledger.parquet`.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, anyhow};
use serde::{Deserialize, Serialize};

use crate::document::Locator;
use crate::hash::hex128;
use crate::ledger::{DropReason, Entry, Rule};

#[derive(Serialize, Deserialize)]
struct Row {
    id: String,
    source: usize,
    file: String,
    row: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    sub: Option<u32>,
    rule: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    value: Option<f64>,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    duplicate_of: Option<String>,
}

pub struct EntryWriter {
    w: BufWriter<File>,
    path: std::path::PathBuf,
    rows: u64,
}

impl EntryWriter {
    pub fn create(path: &Path) -> anyhow::Result<EntryWriter> {
        let f = File::create(path).with_context(|| format!("cannot create `{}`", path.display()))?;
        Ok(EntryWriter { w: BufWriter::with_capacity(1 << 16, f), path: path.to_path_buf(), rows: 0 })
    }

    pub fn push(&mut self, e: &Entry) -> anyhow::Result<()> {
        let row = Row {
            id: hex128(e.doc_id),
            source: e.source,
            file: e.locator.file.to_string(),
            row: e.locator.row,
            sub: e.locator.sub,
            rule: e.reason.rule.id().to_string(),
            value: e.reason.value,
            detail: e.reason.detail.clone(),
            duplicate_of: e.reason.duplicate_of.map(hex128),
        };
        serde_json::to_writer(&mut self.w, &row).context("writing a ledger row")?;
        self.w.write_all(b"\n").with_context(|| format!("cannot write `{}`", self.path.display()))?;
        self.rows += 1;
        Ok(())
    }

    pub fn finish(mut self) -> anyhow::Result<u64> {
        self.w.flush().with_context(|| format!("cannot write `{}`", self.path.display()))?;
        Ok(self.rows)
    }
}

fn parse_hex(s: &str) -> anyhow::Result<u128> {
    u128::from_str_radix(s, 16).map_err(|_| anyhow!("bad id `{s}`"))
}

/// Call `f` with every entry of a task's ledger file, in order.
pub fn read(path: &Path, f: &mut dyn FnMut(Entry) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let file = File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read `{}`", path.display()))?;
        let r: Row = serde_json::from_str(&line).with_context(|| format!("`{}` line {} is not a ledger row", path.display(), i + 1))?;
        let rule = Rule::parse(&r.rule).ok_or_else(|| anyhow!("`{}` line {}: unknown rule `{}`", path.display(), i + 1, r.rule))?;
        let mut reason = DropReason::new(rule, r.value, r.detail);
        reason.duplicate_of = r.duplicate_of.as_deref().map(parse_hex).transpose()?;
        f(Entry {
            doc_id: parse_hex(&r.id)?,
            source: r.source,
            locator: Locator { file: r.file.into(), row: r.row, sub: r.sub },
            reason,
        })?;
    }
    Ok(())
}
