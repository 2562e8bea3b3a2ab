//! Decontamination: finds training documents that share an n-gram with an evaluation
//! item, and says which benchmark, which item and which words.
//!
//! The rule is GPT-3's (Brown et al. 2020, "Language Models are Few-Shot Learners",
//! §4 and appendix C): an evaluation example counts as leaked when a training
//! document shares a 13-gram with it, or, for an example shorter than 13 words, when
//! the training document holds the whole example. Words are the normalised words of
//! [`super::words`] (lowercased; punctuation, spacing and case ignored), so a copy that
//! only reformats the item is still caught.
//!
//! Items shorter than `min_item_words` (default 8, the smallest n GPT-3's appendix C
//! used for its per-benchmark n) are not indexed: a two-word answer such as "Paris"
//! or "not enough information" would flag ordinary text. [`IndexStats`] counts them so
//! the report can say how many items could not be checked.
//!
//! The index holds one `u64` hash per distinct n-gram (plus one per short item)
//! mapped to the first item that has it; items sharing an n-gram keep a short list.
//! Lookup hashes each window of a training document once per indexed length.
//!
//! ```
//! use curate::stages::decontam::{DecontamConfig, EvalIndex, EvalItem};
//! let mut index = EvalIndex::new(&DecontamConfig::default());
//! index.insert(&EvalItem::new("math", "q1", "Omar plants 7 rows of tulips with 12 bulbs in each row. How many bulbs does he plant?"));
//! let hit = index.first_match("Copied: OMAR plants 7 rows of tulips, with 12 bulbs in each row! How many?").unwrap();
//! assert_eq!((hit.benchmark.as_str(), hit.item_id.as_str()), ("math", "q1"));
//! ```

pub mod helm;

use std::collections::HashMap;

use super::words::{IdMap, Word, for_each_word, mix, ngram_hash};
use crate::document::Content;
use crate::ledger::{DropReason, Rule};

/// What to do with a contaminated training document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecontamAction {
    /// Drop it, with a ledger entry naming the benchmark, item and n-gram.
    #[default]
    Drop,
    /// Keep it, but count and report it.
    Flag,
}

/// Decontamination settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DecontamConfig {
    /// Words per n-gram (GPT-3: 13).
    pub ngram: usize,
    /// Items with fewer words than this are not indexed (see the module docs).
    pub min_item_words: usize,
    pub action: DecontamAction,
}

impl Default for DecontamConfig {
    fn default() -> Self {
        DecontamConfig { ngram: 13, min_item_words: 8, action: DecontamAction::Drop }
    }
}

impl DecontamConfig {
    pub fn check(&self) -> Result<(), String> {
        if self.ngram == 0 || self.ngram > 32 {
            return Err(format!("`ngram` must be between 1 and 32, not {}", self.ngram));
        }
        if self.min_item_words == 0 {
            return Err("`min_item_words` must be at least 1".into());
        }
        Ok(())
    }
}

/// One evaluation item: the benchmark it belongs to, its id there, and its text (for
/// instance a question, or a question with its choices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalItem {
    pub benchmark: String,
    pub item_id: String,
    pub text: String,
}

impl EvalItem {
    pub fn new(benchmark: impl Into<String>, item_id: impl Into<String>, text: impl Into<String>) -> EvalItem {
        EvalItem { benchmark: benchmark.into(), item_id: item_id.into(), text: text.into() }
    }
}


/// Counts of what went into an index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Items indexed.
    pub items: u64,
    /// Items indexed whole because they are shorter than `ngram` words.
    pub short_items: u64,
    /// Items not indexed: fewer than `min_item_words` words.
    pub skipped_items: u64,
    /// Distinct hashed n-grams (and whole short items) in the index.
    pub ngrams: u64,
}

/// The n-gram index of a set of evaluation items.
pub struct EvalIndex {
    ngram: usize,
    min_item_words: usize,
    benchmarks: Vec<String>,
    benchmark_ids: HashMap<String, u32>,
    /// (benchmark, item id) per item.
    items: Vec<(u32, String)>,
    /// n-gram hash → first item with it.
    grams: IdMap<u32>,
    /// n-gram hash → further items with it (rare: shared boilerplate between items).
    more: IdMap<Vec<u32>>,
    /// Window lengths present in the index, longest first (`ngram`, then short items).
    lengths: Vec<usize>,
    /// The first two words of every indexed window of two or more words (their hashes
    /// [`mix`]ed): a position of a training text whose first two words are not here
    /// starts no match, so most positions cost one lookup instead of a hash per window
    /// length.
    starts: IdMap<()>,
    stats: IndexStats,
}

