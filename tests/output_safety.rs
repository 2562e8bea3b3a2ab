//! The output step never loses a user's data: it replaces only a folder curate wrote,
//! refuses an output that a source reads, cleans up after an interrupted run and never
//! lets two runs write one output folder at once.

mod common;
use common::*;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const GOOD: &str = r#"{"instruction": "Add 2 and 3.", "input": "", "output": "2 + 3 = 5."}"#;

fn source(path: &str) -> String {
    format!("[[source]]\nname = \"s\"\npath = \"{path}\"\nformat = \"instruction\"\n")
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn output_folder_that_is_the_input_folder_is_refused_and_left_whole() {
    let d = Dir::new();
    d.write("data/in.jsonl", format!("{GOOD}\n"));
    d.write("data/notes.md", "my notes");
    d.recipe(&format!("{}\n[output]\ndir = \"data\"\n", source("data/in.jsonl")));
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("data` is a folder that curate did not write"), "{err}");
    assert!(err.contains("choose another output folder"), "the error says how to proceed: {err}");
    assert_eq!(listing(&d.join("data")), vec!["in.jsonl", "notes.md"]);
    assert_eq!(listing(d.path()), vec!["data", "recipe.toml"], "nothing is left beside it");

    // The same through `--out`, with an absolute path.
    let thesis = d.join("thesis");
    d.write("thesis/chapter.tex", "precious");
    let err = fails(&d.curate(&["recipe.toml", "--out", thesis.to_str().unwrap()]));
    assert!(err.contains("thesis") && err.contains("chapter.tex"), "{err}");
    assert_eq!(std::fs::read_to_string(thesis.join("chapter.tex")).unwrap(), "precious");
}

#[test]
fn a_file_at_the_output_path_is_refused_and_never_renamed() {
    let d = Dir::new();
    d.write("data/in.jsonl", format!("{GOOD}\n"));
    d.recipe(&source("data/in.jsonl"));
    for target in ["data/in.jsonl", "recipe.toml"] {
        let before = std::fs::read(d.join(target)).unwrap();
        let err = fails(&d.curate(&["recipe.toml", "--out", target]));
        assert!(err.contains("is a file, not a folder"), "{err}");
        assert_eq!(std::fs::read(d.join(target)).unwrap(), before);
    }
    assert_eq!(listing(&d.join("data")), vec!["in.jsonl"]);
    assert_eq!(listing(d.path()), vec!["data", "recipe.toml"]);
}

#[test]
fn an_earlier_output_is_replaced_and_carries_the_marker() {
    let d = Dir::new();
    d.write("in.jsonl", format!("{GOOD}\n"));
    d.recipe(&source("in.jsonl"));
    ok(&d.curate(&["recipe.toml"]));
    assert!(d.out().join(".curate-output").is_file());
    // A file the user put into an output is the output's: the next run replaces it.
    d.write("out/t/stray.txt", "x");
    ok(&d.curate(&["recipe.toml"]));
    assert!(!d.out().join("stray.txt").exists());
    assert_eq!(listing(&d.join("out")), vec!["t"], "no lock, staging or set-aside folder is left");
}

#[test]
fn an_output_folder_inside_a_folder_source_is_refused() {
    let d = Dir::new();
    d.write("data/a.txt", "A plain text document that is long enough to keep.");
    d.recipe("[[source]]\nname = \"s\"\npath = \"data\"\nformat = \"text\"\n");
    let err = fails(&d.curate(&["recipe.toml", "--out", "data/out"]));
    assert!(err.contains("is inside `") && err.contains("which source `s` reads"), "{err}");
    assert!(!d.join("data/out").exists());

    // A source that names a file inside the output folder is refused too: the run
    // would replace what it reads.
    ok(&d.curate(&["recipe.toml", "--out", "prev"]));
    d.recipe("[[source]]\nname = \"s\"\npath = \"prev/documents.parquet\"\nformat = \"text\"\n");
    let err = fails(&d.curate(&["recipe.toml", "--out", "prev"]));
    assert!(err.contains("inside the output folder `prev`"), "{err}");
    assert!(d.join("prev/documents.parquet").is_file());
}

/// A source large enough that a debug build takes a few seconds over it.
fn big_source(d: &Dir) {
    let mut s = String::with_capacity(80 << 20);
    for i in 0..400_000u64 {
        s.push_str(&format!(
            "{{\"instruction\": \"Add {i} and {}.\", \"input\": \"\", \"output\": \"{i} + {} = {}. The sum is written out in words as well, for the record number {i}.\"}}\n",
            i + 1,
            i + 1,
            2 * i + 1
        ));
    }
    d.write("in.jsonl", s);
    d.recipe(&source("in.jsonl"));
}

