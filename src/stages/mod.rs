//! The stages. Per-document stages ([`DocStage`]) share one shape: keep a document
//! (perhaps changed, or with something attached: band hashes, tokens) or drop it with
//! a reason; each stage's logic lives in its own module. Whole-corpus work (exact
//! dedup, near-dup clustering, mixing) runs as passes over the outputs of tasks
//! (`crate::build`). [`plan_stages`] is the one ordered list of both.

pub mod decontam;
pub mod dedup;
pub mod eval;
pub mod near_pass;
pub mod filter;
pub mod map;
pub mod near_dedup;
pub mod quality;
pub mod words;

use crate::document::Document;
use crate::ledger::{DropReason, Rule, Stage};
use crate::recipe::{AiPhrases, Filters, Quality, Recipe};
use crate::stages::decontam::{DecontamAction, EvalIndex};
use crate::stages::near_dedup::{BandHashes, MinHasher};
use crate::stages::quality::PiiCounts;
use crate::tokenize::{TargetTokenizer, TokenizeError, Tokens};

/// The stages a recipe runs, in execution order. This one list is the order in which
/// a document meets the stages, the order of the ledger's stages and of the report's
/// funnel; the build's phases are cut from it (per-document stages run inside tasks,
/// whole-corpus passes between them).
pub fn plan_stages(recipe: &Recipe) -> Vec<Stage> {
    let q = &recipe.filters.quality;
    let tokenize = recipe.target.as_ref().is_some_and(|t| t.tokenizer.is_some());
    let on = |s: Stage| match s {
        Stage::Read | Stage::Select | Stage::Map | Stage::Filter => true,
        Stage::Pii => q.pii,
        Stage::Quality => q.drops() || q.ai_phrases != AiPhrases::Off,
        Stage::Decontam => recipe.decontam.is_some(),
        Stage::MinHash | Stage::NearDedup => recipe.dedup.near.is_some(),
        Stage::Dedup => recipe.dedup.exact,
        Stage::Tokenize | Stage::Mix => tokenize,
    };
    Stage::ALL.into_iter().filter(|&s| on(s)).collect()
}

/// Whether `stage` runs per document (inside a task) rather than as a pass over the
/// outputs of tasks.
pub fn is_document_stage(stage: Stage) -> bool {
    matches!(stage, Stage::Pii | Stage::Filter | Stage::Quality | Stage::Decontam | Stage::MinHash | Stage::Tokenize)
}

/// A document on its way through the per-document stages, with what they attach.
#[derive(Debug)]
pub struct Doc {
    pub doc: Document,
    /// The benchmark it overlaps (dropped or only flagged).
    pub contaminated: Option<String>,
    /// A chatbot phrase was found (counted whatever the action).
    pub ai_phrase: bool,
    pub pii: PiiCounts,
    pub bands: Option<BandHashes>,
    pub tokens: Option<Tokens>,
    /// A ledger note for a document kept but changed (`tokenize.truncated`).
    pub note: Option<DropReason>,
    /// A plain text's normalised words, split once for decontamination and MinHash
    /// (both read the same word stream; a chat's differs, see each stage).
    words: Option<Vec<words::Word>>,
}

impl Doc {
    pub fn new(doc: Document) -> Doc {
        Doc { doc, contaminated: None, ai_phrase: false, pii: PiiCounts::default(), bands: None, tokens: None, note: None, words: None }
    }

    /// The words of a plain text document (split on first use), or `None` for a chat.
    fn text_words(&mut self) -> Option<(&str, &[words::Word])> {
        let crate::document::Content::Text(t) = &self.doc.content else { return None };
        let w = self.words.get_or_insert_with(|| words::words(t));
        Some((t.as_str(), w.as_slice()))
    }
}

/// What a stage did to a document.
#[derive(Debug)]
pub enum Verdict {
    /// Kept, perhaps changed.
    Keep,
    Drop(DropReason),
}

