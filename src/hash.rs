//! Hashing used across the pipeline: sha256 for files and recipes (what auditors
//! re-check), xxh3 for ids and content (fast, stable across platforms and versions).

use sha2::{Digest, Sha256};
use xxhash_rust::xxh3::{Xxh3, xxh3_128};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// sha256 of a file's bytes, streamed.
pub fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// 128-bit xxh3 of a byte string.
pub fn xxh128(bytes: &[u8]) -> u128 {
    xxh3_128(bytes)
}

/// 128-bit xxh3 over several parts, each length-prefixed so that part boundaries
/// matter (`("ab", "c")` and `("a", "bc")` differ).
pub fn xxh128_parts(parts: &[&[u8]]) -> u128 {
    let mut h = Xxh3::new();
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.digest128()
}

pub fn hex128(v: u128) -> String {
    format!("{v:032x}")
}

/// A deterministic number in [0, 1) from a seed and a key, for seeded sampling that
/// does not depend on the order or thread a record is processed in.
pub fn unit_interval(seed: u64, key: &[u8]) -> f64 {
    let h = xxhash_rust::xxh3::xxh3_64_with_seed(key, seed);
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn parts_are_length_prefixed() {
        assert_ne!(xxh128_parts(&[b"ab", b"c"]), xxh128_parts(&[b"a", b"bc"]));
    }

    #[test]
    fn unit_interval_is_in_range_and_seeded() {
        for i in 0..1000u32 {
            let x = unit_interval(7, &i.to_le_bytes());
            assert!((0.0..1.0).contains(&x));
        }
        assert_ne!(unit_interval(1, b"k"), unit_interval(2, b"k"));
    }
}