/// A training document's overlap with one evaluation item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contamination {
    pub benchmark: String,
    pub item_id: String,
    /// The matching words as they appear in the training text.
    pub ngram: String,
    /// Byte offset of the match in the text that was searched.
    pub start: usize,
    /// Words in the match: `ngram`, or the whole item's length for a short item.
    pub words: usize,
    /// Windows of the training text that match this item (with [`EvalIndex::all_matches`];
    /// 1 from [`EvalIndex::first_match`]).
    pub count: usize,
}

impl Contamination {
    /// The ledger reason; `value` is the number of matching windows.
    pub fn drop_reason(&self) -> DropReason {
        let quoted: String = self.ngram.chars().take(200).collect();
        DropReason::new(
            Rule::Contaminated,
            Some(self.count as f64),
            format!(
                "shares {} words with `{}` item `{}`: {:?}",
                self.words, self.benchmark, self.item_id, quoted
            ),
        )
    }
}

impl EvalIndex {
    pub fn new(cfg: &DecontamConfig) -> EvalIndex {
        EvalIndex {
            ngram: cfg.ngram.max(1),
            min_item_words: cfg.min_item_words.max(1),
            benchmarks: Vec::new(),
            benchmark_ids: HashMap::new(),
            items: Vec::new(),
            grams: IdMap::default(),
            more: IdMap::default(),
            lengths: Vec::new(),
            starts: IdMap::default(),
            stats: IndexStats::default(),
        }
    }

