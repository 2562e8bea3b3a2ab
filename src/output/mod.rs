//! Outputs: the staging folder that makes a run's outputs appear atomically, and the
//! writers of each file.
//!
//! A run writes everything into a hidden staging folder beside the target
//! (`.NAME.tmp-PID`) and renames it into place only when every file is complete, so a
//! crash or an error never leaves a folder at the target path that looks finished.
//!
//! Replacing a folder deletes what was in it, so curate replaces only a folder it
//! wrote itself: every output holds a marker file ([`MARKER`]), checked before the
//! run starts and again before anything is moved. Anything else at the target path (a
//! user's folder, a file, a symbolic link) is refused and left exactly as it was.
//!
//! A run holds an advisory lock on `.NAME.lock` beside the target for its whole
//! length, so two runs never write one output folder at once. Holding the lock also
//! proves that any staging folder of that target left beside it belongs to a run that
//! is gone (killed, or the machine went down): those are removed. SIGINT, SIGTERM and
//! SIGHUP remove the staging folder before the process exits
//! ([`install_interrupt_cleanup`]).

pub mod megatron;
pub mod parquet;

use std::fs::{File, TryLockError};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, bail};

pub use self::parquet::{DocumentsWriter, LedgerWriter};

/// The marker file every output folder holds: the proof that curate wrote the folder
/// and may replace it. Hidden, so it is not listed in the manifest's file hashes.
pub const MARKER: &str = ".curate-output";

const MARKER_TEXT: &str = "This folder was written by curate.\n\
`curate run` replaces it when it writes the same output again; it replaces no folder\n\
without this file.\n";

/// The files an output written before the marker existed can hold. Such a folder is
/// recognised as curate's only when it holds `report.json` and `ledger.parquet` and
/// nothing that is not on this list.
const LEGACY_NAMES: &[&str] = &[
    "documents.parquet",
    "ledger.parquet",
    "report.md",
    "report.json",
    "timings.json",
    "manifest.json",
    "docs.parquet",
    "README.md",
    "NOTICE",
    "tokenizer",
    "train",
    "train.bin",
    "train.idx",
    "train.loss.bin",
    "train.loss.idx",
    "train.packs.npy",
    "valid.bin",
    "valid.idx",
    "valid.loss.bin",
    "valid.loss.idx",
    "valid.packs.npy",
];

/// What sits at an output path before a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    /// Nothing: the output is new.
    Absent,
    /// An empty folder.
    Empty,
    /// A folder curate wrote (it holds the marker).
    Output,
    /// A folder written by a curate that predates the marker (see [`LEGACY_NAMES`]).
    LegacyOutput,
    /// Anything else, and why it is not curate's to replace.
    Foreign(String),
}

/// Classify what sits at `target` without changing anything.
pub fn existing(target: &Path) -> anyhow::Result<Existing> {
    let meta = match std::fs::symlink_metadata(target) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Absent),
        Err(e) => return Err(e).with_context(|| format!("cannot look at the output path `{}`", target.display())),
    };
    let ft = meta.file_type();
    if ft.is_symlink() {
        return Ok(Existing::Foreign("is a symbolic link".into()));
    }
    if !ft.is_dir() {
        return Ok(Existing::Foreign("is a file, not a folder".into()));
    }
    if target.join(MARKER).is_file() {
        return Ok(Existing::Output);
    }
    let mut names = Vec::new();
    for e in std::fs::read_dir(target).with_context(|| format!("cannot list the output folder `{}`", target.display()))? {
        let e = e.with_context(|| format!("cannot list the output folder `{}`", target.display()))?;
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    if names.is_empty() {
        return Ok(Existing::Empty);
    }
    let known = |n: &str| LEGACY_NAMES.contains(&n);
    if names.iter().all(|n| known(n)) && names.iter().any(|n| n == "report.json") && names.iter().any(|n| n == "ledger.parquet") {
        return Ok(Existing::LegacyOutput);
    }
    names.sort();
    let shown: Vec<String> = names.iter().take(3).map(|n| format!("`{n}`")).collect();
    let more = if names.len() > 3 { format!(" and {} more", names.len() - 3) } else { String::new() };
    Ok(Existing::Foreign(format!(
        "is a folder that curate did not write (it has no `{MARKER}` marker; it holds {}{more})",
        shown.join(", ")
    )))
}

