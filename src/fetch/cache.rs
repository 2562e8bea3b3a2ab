//! Where fetched files live, and the one rule that keeps them there: a name a server
//! gave us never leaves the cache folder.
//!
//! Hub files follow the layout the Hugging Face libraries use, so a cache filled by
//! one is read by the other where the file is the same:
//!
//! ```text
//! $HF_HUB_CACHE (or $HF_HOME/hub, or ~/.cache/huggingface/hub)
//!   datasets--org--name/
//!     blobs/<sha256>                   content, named by its hash
//!     snapshots/<commit>/<path>        a relative link to ../../blobs/<sha256> (a copy where links fail)
//!   models--org--name/ …               tokenizers
//! ```
//!
//! URL sources have no such convention; they go to `$CURATE_CACHE` (or
//! `$XDG_CACHE_HOME/curate`, or `~/.cache/curate`) as `urls/blobs/<sha256>`.
//!
//! A blob only appears under its final name after its size and hash were checked: it
//! is written as `<name>.part`, verified, then renamed (see `download`).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Whether a repository holds datasets or models (tokenizers come from model repos).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RepoKind {
    Dataset,
    Model,
}

impl RepoKind {
    /// The path segment in API and resolve URLs (`datasets/…`; models have none).
    pub fn url_prefix(self) -> &'static str {
        match self {
            RepoKind::Dataset => "datasets/",
            RepoKind::Model => "",
        }
    }
    pub fn api_segment(self) -> &'static str {
        match self {
            RepoKind::Dataset => "datasets",
            RepoKind::Model => "models",
        }
    }
    fn cache_prefix(self) -> &'static str {
        match self {
            RepoKind::Dataset => "datasets",
            RepoKind::Model => "models",
        }
    }
}

/// The cache roots, read once from the environment.
#[derive(Debug, Clone)]
pub struct Cache {
    pub hub: PathBuf,
    pub curate: PathBuf,
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn home_cache() -> PathBuf {
    env_path("XDG_CACHE_HOME")
        .or_else(|| env_path("HOME").map(|h| h.join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"))
}

impl Cache {
    /// `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`; and
    /// `CURATE_CACHE`, else `~/.cache/curate`.
    pub fn from_env() -> Cache {
        let hub = env_path("HF_HUB_CACHE")
            .or_else(|| env_path("HF_HOME").map(|h| h.join("hub")))
            .unwrap_or_else(|| home_cache().join("huggingface").join("hub"));
        let curate = env_path("CURATE_CACHE").unwrap_or_else(|| home_cache().join("curate"));
        Cache { hub, curate }
    }

    /// `datasets--org--name` under the hub cache.
    pub fn repo_dir(&self, kind: RepoKind, id: &str) -> PathBuf {
        self.hub.join(format!("{}--{}", kind.cache_prefix(), id.replace('/', "--")))
    }

    /// Where a hub file's verified content lives.
    pub fn hub_blob(&self, kind: RepoKind, id: &str, sha256: &str) -> PathBuf {
        self.repo_dir(kind, id).join("blobs").join(sha256)
    }

    /// The snapshot path of a file at a commit. `path` must have passed [`safe_path`].
    pub fn snapshot(&self, kind: RepoKind, id: &str, commit: &str, path: &str) -> PathBuf {
        let mut p = self.repo_dir(kind, id).join("snapshots").join(commit);
        for part in path.split('/') {
            p.push(part);
        }
        p
    }

    pub fn url_blobs(&self) -> PathBuf {
        self.curate.join("urls").join("blobs")
    }

    pub fn url_blob(&self, sha256: &str) -> PathBuf {
        self.url_blobs().join(sha256)
    }
}

/// Check a file path a server gave us before it names anything on disk: relative,
/// `/`-separated, no `.` or `..` parts, no backslashes, drive letters, control
/// characters or empty parts. A hostile name is an error, never cleaned up, since a
/// cleaned name could collide with a real one.
pub fn safe_path(path: &str) -> Result<(), String> {
    let why = if path.is_empty() {
        "it is empty"
    } else if path.len() > 1024 {
        "it is longer than 1024 bytes"
    } else if path.starts_with('/') {
        "it is absolute"
    } else if path.contains('\\') {
        "it contains a backslash"
    } else if path.chars().any(|c| c.is_control()) {
        "it contains a control character"
    } else if path.contains(':') {
        "it contains `:` (a drive or stream name on Windows)"
    } else if path.split('/').any(|p| p.is_empty()) {
        "it has an empty part (`//` or a trailing `/`)"
    } else if path.split('/').any(|p| p == "." || p == "..") {
        "it has a `.` or `..` part"
    } else {
        return Ok(());
    };
    Err(why.to_string())
}

/// A hex digest of the given length, lowercase (a commit, a sha256).
pub fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Make `snapshot` point at `blob`: a relative symbolic link as the hub libraries
/// make, or a copy where links are not available. Replaces whatever was there.
///
/// The link (or copy) is made under a temporary name beside the snapshot and renamed
/// over it, so another run linking the same snapshot at the same time is harmless;
/// the snapshot path is never opened for writing, since it may be a link to the blob.
pub fn link_snapshot(blob: &Path, snapshot: &Path) -> anyhow::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let parent = snapshot.parent().context("snapshot path has no folder")?;
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create `{}`", parent.display()))?;
    let name = snapshot.file_name().context("snapshot path has no file name")?.to_string_lossy();
    let tmp = parent.join(format!(".{name}.{}.{}.tmp", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_file(&tmp);
    let mut made = false;
    #[cfg(unix)]
    {
        if let Some(rel) = relative(blob, parent) {
            made = std::os::unix::fs::symlink(&rel, &tmp).is_ok();
        }
    }
    if !made {
        std::fs::copy(blob, &tmp).with_context(|| format!("cannot copy `{}` to `{}`", blob.display(), tmp.display()))?;
    }
    std::fs::rename(&tmp, snapshot).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::anyhow!("cannot replace `{}`: {e}", snapshot.display())
    })?;
    Ok(())
}

/// `target` relative to folder `from` (both under the same root), e.g. `../../blobs/x`.
#[cfg(unix)]
fn relative(target: &Path, from: &Path) -> Option<PathBuf> {
    let t: Vec<_> = target.components().collect();
    let f: Vec<_> = from.components().collect();
    let common = t.iter().zip(&f).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return None;
    }
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c.as_os_str());
    }
    Some(out)
}

