//! Hub and URL sources against a local hub (tests/common/hub.rs): the lock, the
//! cache, and one test per fault.

mod common;
#[path = "common/hub.rs"]
mod hub;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{Dir, deterministic_part, fails, ok, stderr};
use hub::{Fault, Hub, sha256_hex};
use serde_json::json;

/// A test folder with its own hub cache, talking to `hub`.
struct T {
    d: Dir,
    hub: Hub,
}

impl T {
    fn new() -> T {
        T { d: Dir::new(), hub: Hub::start() }
    }

    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args, env).output().expect("curate runs")
    }

    /// `curate` with this test's environment, not started.
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_curate"));
        c.current_dir(self.d.path())
            .args(args)
            .env("HF_ENDPOINT", &self.hub.url)
            .env("HF_HOME", self.d.join("hf"))
            .env("CURATE_CACHE", self.d.join("curate-cache"))
            .env("CURATE_HTTP_TIMEOUT", "2")
            .env("CURATE_HTTP_RETRIES", "2")
            .env("CURATE_HTTP_BACKOFF", "0.05")
            .env("NO_COLOR", "1");
        for k in ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "HF_HUB_CACHE", "HF_TOKEN_PATH"] {
            c.env_remove(k);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    fn cache(&self) -> PathBuf {
        self.d.join("hf/hub")
    }

    /// Every file under the hub cache, relative, with links resolved to their content.
    fn cache_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.cache(), &self.cache(), &mut out);
        out.sort();
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
        }
    }
}

/// JSONL text rows, long enough to survive the default filters.
fn rows(prefix: &str, n: usize) -> Vec<u8> {
    (0..n).map(|i| format!("{{\"text\": \"{prefix} row number {i} with enough words to be a document\"}}\n")).collect::<String>().into_bytes()
}

const RECIPE: &str = r#"
[[source]]
name = "big"
hf = "org/big"
format = "text"

[[source]]
name = "small"
hf = "org/small"
split = "test"
format = "text"
"#;

/// Two datasets: `org/big` (one large LFS file, one small file) and `org/small`
/// (train and test files, small).
fn two_datasets(t: &T) -> (String, String) {
    let a = t.hub.dataset(
        "org/big",
        &[("README.md", b"# big\n"), ("data/train-00000-of-00002.jsonl", &rows("alpha", 40)), ("data/train-00001-of-00002.jsonl", &rows("beta", 2))],
    );
    t.hub.set_card("datasets", "org/big", json!({"license": "mit"}), &["license:mit"]);
    let b = t.hub.dataset("org/small", &[("train.jsonl", &rows("gamma", 2)), ("test.jsonl", &rows("delta", 3))]);
    (a, b)
}

/// Every output file's bytes that must be the same from run to run, by name.
fn outputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            deterministic_part(&name, std::fs::read(e.path()).unwrap()).map(|b| (name, b))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_hub_recipe_runs_is_locked_and_reruns_from_the_cache_without_requests() {
    let t = T::new();
    let (big, small) = two_datasets(&t);
    let r = t.d.recipe(RECIPE);
    let o = t.run(&[r.to_str().unwrap()]);
    ok(&o);
    let lock = std::fs::read_to_string(t.d.join("curate.lock")).unwrap();
    assert!(lock.starts_with("# Written by `curate lock`"), "{lock}");
    assert!(lock.contains("version = 1"));
    assert!(lock.contains(&format!("commit = \"{big}\"")) && lock.contains(&format!("commit = \"{small}\"")), "{lock}");
    assert!(lock.contains(&sha256_hex(&rows("alpha", 40))), "LFS sha256 from the listing: {lock}");
    assert!(lock.contains(&sha256_hex(&rows("delta", 3))), "small files hashed on download: {lock}");
    assert!(!lock.contains("test.jsonl\"\nsize = 0"), "{lock}");
    assert!(!lock.contains("README.md"), "only the files the source reads: {lock}");
    assert!(lock.find("name = \"big\"").unwrap() < lock.find("name = \"small\"").unwrap());
    let docs = common::read_parquet(&t.d.out().join("documents.parquet"));
    let n: usize = docs.iter().map(|b| b.num_rows()).sum();
    assert_eq!(n, 42 + 3, "40 + 2 rows of `big`, the 3 test rows of `small`");
    // Locators name the hub file, not the cache path.
    let ledgerless = std::fs::read_to_string(t.d.out().join("report.json")).unwrap();
    assert!(ledgerless.contains("hf://datasets/org/big/data/train-00000-of-00002.jsonl"), "{ledgerless}");
    assert!(!ledgerless.contains(t.cache().to_str().unwrap()));
    // The large file went through the storage redirect.
    assert!(t.hub.requests().iter().any(|q| q.server == "storage"));
    // The cache follows the hub libraries' layout.
    let files = t.cache_files();
    assert!(files.iter().any(|f| f.starts_with("datasets--org--big/snapshots/") && f.ends_with("data/train-00000-of-00002.jsonl")), "{files:?}");
    assert!(files.iter().any(|f| f.starts_with("datasets--org--big/blobs/")), "{files:?}");

    let first = outputs(&t.d.out());
    let before = t.hub.requests().len();
    ok(&t.run(&[r.to_str().unwrap()]));
    assert_eq!(t.hub.requests().len(), before, "a run with the lock and a full cache makes no request");
    assert_eq!(outputs(&t.d.out()), first, "byte-identical outputs");
    assert_eq!(std::fs::read_to_string(t.d.join("curate.lock")).unwrap(), lock, "the lock is not rewritten");

    // `lock` again: nothing moved, so the same bytes.
    let o = t.run(&["lock", r.to_str().unwrap()]);
    ok(&o);
    assert!(stderr(&o).contains("up to date"), "{}", stderr(&o));
    ok(&t.run(&["lock", "--check", r.to_str().unwrap()]));
}

