//! The plan: outputs byte-identical for any task and thread count, resuming after a
//! kill at any phase with the same outputs and without running completed tasks again,
//! `curate plan` and `curate task`, and the funnel in the stage list's order.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Every output file with the bytes that must be the same from run to run.
fn outputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                if let Some(b) = deterministic_part(&rel, std::fs::read(&p).unwrap()) {
                    out.push((rel, b));
                }
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}

fn assert_same(a: &Path, b: &Path, what: &str) {
    let (x, y) = (outputs(a), outputs(b));
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&x), names(&y), "{what}: different files");
    for ((n, bx), (_, by)) in x.iter().zip(&y) {
        assert!(bx == by, "{what}: `{n}` differs");
    }
}

fn timings(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("timings.json")).unwrap()).unwrap()
}

/// A small generator of words, the same on every machine.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn words(&mut self, n: usize) -> String {
        const W: [&str; 40] = [
            "river", "stone", "garden", "quiet", "market", "lantern", "copper", "meadow", "signal", "harbor", "winter", "orchard",
            "pencil", "thunder", "velvet", "candle", "bridge", "forest", "silver", "window", "basket", "ladder", "marble",
            "planet", "rocket", "saddle", "tunnel", "violin", "wagon", "yellow", "anchor", "bishop", "castle", "dragon",
            "falcon", "ginger", "hollow", "island", "jungle", "kettle",
        ];
        let mut s = String::new();
        for i in 0..n {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(W[(self.next() % W.len() as u64) as usize]);
            if i % 9 == 8 {
                s.push('.');
            }
        }
        s.push('.');
        s
    }
}

/// Four JSON Lines files of instructions with exact and near duplicates planted
/// across files, and a recipe that runs every stage on them.
fn corpus(d: &Dir) {
    let mut rng = Rng(11);
    let mut all: Vec<(String, String)> = Vec::new();
    for f in 0..4 {
        let mut s = String::new();
        for i in 0..2600 {
            let (instruction, text) = if i % 40 == 7 && all.len() > 100 {
                // An exact copy of a record from an earlier file.
                all[(rng.next() % all.len() as u64) as usize].clone()
            } else if i % 55 == 9 && all.len() > 100 {
                // A near copy: one word added.
                let (ins, src) = &all[(rng.next() % all.len() as u64) as usize];
                (ins.clone(), format!("{} tailpiece", src.trim_end_matches('.')))
            } else {
                let n = 36 + (rng.next() % 20) as usize;
                let pair = (format!("Describe item {f}-{i}."), format!("Record {f}-{i}: {}", rng.words(n)));
                all.push(pair.clone());
                pair
            };
            s.push_str(&serde_json::json!({"instruction": instruction, "output": text}).to_string());
            s.push('\n');
        }
        d.write(&format!("data/part-{f}.jsonl"), s);
    }
    let tok = repo().join("recipes/tokenizer/tokenizer.json");
    d.recipe(&format!(
        r#"[target]
tokenizer = "{}"
template = "chatml"
seq_len = 256

[[source]]
name = "parts"
path = "data/part-*.jsonl"
format = "instruction"
fields = {{ instruction = "instruction", output = "output" }}

[filters]
min_chars = 20
quality = ["repetition"]
pii = "redact"

[dedup]
exact = true
near = {{ threshold = 0.7 }}

[pack]
valid_fraction = 0.05
"#,
        tok.display()
    ));
}

fn run(d: &Dir, out: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--no-progress", "recipe.toml", "--out", out];
    args.extend_from_slice(extra);
    d.curate(&args)
}

