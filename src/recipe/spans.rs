//! Where keys and values sit in a TOML document, for located errors: the recipe's and
//! the compliance data's loaders both use it.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

#[derive(Debug, Clone)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

pub(crate) fn path_segments(p: &serde_ignored::Path<'_>) -> Vec<Seg> {
    use serde_ignored::Path as P;
    let mut out = Vec::new();
    let mut cur = p;
    loop {
        match cur {
            P::Root => break,
            P::Seq { parent, index } => {
                out.push(Seg::Index(*index));
                cur = parent;
            }
            P::Map { parent, key } => {
                out.push(Seg::Key(key.clone()));
                cur = parent;
            }
            P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
                cur = parent
            }
        }
    }
    out.reverse();
    out
}

/// Finds where keys and values sit in the recipe text.
pub(crate) struct SpanIndex<'a> {
    pub(crate) root: &'a Spanned<DeTable<'a>>,
}

impl SpanIndex<'_> {
    /// Span of the key (when `key_span`) or the value at `segs`.
    pub(crate) fn find(&self, segs: &[Seg], key_span: bool) -> Option<Range<usize>> {
        let mut table: &DeTable = self.root.get_ref();
        let mut value: Option<&Spanned<DeValue>> = None;
        let mut last_key: Option<Range<usize>> = None;
        for (i, seg) in segs.iter().enumerate() {
            match seg {
                Seg::Key(k) => {
                    if let Some(v) = value {
                        match v.get_ref() {
                            DeValue::Table(t) => table = t,
                            _ => return Some(v.span()),
                        }
                    }
                    let (ks, v) = table.iter().find(|(ks, _)| ks.get_ref().as_ref() == k.as_str())?;
                    last_key = Some(ks.span());
                    value = Some(v);
                }
                Seg::Index(n) => {
                    let v = value?;
                    match v.get_ref() {
                        DeValue::Array(a) => value = Some(a.get(*n)?),
                        _ => return Some(v.span()),
                    }
                }
            }
            if i + 1 == segs.len() && key_span && matches!(seg, Seg::Key(_)) {
                return last_key;
            }
        }
        value.map(|v| v.span())
    }

}
