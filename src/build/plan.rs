//! The plan: a build cut into phases of tasks with files between them, written to
//! `plan.json` in the build's work folder before any task runs.
//!
//! Phases, in the order of the recipe's stage list ([`crate::stages::plan_stages`]):
//!
//! | phase | tasks | reads | writes |
//! |---|---|---|---|
//! | `map` | one per input slice | its slice of the inputs | the documents that passed the per-document stages, their band hashes, ledger rows, counters |
//! | `dedup` | one | every map task's document keys | the exact duplicates to drop, ledgered |
//! | `near` | one | every map task's band hashes (and, to verify, the candidates' texts) | the near-duplicates to drop, ledgered |
//! | `tokenize` | one per map task | that map task's documents, without the drops | token and mask spills |
//! | `finalize` | one | everything | the output folder |
//!
//! A slice is a whole file, a byte range of an uncompressed JSON Lines file cut at
//! line boundaries, or a run of a Parquet file's row groups; small files of one source
//! are grouped. Slices follow the input's size (`DEFAULT_SLICE_BYTES`, or the total
//! divided by `--tasks`); a source with a `limit` is one task (the limit counts records
//! in order). Task outputs are concatenated in task order, which is the order of the
//! records, so the outputs do not depend on how the input was cut.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::hash::sha256_hex;
use crate::ledger::Stage;
use crate::recipe::{Recipe, ReaderKind, SourceRole};
use crate::source::files::{Compression, InputFile};
use crate::source::read::Part;

/// A map task reads about this much input when the task count is not given.
pub const DEFAULT_SLICE_BYTES: u64 = 256 << 20;

pub const PLAN_FILE: &str = "plan.json";
const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub format: u32,
    pub curate_version: String,
    /// The recipe file, absolute, and the sha256 of its bytes.
    pub recipe: PathBuf,
    pub recipe_sha256: String,
    /// sha256 of the `curate.lock` fetched inputs were read through.
    pub lock_sha256: Option<String>,
    /// The output folder and this build's work folder.
    pub out: PathBuf,
    pub work: PathBuf,
    /// The tokenizer file when it was fetched (an `hf:` tokenizer), else `None`.
    pub tokenizer: Option<PathBuf>,
    /// Every source of the recipe, in recipe order.
    pub sources: Vec<PlanSource>,
    /// The recipe's stages in execution order.
    pub stages: Vec<String>,
    pub phases: Vec<Phase>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlanSource {
    pub name: String,
    /// Rejected by the policy: not read.
    pub excluded: bool,
    /// An evaluation set: indexed for decontamination, never trained on.
    pub eval: bool,
    pub files: Vec<PlanFile>,
    /// Findings about the source's files (a folder that links back into itself).
    pub warnings: Vec<String>,
}

/// An input file and what identifies its contents for resuming: size and modification
/// time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlanFile {
    #[serde(flatten)]
    pub input: InputFile,
    pub mtime_ns: u128,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Phase {
    pub name: String,
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    Map,
    Dedup,
    Near,
    Tokenize,
    Finalize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Task {
    pub id: String,
    pub kind: TaskKind,
    /// The source a map or tokenize task reads.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source: Option<usize>,
    /// What a map task reads, in order.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub slices: Vec<Slice>,
    /// The input bytes of a map task's slices, for progress and sizing.
    #[serde(skip_serializing_if = "is_zero", default)]
    pub bytes: u64,
    /// The tasks whose outputs this one reads.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub after: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Slice {
    /// Index into the source's files.
    pub file: usize,
    pub part: Part,
}

/// What a plan is made from, besides the recipe.
pub struct PlanInputs<'a> {
    pub out: &'a Path,
    pub work: &'a Path,
    /// Resolved files of every source (empty for an excluded one), by recipe index.
    pub files: &'a [Vec<InputFile>],
    pub excluded: &'a [usize],
    pub warnings: &'a [Vec<String>],
    pub lock_sha256: Option<String>,
    pub tokenizer: Option<PathBuf>,
    /// `--tasks`: about this many map tasks.
    pub tasks: Option<usize>,
}

