//! The ledger: one entry for every record that does not go on, with the stage and rule
//! that stopped it, the measured value and a detail a person can check.
//!
//! Drop reasons are a closed enum with stable string ids (`filter.min_chars`,
//! `dedup.exact`, …), documented in `docs/outputs.md`; nothing is dropped without one.

use crate::document::Locator;

/// The stages of a build, in execution order: this is the order a document meets
/// them, the order of the report's funnel and of the ledger's stages. Which of them a
/// recipe runs is [`crate::stages::plan_stages`]; nothing else lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    Read,
    Select,
    Map,
    /// PII redaction: changes documents, never drops one.
    Pii,
    Filter,
    /// Quality presets, language identification and the chatbot-output detector.
    Quality,
    Decontam,
    /// MinHash band hashes for near-dedup: changes nothing, drops nothing.
    MinHash,
    Dedup,
    NearDedup,
    Tokenize,
    Mix,
}

impl Stage {
    pub const ALL: [Stage; 12] = [
        Stage::Read,
        Stage::Select,
        Stage::Map,
        Stage::Pii,
        Stage::Filter,
        Stage::Quality,
        Stage::Decontam,
        Stage::MinHash,
        Stage::Dedup,
        Stage::NearDedup,
        Stage::Tokenize,
        Stage::Mix,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Read => "read",
            Stage::Select => "select",
            Stage::Map => "map",
            Stage::Pii => "pii",
            Stage::Filter => "filter",
            Stage::Quality => "quality",
            Stage::Decontam => "decontam",
            Stage::MinHash => "minhash",
            Stage::Dedup => "dedup",
            Stage::NearDedup => "near_dedup",
            Stage::Tokenize => "tokenize",
            Stage::Mix => "mix",
        }
    }

    /// The stage named `s` (as [`Stage::as_str`] writes it).
    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// Why a record was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// The record is not valid JSON (or not an object where one is needed).
    Malformed,
    /// The record's bytes are not valid UTF-8.
    InvalidUtf8,
    /// The record is larger than the source's `max_record_bytes`.
    TooLarge,
    /// A mapped field is absent or null.
    MissingField,
    /// A mapped field has the wrong type (e.g. a number where text is expected).
    WrongType,
    /// A chat message has a role the source does not map.
    UnknownRole,
    /// The source's `where` expression is not true for the record.
    Where,
    /// The record fell outside the seeded `sample` fraction.
    Sample,
    /// Nothing but whitespace (or, for chats and instructions, no response).
    Empty,
    MinChars,
    MaxChars,
    MinWords,
    MaxWords,
    /// A `drop_regex` pattern matched.
    DropRegex,
    /// No `keep_regex` pattern matched.
    KeepRegex,
    /// The same normalised content was kept from an earlier (or higher-priority) source.
    ExactDuplicate,
    /// Gopher quality: word count outside 50..=100,000.
    GopherWordCount,
    /// Gopher quality: mean word length outside 3..=10 characters.
    GopherMeanWordLength,
    /// Gopher quality: `#` symbols per word above 0.1.
    GopherHashRatio,
    /// Gopher quality: ellipses per word above 0.1.
    GopherEllipsisRatio,
    /// Gopher quality: more than 90% of lines start with a bullet.
    GopherBulletLines,
    /// Gopher quality: more than 30% of lines end with an ellipsis.
    GopherEllipsisLines,
    /// Gopher quality: fewer than 80% of words contain a letter.
    GopherAlphaWords,
    /// Gopher quality: fewer than two of the English stop words.
    GopherStopWords,
    /// Gopher repetition: fraction of duplicate lines.
    RepetitionDupLines,
    /// Gopher repetition: fraction of duplicate paragraphs.
    RepetitionDupParagraphs,
    /// Gopher repetition: fraction of characters in duplicate lines.
    RepetitionDupLineChars,
    /// Gopher repetition: fraction of characters in duplicate paragraphs.
    RepetitionDupParagraphChars,
    /// Gopher repetition: characters in the most frequent 2-, 3- or 4-gram.
    RepetitionTopNgram,
    /// Gopher repetition: characters in repeated 5- to 10-grams.
    RepetitionDupNgram,
    /// C4: the page contains "lorem ipsum".
    C4LoremIpsum,
    /// C4: the page contains a curly bracket.
    C4CurlyBracket,
    /// C4: fewer than 3 sentences left after C4's line rules.
    C4TooFewSentences,
    /// The detected language is not an allowed one, with enough confidence.
    Language,
    /// A phrase typical of chatbot output ("As an AI language model").
    AiPhrases,
    /// In a cluster of near-duplicates whose kept document came first.
    NearDuplicate,
    /// Shares an n-gram with an evaluation item.
    Contaminated,
    /// The template could not render the document (a Jinja template that raised).
    TemplateError,
    /// Longer than `seq_len` tokens under `overlong = "drop"`.
    Overlong,
    /// Longer than `seq_len` tokens and cut to it under `overlong = "truncate"`: the
    /// document goes on, shortened; ledgered so the cut is visible.
    Truncated,
    /// The source's `weight` left this document no copy.
    MixWeight,
    /// The source's `max_tokens` cap was reached before this document.
    MixTokenCap,
}

