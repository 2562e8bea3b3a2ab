//! The work folder: where tasks write their outputs, beside the output folder as
//! `.NAME.work/`, kept across runs so that a build resumes, removed once the output is
//! in place.
//!
//! ```text
//! .NAME.work/.curate-work          marks the folder as curate's (checked before use)
//! .NAME.work/plan.json             the plan
//! .NAME.work/compliance.json       the policy check's results, for the finalize task
//! .NAME.work/tasks/ID/…            a task's outputs
//! .NAME.work/tasks/ID/done.json    its completion marker, written last
//! ```
//!
//! A task writes into `tasks/.ID.tmp-PID/`, writes its marker there, and renames the
//! folder to `tasks/ID/`; a task folder without a marker, or with a marker whose key
//! is not the task's current key, is not complete.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

pub const MARKER: &str = "done.json";

/// The work folder of the output at `out`.
pub fn work_dir(out: &Path) -> PathBuf {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    parent.join(format!(".{name}.work"))
}

pub fn task_dir(work: &Path, id: &str) -> PathBuf {
    work.join("tasks").join(id)
}

/// Write a file whole or not at all (a temporary beside it, renamed).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write `{}`", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot move `{}` into place", path.display()))
}

/// A task's completion marker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Marker {
    pub task: String,
    /// The task's key (see `Plan::key`): what its outputs were made from.
    pub key: String,
    /// Every file the task wrote, with its size, checked before the outputs are used.
    pub files: Vec<(String, u64)>,
}

/// The key of the completed task `id`, when its outputs are whole and its key is
/// `key`; `None` when it must run.
pub fn completed(work: &Path, id: &str, key: &str) -> Option<Marker> {
    let dir = task_dir(work, id);
    let m: Marker = serde_json::from_slice(&std::fs::read(dir.join(MARKER)).ok()?).ok()?;
    if m.task != id || m.key != key {
        return None;
    }
    for (f, size) in &m.files {
        if std::fs::metadata(dir.join(f)).map(|md| md.len()).ok() != Some(*size) {
            return None;
        }
    }
    Some(m)
}

/// A task's outputs being written.
pub struct TaskDir {
    tmp: PathBuf,
    target: PathBuf,
    id: String,
    key: String,
    done: bool,
}

impl TaskDir {
    pub fn create(work: &Path, id: &str, key: &str) -> anyhow::Result<TaskDir> {
        let tasks = work.join("tasks");
        std::fs::create_dir_all(&tasks).with_context(|| format!("cannot create `{}`", tasks.display()))?;
        let tmp = tasks.join(format!(".{id}.tmp-{}", std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).with_context(|| format!("cannot clear `{}`", tmp.display()))?;
        }
        std::fs::create_dir(&tmp).with_context(|| format!("cannot create `{}`", tmp.display()))?;
        Ok(TaskDir { tmp, target: tasks.join(id), id: id.into(), key: key.into(), done: false })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.tmp.join(name)
    }

    /// Write the marker and move the outputs into place.
    pub fn commit(mut self) -> anyhow::Result<()> {
        let mut files = Vec::new();
        for e in std::fs::read_dir(&self.tmp).with_context(|| format!("cannot list `{}`", self.tmp.display()))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            files.push((name, e.metadata()?.len()));
        }
        files.sort();
        let m = Marker { task: self.id.clone(), key: self.key.clone(), files };
        std::fs::write(self.tmp.join(MARKER), serde_json::to_vec_pretty(&m).expect("marker serialises"))
            .with_context(|| format!("cannot write the marker of task `{}`", self.id))?;
        // Another try of this task may have finished first: a retry after a lost node,
        // or a try that outlived the run which started it. Its outputs are the same
        // bytes (a task is deterministic), so a complete folder with this key is kept
        // as it is, never removed under a reader; ours goes when `self` drops.
        if self.other_try_finished() {
            return Ok(());
        }
        if self.target.exists() {
            std::fs::remove_dir_all(&self.target).with_context(|| format!("cannot remove `{}`", self.target.display()))?;
        }
        if let Err(e) = std::fs::rename(&self.tmp, &self.target) {
            // Two tries committing at once: the other's rename won.
            if self.other_try_finished() {
                return Ok(());
            }
            return Err(e).with_context(|| format!("cannot move task `{}`'s outputs into place", self.id));
        }
        self.done = true;
        Ok(())
    }

    /// Whether the task's folder holds complete outputs of the same key.
    fn other_try_finished(&self) -> bool {
        let work = self.target.parent().and_then(Path::parent).expect("tasks/ID sits in the work folder");
        completed(work, &self.id, &self.key).is_some()
    }
}

