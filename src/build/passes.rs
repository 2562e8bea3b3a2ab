//! The whole-corpus passes over the map tasks' outputs: exact dedup and near-dup
//! clustering. Each reads the map tasks in task order (the records' order, which is
//! the dedup precedence) and writes the documents to drop (`drops.bin`), their ledger
//! rows and its counters.
//!
//! Memory: exact dedup holds one hash-table entry per distinct document (content hash,
//! survivor id and source: 36 bytes of data); near-dedup holds the band table (8 bytes
//! per band per document) and the task position of each document (8 bytes).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use anyhow::{Context, bail};

use super::entries::EntryWriter;
use super::plan::{Plan, Task, TaskKind};
use super::work::{TaskDir, task_dir};
use super::{Env, TaskCounters};
use crate::document::Document;
use crate::ledger::{Entry, Stage};
use crate::output::parquet::read_documents;
use crate::report::SourceStats;
use crate::stages::dedup::ExactDedup;
use crate::stages::near_dedup::{self, BandHashes, BandTable, MinHasher};
use crate::stages::near_pass::NearSummary;

/// Documents to drop, as (map task, row in its `docs.parquet`), sorted.
pub type Drops = Vec<(u32, u32)>;

pub fn write_drops(path: &Path, drops: &Drops) -> anyhow::Result<()> {
    let mut w = BufWriter::new(std::fs::File::create(path).with_context(|| format!("cannot create `{}`", path.display()))?);
    for (t, o) in drops {
        w.write_all(&t.to_le_bytes())?;
        w.write_all(&o.to_le_bytes())?;
    }
    w.flush().with_context(|| format!("cannot write `{}`", path.display()))
}

pub fn read_drops(path: &Path) -> anyhow::Result<Drops> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    if bytes.len() % 8 != 0 {
        bail!("`{}` is cut short", path.display());
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| (u32::from_le_bytes([c[0], c[1], c[2], c[3]]), u32::from_le_bytes([c[4], c[5], c[6], c[7]])))
        .collect())
}

/// The drops of every pass the plan has, per map task: sorted rows.
pub fn all_drops(plan: &Plan) -> anyhow::Result<Vec<Vec<u32>>> {
    let n = plan.tasks_of(TaskKind::Map).len();
    let mut per = vec![Vec::new(); n];
    for t in plan.tasks_of(TaskKind::Dedup).into_iter().chain(plan.tasks_of(TaskKind::Near)) {
        for (ti, o) in read_drops(&task_dir(&plan.work, &t.id).join("drops.bin"))? {
            per.get_mut(ti as usize).with_context(|| format!("task `{}` names a map task the plan lacks", t.id))?.push(o);
        }
    }
    for v in &mut per {
        v.sort_unstable();
        v.dedup();
    }
    Ok(per)
}

fn names<'a>(env: &Env<'a>) -> (Vec<String>, HashMap<&'a str, usize>) {
    let names: Vec<String> = env.recipe.sources.iter().map(|s| s.name.clone()).collect();
    let by_name = env.recipe.sources.iter().map(|s| (s.name.as_str(), s.index)).collect();
    (names, by_name)
}

fn save(out: &TaskDir, stats: BTreeMap<usize, SourceStats>, extra: serde_json::Value, started: std::time::Instant, stage: Stage) -> anyhow::Result<()> {
    let clocks = vec![super::StageTiming { stage: stage.as_str().into(), seconds: started.elapsed().as_secs_f64(), clock: "wall".into() }];
    TaskCounters { sources: stats.into_iter().collect(), clocks, extra }.write(&out.file("counters.json"))
}

/// Exact dedup over the content hashes of every map task's documents.
pub fn dedup(env: &Env, plan: &Plan, task: &Task, out: &TaskDir) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let (names, by_name) = names(env);
    let fault = super::fault::Point::new(&task.id);
    let mut dd = ExactDedup::default();
    let mut stats: BTreeMap<usize, SourceStats> = BTreeMap::new();
    let mut ledger = EntryWriter::create(&out.file("ledger.jsonl"))?;
    let mut drops = Drops::new();
    for (ti, mt) in plan.tasks_of(TaskKind::Map).into_iter().enumerate() {
        let mut row = 0u32;
        read_documents(&task_dir(&plan.work, &mt.id).join("docs.parquet"), &by_name, false, &mut |doc: Document| {
            let st = stats.entry(doc.source).or_default();
            st.enter(Stage::Dedup, Some(doc.chars));
            match dd.check(&doc, &names) {
                Some(reason) => {
                    st.drop(reason.rule);
                    ledger.push(&Entry { doc_id: doc.id, source: doc.source, locator: doc.locator, reason })?;
                    drops.push((ti as u32, row));
                }
                None => st.leave(Stage::Dedup, Some(doc.chars)),
            }
            row += 1;
            Ok(())
        })?;
        if ti == 0 {
            fault.hit("mid");
        }
    }
    ledger.finish()?;
    write_drops(&out.file("drops.bin"), &drops)?;
    save(out, stats, serde_json::Value::Null, started, Stage::Dedup)
}

