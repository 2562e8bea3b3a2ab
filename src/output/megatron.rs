//! Megatron-LM's indexed dataset (`.bin` + `.idx`, "MMIDIDX" version 1) and NumPy
//! `.npy` arrays: formats any trainer can memory-map without curate installed.
//!
//! The `.idx` layout follows Megatron-core's `_IndexWriter`
//! (megatron/core/datasets/indexed_dataset.py): the 9-byte magic `MMIDIDX\0\0`, version
//! `<Q` = 1, the dtype code `<B` (1 uint8, 4 int32, 8 uint16), the sequence count `<Q`,
//! the document-index count `<Q`, then the sequence lengths (int32), the sequence byte
//! offsets into `.bin` (int64) and the document indices (int64, starting at 0; here
//! every sequence is one document, so they are 0..=n).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

pub const MAGIC: &[u8; 9] = b"MMIDIDX\x00\x00";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    U8,
    U16,
    I32,
}

impl DType {
    pub fn code(self) -> u8 {
        match self {
            DType::U8 => 1,
            DType::I32 => 4,
            DType::U16 => 8,
        }
    }
    pub fn size(self) -> usize {
        match self {
            DType::U8 => 1,
            DType::U16 => 2,
            DType::I32 => 4,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::I32 => "int32",
        }
    }
}

/// Writes `PREFIX.bin` sequence by sequence, then `PREFIX.idx` on `finish`.
pub struct IndexedWriter {
    bin: BufWriter<File>,
    prefix: PathBuf,
    dtype: DType,
    lengths: Vec<i32>,
    pointers: Vec<i64>,
    offset: i64,
}

impl IndexedWriter {
    pub fn create(prefix: &Path, dtype: DType) -> anyhow::Result<Self> {
        let path = suffixed(prefix, ".bin");
        let f = File::create(&path).with_context(|| format!("cannot create `{}`", path.display()))?;
        Ok(IndexedWriter {
            bin: BufWriter::with_capacity(1 << 20, f),
            prefix: prefix.to_path_buf(),
            dtype,
            lengths: Vec::new(),
            pointers: Vec::new(),
            offset: 0,
        })
    }

    /// Append one sequence of values (token ids or mask bytes).
    pub fn push<T: Copy + Into<u32>>(&mut self, values: &[T]) -> anyhow::Result<()> {
        let mut buf = Vec::with_capacity(values.len() * self.dtype.size());
        for &v in values {
            let v: u32 = v.into();
            match self.dtype {
                DType::U8 => buf.push(u8::try_from(v).context("value does not fit uint8")?),
                DType::U16 => buf.extend_from_slice(&u16::try_from(v).context("token id does not fit uint16")?.to_le_bytes()),
                DType::I32 => buf.extend_from_slice(&i32::try_from(v).context("token id does not fit int32")?.to_le_bytes()),
            }
        }
        self.bin.write_all(&buf).context("writing a .bin file")?;
        self.lengths.push(i32::try_from(values.len()).context("sequence too long for int32 lengths")?);
        self.pointers.push(self.offset);
        self.offset += buf.len() as i64;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// Flush `.bin` and write `.idx`. Returns both paths.
    pub fn finish(mut self) -> anyhow::Result<(PathBuf, PathBuf)> {
        self.bin.flush().context("flushing a .bin file")?;
        let idx = suffixed(&self.prefix, ".idx");
        let f = File::create(&idx).with_context(|| format!("cannot create `{}`", idx.display()))?;
        let mut w = BufWriter::new(f);
        w.write_all(MAGIC)?;
        w.write_all(&1u64.to_le_bytes())?;
        w.write_all(&[self.dtype.code()])?;
        let n = self.lengths.len() as u64;
        w.write_all(&n.to_le_bytes())?;
        w.write_all(&(n + 1).to_le_bytes())?;
        for l in &self.lengths {
            w.write_all(&l.to_le_bytes())?;
        }
        for p in &self.pointers {
            w.write_all(&p.to_le_bytes())?;
        }
        for d in 0..=n {
            w.write_all(&(d as i64).to_le_bytes())?;
        }
        w.flush().with_context(|| format!("writing `{}`", idx.display()))?;
        Ok((suffixed(&self.prefix, ".bin"), idx))
    }
}

/// `prefix` + `suffix` (not `with_extension`, which would eat the `.loss` of
/// `train.loss`).
fn suffixed(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Write a 1-D little-endian int64 array as a `.npy` file (format version 1.0: magic,
/// version, a header dict padded with spaces to a multiple of 64 bytes and ending in a
/// newline, then the data), readable with `np.load(path, mmap_mode="r")`.
pub fn write_npy_i64(path: &Path, values: &[i64]) -> anyhow::Result<()> {
    let mut header = format!("{{'descr': '<i8', 'fortran_order': False, 'shape': ({},), }}", values.len());
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + values.len() * 8);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, out).with_context(|| format!("cannot write `{}`", path.display()))
}

/// A memory-mapped Megatron indexed dataset, for `inspect` and tests.
pub struct IndexedReader {
    dtype: DType,
    lengths: Vec<i32>,
    pointers: Vec<i64>,
    bin: memmap2::Mmap,
}

impl IndexedReader {
    pub fn open(prefix: &Path) -> anyhow::Result<IndexedReader> {
        let idx_path = suffixed(prefix, ".idx");
        let idx = std::fs::read(&idx_path).with_context(|| format!("cannot read `{}`", idx_path.display()))?;
        let bad = || anyhow::anyhow!("`{}` is not a Megatron indexed dataset index", idx_path.display());
        if idx.len() < 34 || &idx[..9] != MAGIC {
            return Err(bad());
        }
        let u64_at = |o: usize| u64::from_le_bytes(idx[o..o + 8].try_into().expect("8 bytes"));
        if u64_at(9) != 1 {
            anyhow::bail!("`{}`: index version {} (expected 1)", idx_path.display(), u64_at(9));
        }
        let dtype = match idx[17] {
            1 => DType::U8,
            4 => DType::I32,
            8 => DType::U16,
            c => anyhow::bail!("`{}`: unsupported dtype code {c}", idx_path.display()),
        };
        let n = u64_at(18) as usize;
        if idx.len() < 34 + n * 12 {
            return Err(bad());
        }
        let lengths = (0..n).map(|i| i32::from_le_bytes(idx[34 + 4 * i..38 + 4 * i].try_into().expect("4 bytes"))).collect();
        let p0 = 34 + 4 * n;
        let pointers = (0..n).map(|i| i64::from_le_bytes(idx[p0 + 8 * i..p0 + 8 * i + 8].try_into().expect("8 bytes"))).collect();
        let bin_path = suffixed(prefix, ".bin");
        let f = File::open(&bin_path).with_context(|| format!("cannot open `{}`", bin_path.display()))?;
        // SAFETY: read-only map of a finished output file.
        let bin = unsafe { memmap2::Mmap::map(&f) }.with_context(|| format!("cannot map `{}`", bin_path.display()))?;
        Ok(IndexedReader { dtype, lengths, pointers, bin })
    }

    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// Values of sequence `i`, widened to u32.
    pub fn get(&self, i: usize) -> Option<Vec<u32>> {
        let (len, ptr) = (*self.lengths.get(i)? as usize, *self.pointers.get(i)? as usize);
        let size = self.dtype.size();
        let bytes = self.bin.get(ptr..ptr + len * size)?;
        Some(match self.dtype {
            DType::U8 => bytes.iter().map(|&b| b as u32).collect(),
            DType::U16 => bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]) as u32).collect(),
            DType::I32 => bytes.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u32).collect(),
        })
    }
}

