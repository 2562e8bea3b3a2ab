//! Resolving a source's `path` entries (files, globs, folders) into an ordered list of
//! files, each with the reader that understands it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::recipe::{ReaderKind, Source};

/// Compression wrapped around a file, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// One input file of a source.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InputFile {
    pub path: PathBuf,
    /// How the file is named in locators: relative to the recipe's folder when inside
    /// it, with `/` separators, so ids do not depend on where the checkout lives.
    pub display: String,
    pub reader: ReaderKind,
    pub compression: Compression,
    pub bytes: u64,
}

fn split_compression(path: &Path) -> (Compression, String) {
    let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    if let Some(stem) = name.strip_suffix(".gz") {
        (Compression::Gzip, stem.to_string())
    } else if let Some(stem) = name.strip_suffix(".zst").or_else(|| name.strip_suffix(".zstd")) {
        (Compression::Zstd, stem.to_string())
    } else {
        (Compression::None, name)
    }
}

/// The reader for a file name, from its extension (after any compression suffix).
pub fn reader_for(path: &Path) -> Option<ReaderKind> {
    let (_, inner) = split_compression(path);
    let ext = inner.rsplit_once('.').map(|(_, e)| e)?;
    Some(match ext {
        "jsonl" | "ndjson" => ReaderKind::Jsonl,
        "json" => ReaderKind::Json,
        "csv" => ReaderKind::Csv,
        "tsv" => ReaderKind::Tsv,
        "parquet" => ReaderKind::Parquet,
        "txt" | "text" | "md" => ReaderKind::Txt,
        _ => return None,
    })
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// All files of a source in a stable order: entries in the order given, files within
/// a glob or folder sorted by path. A file named twice (or reached twice through
/// symbolic links) is read once. Anything that is not a regular file (a device, a FIFO,
/// a socket) is refused: reading it would never end, or read something other than data.
pub fn resolve(source: &Source, recipe_dir: &Path) -> anyhow::Result<Vec<InputFile>> {
    let mut warnings = Vec::new();
    let files = resolve_noting(source, recipe_dir, &mut warnings)?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    Ok(files)
}

/// [`resolve`], adding what a reviewer should know (a folder that links back into
/// itself) to `warnings` rather than printing it.
pub fn resolve_noting(source: &Source, recipe_dir: &Path, warnings: &mut Vec<String>) -> anyhow::Result<Vec<InputFile>> {
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut real_paths: HashSet<PathBuf> = HashSet::new();
    for input in &source.inputs {
        let s = input.to_string_lossy();
        let mut found: Vec<PathBuf> = Vec::new();
        if is_glob(&s) {
            let entries = glob::glob(&s).with_context(|| format!("source `{}`: bad glob `{s}`", source.name))?;
            for e in entries {
                let p = e.with_context(|| format!("source `{}`: cannot read a match of `{s}`", source.name))?;
                if !p.is_dir() {
                    found.push(p);
                }
            }
            if found.is_empty() {
                bail!("source `{}`: `{s}` matches no files", source.name);
            }
        } else {
            let meta = match std::fs::metadata(input) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("source `{}`: `{s}` does not exist", source.name),
                Err(e) => bail!("source `{}`: cannot read `{s}`: {e}", source.name),
            };
            if meta.is_dir() {
                let mut w = Walk::default();
                w.walk(input).with_context(|| format!("source `{}`: cannot list `{s}`", source.name))?;
                for (from, to) in &w.revisits {
                    warnings.push(format!(
                        "source `{}`: folder `{s}`: `{}` leads back to `{}` through a symbolic link; its files are read once",
                        source.name,
                        from.display(),
                        to.display()
                    ));
                }
                found = w.files;
                found.retain(|p| source.reader.is_some() || reader_for(p).is_some());
                if found.is_empty() {
                    bail!("source `{}`: folder `{s}` holds no readable files (.jsonl, .json, .csv, .tsv, .parquet, .txt, optionally .gz or .zst)", source.name);
                }
            } else {
                found.push(input.clone());
            }
        }
        found.sort();
        for p in found {
            let real = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
            if real_paths.insert(real) {
                paths.push(p);
            }
        }
    }
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let meta = std::fs::metadata(&path).with_context(|| format!("source `{}`: cannot read `{}`", source.name, path.display()))?;
        if !meta.is_file() {
            bail!(
                "source `{}`: `{}` {}, not a regular file\nhint: copy the data into a file and name that",
                source.name,
                path.display(),
                file_kind(&meta)
            );
        }
        let (compression, _) = split_compression(&path);
        let reader = match source.reader.or_else(|| reader_for(&path)) {
            Some(r) => r,
            None => bail!(
                "source `{}`: cannot tell how to read `{}` from its extension\nhint: set `reader` to one of: {}",
                source.name,
                path.display(),
                ReaderKind::ALL.join(", ")
            ),
        };
        if reader == ReaderKind::Parquet && compression != Compression::None {
            bail!("source `{}`: `{}`: Parquet files compress internally; decompress the outer file first", source.name, path.display());
        }
        files.push(InputFile { display: display_name(&path, recipe_dir), path, reader, compression, bytes: meta.len() });
    }
    Ok(files)
}