#[test]
fn fetch_downloads_only_and_offline_runs_from_the_cache() {
    let t = T::new();
    two_datasets(&t);
    let r = t.d.recipe(RECIPE);
    let r = r.to_str().unwrap();
    // Offline with no lock: says what to do.
    let err = fails(&t.run(&["--offline", r]));
    assert!(err.contains("curate.lock") && err.contains("offline"), "{err}");
    let o = t.run(&["fetch", r]);
    ok(&o);
    assert!(stderr(&o).contains("3 file(s) in the cache"), "{}", stderr(&o));
    assert!(!t.d.out().exists(), "fetch writes no outputs");
    let before = t.hub.requests().len();
    ok(&t.run(&["--offline", r]));
    ok(&t.run_env(&[r], &[("HF_HUB_OFFLINE", "1")]));
    assert_eq!(t.hub.requests().len(), before, "offline means no requests");

    // A file gone from the cache: offline names it.
    std::fs::remove_dir_all(t.cache().join("datasets--org--small")).unwrap();
    let err = fails(&t.run(&["--offline", r]));
    assert!(err.contains("not in the cache") && err.contains("source `small`: file `test.jsonl`"), "{err}");
    assert!(err.contains("curate fetch"), "{err}");
}

#[test]
fn a_500_then_success_is_retried() {
    let t = T::new();
    two_datasets(&t);
    t.hub.fault(Fault::Status { on: "/api/datasets/org/big".into(), code: 500, times: 1 });
    t.hub.fault(Fault::Status { on: "/blobs/".into(), code: 503, times: 1 });
    let o = t.run(&[t.d.recipe(RECIPE).to_str().unwrap()]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("answered 500") && err.contains("answered 503") && err.contains("retrying (1/2)"), "retries are reported: {err}");
    assert_eq!(t.hub.requests().iter().filter(|q| q.status >= 500).count(), 2);
}

#[test]
fn a_connection_dropped_mid_file_resumes_with_range() {
    let t = T::new();
    two_datasets(&t);
    let body = rows("alpha", 40);
    t.hub.fault(Fault::Drop { on: "/blobs/".into(), after: 1000, times: 1 });
    ok(&t.run(&[t.d.recipe(RECIPE).to_str().unwrap()]));
    let ranged: Vec<_> = t.hub.requests().into_iter().filter(|q| q.server == "storage" && q.range.is_some()).collect();
    assert_eq!(ranged.len(), 1, "{ranged:?}");
    assert_eq!(ranged[0].range.as_deref(), Some("bytes=1000-"));
    assert_eq!(ranged[0].status, 206);
    let blob = t.cache().join("datasets--org--big/blobs").join(sha256_hex(&body));
    assert_eq!(std::fs::read(blob).unwrap(), body, "the resumed file is whole");
}

#[test]
fn a_wrong_checksum_never_reaches_the_cache() {
    let t = T::new();
    two_datasets(&t);
    let sha = sha256_hex(&rows("alpha", 40));
    t.hub.fault(Fault::Corrupt { on: format!("/blobs/{sha}") });
    let err = fails(&t.run(&[t.d.recipe(RECIPE).to_str().unwrap()]));
    assert!(err.contains("source `big`: file `data/train-00000-of-00002.jsonl`"), "{err}");
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(err.contains("contradict its own listing"), "a fresh lock is not blamed on the remote moving: {err}");
    let files = t.cache_files();
    assert!(!files.iter().any(|f| f.contains(&sha) && !f.starts_with(".locks/")), "no blob, no part file: {files:?}");
    assert!(!files.iter().any(|f| f.ends_with("train-00000-of-00002.jsonl")), "no snapshot: {files:?}");
    assert!(!t.d.out().exists());
}