/// Refuse an output path that holds something curate must not replace.
pub fn check_target(target: &Path) -> anyhow::Result<()> {
    if let Existing::Foreign(why) = existing(target)? {
        bail!(
            "the output path `{}` {why}\nhint: curate replaces only an output folder it wrote; choose another output folder (`--out`, or `[output] dir`), or move `{}` away yourself",
            target.display(),
            target.display()
        );
    }
    Ok(())
}

/// `path` made absolute, with `.` and `..` resolved and symbolic links followed as far
/// as the path exists, so two spellings of one place compare equal.
pub fn real_path(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut normal = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    // Canonicalise the longest prefix that exists, then add the rest.
    let mut rest = Vec::new();
    let mut head = normal.clone();
    loop {
        if let Ok(c) = head.canonicalize() {
            let mut out = c;
            for r in rest.iter().rev() {
                out.push(r);
            }
            return out;
        }
        match (head.file_name().map(|n| n.to_os_string()), head.parent().map(Path::to_path_buf)) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                head = parent;
            }
            _ => return normal,
        }
    }
}

/// Refuse an output folder that a source would read: inside a folder a source walks
/// (the next run would read this run's outputs back in as records), or holding a file
/// a source names. Staging folders beside the output count as the output.
pub fn check_inputs_outside_output(recipe: &crate::recipe::Recipe, inputs: &[Vec<crate::source::files::InputFile>], out_dir: &std::path::Path) -> anyhow::Result<()> {
    let out = real_path(out_dir);
    let (Some(parent), Some(name)) = (out.parent(), out.file_name()) else { return Ok(()) };
    let hidden = format!(".{}.", name.to_string_lossy());
    let inside_output = |p: &std::path::Path| {
        let p = real_path(p);
        if p.starts_with(&out) {
            return true;
        }
        // `.NAME.tmp-PID/…` and `.NAME.old-PID/…`
        p.strip_prefix(parent)
            .ok()
            .and_then(|rest| rest.components().next())
            .map(|c| c.as_os_str().to_string_lossy().starts_with(&hidden))
            .unwrap_or(false)
    };
    for s in &recipe.sources {
        for input in &s.inputs {
            if input.is_dir() && out.starts_with(real_path(input)) {
                bail!(
                    "the output folder `{}` is inside `{}`, which source `{}` reads: the next run would read this run's outputs back in as records\nhint: choose an output folder outside the source's folder (`--out`, or `[output] dir`)",
                    out_dir.display(),
                    input.display(),
                    s.name
                );
            }
        }
        if let Some(f) = inputs.get(s.index).and_then(|files| files.iter().find(|f| inside_output(&f.path))) {
            bail!(
                "source `{}` reads `{}`, which is inside the output folder `{}` that this run replaces\nhint: choose another output folder (`--out`, or `[output] dir`), or copy the file out first",
                s.name,
                f.display,
                out_dir.display()
            );
        }
    }
    Ok(())
}

/// Staging folders and output locks alive in this process, removed by the interrupt
/// handler.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn register(p: &Path) {
    LIVE.lock().unwrap_or_else(|e| e.into_inner()).push(p.to_path_buf());
}

fn unregister(p: &Path) {
    LIVE.lock().unwrap_or_else(|e| e.into_inner()).retain(|x| x != p);
}