impl Plan {
    pub fn make(recipe: &Recipe, p: &PlanInputs) -> anyhow::Result<Plan> {
        let stages = crate::stages::plan_stages(recipe);
        let mut sources = Vec::with_capacity(recipe.sources.len());
        for s in &recipe.sources {
            let excluded = p.excluded.contains(&s.index);
            let files = if excluded { &[][..] } else { &p.files[s.index][..] };
            let mut planned = Vec::with_capacity(files.len());
            for f in files {
                // Absolute: a task may run in another folder, or on another machine
                // that sees the same file system.
                let mut input = f.clone();
                input.path = absolute(&f.path);
                planned.push(PlanFile { mtime_ns: mtime_ns(&input.path)?, input });
            }
            sources.push(PlanSource {
                name: s.name.clone(),
                excluded,
                eval: s.role == SourceRole::Eval,
                files: planned,
                warnings: p.warnings.get(s.index).cloned().unwrap_or_default(),
            });
        }
        let mut order: Vec<usize> = recipe
            .sources
            .iter()
            .filter(|s| s.role == SourceRole::Train && !p.excluded.contains(&s.index))
            .map(|s| s.index)
            .collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(recipe.sources[i].priority), i));
        let total: u64 = order.iter().flat_map(|&i| &sources[i].files).map(|f| f.input.bytes).sum();
        let slice_bytes = match p.tasks {
            Some(0) => bail!("`--tasks` must be at least 1"),
            Some(n) => total.div_ceil(n as u64).max(1),
            None => DEFAULT_SLICE_BYTES,
        };

        let mut map = Vec::new();
        for &src in &order {
            let files = &sources[src].files;
            let mut group: Vec<Slice> = Vec::new();
            let mut group_bytes = 0u64;
            let flush = |group: &mut Vec<Slice>, group_bytes: &mut u64, map: &mut Vec<(usize, Vec<Slice>, u64)>| {
                if !group.is_empty() {
                    map.push((src, std::mem::take(group), *group_bytes));
                    *group_bytes = 0;
                }
            };
            if recipe.sources[src].limit.is_some() {
                // The limit counts records in order: one task reads them all.
                let slices = (0..files.len()).map(|file| Slice { file, part: Part::Whole }).collect();
                map.push((src, slices, files.iter().map(|f| f.input.bytes).sum()));
                continue;
            }
            for (fi, f) in files.iter().enumerate() {
                let parts = if f.input.bytes > slice_bytes { split(&f.input, slice_bytes)? } else { vec![] };
                if parts.len() > 1 {
                    flush(&mut group, &mut group_bytes, &mut map);
                    for (part, bytes) in parts {
                        map.push((src, vec![Slice { file: fi, part }], bytes));
                    }
                    continue;
                }
                group.push(Slice { file: fi, part: Part::Whole });
                group_bytes += f.input.bytes;
                if group_bytes >= slice_bytes {
                    flush(&mut group, &mut group_bytes, &mut map);
                }
            }
            flush(&mut group, &mut group_bytes, &mut map);
        }

        let has = |s: Stage| stages.contains(&s);
        let mut phases = Vec::new();
        let map_ids: Vec<String> = (0..map.len()).map(|i| format!("map-{i:05}")).collect();
        phases.push(Phase {
            name: "map".into(),
            tasks: map
                .iter()
                .zip(&map_ids)
                .map(|((src, slices, bytes), id)| Task {
                    id: id.clone(),
                    kind: TaskKind::Map,
                    source: Some(*src),
                    slices: slices.clone(),
                    bytes: *bytes,
                    after: vec![],
                })
                .collect(),
        });
        let mut passes: Vec<String> = Vec::new();
        if has(Stage::Dedup) {
            phases.push(Phase {
                name: "dedup".into(),
                tasks: vec![Task { id: "dedup".into(), kind: TaskKind::Dedup, source: None, slices: vec![], bytes: 0, after: map_ids.clone() }],
            });
            passes.push("dedup".into());
        }
        if has(Stage::NearDedup) {
            let mut after = map_ids.clone();
            after.extend(passes.iter().cloned());
            phases.push(Phase {
                name: "near".into(),
                tasks: vec![Task { id: "near".into(), kind: TaskKind::Near, source: None, slices: vec![], bytes: 0, after }],
            });
            passes.push("near".into());
        }
        let mut tokenize_ids = Vec::new();
        if has(Stage::Tokenize) {
            let tasks: Vec<Task> = map
                .iter()
                .zip(&map_ids)
                .enumerate()
                .map(|(i, ((src, _, bytes), mid))| {
                    let mut after = vec![mid.clone()];
                    after.extend(passes.iter().cloned());
                    Task { id: format!("tokenize-{i:05}"), kind: TaskKind::Tokenize, source: Some(*src), slices: vec![], bytes: *bytes, after }
                })
                .collect();
            tokenize_ids = tasks.iter().map(|t| t.id.clone()).collect();
            phases.push(Phase { name: "tokenize".into(), tasks });
        }
        let mut after = map_ids;
        after.extend(passes);
        after.extend(tokenize_ids);
        phases.push(Phase {
            name: "finalize".into(),
            tasks: vec![Task { id: "finalize".into(), kind: TaskKind::Finalize, source: None, slices: vec![], bytes: 0, after }],
        });

        Ok(Plan {
            format: FORMAT,
            curate_version: env!("CARGO_PKG_VERSION").into(),
            recipe: std::path::absolute(&recipe.path).unwrap_or_else(|_| recipe.path.clone()),
            recipe_sha256: recipe.sha256.clone(),
            lock_sha256: p.lock_sha256.clone(),
            out: absolute(p.out),
            work: absolute(p.work),
            tokenizer: p.tokenizer.as_deref().map(absolute),
            sources,
            stages: stages.iter().map(|s| s.as_str().to_string()).collect(),
            phases,
        })
    }

    pub fn task(&self, id: &str) -> Option<&Task> {
        self.phases.iter().flat_map(|p| &p.tasks).find(|t| t.id == id)
    }

    pub fn tasks_of(&self, kind: TaskKind) -> Vec<&Task> {
        self.phases.iter().flat_map(|p| &p.tasks).filter(|t| t.kind == kind).collect()
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(self).expect("plan serialises");
        text.push('\n');
        crate::build::work::write_atomic(path, text.as_bytes())
    }

    pub fn read(path: &Path) -> anyhow::Result<Plan> {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read the plan `{}`", path.display()))?;
        let plan: Plan = serde_json::from_slice(&bytes).with_context(|| format!("`{}` is not a curate plan", path.display()))?;
        if plan.format != FORMAT || plan.curate_version != env!("CARGO_PKG_VERSION") {
            bail!(
                "the plan `{}` was made by curate {} (plan format {}); this is curate {}\nhint: make the plan again with this curate (`curate plan`)",
                path.display(),
                plan.curate_version,
                plan.format,
                env!("CARGO_PKG_VERSION")
            );
        }
        Ok(plan)
    }

    /// What makes a task's outputs what they are: the curate version, the recipe, the
    /// task itself, its input files' sizes and modification times (and the eval sets'
    /// and tokenizer's, which every document is checked against), and the keys of the
    /// tasks it reads. Two runs with the same key write the same files.
    pub fn key(&self, task: &Task, upstream: &[String], tokenizer: Option<&Path>) -> String {
        let mut h = String::new();
        h.push_str(&format!("curate {}\nrecipe {}\nlock {:?}\n", self.curate_version, self.recipe_sha256, self.lock_sha256));
        h.push_str(&serde_json::to_string(task).expect("task serialises"));
        h.push('\n');
        if let Some(src) = task.source.filter(|_| task.kind == TaskKind::Map) {
            let files = &self.sources[src].files;
            for s in &task.slices {
                let f = &files[s.file];
                h.push_str(&format!("file {} {} {}\n", f.input.path.display(), f.input.bytes, f.mtime_ns));
            }
            for s in &self.sources {
                if s.eval && !s.excluded {
                    for f in &s.files {
                        h.push_str(&format!("other {} {} {}\n", f.input.path.display(), f.input.bytes, f.mtime_ns));
                    }
                }
            }
        }
        if task.kind == TaskKind::Tokenize
            && let Some(t) = tokenizer
        {
            let m = std::fs::metadata(t).ok();
            let stamp = m.as_ref().and_then(|m| m.modified().ok()).and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
            h.push_str(&format!("tokenizer {} {:?} {:?}\n", t.display(), m.map(|m| m.len()), stamp));
        }
        for u in upstream {
            h.push_str(&format!("after {u}\n"));
        }
        sha256_hex(h.as_bytes())
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn mtime_ns(path: &Path) -> anyhow::Result<u128> {
    let m = std::fs::metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    Ok(m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_nanos()).unwrap_or(0))
}