    /// An index of all `items`.
    pub fn build<'a>(cfg: &DecontamConfig, items: impl IntoIterator<Item = &'a EvalItem>) -> EvalIndex {
        let mut ix = EvalIndex::new(cfg);
        for it in items {
            ix.insert(it);
        }
        ix
    }

    pub fn stats(&self) -> IndexStats {
        self.stats
    }

    /// The benchmarks seen, in the order first inserted.
    pub fn benchmarks(&self) -> &[String] {
        &self.benchmarks
    }

    /// Adds one item. Returns `false` when it is too short to index.
    pub fn insert(&mut self, item: &EvalItem) -> bool {
        let mut words: Vec<Word> = Vec::new();
        for_each_word(&item.text, |w| words.push(w));
        if words.len() < self.min_item_words {
            self.stats.skipped_items += 1;
            return false;
        }
        let bench = match self.benchmark_ids.get(&item.benchmark) {
            Some(&b) => b,
            None => {
                let b = self.benchmarks.len() as u32;
                self.benchmarks.push(item.benchmark.clone());
                self.benchmark_ids.insert(item.benchmark.clone(), b);
                b
            }
        };
        let id = self.items.len() as u32;
        self.items.push((bench, item.item_id.clone()));
        self.stats.items += 1;
        let len = words.len().min(self.ngram);
        if words.len() < self.ngram {
            self.stats.short_items += 1;
        }
        if !self.lengths.contains(&len) {
            self.lengths.push(len);
            self.lengths.sort_unstable_by(|a, b| b.cmp(a));
        }
        for w in words.windows(len) {
            if len >= 2 {
                self.starts.insert(mix(w[0].hash, w[1].hash), ());
            }
            let h = ngram_hash(w);
            match self.grams.entry(h) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(id);
                    self.stats.ngrams += 1;
                }
                std::collections::hash_map::Entry::Occupied(o) => {
                    if *o.get() != id {
                        let list = self.more.entry(h).or_default();
                        if !list.contains(&id) {
                            list.push(id);
                        }
                    }
                }
            }
        }
        true
    }

    fn contamination(&self, item: u32, text: &str, w: &[Word]) -> Contamination {
        let (b, id) = &self.items[item as usize];
        let (start, end) = (w[0].start, w[w.len() - 1].end);
        Contamination {
            benchmark: self.benchmarks[*b as usize].clone(),
            item_id: id.clone(),
            ngram: text[start..end].to_string(),
            start,
            words: w.len(),
            count: 1,
        }
    }

    /// The first overlap in `text` (earliest position; at one position the longest
    /// window), or `None` when the text is clean.
    pub fn first_match(&self, text: &str) -> Option<Contamination> {
        if self.grams.is_empty() {
            return None;
        }
        self.first_match_in(text, &super::words::words(text))
    }

    /// [`EvalIndex::first_match`] on words already split from `text` (by
    /// [`super::words::words`]).
    pub fn first_match_in(&self, text: &str, words: &[Word]) -> Option<Contamination> {
        let mut found = None;
        self.for_each_hit(words, |w, _, item| {
            found = Some(self.contamination(item, text, w));
            false
        });
        found
    }

    /// Every item `text` overlaps with, each once (with its first matching n-gram and
    /// the number of matching windows), in order of first match.
    pub fn all_matches(&self, text: &str) -> Vec<Contamination> {
        let mut out: Vec<Contamination> = Vec::new();
        if self.grams.is_empty() {
            return out;
        }
        let mut seen: HashMap<u32, usize> = HashMap::new();
        self.for_each_hit(&super::words::words(text), |w, h, first| {
            let others = self.more.get(&h).map(|v| v.as_slice()).unwrap_or(&[]);
            for &item in std::iter::once(&first).chain(others) {
                match seen.get(&item) {
                    Some(&k) => out[k].count += 1,
                    None => {
                        seen.insert(item, out.len());
                        out.push(self.contamination(item, text, w));
                    }
                }
            }
            true
        });
        out
    }

    /// Calls `f` with every window of `words` that the index holds (its words, its
    /// hash and the first item with it), by position and, at one position, longest
    /// first, until `f` returns `false`. A position whose first two words start no
    /// indexed window costs one lookup.
    fn for_each_hit(&self, words: &[Word], mut f: impl FnMut(&[Word], u64, u32) -> bool) {
        for i in 0..words.len() {
            let may_start = i + 1 < words.len() && self.starts.contains_key(&mix(words[i].hash, words[i + 1].hash));
            for &len in &self.lengths {
                if i + len > words.len() || (len >= 2 && !may_start) {
                    continue;
                }
                let w = &words[i..i + len];
                let h = ngram_hash(w);
                if let Some(&item) = self.grams.get(&h)
                    && !f(w, h, item)
                {
                    return;
                }
            }
        }
    }

    /// The first overlap in a document's content. A chat is searched as one text (its
    /// messages joined, as eval items are indexed), so an overlap that runs from a
    /// question into its answer is found.
    pub fn check(&self, content: &Content) -> Option<Contamination> {
        self.first_match(&crate::stages::quality::content_text(content))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ITEMS: [(&str, &str, &str); 4] = [
        (
            "gsm8k",
            "test/0",
            "Priya baked 36 muffins for the school fair and sold two thirds of them before noon. How many muffins were left for the afternoon?",
        ),
        (
            "gsm8k",
            "test/1",
            "Tomas walks his dog for $9 an hour. Yesterday, he walked it for 40 minutes only. How much did he earn?",
        ),
        ("mmlu:philosophy", "test/7", "Which of the following best describes the categorical imperative?"),
        ("bbq:all", "Age/3", "Who was not comfortable using the phone?"),
    ];

    fn index(cfg: &DecontamConfig) -> EvalIndex {
        let items: Vec<EvalItem> = ITEMS.iter().map(|(b, i, t)| EvalItem::new(*b, *i, *t)).collect();
        EvalIndex::build(cfg, &items)
    }

    #[test]
    fn planted_items_are_caught_with_their_evidence() {
        let ix = index(&DecontamConfig::default());
        let s = ix.stats();
        assert_eq!((s.items, s.short_items, s.skipped_items), (3, 1, 1), "{s:?}");
        let doc = "Here is a homework set.\n\nQ: TOMAS walks his dog for $9 an hour; yesterday he walked it for 40 \
                   minutes only... how much did he earn? A: 6";
        let hit = ix.first_match(doc).unwrap();
        assert_eq!((hit.benchmark.as_str(), hit.item_id.as_str(), hit.words), ("gsm8k", "test/1", 13));
        assert!(hit.ngram.starts_with("TOMAS walks his dog for $9"), "{}", hit.ngram);
        assert_eq!(&doc[hit.start..hit.start + 5], "TOMAS");
        let r = hit.drop_reason();
        assert_eq!(r.rule, Rule::Contaminated);
        assert!(r.detail.contains("`gsm8k` item `test/1`"), "{}", r.detail);
    }

    #[test]
    fn short_items_match_whole_and_only_whole() {
        let ix = index(&DecontamConfig::default());
        let hit = ix.first_match("quiz: which of the following best describes the Categorical Imperative? discuss").unwrap();
        assert_eq!((hit.item_id.as_str(), hit.words), ("test/7", 9));
        assert!(ix.first_match("which of the following best describes the weather?").is_none());
        // Below min_item_words, the BBQ question was not indexed.
        assert!(ix.first_match("Who was not comfortable using the phone?").is_none());
        let lax = index(&DecontamConfig { min_item_words: 1, ..Default::default() });
        assert_eq!(lax.first_match("who was not comfortable using the phone").unwrap().benchmark, "bbq:all");
    }

    #[test]
    fn clean_text_is_not_flagged() {
        let ix = index(&DecontamConfig::default());
        let clean = [
            "Priya baked muffins for the school fair and then went home to read about the categorical imperative.",
            "Tomas walks his dog every hour and spends his money on books about dogs.",
            "",
            "How many muffins were left? Nobody knows, said the reporter at the fair.",
        ];
        for c in clean {
            assert!(ix.first_match(c).is_none(), "{c}");
        }
    }

    #[test]
    fn all_matches_lists_each_item_once_with_counts() {
        let ix = index(&DecontamConfig::default());
        let doc = format!("{} and also {} then {}", ITEMS[0].2, ITEMS[1].2, ITEMS[0].2);
        let all = ix.all_matches(&doc);
        assert_eq!(all.iter().map(|c| c.item_id.as_str()).collect::<Vec<_>>(), ["test/0", "test/1"]);
        assert!(all[0].count > all[1].count);
    }

    #[test]
    fn chats_are_searched_per_message() {
        use crate::document::Message;
        use crate::recipe::Role;
        let ix = index(&DecontamConfig::default());
        let chat = Content::Messages(vec![
            Message { role: Role::User, content: "Solve this.".into() },
            Message { role: Role::Assistant, content: ITEMS[0].2.to_uppercase() },
        ]);
        assert_eq!(ix.check(&chat).unwrap().item_id, "test/0");
        assert!(ix.check(&Content::Text("nothing here".into())).is_none());
    }

    #[test]
    fn items_sharing_an_ngram_are_all_reported() {
        let cfg = DecontamConfig { ngram: 4, ..Default::default() };
        let a = EvalItem::new("x", "1", "one two three four five six seven eight");
        let b = EvalItem::new("y", "2", "zero one two three four nine ten eleven");
        let ix = EvalIndex::build(&cfg, [&a, &b]);
        let all = ix.all_matches("one two three four");
        assert_eq!(all.len(), 2);
        assert_eq!(ix.benchmarks(), ["x", "y"]);
    }

    /// Plants every GSM8K test question into synthetic training text; all must be
    /// caught and none of the unplanted filler may be.
    #[test]
    #[ignore = "needs ../shared/data"]
    fn shared_data_gsm8k_test_questions_are_all_caught() {
        let path = crate::testdata::shared_data("gsm8k/test.jsonl");
        let raw = std::fs::read_to_string(&path).expect("readable");
        let items: Vec<EvalItem> = raw
            .lines()
            .enumerate()
            .map(|(i, l)| {
                let v: serde_json::Value = serde_json::from_str(l).expect("gsm8k line");
                EvalItem::new("gsm8k", format!("test/{i}"), v["question"].as_str().expect("question"))
            })
            .collect();
        assert_eq!(items.len(), 1319);
        let ix = EvalIndex::build(&DecontamConfig::default(), &items);
        let filler = "The library opens at nine and the children read quietly until lunch. ";
        let mut caught = 0;
        let mut first_was_other = 0;
        for (i, it) in items.iter().enumerate() {
            // Reformat the question the way scraped copies differ: case, spacing, punctuation.
            let q = it.text.replace(". ", ".\n").replace(',', " ,");
            let q = if i % 2 == 0 { q.to_lowercase() } else { q };
            let doc = format!("{filler}Problem {i}: {q} Answer below.\n{filler}");
            let first = ix.first_match(&doc).unwrap_or_else(|| panic!("missed test/{i}"));
            // A few GSM8K questions share 13-grams with others; the planted one must
            // still be among all the matches.
            if first.item_id != it.item_id {
                first_was_other += 1;
            }
            if ix.all_matches(&doc).iter().any(|c| c.item_id == it.item_id) {
                caught += 1;
            }
        }
        assert_eq!(caught, 1319);
        assert!(ix.first_match(&filler.repeat(20)).is_none());
        eprintln!(
            "gsm8k: all {caught} test questions caught ({first_was_other} first matched another item); index {:?}",
            ix.stats()
        );
    }

    /// Lookup throughput; run with
    /// `cargo test --release --lib decontam::tests::bench -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_lookup_per_mb() {
        let items: Vec<EvalItem> = (0..20_000)
            .map(|i| EvalItem::new("b", i.to_string(), format!("question {i} asks about topic {} and wants a careful answer with reasons {i}", i * 7)))
            .collect();
        let ix = EvalIndex::build(&DecontamConfig::default(), &items);
        let doc = "The committee met on Tuesday to discuss the budget, and the results were mixed but promising. ".repeat(20_000);
        let t = std::time::Instant::now();
        assert!(ix.first_match(&doc).is_none());
        let s = t.elapsed().as_secs_f64();
        eprintln!("decontam lookup: {:.1} MB/s on one core ({} n-grams indexed)", doc.len() as f64 / 1e6 / s, ix.stats().ngrams);
    }
}