impl Rule {
    pub const ALL: [Rule; 42] = [
        Rule::Malformed,
        Rule::InvalidUtf8,
        Rule::TooLarge,
        Rule::MissingField,
        Rule::WrongType,
        Rule::UnknownRole,
        Rule::Where,
        Rule::Sample,
        Rule::Empty,
        Rule::MinChars,
        Rule::MaxChars,
        Rule::MinWords,
        Rule::MaxWords,
        Rule::DropRegex,
        Rule::KeepRegex,
        Rule::ExactDuplicate,
        Rule::GopherWordCount,
        Rule::GopherMeanWordLength,
        Rule::GopherHashRatio,
        Rule::GopherEllipsisRatio,
        Rule::GopherBulletLines,
        Rule::GopherEllipsisLines,
        Rule::GopherAlphaWords,
        Rule::GopherStopWords,
        Rule::RepetitionDupLines,
        Rule::RepetitionDupParagraphs,
        Rule::RepetitionDupLineChars,
        Rule::RepetitionDupParagraphChars,
        Rule::RepetitionTopNgram,
        Rule::RepetitionDupNgram,
        Rule::C4LoremIpsum,
        Rule::C4CurlyBracket,
        Rule::C4TooFewSentences,
        Rule::Language,
        Rule::AiPhrases,
        Rule::NearDuplicate,
        Rule::Contaminated,
        Rule::TemplateError,
        Rule::Overlong,
        Rule::Truncated,
        Rule::MixWeight,
        Rule::MixTokenCap,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Rule::Malformed => "read.malformed",
            Rule::InvalidUtf8 => "read.invalid_utf8",
            Rule::TooLarge => "read.too_large",
            Rule::MissingField => "map.missing_field",
            Rule::WrongType => "map.wrong_type",
            Rule::UnknownRole => "map.unknown_role",
            Rule::Where => "select.where",
            Rule::Sample => "select.sample",
            Rule::Empty => "filter.empty",
            Rule::MinChars => "filter.min_chars",
            Rule::MaxChars => "filter.max_chars",
            Rule::MinWords => "filter.min_words",
            Rule::MaxWords => "filter.max_words",
            Rule::DropRegex => "filter.drop_regex",
            Rule::KeepRegex => "filter.keep_regex",
            Rule::ExactDuplicate => "dedup.exact",
            Rule::GopherWordCount => "quality.gopher_word_count",
            Rule::GopherMeanWordLength => "quality.gopher_mean_word_length",
            Rule::GopherHashRatio => "quality.gopher_hash_ratio",
            Rule::GopherEllipsisRatio => "quality.gopher_ellipsis_ratio",
            Rule::GopherBulletLines => "quality.gopher_bullet_lines",
            Rule::GopherEllipsisLines => "quality.gopher_ellipsis_lines",
            Rule::GopherAlphaWords => "quality.gopher_alpha_words",
            Rule::GopherStopWords => "quality.gopher_stop_words",
            Rule::RepetitionDupLines => "quality.repetition_dup_lines",
            Rule::RepetitionDupParagraphs => "quality.repetition_dup_paragraphs",
            Rule::RepetitionDupLineChars => "quality.repetition_dup_line_chars",
            Rule::RepetitionDupParagraphChars => "quality.repetition_dup_paragraph_chars",
            Rule::RepetitionTopNgram => "quality.repetition_top_ngram",
            Rule::RepetitionDupNgram => "quality.repetition_dup_ngram",
            Rule::C4LoremIpsum => "quality.c4_lorem_ipsum",
            Rule::C4CurlyBracket => "quality.c4_curly_bracket",
            Rule::C4TooFewSentences => "quality.c4_too_few_sentences",
            Rule::Language => "quality.language",
            Rule::AiPhrases => "quality.ai_phrases",
            Rule::NearDuplicate => "near_dedup.minhash",
            Rule::Contaminated => "decontam.ngram",
            Rule::TemplateError => "tokenize.template",
            Rule::Overlong => "tokenize.overlong",
            Rule::Truncated => "tokenize.truncated",
            Rule::MixWeight => "mix.weight",
            Rule::MixTokenCap => "mix.token_cap",
        }
    }

    pub fn stage(self) -> Stage {
        match self {
            Rule::Malformed | Rule::InvalidUtf8 | Rule::TooLarge => Stage::Read,
            Rule::MissingField | Rule::WrongType | Rule::UnknownRole => Stage::Map,
            Rule::Where | Rule::Sample => Stage::Select,
            Rule::Empty
            | Rule::MinChars
            | Rule::MaxChars
            | Rule::MinWords
            | Rule::MaxWords
            | Rule::DropRegex
            | Rule::KeepRegex => Stage::Filter,
            Rule::ExactDuplicate => Stage::Dedup,
            Rule::GopherWordCount
            | Rule::GopherMeanWordLength
            | Rule::GopherHashRatio
            | Rule::GopherEllipsisRatio
            | Rule::GopherBulletLines
            | Rule::GopherEllipsisLines
            | Rule::GopherAlphaWords
            | Rule::GopherStopWords
            | Rule::RepetitionDupLines
            | Rule::RepetitionDupParagraphs
            | Rule::RepetitionDupLineChars
            | Rule::RepetitionDupParagraphChars
            | Rule::RepetitionTopNgram
            | Rule::RepetitionDupNgram
            | Rule::C4LoremIpsum
            | Rule::C4CurlyBracket
            | Rule::C4TooFewSentences
            | Rule::Language
            | Rule::AiPhrases => Stage::Quality,
            Rule::NearDuplicate => Stage::NearDedup,
            Rule::Contaminated => Stage::Decontam,
            Rule::TemplateError | Rule::Overlong | Rule::Truncated => Stage::Tokenize,
            Rule::MixWeight | Rule::MixTokenCap => Stage::Mix,
        }
    }

    /// The rule whose id is `s`.
    pub fn parse(s: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.id() == s)
    }

    /// Bad-input rules: these stop the run unless the source says `on_error = "skip"`.
    pub fn is_bad_input(self) -> bool {
        matches!(self.stage(), Stage::Read | Stage::Map)
    }
}