#[test]
fn a_response_slower_than_the_timeout_fails_clearly_and_a_slow_one_is_retried() {
    let t = T::new();
    two_datasets(&t);
    // Once slow, then fine: retried.
    t.hub.fault(Fault::Delay { on: "/api/datasets/org/small".into(), ms: 2500, times: 1 });
    ok(&t.run_env(&["lock", t.d.recipe(RECIPE).to_str().unwrap()], &[("CURATE_HTTP_TIMEOUT", "1")]));
    // Always slow: a clear error naming the source.
    std::fs::remove_file(t.d.join("curate.lock")).unwrap();
    t.hub.fault(Fault::Delay { on: "/api/datasets/org/small".into(), ms: 2500, times: 10 });
    let err = fails(&t.run_env(&["lock", t.d.recipe(RECIPE).to_str().unwrap()], &[("CURATE_HTTP_TIMEOUT", "1"), ("CURATE_HTTP_RETRIES", "1")]));
    assert!(err.contains("source `small`") && err.contains("did not answer within 1s"), "{err}");
}

#[test]
fn a_gated_dataset_needs_a_token_which_never_leaves_the_hub() {
    let t = T::new();
    two_datasets(&t);
    t.hub.gate("org/big", "hf_sekrit_token");
    let r = t.d.recipe(RECIPE);
    let r = r.to_str().unwrap();
    let err = fails(&t.run(&[r]));
    assert!(err.contains("source `big`") && err.contains("needs a token") && err.contains("HF_TOKEN"), "{err}");
    let err = fails(&t.run_env(&[r], &[("HF_TOKEN", "hf_wrong")]));
    assert!(err.contains("refused the token"), "{err}");
    assert!(!err.contains("hf_wrong"));
    let o = t.run_env(&[r], &[("HF_TOKEN", "hf_sekrit_token")]);
    ok(&o);
    for q in t.hub.requests() {
        if q.server == "storage" {
            assert!(q.authorization.is_none(), "the token went to the storage host: {q:?}");
        }
    }
    assert!(t.hub.requests().iter().any(|q| q.server == "hub" && q.authorization.is_some()));
    // Nowhere in what curate wrote or printed.
    assert!(!stderr(&o).contains("sekrit"));
    let mut written = vec![t.d.join("curate.lock")];
    for e in std::fs::read_dir(t.d.out()).unwrap().flatten() {
        written.push(e.path());
    }
    for p in written.iter().filter(|p| p.is_file()) {
        let b = std::fs::read(p).unwrap();
        assert!(!b.windows(6).any(|w| w == b"sekrit"), "token in `{}`", p.display());
    }
}

#[test]
fn a_revision_that_moved_after_locking_keeps_the_pin_and_update_names_the_change() {
    let t = T::new();
    let (big, _) = two_datasets(&t);
    let r = t.d.recipe(RECIPE);
    let r = r.to_str().unwrap();
    ok(&t.run(&[r]));
    let first = outputs(&t.d.out());
    // `main` moves to a commit with other data.
    let moved = t.hub.dataset("org/big", &[("data/train-00000-of-00001.jsonl", &rows("omega", 5))]);
    // The lock pins the old commit: the same data, even from an empty cache.
    std::fs::remove_dir_all(t.cache()).unwrap();
    ok(&t.run(&[r]));
    assert_eq!(outputs(&t.d.out()), first, "the pinned commit is what runs");
    // `lock --check` names what moved, and writes nothing.
    let err = fails(&t.run(&["lock", "--check", r]));
    assert!(err.contains("is stale"), "{err}");
    assert!(err.contains(&format!("source `big`: revision `main` moved from commit {} to {}", &big[..12], &moved[..12])), "{err}");
    assert!(err.contains("file `data/train-00000-of-00001.jsonl` added") && err.contains("file `data/train-00001-of-00002.jsonl` removed"), "{err}");
    // `--update` re-resolves, says so, and runs the new data.
    let o = t.run(&["run", "--update", r]);
    ok(&o);
    assert!(stderr(&o).contains("moved from commit"), "{}", stderr(&o));
    assert!(std::fs::read_to_string(t.d.join("curate.lock")).unwrap().contains(&moved));
}

