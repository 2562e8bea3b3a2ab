//! The canonical document every record becomes, and the normalisation applied to its
//! text.
//!
//! A document has a stable id (a hash of its source name and locator, so the same row
//! gets the same id on every run and machine), a locator (file, row, and the instance
//! index for sources that hold several documents per row), and its content: plain
//! `text`, or `messages` with canonical roles. The source's declared provenance is not
//! copied into each document: it belongs to the source, and every output joins it back
//! by source, so it cannot drift between documents of one source.

use std::sync::Arc;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

use crate::hash;
use crate::recipe::Role;

/// Where a record came from: the file (relative to the recipe's folder where possible)
/// and the 1-based record number in it (the line for JSONL, the data row for CSV, the
/// element for JSON arrays and Parquet), plus the 0-based instance for sources that
/// yield several documents per record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locator {
    pub file: Arc<str>,
    pub row: u64,
    pub sub: Option<u32>,
}

impl std::fmt::Display for Locator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.row)?;
        if let Some(s) = self.sub {
            write!(f, "#{s}")?;
        }
        Ok(())
    }
}

impl Locator {
    /// The document id: xxh3-128 of source name and locator.
    pub fn doc_id(&self, source: &str) -> u128 {
        let row = self.row.to_le_bytes();
        let sub = self.sub.map(|s| s as i64).unwrap_or(-1).to_le_bytes();
        hash::xxh128_parts(&[source.as_bytes(), self.file.as_bytes(), &row, &sub])
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Text(String),
    Messages(Vec<Message>),
}

impl Content {
    /// Characters of all content (not counting roles).
    pub fn chars(&self) -> u64 {
        match self {
            Content::Text(t) => t.chars().count() as u64,
            Content::Messages(ms) => ms.iter().map(|m| m.content.chars().count() as u64).sum(),
        }
    }

    /// Whitespace-separated words of all content.
    pub fn words(&self) -> u64 {
        match self {
            Content::Text(t) => t.split_whitespace().count() as u64,
            Content::Messages(ms) => ms.iter().map(|m| m.content.split_whitespace().count() as u64).sum(),
        }
    }

    /// Hash of the normalised content, the key of exact dedup. Text and chats never
    /// collide with each other, and a chat's roles are part of its identity.
    pub fn content_hash(&self) -> u128 {
        match self {
            Content::Text(t) => hash::xxh128_parts(&[b"text", t.as_bytes()]),
            Content::Messages(ms) => {
                let mut parts: Vec<&[u8]> = Vec::with_capacity(ms.len() * 2 + 1);
                parts.push(b"messages");
                for m in ms {
                    parts.push(m.role.as_str().as_bytes());
                    parts.push(m.content.as_bytes());
                }
                hash::xxh128_parts(&parts)
            }
        }
    }

    /// Visit every piece of text (for filters that look at content).
    pub fn for_each_text(&self, mut f: impl FnMut(&str)) {
        match self {
            Content::Text(t) => f(t),
            Content::Messages(ms) => ms.iter().for_each(|m| f(&m.content)),
        }
    }
}

/// A document on its way through the pipeline.
#[derive(Debug, Clone)]
pub struct Document {
    pub id: u128,
    /// Index of the source in the recipe.
    pub source: usize,
    pub locator: Locator,
    pub content: Content,
    pub content_hash: u128,
    pub chars: u64,
    pub words: u64,
}

impl Document {
    pub fn new(source: usize, source_name: &str, locator: Locator, content: Content) -> Document {
        Document {
            id: locator.doc_id(source_name),
            source,
            content_hash: content.content_hash(),
            chars: content.chars(),
            words: content.words(),
            locator,
            content,
        }
    }
}

/// Normalise text the way every stage expects it: Unicode NFC, `\n` line endings, no
/// control characters other than tab and newline (nor a byte-order mark), and no
/// surrounding whitespace. Two records that differ only in these ways are the same
/// document to dedup.
pub fn normalize(s: &str) -> String {
    let clean = |c: char| !is_stripped_control(c);
    let needs_work = s.contains('\r')
        || s.chars().any(is_stripped_control)
        || s.trim() .len() != s.len()
        || !matches!(is_nfc_quick(s.chars()), IsNormalized::Yes);
    if !needs_work {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else if clean(c) {
            out.push(c);
        }
    }
    let out: String = if matches!(is_nfc_quick(out.chars()), IsNormalized::Yes) { out } else { out.nfc().collect() };
    let trimmed = out.trim();
    if trimmed.len() == out.len() { out } else { trimmed.to_string() }
}

fn is_stripped_control(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t' && c != '\r') || c == '\u{feff}'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_line_endings_controls_and_whitespace() {
        assert_eq!(normalize("  a\r\nb\rc\u{0007}d\u{feff}\t \n"), "a\nb\ncd");
        assert_eq!(normalize("plain"), "plain");
        assert_eq!(normalize("tab\tinside"), "tab\tinside");
        assert_eq!(normalize("\u{0085}x"), "x", "C1 controls go too");
    }

    #[test]
    fn composes_to_nfc() {
        let nfd = "Jose\u{0301}";
        let nfc = "Jos\u{00e9}";
        assert_eq!(normalize(nfd), nfc);
        assert_eq!(Content::Text(normalize(nfd)).content_hash(), Content::Text(nfc.into()).content_hash());
    }

    #[test]
    fn roles_are_part_of_chat_identity() {
        let a = Content::Messages(vec![Message { role: Role::User, content: "hi".into() }]);
        let b = Content::Messages(vec![Message { role: Role::Assistant, content: "hi".into() }]);
        assert_ne!(a.content_hash(), b.content_hash());
        assert_ne!(a.content_hash(), Content::Text("hi".into()).content_hash());
    }

    #[test]
    fn ids_depend_on_source_and_locator() {
        let l = Locator { file: "a.jsonl".into(), row: 3, sub: None };
        let m = Locator { sub: Some(0), ..l.clone() };
        assert_eq!(l.doc_id("s"), l.clone().doc_id("s"));
        assert_ne!(l.doc_id("s"), l.doc_id("t"));
        assert_ne!(l.doc_id("s"), m.doc_id("s"));
        assert_eq!(m.to_string(), "a.jsonl:3#0");
    }
}
