//! Raw recipe types: a faithful mirror of the TOML file. Nothing here is checked beyond
//! its TOML type; `super::validate` turns these into the checked [`super::Recipe`].
//!
//! Unknown keys are not rejected by serde here: they are collected all at once by
//! `serde_ignored` in the loader, so that every typo in a recipe is reported in one go
//! with its line and the nearest known key.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
pub struct RawRecipe {
    pub recipe: Option<RawMeta>,
    pub target: Option<RawTarget>,
    pub policy: Option<RawPolicy>,
    #[serde(default, rename = "source")]
    pub sources: Vec<RawSource>,
    pub filters: Option<RawFilters>,
    pub dedup: Option<RawDedup>,
    pub decontaminate: Option<RawDecontaminate>,
    pub pack: Option<RawPack>,
    pub output: Option<RawOutput>,
    /// `[train]`: see `super::train`.
    pub train: Option<super::train::RawTrain>,
}

/// The model these data will train, and how documents become its tokens.
#[derive(Debug, Default, Deserialize)]
pub struct RawTarget {
    /// The base model id (judged by the compliance stage).
    pub model: Option<String>,
    /// A local `tokenizer.json` (with `tokenizer_config.json` beside it when present),
    /// or `hf:<model id>`, optionally `@<revision>`.
    pub tokenizer: Option<String>,
    pub template: Option<String>,
    pub seq_len: Option<u64>,
    /// Override the BOS / EOS tokens read from the tokenizer's config.
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    /// Name the model's family when its id matches none in `licenses/models.toml`
    /// (a re-upload of an approved base), with the reason.
    #[serde(rename = "override")]
    pub override_: Option<RawTargetOverride>,
}

/// `[target] override = { family = "mistral", reason = "..." }`.
#[derive(Debug, Default, Deserialize)]
pub struct RawTargetOverride {
    pub family: Option<String>,
    pub reason: Option<String>,
}

/// Which compliance policy judges the sources.
#[derive(Debug, Default, Deserialize)]
pub struct RawPolicy {
    #[serde(rename = "use")]
    pub use_: Option<String>,
    /// A Data Provenance Initiative collection (its root folder) to cross-check.
    pub dpi: Option<String>,
    /// `[[policy.signoff]]`: conditional rules the recipe's authors accept, with a reason.
    #[serde(default)]
    pub signoff: Vec<RawSignoff>,
}

/// One recorded sign-off of a conditional rule.
#[derive(Debug, Default, Deserialize)]
pub struct RawSignoff {
    pub rule: Option<String>,
    /// The source it applies to; left out for target rules.
    pub source: Option<String>,
    pub by: Option<String>,
    pub reason: Option<String>,
}

/// `override = { license = "...", origin = "...", generated_by = [...], reason = "..." }`:
/// facts that replace what is known about a source, each use of which names its reason.
#[derive(Debug, Default, Deserialize)]
pub struct RawOverride {
    pub license: Option<String>,
    pub origin: Option<String>,
    pub generated_by: Option<Vec<String>>,
    pub reason: Option<String>,
}

/// Packing tokenized documents into training sequences.
#[derive(Debug, Default, Deserialize)]
pub struct RawPack {
    /// `best-fit` (best-fit-decreasing, documents never split) or `concat`.
    pub method: Option<String>,
    /// What to do with a document longer than `seq_len`: `drop` or `truncate`.
    pub overlong: Option<String>,
    pub shuffle: Option<bool>,
    /// Fraction of documents held out as the validation split.
    pub valid_fraction: Option<f64>,
    /// Largest share of a source's documents the template may fail on.
    pub max_template_errors: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawMeta {
    pub name: Option<String>,
    pub seed: Option<u64>,
    pub description: Option<String>,
}

/// `path = "x.jsonl"` or `path = ["a.jsonl", "b/*.jsonl"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct RawSource {
    pub name: Option<String>,
    /// Hugging Face hub id (`org/name`): identifies the dataset (for compliance) and,
    /// without `path`, is where its files are fetched from.
    pub hf: Option<String>,
    /// The branch, tag or commit of the hub dataset (default `main`).
    pub revision: Option<String>,
    /// The split and config of the hub dataset the source reads.
    pub split: Option<String>,
    pub config: Option<String>,
    /// One file fetched over HTTP(S), optionally checked against `sha256`.
    pub url: Option<String>,
    pub sha256: Option<String>,
    pub path: Option<OneOrMany>,
    pub reader: Option<String>,
    pub format: Option<String>,
    pub fields: Option<RawFields>,
    /// Role name mapping for chat sources, e.g. `{ human = "user", gpt = "assistant" }`.
    pub roles: Option<BTreeMap<String, String>>,
    pub license: Option<String>,
    pub origin: Option<String>,
    pub generated_by: Option<Vec<String>>,
    #[serde(rename = "override")]
    pub override_: Option<RawOverride>,
    #[serde(rename = "where")]
    pub where_: Option<String>,
    pub limit: Option<u64>,
    pub sample: Option<f64>,
    pub priority: Option<i64>,
    pub on_error: Option<String>,
    pub max_record_bytes: Option<u64>,
    /// Mixing: 0.5 keeps a seeded half of the documents, 3 repeats each three times.
    pub weight: Option<f64>,
    /// Mixing: at most this many tokens from the source (after `weight`).
    pub max_tokens: Option<u64>,
    /// `train` (default) or `eval`: an evaluation set, never trained on, that training
    /// documents are decontaminated against.
    pub role: Option<String>,
    /// The benchmark an eval source holds (default: the source's name).
    pub benchmark: Option<String>,
}

