//! Quality stage: published heuristic filters (Gopher quality, Gopher repetition, C4),
//! language identification, a detector of undeclared chatbot output, and PII
//! redaction.
//!
//! Every check is a pure function of one document's text and its settings. A filter
//! returns `None` to keep the document, or a [`QualityDrop`]: the rule (a closed enum
//! with a stable id, see [`crate::ledger::Rule`]), the measured value, the limit it
//! crossed and a sentence a reviewer can check. Thresholds are the published ones;
//! each submodule cites its source, and `docs/stages.md` lists them.
//!
//! A chat is judged on its messages' contents joined by blank lines ([`content_text`]):
//! these heuristics were made for running text, and a conversation read end to end is
//! the closest thing to it.

pub mod c4;
pub mod chatbot;
pub mod gopher;
pub mod language;
pub mod pii;

use std::borrow::Cow;

use crate::document::Content;
use crate::ledger::{DropReason, Rule};

pub use c4::{C4Config, C4Lines, c4_lines, check_c4};
pub use chatbot::{AiPhrase, check_ai_phrases, find_ai_phrase};
pub use gopher::{GopherQualityConfig, RepetitionConfig, check_gopher_quality, check_repetition};
pub use language::{Detected, LanguageConfig, check_language, detect};
pub use pii::{PiiCounts, PiiKind, Redacted, redact, redact_content};

/// Why a quality check drops a document.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityDrop {
    pub rule: Rule,
    /// What was measured (a count, a mean, a fraction, a confidence).
    pub value: f64,
    /// The threshold it crossed.
    pub limit: f64,
    /// The evidence in words.
    pub detail: String,
}

impl QualityDrop {
    pub fn new(rule: Rule, value: f64, limit: f64, detail: impl Into<String>) -> QualityDrop {
        QualityDrop { rule, value, limit, detail: detail.into() }
    }
}

impl From<QualityDrop> for DropReason {
    fn from(q: QualityDrop) -> DropReason {
        DropReason::new(q.rule, Some(q.value), q.detail)
    }
}

/// The text the quality checks read: the text itself, or a chat's message contents
/// joined by blank lines.
pub fn content_text(content: &Content) -> Cow<'_, str> {
    match content {
        Content::Text(t) => Cow::Borrowed(t),
        Content::Messages(ms) => {
            Cow::Owned(ms.iter().map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n\n"))
        }
    }
}

/// Rounds for messages: at most 4 decimals, no trailing zeros.
pub(crate) fn fmt_num(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" { "0".into() } else { s.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Message;
    use crate::recipe::Role;

    #[test]
    fn chats_are_read_as_joined_contents() {
        let c = Content::Messages(vec![
            Message { role: Role::User, content: "a".into() },
            Message { role: Role::Assistant, content: "b".into() },
        ]);
        assert_eq!(content_text(&c), "a\n\nb");
        assert!(matches!(content_text(&Content::Text("x".into())), Cow::Borrowed("x")));
    }

    #[test]
    fn drops_become_ledger_reasons() {
        let r: DropReason = QualityDrop::new(Rule::GopherStopWords, 1.0, 2.0, "d").into();
        assert_eq!((r.rule, r.value, r.detail.as_str()), (Rule::GopherStopWords, Some(1.0), "d"));
        assert_eq!(fmt_num(0.25), "0.25");
        assert_eq!(fmt_num(3.0), "3");
        assert_eq!(fmt_num(0.123456), "0.1235");
    }

    /// Throughput of each check on ordinary prose; run with
    /// `cargo test --lib quality::tests::bench -- --ignored --nocapture` (numbers are
    /// only meaningful with optimisation).
    #[test]
    #[ignore]
    fn bench_checks_per_mb() {
        // Varied prose: sentences of words drawn by a small generator, with a phone number.
        const WORDS: [&str; 24] = [
            "river", "town", "people", "learned", "floods", "spring", "farmers", "moved", "animals", "higher",
            "ground", "merchants", "goods", "wooden", "shelves", "water", "children", "taught", "swim", "boatmen",
            "stories", "storms", "channels", "valley",
        ];
        let mut state = 1u64;
        let mut word = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            WORDS[(state >> 33) as usize % WORDS.len()]
        };
        let docs: Vec<String> = (0..2000)
            .map(|i| {
                let mut d = format!("Report {i}. Call 555-123-4567 about it.\n");
                for s in 0..10 + i % 60 {
                    d.push_str("The ");
                    for _ in 0..12 {
                        d.push_str(word());
                        d.push(' ');
                    }
                    d.push_str(if s % 4 == 3 { "and that is all.\n\n" } else { "of the day. " });
                }
                d
            })
            .collect();
        let mb = docs.iter().map(|d| d.len()).sum::<usize>() as f64 / 1e6;
        let time = |name: &str, f: &dyn Fn(&str) -> bool| {
            let t = std::time::Instant::now();
            let n = docs.iter().filter(|d| f(d)).count();
            let s = t.elapsed().as_secs_f64();
            eprintln!("{name:<18} {:>7.1} MB/s ({n} of {} flagged)", mb / s, docs.len());
        };
        let (g, r, c, l) =
            (GopherQualityConfig::default(), RepetitionConfig::default(), C4Config::default(), LanguageConfig::default());
        time("gopher quality", &|d| check_gopher_quality(d, &g).is_some());
        time("gopher repetition", &|d| check_repetition(d, &r).is_some());
        time("c4", &|d| check_c4(d, &c).is_some());
        time("language", &|d| check_language(d, &l).is_some());
        time("ai phrases", &|d| find_ai_phrase(d).is_some());
        time("pii", &|d| redact(d).counts.total() > 0);
    }
}
