//! Exact dedup across all sources on normalised content (xxh3-128 of the content).
//!
//! The pipeline feeds sources in precedence order (higher `priority` first, then recipe
//! order), so the first document seen with a content hash is the survivor and every
//! later one is a duplicate of it. Memory is one hash table entry (32 bytes of key and
//! survivor id) per kept document, not the documents themselves.

use std::collections::HashMap;

use crate::document::Document;
use crate::ledger::{DropReason, Rule};

#[derive(Default)]
pub struct ExactDedup {
    seen: HashMap<u128, (u128, usize)>,
}

impl ExactDedup {
    /// `None` when the document is the first with its content; otherwise the reason,
    /// naming the survivor.
    pub fn check(&mut self, doc: &Document, source_names: &[String]) -> Option<DropReason> {
        match self.seen.entry(doc.content_hash) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert((doc.id, doc.source));
                None
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                let (id, src) = *o.get();
                let mut r = DropReason::new(
                    Rule::ExactDuplicate,
                    None,
                    format!("same content as {} in source `{}`", crate::hash::hex128(id), source_names[src]),
                );
                r.duplicate_of = Some(id);
                Some(r)
            }
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{Content, Locator};

    #[test]
    fn first_seen_survives() {
        let names = vec!["a".to_string(), "b".to_string()];
        let d = |src: usize, row: u64, t: &str| {
            Document::new(src, &names[src], Locator { file: "f".into(), row, sub: None }, Content::Text(t.into()))
        };
        let mut dd = ExactDedup::default();
        let first = d(0, 1, "x");
        assert!(dd.check(&first, &names).is_none());
        assert!(dd.check(&d(0, 2, "y"), &names).is_none());
        let r = dd.check(&d(1, 1, "x"), &names).unwrap();
        assert_eq!(r.duplicate_of, Some(first.id));
        assert!(r.detail.contains("source `a`"));
        assert_eq!(dd.len(), 2);
    }
}
