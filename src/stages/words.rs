//! The normalised word stream that near-dedup and decontamination share.
//!
//! A word is a maximal run of alphanumeric characters (Unicode `Alphabetic` or
//! `Numeric`), compared lowercased; everything else (whitespace, punctuation, symbols)
//! only separates words. So `"Hello, World!"` and `"hello   world"` give the same
//! words, and an edit that only touches punctuation, case or spacing changes nothing.
//! Each word is reported as the xxh3 hash of its lowercased form together with its byte
//! span in the original text, so callers can hash n-grams without allocating and still
//! quote the original text as evidence.
//!
//! Scripts written without spaces (Chinese, Japanese, Thai) come out as one long word
//! per run of letters; n-gram methods are weak on them, whatever the tokeniser.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use xxhash_rust::xxh3::xxh3_64;

/// Keys that are already well-mixed 64-bit hashes are used as they are: a map keyed by
/// them needs no second hash.
#[derive(Default)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// A map keyed by hashes.
pub type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdentityHasher>>;

/// One normalised word: the hash of its lowercased text and its byte range in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word {
    pub hash: u64,
    pub start: usize,
    pub end: usize,
}

/// Calls `f` for every word of `text`, in order.
pub fn for_each_word(text: &str, mut f: impl FnMut(Word)) {
    let bytes = text.as_bytes();
    let n = bytes.len();
    let mut buf: Vec<u8> = Vec::with_capacity(64);
    let mut i = 0;
    while i < n {
        // Separators.
        let b = bytes[i];
        if b < 0x80 {
            if !b.is_ascii_alphanumeric() {
                i += 1;
                continue;
            }
        } else {
            // `text` is valid UTF-8 and `i` is on a character boundary.
            let c = text[i..].chars().next().expect("char boundary");
            if !c.is_alphanumeric() {
                i += c.len_utf8();
                continue;
            }
        }
        // A word: its hash is of its lowercased text, which for a word of lowercase
        // ASCII (most words) is the text itself, with no copy.
        let start = i;
        let mut lowercase_ascii = true;
        while i < n {
            let b = bytes[i];
            if b < 0x80 {
                if !b.is_ascii_alphanumeric() {
                    break;
                }
                lowercase_ascii &= !b.is_ascii_uppercase();
                i += 1;
            } else {
                let c = text[i..].chars().next().expect("char boundary");
                if !c.is_alphanumeric() {
                    break;
                }
                lowercase_ascii = false;
                i += c.len_utf8();
            }
        }
        let hash = if lowercase_ascii {
            xxh3_64(&bytes[start..i])
        } else {
            buf.clear();
            let mut tmp = [0u8; 4];
            for c in text[start..i].chars() {
                if c.is_ascii() {
                    buf.push(c.to_ascii_lowercase() as u8);
                } else {
                    for lc in c.to_lowercase() {
                        buf.extend_from_slice(lc.encode_utf8(&mut tmp).as_bytes());
                    }
                }
            }
            xxh3_64(&buf)
        };
        f(Word { hash, start, end: i });
    }
}

/// All words of `text`.
pub fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::with_capacity(text.len() / 5 + 1);
    for_each_word(text, |w| out.push(w));
    out
}

/// One step of an order-sensitive hash over word hashes: `mix(mix(a, b), c)` for the
/// words `a b c` (a rotation, xor, multiply and xor-shift, as in 64-bit finalisers;
/// distinct sequences collide with probability about 2^-64 per pair). Cheaper than
/// [`ngram_hash`] when n-grams are grown one word at a time.
#[inline]
pub fn mix(h: u64, w: u64) -> u64 {
    let x = (h.rotate_left(23) ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 29)
}

/// Hash of a sequence of word hashes (an n-gram), order-sensitive. Uses xxh3 over the
/// words' hashes, so n-grams of different lengths do not collide by construction either.
#[inline]
pub fn ngram_hash(words: &[Word]) -> u64 {
    let mut buf = [0u8; 8 * 32];
    if words.len() <= 32 {
        for (k, w) in words.iter().enumerate() {
            buf[k * 8..k * 8 + 8].copy_from_slice(&w.hash.to_le_bytes());
        }
        xxh3_64(&buf[..words.len() * 8])
    } else {
        let v: Vec<u8> = words.iter().flat_map(|w| w.hash.to_le_bytes()).collect();
        xxh3_64(&v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(t: &str) -> Vec<&str> {
        words(t).iter().map(|w| &t[w.start..w.end]).collect()
    }

    #[test]
    fn punctuation_case_and_spacing_do_not_matter() {
        assert_eq!(texts("Hello, World!  It's 3.14"), ["Hello", "World", "It", "s", "3", "14"]);
        let a: Vec<u64> = words("Hello, World!").iter().map(|w| w.hash).collect();
        let b: Vec<u64> = words("hello\n\tworld").iter().map(|w| w.hash).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn unicode_words_are_lowercased() {
        assert_eq!(texts("Ça va — ÉTÉ déjà"), ["Ça", "va", "ÉTÉ", "déjà"]);
        let a: Vec<u64> = words("ÉTÉ").iter().map(|w| w.hash).collect();
        let b: Vec<u64> = words("été").iter().map(|w| w.hash).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn ngram_hash_is_order_sensitive() {
        let w = words("a b");
        let r = [w[1], w[0]];
        assert_ne!(ngram_hash(&w), ngram_hash(&r));
        assert!(words("  ,;  ").is_empty());
    }
}