/// Cut a file into parts of about `size` bytes, or return no parts when it cannot be
/// cut (compressed, or a format without record boundaries that can be found cheaply).
fn split(f: &InputFile, size: u64) -> anyhow::Result<Vec<(Part, u64)>> {
    match (f.reader, f.compression) {
        (ReaderKind::Jsonl, Compression::None) => split_lines(&f.path, f.bytes, size),
        (ReaderKind::Parquet, Compression::None) => split_row_groups(&f.path, size),
        _ => Ok(vec![]),
    }
}

/// Byte ranges that end just after a newline, each with the 1-based number of its
/// first line, found by reading the file once.
fn split_lines(path: &Path, len: u64, size: u64) -> anyhow::Result<Vec<(Part, u64)>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut parts = Vec::new();
    let (mut start, mut first_row) = (0u64, 1u64);
    let mut pos = 0u64;
    let mut lines = 0u64;
    let mut target = size;
    loop {
        let n = f.read(&mut buf).with_context(|| format!("cannot read `{}`", path.display()))?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        let mut from = 0usize;
        while let Some(i) = memchr::memchr(b'\n', &chunk[from..]) {
            let at = from + i;
            lines += 1;
            let end = pos + at as u64 + 1;
            if end >= target && end < len {
                parts.push((Part::Lines { start, end, first_row }, end - start));
                start = end;
                first_row = lines + 1;
                target = end + size;
            }
            from = at + 1;
        }
        pos += n as u64;
    }
    if pos != len {
        bail!("`{}` changed while it was being planned ({len} bytes, then {pos})", path.display());
    }
    if start < len {
        parts.push((Part::Lines { start, end: len, first_row }, len - start));
    }
    Ok(parts)
}

