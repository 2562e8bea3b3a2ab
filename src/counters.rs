//! Counters: what a build counts per source (records and characters in and out of every
//! stage, drops per rule, skipped errors, PII spans, contamination, chatbot phrases).
//!
//! Every stage's counts go through [`SourceStats::enter`], [`SourceStats::leave`] and
//! [`SourceStats::drop`]. Each task of a build counts its own share and saves it
//! ([`SourceStats::to_json`]); the shares are added up in task order
//! ([`SourceStats::merge`]), so the totals do not depend on how the work was cut.

use std::collections::BTreeMap;

use anyhow::{Context, anyhow};
use serde::{Deserialize, Serialize};

use crate::ledger::{Rule, Stage};
use crate::stages::quality::PiiCounts;

/// Records and characters entering and leaving one stage. The read stage counts raw
/// records and has no character counts (records are not text yet); the map stage turns
/// records into documents (self-instruct rows yield several).
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct StageCount {
    pub records_in: u64,
    pub records_out: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chars_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chars_out: Option<u64>,
}

impl StageCount {
    pub fn add(&mut self, o: &StageCount) {
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
    /// PII spans replaced, per kind.
    #[serde(skip)]
    pub pii: crate::stages::quality::PiiCounts,
    /// Documents overlapping each benchmark (dropped or flagged).
    pub contamination: BTreeMap<String, u64>,
    /// Documents the quality stage looked at, and those with a chatbot phrase.
    pub quality_checked: u64,
    pub ai_phrase_docs: u64,
    /// The first document the chat template failed on, and why (for the error that a
    /// failing template raises).
    #[serde(skip)]
    pub first_template_error: Option<String>,
    /// Findings about the source's files (a folder that links back into itself).
    #[serde(skip)]
    pub warnings: Vec<String>,
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

    /// Documents and characters in `documents.parquet`: what left the last document
    /// stage that ran.
    pub fn kept(&self) -> (u64, u64) {
        // The document stages before tokenizing, last first.
        let before = Stage::ALL.iter().position(|s| *s == Stage::Tokenize).expect("tokenize is a stage");
        let map = Stage::ALL.iter().position(|s| *s == Stage::Map).expect("map is a stage");
        Stage::ALL[map + 1..before]
            .iter()
            .rev()
            .find_map(|s| self.stages.get(s.as_str()))
            .map(|c| (c.records_out, c.chars_out.unwrap_or(0)))
            .unwrap_or((0, 0))
    }
}


impl SourceStats {
    /// A document (or record, for the read stage) enters `stage`.
    pub fn enter(&mut self, stage: Stage, chars: Option<u64>) {
        let c = self.stage(stage);
        c.records_in += 1;
        if let Some(n) = chars {
            *c.chars_in.get_or_insert(0) += n;
            c.chars_out.get_or_insert(0);
        }
    }

    /// A document leaves `stage` kept, with `chars` characters (after any change).
    pub fn leave(&mut self, stage: Stage, chars: Option<u64>) {
        let c = self.stage(stage);
        c.records_out += 1;
        if let Some(n) = chars {
            *c.chars_out.get_or_insert(0) += n;
        }
    }

    /// Add another share of the same source's counts (a later task's).
    pub fn merge(&mut self, o: &SourceStats) {
        for f in &o.files {
            match self.files.iter_mut().find(|x| x.file == f.file) {
                Some(x) => x.records += f.records,
                None => self.files.push(f.clone()),
            }
        }
        for (k, v) in &o.stages {
            self.stages.entry(k).or_default().add(v);
        }
        for (k, v) in &o.drops {
            *self.drops.entry(k).or_default() += v;
        }
        self.errors_skipped += o.errors_skipped;
        self.limit_reached |= o.limit_reached;
        self.pii.add(&o.pii);
        for (k, v) in &o.contamination {
            *self.contamination.entry(k.clone()).or_default() += v;
        }
        self.quality_checked += o.quality_checked;
        self.ai_phrase_docs += o.ai_phrase_docs;
        if self.first_template_error.is_none() {
            self.first_template_error = o.first_template_error.clone();
        }
        for w in &o.warnings {
            if !self.warnings.contains(w) {
                self.warnings.push(w.clone());
            }
        }
    }

    /// Everything counted, for a task's saved counters.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "files": self.files,
            "stages": self.stages,
            "drops": self.drops,
            "errors_skipped": self.errors_skipped,
            "limit_reached": self.limit_reached,
            "pii": [self.pii.secret, self.pii.email, self.pii.ipv6, self.pii.ipv4, self.pii.phone],
            "contamination": self.contamination,
            "quality_checked": self.quality_checked,
            "ai_phrase_docs": self.ai_phrase_docs,
            "first_template_error": self.first_template_error,
            "warnings": self.warnings,
        })
    }

    /// Read back what [`SourceStats::to_json`] wrote.
    pub fn from_json(v: &serde_json::Value) -> anyhow::Result<SourceStats> {
        #[derive(Deserialize)]
        struct Saved {
            files: Vec<FileStat>,
            stages: BTreeMap<String, StageCount>,
            drops: BTreeMap<String, u64>,
            errors_skipped: u64,
            limit_reached: bool,
            pii: [u64; 5],
            contamination: BTreeMap<String, u64>,
            quality_checked: u64,
            ai_phrase_docs: u64,
            first_template_error: Option<String>,
            warnings: Vec<String>,
        }
        let s: Saved = serde_json::from_value(v.clone()).context("reading saved counters")?;
        let mut stages = BTreeMap::new();
        for (k, c) in s.stages {
            let st = Stage::parse(&k).ok_or_else(|| anyhow!("saved counters name an unknown stage `{k}`"))?;
            stages.insert(st.as_str(), c);
        }
        let mut drops = BTreeMap::new();
        for (k, n) in s.drops {
            let r = Rule::parse(&k).ok_or_else(|| anyhow!("saved counters name an unknown rule `{k}`"))?;
            drops.insert(r.id(), n);
        }
        let [secret, email, ipv6, ipv4, phone] = s.pii;
        Ok(SourceStats {
            files: s.files,
            stages,
            drops,
            errors_skipped: s.errors_skipped,
            limit_reached: s.limit_reached,
            pii: PiiCounts { secret, email, ipv6, ipv4, phone },
            contamination: s.contamination,
            quality_checked: s.quality_checked,
            ai_phrase_docs: s.ai_phrase_docs,
            first_template_error: s.first_template_error,
            warnings: s.warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_counters_read_back_equal_and_merge_adds() {
        let mut a = SourceStats::default();
        a.files.push(FileStat { file: "f".into(), bytes: 10, records: 2 });
        a.enter(Stage::Filter, Some(10));
        a.leave(Stage::Filter, Some(10));
        a.enter(Stage::Filter, Some(5));
        a.drop(Rule::MinChars);
        a.pii.email = 3;
        a.contamination.insert("gsm8k".into(), 1);
        a.first_template_error = Some("x".into());
        let back = SourceStats::from_json(&a.to_json()).unwrap();
        assert_eq!(back.to_json(), a.to_json());
        let mut m = back.clone();
        m.merge(&a);
        assert_eq!(m.files[0].records, 4);
        assert_eq!(m.stages["filter"], StageCount { records_in: 4, records_out: 2, chars_in: Some(30), chars_out: Some(20) });
        assert_eq!(m.drops["filter.min_chars"], 2);
        assert_eq!(m.pii.email, 6);
        assert!(SourceStats::from_json(&serde_json::json!({"stages": {"nope": {}}})).is_err());
    }
}
