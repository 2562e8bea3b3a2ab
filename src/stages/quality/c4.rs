//! The C4 heuristics (Raffel et al. 2020, "Exploring the Limits of Transfer Learning
//! with a Unified Text-to-Text Transformer", JMLR 21, §2.2).
//!
//! C4 works on lines first, then on the page. Lines are kept only if they end in a
//! terminal punctuation mark (period, exclamation mark, question mark or end quotation
//! mark) and hold at least 5 words; lines mentioning "javascript" are removed. A page
//! is dropped when it contains "lorem ipsum" or a curly bracket, or when fewer than 3
//! sentences are left after the line rules. The reference implementation
//! (`tensorflow_datasets/text/c4_utils.py`, constants `_MIN_WORDS_PER_LINE = 5`,
//! `_MIN_NUM_SENTENCES = 3`) also removes lines with a word longer than 1,000
//! characters, lines ending in an ellipsis, and lines with the policy phrases "terms of
//! use", "privacy policy", "cookie policy", "uses cookies", "use of cookies" and "use
//! cookies"; these are followed here too. (datatrove's `C4QualityFilter` defaults to 3
//! words per line and 5 sentences, the other way round.) The bad-words list is not
//! applied: it is a separate, third-party list.
//!
//! As a filter, [`check_c4`] keeps or drops the page without changing it; the lines C4
//! would remove are reported by [`c4_lines`] for a stage that wants to rewrite the
//! text. Sentences are counted with a plain rule (a `.`, `!` or `?`, possibly followed
//! by closing quotes or brackets, before whitespace or the end of the line), where C4
//! used NLTK's Punkt tokenizer; abbreviations such as "Dr." can count one extra.

use super::{QualityDrop, fmt_num};
use crate::ledger::Rule;

/// C4 settings; the defaults are C4's.
#[derive(Debug, Clone, PartialEq)]
pub struct C4Config {
    pub min_words_per_line: usize,
    pub min_sentences: usize,
    pub max_word_length: usize,
    /// Remove lines that do not end in terminal punctuation.
    pub terminal_punctuation: bool,
    /// Remove lines mentioning javascript.
    pub javascript: bool,
    /// Remove lines with the cookie and terms-of-use phrases.
    pub policy: bool,
    /// Drop pages with "lorem ipsum".
    pub lorem_ipsum: bool,
    /// Drop pages with a `{`.
    pub curly_bracket: bool,
}

impl Default for C4Config {
    fn default() -> Self {
        C4Config {
            min_words_per_line: 5,
            min_sentences: 3,
            max_word_length: 1000,
            terminal_punctuation: true,
            javascript: true,
            policy: true,
            lorem_ipsum: true,
            curly_bracket: true,
        }
    }
}

const POLICY: [&str; 6] = ["terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies"];

/// Why C4 removes a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineRule {
    LongWord,
    NoTerminalPunctuation,
    TooFewWords,
    Javascript,
    Policy,
}

/// The outcome of C4's line rules on a page.
#[derive(Debug, Clone, PartialEq)]
pub struct C4Lines<'a> {
    pub kept: Vec<&'a str>,
    /// Removed lines with the rule that removed each (blank lines are not listed).
    pub removed: Vec<(&'a str, LineRule)>,
}

impl C4Lines<'_> {
    /// The kept lines joined by newlines: the page as C4 would keep it.
    pub fn text(&self) -> String {
        self.kept.join("\n")
    }

    /// Sentences in the kept lines.
    pub fn sentences(&self) -> usize {
        self.kept.iter().map(|l| count_sentences(l)).sum()
    }
}

fn ends_terminal(line: &str) -> bool {
    if line.ends_with("...") || line.ends_with('…') {
        return false;
    }
    line.ends_with(['.', '!', '?', '"', '”'])
}

/// Sentence ends in one line: terminal marks (with closing quotes or brackets after
/// them) followed by whitespace or the end.
pub fn count_sentences(line: &str) -> usize {
    let chars: Vec<char> = line.chars().collect();
    let mut n = 0;
    let mut i = 0;
    while i < chars.len() {
        if matches!(chars[i], '.' | '!' | '?') {
            let mut j = i + 1;
            while j < chars.len() && matches!(chars[j], '.' | '!' | '?') {
                j += 1;
            }
            while j < chars.len() && matches!(chars[j], '"' | '\'' | '”' | '’' | ')' | ']') {
                j += 1;
            }
            if j == chars.len() || chars[j].is_whitespace() {
                n += 1;
            }
            i = j;
        } else {
            i += 1;
        }
    }
    n
}