/// Read a 1-D `<i8` `.npy` array written by [`write_npy_i64`].
pub fn read_npy_i64(path: &Path) -> anyhow::Result<Vec<i64>> {
    let b = std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        anyhow::bail!("`{}` is not a .npy file", path.display());
    }
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap_or("");
    if !header.contains("'<i8'") {
        anyhow::bail!("`{}` does not hold int64 values", path.display());
    }
    Ok(b[10 + hlen..].chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_layout_matches_megatron() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = IndexedWriter::create(&dir.path().join("t"), DType::U16).unwrap();
        w.push(&[1u32, 2, 3]).unwrap();
        w.push(&[7u32]).unwrap();
        let (bin, idx) = w.finish().unwrap();
        assert_eq!(std::fs::read(bin).unwrap(), vec![1, 0, 2, 0, 3, 0, 7, 0]);
        let i = std::fs::read(idx).unwrap();
        assert_eq!(&i[..9], MAGIC);
        assert_eq!(u64::from_le_bytes(i[9..17].try_into().unwrap()), 1);
        assert_eq!(i[17], 8);
        assert_eq!(u64::from_le_bytes(i[18..26].try_into().unwrap()), 2);
        assert_eq!(u64::from_le_bytes(i[26..34].try_into().unwrap()), 3);
        assert_eq!(i32::from_le_bytes(i[34..38].try_into().unwrap()), 3);
        assert_eq!(i32::from_le_bytes(i[38..42].try_into().unwrap()), 1);
        assert_eq!(i64::from_le_bytes(i[42..50].try_into().unwrap()), 0);
        assert_eq!(i64::from_le_bytes(i[50..58].try_into().unwrap()), 6);
        assert_eq!(i.len(), 58 + 3 * 8);
    }

    #[test]
    fn dotted_prefixes_keep_their_dots() {
        let dir = tempfile::tempdir().unwrap();
        let w = IndexedWriter::create(&dir.path().join("train.loss"), DType::U8).unwrap();
        let (bin, idx) = w.finish().unwrap();
        assert!(bin.ends_with("train.loss.bin") && idx.ends_with("train.loss.idx"), "{bin:?} {idx:?}");
    }

    #[test]
    fn npy_header_is_aligned() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        write_npy_i64(&p, &[0, 3, 5]).unwrap();
        let b = std::fs::read(&p).unwrap();
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        assert_eq!(b[10 + hlen - 1], b'\n');
        assert_eq!(b.len(), 10 + hlen + 24);
    }

    #[test]
    fn values_that_do_not_fit_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = IndexedWriter::create(&dir.path().join("t"), DType::U16).unwrap();
        assert!(w.push(&[70_000u32]).is_err());
    }
}
