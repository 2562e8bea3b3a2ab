//! Outputs: the staging folder that makes a run's outputs appear atomically, and the
//! writers of each file.
//!
//! A run writes everything into a hidden staging folder beside the target
//! (`.NAME.tmp-PID`) and renames it into place only when every file is complete, so a
//! crash or an error never leaves a folder at the target path that looks finished.

pub mod megatron;
pub mod parquet;

use std::path::{Path, PathBuf};

use anyhow::Context;

pub use self::parquet::{DocumentsWriter, LedgerWriter};

/// A folder being built; renamed to its target by [`Staging::commit`], removed if
/// dropped before that.
pub struct Staging {
    tmp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl Staging {
    pub fn create(target: &Path) -> anyhow::Result<Staging> {
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("cannot create the output's parent folder `{}`", parent.display()))?;
        let name = target
            .file_name()
            .with_context(|| format!("output path `{}` has no folder name", target.display()))?
            .to_string_lossy()
            .into_owned();
        let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).with_context(|| format!("cannot clear `{}`", tmp.display()))?;
        }
        std::fs::create_dir(&tmp).with_context(|| format!("cannot create `{}`", tmp.display()))?;
        Ok(Staging { tmp, target: target.to_path_buf(), committed: false })
    }

    pub fn path(&self) -> &Path {
        &self.tmp
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.tmp.join(name)
    }

    /// Move the finished folder into place, replacing an earlier output.
    pub fn commit(mut self) -> anyhow::Result<PathBuf> {
        if self.target.exists() {
            let old = self.tmp.with_file_name(format!(
                ".{}.old-{}",
                self.target.file_name().unwrap_or_default().to_string_lossy(),
                std::process::id()
            ));
            std::fs::rename(&self.target, &old)
                .with_context(|| format!("cannot move the previous output `{}` aside", self.target.display()))?;
            std::fs::rename(&self.tmp, &self.target)
                .with_context(|| format!("cannot move the new output into `{}`", self.target.display()))?;
            std::fs::remove_dir_all(&old).with_context(|| format!("cannot remove `{}`", old.display()))?;
        } else {
            std::fs::rename(&self.tmp, &self.target)
                .with_context(|| format!("cannot move the new output into `{}`", self.target.display()))?;
        }
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Write a file in the staging folder in one go.
pub fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_output_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let s = Staging::create(&target).unwrap();
        write_file(&s.file("a.txt"), b"new").unwrap();
        assert!(!target.exists());
        s.commit().unwrap();
        assert_eq!(std::fs::read(target.join("a.txt")).unwrap(), b"new");

        // A failed run (dropped staging) leaves the previous output untouched and no
        // staging folder behind.
        let s = Staging::create(&target).unwrap();
        write_file(&s.file("a.txt"), b"half").unwrap();
        drop(s);
        assert_eq!(std::fs::read(target.join("a.txt")).unwrap(), b"new");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("out")]);
    }
}