/// Confirm that `path` (a resolved file in `root`) is inside `root` after resolving
/// links: a last line of defence behind [`safe_path`].
pub fn ensure_inside(root: &Path, path: &Path) -> anyhow::Result<()> {
    let r = std::fs::canonicalize(root).with_context(|| format!("cannot resolve `{}`", root.display()))?;
    let p = std::fs::canonicalize(path).with_context(|| format!("cannot resolve `{}`", path.display()))?;
    if !p.starts_with(&r) {
        bail!("`{}` resolves outside the cache `{}`", path.display(), root.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        for bad in [
            "../x.jsonl",
            "data/../../x",
            "/etc/passwd",
            "a\\..\\b",
            "C:x",
            "a//b",
            "a/",
            "./a",
            "",
            "a\0b",
            "a\nb",
        ] {
            assert!(safe_path(bad).is_err(), "{bad:?} must be refused");
        }
        for good in ["data/train-00000-of-00001.parquet", "README.md", "default/train/0000.parquet", "a..b/c"] {
            assert!(safe_path(good).is_ok(), "{good:?} is fine");
        }
    }

    #[test]
    fn layout_follows_the_hub_libraries() {
        let c = Cache { hub: PathBuf::from("/c/hub"), curate: PathBuf::from("/c/curate") };
        assert_eq!(c.repo_dir(RepoKind::Dataset, "org/name"), PathBuf::from("/c/hub/datasets--org--name"));
        assert_eq!(
            c.snapshot(RepoKind::Model, "o/m", "abc", "sub/tokenizer.json"),
            PathBuf::from("/c/hub/models--o--m/snapshots/abc/sub/tokenizer.json")
        );
    }

    #[cfg(unix)]
    #[test]
    fn snapshot_links_are_relative() {
        let d = tempfile::tempdir().unwrap();
        let blob = d.path().join("r/blobs/abc");
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        std::fs::write(&blob, b"x").unwrap();
        let snap = d.path().join("r/snapshots/c1/data/a.jsonl");
        link_snapshot(&blob, &snap).unwrap();
        assert_eq!(std::fs::read_link(&snap).unwrap(), PathBuf::from("../../../blobs/abc"));
        assert_eq!(std::fs::read(&snap).unwrap(), b"x");
        ensure_inside(&d.path().join("r"), &snap).unwrap();
    }

    /// Many threads linking one snapshot at once: the blob keeps its bytes (a copy made
    /// through another thread's fresh link would truncate it), and no temporary is left.
    #[cfg(unix)]
    #[test]
    fn linking_one_snapshot_at_once_never_touches_the_blob() {
        let d = tempfile::tempdir().unwrap();
        let blob = d.path().join("r/blobs/abc");
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        std::fs::write(&blob, b"the blob's bytes").unwrap();
        let snap = d.path().join("r/snapshots/c1/a.jsonl");
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..50 {
                        link_snapshot(&blob, &snap).unwrap();
                    }
                });
            }
        });
        assert_eq!(std::fs::read(&blob).unwrap(), b"the blob's bytes");
        assert_eq!(std::fs::read(&snap).unwrap(), b"the blob's bytes");
        let left: Vec<_> = std::fs::read_dir(snap.parent().unwrap()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }
}