/// Applies C4's line rules.
pub fn c4_lines<'a>(text: &'a str, cfg: &C4Config) -> C4Lines<'a> {
    let mut out = C4Lines { kept: Vec::new(), removed: Vec::new() };
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let lower = line.to_lowercase();
        let why = if words.iter().any(|w| w.chars().count() > cfg.max_word_length) {
            Some(LineRule::LongWord)
        } else if cfg.terminal_punctuation && !ends_terminal(line) {
            Some(LineRule::NoTerminalPunctuation)
        } else if words.len() < cfg.min_words_per_line {
            Some(LineRule::TooFewWords)
        } else if cfg.javascript && lower.contains("javascript") {
            Some(LineRule::Javascript)
        } else if cfg.policy && POLICY.iter().any(|p| lower.contains(p)) {
            Some(LineRule::Policy)
        } else {
            None
        };
        match why {
            Some(r) => out.removed.push((line, r)),
            None => out.kept.push(line),
        }
    }
    out
}

/// C4's page rules: `None` keeps the page.
pub fn check_c4(text: &str, cfg: &C4Config) -> Option<QualityDrop> {
    if cfg.lorem_ipsum
        && let Some(at) = text.to_lowercase().find("lorem ipsum")
    {
        return Some(QualityDrop::new(
            Rule::C4LoremIpsum,
            at as f64,
            0.0,
            format!("contains \"lorem ipsum\" at byte {at}"),
        ));
    }
    if cfg.curly_bracket
        && let Some(at) = text.find('{')
    {
        let line = text[..at].matches('\n').count() + 1;
        return Some(QualityDrop::new(Rule::C4CurlyBracket, line as f64, 0.0, format!("contains `{{` on line {line}")));
    }
    let lines = c4_lines(text, cfg);
    let n = lines.sentences();
    if n < cfg.min_sentences {
        return Some(QualityDrop::new(
            Rule::C4TooFewSentences,
            n as f64,
            cfg.min_sentences as f64,
            format!(
                "{n} sentences in {} lines kept by C4's line rules ({} removed) < {}",
                lines.kept.len(),
                lines.removed.len(),
                fmt_num(cfg.min_sentences as f64)
            ),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "The council met on Monday to discuss the new bridge.\n\
        Residents raised concerns about traffic and noise near the school.\n\
        The mayor promised a report before the end of the month!\n\
        Home | About | Contact\n\
        Please enable JavaScript to view the comments below.\n\
        By using this site you agree to our terms of use.\n\
        Share this";

    #[test]
    fn line_rules_keep_sentences_and_remove_boilerplate() {
        let l = c4_lines(PAGE, &C4Config::default());
        assert_eq!(l.kept.len(), 3);
        let rules: Vec<LineRule> = l.removed.iter().map(|(_, r)| *r).collect();
        assert_eq!(
            rules,
            [LineRule::NoTerminalPunctuation, LineRule::Javascript, LineRule::Policy, LineRule::NoTerminalPunctuation]
        );
        assert_eq!(l.sentences(), 3);
        assert!(l.text().starts_with("The council met"));
        assert_eq!(check_c4(PAGE, &C4Config::default()), None);
    }

    #[test]
    fn too_few_sentences_after_line_rules() {
        // Two good lines: 2 sentences < 3.
        let two: String = PAGE.lines().take(2).collect::<Vec<_>>().join("\n");
        let d = check_c4(&two, &C4Config::default()).unwrap();
        assert_eq!((d.rule, d.value, d.limit), (Rule::C4TooFewSentences, 2.0, 3.0));
        // A line of four words is removed, one of five kept.
        let short = format!("{two}\nIt was very late.");
        assert_eq!(check_c4(&short, &C4Config::default()).unwrap().rule, Rule::C4TooFewSentences);
        let five = format!("{two}\nIt was very late indeed.");
        assert_eq!(check_c4(&five, &C4Config::default()), None);
        // Two sentences on one line count as two; an ellipsis does not end a line.
        let packed = format!("{two}\nThen it rained. Everyone went home...");
        assert_eq!(check_c4(&packed, &C4Config::default()).unwrap().rule, Rule::C4TooFewSentences);
        let closed = format!("{two}\nThen it rained. \"Everyone went home.\"");
        assert_eq!(check_c4(&closed, &C4Config::default()), None);
    }

    #[test]
    fn page_rules() {
        let lorem = format!("{PAGE}\nLorem ipsum dolor sit amet.");
        assert_eq!(check_c4(&lorem, &C4Config::default()).unwrap().rule, Rule::C4LoremIpsum);
        let code = format!("{PAGE}\nfn main() {{ println!(\"hi\"); }}");
        let d = check_c4(&code, &C4Config::default()).unwrap();
        assert_eq!((d.rule, d.value), (Rule::C4CurlyBracket, 8.0));
        let off = C4Config { curly_bracket: false, ..Default::default() };
        assert_eq!(check_c4(&code, &off), None);
    }

    #[test]
    fn sentence_counting() {
        assert_eq!(count_sentences("One. Two! Three?"), 3);
        assert_eq!(count_sentences("Pi is 3.14 today."), 1);
        assert_eq!(count_sentences("He said \"stop.\" Then left."), 2);
        assert_eq!(count_sentences("Wait... what?!"), 2);
        assert_eq!(count_sentences("no ending"), 0);
    }
}
