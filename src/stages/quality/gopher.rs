//! Gopher's quality and repetition filters (Rae et al. 2021, "Scaling Language Models:
//! Methods, Analysis & Insights from Training Gopher", appendix A, the MassiveWeb
//! quality filters and Table A1).
//!
//! **Quality**, as published: keep documents with 50 to 100,000 words and a mean word
//! length of 3 to 10 characters; drop a document whose ratio of `#` symbols or of
//! ellipses to words exceeds 0.1, with more than 90% of lines starting with a bullet or
//! more than 30% ending with an ellipsis; require 80% of words to contain an
//! alphabetic character and at least two of the stop words *the, be, to, of, and,
//! that, have, with*.
//!
//! **Repetition** (Table A1): drop when duplicate lines exceed 30% of lines, duplicate
//! paragraphs 30% of paragraphs, characters in duplicate lines or paragraphs 20% of
//! characters; when the most frequent 2-, 3- or 4-gram covers more than 20%, 18%, 16%
//! of characters; when repeated 5- to 10-grams cover more than 15%, 14%, 13%, 12%, 11%,
//! 10% of characters.
//!
//! Where the paper leaves a detail open, these choices are made (and tested):
//! - words are whitespace-separated tokens; for counting and lengths a token's leading
//!   and trailing punctuation is ignored and a token of punctuation only is not a word
//!   (a tokenizer that splits punctuation into words, as datatrove's does with spaCy,
//!   lowers the mean length and drops far more);
//! - stop words are counted as occurrences (`the … the` is two), as datatrove does;
//! - lines and paragraphs that are blank are not counted (paragraphs are separated by
//!   blank lines); duplicates are the second and later copies;
//! - the top n-gram counts only when it occurs at least twice, and repeated n-grams
//!   cover the words of every copy after the first, each word counted once; both are
//!   measured in word characters (whitespace excluded).

use xxhash_rust::xxh3::xxh3_64;

use super::{QualityDrop, fmt_num};
use crate::ledger::Rule;
use crate::stages::words::{IdMap, mix};

/// Gopher quality thresholds; the defaults are the published ones.
#[derive(Debug, Clone, PartialEq)]
pub struct GopherQualityConfig {
    pub min_words: u64,
    pub max_words: u64,
    pub min_mean_word_length: f64,
    pub max_mean_word_length: f64,
    /// Most `#` per word.
    pub max_hash_ratio: f64,
    /// Most ellipses (`...` or `…`) per word.
    pub max_ellipsis_ratio: f64,
    /// Most lines starting with a bullet, as a fraction of lines.
    pub max_bullet_lines: f64,
    /// Most lines ending with an ellipsis, as a fraction of lines.
    pub max_ellipsis_lines: f64,
    /// Least fraction of words with an alphabetic character.
    pub min_alpha_words: f64,
    /// Least occurrences of the stop words.
    pub min_stop_words: u64,
    pub stop_words: Vec<String>,
}

/// The stop words of the Gopher quality filter.
pub const GOPHER_STOP_WORDS: [&str; 8] = ["the", "be", "to", "of", "and", "that", "have", "with"];