fn spawn(d: &Dir) -> Child {
    Command::new(env!("CARGO_BIN_EXE_curate"))
        .current_dir(d.path())
        .args(["--no-progress", "--threads", "1", "recipe.toml"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn staging_folders(d: &Dir) -> Vec<String> {
    let out = d.join("out");
    if !out.exists() {
        return vec![];
    }
    listing(&out).into_iter().filter(|n| n.starts_with(".t.tmp-")).collect()
}

/// Wait until the run has made its staging folder and has written into it; `None`
/// when the run ended first.
fn wait_for_staging(d: &Dir, child: &mut Child) -> Option<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        // The staging folder is made first; a task folder once the work has begun.
        if !staging_folders(d).is_empty() && d.join("out/.t.work/tasks").exists() {
            std::thread::sleep(Duration::from_millis(300));
            return Some(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("the run made no staging folder in 120 s");
}

fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill").args([&format!("-{sig}"), &child.id().to_string()]).status().unwrap();
    assert!(st.success());
}

fn wait(child: &mut Child) -> (Option<i32>, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            return (st.code(), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the run did not stop within 60 s of the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigint_and_sigterm_remove_the_staging_folder() {
    let d = Dir::new();
    big_source(&d);
    for (sig, code) in [("INT", 130), ("TERM", 143)] {
        let mut child = spawn(&d);
        if wait_for_staging(&d, &mut child).is_none() {
            panic!("the run finished before it could be interrupted; make the input larger");
        }
        signal(&child, sig);
        let (status, err) = wait(&mut child);
        assert_eq!(status, Some(code), "SIG{sig}: {err}");
        assert!(err.contains("interrupted"), "{err}");
        assert_eq!(staging_folders(&d), Vec::<String>::new(), "SIG{sig} left staging behind");
        assert!(!d.out().exists());
        // Only the work folder stays, for the next run to resume from.
        let left: Vec<String> = listing(&d.join("out")).into_iter().filter(|n| n != ".t.work").collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

#[test]
fn staging_left_by_sigkill_is_removed_by_the_next_run_and_runs_never_overlap() {
    let d = Dir::new();
    big_source(&d);
    let mut child = spawn(&d);
    wait_for_staging(&d, &mut child).expect("the run is still going");

    // A second run of the same output while the first is going is refused at once.
    let err = fails(&d.curate(&["--no-progress", "recipe.toml"]));
    assert!(err.contains("another curate run is writing"), "{err}");

    signal(&child, "KILL");
    let _ = wait(&mut child);
    let left = staging_folders(&d);
    assert_eq!(left.len(), 1, "SIGKILL cannot be caught: its staging stays until the next run");

    // The next run removes it (the killed run no longer holds the lock). Keep it
    // short: a small input for the same output.
    d.write("in.jsonl", format!("{GOOD}\n"));
    let o = d.curate(&["--no-progress", "recipe.toml"]);
    ok(&o);
    assert!(stderr(&o).contains("left by an interrupted run"), "{}", stderr(&o));
    assert_eq!(listing(&d.join("out")), vec!["t"]);
}

/// The work folder and the lock file beside an output are removed when a build ends,
/// so files of those names that curate did not make are refused and left alone.
#[test]
fn a_users_files_under_the_work_folder_or_lock_name_are_left_alone() {
    let d = Dir::new();
    d.write("in.jsonl", format!("{GOOD}\n"));
    d.recipe(&source("in.jsonl"));
    d.write("out/.t.work/tasks/mine.txt", "keep");
    let err = fails(&d.curate(&["--no-progress", "recipe.toml"]));
    assert!(err.contains(".t.work` exists and is not a curate work folder"), "{err}");
    let err = fails(&d.curate(&["--no-progress", "recipe.toml", "--fresh"]));
    assert!(err.contains("is not a curate work folder"), "--fresh does not remove it either: {err}");
    assert_eq!(std::fs::read_to_string(d.join("out/.t.work/tasks/mine.txt")).unwrap(), "keep");
    std::fs::remove_dir_all(d.join("out/.t.work")).unwrap();

    d.write("out/.t.lock", "my notes");
    let err = fails(&d.curate(&["--no-progress", "recipe.toml"]));
    assert!(err.contains(".t.lock` exists and is not curate's lock file"), "{err}");
    assert_eq!(std::fs::read_to_string(d.join("out/.t.lock")).unwrap(), "my notes");
    assert!(!d.out().exists());

    // A lock file left by a killed run (curate's own text) is taken over and removed.
    std::fs::remove_file(d.join("out/.t.lock")).unwrap();
    ok(&d.curate(&["--no-progress", "recipe.toml"]));
    assert_eq!(listing(&d.join("out")), vec!["t"]);
}
