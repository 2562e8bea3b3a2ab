//! `curate.lock`: what every remote input of a recipe resolved to.
//!
//! TOML, versioned, in a canonical order (sources by name, files by path, fields in
//! a fixed order) so that two locks of the same inputs are the same bytes and a diff
//! shows only what moved. Each entry repeats the recipe keys it was resolved from
//! (`hf`, `revision`, `config`, `split`, or `url` and `sha256`), so a lock that no
//! longer fits its recipe is found without the network. Format: docs/lockfile.md.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;
pub const FILE_NAME: &str = "curate.lock";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    pub version: u32,
    #[serde(default, rename = "source", skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<LockedSource>,
    /// The `[target] tokenizer = "hf:…"` files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<LockedRepo>,
}

/// The recipe keys an entry was resolved from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedSource {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hf: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// For hub sources: the commit the files were read at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The files come from the hub's parquet conversion (`refs/convert/parquet`), at
    /// `commit` of that branch.
    #[serde(default, skip_serializing_if = "is_false")]
    pub parquet_conversion: bool,
    /// The dataset card's facts, at the commit `revision` resolved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<LockedCard>,
    #[serde(default, rename = "file")]
    pub files: Vec<LockedFile>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedCard {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_datasets: Vec<String>,
}

/// A model repository's files (the tokenizer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedRepo {
    pub hf: String,
    pub revision: String,
    pub commit: String,
    #[serde(default, rename = "file")]
    pub files: Vec<LockedFile>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedFile {
    /// The path in the repository; for a URL source, the URL's last segment.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

impl LockedSource {
    /// The recipe keys of this entry, as one line for messages.
    pub fn spec(&self) -> String {
        if let Some(u) = &self.url {
            return format!("url = {u:?}");
        }
        let mut s = format!("hf = {:?}", self.hf.as_deref().unwrap_or(""));
        for (k, v) in [("revision", &self.revision), ("config", &self.config), ("split", &self.split)] {
            if let Some(v) = v {
                s.push_str(&format!(", {k} = {v:?}"));
            }
        }
        s
    }
}

impl Lock {
    /// Sort into the canonical order.
    pub fn canonical(mut self) -> Lock {
        self.version = VERSION;
        self.sources.sort_by(|a, b| a.name.cmp(&b.name));
        for s in &mut self.sources {
            s.files.sort_by(|a, b| a.path.cmp(&b.path));
        }
        if let Some(t) = &mut self.tokenizer {
            t.files.sort_by(|a, b| a.path.cmp(&b.path));
        }
        self
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string(&self.clone().canonical()).expect("the lock serialises");
        format!("# Written by `curate lock`: the exact remote inputs of this recipe. Do not edit by hand.\n{body}")
    }

    pub fn read(path: &Path) -> anyhow::Result<Lock> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        let lock: Lock = toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!("`{}` is not a valid lockfile: {}\nhint: delete it and run `curate lock` to write a new one", path.display(), e.message())
        })?;
        if lock.version != VERSION {
            bail!(
                "`{}` has lockfile version {}, this curate reads version {VERSION}\nhint: run `curate lock` to rewrite it",
                path.display(),
                lock.version
            );
        }
        Ok(lock)
    }

    /// Write atomically (a temporary file beside it, then a rename). The temporary's
    /// name is this writer's own, so two runs writing the lock at once each rename a
    /// whole file.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let tmp = path.with_extension(format!("lock.{}.{}.tmp", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(&tmp, self.to_toml()).with_context(|| format!("cannot write `{}`", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            anyhow::anyhow!("cannot write `{}`: {e}", path.display())
        })?;
        Ok(())
    }

    pub fn source(&self, name: &str) -> Option<&LockedSource> {
        self.sources.iter().find(|s| s.name == name)
    }
}

fn short(c: &Option<String>) -> String {
    c.as_deref().map(|c| c.chars().take(12).collect()).unwrap_or_else(|| "-".into())
}