#[test]
fn a_remote_that_no_longer_matches_the_lock_is_refused() {
    let t = T::new();
    let (big, _) = two_datasets(&t);
    let r = t.d.recipe(RECIPE);
    let r = r.to_str().unwrap();
    ok(&t.run(&["lock", r]));
    // The locked commit now serves other bytes under the same name.
    t.hub.rewrite("org/big", &big, "data/train-00000-of-00002.jsonl", &rows("tampered", 41));
    let err = fails(&t.run(&[r]));
    assert!(err.contains("source `big`: file `data/train-00000-of-00002.jsonl`"), "{err}");
    assert!(err.contains("curate.lock"), "{err}");
    assert!(!t.d.out().exists());
    // A recipe edited after locking: named without any request.
    let before = t.hub.requests().len();
    std::fs::write(r, std::fs::read_to_string(r).unwrap().replace("split = \"test\"", "split = \"train\"")).unwrap();
    let err = fails(&t.run(&[r]));
    assert!(err.contains("does not match the recipe") && err.contains("source `small`"), "{err}");
    assert!(err.contains("split = \"train\"") && err.contains("--update"), "{err}");
    assert_eq!(t.hub.requests().len(), before);
}

#[test]
fn a_hostile_file_name_is_refused() {
    let t = T::new();
    t.hub.dataset("org/evil", &[("../../escape.jsonl", &rows("x", 2)), ("train.jsonl", &rows("y", 2))]);
    let r = t.d.recipe("[[source]]\nname = \"evil\"\nhf = \"org/evil\"\nformat = \"text\"\n");
    let err = fails(&t.run(&[r.to_str().unwrap()]));
    assert!(err.contains("source `evil`") && err.contains("\"../../escape.jsonl\""), "{err}");
    assert!(err.contains("`..`"), "{err}");
    assert!(!t.d.join("escape.jsonl").exists() && !t.d.join("hf/escape.jsonl").exists());
    assert!(!t.d.join("curate.lock").exists());
}

#[test]
fn a_dataset_without_loadable_files_reads_the_parquet_conversion() {
    let t = T::new();
    t.hub.dataset("org/scripted", &[("README.md", b"# s\n"), ("scripted.py", b"import datasets\n")]);
    let parquet = common_parquet(&["first converted row with some words", "second converted row with some words"]);
    t.hub.commit("datasets", "org/scripted", "refs/convert/parquet", &[("default/train/0000.parquet", &parquet), ("default/test/0000.parquet", &parquet)]);
    let r = t.d.recipe("[[source]]\nname = \"s\"\nhf = \"org/scripted\"\nformat = \"text\"\n");
    ok(&t.run(&[r.to_str().unwrap()]));
    let lock = std::fs::read_to_string(t.d.join("curate.lock")).unwrap();
    assert!(lock.contains("parquet_conversion = true") && lock.contains("default/train/0000.parquet"), "{lock}");
    assert!(!lock.contains("default/test"), "{lock}");
    let n: usize = common::read_parquet(&t.d.out().join("documents.parquet")).iter().map(|b| b.num_rows()).sum();
    assert_eq!(n, 2);
    assert!(t.hub.requests().iter().any(|q| q.path.contains("revision/refs/convert/parquet")));
}

fn common_parquet(texts: &[&str]) -> Vec<u8> {
    use arrow_array::{RecordBatch, StringArray};
    use std::sync::Arc;
    let batch = RecordBatch::try_from_iter([("text", Arc::new(StringArray::from(texts.to_vec())) as _)]).unwrap();
    let mut buf = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    buf
}

#[test]
fn url_sources_are_checked_against_their_sha256() {
    let t = T::new();
    // The storage server serves any blob by its hash; use it as a plain web server.
    let body = rows("url", 3);
    t.hub.dataset("org/host", &[("x.jsonl", &body)]);
    let url = format!("{}/blobs/{}", t.hub.storage, sha256_hex(&body));
    let wrong = "0".repeat(64);
    let r = t.d.recipe(&format!("[[source]]\nname = \"u\"\nurl = \"{url}\"\nsha256 = \"{wrong}\"\nreader = \"jsonl\"\nformat = \"text\"\n"));
    let err = fails(&t.run(&[r.to_str().unwrap()]));
    assert!(err.contains("source `u`") && err.contains("checksum mismatch") && err.contains(&wrong), "{err}");
    let r = t.d.recipe(&format!("[[source]]\nname = \"u\"\nurl = \"{url}\"\nsha256 = \"{}\"\nreader = \"jsonl\"\nformat = \"text\"\n", sha256_hex(&body)));
    ok(&t.run(&[r.to_str().unwrap()]));
    let lock = std::fs::read_to_string(t.d.join("curate.lock")).unwrap();
    assert!(lock.contains(&format!("url = \"{url}\"")) && lock.contains(&format!("size = {}", body.len())), "{lock}");
    let before = t.hub.requests().len();
    ok(&t.run(&[r.to_str().unwrap()]));
    assert_eq!(t.hub.requests().len(), before);
}