#[test]
fn outputs_are_identical_for_any_task_and_thread_count() {
    let d = Dir::new();
    corpus(&d);
    ok(&run(&d, "ref", &["--tasks", "1", "--threads", "1"]));
    let r = report(&d.join("ref"));
    // Dedup saw across files: duplicates were planted only across them.
    assert!(r["drops"]["dedup.exact"].as_u64().unwrap() > 100, "{}", r["drops"]);
    assert!(r["drops"]["near_dedup.minhash"].as_u64().unwrap_or(0) > 50, "{}", r["drops"]);
    // Cluster sizes account for every near-duplicate dropped (each cluster keeps one).
    let sizes = r["near_dedup"]["cluster_sizes"].as_array().unwrap();
    let in_clusters: u64 = sizes.iter().map(|c| (c["size"].as_u64().unwrap() - 1) * c["clusters"].as_u64().unwrap()).sum();
    assert_eq!(in_clusters, r["near_dedup"]["dropped"].as_u64().unwrap(), "{sizes:?}");
    let page = std::fs::read_to_string(d.join("ref/report.html")).unwrap();
    assert!(page.contains("Cluster sizes") && page.contains("id=\"funnel-parts\""), "the page shows cluster sizes and the source's own funnel");
    assert_eq!(timings(&d.join("ref"))["tasks_run"], 4, "one map, dedup, near and one tokenize task (finalize writes the output)");
    for (tasks, threads) in [("3", "1"), ("3", "2"), ("8", "1"), ("8", "2"), ("1", "2")] {
        let out = format!("t{tasks}-{threads}");
        ok(&run(&d, &out, &["--tasks", tasks, "--threads", threads]));
        assert_same(&d.join("ref"), &d.join(&out), &format!("--tasks {tasks} --threads {threads}"));
        let t = timings(&d.join(&out));
        if tasks == "8" {
            assert!(t["tasks_run"].as_u64().unwrap() >= 8 * 2, "8 map and 8 tokenize tasks at least: {t}");
        }
    }
}

#[test]
fn the_quickstart_is_identical_for_any_task_and_thread_count() {
    let d = Dir::new();
    let recipe = repo().join("recipes/quickstart.toml");
    let go = |out: &Path, tasks: &str, threads: &str| {
        let o = d.curate(&["--no-progress", recipe.to_str().unwrap(), "--out", out.to_str().unwrap(), "--tasks", tasks, "--threads", threads]);
        ok(&o);
    };
    go(&d.join("ref"), "1", "1");
    for (tasks, threads) in [("3", "2"), ("8", "1"), ("8", "2")] {
        let out = d.join(&format!("t{tasks}-{threads}"));
        go(&out, tasks, threads);
        assert_same(&d.join("ref"), &out, &format!("quickstart --tasks {tasks} --threads {threads}"));
    }
}

fn work(d: &Dir, out: &str) -> PathBuf {
    d.join(&format!(".{out}.work"))
}