/// The reason for one drop, with its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct DropReason {
    pub rule: Rule,
    /// What was measured (a length, a byte count), when the rule measures something.
    pub value: Option<f64>,
    pub detail: String,
    /// For exact and near duplicates: the id of the document that was kept.
    pub duplicate_of: Option<u128>,
}

impl DropReason {
    pub fn new(rule: Rule, value: Option<f64>, detail: impl Into<String>) -> DropReason {
        DropReason { rule, value, detail: detail.into(), duplicate_of: None }
    }
}

/// How many ledger rows per rule the report quotes.
pub const LEDGER_SAMPLES: usize = 5;

/// A ledger row as the report quotes it: one of the first rows of its rule.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LedgerSample {
    pub doc_id: String,
    pub source: String,
    pub file: String,
    pub row: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<u32>,
    pub value: Option<f64>,
    pub detail: String,
}

/// One ledger row.
#[derive(Debug, Clone)]
pub struct Entry {
    pub doc_id: u128,
    pub source: usize,
    pub locator: Locator,
    pub reason: DropReason,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn rule_ids_are_unique_and_prefixed_by_their_stage() {
        let ids: HashSet<_> = Rule::ALL.iter().map(|r| r.id()).collect();
        assert_eq!(ids.len(), Rule::ALL.len());
        for r in Rule::ALL {
            assert!(r.id().starts_with(&format!("{}.", r.stage().as_str())), "{}", r.id());
        }
    }
}