/// Read one map task's band hashes (see `map_task::write_bands`).
fn read_bands(path: &Path, bands: usize, f: &mut dyn FnMut(Option<BandHashes>)) -> anyhow::Result<()> {
    let mut r = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?);
    let mut rec = vec![0u8; 1 + bands * 8];
    loop {
        match r.read_exact(&mut rec) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", path.display())),
        }
        f((rec[0] == 1).then(|| BandHashes(rec[1..].chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())));
    }
}

/// Near-dup clustering over the band hashes of every document that exact dedup kept.
pub fn near(env: &Env, plan: &Plan, task: &Task, out: &TaskDir) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let cfg = env.recipe.dedup.near.as_ref().context("a near-dup pass without settings")?;
    let (_, by_name) = names(env);
    let fault = super::fault::Point::new(&task.id);
    let maps = plan.tasks_of(TaskKind::Map);
    let exact: HashSet<(u32, u32)> = match plan.tasks_of(TaskKind::Dedup).first() {
        Some(t) => read_drops(&task_dir(&plan.work, &t.id).join("drops.bin"))?.into_iter().collect(),
        None => HashSet::new(),
    };
    let mut table = BandTable::new(cfg.bands);
    let mut positions: Vec<(u32, u32)> = Vec::new();
    for (ti, mt) in maps.iter().enumerate() {
        let mut row = 0u32;
        read_bands(&task_dir(&plan.work, &mt.id).join("bands.bin"), cfg.bands, &mut |b| {
            if !exact.contains(&(ti as u32, row)) {
                table.push(b.as_ref());
                positions.push((ti as u32, row));
            }
            row += 1;
        })?;
    }
    let cands = near_dedup::candidates(&table);
    fault.hit("mid");
    let result = if cfg.confirm {
        // The candidates' shingles, read back from the documents.
        let wanted: HashSet<usize> = cands.documents().into_iter().collect();
        let hasher = MinHasher::new(cfg);
        let mut shingles: HashMap<usize, Vec<u64>> = HashMap::with_capacity(wanted.len());
        let mut pos = 0usize;
        for (ti, mt) in maps.iter().enumerate() {
            let mut row = 0u32;
            read_documents(&task_dir(&plan.work, &mt.id).join("docs.parquet"), &by_name, true, &mut |doc| {
                if !exact.contains(&(ti as u32, row)) {
                    if wanted.contains(&pos) {
                        shingles.insert(pos, near_dedup::shingle_set(&hasher, &doc.content));
                    }
                    pos += 1;
                }
                row += 1;
                Ok(())
            })?;
        }
        let mut verify = |a: usize, b: usize| near_dedup::jaccard(&shingles[&a], &shingles[&b]);
        near_dedup::resolve(&cands, cfg, Some(&mut verify))
    } else {
        near_dedup::resolve(&cands, cfg, None)
    };

    let referenced: HashSet<usize> = result.referenced().into_iter().collect();
    let mut known: HashMap<usize, (u128, usize)> = HashMap::with_capacity(referenced.len());
    let mut stats: BTreeMap<usize, SourceStats> = BTreeMap::new();
    let mut ledger = EntryWriter::create(&out.file("ledger.jsonl"))?;
    let mut drops = Drops::new();
    let mut dropped_clusters = Vec::new();
    let mut pos = 0usize;
    for (ti, mt) in maps.iter().enumerate() {
        let mut row = 0u32;
        read_documents(&task_dir(&plan.work, &mt.id).join("docs.parquet"), &by_name, false, &mut |doc| {
            if exact.contains(&(ti as u32, row)) {
                row += 1;
                return Ok(());
            }
            if referenced.contains(&pos) {
                known.insert(pos, (doc.id, doc.source));
            }
            let st = stats.entry(doc.source).or_default();
            st.enter(Stage::NearDedup, Some(doc.chars));
            match result.get(pos) {
                Some(nd) => {
                    // The survivor precedes the documents it replaces.
                    let (survivor_id, survivor_src) = known[&nd.survivor];
                    let matched_id = known.get(&nd.matched).map(|k| k.0).unwrap_or(survivor_id);
                    let reason = nd.drop_reason(survivor_id, matched_id, &env.recipe.sources[survivor_src].name, cfg.bands);
                    st.drop(reason.rule);
                    ledger.push(&Entry { doc_id: doc.id, source: doc.source, locator: doc.locator, reason })?;
                    drops.push((ti as u32, row));
                    dropped_clusters.push(nd.cluster);
                }
                None => st.leave(Stage::NearDedup, Some(doc.chars)),
            }
            pos += 1;
            row += 1;
            Ok(())
        })?;
    }
    ledger.finish()?;
    write_drops(&out.file("drops.bin"), &drops)?;
    let summary = NearSummary {
        ngram: cfg.ngram,
        bands: cfg.bands,
        rows: cfg.rows,
        confirm: cfg.confirm,
        threshold: cfg.threshold,
        documents: positions.len() as u64,
        candidate_pairs: result.candidate_pairs as u64,
        rejected_pairs: result.rejected_pairs as u64,
        clusters: result.clusters as u64,
        dropped: drops.len() as u64,
        cluster_sizes: crate::stages::near_pass::cluster_sizes(dropped_clusters),
    };
    save(out, stats, serde_json::to_value(&summary).expect("summary serialises"), started, Stage::NearDedup)
}