fn completed(d: &Dir, out: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(work(d, out).join("tasks"))
        .map(|r| {
            r.flatten()
                .filter(|e| e.path().join("done.json").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Kill a run with SIGKILL at `point`, check what it left, resume, and compare with
/// an uninterrupted run.
fn kill_and_resume(d: &Dir, point: &str, expect_done: &dyn Fn(&[String]) -> bool) {
    let out = format!("k-{}", point.replace(':', "-"));
    let o = Command::new(env!("CARGO_BIN_EXE_curate"))
        .current_dir(d.path())
        .env("CURATE_KILL_AT", point)
        .args(["--no-progress", "recipe.toml", "--out", &out, "--tasks", "3", "--threads", "2"])
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(o.status.signal(), Some(9), "killed at {point}: {:?}\n{}", o.status, stderr(&o));
    assert!(!d.join(&out).exists(), "a killed run leaves no output");
    let done = completed(d, &out);
    assert!(expect_done(&done), "after a kill at {point}: completed {done:?}");

    let o = run(d, &out, &["--tasks", "3", "--threads", "1"]);
    ok(&o);
    assert!(stderr(&o).contains("left by an interrupted run"), "the killed run's staging is removed: {}", stderr(&o));
    let t = timings(&d.join(&out));
    assert_eq!(t["tasks_skipped"].as_u64().unwrap(), done.len() as u64, "completed tasks are not run again: {t}");
    assert_same(&d.join("ref"), &d.join(&out), &format!("resumed after a kill at {point}"));
    assert!(!work(d, &out).exists(), "the work folder goes once the output is in place");
}

#[test]
fn a_run_killed_in_any_phase_resumes_to_the_same_outputs() {
    let d = Dir::new();
    corpus(&d);
    ok(&run(&d, "ref", &["--tasks", "3"]));
    // Map and tokenize tasks, dedup and near (finalize is not counted).
    let maps = (timings(&d.join("ref"))["tasks_run"].as_u64().unwrap() as usize - 2) / 2;
    assert!(maps >= 2, "the corpus is cut into {maps} map tasks");
    // During phase 1: the first map task is complete, the second is not.
    kill_and_resume(&d, "map-00001:mid", &|done| done == ["map-00000"]);
    // During a global pass: every map task and exact dedup are complete.
    kill_and_resume(&d, "near:mid", &|done| {
        done.len() == maps + 1 && done.contains(&"dedup".to_string()) && !done.contains(&"near".to_string())
    });
    // During tokenizing.
    kill_and_resume(&d, "tokenize-00001:mid", &|done| {
        done.contains(&"tokenize-00000".to_string()) && !done.contains(&"tokenize-00001".to_string())
    });
    // During shard writing: every task but finalize is complete.
    kill_and_resume(&d, "finalize:shards", &|done| done.len() == 2 * maps + 2);
}

#[test]
fn a_changed_input_reruns_only_its_tasks() {
    let d = Dir::new();
    corpus(&d);
    let o = Command::new(env!("CARGO_BIN_EXE_curate"))
        .current_dir(d.path())
        .env("CURATE_KILL_AT", "finalize:shards")
        .args(["--no-progress", "recipe.toml", "--out", "out", "--tasks", "4"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let before = completed(&d, "out");
    let maps = before.iter().filter(|t| t.starts_with("map-")).count();
    assert!(maps >= 4, "{before:?}");
    let plan: serde_json::Value = serde_json::from_slice(&std::fs::read(work(&d, "out").join("plan.json")).unwrap()).unwrap();
    let reading_last = plan["phases"][0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["slices"].as_array().unwrap().iter().any(|s| s["file"] == 3))
        .count();
    // Change the last file (its size stays, so the input is cut the same way): its map
    // task, every pass and the tokenize tasks run again.
    let p = d.join("data/part-3.jsonl");
    let text = std::fs::read_to_string(&p).unwrap().replacen("Describe item 3-5.", "Describe thing 3-5", 1);
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&p, text).unwrap();
    ok(&run(&d, "out", &["--tasks", "4"]));
    let t = timings(&d.join("out"));
    let skipped = t["tasks_skipped"].as_u64().unwrap();
    assert_eq!(skipped, (maps - reading_last) as u64, "only the changed file's map tasks, the passes and what reads them rerun: {t}");
    ok(&run(&d, "fresh", &["--tasks", "4"]));
    assert_same(&d.join("fresh"), &d.join("out"), "a resumed run after an input changed");
    assert!(d.join("out/documents.parquet").exists());
    let kept = strings(&d.join("out/documents.parquet"), "file");
    assert_eq!(kept.len() as u64, report(&d.join("out"))["totals"]["documents_kept"].as_u64().unwrap());
}

#[test]
fn fresh_discards_completed_tasks() {
    let d = Dir::new();
    corpus(&d);
    let o = Command::new(env!("CARGO_BIN_EXE_curate"))
        .current_dir(d.path())
        .env("CURATE_KILL_AT", "near:mid")
        .args(["--no-progress", "recipe.toml", "--out", "out", "--tasks", "2"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(!completed(&d, "out").is_empty());
    ok(&run(&d, "out", &["--tasks", "2", "--fresh"]));
    assert_eq!(timings(&d.join("out"))["tasks_skipped"], 0);
}

#[test]
fn plan_and_task_run_a_build_step_by_step() {
    let d = Dir::new();
    corpus(&d);
    ok(&run(&d, "ref", &["--tasks", "2"]));
    let o = d.curate(&["plan", "recipe.toml", "--out", "stepwise", "--tasks", "2"]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("phase map") && err.contains("2 task(s)"), "{err}");
    let plan_path = work(&d, "stepwise").join("plan.json");
    let plan: serde_json::Value = serde_json::from_slice(&std::fs::read(&plan_path).unwrap()).unwrap();
    let stages: Vec<&str> = plan["stages"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(
        stages,
        ["read", "select", "map", "pii", "filter", "quality", "minhash", "dedup", "near_dedup", "tokenize", "mix"]
    );
    let ids: Vec<String> = plan["phases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["tasks"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()))
        .collect();
    // Finalize refuses to run before the tasks it reads.
    let err = fails(&d.curate(&["task", plan_path.to_str().unwrap(), "finalize"]));
    assert!(err.contains("is not complete"), "{err}");
    let err = fails(&d.curate(&["task", plan_path.to_str().unwrap(), "nope"]));
    assert!(err.contains("no task `nope`") && err.contains("map-00000"), "{err}");
    // Each task from another folder, as a worker on another machine would.
    let elsewhere = tempfile::tempdir().unwrap();
    let task = |id: &str| Command::new(env!("CARGO_BIN_EXE_curate")).current_dir(elsewhere.path()).args(["task", plan_path.to_str().unwrap(), id]).output().unwrap();
    for id in ids.iter().filter(|id| *id != "finalize") {
        let o = task(id);
        ok(&o);
        assert!(stderr(&o).contains(&format!("task `{id}` done")), "{}", stderr(&o));
    }
    // Running a complete task again does nothing.
    let o = task("map-00000");
    ok(&o);
    assert!(stderr(&o).contains("task `map-00000` was already complete"), "{}", stderr(&o));
    ok(&task("finalize"));
    assert_same(&d.join("ref"), &d.join("stepwise"), "curate task, task by task");
    assert!(!work(&d, "stepwise").exists());
}

#[test]
fn the_funnel_follows_the_stage_list() {
    let d = Dir::new();
    corpus(&d);
    ok(&run(&d, "out", &[]));
    let r = report(&d.join("out"));
    let funnel: Vec<&str> = r["funnel"].as_array().unwrap().iter().map(|f| f["stage"].as_str().unwrap()).collect();
    // Every stage that counts documents, in execution order (mixing counts copies,
    // in the shards section).
    assert_eq!(
        funnel,
        ["read", "select", "map", "pii", "filter", "quality", "minhash", "dedup", "near_dedup", "tokenize"]
    );
    // Each stage takes in what the one before it let out.
    let rows = r["funnel"].as_array().unwrap();
    for w in rows.windows(2).skip(3) {
        assert_eq!(w[0]["records_out"], w[1]["records_in"], "{} → {}", w[0]["stage"], w[1]["stage"]);
    }
}

#[test]
fn byte_ranges_and_row_groups_keep_file_rows() {
    use arrow_array::{RecordBatch, StringArray};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;
    let d = Dir::new();
    let texts: Vec<String> = (0..3000).map(|i| format!("Parquet record {i} holds a sentence long enough to pass the filters.")).collect();
    let col = StringArray::from(texts.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    let batch = RecordBatch::try_from_iter([("text", std::sync::Arc::new(col) as arrow_array::ArrayRef)]).unwrap();
    let props = WriterProperties::builder().set_max_row_group_row_count(Some(500)).build();
    let mut w = ArrowWriter::try_new(std::fs::File::create(d.join("rows.parquet")).unwrap(), batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let mut lines = String::new();
    for i in 0..3000 {
        if i % 100 == 50 {
            lines.push('\n');
        }
        lines.push_str(&serde_json::json!({"text": format!("Line record {i} holds a sentence long enough to pass the filters.")}).to_string());
        lines.push('\n');
    }
    d.write("lines.jsonl", lines);
    d.recipe(
        "[[source]]\nname = \"p\"\npath = \"rows.parquet\"\nformat = \"text\"\n\n[[source]]\nname = \"l\"\npath = \"lines.jsonl\"\nformat = \"text\"\n\n[filters]\nmin_chars = 10\n",
    );
    ok(&run(&d, "one", &["--tasks", "1"]));
    ok(&run(&d, "many", &["--tasks", "7"]));
    assert!(timings(&d.join("many"))["tasks_run"].as_u64().unwrap() >= 7);
    assert_same(&d.join("one"), &d.join("many"), "sliced Parquet and JSON Lines");
    // Rows are the file's rows, blank lines counted.
    let rows = u64s(&d.join("many/documents.parquet"), "row");
    let files = strings(&d.join("many/documents.parquet"), "file");
    let last_line = rows.iter().zip(&files).filter(|(_, f)| f.as_deref() == Some("lines.jsonl")).map(|(r, _)| *r).max().unwrap();
    assert_eq!(last_line, 3030);
    let last_row = rows.iter().zip(&files).filter(|(_, f)| f.as_deref() == Some("rows.parquet")).map(|(r, _)| *r).max().unwrap();
    assert_eq!(last_row, 3000);
}