impl Default for GopherQualityConfig {
    fn default() -> Self {
        GopherQualityConfig {
            min_words: 50,
            max_words: 100_000,
            min_mean_word_length: 3.0,
            max_mean_word_length: 10.0,
            max_hash_ratio: 0.1,
            max_ellipsis_ratio: 0.1,
            max_bullet_lines: 0.9,
            max_ellipsis_lines: 0.3,
            min_alpha_words: 0.8,
            min_stop_words: 2,
            stop_words: GOPHER_STOP_WORDS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Characters that start a bulleted line.
const BULLETS: [char; 12] = ['•', '●', '○', '◦', '▪', '▫', '■', '□', '‣', '⁃', '-', '*'];

fn strip_punct(token: &str) -> &str {
    token.trim_matches(|c: char| !c.is_alphanumeric())
}

fn ends_with_ellipsis(line: &str) -> bool {
    let l = line.trim_end();
    l.ends_with("...") || l.ends_with('…')
}

/// Gopher quality: `None` keeps the document.
pub fn check_gopher_quality(text: &str, cfg: &GopherQualityConfig) -> Option<QualityDrop> {
    let mut words = 0u64;
    let mut word_chars = 0u64;
    let mut alpha = 0u64;
    let mut stops = 0u64;
    let mut lower = String::new();
    // Only a word as long as some stop word can be one (lengths in characters).
    let stop_len = cfg.stop_words.iter().map(|w| w.chars().count()).fold((usize::MAX, 0), |(lo, hi), l| (lo.min(l), hi.max(l)));
    for tok in text.split_whitespace() {
        if tok.is_ascii() {
            // The common case, on bytes: the same trimming, counting and comparing.
            let w = tok.trim_matches(|c: char| !c.is_ascii_alphanumeric());
            if w.is_empty() {
                continue;
            }
            words += 1;
            word_chars += w.len() as u64;
            if w.bytes().any(|b| b.is_ascii_alphabetic()) {
                alpha += 1;
            }
            if (stop_len.0..=stop_len.1).contains(&w.len()) && cfg.stop_words.iter().any(|s| s.eq_ignore_ascii_case(w)) {
                stops += 1;
            }
            continue;
        }
        let w = strip_punct(tok);
        if w.is_empty() {
            continue;
        }
        words += 1;
        let chars = w.chars().count();
        word_chars += chars as u64;
        if w.chars().any(char::is_alphabetic) {
            alpha += 1;
        }
        if (stop_len.0..=stop_len.1).contains(&chars) {
            lower.clear();
            lower.extend(w.chars().flat_map(char::to_lowercase));
            if cfg.stop_words.contains(&lower) {
                stops += 1;
            }
        }
    }
    let n = words as f64;
    if words < cfg.min_words || words > cfg.max_words {
        return Some(QualityDrop::new(
            Rule::GopherWordCount,
            n,
            if words < cfg.min_words { cfg.min_words as f64 } else { cfg.max_words as f64 },
            format!("{words} words, outside {}..={}", cfg.min_words, cfg.max_words),
        ));
    }
    let per_word = |x: f64| if words == 0 { 0.0 } else { x / n };
    let mean = per_word(word_chars as f64);
    if mean < cfg.min_mean_word_length || mean > cfg.max_mean_word_length {
        return Some(QualityDrop::new(
            Rule::GopherMeanWordLength,
            mean,
            if mean < cfg.min_mean_word_length { cfg.min_mean_word_length } else { cfg.max_mean_word_length },
            format!(
                "mean word length {} characters, outside {}..={}",
                fmt_num(mean),
                fmt_num(cfg.min_mean_word_length),
                fmt_num(cfg.max_mean_word_length)
            ),
        ));
    }
    let hashes = per_word(text.matches('#').count() as f64);
    if hashes > cfg.max_hash_ratio {
        return Some(QualityDrop::new(
            Rule::GopherHashRatio,
            hashes,
            cfg.max_hash_ratio,
            format!("{} `#` per word > {}", fmt_num(hashes), fmt_num(cfg.max_hash_ratio)),
        ));
    }
    let ellipses = per_word((text.matches("...").count() + text.matches('…').count()) as f64);
    if ellipses > cfg.max_ellipsis_ratio {
        return Some(QualityDrop::new(
            Rule::GopherEllipsisRatio,
            ellipses,
            cfg.max_ellipsis_ratio,
            format!("{} ellipses per word > {}", fmt_num(ellipses), fmt_num(cfg.max_ellipsis_ratio)),
        ));
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if !lines.is_empty() {
        let frac = |k: usize| k as f64 / lines.len() as f64;
        let bullets = frac(lines.iter().filter(|l| l.trim_start().starts_with(BULLETS)).count());
        if bullets > cfg.max_bullet_lines {
            return Some(QualityDrop::new(
                Rule::GopherBulletLines,
                bullets,
                cfg.max_bullet_lines,
                format!("{} of lines start with a bullet > {}", fmt_num(bullets), fmt_num(cfg.max_bullet_lines)),
            ));
        }
        let trailing = frac(lines.iter().filter(|l| ends_with_ellipsis(l)).count());
        if trailing > cfg.max_ellipsis_lines {
            return Some(QualityDrop::new(
                Rule::GopherEllipsisLines,
                trailing,
                cfg.max_ellipsis_lines,
                format!("{} of lines end with an ellipsis > {}", fmt_num(trailing), fmt_num(cfg.max_ellipsis_lines)),
            ));
        }
    }
    let alpha_frac = per_word(alpha as f64);
    if alpha_frac < cfg.min_alpha_words {
        return Some(QualityDrop::new(
            Rule::GopherAlphaWords,
            alpha_frac,
            cfg.min_alpha_words,
            format!("{} of words have a letter < {}", fmt_num(alpha_frac), fmt_num(cfg.min_alpha_words)),
        ));
    }
    if stops < cfg.min_stop_words {
        return Some(QualityDrop::new(
            Rule::GopherStopWords,
            stops as f64,
            cfg.min_stop_words as f64,
            format!("{stops} stop words ({}) < {}", cfg.stop_words.join(", "), cfg.min_stop_words),
        ));
    }
    None
}

/// Gopher repetition thresholds; the defaults are Table A1's.
#[derive(Debug, Clone, PartialEq)]
pub struct RepetitionConfig {
    pub max_dup_lines: f64,
    pub max_dup_paragraphs: f64,
    pub max_dup_line_chars: f64,
    pub max_dup_paragraph_chars: f64,
    /// `(n, most characters in the most frequent n-gram)`.
    pub top_ngrams: Vec<(usize, f64)>,
    /// `(n, most characters in repeated n-grams)`.
    pub dup_ngrams: Vec<(usize, f64)>,
}

impl Default for RepetitionConfig {
    fn default() -> Self {
        RepetitionConfig {
            max_dup_lines: 0.30,
            max_dup_paragraphs: 0.30,
            max_dup_line_chars: 0.20,
            max_dup_paragraph_chars: 0.20,
            top_ngrams: vec![(2, 0.20), (3, 0.18), (4, 0.16)],
            dup_ngrams: vec![(5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)],
        }
    }
}

/// Duplicate lines and paragraphs, in one pass over the lines: for each, (how many,
/// second and later copies, characters in those copies). Lines are compared with
/// trailing whitespace trimmed, blank lines left out; paragraphs are runs of non-blank
/// lines separated by blank lines, compared line by line (so by the hashes of their
/// lines, chained), their characters counted as the lines' joined by newlines.
#[derive(Default)]
struct LineDuplicates {
    lines: (usize, usize, usize),
    paragraphs: (usize, usize, usize),
}

fn line_duplicates(text: &str) -> LineDuplicates {
    let mut d = LineDuplicates::default();
    let mut seen_lines: IdMap<()> = IdMap::default();
    let mut seen_paras: IdMap<()> = IdMap::default();
    // The paragraph being read: its chained hash and its characters.
    let mut para: Option<(u64, usize)> = None;
    let mut end_paragraph = |para: &mut Option<(u64, usize)>, d: &mut LineDuplicates| {
        if let Some((h, chars)) = para.take() {
            d.paragraphs.0 += 1;
            if seen_paras.insert(h, ()).is_some() {
                d.paragraphs.1 += 1;
                d.paragraphs.2 += chars;
            }
        }
    };
    for l in text.lines() {
        let t = l.trim_end();
        if t.trim_start().is_empty() {
            end_paragraph(&mut para, &mut d);
            continue;
        }
        let h = xxh3_64(t.as_bytes());
        let chars = if t.is_ascii() { t.len() } else { t.chars().count() };
        d.lines.0 += 1;
        if seen_lines.insert(h, ()).is_some() {
            d.lines.1 += 1;
            d.lines.2 += chars;
        }
        para = Some(match para {
            None => (h, chars),
            Some((p, c)) => (mix(p, h), c + 1 + chars),
        });
    }
    end_paragraph(&mut para, &mut d);
    d
}

/// The hashes of every n-gram of a word sequence, for growing n: each n-gram's hash
/// is the (n−1)-gram's at the same position mixed with the next word's, so going from
/// n to n + 1 costs one multiply per position, whatever n.
struct NgramHashes<'a> {
    words: &'a [u64],
    n: usize,
    hashes: Vec<u64>,
}

impl<'a> NgramHashes<'a> {
    fn new(words: &'a [u64]) -> Self {
        NgramHashes { words, n: 1, hashes: words.to_vec() }
    }

    /// The hashes of the n-grams at positions `0..=len − n` (n ≥ 1, n ≤ len).
    fn of(&mut self, n: usize) -> &[u64] {
        if n < self.n {
            *self = NgramHashes::new(self.words);
        }
        while self.n < n {
            let next = &self.words[self.n..];
            self.hashes.truncate(next.len());
            for (h, &w) in self.hashes.iter_mut().zip(next) {
                *h = mix(*h, w);
            }
            self.n += 1;
        }
        &self.hashes
    }
}

/// Gopher repetition: `None` keeps the document.
pub fn check_repetition(text: &str, cfg: &RepetitionConfig) -> Option<QualityDrop> {
    let total_chars = text.chars().count();
    let char_frac = |c: usize| if total_chars == 0 { 0.0 } else { c as f64 / total_chars as f64 };

    let dups = line_duplicates(text);
    let (lines, dup_lines, dup_line_chars) = dups.lines;
    let line_frac = if lines == 0 { 0.0 } else { dup_lines as f64 / lines as f64 };
    if line_frac > cfg.max_dup_lines {
        return Some(QualityDrop::new(
            Rule::RepetitionDupLines,
            line_frac,
            cfg.max_dup_lines,
            format!("{dup_lines} of {lines} lines are duplicates ({}) > {}", fmt_num(line_frac), fmt_num(cfg.max_dup_lines)),
        ));
    }
    let (np, dup_paras, dup_para_chars) = dups.paragraphs;
    let para_frac = if np == 0 { 0.0 } else { dup_paras as f64 / np as f64 };
    if para_frac > cfg.max_dup_paragraphs {
        return Some(QualityDrop::new(
            Rule::RepetitionDupParagraphs,
            para_frac,
            cfg.max_dup_paragraphs,
            format!(
                "{dup_paras} of {np} paragraphs are duplicates ({}) > {}",
                fmt_num(para_frac),
                fmt_num(cfg.max_dup_paragraphs)
            ),
        ));
    }
    let f = char_frac(dup_line_chars);
    if f > cfg.max_dup_line_chars {
        return Some(QualityDrop::new(
            Rule::RepetitionDupLineChars,
            f,
            cfg.max_dup_line_chars,
            format!("{} of characters are in duplicate lines > {}", fmt_num(f), fmt_num(cfg.max_dup_line_chars)),
        ));
    }
    let f = char_frac(dup_para_chars);
    if f > cfg.max_dup_paragraph_chars {
        return Some(QualityDrop::new(
            Rule::RepetitionDupParagraphChars,
            f,
            cfg.max_dup_paragraph_chars,
            format!(
                "{} of characters are in duplicate paragraphs > {}",
                fmt_num(f),
                fmt_num(cfg.max_dup_paragraph_chars)
            ),
        ));
    }

    let words: Vec<&str> = if text.is_ascii() { text.split_ascii_whitespace().collect() } else { text.split_whitespace().collect() };
    let hashes: Vec<u64> = words.iter().map(|w| xxh3_64(w.as_bytes())).collect();
    let lens: Vec<usize> = words.iter().map(|w| if w.is_ascii() { w.len() } else { w.chars().count() }).collect();
    let word_chars: usize = lens.iter().sum();
    if word_chars == 0 {
        return None;
    }
    let wfrac = |c: usize| c as f64 / word_chars as f64;
    let mut grams = NgramHashes::new(&hashes);
    // One map and one flag vector, cleared between n.
    let mut counts: IdMap<(u32, u32)> = IdMap::default();
    let mut seen: IdMap<()> = IdMap::default();
    if !cfg.top_ngrams.is_empty() {
        counts.reserve(words.len());
    }
    if !cfg.dup_ngrams.is_empty() {
        seen.reserve(words.len());
    }
    let mut covered = vec![false; words.len()];

    // An n-gram occurs at most as often as its first m words (m < n), and covers at most
    // n times the longest word: once the most frequent m-gram is counted, an n whose
    // bound `count_m × n × longest / word_chars` is within its limit cannot fail, and
    // is not counted.
    let longest = lens.iter().copied().max().unwrap_or(0);
    let mut counted: Vec<(usize, usize)> = Vec::new();
    for &(n, max) in &cfg.top_ngrams {
        if n == 0 || words.len() < n {
            continue;
        }
        let bound = counted.iter().filter(|&&(m, _)| m < n).map(|&(_, c)| c).min();
        if bound.is_some_and(|c| wfrac(c * n * longest) <= max) {
            continue;
        }
        // n-gram → (count, first position)
        counts.clear();
        for (i, &h) in grams.of(n).iter().enumerate() {
            counts.entry(h).or_insert((0, i as u32)).0 += 1;
        }
        counted.push((n, counts.values().map(|&(c, _)| c as usize).max().unwrap_or(0)));
        let chars_at = |i: usize| lens[i..i + n].iter().sum::<usize>();
        let top = counts
            .values()
            .filter(|(c, _)| *c >= 2)
            .map(|&(c, i)| (c as usize, i as usize))
            .max_by_key(|&(c, i)| (c, chars_at(i), std::cmp::Reverse(i)));
        if let Some((count, first)) = top {
            let f = wfrac(count * chars_at(first));
            if f > max {
                return Some(QualityDrop::new(
                    Rule::RepetitionTopNgram,
                    f,
                    max,
                    format!(
                        "the {n}-gram {:?} occurs {count} times, {} of characters > {}",
                        words[first..first + n].join(" "),
                        fmt_num(f),
                        fmt_num(max)
                    ),
                ));
            }
        }
    }

    // A repeated n-gram starts with a repeated (n−1)-gram: once an n finds no repeat,
    // no longer n can find one, and its share is 0.
    let mut no_repeat_from = usize::MAX;
    for &(n, max) in &cfg.dup_ngrams {
        if n == 0 || words.len() < n || n >= no_repeat_from {
            continue;
        }
        seen.clear();
        covered.iter_mut().for_each(|c| *c = false);
        let mut example = None;
        for (i, &h) in grams.of(n).iter().enumerate() {
            if seen.insert(h, ()).is_some() {
                example.get_or_insert(i);
                covered[i..i + n].iter_mut().for_each(|c| *c = true);
            }
        }
        if example.is_none() {
            no_repeat_from = no_repeat_from.min(n);
            continue;
        }
        let dup: usize = covered.iter().zip(&lens).filter(|(c, _)| **c).map(|(_, l)| l).sum();
        let f = wfrac(dup);
        if f > max {
            let at = example.unwrap_or(0);
            return Some(QualityDrop::new(
                Rule::RepetitionDupNgram,
                f,
                max,
                format!(
                    "repeated {n}-grams cover {} of characters > {} (first repeat: {:?})",
                    fmt_num(f),
                    fmt_num(max),
                    words[at..at + n].join(" ")
                ),
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Skipping an n whose bound cannot fail changes no verdict: the whole list gives
    /// what its entries checked one at a time, in order, give.
    #[test]
    fn skipped_ngram_lengths_change_no_verdict() {
        let words = ["a", "b", "c", "dd", "eee", "ffff", "the", "of", "extraordinarily", "x"];
        let mut state = 7u64;
        let mut next = |m: usize| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as usize % m
        };
        let cfg = RepetitionConfig::default();
        let mut dropped = std::collections::BTreeMap::new();
        for doc in 0..400 {
            let len = 20 + next(200);
            let mut text = String::new();
            let phrase: Vec<&str> = (0..2 + next(4)).map(|_| words[next(words.len())]).collect();
            for i in 0..len {
                if doc % 3 == 0 && i % (3 + doc % 7) == 0 {
                    text.push_str(&phrase.join(" "));
                } else {
                    text.push_str(words[next(words.len())]);
                }
                text.push(if i % 17 == 16 { '\n' } else { ' ' });
            }
            let whole = check_repetition(&text, &cfg).map(|d| (d.rule, d.detail));
            let one_by_one = cfg
                .top_ngrams
                .iter()
                .map(|&t| RepetitionConfig { top_ngrams: vec![t], dup_ngrams: vec![], ..cfg.clone() })
                .chain(cfg.dup_ngrams.iter().map(|&d| RepetitionConfig { top_ngrams: vec![], dup_ngrams: vec![d], ..cfg.clone() }))
                .chain(std::iter::once(RepetitionConfig { top_ngrams: vec![], dup_ngrams: vec![], ..cfg.clone() }))
                .find_map(|c| check_repetition(&text, &c))
                .map(|d| (d.rule, d.detail));
            assert_eq!(whole, one_by_one, "document {doc}: {text:?}");
            if let Some((rule, _)) = whole {
                *dropped.entry(rule.id()).or_insert(0) += 1;
            }
        }
        // The documents exercise both kinds of n-gram check, and some pass.
        assert!(dropped.get(Rule::RepetitionTopNgram.id()).is_some_and(|&n| n > 5), "{dropped:?}");
        assert!(dropped.values().sum::<u32>() < 390, "{dropped:?}");
    }

    /// The one-pass count agrees with counting the joined strings themselves.
    #[test]
    fn line_and_paragraph_duplicates_match_a_count_of_the_strings() {
        let text = "alpha one\nbeta two  \n\n\ngamma\nalpha one\n \nalpha one\nbeta two\n\nété déjà\n\nété déjà\ngamma\n";
        let naive = |parts: Vec<String>| {
            let mut seen = std::collections::HashSet::new();
            let (mut dup, mut chars) = (0, 0);
            for p in &parts {
                if !seen.insert(p.clone()) {
                    dup += 1;
                    chars += p.chars().count();
                }
            }
            (parts.len(), dup, chars)
        };
        let lines: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).filter(|l| !l.trim().is_empty()).collect();
        let mut paras = Vec::new();
        let mut cur: Vec<&str> = Vec::new();
        for l in text.lines() {
            if l.trim().is_empty() {
                if !cur.is_empty() {
                    paras.push(cur.join("\n"));
                    cur.clear();
                }
            } else {
                cur.push(l.trim_end());
            }
        }
        if !cur.is_empty() {
            paras.push(cur.join("\n"));
        }
        let d = line_duplicates(text);
        assert_eq!(d.lines, naive(lines));
        assert_eq!(d.paragraphs, naive(paras));
        assert_eq!(d.paragraphs.1, 1, "`alpha one / beta two` repeats once");
    }

    /// A plain paragraph of ordinary English: 61 words, mean length about 4.6,
    /// several stop words, no repetition.
    const GOOD: &str = "The river town grew slowly over many decades, and its people learned to \
        live with the floods that came every spring. Farmers moved their animals to higher \
        ground, while merchants kept their goods on wooden shelves above the water line. \
        Children were taught to swim early, and old boatmen told stories of storms that had \
        carved new channels through the valley.";

    fn words(t: &str) -> usize {
        t.split_whitespace().filter(|w| !strip_punct(w).is_empty()).count()
    }

    fn rule(t: &str) -> Option<Rule> {
        check_gopher_quality(t, &GopherQualityConfig::default()).map(|d| d.rule)
    }

    #[test]
    fn ordinary_prose_passes_both_filters() {
        assert!(words(GOOD) >= 50, "{}", words(GOOD));
        assert_eq!(rule(GOOD), None);
        assert_eq!(check_repetition(GOOD, &RepetitionConfig::default()), None);
    }

    #[test]
    fn word_count_bounds() {
        let first: Vec<&str> = GOOD.split_whitespace().take(50).collect();
        assert_eq!(rule(&first.join(" ")), None, "50 words is enough");
        let d = check_gopher_quality(&first[..49].join(" "), &Default::default()).unwrap();
        assert_eq!((d.rule, d.value, d.limit), (Rule::GopherWordCount, 49.0, 50.0));
        // Punctuation-only tokens are not words.
        assert_eq!(rule(&format!("{} - — ...", first[..49].join(" "))), Some(Rule::GopherWordCount));
        let cfg = GopherQualityConfig { max_words: 60, ..Default::default() };
        let long = format!("{GOOD} one more sentence to go past sixty words now.");
        assert_eq!(check_gopher_quality(&long, &cfg).unwrap().rule, Rule::GopherWordCount);
    }

    #[test]
    fn mean_word_length_bounds() {
        // 60 words of "at the to of": mean length 2.25.
        let short = "at the to of ".repeat(15);
        let d = check_gopher_quality(&short, &Default::default()).unwrap();
        assert_eq!(d.rule, Rule::GopherMeanWordLength);
        assert_eq!(d.value, 2.25);
        // Mean exactly 3 is inside.
        let three = "the and cat dog ".repeat(15);
        assert_eq!(rule(&three), None);
        let long = "the extraordinarily incomprehensible characteristics ".repeat(15);
        let d = check_gopher_quality(&long, &Default::default()).unwrap();
        assert_eq!((d.rule, d.limit), (Rule::GopherMeanWordLength, 10.0));
    }

    #[test]
    fn hash_and_ellipsis_ratios() {
        // 61 words; 6 `#` per 61 words is under 0.1, 7 is over.
        // The marks go first so that the line does not end with an ellipsis.
        let with = |s: &str, k: usize| format!("{} {GOOD}", s.repeat(k));
        assert_eq!(words(GOOD), 61);
        assert_eq!(rule(&with("#", 6)), None);
        let d = check_gopher_quality(&with("#", 7), &Default::default()).unwrap();
        assert_eq!(d.rule, Rule::GopherHashRatio);
        assert!((d.value - 7.0 / 61.0).abs() < 1e-9);
        assert_eq!(rule(&with(" …", 6)), None);
        assert_eq!(rule(&with(" ...", 7)), Some(Rule::GopherEllipsisRatio));
    }

    #[test]
    fn bullet_and_ellipsis_lines() {
        let sentences: Vec<&str> = GOOD.split(". ").collect();
        let k = sentences.len();
        // 10 lines: 9 bullets is 0.9 (kept), 10 is over.
        let lines = |bullets: usize| {
            (0..10)
                .map(|i| format!("{}{}", if i < bullets { "• " } else { "" }, sentences[i % k]))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(rule(&lines(9)), None);
        assert_eq!(rule(&lines(10)), Some(Rule::GopherBulletLines));
        let md = (0..10).map(|i| format!("- {}", sentences[i % k])).collect::<Vec<_>>().join("\n");
        assert_eq!(rule(&md), Some(Rule::GopherBulletLines));
        // 10 lines: 3 ending with an ellipsis is 0.3 (kept), 4 is over.
        let trailing = |e: usize| {
            (0..10).map(|i| format!("{}{}", sentences[i % k], if i < e { "…" } else { "." })).collect::<Vec<_>>().join("\n")
        };
        assert_eq!(rule(&trailing(3)), None);
        let d = check_gopher_quality(&trailing(4), &Default::default()).unwrap();
        assert_eq!((d.rule, d.value), (Rule::GopherEllipsisLines, 0.4));
    }

    #[test]
    fn alphabetic_words_and_stop_words() {
        // 61 words + 15 numbers: 0.803 (kept); 16 numbers: 0.792, below.
        let nums = |k: usize| format!("{GOOD} {}", (0..k).map(|i| (1000 + i).to_string()).collect::<Vec<_>>().join(" "));
        assert_eq!(rule(&nums(15)), None);
        let d = check_gopher_quality(&nums(16), &Default::default()).unwrap();
        assert_eq!(d.rule, Rule::GopherAlphaWords);
        // Stop words: the same text with them replaced.
        let mut no_stops = GOOD.to_string();
        for w in ["the ", "The ", " and ", " to ", " that ", " of ", " with "] {
            no_stops = no_stops.replace(w, " many ");
        }
        let d = check_gopher_quality(&no_stops, &Default::default()).unwrap();
        assert_eq!((d.rule, d.value), (Rule::GopherStopWords, 0.0));
        let one = format!("{no_stops} the");
        assert_eq!(rule(&one), Some(Rule::GopherStopWords));
        assert_eq!(rule(&format!("{no_stops} The end of it")), None, "two occurrences, any case");
    }

    fn rep(t: &str) -> Option<QualityDrop> {
        check_repetition(t, &RepetitionConfig::default())
    }

    /// Ten lines of eight words each, no word used twice.
    fn distinct_lines() -> Vec<String> {
        (0..10).map(|i| (0..8).map(|j| format!("w{i}x{j}")).collect::<Vec<_>>().join(" ")).collect()
    }

    /// Repetition settings with only the line and paragraph rules.
    fn lines_only() -> RepetitionConfig {
        RepetitionConfig { top_ngrams: vec![], dup_ngrams: vec![], ..Default::default() }
    }

    #[test]
    fn duplicate_lines() {
        let l = distinct_lines();
        // 10 lines, 3 duplicates: 0.3 kept; 4: over.
        let doc = |k: usize| {
            let mut v: Vec<String> = l[..10 - k].to_vec();
            v.extend((0..k).map(|_| l[0].clone()));
            v.join("\n")
        };
        let cfg = RepetitionConfig { max_dup_line_chars: 1.0, max_dup_paragraph_chars: 1.0, ..lines_only() };
        assert_eq!(check_repetition(&doc(3), &cfg), None);
        let d = check_repetition(&doc(4), &cfg).unwrap();
        assert_eq!((d.rule, d.value), (Rule::RepetitionDupLines, 0.4));
        // Blank lines are not duplicates of each other.
        assert_eq!(rep(&l.join("\n\n\n")), None);
    }

    #[test]
    fn duplicate_paragraphs_and_their_characters() {
        let l = distinct_lines();
        let para = |i: usize| format!("{}\n{}", l[i], l[(i + 5) % 10]);
        // Two-line paragraphs: 4 distinct + 2 copies of the first = 1/3 of paragraphs.
        let mut ps: Vec<String> = (0..4).map(para).collect();
        ps.push(para(0));
        ps.push(para(0));
        let d = rep(&ps.join("\n\n")).unwrap();
        // Lines: 12, 4 are copies (0.33) > 0.3: the line rule comes first.
        assert_eq!(d.rule, Rule::RepetitionDupLines);
        let cfg = RepetitionConfig { max_dup_lines: 1.0, ..lines_only() };
        let d = check_repetition(&ps.join("\n\n"), &cfg).unwrap();
        assert_eq!(d.rule, Rule::RepetitionDupParagraphs);
        assert!((d.value - 2.0 / 6.0).abs() < 1e-9);
        let cfg = RepetitionConfig { max_dup_lines: 1.0, max_dup_paragraphs: 1.0, ..lines_only() };
        let d = check_repetition(&ps.join("\n\n"), &cfg).unwrap();
        assert_eq!(d.rule, Rule::RepetitionDupLineChars);
        let cfg = RepetitionConfig { max_dup_line_chars: 1.0, ..cfg };
        let d = check_repetition(&ps.join("\n\n"), &cfg).unwrap();
        assert_eq!(d.rule, Rule::RepetitionDupParagraphChars);
        assert!(d.value > 0.2 && d.value < 0.4, "{}", d.value);
    }

    #[test]
    fn top_ngram_fraction() {
        // "data science" repeated after 40 distinct 6-letter words.
        let filler: Vec<String> = (0..40).map(|i| format!("w{:05}", i)).collect();
        let base = filler.join(" ");
        // Each "data science" is 11 word characters; filler is 40 × 6 = 240.
        // k copies: 11k / (240 + 11k) > 0.2 ⇔ k > 5.45.
        let doc = |k: usize| format!("{base} {}", "data science ".repeat(k));
        let cfg = RepetitionConfig { top_ngrams: vec![(2, 0.20)], dup_ngrams: vec![], ..Default::default() };
        assert_eq!(check_repetition(&doc(5), &cfg), None);
        let d = check_repetition(&doc(6), &cfg).unwrap();
        assert_eq!(d.rule, Rule::RepetitionTopNgram);
        assert!(d.detail.contains("\"data science\""), "{}", d.detail);
        assert!((d.value - 66.0 / 306.0).abs() < 1e-9, "{}", d.value);
        // A 2-gram seen once is no repetition, however short the document.
        assert_eq!(check_repetition("hello there", &cfg), None);
    }

    #[test]
    fn repeated_ngram_fraction() {
        let filler: Vec<String> = (0..100).map(|i| format!("w{:05}", i)).collect();
        // A 10-word phrase (6 chars per word) repeated: the second copy covers 60 chars.
        let phrase: Vec<String> = (0..10).map(|i| format!("p{:05}", i)).collect();
        let phrase = phrase.join(" ");
        let cfg = RepetitionConfig { top_ngrams: vec![], ..Default::default() };
        // 100 filler + 2 copies = 720 chars; repeat covers 60/720 = 0.083 < 0.10 for every n.
        let doc = format!("{phrase} {} {phrase}", filler.join(" "));
        assert_eq!(check_repetition(&doc, &cfg), None);
        // Three copies: 120/780 = 0.154 > 0.15 for 5-grams.
        let doc = format!("{phrase} {} {phrase} {phrase}", filler.join(" "));
        let d = check_repetition(&doc, &cfg).unwrap();
        assert_eq!(d.rule, Rule::RepetitionDupNgram);
        assert!(d.detail.starts_with("repeated 5-grams"), "{}", d.detail);
        assert!((d.value - 120.0 / 780.0).abs() < 1e-9);
        // With the 5-gram limit off, the 10-gram one (0.10) still applies.
        let cfg10 = RepetitionConfig { dup_ngrams: vec![(10, 0.10)], ..cfg };
        assert_eq!(check_repetition(&doc, &cfg10).unwrap().rule, Rule::RepetitionDupNgram);
    }
}