#[test]
fn hub_card_facts_reach_the_compliance_engine_with_their_origin() {
    let t = T::new();
    t.hub.dataset("someone/distilled", &[("train.jsonl", &rows("d", 3))]);
    t.hub.set_card(
        "datasets",
        "someone/distilled",
        json!({"license": "apache-2.0", "annotations_creators": ["machine-generated"], "source_datasets": ["someone/seed"]}),
        &[],
    );
    let r = t.d.write(
        "recipe.toml",
        "[recipe]\nname = \"t\"\n\n[target]\nmodel = \"mistralai/Mistral-7B-v0.1\"\n\n[policy]\nuse = \"neurips-2023\"\n\n[[source]]\nname = \"d\"\nhf = \"someone/distilled\"\nformat = \"text\"\n",
    );
    let r = r.to_str().unwrap();
    ok(&t.run(&["lock", r]));
    let lock = std::fs::read_to_string(t.d.join("curate.lock")).unwrap();
    assert!(lock.contains("license = \"apache-2.0\"") && lock.contains("machine-generated") && lock.contains("someone/seed"), "{lock}");
    let before = t.hub.requests().len();
    let o = t.run(&["explain", r, "d"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("hub card of `someone/distilled`"), "{out}\n{}", stderr(&o));
    assert!(out.contains("Apache-2.0"), "{out}");
    assert_eq!(t.hub.requests().len(), before, "check and explain read the lock, not the hub");
}

#[test]
fn an_hf_tokenizer_resolves_through_the_lock() {
    let t = T::new();
    two_datasets(&t);
    let repo = env!("CARGO_MANIFEST_DIR");
    let tok = std::fs::read(Path::new(repo).join("recipes/tokenizer/tokenizer.json")).unwrap();
    let cfg = std::fs::read(Path::new(repo).join("recipes/tokenizer/tokenizer_config.json")).unwrap();
    t.hub.commit("models", "org/tiny-model", "main", &[("tokenizer.json", &tok), ("tokenizer_config.json", &cfg), ("model.safetensors", b"weights")]);
    let r = t.d.recipe(&format!("[target]\ntokenizer = \"hf:org/tiny-model\"\nseq_len = 256\n{RECIPE}"));
    let o = t.run(&[r.to_str().unwrap()]);
    ok(&o);
    let lock = std::fs::read_to_string(t.d.join("curate.lock")).unwrap();
    assert!(lock.contains("[tokenizer]") && lock.contains("hf = \"org/tiny-model\"") && lock.contains(&sha256_hex(&tok)), "{lock}");
    assert!(!lock.contains("model.safetensors"));
    assert!(t.d.out().join("train.bin").exists());
    assert_eq!(std::fs::read(t.d.out().join("tokenizer/tokenizer.json")).unwrap(), tok);
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(t.d.out().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["lock"]["sha256"].as_str(), Some(sha256_hex(lock.as_bytes()).as_str()), "the manifest names the lock it read");
}

#[test]
fn two_sources_reading_the_same_files_download_them_once() {
    let t = T::new();
    two_datasets(&t);
    let r = t.d.recipe(
        "[[source]]\nname = \"a\"\nhf = \"org/big\"\nformat = \"text\"\n\n[[source]]\nname = \"b\"\nhf = \"org/big\"\nformat = \"text\"\n",
    );
    ok(&t.run(&[r.to_str().unwrap()]));
    assert_eq!(t.hub.count("/resolve/"), 2, "one resolve per distinct file: {:?}", t.hub.requests());
    let report = std::fs::read_to_string(t.d.out().join("report.json")).unwrap();
    assert!(report.contains("dedup.exact"), "b's rows are exact duplicates of a's");
}

#[test]
fn a_lock_with_a_hostile_file_name_is_refused_too() {
    let t = T::new();
    two_datasets(&t);
    let r = t.d.recipe(RECIPE);
    ok(&t.run(&["lock", r.to_str().unwrap()]));
    let lock = t.d.join("curate.lock");
    let text = std::fs::read_to_string(&lock).unwrap().replace("path = \"test.jsonl\"", "path = \"../../../x.jsonl\"");
    std::fs::write(&lock, text).unwrap();
    let err = fails(&t.run(&[r.to_str().unwrap()]));
    assert!(err.contains("curate.lock") && err.contains("\"../../../x.jsonl\""), "{err}");
}

#[test]
fn a_download_cut_off_in_one_run_resumes_in_the_next() {
    let t = T::new();
    two_datasets(&t);
    let body = rows("alpha", 40);
    t.hub.fault(Fault::Drop { on: "/blobs/".into(), after: 1000, times: 2 });
    let r = t.d.recipe(RECIPE);
    let err = fails(&t.run_env(&[r.to_str().unwrap()], &[("CURATE_HTTP_RETRIES", "1")]));
    assert!(err.contains("source `big`: file `data/train-00000-of-00002.jsonl`"), "{err}");
    assert!(err.contains("closed before all bytes were read"), "{err}");
    let parts: Vec<String> = t.cache_files().into_iter().filter(|f| f.ends_with(".part")).collect();
    assert_eq!(parts.len(), 1, "the partial file is kept for the next run: {parts:?}");
    ok(&t.run(&[r.to_str().unwrap()]));
    let last = t.hub.requests().into_iter().rfind(|q| q.server == "storage").unwrap();
    assert_eq!(last.range.as_deref(), Some("bytes=2000-"), "{last:?}");
    assert!(!t.cache_files().iter().any(|f| f.ends_with(".part")));
    assert_eq!(std::fs::read(t.cache().join("datasets--org--big/blobs").join(sha256_hex(&body))).unwrap(), body);
}

/// `[decontaminate] helm = "run_specs.conf"`: the benchmarks a HELM run-spec file names
/// become eval sources, fetched from the hub, and training documents that hold one of
/// their items are dropped.
#[test]
fn a_helm_run_spec_decontaminates_against_the_benchmarks_it_names() {
    let t = T::new();
    let items = [
        ("A baker fills 14 trays with 12 rolls each and sells all but 9 of the rolls by noon. How many rolls did the baker sell?", "14 * 12 = 168; 168 - 9 = 159. #### 159"),
        ("Ravi walks 3 kilometres to school and back every weekday for 4 weeks. How many kilometres does he walk in those weeks?", "3 * 2 * 5 * 4 = 120. #### 120"),
    ];
    let test: String = items.iter().map(|(q, a)| format!("{}\n", json!({"question": q, "answer": a}))).collect();
    t.hub.dataset("openai/gsm8k", &[("main/test-00000-of-00001.jsonl", test.as_bytes())]);
    t.hub.set_card(
        "datasets",
        "openai/gsm8k",
        json!({"configs": [{"config_name": "main", "data_files": [{"split": "test", "path": "main/test-*"}]}]}),
        &[],
    );
    t.d.write("run_specs.conf", "entries: [\n  {description: \"gsm:model=m,max_eval_instances=2\", priority: 1}\n]\n");
    let train: String = (0..6)
        .map(|i| {
            let text = if i == 3 {
                format!("Worked example. {} Think it through step by step.", items[1].0)
            } else {
                format!("Practice text number {i} about trains, clocks and fractions, long enough to keep.")
            };
            format!("{}\n", json!({ "text": text }))
        })
        .collect();
    t.d.write("train.jsonl", train);
    let r = t.d.recipe("[[source]]\nname = \"train\"\npath = \"train.jsonl\"\nformat = \"text\"\n\n[decontaminate]\nhelm = \"run_specs.conf\"\n");
    ok(&t.run(&[r.to_str().unwrap()]));
    let l = common::ledger(&t.d.out());
    assert_eq!(l, vec![("decontam.ngram".to_string(), "train.jsonl".to_string(), 4)]);
    let report = common::report(&t.d.out());
    assert_eq!(report["decontamination"]["contamination"]["gsm8k"]["train"], 1);
    let sources: Vec<&str> = report["decontamination"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, vec!["helm.gsm8k.question", "helm.gsm8k.answer"]);
    let lock = std::fs::read_to_string(t.d.join("curate.lock")).unwrap();
    assert!(lock.contains("openai/gsm8k"), "the benchmark set is pinned like any hub source: {lock}");

    // A run-spec entry curate cannot map is a recipe error naming it.
    t.d.write("run_specs.conf", "entries: [\n  {description: \"unknown_scenario:model=m\", priority: 1}\n]\n");
    let err = fails(&t.run(&[r.to_str().unwrap()]));
    assert!(err.contains("run_specs.conf") && err.contains("unknown_scenario"), "{err}");
}

/// Start `curate` with stderr to a file; [`finish`] waits for it, at most `secs`.
fn start(t: &T, args: &[&str], env: &[(&str, &str)], log: &str) -> std::process::Child {
    let err = std::fs::File::create(t.d.join(log)).unwrap();
    t.command(args, env).stdout(std::process::Stdio::null()).stderr(err).spawn().expect("curate starts")
}

fn finish(t: &T, mut child: std::process::Child, log: &str, secs: u64) -> (bool, String) {
    let until = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("curate ran for more than {secs}s:\n{}", std::fs::read_to_string(t.d.join(log)).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.success(), std::fs::read_to_string(t.d.join(log)).unwrap())
}

/// Two `curate fetch` runs at once into one cache, while the storage server sends the
/// large file slowly enough that they overlap: both succeed, and every blob holds the
/// bytes its name says.
#[test]
fn two_runs_filling_one_cache_at_once_both_succeed_and_the_blobs_verify() {
    let t = T::new();
    let big = rows("alpha", 20_000);
    t.hub.dataset("org/big", &[("data/train-00000-of-00001.jsonl", &big)]);
    t.hub.dataset("org/small", &[("train.jsonl", &rows("gamma", 2)), ("test.jsonl", &rows("delta", 3))]);
    let r = t.d.recipe(RECIPE);
    let r = r.to_str().unwrap();
    ok(&t.run(&["lock", r]));
    t.hub.fault(Fault::Trickle { on: "/blobs/".into(), chunk: 64 << 10, every_ms: 40 });
    let env = [("CURATE_HTTP_TIMEOUT", "10")];
    let a = start(&t, &["fetch", r], &env, "a.log");
    let b = start(&t, &["fetch", r], &env, "b.log");
    let (a_ok, a_err) = finish(&t, a, "a.log", 60);
    let (b_ok, b_err) = finish(&t, b, "b.log", 60);
    assert!(a_ok && b_ok, "both runs succeed:\n--- a\n{a_err}\n--- b\n{b_err}");
    let blobs = t.cache().join("datasets--org--big/blobs");
    assert_eq!(sha256_hex(&std::fs::read(blobs.join(sha256_hex(&big))).unwrap()), sha256_hex(&big));
    for f in t.cache_files().iter().filter(|f| f.contains("/blobs/")) {
        let name = f.rsplit('/').next().unwrap();
        assert!(!name.ends_with(".part"), "no part file is left: {f}");
        assert_eq!(sha256_hex(&std::fs::read(t.cache().join(f)).unwrap()), name, "`{f}` holds other bytes than its name says");
    }
    assert!(t.cache().join(".locks/datasets--org--big").is_dir(), "per-blob locks where huggingface_hub keeps them");
    ok(&t.run(&["fetch", "--offline", r]));
}

#[test]
fn a_damaged_blob_is_named_as_damaged_offline_and_downloaded_again_online() {
    let t = T::new();
    two_datasets(&t);
    let r = t.d.recipe(RECIPE);
    let r = r.to_str().unwrap();
    ok(&t.run(&["fetch", r]));
    let body = rows("alpha", 40);
    let blob = t.cache().join("datasets--org--big/blobs").join(sha256_hex(&body));
    let mut longer = body.clone();
    longer.extend_from_slice(b"{\"text\": \"bytes that do not belong here\"}\n");
    std::fs::write(&blob, &longer).unwrap();
    let err = fails(&t.run(&["--offline", r]));
    assert!(err.contains("damaged") && !err.contains("not in the cache"), "{err}");
    assert!(err.contains("source `big`: file `data/train-00000-of-00002.jsonl`"), "{err}");
    assert!(err.contains(&sha256_hex(&body)) && err.contains(&format!("has {} bytes, curate.lock says {}", longer.len(), body.len())), "{err}");
    // Online, it is downloaded again.
    let o = t.run(&["fetch", r]);
    ok(&o);
    assert!(stderr(&o).contains("downloading it again"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&blob).unwrap(), body);
    ok(&t.run(&["--offline", r]));
}

/// A server that sends one byte at a time fails the file at its deadline
/// (`CURATE_HTTP_DEADLINE` plus its size at `CURATE_HTTP_MIN_RATE`), not never.
#[test]
fn a_trickling_server_fails_the_file_at_its_deadline() {
    let t = T::new();
    two_datasets(&t);
    t.hub.fault(Fault::Trickle { on: "/blobs/".into(), chunk: 1, every_ms: 100 });
    let r = t.d.recipe(RECIPE);
    let started = Instant::now();
    let o = t.run_env(&["fetch", r.to_str().unwrap()], &[("CURATE_HTTP_DEADLINE", "1"), ("CURATE_HTTP_MIN_RATE", "100000")]);
    let took = started.elapsed();
    let err = fails(&o);
    assert!(took < Duration::from_secs(15), "took {took:?}: {err}");
    assert!(err.contains("source `big`: file `data/train-00000-of-00002.jsonl`"), "{err}");
    assert!(err.contains("deadline") && err.contains("CURATE_HTTP_MIN_RATE") && err.contains("CURATE_HTTP_DEADLINE"), "{err}");
    assert_eq!(t.cache_files().iter().filter(|f| f.ends_with(".part")).count(), 1, "what arrived is kept for the next run");
}

#[test]
fn a_429_is_retried_after_the_wait_its_retry_after_asks_for() {
    let t = T::new();
    two_datasets(&t);
    t.hub.fault(Fault::Throttle { on: "/blobs/".into(), retry_after: "1".into(), times: 1 });
    let o = t.run_env(&["fetch", t.d.recipe(RECIPE).to_str().unwrap()], &[("CURATE_HTTP_BACKOFF", "0.01")]);
    ok(&o);
    assert!(stderr(&o).contains("answered 429 (too many requests), asking to retry after 1s"), "{}", stderr(&o));
    let storage: Vec<_> = t.hub.requests().into_iter().filter(|q| q.server == "storage").collect();
    assert_eq!(storage.iter().map(|q| q.status).collect::<Vec<_>>(), vec![429, 200], "{storage:?}");
    let waited = storage[1].at - storage[0].at;
    assert!(waited >= Duration::from_millis(950), "retried after {waited:?}, not the 1 s asked for");
}

#[test]
fn a_url_source_that_redirects_is_refused_in_words_that_fit_a_url() {
    let t = T::new();
    two_datasets(&t);
    // A large hub file's resolve URL answers with a 302 to storage.
    let url = format!("{}/datasets/org/big/resolve/main/data/train-00000-of-00002.jsonl", t.hub.url);
    let r = t.d.recipe(&format!("[[source]]\nname = \"u\"\nurl = \"{url}\"\nformat = \"text\"\n"));
    let err = fails(&t.run(&[r.to_str().unwrap()]));
    assert!(err.contains("source `u`") && err.contains("redirected to"), "{err}");
    assert!(err.contains("a `url` source is not followed through redirects"), "{err}");
    assert!(!err.contains("the hub does not do"), "{err}");
    assert!(!err.contains("X-Amz-Signature"), "{err}");
}

#[test]
fn an_hf_tokenizer_can_be_pinned_to_a_revision() {
    let t = T::new();
    two_datasets(&t);
    let repo = env!("CARGO_MANIFEST_DIR");
    let tok = std::fs::read(Path::new(repo).join("recipes/tokenizer/tokenizer.json")).unwrap();
    let cfg = std::fs::read(Path::new(repo).join("recipes/tokenizer/tokenizer_config.json")).unwrap();
    // The same tokenizer, other bytes, at tag `v1`; `main` keeps the original.
    let v: serde_json::Value = serde_json::from_slice(&tok).unwrap();
    let tok_v1 = serde_json::to_vec(&v).unwrap();
    assert_ne!(tok, tok_v1);
    t.hub.commit("models", "org/tiny-model", "main", &[("tokenizer.json", &tok), ("tokenizer_config.json", &cfg)]);
    let v1 = t.hub.commit("models", "org/tiny-model", "v1", &[("tokenizer.json", &tok_v1), ("tokenizer_config.json", &cfg)]);
    let r = t.d.recipe(&format!("[target]\ntokenizer = \"hf:org/tiny-model@v1\"\nseq_len = 256\n{RECIPE}"));
    let r = r.to_str().unwrap();
    ok(&t.run(&[r]));
    let lock = std::fs::read_to_string(t.d.join("curate.lock")).unwrap();
    let tok_entry = &lock[lock.find("[tokenizer]").unwrap()..];
    assert!(tok_entry.contains("revision = \"v1\"") && tok_entry.contains(&format!("commit = \"{v1}\"")), "{lock}");
    assert!(tok_entry.contains(&sha256_hex(&tok_v1)) && !tok_entry.contains(&sha256_hex(&tok)), "{lock}");
    assert_eq!(std::fs::read(t.d.out().join("tokenizer/tokenizer.json")).unwrap(), tok_v1);
    // The recipe without the revision no longer fits the lock.
    let text = std::fs::read_to_string(r).unwrap();
    std::fs::write(r, text.replace("@v1", "")).unwrap();
    let err = fails(&t.run(&[r]));
    assert!(err.contains("the tokenizer is `hf:org/tiny-model`, the lock has `hf:org/tiny-model@v1`"), "{err}");
    // A revision that is not one: a recipe error at its place.
    std::fs::write(r, text.replace("@v1", "@bad rev")).unwrap();
    let err = fails(&t.run(&[r]));
    assert!(err.contains("recipe.toml:") && err.contains("target.tokenizer") && err.contains("\"bad rev\""), "{err}");
    assert!(err.contains("not a branch, tag or commit"), "{err}");
}