/// What kind of thing a path that is not a regular file or a folder is.
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_char_device() {
            return "is a character device";
        }
        if t.is_block_device() {
            return "is a block device";
        }
        if t.is_fifo() {
            return "is a FIFO (named pipe)";
        }
        if t.is_socket() {
            return "is a socket";
        }
    }
    let _ = meta;
    "is a special file"
}

/// A file fetched into the cache (`crate::fetch`): read from `path`, named `display`
/// in locators (`hf://datasets/org/name/file`, or the URL) so that ids do not depend
/// on where the cache lives; its reader and compression come from `name`, the remote
/// file's name, since cache blobs are named by their hash.
pub fn fetched(source: &Source, path: PathBuf, display: String, name: &str, bytes: u64) -> anyhow::Result<InputFile> {
    let (compression, _) = split_compression(Path::new(name));
    let reader = match source.reader.or_else(|| reader_for(Path::new(name))) {
        Some(r) => r,
        None => bail!(
            "source `{}`: cannot tell how to read `{display}` from its extension\nhint: set `reader` to one of: {}",
            source.name,
            ReaderKind::ALL.join(", ")
        ),
    };
    Ok(InputFile { path, display, reader, compression, bytes })
}

/// A folder walk that follows symbolic links but enters each real folder once, so a
/// link back to a folder above (a loop) does not read the same files again and again.
#[derive(Default)]
struct Walk {
    files: Vec<PathBuf>,
    seen: HashSet<PathBuf>,
    /// Folders reached a second time: (the path that reached it, the real folder).
    revisits: Vec<(PathBuf, PathBuf)>,
}

impl Walk {
    fn walk(&mut self, dir: &Path) -> anyhow::Result<()> {
        let real = std::fs::canonicalize(dir).with_context(|| format!("cannot resolve `{}`", dir.display()))?;
        if self.seen.contains(&real) {
            self.revisits.push((dir.to_path_buf(), real));
            return Ok(());
        }
        self.seen.insert(real);
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let p = e.path();
            let meta = std::fs::metadata(&p)
                .with_context(|| format!("cannot read `{}` (a link to nowhere, or a loop of links?)", p.display()))?;
            if meta.is_dir() {
                self.walk(&p)?;
            } else {
                self.files.push(p);
            }
        }
        Ok(())
    }
}

fn display_name(path: &Path, recipe_dir: &Path) -> String {
    let rel = |p: &Path, base: &Path| -> Option<PathBuf> {
        let p = std::fs::canonicalize(p).ok()?;
        let b = std::fs::canonicalize(base).ok()?;
        p.strip_prefix(&b).ok().map(Path::to_path_buf)
    };
    let shown = rel(path, recipe_dir).unwrap_or_else(|| path.to_path_buf());
    shown.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/")
        .replace("//", "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_from_extensions() {
        assert_eq!(reader_for(Path::new("a.jsonl.gz")), Some(ReaderKind::Jsonl));
        assert_eq!(reader_for(Path::new("a.JSON.zst")), Some(ReaderKind::Json));
        assert_eq!(reader_for(Path::new("x/b.parquet")), Some(ReaderKind::Parquet));
        assert_eq!(reader_for(Path::new("n.txt")), Some(ReaderKind::Txt));
        assert_eq!(reader_for(Path::new("n.bin")), None);
        assert_eq!(reader_for(Path::new("noext")), None);
    }
}