/// On SIGINT, SIGTERM or SIGHUP, remove this process's staging folders and exit with
/// 128 + the signal's number, as a shell reports a process killed by it. SIGKILL
/// cannot be caught: the next run of the same output removes what it left.
pub fn install_interrupt_cleanup() -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("cannot install the interrupt handler")?;
    std::thread::Builder::new()
        .name("curate-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let live = LIVE.lock().unwrap_or_else(|e| e.into_inner()).clone();
                for path in &live {
                    if path.is_dir() {
                        // Workers may still be creating files in it: try a few times.
                        for _ in 0..5 {
                            if std::fs::remove_dir_all(path).is_ok() || !path.exists() {
                                break;
                            }
                            std::thread::sleep(std::time::Duration::from_millis(20));
                        }
                        eprintln!("curate: interrupted; removed the unfinished output `{}`", path.display());
                    } else {
                        let _ = std::fs::remove_file(path);
                    }
                }
                if !live.is_empty() {
                    eprintln!("curate: the tasks completed so far are kept; the same command resumes from them");
                }
                std::process::exit(128 + sig);
            }
        })
        .context("cannot start the interrupt handler")?;
    Ok(())
}

/// A folder being built; renamed to its target by [`Staging::commit`], removed if
/// dropped before that. Holds the target's lock while it lives.
pub struct Staging {
    tmp: PathBuf,
    target: PathBuf,
    committed: bool,
    /// Dropped after the staging folder is removed (fields drop after `drop`).
    _lock: OutputLock,
}

fn parent_of(target: &Path) -> PathBuf {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

impl Staging {
    pub fn create(target: &Path) -> anyhow::Result<Staging> {
        let parent = parent_of(target);
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("cannot create the output's parent folder `{}`", parent.display()))?;
        let name = match target.components().next_back() {
            Some(Component::Normal(n)) => n.to_string_lossy().into_owned(),
            _ => bail!("output path `{}` has no folder name", target.display()),
        };
        let lock = OutputLock::acquire(&parent.join(format!(".{name}.lock")), target)?;
        check_target(target)?;
        remove_stale(&parent, &name)?;
        let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        std::fs::create_dir(&tmp).with_context(|| format!("cannot create `{}`", tmp.display()))?;
        register(&tmp);
        let staging = Staging { tmp, target: target.to_path_buf(), committed: false, _lock: lock };
        write_file(&staging.file(MARKER), MARKER_TEXT.as_bytes())?;
        Ok(staging)
    }

    pub fn path(&self) -> &Path {
        &self.tmp
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.tmp.join(name)
    }

    /// Move the finished folder into place, replacing an earlier output. What sits at
    /// the target is checked again first: it may have changed during the run.
    pub fn commit(mut self) -> anyhow::Result<PathBuf> {
        let old = self.tmp.with_file_name(format!(
            ".{}.old-{}",
            self.target.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        match existing(&self.target)? {
            Existing::Absent => {}
            Existing::Empty => {
                std::fs::remove_dir(&self.target)
                    .with_context(|| format!("cannot remove the empty folder `{}`", self.target.display()))?;
            }
            Existing::Output | Existing::LegacyOutput => {
                std::fs::rename(&self.target, &old)
                    .with_context(|| format!("cannot move the previous output `{}` aside", self.target.display()))?;
            }
            Existing::Foreign(why) => bail!(
                "the output path `{}` {why} (it appeared while the run was going)\nhint: nothing was replaced; move it away and run again",
                self.target.display()
            ),
        }
        std::fs::rename(&self.tmp, &self.target)
            .with_context(|| format!("cannot move the new output into `{}`", self.target.display()))?;
        self.committed = true;
        unregister(&self.tmp);
        if old.exists() {
            std::fs::remove_dir_all(&old).with_context(|| format!("cannot remove `{}`", old.display()))?;
        }
        Ok(self.target.clone())
    }
}

const LOCK_TEXT: &str = "curate holds this lock while it writes the output beside it\n";

/// The advisory lock on `.NAME.lock` beside an output. The file is removed when the
/// lock is let go, so a finished run leaves nothing beside its output.
struct OutputLock {
    path: PathBuf,
    _file: File,
}

impl OutputLock {
    fn acquire(path: &Path, target: &Path) -> anyhow::Result<OutputLock> {
        use std::os::unix::fs::MetadataExt;
        loop {
            let file = File::options()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(path)
                .with_context(|| format!("cannot create the output's lock file `{}`", path.display()))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => bail!(
                    "another curate run is writing `{}` (it holds `{}`)\nhint: wait for it to finish, or choose another output folder",
                    target.display(),
                    path.display()
                ),
                Err(TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock `{}`", path.display()));
                }
            }
            // The run that held the lock before may have removed the file between our
            // open and our lock: then the lock is on a file nobody else will open.
            // Take it only if the path still names the file locked.
            let held = file.metadata().with_context(|| format!("cannot read `{}`", path.display()))?;
            match std::fs::metadata(path) {
                Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
                    // The lock file is removed when the run ends, so it must be ours: a
                    // file of the same name that holds anything else is left alone.
                    let mut text = String::new();
                    let mut f = &file;
                    std::io::Read::read_to_string(&mut f, &mut text)
                        .with_context(|| format!("cannot read `{}`", path.display()))?;
                    if text.is_empty() {
                        std::io::Write::write_all(&mut f, LOCK_TEXT.as_bytes())
                            .with_context(|| format!("cannot write `{}`", path.display()))?;
                    } else if text != LOCK_TEXT {
                        bail!(
                            "`{}` exists and is not curate's lock file\nhint: curate locks an output with `.NAME.lock` beside it; move that file away",
                            path.display()
                        );
                    }
                    register(path);
                    return Ok(OutputLock { path: path.to_path_buf(), _file: file });
                }
                _ => continue,
            }
        }
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Removed while still locked: a run waiting on this file sees it gone and
        // opens a new one.
        let _ = std::fs::remove_file(&self.path);
        unregister(&self.path);
    }
}