/// What changed between two resolutions of one source, one line per change.
pub fn changes(old: &LockedSource, new: &LockedSource) -> Vec<String> {
    let mut out = Vec::new();
    if old.spec() != new.spec() {
        out.push(format!("recipe keys changed: {} → {}", old.spec(), new.spec()));
    }
    if old.commit != new.commit {
        let rev = new.revision.as_deref().unwrap_or("main");
        out.push(format!("revision `{rev}` moved from commit {} to {}", short(&old.commit), short(&new.commit)));
    }
    if old.parquet_conversion != new.parquet_conversion {
        out.push(format!("parquet conversion: {} → {}", old.parquet_conversion, new.parquet_conversion));
    }
    if old.card != new.card {
        out.push("the dataset card's facts changed".to_string());
    }
    out.extend(file_changes(&old.files, &new.files));
    out
}

pub fn file_changes(old: &[LockedFile], new: &[LockedFile]) -> Vec<String> {
    let o: BTreeMap<&str, &LockedFile> = old.iter().map(|f| (f.path.as_str(), f)).collect();
    let n: BTreeMap<&str, &LockedFile> = new.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut out = Vec::new();
    for (p, f) in &n {
        match o.get(p) {
            None => out.push(format!("file `{p}` added ({} bytes)", f.size)),
            Some(g) if g.sha256 != f.sha256 => out.push(format!(
                "file `{p}` changed: sha256 {}… ({} bytes) → {}… ({} bytes)",
                &g.sha256[..g.sha256.len().min(12)],
                g.size,
                &f.sha256[..f.sha256.len().min(12)],
                f.size
            )),
            _ => {}
        }
    }
    for p in o.keys().filter(|p| !n.contains_key(*p)) {
        out.push(format!("file `{p}` removed"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(p: &str, c: char) -> LockedFile {
        LockedFile { path: p.into(), size: 3, sha256: c.to_string().repeat(64) }
    }

    #[test]
    fn canonical_and_round_trips() {
        let lock = Lock {
            version: 0,
            sources: vec![
                LockedSource { name: "b".into(), url: Some("https://x/b.jsonl".into()), files: vec![file("b.jsonl", 'b')], ..Default::default() },
                LockedSource {
                    name: "a".into(),
                    hf: Some("o/a".into()),
                    revision: Some("main".into()),
                    commit: Some("c".repeat(40)),
                    card: Some(LockedCard { license: Some("mit".into()), ..Default::default() }),
                    files: vec![file("z.jsonl", 'z'), file("a.jsonl", 'a')],
                    ..Default::default()
                },
            ],
            tokenizer: None,
        };
        let text = lock.to_toml();
        assert!(text.find("name = \"a\"").unwrap() < text.find("name = \"b\"").unwrap());
        assert!(text.find("a.jsonl").unwrap() < text.find("z.jsonl").unwrap());
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(FILE_NAME);
        lock.write(&p).unwrap();
        let back = Lock::read(&p).unwrap();
        assert_eq!(back.to_toml(), text, "the same lock is the same bytes");
    }

    #[test]
    fn writers_at_once_each_write_a_whole_lock() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(FILE_NAME);
        let lock = Lock { version: VERSION, sources: vec![LockedSource { name: "a".into(), url: Some("https://x/a".into()), files: vec![file("a", 'a')], ..Default::default() }], tokenizer: None };
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..25 {
                        lock.write(&p).unwrap();
                    }
                });
            }
        });
        assert_eq!(Lock::read(&p).unwrap(), lock.clone().canonical());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1, "no temporary is left");
    }

    #[test]
    fn changes_name_what_moved() {
        let a = LockedSource { name: "s".into(), hf: Some("o/s".into()), commit: Some("1".repeat(40)), files: vec![file("x", 'a')], ..Default::default() };
        let mut b = a.clone();
        b.commit = Some("2".repeat(40));
        b.files = vec![file("x", 'b'), file("y", 'c')];
        let c = changes(&a, &b);
        assert!(c[0].contains("moved from commit 111111111111 to 222222222222"), "{c:?}");
        assert!(c.iter().any(|l| l.contains("file `x` changed")));
        assert!(c.iter().any(|l| l.contains("file `y` added")));
    }
}