impl Drop for TaskDir {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Remove the folders of tasks the plan no longer has, and unfinished task folders
/// that runs now gone left behind. Called with the output's lock held.
pub fn tidy(work: &Path, ids: &[String]) -> anyhow::Result<()> {
    let tasks = work.join("tasks");
    let Ok(entries) = std::fs::read_dir(&tasks) else { return Ok(()) };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !ids.contains(&name) {
            let p = e.path();
            std::fs::remove_dir_all(&p).with_context(|| format!("cannot remove `{}`", p.display()))?;
        }
    }
    Ok(())
}

/// The file that marks a work folder as curate's, written before anything else in it:
/// the folder is removed when the build ends, so a folder without it is never used.
pub const WORK_MARKER: &str = ".curate-work";

/// Refuse a work folder that is not one (a user's folder under the same name).
pub fn check(work: &Path) -> anyhow::Result<()> {
    let meta = match std::fs::symlink_metadata(work) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    if !meta.is_dir() || !work.join(WORK_MARKER).is_file() {
        bail!(
            "`{}` exists and is not a curate work folder (it has no `{WORK_MARKER}`)\nhint: curate keeps a build's task outputs there and removes it when the build ends; move it away",
            work.display()
        );
    }
    Ok(())
}

/// Make the work folder (marked as curate's) if it is not there.
pub fn create(work: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(work).with_context(|| format!("cannot create the work folder `{}`", work.display()))?;
    let marker = work.join(WORK_MARKER);
    if !marker.is_file() {
        std::fs::write(&marker, "curate keeps a build's plan and task outputs here; it removes this folder when the build ends\n")
            .with_context(|| format!("cannot write `{}`", marker.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A try of task `map-00001` with `key` that writes `rows`; returns its own
    /// folder, gone once the try is over.
    fn commit_try(work: &Path, key: &str, rows: &str) -> PathBuf {
        let dir = TaskDir::create(work, "map-00001", key).unwrap();
        std::fs::write(dir.file("rows"), rows).unwrap();
        let tmp = dir.tmp.clone();
        dir.commit().unwrap();
        tmp
    }

    fn rows(work: &Path) -> String {
        std::fs::read_to_string(task_dir(work, "map-00001").join("rows")).unwrap()
    }

    #[test]
    fn a_second_try_keeps_the_first_tries_complete_outputs() {
        let work = tempfile::tempdir().unwrap();
        commit_try(work.path(), "k1", "first");
        let second = commit_try(work.path(), "k1", "second");
        assert_eq!(rows(work.path()), "first");
        assert!(completed(work.path(), "map-00001", "k1").is_some());
        assert!(!second.exists(), "the second try's folder is removed");
    }

    #[test]
    fn outputs_of_another_key_or_incomplete_ones_are_replaced() {
        let work = tempfile::tempdir().unwrap();
        commit_try(work.path(), "old-key", "old");
        commit_try(work.path(), "k1", "new");
        assert_eq!(rows(work.path()), "new");
        // A folder whose file lost bytes is not complete: the next try replaces it.
        std::fs::write(task_dir(work.path(), "map-00001").join("rows"), "n").unwrap();
        assert!(completed(work.path(), "map-00001", "k1").is_none());
        commit_try(work.path(), "k1", "again");
        assert_eq!(rows(work.path()), "again");
    }
}
