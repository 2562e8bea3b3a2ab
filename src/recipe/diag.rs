//! Diagnostics for recipe problems: every one names the file, line and column, and
//! where it helps, a hint (the nearest known key, the accepted values).
//!
//! Recipe loading collects all problems it can find before it fails, so that a user
//! fixes a recipe in one pass rather than one error per run.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    /// Byte range in the recipe text, when the problem has a place.
    pub span: Option<Range<usize>>,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>, span: Option<Range<usize>>) -> Self {
        Diagnostic { message: message.into(), span, hint: None }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// All problems found in one recipe file; rendered as the error the user sees.
#[derive(Debug)]
pub struct RecipeError {
    pub file: PathBuf,
    pub text: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl RecipeError {
    /// 1-based line and column of a byte offset.
    pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let col = text[line_start..offset].chars().count() + 1;
        (line, col)
    }

    fn location(&self, d: &Diagnostic) -> String {
        let file = display_path(&self.file);
        match &d.span {
            Some(span) => {
                let (line, col) = Self::line_col(&self.text, span.start);
                format!("{file}:{line}:{col}")
            }
            None => file,
        }
    }
}

/// How much of a recipe line a problem shows.
const SHOWN_LINE_CHARS: usize = 200;

impl fmt::Display for RecipeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.diagnostics.len();
        if n == 1 {
            write!(f, "invalid recipe `{}`", display_path(&self.file))?;
        } else {
            write!(f, "invalid recipe `{}`: {n} problems", display_path(&self.file))?;
        }
        for d in &self.diagnostics {
            write!(f, "\n  --> {}: {}", self.location(d), d.message)?;
            if let Some(span) = &d.span {
                let (line, col) = Self::line_col(&self.text, span.start);
                if let Some(src) = self.text.lines().nth(line - 1) {
                    // A very long line (a `where` of thousands of terms) is shown cut.
                    let shown: String = src.chars().take(SHOWN_LINE_CHARS).collect();
                    let cut = shown.len() < src.len();
                    write!(f, "\n      | {shown}{}", if cut { "…" } else { "" })?;
                    let col = col.min(SHOWN_LINE_CHARS + 1);
                    let width = if span.end > span.start {
                        self.text[span.start..span.end.min(self.text.len())]
                            .lines()
                            .next()
                            .map(|l| l.chars().count())
                            .unwrap_or(1)
                            .max(1)
                    } else {
                        1
                    };
                    let width = width.min(SHOWN_LINE_CHARS + 2 - col);
                    write!(f, "\n      | {}{}", " ".repeat(col - 1), "^".repeat(width))?;
                }
            }
            if let Some(h) = &d.hint {
                write!(f, "\n      help: {h}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for RecipeError {}

pub fn display_path(p: &Path) -> String {
    p.display().to_string()
}

/// The closest candidate to `word` by Jaro-Winkler similarity, if it is close enough
/// to be a plausible typo.
pub fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(RecipeError::line_col(text, 0), (1, 1));
        assert_eq!(RecipeError::line_col(text, 6), (2, 1));
        assert_eq!(RecipeError::line_col(text, 8), (2, 3));
    }

    #[test]
    fn nearest_finds_typos_and_ignores_strangers() {
        let keys = ["fields", "format", "filters"];
        assert_eq!(nearest("feilds", &keys), Some("fields"));
        assert_eq!(nearest("formta", &keys), Some("format"));
        assert_eq!(nearest("zzz", &keys), None);
    }
}
