//! The ledger: one entry for every record that does not go on, with the stage and rule
//! that stopped it, the measured value and a detail a person can check.
//!
//! Drop reasons are a closed enum with stable string ids (`filter.min_chars`,
//! `dedup.exact`, …), documented in `docs/ledger.md`; nothing is dropped without one.

use crate::document::Locator;

/// Pipeline stages that can drop a record, in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    Read,
    Select,
    Map,
    Filter,
    Dedup,
    Tokenize,
    Mix,
}

impl Stage {
    pub const ALL: [Stage; 7] =
        [Stage::Read, Stage::Select, Stage::Map, Stage::Filter, Stage::Dedup, Stage::Tokenize, Stage::Mix];
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Read => "read",
            Stage::Select => "select",
            Stage::Map => "map",
            Stage::Filter => "filter",
            Stage::Dedup => "dedup",
            Stage::Tokenize => "tokenize",
            Stage::Mix => "mix",
        }
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
    pub const ALL: [Rule; 21] = [
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
            Rule::TemplateError | Rule::Overlong | Rule::Truncated => Stage::Tokenize,
            Rule::MixWeight | Rule::MixTokenCap => Stage::Mix,
        }
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
    /// For duplicates: the id of the document that was kept.
    pub duplicate_of: Option<u128>,
}

impl DropReason {
    pub fn new(rule: Rule, value: Option<f64>, detail: impl Into<String>) -> DropReason {
        DropReason { rule, value, detail: detail.into(), duplicate_of: None }
    }
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