/// Remove the staging and set-aside folders of `name` that runs now gone left beside
/// it. Called with the target's lock held, so none of them belongs to a live run; only
/// folders that hold the marker are touched.
fn remove_stale(parent: &Path, name: &str) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(parent) else { return Ok(()) };
    for e in entries.flatten() {
        let file_name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = file_name.strip_prefix(&format!(".{name}.")) else { continue };
        let Some(pid) = rest.strip_prefix("tmp-").or_else(|| rest.strip_prefix("old-")) else { continue };
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let p = e.path();
        let is_dir = std::fs::symlink_metadata(&p).map(|m| m.is_dir()).unwrap_or(false);
        if is_dir && p.join(MARKER).is_file() {
            std::fs::remove_dir_all(&p)
                .with_context(|| format!("cannot remove `{}`, left by an interrupted run", p.display()))?;
            eprintln!("curate: removed `{}`, left by an interrupted run", p.display());
        }
    }
    Ok(())
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
            unregister(&self.tmp);
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

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn staged_output_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let s = Staging::create(&target).unwrap();
        write_file(&s.file("a.txt"), b"new").unwrap();
        assert!(!target.exists());
        s.commit().unwrap();
        assert_eq!(std::fs::read(target.join("a.txt")).unwrap(), b"new");
        assert!(target.join(MARKER).is_file());

        // A failed run (dropped staging) leaves the previous output untouched and no
        // staging folder behind.
        let s = Staging::create(&target).unwrap();
        write_file(&s.file("a.txt"), b"half").unwrap();
        drop(s);
        assert_eq!(std::fs::read(target.join("a.txt")).unwrap(), b"new");
        assert_eq!(names(dir.path()), vec!["out"]);

        // A second run replaces the first one's output.
        let s = Staging::create(&target).unwrap();
        write_file(&s.file("b.txt"), b"second").unwrap();
        s.commit().unwrap();
        assert_eq!(names(&target), vec![MARKER, "b.txt"]);
        assert_eq!(names(dir.path()), vec!["out"]);
    }

    #[test]
    fn a_folder_curate_did_not_write_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("thesis");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("chapter1.tex"), b"precious").unwrap();
        let err = Staging::create(&target).err().expect("refused");
        let msg = format!("{err:#}");
        assert!(msg.contains("thesis") && msg.contains("did not write") && msg.contains("chapter1.tex"), "{msg}");
        assert_eq!(std::fs::read(target.join("chapter1.tex")).unwrap(), b"precious");
        assert_eq!(names(dir.path()), vec!["thesis"]);
    }

    #[test]
    fn a_file_or_link_at_the_target_is_refused_and_never_renamed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("in.jsonl");
        std::fs::write(&file, b"{}\n").unwrap();
        let msg = format!("{:#}", Staging::create(&file).err().expect("refused"));
        assert!(msg.contains("is a file"), "{msg}");
        assert_eq!(std::fs::read(&file).unwrap(), b"{}\n");

        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let msg = format!("{:#}", Staging::create(&link).err().expect("refused"));
        assert!(msg.contains("symbolic link"), "{msg}");
        assert!(real.is_dir() && link.is_symlink());
        let left = names(dir.path());
        assert!(!left.iter().any(|n| n.contains(".old-") || n.contains(".tmp-")), "{left:?}");
    }

    #[test]
    fn a_folder_that_turns_foreign_during_the_run_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let s = Staging::create(&target).unwrap();
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("notes.txt"), b"mine").unwrap();
        assert!(s.commit().is_err());
        assert_eq!(std::fs::read(target.join("notes.txt")).unwrap(), b"mine");
    }

    #[test]
    fn empty_folders_and_outputs_from_before_the_marker_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        std::fs::create_dir(&target).unwrap();
        assert_eq!(existing(&target).unwrap(), Existing::Empty);
        Staging::create(&target).unwrap().commit().unwrap();
        assert_eq!(existing(&target).unwrap(), Existing::Output);

        let legacy = dir.path().join("legacy");
        std::fs::create_dir(&legacy).unwrap();
        for f in ["report.json", "ledger.parquet", "documents.parquet", "report.md"] {
            std::fs::write(legacy.join(f), b"x").unwrap();
        }
        assert_eq!(existing(&legacy).unwrap(), Existing::LegacyOutput);
        std::fs::write(legacy.join("thesis.tex"), b"x").unwrap();
        assert!(matches!(existing(&legacy).unwrap(), Existing::Foreign(_)));
    }

    #[test]
    fn a_second_run_on_the_same_output_is_refused_while_the_first_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let first = Staging::create(&target).unwrap();
        let msg = format!("{:#}", Staging::create(&target).err().expect("refused"));
        assert!(msg.contains("another curate run"), "{msg}");
        first.commit().unwrap();
        Staging::create(&target).unwrap().commit().unwrap();
    }

    #[test]
    fn staging_left_by_a_killed_run_is_removed_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        // What SIGKILL leaves: a staging folder (with its marker) and a folder set
        // aside during a commit.
        for stale in [".out.tmp-999999999", ".out.old-999999998"] {
            let p = dir.path().join(stale);
            std::fs::create_dir(&p).unwrap();
            std::fs::write(p.join(MARKER), MARKER_TEXT).unwrap();
            std::fs::write(p.join("documents.parquet"), b"half").unwrap();
        }
        // Folders of the same shape that are not curate's stay.
        std::fs::create_dir(dir.path().join(".out.tmp-12")).unwrap();
        std::fs::create_dir(dir.path().join(".out.tmp-x")).unwrap();
        let s = Staging::create(&target).unwrap();
        s.commit().unwrap();
        assert_eq!(names(dir.path()), vec![".out.tmp-12", ".out.tmp-x", "out"]);
    }

    #[test]
    fn real_path_resolves_dots_and_missing_tails() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        std::fs::create_dir(base.join("a")).unwrap();
        assert_eq!(real_path(&base.join("a/../a/./b/c")), base.join("a/b/c"));
    }
}