/// Runs of row groups of about `size` compressed bytes.
fn split_row_groups(path: &Path, size: u64) -> anyhow::Result<Vec<(Part, u64)>> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let f = std::fs::File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
    let Ok(reader) = SerializedFileReader::new(f) else {
        // Not readable as Parquet: the reader says why, on the whole file.
        return Ok(vec![]);
    };
    let groups = reader.metadata().row_groups();
    let mut parts = Vec::new();
    let (mut start, mut first_row, mut rows, mut bytes) = (0usize, 1u64, 0u64, 0u64);
    for (g, rg) in groups.iter().enumerate() {
        bytes += rg.compressed_size().max(0) as u64;
        rows += rg.num_rows().max(0) as u64;
        if bytes >= size || g + 1 == groups.len() {
            parts.push((Part::RowGroups { start, end: g + 1, first_row }, bytes));
            start = g + 1;
            first_row = rows + 1;
            bytes = 0;
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_after_newlines_and_numbered() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jsonl");
        let text = "l1\nline2\n\nl4\nline5\nl6";
        std::fs::write(&p, text).unwrap();
        let parts = split_lines(&p, text.len() as u64, 5).unwrap();
        let mut got = Vec::new();
        for (part, bytes) in &parts {
            let Part::Lines { start, end, first_row } = *part else { panic!() };
            assert_eq!(*bytes, end - start);
            got.push((text[start as usize..end as usize].to_string(), first_row));
        }
        assert_eq!(
            got,
            vec![("l1\nline2\n".to_string(), 1), ("\nl4\nline5\n".to_string(), 3), ("l6".to_string(), 6)]
        );
        let whole: String = got.iter().map(|g| g.0.as_str()).collect();
        assert_eq!(whole, text);
    }
}