/// One per-document stage with what it needs. Every stage has this one shape: it keeps
/// a document (changing it or attaching to it), or drops it with a reason. The driver
/// that runs them does the counting and the ledger.
pub enum DocStage<'a> {
    /// Replace PII spans; the document is made again from the redacted content.
    Pii,
    Filter(&'a Filters),
    /// Quality presets, language identification and the chatbot detector, in order.
    Quality(&'a Quality),
    Decontam(&'a EvalIndex, DecontamAction),
    MinHash(&'a MinHasher),
    Tokenize { tokenizer: &'a TargetTokenizer, truncate: bool },
}

impl DocStage<'_> {
    pub fn id(&self) -> Stage {
        match self {
            DocStage::Pii => Stage::Pii,
            DocStage::Filter(_) => Stage::Filter,
            DocStage::Quality(_) => Stage::Quality,
            DocStage::Decontam(..) => Stage::Decontam,
            DocStage::MinHash(_) => Stage::MinHash,
            DocStage::Tokenize { .. } => Stage::Tokenize,
        }
    }

    /// Run the stage on one document. `Err` is a failure of the run itself (the
    /// tokenizer failed), not of the document.
    pub fn apply(&self, d: &mut Doc, source_name: &str) -> Result<Verdict, String> {
        Ok(match self {
            DocStage::Pii => {
                let (redacted, counts) = quality::redact_content(&d.doc.content);
                if let Some(content) = redacted {
                    d.doc = Document::new(d.doc.source, source_name, d.doc.locator.clone(), content);
                    d.words = None;
                }
                d.pii = counts;
                Verdict::Keep
            }
            DocStage::Filter(f) => match filter::check(&d.doc, f) {
                Some(r) => Verdict::Drop(r),
                None => Verdict::Keep,
            },
            DocStage::Quality(q) => {
                let (verdict, ai) = quality_check(&d.doc, q);
                d.ai_phrase = ai;
                match verdict {
                    Some(r) => Verdict::Drop(r),
                    None => Verdict::Keep,
                }
            }
            DocStage::Decontam(index, action) => match match d.text_words() {
                Some((text, words)) => index.first_match_in(text, words),
                None => index.check(&d.doc.content),
            } {
                Some(hit) => {
                    d.contaminated = Some(hit.benchmark.clone());
                    if *action == DecontamAction::Drop { Verdict::Drop(hit.drop_reason()) } else { Verdict::Keep }
                }
                None => Verdict::Keep,
            },
            DocStage::MinHash(h) => {
                d.bands = match d.text_words() {
                    Some((_, words)) => h.band_hashes_of_words(words),
                    None => h.band_hashes(&d.doc.content),
                };
                // No stage after this one reads the words.
                d.words = None;
                Verdict::Keep
            }
            DocStage::Tokenize { tokenizer, truncate } => {
                match tokenizer.render(&d.doc.content).and_then(|r| tokenizer.tokenize(&r, *truncate)) {
                    Ok(t) => {
                        if let Some(n) = t.truncated_from {
                            d.note = Some(DropReason::new(
                                Rule::Truncated,
                                Some(n as f64),
                                format!("{n} tokens cut to seq_len {}", t.ids.len()),
                            ));
                        }
                        d.tokens = Some(t);
                        Verdict::Keep
                    }
                    Err(TokenizeError::Overlong(n)) => Verdict::Drop(DropReason::new(
                        Rule::Overlong,
                        Some(n as f64),
                        format!("{n} tokens > seq_len (overlong = \"drop\")"),
                    )),
                    Err(TokenizeError::Template(m)) => Verdict::Drop(DropReason::new(Rule::TemplateError, None, m)),
                    Err(TokenizeError::Tokenizer(m)) => return Err(format!("`{}`: the tokenizer failed: {m}", d.doc.locator)),
                }
            }
        })
    }
}

/// The quality presets, language identification and the chatbot-phrase detector, in
/// that order; the first that fails drops the document. Returns the verdict and
/// whether a chatbot phrase was found.
fn quality_check(d: &Document, q: &Quality) -> (Option<DropReason>, bool) {
    use crate::stages::quality as qs;
    let ai = match q.ai_phrases {
        AiPhrases::Off => None,
        _ => qs::check_ai_phrases(&d.content),
    };
    let found = ai.is_some();
    if !q.drops() {
        return (None, found);
    }
    let text = qs::content_text(&d.content);
    let verdict = q
        .gopher
        .as_ref()
        .and_then(|g| qs::check_gopher_quality(&text, g))
        .or_else(|| q.repetition.as_ref().and_then(|r| qs::check_repetition(&text, r)))
        .or_else(|| q.c4.as_ref().and_then(|c| qs::check_c4(&text, c)))
        .or_else(|| q.language.as_ref().and_then(|l| qs::check_language(&text, l)))
        .or_else(|| if q.ai_phrases == AiPhrases::Drop { ai } else { None })
        .map(DropReason::from);
    (verdict, found)
}