/// Column names to read each part of a document from. Which ones apply depends on the
/// source's `format`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawFields {
    pub text: Option<String>,
    pub instruction: Option<String>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub system: Option<String>,
    pub instances: Option<String>,
    pub messages: Option<String>,
    pub role: Option<String>,
    pub content: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawFilters {
    pub min_chars: Option<u64>,
    pub max_chars: Option<u64>,
    pub min_words: Option<u64>,
    pub max_words: Option<u64>,
    pub drop_regex: Option<Vec<String>>,
    pub keep_regex: Option<Vec<String>>,
    /// Quality presets: any of `gopher`, `repetition`, `c4`.
    pub quality: Option<Vec<String>>,
    pub language: Option<RawLanguage>,
    /// The chatbot-phrase detector: `drop`, `flag` or `off`.
    pub ai_phrases: Option<String>,
    /// PII redaction: `redact` or `off`.
    pub pii: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawDedup {
    pub exact: Option<bool>,
    /// MinHash near-dedup; `near = {}` turns it on with the defaults.
    pub near: Option<RawNear>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawNear {
    pub ngram: Option<u64>,
    pub bands: Option<u64>,
    pub rows: Option<u64>,
    pub threshold: Option<f64>,
    pub seed: Option<u64>,
    pub confirm: Option<bool>,
}

/// Benchmark decontamination against the recipe's `role = "eval"` sources.
#[derive(Debug, Default, Deserialize)]
pub struct RawDecontaminate {
    pub ngram: Option<u64>,
    pub min_item_words: Option<u64>,
    /// `drop` or `flag`.
    pub action: Option<String>,
    /// A HELM run-spec file (`run_specs.conf`): its benchmarks become eval sources
    /// fetched from the hub.
    pub helm: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawLanguage {
    pub allowed: Option<Vec<String>>,
    pub min_confidence: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawOutput {
    pub dir: Option<String>,
}

/// The field names serde expects for a struct type, read through a deserializer that
/// records them. Used to suggest the nearest key for a typo without keeping a second
/// list of keys by hand.
pub fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    use serde::de::{self, Visitor};
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> de::Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("probe"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _v: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("probe"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

/// Known keys of the table at a key path (`["source", "fields"]`), for suggestions.
pub fn known_keys(table_path: &[&str]) -> &'static [&'static str] {
    match table_path {
        [] => fields_of::<RawRecipe>(),
        ["recipe"] => fields_of::<RawMeta>(),
        ["target"] => fields_of::<RawTarget>(),
        ["target", "override"] => fields_of::<RawTargetOverride>(),
        ["policy"] => fields_of::<RawPolicy>(),
        ["policy", "signoff"] => fields_of::<RawSignoff>(),
        ["pack"] => fields_of::<RawPack>(),
        ["source"] => fields_of::<RawSource>(),
        ["source", "fields"] => fields_of::<RawFields>(),
        ["source", "override"] => fields_of::<RawOverride>(),
        ["filters"] => fields_of::<RawFilters>(),
        ["dedup"] => fields_of::<RawDedup>(),
        ["dedup", "near"] => fields_of::<RawNear>(),
        ["decontaminate"] => fields_of::<RawDecontaminate>(),
        ["filters", "language"] => fields_of::<RawLanguage>(),
        ["output"] => fields_of::<RawOutput>(),
        ["train"] => fields_of::<super::train::RawTrain>(),
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reads_serde_field_names() {
        let f = fields_of::<RawSource>();
        assert!(f.contains(&"where"), "renamed field is listed by its TOML name: {f:?}");
        assert!(f.contains(&"fields"));
        assert!(!f.contains(&"where_"));
    }
}
